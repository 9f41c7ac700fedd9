// Bytes that are not UTF-8 travel untouched: arguments, environment, env-file values, the
// program's name, pidfile and log names, plain and through the monitor; messages escape them.
import { afterEach, describe, expect, test } from "bun:test";
import { copyFileSync, readdirSync, readFileSync } from "node:fs";
import { alive, BIN, cleanup, PROBE, tempDir, track, waitFor } from "./helpers";

afterEach(cleanup);

/** Runs a bash script, in which $'\xff' is the byte 0xff, with daemonize as $D. */
function bash(script: string, cwd = "/") {
  const r = Bun.spawnSync(["bash", "-c", script], { cwd, env: { PATH: "/usr/bin:/bin", D: BIN }, stdout: "pipe", stderr: "pipe" });
  return { code: r.exitCode, stdout: r.stdout.toString(), stderr: r.stderr.toString() };
}

/** The pid in the pidfile named with these raw bytes; every pidfile in dir is tracked first, whatever its name became. */
function pidIn(dir: string, name: Buffer): number {
  const entries = readdirSync(dir, { encoding: "buffer" }).filter((e) => e.toString().endsWith(".pid"));
  const pidOf = (e: Buffer) => Number(readFileSync(Buffer.concat([Buffer.from(`${dir}/`), e])).toString());
  for (const e of entries) track(pidOf(e));
  const entry = entries.find((e) => e.equals(name));
  if (!entry) throw new Error(`no pidfile ${name.toString("hex")}`);
  return pidOf(entry);
}

const nul = (...parts: (string | number[])[]) => Buffer.concat(parts.map((p) => (typeof p === "string" ? Buffer.from(p) : Buffer.from(p))));

describe("bytes that are not UTF-8", () => {
  test("arguments, --env, the caller's environment and an env file reach the program byte for byte", async () => {
    const dir = tempDir();
    Bun.spawnSync(["bash", "-c", `printf 'FILE=\\xfa\\xfb\\n' > ${dir}/env`]);
    const r = bash(`CALLER=$'\\xfe\\xef\\xbb\\xbf' $D -p ${dir}/p.pid --env-file ${dir}/env -E V=$'\\xff' -- ${PROBE} $'\\xff\\xfe' $'\\xc3\\x28'`);
    expect([r.code, r.stderr]).toEqual([0, ""]);
    const pid = pidIn(dir, Buffer.from("p.pid"));
    const cmdline = readFileSync(`/proc/${pid}/cmdline`);
    expect(cmdline.equals(nul(`${PROBE}\x00`, [0xff, 0xfe, 0], [0xc3, 0x28, 0]))).toBe(true);
    const environ = Buffer.concat([Buffer.of(0), readFileSync(`/proc/${pid}/environ`)]);
    for (const want of [nul("\0V=", [0xff, 0]), nul("\0CALLER=", [0xfe, 0xef, 0xbb, 0xbf, 0]), nul("\0FILE=", [0xfa, 0xfb, 0])])
      expect(environ.includes(want)).toBe(true);
  });

  test("a program with such a name is found, and two pidfiles that differ in such a byte are two", async () => {
    const dir = tempDir();
    copyFileSync(PROBE, `${dir}/p`);
    Bun.spawnSync(["bash", "-c", `mv ${dir}/p ${dir}/$'\\xff\\xfe' && chmod 755 ${dir}/$'\\xff\\xfe'`]);
    for (const b of ["\\xff", "\\xfe"]) {
      const r = bash(`$D -p ${dir}/$'${b}.pid' -- ./$'\\xff\\xfe' x`, dir);
      expect([r.code, r.stderr]).toEqual([0, ""]);
    }
    const a = pidIn(dir, nul([0xff], ".pid"));
    const b = pidIn(dir, nul([0xfe], ".pid"));
    expect(a).not.toBe(b);
    expect(alive(a) && alive(b)).toBe(true);
    expect(readFileSync(`/proc/${a}/cmdline`).equals(nul("./", [0xff, 0xfe, 0], "x\0"))).toBe(true);
  });

  test("under the monitor: arguments, the pidfile and a rotated log with such names", async () => {
    const dir = tempDir();
    const r = bash(`$D --supervise -p ${dir}/$'\\xff.pid' -o ${dir}/$'\\xfe.log' --log-max-size 1K -- /bin/sh -c 'printf "%s\\n" "$1"; exec sleep 1000' sh $'\\xff\\xfe'`);
    expect([r.code, r.stderr]).toEqual([0, ""]);
    pidIn(dir, nul([0xff], ".pid"));
    const log = Buffer.concat([Buffer.from(`${dir}/`), Buffer.from([0xfe]), Buffer.from(".log")]);
    expect(await waitFor(() => readFileSync(log).length > 0 && readFileSync(log), "the line")).toEqual(Buffer.from([0xff, 0xfe, 0x0a]));
    const logs = bash(`$D logs -p ${dir}/$'\\xff.pid' | od -An -tx1`);
    expect(logs.stdout.trim()).toBe("ff fe 0a");
    expect(bash(`$D stop -p ${dir}/$'\\xff.pid'`).code).toBe(0);
  });

  test("messages escape them, and other characters that could disguise a line", () => {
    const r = bash(`$D -- ./$'\\xffnope\\xe2\\x80\\xae\\xc2\\x85'`);
    expect(r.code).toBe(127);
    expect(r.stderr).toBe("daemonize: error: program ./\\xffnope\\u202e\\u0085 not found\n");
  });
});

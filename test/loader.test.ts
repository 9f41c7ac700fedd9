// The native library is loaded from memory: nothing is extracted to /tmp, where
// another user could plant a file or a noexec mount would stop it.
import { afterEach, describe, expect, test } from "bun:test";
import { existsSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { BIN, cleanup, isRoot, missing, PROBE, readPid, run, tempDir, track, waitFor, WITHOUT_MEMFD } from "./helpers";

afterEach(cleanup);

const bunFiles = () => readdirSync("/tmp").filter((f) => f.startsWith(".bun-"));

describe("native library", () => {
  // The daemon shares the launcher's memory and makes it non-dumpable: only root can read its map.
  test.skipIf(!isRoot || missing("native library from a memfd", ["python3", "python3"]))("is mapped from a memfd, never from a file under /tmp", async () => {
    const dir = tempDir();
    // A stale pidfile whose lock another launcher holds keeps the launcher waiting
    // for two seconds: long enough to read its memory map.
    writeFileSync(`${dir}/p.pid`, "4194303\n");
    const holder = Bun.spawn(
      ["python3", "-c", "import fcntl, os, sys, time\nf = os.open(sys.argv[1], os.O_RDONLY | os.O_CREAT, 0o600)\nfcntl.flock(f, fcntl.LOCK_EX)\nprint('locked', flush=True)\ntime.sleep(1000)", `${dir}/.p.pid.lock`],
      { stdout: "pipe", stderr: "ignore" },
    );
    track(holder.pid);
    const reader = holder.stdout.getReader();
    // With PYTHONUNBUFFERED set, the line comes in two writes.
    let said = "";
    while (!said.includes("\n")) {
      const { value, done } = await reader.read();
      if (done) break;
      said += new TextDecoder().decode(value);
    }
    expect(said).toBe("locked\n");
    const before = bunFiles();
    // --oknodo must not turn "cannot lock" into success.
    const launcher = Bun.spawn([BIN, "-p", `${dir}/p.pid`, "--oknodo", "--", PROBE], { stderr: "pipe", env: { TMPDIR: dir } });
    track(launcher.pid);
    const maps = await waitFor(() => {
      const m = readFileSync(`/proc/${launcher.pid}/maps`, "utf8");
      return m.includes("memfd:daemonize") && m;
    }, "the library to be mapped");
    expect(maps).not.toMatch(/\/tmp\/\.bun-|\.so.*daemonize|libdaemonize/);
    expect(await launcher.exited).toBe(73);
    expect(await new Response(launcher.stderr).text()).toBe(`daemonize: error: pidfile ${dir}/p.pid is locked by another process\n`);
    expect(bunFiles()).toEqual(before);
    expect(readdirSync(dir).sort()).toEqual([".p.pid.lock", "p.pid"]);
  });

  test.skipIf(!isRoot || missing("noexec TMPDIR", ["mount", "mount"]))("works with a noexec TMPDIR", async () => {
    const dir = tempDir();
    const tmp = `${dir}/noexec`;
    Bun.spawnSync(["mkdir", tmp]);
    const mount = Bun.spawnSync(["mount", "-t", "tmpfs", "-o", "noexec,size=1m", "tmpfs", tmp], { stderr: "pipe" });
    expect(mount.stderr.toString()).toBe("");
    try {
      const r = await run(["-p", `${dir}/p.pid`, "--", PROBE], { env: { PATH: "/usr/bin:/bin", TMPDIR: tmp } });
      expect(r.stderr).toBe("");
      expect(r.code).toBe(0);
      track(readPid(`${dir}/p.pid`));
      expect(readdirSync(tmp)).toEqual([]);
    } finally {
      Bun.spawnSync(["umount", tmp]);
    }
  });
});

// Bun compiles a trampoline for each symbol it binds: a command binds only the groups it uses (ffi/native.ts).
describe("what a command binds", () => {
  /** The library symbols a command binds, as an LD_AUDIT library sees them, and the rest of its stderr. */
  const bound = (dir: string, args: string[]) => {
    const audit = `${dir}/audit.so`;
    if (!existsSync(audit)) expect(Bun.spawnSync(["cc", "-shared", "-fPIC", "-o", audit, `${import.meta.dir}/audit.c`]).exitCode).toBe(0);
    const r = Bun.spawnSync([BIN, ...args], { cwd: dir, env: { LD_AUDIT: audit }, stderr: "pipe" });
    const lines = r.stderr.toString().split("\n");
    return { code: r.exitCode, symbols: lines.filter((l) => l.startsWith("bound ")).map((l) => l.slice(6)), said: lines.filter((l) => l && !l.startsWith("bound ")) };
  };

  test("--version and --help bind nothing; a plain start binds the start's symbols and nothing of readiness; --ready binds its own", () => {
    const dir = tempDir();
    expect(bound(dir, ["--version"])).toEqual({ code: 0, symbols: [], said: [] });
    expect(bound(dir, ["--help"])).toEqual({ code: 0, symbols: [], said: [] });
    const plain = bound(dir, ["--clear-env", "-p", `${dir}/p.pid`, "--", PROBE]);
    track(readPid(`${dir}/p.pid`));
    expect([plain.code, plain.said]).toEqual([0, []]);
    expect(plain.symbols).toContain("dz_spawn");
    expect(plain.symbols.filter((s) => /^dz_(ready|interrupt|memfd_exec|getpw|getgr|grouplist|pidfd|kill|sigqueue)/.test(s))).toEqual([]);
    writeFileSync(`${dir}/up`, "");
    const ready = bound(dir, ["--clear-env", "-p", `${dir}/q.pid`, "--ready", "file:up", "--", PROBE]);
    track(readPid(`${dir}/q.pid`));
    expect([ready.code, ready.said]).toEqual([0, []]);
    expect(ready.symbols).toEqual(expect.arrayContaining(["dz_ready_parse", "dz_ready_wait"]));
  });
});


describe("a native side that cannot load", () => {
  test.skipIf(missing("seccomp filter", ["python3", "python3"]))("is one line and exit 71, never a stack trace, and nothing is started", async () => {
    const dir = tempDir();
    const p = Bun.spawn(["python3", "-c", WITHOUT_MEMFD, BIN, "-p", `${dir}/p.pid`, "--", PROBE], { stdout: "pipe", stderr: "pipe" });
    const [code, stdout, stderr] = [await p.exited, await new Response(p.stdout).text(), await new Response(p.stderr).text()];
    expect([code, stdout, stderr]).toEqual([71, "", "daemonize: error: cannot load the native library: memfd_create failed\n"]);
    expect(readdirSync(dir)).toEqual([]);
  });

  // They load no native code at all, so a native side that cannot load does not matter to them.
  test.skipIf(missing("seccomp filter", ["python3", "python3"]))("does not stop --version, --help or a usage error", () => {
    const without = (...args: string[]) => {
      const r = Bun.spawnSync(["python3", "-c", WITHOUT_MEMFD, BIN, ...args], { stdout: "pipe", stderr: "pipe" });
      return [r.exitCode, r.stdout.toString().split("\n")[0], r.stderr.toString()];
    };
    expect(without("--version")).toEqual([0, expect.stringMatching(/^daemonize \d/), ""]);
    expect(without("stop", "--help")).toEqual([0, expect.stringContaining("daemonize stop"), ""]);
    expect(without("--ready-timeout", "1s", "--", PROBE)).toEqual([64, "", "daemonize: error: --ready-timeout goes with --ready\n"]);
  });
});

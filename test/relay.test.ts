// The log relay: the monitor writes the program's output, line by line, rotates
// by size inside the log's directory without following links, stamps lines, and
// `logs` reads what it wrote. logrotate, a full disk and rsyslog are in
// relay-peers.test.ts.
import { afterEach, describe, expect, test } from "bun:test";
import { existsSync, lstatSync, readdirSync, readFileSync, readlinkSync, writeFileSync } from "node:fs";
import { alive, BIN, cleanup, PROBE, readPid, run, tempDir, track, waitFor } from "./helpers";

afterEach(cleanup);

/** Starts `script` under the relay with a log; returns the monitor's pid. */
async function relay(dir: string, script: string, options: string[]) {
  const pidfile = `${dir}/r.pid`;
  const r = await run(["-v", "-p", pidfile, "-l", `${dir}/app.log`, ...options, "--", "/bin/sh", "-c", script]);
  const monitor = Number(r.stderr.match(/under monitor pid (\d+)\n$/)?.[1]);
  if (r.code !== 0 || !monitor) throw new Error(`start failed (${r.code}): ${r.stderr}`);
  return { monitor: track(monitor), pidfile };
}

/** The monitor's fd whose target names `name`. */
const readlinkFd = (pid: number, name: string) =>
  readdirSync(`/proc/${pid}/fd`).find((fd) => {
    try {
      return readlinkSync(`/proc/${pid}/fd/${fd}`).includes(name);
    } catch {
      return false;
    }
  });

const read = (path: string) => (existsSync(path) ? readFileSync(path, "utf8") : "");
/** The lines of the log and its rotated files, oldest first. */
const all = (dir: string, keep: number) =>
  [...Array.from({ length: keep }, (_, i) => `${dir}/app.log.${keep - i}`), `${dir}/app.log`].map(read).join("");

describe("rotation by size", () => {
  test("at --log-max-size, keeping --log-keep files, never splitting a line, never past the limit", async () => {
    const dir = tempDir();
    const { monitor, pidfile } = await relay(dir, 'i=0; while [ $i -lt 2000 ]; do i=$((i+1)); echo "line $i"; done; touch done; sleep 1000', [
      "-C", dir, "--log-max-size", "4K", "--log-keep", "3",
    ]);
    await waitFor(() => existsSync(`${dir}/done`) && read(`${dir}/app.log`).endsWith("line 2000\n"), "all 2,000 lines", 10_000);
    expect(readdirSync(dir).filter((f) => f.startsWith("app.log")).sort()).toEqual(["app.log", "app.log.1", "app.log.2", "app.log.3"]);
    for (const f of ["app.log", "app.log.1", "app.log.2", "app.log.3"]) {
      const text = read(`${dir}/${f}`);
      expect(text.length).toBeLessThanOrEqual(4096);
      expect(text).toMatch(/^(line \d+\n)+$/);
    }
    // The oldest were removed, and what is kept is the end of the output, in order.
    const lines = all(dir, 3).trimEnd().split("\n").map((l) => Number(l.slice(5)));
    expect(lines.at(-1)).toBe(2000);
    expect(lines).toEqual(Array.from({ length: lines.length }, (_, i) => 2001 - lines.length + i));
    expect(lines.length).toBeGreaterThan(1000);
    expect((await run(["stop", "-p", pidfile])).code).toBe(0);
    expect(alive(monitor)).toBe(false);
  });

  test("a symlink planted at FILE.1 or at FILE is never followed", async () => {
    const dir = tempDir();
    writeFileSync(`${dir}/target`, "keep\n");
    const { monitor, pidfile } = await relay(dir, 'i=0; while :; do i=$((i+1)); echo "line $i"; sleep 0.002; done', ["--log-max-size", "1K", "--log-keep", "2"]);
    await waitFor(() => existsSync(`${dir}/app.log.1`), "a first rotation", 10_000);
    Bun.spawnSync(["ln", "-sfn", `${dir}/target`, `${dir}/app.log.1`]);
    // The next rotation renames the log over the link: the link goes, its target stays as it was.
    await waitFor(() => !lstatSync(`${dir}/app.log.1`).isSymbolicLink(), "the next rotation over the link", 10_000);
    expect(read(`${dir}/target`)).toBe("keep\n");
    // A link in the log's own place: the monitor will not open through it, and goes on writing where it was.
    Bun.spawnSync(["ln", "-sfn", `${dir}/target`, `${dir}/app.log`]);
    const size = () => Number(Bun.spawnSync(["stat", "-L", "-c", "%s", `/proc/${monitor}/fd/${readlinkFd(monitor, "app.log")}`]).stdout.toString());
    await waitFor(() => size() > 2048, "more output than one rotation's worth");
    expect(read(`${dir}/target`)).toBe("keep\n");
    expect(lstatSync(`${dir}/app.log`).isSymbolicLink()).toBe(true);
    expect((await run(["stop", "-p", pidfile])).code).toBe(0);
    expect(read(`${dir}/target`)).toBe("keep\n");
  });
});

describe("lines", () => {
  test("what a crashing run wrote last is in the log before the next run starts, as a whole line", async () => {
    const dir = tempDir();
    const { pidfile } = await relay(dir, `echo "run $$ starts"; printf "run $$ dies mid-line"; kill -9 $$`, ["--supervise", "--restart-delay", "0", "--max-restarts", "0"]);
    await waitFor(() => (read(`${dir}/app.log`).match(/starts\n/g) ?? []).length >= 3, "three runs");
    const lines = read(`${dir}/app.log`).split("\n");
    // Each run's unfinished line ends where it died, before the next run's first line.
    const runs = lines.filter((l) => l.startsWith("run ")).slice(0, 4);
    expect(runs[0]).toMatch(/^run (\d+) starts$/);
    expect(runs[1]).toBe(`${runs[0]?.replace(" starts", "")} dies mid-line`);
    expect(runs[2]).toMatch(/^run (\d+) starts$/);
    expect((await run(["stop", "-p", pidfile])).code).toBe(0);
  });

  test("--log-timestamps: every line starts with an RFC 3339 UTC time with microseconds; stderr lines too", async () => {
    const dir = tempDir();
    const { pidfile } = await relay(dir, "echo out; echo err >&2; touch done; sleep 1000", ["--log-timestamps"]);
    await waitFor(() => (read(`${dir}/app.log`).match(/\n/g) ?? []).length >= 2, "both lines");
    const lines = read(`${dir}/app.log`).trimEnd().split("\n");
    for (const l of lines) expect(l).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z (out|err)$/);
    const stamped = Date.parse((lines[0] as string).slice(0, 26).replace(/(\.\d{3})\d{3}/, "$1") + "Z");
    expect(Math.abs(Date.now() - stamped)).toBeLessThan(60_000);
    expect((await run(["stop", "-p", pidfile])).code).toBe(0);
  });

  test("a line longer than the buffer is cut into whole lines; nothing is lost", async () => {
    const dir = tempDir();
    // 2.5 MiB without a newline, then a short line.
    const { pidfile } = await relay(dir, "head -c 2621440 /dev/zero | tr '\\0' x; echo; echo after; sleep 1000", ["--log-timestamps"]);
    await waitFor(() => read(`${dir}/app.log`).includes(" after\n"), "the short line", 10_000);
    const lines = read(`${dir}/app.log`).trimEnd().split("\n").map((l) => l.slice(28));
    expect(lines.at(-1)).toBe("after");
    const pieces = lines.slice(0, -1);
    expect(pieces.length).toBeGreaterThanOrEqual(3);
    expect(pieces.join("")).toBe("x".repeat(2621440));
    expect((await run(["stop", "-p", pidfile])).code).toBe(0);
  });
});

describe("logs and reopen-logs", () => {
  test("logs -n prints the last lines; logs -f follows across a rotation", async () => {
    const dir = tempDir();
    const { pidfile } = await relay(dir, 'i=0; while [ $i -lt 30 ]; do i=$((i+1)); echo "line $i"; done; while [ ! -e go ]; do sleep 0.01; done; i=30; while [ $i -lt 300 ]; do i=$((i+1)); echo "line $i"; done; sleep 1000', [
      "-C", dir, "--log-max-size", "1K", "--log-keep", "5",
    ]);
    await waitFor(() => read(`${dir}/app.log`).includes("line 30\n"), "the first 30 lines");
    const tail = await run(["logs", "-p", pidfile, "-n", "3"]);
    expect([tail.code, tail.stdout]).toEqual([0, "line 28\nline 29\nline 30\n"]);
    const follow = Bun.spawn([BIN, "logs", "-f", "-n", "1", "-p", pidfile], { stdout: "pipe", stderr: "pipe" });
    track(follow.pid);
    let seen = "";
    const reader = (async () => {
      for await (const chunk of follow.stdout) seen += new TextDecoder().decode(chunk);
    })();
    await waitFor(() => seen.includes("line 30\n"), "logs -f to print the tail");
    writeFileSync(`${dir}/go`, "");
    await waitFor(() => seen.includes("line 300\n"), "logs -f to follow through the rotations", 10_000);
    follow.kill();
    await reader;
    const numbers = seen.trimEnd().split("\n").map((l) => Number(l.slice(5)));
    expect(numbers).toEqual(Array.from({ length: 271 }, (_, i) => 30 + i));
    expect(existsSync(`${dir}/app.log.2`)).toBe(true);
    expect((await run(["stop", "-p", pidfile])).code).toBe(0);
  });

  test("reopen-logs: a log moved away is written again under its name; a plain daemon is refused", async () => {
    const dir = tempDir();
    const { pidfile } = await relay(dir, 'i=0; while :; do i=$((i+1)); echo "line $i"; sleep 0.005; done', ["--log-timestamps"]);
    await waitFor(() => read(`${dir}/app.log`).includes("line 3\n"), "some lines");
    Bun.spawnSync(["mv", `${dir}/app.log`, `${dir}/app.log.old`]);
    const r = await run(["reopen-logs", "-v", "-p", pidfile]);
    expect(r.code).toBe(0);
    expect(r.stderr).toMatch(/^daemonize: reopened the logs \(monitor pid \d+\)\n$/);
    await waitFor(() => read(`${dir}/app.log`).includes("line"), "lines in the new file");
    expect((await run(["stop", "-p", pidfile])).code).toBe(0);
    const numbers = (read(`${dir}/app.log.old`) + read(`${dir}/app.log`)).trimEnd().split("\n").map((l) => Number(l.slice(33)));
    expect(numbers).toEqual(Array.from({ length: numbers.length }, (_, i) => i + 1));

    const plain = tempDir();
    expect((await run(["-p", `${plain}/p.pid`, "-l", `${plain}/p.log`, "--", PROBE])).code).toBe(0);
    track(readPid(`${plain}/p.pid`));
    const refused = await run(["reopen-logs", "-p", `${plain}/p.pid`]);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toBe(
      `daemonize: error: pidfile ${plain}/p.pid names a daemon that writes its own logs: rotate them with copytruncate, or start it with --supervise, --log-max-size, --log-timestamps or --syslog\n`,
    );
    // A plain daemon's log is recorded too, for `logs`.
    await waitFor(() => read(`${plain}/p.log`).includes("probe pid="), "the probe's report");
    const tail = await run(["logs", "-p", `${plain}/p.pid`]);
    expect(tail.stdout).toMatch(/^probe pid=\d+ /);
  });
});

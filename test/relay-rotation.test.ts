// A rotation that cannot rename: the daemon's own user blocking FILE.1 … FILE.N
// in a log directory it owns, or a log name too long for FILE.1. The monitor
// must write on to the file it has, try again only after another
// --log-max-size, say so once, and still stop when asked. Rotation that works
// is in relay.test.ts.
import { afterEach, describe, expect, test } from "bun:test";
import { chownSync, existsSync, lstatSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync } from "node:fs";
import { alive, cleanup, isRoot, missing, NOBODY, readPid, run, tempDir, track, waitFor } from "./helpers";

afterEach(cleanup);

const read = (path: string) => (existsSync(path) ? readFileSync(path, "utf8") : "");
const size = (path: string) => (existsSync(path) ? statSync(path).size : 0);

/** CPU time used, in clock ticks of 1/100 s: utime + stime of /proc/PID/stat. */
function cpuTicks(pid: number): number {
  const text = readFileSync(`/proc/${pid}/stat`, "utf8");
  const f = text.slice(text.lastIndexOf(")") + 2).split(" ");
  return Number(f[11]) + Number(f[12]);
}

/** The share of one core the monitor takes over 3 s, and the bytes the log grew by meanwhile. */
async function measure(monitor: number, log: string) {
  const [ticks, bytes, t] = [cpuTicks(monitor), size(log), Date.now()];
  await Bun.sleep(3000);
  return { cpu: (cpuTicks(monitor) - ticks) / 100 / ((Date.now() - t) / 1000), grew: size(log) - bytes };
}

/** "" when `text` is exactly "line 1" … "line N", each whole and once, in order; else where it first goes wrong. */
function sequence(text: string): { count: number; problem: string } {
  if (!text.endsWith("\n")) return { count: 0, problem: `ends inside a line: ${JSON.stringify(text.slice(-40))}` };
  const lines = text.slice(0, -1).split("\n");
  for (let i = 0; i < lines.length; i++)
    if (lines[i] !== `line ${i + 1}`) return { count: i, problem: `line ${i + 1} is ${JSON.stringify(lines[i])}` };
  return { count: lines.length, problem: "" };
}

/** Numbered lines without end, a pause every `burst` of them: enough output to pass 2K many times, at a rate the relay keeps up with easily. */
const writer = (burst: number) => `i=0; while :; do i=$((i+1)); echo "line $i"; [ $((i % ${burst})) -ne 0 ] || sleep 0.01; done`;

/** Stops the daemon; returns how long `stop` took. */
async function stop(pidfile: string): Promise<number> {
  const t = Date.now();
  const r = await run(["stop", "-p", pidfile]);
  expect([r.code, r.stderr]).toEqual([0, ""]);
  return Date.now() - t;
}

describe.skipIf(!isRoot)("a rotation that cannot rename", () => {
  test("FILE.1 … FILE.5 made non-empty directories by the daemon's user: the monitor idles, writes on, and stops", async () => {
    const dir = tempDir();
    // The daemon's own log directory, as /var/log/app is app's.
    const logs = `${dir}/logs`;
    mkdirSync(logs, { mode: 0o755 });
    chownSync(logs, NOBODY.uid, NOBODY.gid);
    const log = `${logs}/app.log`;
    const pidfile = `${dir}/app.pid`;
    // Non-empty: an empty directory would be renamed over, or move up the chain and out of the way.
    const block = `for n in 1 2 3 4 5; do mkdir -p ${logs}/app.log.$n/x; done`;
    const r = await run(["--user", "nobody", "-p", pidfile, "--log", log, "--log-max-size", "2K", "--", "/bin/sh", "-c", `${block}; ${writer(20)}`]);
    expect([r.code, r.stderr]).toEqual([0, ""]);
    const monitor = track(readPid(pidfile));
    await waitFor(() => size(log) >= 1024, "the first lines", 10_000);

    // The rotation at 2K fails within the window, and the retries after each 2K more.
    const { cpu, grew } = await measure(monitor, log);
    expect(cpu).toBeLessThan(0.05);
    expect(size(log)).toBeGreaterThan(3 * 2048);
    expect(grew).toBeGreaterThan(2048);
    for (let n = 1; n <= 5; n++) expect(lstatSync(`${logs}/app.log.${n}`).isDirectory()).toBe(true);

    // The monitor's default --stop-timeout: 10 s.
    expect(await stop(pidfile)).toBeLessThan(10_000);
    expect(alive(monitor)).toBe(false);
    const { count, problem } = sequence(read(log));
    expect(problem).toBe("");
    expect(count).toBeGreaterThan(600);
  });

  test("a log name of 254 bytes, so that FILE.1 is past the 255 a name may have: the same, with no one in the way", async () => {
    const dir = tempDir();
    const log = `${dir}/${"a".repeat(250)}.log`;
    const pidfile = `${dir}/app.pid`;
    const r = await run(["--supervise", "--stop-timeout", "3s", "-p", pidfile, "--log", log, "--log-max-size", "2K", "--", "/bin/sh", "-c", writer(20)]);
    expect([r.code, r.stderr]).toEqual([0, ""]);
    const monitor = track(readPid(pidfile));
    await waitFor(() => size(log) >= 1024, "the first lines", 10_000);

    const { cpu, grew } = await measure(monitor, log);
    expect(cpu).toBeLessThan(0.05);
    expect(size(log)).toBeGreaterThan(3 * 2048);
    expect(grew).toBeGreaterThan(2048);

    expect(await stop(pidfile)).toBeLessThan(3000);
    expect(alive(monitor)).toBe(false);
    expect(readdirSync(dir).sort()).toEqual([`${"a".repeat(250)}.log`]);
    const { count, problem } = sequence(read(log));
    expect(problem).toBe("");
    expect(count).toBeGreaterThan(600);
  });

  // The monitor says what goes wrong with the logs to syslog and to its own stderr, which is /dev/null when
  // detached: the test binds the syslog socket, and keeps what the monitor says of itself.
  const receiver = `
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1])
with open(sys.argv[2], "ab", buffering=0) as out:
    while True:
        d = s.recv(65536)
        if b" daemonize[" in d:
            out.write(d.split(b"]: ", 1)[1] + b"\\n")
`;

  test.skipIf(missing("what the monitor says", ["/usr/bin/python3", "python3"]))("it says so once, and once more when rotating works again; then it rotates the file it wrote on to", async () => {
    const dir = tempDir();
    const log = `${dir}/app.log`;
    const pidfile = `${dir}/app.pid`;
    const sock = `${dir}/log.sock`;
    const said = `${dir}/said`;
    for (let n = 1; n <= 5; n++) mkdirSync(`${log}.${n}/x`, { recursive: true });
    track(Bun.spawn(["/usr/bin/python3", "-c", receiver, sock, said], { stdio: ["ignore", "ignore", "inherit"] }).pid);
    await waitFor(() => existsSync(sock), "the test's syslog socket");
    const r = await run(["--supervise", "--stop-timeout", "3s", "--syslog", "--syslog-socket", sock, "-p", pidfile, "--log", log, "--log-max-size", "2K", "--", "/bin/sh", "-c", writer(5)]);
    expect([r.code, r.stderr]).toEqual([0, ""]);
    track(readPid(pidfile));
    const failed = "cannot rotate log app.log (Is a directory): writing on to the file it has, past --log-max-size; trying again after as much more";

    // Past three times the limit: the rotation has failed, and been tried again at least twice.
    await waitFor(() => size(log) > 3 * 2048, "the log to grow past --log-max-size", 10_000);
    expect(read(said)).toBe(`${failed}\n`);

    for (let n = 1; n <= 5; n++) rmSync(`${log}.${n}`, { recursive: true });
    await waitFor(() => read(said).includes("can rotate"), "the monitor to say it rotates again", 10_000);
    expect(read(said)).toBe(`${failed}\ncan rotate log app.log again\n`);
    expect(await stop(pidfile)).toBeLessThan(3000);

    // The oversized file went whole to FILE.1, and on from there: every line once, in order.
    const files = [5, 4, 3, 2, 1].map((n) => `${log}.${n}`).filter(existsSync);
    expect(size(files[0] as string)).toBeGreaterThan(3 * 2048);
    const { count, problem } = sequence([...files, log].map(read).join(""));
    expect(problem).toBe("");
    expect(count).toBeGreaterThan(600);
  });
});

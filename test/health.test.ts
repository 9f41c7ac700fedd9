// --health and --max-memory: an HTTP server that starts answering 500, a program that stops
// itself under a tcp: probe, an exec: probe that hangs, a child that allocates past the limit,
// give-up, and bad input; judged through /proc, status, the log and a syslog socket. Probes
// talk only to 127.0.0.1, on ports found free by binding port 0.
import { afterEach, describe, expect, test } from "bun:test";
import { chmodSync, existsSync, readFileSync, writeFileSync } from "node:fs";
import { alive, cleanup, freePort, procStat, readPid, run, type SupervisedJson, statusWhen, supervisedStatus, tempDir, track, waitFor } from "./helpers";

afterEach(cleanup);

const TOLERANCE = 2000;

const status = supervisedStatus;
const statusUntil = statusWhen;

const read = (path: string) => (existsSync(path) ? readFileSync(path, "utf8") : "");
/** Each run appends "start MS PID" to DIR/runs. */
const starts = (dir: string) =>
  read(`${dir}/runs`).trim().split("\n").filter((l) => l.startsWith("start ")).map((l) => l.split(" ").slice(1).map(Number) as [number, number]);

/**
 * The programs: "http PORT BAD_AFTER" answers GET with 200, then 500 once BAD_AFTER seconds have passed
 * in its run; "listen PORT STOP_AFTER" accepts connections (backlog 1), then stops itself with SIGSTOP.
 */
const APP = `
import os, signal, socket, sys, time, http.server
runs, mode, port, after = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4])
def note(text):
    with open(runs, "a") as f: f.write(f"{text} {int(time.time() * 1000)} {os.getpid()}\\n")
t0 = time.time()
if mode == "http":
    class H(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(500 if time.time() - t0 > after else 200); self.end_headers()
        def log_message(self, *a): pass
    server = http.server.HTTPServer(("127.0.0.1", port), H)
    note("start")
    server.serve_forever()
srv = socket.socket(); srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
srv.bind(("127.0.0.1", port)); srv.listen(1); srv.setblocking(False)
note("start")
while time.time() - t0 < after:
    try: srv.accept()[0].close()
    except BlockingIOError: time.sleep(0.02)
note("stopped")
os.kill(os.getpid(), signal.SIGSTOP)
`;

async function supervise(dir: string, args: string[], options: string[]) {
  writeFileSync(`${dir}/app.py`, APP);
  const pidfile = `${dir}/app.pid`;
  const r = await run(["--supervise", "-p", pidfile, "-l", `${dir}/log`, "--restart-delay", "100ms", ...options, "--", "/usr/bin/python3", `${dir}/app.py`, `${dir}/runs`, ...args]);
  if (r.code !== 0) throw new Error(`start failed (${r.code}): ${r.stderr}`);
  return { pidfile, monitor: track(readPid(pidfile)), log: () => read(`${dir}/log`) };
}

/** A syslog socket, as the relay tests make it: every datagram that names daemonize goes to a file. */
async function syslog(dir: string): Promise<{ sock: string; said: () => string }> {
  const sock = `${dir}/log.sock`;
  const rx = Bun.spawn(["/usr/bin/python3", "-c", "import socket,sys\ns=socket.socket(socket.AF_UNIX,socket.SOCK_DGRAM)\ns.bind(sys.argv[1])\nout=open(sys.argv[2],'ab',buffering=0)\nwhile True:\n  d=s.recv(65536)\n  if b' daemonize[' in d: out.write(d+b'\\n')", sock, `${dir}/said`]);
  track(rx.pid);
  await waitFor(() => existsSync(sock), "the test's syslog socket");
  return { sock, said: () => read(`${dir}/said`) };
}

describe("--health", () => {
  test("an HTTP server that starts answering 500: healthy, then unhealthy (k of 3), restarted; the line goes to stderr and syslog", async () => {
    const dir = tempDir();
    const port = freePort();
    const { sock, said } = await syslog(dir);
    const { pidfile, monitor, log } = await supervise(dir, ["http", String(port), "1.5"], [
      "--health", `http://127.0.0.1:${port}/healthz`, "--health-interval", "300ms", "--health-retries", "3", "--max-restarts", "0", "--syslog", "--syslog-socket", sock,
    ]);
    const seen: SupervisedJson[] = [];
    const healthy = await statusUntil(pidfile, (s) => s.health?.state === "healthy", "healthy", seen);
    expect(healthy.health?.lastProbe).toMatchObject({ ok: true, result: "http:200", detail: "HTTP 200" });
    expect(Math.abs(Date.now() - Date.parse(healthy.health?.lastProbe?.at ?? ""))).toBeLessThan(5000);
    expect((await run(["status", "-p", pidfile])).stdout).toMatch(/, healthy, last probe HTTP 200 \d+\.\ds ago\n$/);
    await statusUntil(pidfile, (s) => s.restarts === 1, "the restart", seen);
    // Failures counted one by one while the run went on.
    const unhealthy = seen.filter((s) => s.health?.state === "unhealthy" && s.restarts === 0);
    expect(unhealthy.length).toBeGreaterThan(0);
    for (const s of unhealthy) {
      expect(s.health?.failures).toBeGreaterThanOrEqual(1);
      expect(s.health?.retries).toBe(3);
      expect(s.health?.lastProbe).toMatchObject({ ok: false, result: "http:500" });
    }
    const line = `daemonize[${monitor}]: /usr/bin/python3 failed 3 health checks in a row (last: HTTP 500); restarting in 100 ms`;
    expect(log()).toContain(`${line}\n`);
    await waitFor(() => said().includes(line), "the line on syslog");
    const s = await status(pidfile);
    expect([s.lastFailure, s.lastExit]).toEqual(["health", { signal: 15 }]);
    // The new run is probed anew.
    await statusUntil(pidfile, (x) => x.restarts === 1 && x.health?.state === "healthy", "the new run healthy");
    expect((await run(["stop", "-p", pidfile])).code).toBe(0);
  });

  test("a program that stops itself with SIGSTOP is caught by a tcp: probe once its backlog is full", async () => {
    const dir = tempDir();
    const port = freePort();
    const { pidfile } = await supervise(dir, ["listen", String(port), "1"], [
      "--health", `tcp:${port}`, "--health-interval", "200ms", "--health-timeout", "300ms", "--health-retries", "2", "--stop-timeout", "5s", "--max-restarts", "0",
    ]);
    await statusUntil(pidfile, (s) => s.health?.lastProbe?.result === "connected", "a connect");
    const stopped = await waitFor(() => read(`${dir}/runs`).match(/^stopped (\d+) (\d+)$/m), "the program to stop itself");
    await waitFor(() => procStat(Number(stopped[2])).state === "T", "the stopped state");
    const s = await statusUntil(pidfile, (x) => x.restarts === 1, "the restart");
    expect(s.lastFailure).toBe("health");
    // Stopped, it got CONT after TERM: TERM ended it, not the KILL 5 s later.
    expect(s.lastExit).toEqual({ signal: 15 });
    const second = await waitFor(() => starts(dir)[1], "the second run");
    // Two probes fill the backlog of 1, two more time out.
    expect(second[0] - Number(stopped[1])).toBeLessThan(4 * 300 + 100 + TOLERANCE);
    expect(alive(Number(stopped[2]))).toBe(false);
    expect((await run(["stop", "-p", pidfile])).code).toBe(0);
  });

  test("an exec: probe that hangs is KILLed after --health-timeout and counted; it runs as the target user with the program's environment", async () => {
    const dir = tempDir();
    const probe = `${dir}/probe.sh`;
    writeFileSync(probe, `#!/bin/sh\necho "$$ $(id -u) $MARK" >> ${dir}/probes\nexec sleep 1000\n`, { mode: 0o755 });
    // The program and its probe run as nobody.
    for (const file of ["probes", "runs"]) {
      writeFileSync(`${dir}/${file}`, "");
      chmodSync(`${dir}/${file}`, 0o666);
    }
    const { pidfile, monitor, log } = await supervise(dir, ["listen", String(freePort()), "1000"], [
      "-u", "nobody", "-E", "MARK=marked", "--health", `exec:${probe} ignored`, "--health-interval", "500ms", "--health-timeout", "300ms", "--health-retries", "2", "--max-restarts", "0",
    ]);
    const first = await waitFor(() => read(`${dir}/probes`).match(/^(\d+) (\d+) (\w*)$/m), "the first probe");
    expect([first[2], first[3]]).toEqual(["65534", "marked"]);
    const pid = Number(first[1]);
    // In its own process group, a child of the monitor, gone after its timeout.
    expect(procStat(pid).pgrp).toBe(pid);
    await waitFor(() => !alive(pid), "the probe to be killed", 300 + TOLERANCE);
    const counted = await statusUntil(pidfile, (s) => s.health?.state === "unhealthy", "the failure counted");
    expect(counted.health).toMatchObject({ failures: 1, retries: 2, lastProbe: { ok: false, result: "timeout", detail: "timed out" } });
    await statusUntil(pidfile, (s) => s.restarts === 1, "the restart");
    expect(log()).toContain(`daemonize[${monitor}]: /usr/bin/python3 failed 2 health checks in a row (last: no answer within 300 ms); restarting in 100 ms\n`);
    // Every probe is gone: none is left behind by the restart either.
    for (const line of read(`${dir}/probes`).trim().split("\n")) {
      const p = Number(line.split(" ")[0]);
      await waitFor(() => !alive(p), `probe ${p} to be gone`, 300 + TOLERANCE);
    }
    expect((await run(["stop", "-p", pidfile])).code).toBe(0);
  });

  test("an exec: probe's exit code decides: 0 keeps the run healthy", async () => {
    const dir = tempDir();
    const { pidfile } = await supervise(dir, ["listen", String(freePort()), "1000"], ["--health", "exec:true", "--health-interval", "200ms"]);
    const s = await statusUntil(pidfile, (x) => x.health?.state === "healthy", "healthy");
    expect(s.health?.lastProbe).toMatchObject({ ok: true, result: "exit:0" });
    expect((await run(["stop", "-p", pidfile])).code).toBe(0);
  });

  test("none counted in --health-start; repeated failures give up", async () => {
    const dir = tempDir();
    const port = freePort();
    const { pidfile, monitor, log } = await supervise(dir, ["listen", String(freePort()), "1000"], [
      "--health", `tcp:127.0.0.1:${port}`, "--health-interval", "100ms", "--health-retries", "1", "--health-start", "1s", "--restart-delay", "0", "--max-restarts", "1",
    ]);
    await waitFor(() => !alive(monitor), "the monitor to give up", 15_000);
    const runs = starts(dir);
    expect(runs).toHaveLength(2);
    // Refused at every probe (100 ms apart), but not counted for the first second after each exec;
    // the runs note their start once python is up, which takes up to a few hundred ms.
    expect((runs[1] as [number, number])[0] - (runs[0] as [number, number])[0]).toBeGreaterThanOrEqual(700);
    expect(log()).toContain(`daemonize[${monitor}]: /usr/bin/python3 failed 1 health check in a row (last: Connection refused); giving up after 1 restarts within 60000 ms\n`);
    const text = await run(["status", "-p", pidfile]);
    expect([text.code, text.stdout]).toEqual([1, `failed: 1 restarts, last killed by signal 15 (health); the monitor (pid ${monitor}) gave up\n`]);
  });
});

/** A cgroup2 hierarchy to try --cgroup in: unified or hybrid. */
const cgroup2 = ["/sys/fs/cgroup/cgroup.procs", "/sys/fs/cgroup/unified/cgroup.procs"].some(existsSync);
if (!cgroup2) process.stderr.write("skip: --max-memory --cgroup: this machine has no cgroup2 mount\n");

describe("--max-memory", () => {
  // With --cgroup: the cgroup's memory.current where its memory controller is on, else the same sum.
  for (const cgroup of cgroup2 ? [[], ["--cgroup"]] : [[]])
  test(`a program whose child allocates 100 MB/s is stopped before it passes SIZE by 50 MB${cgroup.length ? " (--cgroup)" : ""}`, async () => {
    const dir = tempDir();
    // 10 MiB every 100 ms, its resident size written after each.
    writeFileSync(`${dir}/grow.py`, `
import os, sys, time
chunks = []
with open(sys.argv[1], "a") as out:
    while True:
        chunks.append(b"x" * (10 << 20))
        with open("/proc/self/statm") as f: out.write(f"{int(f.read().split()[1]) * os.sysconf('SC_PAGE_SIZE')}\\n")
        out.flush(); time.sleep(0.1)
`);
    const pidfile = `${dir}/app.pid`;
    const limit = 150 * 2 ** 20;
    const r = await run(["--supervise", "-p", pidfile, "-l", `${dir}/log`, ...cgroup, "--restart", "never", "--max-memory", "150M", "--", "/bin/sh", "-c", `python3 ${dir}/grow.py ${dir}/rss; sleep 1000`]);
    expect(r.code).toBe(0);
    const monitor = track(readPid(pidfile));
    await statusUntil(pidfile, (s) => (s.memoryBytes ?? 0) > 20 * 2 ** 20, "the tree's memory in status");
    // Said in words too, while it grows (the run may be stopped by the time this looks).
    const text = (await run(["status", "-p", pidfile])).stdout;
    if (text.startsWith("running")) expect(text).toMatch(/, memory \d+\.\d MiB(;|\n)/);
    await waitFor(() => !alive(monitor), "the monitor to end", 15_000);
    const sizes = read(`${dir}/rss`).trim().split("\n").map(Number);
    expect(Math.max(...sizes)).toBeGreaterThan(limit * 0.8);
    expect(Math.max(...sizes)).toBeLessThan(limit + 50e6);
    expect(read(`${dir}/log`)).toMatch(new RegExp(`^daemonize\\[${monitor}\\]: /bin/sh used \\d+\\.\\d MiB, over --max-memory 150\\.0 MiB; not restarting \\(--restart never\\)$`, "m"));
    const s = await status(pidfile);
    expect([s.state, s.lastFailure]).toEqual(["failed", "memory"]);
    expect(s.memoryBytes).toBeGreaterThan(limit);
    // A failed monitor leaves its pidfile for status; the next start, or stop, clears it and its cgroup.
    expect((await run(["stop", "-p", pidfile])).code).toBe(0);
  });
});

describe("bad input", () => {
  const P = ["--", "/bin/sleep", "1000"];
  const cases: [string, string[], string][] = [
    ["a host name", ["--health", "tcp:example.com:80"], "--health tcp:example.com:80: HOST must be an IP address or localhost"],
    ["a URL with a name", ["--health", "http://example.com:8080/"], "--health http://example.com:8080/: HOST must be an IP address or localhost"],
    ["https", ["--health", "https://127.0.0.1:443/"], "--health https://127.0.0.1:443/: https is not spoken; probe a plain HTTP port on the loopback, or use exec: with a client"],
    ["a malformed probe", ["--health", "udp:127.0.0.1:53"], "--health udp:127.0.0.1:53 is not tcp:[HOST:]PORT, http://ADDR:PORT/PATH or exec:PROGRAM [ARGS]"],
    ["port 0", ["--health", "tcp:127.0.0.1:0"], "--health tcp:127.0.0.1:0: no such port"],
    ["an empty exec:", ["--health", "exec: "], "--health exec: : no program given"],
    ["--watchdog 0", ["--watchdog", "0"], "--watchdog 0: must be longer than 0"],
    ["--health-interval 0", ["--health", "tcp:80", "--health-interval", "0s"], "--health-interval 0s: must be longer than 0"],
    ["--health-timeout 0", ["--health", "tcp:80", "--health-timeout", "0ms"], "--health-timeout 0ms: must be longer than 0"],
    ["--health-retries 0", ["--health", "tcp:80", "--health-retries", "0"], '--health-retries "0" is not a number from 1 to 1000'],
    ["--max-memory 0", ["--max-memory", "0"], '--max-memory "0" is not a size (10M, 512K, 1G or bytes)'],
    ["--health-interval alone", ["--health-interval", "1s"], "--health-interval goes with --health"],
  ];
  for (const [name, args, message] of cases)
    test(`${name}: exit 64, one line, nothing left; --check says the same`, async () => {
      const dir = tempDir();
      const pidfile = `${dir}/p.pid`;
      for (const check of [[], ["--check"]]) {
        const r = await run([...check, "--supervise", "-p", pidfile, ...args, ...P]);
        expect([r.code, r.stderr, r.stdout]).toEqual([64, `daemonize: error: ${message}\n`, ""]);
      }
      expect(existsSync(pidfile)).toBe(false);
    });

  for (const option of [["--watchdog", "1s"], ["--health", "tcp:80"], ["--max-memory", "1G"]])
    test(`${option[0]} without --supervise: exit 64`, async () => {
      const r = await run(["-p", `${tempDir()}/p.pid`, ...option, ...P]);
      expect([r.code, r.stderr]).toEqual([64, `daemonize: error: ${option[0]} goes with --supervise\n`]);
    });

  test("--check shows what it would watch", async () => {
    const dir = tempDir();
    const r = await run(["--check", "--supervise", "-p", `${dir}/p.pid`, "--watchdog", "2s", "--health", "http://[::1]/up", "--max-memory", "1G", ...P]);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain(
      "liveness: --watchdog: WATCHDOG=1 at least every 2000 ms; --health http://[::1]:80/up every 10000 ms, 2000 ms each, 3 failures in a row, none counted for 0 ms; --max-memory 1073741824 bytes for the tree, summed every 250 to 2000 ms\n",
    );
  });
});

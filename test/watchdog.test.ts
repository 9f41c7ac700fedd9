// --watchdog: a supervised program that stops sending WATCHDOG=1, stops itself, asks for a
// restart, or changes its period, judged from outside through /proc, status and the log.
// The tolerance on every deadline is 2 s past the one due, for a loaded machine.
import { afterEach, describe, expect, test } from "bun:test";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { alive, cleanup, procEnv, procStat, readPid, run, statusWhen, supervisedStatus, tempDir, track, waitFor } from "./helpers";

afterEach(cleanup);

const TOLERANCE = 2000;

/**
 * Every run appends "start MS PID" to runs; then, by mode: "pings N" sends N WATCHDOG=1 100 ms
 * apart and goes silent ("silent MS"); "stop N" then stops itself with SIGSTOP; "trigger" sends
 * WATCHDOG=trigger after two pings; "usec US" sends WATCHDOG_USEC=US once, then nothing.
 */
const APP = `
import os, signal, socket, sys, time
runs, mode = sys.argv[1], sys.argv[2]
def note(text):
    with open(runs, "a") as f: f.write(f"{text} {int(time.time() * 1000)} {os.getpid()}\\n")
note("start")
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
def send(text): s.sendto(text.encode(), os.environ["NOTIFY_SOCKET"])
if mode in ("pings", "stop"):
    for _ in range(int(sys.argv[3])):
        send("WATCHDOG=1"); time.sleep(0.1)
elif mode == "trigger":
    send("WATCHDOG=1"); time.sleep(0.1); send("WATCHDOG=1"); time.sleep(0.1); send("WATCHDOG=trigger")
elif mode == "usec":
    send("WATCHDOG_USEC=" + sys.argv[3])
note("silent")
if mode == "stop": os.kill(os.getpid(), signal.SIGSTOP)
while True: time.sleep(100)
`;

const status = supervisedStatus;
const statusUntil = statusWhen;


/** The lines of runs: [what, ms, pid]. */
const events = (dir: string): [string, number, number][] =>
  existsSync(`${dir}/runs`)
    ? readFileSync(`${dir}/runs`, "utf8").trim().split("\n").map((l) => l.split(" ")).map(([w, ms, pid]) => [w as string, Number(ms), Number(pid)])
    : [];
const starts = (dir: string) => events(dir).filter(([w]) => w === "start");

async function supervise(dir: string, mode: string[], options: string[]) {
  writeFileSync(`${dir}/app.py`, APP);
  const pidfile = `${dir}/app.pid`;
  const r = await run(["--supervise", "-p", pidfile, "-l", `${dir}/log`, "--restart-delay", "100ms", ...options, "--", "/usr/bin/python3", `${dir}/app.py`, `${dir}/runs`, ...mode]);
  if (r.code !== 0) throw new Error(`start failed (${r.code}): ${r.stderr}`);
  const monitor = track(readPid(pidfile));
  return { pidfile, monitor, log: () => readFileSync(`${dir}/log`, "utf8") };
}

describe("--watchdog", () => {
  test("a program that goes silent gets SIGABRT and is restarted within DUR; it has NOTIFY_SOCKET, WATCHDOG_USEC and WATCHDOG_PID; status shows it", async () => {
    const dir = tempDir();
    const { pidfile, monitor, log } = await supervise(dir, ["pings", "8"], ["--watchdog", "1s", "--max-restarts", "0"]);
    const first = await waitFor(() => starts(dir)[0], "the first run");
    const env = procEnv(first[2]);
    expect(env.get("NOTIFY_SOCKET")).toMatch(/^\/run\/daemonize-notify-\d+\.\d+-\w{6}\/notify$/);
    expect([env.get("WATCHDOG_USEC"), env.get("WATCHDOG_PID")]).toEqual(["1000000", String(first[2])]);
    // While it pings: heard lately, every 1 s.
    const during = await statusUntil(pidfile, (s) => typeof s.watchdog?.lastPingAgoMs === "number", "a ping in status");
    expect(during.watchdog?.periodMs).toBe(1000);
    expect(during.watchdog?.lastPingAgoMs).toBeLessThan(1000);
    expect((await run(["status", "-p", pidfile])).stdout).toMatch(/, watchdog heard \d+\.\ds ago \(every 1\.0s\)\n$/);
    const silent = await waitFor(() => events(dir).find(([w]) => w === "silent"), "the program to go silent", 10_000);
    const second = await waitFor(() => starts(dir)[1], "the restart", 10_000);
    // Silent for DUR, then the stop and the 100 ms delay.
    expect(second[1] - silent[1]).toBeGreaterThanOrEqual(1000);
    expect(second[1] - silent[1]).toBeLessThan(1000 + 100 + TOLERANCE);
    expect(alive(first[2])).toBe(false);
    expect(log()).toContain(`daemonize[${monitor}]: /usr/bin/python3 sent no WATCHDOG=1 for 1s; restarting in 100 ms\n`);
    const s = await status(pidfile);
    expect([s.lastExit, s.lastFailure, s.restarts]).toEqual([{ signal: 6 }, "watchdog", 1]);
    expect(procEnv(second[2]).get("WATCHDOG_PID")).toBe(String(second[2]));
    expect((await run(["stop", "-p", pidfile])).code).toBe(0);
  });

  test("a program that stops itself with SIGSTOP is caught, and its SIGABRT delivered", async () => {
    const dir = tempDir();
    const { pidfile } = await supervise(dir, ["stop", "3"], ["--watchdog", "700ms", "--max-restarts", "0"]);
    const silent = await waitFor(() => events(dir).find(([w]) => w === "silent"), "the program to stop itself", 10_000);
    await waitFor(() => procStat(silent[2]).state === "T", "the stopped state");
    const second = await waitFor(() => starts(dir)[1], "the restart", 10_000);
    expect(second[1] - silent[1]).toBeGreaterThanOrEqual(700);
    expect(second[1] - silent[1]).toBeLessThan(700 + 100 + TOLERANCE);
    const s = await status(pidfile);
    expect([s.lastExit, s.lastFailure]).toEqual([{ signal: 6 }, "watchdog"]);
    expect((await run(["stop", "-p", pidfile])).code).toBe(0);
  });

  test("WATCHDOG=trigger counts as a missed watchdog", async () => {
    const dir = tempDir();
    const { pidfile, monitor, log } = await supervise(dir, ["trigger"], ["--watchdog", "30s", "--max-restarts", "0"]);
    const silent = await waitFor(() => events(dir).find(([w]) => w === "silent"), "the trigger", 10_000);
    const second = await waitFor(() => starts(dir)[1], "the restart", 10_000);
    expect(second[1] - silent[1]).toBeLessThan(100 + TOLERANCE);
    expect(log()).toContain(`daemonize[${monitor}]: /usr/bin/python3 sent WATCHDOG=trigger; restarting in 100 ms\n`);
    expect((await status(pidfile)).lastFailure).toBe("watchdog");
    expect((await run(["stop", "-p", pidfile])).code).toBe(0);
  });

  test("WATCHDOG_USEC= from the program changes its period", async () => {
    const dir = tempDir();
    const { pidfile, monitor, log } = await supervise(dir, ["usec", "2500000"], ["--watchdog", "500ms", "--max-restarts", "0"]);
    const silent = await waitFor(() => events(dir).find(([w]) => w === "silent"), "the new period", 10_000);
    await statusUntil(pidfile, (s) => s.watchdog?.periodMs === 2500, "the period in status");
    const second = await waitFor(() => starts(dir)[1], "the restart", 15_000);
    // Not the 500 ms given: 2.5 s from the message on.
    expect(second[1] - silent[1]).toBeGreaterThanOrEqual(2500);
    expect(second[1] - silent[1]).toBeLessThan(2500 + 100 + TOLERANCE);
    expect(log()).toContain(`daemonize[${monitor}]: /usr/bin/python3 sent no WATCHDOG=1 for 2500ms; restarting in 100 ms\n`);
    expect((await run(["stop", "-p", pidfile])).code).toBe(0);
  });

  test("a stranger's WATCHDOG=1 is not heard: the silent program still fails", async () => {
    const dir = tempDir();
    const { pidfile } = await supervise(dir, ["pings", "0"], ["--watchdog", "1s", "--max-restarts", "0"]);
    const first = await waitFor(() => starts(dir)[0], "the first run");
    const socket = procEnv(first[2]).get("NOTIFY_SOCKET") as string;
    // Root outside the tree, as the program's own user could be, pinging ten times a second.
    const stranger = Bun.spawn(["/usr/bin/python3", "-c", "import socket,sys,time\ns=socket.socket(socket.AF_UNIX,socket.SOCK_DGRAM)\nwhile True:\n  s.sendto(b'WATCHDOG=1',sys.argv[1]); time.sleep(0.1)", socket], { stderr: "ignore" });
    track(stranger.pid);
    const second = await waitFor(() => starts(dir)[1], "the restart", 10_000);
    expect(second[1] - first[1]).toBeGreaterThanOrEqual(1000);
    expect(second[1] - first[1]).toBeLessThan(1000 + 100 + TOLERANCE);
    expect(alive(stranger.pid)).toBe(true);
    const s = await status(pidfile);
    expect([s.lastFailure, s.watchdog?.lastPingAgoMs]).toEqual(["watchdog", null]);
    expect((await run(["stop", "-p", pidfile])).code).toBe(0);
  });

  test("repeated misses count toward --max-restarts: the monitor gives up, and status says why", async () => {
    const dir = tempDir();
    const { pidfile, monitor, log } = await supervise(dir, ["pings", "0"], ["--watchdog", "300ms", "--restart-delay", "0", "--max-restarts", "2"]);
    await waitFor(() => !alive(monitor), "the monitor to give up", 15_000);
    expect(starts(dir)).toHaveLength(3);
    expect(log()).toContain(`daemonize[${monitor}]: /usr/bin/python3 sent no WATCHDOG=1 for 300ms; giving up after 2 restarts within 60000 ms\n`);
    const text = await run(["status", "-p", pidfile]);
    expect([text.code, text.stdout]).toEqual([1, `failed: 2 restarts, last killed by signal 6 (watchdog); the monitor (pid ${monitor}) gave up\n`]);
  });
});

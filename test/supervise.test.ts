// --supervise: the restart policy, stopping the whole tree, the monitor's death,
// signals, and what status says, all judged from outside through /proc and the
// files each run leaves. Hygiene of every run, races and PID 1 are in
// supervise-runs.test.ts.
import { afterEach, describe, expect, test } from "bun:test";
import { existsSync, readFileSync } from "node:fs";
import { alive, cleanup, kill, marked, PROBE, procStat, readPid, run, tempDir, track, waitFor } from "./helpers";

afterEach(cleanup);

interface Supervised {
  running: boolean;
  state: string;
  pid: number;
  child?: number;
  restarts: number;
  lastExit: { code: number } | { signal: number } | null;
}

const status = async (pidfile: string): Promise<Supervised & { code: number }> => {
  const r = await run(["status", "--json", "-p", pidfile]);
  return { ...JSON.parse(r.stdout), code: r.code };
};

/** Starts a supervised shell program; every run appends "start NANOSECONDS" to DIR/runs. Returns the monitor's pid. */
async function supervise(dir: string, script: string, options: string[] = []) {
  const pidfile = `${dir}/s.pid`;
  const r = await run(["--supervise", "-v", "-p", pidfile, "-l", `${dir}/log`, ...options, "--", "/bin/sh", "-c", `echo start $(date +%s%N) >> ${dir}/runs; ${script}`]);
  // From the launcher, not the pidfile: a monitor whose program ends at once may be gone, with its pidfile, already.
  const monitor = Number(r.stderr.match(/under monitor pid (\d+)\n$/)?.[1]);
  if (r.code !== 0 || !monitor) throw new Error(`start failed (${r.code}): ${r.stderr}`);
  return { monitor: track(monitor), pidfile };
}

const starts = (dir: string): number[] =>
  existsSync(`${dir}/runs`)
    ? readFileSync(`${dir}/runs`, "utf8").trim().split("\n").map((l) => Number(l.split(" ")[1]) / 1e6)
    : [];

/** The monitor's children, zombies included. */
const children = (pid: number): number[] =>
  readFileSync(`/proc/${pid}/task/${pid}/children`, "utf8").trim().split(/\s+/).filter(Boolean).map(Number);

describe("restart policy", () => {
  test("a crash loop waits the delay, doubling up to the cap", async () => {
    const dir = tempDir();
    const { pidfile } = await supervise(dir, "exit 1", ["--restart-delay", "200ms", "--restart-max-delay", "800ms", "--max-restarts", "0"]);
    const t = await waitFor(() => starts(dir).length >= 6 && starts(dir), "six runs", 10_000);
    const gaps = t.slice(1).map((v, i) => v - (t[i] as number));
    // Each gap is the delay plus one short run of sh and date.
    [200, 400, 800, 800, 800].forEach((delay, i) => {
      expect(gaps[i]).toBeGreaterThanOrEqual(delay);
      expect(gaps[i]).toBeLessThan(delay + 300);
    });
    const s = await status(pidfile);
    expect([s.running, s.lastExit]).toEqual([true, { code: 1 }]);
    expect(s.restarts).toBeGreaterThanOrEqual(5);
    expect((await run(["stop", "-p", pidfile])).code).toBe(0);
  });

  test("a run that lasts --min-uptime resets the delay", async () => {
    const dir = tempDir();
    await supervise(dir, "sleep 0.4; exit 1", ["--restart-delay", "200ms", "--min-uptime", "300ms", "--max-restarts", "0"]);
    const t = await waitFor(() => starts(dir).length >= 4 && starts(dir), "four runs", 10_000);
    // Without the reset the gaps would grow to 0.4 + 0.4, 0.4 + 0.8 s.
    for (const gap of t.slice(1).map((v, i) => v - (t[i] as number))) {
      expect(gap).toBeGreaterThanOrEqual(600);
      expect(gap).toBeLessThan(900);
    }
  });

  test("gives up after --max-restarts within the window; status says why; the next start works", async () => {
    const dir = tempDir();
    const { monitor, pidfile } = await supervise(dir, "exit 7", ["--restart-delay", "0", "--max-restarts", "2"]);
    await waitFor(() => !alive(monitor), "the monitor to give up");
    expect(starts(dir)).toHaveLength(3);
    const s = await status(pidfile);
    expect([s.code, s.running, s.state, s.restarts, s.lastExit]).toEqual([1, false, "failed", 2, { code: 7 }]);
    const text = await run(["status", "-p", pidfile]);
    expect([text.code, text.stdout]).toEqual([1, `failed: 2 restarts, last exit code 7; the monitor (pid ${monitor}) gave up\n`]);
    expect(readFileSync(`${dir}/log`, "utf8")).toContain(`daemonize[${monitor}]: /bin/sh exited with code 7; giving up after 2 restarts within 60000 ms\n`);
    const again = await supervise(dir, "sleep 1000");
    expect((await status(again.pidfile)).state).toBe("running");
    expect((await run(["stop", "-p", pidfile])).code).toBe(0);
  });

  test("success codes: on-failure ends quietly on one, always restarts, never stops on a failure and keeps the pidfile", async () => {
    const onFailure = tempDir();
    const a = await supervise(onFailure, "exit 3", ["--success-exit", "0,3"]);
    await waitFor(() => !alive(a.monitor), "on-failure to end on a success code");
    expect([existsSync(a.pidfile), starts(onFailure).length]).toEqual([false, 1]);
    expect((await run(["status", "-p", a.pidfile])).code).toBe(3);

    const always = tempDir();
    const b = await supervise(always, "exit 3", ["--restart", "always", "--success-exit", "3", "--restart-delay", "0", "--max-restarts", "0"]);
    await waitFor(() => starts(always).length >= 3, "always to restart after a success code");
    expect((await run(["stop", "-p", b.pidfile])).code).toBe(0);

    const never = tempDir();
    const c = await supervise(never, "exit 1", ["--restart", "never"]);
    await waitFor(() => !alive(c.monitor), "never to end");
    const s = await status(c.pidfile);
    expect([s.code, s.state, s.restarts, s.lastExit, starts(never).length]).toEqual([1, "failed", 0, { code: 1 }, 1]);
  });

  test("--restart implies --supervise; policy options without it are a usage error", async () => {
    const dir = tempDir();
    const r = await run(["--restart", "always", "-p", `${dir}/s.pid`, "--", PROBE]);
    expect(r.code).toBe(0);
    expect((await status(`${dir}/s.pid`)).state).toBe("running");
    track(readPid(`${dir}/s.pid`));
    const bad = await run(["--stop-timeout", "5s", "-p", `${dir}/t.pid`, "--", PROBE]);
    expect([bad.code, bad.stderr]).toEqual([64, "daemonize: error: --stop-timeout goes with --supervise\n"]);
    const noPidfile = await run(["--supervise", "--", PROBE]);
    expect([noPidfile.code, noPidfile.stderr]).toEqual([64, "daemonize: error: --supervise needs --pidfile: it names the monitor\n"]);
    const dur = await run(["--supervise", "-p", `${dir}/t.pid`, "--restart-delay", "5x", "--", PROBE]);
    expect([dur.code, dur.stderr]).toEqual([64, 'daemonize: error: --restart-delay "5x" is not a duration (250ms, 10s, 2m, 1h or seconds)\n']);
    expect(existsSync(`${dir}/t.pid`)).toBe(false);
    expect((await run(["stop", "-p", `${dir}/s.pid`])).code).toBe(0);
  });
});

describe("stopping all of it", () => {
  test("a program that ignores TERM is KILLed after --stop-timeout, then the monitor exits and removes its pidfile", async () => {
    const dir = tempDir();
    const pidfile = `${dir}/s.pid`;
    const r = await run(["--supervise", "-p", pidfile, "--stop-timeout", "500ms", "-E", "PROBE_IGNORE_TERM=1", "-l", `${dir}/log`, "--", PROBE]);
    expect(r.code).toBe(0);
    const monitor = track(readPid(pidfile));
    const child = (await status(pidfile)).child as number;
    track(child);
    const began = Date.now();
    const stopped = await run(["stop", "-p", pidfile]);
    expect(stopped.code).toBe(0);
    expect(Date.now() - began).toBeGreaterThanOrEqual(500);
    expect([alive(monitor), alive(child), existsSync(pidfile)]).toEqual([false, false, false]);
  });

  test("a grandchild that left with setsid is stopped too", async () => {
    const dir = tempDir();
    const marker = `marker-${Math.random()}`;
    const { pidfile } = await supervise(dir, `setsid sh -c 'sleep 1000 # ${marker}' & sleep 1000`);
    const grandchild = await waitFor(() => marked(marker).find((p) => procStat(p).session === p), "the setsid grandchild");
    track(grandchild);
    expect((await run(["stop", "-p", pidfile])).code).toBe(0);
    expect(marked(marker)).toEqual([]);
  });

  test("1,000 orphaned grandchildren are reaped: no zombie is left", async () => {
    const dir = tempDir();
    const { monitor, pidfile } = await supervise(dir, `for i in $(seq 1000); do (sleep 0.2 &); done; touch ${dir}/spawned; sleep 1000`);
    // Each subshell exits at once and its sleep comes back to the monitor, which must reap it when it ends.
    const most = await waitFor(() => children(monitor).length > 10 && children(monitor).length, "orphans to come back to the monitor", 20_000);
    expect(most).toBeGreaterThan(10);
    await waitFor(() => existsSync(`${dir}/spawned`), "the program to have made all 1,000", 20_000);
    await waitFor(() => {
      const c = children(monitor);
      return c.length === 1 && c.every((p) => procStat(p).state !== "Z");
    }, "the orphans to be reaped", 20_000);
    expect((await status(pidfile)).restarts).toBe(0);
    expect((await run(["stop", "-p", pidfile])).code).toBe(0);
  });

  test("SIGKILL of the monitor leaves no program running, and the next start works", async () => {
    const dir = tempDir();
    // exec: the program itself is the one the parent-death signal reaches; its own children would outlive it.
    const { monitor, pidfile } = await supervise(dir, "exec sleep 1000");
    const child = track((await status(pidfile)).child as number);
    await kill(monitor);
    await waitFor(() => !alive(child), "the parent-death signal to end the program");
    expect((await status(pidfile)).code).toBe(1);
    const again = await supervise(dir, "sleep 1000");
    expect(again.monitor).not.toBe(monitor);
    expect((await run(["stop", "-p", pidfile])).code).toBe(0);
  });
});

describe("signals and control commands", () => {
  test("TERM to the monitor stops the service; HUP, USR1 are forwarded; signal TERM reaches the program, which is restarted", async () => {
    const dir = tempDir();
    const pidfile = `${dir}/s.pid`;
    expect((await run(["--supervise", "--restart-delay", "0", "-p", pidfile, "-l", `${dir}/log`, "--", PROBE])).code).toBe(0);
    const monitor = track(readPid(pidfile));
    const first = track((await status(pidfile)).child as number);
    // Until the probe has reported, its handlers may not be in place yet.
    await waitFor(() => readFileSync(`${dir}/log`, "utf8").includes(`probe pid=${first} `), "the probe's report");
    process.kill(monitor, "SIGHUP");
    process.kill(monitor, "SIGUSR1");
    await waitFor(() => ["signal 01\n", "signal 10\n"].every((l) => readFileSync(`${dir}/log`, "utf8").includes(l)), "HUP and USR1 at the program");
    const sent = await run(["signal", "-v", "-p", pidfile, "TERM"]);
    expect([sent.code, sent.stderr]).toEqual([0, `daemonize: sent signal 15 to the program (pid ${first}) through its monitor (pid ${monitor})\n`]);
    let second: Supervised | undefined;
    const deadline = Date.now() + 5000;
    while (Date.now() < deadline && !(second?.child !== first && second?.state === "running")) second = await status(pidfile);
    expect([second?.restarts, second?.lastExit, alive(monitor)]).toEqual([1, { signal: 15 }, true]);
    process.kill(monitor, "SIGTERM");
    await waitFor(() => !alive(monitor), "the monitor to stop");
    expect(existsSync(pidfile)).toBe(false);
  });

  test("restart without a program restarts only the program, under the same monitor", async () => {
    const dir = tempDir();
    const { monitor, pidfile } = await supervise(dir, "sleep 1000");
    const before = await status(pidfile);
    track(before.child as number);
    const r = await run(["restart", "-v", "-p", pidfile]);
    const after = await status(pidfile);
    expect([r.code, r.stderr]).toEqual([0, `daemonize: restarted the program: pid ${after.child} (was pid ${before.child})\n`]);
    expect([after.pid, after.state, after.restarts, alive(before.child as number)]).toEqual([monitor, "running", 1, false]);
    const plain = tempDir();
    expect((await run(["-p", `${plain}/p.pid`, "--", PROBE])).code).toBe(0);
    track(readPid(`${plain}/p.pid`));
    const refused = await run(["restart", "-p", `${plain}/p.pid`]);
    expect([refused.code, refused.stderr]).toEqual([1, `daemonize: error: pidfile ${plain}/p.pid names no monitor (started without --supervise): give the program to restart it\n`]);
    expect((await run(["stop", "-p", pidfile])).code).toBe(0);
  });

  test("status: monitor pid, program pid, state, restarts, uptime and last exit, in text and JSON", async () => {
    const dir = tempDir();
    const { monitor, pidfile } = await supervise(dir, "sleep 1000");
    const s = await status(pidfile);
    expect(s).toMatchObject({ code: 0, running: true, state: "running", pid: monitor, restarts: 0, lastExit: null, pidfile });
    expect(procStat(s.child as number).ppid).toBe(monitor);
    const text = await run(["status", "-p", pidfile]);
    expect(text.stdout).toMatch(new RegExp(`^running \\(pid ${monitor}, up \\d+s, user root\\); program pid ${s.child} running, up \\d+s, 0 restarts\\n$`));
    expect((await run(["stop", "-p", pidfile])).code).toBe(0);
    expect((await run(["status", "-p", pidfile])).code).toBe(3);
  });
});

// A start that is interrupted: SIGINT, SIGTERM or SIGHUP to a launcher that waits
// (--ready, --supervise) stops what it started, removes what it created and exits
// 128 + the signal; whatever kills a launcher, even SIGKILL, the temporary files it
// made are found and removed by the next start. Judged from outside, through /proc.
import { afterEach, describe, expect, test } from "bun:test";
import { existsSync, readdirSync } from "node:fs";
import { dirname } from "node:path";
import { alive, BIN, cleanup, kill, marked, procArgv, procEnv, procStat, run, tempDir, track, waitFor } from "./helpers";

afterEach(async () => {
  for (const marker of markers) await end(marker);
  markers.clear();
  await cleanup();
});

const markers = new Set<string>();

function newMarker(): string {
  const marker = `daemonize-interrupt-${Math.random().toString(36).slice(2)}`;
  markers.add(marker);
  return marker;
}

const env = { PATH: process.env.PATH ?? "/usr/bin:/bin" };

/** A program that is never ready, and its marker: `sh -c 'sleep 1000; exit 0' MARKER` (sh stays, with its child). */
const neverReady = (marker: string) => ["/bin/sh", "-c", "sleep 1000; exit 0", marker];

/** Live processes of a session. */
function inSession(session: number): number[] {
  return readdirSync("/proc")
    .filter((e) => /^\d+$/.test(e))
    .map(Number)
    .filter((pid) => {
      try {
        return procStat(pid).session === session && alive(pid);
      } catch {
        return false;
      }
    });
}

/**
 * Ends what a test's starts left running: the processes that carry its marker, and every
 * process of their sessions, so the program's children too (a SIGKILLed monitor's outlive
 * it); never one of the test's own session, where its launchers run.
 */
async function end(marker: string): Promise<void> {
  const own = procStat(process.pid).session;
  const sessions = new Set<number>();
  // Again until none is left: a program may fork while its session is being ended.
  for (;;) {
    for (const pid of marked(marker)) {
      try {
        sessions.add(procStat(pid).session);
      } catch {}
    }
    sessions.delete(own);
    const left = [...marked(marker), ...[...sessions].flatMap(inSession)];
    if (left.length === 0) return;
    for (const pid of left) await kill(track(pid));
  }
}

/** The program a launcher started, once it has exec'd: its sh, not the launcher or the monitor, whose argv hold the marker too. */
const programOf = (marker: string) => waitFor(() => marked(marker).find((pid) => procArgv(pid)[0] === "/bin/sh"), "the program to run", 10_000);

const SIGNALS = [["SIGINT", 2], ["SIGTERM", 15], ["SIGHUP", 1]] as const;

describe("a signal to a launcher that waits", () => {
  for (const supervise of [false, true])
    for (const [name, number] of SIGNALS)
      test(`${supervise ? "--supervise " : ""}--ready notify, ${name}: the program's tree is stopped, the pidfile, notify socket and log removed; exit ${128 + number}`, async () => {
        const dir = tempDir();
        const pidfile = `${dir}/p.pid`;
        const marker = newMarker();
        const launcher = Bun.spawn([BIN, ...(supervise ? ["--supervise"] : []), "--ready", "notify", "-p", pidfile, "-l", `${dir}/log`, "--", ...neverReady(marker)], {
          env,
          stdin: "ignore",
          stdout: "pipe",
          stderr: "pipe",
        });
        track(launcher.pid);
        // Once the program runs the launcher waits for it: in dz_ready_wait, or in dz_release for the monitor's report.
        const program = track(await programOf(marker));
        const socket = procEnv(program).get("NOTIFY_SOCKET") ?? "";
        expect(socket).toMatch(/^\/(run|tmp)\/daemonize-notify-[^/]+\/notify$/);
        const session = procStat(program).session;
        expect(existsSync(pidfile)).toBe(true);
        process.kill(launcher.pid, name);
        const [code, stdout, stderr] = await Promise.all([launcher.exited, new Response(launcher.stdout).text(), new Response(launcher.stderr).text()]);
        expect([code, stdout, stderr]).toEqual([128 + number, "", `daemonize: error: interrupted by ${name} while starting /bin/sh; what had started was stopped\n`]);
        expect(existsSync(pidfile)).toBe(false);
        expect(marked(marker)).toEqual([]);
        expect(inSession(session)).toEqual([]);
        expect(existsSync(dirname(socket))).toBe(false);
        // No temporary file, no lock file, and the log this start created.
        expect(readdirSync(dir)).toEqual([]);
      });

  test("a signal ignored when daemonize was started (nohup, a script's background job) stays ignored", async () => {
    const dir = tempDir();
    const marker = newMarker();
    // exec keeps an ignored disposition: SIGINT is ignored in the launcher from its first instruction.
    const launcher = Bun.spawn(["sh", "-c", 'trap "" INT; exec "$0" "$@"', BIN, "--ready", "notify", "-p", `${dir}/p.pid`, "--", ...neverReady(marker)], {
      env,
      stdin: "ignore",
      stdout: "ignore",
      stderr: "pipe",
    });
    track(launcher.pid);
    track(await programOf(marker));
    // Caught, SIGINT, sent first, would be the one named.
    process.kill(launcher.pid, "SIGINT");
    process.kill(launcher.pid, "SIGTERM");
    const [code, stderr] = await Promise.all([launcher.exited, new Response(launcher.stderr).text()]);
    expect([code, stderr]).toEqual([143, "daemonize: error: interrupted by SIGTERM while starting /bin/sh; what had started was stopped\n"]);
    expect([marked(marker), readdirSync(dir)]).toEqual([[], []]);
  });

  for (const supervise of [false, true])
    test(`SIGTERM at random moments of 30 ${supervise ? "--supervise " : ""}--ready starts: each ends with nothing left, by 143 or, before the launcher set anything up, by the signal`, async () => {
      const dir = tempDir();
      const pidfile = `${dir}/p.pid`;
      const marker = newMarker();
      let caught = 0;
      for (let i = 0; i < 30; i++) {
        const launcher = Bun.spawn([BIN, ...(supervise ? ["--supervise"] : []), "--ready", "notify", "-p", pidfile, "--", ...neverReady(marker)], { env, stdin: "ignore", stdout: "ignore", stderr: "pipe" });
        track(launcher.pid);
        await Bun.sleep(Math.random() * 60);
        launcher.kill("SIGTERM");
        const [code, stderr] = await Promise.all([launcher.exited, new Response(launcher.stderr).text()]);
        // Bun reports a death by a signal as 128 + it too: the signal tells them apart.
        if (launcher.signalCode) expect(launcher.signalCode).toBe("SIGTERM");
        else {
          caught++;
          expect([code, stderr]).toEqual([143, "daemonize: error: interrupted by SIGTERM while starting /bin/sh; what had started was stopped\n"]);
        }
        expect([marked(marker), readdirSync(dir)]).toEqual([[], []]);
      }
      expect(caught).toBeGreaterThan(0);
    }, 60_000);
});

describe("what a SIGKILLed launcher leaves", () => {
  test("SIGKILL at random moments of 100 --supervise starts: one more start removes every temporary file they left", async () => {
    const dir = tempDir();
    const pidfile = `${dir}/s.pid`;
    const marker = newMarker();
    const leftovers = () => readdirSync(dir).filter((f) => f !== "s.pid");
    const start = () => Bun.spawn([BIN, "--supervise", "-p", pidfile, "--", ...neverReady(marker)], { env, stdin: "ignore", stdout: "ignore", stderr: "ignore" });
    // A start's own length here, so the kills land all along it.
    const t0 = performance.now();
    expect(await start().exited).toBe(0);
    const span = performance.now() - t0;
    expect((await run(["stop", "-p", pidfile])).code).toBe(0);
    let left = 0;
    for (let i = 0; i < 100; i++) {
      const launcher = start();
      track(launcher.pid);
      await Bun.sleep(Math.random() * span);
      launcher.kill("SIGKILL");
      await launcher.exited;
      left += leftovers().length;
      // A start that got as far as its monitor leaves a daemon, ended here (its pidfile stays, stale).
      await end(marker);
    }
    // The kills did land where a start has made its temporary files.
    expect(left).toBeGreaterThan(0);
    const r = await run(["--supervise", "-p", pidfile, "--", ...neverReady(marker)], { env });
    expect([r.code, r.stderr]).toEqual([0, ""]);
    expect(leftovers()).toEqual([]);
    expect((await run(["stop", "-p", pidfile])).code).toBe(0);
    expect([marked(marker), readdirSync(dir)]).toEqual([[], []]);
  }, 60_000);

  test("a --ready notify launcher SIGKILLed while it waits: the next --ready start removes its notify directory", async () => {
    const dir = tempDir();
    const pidfile = `${dir}/p.pid`;
    const marker = newMarker();
    const launcher = Bun.spawn([BIN, "--ready", "notify", "-p", pidfile, "--", ...neverReady(marker)], { env, stdin: "ignore", stdout: "ignore", stderr: "ignore" });
    track(launcher.pid);
    const program = track(await programOf(marker));
    const socket = procEnv(program).get("NOTIFY_SOCKET") ?? "";
    expect(socket).toMatch(/^\/(run|tmp)\/daemonize-notify-[^/]+\/notify$/);
    launcher.kill("SIGKILL");
    await launcher.exited;
    await end(marker);
    expect(existsSync(dirname(socket))).toBe(true);
    const r = await run(["--ready", "notify", "--ready-timeout", "100ms", "-p", pidfile, "--", ...neverReady(marker)], { env });
    expect([r.code, r.stderr]).toEqual([75, "daemonize: error: /bin/sh was not ready within --ready-timeout; it was stopped\n"]);
    expect(existsSync(dirname(socket))).toBe(false);
    expect([marked(marker), readdirSync(dir)]).toEqual([[], []]);
  });
});

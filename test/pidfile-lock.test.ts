// Who can block a start or a stop: the pidfile is readable by everyone, and
// anyone may flock a file they can read. Launchers and removers lock a file
// beside it that only root or the caller can open, so another user's lock on
// a pidfile, stale or live, delays nothing; and nothing of that lock is left.
import { afterEach, describe, expect, test } from "bun:test";
import { chmodSync, existsSync, readdirSync, readFileSync, symlinkSync, writeFileSync } from "node:fs";
import { alive, BIN, cleanup, isRoot, kill, missing, PROBE, readPid, run, startProbe, tempDir, track, waitFor } from "./helpers";

afterEach(cleanup);

const noTools = () => !isRoot || missing("another user's lock on a pidfile", ["setpriv", "util-linux"], ["flock", "util-linux"]);

/** nobody holds a lock (-x or -s) on `file` in one process, which the test ends by pid; resolves once it is held. */
async function holdAsNobody(file: string, mode: "-x" | "-s"): Promise<number> {
  const holder = Bun.spawn(
    ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups", "sh", "-c", `exec 9<"$0" && flock ${mode} 9 && exec sleep 1000`, file],
    { stdout: "ignore", stderr: "ignore" },
  );
  track(holder.pid);
  // A shared lock keeps a root's exclusive one out as well.
  await waitFor(() => Bun.spawnSync(["flock", "-n", "-x", file, "true"]).exitCode === 1, `nobody's lock on ${file}`);
  return holder.pid;
}

const status = (pidfile: string) => Bun.spawnSync([BIN, "status", "-p", pidfile]).exitCode;

describe("another user's lock on a pidfile", () => {
  test.skipIf(noTools())("on a SIGKILLed monitor's pidfile (flock -x): status says dead, and the next start replaces it", async () => {
    const dir = tempDir();
    const pidfile = `${dir}/s.pid`;
    const first = await run(["--supervise", "-p", pidfile, "--", PROBE]);
    expect([first.code, first.stderr]).toEqual([0, ""]);
    const monitor = track(readPid(pidfile));
    const program = track(await waitFor(() => JSON.parse(Bun.spawnSync([BIN, "status", "--json", "-p", pidfile]).stdout.toString()).child as number, "the program"));
    await kill(monitor);
    // The program dies with its monitor (its parent-death signal); the pidfile stays, as after giving up.
    await waitFor(() => !alive(program), "the program to die with its monitor");
    expect(existsSync(pidfile)).toBe(true);
    await holdAsNobody(pidfile, "-x");
    expect(status(pidfile)).toBe(1);
    const r = await run(["--supervise", "-p", pidfile, "--", PROBE]);
    expect([r.code, r.stderr]).toEqual([0, ""]);
    const again = track(readPid(pidfile));
    expect(again).not.toBe(monitor);
    expect(status(pidfile)).toBe(0);
    expect((await run(["stop", "-p", pidfile])).code).toBe(0);
    // The lock beside the pidfile is removed by whoever held it last: nothing is left at rest.
    expect(readdirSync(dir)).toEqual([]);
  });

  test.skipIf(noTools())("on a dead plain daemon's pidfile (flock -s): the next start replaces it", async () => {
    const dir = tempDir();
    const { pid, pidfile } = await startProbe(dir);
    await kill(pid);
    await holdAsNobody(pidfile, "-s");
    const r = await run(["-p", pidfile, "--", PROBE]);
    expect([r.code, r.stderr]).toEqual([0, ""]);
    const again = track(readPid(pidfile));
    expect([again === pid, alive(again)]).toEqual([false, true]);
    expect(readdirSync(dir).sort()).toEqual(["probe.log", "probe.pid"]);
  });

  test.skipIf(noTools())("on a live daemon's pidfile (flock -s): stop removes the pidfile, and restart starts it again", async () => {
    const dir = tempDir();
    const { pid, pidfile } = await startProbe(dir);
    await holdAsNobody(pidfile, "-s");
    const stopped = await run(["stop", "-p", pidfile]);
    expect([stopped.code, stopped.stderr]).toEqual([0, ""]);
    expect(alive(pid)).toBe(false);
    expect(existsSync(pidfile)).toBe(false);

    const second = await startProbe(dir);
    await holdAsNobody(second.pidfile, "-s");
    const restarted = await run(["restart", "-p", second.pidfile, "--", PROBE]);
    expect([restarted.code, restarted.stderr]).toEqual([0, ""]);
    const third = track(readPid(second.pidfile));
    expect([third === second.pid, alive(second.pid), alive(third)]).toEqual([false, false, true]);
    expect(readdirSync(dir).sort()).toEqual(["probe.log", "probe.pid"]);
  });

  test.skipIf(noTools())("a lock file another user planted (a sticky directory) is refused with one line, and nothing is created", async () => {
    const dir = tempDir();
    chmodSync(dir, 0o1777);
    // A stale pidfile, which the start would replace under the lock.
    writeFileSync(`${dir}/p.pid`, `${Bun.spawnSync(["true"]).pid}\n`);
    const lock = `${dir}/.p.pid.lock`;
    const plant = Bun.spawnSync(["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups", "touch", lock]);
    expect(plant.exitCode).toBe(0);
    const r = await run(["-p", `${dir}/p.pid`, "-o", `${dir}/out`, "--", PROBE]);
    if (r.code === 0) track(readPid(`${dir}/p.pid`));
    expect([r.code, r.stderr]).toEqual([77, `daemonize: error: pidfile lock ${lock} is owned by uid 65534; refusing to use it (remove it)\n`]);
    expect(readdirSync(dir).sort()).toEqual([".p.pid.lock", "p.pid"]);
  });

  test("a lock file a killed launcher left, beside no pidfile, is removed by the next start", async () => {
    const dir = tempDir();
    writeFileSync(`${dir}/.probe.pid.lock`, "", { mode: 0o600 });
    await startProbe(dir);
    expect(readdirSync(dir).sort()).toEqual(["probe.log", "probe.pid"]);
  });

  test("a symbolic link in the lock file's place is refused, and its target left alone", async () => {
    const dir = tempDir();
    writeFileSync(`${dir}/target`, "precious\n");
    writeFileSync(`${dir}/p.pid`, `${Bun.spawnSync(["true"]).pid}\n`);
    symlinkSync(`${dir}/target`, `${dir}/.p.pid.lock`);
    const r = await run(["-p", `${dir}/p.pid`, "--", PROBE]);
    if (r.code === 0) track(readPid(`${dir}/p.pid`));
    expect([r.code, r.stderr]).toEqual([73, `daemonize: error: pidfile lock ${dir}/.p.pid.lock is a symbolic link; refusing to follow it\n`]);
    expect(readFileSync(`${dir}/target`, "utf8")).toBe("precious\n");
  });
});

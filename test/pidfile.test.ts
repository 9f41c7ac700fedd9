// The pidfile: names the daemon itself, refuses a second start while it lives,
// is stale once it dies or its pid is reused, and is published atomically.
import { afterEach, describe, expect, test } from "bun:test";
import { existsSync, readdirSync, readFileSync, readlinkSync, symlinkSync, utimesSync, writeFileSync } from "node:fs";
import { alive, BIN, bystander, cleanup, isRoot, kill, PROBE, procArgv, readPid, reusePid, run, startProbe, tempDir, track, waitFor } from "./helpers";

afterEach(cleanup);

/** Pids of live processes whose executable is `exe` and whose argv includes `marker`. */
function processes(exe: string, marker: string): number[] {
  const out: number[] = [];
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      if (readlinkSync(`/proc/${entry}/exe`) === exe && procArgv(Number(entry)).includes(marker) && alive(Number(entry)))
        out.push(Number(entry));
    } catch {}
  }
  return out;
}

describe("a second start", () => {
  for (const closesFds of [false, true]) {
    test(`is refused while the daemon lives${closesFds ? ", even one that closed every fd" : ""}; --oknodo makes it 0`, async () => {
      const dir = tempDir();
      const env: Record<string, string> = { PATH: "/usr/bin:/bin", ...(closesFds ? { PROBE_CLOSE_FDS: "1" } : {}) };
      const { pid, pidfile } = await startProbe(dir, [], [], env);
      const again = await run(["-p", pidfile, "--", PROBE], { env });
      expect(again.code).toBe(1);
      expect(again.stderr).toBe(`daemonize: error: already running (pid ${pid})\n`);
      const ok = await run(["-p", pidfile, "--oknodo", "--", PROBE], { env });
      expect(ok.code).toBe(0);
      expect(ok.stderr).toBe(`daemonize: already running (pid ${pid})\n`);
      const quiet = await run(["-p", pidfile, "--oknodo", "-q", "--", PROBE], { env });
      expect([quiet.code, quiet.stderr]).toEqual([0, ""]);
      expect(readPid(pidfile)).toBe(pid);
    });
  }

  test("succeeds after the daemon died, even by SIGKILL", async () => {
    const dir = tempDir();
    const first = await startProbe(dir);
    await kill(first.pid);
    const r = await run(["-p", first.pidfile, "--", PROBE]);
    expect(r.code).toBe(0);
    const second = track(readPid(first.pidfile));
    expect(second).not.toBe(first.pid);
    expect(alive(second)).toBe(true);
  });
});

describe("stale pidfiles", () => {
  test.skipIf(!isRoot)("a pid reused by an unrelated process is not the daemon", async () => {
    const dir = tempDir();
    const { pid, pidfile } = await startProbe(dir);
    expect(await reusePid(pid)).toBe(pid);
    expect(readPid(pidfile)).toBe(pid);
    const r = await run(["-p", pidfile, "--", PROBE]);
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
    const daemon = track(readPid(pidfile));
    expect(daemon).not.toBe(pid);
    expect(alive(pid)).toBe(true);
  });

  test("a pidfile of ours edited to name another live process is stale, even one older than the file", async () => {
    const dir = tempDir();
    // Older than the pidfile: only the recorded identity, not the file's time, tells it apart.
    const other = await bystander();
    const { pid, pidfile } = await startProbe(dir);
    writeFileSync(pidfile, `${other}\n`);
    const r = await run(["-p", pidfile, "--", PROBE]);
    expect(r.code).toBe(0);
    const daemon = track(readPid(pidfile));
    expect([daemon === pid, daemon === other]).toEqual([false, false]);
  });

  test("a foreign pidfile counts only a process that started before it was written", async () => {
    const dir = tempDir();
    const pidfile = `${dir}/foreign.pid`;
    const older = await bystander();
    writeFileSync(pidfile, `${older}\n`);
    const refused = await run(["-p", pidfile, "--", PROBE]);
    expect([refused.code, refused.stderr]).toEqual([1, `daemonize: error: already running (pid ${older})\n`]);
    // Backdate the file: the same process now started after it, so it is not the daemon.
    const hourAgo = new Date(Date.now() - 3600_000);
    utimesSync(pidfile, hourAgo, hourAgo);
    const r = await run(["-p", pidfile, "--", PROBE]);
    expect(r.code).toBe(0);
    expect(track(readPid(pidfile))).not.toBe(older);
  });
});

describe("publication", () => {
  test("50 starts racing on one pidfile: exactly one daemon, 49 exit 1", async () => {
    const dir = tempDir();
    const pidfile = `${dir}/race.pid`;
    const marker = `race-${Math.random()}`;
    const log = `${dir}/race.log`;
    const results = await Promise.all(Array.from({ length: 50 }, () => run(["-p", pidfile, "-l", log, "--", PROBE, marker])));
    const codes = results.map((r) => r.code).sort((a, b) => a - b);
    const winner = track(readPid(pidfile));
    expect(codes).toEqual([0, ...Array(49).fill(1)]);
    for (const r of results) if (r.code === 1) expect(r.stderr).toMatch(/^daemonize: error: already running \(pid \d+\)\n$/);
    // Launchers that lost after forking leave no half-started child behind.
    await waitFor(() => processes(BIN, marker).length === 0, "abandoned children to exit");
    expect(processes(PROBE, marker)).toEqual([winner]);
    // Losers leave the shared log alone: the winner still writes to the file at that path.
    expect(readlinkSync(`/proc/${winner}/fd/1`)).toBe(log);
  });

  test("a reader never sees an empty or partial pidfile", async () => {
    const dir = tempDir();
    const pidfile = `${dir}/atomic.pid`;
    const reader = Bun.spawn(
      [process.execPath, "-e", `
        const fs = require("fs"); let bad = 0, seen = 0;
        process.on("SIGTERM", () => { console.log(JSON.stringify({ bad, seen })); process.exit(0); });
        for (;;) {
          let t; try { t = fs.readFileSync(${JSON.stringify(pidfile)}, "utf8"); } catch { continue; }
          seen++; if (!/^[1-9][0-9]*\\n$/.test(t)) bad++;
          if (seen % 1000 === 0) await new Promise((r) => setImmediate(r));
        }`],
      { stdout: "pipe" },
    );
    track(reader.pid);
    for (let i = 0; i < 30; i++) {
      const r = await run(["-p", pidfile, "--", PROBE]);
      expect(r.code).toBe(0);
      await kill(readPid(pidfile));
    }
    reader.kill("SIGTERM");
    const { bad, seen } = JSON.parse(await new Response(reader.stdout).text());
    expect(seen).toBeGreaterThan(0);
    expect(bad).toBe(0);
  });

  test("a relative pidfile is taken against the caller's directory, whatever --chdir says", async () => {
    const dir = tempDir();
    const r = await run(["-p", "rel.pid", "-C", "/", "--", PROBE], { cwd: dir });
    expect(r.code).toBe(0);
    expect(alive(track(readPid(`${dir}/rel.pid`)))).toBe(true);
  });

  test("no temporary file is left beside the pidfile", async () => {
    const dir = tempDir();
    await startProbe(dir);
    expect(readdirSync(dir).sort()).toEqual(["probe.log", "probe.pid"]);
  });

  test("a symlinked pidfile is refused and its target left alone", async () => {
    const dir = tempDir();
    writeFileSync(`${dir}/target`, "precious\n");
    symlinkSync(`${dir}/target`, `${dir}/p.pid`);
    const r = await run(["-p", `${dir}/p.pid`, "--", PROBE]);
    expect(r.code).toBe(73);
    expect(r.stderr).toBe(`daemonize: error: pidfile ${dir}/p.pid is a symbolic link; refusing to follow it\n`);
    expect(readFileSync(`${dir}/target`, "utf8")).toBe("precious\n");
    expect(existsSync(`${dir}/probe.log`)).toBe(false);
  });
});

// reload: a new run of a supervised program beside the serving one, with the same
// listening sockets; the old run is stopped only once the new one is ready. Judged by a
// client making requests without pause, by status, and by /proc. The program is
// test/socket-server.py, whose MODE file makes a new version fail, hang or get ready late.
import { afterEach, describe, expect, test } from "bun:test";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { alive, cleanup, isRoot, missing, readPid, run, tempDir, track } from "./helpers";
import { CLIENT, freePort, get, SERVER } from "./sockets";

afterEach(cleanup);

interface Status {
  state: string;
  child?: number;
  restarts: number;
  reloads: number;
  old?: { child: number; state: string };
}

const status = async (pidfile: string): Promise<Status> => JSON.parse((await run(["status", "--json", "-p", pidfile])).stdout);

/** A supervised HTTP server with --ready notify on a free port; MODE in dir/mode decides what each new run does. */
async function serve(dir: string, options: string[] = [], env: Record<string, string> = {}) {
  const port = await freePort();
  const pidfile = `${dir}/pid`;
  const r = await run(
    ["--supervise", "--ready", "notify", "-p", pidfile, "-o", `${dir}/log`, "--listen", `tcp:127.0.0.1:${port}`, ...options, "--", "/usr/bin/python3", SERVER, `${dir}/mode`],
    { env: { PATH: "/usr/bin:/bin", ...env } },
  );
  if (r.code !== 0) throw new Error(`start failed (${r.code}): ${r.stderr}`);
  const monitor = track(readPid(pidfile));
  const first = (await status(pidfile)).child as number;
  return { port, pidfile, monitor, first };
}

/** The client of test/socket-client.py, making HTTP requests without pause until stopped (bounded in count and time). */
function client(dir: string, port: number) {
  const p = Bun.spawn(["python3", CLIENT, "127.0.0.1", String(port), "1000000", "120", `${dir}/stop`, "http"], { stdout: "pipe" });
  track(p.pid);
  return async () => {
    writeFileSync(`${dir}/stop`, "");
    return JSON.parse(await new Response(p.stdout).text()) as { ok: number; refused: number; failed: number };
  };
}

describe.skipIf(!isRoot || missing("reload", ["/usr/bin/python3", "python3"]))("reload", () => {
  test("5 reloads under a client making requests without pause: no request fails, each reload a new pid, the old one gone", async () => {
    const dir = tempDir();
    const { port, pidfile, first } = await serve(dir);
    const done = client(dir, port);
    let serving = first;
    for (let i = 0; i < 5; i++) {
      const r = await run(["reload", "-v", "-p", pidfile]);
      expect([r.code, r.stderr]).toEqual([0, expect.stringContaining("reloaded: the program is pid")]);
      const now = await status(pidfile);
      expect(now).toMatchObject({ state: "running", reloads: i + 1, restarts: 0 });
      expect(now.child).not.toBe(serving);
      expect(now.old).toBeUndefined();
      // It returns once the old run is stopped.
      expect(alive(serving)).toBe(false);
      serving = now.child as number;
      expect(await get("127.0.0.1", port)).toBe(`${serving} 0`);
    }
    const counts = await done();
    expect(counts).toMatchObject({ refused: 0, failed: 0 });
    expect(counts.ok).toBeGreaterThan(0);
  });

  test("status shows both runs while they overlap: the old one running, then draining", async () => {
    const dir = tempDir();
    // Each run takes 1.5 s to finish after TERM.
    const { pidfile, first } = await serve(dir, [], { DRAIN_MS: "1500" });
    writeFileSync(`${dir}/mode`, "slow");
    const reload = Bun.spawn([`${import.meta.dir}/../dist/daemonize`, "reload", "-p", pidfile], { stderr: "pipe" });
    track(reload.pid);
    const starting = await waitForStatus(pidfile, (s) => s.state === "reloading");
    expect(starting.old).toMatchObject({ child: first, state: "running" });
    expect(starting.child).not.toBe(first);
    const draining = await waitForStatus(pidfile, (s) => s.state === "running" && s.old?.state === "draining");
    expect(draining.old?.child).toBe(first);
    expect(draining.child).toBe(starting.child);
    expect(alive(first)).toBe(true);
    expect(await reload.exited).toBe(0);
    expect(alive(first)).toBe(false);
    expect((await status(pidfile)).old).toBeUndefined();
  });

  test("a new version that fails: 69 with the reason, the new run's tree gone, the old run serving on untouched", async () => {
    const dir = tempDir();
    const { port, pidfile, first } = await serve(dir);
    const done = client(dir, port);
    writeFileSync(`${dir}/mode`, "fail");
    const r = await run(["reload", "-p", pidfile]);
    expect([r.code, r.stderr]).toEqual([69, "daemonize: error: reload failed: the new run exited with code 3; it was stopped, and the old run serves on\n"]);
    expect(await status(pidfile)).toMatchObject({ state: "running", child: first, reloads: 1, restarts: 0 });
    expect(await get("127.0.0.1", port)).toBe(`${first} 0`);
    expect(await done()).toMatchObject({ refused: 0, failed: 0 });
  });

  test("a new version never ready: 75 after --ready-timeout, its tree stopped, the old run serving", async () => {
    const dir = tempDir();
    const { port, pidfile, monitor, first } = await serve(dir, ["--ready-timeout", "1s"]);
    const done = client(dir, port);
    writeFileSync(`${dir}/mode`, "hang");
    const r = await run(["reload", "-p", pidfile]);
    expect([r.code, r.stderr]).toEqual([75, "daemonize: error: reload failed: the new run was not ready within --ready-timeout; it was stopped, and the old run serves on\n"]);
    expect(await status(pidfile)).toMatchObject({ state: "running", child: first, restarts: 0 });
    // The monitor's only child is the old run.
    expect(readFileSync(`/proc/${monitor}/task/${monitor}/children`, "utf8").trim()).toBe(String(first));
    expect(await get("127.0.0.1", port)).toBe(`${first} 0`);
    expect(await done()).toMatchObject({ refused: 0, failed: 0 });
    // The next version is fine again.
    writeFileSync(`${dir}/mode`, "");
    expect((await run(["reload", "-p", pidfile])).code).toBe(0);
  });

  test("reloads do not count toward --max-restarts", async () => {
    const dir = tempDir();
    const { pidfile } = await serve(dir, ["--max-restarts", "1", "--restart-window", "1h"]);
    for (let i = 0; i < 3; i++) expect((await run(["reload", "-p", pidfile])).code).toBe(0);
    // A real restart still counts, and one is allowed.
    process.kill((await status(pidfile)).child as number, "SIGKILL");
    await waitForStatus(pidfile, (s) => s.state === "running" && s.restarts === 1, 10000);
    expect((await status(pidfile)).reloads).toBe(3);
  });

  test("two reloads at once: the second waits for the first, then runs; both succeed", async () => {
    const dir = tempDir();
    const { pidfile } = await serve(dir);
    const [a, b] = await Promise.all([run(["reload", "-p", pidfile]), Bun.sleep(20).then(() => run(["reload", "-p", pidfile]))]);
    expect([a.code, b.code]).toEqual([0, 0]);
    // Two reloads ran one after the other: the second caller's state read may precede the first's signal,
    // and then it is answered by the first, its own following at once.
    expect((await waitForStatus(pidfile, (st) => st.reloads === 2 && st.state === "running" && !st.old)).reloads).toBe(2);
  });

  test.skipIf(missing("reload of an activated daemon", ["systemd-socket-activate", "systemd"]))(
    "a daemon socket-activated by systemd-socket-activate: the monitor holds the activator's socket, and the new run gets it",
    async () => {
      const dir = tempDir();
      const port = await freePort();
      const pidfile = `${dir}/pid`;
      const activator = Bun.spawn(
        ["systemd-socket-activate", "-l", `127.0.0.1:${port}`, "--fdname=act", "-E", "PATH", `${import.meta.dir}/../dist/daemonize`,
          "--supervise", "--ready", "notify", "-p", pidfile, "-o", `${dir}/log`, "--", "/usr/bin/python3", SERVER],
        { stdout: "ignore", stderr: "ignore", env: { PATH: process.env.PATH ?? "/usr/bin:/bin" } },
      );
      track(activator.pid);
      // The first connection makes the activator exec daemonize; it waits in the backlog until the first run accepts it.
      const first = await waitForAnswer(port);
      const monitor = track(readPid(pidfile));
      const before = (await status(pidfile)).child as number;
      expect(first).toBe(`${before} 0`);
      expect((await run(["reload", "-p", pidfile])).code).toBe(0);
      const after = (await status(pidfile)).child as number;
      expect(after).not.toBe(before);
      expect(await get("127.0.0.1", port)).toBe(`${after} 0`);
      expect(readFileSync(`${dir}/log`, "utf8")).toContain(`{"pid": ${after}, "uid": 0, "fds": 1, "names": ["act"]`);
      expect(alive(monitor)).toBe(true);
    },
  );

  test.skipIf(!readFileSync("/proc/self/mountinfo", "utf8").includes(" - cgroup2 "))(
    "under --cgroup, where both runs share the cgroup: a failed new run is stopped alone, a good one replaces the old, stop removes the cgroup",
    async () => {
      const dir = tempDir();
      const { port, pidfile, first } = await serve(dir, ["--cgroup"]);
      const cgroup = JSON.parse((await run(["status", "--json", "-p", pidfile])).stdout).cgroup?.path as string;
      expect(existsSync(`${cgroup}/cgroup.procs`)).toBe(true);
      writeFileSync(`${dir}/mode`, "fail");
      expect((await run(["reload", "-p", pidfile])).code).toBe(69);
      expect(await status(pidfile)).toMatchObject({ state: "running", child: first });
      expect(await get("127.0.0.1", port)).toBe(`${first} 0`);
      writeFileSync(`${dir}/mode`, "");
      expect((await run(["reload", "-p", pidfile])).code).toBe(0);
      const now = (await status(pidfile)).child as number;
      expect(readFileSync(`${cgroup}/cgroup.procs`, "utf8").trim().split("\n").map(Number)).toContain(now);
      expect(alive(first)).toBe(false);
      expect((await run(["stop", "-p", pidfile])).code).toBe(0);
      expect(existsSync(cgroup)).toBe(false);
    },
  );

  test("refused with 64 and why: a plain start, a supervised one without --ready, and one whose --ready is a probe", async () => {
    const dir = tempDir();
    const port = await freePort();
    expect((await run(["-p", `${dir}/plain`, "--listen", `tcp:127.0.0.1:${port}`, "--", "/bin/sleep", "60"])).code).toBe(0);
    track(readPid(`${dir}/plain`));
    const plain = await run(["reload", "-p", `${dir}/plain`]);
    expect(plain.code).toBe(64);
    expect(plain.stderr).toMatch(/^daemonize: error: reload needs a supervised daemon started with --ready, .*started without --supervise\n$/);
    expect((await run(["--supervise", "-p", `${dir}/sup`, "--", "/bin/sleep", "60"])).code).toBe(0);
    track(readPid(`${dir}/sup`));
    const unready = await run(["reload", "-p", `${dir}/sup`]);
    expect(unready.code).toBe(64);
    expect(unready.stderr).toMatch(/started without --ready\n$/);
    // A file: (or tcp:) probe would find what the old run made, and call any new run ready.
    writeFileSync(`${dir}/ready`, "");
    expect((await run(["--supervise", "--ready", `file:${dir}/ready`, "-p", `${dir}/probed`, "--", "/bin/sleep", "60"])).code).toBe(0);
    track(readPid(`${dir}/probed`));
    const probed = await run(["reload", "-p", `${dir}/probed`]);
    expect([probed.code, probed.stderr]).toEqual([
      64,
      "daemonize: error: reload needs --ready notify or fd:N: a tcp: or file: probe would find the old run's port or file and call the new run ready at once\n",
    ]);
  });
});

/** The first answer on a port whose listener may not be there yet. */
async function waitForAnswer(port: number, ms = 10000): Promise<string> {
  const deadline = Date.now() + ms;
  for (;;) {
    try {
      return await get("127.0.0.1", port);
    } catch (e) {
      if (Date.now() > deadline) throw e;
      await Bun.sleep(20);
    }
  }
}

async function waitForStatus(pidfile: string, ok: (s: Status) => boolean, ms = 10000): Promise<Status> {
  const deadline = Date.now() + ms;
  for (;;) {
    const s = await status(pidfile);
    if (ok(s)) return s;
    if (Date.now() > deadline) throw new Error(`status never matched: ${JSON.stringify(s)}`);
    await Bun.sleep(10);
  }
}

// --supervise, judged run by run: every run of the program is as clean a daemon
// as a plain start makes, a supervised start races and fails as a plain one
// does, and the monitor holds its pidfile, reaps orphans as PID 1, and is
// refused cleanly where memory files may not be executed.
import { afterEach, describe, expect, test } from "bun:test";
import { chmodSync, closeSync, constants, copyFileSync, existsSync, mkdirSync, openSync, readdirSync, readFileSync, readlinkSync, writeSync } from "node:fs";
import {
  alive, BIN, cleanup, isRoot, kill, missing, NOBODY, PROBE, procArgv, procFds, procLimit, procStat, procStatus, readPid, run, tempDir, track,
  waitFor,
} from "./helpers";

afterEach(cleanup);

const NONE = "0000000000000000";
const ids = (line: string | undefined) => (line ?? "").split(/\s+/).filter(Boolean).map(Number);
const sorted = (xs: number[]) => [...new Set(xs)].sort((a, b) => a - b);
const nobodyGroups = () => sorted(Bun.spawnSync(["id", "-G", "nobody"]).stdout.toString().trim().split(" ").map(Number));

/** `daemonize status --json`, synchronously, so waitFor can poll it. */
function status(pidfile: string): { code: number; json: Record<string, unknown> } {
  const r = Bun.spawnSync([BIN, "status", "--json", "-p", pidfile], { stdout: "pipe", stderr: "pipe" });
  return { code: r.exitCode, json: JSON.parse(r.stdout.toString()) };
}

/** The probe's report lines in a log, in order. */
function reports(log: string) {
  const text = existsSync(log) ? readFileSync(log, "utf8") : "";
  return [...text.matchAll(/^probe pid=(\d+) root=(\w+) tty=(.*)$/gm)].map((m) => ({ pid: Number(m[1]), root: m[2], tty: m[3] }));
}

/** Live monitors this test started: only ours name its temporary directory in their settings. */
function monitorsIn(dir: string): number[] {
  const out: number[] = [];
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const argv = procArgv(Number(entry));
      if (argv[0] === "daemonize-monitor" && argv.some((a) => a.includes(dir)) && alive(Number(entry))) out.push(Number(entry));
    } catch {}
  }
  return out;
}

/** Live processes running `exe` with `marker` among their arguments. */
function processes(exe: string, marker: string): number[] {
  const out: number[] = [];
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      if (readlinkSync(`/proc/${entry}/exe`) === exe && procArgv(Number(entry)).includes(marker) && alive(Number(entry))) out.push(Number(entry));
    } catch {}
  }
  return out;
}

function ancestors(pid: number): number[] {
  const out: number[] = [];
  for (let p = procStat(pid).ppid; p > 0; p = procStat(p).ppid) out.push(p);
  return out;
}

/** Waits for a run other than `seen` to report and for the monitor to call it running; returns its pid. */
async function nextRun(pidfile: string, log: string, seen: number[]): Promise<number> {
  const pid = await waitFor(() => reports(log).find((r) => !seen.includes(r.pid))?.pid, "a new run's report");
  await waitFor(() => {
    const { json } = status(pidfile);
    return json.state === "running" && json.child === pid;
  }, `status to name run ${pid}`);
  return track(pid);
}

/** Whether fd is a pipe whose ends the monitor holds. */
const relayed = (monitor: number, fd: string | undefined) => /^pipe:\[\d+\]$/.test(fd ?? "") && [...procFds(monitor).values()].includes(fd as string);

/** Everything a run must be, judged from /proc: the same whether it is the first run or a restart. */
function judgeRun(pid: number, monitor: number, want: { cwd: string; root: string; log: string }) {
  const s = procStatus(pid);
  expect(ids(s.Uid)).toEqual(Array(4).fill(NOBODY.uid));
  expect(ids(s.Gid)).toEqual(Array(4).fill(NOBODY.gid));
  expect(sorted(ids(s.Groups))).toEqual(nobodyGroups());
  expect([s.CapPrm, s.CapEff]).toEqual([NONE, NONE]);
  const st = procStat(pid);
  expect(st.ppid).toBe(monitor);
  expect(st.pgrp).toBe(pid);
  expect(st.session).not.toBe(pid);
  expect(st.session).toBe(procStat(monitor).session);
  expect(st.ttyNr).toBe(0);
  const fds = procFds(pid);
  expect([...fds.keys()].sort()).toEqual([0, 1, 2]);
  expect(fds.get(0)).toBe("/dev/null");
  // stdout and stderr are the relay's pipes, which the monitor reads and writes to the log.
  expect(relayed(monitor, fds.get(1))).toBe(true);
  expect(relayed(monitor, fds.get(2))).toBe(true);
  expect(fds.get(1)).not.toBe(fds.get(2));
  expect([...procFds(monitor).values()]).toContain(want.log);
  expect(readlinkSync(`/proc/${pid}/cwd`)).toBe(want.cwd);
  expect(readlinkSync(`/proc/${pid}/root`)).toBe(want.root);
  expect(s.Umask).toBe("0027");
  expect([s.SigIgn, s.SigBlk]).toEqual([NONE, NONE]);
  expect(procLimit(pid, "Max core file size")).toEqual(["0", "0"]);
}

/** The monitor: detached like a daemon, but root and outside any chroot, and small. */
function judgeMonitor(monitor: number) {
  const st = procStat(monitor);
  // Orphaned at once: to init, or to whichever ancestor of ours is a subreaper.
  expect(st.ppid === 1 || ancestors(process.pid).includes(st.ppid)).toBe(true);
  expect(st.session).not.toBe(monitor);
  expect(st.session).not.toBe(procStat(process.pid).session);
  expect(st.ttyNr).toBe(0);
  expect(readlinkSync(`/proc/${monitor}/root`)).toBe("/");
  expect(readlinkSync(`/proc/${monitor}/cwd`)).toBe("/");
  const rssKb = Number(procStatus(monitor).RssAnon?.match(/^(\d+) kB$/)?.[1] ?? Number.NaN);
  expect(rssKb).toBeLessThan(256);
}

describe.skipIf(!isRoot)("supervised runs (as root)", () => {
  const cases = [
    {
      name: "--user nobody",
      setup: (dir: string) => {
        mkdirSync(`${dir}/work`, { mode: 0o755 });
        return { args: ["-C", `${dir}/work`, "--", PROBE], cwd: `${dir}/work`, root: "/", tty: "No such device or address" };
      },
    },
    {
      name: "--chroot DIR --user nobody",
      setup: (dir: string) => {
        const jail = `${dir}/jail`;
        mkdirSync(`${jail}/work`, { recursive: true, mode: 0o755 });
        chmodSync(jail, 0o755);
        copyFileSync(PROBE, `${jail}/probe`);
        chmodSync(`${jail}/probe`, 0o755);
        // The jail has no /dev: the probe's terminal check fails earlier than outside it.
        return { args: ["--chroot", jail, "-C", "/work", "--", "/probe"], cwd: `${jail}/work`, root: jail, tty: "No such file or directory" };
      },
    },
  ];

  for (const c of cases)
    test(`${c.name}: a restarted run gets the same hygiene as the first`, async () => {
      const dir = tempDir();
      const pidfile = `${dir}/s.pid`;
      const log = `${dir}/s.log`;
      const want = c.setup(dir);
      const r = await run(["--supervise", "--restart-delay", "0", "-p", pidfile, "-l", log, "-u", "nobody", "--umask", "027", ...want.args]);
      expect([r.code, r.stderr]).toEqual([0, ""]);
      const monitor = track(readPid(pidfile));
      expect(procArgv(monitor)[0]).toBe("daemonize-monitor");

      const first = await nextRun(pidfile, log, []);
      judgeRun(first, monitor, { ...want, log });
      await kill(first);
      const second = await nextRun(pidfile, log, [first]);
      expect(status(pidfile).json).toMatchObject({ pid: monitor, child: second, state: "running", restarts: 1 });
      judgeRun(second, monitor, { ...want, log });
      judgeMonitor(monitor);
      expect(reports(log)).toEqual([first, second].map((pid) => ({ pid, root: "refused", tty: want.tty })));

      expect((await run(["stop", "-p", pidfile])).code).toBe(0);
      expect(alive(monitor) || alive(second)).toBe(false);
    });

  test("50 racing supervised starts on one pidfile: one monitor, one run, 49 clean refusals", async () => {
    const dir = tempDir();
    const pidfile = `${dir}/race.pid`;
    const log = `${dir}/race.log`;
    const marker = `race-${Math.random()}`;
    const results = await Promise.all(Array.from({ length: 50 }, () => run(["--supervise", "-p", pidfile, "-l", log, "--", PROBE, marker])));
    const winner = track(readPid(pidfile));
    expect(results.map((r) => r.code).sort((a, b) => a - b)).toEqual([0, ...Array(49).fill(1)]);
    for (const r of results) expect(r.stderr).toBe(r.code === 0 ? "" : `daemonize: error: already running (pid ${winner})\n`);
    // A loser that forked its monitor before losing must not leave it, or a run, behind.
    await waitFor(() => processes(BIN, marker).length === 0, "abandoned monitors to exit");
    expect(monitorsIn(dir)).toEqual([winner]);
    const child = await nextRun(pidfile, log, []);
    expect(processes(PROBE, marker)).toEqual([child]);
    expect(procStat(child).ppid).toBe(winner);
    expect(relayed(winner, readlinkSync(`/proc/${child}/fd/1`))).toBe(true);

    expect((await run(["stop", "-p", pidfile])).code).toBe(0);
    expect(monitorsIn(dir)).toEqual([]);
    expect(processes(PROBE, marker)).toEqual([]);
  }, 120_000);

  test.skipIf(missing("a monitor as PID 1", ["unshare", "util-linux"], ["mkfifo", "coreutils"]))(
    "--foreground --supervise as PID 1 of a PID namespace: orphans are reaped while the run lives, runs restart, TERM ends it all",
    async () => {
      const dir = tempDir();
      const log = `${dir}/out`;
      const gate = `${dir}/gate`;
      expect(Bun.spawnSync(["mkfifo", gate]).exitCode).toBe(0);
      // Each run leaves three short-lived orphans, saying their pids, then waits for the test to let it fail.
      const script = `echo run $$; for i in 1 2 3; do (sh -c 'echo orphan $$; exec sleep 0.1' &); done; read x < ${gate}; exit 1`;
      const outer = Bun.spawn(
        ["unshare", "--pid", "--fork", "--mount-proc", BIN, "--foreground", "--supervise", "--restart-delay", "200ms", "--restart-max-delay", "200ms",
          "--max-restarts", "0", "-l", log, "--", "/bin/sh", "-c", script],
        { stdio: ["ignore", "ignore", "pipe"] },
      );
      track(outer.pid);
      const monitor = track(
        await waitFor(() => {
          const pid = Number(readFileSync(`/proc/${outer.pid}/task/${outer.pid}/children`, "utf8").trim());
          return pid > 0 && procArgv(pid)[0] === "daemonize-monitor" && pid;
        }, "the monitor as the namespace's PID 1"),
      );
      expect(procStatus(monitor).NSpid?.split(/\s+/).at(-1)).toBe("1");
      // The namespace's own /proc, as its PID 1 sees it: pids there are the ones the runs print.
      const inside = (nspid: number) => `/proc/${monitor}/root/proc/${nspid}`;
      const rounds = () =>
        readFileSync(log, "utf8")
          .split(/^(?=run )/m)
          .filter((b) => b.startsWith("run "))
          .map((b) => ({ run: Number(b.match(/^run (\d+)/)?.[1]), orphans: [...b.matchAll(/^orphan (\d+)$/gm)].map((m) => Number(m[1])) }));

      for (let round = 0; round < 2; round++) {
        const now = await waitFor(() => rounds()[round]?.orphans.length === 3 && rounds()[round], `run ${round + 1} and its orphans`);
        await waitFor(() => now.orphans.every((o) => !existsSync(inside(o))), `run ${round + 1}'s orphans to be reaped`);
        // Reaped while their run still waits: the monitor collects orphans as they die, not when the run ends.
        expect(readFileSync(`${inside(now.run)}/stat`, "utf8").split(") ")[1]?.[0]).toMatch(/^[RSD]$/);
        const fd = await waitFor(() => openSync(gate, constants.O_WRONLY | constants.O_NONBLOCK), `run ${round + 1} to wait on the gate`);
        writeSync(fd, "go\n");
        closeSync(fd);
      }
      await waitFor(() => rounds().length === 3, "the third run");
      expect(readFileSync(log, "utf8").match(/^daemonize\[1\]: \/bin\/sh exited with code 1; restarting in 200 ms$/gm)).toHaveLength(2);

      process.kill(monitor, "SIGTERM");
      expect(await outer.exited).toBe(0);
      expect(alive(monitor)).toBe(false);
      expect(await new Response(outer.stderr).text()).toBe("");
    },
  );
});

describe.skipIf(!isRoot || missing("memfd_noexec in a PID namespace", ["unshare", "util-linux"]))("vm.memfd_noexec=2", () => {
  const perNamespace = existsSync("/proc/sys/vm/memfd_noexec");
  if (!perNamespace) process.stderr.write("skip: vm.memfd_noexec=2: this kernel has no /proc/sys/vm/memfd_noexec (Linux 6.3 and later have one per PID namespace)\n");
  const REFUSAL = "daemonize: error: --supervise: this system forbids running programs from memory files (vm.memfd_noexec=2), and the monitor is one\n";
  /** Runs `then` under sh as PID 1 of a new PID namespace whose memory files may not be executed. */
  const noexec = (then: string) =>
    Bun.spawn(["unshare", "--pid", "--fork", "--mount-proc", "sh", "-c", `echo 2 > /proc/sys/vm/memfd_noexec && ${then}`], {
      stdin: "pipe",
      stdout: "pipe",
      stderr: "pipe",
    });
  const before = perNamespace ? readFileSync("/proc/sys/vm/memfd_noexec", "utf8") : "";

  test.skipIf(!perNamespace)("--supervise is refused with exit 77 and one line, and leaves nothing", async () => {
    const dir = tempDir();
    const p = noexec(`exec ${BIN} --supervise -p ${dir}/m.pid -l ${dir}/m.log -- ${PROBE} ${dir}`);
    track(p.pid);
    p.stdin.end();
    const [stderr, code] = await Promise.all([new Response(p.stderr).text(), p.exited]);
    expect([code, stderr]).toEqual([77, REFUSAL]);
    expect(readdirSync(dir)).toEqual([]);
    expect(monitorsIn(dir)).toEqual([]);
    expect(processes(PROBE, dir)).toEqual([]);
    // The setting belongs to that namespace only.
    expect(readFileSync("/proc/sys/vm/memfd_noexec", "utf8")).toBe(before);
  });

  test.skipIf(!perNamespace)("a plain start still works there: the native library does not need an executable memory file", async () => {
    const dir = tempDir();
    // PID 1 stays (in cat) until the test has seen the daemon: its exit would end the namespace.
    const p = noexec(`${BIN} -p ${dir}/p.pid -l ${dir}/p.log -- ${PROBE}; echo launcher $?; exec cat`);
    track(p.pid);
    const report = await waitFor(() => reports(`${dir}/p.log`)[0], "the daemon's report");
    expect(readPid(`${dir}/p.pid`)).toBe(report.pid);
    p.stdin.end();
    const [stdout, stderr, code] = await Promise.all([new Response(p.stdout).text(), new Response(p.stderr).text(), p.exited]);
    expect([stdout, stderr, code]).toEqual(["launcher 0\n", "", 0]);
  });

  test.skipIf(!perNamespace)("--check --supervise there fails the monitor check with the start's exit code and line, creating nothing", async () => {
    const dir = tempDir();
    const p = noexec(`exec ${BIN} --check --supervise -p ${dir}/c.pid -l ${dir}/c.log -- ${PROBE}`);
    track(p.pid);
    p.stdin.end();
    const [stdout, stderr, code] = await Promise.all([new Response(p.stdout).text(), new Response(p.stderr).text(), p.exited]);
    expect([code, stderr]).toEqual([77, REFUSAL]);
    expect(stdout).toStartWith(`FAIL  monitor: ${REFUSAL.slice("daemonize: error: ".length)}`);
    expect(readdirSync(dir)).toEqual([]);
  });
});

describe.skipIf(!isRoot)("a first run that fails where only its own child path can see it", () => {
  // Both pass the launcher's checks, made as root; the run, as nobody, is refused.
  const cases = [
    {
      name: "a working directory only root can enter",
      setup: (dir: string) => {
        mkdirSync(`${dir}/private`, { mode: 0o700 });
        return ["-u", "nobody", "-C", `${dir}/private`, "--", PROBE];
      },
    },
    {
      name: "a program in a directory only root can enter",
      setup: (dir: string) => {
        mkdirSync(`${dir}/private`, { mode: 0o700 });
        copyFileSync(PROBE, `${dir}/private/probe`);
        chmodSync(`${dir}/private/probe`, 0o755);
        return ["-u", "nobody", "--", `${dir}/private/probe`];
      },
    },
  ];

  for (const c of cases)
    test(`${c.name}: same exit code and line as a plain start, and nothing left`, async () => {
      const setupDir = tempDir();
      const args = c.setup(setupDir);
      const plainDir = tempDir();
      const plain = await run(["-p", `${plainDir}/p.pid`, "-l", `${plainDir}/p.log`, ...args]);
      expect(plain.code).not.toBe(0);
      expect(plain.stderr).toMatch(/^daemonize: error: .*: Permission denied\n$/);
      expect(readdirSync(plainDir)).toEqual([]);

      const dir = tempDir();
      const supervised = await run(["--supervise", "-p", `${dir}/p.pid`, "-l", `${dir}/p.log`, ...args]);
      for (const pid of monitorsIn(dir)) track(pid);
      await waitFor(() => monitorsIn(dir).length === 0, "the monitor to exit");
      expect({ code: supervised.code, stderr: supervised.stderr, left: readdirSync(dir).sort() }).toEqual({ code: plain.code, stderr: plain.stderr, left: [] });
    });
});

describe.skipIf(!isRoot)("--check --supervise", () => {
  test("without --pidfile: the start's usage error, exit 64", async () => {
    const dir = tempDir();
    const start = await run(["--supervise", "-l", `${dir}/log`, "--", PROBE]);
    const check = await run(["--check", "--supervise", "-l", `${dir}/log`, "--", PROBE]);
    expect(start.code).toBe(64);
    expect(start.stderr).toMatch(/^daemonize: error: .*--pidfile.*\n/);
    expect([check.code, check.stderr]).toEqual([start.code, start.stderr]);
    expect(readdirSync(dir)).toEqual([]);
  });

  test("a start that would work: exit 0, the monitor checked first, nothing created or started", async () => {
    const dir = tempDir();
    const r = await run(["--check", "--supervise", "-p", `${dir}/c.pid`, "-l", `${dir}/c.log`, "-u", "nobody", "--", PROBE, dir]);
    expect([r.code, r.stderr]).toEqual([0, ""]);
    expect(r.stdout.split("\n")[0]).toStartWith("ok    monitor: ");
    expect(r.stdout).toContain("a start would succeed");
    expect(readdirSync(dir)).toEqual([]);
    expect(monitorsIn(dir)).toEqual([]);
    expect(processes(PROBE, dir)).toEqual([]);
  });

  test("a first run that would fail as the user: the plain start's exit code and line", async () => {
    const dir = tempDir();
    mkdirSync(`${dir}/private`, { mode: 0o700 });
    const args = ["-p", `${dir}/c.pid`, "-l", `${dir}/c.log`, "-u", "nobody", "-C", `${dir}/private`, "--", PROBE];
    const plain = await run(args);
    const check = await run(["--check", "--supervise", ...args]);
    expect(plain.code).toBe(77);
    expect([check.code, check.stderr]).toEqual([plain.code, plain.stderr]);
    expect(readdirSync(dir)).toEqual(["private"]);
  });
});

describe.skipIf(!isRoot || missing("the monitor's pidfile lock", ["flock", "util-linux"]))("the monitor's pidfile lock", () => {
  const flockFree = (pidfile: string) => Bun.spawnSync(["flock", "-n", pidfile, "true"]).exitCode;

  /** A supervised probe with its pidfile and log; its monitor and first run. */
  async function supervised() {
    const dir = tempDir();
    const pidfile = `${dir}/l.pid`;
    const log = `${dir}/l.log`;
    expect((await run(["--supervise", "-p", pidfile, "-l", log, "--", PROBE])).code).toBe(0);
    const monitor = track(readPid(pidfile));
    return { pidfile, log, monitor, child: await nextRun(pidfile, log, []) };
  }

  test("held for the monitor's life; stop removes the pidfile", async () => {
    const { pidfile, monitor, child } = await supervised();
    expect(flockFree(pidfile)).toBe(1);
    expect((await run(["stop", "-p", pidfile])).code).toBe(0);
    expect(existsSync(pidfile)).toBe(false);
    expect(alive(monitor) || alive(child)).toBe(false);
  });

  test("a monitor killed with SIGKILL takes its run along; its pidfile is dead and a new start takes it over", async () => {
    const { pidfile, log, monitor, child } = await supervised();
    await kill(monitor);
    await waitFor(() => !alive(child), "the run to die with its monitor");
    expect(readPid(pidfile)).toBe(monitor);
    const dead = status(pidfile);
    expect([dead.code, dead.json.state]).toEqual([1, "dead"]);
    expect(flockFree(pidfile)).toBe(0);

    const again = await run(["--supervise", "-p", pidfile, "-l", log, "--", PROBE]);
    expect([again.code, again.stderr]).toEqual([0, ""]);
    const next = track(readPid(pidfile));
    expect(next).not.toBe(monitor);
    const nextChild = await nextRun(pidfile, log, [child]);
    expect(status(pidfile).json).toMatchObject({ running: true, pid: next, child: nextChild });
    expect((await run(["stop", "-p", pidfile])).code).toBe(0);
  });
});

// status, stop, restart and signal: every state, the LSB exit codes, and never
// the wrong process.
import { afterEach, describe, expect, test } from "bun:test";
import { chmodSync, existsSync, mkdirSync, readdirSync, readFileSync, symlinkSync, writeFileSync } from "node:fs";
import { alive, BIN, bystander, cleanup, isRoot, kill, missing, PROBE, procArgv, readPid, reusePid, ROOT, run, startProbe, tempDir, track, waitFor } from "./helpers";

afterEach(cleanup);

// The caller, who need not be root; by `id`, as Bun's os.userInfo() has no name without USER.
const me = Bun.spawnSync(["id", "-un"]).stdout.toString().trim();
// By path: /usr/sbin is not on an ordinary user's PATH.
const SSD = "/usr/sbin/start-stop-daemon";
const ssdStatus = (pidfile: string, exe?: string) =>
  Bun.spawnSync([SSD, "--status", "--pidfile", pidfile, ...(exe ? ["--exec", exe] : [])]).exitCode;

describe("status", () => {
  test("not running: no pidfile is 3", async () => {
    const dir = tempDir();
    const r = await run(["status", "-p", `${dir}/none.pid`]);
    expect([r.code, r.stdout]).toEqual([3, "not running\n"]);
  });

  test("running is 0, with pid, uptime and user; --json has the details", async () => {
    const dir = tempDir();
    const { pid, pidfile } = await startProbe(dir, [], ["one", "two"]);
    const r = await run(["status", "-p", pidfile]);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(new RegExp(`^running \\(pid ${pid}, up \\d+s, user ${me}\\)\\n$`));
    const j = await run(["status", "--json", "-p", pidfile]);
    expect(j.code).toBe(0);
    const o = JSON.parse(j.stdout);
    expect(o).toMatchObject({ running: true, state: "running", pid, pidfile, user: me, commandLine: [PROBE, "one", "two"] });
    expect(Math.abs(Date.parse(o.startedAt) - Date.now())).toBeLessThan(10_000);
    expect(o.uptimeSeconds).toBeGreaterThanOrEqual(0);
  });

  test("dead but the pidfile remains is 1", async () => {
    const dir = tempDir();
    const { pid, pidfile } = await startProbe(dir);
    await kill(pid);
    const r = await run(["status", "-p", pidfile]);
    expect([r.code, r.stdout]).toEqual([1, `not running, but pidfile ${pidfile} names pid ${pid}\n`]);
    const j = JSON.parse((await run(["status", "--json", "-p", pidfile])).stdout);
    expect(j).toMatchObject({ running: false, state: "dead", pid });
  });

  for (const [what, text] of [["empty", ""], ["not a number", "abc\n"], ["pid 1", "1\n"], ["negative", "-5\n"], ["huge", "99999999999\n"], ["two lines", "12\n13\n"]]) {
    test(`a pidfile holding ${what} is 4, and stop and signal refuse it`, async () => {
      const dir = tempDir();
      const pidfile = `${dir}/bad.pid`;
      writeFileSync(pidfile, text as string);
      const r = await run(["status", "-p", pidfile]);
      expect(r.code).toBe(4);
      expect(r.stdout).toStartWith(`unknown: pidfile ${pidfile} does not hold a pid`);
      expect((await run(["stop", "-p", pidfile])).code).toBe(1);
      expect((await run(["signal", "-p", pidfile, "HUP"])).code).toBe(1);
    });
  }

  test("a pidfile naming a kernel thread is a dead daemon's: status 1, signal refused, stop sends nothing, a start replaces it", async () => {
    // kthreadd is pid 2; any child of it is a kernel thread too.
    const other = readdirSync("/proc").find((e) => /^\d+$/.test(e) && e !== "2" && readFileSync(`/proc/${e}/stat`, "utf8").split(") ")[1]?.split(" ")[1] === "2");
    for (const pid of [2, Number(other)]) {
      const dir = tempDir();
      const pidfile = `${dir}/k.pid`;
      writeFileSync(pidfile, `${pid}\n`);
      const status = await run(["status", "-p", pidfile]);
      expect([status.code, status.stdout]).toEqual([1, `not running, but pidfile ${pidfile} names pid ${pid}\n`]);
      expect((await run(["signal", "-p", pidfile, "HUP"])).code).toBe(1);
      const stop = await run(["stop", "-v", "-p", pidfile]);
      expect([stop.code, stop.stderr]).toEqual([0, "daemonize: not running\n"]);
      const started = await run(["-p", pidfile, "--", PROBE]);
      expect([started.code, started.stderr]).toEqual([0, ""]);
      expect(track(readPid(pidfile))).not.toBe(pid);
    }
  });

  test.skipIf(!isRoot || missing("read-only pidfile directory", ["mount", "mount"]))("a stop that cannot remove the pidfile says so, and still exits 0", async () => {
    const dir = tempDir();
    mkdirSync(`${dir}/run`);
    const { pid } = await startProbe(`${dir}/run`);
    // A read-only bind mount of the pidfile's directory: even root cannot unlink there.
    const ro = Bun.spawnSync(["sh", "-c", 'mount --bind "$1" "$1" && mount -o remount,bind,ro "$1"', "sh", `${dir}/run`], { stderr: "pipe" });
    expect(ro.stderr.toString()).toBe("");
    try {
      const r = await run(["stop", "-p", `${dir}/run/probe.pid`]);
      expect(r.code).toBe(0);
      expect(r.stderr).toMatch(new RegExp(`^daemonize: warning: stopped pid ${pid}, but could not remove its pidfile: [^\\n]*Read-only file system\\n$`));
      expect(alive(pid)).toBe(false);
      expect(existsSync(`${dir}/run/probe.pid`)).toBe(true);
    } finally {
      Bun.spawnSync(["umount", `${dir}/run`]);
    }
  });

  test("a symlinked pidfile is 4", async () => {
    const dir = tempDir();
    symlinkSync("/etc/hostname", `${dir}/p.pid`);
    const r = await run(["status", "-p", `${dir}/p.pid`]);
    expect([r.code, r.stdout]).toEqual([4, `unknown: pidfile ${dir}/p.pid is a symbolic link; refusing to follow it\n`]);
  });
});

describe("status of several pidfiles", () => {
  /** A pidfile in each state: a running daemon, a dead one, none at all, and one that holds no pid. */
  async function fleet() {
    const running = await startProbe(tempDir());
    const dead = await startProbe(tempDir());
    await kill(dead.pid);
    const dir = tempDir();
    const garbage = `${dir}/garbage.pid`;
    writeFileSync(garbage, "abc\n");
    return { running, dead, absent: `${dir}/none.pid`, garbage };
  }

  /** Alternates --pidfile and plain arguments. */
  const mixed = (pidfiles: string[]) => pidfiles.flatMap((p, i) => (i % 2 ? [p] : ["-p", p]));

  test("one line each, prefixed with its pidfile, in the order given", async () => {
    const { running, dead, absent, garbage } = await fleet();
    const r = await run(["status", dead.pidfile, "-p", running.pidfile, garbage, "--pidfile", absent]);
    expect([r.code, r.stderr]).toEqual([4, ""]);
    expect(r.stdout.replace(/, up \d+s,/, ", up Ns,")).toBe(
      [
        `${dead.pidfile}: not running, but pidfile ${dead.pidfile} names pid ${dead.pid}`,
        `${running.pidfile}: running (pid ${running.pid}, up Ns, user ${me})`,
        `${garbage}: unknown: pidfile ${garbage} does not hold a pid ("abc\\n"); remove it if it is stale`,
        `${absent}: not running`,
        "",
      ].join("\n"),
    );
  });

  test("--json prints one array of the objects a single pidfile gets", async () => {
    const { running, dead, absent, garbage } = await fleet();
    const pidfiles = [running.pidfile, dead.pidfile, absent, garbage];
    const r = await run(["status", "--json", ...mixed(pidfiles)]);
    expect([r.code, r.stderr]).toEqual([4, ""]);
    const all = JSON.parse(r.stdout);
    expect(all).toMatchObject([
      { running: true, state: "running", pidfile: running.pidfile, pid: running.pid, user: me, commandLine: [PROBE] },
      { running: false, state: "dead", pidfile: dead.pidfile, pid: dead.pid },
      { running: false, state: "stopped", pidfile: absent },
      { running: false, state: "unknown", pidfile: garbage },
    ]);
    const singles = await Promise.all(pidfiles.map(async (p) => JSON.parse((await run(["status", "--json", "-p", p])).stdout)));
    expect(all.map(Object.keys)).toEqual(singles.map(Object.keys));
  });

  test("the set's exit code: 0 when every daemon runs, otherwise the most severe, 4 before 1 before 3", async () => {
    const { running, dead, absent, garbage } = await fleet();
    const other = await startProbe(tempDir());
    const cases: [string[], number][] = [
      [[running.pidfile, other.pidfile], 0],
      [[running.pidfile, absent], 3],
      [[absent, absent], 3],
      [[absent, dead.pidfile, running.pidfile], 1],
      [[dead.pidfile, other.pidfile], 1],
      [[running.pidfile, absent, dead.pidfile, garbage], 4],
      [[garbage, running.pidfile], 4],
    ];
    for (const [pidfiles, code] of cases) {
      for (const json of [[], ["--json"]]) expect([pidfiles, (await run(["status", ...json, ...mixed(pidfiles)])).code]).toEqual([pidfiles, code]);
    }
  });

  test("a directory others could write refuses each of its pidfiles, and only those", async () => {
    const { running } = await fleet();
    const open = `${tempDir()}/open`;
    mkdirSync(open);
    chmodSync(open, 0o777);
    for (const name of ["a.pid", "b.pid"]) writeFileSync(`${open}/${name}`, `${running.pid}\n`);
    const r = await run(["status", `${open}/a.pid`, running.pidfile, `${open}/b.pid`]);
    const refusal = `unknown: pidfile directory ${open} is writable by group or others; refusing to use it (--unsafe allows it)`;
    expect(r.code).toBe(4);
    expect(r.stdout.split("\n").filter((line) => line.includes(refusal))).toEqual([`${open}/a.pid: ${refusal}`, `${open}/b.pid: ${refusal}`]);
    expect(r.stdout).toContain(`${running.pidfile}: running (pid ${running.pid},`);
    expect((await run(["status", "--unsafe", `${open}/a.pid`, `${open}/b.pid`])).code).toBe(0);
  });

  test("one pidfile, given either way, answers as before; none at all is a usage error", async () => {
    const { dead } = await fleet();
    const text = `not running, but pidfile ${dead.pidfile} names pid ${dead.pid}\n`;
    for (const args of [["-p", dead.pidfile], [dead.pidfile]]) {
      expect(await run(["status", ...args])).toMatchObject({ code: 1, stdout: text });
      const j = await run(["status", "--json", ...args]);
      expect([j.code, JSON.parse(j.stdout)]).toEqual([1, { running: false, state: "dead", pidfile: dead.pidfile, pid: dead.pid }]);
    }
    expect(await run(["status", "--json"])).toMatchObject({ code: 64, stdout: "", stderr: "daemonize: error: status needs --pidfile FILE or PIDFILE arguments\n" });
  });
});

describe("never the wrong process", () => {
  test("a pidfile edited to name an unrelated, older process: not running, not stopped, not signalled", async () => {
    const other = await bystander();
    const dir = tempDir();
    const { pid, pidfile } = await startProbe(dir);
    await kill(pid);
    writeFileSync(pidfile, `${other}\n`);
    expect((await run(["status", "-p", pidfile])).code).toBe(1);
    expect((await run(["stop", "-p", pidfile])).code).toBe(0);
    expect((await run(["signal", "-p", pidfile, "TERM"])).code).toBe(1);
    expect(alive(other)).toBe(true);
  });

  test.skipIf(!isRoot)("a pid reused by an unrelated process is left alone", async () => {
    const dir = tempDir();
    const { pid, pidfile } = await startProbe(dir);
    expect(await reusePid(pid)).toBe(pid);
    expect((await run(["status", "-p", pidfile])).code).toBe(1);
    expect((await run(["stop", "-p", pidfile, "--timeout", "0.2"])).code).toBe(0);
    expect((await run(["signal", "-p", pidfile, "KILL"])).code).toBe(1);
    expect(alive(pid)).toBe(true);
    expect(existsSync(pidfile)).toBe(true);
  });

  test.skipIf(!isRoot)("as root, a pidfile another user could have written is refused unless --unsafe", async () => {
    const other = await bystander();
    const dir = tempDir();
    const pidfile = `${dir}/theirs.pid`;
    writeFileSync(pidfile, `${other}\n`);
    Bun.spawnSync(["chown", "65534", pidfile]);
    const refusal = `pidfile ${pidfile} is owned by uid 65534; refusing to trust it (--unsafe allows it)`;
    expect(await run(["status", "-p", pidfile])).toMatchObject({ code: 4, stdout: `unknown: ${refusal}\n` });
    expect(await run(["stop", "-p", pidfile])).toMatchObject({ code: 1, stderr: `daemonize: error: ${refusal}\n` });
    expect((await run(["signal", "-p", pidfile, "KILL"])).code).toBe(1);
    expect(alive(other)).toBe(true);
    // The same file in a world-writable directory without the sticky bit.
    mkdirSync(`${dir}/open`);
    chmodSync(`${dir}/open`, 0o777);
    writeFileSync(`${dir}/open/p.pid`, `${other}\n`);
    const open = await run(["stop", "-p", `${dir}/open/p.pid`]);
    expect(open).toMatchObject({ code: 1, stderr: `daemonize: error: pidfile directory ${dir}/open is writable by group or others; refusing to use it (--unsafe allows it)\n` });
    // --unsafe trusts the file: it was written after the process started, so the process is taken for its daemon.
    expect((await run(["stop", "--unsafe", "-p", pidfile])).code).toBe(0);
    expect(alive(other)).toBe(false);
  });
});

describe("stop", () => {
  test("stops the daemon, waits until it is gone, and removes the pidfile", async () => {
    const dir = tempDir();
    const { pid, pidfile } = await startProbe(dir);
    const r = await run(["stop", "-v", "-p", pidfile]);
    expect([r.code, r.stderr]).toEqual([0, `daemonize: stopped (pid ${pid})\n`]);
    expect(alive(pid)).toBe(false);
    expect(existsSync(pidfile)).toBe(false);
  });

  test("stopping a stopped service is success (LSB)", async () => {
    const dir = tempDir();
    expect((await run(["stop", "-p", `${dir}/none.pid`])).code).toBe(0);
  });

  test("a daemon that ignores TERM: --timeout runs out (2), --retry TERM/…/KILL/… ends it (0)", async () => {
    const dir = tempDir();
    const { pid, pidfile } = await startProbe(dir, [], [], { PATH: "/usr/bin:/bin", PROBE_IGNORE_TERM: "1" });
    const t0 = Date.now();
    const timeout = await run(["stop", "-p", pidfile, "--timeout", "0.3"]);
    expect([timeout.code, timeout.stderr]).toEqual([2, `daemonize: error: pid ${pid} is still running after the schedule\n`]);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(300);
    expect(alive(pid)).toBe(true);
    expect(existsSync(pidfile)).toBe(true);
    const retry = await run(["stop", "-p", pidfile, "--retry", "TERM/0.2/KILL/5"]);
    expect(retry.code).toBe(0);
    expect(alive(pid)).toBe(false);
    expect(existsSync(pidfile)).toBe(false);
  });

  test("a plain --retry N means TERM/N/KILL/N, and --signal picks the first signal", async () => {
    const dir = tempDir();
    const a = await startProbe(dir, [], [], { PATH: "/usr/bin:/bin", PROBE_IGNORE_TERM: "1" });
    expect((await run(["stop", "-p", a.pidfile, "--retry", "1"])).code).toBe(0);
    expect(alive(a.pid)).toBe(false);
    const dir2 = tempDir();
    const b = await startProbe(dir2, [], [], { PATH: "/usr/bin:/bin", PROBE_IGNORE_TERM: "1" });
    expect((await run(["stop", "-p", b.pidfile, "--signal", "KILL", "--timeout", "5"])).code).toBe(0);
    expect(alive(b.pid)).toBe(false);
  });

  for (const [args, message] of [
    [["--retry", "TERM/x"], 'unknown signal "x"'],
    [["--retry", "-TERM/-1"], '--retry "-TERM/-1" never waits'],
    [["--retry", "TERM/KILL"], '--retry "TERM/KILL" never waits'],
    [["--retry", "5", "--signal", "INT"], "--retry replaces --signal and --timeout: give one or the other"],
    [["--timeout", "soon"], '--timeout "soon" is not a number of seconds'],
    [["--signal", "NOPE"], 'unknown signal "NOPE"'],
  ] as const) {
    test(`usage error: ${args.join(" ")}`, async () => {
      const dir = tempDir();
      const r = await run(["stop", "-p", `${dir}/p.pid`, ...args]);
      expect([r.code, r.stderr]).toEqual([64, `daemonize: error: ${message}\n`]);
    });
  }
});

describe("signal", () => {
  test("by name, SIG name, lower case or number; the daemon gets each", async () => {
    const dir = tempDir();
    const { pidfile, log } = await startProbe(dir);
    for (const sig of ["HUP", "SIGUSR1", "usr2", "1"]) expect((await run(["signal", "-p", pidfile, sig])).code).toBe(0);
    await waitFor(() => readFileSync(log, "utf8").split("signal ").length === 5, "four signals");
    expect(readFileSync(log, "utf8").match(/signal \d+/g)).toEqual(["signal 01", "signal 10", "signal 12", "signal 01"]);
  });

  test("an unknown signal is a usage error; not running is 1", async () => {
    const dir = tempDir();
    const { pidfile } = await startProbe(dir);
    expect(await run(["signal", "-p", pidfile, "BOGUS"])).toMatchObject({ code: 64, stderr: 'daemonize: error: unknown signal "BOGUS"\n' });
    expect(await run(["signal", "-p", `${dir}/none.pid`, "HUP"])).toMatchObject({ code: 1, stderr: "daemonize: error: not running\n" });
  });
});

describe("restart", () => {
  test("stops the running daemon and starts a new one; starts when none runs", async () => {
    const dir = tempDir();
    const { pid, pidfile } = await startProbe(dir);
    const r = await run(["restart", "-p", pidfile, "--", PROBE, "again"]);
    expect([r.code, r.stderr]).toEqual([0, ""]);
    const next = track(readPid(pidfile));
    expect(next).not.toBe(pid);
    expect(alive(pid)).toBe(false);
    expect(procArgv(next)).toEqual([PROBE, "again"]);
    await kill(next);
    expect((await run(["restart", "-p", pidfile, "--", PROBE])).code).toBe(0);
    track(readPid(pidfile));
  });

  test("restart needs a pidfile", async () => {
    expect(await run(["restart", "--", PROBE])).toMatchObject({ code: 64, stderr: "daemonize: error: restart needs --pidfile\n" });
  });
});

describe("the tools init scripts already use", () => {
  test.skipIf(missing("start-stop-daemon comparison", [SSD, "dpkg"]))("start-stop-daemon --status agrees with daemonize status in every state", async () => {
    const dir = tempDir();
    const pidfile = `${dir}/probe.pid`;
    const both = async () => [(await run(["status", "-p", pidfile])).code, ssdStatus(pidfile, PROBE)];
    expect(await both()).toEqual([3, 3]);
    const { pid } = await startProbe(dir);
    expect(await both()).toEqual([0, 0]);
    await kill(pid);
    expect(await both()).toEqual([1, 1]);
    const other = await bystander();
    writeFileSync(pidfile, `${other}\n`);
    expect(await both()).toEqual([1, 1]);
    for (const garbage of ["", "abc\n"]) {
      writeFileSync(pidfile, garbage);
      expect(await both()).toEqual([4, 4]);
    }
  });

  test.skipIf(missing("LSB init-functions", ["/lib/lsb/init-functions", "sysvinit-utils"]))("LSB init-functions: pidofproc and killproc work on our pidfiles", async () => {
    const dir = tempDir();
    const { pid, pidfile } = await startProbe(dir);
    const lsb = (cmd: string) => Bun.spawnSync(["bash", "-c", `. /lib/lsb/init-functions; ${cmd}`], { stdout: "pipe" });
    const found = lsb(`pidofproc -p ${pidfile} ${PROBE}`);
    expect([found.exitCode, found.stdout.toString()]).toEqual([0, `${pid}\n`]);
    expect(lsb(`killproc -p ${pidfile} ${PROBE}`).exitCode).toBe(0);
    await waitFor(() => !alive(pid), "killproc to end the daemon");
    expect(lsb(`pidofproc -p ${pidfile} ${PROBE}`).exitCode).not.toBe(0);
  });
});

describe.skipIf(!isRoot || missing("examples/init.d", ["/usr/bin/python3", "python3"]))("examples/init.d", () => {
  test("the LSB init script goes through every action with the LSB exit codes", async () => {
    const dir = tempDir();
    const port = 20000 + Math.floor(Math.random() * 20000);
    const script = `${ROOT}examples/init.d/daemonize-example`;
    const env = { PATH: "/usr/bin:/bin", DAEMONIZE: BIN, PIDFILE: `${dir}/ex.pid`, LOGFILE: `${dir}/ex.log`, PORT: String(port) };
    const action = async (name: string) => {
      const p = Bun.spawn(["sh", script, name], { env, stdout: "pipe", stderr: "pipe" });
      const code = await p.exited;
      if (existsSync(env.PIDFILE)) track(readPid(env.PIDFILE));
      return code;
    };
    const serving = () => fetch(`http://127.0.0.1:${port}/`).then((r) => r.ok, () => false);
    const up = async () => {
      const deadline = Date.now() + 10_000;
      while (!(await serving())) {
        if (Date.now() > deadline) throw new Error("the server did not come up");
        await Bun.sleep(20);
      }
    };

    expect(await action("status")).toBe(3);
    expect(await action("stop")).toBe(0);
    expect(await action("start")).toBe(0);
    await up();
    const first = readPid(env.PIDFILE);
    expect(await action("status")).toBe(0);
    expect(await action("start")).toBe(0);
    expect(readPid(env.PIDFILE)).toBe(first);
    expect(await action("restart")).toBe(0);
    await up();
    const second = readPid(env.PIDFILE);
    expect(second).not.toBe(first);
    expect(alive(first)).toBe(false);
    expect(await action("force-reload")).toBe(0);
    await up();
    expect(await action("reload")).toBe(3);
    expect(await action("bogus")).toBe(2);
    expect(await action("stop")).toBe(0);
    expect(await action("status")).toBe(3);
    expect(await action("stop")).toBe(0);
    expect(await serving()).toBe(false);
  });
});

// What a started daemon looks like from the outside: detached, clean fds and
// signals, the asked-for cwd/umask/limits, argv and environment exactly as given.
import { afterEach, describe, expect, test } from "bun:test";
import { chmodSync, copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, readlinkSync, statSync, writeFileSync } from "node:fs";
import { BIN, cleanup, isRoot, missing, PROBE, procArgv, procEnv, procFds, procLimit, procStat, procStatus, readPid, run, startProbe, tempDir, track, waitFor } from "./helpers";

afterEach(cleanup);

describe("detaching", () => {
  test.skipIf(missing("detaching from a terminal", ["script", "bsdutils"]))("double fork: own session, not its leader, no terminal, not the caller's child", async () => {
    const dir = tempDir();
    // `script` gives the launcher a controlling terminal, which the daemon must not keep.
    const launcher = Bun.spawn(["script", "-qec", `${BIN} -p ${dir}/p.pid -l ${dir}/log -- ${PROBE}`, "/dev/null"], {
      stdin: "pipe",
      stdout: "pipe",
    });
    expect(await launcher.exited).toBe(0);
    const pid = track(readPid(`${dir}/p.pid`));
    const log = await waitFor(() => readFileSync(`${dir}/log`, "utf8").match(/tty=(.*)/), "report");
    const st = procStat(pid);
    expect(st.session).not.toBe(pid);
    expect(st.pgrp).not.toBe(pid);
    expect(st.session).not.toBe(procStat(process.pid).session);
    expect(st.ttyNr).toBe(0);
    expect(log[1]).toBe("No such device or address");
    expect(st.ppid).not.toBe(launcher.pid);
    expect(st.ppid).not.toBe(process.pid);
    expect(st.ppid).not.toBe(st.session);
  });

  test("the launcher returns at once and the daemon keeps running", async () => {
    const dir = tempDir();
    const { pid } = await startProbe(dir);
    expect(procStat(pid).state).toMatch(/[SR]/);
  });
});

describe.skipIf(!isRoot || missing("as an ordinary user", ["setpriv", "util-linux"]))("as an ordinary user", () => {
  test("a non-root caller starts and recognises its own daemon", async () => {
    const dir = tempDir();
    Bun.spawnSync(["chown", "65534:65534", dir]);
    const asNobody = ["setpriv", "--reuid", "65534", "--regid", "65534", "--clear-groups", "--", BIN, "-p", `${dir}/p.pid`, "--", PROBE];
    expect(Bun.spawnSync(asNobody).exitCode).toBe(0);
    const pid = track(readPid(`${dir}/p.pid`));
    expect(procStatus(pid).Uid?.split(/\s+/)).toEqual(["65534", "65534", "65534", "65534"]);
    const again = Bun.spawnSync(asNobody, { stderr: "pipe" });
    expect([again.exitCode, again.stderr.toString()]).toEqual([1, `daemonize: error: already running (pid ${pid})\n`]);
  });
});

describe("file descriptors", () => {
  const leak = (dir: string, extra: string) =>
    Bun.spawn(["bash", "-c", `exec 7</etc/hostname 9>${dir}/leaked; exec ${BIN} -p ${dir}/p.pid ${extra} -- ${PROBE}`]).exited;

  test("every fd >= 3 the caller leaked is closed; stdin is /dev/null read-only", async () => {
    const dir = tempDir();
    expect(await leak(dir, "")).toBe(0);
    const pid = track(readPid(`${dir}/p.pid`));
    const fds = procFds(pid);
    expect([...fds.keys()].sort()).toEqual([0, 1, 2]);
    expect(fds.get(0)).toBe("/dev/null");
    expect(fds.get(1)).toBe("/dev/null");
    expect(fds.get(2)).toBe("/dev/null");
    const flags = readFileSync(`/proc/${pid}/fdinfo/0`, "utf8").match(/flags:\s+(\d+)/)?.[1] ?? "";
    expect(Number.parseInt(flags, 8) & 3).toBe(0);
  });

  test("--keep-fd keeps exactly the named inherited fds", async () => {
    const dir = tempDir();
    expect(await leak(dir, "--keep-fd 7")).toBe(0);
    const pid = track(readPid(`${dir}/p.pid`));
    const fds = procFds(pid);
    expect([...fds.keys()].sort()).toEqual([0, 1, 2, 7]);
    expect(fds.get(7)).toBe("/etc/hostname");
  });
});

describe("signals", () => {
  test.skipIf(missing("ignored and blocked signals", ["python3", "python3"]))("no signal blocked or ignored, even when the caller ignored and blocked some", async () => {
    const dir = tempDir();
    // The caller ignores HUP and INT and blocks USR2; Bun itself ignores PIPE and XFSZ.
    const py = `import os, signal
signal.signal(signal.SIGHUP, signal.SIG_IGN)
signal.signal(signal.SIGINT, signal.SIG_IGN)
signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGUSR2})
os.execv("${BIN}", ["daemonize", "-p", "${dir}/p.pid", "--", "${PROBE}"])`;
    expect(await Bun.spawn(["python3", "-c", py]).exited).toBe(0);
    const pid = track(readPid(`${dir}/p.pid`));
    const s = procStatus(pid);
    expect(s.SigBlk).toBe("0000000000000000");
    expect(s.SigIgn).toBe("0000000000000000");
  });
});

describe("cwd, root, umask, core limit", () => {
  test("defaults: cwd /, root /, umask 022, RLIMIT_CORE 0", async () => {
    const dir = tempDir();
    const { pid } = await startProbe(dir);
    expect(readlinkSync(`/proc/${pid}/cwd`)).toBe("/");
    expect(readlinkSync(`/proc/${pid}/root`)).toBe("/");
    expect(procStatus(pid).Umask).toBe("0022");
    expect(procLimit(pid, "Max core file size")).toEqual(["0", "0"]);
  });

  test("--chdir, --umask and --core as asked", async () => {
    const dir = tempDir();
    const { pid } = await startProbe(dir, ["--chdir", dir, "--umask", "0077", "--core"]);
    expect(readlinkSync(`/proc/${pid}/cwd`)).toBe(dir);
    expect(procStatus(pid).Umask).toBe("0077");
    const [soft, hard] = procLimit(pid, "Max core file size");
    expect(soft).toBe(hard);
    expect(soft).not.toBe("0");
  });

  test("a relative --chdir is taken against the caller's directory", async () => {
    const dir = tempDir();
    mkdirSync(`${dir}/sub`);
    const r = await run(["-p", "p.pid", "-C", "sub", "--", PROBE], { cwd: dir });
    expect(r.code).toBe(0);
    const pid = track(readPid(`${dir}/p.pid`));
    expect(readlinkSync(`/proc/${pid}/cwd`)).toBe(`${dir}/sub`);
  });
});

describe("argv", () => {
  test("reaches the program byte for byte, --help and -- included", async () => {
    const dir = tempDir();
    const args = ["a b", "", "-x", "--help", "--", "-h", "'single'", '"double"', "ünïcödé ✓", "$HOME", "*", "\\n", " "];
    const { pid } = await startProbe(dir, [], args);
    expect(procArgv(pid)).toEqual([PROBE, ...args]);
  });

  test("argv[0] is the program as given, found relative to the caller's directory", async () => {
    const dir = tempDir();
    copyFileSync(PROBE, `${dir}/probe`);
    chmodSync(`${dir}/probe`, 0o755);
    const r = await run(["-p", "p.pid", "--", "./probe", "x"], { cwd: dir });
    expect(r.code).toBe(0);
    const pid = track(readPid(`${dir}/p.pid`));
    expect(procArgv(pid)).toEqual(["./probe", "x"]);
    expect(readlinkSync(`/proc/${pid}/exe`)).toBe(`${dir}/probe`);
  });

  test("a bare name is looked up in the daemon's PATH", async () => {
    const dir = tempDir();
    copyFileSync(PROBE, `${dir}/probe-on-path`);
    chmodSync(`${dir}/probe-on-path`, 0o755);
    const r = await run(["-p", `${dir}/p.pid`, "-E", `PATH=/nonexistent:${dir}`, "--", "probe-on-path"]);
    expect(r.code).toBe(0);
    const pid = track(readPid(`${dir}/p.pid`));
    expect(procArgv(pid)).toEqual(["probe-on-path"]);
    expect(readlinkSync(`/proc/${pid}/exe`)).toBe(`${dir}/probe-on-path`);
  });

  test("without --, a program is fine when no option follows it", async () => {
    const dir = tempDir();
    const r = await run(["-p", `${dir}/p.pid`, PROBE, "one", "two"]);
    expect(r.code).toBe(0);
    const pid = track(readPid(`${dir}/p.pid`));
    expect(procArgv(pid)).toEqual([PROBE, "one", "two"]);
  });

  test("the explicit start command works the same", async () => {
    const dir = tempDir();
    const r = await run(["start", "-p", `${dir}/p.pid`, "--", PROBE, "start"]);
    expect(r.code).toBe(0);
    expect(procArgv(track(readPid(`${dir}/p.pid`)))).toEqual([PROBE, "start"]);
  });

  test("a huge argv (10,000 arguments) arrives intact", async () => {
    const dir = tempDir();
    const args = Array.from({ length: 10000 }, (_, i) => `arg-${i}-${"x".repeat(i % 50)}`);
    const { pid } = await startProbe(dir, [], args);
    expect(procArgv(pid)).toEqual([PROBE, ...args]);
  });
});

describe("environment", () => {
  test("inherited by default, with --env and --env-file on top (--env wins)", async () => {
    const dir = tempDir();
    writeFileSync(`${dir}/env`, '# comment\n\nFROM_FILE=file\nQUOTED="a b"\nexport EXPORTED=yes\nBOTH=file\n');
    const { pid } = await startProbe(dir, ["--env-file", `${dir}/env`, "-E", "BOTH=flag", "-E", "EMPTY=", "--env=EQ=a=b"], [], {
      PATH: "/usr/bin:/bin",
      INHERITED: "1",
    });
    const env = procEnv(pid);
    expect(env.get("INHERITED")).toBe("1");
    expect(env.get("FROM_FILE")).toBe("file");
    expect(env.get("QUOTED")).toBe("a b");
    expect(env.get("EXPORTED")).toBe("yes");
    expect(env.get("BOTH")).toBe("flag");
    expect(env.get("EMPTY")).toBe("");
    expect(env.get("EQ")).toBe("a=b");
  });

  test("a large environment arrives whole and in order; odd names are just names", async () => {
    const dir = tempDir();
    const given: [string, string][] = [["PATH", "/usr/bin:/bin"], ["__proto__", "p"], ["constructor", "c"], ["hasOwnProperty", "h"]];
    for (let i = 0; i < 300; i++) given.push([`VAR_${i}`, `value ${i} ${"é".repeat(i % 7)}`]);
    const { pid } = await startProbe(dir, [], [], Object.fromEntries(given));
    expect([...procEnv(pid)]).toEqual(given);
  });

  test("--clear-env leaves only what is given", async () => {
    const dir = tempDir();
    const { pid } = await startProbe(dir, ["--clear-env", "-E", "ONLY=1"], [], { PATH: "/usr/bin:/bin", INHERITED: "1" });
    expect([...procEnv(pid)]).toEqual([["ONLY", "1"]]);
  });
});

describe("logs", () => {
  test("--stdout and --stderr append; --truncate starts empty", async () => {
    const dir = tempDir();
    writeFileSync(`${dir}/out`, "old\n");
    let r = await run(["-p", `${dir}/p.pid`, "-o", `${dir}/out`, "-e", `${dir}/err`, "--", PROBE]);
    expect(r.code).toBe(0);
    const first = track(readPid(`${dir}/p.pid`));
    await waitFor(() => readFileSync(`${dir}/out`, "utf8").includes("probe pid"), "report");
    expect(readFileSync(`${dir}/out`, "utf8")).toStartWith("old\nprobe pid=");
    const fds = procFds(first);
    expect(fds.get(1)).toBe(`${dir}/out`);
    expect(fds.get(2)).toBe(`${dir}/err`);
    r = await run(["-p", `${dir}/q.pid`, "--truncate", "-o", `${dir}/out`, "--", PROBE]);
    expect(r.code).toBe(0);
    track(readPid(`${dir}/q.pid`));
    await waitFor(() => readFileSync(`${dir}/out`, "utf8").startsWith("probe pid="), "truncated log");
  });

  test("a new log file gets the daemon's umask", async () => {
    const dir = tempDir();
    await startProbe(dir, ["--umask", "027"]);
    expect(statSync(`${dir}/probe.log`).mode & 0o777).toBe(0o640);
  });
});

describe("foreground", () => {
  test("--foreground does the set-up and execs in place: same pid, no detaching", async () => {
    const dir = tempDir();
    const p = Bun.spawn([BIN, "-f", "-p", `${dir}/p.pid`, "-C", dir, "--umask", "077", "--", PROBE, "fg"], {
      stdio: ["ignore", "ignore", "ignore"],
    });
    track(p.pid);
    const pid = await waitFor(() => readPid(`${dir}/p.pid`), "pidfile");
    expect(pid).toBe(p.pid);
    await waitFor(() => procArgv(pid)[1] === "fg", "exec");
    expect(readlinkSync(`/proc/${pid}/exe`)).toBe(PROBE);
    expect(procStat(pid).ppid).toBe(process.pid);
    expect(readlinkSync(`/proc/${pid}/cwd`)).toBe(dir);
    expect(procStatus(pid).Umask).toBe("0077");
    expect(procStatus(pid).SigIgn).toBe("0000000000000000");
    expect([...procFds(pid).keys()].sort()).toEqual([0, 1, 2]);
    // The helper that would have cleaned up after a failed exec is nobody's child here.
    expect(readFileSync(`/proc/${pid}/task/${pid}/children`, "utf8")).toBe("");
  });

  test("a failed exec in the foreground reaches the caller's stderr and removes the pidfile", async () => {
    const dir = tempDir();
    writeFileSync(`${dir}/script`, "#!/nonexistent/interpreter\n", { mode: 0o755 });
    const r = await run(["-f", "-p", `${dir}/p.pid`, "-l", `${dir}/log`, "--", `${dir}/script`]);
    expect(r.code).toBe(126);
    expect(r.stderr).toBe(`daemonize: error: exec ${dir}/script: bad interpreter /nonexistent/interpreter: No such file or directory\n`);
    expect(existsSync(`${dir}/log`)).toBe(false);
    expect(existsSync(`${dir}/p.pid`)).toBe(false);
  });

  test("temporary pidfiles left by killed launchers, one with the same pid, are removed by the next start", () => {
    const dir = tempDir();
    // Named after their launcher's pid and start time: exec keeps the shell's pid, whose start time is not 1.
    const gone = Bun.spawnSync(["true"]).pid;
    const script = `touch "$1/.p.pid.$$.1.tmp" "$1/.p.pid.${gone}.1.tmp" && exec "$2" -f -p "$1/p.pid" -- /bin/true`;
    const r = Bun.spawnSync(["sh", "-c", script, "sh", dir, BIN], { stderr: "pipe" });
    expect([r.exitCode, r.stderr.toString()]).toEqual([0, ""]);
    expect(readdirSync(dir)).toEqual(["p.pid"]);
    expect(readPid(`${dir}/p.pid`)).toBe(r.pid);
  });

  // The set-up resets every signal handler of the launcher itself; a failed exec must give Bun
  // back its own (SIGPIPE ignored) so that reporting to a closed pipe is an error, not a death.
  test.skipIf(missing("SIGPIPE after a failed foreground exec", ["python3", "python3"]))("after a failed exec in the foreground the launcher still ignores SIGPIPE", () => {
    const dir = tempDir();
    writeFileSync(`${dir}/script`, "#!/nonexistent/interpreter\n", { mode: 0o755 });
    const broken = "import os, subprocess, sys\nr, w = os.pipe()\nos.close(r)\nprint(subprocess.run(sys.argv[1:], stdout=w, stderr=w).returncode)";
    const r = Bun.spawnSync(["python3", "-c", broken, BIN, "-f", "--", `${dir}/script`], { stderr: "pipe" });
    expect([r.stdout.toString(), r.stderr.toString()]).toEqual(["126\n", ""]);
  });
});

describe("messages", () => {
  test("a successful start prints nothing; --verbose says what started", async () => {
    const dir = tempDir();
    const quiet = await startProbe(dir);
    expect(quiet.run.stdout + quiet.run.stderr).toBe("");
    const r = await run(["-v", "-p", `${dir}/v.pid`, "--", PROBE]);
    const pid = track(readPid(`${dir}/v.pid`));
    expect(r.stderr).toBe(`daemonize: started ${PROBE} as pid ${pid}\n`);
  });

  test("--help and --version print to stdout and exit 0, even with a program after --", async () => {
    const help = await run(["--help", "--", PROBE]);
    expect(help.code).toBe(0);
    expect(help.stdout).toContain("--pidfile");
    expect(help.stdout).not.toContain("\x1b[");
    const version = await run(["-V"]);
    expect(version.code).toBe(0);
    expect(version.stdout).toMatch(/^daemonize \d+\.\d+\.\d+ \(bun \d+\.\d+\.\d+, commit \w+\)\n$/);
  });
});

// Privilege drops done for real, as root: groups, then gid, then uid, then chroot.
import { afterAll, afterEach, beforeAll, describe, expect, test } from "bun:test";
import { copyFileSync, mkdirSync, readdirSync, readFileSync, readlinkSync, statSync, symlinkSync, writeFileSync } from "node:fs";
import { alive, BIN, cleanup, isRoot, missing, NOBODY, PROBE, procEnv, procStatus, readPid, run, startProbe, tempDir, track, waitFor } from "./helpers";

afterEach(cleanup);

const ids = (line: string | undefined) => (line ?? "").split(/\s+/).filter(Boolean).map(Number);
const sorted = (xs: number[]) => [...new Set(xs)].sort((a, b) => a - b);
const idG = (user: string) => sorted(Bun.spawnSync(["id", "-G", user]).stdout.toString().trim().split(" ").map(Number));

function expectIds(pid: number, uid: number, gid: number, groups: number[]) {
  const s = procStatus(pid);
  expect(ids(s.Uid)).toEqual([uid, uid, uid, uid]);
  expect(ids(s.Gid)).toEqual([gid, gid, gid, gid]);
  expect(sorted(ids(s.Groups))).toEqual(sorted(groups));
}

const sh = (cmd: string[]) => {
  const r = Bun.spawnSync(cmd, { stderr: "pipe" });
  if (r.exitCode !== 0) throw new Error(`${cmd.join(" ")}: ${r.stderr.toString()}`);
};

describe.skipIf(!isRoot || missing("privilege drop", ["useradd", "passwd"]))("privilege drop (as root)", () => {
  // A user with two supplementary groups, made for these tests and removed after.
  const tag = Math.random().toString(36).slice(2, 8);
  const user = `dzu${tag}`;
  const extra = [`dza${tag}`, `dzb${tag}`];
  const gidOf = (g: string) => Number(Bun.spawnSync(["getent", "group", g]).stdout.toString().split(":")[2]);
  beforeAll(() => {
    for (const g of extra) sh(["groupadd", g]);
    sh(["useradd", "--no-create-home", "--home-dir", `/home/${user}`, "-G", extra.join(","), user]);
  });
  afterAll(() => {
    Bun.spawnSync(["userdel", user]);
    for (const g of extra) Bun.spawnSync(["groupdel", g]);
  });

  test("--user nobody: every uid and gid, exactly nobody's groups, root cannot be regained", async () => {
    const dir = tempDir();
    const { pid, report } = await startProbe(dir, ["--user", "nobody"]);
    expectIds(pid, NOBODY.uid, NOBODY.gid, idG("nobody"));
    expect(report.root).toBe("refused");
    const env = procEnv(pid);
    expect([env.get("HOME"), env.get("USER"), env.get("LOGNAME")]).toEqual(["/nonexistent", "nobody", "nobody"]);
  });

  test.skipIf(missing("caller's supplementary groups", ["setpriv", "util-linux"]))("the caller's supplementary groups (root's group 0 among them) never reach the daemon", async () => {
    const dir = tempDir();
    const r = Bun.spawnSync(["setpriv", "--groups", "0,4,27", "--", BIN, "-p", `${dir}/p.pid`, "-u", "nobody", "--", PROBE]);
    expect(r.exitCode).toBe(0);
    const pid = track(readPid(`${dir}/p.pid`));
    expectIds(pid, NOBODY.uid, NOBODY.gid, idG("nobody"));
    expect(ids(procStatus(pid).Groups)).not.toContain(0);
  });

  test("a user's supplementary groups are all set, as initgroups would", async () => {
    const dir = tempDir();
    const { pid } = await startProbe(dir, ["--user", user]);
    const uid = Number(Bun.spawnSync(["id", "-u", user]).stdout.toString());
    const gid = Number(Bun.spawnSync(["id", "-g", user]).stdout.toString());
    expectIds(pid, uid, gid, [gid, ...extra.map(gidOf)]);
    expect(idG(user)).toEqual(sorted([gid, ...extra.map(gidOf)]));
    expect(procEnv(pid).get("HOME")).toBe(`/home/${user}`);
  });

  test("USER:GROUP sets that group as the only one", async () => {
    const dir = tempDir();
    const { pid } = await startProbe(dir, ["--user", `${user}:${extra[1]}`]);
    const uid = Number(Bun.spawnSync(["id", "-u", user]).stdout.toString());
    expectIds(pid, uid, gidOf(extra[1] as string), [gidOf(extra[1] as string)]);
  });

  test("--group with --user: that primary group plus the groups that list the user, as initgroups(user, group)", async () => {
    const dir = tempDir();
    const { pid } = await startProbe(dir, ["--user", user, "--group", "nogroup"]);
    const uid = Number(Bun.spawnSync(["id", "-u", user]).stdout.toString());
    expectIds(pid, uid, 65534, [65534, ...extra.map(gidOf)]);
  });

  test("--group alone drops only the groups", async () => {
    const dir = tempDir();
    const { pid } = await startProbe(dir, ["--group", "nogroup"]);
    expectIds(pid, 0, 65534, [65534]);
  });

  test("numeric ids: a known uid is the named user; an unknown one needs its group", async () => {
    const dir = tempDir();
    const known = await startProbe(dir, ["--user", "65534"]);
    expectIds(known.pid, NOBODY.uid, NOBODY.gid, idG("nobody"));
    expect(procEnv(known.pid).get("USER")).toBe("nobody");
    const dir2 = tempDir();
    const unknown = await startProbe(dir2, ["--user", "4242:4343"]);
    expectIds(unknown.pid, 4242, 4343, [4343]);
    const env = procEnv(unknown.pid);
    expect([env.get("HOME"), env.get("USER")]).toEqual(["/", "4242"]);
  });

  test("logs are opened before the drop; a new log belongs to the user, an existing one keeps its owner", async () => {
    const dir = tempDir();
    const logs = tempDir();
    writeFileSync(`${logs}/err`, "");
    const r = await run(["-p", `${dir}/p.pid`, "-u", "nobody", "-o", `${logs}/out`, "-e", `${logs}/err`, "--", PROBE]);
    expect(r.code).toBe(0);
    track(readPid(`${dir}/p.pid`));
    expect(statSync(`${logs}/out`).uid).toBe(NOBODY.uid);
    expect(statSync(`${logs}/out`).gid).toBe(NOBODY.gid);
    expect(statSync(`${logs}/err`).uid).toBe(0);
    const pidfile = statSync(`${dir}/p.pid`);
    expect(pidfile.uid).toBe(0);
    expect(pidfile.mode & 0o777).toBe(0o644);
  });

  test("--chroot: root and cwd inside it, then the drop", async () => {
    const jail = tempDir();
    mkdirSync(`${jail}/bin`);
    mkdirSync(`${jail}/work`);
    copyFileSync(PROBE, `${jail}/bin/probe`);
    sh(["chmod", "755", `${jail}/bin/probe`]);
    const dir = tempDir();
    const r = await run(["-p", `${dir}/p.pid`, "--chroot", jail, "-C", "/work", "-u", "nobody", "--", "/bin/probe"]);
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
    const pid = track(readPid(`${dir}/p.pid`));
    expect(readlinkSync(`/proc/${pid}/root`)).toBe(jail);
    expect(readlinkSync(`/proc/${pid}/cwd`)).toBe(`${jail}/work`);
    expectIds(pid, NOBODY.uid, NOBODY.gid, idG("nobody"));
  });

  test("--chroot: an absolute symlink to the program resolves inside the chroot", async () => {
    const jail = tempDir();
    mkdirSync(`${jail}/bin`);
    copyFileSync(PROBE, `${jail}/bin/probe`);
    sh(["chmod", "755", `${jail}/bin/probe`]);
    symlinkSync("/bin/probe", `${jail}/bin/link`);
    const dir = tempDir();
    const r = await run(["-p", `${dir}/p.pid`, "--chroot", jail, "--", "/bin/link"]);
    expect([r.code, r.stderr]).toEqual([0, ""]);
    const pid = track(readPid(`${dir}/p.pid`));
    expect(readlinkSync(`/proc/${pid}/exe`)).toBe(`${jail}/bin/probe`);
  });

  test("--foreground: an exec that fails after the drop and the chroot is reported and leaves nothing behind", async () => {
    const jail = tempDir();
    mkdirSync(`${jail}/bin`);
    writeFileSync(`${jail}/bin/script`, "#!/no/such/shell\n", { mode: 0o755 });
    const dir = tempDir();
    const r = await run(["-f", "-p", `${dir}/p.pid`, "-l", `${dir}/log`, "--chroot", jail, "-u", "nobody", "--", "/bin/script"]);
    expect(r.stderr).toBe("daemonize: error: exec /bin/script: bad interpreter /no/such/shell: No such file or directory\n");
    expect(r.code).toBe(126);
    expect(readdirSync(dir)).toEqual([]);
  });

  test("--chroot finds a bare program name in PATH inside the chroot", async () => {
    const jail = tempDir();
    mkdirSync(`${jail}/bin`);
    copyFileSync(PROBE, `${jail}/bin/probe`);
    sh(["chmod", "755", `${jail}/bin/probe`]);
    const dir = tempDir();
    const r = await run(["-p", `${dir}/p.pid`, "--chroot", jail, "-E", "PATH=/bin", "--", "probe"]);
    expect(r.code).toBe(0);
    const pid = track(readPid(`${dir}/p.pid`));
    expect(readlinkSync(`/proc/${pid}/root`)).toBe(jail);
    expect(readlinkSync(`/proc/${pid}/cwd`)).toBe(jail);
  });
});

// After the drop the target user may signal its daemon before the exec. A
// stale pidfile locked by a stand-in for another launcher holds the launcher
// between the set-up and the go-ahead, so the test can signal it there.
describe("a daemon signalled by its user before it execs", () => {
  const cases = [
    ["SIGKILL", `the daemon was killed before it could exec ${PROBE}`],
    ["SIGSTOP", `the daemon was stopped before it could exec ${PROBE}; it was killed`],
  ] as const;
  for (const [signal, message] of cases) {
    test.skipIf(!isRoot || missing("daemon signalled before its exec", ["flock", "util-linux"]))(`${signal}: the start fails with exit 71 and leaves nothing`, async () => {
      const dir = tempDir();
      const pidfile = `${dir}/p.pid`;
      const gone = Bun.spawnSync(["true"]).pid;
      writeFileSync(pidfile, `${gone}\n`);
      // One process holds the lock that launchers take to replace a pidfile: the shell locks fd 9, then becomes sleep with it open.
      const lock = `${dir}/.p.pid.lock`;
      // Made first, as a launcher makes it: flock(1), which the test waits with, would make it open to all.
      writeFileSync(lock, "", { mode: 0o600 });
      const holder = Bun.spawn(["sh", "-c", 'exec 9<"$0"; flock 9; exec sleep 1000', lock], { stdout: "ignore", stderr: "ignore" });
      track(holder.pid);
      await waitFor(() => Bun.spawnSync(["flock", "-n", lock, "true"]).exitCode === 1, "the lock to be held");
      const launcher = Bun.spawn([BIN, "-p", pidfile, "-u", "nobody", "-o", `${dir}/out`, "--", PROBE], { env: { PATH: "/usr/bin:/bin" }, stdout: "ignore", stderr: "pipe" });
      track(launcher.pid);
      // Once the daemon is set up the launcher goes to publish the pidfile and waits for the lock (at most
      // two seconds), and the daemon (a clone of the launcher, as nobody) for its go-ahead.
      await waitFor(() => readdirSync(`/proc/${launcher.pid}/fd`).some((fd) => readlinkSync(`/proc/${launcher.pid}/fd/${fd}`) === lock), "the launcher to wait for the lock");
      const daemon = readdirSync("/proc").filter((e) => /^\d+$/.test(e)).map(Number).find((pid) => {
        try {
          return readlinkSync(`/proc/${pid}/exe`) === BIN && ids(procStatus(pid).Uid)[0] === NOBODY.uid;
        } catch {
          return false;
        }
      });
      if (daemon === undefined) throw new Error("no daemon, set up and waiting");
      track(daemon);
      expect(ids(procStatus(daemon).Uid)).toEqual([NOBODY.uid, NOBODY.uid, NOBODY.uid, NOBODY.uid]);
      process.kill(daemon, signal);
      holder.kill("SIGKILL");
      expect(await Promise.all([launcher.exited, new Response(launcher.stderr).text()])).toEqual([71, `daemonize: error: ${message}\n`]);
      await waitFor(() => !alive(daemon), "the daemon to be gone");
      // The stale pidfile was replaced, then the new one removed with the log this start made.
      expect(readdirSync(dir)).toEqual([]);
    }, 15_000);
  }
});

// Directory services have groups with thousands of members: the lookup must not
// fail for want of buffer. The big group is seen through a private mount namespace.
test.skipIf(!isRoot || missing("10,000-member group", ["unshare", "util-linux"], ["mount", "mount"]))("a group with 10,000 members is found", async () => {
  const dir = tempDir();
  const members = Array.from({ length: 10000 }, (_, i) => `member${i}`).join(",");
  writeFileSync(`${dir}/group`, `${readFileSync("/etc/group", "utf8")}dzbig:x:4242:${members}\n`);
  const script = `mount --bind "$1" /etc/group && exec "$2" -p "$3" -g dzbig -- "$4"`;
  const r = Bun.spawnSync(["unshare", "--mount", "sh", "-c", script, "sh", `${dir}/group`, BIN, `${dir}/p.pid`, PROBE], { stderr: "pipe" });
  expect([r.exitCode, r.stderr.toString()]).toEqual([0, ""]);
  const pid = track(readPid(`${dir}/p.pid`));
  expect(ids(procStatus(pid).Gid)).toEqual([4242, 4242, 4242, 4242]);
});

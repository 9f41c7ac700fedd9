// --cgroup and --cgroup-set: the whole tree in a cgroup v2 of its own, judged from outside
// through /proc/PID/cgroup and the cgroup's files. The hierarchy is the machine's own and
// shared by every process: these tests make cgroups only under daemonize's own directory,
// and afterAll checks that none is left and every controller is switched off again.
import { afterAll, afterEach, beforeAll, describe, expect, test } from "bun:test";
import { chownSync, existsSync, mkdirSync, readdirSync, readFileSync, rmdirSync, rmSync, writeFileSync } from "node:fs";
import { alive, BIN, cleanup, isRoot, kill, marked, missing, NOBODY, PROBE, readPid, ROOT, run, tempDir, track, waitFor } from "./helpers";

afterEach(cleanup);
// A test that failed half-way must not leave its cgroups to the next, or to the machine: they are
// ended and removed here, and the test that left them fails.
afterEach(async () => {
  if (!MOUNT || !existsSync(TOP)) return;
  const left = readdirSync(TOP, { withFileTypes: true }).filter((e) => e.isDirectory()).map((e) => `${TOP}/${e.name}`);
  for (const dir of left) {
    writeFileSync(`${dir}/cgroup.kill`, "1");
    await waitFor(() => procs(dir).length === 0, `${dir} to empty`);
    rmdirSync(dir);
  }
  rmdirSync(TOP);
  for (const c of subtree().split(" ").filter((c) => c && !before.split(" ").includes(c))) writeFileSync(`${MOUNT}/cgroup.subtree_control`, `-${c}`);
  throw new Error(`the test left ${left.join(", ") || TOP} behind`);
});

const mountinfo = readFileSync("/proc/self/mountinfo", "utf8").split("\n").map((l) => l.split(" "));
const cgroup2 = mountinfo.filter((f) => f[f.indexOf("-") + 1] === "cgroup2").map((f) => f[4] as string);
const MOUNT = ["/sys/fs/cgroup", "/sys/fs/cgroup/unified"].find((m) => cgroup2.includes(m)) ?? cgroup2[0];
const TOP = `${MOUNT}/daemonize`;
const offered = MOUNT ? readFileSync(`${MOUNT}/cgroup.controllers`, "utf8").trim().split(/\s+/).filter(Boolean) : [];
const subtree = () => readFileSync(`${MOUNT}/cgroup.subtree_control`, "utf8").trim();

if (!MOUNT) process.stderr.write("skip: --cgroup: this machine has no cgroup2 mount\n");

function build(name: string, flags: string[]): string {
  const out = `${ROOT}build/${name}`;
  const cc = Bun.spawnSync(["cc", "-O2", ...flags, "-o", out, `${import.meta.dir}/${name}.c`], { stderr: "pipe" });
  if (cc.exitCode !== 0) throw new Error(`cannot build ${name}: ${cc.stderr.toString()}`);
  return out;
}
/** A program that never runs its own code before it forks. */
const FIRST_FORK = build("first-fork", ["-static", "-nostdlib", "-ffreestanding", "-fno-stack-protector"]);
/** Runs its arguments with clone3 failing ENOSYS: the fallback's placement. */
const NO_CLONE3 = build("no-clone3", []);

/** The cgroup v2 path of a process, as /proc/PID/cgroup has it ("/daemonize/NAME"). */
const cgroupOf = (pid: number) => /^0::(.*)$/m.exec(readFileSync(`/proc/${pid}/cgroup`, "utf8"))?.[1];
const procs = (dir: string) => readFileSync(`${dir}/cgroup.procs`, "utf8").trim().split(/\s+/).filter(Boolean).map(Number);
const childrenOf = (pid: number) =>
  readdirSync("/proc")
    .filter((e) => /^\d+$/.test(e))
    .map(Number)
    .filter((p) => {
      try {
        return readFileSync(`/proc/${p}/stat`, "utf8").split(") ")[1]?.split(" ")[1] === String(pid);
      } catch {
        return false;
      }
    });

let before = "";
beforeAll(() => {
  if (MOUNT) before = subtree();
});
afterAll(() => {
  if (!MOUNT) return;
  expect(existsSync(TOP)).toBe(false);
  expect(subtree()).toBe(before);
});

/** A tree of `n` sleeping children and a setsid grandchild, all carrying `marker`, under a program that execs into a sleep. */
function treeScript(dir: string, marker: string, n: number): string {
  const script = `${dir}/tree.sh`;
  writeFileSync(
    script,
    `#!/bin/sh\ni=0\nwhile [ $i -lt ${n} ]; do sleep 1000 ${marker} 2>/dev/null & i=$((i+1)); done\nsetsid sh -c 'sleep 1000 ${marker}; :' 2>/dev/null &\nexec sleep 1000 ${marker}\n`,
    { mode: 0o755 },
  );
  return script;
}

/** `sleep` accepts several durations and sums them: the marker rides along as a 0. */
const marker = () => `0${Math.floor(Math.random() * 1e9)}`;

interface Json {
  running: boolean;
  pid: number;
  child?: number;
  cgroup?: { path: string; processes: number; cpuUsageUsec?: number; memoryCurrent?: number };
  code: number;
}
const status = async (pidfile: string): Promise<Json> => {
  const r = await run(["status", "--json", "-p", pidfile]);
  return { ...JSON.parse(r.stdout), code: r.code };
};

async function start(args: string[], via: string[] = []): Promise<{ pid: number; pidfile: string; path: string }> {
  const pidfile = args[args.indexOf("-p") + 1] as string;
  const p = Bun.spawn([...via, BIN, ...args], { stdin: "ignore", stdout: "ignore", stderr: "pipe" });
  const r = { code: await p.exited, stderr: await new Response(p.stderr).text() };
  if (r.code !== 0) throw new Error(`start failed (${r.code}): ${r.stderr}`);
  const pid = track(readPid(pidfile));
  const s = await status(pidfile);
  if (!s.cgroup) throw new Error("status shows no cgroup");
  return { pid, pidfile, path: s.cgroup.path };
}

describe.skipIf(!MOUNT)("--cgroup", () => {
  test("a plain daemon's whole tree is in its cgroup, setsid grandchild included; stop leaves nothing", async () => {
    const dir = tempDir();
    const m = marker();
    const { pid, pidfile, path } = await start(["-p", `${dir}/d.pid`, "--cgroup", "--", treeScript(dir, m, 3)]);
    expect(path.startsWith(`${TOP}/d-`)).toBe(true);
    const tree = await waitFor(() => marked(m).length === 6 && marked(m), "the tree of six");
    const inside = `/${path.slice(MOUNT!.length + 1)}`;
    for (const p of tree) expect(cgroupOf(p)).toBe(inside);
    expect(procs(path).sort()).toEqual([...tree].sort());
    expect(tree).toContain(pid);
    const s = await status(pidfile);
    expect(s.cgroup?.processes).toBe(6);
    expect(s.cgroup?.cpuUsageUsec).toBeGreaterThanOrEqual(0);
    expect((await run(["status", "-p", pidfile])).stdout).toContain(`cgroup ${path}: 6 processes`);
    expect((await run(["stop", "-p", pidfile])).code).toBe(0);
    expect(marked(m)).toEqual([]);
    expect(existsSync(path)).toBe(false);
    expect(existsSync(pidfile)).toBe(false);
  });

  test.each([
    ["born in the cgroup (clone3)", []],
    ["without clone3, joined through cgroup.procs", [NO_CLONE3]],
  ])("a process forked by the program's first instruction is already inside, plain and supervised: %s", async (_, via: string[]) => {
    const dir = tempDir();
    for (const extra of [[], ["--supervise"]]) {
      const { pid, pidfile, path } = await start(["-p", `${dir}/f.pid`, ...extra, "--cgroup", "--", FIRST_FORK], via);
      const program = extra.length ? ((await status(pidfile)).child as number) : pid;
      const [child] = await waitFor(() => childrenOf(program).length > 0 && childrenOf(program), "the first instruction's fork");
      const inside = `/${path.slice(MOUNT!.length + 1)}`;
      expect([cgroupOf(program), cgroupOf(child as number)]).toEqual([inside, inside]);
      // The monitor is outside: an OOM kill of the group never takes it.
      if (extra.length) expect(cgroupOf(pid)).not.toBe(inside);
      expect((await run(["stop", "-p", pidfile])).code).toBe(0);
      expect([alive(program), alive(child as number), existsSync(path)]).toEqual([false, false, false]);
    }
  });

  test("kill -9 of the monitor of 20 children and a setsid grandchild: status sees them, stop ends all of them", async () => {
    const dir = tempDir();
    const m = marker();
    const { pid, pidfile, path } = await start(["-p", `${dir}/k.pid`, "--supervise", "--cgroup", "--", treeScript(dir, m, 20)]);
    await waitFor(() => marked(m).length === 23, "the tree of 23");
    await kill(pid);
    // The program dies with its monitor (its death signal); its children and the grandchild do not.
    await waitFor(() => marked(m).length === 22, "the program to die with its monitor");
    const s = await run(["status", "-p", pidfile]);
    expect(s.code).toBe(1);
    expect(s.stdout).toContain(`22 process(es) of it are left in cgroup ${path}`);
    const stopped = await run(["stop", "-v", "-p", pidfile]);
    expect(stopped.code).toBe(0);
    expect(stopped.stderr).toContain(`ended 22 process(es) left in cgroup ${path}`);
    expect(marked(m)).toEqual([]);
    expect(existsSync(path)).toBe(false);
  });

  test.each([
    ["the pidfile records the cgroup", false],
    ["the pidfile removed by hand: the cgroup is known by its mark", true],
  ])("kill -9 of the monitor, then start: the old tree is ended before the new one runs; %s", async (_, removed: boolean) => {
    const dir = tempDir();
    const old = marker();
    const args = (m: string) => ["-p", `${dir}/r.pid`, "--supervise", "--cgroup", "--", treeScript(dir, m, 20)];
    const first = await start(args(old));
    await waitFor(() => marked(old).length === 23, "the tree of 23");
    await kill(first.pid);
    if (removed) rmSync(first.pidfile);
    const now = marker();
    const second = await start(args(now));
    expect(marked(old)).toEqual([]);
    expect(second.path).toBe(first.path);
    await waitFor(() => marked(now).length === 23, "the new tree");
    expect((await run(["stop", "-p", second.pidfile])).code).toBe(0);
    expect([marked(now), existsSync(second.path)]).toEqual([[], false]);
  });

  test("between runs the monitor empties the cgroup: a run's leftover that ignores TERM is KILLed before the next run", async () => {
    const dir = tempDir();
    const m = marker();
    const script = `${dir}/run.sh`;
    // Each run notes whether the last run's leftover still exists, leaves a setsid grandchild that ignores TERM from birth, and exits 1.
    writeFileSync(
      script,
      `#!/bin/sh\ntrap '' TERM\nprev=$(tail -n 1 ${dir}/pids 2>/dev/null)\n[ -n "$prev" ] && [ -e /proc/$prev ] && echo "$prev" >> ${dir}/alive\nsetsid sleep 1000 ${m} &\necho $! >> ${dir}/pids\ndate +%s%N >> ${dir}/runs\nexit 1\n`,
      { mode: 0o755 },
    );
    const { pidfile, path } = await start(["-p", `${dir}/b.pid`, "--supervise", "--restart", "always", "--restart-delay", "10ms", "--restart-max-delay", "10ms", "--max-restarts", "0", "--stop-timeout", "300ms", "--cgroup", "--", script]);
    const runs = await waitFor(() => {
      const lines = readFileSync(`${dir}/runs`, "utf8").trim().split("\n").map(Number);
      return lines.length >= 3 && lines;
    }, "three runs", 15_000);
    expect((await run(["stop", "-p", pidfile])).code).toBe(0);
    // No run found the last one's leftover, and each began after --stop-timeout had run out for it.
    expect(existsSync(`${dir}/alive`)).toBe(false);
    for (let i = 1; i < runs.length; i++) expect(((runs[i] as number) - (runs[i - 1] as number)) / 1e6).toBeGreaterThanOrEqual(300);
    expect([marked(m), existsSync(path)]).toEqual([[], false]);
  });

  test("--cgroup-set writes files that exist here; the controllers enabled go off again with the cgroup", async () => {
    const dir = tempDir();
    const hugetlb = offered.includes("hugetlb") ? ["--cgroup-set", "hugetlb.2MB.max=4194304"] : [];
    if (!hugetlb.length) process.stderr.write("skip: hugetlb.2MB.max: this hierarchy does not offer hugetlb\n");
    const { pidfile, path } = await start(["-p", `${dir}/s.pid`, "--cgroup", "--cgroup-set", "cgroup.max.descendants=3", ...hugetlb, "--", PROBE]);
    expect(readFileSync(`${path}/cgroup.max.descendants`, "utf8").trim()).toBe("3");
    if (hugetlb.length) {
      expect(readFileSync(`${path}/hugetlb.2MB.max`, "utf8").trim()).toBe("4194304");
      expect(subtree().split(" ")).toContain("hugetlb");
    }
    expect((await run(["stop", "-p", pidfile])).code).toBe(0);
    expect(existsSync(TOP)).toBe(false);
    expect(subtree()).toBe(before);
  });

  const missingHere = ["memory", "pids"].filter((c) => !offered.includes(c));
  // A controller a cgroup v1 hierarchy holds (its name among the mount's options) cannot be in v2 as well.
  const v1 = new Set(mountinfo.filter((f) => f[f.indexOf("-") + 1] === "cgroup").flatMap((f) => (f.at(-1) ?? "").split(",")));
  if (MOUNT && missingHere.length)
    process.stderr.write(`skip: memory.max and pids.max: ${missingHere.map((c) => `the ${c} controller is ${v1.has(c) ? "bound to cgroup v1" : "not offered by cgroup v2"} here`).join(", ")}\n`);
  test.skipIf(missingHere.length > 0)("memory.max and pids.max are set and read back", async () => {
    const dir = tempDir();
    const { pidfile, path } = await start(["-p", `${dir}/m.pid`, "--cgroup-set", "memory.max=64M", "--cgroup-set", "pids.max=16", "--", PROBE]);
    expect(readFileSync(`${path}/memory.max`, "utf8").trim()).toBe(String(64 * 1024 * 1024));
    expect(readFileSync(`${path}/pids.max`, "utf8").trim()).toBe("16");
    expect((await status(pidfile)).cgroup?.memoryCurrent).toBeGreaterThan(0);
    expect((await run(["stop", "-p", pidfile])).code).toBe(0);
  });

  test.skipIf(offered.includes("memory"))("a controller the hierarchy does not offer: 77 naming those it does, nothing left", async () => {
    const dir = tempDir();
    const r = await run(["-p", `${dir}/x.pid`, "--supervise", "--cgroup-set", "memory.max=64M", "--", PROBE]);
    expect(r.code).toBe(77);
    expect(r.stderr).toBe(`daemonize: error: --cgroup-set memory.max: the cgroup2 hierarchy at ${MOUNT} does not offer the memory controller (it offers: ${offered.join(" ") || "none"})\n`);
    expect([existsSync(`${dir}/x.pid`), existsSync(TOP)]).toEqual([false, false]);
  });

  test("a value the kernel refuses: 64 naming the file and the error, nothing left", async () => {
    const dir = tempDir();
    const r = await run(["-p", `${dir}/x.pid`, "--cgroup-set", "cgroup.max.descendants=lots", "--", PROBE]);
    expect(r.code).toBe(64);
    expect(r.stderr).toBe("daemonize: error: --cgroup-set cgroup.max.descendants=lots: Invalid argument\n");
    expect([existsSync(`${dir}/x.pid`), existsSync(TOP)]).toEqual([false, false]);
    expect(subtree()).toBe(before);
  });

  test("usage errors: no pidfile to derive a name from, . or .., a file that moves or kills processes", async () => {
    const dir = tempDir();
    const cases: [string[], string][] = [
      [["--cgroup"], "--cgroup without a PATH needs --pidfile: the cgroup's name is derived from it"],
      [["-p", `${dir}/u.pid`, "--cgroup=a/../b"], '--cgroup="a/../b": give a cgroup path without . or .. (relative ones are under daemonize\'s own directory)'],
      [["-p", `${dir}/u.pid`, "--cgroup-set", "cgroup.procs=1"], "--cgroup-set cgroup.procs: not a setting; it moves or kills processes"],
      [["-p", `${dir}/u.pid`, "--cgroup-set", "max=1"], '--cgroup-set "max=1" is not FILE=VALUE with a cgroup file (memory.max, pids.max, cpu.max, …)'],
      [["-p", `${dir}/u.pid`, "--stop-timeout", "1s"], "--stop-timeout goes with --supervise"],
    ];
    for (const [args, message] of cases) {
      const r = await run([...args, "--", PROBE]);
      expect([r.code, r.stderr]).toEqual([64, `daemonize: error: ${message}\n`]);
    }
    expect([readdirSync(dir), existsSync(TOP)]).toEqual([[], false]);
  });

  test("a cgroup someone else made at the path is left alone, with what runs in it", async () => {
    const dir = tempDir();
    const foreign = `${TOP}/foreign-${process.pid}`;
    mkdirSync(TOP);
    mkdirSync(foreign);
    const sleeper = Bun.spawn(["sleep", "1000"], { stdio: ["ignore", "ignore", "ignore"] });
    track(sleeper.pid);
    try {
      writeFileSync(`${foreign}/cgroup.procs`, String(sleeper.pid));
      const r = await run(["-p", `${dir}/x.pid`, `--cgroup=foreign-${process.pid}`, "--", PROBE]);
      expect(r.code).toBe(73);
      expect(r.stderr).toBe(`daemonize: error: --cgroup: ${foreign} exists and is not this daemon's cgroup; it is left alone\n`);
      expect([alive(sleeper.pid), procs(foreign)]).toEqual([true, [sleeper.pid]]);
      expect(existsSync(`${dir}/x.pid`)).toBe(false);
    } finally {
      await kill(sleeper.pid);
      await waitFor(() => procs(foreign).length === 0, "the foreign cgroup to empty");
      rmdirSync(foreign);
      rmdirSync(TOP);
    }
  });

  test("--check reports the hierarchy, the path, the controllers and each file, and creates nothing", async () => {
    const dir = tempDir();
    const r = await run(["-p", `${dir}/c.pid`, "--check", "--cgroup", "--cgroup-set", "cgroup.max.descendants=3", "--", PROBE]);
    expect(r.code).toBe(0);
    const line = r.stdout.split("\n").find((l) => l.startsWith("ok    cgroup: "));
    expect(line).toContain(`cgroup2 at ${MOUNT}; ${TOP}/c-`);
    expect(line).toContain(`would be created; controllers offered: ${offered.join(" ") || "none"}; cgroup.max.descendants exists`);
    expect([existsSync(TOP), existsSync(`${dir}/c.pid`)]).toEqual([false, false]);
  });

  test("a start that fails after the cgroup was made (not ready, plain or supervised) leaves no cgroup", async () => {
    const dir = tempDir();
    const m = marker();
    const cases: [string[], number][] = [
      [["--ready", `file:${dir}/never`, "--ready-timeout", "200ms", "--", treeScript(dir, m, 2)], 75],
      [["--supervise", "--ready", `file:${dir}/never`, "--", "/bin/sh", "-c", `sleep 1000 ${m} & exit 3`], 69],
    ];
    for (const [args, code] of cases) {
      const r = await run(["-p", `${dir}/x.pid`, "--cgroup", ...args]);
      expect(r.code).toBe(code);
      expect([existsSync(`${dir}/x.pid`), existsSync(TOP), marked(m)]).toEqual([false, false, []]);
    }
  });

  test("--foreground whose exec fails: the launcher leaves its cgroup and removes it", async () => {
    const dir = tempDir();
    writeFileSync(`${dir}/bad`, "#!/nonexistent/interpreter\n", { mode: 0o755 });
    const r = await run(["-f", "-p", `${dir}/f.pid`, "--cgroup", "--", `${dir}/bad`]);
    expect(r.code).toBe(126);
    expect([existsSync(`${dir}/f.pid`), existsSync(TOP)]).toEqual([false, false]);
  });

  test.skipIf(!isRoot || missing("--cgroup as an ordinary user", ["setpriv", "util-linux"]))("a hierarchy this user may not write: 77, one line, nothing left", async () => {
    const dir = tempDir();
    chownSync(dir, NOBODY.uid, NOBODY.gid);
    const p = Bun.spawn(["setpriv", "--reuid", String(NOBODY.uid), "--regid", String(NOBODY.gid), "--clear-groups", "--", BIN, "-p", `${dir}/n.pid`, "--cgroup", "--", PROBE], { stderr: "pipe" });
    expect(await p.exited).toBe(77);
    expect(await new Response(p.stderr).text()).toBe(`daemonize: error: --cgroup: the cgroup2 hierarchy at ${MOUNT} cannot be written: Permission denied\n`);
    expect(readdirSync(dir)).toEqual([]);
  });

  test.skipIf(!isRoot || missing("--cgroup delegated to a user", ["setpriv", "util-linux"]))(
    "a cgroup delegated to an ordinary user: daemonize, run inside it, makes the daemon's cgroup below it",
    async () => {
      const dir = tempDir();
      chownSync(dir, NOBODY.uid, NOBODY.gid);
      // What a delegation gives a user: the directory and the files that move processes.
      const delegated = `${TOP}/delegated-${process.pid}`;
      mkdirSync(TOP);
      mkdirSync(delegated);
      for (const f of ["", "/cgroup.procs", "/cgroup.threads", "/cgroup.subtree_control"]) chownSync(`${delegated}${f}`, NOBODY.uid, NOBODY.gid);
      try {
        const script = `echo $$ > ${delegated}/cgroup.procs && exec setpriv --reuid ${NOBODY.uid} --regid ${NOBODY.gid} --clear-groups -- "$@"`;
        const as = (args: string[]) => {
          const p = Bun.spawnSync(["sh", "-c", script, "sh", BIN, ...args], { stderr: "pipe", stdout: "pipe" });
          return { code: p.exitCode, stdout: p.stdout.toString(), stderr: p.stderr.toString() };
        };
        const r = as(["-p", `${dir}/d.pid`, "--supervise", "--cgroup", "--", PROBE]);
        expect([r.code, r.stderr]).toEqual([0, ""]);
        track(readPid(`${dir}/d.pid`));
        const s = JSON.parse(as(["status", "--json", "-p", `${dir}/d.pid`]).stdout) as Json;
        expect(s.cgroup?.path).toStartWith(`${delegated}/daemonize/d-`);
        expect(cgroupOf(s.child as number)).toBe(s.cgroup?.path.slice(MOUNT!.length));
        expect(as(["stop", "-p", `${dir}/d.pid`]).code).toBe(0);
        expect(readdirSync(delegated, { withFileTypes: true }).filter((e) => e.isDirectory())).toEqual([]);
      } finally {
        await waitFor(() => procs(delegated).length === 0, "the delegated cgroup to empty");
        rmdirSync(delegated);
        rmdirSync(TOP);
      }
    },
  );

  test.skipIf(missing("--cgroup without cgroup2", ["unshare", "util-linux"], ["umount", "mount"]))(
    "no cgroup2 mounted (a private mount namespace without it): 77, one line",
    async () => {
      const dir = tempDir();
      const p = Bun.spawnSync(["unshare", "-m", "sh", "-c", `umount ${cgroup2.join(" ")} && exec "$@"`, "sh", `${ROOT}dist/daemonize`, "-p", `${dir}/n.pid`, "--cgroup", "--", PROBE], {
        stderr: "pipe",
      });
      expect(p.exitCode).toBe(77);
      expect(p.stderr.toString()).toBe("daemonize: error: --cgroup: no cgroup2 file system is mounted (none in /proc/self/mountinfo)\n");
      expect(existsSync(`${dir}/n.pid`)).toBe(false);
    },
  );
});

// Limits, priorities and privileges, as the child path sets and reads them back (src/settings.ts,
// ffi/child.c), judged from outside: /proc and the util-linux tools beside it must show what was
// asked, the caller's own when nothing was, and a setting this system refuses ends the start.
import { afterEach, describe, expect, test } from "bun:test";
import { chmodSync, copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, rmdirSync, writeFileSync } from "node:fs";
import { BIN, cleanup, isRoot, kill, marked, missing, NOBODY, PROBE, procLimit, procStatus, readPid, run, startProbe, tempDir, track, waitFor } from "./helpers";

afterEach(cleanup);

const CAP_KILL = 5;
const CAP_SETUID = 7;
const CAP_NET_BIND_SERVICE = 10;
const CAP_SYS_ADMIN = 21;
const CAP_SYS_NICE = 23;
const CAP_SYS_RESOURCE = 24;
const has = (cap: number) => Boolean((BigInt(`0x${procStatus(process.pid).CapEff}`) >> BigInt(cap)) & 1n);
const mask = (...caps: number[]) => caps.reduce((m, c) => m | (1n << BigInt(c)), 0n).toString(16).padStart(16, "0");

const UTIL_LINUX = (tool: string): [string, string] => [tool, "util-linux"];

/** A tool's stdout, trimmed; it must succeed. */
function tool(...cmd: string[]): string {
  const r = Bun.spawnSync(cmd, { stderr: "pipe" });
  if (r.exitCode !== 0) throw new Error(`${cmd.join(" ")}: ${r.stderr.toString()}`);
  return r.stdout.toString().trim();
}

/** nice, real-time priority and policy, from /proc/PID/stat. */
function schedOf(pid: number) {
  const text = readFileSync(`/proc/${pid}/stat`, "utf8");
  const f = text.slice(text.lastIndexOf(")") + 2).split(" ");
  return { nice: Number(f[16]), rtprio: Number(f[37]), policy: Number(f[38]) };
}

/** Every limit of a process, by prlimit's name: [soft, hard]. */
function limitsOf(pid: number): Record<string, [string, string]> {
  const rows = tool("prlimit", "--pid", String(pid), "--raw", "--noheadings", "--output", "RESOURCE,SOFT,HARD").split("\n");
  return Object.fromEntries(rows.map((row) => row.trim().split(/\s+/)).map(([name = "", soft = "", hard = ""]) => [name.toLowerCase(), [soft, hard] as [string, string]]));
}

/** The CPUs of a list such as 0-3,8. */
const cpuList = (list: string) =>
  list.split(",").flatMap((range) => {
    const [from, to = from] = range.split("-").map(Number) as [number, number?];
    return Array.from({ length: to - from + 1 }, (_, i) => from + i);
  });

/** The lower of two limits as prlimit prints them. */
const lower = (a: string, b: string) => (a === "unlimited" ? b : b === "unlimited" ? a : String(Math.min(Number(a), Number(b))));

/** The log's lines, once `count` of them match. */
const lines = (log: string, re: RegExp, count = 1) => waitFor(() => {
  const found = readFileSync(log, "utf8").split("\n").filter((l) => re.test(l));
  return found.length >= count && found;
}, `${count} line(s) matching ${re} in ${log}`);

describe("defaults: the caller's limits and priorities, not Bun's", () => {
  test.skipIf(missing("caller's limits", UTIL_LINUX("prlimit")))("the caller's soft open-file limit reaches the program, plain and supervised; the monitor keeps its own", async () => {
    const [, hard] = procLimit(process.pid, "Max open files");
    for (const extra of [[], ["--supervise"]]) {
      const dir = tempDir();
      // A caller that holds 1024:HARD and forks daemonize, as a shell does.
      const r = Bun.spawnSync(["prlimit", `--nofile=1024:${hard}`, "sh", "-c", '"$@"; exit $?', "sh", BIN, ...extra, "-p", `${dir}/p.pid`, "-l", `${dir}/log`, "--", PROBE], { stderr: "pipe" });
      expect([r.exitCode, r.stderr.toString()]).toEqual([0, ""]);
      const pid = track(readPid(`${dir}/p.pid`));
      const [report] = await lines(`${dir}/log`, /^probe pid=/);
      const program = Number(/pid=(\d+)/.exec(report as string)?.[1]);
      expect(procLimit(program, "Max open files")).toEqual(["1024", hard]);
      expect(tool("prlimit", "--pid", String(program), "--nofile", "--noheadings", "--output", "SOFT,HARD").split(/\s+/)).toEqual(["1024", hard]);
      // The monitor is a Bun process's child: it has the hard limit, as Bun gave itself.
      if (program !== pid) expect(procLimit(pid, "Max open files")).toEqual([hard, hard]);
    }
  });

  test.skipIf(missing("caller's limits", UTIL_LINUX("prlimit")))("a caller whose limits its parent does not share (prlimit exec'd daemonize) gets FD_SETSIZE, as systemd gives its programs", async () => {
    const dir = tempDir();
    const r = Bun.spawnSync(["prlimit", "--nofile=2048:4096", BIN, "-p", `${dir}/p.pid`, "--", PROBE], { stderr: "pipe" });
    expect([r.exitCode, r.stderr.toString()]).toEqual([0, ""]);
    expect(procLimit(track(readPid(`${dir}/p.pid`)), "Max open files")).toEqual(["1024", "4096"]);
  });

  test.skipIf(missing("caller's priorities", UTIL_LINUX("ionice"), UTIL_LINUX("taskset")))("every other limit, the nice value, I/O class, affinity and OOM score are the caller's; the core limit is 0", async () => {
    const dir = tempDir();
    const r = Bun.spawnSync(["nice", "-n", "3", "ionice", "-c", "3", "taskset", "-c", "0", BIN, "-p", `${dir}/p.pid`, "--", PROBE], { stderr: "pipe" });
    expect([r.exitCode, r.stderr.toString()]).toEqual([0, ""]);
    const pid = track(readPid(`${dir}/p.pid`));
    const mine = limitsOf(process.pid);
    const theirs = limitsOf(pid);
    for (const name of Object.keys(mine).filter((n) => n !== "core")) expect({ name, limit: theirs[name] }).toEqual({ name, limit: mine[name] });
    expect(theirs.core).toEqual(["0", "0"]);
    expect(schedOf(pid)).toMatchObject({ nice: 3, policy: 0 });
    expect(tool("ionice", "-p", String(pid))).toBe("idle");
    expect(procStatus(pid).Cpus_allowed_list).toBe("0");
    expect(readFileSync(`/proc/${pid}/oom_score_adj`, "utf8")).toBe(readFileSync("/proc/self/oom_score_adj", "utf8"));
  });
});

describe.skipIf(missing("--limit", UTIL_LINUX("prlimit")))("--limit", () => {
  test("every limit as asked, soft and hard, as /proc and prlimit read them", async () => {
    const mine = limitsOf(process.pid);
    // What to ask for, never above this process's hard limit, which only CAP_SYS_RESOURCE may raise.
    const wanted: Record<string, [string, string]> = {
      as: ["1073741824", "2147483648"], core: ["4096", "8192"], cpu: ["100", "200"], data: ["1073741824", "unlimited"],
      fsize: ["1048576", "2097152"], locks: ["50", "60"], memlock: ["16384", "32768"], msgqueue: ["4096", "8192"],
      nice: ["0", "0"], nofile: ["512", "4096"], nproc: ["300", "400"], rss: ["1048576", "1048576"],
      rtprio: ["0", "0"], rttime: ["1000000", "2000000"], sigpending: ["100", "200"], stack: ["4194304", "8388608"],
    };
    const asked = Object.fromEntries(Object.entries(wanted).map(([name, [soft, hard]]) => {
      const top = lower(hard, (mine[name] as [string, string])[1]);
      return [name, [lower(soft, top), top]];
    })) as Record<string, [string, string]>;
    const sizes = { as: "1G", stack: "4M" } as Record<string, string>;
    const args = Object.entries(asked).flatMap(([name, [soft, hard]]) => ["--limit", `${name}=${sizes[name] && soft === wanted[name]?.[0] ? sizes[name] : soft}:${hard}`]);
    const { pid } = await startProbe(tempDir(), args);
    expect(limitsOf(pid)).toEqual(asked);
    expect(procLimit(pid, "Max open files")).toEqual(asked.nofile as [string, string]);
  });

  test("an open-file limit below the fds the launcher holds: the child path sets it once its own fds are done", async () => {
    const { pid } = await startProbe(tempDir(), ["--limit", "nofile=4"]);
    expect(procLimit(pid, "Max open files")).toEqual(["4", "4"]);
  });

  test("SOFT alone sets both", async () => {
    const { pid } = await startProbe(tempDir(), ["--limit", "nofile=300", "--limit", "stack=unlimited"]);
    expect(procLimit(pid, "Max open files")).toEqual(["300", "300"]);
    expect(procLimit(pid, "Max stack size")[0]).toBe("unlimited");
  });

  test("raising a hard limit: done with CAP_SYS_RESOURCE, refused with exit 77 without it", async () => {
    const [, hard] = procLimit(process.pid, "Max open files");
    const above = String(Number(hard) + 1);
    const dir = tempDir();
    const r = await run(["-p", `${dir}/p.pid`, "--limit", `nofile=${above}`, "--", PROBE]);
    if (has(CAP_SYS_RESOURCE)) {
      expect([r.code, r.stderr]).toEqual([0, ""]);
      expect(procLimit(track(readPid(`${dir}/p.pid`)), "Max open files")).toEqual([above, above]);
    } else {
      expect([r.code, r.stderr]).toEqual([77, `daemonize: error: --limit nofile=${above}: raising the hard limit above ${hard} needs CAP_SYS_RESOURCE\n`]);
      expect(readdirSync(dir)).toEqual([]);
    }
  });

  test.skipIf(!isRoot)("limits are set while root: a hard limit lowered for another user", async () => {
    const { pid } = await startProbe(tempDir(), ["--user", "nobody", "--limit", "nofile=100:200"]);
    expect(procStatus(pid).Uid?.split(/\s+/)[0]).toBe(String(NOBODY.uid));
    expect(procLimit(pid, "Max open files")).toEqual(["100", "200"]);
  });
});

describe("priorities", () => {
  test("--nice: a higher value as asked; a lower one with CAP_SYS_NICE, refused with exit 77 without it", async () => {
    const { pid } = await startProbe(tempDir(), ["--nice", "7"]);
    expect(schedOf(pid).nice).toBe(7);
    const dir = tempDir();
    const r = await run(["-p", `${dir}/p.pid`, "--nice", "-5", "--", PROBE]);
    if (has(CAP_SYS_NICE)) {
      expect([r.code, r.stderr]).toEqual([0, ""]);
      expect(schedOf(track(readPid(`${dir}/p.pid`))).nice).toBe(-5);
    } else expect([r.code, r.stderr]).toEqual([77, "daemonize: error: --nice -5: a nice value below 0 needs CAP_SYS_NICE or --limit nice=25\n"]);
  });

  test.skipIf(missing("--sched", UTIL_LINUX("chrt")))("--sched: each policy as chrt and /proc/PID/stat read it (the real-time ones with CAP_SYS_NICE)", async () => {
    const cases = [
      ["batch", "SCHED_BATCH", 3, 0],
      ["idle", "SCHED_IDLE", 5, 0],
      ["other", "SCHED_OTHER", 0, 0],
      ...(has(CAP_SYS_NICE) ? [["fifo:10", "SCHED_FIFO", 1, 10], ["rr:5", "SCHED_RR", 2, 5]] as const : []),
    ] as const;
    for (const [sched, name, policy, prio] of cases) {
      const { pid } = await startProbe(tempDir(), ["--sched", sched]);
      expect(tool("chrt", "-p", String(pid))).toBe(`pid ${pid}'s current scheduling policy: ${name}\npid ${pid}'s current scheduling priority: ${prio}`);
      expect(schedOf(pid)).toMatchObject({ policy, rtprio: prio });
      await kill(pid);
    }
  });

  test.skipIf(missing("--ionice", UTIL_LINUX("ionice")))("--ionice: each class as ionice reads it (realtime with CAP_SYS_NICE or CAP_SYS_ADMIN)", async () => {
    const realtime = has(CAP_SYS_NICE) || has(CAP_SYS_ADMIN) ? [["realtime:3", "realtime: prio 3"]] : [];
    for (const [given, shown] of [["best-effort:2", "best-effort: prio 2"], ["best-effort", "best-effort: prio 4"], ["idle", "idle"], ...realtime]) {
      const { pid } = await startProbe(tempDir(), ["--ionice", given as string]);
      expect(tool("ionice", "-p", String(pid))).toBe(shown as string);
      await kill(pid);
    }
  });

  test("--oom-score-adjust: a higher score as asked; a lower one with CAP_SYS_RESOURCE, refused with exit 77 without it", async () => {
    const { pid } = await startProbe(tempDir(), ["--oom-score-adjust", "500"]);
    expect(readFileSync(`/proc/${pid}/oom_score_adj`, "utf8")).toBe("500\n");
    const dir = tempDir();
    const r = await run(["-p", `${dir}/p.pid`, "--oom-score-adjust", "-100", "--", PROBE]);
    if (has(CAP_SYS_RESOURCE)) {
      expect([r.code, r.stderr]).toEqual([0, ""]);
      expect(readFileSync(`/proc/${track(readPid(`${dir}/p.pid`))}/oom_score_adj`, "utf8")).toBe("-100\n");
    } else {
      expect([r.code, r.stderr]).toEqual([77, "daemonize: error: --oom-score-adjust -100: Permission denied\n"]);
      expect(readdirSync(dir)).toEqual([]);
    }
  });

  test.skipIf(missing("--cpus", UTIL_LINUX("taskset")))("--cpus: each online CPU, and all of them, as taskset and /proc/PID/status read them", async () => {
    const online = readFileSync("/sys/devices/system/cpu/online", "utf8").trim();
    for (const cpus of [...new Set([...cpuList(online).slice(0, 2).map(String), online])]) {
      const { pid } = await startProbe(tempDir(), ["--cpus", cpus]);
      // taskset writes adjacent CPUs as 0,1 where the kernel writes 0-1.
      const said = /^pid \d+'s current affinity list: (\S+)$/.exec(tool("taskset", "-cp", String(pid)))?.[1] ?? "";
      expect(cpuList(said)).toEqual(cpuList(cpus));
      expect(procStatus(pid).Cpus_allowed_list).toBe(cpus);
      await kill(pid);
    }
  });

  test("--foreground applies them in place", async () => {
    const dir = tempDir();
    const p = Bun.spawn([BIN, "-f", "-p", `${dir}/p.pid`, "-l", `${dir}/log`, "--nice", "4", "--limit", "nofile=100:200", "--", PROBE], { stdout: "ignore", stderr: "ignore" });
    track(p.pid);
    await lines(`${dir}/log`, /^probe pid=/);
    expect(readPid(`${dir}/p.pid`)).toBe(p.pid);
    expect(schedOf(p.pid).nice).toBe(4);
    expect(procLimit(p.pid, "Max open files")).toEqual(["100", "200"]);
  });
});

describe.skipIf(!isRoot)("privileges (as root)", () => {
  /** A port only CAP_NET_BIND_SERVICE may bind, or undefined when this system lets anyone bind any. */
  const privilegedPort = () => {
    const start = Number(readFileSync("/proc/sys/net/ipv4/ip_unprivileged_port_start", "utf8"));
    return start > 1 ? 1 + Math.floor(Math.random() * (start - 1)) : undefined;
  };

  test("--user nobody --cap net_bind_service binds a privileged port, and only that capability is left, ambient; without --cap: EACCES", async () => {
    const port = privilegedPort() ?? 80;
    const { pid, log } = await startProbe(tempDir(), ["--user", "nobody", "--cap", "net_bind_service"], [], { PATH: "/usr/bin:/bin", PROBE_BIND: String(port) });
    expect(await lines(log, /^bind /)).toEqual([`bind ${port}: ok`]);
    const s = procStatus(pid);
    expect(s.Uid?.split(/\s+/)).toEqual(Array(4).fill(String(NOBODY.uid)));
    const want = mask(CAP_NET_BIND_SERVICE);
    expect([s.CapEff, s.CapPrm, s.CapInh, s.CapAmb, s.CapBnd]).toEqual([want, want, want, want, want]);
    if (privilegedPort() === undefined) return;
    const without = await startProbe(tempDir(), ["--user", "nobody"], [], { PATH: "/usr/bin:/bin", PROBE_BIND: String(port) });
    expect(await lines(without.log, /^bind /)).toEqual([`bind ${port}: Permission denied`]);
    expect(procStatus(without.pid).CapAmb).toBe(mask());
  });

  test("root with --cap keeps exactly those, in every set and the bounding set, none ambient", async () => {
    const { pid } = await startProbe(tempDir(), ["--cap", "CAP_KILL,net_bind_service"]);
    const s = procStatus(pid);
    const want = mask(CAP_KILL, CAP_NET_BIND_SERVICE);
    expect([s.Uid?.split(/\s+/)[0], s.CapEff, s.CapPrm, s.CapInh, s.CapBnd, s.CapAmb]).toEqual(["0", want, want, want, want, mask()]);
  });

  test("--cap setuid keeps the way back to root, as asked; the check allows it and nothing else", async () => {
    const { pid, report } = await startProbe(tempDir(), ["--user", "nobody", "--cap", "setuid"]);
    expect(report.root).toBe("regained");
    expect(procStatus(pid).CapBnd).toBe(mask(CAP_SETUID));
  });

  test("--no-new-privs: NoNewPrivs is 1, and a setuid-root copy of the probe runs without root (with it otherwise)", async () => {
    const dir = tempDir();
    copyFileSync(PROBE, `${dir}/suid`);
    chmodSync(`${dir}/suid`, 0o4755);
    const plain = await run(["-p", `${dir}/a.pid`, "-l", `${dir}/a.log`, "-u", "nobody", "--", `${dir}/suid`]);
    expect([plain.code, plain.stderr]).toEqual([0, ""]);
    track(readPid(`${dir}/a.pid`));
    expect((await lines(`${dir}/a.log`, /^probe /))[0]).toContain("root=regained");
    const kept = await run(["-p", `${dir}/b.pid`, "-l", `${dir}/b.log`, "-u", "nobody", "--no-new-privs", "--", `${dir}/suid`]);
    expect([kept.code, kept.stderr]).toEqual([0, ""]);
    const pid = track(readPid(`${dir}/b.pid`));
    expect((await lines(`${dir}/b.log`, /^probe /))[0]).toContain("root=refused");
    expect(procStatus(pid).NoNewPrivs).toBe("1");
    expect(procStatus(pid).Uid?.split(/\s+/)).toEqual(Array(4).fill(String(NOBODY.uid)));
  });
});

describe.skipIf(!isRoot)("supervise: every run gets the settings, the monitor keeps its own", () => {
  test("--limit nproc=1 and a low nofile for another user never stop the monitor restarting the run", async () => {
    const dir = tempDir();
    // A uid no other process has: RLIMIT_NPROC counts every process of the user.
    const uid = 200_000 + Math.floor(Math.random() * 100_000);
    const r = await run(["--supervise", "--restart", "always", "--restart-delay", "0", "--max-restarts", "0", "-p", `${dir}/p.pid`, "-l", `${dir}/log`,
      "-u", `${uid}:${uid}`, "--limit", "nproc=1", "--limit", "nofile=16", "--core", "--", PROBE]);
    expect([r.code, r.stderr]).toEqual([0, ""]);
    const monitor = track(readPid(`${dir}/p.pid`));
    const mine = limitsOf(process.pid);
    for (let n = 1; n <= 3; n++) {
      const reports = await lines(`${dir}/log`, /^probe pid=/, n);
      const run = Number(/pid=(\d+)/.exec(reports[n - 1] as string)?.[1]);
      expect(procLimit(run, "Max processes")).toEqual(["1", "1"]);
      expect(procLimit(run, "Max open files")).toEqual(["16", "16"]);
      // --core: the run's soft limit is the hard one it inherits, the caller's, not the monitor's own 0.
      const callersCore = (mine.core as [string, string])[1];
      expect(procLimit(run, "Max core file size")).toEqual([callersCore, callersCore]);
      expect(limitsOf(monitor)).toMatchObject({ nproc: mine.nproc, core: mine.core, nofile: [mine.nofile?.[1], mine.nofile?.[1]] });
      process.kill(run, "SIGKILL");
    }
    await lines(`${dir}/log`, /^probe pid=/, 4);
  });
});

/** A cpuset cgroup of one CPU, as root (cgroup v1 or v2), or undefined where none can be made. */
function cpusetOfOne(): { dir: string; procs: string } | undefined {
  const name = `daemonize-test-${process.pid}-${Math.random().toString(36).slice(2, 8)}`;
  const v1 = "/sys/fs/cgroup/cpuset";
  try {
    if (existsSync(`${v1}/cpuset.cpus`)) {
      mkdirSync(`${v1}/${name}`);
      writeFileSync(`${v1}/${name}/cpuset.mems`, readFileSync(`${v1}/cpuset.mems`, "utf8"));
      writeFileSync(`${v1}/${name}/cpuset.cpus`, "0");
      return { dir: `${v1}/${name}`, procs: `${v1}/${name}/cgroup.procs` };
    }
    if (readFileSync("/sys/fs/cgroup/cgroup.controllers", "utf8").split(/\s+/).includes("cpuset")) {
      writeFileSync("/sys/fs/cgroup/cgroup.subtree_control", "+cpuset");
      mkdirSync(`/sys/fs/cgroup/${name}`);
      writeFileSync(`/sys/fs/cgroup/${name}/cpuset.cpus`, "0");
      return { dir: `/sys/fs/cgroup/${name}`, procs: `/sys/fs/cgroup/${name}/cgroup.procs` };
    }
  } catch {}
  return undefined;
}

describe("every setting is read back before the exec", () => {
  const online = readFileSync("/sys/devices/system/cpu/online", "utf8").trim();
  test.skipIf(!isRoot || !/^0[-,]1/.test(online))("an affinity a cpuset narrows is refused: exit 71, named, nothing left, as a start and as --check", async () => {
    const cg = cpusetOfOne();
    if (!cg) return;
    try {
      for (const check of [[], ["--check", "--quiet"]]) {
        const dir = tempDir();
        const marker = `marker-${Math.random()}`;
        const p = Bun.spawn(["sh", "-c", 'echo $$ > "$0" && exec "$@"', cg.procs, BIN, ...check, "-p", `${dir}/p.pid`, "-l", `${dir}/log`, "--cpus", "0-1", "--", PROBE, marker], { stderr: "pipe" });
        expect([await p.exited, await new Response(p.stderr).text()]).toEqual([71, "daemonize: error: verify settings: --cpus 0-1 was set, but reads back otherwise\n"]);
        expect(readdirSync(dir)).toEqual([]);
        expect(marked(marker)).toEqual([]);
      }
    } finally {
      await waitFor(() => readFileSync(cg.procs, "utf8") === "", "the cpuset to empty");
      rmdirSync(cg.dir);
    }
  });
});

describe("--check", () => {
  test("reports each setting, and starts nothing", async () => {
    const dir = tempDir();
    const marker = `marker-${Math.random()}`;
    const r = await run(["--check", "-p", `${dir}/p.pid`, "--limit", "nofile=100:200", "--limit", "core=0", "--nice", "5", "--sched", "batch", "--ionice", "idle",
      "--oom-score-adjust", "100", "--cpus", "0", "--no-new-privs", "--", PROBE, marker]);
    expect([r.code, r.stderr]).toEqual([0, ""]);
    const said = Object.fromEntries(r.stdout.split("\n").flatMap((l) => {
      const m = /^ok {4}([\w-]+): (.*)$/.exec(l);
      return m ? [[m[1], m[2]]] : [];
    }));
    expect(said).toMatchObject({
      limit: "core=0, nofile=100:200",
      nice: "5",
      sched: "batch",
      ionice: "idle",
      "oom-score-adjust": "100",
      cpus: "0",
      "no-new-privs": "set: no setuid bit or file capability can raise the program's privileges",
    });
    expect([readdirSync(dir), marked(marker)]).toEqual([[], []]);
  });
});

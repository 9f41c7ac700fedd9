// npm run bench, second part: daemonize --supervise beside the supervisors Debian ships
// (apt-get install runit s6 daemontools supervisor daemon): the supervising process's memory,
// how soon a killed program runs again, and whether 10,000 crash-restarts leave the monitor as it was.
// Prints markdown tables.
import { closeSync, existsSync, mkdirSync, mkdtempSync, openSync, readFileSync, readdirSync, readlinkSync, rmSync, statSync, symlinkSync, writeFileSync } from "node:fs";
import type { Subprocess } from "bun";
import { median, monotonicNs, needCc, onInterrupt, procStatus } from "./bench-common";

const root = new URL("..", import.meta.url).pathname;
const bin = `${root}dist/daemonize`;
// As in bench.ts: no npm_* variables, which every supervised program would otherwise carry.
const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith("npm_") && k !== "INIT_CWD" && k !== "NODE")) as Record<string, string>;
const kills = Number(process.env.BENCH_KILLS ?? 50);
const slowKills = Math.max(5, Math.round(kills / 5));
const crashes = Number(process.env.BENCH_CRASHES ?? 10_000);
// Past the second after a start within which runsv and supervise hold a restart back (and supervisord, by default, calls a death a failed start).
const SETTLED_MS = 1500;
const RESTART_TIMEOUT_MS = 30_000;
const WARMUP_STARTS = 100;
const SNAPSHOT_READS = 20;

needCc();


const tmp = mkdtempSync("/tmp/daemonize-bench-supervise-");
const stamp = `${tmp}/stamp`;
// Static, so that nothing but the kernel stands between the supervisor's exec and the stamp.
writeFileSync(
  `${stamp}.c`,
  `#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

int main(int argc, char **argv) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  /* runsv and supervise run ./run in the service directory without arguments, s6-supervise with that directory. */
  char path[4096], line[64];
  snprintf(path, sizeof path, "%s/stamps", argc > 1 ? argv[1] : ".");
  int n = snprintf(line, sizeof line, "%lld %d\\n", (long long)t.tv_sec * 1000000000LL + t.tv_nsec, (int)getpid());
  int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0 || write(fd, line, n) != n) return 2;
  close(fd);
  if (argc > 2) return atoi(argv[2]);
  for (;;) pause();
}
`,
);

interface Stamp {
  ns: bigint;
  pid: number;
}
function stamps(dir: string): Stamp[] {
  const file = `${dir}/stamps`;
  if (!existsSync(file)) return [];
  // A line counts once its newline is there.
  return readFileSync(file, "utf8")
    .split("\n")
    .slice(0, -1)
    .map((l) => {
      const [ns, pid] = l.split(" ");
      return { ns: BigInt(ns as string), pid: Number(pid) };
    });
}
/** Stamp number `seen` (from 0), waiting for the program to write it. */
async function nextStamp(dir: string, seen: number, what: string): Promise<Stamp> {
  const deadline = Date.now() + RESTART_TIMEOUT_MS;
  const file = `${dir}/stamps`;
  let size = -1;
  for (;;) {
    const now = existsSync(file) ? statSync(file).size : 0;
    if (now !== size) {
      size = now;
      const all = stamps(dir);
      if (all.length > seen) return all[seen] as Stamp;
    }
    if (Date.now() > deadline) throw new Error(`${what}: the program did not start within ${RESTART_TIMEOUT_MS / 1000} s`);
    await Bun.sleep(1);
  }
}

function alive(pid: number) {
  try {
    return !/^State:\s+Z/m.test(readFileSync(`/proc/${pid}/status`, "utf8"));
  } catch {
    return false;
  }
}
async function gone(pid: number, ms = 10_000) {
  for (const deadline = Date.now() + ms; alive(pid) && Date.now() < deadline; ) await Bun.sleep(10);
  return !alive(pid);
}
async function fileText(path: string, ms = 10_000): Promise<string> {
  for (const deadline = Date.now() + ms; Date.now() < deadline; await Bun.sleep(5)) {
    const text = existsSync(path) ? readFileSync(path, "utf8").trim() : "";
    if (text) return text;
  }
  throw new Error(`${path} was not written within ${ms / 1000} s`);
}
function run(argv: string[]) {
  const r = Bun.spawnSync(argv, { env, stdout: "pipe", stderr: "pipe" });
  if (!r.success) throw new Error((r.stderr.toString() || r.stdout.toString()).trim().split("\n")[0] || `${argv[0]} exited with ${r.exitCode}`);
  return r.stdout.toString();
}

interface Supervisor {
  name: string;
  /** Its directory's name. */
  key: string;
  /** The binaries it needs and the Debian package that has them. */
  needs: string[];
  pkg: string;
  /** Starts it supervising the stamp program, which writes `dir`/stamps; returns the supervising process's pid. */
  start(dir: string): Promise<number>;
  stop(dir: string, pid: number): Promise<void>;
}

const children = new Map<number, Subprocess>();
/** For the supervisors meant to run in the foreground under a scanner: the bench is their scanner. */
function foreground(argv: string[], dir: string): number {
  const log = openSync(`${dir}/supervisor.log`, "w");
  const proc = Bun.spawn(argv, { cwd: dir, env, stdin: "ignore", stdout: log, stderr: log });
  closeSync(log);
  children.set(proc.pid, proc);
  return proc.pid;
}
async function exited(pid: number, what: string) {
  const proc = children.get(pid);
  const timeout = Bun.sleep(10_000).then(() => "timeout");
  if ((await Promise.race([proc?.exited, timeout])) === "timeout") throw new Error(`${what} did not exit`);
  children.delete(pid);
}
/** A service directory whose ./run is the stamp program itself, so no shell runs between. */
function serviceDir(dir: string) {
  symlinkSync(stamp, `${dir}/run`);
}

const daemonizeArgs = ["--restart", "always", "--restart-delay", "0", "--max-restarts", "0"];
const supervisors: Supervisor[] = [
  {
    name: "daemonize --supervise",
    key: "daemonize",
    needs: [],
    pkg: "",
    async start(dir) {
      run([bin, "--supervise", "--pidfile", `${dir}/monitor.pid`, ...daemonizeArgs, "--", stamp, dir]);
      return Number(await fileText(`${dir}/monitor.pid`));
    },
    async stop(dir) {
      run([bin, "stop", "--pidfile", `${dir}/monitor.pid`]);
    },
  },
  {
    name: "runit runsv",
    key: "runsv",
    needs: ["runsv", "sv"],
    pkg: "runit",
    async start(dir) {
      serviceDir(dir);
      return foreground(["runsv", dir], dir);
    },
    async stop(dir, pid) {
      run(["sv", "-w", "10", "down", dir]);
      run(["sv", "exit", dir]);
      await exited(pid, "runsv");
    },
  },
  {
    name: "s6 s6-supervise",
    key: "s6",
    needs: ["s6-supervise", "s6-svc"],
    pkg: "s6",
    async start(dir) {
      serviceDir(dir);
      return foreground(["s6-supervise", dir], dir);
    },
    async stop(dir, pid) {
      run(["s6-svc", "-wD", "-T", "10000", "-d", dir]);
      run(["s6-svc", "-x", dir]);
      await exited(pid, "s6-supervise");
    },
  },
  {
    name: "daemontools supervise",
    key: "daemontools",
    needs: ["supervise", "svc"],
    pkg: "daemontools",
    async start(dir) {
      serviceDir(dir);
      return foreground(["supervise", dir], dir);
    },
    async stop(dir, pid) {
      run(["svc", "-dx", dir]);
      await exited(pid, "supervise");
    },
  },
  {
    name: "supervisord",
    key: "supervisord",
    needs: ["supervisord", "supervisorctl"],
    pkg: "supervisor",
    async start(dir) {
      // A private instance: its own config, socket, pidfile and logs, nothing under /etc or /run.
      writeFileSync(
        `${dir}/supervisord.conf`,
        `[unix_http_server]
file=${dir}/supervisor.sock

[supervisord]
nodaemon=true
logfile=${dir}/supervisord.log
pidfile=${dir}/supervisord.pid
childlogdir=${dir}

[rpcinterface:supervisor]
supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface

[supervisorctl]
serverurl=unix://${dir}/supervisor.sock

[program:stamp]
command=${stamp} ${dir}
autorestart=true
startsecs=0
startretries=1000000
stdout_logfile=NONE
stderr_logfile=NONE
`,
      );
      return foreground(["supervisord", "-n", "-c", `${dir}/supervisord.conf`], dir);
    },
    async stop(dir, pid) {
      run(["supervisorctl", "-c", `${dir}/supervisord.conf`, "shutdown"]);
      await exited(pid, "supervisord");
    },
  },
  {
    name: "libslack daemon --respawn",
    key: "daemon",
    needs: ["daemon"],
    pkg: "daemon",
    async start(dir) {
      // --unsafe: as root it refuses a program under a world-writable directory, which /tmp is.
      run(["daemon", "--unsafe", "--respawn", "--attempts=100", "--delay=10", `--pidfile=${dir}/daemon.pid`, "--", stamp, dir]);
      return Number(await fileText(`${dir}/daemon.pid`));
    },
    async stop(_dir, pid) {
      process.kill(pid, "SIGTERM");
      if (!(await gone(pid))) throw new Error("daemon did not exit on TERM");
    },
  },
];

/** Kills whatever of ours is left, supervisors before programs so that none restarts one: they all name the temp dir in argv or exe. */
function sweep() {
  for (let pass = 0; pass < 20; pass++) {
    const ours = readdirSync("/proc")
      .filter((e) => /^\d+$/.test(e) && Number(e) !== process.pid)
      .filter((pid) => {
        try {
          return readFileSync(`/proc/${pid}/cmdline`, "utf8").includes(tmp) || readlinkSync(`/proc/${pid}/exe`).startsWith(tmp);
        } catch {
          return false;
        }
      })
      .map(Number)
      .filter(alive);
    if (!ours.length) return;
    const programs = ours.filter((pid) => {
      try {
        return readlinkSync(`/proc/${pid}/exe`) === stamp;
      } catch {
        return false;
      }
    });
    const supervisors = ours.filter((pid) => !programs.includes(pid));
    for (const pid of supervisors.length ? supervisors : programs)
      try {
        process.kill(pid, "SIGKILL");
      } catch {}
    Bun.sleepSync(20);
  }
}
function cleanup() {
  // The daemonize monitor names the temp dir only through its program's argv, which it may not keep.
  for (const entry of existsSync(tmp) ? readdirSync(tmp) : []) {
    const pidfile = `${tmp}/${entry}/monitor.pid`;
    if (existsSync(pidfile)) Bun.spawnSync([bin, "stop", "--pidfile", pidfile], { stdout: "ignore", stderr: "ignore" });
  }
  sweep();
  rmSync(tmp, { recursive: true, force: true });
}
onInterrupt(cleanup);

interface Result {
  name: string;
  error?: string;
  rssAnon?: number;
  vmRss?: number;
  quick?: number[];
  settled?: number[];
}

async function measure(s: Supervisor, dir: string): Promise<Result> {
  mkdirSync(dir);
  const result: Result = { name: s.name };
  let pid = 0;
  try {
    pid = await s.start(dir);
    let seen = 1;
    let current = await nextStamp(dir, 0, s.name);
    // Up means the program runs and the supervisor has gone back to waiting for it.
    await Bun.sleep(300);
    const status = procStatus(pid);
    result.rssAnon = status.RssAnon;
    result.vmRss = status.VmRSS;
    const killAndWait = async () => {
      const before = monotonicNs();
      process.kill(current.pid, "SIGKILL");
      current = await nextStamp(dir, seen++, s.name);
      return Number(current.ns - before) / 1e6;
    };
    result.quick = [];
    for (let i = 0; i < kills; i++) result.quick.push(await killAndWait());
    result.settled = [];
    for (let i = 0; i < slowKills; i++) {
      const upMs = Number(monotonicNs() - current.ns) / 1e6;
      await Bun.sleep(Math.max(0, SETTLED_MS - upMs));
      result.settled.push(await killAndWait());
    }
  } catch (e) {
    result.error = (e as Error).message;
  } finally {
    if (pid) await s.stop(dir, pid).catch((e) => (result.error ??= `stop: ${(e as Error).message}`));
  }
  return result;
}

/** daemonize restarting a program that exits 1 at once, `crashes` times: the monitor's fds and memory before and after. */
async function crashLoop(dir: string) {
  mkdirSync(dir);
  const pidfile = `${dir}/monitor.pid`;
  run([bin, "--supervise", "--pidfile", pidfile, ...daemonizeArgs, "--", stamp, dir, "1"]);
  let pid = 0;
  /** Waits for the program's `n`th start; a loop that stops restarting fails the bench instead of hanging it. */
  const starts = async (n: number) => {
    let last = 0;
    for (let stalled = Date.now(); ; await Bun.sleep(50)) {
      const all = stamps(dir);
      if (all.length >= n) return all;
      if (all.length > last) [last, stalled] = [all.length, Date.now()];
      else if (Date.now() - stalled > RESTART_TIMEOUT_MS) throw new Error(`crash loop: no restart for ${RESTART_TIMEOUT_MS / 1000} s after ${all.length} starts`);
    }
  };
  // The monitor holds a pipe open while it starts the program: several reads show what is transient.
  const snapshot = async () => {
    const fds: number[] = [];
    const anon: number[] = [];
    const rss: number[] = [];
    for (let i = 0; i < SNAPSHOT_READS; i++, await Bun.sleep(5)) {
      fds.push(readdirSync(`/proc/${pid}/fd`).length);
      const status = procStatus(pid);
      anon.push(status.RssAnon ?? 0);
      rss.push(status.VmRSS ?? 0);
    }
    const json = JSON.parse(run([bin, "status", "--json", "--pidfile", pidfile])) as { restarts: number };
    return { starts: stamps(dir).length, restarts: json.restarts, fds: range(fds), rssAnon: range(anon), vmRss: range(rss) };
  };
  try {
    pid = Number(await fileText(pidfile));
    // Past the start, so that what the launcher handed over and the first allocations are in "before".
    await starts(WARMUP_STARTS);
    const before = await snapshot();
    const all = await starts(before.starts + crashes);
    const after = await snapshot();
    const seconds = Number((all[before.starts + crashes - 1] as Stamp).ns - (all[before.starts - 1] as Stamp).ns) / 1e9;
    return { before, after, seconds };
  } finally {
    Bun.spawnSync([bin, "stop", "--pidfile", pidfile], { env, stdout: "ignore", stderr: "ignore" });
    if (pid && !(await gone(pid))) throw new Error("crash loop: the monitor outlived daemonize stop");
  }
}

function range(x: number[]) {
  const [lo, hi] = [Math.min(...x), Math.max(...x)];
  return lo === hi ? `${lo}` : `${lo}–${hi}`;
}

/** Median and range of samples in ms. */
function latency(t?: number[]) {
  if (!t?.length) return "— | —";
  const s = [...t].sort((a, b) => a - b);
  return `${median(s).toFixed(2)} | ${(s[0] as number).toFixed(2)} … ${(s.at(-1) as number).toFixed(2)}`;
}

let failed = false;
try {
  run(["cc", "-O2", "-static", "-o", stamp, `${stamp}.c`]);
  const skipped: string[] = [];
  const results: Result[] = [];
  for (const s of supervisors) {
    if (s.needs.every((b) => Bun.which(b))) results.push(await measure(s, `${tmp}/${s.key}`));
    else skipped.push(`${s.name} (apt-get install ${s.pkg})`);
  }

  console.log("Supervising process's memory with the program up (/proc/PID/status, KiB)\n");
  console.log("| supervisor | RssAnon | VmRSS |");
  console.log("|---|---:|---:|");
  for (const r of results) console.log(`| ${r.name} | ${r.rssAnon ?? "—"} | ${r.vmRss ?? "—"} |`);
  console.log("\nsupervisord runs every program of a machine from one process; the others take one process per program (runsv, s6-supervise and supervise normally under runsvdir, s6-svscan or svscan).");

  console.log(`\nRestart latency: from just before the SIGKILL to the program's next exec (CLOCK_MONOTONIC, ms; ${kills} kills as soon as the program is up, then ${slowKills} after ${SETTLED_MS / 1000} s up)\n`);
  console.log(`| supervisor | killed once up: median | min … max | killed after ${SETTLED_MS / 1000} s up: median | min … max |`);
  console.log("|---|---:|---:|---:|---:|");
  for (const r of results) console.log(`| ${r.name} | ${latency(r.quick)} | ${latency(r.settled)} |`);
  console.log(`
The program is a static C binary that stamps the time first thing in main. daemonize: \`${daemonizeArgs.join(" ")}\`.
runsv, s6-supervise and supervise run it as \`./run\` in a service directory, no shell between. runsv waits a second before restarting a \`./run\` that ran under a second;
supervise waits a second after every start; s6-supervise waits a second unless the service had been ready (readiness notification, which the program does not give) for a second.
supervisord: \`startsecs=0\` (with its default of 1 s each early death is a failed start, retried after 1, 2, 3 s and given up after 3); it reaps a dead program at the end of a pass of its main loop and starts it again on the next pass, after up to 1 s in poll.
libslack daemon: \`--attempts=100 --delay=10\`, the loosest it allows without \`--idiot\` (after 100 deaths within \`--acceptable\`, at least 10 s, it waits 10 s), and \`--unsafe\`, as root it refuses a program under /tmp.`);
  if (skipped.length) console.log(`\nNot installed, skipped: ${skipped.join(", ")}.`);
  const errors = results.filter((r) => r.error);
  for (const r of errors) console.error(`bench: ${r.name}: ${r.error}`);
  failed = errors.length > 0;

  if (results.find((r) => r.name === "daemonize --supervise")?.error) console.error("bench: the crash-restart loop needs daemonize --supervise, which failed above");
  else {
    const c = await crashLoop(`${tmp}/crash`);
    console.log(`\ndaemonize --supervise restarting a program that exits 1 at once: the monitor before and after ${crashes.toLocaleString("en")} more restarts\n`);
    console.log("| | program starts (stamps) | restarts (`status --json`) | open fds | RssAnon KiB | VmRSS KiB |");
    console.log("|---|---:|---:|---:|---:|---:|");
    for (const [label, x] of [["before", c.before], ["after", c.after]] as const)
      console.log(`| ${label} | ${x.starts} | ${x.restarts} | ${x.fds} | ${x.rssAnon} | ${x.vmRss} |`);
    console.log(`\n${crashes.toLocaleString("en")} restarts took ${c.seconds.toFixed(2)} s, ${((c.seconds / crashes) * 1e6).toFixed(0)} µs each (from the stamps). Fds and memory: lowest–highest of ${SNAPSHOT_READS} reads 5 ms apart; the loop runs on while a row is read, so its two counts differ by the restarts in between (\`status --json\` is read first).`);
    console.log(`The peers have no such row: runsv, s6-supervise, supervise and supervisord restart a program that exits at once about once a second (${crashes.toLocaleString("en")} times in ${(crashes / 3600).toFixed(1)} h), daemon in bursts of 100 every 10 s (${((crashes / 100) * 10 / 60).toFixed(0)} min).`);
  }
} catch (e) {
  console.error(`bench: ${(e as Error).message}`);
  failed = true;
} finally {
  for (const proc of children.values()) proc.kill("SIGKILL");
  cleanup();
}
process.exit(failed ? 1 : 0);

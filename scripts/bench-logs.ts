// npm run bench, third part: how fast the monitor writes a program's output to its log, beside
// `> file`, `| cat` and the loggers Debian ships (apt-get install s6 daemontools daemon supervisor),
// and how soon after a program is ready `--ready` lets the launcher return.
// Prints markdown tables.
import { closeSync, copyFileSync, existsSync, mkdirSync, mkdtempSync, openSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from "node:fs";
import type { Subprocess } from "bun";
import { median, monotonicNs, needCc, onInterrupt } from "./bench-common";
import { freePort } from "./free-port";

const root = new URL("..", import.meta.url).pathname;
// As in bench.ts: no npm_* variables, which every daemon would otherwise carry.
const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith("npm_") && k !== "INIT_CWD" && k !== "NODE")) as Record<string, string>;
const runs = Math.max(3, Number(process.env.BENCH_LOG_RUNS ?? 5));
const starts = Number(process.env.BENCH_READY_STARTS ?? 100);
const WARMUP_STARTS = 5;
const LINE = 100;
const LINES = 2_097_152;
const TOTAL = LINE * LINES;
// `2026-11-22T04:13:56.123456Z `
const TIMESTAMP = 28;
const TIMEOUT_MS = 120_000;
/** PROBE_MS in ffi/ready.h: how often the launcher's or the monitor's wait for tcp: connects and for file: looks. */
const probeMs = (() => {
  const ms = /^#define PROBE_MS (\d+)$/m.exec(readFileSync(`${root}ffi/ready.h`, "utf8"))?.[1];
  if (!ms) throw new Error("no PROBE_MS in ffi/ready.h");
  return Number(ms);
})();

needCc();


const tmp = mkdtempSync("/tmp/daemonize-bench-logs-");
const bin = `${tmp}/daemonize`;
const gen = `${tmp}/gen`;
writeFileSync(
  `${gen}.c`,
  `#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* 640 lines a write: as much as a default 64 KiB pipe takes at once, in whole lines. */
static char buf[640 * ${LINE}];

int main(int argc, char **argv) {
  /* With a path: when it started, for a relay whose own start is not what is measured. */
  if (argc > 1) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    char line[32];
    int n = snprintf(line, sizeof line, "%lld\\n", (long long)t.tv_sec * 1000000000LL + t.tv_nsec);
    int fd = open(argv[1], O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0 || write(fd, line, n) != n) return 2;
    close(fd);
  }
  memset(buf, 'x', sizeof buf);
  for (size_t i = ${LINE} - 1; i < sizeof buf; i += ${LINE}) buf[i] = '\\n';
  /* A short write resumes where it stopped, so every line stays whole. */
  for (long long done = 0, total = ${TOTAL}LL; done < total;) {
    size_t at = (size_t)(done % (long long)sizeof buf), want = sizeof buf - at;
    if ((long long)want > total - done) want = (size_t)(total - done);
    ssize_t n = write(1, buf + at, want);
    if (n < 0 && errno != EINTR) return 1;
    if (n > 0) done += n;
  }
  return 0;
}
`,
);

const ready = `${tmp}/ready`;
writeFileSync(
  `${ready}.c`,
  `#include <arpa/inet.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

/* ready STAMPFILE notify|fd|file PATH|tcp PORT: stamps CLOCK_MONOTONIC, then is ready that way at once. */
int main(int argc, char **argv) {
  if (argc < 3) return 2;
  const char *how = argv[2], *arg = argc > 3 ? argv[3] : "";
  /* Everything that can be done before the stamp is, so that only the signal itself follows it. */
  int out = open(argv[1], O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (out < 0) return 2;
  int s = -1;
  struct sockaddr_un un = { .sun_family = AF_UNIX };
  socklen_t unlen = 0;
  if (!strcmp(how, "notify")) {
    const char *name = getenv("NOTIFY_SOCKET");
    size_t len = name ? strlen(name) : 0;
    if (len == 0 || len >= sizeof un.sun_path) return 2;
    memcpy(un.sun_path, name, len);
    if (name[0] == '@') un.sun_path[0] = 0;
    unlen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len);
    if ((s = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0)) < 0) return 2;
  } else if (!strcmp(how, "tcp")) {
    struct sockaddr_in in = { .sin_family = AF_INET, .sin_port = htons((unsigned short)atoi(arg)), .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    int on = 1;
    if ((s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0 || setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on) < 0 ||
        bind(s, (struct sockaddr *)&in, sizeof in) < 0)
      return 2;
  }
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  char line[32];
  int n = snprintf(line, sizeof line, "%lld\\n", (long long)t.tv_sec * 1000000000LL + t.tv_nsec);
  if (write(out, line, n) != n) return 2;
  int ok = 0;
  if (!strcmp(how, "notify"))
    ok = sendto(s, "READY=1", 7, 0, (struct sockaddr *)&un, unlen) == 7;
  else if (!strcmp(how, "fd"))
    ok = write(3, "\\n", 1) == 1;
  else if (!strcmp(how, "file"))
    ok = open(arg, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644) >= 0;
  else if (!strcmp(how, "tcp"))
    ok = listen(s, 16) == 0;
  if (!ok) return 2;
  for (;;) pause();
}
`,
);

/** daemonize's pidfiles and libslack daemon's: a failed run may leave behind the daemon they name. */
const pidfiles = new Set<string>();
const daemonPidfiles = new Set<string>();
/** Process groups the bench started (a shell pipeline and what it runs, supervisord and its program). */
const groups = new Map<number, Subprocess>();

function run(argv: string[]) {
  const r = Bun.spawnSync(argv, { env, stdout: "pipe", stderr: "pipe" });
  if (!r.success) throw new Error(`${argv.join(" ")}: ${(r.stderr.toString() || r.stdout.toString()).trim().split("\n")[0] || `exit ${r.exitCode}`}`);
  return r.stdout.toString();
}
function spawnGroup(argv: string[], cwd: string) {
  const proc = Bun.spawn(argv, { cwd, env, detached: true, stdin: "ignore", stdout: "ignore", stderr: "ignore" });
  groups.set(proc.pid, proc);
  return proc;
}
async function waitGroup(proc: Subprocess, what: string) {
  const timeout = Bun.sleep(TIMEOUT_MS).then(() => "timeout");
  if ((await Promise.race([proc.exited, timeout])) === "timeout") throw new Error(`${what} did not finish within ${TIMEOUT_MS / 1000} s`);
  // Its leader waits for the rest (a shell for its pipeline, supervisord for its program): nothing of the group is left.
  groups.delete(proc.pid);
  return proc.exitCode;
}
function killGroup(pid: number) {
  try {
    process.kill(-pid, "SIGKILL");
  } catch {}
}
const size = (path: string) => (existsSync(path) ? statSync(path).size : -1);
async function until(done: () => boolean, what: string) {
  for (const deadline = Date.now() + TIMEOUT_MS; !done(); await Bun.sleep(2))
    if (Date.now() > deadline) throw new Error(`${what} within ${TIMEOUT_MS / 1000} s`);
}
function expectSize(path: string, bytes: number, what: string) {
  const got = size(path);
  if (got !== bytes) throw new Error(`${what}: ${path} has ${got} bytes, not ${bytes}`);
}
/** TERM to the pid a pidfile names: a plain daemon, daemonize's monitor (which then stops its program) or libslack daemon (likewise). */
function terminate(pidfile: string) {
  try {
    const pid = Number(readFileSync(pidfile, "utf8").trim());
    if (pid > 1) process.kill(pid, "SIGTERM");
  } catch {}
}

interface Writer {
  key: string;
  name: string;
  /** The binary it needs and the Debian package that has it. */
  needs?: string;
  pkg?: string;
  /** Writes the 200 MiB into `dir`; returns nanoseconds from its start until the file is whole (and the relay has exited). */
  run(dir: string): Promise<bigint>;
}

/** `sh -c script` in its own process group, timed to its exit; then the file's size checked. */
async function pipeline(dir: string, script: string, file: string, what: string) {
  const t0 = monotonicNs();
  const proc = spawnGroup(["sh", "-c", script], dir);
  const code = await waitGroup(proc, what);
  const t1 = monotonicNs();
  if (code !== 0) throw new Error(`${what} exited with ${code}`);
  expectSize(file, TOTAL, what);
  return t1 - t0;
}

/** daemonize with a log option, which brings in the monitor with --restart never: it exits and removes the pidfile when gen has. */
async function relay(dir: string, extra: string[], bytes: number, what: string) {
  const pidfile = `${dir}/relay.pid`;
  const log = `${dir}/relay.log`;
  pidfiles.add(pidfile);
  const t0 = monotonicNs();
  run([bin, "--log-max-size", "10G", ...extra, "-p", pidfile, "-o", log, "--", gen]);
  await until(() => !existsSync(pidfile), `${what}: the monitor did not exit`);
  const t1 = monotonicNs();
  expectSize(log, bytes, what);
  return t1 - t0;
}

const writers: Writer[] = [
  {
    key: "direct",
    name: "direct file: `gen > file` (a plain daemonize start)",
    async run(dir) {
      const file = `${dir}/direct.log`;
      const fd = openSync(file, "a");
      const t0 = monotonicNs();
      const proc = Bun.spawn([gen], { env, stdin: "ignore", stdout: fd, stderr: "ignore" });
      closeSync(fd);
      const code = await proc.exited;
      const t1 = monotonicNs();
      if (code !== 0) throw new Error(`gen exited with ${code}`);
      expectSize(file, TOTAL, "gen > file");
      return t1 - t0;
    },
  },
  {
    key: "cat",
    name: "`gen | cat > file`",
    run: (dir) => pipeline(dir, `${gen} | cat > ${dir}/cat.log`, `${dir}/cat.log`, "gen | cat"),
  },
  {
    key: "relay",
    name: "daemonize relay (`--log-max-size 10G -o FILE`)",
    run: (dir) => relay(dir, [], TOTAL, "daemonize relay"),
  },
  {
    key: "stamped",
    name: "daemonize relay `--log-timestamps`",
    run: (dir) => relay(dir, ["--log-timestamps"], LINES * (LINE + TIMESTAMP), "daemonize relay --log-timestamps"),
  },
  {
    // s: past the 200 MiB, so it never rotates; no t or T: no timestamps.
    key: "s6-log",
    name: "`gen | s6-log n2 s1000000000 DIR`",
    needs: "s6-log",
    pkg: "s6",
    run: (dir) => pipeline(dir, `${gen} | s6-log n2 s1000000000 ${dir}/s6`, `${dir}/s6/current`, "gen | s6-log"),
  },
  {
    key: "multilog",
    name: "`gen | multilog s16777215 n20 DIR`",
    needs: "multilog",
    pkg: "daemontools",
    async run(dir) {
      // Its largest file is 16 MiB - 1: it rotates a dozen times on the way, fsyncing each file; n20 keeps them all.
      const t0 = monotonicNs();
      const proc = spawnGroup(["sh", "-c", `${gen} | multilog s16777215 n20 ${dir}/multilog`], dir);
      const code = await waitGroup(proc, "gen | multilog");
      const t1 = monotonicNs();
      if (code !== 0) throw new Error(`gen | multilog exited with ${code}`);
      const files = readdirSync(`${dir}/multilog`).filter((f) => f === "current" || f.startsWith("@"));
      const bytes = files.reduce((sum, f) => sum + statSync(`${dir}/multilog/${f}`).size, 0);
      if (bytes !== TOTAL) throw new Error(`gen | multilog: ${bytes} bytes in ${files.length} files, not ${TOTAL}`);
      return t1 - t0;
    },
  },
  {
    key: "daemon",
    name: "libslack `daemon --stdout=FILE`",
    needs: "daemon",
    pkg: "daemon",
    async run(dir) {
      const pidfile = `${dir}/daemon.pid`;
      const log = `${dir}/daemon-out`;
      daemonPidfiles.add(pidfile);
      const t0 = monotonicNs();
      // --unsafe: as root it refuses a program under a world-writable directory, which /tmp is.
      run(["daemon", "--unsafe", `--pidfile=${pidfile}`, `--stdout=${log}`, "--", gen]);
      // It may return before it writes its pidfile: whole file and no pidfile is the end of it.
      await until(() => size(log) === TOTAL && !existsSync(pidfile), "libslack daemon: the relay did not finish");
      const t1 = monotonicNs();
      expectSize(log, TOTAL, "libslack daemon");
      return t1 - t0;
    },
  },
  {
    key: "supervisord",
    name: "supervisord `stdout_logfile=FILE` (from gen's start)",
    needs: "supervisord",
    pkg: "supervisor",
    async run(dir) {
      const log = `${dir}/supervisord-out`;
      const started = `${dir}/gen-started`;
      // A private instance: its own config, pidfile and logs, nothing under /etc or /run.
      writeFileSync(
        `${dir}/supervisord.conf`,
        `[supervisord]
nodaemon=true
user=root
logfile=${dir}/supervisord.log
pidfile=${dir}/supervisord.pid
childlogdir=${dir}

[program:gen]
command=${gen} ${started}
autorestart=false
startsecs=0
stdout_logfile=${log}
stdout_logfile_maxbytes=0
stderr_logfile=NONE
`,
      );
      const proc = spawnGroup(["supervisord", "-n", "-c", `${dir}/supervisord.conf`], dir);
      let t1 = 0n;
      try {
        await until(() => size(log) === TOTAL, "supervisord: the log did not reach 200 MiB");
        t1 = monotonicNs();
      } finally {
        proc.kill("SIGTERM");
        await waitGroup(proc, "supervisord after TERM");
      }
      // Still exactly 200 MiB once it is gone: gen ran once, and nothing came after.
      expectSize(log, TOTAL, "supervisord");
      return t1 - BigInt(readFileSync(started, "utf8").trim());
    },
  },
];

interface Case {
  how: string;
  supervise: boolean;
  /** The --ready argument and the program's arguments after its stamp file, for one start in `dir`. */
  args(dir: string): Promise<[string, string[]]>;
}
const protocols: [string, (dir: string) => Promise<[string, string[]]>][] = [
  ["notify", async () => ["notify", ["notify"]]],
  ["fd:3", async () => ["fd:3", ["fd"]]],
  [
    "file:PATH",
    async (dir) => {
      rmSync(`${dir}/ready-file`, { force: true });
      return [`file:${dir}/ready-file`, ["file", `${dir}/ready-file`]];
    },
  ],
  [
    "tcp:127.0.0.1:PORT",
    async () => {
      const port = freePort();
      return [`tcp:127.0.0.1:${port}`, ["tcp", String(port)]];
    },
  ],
];
const cases: Case[] = protocols.flatMap(([how, args]) => [false, true].map((supervise) => ({ how, supervise, args })));

/** One start: ms from the program's stamp (just before it is ready) to the launcher's exit; its daemon stopped after. */
async function readyStart(c: Case, dir: string): Promise<number> {
  const pidfile = `${dir}/ready-${c.supervise ? "supervise" : "plain"}.pid`;
  const stamp = `${dir}/ready-stamp`;
  pidfiles.add(pidfile);
  rmSync(stamp, { force: true });
  const [how, args] = await c.args(dir);
  const argv = [bin, ...(c.supervise ? ["--supervise"] : []), "--ready", how, "-p", pidfile, "--", ready, stamp, ...args];
  const r = Bun.spawnSync(argv, { env, stdin: "ignore", stdout: "ignore", stderr: "pipe" });
  const exited = monotonicNs();
  try {
    if (!r.success) throw new Error(`${argv.join(" ")}: exit ${r.exitCode}: ${r.stderr.toString().trim()}`);
    return Number(exited - BigInt(readFileSync(stamp, "utf8").trim())) / 1e6;
  } finally {
    if (existsSync(pidfile)) run([bin, "stop", "-p", pidfile]);
  }
}

/** Whatever a failed run left, stopped before its directory (and the pidfiles in it) goes. */
function stopLeftovers() {
  for (const pidfile of pidfiles)
    if (existsSync(pidfile) && !Bun.spawnSync([bin, "stop", "-p", pidfile], { env, stdout: "ignore", stderr: "ignore" }).success) terminate(pidfile);
  for (const pidfile of daemonPidfiles) terminate(pidfile);
  for (const pid of groups.keys()) killGroup(pid);
  groups.clear();
}
function cleanup() {
  stopLeftovers();
  rmSync(tmp, { recursive: true, force: true });
}
onInterrupt(cleanup);

/**
 * The bench runs a copy: a build during the run (npm test builds) would otherwise change the binary
 * between rows, or fail a start with ETXTBSY. A copy taken mid-build would not match the checksum
 * the build writes last.
 */
async function snapshot() {
  for (let attempt = 0; ; attempt++) {
    copyFileSync(`${root}dist/daemonize`, bin);
    const want = readFileSync(`${root}dist/daemonize.sha256`, "utf8").split(" ")[0];
    if (new Bun.CryptoHasher("sha256").update(await Bun.file(bin).bytes()).digest("hex") === want) return;
    if (attempt === 10) throw new Error("dist/daemonize does not match dist/daemonize.sha256: run npm run build");
    await Bun.sleep(3000);
  }
}

let failed = false;
try {
  await snapshot();
  run(["cc", "-O2", "-o", gen, `${gen}.c`]);
  run(["cc", "-O2", "-o", ready, `${ready}.c`]);

  const skipped: string[] = [];
  const present = writers.filter((w) => {
    if (!w.needs || Bun.which(w.needs)) return true;
    skipped.push(`${w.name} (apt-get install ${w.pkg})`);
    return false;
  });
  // One round each before any counts (page cache, binaries, Python's imports); then rounds of every
  // writer in turn, so that the machine's drift over a round falls on all of them alike.
  const samples: number[][] = present.map(() => []);
  for (let round = 0; round <= runs; round++)
    for (const [i, w] of present.entries()) {
      const dir = `${tmp}/run`;
      mkdirSync(dir);
      try {
        const ns = await w.run(dir);
        if (round > 0) samples[i]?.push(TOTAL / 2 ** 20 / (Number(ns) / 1e9));
      } finally {
        stopLeftovers();
        rmSync(dir, { recursive: true, force: true });
      }
    }
  const mibs = samples.map(median);
  const of = (key: string) => mibs[present.findIndex((w) => w.key === key)];

  console.log(`Log throughput: gen writes ${TOTAL / 2 ** 20} MiB of ${LINE}-byte lines to stdout as fast as it can (MiB/s of gen's output, median of ${runs} runs in interleaved rounds; higher is better)\n`);
  console.log("| writer | MiB/s | min … max |");
  console.log("|---|---:|---:|");
  present.forEach((w, i) => {
    const s = samples[i] as number[];
    console.log(`| ${w.name.replaceAll("|", "\\|")} | ${(mibs[i] as number).toFixed(0)} | ${Math.min(...s).toFixed(0)} … ${Math.max(...s).toFixed(0)} |`);
  });
  console.log(`
Each run is timed from its start until the file is whole and the writer or relay has exited; daemonize's
includes the launch and polling its pidfile every 2 ms until the monitor has removed it. supervisord's is timed
from gen's own start (it stamps CLOCK_MONOTONIC) until the file is whole: its start and the second its main loop
waits before it spawns a program are not log throughput. Every file is in ${tmp.slice(0, tmp.lastIndexOf("/"))} (${run(["findmnt", "-n", "-o", "FSTYPE", "--target", tmp]).trim()});
--log-timestamps writes ${TIMESTAMP} more bytes a line, not counted.`);
  if (skipped.length) console.log(`\nNot installed, skipped: ${skipped.join(", ")}.`);
  const ratio = (a?: number, b?: number) => (a && b ? (a / b).toFixed(2) : "—");
  const relayOverCat = ratio(of("relay"), of("cat"));
  const stampedOverS6 = ratio(of("stamped"), of("s6-log"));
  console.log(`\nRatios: daemonize relay ÷ cat ${relayOverCat} (target ≥ 1.0); daemonize relay --log-timestamps ÷ s6-log without timestamps ${stampedOverS6} (target ≥ 1.0).`);

  const latencies: number[][] = cases.map(() => []);
  for (let i = 0; i < WARMUP_STARTS + starts; i++)
    for (const [k, c] of cases.entries()) {
      const ms = await readyStart(c, tmp);
      if (i >= WARMUP_STARTS) latencies[k]?.push(ms);
    }
  const cell = (k: number) => {
    const x = latencies[k] as number[];
    return `${median(x).toFixed(2)} | ${Math.min(...x).toFixed(2)} … ${Math.max(...x).toFixed(2)}`;
  };
  console.log(`\nReadiness latency: from the program's stamp (CLOCK_MONOTONIC, just before it sends READY=1, writes the newline, creates the file or listens) to the launcher's exit as the bench's wait sees it (ms; ${starts} starts each in interleaved rounds)\n`);
  console.log("| `--ready` | plain: median | min … max | `--supervise`: median | min … max |");
  console.log("|---|---:|---:|---:|---:|");
  protocols.forEach(([how], p) => {
    const probed = how.startsWith("file") || how.startsWith("tcp") ? ` (polled every ${probeMs} ms)` : "";
    console.log(`| \`${how}\`${probed} | ${cell(2 * p)} | ${cell(2 * p + 1)} |`);
  });
  console.log(`
notify and fd: wake the launcher (or the monitor) as the program speaks. file: and tcp: are polled (PROBE_MS in ffi/ready.h): a plain
start's launcher looks as soon as the daemon has exec'd, the --supervise monitor as soon as the run has exec'd, then every ${probeMs} ms.
A program ready a millisecond after its exec, as this one is, is mostly missed by the first look and found by the next, ${probeMs} ms later.
Each start's daemon is stopped with \`daemonize stop\` before the next, outside the measurement.`);
} catch (e) {
  console.error(`bench: ${(e as Error).message}`);
  failed = true;
} finally {
  cleanup();
}
process.exit(failed ? 1 : 0);

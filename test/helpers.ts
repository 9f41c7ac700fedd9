// Shared by the end-to-end tests: run the built binary as a user would, judge the
// daemon it started from the outside, through /proc, and end every process a test
// started (each file registers `afterEach(cleanup)`).
import { test } from "bun:test";
import type { Supervised } from "../src/control";
import { chmodSync, existsSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync } from "node:fs";

export { freePort } from "../scripts/free-port";

export const ROOT = new URL("..", import.meta.url).pathname;
export const BIN = `${ROOT}dist/daemonize`;
export const isRoot = process.getuid?.() === 0;

const reported = new Set<string>();

/**
 * For a test or group that drives optional system tools, each a command or an absolute
 * path with the Debian package that has it: true (skip it) when one is missing, said once
 * on stderr. Under CI, which installs them all (.ci/run), a missing tool fails instead.
 */
export function missing(what: string, ...tools: [tool: string, pkg: string][]): boolean {
  const absent = tools.filter(([tool]) => !(tool.startsWith("/") ? existsSync(tool) : Bun.which(tool)));
  if (absent.length === 0) return false;
  if (reported.has(what)) return true;
  reported.add(what);
  const problem = `${absent.map(([tool]) => tool).join(", ")} not found (apt-get install ${[...new Set(absent.map(([, pkg]) => pkg))].join(" ")})`;
  if (process.env.CI)
    test(`${what}: optional tools installed`, () => {
      throw new Error(`${problem}; CI must have every optional tool`);
    });
  else process.stderr.write(`skip: ${what}: ${problem}\n`);
  return true;
}

if (!existsSync(BIN)) throw new Error(`${BIN} is missing: run \`npm run build\` (npm test does)`);

/** The program every end-to-end test starts as its daemon; static, so it also runs in a bare chroot. */
export const PROBE = (() => {
  const probe = `${ROOT}build/probe`;
  const cc = Bun.spawnSync(["cc", "-O2", "-static", "-o", probe, `${import.meta.dir}/probe.c`], { stderr: "pipe" });
  if (cc.exitCode !== 0) throw new Error(`cannot build the test probe: ${cc.stderr.toString()}`);
  return probe;
})();

export interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

export async function run(args: string[], opts: { cwd?: string; env?: Record<string, string> } = {}): Promise<Run> {
  const p = Bun.spawn([BIN, ...args], {
    cwd: opts.cwd ?? "/",
    env: opts.env ?? { PATH: process.env.PATH ?? "/usr/bin:/bin" },
    stdin: "ignore",
    stdout: "pipe",
    stderr: "pipe",
  });
  const [stdout, stderr, code] = await Promise.all([new Response(p.stdout).text(), new Response(p.stderr).text(), p.exited]);
  return { code, stdout, stderr };
}

/** What `daemonize status --json` says of a supervised daemon: the status, with the monitor's state as `state`. */
export type SupervisedJson = Omit<Supervised, "state"> & { running: boolean; state: string; pid: number };

/** `daemonize status --json` of one pidfile. */
export const supervisedStatus = async (pidfile: string): Promise<SupervisedJson> => JSON.parse((await run(["status", "--json", "-p", pidfile])).stdout);

/** Polls status until `ok` holds, or fails at the deadline; every status seen goes to `seen`. */
export async function statusWhen(pidfile: string, ok: (s: SupervisedJson) => boolean, what: string, seen: SupervisedJson[] = [], ms = 15_000): Promise<SupervisedJson> {
  const deadline = Date.now() + ms;
  for (;;) {
    const s = await supervisedStatus(pidfile);
    seen.push(s);
    if (ok(s)) return s;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}: ${JSON.stringify(s)}`);
    await Bun.sleep(20);
  }
}

/** Polls until fn returns something other than undefined/false, or fails at the deadline. */
export async function waitFor<T>(fn: () => T | undefined | null | false, what: string, ms = 5000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    let v: T | undefined | null | false;
    try {
      v = fn();
    } catch {
      v = undefined;
    }
    if (v !== undefined && v !== null && v !== false) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await Bun.sleep(5);
  }
}

export const alive = (pid: number): boolean => {
  try {
    const state = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]?.[0];
    return state !== "Z" && state !== "X";
  } catch {
    return false;
  }
};

/** Every process a test started; each is killed after the test, by pid. */
const started = new Set<number>();
const dirs = new Set<string>();

export const track = (pid: number): number => (started.add(pid), pid);

export async function kill(pid: number): Promise<void> {
  try {
    process.kill(pid, "SIGKILL");
  } catch {}
  await waitFor(() => !alive(pid), `pid ${pid} to end`);
  started.delete(pid);
}

/** Mount points below a directory, deepest first (/proc/self/mounts escapes a space as \\040). */
function mountsUnder(dir: string): string[] {
  return readFileSync("/proc/self/mounts", "utf8")
    .split("\n")
    .map((line) => (line.split(" ")[1] ?? "").replace(/\\([0-7]{3})/g, (_, o) => String.fromCharCode(Number.parseInt(o, 8))))
    .filter((point) => point.startsWith(`${dir}/`))
    .reverse();
}

export async function cleanup(): Promise<void> {
  for (const pid of [...started]) await kill(pid);
  const left = [...dirs];
  dirs.clear();
  // A test that failed before its own unmount must not make every later test fail too.
  for (const dir of left) {
    for (const point of mountsUnder(dir)) Bun.spawnSync(["umount", "-l", point]);
    rmSync(dir, { recursive: true, force: true });
  }
}

/** A fresh directory (0755, so a dropped user can reach files in it), removed after the test. */
export function tempDir(): string {
  const dir = mkdtempSync("/tmp/daemonize-test-");
  chmodSync(dir, 0o755);
  dirs.add(dir);
  return dir;
}

export function readPid(pidfile: string): number {
  const text = readFileSync(pidfile, "utf8");
  if (!/^\d+\n$/.test(text)) throw new Error(`pidfile holds ${JSON.stringify(text)}`);
  return Number(text);
}

/** Starts the probe with a pidfile and a log; returns the daemon's pid once it has reported. */
export async function startProbe(dir: string, extra: string[] = [], probeArgs: string[] = [], env?: Record<string, string>) {
  const pidfile = `${dir}/probe.pid`;
  const log = `${dir}/probe.log`;
  const r = await run(["--pidfile", pidfile, "--log", log, ...extra, "--", PROBE, ...probeArgs], { env });
  if (r.code !== 0) throw new Error(`start failed (${r.code}): ${r.stderr}`);
  const pid = track(readPid(pidfile));
  const report = await waitFor(() => readFileSync(log, "utf8").match(/^probe pid=(\d+) root=(\w+) tty=(.*)$/m), "the probe's report");
  return { pid, pidfile, log, report: { pid: Number(report[1]), root: report[2], tty: report[3] }, run: r };
}

/** /proc/PID/status as a map. */
export function procStatus(pid: number): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of readFileSync(`/proc/${pid}/status`, "utf8").split("\n")) {
    const i = line.indexOf(":");
    if (i > 0) out[line.slice(0, i)] = line.slice(i + 1).trim();
  }
  return out;
}

/** The fields of /proc/PID/stat that say how a process is attached. */
export function procStat(pid: number) {
  const text = readFileSync(`/proc/${pid}/stat`, "utf8");
  const f = text.slice(text.lastIndexOf(")") + 2).split(" ");
  return { state: f[0], ppid: Number(f[1]), pgrp: Number(f[2]), session: Number(f[3]), ttyNr: Number(f[4]) };
}

export function procFds(pid: number): Map<number, string> {
  const out = new Map<number, string>();
  for (const fd of readdirSync(`/proc/${pid}/fd`)) out.set(Number(fd), readlinkSync(`/proc/${pid}/fd/${fd}`));
  return out;
}

/** Live processes with an argument that holds `marker`: what a test's program tree left running. */
export function marked(marker: string): number[] {
  return readdirSync("/proc")
    .filter((e) => /^\d+$/.test(e))
    .map(Number)
    .filter((pid) => {
      try {
        return alive(pid) && procArgv(pid).some((a) => a.includes(marker));
      } catch {
        return false;
      }
    });
}

export const procArgv = (pid: number): string[] => readFileSync(`/proc/${pid}/cmdline`).toString().split("\0").slice(0, -1);

export function procEnv(pid: number): Map<string, string> {
  const out = new Map<string, string>();
  for (const e of readFileSync(`/proc/${pid}/environ`).toString().split("\0").slice(0, -1)) {
    const i = e.indexOf("=");
    out.set(e.slice(0, i), e.slice(i + 1));
  }
  return out;
}

/** A line of /proc/PID/limits as [soft, hard]. */
export function procLimit(pid: number, name: string): [string, string] {
  const line = readFileSync(`/proc/${pid}/limits`, "utf8").split("\n").find((l) => l.startsWith(name));
  if (!line) throw new Error(`no limit ${name}`);
  const cols = line.slice(26).trim().split(/\s+/);
  return [cols[0] as string, cols[1] as string];
}


/** A user other than root that the tests can drop to. */
export const NOBODY = { uid: 65534, gid: 65534 };

/** A process that is not a daemon of ours, alive before anything the test writes next. */
export async function bystander(): Promise<number> {
  const p = Bun.spawn(["sleep", "1000"]);
  await waitFor(() => alive(p.pid), "bystander");
  return track(p.pid);
}

/**
 * Kills the daemon `pid` and makes the kernel hand that same pid to an unrelated
 * `sleep` (root only: it writes ns_last_pid). Returns the sleep's pid, or 0 if
 * another process won the pid every time.
 */
export async function reusePid(pid: number): Promise<number> {
  await kill(pid);
  await waitFor(() => !existsSync(`/proc/${pid}`), "the dead daemon to be reaped");
  for (let i = 0; i < 50; i++) {
    const sh = Bun.spawnSync(["sh", "-c", `echo ${pid - 1} > /proc/sys/kernel/ns_last_pid; sleep 1000 >/dev/null 2>&1 </dev/null & echo $!`]);
    const got = track(Number(sh.stdout.toString()));
    if (got === pid) return got;
    await kill(got);
  }
  return 0;
}

/** Runs daemonize under a seccomp filter that makes memfd_create fail with EPERM. */
export const WITHOUT_MEMFD = `
import ctypes, os, platform, struct, sys
nr = {"x86_64": 319, "aarch64": 279}[platform.machine()]
code = [(0x20, 0, 0, 0), (0x15, 0, 1, nr), (0x06, 0, 0, 0x00050000 | 1), (0x06, 0, 0, 0x7fff0000)]
filt = b"".join(struct.pack("HBBI", *c) for c in code)
buf = ctypes.create_string_buffer(filt)
prog = struct.pack("HxxxxxxQ", len(code), ctypes.addressof(buf))
libc = ctypes.CDLL(None, use_errno=True)
assert libc.prctl(38, 1, 0, 0, 0) == 0
assert libc.prctl(22, 2, ctypes.c_char_p(prog), 0, 0) == 0
os.execv(sys.argv[1], sys.argv[1:])
`;

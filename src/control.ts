// status, stop and signal: act on the daemon a pidfile names, and only on it.
// A pid that now belongs to another process is never signalled: the identity
// check of src/pidfile.ts runs before every signal.
import { DaemonizeError, fail, STATUS_EXIT, STOP_EXIT } from "./errors";
import { checkDirectory, type Examined, examine, unpublish } from "./pidfile";
import { commandLine, processUid, startedAtMs, startTicks } from "./proc";
import { userName } from "./privileges";

/** Linux signal numbers (the same on x86_64 and aarch64). */
const SIGNALS: Record<string, number> = {
  HUP: 1, INT: 2, QUIT: 3, ILL: 4, TRAP: 5, ABRT: 6, IOT: 6, BUS: 7, FPE: 8, KILL: 9, USR1: 10, SEGV: 11, USR2: 12,
  PIPE: 13, ALRM: 14, TERM: 15, STKFLT: 16, CHLD: 17, CONT: 18, STOP: 19, TSTP: 20, TTIN: 21, TTOU: 22, URG: 23,
  XCPU: 24, XFSZ: 25, VTALRM: 26, PROF: 27, WINCH: 28, IO: 29, POLL: 29, PWR: 30, SYS: 31,
};

/** A signal by name (HUP, SIGHUP, hup) or number (1 to 64). */
export function parseSignal(text: string): number {
  if (/^\d{1,2}$/.test(text) && Number(text) >= 1 && Number(text) <= 64) return Number(text);
  const n = SIGNALS[text.toUpperCase().replace(/^SIG/, "")];
  if (n === undefined) fail("usage", `unknown signal ${JSON.stringify(text)}`);
  return n as number;
}

export type Step = { signal: number } | { seconds: number };

/**
 * start-stop-daemon's --retry: TERM/30/KILL/5 (a signal may carry a leading
 * dash), or a plain number N meaning TERM/N/KILL/N.
 */
export function parseSchedule(text: string): Step[] {
  const seconds = (item: string) => {
    if (!/^\d{1,6}(\.\d+)?$/.test(item)) fail("usage", `--retry ${JSON.stringify(text)}: ${JSON.stringify(item)} is neither a signal nor a number of seconds`);
    return Number(item);
  };
  if (!text.includes("/")) {
    const n = seconds(text);
    return [{ signal: 15 }, { seconds: n }, { signal: 9 }, { seconds: n }];
  }
  const steps = text.split("/").map((item): Step => (/^[\d.]+$/.test(item) ? { seconds: seconds(item) } : { signal: parseSignal(item.replace(/^-/, "")) }));
  if (!steps.some((s) => "seconds" in s)) fail("usage", `--retry ${JSON.stringify(text)} never waits`);
  return steps;
}

export interface Status {
  state: keyof typeof STATUS_EXIT;
  pidfile: string;
  pid?: number;
  startedAt?: string;
  uptimeSeconds?: number;
  user?: string;
  commandLine?: string[];
  message: string;
}

/** What an untrusted or unreadable pidfile becomes for a control command. */
function examineOrExplain(path: string, unsafe: boolean): Examined | { state: "unusable"; message: string } {
  try {
    const found = examine(path, unsafe);
    if (found.state !== "none") checkDirectory(path, unsafe);
    return found;
  } catch (e) {
    if (e instanceof DaemonizeError) return { state: "unusable", message: e.message };
    throw e;
  }
}

const duration = (s: number) => {
  const d = Math.floor(s / 86400);
  const h = Math.floor((s % 86400) / 3600);
  const m = Math.floor((s % 3600) / 60);
  return d ? `${d}d${h}h` : h ? `${h}h${m}m` : m ? `${m}m${Math.floor(s % 60)}s` : `${Math.floor(s)}s`;
};

export function status(pidfile: string, unsafe: boolean): Status {
  const found = examineOrExplain(pidfile, unsafe);
  switch (found.state) {
    case "none":
      return { state: "stopped", pidfile, message: "not running" };
    case "unusable":
      return { state: "unknown", pidfile, message: `unknown: ${found.message}` };
    case "dead":
      return { state: "dead", pidfile, pid: found.pid, message: `not running, but pidfile ${pidfile} names pid ${found.pid}` };
  }
  const started = startedAtMs(found.ticks);
  const uptimeSeconds = Math.max(0, Math.round((Date.now() - started) / 1000));
  const uid = processUid(found.pid);
  const user = uid === undefined ? undefined : userName(uid);
  return {
    state: "running",
    pidfile,
    pid: found.pid,
    startedAt: new Date(started).toISOString(),
    uptimeSeconds,
    user,
    commandLine: commandLine(found.pid),
    message: `running (pid ${found.pid}, up ${duration(uptimeSeconds)}${user ? `, user ${user}` : ""})`,
  };
}

export interface Outcome {
  code: number;
  message: string;
}

const outcome = (kind: keyof typeof STOP_EXIT, message: string): Outcome => ({ code: STOP_EXIT[kind].code, message });

/** Sends sig unless the pid has moved on; "gone" when it has. */
function deliver(pid: number, ticks: number, sig: number): "sent" | "gone" | Outcome {
  if (startTicks(pid) !== ticks) return "gone";
  try {
    process.kill(pid, sig);
    return "sent";
  } catch (e) {
    const code = (e as { code?: string }).code;
    if (code === "ESRCH") return "gone";
    return outcome("failed", `cannot signal pid ${pid}: ${code === "EPERM" ? "Operation not permitted" : (e as Error).message}`);
  }
}

/** Sends the signals and waits as the schedule says; removes the pidfile once the process is gone. */
export async function stop(pidfile: string, schedule: Step[], unsafe: boolean): Promise<Outcome> {
  const found = examineOrExplain(pidfile, unsafe);
  if (found.state === "unusable") return outcome("failed", found.message);
  if (found.state !== "running") return outcome("done", "not running");
  const { pid, ticks } = found;
  const gone = () => startTicks(pid) !== ticks;
  for (const step of schedule) {
    if ("signal" in step) {
      const r = deliver(pid, ticks, step.signal);
      if (typeof r === "object") return r;
      if (r === "gone") break;
      continue;
    }
    const deadline = Date.now() + step.seconds * 1000;
    while (!gone() && Date.now() < deadline) await Bun.sleep(10);
    if (gone()) break;
  }
  if (!gone()) return outcome("timeout", `pid ${pid} is still running after the schedule`);
  unpublish(pidfile, pid);
  return outcome("done", `stopped (pid ${pid})`);
}

export function signal(pidfile: string, sig: number, unsafe: boolean): Outcome {
  const found = examineOrExplain(pidfile, unsafe);
  if (found.state === "unusable") return outcome("failed", found.message);
  if (found.state !== "running") return outcome("failed", "not running");
  const r = deliver(found.pid, found.ticks, sig);
  if (r === "gone") return outcome("failed", "not running");
  return r === "sent" ? outcome("done", `sent signal ${sig} to pid ${found.pid}`) : r;
}

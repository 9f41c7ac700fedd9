// status, stop and signal: act on the daemon a pidfile names, and only on it.
// A pid that now belongs to another process is never signalled: the identity
// check of src/pidfile.ts runs before every signal.
import { DaemonizeError, type StatusState, STOP_EXIT } from "./errors";
import { checkDirectory, type Examined, examine, unpublish, type Verdicts } from "./pidfile";
import { commandLine, processUid, startedAtMs, startTicks } from "./proc";
import { userName } from "./privileges";
import type { Step } from "./signals";
import { close, E, kill, OsError, pidfdOpen, pidfdSignal } from "./sys";

export interface Status {
  state: StatusState;
  pidfile: string;
  pid?: number;
  startedAt?: string;
  uptimeSeconds?: number;
  user?: string;
  commandLine?: string[];
  message: string;
}

/** What an untrusted or unreadable pidfile becomes for a control command. */
function examineOrExplain(path: string, unsafe: boolean, verdicts?: Verdicts): Examined | { state: "unusable"; message: string } {
  try {
    const found = examine(path, unsafe);
    if (found.state !== "none") checkDirectory(path, unsafe, verdicts);
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

function status(pidfile: string, unsafe: boolean, verdicts: Verdicts): Status {
  const found = examineOrExplain(pidfile, unsafe, verdicts);
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


/** Each pidfile's status, in the order given; a directory they share is judged once. */
export function statuses(pidfiles: string[], unsafe: boolean): Status[] {
  const verdicts: Verdicts = new Map();
  return pidfiles.map((pidfile) => status(pidfile, unsafe, verdicts));
}

export interface Outcome {
  code: number;
  message: string;
}

const outcome = (kind: keyof typeof STOP_EXIT, message: string): Outcome => ({ code: STOP_EXIT[kind].code, message });

/**
 * Sends sig unless the pid has moved on; "gone" when it has. The process is
 * pinned with a pidfd before its identity is checked, so the signal cannot
 * reach a process that took over the pid in between (kill() by pid, kept for
 * kernels before 5.3, can).
 */
function deliver(pid: number, ticks: number, sig: number): "sent" | "gone" | Outcome {
  let fd: number | undefined;
  try {
    fd = pidfdOpen(pid);
  } catch (e) {
    if (!(e instanceof OsError)) throw e;
    if (e.errno === E.ESRCH) return "gone";
    if (e.errno !== E.ENOSYS) return outcome("failed", `cannot signal pid ${pid}: ${e.message}`);
  }
  try {
    if (startTicks(pid) !== ticks) return "gone";
    if (fd === undefined) kill(pid, sig);
    else pidfdSignal(fd, sig);
    return "sent";
  } catch (e) {
    if (!(e instanceof OsError)) throw e;
    if (e.errno === E.ESRCH) return "gone";
    return outcome("failed", `cannot signal pid ${pid}: ${e.message}`);
  } finally {
    if (fd !== undefined) close(fd);
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


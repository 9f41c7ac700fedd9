// status, stop and signal: act on the daemon a pidfile names, and only on it.
// A pid that now belongs to another process is never signalled: the identity
// check of src/pidfile.ts runs before every signal.
import { CONTROL, DEFAULTS, HEALTH_STATES, LIVENESS_FAILURES, MONITOR_STATE_FIELDS, MONITOR_STATES, type MonitorState } from "./contract";
import { CONTROL_EXIT, DaemonizeError, EXIT, type StatusState } from "./errors";

type HealthState = (typeof HEALTH_STATES)[number];
type LivenessFailure = (typeof LIVENESS_FAILURES)[number];
import { checkDirectory, type Examined, examine, unpublish, type Verdicts } from "./pidfile";
import { commandLine, processUid, startedAtMs, startTicks } from "./proc";
import { userName } from "./privileges";
import type { Step } from "./signals";
import type { Accounting } from "./cgroup";
import { close, E, kill, OsError, pidfdOpen, pidfdSignal, sigqueue } from "./sys";

export interface Status {
  state: StatusState;
  pidfile: string;
  pid?: number;
  startedAt?: string;
  uptimeSeconds?: number;
  user?: string;
  commandLine?: string[];
  /** When a monitor runs the program (--supervise). */
  supervised?: Supervised;
  /** --cgroup: what the daemon's cgroup reports (src/cgroup.ts). */
  cgroup?: Accounting;
  message: string;
}

/** The pidfile's cgroup, if it records one that is still there and its own; src/cgroup.ts is loaded only then. */
async function cgroupOf(found: { cgroup?: string }, pidfile: string): Promise<{ path: string; stopTimeout: number; module: typeof import("./cgroup") } | undefined> {
  if (found.cgroup === undefined) return undefined;
  const module = await import("./cgroup");
  const r = module.parseRecord(found.cgroup);
  return r && module.ours(r.path, pidfile) ? { ...r, module } : undefined;
}

/** The status message's cgroup part: its figures, or for a daemon that is gone, what it left behind. */
async function withCgroup(s: Status, found: { cgroup?: string }): Promise<Status> {
  const cg = await cgroupOf(found, s.pidfile);
  const a = cg?.module.accounting(cg.path);
  if (!cg || !a) return s;
  if (s.state === "running") return { ...s, cgroup: a, message: `${s.message}; ${cg.module.accountingText(a)}` };
  if (a.processes === 0) return { ...s, cgroup: a };
  return { ...s, cgroup: a, message: `${s.message}; ${a.processes} process(es) of it are left in cgroup ${a.path} (stop or start ends them)` };
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

async function status(pidfile: string, unsafe: boolean, verdicts: Verdicts): Promise<Status> {
  const found = examineOrExplain(pidfile, unsafe, verdicts);
  const s = plainStatus(pidfile, found);
  return found.state === "dead" || found.state === "running" ? withCgroup(s, found) : s;
}

function plainStatus(pidfile: string, found: ReturnType<typeof examineOrExplain>): Status {
  switch (found.state) {
    case "none":
      return { state: "stopped", pidfile, message: "not running" };
    case "unusable":
      return { state: "unknown", pidfile, message: `unknown: ${found.message}` };
    case "dead": {
      const monitor = found.monitor === undefined ? undefined : supervised(found.monitor, false);
      if (monitor?.state === "failed")
        return { state: "dead", pidfile, pid: found.pid, supervised: monitor, message: `failed: ${monitor.restarts} restarts, last ${lastExitText(monitor.lastExit)}${typeof monitor.lastFailure === "string" ? ` (${monitor.lastFailure})` : ""}; the monitor (pid ${found.pid}) gave up` };
      return { state: "dead", pidfile, pid: found.pid, message: `not running, but pidfile ${pidfile} names pid ${found.pid}` };
    }
  }
  const monitor = found.monitor === undefined ? undefined : supervised(found.monitor, true);
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
    ...(monitor ? { supervised: monitor } : {}),
    message: `running (pid ${found.pid}, up ${duration(uptimeSeconds)}${user ? `, user ${user}` : ""})${monitor ? `; ${describeMonitor(monitor)}` : ""}`,
  };
}

/** What the monitor says of its program, from the attribute ffi/monitor.c keeps on the pidfile. */
export interface Supervised {
  state: MonitorState;
  child?: number;
  restarts: number;
  childUptimeSeconds?: number;
  lastExit: { code: number } | { signal: number } | null;
  stopTimeoutMs: number;
  logReopens: number;
  /** --ready notify: the program's last STATUS=, and its MAINPID= if it gave one. */
  notifyStatus?: string;
  mainPid?: number;
  /** How the runs say they are ready: reload needs them told (notify, fd:N), not probed (tcp:, file:). */
  ready: "none" | "told" | "probed";
  /** Reloads finished (ffi/reload.c), and how the last one ended. */
  reloads: number;
  reloadOutcome: { outcome: string; n: number };
  /** Reloads still to finish: one under way, and one asked for after it. */
  reloadPending: number;
  /** While a reload overlaps two runs: the old one, running until the new one is ready, then draining. */
  old?: { child: number; state: "running" | "draining"; uptimeSeconds: number };
  /** --watchdog: this run's period, and how long ago the last WATCHDOG=1 came (null: none yet). */
  watchdog?: { periodMs: number; lastPingAgoMs: number | null };
  /** --health: this run's state, and the last probe's result. */
  health?: { state: HealthState; failures: number; retries: number; lastProbe: Probe | null };
  /** --max-memory: the run's tree's resident memory at the last look. */
  memoryBytes?: number;
  /** Why the last failed run failed: a liveness check, or its exit. */
  lastFailure: LivenessFailure | Exit | null;
}

type Exit = { code: number } | { signal: number };
export interface Probe {
  ok: boolean;
  /** connected, http:CODE, errno:N, timeout, exit:CODE, signal:N or badreply, as ffi/health.c names it. */
  result: string;
  /** What the result means, in words. */
  detail: string;
  at: string;
}

const exitOf = (text: string | undefined): Exit | null =>
  text?.startsWith("exit:") ? { code: Number(text.slice(5)) } : text?.startsWith("signal:") ? { signal: Number(text.slice(7)) } : null;

function probeOf(text: string | undefined): Probe | null {
  const m = /^([+-])([a-z]+)(?::(\d+))?@(\d+)$/.exec(text ?? "");
  if (!m) return null;
  const [, sign, kind, value, at] = m as unknown as [string, string, string, string | undefined, string];
  const n = Number(value);
  const detail =
    kind === "connected" ? "connected" : kind === "http" ? `HTTP ${n}` : kind === "errno" ? new OsError(n).message.toLowerCase()
    : kind === "timeout" ? "timed out" : kind === "exit" ? `exited with code ${n}` : kind === "signal" ? `killed by signal ${n}` : "not an HTTP answer";
  return { ok: sign === "+", result: value === undefined ? kind : `${kind}:${value}`, detail, at: new Date(Number(at)).toISOString() };
}

/** The liveness fields of the state (MONITOR_STATE_FIELDS), "-" when off. */
function liveness(f: Record<"watchdog" | "health" | "probe" | "memory" | "failure", string | undefined>): Partial<Supervised> {
  const [period, last] = (f.watchdog ?? "-").split(":").map(Number);
  const [state, failures, retries] = (f.health ?? "-").split(":");
  const failure = LIVENESS_FAILURES.find((name) => name === f.failure) ?? exitOf(f.failure);
  return {
    ...(f.watchdog && f.watchdog !== "-" ? { watchdog: { periodMs: period as number, lastPingAgoMs: last ? Math.max(0, Date.now() - (last as number)) : null } } : {}),
    ...(HEALTH_STATES.includes(state as HealthState)
      ? { health: { state: state as HealthState, failures: Number(failures) || 0, retries: Number(retries) || 0, lastProbe: probeOf(f.probe) } }
      : {}),
    ...(f.memory && f.memory !== "-" ? { memoryBytes: Number(f.memory) } : {}),
    lastFailure: failure,
  };
}

/**
 * MONITOR_STATE_FIELDS, then on a line of its own the program's last STATUS=; `live`: the monitor is running.
 */
function supervised(text: string, live: boolean): Supervised | undefined {
  const newline = text.indexOf("\n");
  const said = newline < 0 ? "" : text.slice(newline + 1);
  const fields = (newline < 0 ? text : text.slice(0, newline)).split(" ");
  const named = Object.fromEntries(MONITOR_STATE_FIELDS.map((name, i) => [name, fields[i]])) as Record<(typeof MONITOR_STATE_FIELDS)[number], string | undefined>;
  const { state, child, restarts, runStartedMs: started, lastExit: last, stopTimeoutMs: stop, reopens, mainPid: main, ...reload } = named;
  if (!MONITOR_STATES.includes(state as MonitorState)) return undefined;
  const pid = live && Number(child) > 0 ? Number(child) : undefined;
  const lastExit = exitOf(last);
  return {
    state: state as Supervised["state"],
    ...(pid ? { child: pid, childUptimeSeconds: Math.max(0, Math.round((Date.now() - Number(started)) / 1000)) } : {}),
    restarts: Number(restarts) || 0,
    lastExit,
    stopTimeoutMs: Number(stop) || 0,
    logReopens: Number(reopens) || 0,
    ...(said ? { notifyStatus: said } : {}),
    ...(Number(main) > 1 ? { mainPid: Number(main) } : {}),
    ready: reload.ready === "1" ? "told" : reload.ready === "2" ? "probed" : "none",
    reloads: Number(reload.reloads) || 0,
    reloadOutcome: { outcome: reload.reloadOutcome?.split(":")[0] ?? "none", n: Number(reload.reloadOutcome?.split(":")[1]) || 0 },
    reloadPending: Number(reload.reloadPending) || 0,
    ...(live && Number(reload.oldChild) > 0
      ? {
          old: {
            child: Number(reload.oldChild),
            state: state === "reloading" ? "running" : "draining",
            uptimeSeconds: Math.max(0, Math.round((Date.now() - Number(reload.oldStartedMs)) / 1000)),
          },
        }
      : {}),
    lastFailure: null,
    ...liveness(named),
  };
}

const lastExitText = (e: Supervised["lastExit"]) => (e === null ? "exit: none yet" : "code" in e ? `exit code ${e.code}` : `killed by signal ${e.signal}`);

const seconds = (ms: number) => `${(ms / 1000).toFixed(ms < 10_000 ? 1 : 0)}s`;

/** --watchdog, --health and --max-memory, as the monitor last saw them. */
function describeLiveness(m: Supervised): string {
  const parts: string[] = [];
  const w = m.watchdog;
  if (w) parts.push(`watchdog ${w.lastPingAgoMs === null ? "not heard yet" : `heard ${seconds(w.lastPingAgoMs)} ago`} (every ${w.periodMs ? seconds(w.periodMs) : "-: off"})`);
  const h = m.health;
  if (h) {
    const probe = h.lastProbe ? `, last probe ${h.lastProbe.detail} ${seconds(Math.max(0, Date.now() - Date.parse(h.lastProbe.at)))} ago` : "";
    parts.push(`${h.state === "unhealthy" ? `unhealthy (${h.failures} of ${h.retries})` : h.state}${probe}`);
  }
  if (m.memoryBytes !== undefined) parts.push(`memory ${(m.memoryBytes / 2 ** 20).toFixed(1)} MiB`);
  // A run that failed by its exit is the last exit, said already.
  if (typeof m.lastFailure === "string") parts.push(`last failure: ${m.lastFailure}`);
  return parts.map((p) => `, ${p}`).join("");
}

function describeMonitor(m: Supervised): string {
  const program = m.child ? `program pid ${m.child} ${m.state}, up ${duration(m.childUptimeSeconds ?? 0)}` : `program ${m.state}`;
  const said = m.notifyStatus ? `, status ${JSON.stringify(m.notifyStatus)}` : "";
  const old = m.old ? `; old program pid ${m.old.child} ${m.old.state}, up ${duration(m.old.uptimeSeconds)}` : "";
  return `${program}${old}, ${m.restarts} restart${m.restarts === 1 ? "" : "s"}${m.lastExit ? `, last ${lastExitText(m.lastExit)}` : ""}${said}${describeLiveness(m)}`;
}

/** Each pidfile's status, in the order given; a directory they share is judged once. */
export async function statuses(pidfiles: string[], unsafe: boolean): Promise<Status[]> {
  const verdicts: Verdicts = new Map();
  const all: Status[] = [];
  for (const pidfile of pidfiles) all.push(await status(pidfile, unsafe, verdicts));
  return all;
}

export interface Outcome {
  code: number;
  message: string;
  /** Said even when it worked: what was left undone. */
  warning?: string;
}

const outcome = (kind: keyof typeof CONTROL_EXIT, message: string): Outcome => ({ code: CONTROL_EXIT[kind].code, message });

/**
 * Sends sig unless the pid has moved on; "gone" when it has. The process is
 * pinned with a pidfd before its identity is checked, so the signal cannot
 * reach a process that took over the pid in between (kill() by pid, kept for
 * kernels before 5.3, can).
 */
function deliver(pid: number, ticks: number, sig: number, value?: number): "sent" | "gone" | Outcome {
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
    if (value !== undefined) sigqueue(fd, pid, sig, value);
    else if (fd === undefined) kill(pid, sig);
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
  if (found.state === "dead") {
    // A killed monitor's program's children: nothing but the cgroup still knows them.
    const left = found.cgroup === undefined ? undefined : (await import("./cgroup")).leftBehind(found.cgroup, pidfile, true);
    return outcome("done", left ? `not running; ${left}` : "not running");
  }
  if (found.state !== "running") return outcome("done", "not running");
  const cg = await cgroupOf(found, pidfile);
  const { pid, ticks } = found;
  const monitor = found.monitor === undefined ? undefined : supervised(found.monitor, true);
  const gone = () => startTicks(pid) !== ticks;
  for (const step of schedule) {
    if ("signal" in step) {
      const r = deliver(pid, ticks, step.signal);
      if (typeof r === "object") return r;
      if (r === "gone") break;
      continue;
    }
    // A monitor stops its program's whole tree first: killing it sooner would cut that short.
    const deadline = Date.now() + Math.max(step.seconds * 1000, monitor ? monitor.stopTimeoutMs + 2000 : 0);
    while (!gone() && Date.now() < deadline) await Bun.sleep(10);
    if (gone()) break;
  }
  if (!gone()) return outcome("timeout", `pid ${pid} is still running after the schedule`);
  // Whatever of the tree outlived the daemon (a monitor has emptied and removed it already).
  if (cg) cg.module.end(cg.path, cg.stopTimeout);
  const kept = unpublish(pidfile, pid);
  return { ...outcome("done", `stopped (pid ${pid})`), ...(kept && { warning: `stopped pid ${pid}, but could not remove its pidfile: ${kept}` }) };
}


export function signal(pidfile: string, sig: number, unsafe: boolean): Outcome {
  const found = examineOrExplain(pidfile, unsafe);
  if (found.state === "unusable") return outcome("failed", found.message);
  if (found.state !== "running") return outcome("failed", "not running");
  if (found.monitor !== undefined) {
    // TERM itself must reach the program, not stop the monitor: the monitor delivers it.
    const m = supervised(found.monitor, true);
    if (!m?.child) return outcome("failed", `the program is not running (${m?.state ?? "unknown state"}); its monitor is pid ${found.pid}`);
    const r = deliver(found.pid, found.ticks, CONTROL.signal, sig);
    if (r === "gone") return outcome("failed", "not running");
    return r === "sent" ? outcome("done", `sent signal ${sig} to the program (pid ${m.child}) through its monitor (pid ${found.pid})`) : r;
  }
  const r = deliver(found.pid, found.ticks, sig);
  if (r === "gone") return outcome("failed", "not running");
  return r === "sent" ? outcome("done", `sent signal ${sig} to pid ${found.pid}`) : r;
}

/**
 * `restart` without a program: the monitor stops the program's tree as a stop
 * would and starts it again at once. Returns when the new run is up.
 */
export async function restartProgram(pidfile: string, unsafe: boolean): Promise<Outcome> {
  const found = examineOrExplain(pidfile, unsafe);
  if (found.state === "unusable") return outcome("failed", found.message);
  if (found.state !== "running") return outcome("failed", "not running");
  const before = found.monitor === undefined ? undefined : supervised(found.monitor, true);
  if (!before) return outcome("failed", `pidfile ${pidfile} names no monitor (started without --supervise): give the program to restart it`);
  const r = deliver(found.pid, found.ticks, CONTROL.signal, CONTROL.restart);
  if (r === "gone") return outcome("failed", "not running");
  if (r !== "sent") return r;
  const deadline = Date.now() + before.stopTimeoutMs + 30_000;
  while (Date.now() < deadline) {
    await Bun.sleep(10);
    const now = examineOrExplain(pidfile, unsafe);
    if (now.state !== "running" || now.pid !== found.pid) return outcome("failed", "the monitor exited while restarting the program");
    const m = now.monitor === undefined ? undefined : supervised(now.monitor, true);
    if (!m || m.restarts <= before.restarts) continue;
    if (m.state === "running") return outcome("done", `restarted the program: pid ${m.child}${before.child ? ` (was pid ${before.child})` : ""}`);
    if (m.state === "backoff" || m.state === "failed") return outcome("failed", `the program did not start again: last ${lastExitText(m.lastExit)}`);
  }
  return outcome("timeout", "the program was not running again before the deadline");
}

/** Why a reload failed, from the monitor's outcome (RELOAD_OUTCOMES), and its exit code: 75 not ready in time, else 69. */
function reloadFailure({ outcome: o, n }: Supervised["reloadOutcome"]): Outcome {
  const why =
    o === "exited" ? `exited with code ${n}`
    : o === "killed" ? `was killed by signal ${n}`
    : o === "timeout" ? "was not ready within --ready-timeout"
    : o === "errno" ? `reported ERRNO=${n} (${new OsError(n).message})`
    : o === "closed" ? "closed its readiness fd without writing a newline"
    : `could not be started${n ? `: ${new OsError(n).message}` : ""}`;
  const code = o === "timeout" ? EXIT.readytimeout.code : EXIT.notready.code;
  if (o === "stopped") return { code, message: "reload cut short: the daemon was stopped or restarted meanwhile, both runs with it" };
  return { code, message: `reload failed: the new run ${why}; it was stopped, and the old run serves on` };
}

/**
 * `reload`: the monitor starts a new run beside the one serving and stops the old
 * one only once the new one is ready (ffi/reload.c). Returns when the reload is
 * over: the new run ready and the old one gone, or the new one stopped and the old
 * one serving. A reload asked for while one is under way waits for it, then runs.
 */
export async function reload(pidfile: string, unsafe: boolean): Promise<Outcome> {
  const found = examineOrExplain(pidfile, unsafe);
  if (found.state === "unusable") return outcome("failed", found.message);
  if (found.state !== "running") return outcome("failed", "not running");
  const before = found.monitor === undefined ? undefined : supervised(found.monitor, true);
  const needs = "reload needs a supervised daemon started with --ready, so that a new run can be known ready before the old one is stopped";
  if (!before) return { code: EXIT.usage.code, message: `${needs}: pidfile ${pidfile} names pid ${found.pid}, started without --supervise` };
  if (before.ready === "none") return { code: EXIT.usage.code, message: `${needs}: the daemon (monitor pid ${found.pid}) was started without --ready` };
  if (before.ready === "probed")
    return { code: EXIT.usage.code, message: "reload needs --ready notify or fd:N: a tcp: or file: probe would find the old run's port or file and call the new run ready at once" };
  // The one under way and one queued after it finish before this one's turn; a queued one is this one too.
  const target = before.reloads + Math.min(before.reloadPending + 1, 2);
  const r = deliver(found.pid, found.ticks, CONTROL.signal, CONTROL.reload);
  if (r === "gone") return outcome("failed", "not running");
  if (r !== "sent") return r;
  // The monitor bounds each reload by --ready-timeout, then --stop-timeout and KILL (its settings are in its argv);
  // one under way and this one, and a margin for starting and for a program that is restarting.
  const setting = commandLine(found.pid).find((a) => a.startsWith("ready-timeout="));
  const readyTimeout = setting ? Number(setting.slice(14)) : DEFAULTS.readyTimeout;
  const deadline = Date.now() + (target - before.reloads) * (readyTimeout + 2 * before.stopTimeoutMs + 30_000);
  for (;;) {
    await Bun.sleep(10);
    if (Date.now() > deadline) return outcome("timeout", "the monitor did not finish the reload in time");
    const now = examineOrExplain(pidfile, unsafe);
    if (now.state !== "running" || now.pid !== found.pid) return outcome("failed", "the monitor exited during the reload");
    const m = now.monitor === undefined ? undefined : supervised(now.monitor, true);
    if (!m || m.reloads < target) continue;
    if (m.reloadOutcome.outcome !== "ok") return reloadFailure(m.reloadOutcome);
    return outcome("done", `reloaded: the program is pid ${m.child}${before.child ? ` (was pid ${before.child}, now stopped)` : ""}`);
  }
}

/**
 * logrotate's postrotate: the monitor reopens the log files by name; or, with `rotate`, rotates
 * them first as --log-max-size would. Returns once it has (a rotation counts as a reopen).
 */
export async function reopenLogs(pidfile: string, unsafe: boolean, rotate = false): Promise<Outcome> {
  const found = examineOrExplain(pidfile, unsafe);
  if (found.state === "unusable") return outcome("failed", found.message);
  if (found.state !== "running") return outcome("failed", "not running");
  const before = found.monitor === undefined ? undefined : supervised(found.monitor, true);
  if (!before)
    return outcome("failed", `pidfile ${pidfile} names a daemon that writes its own logs: rotate them with copytruncate, or start it with --supervise, --log-max-size, --log-timestamps or --syslog`);
  const r = deliver(found.pid, found.ticks, CONTROL.signal, rotate ? CONTROL.rotate : CONTROL.reopen);
  if (r === "gone") return outcome("failed", "not running");
  if (r !== "sent") return r;
  const done = rotate ? "rotated" : "reopened";
  const deadline = Date.now() + 5000;
  while (Date.now() < deadline) {
    const now = examineOrExplain(pidfile, unsafe);
    if (now.state !== "running" || now.pid !== found.pid) return outcome("failed", `the monitor exited before it ${done} the logs`);
    const m = now.monitor === undefined ? undefined : supervised(now.monitor, true);
    if (m && m.logReopens > before.logReopens) return outcome("done", `${done} the logs (monitor pid ${found.pid})`);
    await Bun.sleep(5);
  }
  return outcome("timeout", `the monitor did not ${rotate ? "rotate" : "reopen"} the logs within 5 s`);
}

/** `logs`: the daemon's log (its stdout's, or stderr's when only that has one), as the pidfile records it. */
export async function logs(pidfile: string, lines: number, follow: boolean, unsafe: boolean): Promise<Outcome> {
  const found = examineOrExplain(pidfile, unsafe);
  if (found.state === "unusable") return outcome("failed", found.message);
  if (found.state === "none") return outcome("failed", `no pidfile ${pidfile}`);
  const path = found.logs?.[0];
  if (!path) return outcome("failed", `pidfile ${pidfile} records no log file: the daemon's output goes to /dev/null or syslog`);
  const { printLog } = await import("./logtail");
  try {
    await printLog(path, lines, follow);
  } catch (e) {
    if (!(e instanceof OsError)) throw e;
    return outcome("failed", `cannot read log ${path}: ${e.message}`);
  }
  return outcome("done", `printed ${path}`);
}

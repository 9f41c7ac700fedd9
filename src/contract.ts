// What the TypeScript side and the native side must agree on, declared once. scripts/build.ts
// writes build/contract.h from it (and from the exit codes in errors.ts) for every C file;
// TypeScript imports it. test/contract.test.ts fails on any drift.
import { fieldOf, RUN_SETTINGS } from "./settings";

/** The child path's steps in the order it takes them (C name, name in messages), then what the launcher saw instead. */
export const STEPS = [
  ["READY", "ready"], ["PIPE", "pipe"], ["FORK", "fork"], ["SETSID", "setsid"], ["FORK2", "fork"],
  // First: every process the program forks is born in its cgroup (--cgroup).
  ["CGROUP", "join cgroup"],
  // While still root: what only root may raise, before a chroot hides /proc.
  ["LIMITS", "set limits"], ["NICE", "set nice"], ["SCHED", "set scheduling"], ["IONICE", "set I/O class"], ["OOM", "set OOM score"], ["AFFINITY", "set CPU affinity"],
  ["CHROOT", "chroot"], ["SETGROUPS", "setgroups"], ["SETGID", "setgid"], ["SETUID", "setuid"],
  ["CAPS", "set capabilities"], ["NNP", "set no-new-privs"], ["VERIFY", "verify privileges"],
  ["CHDIR", "chdir"], ["STDIO", "redirect stdio"], ["SOCKETS", "hand on sockets"], ["FDS", "close fds"], ["VERIFY_SETTINGS", "verify settings"], ["EXEC", "exec"],
  // The daemon was stopped, or killed, before its exec.
  ["STOPPED", "stopped"], ["KILLED", "killed"],
  // Not ready (ready.h): it exited first (err: its wait status), did not say so in time, reported ERRNO= (err), or closed its readiness fd.
  ["EXITED", "exited before ready"], ["TIMEOUT", "not ready in time"], ["ERRNO", "reported an error"], ["CLOSED", "closed its readiness fd"],
  // The launcher was sent SIGHUP, SIGINT or SIGTERM (err) while it waited, and stopped the start.
  ["INTERRUPTED", "interrupted"],
] as const;

export type StepCode = (typeof STEPS)[number][0];
export type StepName = (typeof STEPS)[number][1];
export const stepName = (step: number): string => STEPS[step]?.[1] ?? `step ${step}`;
export const stepIndex = (c: StepCode): number => STEPS.findIndex(([name]) => name === c);

/**
 * A setting's failure as the child path reports it in its record's err: the errno (0 when the
 * setting was set but reads back otherwise), the setting (its index in RUN_SETTINGS, plus 1) and
 * which item of it (a limit's RLIMIT_* number, a capability's number). Other steps report a plain errno.
 */
export const SETTING_FAILURE = { settingShift: 12, itemShift: 20 } as const;

export function settingFailure(err: number): { errno: number; setting: number; item: number } | undefined {
  const setting = ((err >> SETTING_FAILURE.settingShift) & 0xff) - 1;
  if (setting < 0) return undefined;
  return { errno: err & ((1 << SETTING_FAILURE.settingShift) - 1), setting, item: err >> SETTING_FAILURE.itemShift };
}

/** The supervise monitor's states, as its state attribute names them. */
export const MONITOR_STATES = ["starting", "running", "backoff", "stopping", "failed", "reloading"] as const;
export type MonitorState = (typeof MONITOR_STATES)[number];

/** The fields of the monitor's state attribute (XATTR.monitor), space-separated, in this order. */
export const MONITOR_STATE_FIELDS = [
  "state", "child", "restarts", "runStartedMs", "lastExit", "stopTimeoutMs", "reopens", "mainPid",
  // reload (ffi/reload.c): whether the runs have --ready (1 notify or fd:N, 2 tcp: or file:), reloads finished, the last one's outcome (RELOAD_OUTCOMES),
  // whether one is under way or asked for, and the old run while the new one overlaps it, with its start.
  "ready", "reloads", "reloadOutcome", "reloadPending", "oldChild", "oldStartedMs",
  // Liveness (ffi/liveness.h), "-" when off: PERIOD_MS:LAST_WALL_MS (0: none yet), a HEALTH_STATES name or
  // unhealthy:FAILURES:RETRIES, (+|-)RESULT@WALL_MS, the tree's bytes, and the last failed run's reason.
  "watchdog", "health", "probe", "memory", "failure",
] as const;

/** How a reload ended, as the monitor records it (with :N for an exit code, signal or errno). */
export const RELOAD_OUTCOMES = ["none", "ok", "exited", "killed", "timeout", "errno", "closed", "failed", "stopped"] as const;

/** A run's health under --health, as status shows it; unhealthy carries how many probes failed in a row. */
export const HEALTH_STATES = ["starting", "healthy", "unhealthy"] as const;

/** Why the monitor stopped a run that had not ended (--watchdog, --health, --max-memory); a failure's reason is one of these or the exit. */
export const LIVENESS_FAILURES = ["watchdog", "health", "memory"] as const;

/** The control commands' signal to a monitor, queued with a value: a signal for the program, or one of these. */
export const CONTROL = { signal: 63, restart: -1, reopen: -2, reload: -3, rotate: -4 } as const;

/** Extended attributes on a pidfile, and on the cgroup directories daemonize makes or changes (--cgroup). */
export const XATTR = {
  /** Boot id, pid and start time of the process the pidfile was written for. */
  start: "user.daemonize.start",
  /** The monitor's state: MONITOR_STATE_FIELDS. */
  monitor: "user.daemonize.supervise",
  /** The log files, NUL-separated, for `daemonize logs`. */
  logs: "user.daemonize.logs",
  /** The program's last sd_notify STATUS=. */
  status: "user.daemonize.status",
  /** On the pidfile: its daemon's cgroup, as "STOP_TIMEOUT_MS PATH". */
  cgroup: "user.daemonize.cgroup",
  /** On the cgroup: the pidfile of the daemon it is made for; a cgroup without it is someone else's. */
  cgroupOwner: "user.daemonize.owner",
  /** On a directory above one: the controllers daemonize enabled in its cgroup.subtree_control, to switch off again. */
  cgroupEnabled: "user.daemonize.enabled",
  /** On the `daemonize` directory it made at the top of the hierarchy, to remove again. */
  cgroupMade: "user.daemonize.made",
} as const;

/**
 * --ready as ffi/ready.c parses it, for the launcher, the monitor and the check before a start:
 * the protocols, and why an argument is refused (src/ready.ts words each refusal).
 */
export const READY_KINDS = ["notify", "fd", "tcp", "file"] as const;
export const READY_REFUSALS = ["form", "stdio", "port", "host", "address"] as const;
export type ReadyRefusal = (typeof READY_REFUSALS)[number];

/** Defaults of settings both sides know; durations in milliseconds. */
export const DEFAULTS = {
  restartDelay: 1000,
  restartMaxDelay: 60_000,
  minUptime: 10_000,
  maxRestarts: 5,
  restartWindow: 60_000,
  stopTimeout: 10_000,
  readyTimeout: 60_000,
  logKeep: 5,
  healthInterval: 10_000,
  healthTimeout: 2_000,
  healthRetries: 3,
  healthStart: 0,
  /** How often --max-memory sums the tree: this often near the limit, as rarely as memoryCheckMax far below it. */
  memoryCheck: 250,
  memoryCheckMax: 2000,
} as const;

/**
 * The settings the monitor reads as key=value arguments (ffi/monitor.c configure, ffi/relay.c
 * relay_setting), written by src/supervise.ts; a key that is also an option has its name.
 */
export const MONITOR_KEYS = [
  // Its own fds and files.
  "report", "lock", "pidfile", "notify",
  // Each run's child path.
  "path", "root", "dir", "uid", "gid", "groups", "keep", "listen", "cgroup", ...RUN_SETTINGS.map((s) => s.option),
  // The restart policy and readiness.
  "restart", "success-exit", "restart-delay", "restart-max-delay", "min-uptime", "max-restarts", "restart-window", "stop-timeout",
  "ready", "ready-timeout",
  // Liveness: an exec: probe's argv comes one health-arg each.
  "watchdog", "health", "health-arg", "health-interval", "health-timeout", "health-retries", "health-start", "max-memory",
  // The log relay.
  "out", "err", "log-max-size", "log-keep", "log-timestamps", "syslog", "syslog-socket", "tag", "caller",
] as const;
export type MonitorKey = (typeof MONITOR_KEYS)[number];

/** Bounds both sides enforce. */
export const LIMITS = {
  /** The most --max-restarts may be: the monitor remembers this many restart times. */
  maxRestarts: 1000,
  /** The most arguments an exec: probe may have, its name included. */
  healthArgs: 32,
} as const;

/** struct dz_spec, field by field, in order: what the child path is given (src/detach.ts packs it by name). */
export const RUN_SPEC = [
  { name: "path", c: "const char *", about: "resolved program, as seen after chroot" },
  { name: "argv", c: "char *const *", about: "the program's arguments" },
  { name: "envp", c: "char *const *", about: "its environment" },
  { name: "root", c: "const char *", about: "chroot directory, or NULL" },
  { name: "dir", c: "const char *", about: "working directory, inside root" },
  { name: "groups", c: "const gid_t *", about: "supplementary groups, or NULL to leave them" },
  { name: "ngroups", c: "int64_t", about: "how many" },
  { name: "uid", c: "int64_t", about: "-1: keep" },
  { name: "gid", c: "int64_t", about: "-1: keep" },
  { name: "stdio", c: "int64_t", about: "fds to become 0, 1 and 2", count: 3 },
  { name: "keep", c: "const int32_t *", about: "inherited fds to leave open, sorted" },
  { name: "nkeep", c: "int64_t", about: "how many" },
  { name: "cleanup", c: "char *const *", about: "--foreground: files to remove if the exec fails, or NULL" },
  { name: "exec_fd", c: "int64_t", about: ">= 0: exec this open file (the monitor's memfd) instead of path" },
  { name: "report_fd", c: "int64_t", about: ">= 0: the exec'd monitor keeps the status pipe open on this fd" },
  { name: "check", c: "int64_t", about: "nonzero: --check, find out whether the exec would work instead of doing it" },
  { name: "pdeath", c: "int64_t", about: "nonzero: the signal this process gets when its parent dies" },
  { name: "ready_fd", c: "int64_t", about: ">= 0: --ready fd:N, the pipe's write end the program gets ..." },
  { name: "ready_to", c: "int64_t", about: "... as this fd" },
  { name: "listen", c: "const int32_t *", about: "sockets handed on as fds 3, 4, ... with LISTEN_PID set to the exec'ing pid" },
  { name: "nlisten", c: "int64_t", about: "how many" },
  { name: "cgroup_fd", c: "int64_t", about: ">= 0: the cgroup directory this process joins first (--cgroup)" },
  ...RUN_SETTINGS.map((s) => ({ name: fieldOf(s.option) as RunField, c: "int64_t", about: s.about, ...(s.count ? { count: s.count } : {}) })),
] as const;

/** The struct fields of the settings in src/settings.ts: their options, with _ for -. */
export type RunField = (typeof RUN_SETTINGS)[number]["option"] extends infer O extends string ? (O extends `${infer A}-${infer B}` ? `${A}_${B}` : O) : never;
export type SpecField = (typeof RUN_SPEC)[number]["name"];

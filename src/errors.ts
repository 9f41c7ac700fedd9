// Every way daemonize can end, and its exit code: the one table the README copies.
export const EXIT = {
  started: { code: 0, meaning: "started (the program was exec'd)" },
  running: { code: 1, meaning: "already running (0 with `--oknodo`)" },
  usage: { code: 64, meaning: "usage error: unknown option, bad value (umask, env, fd, limit, policy, capability, a CPU this machine does not have, a `--listen` address or name, a kept fd where a socket goes, …); `reload` of a daemon not supervised with `--ready`; in a `-c` file, an unknown key, a wrong type, a bad value or a TOML syntax error, as `FILE:LINE: KEY: reason`" },
  noinput: { code: 66, meaning: "a named input is missing: config file, env file, chroot or chdir directory" },
  nouser: { code: 67, meaning: "unknown user or group" },
  notready: { code: 69, meaning: "`--ready`: the program exited, reported `ERRNO=`, or closed its fd before it was ready (what is left of it is stopped); `reload`: so did the new run, or it could not start (it is stopped, the old run serves on)" },
  oserr: { code: 71, meaning: "other operating-system error (fork, setsid, …)" },
  cantcreat: { code: 73, meaning: "cannot create the pidfile, a log file, the cgroup (one that is not this daemon's is at the path) or a `--listen` socket (address in use or not here, a live socket or another file at a unix path)" },
  readytimeout: { code: 75, meaning: "`--ready`: not ready within `--ready-timeout`; the program's tree was stopped (`reload`: the new run's, and the old run serves on)" },
  noperm: { code: 77, meaning: "permission: run set-user-ID, set-group-ID or with file capabilities (refused before anything else), not root for `--user`/`--chroot`/`--cap`, a limit, priority, OOM score or capability this process may not give, unsafe config file, program or path, a `--listen` unix socket's directory others could write, a port below 1024 for a caller that is not root, a `--chdir` the user cannot enter, memory files not executable (`--supervise`), no cgroup2 hierarchy or none this process may write, a controller the hierarchy does not offer (`--cgroup`)" },
  cantexec: { code: 126, meaning: "the program exists but cannot be executed (EACCES, ENOEXEC, bad interpreter)" },
  notfound: { code: 127, meaning: "the program is not found" },
  interrupted: {
    code: 128,
    shown: "128 + N",
    meaning: "`--ready` or `--supervise`: signal N (SIGHUP 129, SIGINT 130, SIGTERM 143) came before the start was done; what it started was stopped, and what it created removed",
  },
} as const;

export type Failure = Exclude<keyof typeof EXIT, "started">;

export class DaemonizeError extends Error {
  constructor(
    readonly kind: Failure,
    message: string,
    /** For "interrupted": the signal, added to the code as a shell adds it. */
    readonly signal = 0,
  ) {
    super(message);
  }
  get exitCode(): number {
    return EXIT[this.kind].code + this.signal;
  }
}

export function fail(kind: Failure, message: string, signal?: number): never {
  throw new DaemonizeError(kind, message, signal);
}

/** `daemonize status`: the LSB status codes init scripts expect. */
export const STATUS_EXIT = {
  running: { code: 0, meaning: "running" },
  dead: { code: 1, meaning: "not running, but the pidfile remains" },
  stopped: { code: 3, meaning: "not running: no pidfile" },
  unknown: { code: 4, meaning: "unknown: the pidfile cannot be read or trusted, or does not hold a pid" },
} as const;

export type StatusState = keyof typeof STATUS_EXIT;

/** Most severe first: a set of daemons is only as well as the worst of them. */
export const STATUS_SEVERITY = ["unknown", "dead", "stopped", "running"] as const satisfies readonly StatusState[];

/** `daemonize status` with several pidfiles: 0 when every daemon runs, otherwise the code of the most severe state. */
export const statusSetExit = (states: readonly StatusState[]): number =>
  STATUS_EXIT[STATUS_SEVERITY.find((s) => states.includes(s)) ?? "running"].code;

/** The control commands other than status: stop, signal, restart without a program, reload, reopen-logs, rotate-logs and logs (64 is a usage error, as for start; reload's own failures are 69 and 75, as for --ready). */
export const CONTROL_EXIT = {
  done: { code: 0, meaning: "stopped, or was not running (stop); the signal was sent (signal); done (restart of the program, reload, reopen-logs, rotate-logs, logs)" },
  failed: { code: 1, meaning: "could not be done: not running (all but stop), no monitor (restart of the program, reopen-logs, rotate-logs), not permitted, or the pidfile or log cannot be used" },
  timeout: { code: 2, meaning: "the schedule ran out and the process still lives (stop), or the monitor did not answer in time (restart, reload, reopen-logs, rotate-logs)" },
} as const;

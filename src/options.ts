// What `daemonize start` is asked to do, after the command line has been checked.
import type { Listen } from "./listen";
import type { RunValues } from "./settings";

export interface StartOptions {
  /** The program and its arguments, exactly as given; argv[0] is the program. */
  argv: string[];
  /** The caller's working directory: relative paths are taken against it. */
  cwd: string;
  pidfile?: string;
  user?: string;
  group?: string;
  chroot?: string;
  chdir: string;
  /** The settings the child path applies as given (src/settings.ts). */
  run: RunValues;
  stdout?: string;
  stderr?: string;
  truncate: boolean;
  env: [name: string, value: string][];
  envFile?: string;
  clearEnv: boolean;
  foreground: boolean;
  keepFds: number[];
  /** --listen, in order: bound before the drop, handed on after any activator's sockets (src/listen.ts). */
  listen: Listen[];
  oknodo: boolean;
  unsafe: boolean;
  verbose: boolean;
  quiet: boolean;
  /** --supervise: the restart policy; undefined for a plain start. */
  supervise?: Policy;
  /** --ready: start returns once the program is ready (src/ready.ts, ffi/ready.c). */
  ready?: Readiness;
  /** --cgroup: the program's own cgroup v2 (src/cgroup.ts). */
  cgroup?: CgroupRequest;
  /** --check: a dry run that starts nothing (src/check.ts). */
  check: boolean;
  json: boolean;
}

/** How the monitor keeps the program running (src/supervise.ts, ffi/monitor.c); durations in milliseconds. */
export interface Policy {
  restart: "always" | "on-failure" | "never";
  successExit: number[];
  restartDelay: number;
  restartMaxDelay: number;
  minUptime: number;
  maxRestarts: number;
  restartWindow: number;
  stopTimeout: number;
  /** The monitor writes the program's output (ffi/relay.c); undefined: only to the files, as they are. */
  relay?: Relay;
  /** --watchdog, --health, --max-memory (ffi/liveness.h); undefined: none of them. */
  liveness?: Liveness;
}

export interface Liveness {
  /** Milliseconds. */
  watchdog?: number;
  health?: Health;
  /** Bytes. */
  maxMemory?: number;
}

/** Durations in milliseconds. */
export interface Health {
  /** tcp:[HOST:]PORT or http://HOST:PORT/PATH as the monitor reads it, or "exec:" with argv. */
  probe: string;
  argv?: string[];
  interval: number;
  timeout: number;
  retries: number;
  start: number;
}

export interface Relay {
  maxSize?: number;
  keep: number;
  timestamps: boolean;
  /** The facility's number. */
  syslog?: number;
  syslogSocket?: string;
  /** --syslog-tag; undefined: the program's name. */
  syslogTag?: string;
}

export interface Readiness {
  /** notify, fd:N, tcp:[HOST:]PORT or file:PATH, as given; once checked (src/ready.ts readiness), file:'s PATH is absolute. */
  how: string;
  /** Milliseconds. */
  timeout: number;
  /** Once checked: fd:N's N, tcp:'s port. */
  fd?: number;
  port?: number;
}

export interface CgroupRequest {
  /** --cgroup=PATH as given; undefined: the name derived from the pidfile. */
  path?: string;
  /** --cgroup-set FILE=VALUE, in order. */
  set: [file: string, value: string][];
  /** --stop-timeout, or its default: how long stop waits after TERM before it kills what is left. */
  stopTimeout: number;
}

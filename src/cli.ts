// The command line: declares the commands and turns argv into typed options.
// The work itself is done by plain library functions (src/start.ts, src/control.ts).
import { type Given, parseRun, RUN_SETTINGS, type RunSetting } from "./settings";
import { DEFAULTS, LIMITS } from "./contract";
import { byteLength } from "./bytes";
import type { Arg, Args } from "./groups";
import pkg from "../package.json" with { type: "json" };
import { parseSchedule, parseSignal, type Step } from "./signals";
import { fail } from "./errors";
import type { CgroupRequest, Health, Liveness, Policy, Readiness, Relay, StartOptions } from "./options";
import { absolute } from "./paths";
import { parseListen } from "./listen";

/** A default duration as the help shows it: 1s, 60s, 250ms. */
const dur = (ms: number) => (ms % 1000 ? `${ms}ms` : `${ms / 1000}s`);

const startArgs = {
  pidfile: { group: "files", type: "string", alias: "p", valueHint: "FILE", description: "Write the daemon's pid to FILE; refuse to start while that daemon lives" },
  user: { group: "process", type: "string", alias: "u", valueHint: "USER[:GROUP]", description: "Run as USER (name or number): the user's groups, or only GROUP when given" },
  group: { group: "process", type: "string", alias: "g", valueHint: "GROUP", description: "Primary group (name or number)" },
  chroot: { group: "process", type: "string", valueHint: "DIR", description: "Change root to DIR before dropping privileges" },
  chdir: { group: "process", type: "string", alias: "C", valueHint: "DIR", default: "/", description: "Working directory (inside the chroot when both are given)" },
  ...(Object.fromEntries(RUN_SETTINGS.map((s) => [s.option, s.arg])) as Record<RunSetting["option"], Arg>),
  stdout: { group: "files", type: "string", alias: "o", valueHint: "FILE", default: "/dev/null", description: "Append the program's stdout to FILE" },
  stderr: { group: "files", type: "string", alias: "e", valueHint: "FILE", default: "/dev/null", description: "Append the program's stderr to FILE" },
  log: { group: "files", type: "string", alias: "l", valueHint: "FILE", description: "Append both stdout and stderr to FILE" },
  truncate: { group: "files", type: "boolean", description: "Empty the log files instead of appending" },
  env: { group: "process", type: "string", alias: "E", valueHint: "NAME=VALUE", description: "Set an environment variable (repeatable)" },
  "env-file": { group: "process", type: "string", valueHint: "FILE", description: "Read NAME=VALUE lines from FILE" },
  "clear-env": { group: "process", type: "boolean", description: "Start from an empty environment" },
  foreground: { group: "process", type: "boolean", alias: "f", description: "Do the same set-up but exec in place, without detaching (systemd Type=simple, containers)" },
  listen: { group: "sockets", type: "string", valueHint: "[NAME=]ADDR", description: "Bind tcp:[HOST:]PORT, udp:[HOST:]PORT or unix:PATH as root before the drop and hand it on as fd 3, 4, ... (LISTEN_FDS); repeatable" },
  "keep-fd": { group: "sockets", type: "string", valueHint: "N", description: "Keep inherited fd N (a file, pipe, socket or device) open; repeatable. Every other fd >= 3 is closed" },
  supervise: { group: "supervision", type: "boolean", description: "Keep the program running under a small native monitor, which the pidfile names" },
  restart: { group: "supervision", type: "string", valueHint: "WHEN", default: "on-failure", description: "always, on-failure or never: when to start the program again; implies --supervise" },
  "success-exit": { group: "supervision", type: "string", valueHint: "CODES", default: "0", description: "Comma list of exit codes that count as success" },
  "restart-delay": { group: "supervision", type: "string", valueHint: "DUR", default: dur(DEFAULTS.restartDelay), description: "First delay before a restart: 250ms, 10s, 2m, 1h or seconds" },
  "restart-max-delay": { group: "supervision", type: "string", valueHint: "DUR", default: dur(DEFAULTS.restartMaxDelay), description: "The delay doubles after each failure up to this" },
  "min-uptime": { group: "supervision", type: "string", valueHint: "DUR", default: dur(DEFAULTS.minUptime), description: "A run at least this long resets the delay" },
  "max-restarts": { group: "supervision", type: "string", valueHint: "N", default: String(DEFAULTS.maxRestarts), description: `Give up after N restarts within --restart-window (at most ${LIMITS.maxRestarts}; 0 never gives up)` },
  "restart-window": { group: "supervision", type: "string", valueHint: "DUR", default: dur(DEFAULTS.restartWindow), description: "The window --max-restarts counts in" },
  "stop-timeout": { group: "supervision", type: "string", valueHint: "DUR", default: dur(DEFAULTS.stopTimeout), description: "On stop: TERM the program's whole tree, then KILL what is left after this" },
  ready: { group: "readiness", type: "string", valueHint: "HOW", description: "Return only once the program is ready: notify (sd_notify), fd:N (a newline on fd N), tcp:[HOST:]PORT (a connect works) or file:PATH (it exists)" },
  "ready-timeout": { group: "readiness", type: "string", valueHint: "DUR", default: dur(DEFAULTS.readyTimeout), description: "How long --ready waits before the program's tree is stopped" },
  watchdog: { group: "supervision", type: "string", valueHint: "DUR", description: "The program must send WATCHDOG=1 (sd_notify) at least every DUR, or it is sent SIGABRT, stopped and counted as failed" },
  health: { group: "supervision", type: "string", valueHint: "PROBE", description: "Probe the running program: tcp:[HOST:]PORT (a connect works), http://ADDR:PORT/PATH (a GET answers 2xx or 3xx) or exec:PROGRAM [ARGS] (exits 0)" },
  "health-interval": { group: "supervision", type: "string", valueHint: "DUR", default: dur(DEFAULTS.healthInterval), description: "How often --health probes" },
  "health-timeout": { group: "supervision", type: "string", valueHint: "DUR", default: dur(DEFAULTS.healthTimeout), description: "How long a probe may take before it counts as failed" },
  "health-retries": { group: "supervision", type: "string", valueHint: "N", default: String(DEFAULTS.healthRetries), description: "Failed probes in a row that make the run unhealthy: it is stopped and counted as failed" },
  "health-start": { group: "supervision", type: "string", valueHint: "DUR", default: dur(DEFAULTS.healthStart), description: "Failed probes in this time after the run is ready do not count" },
  "max-memory": { group: "limits", type: "string", valueHint: "SIZE", description: `The run's whole tree may not use more resident memory than SIZE (512M, 2G or bytes), checked every ${dur(DEFAULTS.memoryCheck)} near SIZE, every ${dur(DEFAULTS.memoryCheckMax)} far below it` },
  "log-max-size": { group: "logs", type: "string", valueHint: "SIZE", description: "Rotate a log file before it would pass SIZE (10M, 512K, 1G or bytes); the monitor writes the logs" },
  "log-keep": { group: "logs", type: "string", valueHint: "N", default: String(DEFAULTS.logKeep), description: "Rotated files to keep: FILE.1 newest to FILE.N" },
  "log-timestamps": { group: "logs", type: "boolean", description: "Prefix every line with an RFC 3339 UTC timestamp with microseconds; the monitor writes the logs" },
  syslog: { group: "logs", type: "string", valueHint: "[=FACILITY]", description: "Also send each line to syslog: stdout at info, stderr at err (--syslog alone: facility daemon)" },
  "syslog-socket": { group: "logs", type: "string", valueHint: "PATH", default: "/dev/log", description: "The syslog socket" },
  "syslog-tag": { group: "logs", type: "string", valueHint: "TAG", default: "the program's name", description: "The tag of the syslog lines, before [PID]" },
  cgroup: { group: "cgroups", type: "string", valueHint: "[=PATH]", description: "Run the program in a cgroup v2 of its own, which stop empties and removes (--cgroup alone: daemonize/NAME, NAME from the pidfile)" },
  "cgroup-set": { group: "cgroups", type: "string", valueHint: "FILE=VALUE", description: "Write VALUE to the cgroup's FILE before the program runs: memory.max=512M, pids.max=256 (repeatable; implies --cgroup)" },
  config: { group: "configuration", type: "string", alias: "c", valueHint: "FILE", description: "Read the settings from a TOML file; options given here override it" },
  "print-config": { group: "configuration", type: "boolean", description: "Print the settings, file and options merged, as a TOML file for -c; start nothing" },
  oknodo: { group: "configuration", type: "boolean", description: "Exit 0 when the daemon is already running (LSB: starting a running service is success)" },
  unsafe: { group: "configuration", type: "boolean", description: "Allow a config file, program, log, pidfile or pidfile directory that others could have written" },
  verbose: { group: "configuration", type: "boolean", alias: "v", description: "Say what is done" },
  quiet: { group: "configuration", type: "boolean", alias: "q", description: "Print errors only" },
  help: { group: "configuration", type: "boolean", alias: "h", description: "Show this help" },
  version: { group: "configuration", type: "boolean", alias: "V", description: "Show the version" },
} as const satisfies Args;

/** --cgroup without PATH; no argument can hold a NUL. */
const DERIVED = "\0";

/** Options whose value may be left out, and what they mean then: --syslog, or --syslog=local0. */
export const OPTIONAL_VALUE: Record<string, string> = { syslog: "daemon", cgroup: DERIVED };

/** Log options that bring in the monitor to write the logs. */
const RELAY = ["log-max-size", "log-timestamps", "syslog"] as const;

const FACILITIES = [
  "kern", "user", "mail", "daemon", "auth", "syslog", "lpr", "news", "uucp", "cron", "authpriv", "ftp",
  "", "", "", "", "local0", "local1", "local2", "local3", "local4", "local5", "local6", "local7",
];

/** Supervise options other than --supervise and --restart, which need one of those two. */
const POLICY = [
  "success-exit", "restart-delay", "restart-max-delay", "min-uptime", "max-restarts", "restart-window", "stop-timeout",
  "watchdog", "health", "health-interval", "health-timeout", "health-retries", "health-start", "max-memory",
] as const;

/** Options that may be given more than once; citty's parser keeps only the last of a repeated flag. */
export const REPEATABLE = new Set<string>(["env", "keep-fd", "listen", "cgroup-set", ...(RUN_SETTINGS as readonly RunSetting[]).filter((s) => s.repeatable).map((s) => s.option)]);

const controlArgs = {
  pidfile: { group: "files", type: "string", alias: "p", valueHint: "FILE", required: true, description: "The daemon's pidfile" },
  config: { ...startArgs.config, description: "Read the pidfile (and --unsafe) from this TOML file, as a start with -c does" },
  unsafe: { group: "configuration", type: "boolean", description: "Trust a config file, pidfile or pidfile directory that others could have written" },
  quiet: startArgs.quiet,
  verbose: startArgs.verbose,
  help: { ...startArgs.help, description: "Show this command's help" },
} as const satisfies Args;

const stopArgs = {
  signal: { group: "supervision", type: "string", alias: "s", valueHint: "SIG", default: "TERM", description: "Signal to send" },
  timeout: { group: "supervision", type: "string", valueHint: "SECONDS", default: "30", description: "How long to wait for the daemon to exit" },
  retry: { group: "supervision", type: "string", valueHint: "SCHEDULE", description: "start-stop-daemon schedule: TERM/30/KILL/5, or N for TERM/N/KILL/N" },
} as const satisfies Args;

/** summary: the command's line in the list of commands; description: its help's. */
const meta = (name: string, summary: string, description = summary) => ({ name: `daemonize ${name}`, version: pkg.version, summary, description });

/** Every command: its declarations, which also render its help. */
export const commands = {
  start: {
    meta: meta("[start]", "Run a program as a daemon (the default command)", "Run a program as a well-behaved Unix daemon (the default command)"),
    args: {
      ...startArgs,
      check: { group: "configuration", type: "boolean", description: "Dry run: make every check a start makes, as the target user, and start nothing; exit as the start would" },
      json: { group: "configuration", type: "boolean", description: "With --check: print the checks as one JSON object" },
    },
  },
  status: {
    meta: meta("status", "Is each daemon running? (LSB exit codes)", "Is each daemon running? LSB exit codes: 0 running, 1 dead, 3 not running, 4 unknown; for several pidfiles, the most severe"),
    args: {
      ...controlArgs,
      pidfile: { ...controlArgs.pidfile, required: false, description: "A daemon's pidfile (repeatable; pidfiles may also be given as arguments)" },
      config: { ...controlArgs.config, description: "Read the pidfile from this TOML file (repeatable; with -c, the arguments are config files too)" },
      json: { group: "configuration", type: "boolean", description: "Print one JSON object (an array of them for several pidfiles)" },
    },
  },
  stop: { meta: meta("stop", "Stop the daemon and wait until it is gone", "Signal the daemon and wait until it is gone; removes its pidfile"), args: { ...controlArgs, ...stopArgs } },
  restart: {
    meta: meta("restart", "Stop, then start; or restart the supervised program", "Stop (as stop does), then start; without a program, restart only the program under its running --supervise monitor"),
    args: { ...startArgs, ...stopArgs, help: controlArgs.help },
  },
  signal: { meta: meta("signal", "Send a signal to the daemon", "Send SIGNAL (name or number) to the daemon (to the program, under a monitor)"), args: controlArgs },
  reload: {
    meta: meta("reload", "Replace the supervised program with a fresh run, no gap", "Replace the supervised program (--supervise with --ready) with a fresh run of it, with no gap: the old run is stopped only once the new one is ready"),
    args: controlArgs,
  },
  "reopen-logs": { meta: meta("reopen-logs", "Make the monitor reopen its log files", "Make the monitor close and reopen the log files it writes (logrotate's postrotate)"), args: controlArgs },
  "rotate-logs": { meta: meta("rotate-logs", "Make the monitor rotate its log files now", "Make the monitor rotate the log files it writes now, as if --log-max-size had been reached"), args: controlArgs },
  logs: {
    meta: meta("logs", "Print the last lines of the daemon's log"),
    args: {
      ...controlArgs,
      lines: { group: "logs", type: "string", alias: "n", valueHint: "N", default: "10", description: "How many lines" },
      follow: { group: "logs", type: "boolean", alias: "f", description: "Keep printing what is written, across rotations, until interrupted" },
    },
  },
  help: { meta: meta("help", "Show the help of daemonize, or of one command"), args: { help: controlArgs.help } },
} satisfies Record<string, { meta: ReturnType<typeof meta>; args: Args }>;

export type CommandName = keyof typeof commands;

/** The synopsis after the options, which citty cannot describe. */
export const SYNOPSIS: Record<CommandName, string> = {
  start: "[--] PROGRAM [ARGS...]",
  status: "[PIDFILE ...]",
  stop: "",
  restart: "[[--] PROGRAM [ARGS...]]",
  signal: "SIGNAL",
  reload: "",
  "reopen-logs": "",
  "rotate-logs": "",
  logs: "",
  help: "[COMMAND]",
};

/** What the command line says, by option name as declared. */
export interface Scanned {
  flags: Set<string>;
  values: Map<string, string>;
  repeated: Map<string, string[]>;
  program: string[];
}

const usage = (message: string) => fail("usage", message);

/**
 * Reads argv against citty's declarations. It does the parsing itself: citty's
 * parser accepts unknown options silently, keeps one value of a repeated flag,
 * cannot tell the program's own arguments from ours, and loads node:util, which
 * alone costs a quarter of a launch. With `operand`, plain arguments are not a
 * program but more values of that option, kept in order with it (status's pidfiles).
 */
export function scan(argv: string[], args: Args, operand?: string): Scanned {
  const byName = new Map<string, [string, Arg]>();
  for (const [name, def] of Object.entries(args)) {
    byName.set(`--${name}`, [name, def]);
    const aliases = "alias" in def && def.alias ? [def.alias].flat() : [];
    for (const alias of aliases) byName.set(`-${alias}`, [name, def]);
  }
  const dd = argv.indexOf("--");
  const head = dd < 0 ? argv : argv.slice(0, dd);
  const out: Scanned = { flags: new Set(), values: new Map(), repeated: new Map(), program: [] };
  const take = (name: string, value: string) => {
    if (REPEATABLE.has(name) || name === operand) out.repeated.set(name, [...(out.repeated.get(name) ?? []), value]);
    else out.values.set(name, value);
  };
  for (let i = 0; i < head.length; i++) {
    const token = head[i] as string;
    if (operand && (!token.startsWith("-") || token === "-")) {
      take(operand, token);
      continue;
    }
    if (out.program.length > 0 || !token.startsWith("-") || token === "-") {
      if (out.program.length > 0 && token.startsWith("-") && token !== "-")
        usage(`option ${token} follows the program; put -- before the program to pass it options`);
      out.program.push(token);
      continue;
    }
    if (token.startsWith("--")) {
      const eq = token.indexOf("=");
      const flag = eq < 0 ? token : token.slice(0, eq);
      const found = byName.get(flag);
      if (!found) return usage(`unknown option ${flag}`);
      const [name, def] = found;
      if (def.type === "boolean") {
        if (eq >= 0) usage(`option ${flag} takes no value`);
        out.flags.add(name);
      } else if (eq >= 0) take(name, token.slice(eq + 1));
      else if (name in OPTIONAL_VALUE) {
        // --syslog local0 would start a program called local0.
        const next = head[i + 1];
        if (next !== undefined && FACILITIES.includes(next)) usage(`${flag} ${next}: give the facility after an =, as ${flag}=${next}`);
        take(name, OPTIONAL_VALUE[name] as string);
      }
      else if (i + 1 < head.length) take(name, head[++i] as string);
      else usage(`option ${flag} needs a value`);
      continue;
    }
    // A cluster of short options: -fv, or -pFILE, or -p FILE.
    for (let j = 1; j < token.length; j++) {
      const flag = `-${token[j]}`;
      const found = byName.get(flag);
      if (!found) return usage(`unknown option ${flag}`);
      const [name, def] = found;
      if (def.type === "boolean") {
        out.flags.add(name);
        continue;
      }
      if (j + 1 < token.length) take(name, token.slice(j + 1));
      else if (i + 1 < head.length) take(name, head[++i] as string);
      else usage(`option ${flag} needs a value`);
      break;
    }
  }
  if (dd >= 0 && operand) for (const token of argv.slice(dd + 1)) take(operand, token);
  else if (dd >= 0) {
    if (out.program.length > 0) usage(`unexpected argument "${out.program[0]}" before --`);
    out.program = argv.slice(dd + 1);
  }
  return out;
}

const valueOf = (values: Map<string, string>) => (name: string) => {
  const v = values.get(name);
  if (v === "") usage(`--${name} needs a non-empty value`);
  return v;
};

/** NAME=VALUE, from --env or a line of an env file. */
export function parseEnvAssignment(text: string, where: string): [string, string] {
  const eq = text.indexOf("=");
  if (eq <= 0) return fail("usage", `${where} ${JSON.stringify(text)} is not NAME=VALUE`);
  return [text.slice(0, eq), text.slice(eq + 1)];
}

function parseFd(text: string): number {
  if (!/^\d{1,9}$/.test(text)) return usage(`--keep-fd ${JSON.stringify(text)} is not a file descriptor number`);
  const fd = Number(text);
  if (fd < 3) usage(`--keep-fd ${fd}: stdin, stdout and stderr are always set up by daemonize`);
  return fd;
}

/** DUR: 250ms, 10s, 2m, 1h, or a plain number of seconds; in milliseconds. */
export function parseDuration(text: string, option: string): number {
  const m = /^(\d{1,9}(?:\.\d{1,3})?)(ms|s|m|h)?$/.exec(text);
  if (!m) return usage(`--${option} ${JSON.stringify(text)} is not a duration (250ms, 10s, 2m, 1h or seconds)`);
  const unit = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }[m[2] ?? "s"] as number;
  return Math.round(Number(m[1]) * unit);
}

/** SIZE: 10M, 512K, 1G, or bytes. */
function parseSize(text: string, option: string): number {
  const m = /^(\d{1,12})([KMG]?)$/i.exec(text);
  const bytes = m ? Number(m[1]) * 1024 ** " KMG".indexOf((m[2] || " ").toUpperCase()) : 0;
  if (!bytes) usage(`--${option} ${JSON.stringify(text)} is not a size (10M, 512K, 1G or bytes)`);
  if (bytes > Number.MAX_SAFE_INTEGER) usage(`--${option} ${JSON.stringify(text)} is larger than any file can be`);
  return bytes;
}

function parseRelay(values: Map<string, string>, flags: Set<string>): Relay | undefined {
  const maxSize = values.get("log-max-size");
  // rotate-logs rotates, keeping --log-keep files, whenever the monitor writes the logs.
  if (values.has("log-keep") && !RELAY.some((name) => values.has(name) || flags.has(name))) usage("--log-keep goes with --log-max-size, --log-timestamps or --syslog");
  for (const option of ["syslog-socket", "syslog-tag"]) if (values.has(option) && !values.has("syslog")) usage(`--${option} goes with --syslog`);
  const tag = values.get("syslog-tag");
  // RFC 3164: up to 32 printable characters, which end at a "[", ":" or space.
  if (tag !== undefined && !/^[!-9;-Z\\^-~]{1,32}$/.test(tag)) usage(`--syslog-tag ${JSON.stringify(tag)} is not 1 to 32 printable ASCII characters without a space, ":", "[" or "]"`);
  const socket = values.get("syslog-socket");
  // A socket address holds 107 bytes of path.
  if (socket !== undefined && byteLength(socket) > 107) usage(`--syslog-socket ${JSON.stringify(socket)} is longer than a socket address holds (107 bytes)`);
  if (maxSize === undefined && !flags.has("log-timestamps") && !values.has("syslog")) return undefined;
  const keep = values.get("log-keep") ?? String(DEFAULTS.logKeep);
  if (!/^\d{1,4}$/.test(keep) || Number(keep) > 1000) usage(`--log-keep ${JSON.stringify(keep)} is not a number from 0 to 1000`);
  const facility = values.get("syslog");
  const code = facility === undefined ? -1 : FACILITIES.indexOf(facility.toLowerCase());
  if (facility !== undefined && (code < 0 || facility === "")) usage(`--syslog=${facility}: not a syslog facility (daemon, user, local0 … local7, …)`);
  return {
    maxSize: maxSize === undefined ? undefined : parseSize(maxSize, "log-max-size"),
    keep: Number(keep),
    timestamps: flags.has("log-timestamps"),
    syslog: facility === undefined ? undefined : code,
    syslogSocket: values.get("syslog-socket"),
    syslogTag: tag,
  };
}

function parseCgroup(values: Map<string, string>, repeated: Map<string, string[]>): CgroupRequest | undefined {
  const path = values.get("cgroup");
  const set = repeated.get("cgroup-set") ?? [];
  if (path === undefined && set.length === 0) return undefined;
  if (path !== undefined && path !== DERIVED) {
    if (path === "" || path.split("/").some((part) => part === "." || part === ".."))
      usage(`--cgroup=${JSON.stringify(path)}: give a cgroup path without . or .. (relative ones are under daemonize's own directory)`);
  }
  if ((path === undefined || path === DERIVED) && !values.has("pidfile")) usage("--cgroup without a PATH needs --pidfile: the cgroup's name is derived from it");
  const stop = values.get("stop-timeout");
  return {
    path: path === DERIVED ? undefined : path,
    set: set.map((item) => {
      const eq = item.indexOf("=");
      const file = item.slice(0, eq);
      if (eq <= 0 || !/^[a-z][a-z0-9_]*\.[a-zA-Z0-9_.]+$/.test(file))
        usage(`--cgroup-set ${JSON.stringify(item)} is not FILE=VALUE with a cgroup file (memory.max, pids.max, cpu.max, …)`);
      // Writing these moves processes into the cgroup, which stop would then end, or kills it at once.
      if (["cgroup.procs", "cgroup.threads", "cgroup.kill"].includes(file)) usage(`--cgroup-set ${file}: not a setting; it moves or kills processes`);
      return [file, item.slice(eq + 1)] as [string, string];
    }),
    stopTimeout: stop === undefined ? DEFAULTS.stopTimeout : parseDuration(stop, "stop-timeout"),
  };
}

function parsePolicy(values: Map<string, string>, flags: Set<string>, foreground: boolean, pidfile: string | undefined, cgroup: boolean): Policy | undefined {
  const restart = values.get("restart");
  const relay = parseRelay(values, flags);
  if (!flags.has("supervise") && restart === undefined) {
    // A plain daemon's cgroup is emptied by stop, which waits --stop-timeout before it kills.
    const stray = POLICY.find((name) => values.has(name) && !(name === "stop-timeout" && cgroup));
    if (stray) usage(`--${stray} goes with --supervise`);
    if (!relay) return undefined;
  }
  const by = flags.has("supervise") ? "supervise" : restart !== undefined ? "restart" : RELAY.find((name) => values.has(name) || flags.has(name));
  if (!pidfile && !foreground) usage(`--${by} needs --pidfile: it names the monitor`);
  if (restart !== undefined && !["always", "on-failure", "never"].includes(restart))
    usage(`--restart ${JSON.stringify(restart)} is not always, on-failure or never`);
  const duration = (name: string, fallback: number) => {
    const given = values.get(name);
    return given === undefined ? fallback : parseDuration(given, name);
  };
  const codes = (values.get("success-exit") ?? "0").split(",").map((c) => {
    if (!/^\d{1,3}$/.test(c) || Number(c) > 255) usage(`--success-exit ${JSON.stringify(values.get("success-exit"))} is not a comma list of exit codes from 0 to 255`);
    return Number(c);
  });
  const max = values.get("max-restarts") ?? String(DEFAULTS.maxRestarts);
  if (!/^\d{1,4}$/.test(max) || Number(max) > LIMITS.maxRestarts) usage(`--max-restarts ${JSON.stringify(max)} is not a number from 0 to ${LIMITS.maxRestarts}`);
  const policy: Policy = {
    // Logs alone bring in the monitor, not restarts.
    restart: (restart ?? (by === "supervise" ? "on-failure" : "never")) as Policy["restart"],
    successExit: [...new Set(codes)],
    restartDelay: duration("restart-delay", DEFAULTS.restartDelay),
    restartMaxDelay: duration("restart-max-delay", DEFAULTS.restartMaxDelay),
    minUptime: duration("min-uptime", DEFAULTS.minUptime),
    maxRestarts: Number(max),
    restartWindow: duration("restart-window", DEFAULTS.restartWindow),
    stopTimeout: duration("stop-timeout", DEFAULTS.stopTimeout),
    relay,
    liveness: parseLiveness(values),
  };
  if (policy.restartMaxDelay < policy.restartDelay)
    usage(`--restart-max-delay ${values.get("restart-max-delay") ?? `(default ${dur(DEFAULTS.restartMaxDelay)})`} is shorter than --restart-delay ${values.get("restart-delay")}`);
  return policy;
}

/** tcp:[HOST:]PORT, http://HOST[:PORT]/PATH, exec:PROGRAM [ARGS]; as the monitor reads it. HOST:PORT has --ready tcp:'s grammar, checked by its parser (src/ready.ts). */
function parseProbe(text: string): Pick<Health, "probe" | "argv"> {
  const what = `--health ${text}`;
  const http = /^http:\/\/(\[[0-9a-fA-F:.]+\]|[^/:\s[\]]+)(?::(\d{1,5}))?(\/[\x21-\x7e]*)?$/.exec(text);
  if (text.startsWith("tcp:")) return { probe: text };
  if (http) {
    const path = http[3] ?? "/";
    if (path.length > 900) usage(`${what}: the path is longer than 900 bytes`);
    return { probe: `http://${http[1]}:${http[2] ?? 80}${path}` };
  }
  if (text.startsWith("exec:")) {
    const argv = text.slice(5).split(/[ \t]+/).filter((a) => a !== "");
    if (argv.length === 0) usage(`${what}: no program given`);
    if (argv.length > LIMITS.healthArgs) usage(`${what}: more than ${LIMITS.healthArgs} words`);
    return { probe: "exec:", argv };
  }
  if (/^https:/i.test(text)) usage(`${what}: https is not spoken; probe a plain HTTP port on the loopback, or use exec: with a client`);
  return usage(`${what} is not tcp:[HOST:]PORT, http://ADDR:PORT/PATH or exec:PROGRAM [ARGS]`);
}

/** A duration for a liveness option, which 0 would turn into a busy loop or a check that always fails. */
function positive(values: Map<string, string>, name: string, fallback: number): number {
  const given = values.get(name);
  if (given === undefined) return fallback;
  const ms = parseDuration(given, name);
  if (ms === 0) usage(`--${name} ${given}: must be longer than 0`);
  return ms;
}

function parseLiveness(values: Map<string, string>): Liveness | undefined {
  const stray = ["health-interval", "health-timeout", "health-retries", "health-start"].find((name) => values.has(name));
  if (stray && !values.has("health")) usage(`--${stray} goes with --health`);
  const probe = values.get("health");
  const retries = values.get("health-retries") ?? String(DEFAULTS.healthRetries);
  if (!/^\d{1,4}$/.test(retries) || Number(retries) < 1 || Number(retries) > 1000) usage(`--health-retries ${JSON.stringify(retries)} is not a number from 1 to 1000`);
  const start = values.get("health-start");
  const memory = values.get("max-memory");
  const liveness: Liveness = {
    watchdog: values.has("watchdog") ? positive(values, "watchdog", 0) : undefined,
    health:
      probe === undefined
        ? undefined
        : {
            ...parseProbe(probe),
            interval: positive(values, "health-interval", DEFAULTS.healthInterval),
            timeout: positive(values, "health-timeout", DEFAULTS.healthTimeout),
            retries: Number(retries),
            start: start === undefined ? DEFAULTS.healthStart : parseDuration(start, "health-start"),
          },
    maxMemory: memory === undefined ? undefined : parseSize(memory, "max-memory"),
  };
  return liveness.watchdog ?? liveness.health ?? liveness.maxMemory ? liveness : undefined;
}

function parseReady(values: Map<string, string>): Readiness | undefined {
  const how = values.get("ready");
  const timeout = values.get("ready-timeout");
  if (how === undefined) {
    if (timeout !== undefined) usage("--ready-timeout goes with --ready");
    return undefined;
  }
  // HOW has one grammar, ffi/ready.c's: src/ready.ts checks it with that parser before anything starts.
  return { how, timeout: timeout === undefined ? DEFAULTS.readyTimeout : parseDuration(timeout, "ready-timeout") };
}

/** Maps the command line to StartOptions, checking every value's syntax. */
export function startOptions(argv: string[], cwd: string, args: Args = commands.start.args): StartOptions | "help" | "version" {
  const scanned = scan(argv, args);
  if (scanned.flags.has("help")) return "help";
  if (scanned.flags.has("version")) return "version";
  return startOf(scanned, cwd);
}

/** What the command line (and config file) says, as StartOptions. */
export function startOf({ flags, values, repeated, program }: Scanned, cwd: string): StartOptions {
  if (program.length === 0) usage("no program given: daemonize [options] -- program [args...]");
  if (program[0] === "") usage("the program name is empty");
  if (flags.has("verbose") && flags.has("quiet")) usage("--verbose and --quiet contradict each other");
  if (flags.has("json") && !flags.has("check")) usage("--json goes with --check");
  const value = valueOf(values);
  const log = value("log");
  const given = (option: string): Given => (flags.has(option) ? true : (repeated.get(option) ?? values.get(option)));
  const options: StartOptions = {
    argv: program,
    cwd,
    pidfile: value("pidfile"),
    user: value("user"),
    group: value("group"),
    chroot: value("chroot"),
    chdir: value("chdir") ?? startArgs.chdir.default,
    run: parseRun(given),
    stdout: value("stdout") ?? log,
    stderr: value("stderr") ?? log,
    truncate: flags.has("truncate"),
    env: (repeated.get("env") ?? []).map((e) => parseEnvAssignment(e, "--env")),
    envFile: value("env-file"),
    clearEnv: flags.has("clear-env"),
    foreground: flags.has("foreground"),
    keepFds: [...new Set((repeated.get("keep-fd") ?? []).map(parseFd))].sort((x, y) => x - y),
    listen: (repeated.get("listen") ?? []).map((l) => parseListen(l, cwd)),
    oknodo: flags.has("oknodo"),
    unsafe: flags.has("unsafe"),
    verbose: flags.has("verbose"),
    quiet: flags.has("quiet"),
    check: flags.has("check"),
    json: flags.has("json"),
    cgroup: parseCgroup(values, repeated),
  };
  options.supervise = parsePolicy(values, flags, options.foreground, options.pidfile, options.cgroup !== undefined);
  options.ready = parseReady(values);
  return options;
}

function stopSchedule(values: Map<string, string>): Step[] {
  const value = valueOf(values);
  const retry = value("retry");
  if (retry !== undefined) {
    if (values.has("signal") || values.has("timeout")) usage("--retry replaces --signal and --timeout: give one or the other");
    return parseSchedule(retry);
  }
  const timeout = value("timeout") ?? "30";
  if (!/^\d{1,6}(\.\d+)?$/.test(timeout)) usage(`--timeout ${JSON.stringify(timeout)} is not a number of seconds`);
  return [{ signal: parseSignal(value("signal") ?? "TERM") }, { seconds: Number(timeout) }];
}

export type Command =
  | { name: "help"; of: CommandName }
  | { name: "version" }
  | { name: "print-config"; text: string }
  | { name: "start"; start: StartOptions }
  | { name: "restart"; start: StartOptions; schedule: Step[] }
  | { name: "restart-program"; pidfile: string; unsafe: boolean; verbose: boolean }
  /** unsafe: for every pidfile, or for each (its config file's). */
  | { name: "status"; pidfiles: string[]; json: boolean; unsafe: boolean | boolean[] }
  | { name: "stop"; pidfile: string; schedule: Step[]; unsafe: boolean; verbose: boolean }
  | { name: "signal"; pidfile: string; signal: number; unsafe: boolean; verbose: boolean }
  | { name: "reopen-logs" | "rotate-logs" | "reload"; pidfile: string; unsafe: boolean; verbose: boolean }
  | { name: "logs"; pidfile: string; lines: number; follow: boolean; unsafe: boolean };

const commandNames = Object.keys(commands) as CommandName[];
const isCommand = (word: string | undefined): word is CommandName => word !== undefined && Object.hasOwn(commands, word);

/** The command line over the config file it names (-c, loaded only then); `within` names the file, key and line in a usage error a file's value causes. */
async function configured(cmdline: Scanned, args: Args, cwd: string) {
  const given = cmdline.values.get("config");
  if (given === undefined) return { scanned: cmdline, within: <T>(fn: () => T): T => fn() };
  if (given === "") usage("--config needs a non-empty value");
  const config = await import("./config");
  const file = config.load(absolute(cwd, given), given, cmdline.flags.has("unsafe"));
  return { scanned: config.merge(file, cmdline, args), within: <T>(fn: () => T): T => config.blame(file, cmdline, fn) };
}

/** The command is the first argument; without one, the command is start. */
export async function parseCommandLine(argv: string[], cwd: string): Promise<Command> {
  const first = argv[0];
  const name: CommandName = isCommand(first) ? first : "start";
  const rest = first === name ? argv.slice(1) : argv;
  if (name === "help") {
    const { flags, repeated } = scan(rest, commands.help.args, "operands");
    const [of = "start", ...more] = repeated.get("operands") ?? [];
    if (flags.has("help")) return { name, of: "help" };
    if (more.length > 0) usage("help takes one COMMAND");
    if (!isCommand(of)) return usage(`help ${JSON.stringify(of)}: no such command (${commandNames.join(", ")})`);
    return { name, of };
  }
  if (name === "start" || name === "restart") {
    const args = commands[name].args;
    const cmdline = scan(rest, args);
    if (cmdline.flags.has("help")) return { name: "help", of: name };
    if (cmdline.flags.has("version")) return { name: "version" };
    const { scanned, within } = await configured(cmdline, args, cwd);
    const { flags, values, program } = scanned;
    if (name === "restart" && program.length === 0) {
      // Without a program: restart only the program under its running monitor.
      const other = [...cmdline.values.keys(), ...cmdline.flags].find((k) => !["pidfile", "unsafe", "verbose", "quiet", "config"].includes(k));
      if (other) usage(`--${other} needs a program: restart without one only restarts a supervised program`);
      const pidfile = within(() => valueOf(values)("pidfile"));
      if (pidfile === undefined) return usage("restart needs --pidfile");
      return { name: "restart-program", pidfile: absolute(cwd, pidfile), unsafe: flags.has("unsafe"), verbose: flags.has("verbose") };
    }
    const start = within(() => startOf(scanned, cwd));
    if (flags.has("print-config")) {
      if (name === "restart" || flags.has("check")) usage(`--print-config goes with a start, not with ${name === "restart" ? "restart" : "--check"}`);
      return { name: "print-config", text: (await import("./toml")).toToml(scanned, cwd, args) };
    }
    if (name === "start") return { name, start };
    if (!start.pidfile) usage("restart needs --pidfile");
    return { name, start, schedule: stopSchedule(values) };
  }
  const args: Args = commands[name].args;
  if (name === "status") {
    // With -c, the arguments are config files too; otherwise pidfiles.
    const byConfig = scan(rest, args, "operands").values.has("config");
    const { flags, values, repeated } = scan(rest, args, byConfig ? "config" : "pidfile");
    if (flags.has("help")) return { name: "help", of: name };
    const json = flags.has("json");
    const unsafe = flags.has("unsafe");
    if (!byConfig) {
      const pidfiles = repeated.get("pidfile") ?? [];
      if (pidfiles.length === 0) usage("status needs --pidfile FILE or PIDFILE arguments");
      if (pidfiles.includes("")) usage("a pidfile name is empty");
      return { name, pidfiles: pidfiles.map((p) => absolute(cwd, p)), json, unsafe };
    }
    const given = values.get("pidfile");
    const found: [string, boolean][] = given === undefined ? [] : [[absolute(cwd, given), unsafe]];
    const config = await import("./config");
    for (const path of repeated.get("config") ?? []) {
      if (path === "") usage("a config file name is empty");
      const file = config.load(absolute(cwd, path), path, unsafe);
      const pidfile = file.scanned.values.get("pidfile");
      if (!pidfile) usage(`${path}: no pidfile: status needs one`);
      found.push([pidfile as string, unsafe || file.scanned.flags.has("unsafe")]);
    }
    return { name, pidfiles: found.map(([p]) => p), json, unsafe: found.map(([, u]) => u) };
  }
  // The control commands read options and arguments in any order: no program follows.
  const cmdline = scan(rest, args, "operands");
  if (cmdline.flags.has("help")) return { name: "help", of: name };
  const operands = cmdline.repeated.get("operands") ?? [];
  const { scanned, within } = await configured(cmdline, args, cwd);
  const { flags, values } = scanned;
  const pidfileArg = within(() => valueOf(values)("pidfile"));
  if (pidfileArg === undefined) return usage(`${name} needs --pidfile or -c`);
  const pidfile = absolute(cwd, pidfileArg);
  const unsafe = flags.has("unsafe");
  if (name === "signal") {
    if (operands.length !== 1) usage("signal needs exactly one SIGNAL, by name (HUP) or number");
    return { name, pidfile, signal: parseSignal(operands[0] as string), unsafe, verbose: flags.has("verbose") };
  }
  if (operands.length > 0) usage(`unexpected argument ${JSON.stringify(operands[0])}`);
  if (name === "reopen-logs" || name === "rotate-logs" || name === "reload") return { name, pidfile, unsafe, verbose: flags.has("verbose") };
  if (name === "logs") {
    const lines = values.get("lines") ?? "10";
    if (!/^\d{1,7}$/.test(lines)) usage(`--lines ${JSON.stringify(lines)} is not a number of lines`);
    return { name, pidfile, lines: Number(lines), follow: flags.has("follow"), unsafe };
  }
  return { name, pidfile, schedule: stopSchedule(values), unsafe, verbose: flags.has("verbose") };
}

export const versionText = (): string =>
  `daemonize ${pkg.version} (bun ${Bun.version}, commit ${typeof __COMMIT__ === "string" ? __COMMIT__ : "unknown"})\n`;

// Settings that the child path applies as given, each declared here once: its option (citty's
// declaration, so --help, the README and the completions too), how its value is checked, what
// it becomes in struct dz_spec, and the step that applies it. cli.ts parses them, start.ts
// checks them against this system (`resolve`), detach.ts packs them, supervise.ts hands them to
// the monitor and the monitor reads them (build/contract.h), all from this list: a new one needs
// only its entry here and the C that applies and reads back `s->FIELD` (ffi/child.c).
import type { Arg } from "./groups";
import type { StepCode } from "./contract";
import { fail } from "./errors";

/** Not given: the child path leaves the setting as it finds it (INT64_MIN in the struct). */
export const UNSET = -(2n ** 63n);
const INT64_MAX = 2n ** 63n - 1n;

/** A setting's value: one int64, or `count` of them. */
export type RunValue = number | bigint | bigint[];

/** As the command line gives an option: a value, every value of a repeatable one, true for a flag, undefined when absent. */
export type Given = string | string[] | true | undefined;

/** What the launcher knows of itself and of its caller (src/host.ts), for the checks only a running system can answer. */
export interface Host {
  euid: number;
  requireRoot(what: string): void;
  /** Whether this process has the capability in its effective set. */
  can(cap: number): boolean;
  /** Its permitted capabilities. */
  permitted(): bigint;
  /** Its resource limits, soft and hard by RLIMIT_* number; -1n is unlimited. */
  limits(): (readonly [bigint, bigint])[];
  /** Its parent's limits, or undefined when they cannot be read. */
  caller(): { pid: number; limits: (readonly [bigint, bigint])[] } | undefined;
  nice(): number;
  /** The CPUs that are online. */
  cpus(): number[];
  /** fs.nr_open: no RLIMIT_NOFILE may pass it. */
  nrOpen(): bigint;
  /** The highest capability this kernel knows. */
  capLast(): number;
}

export interface RunSetting<O extends string = string, V extends RunValue = RunValue> {
  /** The option, also the monitor's key; its struct field has _ for -. */
  option: O;
  arg: Arg;
  repeatable?: boolean;
  /** How many int64s its struct field holds, when more than one. */
  count?: number;
  /** The value as given to the number(s) the child path gets; fails with a usage error. `others` reads the rest of the command line. */
  parse(given: Given, others: (option: string) => Given): V;
  /** What the monitor accepts for each int64, the same as parse allows. */
  range: readonly [min: bigint, max: bigint];
  /** The value (of each int64) that leaves the process as it is: the monitor takes it for itself, and is not told it. */
  leave?: bigint;
  /** The child-path step that applies it, whose failures name it. */
  step?: StepCode;
  /** The value as the option would give it, or one item of it, for messages. */
  show(value: V, item?: number): string;
  /**
   * Checks the value against this system before the fork, as far as it can be known there, and
   * may complete it; returns what --check says of it, or undefined when there is nothing to say.
   */
  resolve?(value: V, host: Host, run: Readonly<Record<string, RunValue>>): { value: V; detail: string } | undefined;
  /** The struct field's comment. */
  about: string;
}

const setting = <const O extends string, V extends RunValue>(s: RunSetting<O, V>): RunSetting<O, V> => s;

const usage = (message: string): never => fail("usage", message);
const q = (text: string) => JSON.stringify(text);
/** A value given once: repeating an option that is not repeatable keeps the last, as the scanner does. */
const one = (given: Given): string | undefined => (typeof given === "string" ? given : undefined);

const CAP_SETPCAP = 8;
const CAP_SYS_ADMIN = 21;
const CAP_SYS_NICE = 23;
const CAP_SYS_RESOURCE = 24;

/** The RLIMIT_* numbers, as prlimit names them. */
const RLIMITS = ["cpu", "fsize", "data", "stack", "core", "rss", "nproc", "nofile", "memlock", "as", "locks", "sigpending", "msgqueue", "nice", "rtprio", "rttime"] as const;
const LIMIT_NAMES = [...RLIMITS].sort().join(", ");
const BYTE_LIMITS = new Set(["fsize", "data", "stack", "core", "rss", "memlock", "as", "msgqueue"]);
const CORE = RLIMITS.indexOf("core");
const NOFILE = RLIMITS.indexOf("nofile");
const RLIMIT_NICE = RLIMITS.indexOf("nice");
const RLIMIT_RTPRIO = RLIMITS.indexOf("rtprio");
/** RLIM_INFINITY as an int64. */
const UNLIMITED = -1n;
/** What the kernel gives init, and systemd gives the programs it starts: select() cannot go past it. */
const FD_SETSIZE = 1024n;

const limitText = (v: bigint) => (v === UNLIMITED ? "unlimited" : String(v));
/** a is above b, unlimited being above everything. */
const above = (a: bigint, b: bigint) => a !== b && (a === UNLIMITED || (b !== UNLIMITED && a > b));
const lower = (a: bigint, b: bigint) => (above(a, b) ? b : a);

function limitValue(text: string, name: string, item: string): bigint {
  if (text === "unlimited") return UNLIMITED;
  const bytes = BYTE_LIMITS.has(name);
  const m = /^(\d{1,19})([KMG]?)$/i.exec(text);
  if (!m || (m[2] && !bytes)) return usage(`--limit ${q(item)}: ${q(text)} is not a number${bytes ? ", a size with K, M or G" : ""} or unlimited`);
  const v = BigInt(m[1] as string) * 1024n ** BigInt(" KMG".indexOf((m[2] as string).toUpperCase() || " "));
  if (v > INT64_MAX) usage(`--limit ${q(item)}: ${text} is more than a limit can be; give unlimited`);
  return v;
}

const pair = (v: bigint[], r: number) => [v[2 * r] as bigint, v[2 * r + 1] as bigint] as const;
const given = (v: bigint[]) => RLIMITS.flatMap((_, r) => (v[2 * r] === UNSET ? [] : [r]));

function showLimit(v: bigint[], r: number): string {
  const [soft, hard] = pair(v, r);
  return `${RLIMITS[r]}=${limitText(soft)}${hard === soft ? "" : `:${hard === UNSET ? "" : limitText(hard)}`}`;
}

/**
 * Without --limit nofile, the program gets the caller's soft limit back: Bun raised its own to
 * the hard one before any of daemonize ran. What the caller had can only be learned from its
 * parent, which passed its limits on when its hard limit is ours; otherwise FD_SETSIZE.
 */
function callerNofile(host: Host): { soft: bigint; why: string } {
  const hard = (host.limits()[NOFILE] as readonly [bigint, bigint])[1];
  const caller = host.caller();
  const theirs = caller?.limits[NOFILE];
  if (caller && theirs && theirs[1] === hard)
    return { soft: lower(theirs[0], hard), why: `the caller's (its parent, pid ${caller.pid}, has ${limitText(theirs[0])}:${limitText(theirs[1])})` };
  const why = caller ? `its parent, pid ${caller.pid}, has another hard limit` : "its parent's limits cannot be read";
  return { soft: lower(FD_SETSIZE, hard), why: `${why}: FD_SETSIZE` };
}

const POLICIES = { other: 0, fifo: 1, rr: 2, batch: 3, idle: 5 } as const;
const REALTIME = new Set<number>([POLICIES.fifo, POLICIES.rr]);
const IO_CLASSES = { realtime: 1, "best-effort": 2, idle: 3 } as const;
const IO_CLASS_SHIFT = 13;
/** ionice's level, and start-stop-daemon's, when none is given. */
const IO_LEVEL = 4;

function showSched(v: bigint): string {
  const [name] = Object.entries(POLICIES).find(([, p]) => p === Number(v >> 8n)) ?? [`policy ${v >> 8n}`];
  return `${name}${v & 0xffn ? `:${v & 0xffn}` : ""}`;
}

function showIonice(v: bigint): string {
  const io = Number(v >> BigInt(IO_CLASS_SHIFT));
  const [name] = Object.entries(IO_CLASSES).find(([, c]) => c === io) ?? [`class ${io}`];
  return io === IO_CLASSES.idle ? name : `${name}:${v & 7n}`;
}

/** The most CPUs a mask holds: 16 int64s. */
const MAX_CPUS = 1024;
const WORD = 64;

function cpuList(cpus: number[]): string {
  const out: string[] = [];
  for (let i = 0; i < cpus.length; i++) {
    let j = i;
    while (cpus[j + 1] === (cpus[j] as number) + 1) j++;
    out.push(j > i ? `${cpus[i]}-${cpus[j]}` : `${cpus[i]}`);
    i = j;
  }
  return out.join(",");
}

// Word by word: every start asks (without --cpus the mask is all 0), and a bit test makes BigInts.
const cpusOf = (mask: bigint[]) =>
  mask.flatMap((word, w) => (word === 0n ? [] : Array.from({ length: WORD }, (_, bit) => w * WORD + bit).filter((cpu) => (BigInt.asUintN(WORD, word) >> BigInt(cpu % WORD)) & 1n)));

/** Capability names by number, as capabilities(7) gives them without cap_. */
const CAPS = [
  "chown", "dac_override", "dac_read_search", "fowner", "fsetid", "kill", "setgid", "setuid", "setpcap", "linux_immutable",
  "net_bind_service", "net_broadcast", "net_admin", "net_raw", "ipc_lock", "ipc_owner", "sys_module", "sys_rawio", "sys_chroot", "sys_ptrace",
  "sys_pacct", "sys_admin", "sys_boot", "sys_nice", "sys_resource", "sys_time", "sys_tty_config", "mknod", "lease", "audit_write",
  "audit_control", "setfcap", "mac_override", "mac_admin", "syslog", "wake_alarm", "block_suspend", "audit_read", "perfmon", "bpf",
  "checkpoint_restore",
] as const;
const capsOf = (mask: bigint) => CAPS.flatMap((_, c) => ((mask >> BigInt(c)) & 1n ? [c] : []));
const capName = (c: number) => CAPS[c] ?? `cap ${c}`;

export const RUN_SETTINGS = [
  setting({
    option: "umask",
    arg: { group: "process", type: "string", valueHint: "MODE", default: "022", description: "File mode creation mask, octal" },
    parse: (given): number => {
      const text = one(given);
      // The default is known good, and a plain start runs no regular expression (the first costs a third of a millisecond).
      if (text === undefined) return 0o22;
      if (!/^[0-7]{1,4}$/.test(text) || Number.parseInt(text, 8) > 0o777) usage(`--umask ${q(text)} is not an octal mode from 000 to 777`);
      return Number.parseInt(text, 8);
    },
    range: [0n, 0o777n],
    show: (v) => v.toString(8).padStart(3, "0"),
    about: "file mode creation mask",
  }),
  setting({
    option: "core",
    arg: { group: "limits", type: "boolean", description: "Allow core dumps: raise the RLIMIT_CORE soft limit to the hard one, as --limit core= with the hard limit; without it, 0" },
    parse: (given): bigint => (given ? 1n : 0n),
    range: [0n, 1n],
    leave: UNSET,
    step: "LIMITS",
    show: () => "",
    resolve: (v) => (v === 1n ? { value: v, detail: "the RLIMIT_CORE soft limit raised to the hard one" } : undefined),
    about: "1: core soft limit to the hard one; 0: both 0 (INT64_MIN: as it is)",
  }),
  setting({
    option: "limit",
    arg: {
      group: "limits",
      type: "string",
      valueHint: "NAME=SOFT[:HARD]",
      description: `Set a resource limit, named as prlimit names it (${LIMIT_NAMES}): a number, for bytes a size with K, M or G, or unlimited; SOFT alone sets both; repeatable; without it, the caller's limits`,
    },
    repeatable: true,
    count: 2 * RLIMITS.length,
    parse: (items, others): bigint[] => {
      const v: bigint[] = Array(2 * RLIMITS.length).fill(UNSET);
      for (const item of Array.isArray(items) ? items : []) {
        const m = /^([a-z]+)=([^:]*)(?::(.*))?$/.exec(item);
        if (!m) return usage(`--limit ${q(item)} is not NAME=SOFT[:HARD]`);
        const [, name = "", softText = "", hardText] = m;
        const r = RLIMITS.indexOf(name as (typeof RLIMITS)[number]);
        if (r < 0) return usage(`--limit ${q(item)}: no such limit (${LIMIT_NAMES})`);
        if (v[2 * r] !== UNSET) usage(`--limit ${q(item)}: ${name} is given twice`);
        if (r === CORE && others("core")) usage("--core and --limit core= contradict each other: give one");
        const soft = limitValue(softText, name, item);
        const hard = hardText === undefined ? soft : limitValue(hardText, name, item);
        if (above(soft, hard)) usage(`--limit ${q(item)}: the soft limit is above the hard one`);
        v[2 * r] = soft;
        v[2 * r + 1] = hard;
      }
      return v;
    },
    range: [UNLIMITED, INT64_MAX],
    leave: UNSET,
    step: "LIMITS",
    show: (v, item) => (item === undefined ? given(v).map((r) => showLimit(v, r)) : [showLimit(v, item)]).join(","),
    resolve: (v, host) => {
      const now = host.limits();
      for (const r of given(v)) {
        const [, hard] = pair(v, r);
        const [, current] = now[r] as readonly [bigint, bigint];
        if (r === NOFILE && above(hard, host.nrOpen()))
          usage(`--limit ${showLimit(v, r)}: above this kernel's fs.nr_open, ${host.nrOpen()}`);
        if (above(hard, current) && !host.can(CAP_SYS_RESOURCE))
          fail("noperm", `--limit ${showLimit(v, r)}: raising the hard limit above ${limitText(current)} needs CAP_SYS_RESOURCE`);
      }
      const asked = given(v).map((r) => showLimit(v, r));
      if (v[2 * NOFILE] !== UNSET) return { value: v, detail: asked.join(", ") };
      const { soft, why } = callerNofile(host);
      const out = [...v];
      out[2 * NOFILE] = soft;
      return { value: out, detail: [...asked, `nofile soft ${limitText(soft)}, ${why}`].join(", ") };
    },
    about: "soft and hard limit by RLIMIT_* number (-1: unlimited; INT64_MIN: as it is)",
  }),
  setting({
    option: "nice",
    arg: { group: "limits", type: "string", valueHint: "N", description: "Scheduling priority, from -20 (first) to 19 (last)" },
    parse: (given): bigint => {
      const text = one(given);
      if (text === undefined) return UNSET;
      if (!/^-?\d{1,2}$/.test(text) || Number(text) < -20 || Number(text) > 19) usage(`--nice ${q(text)} is not a number from -20 to 19`);
      return BigInt(text);
    },
    range: [-20n, 19n],
    leave: UNSET,
    step: "NICE",
    show: (v) => String(v),
    resolve: (v, host, run) => {
      if (v === UNSET) return undefined;
      // The kernel lets anyone go down to 20 minus the RLIMIT_NICE soft limit, which --limit nice sets first.
      const asked = pair(run.limit as bigint[], RLIMIT_NICE)[0];
      const rlimit = asked === UNSET ? (host.limits()[RLIMIT_NICE] as readonly [bigint, bigint])[0] : asked;
      if (v < host.nice() && !host.can(CAP_SYS_NICE) && above(20n - v, rlimit))
        fail("noperm", `--nice ${v}: a nice value below ${host.nice()} needs CAP_SYS_NICE or --limit nice=${20n - v}`);
      return { value: v, detail: String(v) };
    },
    about: "nice value (INT64_MIN: as it is)",
  }),
  setting({
    option: "sched",
    arg: { group: "limits", type: "string", valueHint: "POLICY[:PRIO]", description: "CPU scheduling policy: other, batch, idle, or fifo:PRIO or rr:PRIO with PRIO from 1 to 99" },
    parse: (given): bigint => {
      const text = one(given);
      if (text === undefined) return UNSET;
      const m = /^([a-z]+)(?::(\d{1,3}))?$/.exec(text);
      const policy = m ? POLICIES[m[1] as keyof typeof POLICIES] : undefined;
      if (!m || policy === undefined) return usage(`--sched ${q(text)} is not other, batch, idle, fifo:PRIO or rr:PRIO`);
      const prio = m[2] === undefined ? 0 : Number(m[2]);
      if (REALTIME.has(policy) && (prio < 1 || prio > 99)) usage(`--sched ${q(text)}: ${m[1]} needs a priority from 1 to 99, as ${m[1]}:10`);
      if (!REALTIME.has(policy) && m[2] !== undefined) usage(`--sched ${q(text)}: only fifo and rr take a priority`);
      return BigInt((policy << 8) | prio);
    },
    range: [0n, BigInt((POLICIES.idle << 8) | 99)],
    leave: UNSET,
    step: "SCHED",
    show: showSched,
    resolve: (v, host, run) => {
      if (v === UNSET) return undefined;
      const prio = v & 0xffn;
      const asked = pair(run.limit as bigint[], RLIMIT_RTPRIO)[0];
      const rlimit = asked === UNSET ? (host.limits()[RLIMIT_RTPRIO] as readonly [bigint, bigint])[0] : asked;
      const shown = showSched(v);
      if (REALTIME.has(Number(v >> 8n)) && !host.can(CAP_SYS_NICE) && above(prio, rlimit))
        fail("noperm", `--sched ${shown}: a real-time policy needs CAP_SYS_NICE or --limit rtprio=${prio}`);
      return { value: v, detail: shown };
    },
    about: "scheduling policy << 8 | priority (INT64_MIN: as it is)",
  }),
  setting({
    option: "ionice",
    arg: { group: "limits", type: "string", valueHint: "CLASS[:LEVEL]", description: `I/O scheduling class: realtime[:LEVEL], best-effort[:LEVEL] (LEVEL from 0, first, to 7; ${IO_LEVEL} when left out) or idle` },
    parse: (given): bigint => {
      const text = one(given);
      if (text === undefined) return UNSET;
      const m = /^([a-z-]+)(?::(\d{1,2}))?$/.exec(text);
      const io = m ? IO_CLASSES[m[1] as keyof typeof IO_CLASSES] : undefined;
      if (!m || io === undefined) return usage(`--ionice ${q(text)} is not realtime[:LEVEL], best-effort[:LEVEL] or idle`);
      if (io === IO_CLASSES.idle && m[2] !== undefined) usage(`--ionice ${q(text)}: idle takes no level`);
      const level = m[2] === undefined ? (io === IO_CLASSES.idle ? 0 : IO_LEVEL) : Number(m[2]);
      if (level > 7) usage(`--ionice ${q(text)}: the level is from 0 to 7`);
      return BigInt((io << IO_CLASS_SHIFT) | level);
    },
    range: [0n, BigInt((IO_CLASSES.idle << IO_CLASS_SHIFT) | 7)],
    leave: UNSET,
    step: "IONICE",
    show: showIonice,
    resolve: (v, host) => {
      if (v === UNSET) return undefined;
      const shown = showIonice(v);
      if (Number(v >> BigInt(IO_CLASS_SHIFT)) === IO_CLASSES.realtime && !host.can(CAP_SYS_NICE) && !host.can(CAP_SYS_ADMIN))
        fail("noperm", `--ionice ${shown}: the realtime class needs CAP_SYS_NICE or CAP_SYS_ADMIN`);
      return { value: v, detail: shown };
    },
    about: "I/O priority: class << 13 | level (INT64_MIN: as it is)",
  }),
  setting({
    option: "oom-score-adjust",
    arg: { group: "limits", type: "string", valueHint: "N", description: "What the OOM killer adds to the program's score, from -1000 (never kill it) to 1000" },
    parse: (given): bigint => {
      const text = one(given);
      if (text === undefined) return UNSET;
      if (!/^-?\d{1,4}$/.test(text) || Math.abs(Number(text)) > 1000) usage(`--oom-score-adjust ${q(text)} is not a number from -1000 to 1000`);
      return BigInt(text);
    },
    range: [-1000n, 1000n],
    leave: UNSET,
    step: "OOM",
    show: (v) => String(v),
    // Below the lowest value a privileged process set for it, only CAP_SYS_RESOURCE may go, and that lowest value cannot be read: the child finds out.
    resolve: (v) => (v === UNSET ? undefined : { value: v, detail: String(v) }),
    about: "oom_score_adj (INT64_MIN: as it is)",
  }),
  setting({
    option: "cpus",
    arg: { group: "limits", type: "string", valueHint: "LIST", description: "CPU affinity, as taskset -c reads it: 0-3,8" },
    count: MAX_CPUS / WORD,
    parse: (given): bigint[] => {
      const text = one(given);
      const mask = Array<bigint>(MAX_CPUS / WORD).fill(0n);
      if (text === undefined) return mask;
      if (!/^\d{1,5}(-\d{1,5})?(,\d{1,5}(-\d{1,5})?)*$/.test(text)) return usage(`--cpus ${q(text)} is not a list of CPUs such as 0-3,8`);
      for (const range of text.split(",")) {
        const [from, to = from] = range.split("-").map(Number) as [number, number?];
        if (to < from) usage(`--cpus ${q(text)}: ${range} runs backwards`);
        if (to >= MAX_CPUS) usage(`--cpus ${q(text)}: daemonize can pin to CPUs 0 to ${MAX_CPUS - 1}`);
        for (let cpu = from; cpu <= to; cpu++) mask[cpu >> 6] = BigInt.asIntN(WORD, (mask[cpu >> 6] as bigint) | (1n << BigInt(cpu % WORD)));
      }
      return mask;
    },
    range: [UNSET, INT64_MAX],
    leave: 0n,
    step: "AFFINITY",
    show: (v) => cpuList(cpusOf(v)),
    resolve: (v, host) => {
      const asked = cpusOf(v);
      if (asked.length === 0) return undefined;
      const online = host.cpus();
      const absent = asked.find((cpu) => !online.includes(cpu));
      if (absent !== undefined) usage(`--cpus ${cpuList(asked)}: this machine has no CPU ${absent} (online: ${cpuList(online)})`);
      return { value: v, detail: cpuList(asked) };
    },
    about: "CPU affinity mask, CPU n at bit n % 64 of word n / 64 (all 0: as it is)",
  }),
  setting({
    option: "cap",
    arg: { group: "process", type: "string", valueHint: "CAP[,CAP...]", description: "Capabilities the program keeps (net_bind_service or cap_net_bind_service); every other one is dropped from every set, the bounding set too; with --user they are ambient" },
    parse: (given): bigint => {
      const text = one(given);
      if (text === undefined) return UNSET;
      let mask = 0n;
      for (const item of text.split(",")) {
        const c = CAPS.indexOf(item.toLowerCase().replace(/^cap_/, "") as (typeof CAPS)[number]);
        if (c < 0) usage(`--cap ${q(text)}: ${item ? `no capability is called ${item}` : "an empty name"}`);
        mask |= 1n << BigInt(c);
      }
      return mask;
    },
    range: [0n, INT64_MAX],
    leave: UNSET,
    step: "CAPS",
    show: (v, item) => (item === undefined ? capsOf(v) : [item]).map(capName).join(","),
    resolve: (v, host) => {
      if (v === UNSET) return undefined;
      host.requireRoot("--cap");
      const shown = capsOf(v).map(capName).join(",");
      const unknown = capsOf(v).find((c) => c > host.capLast());
      if (unknown !== undefined) usage(`--cap ${shown}: this kernel knows no ${capName(unknown)}`);
      const missing = capsOf(v).find((c) => !((host.permitted() >> BigInt(c)) & 1n));
      if (missing !== undefined) fail("noperm", `--cap ${shown}: this process does not have CAP_${capName(missing).toUpperCase()}, so the program cannot keep it`);
      if (!host.can(CAP_SETPCAP)) fail("noperm", `--cap ${shown}: dropping the others from the bounding set needs CAP_SETPCAP`);
      return { value: v, detail: `${shown}; every other capability dropped, the bounding set too` };
    },
    about: "capabilities to keep, bit n for capability n (INT64_MIN: as the ids leave them)",
  }),
  setting({
    option: "no-new-privs",
    arg: { group: "process", type: "boolean", description: "The program and everything it runs can never gain privileges (setuid binaries, file capabilities)" },
    parse: (given): bigint => (given ? 1n : 0n),
    range: [0n, 1n],
    leave: 0n,
    step: "NNP",
    show: () => "",
    resolve: (v) => (v === 1n ? { value: v, detail: "set: no setuid bit or file capability can raise the program's privileges" } : undefined),
    about: "1: PR_SET_NO_NEW_PRIVS",
  }),
] as const;

export type RunOption = (typeof RUN_SETTINGS)[number]["option"];
/** Every run setting's value, by option. */
export type RunValues = { [S in (typeof RUN_SETTINGS)[number] as S["option"]]: ReturnType<S["parse"]> };

export const fieldOf = (option: string): string => option.replaceAll("-", "_");

/** Every setting from the command line as `given` reads it (nothing given: the defaults). */
export const parseRun = (given: (option: string) => Given): RunValues =>
  Object.fromEntries(RUN_SETTINGS.map((s) => [s.option, s.parse(given(s.option), given)])) as RunValues;

/** Each setting checked against this system (resolve), in order; `t` is told what --check says of each. */
export function resolveRun(run: RunValues, host: Host, t?: { begin(check: string): void; pass(detail: string): void }): RunValues {
  const out: Record<string, RunValue> = { ...run };
  for (const s of RUN_SETTINGS as readonly RunSetting[]) {
    if (!s.resolve) continue;
    t?.begin(s.option);
    const resolved = s.resolve(out[s.option] as RunValue, host, out);
    if (!resolved) continue;
    out[s.option] = resolved.value;
    t?.pass(resolved.detail);
  }
  return out as RunValues;
}

const elements = (v: RunValue) => (Array.isArray(v) ? v : [BigInt(v)]);

/** What the monitor takes for itself: the settings it can leave as they are, left; the others (the umask) the run's. */
export const leftAlone = (run: RunValues): RunValues =>
  Object.fromEntries(
    (RUN_SETTINGS as readonly RunSetting[]).map(({ option, leave }) => {
      const v = run[option as RunOption];
      return [option, leave === undefined ? v : Array.isArray(v) ? v.map(() => leave) : leave];
    }),
  ) as RunValues;

/**
 * The settings as the monitor reads them: a comma list for one of several int64s, where an empty
 * item is the setting's `leave`; a setting that is all `leave` is not written, as it is the default.
 */
export function monitorSettings(run: RunValues): Record<string, string> {
  const out: Record<string, string> = {};
  for (const s of RUN_SETTINGS as readonly RunSetting[]) {
    const items = elements(run[s.option as RunOption]);
    if (s.leave !== undefined && items.every((i) => i === s.leave)) continue;
    out[s.option] = items.map((i) => (i === s.leave ? "" : String(i))).join(",");
  }
  return out;
}

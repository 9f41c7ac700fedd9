// Hands the prepared start to the native child path (ffi/launcher.c, ffi/child.c) and turns
// a failed step reported back through the status pipe into a typed error.
import { ptr } from "bun:ffi";
import { native } from "../ffi/native";
import { RUN_SPEC, type RunField, type SpecField, settingFailure, STEPS, stepName } from "./contract";
import { type Failure, fail } from "./errors";
import { fieldOf, RUN_SETTINGS, type RunSetting, type RunValue, type RunValues } from "./settings";
import { signalName } from "./signals";
import { cstr, denied, E, OsError } from "./sys";

/** Everything the child needs, as plain values: it cannot look anything up. */
export interface Spec {
  path: string;
  argv: string[];
  envp: string[];
  root?: string;
  dir: string;
  groups?: number[];
  uid: number;
  gid: number;
  run: RunValues;
  stdio: [number, number, number];
  keep: number[];
  /** Sockets handed on as fds 3, 4, ... (src/listen.ts); LISTEN_PID=0000000000 in envp gets the exec'ing pid. */
  listen: number[];
  /** --foreground: files to remove if the exec fails (the launcher may no longer be able to). */
  cleanup?: string[];
  /** An open file to exec instead of path: the supervise monitor's memfd. */
  execFd?: number;
  /** The fd on which the exec'd monitor keeps the status pipe, to report its first run. */
  reportFd?: number;
  /** --ready fd:N: the pipe's write end, and N. */
  readyFd?: number;
  readyTo?: number;
  /** --cgroup: an open directory of the cgroup the daemon joins first. */
  cgroupFd?: number;
}

const int64s = (v: RunValue) => (Array.isArray(v) ? v : BigInt(v));

/** The C struct dz_spec (src/contract.ts), filled field by field by name. `refs` keeps the pointed-to memory alive. */
function marshal(s: Spec, check = false) {
  const refs: NodeJS.TypedArray[] = [];
  const str = (v: string) => {
    const b = cstr(v);
    refs.push(b);
    return BigInt(ptr(b));
  };
  // One buffer and one native call however many strings: a launch from a shell
  // with a hundred variables in its environment costs no more than one without.
  const list = (items: string[]) => {
    const block = cstr(items.join("\0"));
    const a = new BigUint64Array(items.length + 1);
    // An empty list joins to "", which cstr still terminates: that NUL is no string.
    const r = native.dz_split(block, items.length ? block.length : 0, items.length, a);
    if (r < 0) throw new OsError(-r);
    refs.push(block, a);
    return BigInt(ptr(a));
  };
  const view = (a: NodeJS.TypedArray) => (refs.push(a), BigInt(ptr(a)));
  const fields: Record<SpecField, bigint | bigint[]> = {
    path: str(s.path),
    argv: list(s.argv),
    envp: list(s.envp),
    root: s.root === undefined ? 0n : str(s.root),
    dir: str(s.dir),
    groups: s.groups ? view(new Uint32Array(s.groups.length ? s.groups : [0])) : 0n,
    ngroups: BigInt(s.groups?.length ?? 0),
    uid: BigInt(s.uid),
    gid: BigInt(s.gid),
    ...(Object.fromEntries(RUN_SETTINGS.map(({ option }) => [fieldOf(option), int64s(s.run[option])])) as Record<RunField, bigint | bigint[]>),
    stdio: s.stdio.map(BigInt),
    keep: view(new Int32Array(s.keep.length ? s.keep : [0])),
    nkeep: BigInt(s.keep.length),
    listen: view(new Int32Array(s.listen.length ? s.listen : [0])),
    nlisten: BigInt(s.listen.length),
    cleanup: s.cleanup?.length ? list(s.cleanup) : 0n,
    exec_fd: BigInt(s.execFd ?? -1),
    report_fd: BigInt(s.reportFd ?? -1),
    check: check ? 1n : 0n,
    // Only the monitor's runs get one (ffi/monitor.c).
    pdeath: 0n,
    ready_fd: BigInt(s.readyFd ?? -1),
    ready_to: BigInt(s.readyTo ?? -1),
    cgroup_fd: BigInt(s.cgroupFd ?? -1),
  };
  const struct = new BigInt64Array(
    RUN_SPEC.flatMap((f) => {
      const v = fields[f.name];
      const count = "count" in f ? f.count : undefined;
      if ((Array.isArray(v) ? v.length : undefined) !== count) throw new Error(`run spec field ${f.name} has the wrong shape`);
      return v;
    }),
  );
  refs.push(struct);
  return { struct, refs };
}

export interface ChildFailure {
  step: number;
  errno: number;
}

/** The error for a failed step; exec failures are named by the caller, who knows the program. */
export function stepError(f: ChildFailure, s: Spec, onExec: (errno: number) => never): never {
  const step = STEPS[f.step]?.[0];
  const name = stepName(f.step);
  // Someone signalled the daemon after the drop, before it could exec.
  if (step === "STOPPED") fail("oserr", `the daemon was stopped before it could exec ${s.argv[0]}; it was killed`);
  if (step === "KILLED") fail("oserr", `the daemon was killed before it could exec ${s.argv[0]}`);
  // --ready: it ran, but will not be ready; what is left of it was stopped.
  if (step === "EXITED") {
    const code = (f.errno >> 8) & 0xff;
    const sig = f.errno & 0x7f;
    fail("notready", `${s.argv[0]} ${sig ? `was killed by signal ${sig}` : `exited with code ${code}`} before it was ready`);
  }
  if (step === "TIMEOUT") fail("readytimeout", `${s.argv[0]} was not ready within --ready-timeout; it was stopped`);
  if (step === "ERRNO") fail("notready", `${s.argv[0]} reported ERRNO=${f.errno} (${new OsError(f.errno).message}); it was stopped`);
  if (step === "CLOSED") fail("notready", `${s.argv[0]} closed its readiness fd without writing a newline; it was stopped`);
  if (step === "INTERRUPTED") fail("interrupted", `interrupted by ${signalName(f.errno)} while starting ${s.argv[0]}; what had started was stopped`, f.errno);
  if (step === "EXEC") onExec(f.errno);
  // The readiness fd is moved into place in the same step: a number past the open-file limit cannot be.
  if (step === "FDS" && s.readyTo !== undefined && s.readyTo >= 0 && f.errno === E.EBADF)
    fail("usage", `--ready fd:${s.readyTo}: fd ${s.readyTo} is above the daemon's open-file limit`);
  // A setting names itself: the option and the value, or the item of it, that failed.
  const setting = settingFailure(f.errno);
  const declared = setting && (RUN_SETTINGS[setting.setting] as RunSetting | undefined);
  if (setting && declared) {
    const value = s.run[declared.option as keyof RunValues];
    // Only a setting of several int64s has items (a limit's is its RLIMIT_* number).
    const shown = `--${declared.option}${declared.arg.type === "boolean" ? "" : ` ${declared.show(value, declared.count ? setting.item : undefined)}`}`;
    if (!setting.errno) fail("oserr", `${name}: ${shown} was set, but reads back otherwise`);
    const kind: Failure = denied(setting.errno) ? "noperm" : setting.errno === E.EINVAL ? "usage" : "oserr";
    fail(kind, `${shown}: ${new OsError(setting.errno).message}`);
  }
  const text = step === "VERIFY" ? "ids, groups or capabilities are not exactly what was asked" : new OsError(f.errno).message;
  const missing = f.errno === E.ENOENT || f.errno === E.ENOTDIR;
  const refused = denied(f.errno);
  let kind: Failure = "oserr";
  let what: string = name;
  if (step === "CHROOT" || step === "CHDIR") {
    what = `${name} ${step === "CHROOT" ? s.root : s.dir}`;
    kind = missing ? "noinput" : refused ? "noperm" : "oserr";
  } else if (step === "SETGROUPS" || step === "SETGID" || step === "SETUID") {
    what = `${name} ${step === "SETUID" ? s.uid : step === "SETGID" ? s.gid : (s.groups ?? []).join(",")}`;
    kind = refused ? "noperm" : "oserr";
  }
  return fail(kind, `${what}: ${text}`);
}

export interface Started {
  pid: number;
  /** Lets the daemon exec; throws if the exec failed. */
  release(): void;
  /** Makes the daemon exit without exec'ing. */
  abandon(): void;
}

/**
 * Forks the daemon (double fork, new session) and runs every step up to exec.
 * A monitor's failures after release are its first run's: `named` is that run.
 */
export function spawn(s: Spec, onExec: (errno: number) => never, named: Spec = s): Started {
  const { struct, refs } = marshal(s);
  const res = new BigInt64Array(5);
  const failed = native.dz_spawn(struct, res) < 0;
  const result = () => ({ step: Number(res[1]), errno: Number(res[2]) });
  if (failed) stepError(result(), s, onExec);
  return {
    pid: Number(res[0]),
    release: () => {
      if (native.dz_release(res) < 0) stepError(result(), named, onExec);
      refs.length = 0;
    },
    abandon: () => native.dz_abandon(res),
  };
}

/**
 * --check: the same child path in a throwaway daemon, which then asks whether
 * the exec would work instead of doing it, and exits. Returns its failure, if any.
 */
export function trial(s: Spec): ChildFailure | undefined {
  const { struct, refs } = marshal(s, true);
  const res = new BigInt64Array(5);
  const failed = native.dz_spawn(struct, res) < 0;
  if (!failed) native.dz_abandon(res);
  refs.length = 0;
  return failed ? { step: Number(res[1]), errno: Number(res[2]) } : undefined;
}

export const isExecStep = (f: ChildFailure): boolean => STEPS[f.step]?.[0] === "EXEC";

/**
 * For a start that waits for its daemon (--ready, --supervise): from here until
 * the returned function puts them back, SIGHUP, SIGINT and SIGTERM do not kill
 * the launcher but make the wait stop what was started (ffi/launcher.c).
 */
export function catchInterrupts(): () => void {
  const r = native.dz_interrupt_catch();
  if (r < 0) fail("oserr", `cannot catch SIGHUP, SIGINT and SIGTERM: ${new OsError(-r).message}`);
  return () => native.dz_interrupt_restore();
}

/** --foreground: the same steps, then exec in place. Returns only by throwing. */
export function execInPlace(s: Spec, onExec: (errno: number) => never): never {
  const { struct, refs } = marshal(s);
  const res = new BigInt64Array(5);
  native.dz_exec(struct, res);
  refs.length = 0;
  return stepError({ step: Number(res[1]), errno: Number(res[2]) }, s, onExec);
}

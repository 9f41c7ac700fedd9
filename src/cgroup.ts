// --cgroup: the program's whole tree in a cgroup v2 of its own. This file finds the
// hierarchy, decides the path, creates and marks the cgroup, enables controllers and
// writes --cgroup-set; the native side (ffi/cgroup.c) puts each run in it before its
// first instruction and ends everything in it. Loaded only when --cgroup is given,
// or when a pidfile records a cgroup.
//
//   hierarchy   the cgroup2 mount from /proc/self/mountinfo: /sys/fs/cgroup (unified),
//               /sys/fs/cgroup/unified (hybrid), or any other
//   base        the hierarchy's root, or this process's own cgroup when it is delegated
//   path        BASE/daemonize/NAME, NAME from the pidfile; or --cgroup=PATH
//   create      the directories on the way (marked as made), the cgroup (marked as the
//               pidfile's), controllers switched on above it (marked as enabled), the files
import { native } from "../ffi/native";
import { encode } from "./bytes";
import { XATTR } from "./contract";
import { fail } from "./errors";
import type { CgroupRequest } from "./options";
import { basename } from "./paths";
import { access, close, cstr, denied, E, fgetxattr, fsetxattr, O, OsError, open, readFile, stat, W_OK, writeAll } from "./sys";

/** The top directory daemonize's cgroups are made in. */
const TOP = "daemonize";

export interface Hierarchy {
  /** Where cgroup2 is mounted. */
  mount: string;
  /** Where daemonize's cgroups go: the mount, or this process's own delegated cgroup. */
  base: string;
  /** This process's own cgroup. */
  own: string;
  /** Whether base is a delegated cgroup, and why. */
  delegated?: string;
  /** The controllers the base offers its children. */
  controllers: string[];
}

/** mountinfo escapes space, tab, newline and backslash as octal. */
const unescape = (s: string) => s.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(Number.parseInt(o, 8)));

const PREFERRED = ["/sys/fs/cgroup", "/sys/fs/cgroup/unified"];

function attribute(dir: string, name: string): string | undefined {
  let fd: number;
  try {
    fd = open(dir, O.RDONLY | O.DIRECTORY);
  } catch {
    return undefined;
  }
  try {
    return fgetxattr(fd, name, 4096);
  } finally {
    close(fd);
  }
}

function setAttribute(dir: string, name: string, value: string): void {
  const fd = open(dir, O.RDONLY | O.DIRECTORY);
  try {
    fsetxattr(fd, name, value);
  } finally {
    close(fd);
  }
}

const words = (text: string) => text.split(/\s+/).filter(Boolean);

/** The cgroup2 mounts: the path in the hierarchy each shows, and where. */
const cgroup2Mounts = () =>
  readFile("/proc/self/mountinfo")
    .split("\n")
    .map((line) => line.split(" "))
    .filter((f) => f[f.indexOf("-") + 1] === "cgroup2")
    .map((f) => ({ root: unescape(f[3] as string), at: unescape(f[4] as string) }));

/**
 * The cgroup2 hierarchy, or exit 77 saying why there is none to use. Daemonize's own cgroup
 * is delegated to it when systemd says so (the trusted.delegate or user.delegate attribute
 * that Delegate=yes sets) or, for a user other than root, when that user owns it; in a
 * container's cgroup namespace the mount's root already is the container's own cgroup.
 */

export function hierarchy(): Hierarchy {
  const mounts = cgroup2Mounts();
  const found = PREFERRED.map((at) => mounts.find((m) => m.at === at)).find(Boolean) ?? mounts[0];
  if (!found) return fail("noperm", "--cgroup: no cgroup2 file system is mounted (none in /proc/self/mountinfo)");
  const own = /^0::(.*)$/m.exec(readFile("/proc/self/cgroup"))?.[1];
  const inside = own !== undefined && (own === found.root || own.startsWith(`${found.root === "/" ? "" : found.root}/`));
  const ownDir = inside ? `${found.at}${own.slice(found.root === "/" ? 0 : found.root.length)}`.replace(/\/$/, "") : found.at;
  let delegated: string | undefined;
  if (ownDir !== found.at) {
    const euid = process.geteuid?.() ?? 0;
    if (attribute(ownDir, "trusted.delegate") === "1" || attribute(ownDir, "user.delegate") === "1") delegated = `${ownDir} is delegated (Delegate=yes)`;
    else if (euid !== 0 && stat(ownDir).uid === euid) delegated = `${ownDir} is owned by uid ${euid}`;
  }
  const base = delegated ? ownDir : found.at;
  try {
    access(base, W_OK);
  } catch (e) {
    if (!(e instanceof OsError)) throw e;
    fail("noperm", `--cgroup: the cgroup2 hierarchy at ${base} cannot be written: ${e.message}`);
  }
  return { mount: found.at, base, own: ownDir, delegated, controllers: words(readFile(`${base}/cgroup.controllers`)) };
}

/** FNV-1a of the pidfile's path: two pidfiles of the same name in different directories get different cgroups. */
function fnv(text: string): string {
  let h = 0x811c9dc5;
  for (const b of encode(text)) h = Math.imul(h ^ b, 0x01000193) >>> 0;
  return h.toString(16).padStart(8, "0");
}

/** The pidfile's name without .pid, in letters, digits, - _ and . (64 at most), then - and 8 hex digits of its whole path. */
export const derivedName = (pidfile: string): string =>
  `${basename(pidfile).replace(/\.pid$/, "").replace(/[^A-Za-z0-9._-]/g, "_").replace(/^\.+/, "_").slice(0, 64) || "daemon"}-${fnv(pidfile)}`;

/** The cgroup's directory: --cgroup=/A/B is A/B from the hierarchy's root, --cgroup=A/B is under BASE/daemonize. */
export function cgroupPath(h: Hierarchy, path: string | undefined, pidfile: string | undefined): string {
  if (path?.startsWith("/")) return `${h.mount}${path}`.replace(/\/+$/, "");
  return `${h.base}/${TOP}/${path ?? derivedName(pidfile as string)}`.replace(/\/+$/, "");
}

const controllerOf = (file: string) => file.slice(0, file.indexOf("."));

/** The controllers --cgroup-set needs, the core's cgroup.* files needing none; 77 for one the hierarchy does not offer. */
function needed(h: Hierarchy, set: CgroupRequest["set"]): string[] {
  const wanted = [...new Set(set.map(([file]) => controllerOf(file)).filter((c) => c !== "cgroup"))];
  for (const c of wanted)
    if (!h.controllers.includes(c)) {
      const file = set.find(([f]) => controllerOf(f) === c)?.[0];
      fail("noperm", `--cgroup-set ${file}: the cgroup2 hierarchy at ${h.base} does not offer the ${c} controller (it offers: ${h.controllers.join(" ") || "none"})`);
    }
  return wanted;
}

/** Whether the cgroup at `path` was made for this pidfile: a cgroup2 directory, with its mark. */
export const ours = (path: string, pidfile: string): boolean =>
  cgroup2Mounts().some((m) => path.startsWith(`${m.at}/`)) && attribute(path, XATTR.cgroupOwner) === pidfile;

/**
 * Ends everything in the cgroup (TERM, KILL after `timeoutMs`), then removes it and leaves
 * the directories above it as they were found. Returns how many processes it found.
 */
export function end(path: string, timeoutMs: number): number {
  const r = native.dz_cgroup_end(cstr(path), timeoutMs);
  if (r < 0) fail("oserr", `cgroup ${path}: cannot empty and remove it: ${new OsError(-r).message}`);
  return r;
}

/** The processes in the cgroup now; 0 when it is gone. */
export function population(path: string): number {
  try {
    return words(readFile(`${path}/cgroup.procs`)).length;
  } catch {
    return 0;
  }
}

/** 0, or the errno. */
const mkdir = (path: string): number => -native.dz_mkdir(cstr(path));

/** The directories between the base and the cgroup, made where missing, each marked as daemonize's. */
function makeParents(h: Hierarchy, path: string): void {
  const parts = path.slice(h.mount.length + 1).split("/").slice(0, -1);
  let dir = h.mount;
  for (const part of parts) {
    dir = `${dir}/${part}`;
    if (!dir.startsWith(h.base) || dir.length <= h.base.length) continue;
    const errno = mkdir(dir);
    if (errno === E.EEXIST) continue;
    if (errno) fail("oserr", `--cgroup: cannot create ${dir}: ${new OsError(errno).message}`);
    setAttribute(dir, XATTR.cgroupMade, "1");
  }
}

/** Switches each controller on in every cgroup.subtree_control from the base down to the cgroup's parent, noting what it changed. */
function enable(h: Hierarchy, path: string, controllers: string[], setting: (c: string) => string): void {
  if (controllers.length === 0) return;
  const dirs: string[] = [];
  for (let dir = path.slice(0, path.lastIndexOf("/")); dir.length >= h.base.length; dir = dir.slice(0, dir.lastIndexOf("/"))) dirs.unshift(dir);
  for (const dir of dirs) {
    const on = words(readFile(`${dir}/cgroup.subtree_control`));
    const added = controllers.filter((c) => !on.includes(c));
    for (const c of added) {
      try {
        const fd = open(`${dir}/cgroup.subtree_control`, O.WRONLY);
        try {
          writeAll(fd, encode(`+${c}`));
        } finally {
          close(fd);
        }
      } catch (e) {
        if (!(e instanceof OsError)) throw e;
        const refused = denied(e.errno);
        fail(refused ? "noperm" : "oserr", `--cgroup-set ${setting(c)}: cannot enable the ${c} controller in ${dir}/cgroup.subtree_control: ${e.message}`);
      }
      const before = words(attribute(dir, XATTR.cgroupEnabled) ?? "");
      setAttribute(dir, XATTR.cgroupEnabled, [...new Set([...before, c])].join(" "));
    }
  }
}

function write(path: string, file: string, value: string): void {
  let fd: number;
  try {
    fd = open(`${path}/${file}`, O.WRONLY);
  } catch (e) {
    if (!(e instanceof OsError)) throw e;
    const missing = e.errno === E.ENOENT;
    return fail(missing ? "usage" : e.errno === E.EACCES ? "noperm" : "oserr", `--cgroup-set ${file}: ${missing ? `cgroup ${path} has no such file` : e.message}`);
  }
  try {
    writeAll(fd, encode(value));
  } catch (e) {
    if (!(e instanceof OsError)) throw e;
    fail(denied(e.errno) ? "noperm" : "usage", `--cgroup-set ${file}=${value}: ${e.message}`);
  } finally {
    close(fd);
  }
}

export interface Made {
  path: string;
  /** The cgroup's directory, open, for the child path to join. */
  fd: number;
  /** Ends and removes it again: for a start that fails. */
  undo(): void;
}

/**
 * Creates the cgroup for a start. A cgroup this pidfile's daemon left (its monitor was
 * killed) is emptied first; any other at the path is left alone, and the start refused.
 */
export function create(req: CgroupRequest, pidfile: string | undefined): Made {
  const h = hierarchy();
  const path = cgroupPath(h, req.path, pidfile);
  const controllers = needed(h, req.set);
  const owner = pidfile ?? "";
  for (;;) {
    // Again after emptying a cgroup left behind: its removal may have taken the directories above it.
    makeParents(h, path);
    const errno = mkdir(path);
    if (!errno) break;
    if (errno !== E.EEXIST) {
      end(path, 0);
      fail(denied(errno) ? "noperm" : "cantcreat", `--cgroup: cannot create ${path}: ${new OsError(errno).message}`);
    }
    if (!pidfile || !ours(path, pidfile)) fail("cantcreat", `--cgroup: ${path} exists and is not this daemon's cgroup; it is left alone`);
    end(path, req.stopTimeout);
  }
  const undo = () => {
    // --foreground: this process joined the cgroup before its exec failed, and must not end itself with it.
    if (/^0::(.*)$/m.exec(readFile("/proc/self/cgroup"))?.[1] === path.slice(h.mount.length)) write(h.own, "cgroup.procs", "0");
    end(path, 0);
  };
  try {
    setAttribute(path, XATTR.cgroupOwner, owner);
    enable(h, path, controllers, (c) => req.set.find(([f]) => controllerOf(f) === c)?.join("=") ?? c);
    for (const [file, value] of req.set) write(path, file, value);
    return { path, fd: open(path, O.RDONLY | O.DIRECTORY), undo };
  } catch (e) {
    undo();
    throw e;
  }
}

/** What --check says: the hierarchy, the path, the controllers, each --cgroup-set file; creates nothing. */
export function describe(req: CgroupRequest, pidfile: string | undefined): string {
  const h = hierarchy();
  const path = cgroupPath(h, req.path, pidfile);
  needed(h, req.set);
  // Where the files can be seen before the cgroup exists: the deepest directory on the way that does.
  let probe = path;
  while (probe.length > h.base.length && !exists(probe)) probe = probe.slice(0, probe.lastIndexOf("/"));
  const files = req.set.map(([file]) =>
    exists(`${probe}/${file}`) ? `${file} exists` : controllerOf(file) === "cgroup" ? `${file} is not in ${probe} (a core file the root lacks?)` : `${file}: its ${controllerOf(file)} controller is offered`,
  );
  const where = exists(path) ? (pidfile && ours(path, pidfile) ? "exists, left by this daemon: a start empties it first" : "exists and is someone else's") : "would be created";
  if (where.endsWith("someone else's")) fail("cantcreat", `--cgroup: ${path} exists and is not this daemon's cgroup; it is left alone`);
  return `cgroup2 at ${h.mount}${h.delegated ? ` (${h.delegated})` : ""}; ${path} ${where}; controllers offered: ${h.controllers.join(" ") || "none"}${files.length ? `; ${files.join(", ")}` : ""}`;
}

function exists(path: string): boolean {
  try {
    stat(path);
    return true;
  } catch {
    return false;
  }
}

/** What the cgroup reports, where the files exist: `status` and `status --json`. */
export interface Accounting {
  path: string;
  processes: number;
  memoryCurrent?: number;
  memoryPeak?: number;
  pidsCurrent?: number;
  cpuUsageUsec?: number;
  oomKills?: number;
}

export function accounting(path: string): Accounting | undefined {
  if (!exists(path)) return undefined;
  const read = (file: string) => {
    try {
      return readFile(`${path}/${file}`, 0, 65536);
    } catch {
      return undefined;
    }
  };
  const number = (file: string) => {
    const text = read(file)?.trim();
    return text === undefined || !/^\d+$/.test(text) ? undefined : Number(text);
  };
  const keyed = (file: string, key: string) => {
    const m = new RegExp(`^${key} (\\d+)$`, "m").exec(read(file) ?? "");
    return m ? Number(m[1]) : undefined;
  };
  const a: Accounting = {
    path,
    processes: population(path),
    memoryCurrent: number("memory.current"),
    memoryPeak: number("memory.peak"),
    pidsCurrent: number("pids.current"),
    cpuUsageUsec: keyed("cpu.stat", "usage_usec"),
    oomKills: keyed("memory.events", "oom_kill"),
  };
  return Object.fromEntries(Object.entries(a).filter(([, v]) => v !== undefined)) as unknown as Accounting;
}

/** One line of `status`: the cgroup's path and its figures. */
export function accountingText(a: Accounting): string {
  const mib = (n: number) => `${(n / 1048576).toFixed(1)} MiB`;
  return [
    `cgroup ${a.path}: ${a.processes} process${a.processes === 1 ? "" : "es"}`,
    a.memoryCurrent !== undefined ? `memory ${mib(a.memoryCurrent)}${a.memoryPeak !== undefined ? ` (peak ${mib(a.memoryPeak)})` : ""}` : undefined,
    a.pidsCurrent !== undefined ? `${a.pidsCurrent} tasks` : undefined,
    a.cpuUsageUsec !== undefined ? `CPU ${(a.cpuUsageUsec / 1e6).toFixed(2)} s` : undefined,
    a.oomKills ? `${a.oomKills} OOM kill${a.oomKills === 1 ? "" : "s"}` : undefined,
  ]
    .filter(Boolean)
    .join(", ");
}

/** The pidfile's record of its cgroup: "STOP_TIMEOUT_MS PATH". */
export const record = (path: string, stopTimeout: number): string => `${stopTimeout} ${path}`;

export function parseRecord(text: string | undefined): { path: string; stopTimeout: number } | undefined {
  const m = /^(\d+) (\/.+)$/.exec(text ?? "");
  return m ? { stopTimeout: Number(m[1]), path: m[2] as string } : undefined;
}

/**
 * The cgroup a pidfile records, when its daemon is gone (a SIGKILLed monitor leaves the
 * program's children in it): with `act`, everything in it is ended and it is removed.
 * Undefined when there is none left, or it is not this pidfile's.
 */
export function leftBehind(recorded: string, pidfile: string, act: boolean): string | undefined {
  const r = parseRecord(recorded);
  if (!r || !exists(r.path) || !ours(r.path, pidfile)) return undefined;
  if (!act) return `cgroup ${r.path} holds ${population(r.path)} process(es) of a daemon that is gone: a start ends them`;
  const n = end(r.path, r.stopTimeout);
  return n ? `ended ${n} process(es) left in cgroup ${r.path}` : `removed its empty cgroup ${r.path}`;
}

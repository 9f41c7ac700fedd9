// The pidfile: published atomically, never followed through a symlink, and judged
// stale unless the process it names is the one that was started for it.
//
// Identity: when daemonize writes a pidfile it records the boot id, the pid and
// the kernel start time of the daemon in the attribute user.daemonize.start. A pid is "running"
// only if that process still has that start time; a pid reused by another
// process, even one started later by the same name, never matches. A pidfile
// without the attribute (written by another tool, or on a file system without
// user xattrs) falls back to: the process started no later than the pidfile was
// written. No lock held by the daemon is involved, so a program that closes
// every fd at start-up is still recognised.
import { XATTR } from "./contract";
import { native } from "../ffi/native";
import { encode } from "./bytes";
import { fail } from "./errors";
import { basename, dirname } from "./paths";
import { bootId, startedAtMs, startTicks } from "./proc";
import { type Entry, untrusted, walk } from "./trust";
import {
  close, cstr, E, fchmod, fgetxattr, flock, fsetxattr, fstat, isFile, LOCK_EX, LOCK_NB, LOCK_SH, LOCK_UN, link, O, OsError, open, readFd,
  rename, type Stat, stat, unlink, writeAll,
} from "./sys";

/** Linux's PID_MAX_LIMIT. */
const PID_MAX = 4194304;
/** Slack for the fallback check: /proc times have 10 ms resolution. */
const SLACK_MS = 1000;

/** The pid in a pidfile's text: one decimal number above 1, optionally newline-terminated. */
export function parsePid(text: string): number | undefined {
  if (!/^[1-9]\d{0,6}\n?$/.test(text)) return undefined;
  const pid = Number.parseInt(text, 10);
  return pid > 1 && pid <= PID_MAX ? pid : undefined;
}

/** What the attribute records: two processes never share all three. */
const identity = (pid: number, ticks: number) => `${bootId()} ${pid} ${ticks}`;

const startedBy = (ticks: number, st: Stat) => startedAtMs(ticks) <= st.mtimeMs + SLACK_MS;

function refuseLink(path: string, e: unknown): never {
  if (e instanceof OsError && e.errno === E.ELOOP)
    fail("cantcreat", `pidfile ${path} is a symbolic link; refusing to follow it`);
  return fail("cantcreat", `pidfile ${path}: ${(e as Error).message}`);
}

const euid = () => process.geteuid?.() ?? 0;

/**
 * A pidfile only root or the caller could have written: anyone else could name
 * any process in it, and forge the identity attribute on a file of their own.
 */
function checkOwner(path: string, st: Stat, unsafe: boolean): void {
  if (unsafe || st.uid === 0 || st.uid === euid()) return;
  fail("noperm", `pidfile ${path} is owned by uid ${st.uid}; refusing to trust it (--unsafe allows it)`);
}

/** What checkDirectory found for one directory: nothing wrong, the walk's error, or the refusal. */
type Verdict = { walkError: string } | { refusal: string } | undefined;

/** Whether only root or the caller could replace what is in dir (a pidfile's, a --listen unix socket's). */
export function judge(dir: string, unsafe: boolean, what = "pidfile directory"): Verdict {
  const entries: Entry[] = [];
  try {
    walk(dir, undefined, (e) => entries.push(e));
  } catch (e) {
    return { walkError: (e as Error).message };
  }
  const found = unsafe ? undefined : untrusted(entries, [0, euid()]);
  return found && { refusal: `${what} ${found.at} ${found.why}; refusing to use it (--unsafe allows it)` };
}

/** Verdicts by directory, for one command over many pidfiles; never kept longer, as a directory can change. */
export type Verdicts = Map<string, Verdict>;

/**
 * Neither the pidfile's directory nor any directory or link on the way to it
 * may let anyone but root or the caller replace what the path leads to.
 */
export function checkDirectory(path: string, unsafe: boolean, verdicts?: Verdicts): void {
  const dir = dirname(path);
  const verdict = verdicts?.has(dir) ? verdicts.get(dir) : judge(dir, unsafe);
  verdicts?.set(dir, verdict);
  if (verdict && "walkError" in verdict) fail("cantcreat", `cannot create pidfile ${path}: ${verdict.walkError}`);
  if (verdict) fail("noperm", verdict.refusal);
}

/** What a pidfile says: no file, a daemon that is gone, or the live daemon it was written for. */
export type Examined =
  | { state: "none" }
  | { state: "dead"; pid: number; monitor?: string; logs?: string[]; cgroup?: string }
  | { state: "running"; pid: number; ticks: number; monitor?: string; logs?: string[]; cgroup?: string };

/** What an open pidfile says. Throws for a file that cannot be trusted or does not hold a pid. */
function inspect(fd: number, path: string, unsafe: boolean): Exclude<Examined, { state: "none" }> {
  const st = fstat(fd);
  if (!isFile(st)) fail("cantcreat", `pidfile ${path} is not a regular file`);
  checkOwner(path, st, unsafe);
  const text = readFd(fd, 64);
  const pid = parsePid(text);
  if (pid === undefined)
    fail("cantcreat", `pidfile ${path} does not hold a pid (${JSON.stringify(text.slice(0, 20))}); remove it if it is stale`);
  const found = fgetxattr(fd, XATTR.monitor, 512);
  // The monitor's state, and beside it what the program last said of itself.
  const monitor = found === undefined ? undefined : `${found}\n${fgetxattr(fd, XATTR.status) ?? ""}`;
  const logs = fgetxattr(fd, XATTR.logs, 16384)?.split("\0");
  const cgroup = fgetxattr(fd, XATTR.cgroup, 4200);
  const ticks = startTicks(pid);
  if (ticks === undefined) return { state: "dead", pid, monitor, logs, cgroup };
  const recorded = fgetxattr(fd, XATTR.start);
  // A monitor holds its pidfile locked for its whole life: unlocked, the pidfile names a monitor that is
  // gone. Anyone who can read the file can lock it too, so a lock counts only beside the identity.
  const gone = monitor !== undefined && !locked(fd);
  const alive = (recorded === undefined ? startedBy(ticks, st) : recorded === identity(pid, ticks)) && !gone;
  return alive ? { state: "running", pid, ticks, monitor, logs, cgroup } : { state: "dead", pid, monitor, logs, cgroup };
}

function locked(fd: number): boolean {
  try {
    flock(fd, LOCK_SH | LOCK_NB);
  } catch (e) {
    if (e instanceof OsError && e.errno === E.EAGAIN) return true;
    throw e;
  }
  flock(fd, LOCK_UN);
  return false;
}

function openExisting(path: string): number | undefined {
  try {
    // O_NONBLOCK: a FIFO put in the pidfile's place must not hang the open (inspect refuses it).
    return open(path, O.RDONLY | O.NOFOLLOW | O.NONBLOCK);
  } catch (e) {
    if (e instanceof OsError && e.errno === E.ENOENT) return undefined;
    return refuseLink(path, e);
  }
}

export function examine(path: string, unsafe: boolean): Examined {
  const fd = openExisting(path);
  if (fd === undefined) return { state: "none" };
  try {
    return inspect(fd, path, unsafe);
  } finally {
    close(fd);
  }
}

/** How long to wait for another launcher or remover of the same pidfile. */
const LOCK_WAIT_MS = 2000;

const lockPath = (path: string) => `${dirname(path)}/.${basename(path)}.lock`;

/**
 * The lock every writer and remover of a pidfile holds while it replaces or
 * removes it. Not the pidfile itself: anyone who can read a file can flock it,
 * and a pidfile is readable by all, so a lock on it would let any user block
 * every later start. `.NAME.lock` beside it can be opened only by its owner,
 * root or the caller, in a directory only they can write. Its holder removes
 * it when done (dropLock), so nothing is left at rest: a waiter whose file was
 * removed meanwhile tries again, and a file a killed holder left is taken over.
 */
function takeLock(path: string): number {
  const file = lockPath(path);
  const deadline = Date.now() + LOCK_WAIT_MS;
  for (;;) {
    let fd: number;
    try {
      // O_NONBLOCK: a FIFO in its place must not hang the open (it is refused below).
      fd = open(file, O.RDONLY | O.CREAT | O.NOFOLLOW | O.NONBLOCK, 0o600);
    } catch (e) {
      if (e instanceof OsError && e.errno === E.ELOOP) fail("cantcreat", `pidfile lock ${file} is a symbolic link; refusing to follow it`);
      // What stops this file from being created would stop the pidfile too.
      return fail("cantcreat", `cannot lock pidfile ${path}: ${(e as Error).message}`);
    }
    let held = false;
    try {
      const st = fstat(fd);
      const why = !isFile(st) ? "is not a regular file" : st.uid !== 0 && st.uid !== euid() ? `is owned by uid ${st.uid}` : st.mode & 0o077 ? "can be opened by others" : undefined;
      if (why) fail("noperm", `pidfile lock ${file} ${why}; refusing to use it (remove it)`);
      for (;;) {
        try {
          flock(fd, LOCK_EX | LOCK_NB);
          break;
        } catch (e) {
          if (!(e instanceof OsError && e.errno === E.EAGAIN)) throw e;
          if (Date.now() > deadline) fail("cantcreat", `pidfile ${path} is locked by another process`);
          Bun.sleepSync(2);
        }
      }
      let now: Stat | undefined;
      try {
        now = stat(file, false);
      } catch {}
      held = now?.ino === st.ino && now.dev === st.dev;
      if (held) return fd;
    } catch (e) {
      if (!(e instanceof OsError)) throw e;
      fail("cantcreat", `cannot lock pidfile ${path}: ${file}: ${e.message}`);
    } finally {
      if (!held) close(fd);
    }
  }
}

/** Removes the lock file while it is still held, so no later holder's file is removed. */
function dropLock(path: string, fd: number): void {
  try {
    unlink(lockPath(path));
  } catch {}
  close(fd);
}

/** A lock file a killed holder left: taken over and removed by the next start, even one that replaces no pidfile. */
function clearLock(path: string): void {
  try {
    stat(lockPath(path), false);
  } catch {
    return;
  }
  dropLock(path, takeLock(path));
}

/** A pidfile not yet in place: its temporary file, open. */
export interface Draft {
  fd: number;
  tmp: string;
}

/**
 * The temporary file a pidfile is published from: named after this launcher, its
 * pid and start time, so that what a launcher killed mid-start leaves is known
 * for its own (ffi/proc.c) and removed by the next start.
 */
export const draftName = (path: string): string => `${dirname(path)}/.${basename(path)}.${process.pid}.${startTicks(process.pid)}.tmp`;

/**
 * Creates the temporary file a pidfile is published from, after removing those
 * of launchers that are gone. With `lock`, it is locked at once: a monitor that
 * inherits the fd holds the lock from before the pidfile exists until it exits.
 */
export function draft(path: string, lock = false): Draft {
  const tmp = draftName(path);
  // No lock needed: a name the sweep removes belongs to a launcher that is gone, and no one else makes it again.
  native.dz_sweep(cstr(dirname(path)), cstr(`.${basename(path)}.`), cstr(".tmp"));
  clearLock(path);
  try {
    // Readable by its owner only until published: no one else may open it, or lock it before the monitor's lock is taken.
    const fd = open(tmp, O.WRONLY | O.CREAT | O.EXCL | O.NOFOLLOW, 0o600);
    if (lock) flock(fd, LOCK_EX | LOCK_NB);
    return { fd, tmp };
  } catch (e) {
    return fail("cantcreat", `cannot create pidfile ${path}: ${(e as Error).message}`);
  }
}

/** Gives up a draft that was never published. */
export function discard(d: Draft): void {
  close(d.fd);
  try {
    unlink(d.tmp);
  } catch {}
}

/**
 * Writes `pid` to a new file and links it into place, so readers see either no
 * pidfile or a complete one. An existing pidfile is replaced only when the
 * daemon it names is gone; otherwise this throws "running". A supervised
 * start passes its locked draft and the monitor's first state.
 */
export interface Attributes {
  monitor?: string;
  /** The log files, for `daemonize logs`. */
  logs?: string[];
  /** --cgroup: the daemon's cgroup, as src/cgroup.ts records it. */
  cgroup?: string;
}

export function publish(path: string, pid: number, unsafe: boolean, given?: Draft, attrs: Attributes = {}): void {
  // A draft that was passed in stays open: its lock is the monitor's.
  const { fd, tmp } = given ?? draft(path);
  try {
    try {
      fchmod(fd, 0o644);
      writeAll(fd, encode(`${pid}\n`));
      const ticks = startTicks(pid);
      if (ticks !== undefined) fsetxattr(fd, XATTR.start, identity(pid, ticks));
      if (attrs.monitor !== undefined) fsetxattr(fd, XATTR.monitor, attrs.monitor);
      if (attrs.logs?.length) fsetxattr(fd, XATTR.logs, attrs.logs.join("\0"));
      if (attrs.cgroup !== undefined) fsetxattr(fd, XATTR.cgroup, attrs.cgroup);
    } catch (e) {
      if (!(e instanceof OsError && e.errno === E.EOPNOTSUPP))
        fail("cantcreat", `cannot write pidfile ${path}: ${(e as Error).message}`);
    } finally {
      if (!given) close(fd);
    }
    for (;;) {
      try {
        link(tmp, path);
        return;
      } catch (e) {
        if (!(e instanceof OsError && e.errno === E.EEXIST)) fail("cantcreat", `cannot create pidfile ${path}: ${(e as Error).message}`);
      }
      const held = takeLock(path);
      try {
        const old = openExisting(path);
        // Removed since the link failed: link again.
        if (old === undefined) continue;
        try {
          const other = inspect(old, path, unsafe);
          if (other.state === "running") fail("running", `already running (pid ${other.pid})`);
        } finally {
          close(old);
        }
        try {
          rename(tmp, path);
        } catch (e) {
          fail("cantcreat", `cannot replace pidfile ${path}: ${(e as Error).message}`);
        }
        return;
      } finally {
        dropLock(path, held);
      }
    }
  } finally {
    try {
      unlink(tmp);
    } catch {}
  }
}

/**
 * Removes the pidfile if it still names `pid`. Never throws, as it also runs while another error is
 * being reported; returns why it could not, for a stop to say.
 */
export function unpublish(path: string, pid: number): string | undefined {
  try {
    const held = takeLock(path);
    try {
      const fd = openExisting(path);
      if (fd === undefined) return;
      try {
        if (parsePid(readFd(fd, 64)) === pid) unlink(path);
      } finally {
        close(fd);
      }
    } finally {
      dropLock(path, held);
    }
  } catch (e) {
    return e instanceof OsError && e.call ? `${e.call}: ${e.message}` : (e as Error).message;
  }
  return undefined;
}

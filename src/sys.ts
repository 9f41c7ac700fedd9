// Thin syscall wrappers over the native library: they throw OsError with the
// errno, and callers turn that into a DaemonizeError that names the step.
import { libraryFd, native } from "../ffi/native";
import { concat, decode, encode } from "./bytes";

export const E = {
  EPERM: 1, ENOENT: 2, ESRCH: 3, ENXIO: 6, E2BIG: 7, EBADF: 9, EAGAIN: 11, EACCES: 13, EEXIST: 17, ENOTDIR: 20, EISDIR: 21, EINVAL: 22, EPIPE: 32, ENAMETOOLONG: 36, ENOSYS: 38, ELOOP: 40, EOPNOTSUPP: 95, EAFNOSUPPORT: 97, EADDRINUSE: 98,
} as const;

/** Whether an errno says the caller may not (a documented 77), rather than that something failed. */
export const denied = (errno: number | undefined): boolean => errno === E.EACCES || errno === E.EPERM;

export const O = {
  RDONLY: 0, WRONLY: 1, RDWR: 2, CREAT: 0o100, EXCL: 0o200, TRUNC: 0o1000, APPEND: 0o2000,
  NOFOLLOW: 0o400000, NONBLOCK: 0o4000, DIRECTORY: 0o200000, PATH: 0o10000000,
} as const;

export const S_IFMT = 0o170000;
export const S_IFDIR = 0o040000;
export const S_IFREG = 0o100000;
export const S_IFLNK = 0o120000;
export const W_OK = 2;
export const X_OK = 1;
export const LOCK_SH = 1;
export const LOCK_EX = 2;
export const LOCK_NB = 4;
export const LOCK_UN = 8;

export function strerror(errno: number): string {
  const buf = new Uint8Array(256);
  native.dz_strerror(errno, buf, buf.length);
  return cString(buf);
}

export class OsError extends Error {
  /** The call that failed and what it was given ("open /dev/null"), for an error no caller named a step for. */
  constructor(
    readonly errno: number,
    readonly call?: string,
  ) {
    super(strerror(errno));
  }
}

export const cstr = (s: string): Uint8Array => encode(`${s}\0`);
export const cString = (buf: Uint8Array): string => {
  const end = buf.indexOf(0);
  return decode(buf.subarray(0, end < 0 ? buf.length : end));
};

function check(r: number | bigint, call?: string): number {
  const n = Number(r);
  if (n < 0) throw new OsError(-n, call);
  return n;
}

export const open = (path: string, flags: number, mode = 0): number => check(native.dz_open(cstr(path), flags, mode), `open ${path}`);
export const close = (fd: number): void => void native.dz_close(fd);
export const link = (from: string, to: string): void => void check(native.dz_link(cstr(from), cstr(to)), `link ${to}`);
export const rename = (from: string, to: string): void => void check(native.dz_rename(cstr(from), cstr(to)), `rename ${from}`);
export const unlink = (path: string): void => void check(native.dz_unlink(cstr(path)), `unlink ${path}`);
export const flock = (fd: number, op: number): void => void check(native.dz_flock(fd, op));
export const fchown = (fd: number, uid: number, gid: number): void => void check(native.dz_fchown(fd, uid, gid));
export const fchmod = (fd: number, mode: number): void => void check(native.dz_fchmod(fd, mode));
export const ftruncate = (fd: number): void => void check(native.dz_ftruncate(fd));
/** Whether this process, by its effective ids, may `mode` (R_OK 4, W_OK 2, X_OK 1) path. */
export const access = (path: string, mode: number): void => void check(native.dz_access(cstr(path), mode), `access ${path}`);
/** A handle on one process: it can never come to mean a later one with the same pid. */
export const pidfdOpen = (pid: number): number => check(native.dz_pidfd_open(pid), `pidfd_open ${pid}`);
export const pidfdSignal = (fd: number, sig: number): void => void check(native.dz_pidfd_signal(fd, sig));
export const kill = (pid: number, sig: number): void => void check(native.dz_kill(pid, sig), `kill ${pid}`);
/** sig with a value, through the process's pidfd when there is one. */
export const sigqueue = (pidfd: number | undefined, pid: number, sig: number, value: number): void =>
  void check(native.dz_sigqueue(pidfd ?? -1, pid, sig, value));
/** Clears O_NONBLOCK, which an open used so that a FIFO could not hang it. */
export const setBlocking = (fd: number): void => void check(native.dz_blocking(fd));
/**
 * Whether fd could have been handed to us: open, not an anonymous inode, and not
 * the native library's memory file. Bun marks inherited fds close-on-exec too, so
 * that bit cannot tell them from its own event-loop fds (epoll, eventfd), which are
 * anonymous inodes.
 */
export function isInheritable(fd: number): boolean {
  if (fd === libraryFd) return false;
  try {
    return (fstat(fd).mode & S_IFMT) !== 0;
  } catch {
    return false;
  }
}

/** Reads at most buf.length bytes at off; 0 at the end of the file. */
export const pread = (fd: number, buf: Uint8Array, off: number): number => check(native.dz_pread(fd, buf, buf.length, off));

export function writeAll(fd: number, data: Uint8Array): void {
  for (let off = 0; off < data.length; ) off += check(native.dz_write(fd, data.subarray(off), data.length - off));
}

export function fsetxattr(fd: number, name: string, value: string): void {
  const v = encode(value);
  check(native.dz_fsetxattr(fd, cstr(name), v, v.length));
}

/** The attribute's value, or undefined when the file has none. */
export function fgetxattr(fd: number, name: string, size = 256): string | undefined {
  const buf = new Uint8Array(size);
  const n = native.dz_fgetxattr(fd, cstr(name), buf, buf.length);
  if (n < 0) return undefined;
  return decode(buf.subarray(0, Number(n)));
}

export interface Stat {
  dev: number;
  ino: number;
  mode: number;
  uid: number;
  gid: number;
  size: number;
  mtimeMs: number;
  nlink: number;
}

function toStat(r: number, out: BigInt64Array, call?: string): Stat {
  check(r, call);
  const n = (i: number) => Number(out[i]);
  return { dev: n(0), ino: n(1), mode: n(2), uid: n(3), gid: n(4), size: n(5), mtimeMs: n(6) * 1000 + n(7) / 1e6, nlink: n(8) };
}

export function stat(path: string, follow = true): Stat {
  const out = new BigInt64Array(9);
  return toStat(native.dz_stat(cstr(path), follow ? 1 : 0, out), out, `stat ${path}`);
}

export function fstat(fd: number): Stat {
  const out = new BigInt64Array(9);
  return toStat(native.dz_fstat(fd, out), out);
}

export const isDir = (st: Stat): boolean => (st.mode & S_IFMT) === S_IFDIR;
export const isFile = (st: Stat): boolean => (st.mode & S_IFMT) === S_IFREG;
export const isLink = (st: Stat): boolean => (st.mode & S_IFMT) === S_IFLNK;

/**
 * Why a file or directory could be changed by someone outside `owners` (a
 * sticky directory, like /tmp, only lets each user replace their own entries),
 * or undefined when it could not.
 */
export function openToOthers(st: Stat, owners: number[]): string | undefined {
  if (!owners.includes(st.uid)) return `is owned by uid ${st.uid}`;
  if (st.mode & 0o022 && !(isDir(st) && st.mode & 0o1000)) return "is writable by group or others";
  return undefined;
}

export function readlink(path: string): string {
  const out = new Uint8Array(4096);
  return decode(out.subarray(0, check(native.dz_readlink(cstr(path), out, out.length), `readlink ${path}`)));
}

/** Reads a whole file (or at most limit bytes) as text. */
export function readFile(path: string, flags = 0, limit = 1 << 20): string {
  const fd = open(path, O.RDONLY | flags);
  try {
    return readFd(fd, limit);
  } finally {
    close(fd);
  }
}

/** Reads to EOF, but no more than limit + 1 bytes: a longer result means the file is over the limit. */
export function readFd(fd: number, limit = 1 << 20): string {
  const chunks: Uint8Array[] = [];
  let total = 0;
  for (;;) {
    const buf = new Uint8Array(Math.min(4096, limit - total + 1));
    const n = check(native.dz_read(fd, buf, buf.length));
    if (n === 0) break;
    chunks.push(buf.subarray(0, n));
    total += n;
    if (total > limit) break;
  }
  return decode(concat(chunks));
}

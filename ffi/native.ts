// The one place that binds native symbols: a bootstrap trio from libc, and the
// daemonize library (ffi/*.c), which holds every other libc call. Bun compiles a
// trampoline for each symbol it binds, so the library's symbols are bound in
// groups, each on its first use: a plain start binds files and start, status
// files and users, and only a start that waits binds waits.
import libraryPath from "../build/libdaemonize.so" with { type: "file" };
import { dlopen, type FFIFunction, FFIType as T } from "bun:ffi";
import { encode } from "../src/bytes";
import { fail } from "../src/errors";
import { refusePrivileged } from "../src/guard";

const libc = dlopen("libc.so.6", {
  memfd_create: { args: [T.ptr, T.u32], returns: T.i32 },
  write: { args: [T.i32, T.ptr, T.u64], returns: T.i64_fast },
  getauxval: { args: [T.u64], returns: T.u64 },
});

const AT_SECURE = 23;

const MFD_CLOEXEC = 1;
// Mapped, never exec'd: sealed non-executable, which vm.memfd_noexec=2 demands (kernels before 6.3 refuse the flag).
const MFD_NOEXEC_SEAL = 8;

const groups = {
  /** Every command that binds anything: files, pidfiles, /proc and error text. */
  files: {
    dz_open: { args: [T.ptr, T.i32, T.i32], returns: T.i32 },
    dz_close: { args: [T.i32], returns: T.i32 },
    dz_read: { args: [T.i32, T.ptr, T.i64], returns: T.i64_fast },
    dz_pread: { args: [T.i32, T.ptr, T.i64, T.i64], returns: T.i64_fast },
    dz_write: { args: [T.i32, T.ptr, T.i64], returns: T.i64_fast },
    dz_unlink: { args: [T.ptr], returns: T.i32 },
    dz_flock: { args: [T.i32, T.i32], returns: T.i32 },
    dz_fgetxattr: { args: [T.i32, T.ptr, T.ptr, T.i64], returns: T.i64_fast },
    dz_stat: { args: [T.ptr, T.i32, T.ptr], returns: T.i32 },
    dz_fstat: { args: [T.i32, T.ptr], returns: T.i32 },
    dz_readlink: { args: [T.ptr, T.ptr, T.i64], returns: T.i64_fast },
    dz_strerror: { args: [T.i32, T.ptr, T.i64], returns: T.void },
  },
  /** A start: the child path, publishing the pidfile, the log files. */
  start: {
    dz_spawn: { args: [T.ptr, T.ptr], returns: T.i32 },
    dz_release: { args: [T.ptr], returns: T.i32 },
    dz_abandon: { args: [T.ptr], returns: T.void },
    dz_exec: { args: [T.ptr, T.ptr], returns: T.i32 },
    dz_split: { args: [T.ptr, T.i64, T.i64, T.ptr], returns: T.i32 },
    dz_link: { args: [T.ptr, T.ptr], returns: T.i32 },
    dz_rename: { args: [T.ptr, T.ptr], returns: T.i32 },
    dz_fchown: { args: [T.i32, T.i64, T.i64], returns: T.i32 },
    dz_fsetxattr: { args: [T.i32, T.ptr, T.ptr, T.i64], returns: T.i32 },
    dz_fchmod: { args: [T.i32, T.i32], returns: T.i32 },
    dz_ftruncate: { args: [T.i32], returns: T.i32 },
    dz_blocking: { args: [T.i32], returns: T.i32 },
    dz_access: { args: [T.ptr, T.i32], returns: T.i32 },
    dz_sweep: { args: [T.ptr, T.ptr, T.ptr], returns: T.void },
  },
  /** --listen: the sockets, bound before the fork. */
  sockets: {
    dz_listen_inet: { args: [T.i32, T.i32, T.ptr, T.i32, T.i32, T.ptr], returns: T.i32 },
    dz_listen_unix: { args: [T.ptr, T.i64, T.i64, T.i32, T.ptr], returns: T.i32 },
  },
  /** --user and --group, and the user status names. */
  users: {
    dz_getpw: { args: [T.ptr, T.i64, T.ptr, T.ptr, T.i64, T.ptr, T.i64], returns: T.i32 },
    dz_getgr: { args: [T.ptr, T.ptr], returns: T.i32 },
    dz_grouplist: { args: [T.ptr, T.i64, T.ptr, T.i32], returns: T.i32 },
  },
  /** stop, signal and the monitor's control channel. */
  signals: {
    dz_pidfd_open: { args: [T.i32], returns: T.i32 },
    dz_pidfd_signal: { args: [T.i32, T.i32], returns: T.i32 },
    dz_kill: { args: [T.i32, T.i32], returns: T.i32 },
    dz_sigqueue: { args: [T.i32, T.i32, T.i32, T.i32], returns: T.i32 },
  },
  /** --cgroup: making a cgroup, ending what is in one, and removing it. */
  cgroup: {
    dz_mkdir: { args: [T.ptr], returns: T.i32 },
    dz_cgroup_end: { args: [T.ptr, T.i64], returns: T.i32 },
  },
  /** A start that waits: --ready, and --supervise's monitor image. */
  waits: {
    dz_interrupt_catch: { args: [], returns: T.i32 },
    dz_interrupt_restore: { args: [], returns: T.void },
    dz_ready_prepare: { args: [T.ptr, T.i64, T.i64, T.i64, T.ptr, T.i64, T.ptr], returns: T.i32 },
    dz_ready_wait: { args: [T.i64, T.i64, T.ptr, T.i64, T.ptr], returns: T.i32 },
    dz_ready_done: { args: [], returns: T.void },
    dz_ready_parse: { args: [T.ptr, T.ptr], returns: T.i32 },
    dz_memfd_exec: { args: [T.ptr, T.ptr, T.i64], returns: T.i32 },
  },
} as const satisfies Record<string, Record<string, FFIFunction>>;

type Groups = typeof groups;
type Bound<G extends keyof Groups> = ReturnType<typeof dlopen<Groups[G]>>["symbols"];
type Every<U> = (U extends unknown ? (u: U) => void : never) extends (i: infer I) => void ? I : never;

// Bun would extract an embedded library to a predictable file under /tmp before
// dlopen: a path another user can plant, and one that fails on a noexec /tmp.
// An anonymous memory file is neither.
async function load(): Promise<number> {
  if (libc.symbols.getauxval(AT_SECURE)) await refusePrivileged();
  const image = await Bun.file(libraryPath).bytes();
  const name = encode("daemonize\0");
  let fd = libc.symbols.memfd_create(name, MFD_CLOEXEC | MFD_NOEXEC_SEAL);
  if (fd < 0) fd = libc.symbols.memfd_create(name, MFD_CLOEXEC);
  if (fd < 0) fail("oserr", "cannot load the native library: memfd_create failed");
  for (let off = 0; off < image.length; ) {
    const n = libc.symbols.write(fd, image.subarray(off), image.length - off);
    if (n <= 0) fail("oserr", "cannot load the native library: writing it to memory failed");
    off += Number(n);
  }
  return fd;
}

/**
 * The library's memory file. It stays open (close-on-exec) for the process's life: a later
 * group is bound by another dlopen of the same path, which finds the library already loaded.
 */
export const libraryFd = await load();

/** Every symbol. The files group is bound now, so that a library that cannot load fails here, before any command runs. */
export const native = {} as Every<Bound<keyof Groups>>;

function bind(group: keyof Groups): void {
  let symbols: Record<string, unknown>;
  try {
    symbols = dlopen(`/proc/self/fd/${libraryFd}`, groups[group]).symbols;
  } catch (e) {
    return fail("oserr", `cannot load the native library: ${(e as Error).message}`);
  }
  for (const [name, f] of Object.entries(symbols)) Object.defineProperty(native, name, { value: f, enumerable: true });
}

bind("files");
for (const group of Object.keys(groups) as (keyof Groups)[])
  for (const name of Object.keys(groups[group]))
    if (!(name in native))
      Object.defineProperty(native, name, {
        configurable: true,
        get: () => {
          bind(group);
          return native[name as keyof typeof native];
        },
      });

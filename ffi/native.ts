// The one place that binds native symbols: a bootstrap trio from libc, and the
// daemonize library (ffi/*.c), which holds every other libc call.
import libraryPath from "../build/libdaemonize.so" with { type: "file" };
import { dlopen, FFIType as T } from "bun:ffi";
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

const symbols = {
  dz_spawn: { args: [T.ptr, T.ptr], returns: T.i32 },
  dz_release: { args: [T.ptr], returns: T.i32 },
  dz_abandon: { args: [T.ptr], returns: T.void },
  dz_interrupt_catch: { args: [], returns: T.i32 },
  dz_interrupt_restore: { args: [], returns: T.void },
  dz_exec: { args: [T.ptr, T.ptr], returns: T.i32 },
  dz_split: { args: [T.ptr, T.i64, T.i64, T.ptr], returns: T.i32 },
  dz_open: { args: [T.ptr, T.i32, T.i32], returns: T.i32 },
  dz_close: { args: [T.i32], returns: T.i32 },
  dz_read: { args: [T.i32, T.ptr, T.i64], returns: T.i64_fast },
  dz_pread: { args: [T.i32, T.ptr, T.i64, T.i64], returns: T.i64_fast },
  dz_write: { args: [T.i32, T.ptr, T.i64], returns: T.i64_fast },
  dz_link: { args: [T.ptr, T.ptr], returns: T.i32 },
  dz_rename: { args: [T.ptr, T.ptr], returns: T.i32 },
  dz_unlink: { args: [T.ptr], returns: T.i32 },
  dz_flock: { args: [T.i32, T.i32], returns: T.i32 },
  dz_fchown: { args: [T.i32, T.i64, T.i64], returns: T.i32 },
  dz_fsetxattr: { args: [T.i32, T.ptr, T.ptr, T.i64], returns: T.i32 },
  dz_fgetxattr: { args: [T.i32, T.ptr, T.ptr, T.i64], returns: T.i64_fast },
  dz_fchmod: { args: [T.i32, T.i32], returns: T.i32 },
  dz_ftruncate: { args: [T.i32], returns: T.i32 },
  dz_access: { args: [T.ptr, T.i32], returns: T.i32 },
  dz_sweep: { args: [T.ptr, T.ptr, T.ptr], returns: T.void },
  dz_memfd_exec: { args: [T.ptr, T.ptr, T.i64], returns: T.i32 },
  dz_sigqueue: { args: [T.i32, T.i32, T.i32, T.i32], returns: T.i32 },
  dz_ready_prepare: { args: [T.ptr, T.i64, T.i64, T.i64, T.ptr, T.i64, T.ptr], returns: T.i32 },
  dz_ready_wait: { args: [T.i64, T.i64, T.ptr, T.i64, T.ptr], returns: T.i32 },
  dz_ready_done: { args: [], returns: T.void },
  dz_ready_config: { args: [T.ptr], returns: T.i32 },
  dz_pidfd_open: { args: [T.i32], returns: T.i32 },
  dz_pidfd_signal: { args: [T.i32, T.i32], returns: T.i32 },
  dz_kill: { args: [T.i32, T.i32], returns: T.i32 },
  dz_blocking: { args: [T.i32], returns: T.i32 },
  dz_stat: { args: [T.ptr, T.i32, T.ptr], returns: T.i32 },
  dz_fstat: { args: [T.i32, T.ptr], returns: T.i32 },
  dz_readlink: { args: [T.ptr, T.ptr, T.i64], returns: T.i64_fast },
  dz_strerror: { args: [T.i32, T.ptr, T.i64], returns: T.void },
  dz_getpw: { args: [T.ptr, T.i64, T.ptr, T.ptr, T.i64, T.ptr, T.i64], returns: T.i32 },
  dz_getgr: { args: [T.ptr, T.ptr], returns: T.i32 },
  dz_grouplist: { args: [T.ptr, T.i64, T.ptr, T.i32], returns: T.i32 },
} as const;

// Bun would extract an embedded library to a predictable file under /tmp before
// dlopen: a path another user can plant, and one that fails on a noexec /tmp.
// An anonymous memory file is neither.
async function load() {
  if (libc.symbols.getauxval(AT_SECURE)) await refusePrivileged();
  const image = await Bun.file(libraryPath).bytes();
  const name = Buffer.from("daemonize\0");
  let fd = libc.symbols.memfd_create(name, MFD_CLOEXEC | MFD_NOEXEC_SEAL);
  if (fd < 0) fd = libc.symbols.memfd_create(name, MFD_CLOEXEC);
  if (fd < 0) fail("oserr", "cannot load the native library: memfd_create failed");
  for (let off = 0; off < image.length; ) {
    const n = libc.symbols.write(fd, image.subarray(off), image.length - off);
    if (n <= 0) fail("oserr", "cannot load the native library: writing it to memory failed");
    off += Number(n);
  }
  let lib: ReturnType<typeof dlopen<typeof symbols>>;
  try {
    lib = dlopen(`/proc/self/fd/${fd}`, symbols);
  } catch (e) {
    return fail("oserr", `cannot load the native library: ${(e as Error).message}`);
  }
  lib.symbols.dz_close(fd);
  return lib.symbols;
}

export const native = await load();

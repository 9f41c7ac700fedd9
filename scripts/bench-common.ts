// What the benchmark scripts share: the clock the timed programs stamp with, the
// C compiler they are built with, and the median.
import { dlopen, FFIType } from "bun:ffi";
import { readFileSync } from "node:fs";
import { constants } from "node:os";

// Bun's process.hrtime counts from the process's start, not CLOCK_MONOTONIC's origin (a fresh
// process reads about 10 ms where clock_gettime reads the uptime): read the clock the programs stamp with.
const libc = dlopen("libc.so.6", { clock_gettime: { args: [FFIType.i32, FFIType.ptr], returns: FFIType.i32 } });
const CLOCK_MONOTONIC = 1;
const timespec = new BigInt64Array(2);

export function monotonicNs(): bigint {
  libc.symbols.clock_gettime(CLOCK_MONOTONIC, timespec);
  return (timespec[0] as bigint) * 1_000_000_000n + (timespec[1] as bigint);
}

/** The timed programs are C: without a compiler there is nothing to measure. */
export function needCc(): void {
  if (Bun.which("cc")) return;
  console.error("bench: cc is missing (apt-get install gcc libc6-dev)");
  process.exit(1);
}

export function median(x: number[]): number {
  const s = [...x].sort((a, b) => a - b);
  return s.length % 2 ? (s[s.length >> 1] as number) : ((s[s.length / 2 - 1] as number) + (s[s.length / 2] as number)) / 2;
}

/** An interrupted bench still ends what it started and removes its files. */
export function onInterrupt(cleanup: () => void): void {
  for (const signal of ["SIGINT", "SIGTERM", "SIGHUP"] as const)
    process.on(signal, () => {
      cleanup();
      process.exit(128 + constants.signals[signal]);
    });
}

/** The kB lines of /proc/PID/status (VmRSS, RssAnon, ...), in KiB. */
export function procStatus(pid: number): Record<string, number> {
  const out: Record<string, number> = {};
  for (const line of readFileSync(`/proc/${pid}/status`, "utf8").split("\n")) {
    const m = /^(\w+):\s+(\d+) kB$/.exec(line);
    if (m) out[m[1] as string] = Number(m[2]);
  }
  return out;
}

// What /proc says about a process: enough to tell one process from a later one
// with the same pid, and to describe it in `status`.
import { readFile } from "./sys";

/** USER_HZ, the unit of /proc/PID/stat start times, is 100 on every Linux ABI. */
const TICKS_PER_SECOND = 100;

/** The kernel's start time of a live (not zombie) process, in ticks since boot. */
export function startTicks(pid: number): number | undefined {
  let text: string;
  try {
    text = readFile(`/proc/${pid}/stat`);
  } catch {
    return undefined;
  }
  const fields = text.slice(text.lastIndexOf(")") + 2).split(" ");
  if (fields[0] === "Z" || fields[0] === "X") return undefined;
  return Number(fields[19]);
}

// Both are fixed until the next boot, and `status` of many pidfiles would read them once per file.
let bootMs: number | undefined;
let bootIdText: string | undefined;

/** Wall-clock time of a start given in ticks since boot, in ms since the epoch. */
export function startedAtMs(ticks: number): number {
  bootMs ??= Date.now() - Number.parseFloat(readFile("/proc/uptime")) * 1000;
  return bootMs + (ticks * 1000) / TICKS_PER_SECOND;
}

export const bootId = (): string => (bootIdText ??= readFile("/proc/sys/kernel/random/boot_id").trim());

/** The real uid of a process, or undefined once it is gone. */
export function processUid(pid: number): number | undefined {
  try {
    return Number(readFile(`/proc/${pid}/status`).match(/^Uid:\s+(\d+)/m)?.[1]);
  } catch {
    return undefined;
  }
}

export function commandLine(pid: number): string[] {
  try {
    return readFile(`/proc/${pid}/cmdline`).split("\0").slice(0, -1);
  } catch {
    return [];
  }
}

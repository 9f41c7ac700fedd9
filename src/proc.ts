// What /proc says about a process: enough to tell one process from a later one
// with the same pid, and to describe it in `status`.
import { readFile } from "./sys";

/** USER_HZ, the unit of /proc/PID/stat start times, is 100 on every Linux ABI. */
const TICKS_PER_SECOND = 100;

/** The kernel marks its own threads with PF_KTHREAD: never a daemon, whatever a pidfile says. */
const PF_KTHREAD = 0x00200000;

/** The kernel's start time of a live process (not a zombie, not a kernel thread), in ticks since boot. */
export function startTicks(pid: number): number | undefined {
  let text: string;
  try {
    text = readFile(`/proc/${pid}/stat`);
  } catch {
    return undefined;
  }
  const fields = text.slice(text.lastIndexOf(")") + 2).split(" ");
  if (fields[0] === "Z" || fields[0] === "X" || Number(fields[6]) & PF_KTHREAD) return undefined;
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

export function commandLine(pid: number | "self", limit?: number): string[] {
  try {
    return readFile(`/proc/${pid}/cmdline`, 0, limit).split("\0").slice(0, -1);
  } catch {
    return [];
  }
}

/** The kernel's ceiling on arguments and environment together (a quarter of a stack limit, at most). */
const ARGS_MAX = 1 << 30;

/**
 * This process's own arguments after the runtime's two, byte for byte: process.argv has
 * replaced every byte that is not UTF-8. Without /proc, process.argv is all there is.
 */
export function ownArguments(): string[] {
  const given = process.argv.length - 2;
  const all = commandLine("self", ARGS_MAX);
  return all.length > given ? all.slice(all.length - given) : process.argv.slice(2);
}

/**
 * The environment this process was given, byte for byte, the first of a repeated name winning as for getenv;
 * a new object without a prototype, so that __proto__ is just a name.
 */
export function ownEnvironment(): Record<string, string> {
  let text: string;
  try {
    text = readFile("/proc/self/environ", 0, ARGS_MAX);
  } catch {
    return Object.assign(Object.create(null), process.env);
  }
  const env: Record<string, string> = Object.create(null);
  for (const entry of text.split("\0")) {
    const eq = entry.indexOf("=");
    if (eq > 0 && !(entry.slice(0, eq) in env)) env[entry.slice(0, eq)] = entry.slice(eq + 1);
  }
  return env;
}

// What the launcher can learn of itself and of its caller before the fork: what the settings of
// src/settings.ts are checked against. Each fact is read when first asked for, and only then.
import { requireRoot } from "./privileges";
import type { Host } from "./settings";
import { readFile } from "./sys";

function once<T>(read: () => T): () => T {
  let known: { value: T } | undefined;
  return () => (known ??= { value: read() }).value;
}

/** /proc/PID/limits, one row per RLIMIT_* number in order: soft and hard, -1n for unlimited. */
function limitsOf(pid: number | "self"): (readonly [bigint, bigint])[] {
  return readFile(`/proc/${pid}/limits`)
    .split("\n")
    .slice(1)
    .filter(Boolean)
    .map((row) => {
      // The kernel pads the columns to fixed widths ("%-25s %-20s %-20s %-10s"): no splitting needed.
      const value = (v: string) => (v === "unlimited" ? -1n : BigInt(v));
      return [value(row.slice(26, 46).trim()), value(row.slice(47, 67).trim())] as const;
    });
}

/** A capability set of /proc/self/status. */
const capSet = (name: string) => BigInt(`0x${status().match(new RegExp(`^${name}:\\s*([0-9a-f]+)$`, "m"))?.[1] ?? "0"}`);
const status = once(() => readFile("/proc/self/status"));

/** A CPU list as the kernel writes one: 0-3,8. */
const cpuList = (text: string) =>
  text
    .trim()
    .split(",")
    .filter(Boolean)
    .flatMap((range) => {
      const [from, to = from] = range.split("-").map(Number) as [number, number?];
      return Array.from({ length: to - from + 1 }, (_, i) => from + i);
    });

export const host: Host = {
  euid: process.geteuid?.() ?? 0,
  requireRoot,
  can: (cap) => Boolean((capSet("CapEff") >> BigInt(cap)) & 1n),
  permitted: () => capSet("CapPrm"),
  limits: once(() => limitsOf("self")),
  caller: once(() => {
    try {
      return { pid: process.ppid, limits: limitsOf(process.ppid) };
    } catch {
      return undefined;
    }
  }),
  nice: once(() => {
    const stat = readFile("/proc/self/stat");
    return Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[16]);
  }),
  // The CPUs that are online; where /sys is not mounted, the ones this process may run on.
  cpus: once(() => {
    try {
      return cpuList(readFile("/sys/devices/system/cpu/online"));
    } catch {
      return cpuList(status().match(/^Cpus_allowed_list:\s*(\S+)$/m)?.[1] ?? "");
    }
  }),
  nrOpen: once(() => BigInt(readFile("/proc/sys/fs/nr_open").trim())),
  capLast: once(() => Number(readFile("/proc/sys/kernel/cap_last_cap").trim())),
};

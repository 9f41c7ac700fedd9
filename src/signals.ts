// Signal names and stop schedules, as the command line gives them.
import { fail } from "./errors";

/** Linux signal numbers (the same on x86_64 and aarch64). */
const SIGNALS: Record<string, number> = {
  HUP: 1, INT: 2, QUIT: 3, ILL: 4, TRAP: 5, ABRT: 6, IOT: 6, BUS: 7, FPE: 8, KILL: 9, USR1: 10, SEGV: 11, USR2: 12,
  PIPE: 13, ALRM: 14, TERM: 15, STKFLT: 16, CHLD: 17, CONT: 18, STOP: 19, TSTP: 20, TTIN: 21, TTOU: 22, URG: 23,
  XCPU: 24, XFSZ: 25, VTALRM: 26, PROF: 27, WINCH: 28, IO: 29, POLL: 29, PWR: 30, SYS: 31,
};

/** SIGHUP for 1; a number past the named ones stays a number. */
export const signalName = (n: number): string => {
  const name = Object.keys(SIGNALS).find((k) => SIGNALS[k] === n);
  return name ? `SIG${name}` : `signal ${n}`;
};

/** A signal by name (HUP, SIGHUP, hup) or number (1 to 64). */
export function parseSignal(text: string): number {
  if (/^\d{1,2}$/.test(text) && Number(text) >= 1 && Number(text) <= 64) return Number(text);
  const n = SIGNALS[text.toUpperCase().replace(/^SIG/, "")];
  if (n === undefined) fail("usage", `unknown signal ${JSON.stringify(text)}`);
  return n as number;
}

export type Step = { signal: number } | { seconds: number };

/**
 * start-stop-daemon's --retry: TERM/30/KILL/5 (a signal may carry a leading
 * dash), or a plain number N meaning TERM/N/KILL/N.
 */
export function parseSchedule(text: string): Step[] {
  const seconds = (item: string) => {
    if (!/^\d{1,6}(\.\d+)?$/.test(item)) fail("usage", `--retry ${JSON.stringify(text)}: ${JSON.stringify(item)} is neither a signal nor a number of seconds`);
    return Number(item);
  };
  if (!text.includes("/")) {
    const n = seconds(text);
    return [{ signal: 15 }, { seconds: n }, { signal: 9 }, { seconds: n }];
  }
  const steps = text.split("/").map((item): Step => (/^[\d.]+$/.test(item) ? { seconds: seconds(item) } : { signal: parseSignal(item.replace(/^-/, "")) }));
  if (!steps.some((s) => "seconds" in s)) fail("usage", `--retry ${JSON.stringify(text)} never waits`);
  return steps;
}


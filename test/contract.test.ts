// The contract between the TypeScript and the native side is declared once (src/contract.ts,
// and the exit codes in src/errors.ts): the C side gets it generated, and nothing repeats it.
import { describe, expect, test } from "bun:test";
import { readdirSync, readFileSync } from "node:fs";
import { contractHeader } from "../scripts/contract";
import { MONITOR_KEYS, MONITOR_STATE_FIELDS } from "../src/contract";
import { RUN_SETTINGS } from "../src/settings";
import { ROOT } from "./helpers";

const ffi = readdirSync(`${ROOT}ffi`).filter((f) => /\.[ch]$/.test(f));
/** A C file without its comments, which may name what the code must not spell out. */
const code = (file: string) => readFileSync(`${ROOT}ffi/${file}`, "utf8").replace(/\/\*[\s\S]*?\*\//g, "");
const src = readdirSync(`${ROOT}src`).filter((f) => f.endsWith(".ts") && f !== "contract.ts");

describe("the contract", () => {
  test("build/contract.h is what src/contract.ts and src/errors.ts make now", () => {
    expect(readFileSync(`${ROOT}build/contract.h`, "utf8")).toBe(contractHeader());
  });

  test("no exit code is written as a number in ffi/ (0, success, aside)", () => {
    for (const file of ffi) expect({ file, found: code(file).match(/\b(_exit|exit|SYS_exit,)\s*\(?\s*[1-9]\d*|(first_failure|last_code) = [^;]*\b[1-9]\d+\b/g) }).toEqual({ file, found: null });
  });

  test("the monitor reads exactly the declared settings", () => {
    // The monitor's own keys, the liveness checks' (ffi/liveness.h) and the relay's.
    const own = ["monitor.c", "watchdog.c", "health.c", "memory.c"].flatMap((file) => [...code(file).matchAll(/strcmp\(k, "([^"]+)"\)/g)]);
    const keys = [...own, ...code("relay.c").matchAll(/strcmp\(key, "([^"]+)"\)/g)].map((m) => m[1]);
    // The run settings it reads through the generated RUN_SETTINGS table.
    expect(code("monitor.c")).toContain("settings[] = RUN_SETTINGS;");
    expect([...new Set([...keys, ...RUN_SETTINGS.map((s) => s.option)])].sort()).toEqual([...MONITOR_KEYS].sort());
  });

  test("the monitor writes its state in the declared fields", () => {
    // The reload's fields follow the monitor's own, written by ffi/reload.c.
    const format = (file: string, call: string) => new RegExp(`snprintf\\(${call}, "([^"]+)"`).exec(code(file))?.[1] ?? "";
    // Then the liveness checks' (ffi/liveness.h), written by the monitor after the reload's.
    const fields = `${format("monitor.c", "v, sizeof v")}${format("reload.c", "out, size")}${format("monitor.c", "v \\+ n, sizeof v - \\(size_t\\)n")}`.split(" ");
    expect(fields.length).toBe(MONITOR_STATE_FIELDS.length);
    expect(fields.every((f) => /^%(s|d|lld)(:%d)?$/.test(f))).toBe(true);
  });

  test("names, states, steps and control values are written nowhere else", () => {
    for (const file of ffi) {
      const c = code(file);
      expect({ file, found: c.match(/"user\.daemonize\.|#define (CONTROL_|STEP_NAMES|STATE_NAMES)|enum state \{|"starting", "running"|"exited before ready"/g) }).toEqual({ file, found: null });
    }
    for (const file of src) {
      const ts = readFileSync(`${ROOT}src/${file}`, "utf8");
      expect({ file, found: ts.match(/"user\.daemonize\.|"not ready in time"|"backoff", "stopping"|\b63\b/g) }).toEqual({ file, found: null });
    }
  });
});

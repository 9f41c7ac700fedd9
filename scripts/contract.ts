// build/contract.h: src/contract.ts and the exit codes of src/errors.ts, for the C side.
// scripts/build.ts writes it before compiling; test/contract.test.ts checks it is current.
import { CONTROL, DEFAULTS, HEALTH_STATES, LIMITS, LIVENESS_FAILURES, MONITOR_STATES, READY_KINDS, READY_REFUSALS, RELOAD_OUTCOMES, RUN_SPEC, SETTING_FAILURE, STEPS, XATTR } from "../src/contract";
import { EXIT } from "../src/errors";
import { fieldOf, RUN_SETTINGS, type RunSetting, UNSET } from "../src/settings";

const macro = (name: string) => name.replace(/([a-z])([A-Z])/g, "$1_$2").toUpperCase();
const str = (s: string) => JSON.stringify(s);
/** An int64 as C reads it: the two ends by name, since -9223372036854775808 is not a C constant. */
const int64 = (v: bigint) => (v === UNSET ? "INT64_MIN" : v === -UNSET - 1n ? "INT64_MAX" : `${v}`);

export function contractHeader(): string {
  const lines = [
    "/* Generated from src/contract.ts and src/errors.ts by scripts/build.ts: do not edit. */",
    "#ifndef DZ_CONTRACT_H",
    "#define DZ_CONTRACT_H",
    "#include <stdint.h>",
    "#include <sys/types.h>",
    "",
    "/* Exit codes. */",
    ...Object.entries(EXIT).map(([name, { code }]) => `#define EXIT_${macro(name)} ${code}`),
    "",
    "/* The child path's steps, in order; their names for messages. */",
    `enum { ${STEPS.map(([c], i) => `STEP_${c} = ${i}`).join(", ")} };`,
    `#define STEP_NAMES { ${STEPS.map(([, name]) => str(name)).join(", ")} }`,
    "",
    "/* The monitor's states. */",
    `enum state { ${MONITOR_STATES.map((s) => `STATE_${macro(s)}`).join(", ")} };`,
    `#define STATE_NAMES { ${MONITOR_STATES.map(str).join(", ")} }`,
    "",
    "/* How a reload ended. */",
    `enum reload_outcome { ${RELOAD_OUTCOMES.map((s) => `RELOAD_${macro(s)}`).join(", ")} };`,
    `#define RELOAD_NAMES { ${RELOAD_OUTCOMES.map(str).join(", ")} }`,
    "",
    "/* A run's health, and why a run was stopped (0: it was not). */",
    `enum health { ${HEALTH_STATES.map((s) => `HEALTH_${macro(s)}`).join(", ")} };`,
    `#define HEALTH_NAMES { ${HEALTH_STATES.map(str).join(", ")} }`,
    `enum failure { FAILURE_NONE, ${LIVENESS_FAILURES.map((s) => `FAILURE_${macro(s)}`).join(", ")} };`,
    `#define FAILURE_NAMES { "-", ${LIVENESS_FAILURES.map(str).join(", ")} }`,
    "",
    "/* The control signal and the values queued with it. */",
    ...Object.entries(CONTROL).map(([name, v]) => `#define CONTROL_${macro(name)} (${v})`),
    "",
    "/* Extended attributes on a pidfile. */",
    ...Object.entries(XATTR).map(([name, v]) => `#define XATTR_${macro(name)} ${str(v)}`),
    "",
    "/* --ready's protocols (0: none), and why an argument is refused (0: it is not). */",
    `enum { ${READY_KINDS.map((k, i) => `READY_${macro(k)} = ${i + 1}`).join(", ")} };`,
    `enum { ${READY_REFUSALS.map((r, i) => `REFUSED_${macro(r)} = ${i + 1}`).join(", ")} };`,
    "",
    "/* Defaults both sides know (milliseconds for durations). */",
    ...Object.entries(DEFAULTS).map(([name, v]) => `#define DEFAULT_${macro(name)} ${v}`),
    ...Object.entries(LIMITS).map(([name, v]) => `#define LIMIT_${macro(name)} ${v}`),
    "",
    "/* What the child path is given: every field 8 bytes wide, so JavaScript fills it from one typed array. */",
    "struct dz_spec {",
    ...RUN_SPEC.map((f) => `\t${f.c.endsWith("*") ? f.c : `${f.c} `}${f.name}${"count" in f ? `[${f.count}]` : ""}; /* ${f.about} */`),
    "};",
    "",
    "/* The settings of src/settings.ts: their indices, and a failure of one as a child reports it (errno 0: it reads back otherwise). */",
    `enum { ${RUN_SETTINGS.map((s, i) => `SETTING_${macro(fieldOf(s.option))} = ${i}`).join(", ")} };`,
    "#define SETTING_UNSET INT64_MIN",
    `#define SETTING_FAILED(errno_, setting, item) ((errno_) | ((setting) + 1) << ${SETTING_FAILURE.settingShift} | (item) << ${SETTING_FAILURE.itemShift})`,
    `#define SETTING_ERRNO(err) ((err) & ((1 << ${SETTING_FAILURE.settingShift}) - 1))`,
    `#define SETTING_OF(err) (((err) >> ${SETTING_FAILURE.settingShift} & 0xff) - 1)`,
    "",
    "/* The settings as the monitor reads them: key, field, int64s, the values allowed, and the one an empty item means. */",
    "#include <stddef.h>",
    `#define RUN_SETTINGS { ${(RUN_SETTINGS as readonly RunSetting[]).map((s) => `{ ${str(s.option)}, offsetof(struct dz_spec, ${fieldOf(s.option)}), ${s.count ?? 1}, ${int64(s.range[0])}, ${int64(s.range[1])}, ${int64(s.leave ?? s.range[0])} }`).join(", ")} }`,
    "#endif",
    "",
  ];
  return lines.join("\n");
}

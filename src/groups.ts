// The topics options are grouped by, in --help, the man page, the completions and the README:
// every option's declaration names its group (test/help.test.ts fails on one that does not).
import type { ArgDef } from "citty";

export const GROUPS = {
  process: "Process and identity",
  files: "Files and output",
  supervision: "Supervision",
  logs: "Logs",
  readiness: "Readiness",
  limits: "Limits",
  sockets: "Sockets",
  cgroups: "Cgroups",
  configuration: "Configuration",
} as const;

export type Group = keyof typeof GROUPS;

/** An option as declared: citty's declaration and its group. */
export type Arg = ArgDef & { group: Group };
export type Args = Record<string, Arg>;

/** An option whose value is a path: completed as a file, and taken relative to a config file's directory. */
export const isPath = (def: ArgDef): boolean => def.type === "string" && ["FILE", "DIR", "PATH"].includes(def.valueHint ?? "");

// Settings that the child path applies as given, each declared here once: its option (citty's
// declaration, so --help, the README and the completions too), how its value is checked, and
// what it becomes in struct dz_spec. cli.ts parses them, detach.ts packs them, supervise.ts hands
// them to the monitor and the monitor reads them (build/contract.h), all from this list: a new one
// needs only its entry here and the C that applies it (ffi/child.c).
import type { ArgDef } from "citty";
import { fail } from "./errors";

export interface RunSetting {
  /** The option, also the monitor's key; its struct field has _ for -. */
  option: string;
  arg: ArgDef;
  /** The value as given (true for a flag, undefined when absent) to the number the child path gets; fails with a usage error. */
  parse(given: string | true | undefined): number;
  /** What the monitor accepts, the same as parse allows. */
  range: readonly [min: number, max: number];
  /** The struct field's comment. */
  about: string;
}

export const RUN_SETTINGS = [
  {
    option: "umask",
    arg: { type: "string", valueHint: "MODE", default: "022", description: "File mode creation mask, octal" },
    parse: (given) => {
      // The default is known good, and a plain start runs no regular expression (the first costs a third of a millisecond).
      if (typeof given !== "string") return 0o22;
      const text = given;
      if (!/^[0-7]{1,4}$/.test(text) || Number.parseInt(text, 8) > 0o777) fail("usage", `--umask ${JSON.stringify(text)} is not an octal mode from 000 to 777`);
      return Number.parseInt(text, 8);
    },
    range: [0, 0o777],
    about: "file mode creation mask",
  },
  {
    option: "core",
    arg: { type: "boolean", description: "Allow core dumps: raise the RLIMIT_CORE soft limit to the hard one (default: 0)" },
    parse: (given) => (given ? 1 : 0),
    range: [0, 1],
    about: "nonzero: allow core dumps",
  },
] as const satisfies readonly RunSetting[];

export type RunOption = (typeof RUN_SETTINGS)[number]["option"];
/** Every run setting's value, by option. */
export type RunValues = Record<RunOption, number>;

export const fieldOf = (option: string): string => option.replaceAll("-", "_");

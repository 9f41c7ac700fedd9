// -c FILE: one TOML file per service, parsed by Bun. Its keys are the start options' long names,
// taken from their declarations (src/cli.ts), so that every option is a key; a repeatable option
// is an array, `program` an array never split on spaces, `env` a table or an array. Paths in the
// file are taken against the file's directory. --print-config writes such a file (src/toml.ts).
import { commands, OPTIONAL_VALUE, REPEATABLE, type Scanned } from "./cli";
import { DaemonizeError, fail } from "./errors";
import type { Args } from "./groups";
import { absolute, dirname } from "./paths";
import { E, isFile, OsError, readFile } from "./sys";
import { anchored, COMMAND_LINE_ONLY } from "./toml";
import { type Entry, untrusted, walk } from "./trust";

const START: Args = commands.start.args;
const CONFIG_LIMIT = 1 << 20;

export interface Config {
  /** As given on the command line: errors name it so. */
  given: string;
  text: string;
  scanned: Scanned;
}

const q = (text: string) => JSON.stringify(text);

/** The line a key is set on (in [env] for an env name), for messages; 0 when it cannot be told. */
function lineOf(text: string, key: string, table?: string): number {
  const lines = text.split("\n");
  const escaped = key.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
  const at = new RegExp(`^\\s*(?:${escaped}|"${escaped}"|'${escaped}')\\s*=`);
  let start = 0;
  if (table !== undefined) {
    start = lines.findIndex((l) => new RegExp(`^\\s*\\[\\s*${table}\\s*\\]`).test(l)) + 1;
    if (start === 0) return lineOf(text, table);
  }
  const i = lines.findIndex((l, n) => n >= start && at.test(l));
  return i < 0 ? 0 : i + 1;
}

/** Bun's TOML errors give no line: it is the first whose lines, up to it, fail the same way. */
function syntaxLine(text: string, message: string): number {
  const lines = text.split("\n");
  for (let n = 1; n <= lines.length; n++) {
    try {
      Bun.TOML.parse(`${lines.slice(0, n).join("\n")}\n`);
    } catch (e) {
      if (e instanceof Error && e.message === message) return n;
    }
  }
  return 0;
}

const where = (file: Pick<Config, "given">, line: number) => `${file.given}${line ? `:${line}` : ""}`;

function bad(file: Pick<Config, "given" | "text">, key: string, reason: string, table?: string): never {
  return fail("usage", `${where(file, lineOf(file.text, key, table))}: ${table ? `${table}.` : ""}${key}: ${reason}`);
}

/** Reads the file, as trusted as a program daemonize runs as root, and checks each key's type. */
export function load(path: string, given: string, unsafe: boolean): Config {
  const entries: Entry[] = [];
  let text: string;
  try {
    const { st } = walk(path, undefined, (e) => entries.push(e));
    if (!isFile(st)) fail("noinput", `config ${given}: not a regular file`);
    text = readFile(path, 0, CONFIG_LIMIT);
    if (st.size > CONFIG_LIMIT || text.length > CONFIG_LIMIT) fail("usage", `config ${given}: larger than 1 MiB`);
  } catch (e) {
    if (!(e instanceof OsError)) throw e;
    return fail(e.errno === E.EACCES ? "noperm" : "noinput", `config ${given}: ${e.message}`);
  }
  const found = unsafe ? undefined : untrusted(entries, [0, process.geteuid?.() ?? 0]);
  if (found) fail("noperm", `config ${given}: ${found.at} ${found.why}, and the file decides what runs (--unsafe allows it)`);
  let table: Record<string, unknown>;
  try {
    table = Bun.TOML.parse(text) as Record<string, unknown>;
  } catch (e) {
    const message = e instanceof Error ? e.message : String(e);
    return fail("usage", `${where({ given }, syntaxLine(text, message))}: ${message.replace(/^TOML Parse error: /, "TOML: ")}`);
  }
  const file = { given, text };
  const out: Scanned = { flags: new Set(), values: new Map(), repeated: new Map(), program: [] };
  const dir = dirname(path);
  // An empty value stays empty, to be refused as on the command line.
  const place = (key: string, value: string) => anchored(key, value, dir, "chroot" in table);
  const scalar = (key: string, v: unknown, what: string, table?: string): string => {
    if (typeof v === "string") return v;
    if (typeof v === "number" && Number.isFinite(v)) return String(v);
    return bad(file, key, `${what}, not ${describe(v)}`, table);
  };
  for (const [key, v] of Object.entries(table)) {
    if (key === "program") {
      if (!Array.isArray(v) || v.length === 0 || v.some((w) => typeof w !== "string"))
        bad(file, key, `must be an array of strings, the program then its arguments: program = ["/usr/bin/app", "--flag"], not ${describe(v)}`);
      const words = v as string[];
      if (words[0] === "") bad(file, key, "the program name is empty");
      out.program = [words[0]?.includes("/") ? absolute(dir, words[0]) : (words[0] as string), ...words.slice(1)];
      continue;
    }
    // Own keys only: "constructor" or "toString" are no options.
    const def = Object.hasOwn(START, key) ? START[key] : undefined;
    const dashed = key.replaceAll("_", "-").toLowerCase();
    if (!def) bad(file, key, `unknown key (${Object.hasOwn(START, dashed) ? `did you mean ${dashed}? ` : ""}daemonize --help lists the options; a key is an option's long name)`);
    if (COMMAND_LINE_ONLY.has(key)) bad(file, key, "not a setting: give it on the command line");
    if (key === "env" && v !== null && typeof v === "object" && !Array.isArray(v) && !(v instanceof Date)) {
      out.repeated.set(
        key,
        Object.entries(v).map(([name, value]) => {
          if (name === "" || name.includes("=")) bad(file, name, "is not a variable name", "env");
          return `${name}=${scalar(name, value, "must be a string", "env")}`;
        }),
      );
      continue;
    }
    if (def.type === "boolean") {
      if (typeof v !== "boolean") bad(file, key, `must be true or false, not ${describe(v)}`);
      if (v) out.flags.add(key);
    } else if (REPEATABLE.has(key)) {
      if (!Array.isArray(v)) bad(file, key, `must be an array, as ${key} = [${q(def.valueHint ?? "VALUE")}], not ${describe(v)}`);
      out.repeated.set(key, (v as unknown[]).map((item) => place(key, scalar(key, item, "each item must be a string"))));
    } else if (key in OPTIONAL_VALUE && typeof v === "boolean") {
      if (v) out.values.set(key, OPTIONAL_VALUE[key] as string);
    } else out.values.set(key, place(key, scalar(key, v, `must be a string${key in OPTIONAL_VALUE ? " or true" : ""}`)));
  }
  return { given, text, scanned: out };
}

function describe(v: unknown): string {
  if (v instanceof Date) return "a date";
  if (Array.isArray(v)) return "an array";
  if (v === null) return "null";
  if (typeof v === "object") return "a table";
  return `${typeof v === "number" ? "a number" : typeof v === "boolean" ? "a boolean" : `a ${typeof v}`} (${JSON.stringify(v)})`;
}

/**
 * The file under the command line: what the command declares is taken from the file unless the
 * command line gives it; a repeatable option given replaces the file's list, except that -E sets
 * single variables of the file's env; words after -- replace program.
 */
export function merge(file: Config, cmd: Scanned, args: Args): Scanned {
  const own = (k: string) => k in args && !COMMAND_LINE_ONLY.has(k);
  const f = file.scanned;
  const out: Scanned = {
    flags: new Set([...[...f.flags].filter(own), ...cmd.flags]),
    values: new Map([...[...f.values].filter(([k]) => own(k)), ...cmd.values]),
    repeated: new Map([...[...f.repeated].filter(([k]) => own(k)), ...cmd.repeated]),
    program: cmd.program.length > 0 ? cmd.program : f.program,
  };
  const env = cmd.repeated.get("env");
  if (env && f.repeated.has("env") && own("env")) {
    const names = new Set(env.map((e) => e.slice(0, e.indexOf("="))));
    out.repeated.set("env", [...(f.repeated.get("env") ?? []).filter((e) => !names.has(e.slice(0, e.indexOf("=")))), ...env]);
  }
  return out;
}

/** Runs fn; a usage error that a value from the file caused is said as FILE:LINE: KEY: reason. */
export function blame<T>(file: Config, cmd: Scanned, fn: () => T): T {
  try {
    return fn();
  } catch (e) {
    if (!(e instanceof DaemonizeError) || e.kind !== "usage") throw e;
    if (e.message.startsWith("no program given") && cmd.program.length === 0)
      fail("usage", `${file.given}: program: not set: give program = ["/path/to/program", "args"] in the file, or the program after --`);
    const f = file.scanned;
    const fromFile = (k: string) => (f.flags.has(k) || f.values.has(k) || f.repeated.has(k)) && !cmd.flags.has(k) && !cmd.values.has(k) && !cmd.repeated.has(k);
    const key = [...e.message.matchAll(/--([a-z][a-z-]*)/g)].map((m) => m[1] as string).find(fromFile);
    if (key === undefined) throw e;
    return bad(file, key, e.message);
  }
}

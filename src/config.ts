// -c FILE: one TOML file per service, parsed by Bun. Its keys are the start options' long names,
// taken from their declarations (src/cli.ts), so that every option is a key; a repeatable option
// is an array, `program` an array never split on spaces, `env` a table or an array. Paths in the
// file are taken against the file's directory. --print-config writes such a file back.
import { commands, OPTIONAL_VALUE, REPEATABLE, type Scanned } from "./cli";
import { DaemonizeError, fail } from "./errors";
import { type Args, GROUPS, isPath } from "./groups";
import { absolute, dirname } from "./paths";
import { E, isFile, OsError, readFile } from "./sys";
import { type Entry, untrusted, walk } from "./trust";

/** Options that say what to do this time, not how the service runs: never in a file. */
const COMMAND_LINE_ONLY = new Set(["config", "print-config", "check", "json", "help", "version"]);

const START: Args = commands.start.args;

/** The file's keys: every start option but those, then program (and env, an option, also a table). */
export const configKeys = (): string[] => Object.keys(START).filter((k) => !COMMAND_LINE_ONLY.has(k));

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
    if (!isFile(walk(path, undefined, (e) => entries.push(e)).st)) fail("noinput", `config ${given}: not a regular file`);
    text = readFile(path);
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
  // A relative path means the file's directory, except a working directory inside a chroot.
  const place = (key: string, value: string) =>
    (isPath(START[key] as Args[string]) && !(key === "chdir" && "chroot" in table)) || (key === "ready" && value.startsWith("file:"))
      ? value.startsWith("file:")
        ? `file:${absolute(dir, value.slice(5))}`
        : absolute(dir, value)
      : value;
  const text1 = (key: string, v: unknown, what: string, table?: string): string => {
    if (typeof v === "string") return v;
    if (typeof v === "number" && Number.isFinite(v)) return String(v);
    return bad(file, key, `${what}, not ${describe(v)}`, table);
  };
  for (const [key, v] of Object.entries(table)) {
    if (key === "program") {
      if (!Array.isArray(v) || v.length === 0 || v.some((w) => typeof w !== "string"))
        bad(file, key, `must be an array of strings, the program then its arguments: program = ["/usr/bin/app", "--flag"], not ${describe(v)}`);
      const words = v as string[];
      out.program = [words[0]?.includes("/") ? absolute(dir, words[0]) : (words[0] as string), ...words.slice(1)];
      continue;
    }
    const def = START[key];
    if (!def) bad(file, key, COMMAND_LINE_ONLY.has(key) ? "not a setting: give it on the command line" : "unknown key (daemonize --help lists the options; a key is an option's long name)");
    if (COMMAND_LINE_ONLY.has(key)) bad(file, key, "not a setting: give it on the command line");
    if (key === "env" && v !== null && typeof v === "object" && !Array.isArray(v) && !(v instanceof Date)) {
      out.repeated.set(key, Object.entries(v).map(([name, value]) => `${name}=${text1(name, value, "must be a string", "env")}`));
      continue;
    }
    if (def.type === "boolean") {
      if (typeof v !== "boolean") bad(file, key, `must be true or false, not ${describe(v)}`);
      if (v) out.flags.add(key);
    } else if (REPEATABLE.has(key)) {
      if (!Array.isArray(v)) bad(file, key, `must be an array, as ${key} = [${q(def.valueHint ?? "VALUE")}], not ${describe(v)}`);
      out.repeated.set(key, (v as unknown[]).map((item) => place(key, text1(key, item, "each item must be a string"))));
    } else if (key in OPTIONAL_VALUE && typeof v === "boolean") {
      if (v) out.values.set(key, OPTIONAL_VALUE[key] as string);
    } else out.values.set(key, place(key, text1(key, v, `must be a string${key in OPTIONAL_VALUE ? " or true" : ""}`)));
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

/** A TOML basic string: JSON's escapes are TOML's, but for DEL, which TOML wants escaped too. */
const tomlString = (s: string) => JSON.stringify(s).replaceAll("\x7f", "\\u007f");
const tomlKey = (k: string) => (/^[A-Za-z0-9_-]+$/.test(k) ? k : tomlString(k));

/** # comments, the description wrapped within 80 columns. */
function comment(text: string): string[] {
  const out: string[] = [];
  let line = "#";
  for (const word of text.split(" ")) {
    if (line.length + 1 + word.length > 78 && line !== "#") {
      out.push(line);
      line = "#";
    }
    line += ` ${word}`;
  }
  return [...out, line];
}

/**
 * The settings a command line (and its config file) gives, as a commented TOML file that -c reads
 * back to the same start. Paths are written absolute: the file may live anywhere.
 */
export function toToml(s: Scanned, cwd: string, args: Args): string {
  const out = [
    "# daemonize settings, written by daemonize --print-config. Use it with",
    "#   daemonize -c FILE                 (start; options given too override it)",
    "#   daemonize stop|status|restart|logs|reopen-logs|rotate-logs -c FILE",
    "#   daemonize signal SIG -c FILE",
    "",
    "# The program and its arguments, one item each.",
    `program = [${s.program.map((w, i) => tomlString(i === 0 && w.includes("/") ? absolute(cwd, w) : w)).join(", ")}]`,
  ];
  const keys = configKeys().filter((k) => k !== "env" && k in args && (s.flags.has(k) || s.values.has(k) || s.repeated.has(k)));
  const value = (k: string, v: string) =>
    tomlString(isPath(args[k] as Args[string]) && !(k === "chdir" && s.values.has("chroot")) ? absolute(cwd, v) : k === "ready" && v.startsWith("file:") ? `file:${absolute(cwd, v.slice(5))}` : v);
  for (const group of Object.keys(GROUPS) as (keyof typeof GROUPS)[]) {
    const mine = keys.filter((k) => args[k]?.group === group);
    if (mine.length === 0) continue;
    out.push("", `# ${GROUPS[group]}`);
    for (const k of mine) {
      const def = args[k] as Args[string];
      out.push(...comment(`--${k}: ${def.description ?? ""}`));
      if (s.flags.has(k)) out.push(`${k} = true`);
      else if (s.repeated.has(k)) out.push(`${k} = [${(s.repeated.get(k) ?? []).map((v) => value(k, v)).join(", ")}]`);
      else out.push(`${k} = ${value(k, s.values.get(k) as string)}`);
    }
  }
  const env = s.repeated.get("env");
  if (env && env.length > 0) {
    // A name set twice: the last wins, as on the command line.
    const vars = new Map(env.map((e) => [e.slice(0, e.indexOf("=")), e.slice(e.indexOf("=") + 1)]));
    out.push("", "# The environment the program gets besides the caller's (--env NAME=VALUE).", "[env]");
    for (const [name, v] of vars) out.push(`${tomlKey(name)} = ${tomlString(v)}`);
  }
  return `${out.join("\n")}\n`;
}

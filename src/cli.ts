// The command line: declares the commands and turns argv into typed options.
// The work itself is done by plain library functions (src/start.ts).
import type { ArgsDef, CommandDef } from "citty";
import pkg from "../package.json" with { type: "json" };
import { parseEnvAssignment } from "./env";
import { fail } from "./errors";
import type { StartOptions } from "./options";

const startArgs = {
  pidfile: { type: "string", alias: "p", valueHint: "FILE", description: "Write the daemon's pid to FILE; refuse to start while that daemon lives" },
  user: { type: "string", alias: "u", valueHint: "USER[:GROUP]", description: "Run as USER (name or number): the user's groups, or only GROUP when given" },
  group: { type: "string", alias: "g", valueHint: "GROUP", description: "Primary group (name or number)" },
  chroot: { type: "string", valueHint: "DIR", description: "Change root to DIR before dropping privileges" },
  chdir: { type: "string", alias: "C", valueHint: "DIR", default: "/", description: "Working directory (inside the chroot when both are given)" },
  umask: { type: "string", valueHint: "MODE", default: "022", description: "File mode creation mask, octal" },
  stdout: { type: "string", alias: "o", valueHint: "FILE", description: "Append the program's stdout to FILE (default /dev/null)" },
  stderr: { type: "string", alias: "e", valueHint: "FILE", description: "Append the program's stderr to FILE (default /dev/null)" },
  log: { type: "string", alias: "l", valueHint: "FILE", description: "Append both stdout and stderr to FILE" },
  truncate: { type: "boolean", description: "Empty the log files instead of appending" },
  env: { type: "string", alias: "E", valueHint: "NAME=VALUE", description: "Set an environment variable (repeatable)" },
  "env-file": { type: "string", valueHint: "FILE", description: "Read NAME=VALUE lines from FILE" },
  "clear-env": { type: "boolean", description: "Start from an empty environment" },
  foreground: { type: "boolean", alias: "f", description: "Do the same set-up but exec in place, without detaching" },
  core: { type: "boolean", description: "Allow core dumps (default: RLIMIT_CORE is 0)" },
  "keep-fd": { type: "string", valueHint: "N", description: "Keep inherited fd N open (repeatable); every other fd >= 3 is closed" },
  oknodo: { type: "boolean", description: "Exit 0 when the daemon is already running" },
  unsafe: { type: "boolean", description: "Allow a program, pidfile or pidfile directory that others could have written" },
  verbose: { type: "boolean", alias: "v", description: "Say what is done" },
  quiet: { type: "boolean", alias: "q", description: "Print errors only" },
  help: { type: "boolean", alias: "h", description: "Show this help" },
  version: { type: "boolean", alias: "V", description: "Show the version" },
} as const satisfies ArgsDef;

/** Options that may be given more than once; citty's parser keeps only the last of a repeated flag. */
const REPEATABLE = new Set(["env", "keep-fd"]);

export const start = {
  meta: { name: "daemonize", version: pkg.version, description: "Run a program as a well-behaved Unix daemon" },
  args: startArgs,
} satisfies CommandDef<typeof startArgs>;

/** What the command line says, by option name as declared. */
export interface Scanned {
  flags: Set<string>;
  values: Map<string, string>;
  repeated: Map<string, string[]>;
  program: string[];
}

const usage = (message: string) => fail("usage", message);

/**
 * Reads argv against citty's declarations. It does the parsing itself: citty's
 * parser accepts unknown options silently, keeps one value of a repeated flag,
 * cannot tell the program's own arguments from ours, and loads node:util, which
 * alone costs a quarter of a launch.
 */
export function scan(argv: string[], args: ArgsDef): Scanned {
  const byName = new Map<string, [string, ArgsDef[string]]>();
  for (const [name, def] of Object.entries(args)) {
    byName.set(`--${name}`, [name, def]);
    const aliases = "alias" in def && def.alias ? [def.alias].flat() : [];
    for (const alias of aliases) byName.set(`-${alias}`, [name, def]);
  }
  const dd = argv.indexOf("--");
  const head = dd < 0 ? argv : argv.slice(0, dd);
  const out: Scanned = { flags: new Set(), values: new Map(), repeated: new Map(), program: [] };
  const take = (name: string, value: string) => {
    if (REPEATABLE.has(name)) out.repeated.set(name, [...(out.repeated.get(name) ?? []), value]);
    else out.values.set(name, value);
  };
  for (let i = 0; i < head.length; i++) {
    const token = head[i] as string;
    if (out.program.length > 0 || !token.startsWith("-") || token === "-") {
      if (out.program.length > 0 && token.startsWith("-") && token !== "-")
        usage(`option ${token} follows the program; put -- before the program to pass it options`);
      out.program.push(token);
      continue;
    }
    if (token.startsWith("--")) {
      const eq = token.indexOf("=");
      const flag = eq < 0 ? token : token.slice(0, eq);
      const found = byName.get(flag);
      if (!found) return usage(`unknown option ${flag}`);
      const [name, def] = found;
      if (def.type === "boolean") {
        if (eq >= 0) usage(`option ${flag} takes no value`);
        out.flags.add(name);
      } else if (eq >= 0) take(name, token.slice(eq + 1));
      else if (i + 1 < head.length) take(name, head[++i] as string);
      else usage(`option ${flag} needs a value`);
      continue;
    }
    // A cluster of short options: -fv, or -pFILE, or -p FILE.
    for (let j = 1; j < token.length; j++) {
      const flag = `-${token[j]}`;
      const found = byName.get(flag);
      if (!found) return usage(`unknown option ${flag}`);
      const [name, def] = found;
      if (def.type === "boolean") {
        out.flags.add(name);
        continue;
      }
      if (j + 1 < token.length) take(name, token.slice(j + 1));
      else if (i + 1 < head.length) take(name, head[++i] as string);
      else usage(`option ${flag} needs a value`);
      break;
    }
  }
  if (dd >= 0) {
    if (out.program.length > 0) usage(`unexpected argument "${out.program[0]}" before --`);
    out.program = argv.slice(dd + 1);
  }
  return out;
}

function parseUmask(text: string): number {
  if (!/^[0-7]{1,4}$/.test(text) || Number.parseInt(text, 8) > 0o777)
    return usage(`--umask ${JSON.stringify(text)} is not an octal mode from 000 to 777`);
  return Number.parseInt(text, 8);
}

function parseFd(text: string): number {
  if (!/^\d{1,9}$/.test(text)) return usage(`--keep-fd ${JSON.stringify(text)} is not a file descriptor number`);
  const fd = Number(text);
  if (fd < 3) usage(`--keep-fd ${fd}: stdin, stdout and stderr are always set up by daemonize`);
  return fd;
}

/** Maps the scanned command line to StartOptions, checking every value's syntax. */
export function startOptions(argv: string[], cwd: string): StartOptions | "help" | "version" {
  const { flags, values, repeated, program } = scan(argv, startArgs);
  if (flags.has("help")) return "help";
  if (flags.has("version")) return "version";
  if (program.length === 0) usage("no program given: daemonize [options] -- program [args...]");
  if (program[0] === "") usage("the program name is empty");
  if (flags.has("verbose") && flags.has("quiet")) usage("--verbose and --quiet contradict each other");
  const value = (name: keyof typeof startArgs) => {
    const v = values.get(name);
    if (v === "") usage(`--${name} needs a non-empty value`);
    return v;
  };
  const log = value("log");
  return {
    argv: program,
    cwd,
    pidfile: value("pidfile"),
    user: value("user"),
    group: value("group"),
    chroot: value("chroot"),
    chdir: value("chdir") ?? startArgs.chdir.default,
    umask: parseUmask(values.get("umask") ?? startArgs.umask.default),
    stdout: value("stdout") ?? log,
    stderr: value("stderr") ?? log,
    truncate: flags.has("truncate"),
    env: (repeated.get("env") ?? []).map((e) => parseEnvAssignment(e, "--env")),
    envFile: value("env-file"),
    clearEnv: flags.has("clear-env"),
    foreground: flags.has("foreground"),
    core: flags.has("core"),
    keepFds: [...new Set((repeated.get("keep-fd") ?? []).map(parseFd))].sort((x, y) => x - y),
    oknodo: flags.has("oknodo"),
    unsafe: flags.has("unsafe"),
    verbose: flags.has("verbose"),
    quiet: flags.has("quiet"),
  };
}

/** citty's usage text, with the program part of the synopsis, and plain when not on a terminal. */
export async function usageText(tty: boolean): Promise<string> {
  const { renderUsage } = await import("citty");
  const text = (await renderUsage(start)).replace("[OPTIONS] ", "[start] [OPTIONS] [--] PROGRAM [ARGS...]");
  return `${tty ? text : text.replace(/\x1b\[[0-9;]*m/g, "")}\n`;
}

export const versionText = (): string =>
  `daemonize ${pkg.version} (bun ${Bun.version}, commit ${typeof __COMMIT__ === "string" ? __COMMIT__ : "unknown"})\n`;

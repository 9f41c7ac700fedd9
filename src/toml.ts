// --print-config: the settings of a command line (and its -c file) as the TOML file -c reads back
// to the same start. Its keys come from the option declarations, as the reader's (src/config.ts).
// It binds no native code: a command line without -c is printed without loading any.
import { commands, OPTIONAL_VALUE, type Scanned } from "./cli";
import { fail } from "./errors";
import { type Args, GROUPS, isPath } from "./groups";
import { absolute } from "./paths";

/**
 * A value with its relative path made absolute against `base`: an option whose value is a path
 * (but a working directory inside a chroot), --ready file:PATH and --listen [NAME=]unix:PATH.
 * The command line's are taken against the caller's directory, a config file's against its own.
 */
export function anchored(key: string, value: string, base: string, chroot: boolean): string {
  if (value === "") return value;
  if (key === "ready" && value.startsWith("file:")) return `file:${absolute(base, value.slice(5))}`;
  const unix = key === "listen" ? /^((?:[^:=]*=)?unix:)(.+)$/.exec(value) : null;
  if (unix) return `${unix[1]}${absolute(base, unix[2] as string)}`;
  const def = commands.start.args[key as keyof typeof commands.start.args] as Args[string] | undefined;
  return def && isPath(def) && !(key === "chdir" && chroot) ? absolute(base, value) : value;
}

/** Options that say what to do this time, not how the service runs: never in a file. */
export const COMMAND_LINE_ONLY = new Set(["config", "print-config", "check", "json", "help", "version"]);

/** The file's keys: every start option but those, then program (and env, an option, also a table). */
export const configKeys = (): string[] => Object.keys(commands.start.args).filter((k) => !COMMAND_LINE_ONLY.has(k));

/**
 * A TOML basic string: JSON's escapes are TOML's, but for DEL, which TOML wants escaped too. TOML
 * holds text: a byte that is not UTF-8 (a lone surrogate here, src/bytes.ts) has no escape there.
 */
function tomlString(s: string): string {
  if (!s.isWellFormed()) fail("usage", `--print-config: "${s}" is not UTF-8 text, which a TOML file cannot hold: give it on the command line`);
  return JSON.stringify(s).replaceAll("\x7f", "\\u007f");
}

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
  const value = (k: string, v: string) => tomlString(anchored(k, v, cwd, s.values.has("chroot")));
  for (const group of Object.keys(GROUPS) as (keyof typeof GROUPS)[]) {
    const mine = keys.filter((k) => args[k]?.group === group);
    if (mine.length === 0) continue;
    out.push("", `# ${GROUPS[group]}`);
    for (const k of mine) {
      const def = args[k] as Args[string];
      out.push(...comment(`--${k}: ${def.description ?? ""}`));
      if (s.flags.has(k)) out.push(`${k} = true`);
      else if (s.repeated.has(k)) out.push(`${k} = [${(s.repeated.get(k) ?? []).map((v) => value(k, v)).join(", ")}]`);
      // An option given without its value (--syslog, --cgroup) is true, as the reader takes it.
      else if (s.values.get(k) === OPTIONAL_VALUE[k]) out.push(`${k} = true`);
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

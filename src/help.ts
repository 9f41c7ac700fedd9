// --help, `daemonize help [COMMAND]` and `COMMAND --help`: rendered from the declarations, the
// options grouped by topic, every line within 80 columns. Loaded only to show help.
import { type CommandName, commands, SYNOPSIS } from "./cli";
import { type Arg, GROUPS, type Group } from "./groups";

export const WIDTH = 80;
/** Where descriptions start, when the option leaves room. */
const COLUMN = 30;

/** An option as written: "-p, --pidfile FILE", "    --syslog[=FACILITY]". */
export function optionText(name: string, def: Arg): string {
  const alias = "alias" in def && def.alias ? [def.alias].flat()[0] : undefined;
  const hint = def.type === "string" ? (def.valueHint ?? "VALUE") : "";
  return `${alias ? `-${alias}, ` : "    "}--${name}${hint.startsWith("[=") || hint === "" ? hint : ` ${hint}`}`;
}

/** An option's description with its default, written one way. */
export const described = (def: Arg): string => `${def.description ?? ""}${"default" in def && def.default !== undefined ? ` (default: ${def.default})` : ""}`;

/** Words filled into lines of `width`, the first after `first`, the rest indented by `indent`. */
export function fill(text: string, first: string, indent: number, width = WIDTH): string[] {
  const out: string[] = [];
  let line = first;
  let start = true;
  for (const word of text.split(/\s+/).filter(Boolean)) {
    if (!start && line.length + 1 + word.length > width) {
      out.push(line);
      line = " ".repeat(indent) + word;
    } else line += (start ? "" : " ") + word;
    start = false;
  }
  return [...out, line].map((l) => l.trimEnd());
}

/** A command's options under the headings of their groups, in the groups' order. */
export function grouped(of: CommandName): [Group, [string, Arg][]][] {
  const args = Object.entries(commands[of].args as Record<string, Arg>);
  return (Object.keys(GROUPS) as Group[]).map((g) => [g, args.filter(([, def]) => def.group === g)] as [Group, [string, Arg][]]).filter(([, list]) => list.length > 0);
}

function optionLines(name: string, def: Arg): string[] {
  const head = `  ${optionText(name, def)}`;
  if (head.length + 2 > COLUMN) return [head, ...fill(described(def), " ".repeat(COLUMN), COLUMN)];
  return fill(described(def), head.padEnd(COLUMN), COLUMN);
}

const usageLine = (of: CommandName) => `daemonize ${of === "start" ? "[start]" : of} [OPTIONS]${SYNOPSIS[of] ? ` ${SYNOPSIS[of]}` : ""}`;

export function helpText(of: CommandName): string {
  const out: string[] = [];
  if (of === "start") {
    const names = Object.keys(commands) as CommandName[];
    const width = Math.max(...names.map((n) => n.length)) + 4;
    out.push(
      `Usage: ${usageLine("start")}`,
      "       daemonize COMMAND [OPTIONS] [ARGS...]",
      "",
      "Turn a program into a well-behaved Unix daemon, keep it running, and control it.",
      "",
      "Commands:",
      ...names.flatMap((n) => fill(commands[n].meta.summary, `  ${n.padEnd(width - 2)}`, width)),
      "",
      ...fill("daemonize help COMMAND, or daemonize COMMAND --help, shows a command's options. A program named like a command runs after -- or by its path.", "", 0),
      "",
      "Start options:",
    );
  } else out.push(`Usage: ${usageLine(of)}`, "", ...fill(commands[of].meta.description, "", 0));
  for (const [group, list] of grouped(of)) out.push("", `${GROUPS[group]}:`, ...list.flatMap(([name, def]) => optionLines(name, def)));
  return `${out.join("\n")}\n`;
}

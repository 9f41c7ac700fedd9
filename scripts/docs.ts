// npm run docs: the README's option and exit-code tables, the man page and the
// shell completions, all generated from the citty declarations (src/cli.ts) and
// the exit-code tables (src/errors.ts). `--check` fails when a file has drifted.
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import pkg from "../package.json" with { type: "json" };
import { type CommandName, commands, SYNOPSIS } from "../src/cli";
import { GROUPS, type Group, isPath } from "../src/groups";
import { described, grouped, optionText } from "../src/help";
import { EXIT, STATUS_EXIT, STATUS_SEVERITY, CONTROL_EXIT } from "../src/errors";

const root = new URL("..", import.meta.url).pathname;
const names = Object.keys(commands) as CommandName[];
type Table = Record<string, { code: number; meaning: string; shown?: string }>;

interface Option {
  group: Group;
  flags: string[];
  /** The option and its value as written: "-p, --pidfile FILE". */
  text: string;
  value?: string;
  description: string;
  file: boolean;
}

/** A command's options, in the order of their groups (src/groups.ts), as --help shows them. */
function options(of: CommandName): Option[] {
  return grouped(of).flatMap(([group, list]) =>
    list.map(([name, def]) => {
      const aliases = "alias" in def && def.alias ? [def.alias].flat() : [];
      return {
        group,
        flags: [...aliases.map((a) => `-${a}`), `--${name}`],
        text: optionText(name, def).trim(),
        value: def.type === "string" ? (def.valueHint ?? "VALUE") : undefined,
        description: described(def),
        file: isPath(def),
      };
    }),
  );
}

/** An option's value as written after it: " FILE", or "[=FACILITY]" for one that may be left out. */
const spaced = (value: string | undefined) => (value === undefined ? "" : value.startsWith("[=") ? value : ` ${value}`);

const md = (text: string) => text.replace(/\|/g, "\\|");

/** The options under a row for each group. */
function optionTable(of: CommandName): string {
  const rows = options(of).flatMap((o, i, all) => [
    ...(all[i - 1]?.group === o.group ? [] : [`| **${GROUPS[o.group]}** | |`]),
    `| \`${o.text}\` | ${md(o.description)} |`,
  ]);
  return ["| option | meaning |", "|---|---|", ...rows].join("\n");
}

function codeTable(table: Table, title: string): string {
  return [`| code | ${title} |`, "|---|---|", ...Object.values(table).map((e) => `| ${e.shown ?? e.code} | ${md(e.meaning)} |`)].join("\n");
}

const worse = STATUS_SEVERITY.filter((s) => s !== "running").map((s) => STATUS_EXIT[s].code);
const statusSet = `With several pidfiles, one code for the set: ${STATUS_EXIT.running.code} when every daemon runs, otherwise the most severe of theirs (${worse.join(", then ")}).`;

/** Commands whose operands are pidfiles, not a program or a signal. */
const fileOperands = names.filter((n) => SYNOPSIS[n].includes("PIDFILE"));
/** Commands whose operand is a command's name. */
const commandOperands = names.filter((n) => SYNOPSIS[n].includes("COMMAND"));

const sections: Record<string, () => string> = {
  "start-options": () => optionTable("start"),
  "control-options": () =>
    (["status", "stop", "signal", "reload", "reopen-logs", "rotate-logs", "logs"] as const).map((c) => `\`daemonize ${c}\`:\n\n${optionTable(c)}`).join("\n\n"),
  "exit-codes": () => codeTable(EXIT, "meaning"),
  "status-codes": () => `${codeTable(STATUS_EXIT, "status")}\n\n${statusSet}`,
  "control-codes": () => codeTable(CONTROL_EXIT, "stop, signal, restart without a program, reload, reopen-logs, rotate-logs, logs"),
};

function readme(current: string): string {
  return current.replace(/<!-- (\S+) -->\n[\s\S]*?<!-- \/\1 -->/g, (whole, name: string) => {
    const make = sections[name];
    return make ? `<!-- ${name} -->\n${make()}\n<!-- /${name} -->` : whole;
  });
}

const roff = (text: string) => text.replace(/\\/g, "\\e").replace(/^([.'])/gm, "\\&$1").replace(/`/g, "").replace(/-/g, "\\-");

function manPage(): string {
  const out = [
    `.TH DAEMONIZE 1 "" "daemonize ${pkg.version}" "User Commands"`,
    ".SH NAME",
    "daemonize \\- run a program as a well-behaved Unix daemon",
    ".SH SYNOPSIS",
    ...names.map((n) => `.B daemonize ${n === "start" ? "[start]" : n}\n${`[\\fIoptions\\fR] ${roff(SYNOPSIS[n])}`.trimEnd()}\n.br`),
    ".SH DESCRIPTION",
    roff("daemonize checks everything it can before it forks, detaches the program (double fork, new session, no terminal, clean fds and signals, the asked-for user, groups, chroot, cwd, umask, limits, priorities and capabilities, each read back) and execs it. It exits 0 only after the exec happened; any failure is one line naming the step and the error, with an exit code below, and leaves nothing behind."),
  ];
  for (const n of names) {
    out.push(`.SH ${n.toUpperCase()} OPTIONS`, roff(String(commands[n].meta.description)));
    options(n).forEach((o, i, all) => {
      if (all[i - 1]?.group !== o.group) out.push(`.SS ${GROUPS[o.group]}`);
      out.push(".TP", `.B ${roff(o.flags.join(", "))}${o.value ? `${spaced(o.value).startsWith(" ") ? " " : ""}\\fI${roff(o.value)}\\fR` : ""}`, roff(o.description));
    });
  }
  out.push(".SH EXIT STATUS", ".SS start");
  for (const [title, table] of [["start", EXIT], ["status", STATUS_EXIT], ["stop, signal, restart without a program, reload, reopen-logs, rotate-logs and logs", CONTROL_EXIT]] as const) {
    if (title !== "start") out.push(`.SS ${title}`);
    for (const e of Object.values(table as Table)) out.push(".TP", `.B ${roff(e.shown ?? String(e.code))}`, roff(e.meaning));
    if (table === STATUS_EXIT) out.push(".PP", roff(statusSet));
  }
  out.push(".SH SEE ALSO", "start\\-stop\\-daemon(8), daemon(1), systemd.service(5)", "");
  return out.join("\n");
}

function bash(): string {
  const cases = names
    .map((n) => `    ${n}) opts="${options(n).flatMap((o) => o.flags).join(" ")}" ;;`)
    .join("\n");
  const files = [...new Set(names.flatMap((n) => options(n).filter((o) => o.file).flatMap((o) => o.flags)))].join("|");
  return `# bash completion for daemonize (generated by scripts/docs.ts)
_daemonize() {
  local cur prev cmd=start opts
  cur=\${COMP_WORDS[COMP_CWORD]}
  prev=\${COMP_WORDS[COMP_CWORD-1]}
  case \${COMP_WORDS[1]} in ${names.join("|")}) cmd=\${COMP_WORDS[1]} ;; esac
  case $prev in
    ${files}) COMPREPLY=($(compgen -f -- "$cur")); return ;;
  esac
  case $cmd in
${cases}
  esac
  if [[ $cur == -* ]]; then
    COMPREPLY=($(compgen -W "$opts" -- "$cur"))
  elif [[ $COMP_CWORD -eq 1 ]]; then
    COMPREPLY=($(compgen -W "${names.join(" ")}" -- "$cur") $(compgen -c -- "$cur"))
  elif [[ ${commandOperands.map((n) => `$cmd == ${n}`).join(" || ")} ]]; then
    COMPREPLY=($(compgen -W "${names.join(" ")}" -- "$cur"))
  elif [[ ${fileOperands.map((n) => `$cmd == ${n}`).join(" || ")} ]]; then
    COMPREPLY=($(compgen -f -- "$cur"))
  else
    COMPREPLY=($(compgen -c -- "$cur"))
  fi
}
complete -F _daemonize daemonize
`;
}

function zsh(): string {
  const spec = (o: Option) => {
    const name = o.flags.at(-1) as string;
    const excl = o.flags.length > 1 ? `(${o.flags.join(" ")})'{${o.flags.join(",")}}'` : name;
    const desc = o.description.replace(/[[\]':]/g, "");
    // A colon in the value's name would end _arguments' message: it is quoted.
    return `    '${excl}[${desc}]${o.value ? `:${o.value.replace(/:/g, "\\:")}:${o.file ? "_files" : " "}` : ""}'`;
  };
  const fns = names
    .map((n) => `  ${n})\n    _arguments -s \\\n${options(n).map(spec).join(" \\\n")} \\\n    ${fileOperands.includes(n) ? "'*:pidfile:_files'" : commandOperands.includes(n) ? `':command:(${names.join(" ")})'` : "'*::program:_normal'"}\n    ;;`)
    .join("\n");
  return `#compdef daemonize
# zsh completion for daemonize (generated by scripts/docs.ts)
local cmd=start
if (( CURRENT > 2 )) && [[ \${words[2]} == (${names.join("|")}) ]]; then
  cmd=\${words[2]}
  shift words
  (( CURRENT-- ))
fi
case $cmd in
${fns}
esac
`;
}

const targets: [string, (current: string) => string][] = [
  ["README.md", readme],
  ["docs/daemonize.1", manPage],
  ["completions/daemonize.bash", bash],
  ["completions/_daemonize", zsh],
];

const check = process.argv.includes("--check");
let drifted = 0;
for (const [file, make] of targets) {
  const path = `${root}${file}`;
  const current = existsSync(path) ? readFileSync(path, "utf8") : "";
  const wanted = make(current);
  if (wanted === current) continue;
  if (check) {
    console.error(`docs: ${file} is out of date: run npm run docs`);
    drifted++;
  } else writeFileSync(path, wanted);
}
process.exit(drifted ? 1 : 0);

// The help: usage and the commands first, the options grouped by topic, every line within 80
// columns with no trailing blank, for every command; `help COMMAND` and `COMMAND --help` agree;
// control commands read options and arguments in any order.
import { afterEach, describe, expect, test } from "bun:test";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { type CommandName, commands } from "../src/cli";
import { type Arg, GROUPS } from "../src/groups";
import { BIN, cleanup, missing, run, tempDir, WITHOUT_MEMFD } from "./helpers";

afterEach(cleanup);

const names = Object.keys(commands) as CommandName[];

describe("every option belongs to a help group", () => {
  for (const name of names) {
    test(`daemonize ${name}`, () => {
      for (const [option, def] of Object.entries(commands[name].args as Record<string, Arg>)) expect([option, def.group in GROUPS]).toEqual([option, true]);
    });
  }
});

/** Lines over 80 columns or with a trailing blank: none is allowed. */
const badLines = (text: string) => text.split("\n").filter((l) => l.length > 80 || /\s$/.test(l));

describe("daemonize --help", () => {
  test("starts with the usage and the commands, one line each, then the start options by topic", async () => {
    const r = await run(["--help"]);
    expect([r.code, r.stderr]).toEqual([0, ""]);
    expect(badLines(r.stdout)).toEqual([]);
    expect(r.stdout).toStartWith("Usage: daemonize [start] [OPTIONS] [--] PROGRAM [ARGS...]\n");
    const lines = r.stdout.split("\n");
    const at = lines.indexOf("Commands:");
    expect(lines.slice(at + 1, at + 1 + names.length).map((l) => l.trim().split(/\s+/)[0])).toEqual(names);
    const headings = lines.filter((l) => /^[A-Z][a-z ]+:$/.test(l)).map((l) => l.slice(0, -1));
    const groups = Object.values(GROUPS).filter((g) => headings.includes(g));
    expect(headings).toEqual(["Commands", "Start options", ...groups]);
    // The groups that have options so far, in their order.
    expect(groups).toEqual(expect.arrayContaining(["Process and identity", "Files and output", "Supervision", "Logs", "Readiness", "Limits", "Sockets", "Configuration"]));
    expect(r.stdout).toContain("    --syslog[=FACILITY]");
    expect(r.stdout).toContain("-c, --config FILE");
    // Defaults are written one way, for every command.
    for (const name of names) expect((await run(["help", name])).stdout.replace(/\s+/g, " ")).not.toMatch(/default(?!: | command\))|[^(]default: /);
    expect(r.stdout.replace(/\s+/g, " ")).toContain("(default: on-failure)");
    expect((await run(["help"])).stdout).toBe(r.stdout);
  });

  for (const name of names) {
    test(`daemonize help ${name} and daemonize ${name} --help: the same text, within 80 columns, no trailing blank`, async () => {
      const viaHelp = await run(["help", name]);
      const viaFlag = await run([name, "--help"]);
      expect([viaHelp.code, viaHelp.stderr, viaFlag.code, viaFlag.stderr]).toEqual([0, "", 0, ""]);
      expect(viaFlag.stdout).toBe(viaHelp.stdout);
      expect(viaHelp.stdout).toStartWith(`Usage: daemonize ${name === "start" ? "[start]" : name} [OPTIONS]`);
      expect(badLines(viaHelp.stdout)).toEqual([]);
      for (const option of Object.keys(commands[name].args)) expect(viaHelp.stdout).toContain(`--${option}`);
    });
  }

  test("help of a command that does not exist: exit 64, one line", async () => {
    const r = await run(["help", "nosuch"]);
    expect([r.code, r.stdout, r.stderr.split("\n").length]).toEqual([64, "", 2]);
    expect(r.stderr).toStartWith('daemonize: error: help "nosuch": no such command');
  });

  test.skipIf(missing("help without native code", ["python3", "python3"]))("--help, help COMMAND and --print-config load no native library", async () => {
    for (const args of [["--help"], ["help", "stop"], ["signal", "--help"], ["--print-config", "-p", "/x.pid", "--", "/bin/true"]]) {
      const p = Bun.spawn(["python3", "-c", WITHOUT_MEMFD, BIN, ...args], { stdout: "pipe", stderr: "pipe" });
      expect([args, await p.exited, await new Response(p.stderr).text()]).toEqual([args, 0, ""]);
    }
  });
});

describe("a program named like a command", () => {
  test("runs after -- or by its path", async () => {
    const dir = tempDir();
    writeFileSync(`${dir}/help`, `#!/bin/sh\necho "$1" >> ${dir}/ran\n`, { mode: 0o755 });
    expect((await run(["-f", "--", "help", "one"], { env: { PATH: `${dir}:/usr/bin:/bin` } })).code).toBe(0);
    expect((await run(["-f", "./help", "two"], { cwd: dir })).code).toBe(0);
    expect(existsSync(`${dir}/ran`) && readFileSync(`${dir}/ran`, "utf8")).toBe("one\ntwo\n");
  });
});

describe("control commands read options and arguments in any order", () => {
  test("signal HUP -p FILE, status app.pid --json", async () => {
    const dir = tempDir();
    expect(await run(["signal", "HUP", "-p", `${dir}/app.pid`])).toEqual({ code: 1, stdout: "", stderr: "daemonize: error: not running\n" });
    expect(await run(["-v", "signal", "HUP", "-p", `${dir}/app.pid`])).toMatchObject({ code: 64 });
    const status = await run(["status", "app.pid", "--json"], { cwd: dir });
    expect(status.code).toBe(3);
    expect(JSON.parse(status.stdout)).toMatchObject({ running: false, state: "stopped", pidfile: `${dir}/app.pid` });
    expect(await run(["stop", "-p", `${dir}/app.pid`, "extra"])).toMatchObject({ code: 64, stderr: 'daemonize: error: unexpected argument "extra"\n' });
  });

  test("only the start command stops reading options at the program", async () => {
    const r = await run(["-p", "/tmp/never.pid", "/bin/true", "-v"]);
    expect([r.code, r.stderr]).toEqual([64, "daemonize: error: option -v follows the program; put -- before the program to pass it options\n"]);
  });
});

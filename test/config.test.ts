// -c FILE and --print-config: every option is a key of the file, every command reads it, the
// command line overrides it, a bad file is one line naming FILE:LINE: KEY with its exit code,
// and the file must be as trusted as a program run as root.
import { afterEach, describe, expect, test } from "bun:test";
import { chmodSync, chownSync, existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { commands } from "../src/cli";
import { configKeys } from "../src/toml";
import type { Arg } from "../src/groups";
import { alive, BIN, cleanup, freePort, isRoot, missing, PROBE, procArgv, procEnv, readPid, ROOT, run, tempDir, track, waitFor } from "./helpers";

afterEach(cleanup);

const START = commands.start.args as Record<string, Arg>;

/**
 * A valid value for each kind of option, by its value's name; an option whose value has a new
 * name fails the round trip below until it gets one here.
 */
const SAMPLES: Record<string, string> = {
  FILE: "files/some file",
  DIR: "a dir",
  PATH: "run/log.sock",
  "USER[:GROUP]": "nobody",
  GROUP: "nogroup",
  MODE: "027",
  "NAME=SOFT[:HARD]": "nofile=512:1024",
  N: "3",
  "POLICY[:PRIO]": "batch",
  "CLASS[:LEVEL]": "best-effort:2",
  LIST: "0",
  "CAP[,CAP...]": "net_bind_service",
  "NAME=VALUE": 'GREETING=a "quoted" value\twith a tab',
  WHEN: "always",
  CODES: "0,3",
  DUR: "5s",
  HOW: "tcp:127.0.0.1:9",
  SIZE: "1M",
  "[=FACILITY]": "local3",
  TAG: "my-app",
  // --listen, --cgroup, --cgroup-set, --health.
  "[NAME=]ADDR": "web=tcp:127.0.0.1:8080",
  "[=PATH]": "daemonize/app",
  "FILE=VALUE": "pids.max=64",
  PROBE: "tcp:127.0.0.1:9",
};

/** What makes every option valid beside it: a pidfile, a monitor that writes the logs, readiness, a health probe. */
const BASE = ["-p", "app.pid", "--supervise", "--syslog", "--ready", "notify", "--health", "tcp:127.0.0.1:9"];
const PROGRAM = ["--", "/bin/echo", "two words", "it's", "-x", "ünïcode", "\u007f"];

function flagsOf(key: string): string[] {
  const def = START[key] as Arg;
  if (def.type === "boolean") return [`--${key}`];
  const sample = SAMPLES[def.valueHint ?? ""];
  if (sample === undefined) throw new Error(`no sample value for --${key} ${def.valueHint}: add one to SAMPLES`);
  return def.valueHint?.startsWith("[=") ? [`--${key}=${sample}`] : [`--${key}`, sample];
}

/** --print-config of a command line run in `cwd`; then the same with -c of what it printed, from elsewhere. */
async function roundTrip(args: string[]) {
  const cwd = tempDir();
  const first = await run(["--print-config", ...args], { cwd });
  expect([first.stderr, first.code]).toEqual(["", 0]);
  const dir = tempDir();
  writeFileSync(`${dir}/app.toml`, first.stdout, { mode: 0o644 });
  const again = await run(["--print-config", "-c", `${dir}/app.toml`], { cwd: "/" });
  expect([again.stderr, again.code]).toEqual(["", 0]);
  return { cwd, first: first.stdout, again: again.stdout };
}

describe("--print-config round trip", () => {
  test("every option is a key of the file, except what says what to do this time", () => {
    expect(configKeys().sort()).toEqual(Object.keys(START).filter((k) => !["config", "print-config", "check", "json", "help", "version"].includes(k)).sort());
  });

  for (const key of configKeys()) {
    test(`--${key} prints as a key that -c reads back to the same settings`, async () => {
      const { cwd, first, again } = await roundTrip([...BASE, ...flagsOf(key), ...PROGRAM]);
      expect(again).toBe(first);
      const line = first.split("\n").find((l) => l.startsWith(key === "env" ? "[env]" : `${key} = `));
      expect(line).toBeDefined();
      // A relative path is written absolute: the file may be anywhere.
      if (["FILE", "DIR", "PATH"].includes(START[key]?.valueHint ?? "")) expect(line).toContain(`"${cwd}/`);
      expect(Bun.TOML.parse(first)).toMatchObject({ program: ["/bin/echo", "two words", "it's", "-x", "ünïcode", "\u007f"] });
    });
  }

  test("every option at once, each line of the file within 80 columns", async () => {
    const all = configKeys().filter((k) => k !== "quiet").flatMap(flagsOf);
    const { first, again } = await roundTrip([...BASE, ...all, "-E", "SECOND=2", ...PROGRAM]);
    expect(again).toBe(first);
    const parsed = Bun.TOML.parse(first) as Record<string, unknown>;
    for (const key of configKeys().filter((k) => k !== "quiet" && k !== "env")) expect(parsed).toHaveProperty([key]);
    expect(parsed.env).toEqual({ GREETING: 'a "quoted" value\twith a tab', SECOND: "2" });
    for (const line of first.split("\n").filter((l) => l.startsWith("#"))) expect(line.length).toBeLessThanOrEqual(80);
  });

  test("an argument that is not UTF-8 cannot go into a TOML file: exit 64, named", async () => {
    const p = Bun.spawn(["sh", "-c", `exec "$0" --print-config -p /x.pid -- /bin/echo "$(printf 'a\\377b')"`, BIN], { stdout: "pipe", stderr: "pipe" });
    expect([await p.exited, await new Response(p.stdout).text(), await new Response(p.stderr).text()]).toEqual([
      64,
      "",
      'daemonize: error: --print-config: "a\\xffb" is not UTF-8 text, which a TOML file cannot hold: give it on the command line\n',
    ]);
  });

  test("a bad value is refused as a start refuses it, and nothing is printed", async () => {
    const r = await run(["--print-config", "--restart", "sometimes", "-p", "/x.pid", "--", "/bin/true"]);
    expect([r.code, r.stdout, r.stderr]).toEqual([64, "", 'daemonize: error: --restart "sometimes" is not always, on-failure or never\n']);
    expect((await run(["--print-config", "--check", "--", "/bin/true"])).code).toBe(64);
  });
});

/** A config file of `lines`, 0644 in a fresh directory (0755). */
function config(lines: string[], dir = tempDir(), name = "app.toml"): string {
  const path = `${dir}/${name}`;
  writeFileSync(path, `${lines.join("\n")}\n`, { mode: 0o644 });
  chmodSync(path, 0o644);
  return path;
}

const q = JSON.stringify;

describe("starting from a file", () => {
  test("the daemon gets what the file says; relative paths are the file's directory's", async () => {
    const dir = tempDir();
    const file = config([`program = [${q(PROBE)}, "two words", "--x"]`, 'pidfile = "run/app.pid"', 'log = "app.log"', 'umask = "027"', "", "[env]", 'GREETING = "hello world"', "PORT = 8080"], dir);
    mkdirSync(`${dir}/run`, { mode: 0o755 });
    const r = await run(["-c", file], { cwd: "/tmp" });
    expect([r.stderr, r.code]).toEqual(["", 0]);
    const pid = track(readPid(`${dir}/run/app.pid`));
    expect(procArgv(pid)).toEqual([PROBE, "two words", "--x"]);
    expect(procEnv(pid).get("GREETING")).toBe("hello world");
    expect(procEnv(pid).get("PORT")).toBe("8080");
    expect(readFileSync(`/proc/${pid}/status`, "utf8")).toMatch(/^Umask:\s+0027$/m);
    expect(existsSync(`${dir}/app.log`)).toBe(true);
  });

  test("every kind of relative path in the file is taken against the file's directory", async () => {
    const dir = tempDir();
    const file = config(
      ['program = ["bin/app", "data/x"]', 'pidfile = "app.pid"', 'env-file = "app.env"', "supervise = true", 'ready = "file:run/ready"', 'listen = ["web=unix:run/web.sock"]', 'chdir = "srv"'],
      dir,
    );
    const parsed = Bun.TOML.parse((await run(["--print-config", "-c", file], { cwd: "/tmp" })).stdout);
    expect(parsed).toMatchObject({
      program: [`${dir}/bin/app`, "data/x"],
      pidfile: `${dir}/app.pid`,
      "env-file": `${dir}/app.env`,
      ready: `file:${dir}/run/ready`,
      listen: [`web=unix:${dir}/run/web.sock`],
      chdir: `${dir}/srv`,
    });
    // A working directory inside a chroot stays inside it.
    const chrooted = config(['program = ["/bin/app"]', 'chroot = "jail"', 'chdir = "srv"'], dir, "jail.toml");
    expect(Bun.TOML.parse((await run(["--print-config", "-c", chrooted])).stdout)).toMatchObject({ chroot: `${dir}/jail`, chdir: "srv" });
  });

  test("options on the command line override the file; -E sets one variable; words after -- replace program", async () => {
    const dir = tempDir();
    const file = config(['program = ["/bin/false"]', 'pidfile = "app.pid"', 'umask = "027"', 'env = ["A=file", "B=file"]'], dir);
    const r = await run(["-c", file, "--umask", "077", "-E", "B=flag", "--", PROBE, "given"]);
    expect([r.stderr, r.code]).toEqual(["", 0]);
    const pid = track(readPid(`${dir}/app.pid`));
    expect(procArgv(pid)).toEqual([PROBE, "given"]);
    expect([procEnv(pid).get("A"), procEnv(pid).get("B")]).toEqual(["file", "flag"]);
    expect(readFileSync(`/proc/${pid}/status`, "utf8")).toMatch(/^Umask:\s+0077$/m);
    // A repeatable option given replaces the file's list.
    const printed = await run(["--print-config", "-c", file, "--limit", "nofile=100"]);
    expect(printed.stdout).not.toContain("umask = \"077\"");
    expect(printed.stdout).toContain('limit = ["nofile=100"]');
  });
});

/** A supervised shell loop that says each HUP it gets in its log. */
function service(dir: string, extra: string[] = []): string {
  const script = 'trap "echo got HUP" HUP; echo started $MARK; while :; do sleep 0.05; done';
  return config([`program = ["/bin/sh", "-c", ${q(script)}]`, 'pidfile = "app.pid"', 'log = "app.log"', "supervise = true", "log-timestamps = true", ...extra], dir);
}

const read = (path: string) => (existsSync(path) ? readFileSync(path, "utf8") : "");

describe("every command with -c", () => {
  test("start, status, signal, logs, reopen-logs, rotate-logs, restart (which reads the file again), stop, --check", async () => {
    const dir = tempDir();
    const file = service(dir, ["[env]", 'MARK = "one"']);
    const check = await run(["--check", "-c", file]);
    expect([check.code, check.stdout]).toEqual([0, expect.stringContaining("a start would succeed")]);
    expect((await run(["-c", file])).code).toBe(0);
    const monitor = track(readPid(`${dir}/app.pid`));
    expect(await run(["status", "-c", file])).toMatchObject({ code: 0, stdout: expect.stringMatching(/^running \(pid \d+/) });
    await waitFor(() => read(`${dir}/app.log`).includes("started one"), "the first run's line");

    // Options and arguments in any order.
    expect((await run(["signal", "-c", file, "HUP"])).code).toBe(0);
    await waitFor(() => read(`${dir}/app.log`).includes("got HUP"), "the HUP in the log");
    expect(await run(["logs", "-n", "5", "-c", file])).toMatchObject({ code: 0, stdout: expect.stringContaining("got HUP") });
    expect(await run(["reopen-logs", "-c", file, "-v"])).toMatchObject({ code: 0, stderr: expect.stringContaining("reopened the logs") });

    expect(await run(["rotate-logs", "-c", file, "-v"])).toMatchObject({ code: 0, stderr: expect.stringContaining("rotated the logs") });
    expect(read(`${dir}/app.log.1`)).toContain("got HUP");
    expect(read(`${dir}/app.log`)).not.toContain("got HUP");

    // restart -c reads the file again: a changed setting takes effect.
    writeFileSync(file, read(file).replace('MARK = "one"', 'MARK = "two"'));
    expect((await run(["restart", "-c", file])).code).toBe(0);
    const second = track(readPid(`${dir}/app.pid`));
    expect(second).not.toBe(monitor);
    expect(alive(monitor)).toBe(false);
    await waitFor(() => read(`${dir}/app.log`).includes("started two"), "the restarted run's line");

    expect(await run(["stop", "-c", file])).toMatchObject({ code: 0 });
    expect(alive(second)).toBe(false);
    expect(existsSync(`${dir}/app.pid`)).toBe(false);
    expect((await run(["status", "-c", file])).code).toBe(3);
  });

  test("reload -c: a new run from the file's settings, ready before the old one is stopped", async () => {
    const dir = tempDir();
    const file = config(['program = ["/bin/sh", "-c", "echo >&3; exec sleep 100"]', 'pidfile = "app.pid"', "supervise = true", 'ready = "fd:3"'], dir);
    expect((await run(["-c", file])).code).toBe(0);
    track(readPid(`${dir}/app.pid`));
    const child = async () => (JSON.parse((await run(["status", "--json", "-c", file])).stdout) as { child: number }).child;
    const before = await child();
    expect(await run(["reload", "-c", file])).toMatchObject({ code: 0, stderr: "" });
    const after = await child();
    expect(after).not.toBe(before);
    expect(alive(before)).toBe(false);
    expect((await run(["stop", "-c", file])).code).toBe(0);
  });

  test("status of many files at once, as a shell glob gives them; the exit code is the most severe", async () => {
    const dir = tempDir();
    for (const name of ["a", "b"]) mkdirSync(`${dir}/${name}`, { mode: 0o755 });
    const a = config([`program = [${q(PROBE)}]`, 'pidfile = "a.pid"'], `${dir}/a`, "a.toml");
    const b = config([`program = [${q(PROBE)}]`, 'pidfile = "b.pid"'], `${dir}/b`, "b.toml");
    expect((await run(["-c", a])).code).toBe(0);
    track(readPid(`${dir}/a/a.pid`));
    const r = await run(["status", "-c", a, b, "--json"]);
    expect(r.code).toBe(3);
    expect((JSON.parse(r.stdout) as { pidfile: string; state: string }[]).map((s) => [s.pidfile, s.state])).toEqual([
      [`${dir}/a/a.pid`, "running"],
      [`${dir}/b/b.pid`, "stopped"],
    ]);
    const missingPidfile = config([`program = [${q(PROBE)}]`], dir, "none.toml");
    expect(await run(["status", "-c", missingPidfile])).toMatchObject({ code: 64, stderr: `daemonize: error: ${missingPidfile}: no pidfile: status needs one\n` });
  });

  test("a control command takes its pidfile from the file, and needs nothing else; a flag still overrides it", async () => {
    const dir = tempDir();
    const file = config([`program = [${q(PROBE)}]`, 'pidfile = "app.pid"'], dir);
    expect((await run(["-c", file])).code).toBe(0);
    const pid = track(readPid(`${dir}/app.pid`));
    expect((await run(["status", "--pidfile", `${dir}/other.pid`, "-c", file])).code).toBe(3);
    expect((await run(["stop", "-c", file])).code).toBe(0);
    expect(alive(pid)).toBe(false);
  });
});

describe("a bad file: one line, FILE:LINE: KEY: reason, and nothing left behind", () => {
  const cases: [what: string, lines: string[], code: number, line: number, key: string][] = [
    ["an unknown key", [`program = [${q(PROBE)}]`, 'pidfile = "app.pid"', "bogus = 1"], 64, 3, "bogus"],
    ["a flag that is not a boolean", [`program = [${q(PROBE)}]`, 'pidfile = "app.pid"', "", 'supervise = "yes"'], 64, 4, "supervise"],
    ["a repeatable option that is not an array", [`program = [${q(PROBE)}]`, 'pidfile = "app.pid"', 'limit = "nofile=1024"'], 64, 3, "limit"],
    ["a program that is a string", ['pidfile = "app.pid"', `program = "${PROBE} --flag"`], 64, 2, "program"],
    ["a variable that is not a string", [`program = [${q(PROBE)}]`, 'pidfile = "app.pid"', "[env]", "A = true"], 64, 4, "env.A"],
    ["a date", [`program = [${q(PROBE)}]`, 'pidfile = "app.pid"', "user = 1979-05-27"], 64, 3, "user"],
    ["a bad value", [`program = [${q(PROBE)}]`, 'pidfile = "app.pid"', "supervise = true", 'restart = "sometimes"'], 64, 4, "restart"],
    ["a bad item of an array", [`program = [${q(PROBE)}]`, 'pidfile = "app.pid"', 'limit = ["nofile=1024", "nofile=x"]'], 64, 3, "limit"],
    ["a key that is no option but a property of every object", [`program = [${q(PROBE)}]`, 'pidfile = "app.pid"', 'toString = "x"'], 64, 3, "toString"],
    ["a key spelt with underscores", [`program = [${q(PROBE)}]`, 'pidfile = "app.pid"', "log_max_size = \"1M\""], 64, 3, "log_max_size"],
    ["a variable name with =", [`program = [${q(PROBE)}]`, 'pidfile = "app.pid"', "[env]", '"A=B" = "x"'], 64, 4, "env.A=B"],
    ["an empty program name", ['program = ["", "x"]', 'pidfile = "app.pid"'], 64, 1, "program"],
    ["an empty pidfile", [`program = [${q(PROBE)}]`, 'pidfile = ""'], 64, 2, "pidfile"],
    ["an option that says what to do this time", [`program = [${q(PROBE)}]`, 'pidfile = "app.pid"', "check = true"], 64, 3, "check"],
  ];
  for (const [what, lines, code, line, key] of cases) {
    test(`${what}: exit ${code}, line ${line}, key ${key}`, async () => {
      const dir = tempDir();
      const file = config(lines, dir);
      for (const args of [["-c", file], ["--check", "-c", file], ["stop", "-c", file]]) {
        const r = await run(args);
        // stop reads only its own keys, but a file with a key of the wrong type is wrong for every command.
        if (args[0] === "stop" && ["a bad value", "a bad item of an array"].includes(what)) continue;
        if (what === "a key spelt with underscores") expect(r.stderr).toContain("did you mean log-max-size?");
        expect(r.code).toBe(code);
        expect(r.stderr).toStartWith(`daemonize: error: ${file}:${line}: ${key}: `);
        expect(r.stderr.split("\n")).toHaveLength(2);
      }
      expect(readdirSync(dir)).toEqual(["app.toml"]);
    });
  }

  test("a TOML syntax error: exit 64, the line Bun's message is about", async () => {
    const dir = tempDir();
    const file = config(['pidfile = "app.pid"', "limit = [", '  "nofile=1024",', "]", "user = ", 'log = "x"'], dir);
    expect(await run(["-c", file])).toEqual({ code: 64, stdout: "", stderr: `daemonize: error: ${file}:5: TOML: Missing value after '='; values must be on the same line\n` });
    const twice = config(['pidfile = "a.pid"', 'pidfile = "b.pid"'], dir, "twice.toml");
    expect(await run(["status", "-c", twice])).toEqual({ code: 64, stdout: "", stderr: `daemonize: error: ${twice}:2: TOML: Cannot redefine key 'pidfile'\n` });
  });

  test("a file over 1 MiB: exit 64, named", async () => {
    const file = config([`program = [${q(PROBE)}]`, `# ${"x".repeat(1 << 20)}`]);
    expect(await run(["-c", file])).toEqual({ code: 64, stdout: "", stderr: `daemonize: error: config ${file}: larger than 1 MiB\n` });
  });

  test("no program in the file and none given: exit 64, named", async () => {
    const file = config(['pidfile = "app.pid"']);
    expect(await run(["-c", file])).toMatchObject({ code: 64, stderr: `daemonize: error: ${file}: program: not set: give program = ["/path/to/program", "args"] in the file, or the program after --\n` });
  });

  test("a missing file: exit 66, for every command", async () => {
    const dir = tempDir();
    for (const args of [["-c", `${dir}/none.toml`], ["stop", "-c", `${dir}/none.toml`], ["status", "-c", `${dir}/none.toml`], ["--print-config", "-c", `${dir}/none.toml`]]) {
      expect(await run(args)).toEqual({ code: 66, stdout: "", stderr: `daemonize: error: config ${dir}/none.toml: No such file or directory\n` });
    }
    expect((await run(["-c", dir])).code).toBe(66);
  });
});

describe.skipIf(!isRoot)("the file is trusted as a program run as root is", () => {
  const lines = [`program = [${q(PROBE)}]`, 'pidfile = "app.pid"'];

  test("writable by others, owned by another user, or in a directory others can write: exit 77; --unsafe allows it", async () => {
    const cases: [string, (dir: string, file: string) => void, string][] = [
      ["writable by others", (_, file) => chmodSync(file, 0o666), "is writable by group or others"],
      ["owned by another user", (_, file) => chownSync(file, 65534, 65534), "is owned by uid 65534"],
      ["in a directory others can write", (dir) => chmodSync(dir, 0o777), "is writable by group or others"],
      ["in a directory of another user", (dir) => chownSync(dir, 65534, 65534), "is owned by uid 65534"],
    ];
    for (const [what, spoil, why] of cases) {
      const dir = tempDir();
      const file = config(lines, dir);
      spoil(dir, file);
      for (const args of [["-c", file], ["status", "-c", file], ["--print-config", "-c", file]]) {
        const r = await run(args);
        expect([what, r.code, r.stderr]).toEqual([what, 77, expect.stringMatching(new RegExp(`^daemonize: error: config ${file}: \\S+ ${why}, and the file decides what runs \\(--unsafe allows it\\)\\n$`))]);
      }
      expect(readdirSync(dir)).toEqual(["app.toml"]);
      const r = await run(["--unsafe", "-c", file]);
      expect([what, r.code, r.stderr]).toEqual([what, 0, ""]);
      track(readPid(`${dir}/app.pid`));
    }
  });

  test("a sticky directory like /tmp is fine, as for a program", async () => {
    const dir = tempDir();
    chmodSync(dir, 0o1777);
    const file = config(lines, dir);
    expect((await run(["--print-config", "-c", file])).code).toBe(0);
  });
});

describe.skipIf(missing("--syslog-tag", ["python3", "python3"]))("--syslog-tag", () => {
  test("names the program's syslog lines TAG[PID] instead of PROGRAM[PID]", async () => {
    const dir = tempDir();
    const sock = `${dir}/log.sock`;
    const got = `${dir}/got`;
    const receiver = "import socket, sys\ns = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)\ns.bind(sys.argv[1])\nwhile True:\n    open(sys.argv[2], 'ab').write(s.recv(65536) + b'\\n')\n";
    const rx = Bun.spawn(["python3", "-c", receiver, sock, got], { stdio: ["ignore", "ignore", "inherit"] });
    track(rx.pid);
    await waitFor(() => existsSync(sock), "the test's syslog socket");
    const file = config(['program = ["/bin/sh", "-c", "echo hello; exec sleep 100"]', 'pidfile = "app.pid"', "syslog = true", `syslog-socket = ${q(sock)}`, 'syslog-tag = "web-1"'], dir);
    expect((await run(["-c", file])).code).toBe(0);
    track(readPid(`${dir}/app.pid`));
    const line = await waitFor(() => read(got).split("\n").find((l) => l.includes("hello")), "the line at the socket");
    expect(line).toMatch(/^<30>\w{3} [ \d]\d \d\d:\d\d:\d\d web-1\[\d+\]: hello$/);
  });

  for (const bad of ["", "has space", "a:b", "a[1]", "x".repeat(33)]) {
    test(`refuses ${q(bad)}: exit 64`, async () => {
      const r = await run(["--syslog", "--syslog-tag", bad, "-p", "/tmp/never.pid", "--", "/bin/true"]);
      expect(r.code).toBe(64);
      expect(r.stderr).toStartWith("daemonize: error: --syslog-tag");
    });
  }

  test("goes with --syslog", async () => {
    expect(await run(["--syslog-tag", "x", "-p", "/tmp/never.pid", "--", "/bin/true"])).toMatchObject({ code: 64, stderr: "daemonize: error: --syslog-tag goes with --syslog\n" });
  });
});

describe("rotate-logs", () => {
  test("rotates as --log-max-size would, keeping --log-keep files, with no line lost or split", async () => {
    const dir = tempDir();
    const script = 'i=0; while :; do i=$((i+1)); echo "line $i"; sleep 0.002; done';
    const r = await run(["-p", `${dir}/app.pid`, "-l", `${dir}/app.log`, "--log-timestamps", "--log-keep", "2", "--", "/bin/sh", "-c", script]);
    expect(r.code).toBe(0);
    track(readPid(`${dir}/app.pid`));
    for (let i = 0; i < 3; i++) {
      await waitFor(() => read(`${dir}/app.log`).split("\n").length > 5, "lines in the fresh log");
      expect(await run(["rotate-logs", "-p", `${dir}/app.pid`])).toEqual({ code: 0, stdout: "", stderr: "" });
    }
    await waitFor(() => read(`${dir}/app.log`).split("\n").length > 5, "lines after the last rotation");
    expect(readdirSync(dir).sort()).toEqual(["app.log", "app.log.1", "app.log.2", "app.pid"]);
    const lines = [read(`${dir}/app.log.2`), read(`${dir}/app.log.1`), read(`${dir}/app.log`)].join("").split("\n").filter(Boolean);
    const numbers = lines.map((l) => Number(l.match(/^\S+ line (\d+)$/)?.[1]));
    expect(numbers.every((n, i) => i === 0 || n === (numbers[i - 1] as number) + 1)).toBe(true);
  });

  test("a daemon that writes its own logs cannot be rotated: exit 1, named", async () => {
    const dir = tempDir();
    expect((await run(["-p", `${dir}/app.pid`, "--", PROBE])).code).toBe(0);
    track(readPid(`${dir}/app.pid`));
    const r = await run(["rotate-logs", "-p", `${dir}/app.pid`]);
    expect([r.code, r.stderr]).toEqual([1, expect.stringContaining("writes its own logs")]);
  });
});

/** The shipped example config, for this test: its pidfile, log and port moved into `dir`. */
function exampleConfig(dir: string, port: number): string {
  const shipped = readFileSync(`${ROOT}examples/daemonize/daemonize-example.toml`, "utf8");
  const text = shipped.replaceAll("/run/daemonize-example.pid", `${dir}/ex.pid`).replaceAll("/var/log/daemonize-example.log", `${dir}/ex.log`).replaceAll("8080", String(port));
  writeFileSync(`${dir}/ex.toml`, text, { mode: 0o644 });
  return `${dir}/ex.toml`;
}

const serving = (port: number) => fetch(`http://127.0.0.1:${port}/`).then((r) => r.ok, () => false);

describe.skipIf(!isRoot || missing("examples with a config file", ["/usr/bin/python3", "python3"]))("examples that use -c", () => {
  test("the shipped config passes --check as it is", async () => {
    const r = await run(["--check", "-c", `${ROOT}examples/daemonize/daemonize-example.toml`]);
    expect([r.code, r.stderr]).toEqual([0, ""]);
    expect(r.stdout).toContain("a start would succeed");
  });

  test("the init script goes through every action from the one file; restart reads it again", async () => {
    const dir = tempDir();
    const [port, other] = [freePort(), freePort()];
    const env = { PATH: "/usr/bin:/bin", DAEMONIZE: BIN, CONFIG: exampleConfig(dir, port) };
    const action = async (name: string) => {
      const code = await Bun.spawn(["sh", `${ROOT}examples/init.d/daemonize-config`, name], { env, stdout: "ignore", stderr: "ignore" }).exited;
      if (existsSync(`${dir}/ex.pid`)) track(readPid(`${dir}/ex.pid`));
      return code;
    };
    expect(await action("status")).toBe(3);
    expect(await action("start")).toBe(0);
    // ready = "tcp:…": the start returned once the server listened.
    expect(await serving(port)).toBe(true);
    const first = readPid(`${dir}/ex.pid`);
    expect(await action("status")).toBe(0);
    expect(await action("start")).toBe(0);
    expect(readPid(`${dir}/ex.pid`)).toBe(first);
    expect(await action("rotate")).toBe(0);
    expect(existsSync(`${dir}/ex.log.1`)).toBe(true);
    writeFileSync(env.CONFIG, readFileSync(env.CONFIG, "utf8").replaceAll(String(port), String(other)));
    expect(await action("restart")).toBe(0);
    expect(alive(first)).toBe(false);
    expect([await serving(other), await serving(port)]).toEqual([true, false]);
    expect(await action("reload")).toBe(3);
    expect(await action("stop")).toBe(0);
    expect(await action("status")).toBe(3);
    expect(await serving(other)).toBe(false);
  });

  test("the systemd unit: PIDFile= is the file's pidfile, ExecStart and ExecStop need only -c", async () => {
    const unit = readFileSync(`${ROOT}examples/systemd/daemonize-config.service`, "utf8");
    const shipped = Bun.TOML.parse(readFileSync(`${ROOT}examples/daemonize/daemonize-example.toml`, "utf8")) as { pidfile: string };
    expect(unit).toMatch(/^Type=forking$/m);
    expect(unit.match(/^PIDFile=(.*)$/m)?.[1]).toBe(shipped.pidfile);
    const dir = tempDir();
    const port = freePort();
    const config = exampleConfig(dir, port);
    const command = (key: string) =>
      (unit.match(new RegExp(`^${key}=(.*)$`, "m"))?.[1] as string).replace("/usr/local/bin/daemonize", BIN).replace("/etc/daemonize/daemonize-example.toml", config).split(" ");
    expect(await Bun.spawn(command("ExecStart")).exited).toBe(0);
    const monitor = track(readPid(`${dir}/ex.pid`));
    expect(await serving(port)).toBe(true);
    expect(await Bun.spawn(command("ExecStop")).exited).toBe(0);
    expect(alive(monitor)).toBe(false);
    expect(existsSync(`${dir}/ex.pid`)).toBe(false);
  });
});

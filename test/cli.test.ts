// Unit tests for the pure parsing: argv splitting, option values, env files, pids.
import { describe, expect, test } from "bun:test";
import { parseCommandLine, scan, startOptions } from "../src/cli";
import { parseEnvFile } from "../src/env";
import { DaemonizeError } from "../src/errors";
import { parsePid } from "../src/pidfile";
import { parseSchedule, parseSignal } from "../src/signals";

const usageError = (fn: () => unknown) => {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(DaemonizeError);
    return (e as DaemonizeError).kind;
  }
  throw new Error("no error thrown");
};

/** The kind of error parseCommandLine rejects with. */
const rejected = async (argv: string[]) => {
  try {
    await parseCommandLine(argv, "/");
  } catch (e) {
    expect(e).toBeInstanceOf(DaemonizeError);
    return (e as DaemonizeError).kind;
  }
  throw new Error("no error thrown");
};

const parse = (argv: string[]) => {
  const o = startOptions(argv, "/here");
  if (typeof o === "string") throw new Error(o);
  return o;
};

describe("argv", () => {
  test("splits at the first -- and leaves the rest alone", () => {
    expect(parse(["-p", "x", "--", "prog", "--help", "--", "-v"]).argv).toEqual(["prog", "--help", "--", "-v"]);
  });

  test("long, long=, short, clustered and attached forms", () => {
    const o = parse(["--pidfile=a", "-fv", "-C/srv", "--umask", "027", "-Ekey=v", "--env", "k2=v2", "prog"]);
    expect([o.pidfile, o.foreground, o.verbose, o.chdir, o.run.umask]).toEqual(["a", true, true, "/srv", 0o27]);
    expect(o.env).toEqual([["key", "v"], ["k2", "v2"]]);
  });

  test("repeatable options keep every value; fds are sorted and unique", () => {
    const o = parse(["--keep-fd", "9", "--keep-fd=4", "--keep-fd", "9", "prog"]);
    expect(o.keepFds).toEqual([4, 9]);
  });

  test("--log sets both streams; --stdout and --stderr override it", () => {
    expect(parse(["-l", "both", "prog"])).toMatchObject({ stdout: "both", stderr: "both" });
    expect(parse(["-l", "both", "-e", "err", "prog"])).toMatchObject({ stdout: "both", stderr: "err" });
  });

  test("defaults", () => {
    expect(parse(["prog"])).toMatchObject({ chdir: "/", run: { umask: 0o22, core: 0n }, truncate: false, clearEnv: false, foreground: false, keepFds: [], cwd: "/here" });
  });

  test("help and version win over everything else before --", () => {
    expect(startOptions(["-p", "x", "--help"], "/")).toBe("help");
    expect(startOptions(["-V"], "/")).toBe("version");
    expect(typeof startOptions(["--", "prog", "--help"], "/")).toBe("object");
  });

  test("a value that looks like an option is still a value", () => {
    expect(parse(["--pidfile", "-weird", "prog"]).pidfile).toBe("-weird");
  });

  test("- alone is a program name, not an option", () => {
    expect(scan(["-"], {}).program).toEqual(["-"]);
  });

  for (const bad of [["--nope", "p"], ["-Z", "p"], ["-p"], ["--core=1", "p"], ["p", "--x"], ["a", "--", "b"], ["--umask", "8", "p"], ["--umask", "", "p"], ["--keep-fd", "-1", "p"], ["--env", "x", "p"], []]) {
    test(`usage error: ${JSON.stringify(bad)}`, () => expect(usageError(() => parse(bad))).toBe("usage"));
  }
});

describe("env files", () => {
  test("comments, blanks, export, one pair of quotes, CRLF; nothing else interpreted", () => {
    const text = "# c\n\n  A=1\nexport B='two words'\nC=\"q\"\r\nD=$HOME\\n\nE=\"unbalanced'\nF==x\n";
    expect(parseEnvFile(text, "f")).toEqual([["A", "1"], ["B", "two words"], ["C", "q"], ["D", "$HOME\\n"], ["E", "\"unbalanced'"], ["F", "=x"]]);
  });

  test("a line that is not NAME=VALUE is a usage error naming the line", () => {
    try {
      parseEnvFile("A=1\nB C=2\n", "env file f");
      throw new Error("no error");
    } catch (e) {
      expect((e as Error).message).toBe('env file f line 2: "B C" is not a variable name');
    }
  });
});

describe("pidfile text", () => {
  test("one decimal pid above 1, with or without a newline", () => {
    expect(parsePid("42\n")).toBe(42);
    expect(parsePid("42")).toBe(42);
    expect(parsePid("4194304\n")).toBe(4194304);
  });

  for (const bad of ["", "\n", "1\n", "0\n", "-5\n", "042\n", "4194305\n", "99999999999\n", "12 \n", " 12\n", "12\n13\n", "abc\n", "12\n\n"]) {
    test(`refuses ${JSON.stringify(bad)}`, () => expect(parsePid(bad)).toBeUndefined());
  }
});

describe("status of several pidfiles", () => {
  test("--pidfile repeats and plain arguments mix, in the order given; after -- every argument is a pidfile", async () => {
    expect(await parseCommandLine(["status", "a.pid", "-p", "/b.pid", "--json", "c.pid", "--pidfile=d.pid", "--", "-e.pid"], "/run")).toEqual({
      name: "status",
      pidfiles: ["/run/a.pid", "/b.pid", "/run/c.pid", "/run/d.pid", "/run/-e.pid"],
      json: true,
      unsafe: false,
    });
    expect(await parseCommandLine(["status", "--unsafe", "/x.pid"], "/")).toEqual({ name: "status", pidfiles: ["/x.pid"], json: false, unsafe: true });
  });

  for (const bad of [["status"], ["status", "--json"], ["status", "--pidfile="], ["status", "x", ""], ["status", "-x", "a.pid"], ["status", "-p"]]) {
    test(`usage error: ${JSON.stringify(bad)}`, async () => expect(await rejected(bad)).toBe("usage"));
  }
});

describe("signals and schedules", () => {
  test("signals by name, SIG name, any case, or number", () => {
    expect([parseSignal("HUP"), parseSignal("SIGHUP"), parseSignal("usr1"), parseSignal("9"), parseSignal("64")]).toEqual([1, 1, 10, 9, 64]);
  });

  for (const bad of ["", "0", "65", "SIGNOPE", "-HUP", "1.5"]) test(`refuses signal ${JSON.stringify(bad)}`, () => expect(usageError(() => parseSignal(bad))).toBe("usage"));

  test("--retry: start-stop-daemon's schedule, or N for TERM/N/KILL/N", () => {
    expect(parseSchedule("TERM/30/KILL/5")).toEqual([{ signal: 15 }, { seconds: 30 }, { signal: 9 }, { seconds: 5 }]);
    expect(parseSchedule("-INT/0.5")).toEqual([{ signal: 2 }, { seconds: 0.5 }]);
    expect(parseSchedule("7")).toEqual([{ signal: 15 }, { seconds: 7 }, { signal: 9 }, { seconds: 7 }]);
  });

  test("command line: the command comes first; control commands need --pidfile", async () => {
    expect(await parseCommandLine(["status", "-p", "x.pid"], "/run")).toEqual({ name: "status", pidfiles: ["/run/x.pid"], json: false, unsafe: false });
    expect(await parseCommandLine(["stop", "-p", "/x.pid"], "/")).toMatchObject({ name: "stop", schedule: [{ signal: 15 }, { seconds: 30 }] });
    expect(await parseCommandLine(["signal", "-p", "/x.pid", "hup"], "/")).toMatchObject({ name: "signal", signal: 1 });
    expect(await parseCommandLine(["-p", "/x.pid", "stop"], "/")).toMatchObject({ name: "start", start: { argv: ["stop"] } });
    expect(await rejected(["status"])).toBe("usage");
    expect(await rejected(["stop", "-p", "x", "extra"])).toBe("usage");
  });
});

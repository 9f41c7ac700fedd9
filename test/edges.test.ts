// Corners of --ready, --supervise and the relay that a review turned up, each
// once wrong: an error beside a status, fd numbers the launcher used itself, a
// relative ready file under the monitor, a long program name, an orphan's
// notification, a stale MAINPID, a foreground first run's pidfile, restarts
// that were asked for, and logs -f through many rotations.
import { afterEach, describe, expect, test } from "bun:test";
import { copyFileSync, existsSync, readdirSync, readFileSync, readlinkSync, writeFileSync } from "node:fs";
import { BIN, cleanup, missing, readPid, run, tempDir, track, waitFor } from "./helpers";

afterEach(cleanup);

const readlinkSafe = (path: string) => {
  try {
    return readlinkSync(path);
  } catch {
    return "";
  }
};

const json = (pidfile: string) => JSON.parse(Bun.spawnSync([BIN, "status", "--json", "-p", pidfile]).stdout.toString());

/** Starts and returns the pidfile's pid, tracked. */
async function started(args: string[], cwd?: string) {
  const r = await run(args, { cwd });
  expect([r.code, r.stderr]).toEqual([0, ""]);
  const pidfile = args[args.indexOf("-p") + 1] as string;
  return { pidfile, pid: track(readPid(pidfile)) };
}

const PY = "/usr/bin/python3";
const SEND = `
import os, socket, sys, time
name = os.environ["NOTIFY_SOCKET"]
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.sendto(sys.argv[1].encode().replace(b"\\\\n", b"\\n"), "\\0" + name[1:] if name.startswith("@") else name)
time.sleep(1000)
`;

describe.skipIf(missing("--ready corners", [PY, "python3"], ["systemd-notify", "systemd"]))("--ready", () => {
  for (const supervise of [false, true])
    test(`ERRNO= beside STATUS= in one message fails at once${supervise ? " (--supervise)" : ""}`, async () => {
      const dir = tempDir();
      const began = Date.now();
      const r = await run([...(supervise ? ["--supervise"] : []), "--ready", "notify", "--ready-timeout", "20s", "-p", `${dir}/p.pid`, "--", PY, "-c", SEND, "STATUS=failing\\nERRNO=5"]);
      expect([r.code, r.stderr]).toEqual([69, `daemonize: error: ${PY} reported ERRNO=5 (Input/output error); it was stopped\n`]);
      expect(Date.now() - began).toBeLessThan(5000);
      expect(existsSync(`${dir}/p.pid`)).toBe(false);
    });

  test("fd:N works for every N from 3 to 40, whatever fds the launcher holds itself", async () => {
    const dir = tempDir();
    for (let n = 3; n <= 40; n++) {
      const { pidfile } = await started(["--ready", `fd:${n}`, "-p", `${dir}/p${n}.pid`, "--", "/bin/bash", "-c", `echo >&${n}; exec sleep 1000`]);
      expect((await run(["stop", "-p", pidfile])).code).toBe(0);
    }
  });

  for (const supervise of [false, true])
    test(`an orphan of the program, come back to the waiter, is heard${supervise ? " (--supervise)" : ""}`, async () => {
      const dir = tempDir();
      // The inner shell loses its parent at once: its notification comes from an orphan.
      const { pidfile } = await started([...(supervise ? ["--supervise"] : []), "--ready", "notify", "--ready-timeout", "10s", "-p", `${dir}/p.pid`, "--", "/bin/sh", "-c", "( (sleep 0.3; systemd-notify --ready) & ); exec sleep 1000"]);
      expect((await run(["stop", "-p", pidfile])).code).toBe(0);
    });

  test("--supervise --ready file: with a relative path is the launcher's path, not the monitor's", async () => {
    const dir = tempDir();
    const { pidfile } = await started(["--supervise", "--ready", "file:flag", "--ready-timeout", "5s", "-p", "p.pid", "--", "/bin/sh", "-c", `touch ${dir}/flag; exec sleep 1000`].map((a) => (a === "p.pid" ? `${dir}/p.pid` : a)), dir);
    expect(json(pidfile).state).toBe("running");
    expect((await run(["stop", "-p", pidfile])).code).toBe(0);
  });

  test("a MAINPID= is the run's that sent it: the next run starts without it", async () => {
    const dir = tempDir();
    // The first run fails only once the test has seen its MAINPID=, however slow the machine.
    const script = `if [ ! -e ${dir}/again ]; then touch ${dir}/again; systemd-notify --ready MAINPID=$$; while [ ! -e ${dir}/seen ]; do sleep 0.05; done; exit 1; fi; systemd-notify --ready; exec sleep 1000`;
    const { pidfile } = await started(["--supervise", "--restart-delay", "0", "--ready", "notify", "-p", `${dir}/p.pid`, "--", "/bin/sh", "-c", script]);
    expect(json(pidfile).mainPid).toBeGreaterThan(1);
    writeFileSync(`${dir}/seen`, "");
    const after = await waitFor(() => {
      const s = json(pidfile);
      return s.restarts === 1 && s.state === "running" && s;
    }, "the second run to be ready");
    expect(after.mainPid).toBeUndefined();
    expect((await run(["stop", "-p", pidfile])).code).toBe(0);
  });

  test("--foreground --supervise: a first run that is not ready removes the pidfile it published", async () => {
    const dir = tempDir();
    const r = await run(["--foreground", "--supervise", "--ready", `file:${dir}/never`, "--ready-timeout", "300ms", "-p", `${dir}/p.pid`, "--", "/bin/sleep", "1000"]);
    expect(r.code).toBe(75);
    expect(existsSync(`${dir}/p.pid`)).toBe(false);
  });
});

describe("--supervise", () => {
  test("a program whose name is 70 bytes long is supervised (its syslog tag is cut)", async () => {
    const dir = tempDir();
    const program = `${dir}/${"a".repeat(70)}`;
    copyFileSync("/bin/sleep", program);
    Bun.spawnSync(["chmod", "755", program]);
    const { pidfile } = await started(["--supervise", "-p", `${dir}/p.pid`, "--", program, "1000"]);
    expect(json(pidfile).state).toBe("running");
    expect((await run(["stop", "-p", pidfile])).code).toBe(0);
  });

  test("restarts asked for with `restart` do not count toward giving up", async () => {
    const dir = tempDir();
    const { pidfile } = await started(["--supervise", "--restart-delay", "0", "--max-restarts", "2", "-p", `${dir}/p.pid`, "--", "/bin/sleep", "1000"]);
    for (let i = 0; i < 2; i++) expect((await run(["restart", "-p", pidfile])).code).toBe(0);
    // Two of the policy's own restarts are still allowed.
    for (let i = 0; i < 2; i++) {
      const before = json(pidfile);
      expect((await run(["signal", "-p", pidfile, "KILL"])).code).toBe(0);
      await waitFor(() => {
        const s = json(pidfile);
        return s.restarts === before.restarts + 1 && s.state === "running";
      }, "the policy's restart");
    }
    expect(json(pidfile)).toMatchObject({ running: true, state: "running", restarts: 4 });
    expect((await run(["stop", "-p", pidfile])).code).toBe(0);
  });
});

describe("logs -f", () => {
  test("through many rotations in a burst: every line once, in order", async () => {
    const dir = tempDir();
    const script = `while [ ! -e ${dir}/go ]; do sleep 0.01; done; i=0; while [ $i -lt 20000 ]; do i=$((i+1)); echo "line $i"; done; exec sleep 1000`;
    const { pidfile } = await started(["--log-max-size", "4K", "--log-keep", "1000", "-p", `${dir}/p.pid`, "-l", `${dir}/app.log`, "--", "/bin/sh", "-c", script]);
    const follow = Bun.spawn([BIN, "logs", "-f", "-n", "0", "-p", pidfile], { stdout: "pipe" });
    track(follow.pid);
    let seen = "";
    const reader = (async () => {
      for await (const chunk of follow.stdout) seen += new TextDecoder().decode(chunk);
    })();
    // The burst begins only once logs -f holds the log open.
    await waitFor(() => readdirSync(`/proc/${follow.pid}/fd`).some((fd) => readlinkSafe(`/proc/${follow.pid}/fd/${fd}`) === `${dir}/app.log`), "logs -f to open the log");
    writeFileSync(`${dir}/go`, "");
    await waitFor(() => seen.endsWith("line 20000\n"), "every line through logs -f", 20_000);
    follow.kill();
    await reader;
    const numbers = seen.trimEnd().split("\n").map((l) => Number(l.slice(5)));
    expect(numbers).toEqual(Array.from({ length: 20000 }, (_, i) => i + 1));
    expect(readFileSync(`${dir}/app.log.1`, "utf8")).toMatch(/^line \d+\n/);
    expect((await run(["stop", "-p", pidfile])).code).toBe(0);
  });
});

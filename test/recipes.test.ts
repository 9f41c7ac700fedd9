// The README's recipes, exercised for real: systemd Type=forking with PIDFile=,
// logrotate (copytruncate, postrotate with `daemonize signal`, and for a
// supervised daemon postrotate with `daemonize reopen-logs`), and a container
// entrypoint with --foreground as PID 1.
import { afterEach, describe, expect, test } from "bun:test";
import { existsSync, readFileSync, readlinkSync, writeFileSync } from "node:fs";
import { alive, BIN, cleanup, freePort, isRoot, missing, PROBE, procStatus, readPid, ROOT, run, startProbe, tempDir, track, waitFor } from "./helpers";

afterEach(cleanup);

describe("systemd Type=forking", () => {
  test("when the launcher exits, PIDFile= is complete and names the program itself, already exec'd", async () => {
    const unit = readFileSync(`${ROOT}examples/systemd/daemonize-example.service`, "utf8");
    const pidfile = unit.match(/^PIDFile=(.*)$/m)?.[1];
    expect(unit).toMatch(/^Type=forking$/m);
    expect(unit.match(/^ExecStart=.* --pidfile (\S+) /m)?.[1]).toBe(pidfile);
    for (let i = 0; i < 20; i++) {
      const dir = tempDir();
      const r = await run(["--pidfile", `${dir}/p.pid`, "--", PROBE]);
      expect(r.code).toBe(0);
      const pid = track(readPid(`${dir}/p.pid`));
      expect(readlinkSync(`/proc/${pid}/exe`)).toBe(PROBE);
    }
  });
});

/**
 * systemd's side of Type=notify, played by python3: a datagram socket at an
 * abstract address, as systemd gives it, that prints each message with the
 * sender's pid from its credentials, and exits after READY=1.
 */
const NOTIFY_LISTENER = `
import socket, struct, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
s.bind("\\0" + sys.argv[1])
print("bound", flush=True)
while True:
    msg, anc, _, _ = s.recvmsg(4096, socket.CMSG_SPACE(12))
    pid = next(struct.unpack("3i", d)[0] for l, t, d in anc if t == socket.SCM_CREDENTIALS)
    print(pid, repr(msg.decode()), flush=True)
    if b"READY=1" in msg.split(b"\\n"):
        break
`;

/** The unit's ExecStart, with this checkout's binary and a port of the test's. */
const execStart = (unit: string, port: number) =>
  (readFileSync(`${ROOT}examples/systemd/${unit}`, "utf8").match(/^ExecStart=(.*)$/m)?.[1] as string)
    .replace("/usr/local/bin/daemonize", BIN)
    .replace(/808\d/g, String(port));


describe.skipIf(!isRoot || missing("systemd Type=notify", ["python3", "python3"], ["systemd-notify", "systemd"]))("systemd Type=notify", () => {
  async function underSystemd(unit: string, log: string) {
    const name = `daemonize-test-${Math.random()}`;
    const listener = Bun.spawn(["python3", "-c", NOTIFY_LISTENER, name], { stdout: "pipe", stderr: "inherit" });
    track(listener.pid);
    const lines = listener.stdout.getReader();
    // Read whole lines: python may write one in two pieces (PYTHONUNBUFFERED).
    let heard = "";
    while (!heard.includes("\n")) heard += new TextDecoder().decode((await lines.read()).value);
    expect(heard).toBe("bound\n");
    heard = "";
    const command = execStart(unit, freePort()).replace("/var/log/daemonize-example.log", log);
    const service = Bun.spawn(["sh", "-c", `exec ${command}`], { env: { PATH: process.env.PATH ?? "/usr/bin:/bin", NOTIFY_SOCKET: `@${name}` } });
    track(service.pid);
    while (!/READY=1.*\n/.test(heard)) heard += new TextDecoder().decode((await lines.read()).value);
    return { service, name, heard: heard.trim().split("\n") };
  }

  test("--foreground --supervise --ready (daemonize-notify.service as shipped): READY=1 with MAINPID= of the main process, once the program accepts connections", async () => {
    const dir = tempDir();
    const { service, heard } = await underSystemd("daemonize-notify.service", `${dir}/log`);
    // The main process is the one systemd started (exec'd in place by sh, then by daemonize into the monitor).
    expect(heard).toEqual([`${service.pid} 'READY=1\\nMAINPID=${service.pid}'`]);
    const children = readFileSync(`/proc/${service.pid}/task/${service.pid}/children`, "utf8").trim().split(" ").map(Number);
    children.forEach(track);
    expect(readFileSync(`/proc/${children[0]}/cmdline`, "utf8")).toContain("http.server");
    process.kill(service.pid, "SIGTERM");
    expect(await service.exited).toBe(0);
    expect(children.filter(alive)).toEqual([]);
  });

  test("--foreground without --ready (daemonize-notify-passthrough.service as shipped): the program's own READY=1 reaches systemd from the main pid", async () => {
    const dir = tempDir();
    const { service, name, heard } = await underSystemd("daemonize-notify-passthrough.service", `${dir}/log`);
    expect(heard.at(-1)).toMatch(/^\d+ 'READY=1\\nSTATUS=serving on 127\.0\.0\.1:\d+'$/);
    // The main process, the program now, got systemd's NOTIFY_SOCKET as it was.
    const environ = await waitFor(() => {
      const env = readFileSync(`/proc/${service.pid}/environ`, "utf8");
      return env.includes("http") || readFileSync(`/proc/${service.pid}/cmdline`, "utf8").includes("http.server") ? env : undefined;
    }, "the program in the main process");
    expect(environ.split("\0")).toContain(`NOTIFY_SOCKET=@${name}`);
    process.kill(service.pid, "SIGTERM");
    await service.exited;
  });
});

describe.skipIf(missing("logrotate recipes", ["logrotate", "logrotate"]))("logrotate", () => {
  const config = (log: string, pidfile: string, body: (text: string) => string, example = "daemonize-example") =>
    body(readFileSync(`${ROOT}examples/logrotate/${example}`, "utf8"))
      .replace("/var/log/daemonize-example.log", log)
      .replaceAll("/run/daemonize-example.pid", pidfile)
      .replaceAll("/usr/local/bin/daemonize", BIN);
  const rotate = (dir: string, conf: string) => {
    writeFileSync(`${dir}/logrotate.conf`, conf);
    const r = Bun.spawnSync(["logrotate", "-f", "-s", `${dir}/state`, `${dir}/logrotate.conf`], { stderr: "pipe" });
    expect(r.stderr.toString()).toBe("");
    expect(r.exitCode).toBe(0);
  };

  test("copytruncate (the recipe as shipped): the daemon's next line lands at the start of the emptied log", async () => {
    const dir = tempDir();
    const { pidfile, log } = await startProbe(dir);
    rotate(dir, config(log, pidfile, (t) => t));
    expect(readFileSync(`${log}.1`, "utf8")).toStartWith("probe pid=");
    expect(readFileSync(log, "utf8")).toBe("");
    expect((await run(["signal", "-p", pidfile, "USR1"])).code).toBe(0);
    await waitFor(() => readFileSync(log, "utf8") !== "", "the next line");
    expect(readFileSync(log, "utf8")).toBe("signal 10\n");
  });

  test("postrotate with daemonize signal HUP reaches the daemon", async () => {
    const dir = tempDir();
    const { pidfile, log } = await startProbe(dir);
    const body = (t: string) =>
      t.replace(/^\tcopytruncate\n/m, "").replace(/^\t# nocopytruncate\n/m, "\tnocopytruncate\n").replace(/^\t# (postrotate|\t\/usr|endscript)/gm, "\t$1");
    const conf = config(log, pidfile, body);
    expect(conf).toContain(`${BIN} signal --pidfile ${pidfile} HUP`);
    rotate(dir, conf);
    // This probe does not reopen its log, so the HUP it reports lands in the rotated file.
    await waitFor(() => readFileSync(`${log}.1`, "utf8").includes("signal 01"), "the HUP");
    expect(existsSync(log)).toBe(false);
  });

  test("a supervised daemon (daemonize-example-supervised as shipped): reopen-logs, and the next line starts the new log", async () => {
    const dir = tempDir();
    const { pidfile, log } = await startProbe(dir, ["--supervise"]);
    const conf = config(log, pidfile, (t) => t, "daemonize-example-supervised");
    expect(conf).toContain(`${BIN} reopen-logs --pidfile ${pidfile}`);
    rotate(dir, conf);
    expect(readFileSync(`${log}.1`, "utf8")).toStartWith("probe pid=");
    // reopen-logs had the monitor make the new file before logrotate returned.
    expect(readFileSync(log, "utf8")).toBe("");
    expect((await run(["signal", "-p", pidfile, "USR1"])).code).toBe(0);
    await waitFor(() => readFileSync(log, "utf8") !== "", "the next line");
    expect(readFileSync(log, "utf8")).toBe("signal 10\n");
  });
});

describe.skipIf(!isRoot || missing("container entrypoint", ["unshare", "util-linux"]))("container entrypoint", () => {
  test("--foreground as PID 1 of a new PID namespace: the program is PID 1, dropped, and gets signals itself", async () => {
    const dir = tempDir();
    const log = `${dir}/out`;
    const outer = Bun.spawn(["unshare", "--pid", "--fork", "--mount-proc", BIN, "--foreground", "--user", "nobody", "--umask", "027", "-o", log, "--", PROBE], {
      stdio: ["ignore", "ignore", "pipe"],
    });
    track(outer.pid);
    await waitFor(() => existsSync(log) && readFileSync(log, "utf8").includes("probe pid=1 "), "the program to run as PID 1");
    const pid = await waitFor(() => Number(readFileSync(`/proc/${outer.pid}/task/${outer.pid}/children`, "utf8").trim()) || undefined, "PID 1's host pid");
    track(pid);
    expect(readlinkSync(`/proc/${pid}/exe`)).toBe(PROBE);
    expect(procStatus(pid).NSpid?.split(/\s+/).at(-1)).toBe("1");
    expect(procStatus(pid).Uid?.split(/\s+/)[0]).toBe("65534");
    expect(procStatus(pid).Umask).toBe("0027");
    process.kill(pid, "SIGUSR1");
    await waitFor(() => readFileSync(log, "utf8").includes("signal 10"), "the signal");
    process.kill(pid, "SIGKILL");
    expect(await outer.exited).not.toBe(0);
    expect(alive(pid)).toBe(false);
  });
});

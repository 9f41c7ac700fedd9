// --ready: start returns once the program is ready, by each protocol (notify,
// fd:N, tcp, file), and not before; a program that dies, reports an error or
// stays unready is stopped with everything it started, and nothing of it is
// left. Under --supervise every run is waited for; in the foreground the
// monitor tells systemd (played here by python3) once the program is ready.
import { afterEach, describe, expect, test } from "bun:test";
import { chmodSync, existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { dirname } from "node:path";
import { alive, BIN, cleanup, freePort, isRoot, kill, missing, NOBODY, procEnv, procStatus, readPid, run, tempDir, track, waitFor } from "./helpers";

const PY = existsSync("/usr/bin/python3") ? "/usr/bin/python3" : "python3";
const noPython = () => missing("--ready with python3", ["python3", "python3"]);
const noNotify = () => missing("--ready notify with systemd-notify", ["systemd-notify", "systemd"]);
const noSetsid = () => missing("--ready with a child in its own session", ["setsid", "util-linux"]);

/**
 * Every process a test starts carries its directory in this variable: what the
 * program forked, whatever its group or session, is found by it, so the test can
 * tell that nothing is left and the cleanup can end whatever is.
 */
const MARK = "DAEMONIZE_READY_TEST";
const used = new Set<string>();

function ours(dir: string): number[] {
  const out: number[] = [];
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      if (procEnv(Number(entry)).get(MARK) === dir && alive(Number(entry))) out.push(Number(entry));
    } catch {}
  }
  return out;
}

afterEach(async () => {
  // A monitor that is stopped, not killed, removes its notify socket.
  for (const dir of used)
    for (const file of readdirSync(dir).filter((f) => f.endsWith(".pid")))
      if (ours(dir).length > 0) Bun.spawnSync([BIN, "stop", "--timeout", "5", "-p", `${dir}/${file}`], { stdout: "ignore", stderr: "ignore" });
  for (const dir of used)
    for (let round = 0; round < 20; round++) {
      const left = ours(dir);
      if (left.length === 0) break;
      // Again until none is left: a monitor killed after its run may have started another.
      for (const pid of left) await kill(track(pid));
    }
  used.clear();
  await cleanup();
});

function dirFor(): string {
  const dir = tempDir();
  used.add(dir);
  return dir;
}

const envFor = (dir: string, extra: Record<string, string> = {}) => ({ PATH: process.env.PATH ?? "/usr/bin:/bin", [MARK]: dir, ...extra });

/** `daemonize OPTIONS -p DIR/p.pid -- /bin/sh -c SCRIPT`, timed. */
async function start(dir: string, options: string[], script: string) {
  const pidfile = `${dir}/p.pid`;
  const t0 = performance.now();
  const r = await run([...options, "-p", pidfile, "--", "/bin/sh", "-c", script], { env: envFor(dir) });
  return { ...r, took: performance.now() - t0, pidfile };
}

/** The pid a program wrote to a file. */
const pidIn = (path: string) => Number(readFileSync(path, "utf8").trim());

/** A ready start: after the program's readiness, not before; the pidfile names it, alive. */
function judgeReady(s: Awaited<ReturnType<typeof start>>, me: string, told?: string, delay = 300) {
  expect(s.stderr).toBe("");
  expect(s.code).toBe(0);
  expect(s.took).toBeGreaterThanOrEqual(delay);
  if (told) expect(existsSync(told)).toBe(true);
  const pid = track(readPid(s.pidfile));
  expect(pid).toBe(pidIn(me));
  expect(alive(pid)).toBe(true);
  return pid;
}

/** A failed start: no pidfile, no process of the test, and the launcher's notify socket gone with its directory. */
function judgeNothingLeft(dir: string, pidfile: string, notify: boolean) {
  expect(existsSync(pidfile)).toBe(false);
  expect(ours(dir)).toEqual([]);
  for (const file of ["child", "loner"]) if (existsSync(`${dir}/${file}`)) expect(alive(pidIn(`${dir}/${file}`))).toBe(false);
  if (notify) {
    const socket = readFileSync(`${dir}/sock`, "utf8").trim();
    expect(socket).toMatch(/^\/(run|tmp)\/daemonize-notify-[^/]+\/notify$/);
    expect(existsSync(socket)).toBe(false);
    expect(existsSync(dirname(socket))).toBe(false);
  }
}

/** A supervised daemon stopped as a user would: its monitor's notify socket goes with it. */
async function stopSupervised(dir: string, pidfile: string, program: number) {
  const socket = procEnv(program).get("NOTIFY_SOCKET") ?? "";
  expect(socket).toMatch(/^\/(run|tmp)\/daemonize-notify-[^/]+\/notify$/);
  expect(existsSync(socket)).toBe(true);
  const r = await run(["stop", "-p", pidfile]);
  expect(r.code).toBe(0);
  expect(ours(dir)).toEqual([]);
  expect(existsSync(dirname(socket))).toBe(false);
}

/** `daemonize status --json`, synchronously, so waitFor can poll it. */
function status(pidfile: string): Record<string, unknown> {
  const r = Bun.spawnSync([BIN, "status", "--json", "-p", pidfile], { stdout: "pipe", stderr: "pipe" });
  return JSON.parse(r.stdout.toString());
}

/** Lines of a child's stdout, one at a time. */
function lines(stream: ReadableStream<Uint8Array>) {
  const reader = stream.getReader();
  const decoder = new TextDecoder();
  let buffered = "";
  return async (): Promise<string> => {
    while (!buffered.includes("\n")) {
      const { value, done } = await reader.read();
      if (done) throw new Error(`the output ended with ${JSON.stringify(buffered)}`);
      buffered += decoder.decode(value, { stream: true });
    }
    const i = buffered.indexOf("\n");
    const line = buffered.slice(0, i);
    buffered = buffered.slice(i + 1);
    return line;
  };
}

/** sd_notify by hand: READY=1 from python's own socket, the way a program without libsystemd does it. */
const PY_NOTIFY = `
import os, socket, sys, time
open(sys.argv[1], "w").write(str(os.getpid()))
time.sleep(0.3)
open(sys.argv[2], "w").close()
name = os.environ["NOTIFY_SOCKET"]
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.sendto(b"READY=1", "\\0" + name[1:] if name.startswith("@") else name)
time.sleep(1000)
`;

/**
 * Someone else's READY=1 to the daemon's socket, then BARRIER=1 with a pipe's
 * write end, as systemd-notify does: the pipe's EOF says the receiver has read
 * both. Prints whether it did.
 */
const PY_STRANGER = `
import os, select, socket, struct, sys
name = sys.argv[1]
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
address = "\\0" + name[1:] if name.startswith("@") else name
s.sendto(b"READY=1\\nSTATUS=not the program", address)
r, w = os.pipe()
s.sendmsg([b"BARRIER=1"], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, struct.pack("i", w))], 0, address)
os.close(w)
print("read" if select.select([r], [], [], 10)[0] else "unread", flush=True)
`;

/**
 * systemd's side of Type=notify: an abstract socket with SO_PASSCRED. Prints the
 * first datagram with its sender's credentials; once its stdin closes, prints
 * whatever else had come.
 */
const PY_SYSTEMD = `
import json, socket, struct, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
s.bind("\\0" + sys.argv[1])
print("bound", flush=True)
def heard():
    msg, anc, _, _ = s.recvmsg(4096, socket.CMSG_SPACE(12))
    pid, uid, gid = next(struct.unpack("3i", d) for l, t, d in anc if l == socket.SOL_SOCKET and t == socket.SCM_CREDENTIALS)
    return {"text": msg.decode(), "pid": pid, "uid": uid, "gid": gid}
s.settimeout(15)
print(json.dumps(heard()), flush=True)
sys.stdin.read()
s.setblocking(False)
more = []
while True:
    try:
        more.append(heard())
    except BlockingIOError:
        break
print(json.dumps(more), flush=True)
`;

describe("--ready notify", () => {
  test.skipIf(noNotify())("systemd-notify --ready: start returns once the program is ready, not before; the socket is gone after", async () => {
    const dir = dirFor();
    const s = await start(dir, ["--ready", "notify"], `echo $$ > ${dir}/me; echo "$NOTIFY_SOCKET" > ${dir}/sock; sleep 0.3; touch ${dir}/told; systemd-notify --ready; exec sleep 1000`);
    judgeReady(s, `${dir}/me`, `${dir}/told`);
    const socket = readFileSync(`${dir}/sock`, "utf8").trim();
    expect(socket).toMatch(/^\/(run|tmp)\/daemonize-notify-[^/]+\/notify$/);
    expect(existsSync(dirname(socket))).toBe(false);
  });

  test.skipIf(noPython())("READY=1 sent by the program's own socket code (python3)", async () => {
    const dir = dirFor();
    const pidfile = `${dir}/p.pid`;
    const t0 = performance.now();
    const r = await run(["--ready", "notify", "-p", pidfile, "--", PY, "-c", PY_NOTIFY, `${dir}/me`, `${dir}/told`], { env: envFor(dir) });
    judgeReady({ ...r, took: performance.now() - t0, pidfile }, `${dir}/me`, `${dir}/told`);
  });

  test("exits before it is ready: prompt exit 69 with its exit code; the program's group, pidfile and socket gone", async () => {
    const dir = dirFor();
    const s = await start(dir, ["--ready", "notify", "--ready-timeout", "20s"], `echo "$NOTIFY_SOCKET" > ${dir}/sock; sleep 1000 & echo $! > ${dir}/child; sleep 0.1; exit 7`);
    expect(s.stderr).toBe("daemonize: error: /bin/sh exited with code 7 before it was ready\n");
    expect(s.code).toBe(69);
    expect(s.took).toBeLessThan(5000);
    judgeNothingLeft(dir, s.pidfile, true);
  });

  test("never ready: exit 75 after --ready-timeout, its tree stopped, nothing left", async () => {
    const dir = dirFor();
    const s = await start(dir, ["--ready", "notify", "--ready-timeout", "500ms"], `echo "$NOTIFY_SOCKET" > ${dir}/sock; sleep 1000 & echo $! > ${dir}/child; exec sleep 1000`);
    expect(s.stderr).toBe("daemonize: error: /bin/sh was not ready within --ready-timeout; it was stopped\n");
    expect(s.code).toBe(75);
    expect(s.took).toBeGreaterThanOrEqual(500);
    expect(s.took).toBeLessThan(5000);
    judgeNothingLeft(dir, s.pidfile, true);
  });

  test.skipIf(noNotify())("EXTEND_TIMEOUT_USEC= moves the deadline: ready after 1 s with --ready-timeout 500ms", async () => {
    const dir = dirFor();
    const s = await start(
      dir,
      ["--ready", "notify", "--ready-timeout", "500ms"],
      `echo $$ > ${dir}/me; systemd-notify EXTEND_TIMEOUT_USEC=3000000; sleep 1; touch ${dir}/told; systemd-notify --ready; exec sleep 1000`,
    );
    judgeReady(s, `${dir}/me`, `${dir}/told`, 1000);
  });

  test.skipIf(noNotify())("ERRNO=28: exit 69 naming the error, the program stopped, nothing left", async () => {
    const dir = dirFor();
    const s = await start(dir, ["--ready", "notify"], `echo "$NOTIFY_SOCKET" > ${dir}/sock; sleep 1000 & echo $! > ${dir}/child; systemd-notify ERRNO=28; exec sleep 1000`);
    expect(s.stderr).toBe("daemonize: error: /bin/sh reported ERRNO=28 (No space left on device); it was stopped\n");
    expect(s.code).toBe(69);
    judgeNothingLeft(dir, s.pidfile, true);
  });

  test.skipIf(noNotify())("STATUS= is shown with --verbose, each one", async () => {
    const dir = dirFor();
    const s = await start(
      dir,
      ["--ready", "notify", "--verbose"],
      `echo $$ > ${dir}/me; systemd-notify --status="warming up"; sleep 0.3; systemd-notify --status="serving 3 ports" --ready; exec sleep 1000`,
    );
    expect(s.code).toBe(0);
    const pid = track(readPid(s.pidfile));
    expect(s.stderr.split("\n").filter((l) => l.includes("status:"))).toEqual(["daemonize: status: warming up", "daemonize: status: serving 3 ports"]);
    expect(s.stderr).toContain(`started /bin/sh as pid ${pid}`);
  });

  test.skipIf(noPython() || noNotify())("READY=1 from a process that is not the program nor its descendant is not heard", async () => {
    const dir = dirFor();
    const pidfile = `${dir}/p.pid`;
    const script = [
      `echo $$ > ${dir}/me`,
      `while [ ! -e ${dir}/gate1 ]; do sleep 0.01; done`,
      // systemd-notify waits until the launcher has read this: it was still listening.
      `systemd-notify --status=heard && touch ${dir}/heard`,
      `while [ ! -e ${dir}/gate2 ]; do sleep 0.01; done`,
      `touch ${dir}/told; systemd-notify --ready; exec sleep 1000`,
    ].join("\n");
    const launcher = Bun.spawn([BIN, "--ready", "notify", "--ready-timeout", "20s", "-v", "-p", pidfile, "--", "/bin/sh", "-c", script], {
      env: envFor(dir),
      stdin: "ignore",
      stdout: "pipe",
      stderr: "pipe",
    });
    track(launcher.pid);
    const stderr = new Response(launcher.stderr).text();
    const daemon = await waitFor(() => existsSync(`${dir}/me`) && pidIn(`${dir}/me`), "the program's pid");
    const socket = await waitFor(() => procEnv(daemon).get("NOTIFY_SOCKET"), "the program's NOTIFY_SOCKET");
    const stranger = Bun.spawn([PY, "-c", PY_STRANGER, socket], { stdout: "pipe", stderr: "inherit" });
    track(stranger.pid);
    expect(await new Response(stranger.stdout).text()).toBe("read\n");
    expect(await stranger.exited).toBe(0);
    // The stranger's READY=1 has been read; the launcher must go on listening.
    writeFileSync(`${dir}/gate1`, "");
    await waitFor(() => existsSync(`${dir}/heard`), "the program's STATUS= to be read");
    expect(launcher.exitCode).toBeNull();
    expect(existsSync(pidfile)).toBe(true);
    writeFileSync(`${dir}/gate2`, "");
    expect(await launcher.exited).toBe(0);
    expect(existsSync(`${dir}/told`)).toBe(true);
    expect(track(readPid(pidfile))).toBe(daemon);
    const said = await stderr;
    expect(said).toContain("daemonize: status: heard\n");
    expect(said).not.toContain("not the program");
  });

  test.skipIf(!isRoot || noNotify())("--user nobody: the dropped program reaches the socket; its readiness is heard", async () => {
    const dir = dirFor();
    mkdirSync(`${dir}/w`);
    chmodSync(`${dir}/w`, 0o777);
    const s = await start(
      dir,
      ["--ready", "notify", "--user", "nobody"],
      `echo $$ > ${dir}/w/me; echo "$NOTIFY_SOCKET" > ${dir}/w/sock; sleep 0.3; touch ${dir}/w/told; systemd-notify --ready; exec sleep 1000`,
    );
    const pid = judgeReady(s, `${dir}/w/me`, `${dir}/w/told`);
    expect(procStatus(pid).Uid?.split(/\s+/).map(Number)).toEqual(Array(4).fill(NOBODY.uid));
    expect(existsSync(dirname(readFileSync(`${dir}/w/sock`, "utf8").trim()))).toBe(false);
  });
});

describe("--ready fd:N", () => {
  test("a number past the open-file limit: a usage error that says so, nothing left", async () => {
    const dir = tempDir();
    // Bun raises the soft limit to the hard one, so the hard one is what the daemon gets.
    const r = Bun.spawnSync(["sh", "-c", `ulimit -n 1024 && exec "$@"`, "sh", BIN, "--ready", "fd:5000", "-p", `${dir}/p.pid`, "--", "/bin/sleep", "1000"], { stderr: "pipe" });
    expect([r.exitCode, r.stderr.toString()]).toEqual([64, "daemonize: error: --ready fd:5000: fd 5000 is above the daemon's open-file limit\n"]);
    expect(readdirSync(dir)).toEqual([]);
  });

  test("a newline on fd 3: start returns once it is written, not before", async () => {
    const dir = dirFor();
    const s = await start(dir, ["--ready", "fd:3"], `echo $$ > ${dir}/me; sleep 0.3; touch ${dir}/told; echo >&3; exec sleep 1000`);
    judgeReady(s, `${dir}/me`, `${dir}/told`);
  });

  test("another fd number, the newline after a partial line", async () => {
    const dir = dirFor();
    const s = await start(dir, ["--ready", "fd:7"], `echo $$ > ${dir}/me; printf warming >&7; sleep 0.3; touch ${dir}/told; echo " up" >&7; exec sleep 1000`);
    judgeReady(s, `${dir}/me`, `${dir}/told`);
  });

  test("killed by a signal before it is ready: prompt exit 69 naming the signal, nothing left", async () => {
    const dir = dirFor();
    // The child keeps fd 3 open, so what the launcher sees is the death, not the fd's closing.
    const s = await start(dir, ["--ready", "fd:3", "--ready-timeout", "20s"], `sleep 1000 & echo $! > ${dir}/child; sleep 0.1; kill -KILL $$`);
    expect(s.stderr).toBe("daemonize: error: /bin/sh was killed by signal 9 before it was ready\n");
    expect(s.code).toBe(69);
    expect(s.took).toBeLessThan(5000);
    judgeNothingLeft(dir, s.pidfile, false);
  });

  test("a program that exits at once is reported as exited, every time, not as having closed its fd", async () => {
    // Its fd closes as it dies: the exit, seen a moment later, is still what happened.
    const dir = dirFor();
    // One start after another: how the two are seen differs from one to the next, so many are made.
    const said = new Map<string, number>();
    for (let i = 0; i < 60; i++) {
      const r = await run(["--ready", "fd:3", "-p", `${dir}/p.pid`, "--", "/bin/sh", "-c", "exit 7"], { env: envFor(dir) });
      said.set(`${r.code} ${r.stderr}`, (said.get(`${r.code} ${r.stderr}`) ?? 0) + 1);
    }
    expect([...said]).toEqual([["69 daemonize: error: /bin/sh exited with code 7 before it was ready\n", 60]]);
    expect(ours(dir)).toEqual([]);
  });

  test("closes the fd without a newline: exit 69, stopped, nothing left", async () => {
    const dir = dirFor();
    const s = await start(dir, ["--ready", "fd:3", "--ready-timeout", "20s"], `sleep 1000 3>&- & echo $! > ${dir}/child; printf no-newline >&3; exec 3>&-; exec sleep 1000`);
    expect(s.stderr).toBe("daemonize: error: /bin/sh closed its readiness fd without writing a newline; it was stopped\n");
    expect(s.code).toBe(69);
    expect(s.took).toBeLessThan(5000);
    judgeNothingLeft(dir, s.pidfile, false);
  });

  test("never ready: exit 75 after --ready-timeout, its tree stopped, nothing left", async () => {
    const dir = dirFor();
    const s = await start(dir, ["--ready", "fd:3", "--ready-timeout", "500ms"], `sleep 1000 & echo $! > ${dir}/child; exec sleep 1000`);
    expect(s.stderr).toBe("daemonize: error: /bin/sh was not ready within --ready-timeout; it was stopped\n");
    expect(s.code).toBe(75);
    expect(s.took).toBeGreaterThanOrEqual(500);
    expect(s.took).toBeLessThan(5000);
    judgeNothingLeft(dir, s.pidfile, false);
  });

  test.skipIf(!isRoot)("--user nobody: the dropped program writes its newline", async () => {
    const dir = dirFor();
    mkdirSync(`${dir}/w`);
    chmodSync(`${dir}/w`, 0o777);
    const s = await start(dir, ["--ready", "fd:3", "--user", "nobody"], `echo $$ > ${dir}/w/me; sleep 0.3; touch ${dir}/w/told; echo >&3; exec sleep 1000`);
    const pid = judgeReady(s, `${dir}/w/me`, `${dir}/w/told`);
    expect(procStatus(pid).Uid?.split(/\s+/).map(Number)).toEqual(Array(4).fill(NOBODY.uid));
  });
});

describe("--ready tcp", () => {
  test.skipIf(noPython())("python3 -m http.server: start returns once it accepts connections", async () => {
    const dir = dirFor();
    const port = freePort();
    const s = await start(dir, ["--ready", `tcp:127.0.0.1:${port}`], `echo $$ > ${dir}/me; sleep 0.3; exec ${PY} -m http.server --bind 127.0.0.1 --directory ${dir} ${port}`);
    judgeReady(s, `${dir}/me`);
    const res = await fetch(`http://127.0.0.1:${port}/me`);
    expect(res.status).toBe(200);
    expect(Number((await res.text()).trim())).toBe(readPid(s.pidfile));
  });

  test("a port alone means 127.0.0.1", async () => {
    const dir = dirFor();
    const port = freePort();
    // The listener is the test's, opened only once the program runs: the launcher must still be probing.
    let returned = false;
    const s = start(dir, ["--ready", `tcp:${port}`], `echo $$ > ${dir}/me; exec sleep 1000`).then((r) => ((returned = true), r));
    await waitFor(() => existsSync(`${dir}/me`), "the program");
    expect(returned).toBe(false);
    const server = Bun.listen({ hostname: "127.0.0.1", port, socket: { data() {} } });
    try {
      const r = await s;
      expect(r.stderr).toBe("");
      expect(r.code).toBe(0);
      expect(track(readPid(r.pidfile))).toBe(pidIn(`${dir}/me`));
    } finally {
      server.stop(true);
    }
  });

  test("exits before it is ready: prompt exit 69 with its exit code, nothing left", async () => {
    const dir = dirFor();
    const s = await start(dir, ["--ready", `tcp:127.0.0.1:${freePort()}`, "--ready-timeout", "20s"], `sleep 1000 & echo $! > ${dir}/child; sleep 0.1; exit 3`);
    expect(s.stderr).toBe("daemonize: error: /bin/sh exited with code 3 before it was ready\n");
    expect(s.code).toBe(69);
    expect(s.took).toBeLessThan(5000);
    judgeNothingLeft(dir, s.pidfile, false);
  });

  test("never listens: exit 75 after --ready-timeout, its tree stopped, nothing left", async () => {
    const dir = dirFor();
    const s = await start(dir, ["--ready", `tcp:127.0.0.1:${freePort()}`, "--ready-timeout", "500ms"], `sleep 1000 & echo $! > ${dir}/child; exec sleep 1000`);
    expect(s.stderr).toBe("daemonize: error: /bin/sh was not ready within --ready-timeout; it was stopped\n");
    expect(s.code).toBe(75);
    expect(s.took).toBeGreaterThanOrEqual(500);
    expect(s.took).toBeLessThan(5000);
    judgeNothingLeft(dir, s.pidfile, false);
  });
});

describe("a --ready it cannot use", () => {
  // Checked before anything is stopped: restart must not take down a daemon it cannot replace.
  test("restart leaves the running daemon and its pidfile alone", async () => {
    const dir = tempDir();
    expect((await run(["-p", `${dir}/p.pid`, "--", "/bin/sleep", "1000"])).code).toBe(0);
    const pid = track(readPid(`${dir}/p.pid`));
    const r = await run(["restart", "-p", `${dir}/p.pid`, "--ready", "tcp:[1:2]:80", "--", "/bin/sleep", "1000"]);
    expect([r.code, r.stderr]).toEqual([64, "daemonize: error: --ready tcp:[1:2]:80: not an address, port, fd or path it can use\n"]);
    expect([alive(pid), readPid(`${dir}/p.pid`)]).toEqual([true, pid]);
  });
});

describe("--ready file", () => {
  test("start returns once the file exists, not before", async () => {
    const dir = dirFor();
    const s = await start(dir, ["--ready", `file:${dir}/ready`], `echo $$ > ${dir}/me; sleep 0.3; touch ${dir}/ready; exec sleep 1000`);
    judgeReady(s, `${dir}/me`, `${dir}/ready`);
  });

  test("killed by SIGTERM before it is ready: prompt exit 69 naming the signal, nothing left", async () => {
    const dir = dirFor();
    const s = await start(dir, ["--ready", `file:${dir}/ready`, "--ready-timeout", "20s"], `sleep 1000 & echo $! > ${dir}/child; sleep 0.1; kill -TERM $$`);
    expect(s.stderr).toBe("daemonize: error: /bin/sh was killed by signal 15 before it was ready\n");
    expect(s.code).toBe(69);
    expect(s.took).toBeLessThan(5000);
    judgeNothingLeft(dir, s.pidfile, false);
  });

  test("never ready: exit 75 after --ready-timeout, its tree stopped, nothing left", async () => {
    const dir = dirFor();
    const s = await start(dir, ["--ready", `file:${dir}/ready`, "--ready-timeout", "500ms"], `sleep 1000 & echo $! > ${dir}/child; exec sleep 1000`);
    expect(s.stderr).toBe("daemonize: error: /bin/sh was not ready within --ready-timeout; it was stopped\n");
    expect(s.code).toBe(75);
    expect(s.took).toBeGreaterThanOrEqual(500);
    expect(s.took).toBeLessThan(5000);
    judgeNothingLeft(dir, s.pidfile, false);
  });
});

describe.skipIf(noSetsid())("--ready: a child in its own session and process group is stopped too", () => {
  // The program's tree, not only its process group: a worker that called setsid() is still the program's.
  test("not ready in time", async () => {
    const dir = dirFor();
    const s = await start(
      dir,
      ["--ready", "notify", "--ready-timeout", "500ms"],
      `echo "$NOTIFY_SOCKET" > ${dir}/sock; sleep 1000 & echo $! > ${dir}/child; setsid sleep 1000 & echo $! > ${dir}/loner; exec sleep 1000`,
    );
    expect(s.stderr).toBe("daemonize: error: /bin/sh was not ready within --ready-timeout; it was stopped\n");
    expect(s.code).toBe(75);
    judgeNothingLeft(dir, s.pidfile, true);
  });

  test("exited before it was ready", async () => {
    const dir = dirFor();
    const s = await start(
      dir,
      ["--ready", `file:${dir}/ready`, "--ready-timeout", "20s"],
      `sleep 1000 & echo $! > ${dir}/child; setsid sleep 1000 & echo $! > ${dir}/loner; sleep 0.2; exit 5`,
    );
    expect(s.stderr).toBe("daemonize: error: /bin/sh exited with code 5 before it was ready\n");
    expect(s.code).toBe(69);
    judgeNothingLeft(dir, s.pidfile, false);
  });
});

describe("--supervise --ready", () => {
  /** A run counter in DIR/runs; run N writes its pid to DIR/run.N. */
  const counted = (dir: string) => `n=$(($(cat ${dir}/runs 2>/dev/null || echo 0) + 1)); echo $n > ${dir}/runs; echo $$ > ${dir}/run.$n`;
  const options = (dir: string, ready: string, more: string[] = []) => ["--supervise", "--ready", ready, "-l", `${dir}/log`, ...more];

  test.skipIf(noNotify())("notify: the first start returns once the program is ready; status says running, with its STATUS= and MAINPID=", async () => {
    const dir = dirFor();
    const s = await start(
      dir,
      options(dir, "notify"),
      `${counted(dir)}; sleep 0.3; touch ${dir}/told; systemd-notify --ready --status="serving" --pid=$$; exec sleep 1000`,
    );
    expect(s.stderr).toBe("");
    expect(s.code).toBe(0);
    expect(s.took).toBeGreaterThanOrEqual(300);
    expect(existsSync(`${dir}/told`)).toBe(true);
    const run1 = pidIn(`${dir}/run.1`);
    const json = status(s.pidfile);
    expect(json).toMatchObject({ state: "running", child: run1, restarts: 0, notifyStatus: "serving", mainPid: run1 });
    expect(json.pid).toBe(readPid(s.pidfile));
    await stopSupervised(dir, s.pidfile, run1);
  });

  test("fd:3: the first start returns once the program is ready; status says running", async () => {
    const dir = dirFor();
    const s = await start(dir, options(dir, "fd:3"), `${counted(dir)}; sleep 0.3; touch ${dir}/told; echo >&3; exec sleep 1000`);
    expect(s.stderr).toBe("");
    expect(s.code).toBe(0);
    expect(s.took).toBeGreaterThanOrEqual(300);
    expect(existsSync(`${dir}/told`)).toBe(true);
    expect(status(s.pidfile)).toMatchObject({ state: "running", child: pidIn(`${dir}/run.1`), restarts: 0 });
  });

  test("fd:3: a first run that exits before it is ready fails the start with 69, the monitor gone", async () => {
    const dir = dirFor();
    const s = await start(dir, options(dir, "fd:3", ["--ready-timeout", "20s"]), `sleep 1000 & echo $! > ${dir}/child; sleep 0.1; exit 4`);
    expect(s.stderr).toBe("daemonize: error: /bin/sh exited with code 4 before it was ready\n");
    expect(s.code).toBe(69);
    expect(s.took).toBeLessThan(5000);
    await waitFor(() => ours(dir).length === 0, "the monitor and its run to be gone");
    judgeNothingLeft(dir, s.pidfile, false);
  });

  test.skipIf(noNotify())("notify: a later run is starting until it is ready", async () => {
    const dir = dirFor();
    const script = [
      counted(dir),
      `if [ $n -gt 1 ]; then systemd-notify --status="run $n waiting"; while [ ! -e ${dir}/gate ]; do sleep 0.01; done; fi`,
      `systemd-notify --ready --status="run $n ready"`,
      `if [ $n = 1 ]; then exit 3; fi`,
      "exec sleep 1000",
    ].join("\n");
    const s = await start(dir, options(dir, "notify", ["--restart", "always", "--restart-delay", "0"]), script);
    expect(s.code).toBe(0);
    // Heard from the second run, which is not ready until the gate opens.
    const waiting = await waitFor(() => {
      const json = status(s.pidfile);
      return json.notifyStatus === "run 2 waiting" && json;
    }, "the second run's STATUS=");
    expect(waiting).toMatchObject({ state: "starting", child: pidIn(`${dir}/run.2`), restarts: 1, lastExit: { code: 3 } });
    writeFileSync(`${dir}/gate`, "");
    const ready = await waitFor(() => {
      const json = status(s.pidfile);
      return json.state === "running" && json;
    }, "the second run to be running");
    expect(ready).toMatchObject({ child: pidIn(`${dir}/run.2`), restarts: 1, notifyStatus: "run 2 ready" });
    await stopSupervised(dir, s.pidfile, pidIn(`${dir}/run.2`));
  });

  test("fd:3: a later run is starting until it is ready", async () => {
    const dir = dirFor();
    const script = [
      counted(dir),
      `if [ $n -gt 1 ]; then while [ ! -e ${dir}/gate ]; do sleep 0.01; done; fi`,
      "echo >&3",
      `if [ $n = 1 ]; then exit 3; fi`,
      "exec sleep 1000",
    ].join("\n");
    const s = await start(dir, options(dir, "fd:3", ["--restart", "always", "--restart-delay", "0"]), script);
    expect(s.code).toBe(0);
    const starting = await waitFor(() => {
      const json = status(s.pidfile);
      return existsSync(`${dir}/run.2`) && json.child === pidIn(`${dir}/run.2`) && json;
    }, "the second run");
    expect(starting).toMatchObject({ state: "starting", restarts: 1, lastExit: { code: 3 } });
    writeFileSync(`${dir}/gate`, "");
    await waitFor(() => status(s.pidfile).state === "running", "the second run to be running");
    expect(status(s.pidfile)).toMatchObject({ child: pidIn(`${dir}/run.2`), restarts: 1 });
  });

  test("fd:3: a run never ready is stopped, with its tree, and counts as failed: restarted", async () => {
    const dir = dirFor();
    const script = [
      counted(dir),
      `if [ $n = 1 ]; then echo >&3; sleep 0.2; exit 1; fi`,
      `sleep 1000 & echo $! > ${dir}/child.$n`,
      `setsid sleep 1000 & echo $! > ${dir}/loner.$n`,
      "exec sleep 1000",
    ].join("\n");
    const s = await start(dir, options(dir, "fd:3", ["--restart", "always", "--restart-delay", "0", "--ready-timeout", "500ms"]), script);
    expect(s.code).toBe(0);
    await waitFor(() => existsSync(`${dir}/run.3`), "a third run", 10_000);
    expect(Number(status(s.pidfile).restarts)).toBeGreaterThanOrEqual(2);
    for (const file of ["run.2", "child.2", "loner.2"]) await waitFor(() => !alive(pidIn(`${dir}/${file}`)), `${file} to be stopped`);
    expect(readFileSync(`${dir}/log`, "utf8")).toContain("/bin/sh not ready in time");
  });

  test.skipIf(noNotify())("notify, --max-restarts 1: a run never ready is the last failure; the monitor gives up, nothing left", async () => {
    const dir = dirFor();
    const script = [counted(dir), `echo "$NOTIFY_SOCKET" > ${dir}/sock`, `if [ $n = 1 ]; then systemd-notify --ready; sleep 0.2; exit 1; fi`, `sleep 1000 & echo $! > ${dir}/child`, "exec sleep 1000"].join("\n");
    const s = await start(
      dir,
      options(dir, "notify", ["--restart", "always", "--restart-delay", "0", "--max-restarts", "1", "--ready-timeout", "500ms"]),
      script,
    );
    expect(s.code).toBe(0);
    const failed = await waitFor(() => {
      const json = status(s.pidfile);
      return json.state === "failed" && json;
    }, "the monitor to give up");
    expect(failed).toMatchObject({ restarts: 1, lastExit: { signal: 15 } });
    await waitFor(() => ours(dir).length === 0, "every process to be gone");
    expect(alive(pidIn(`${dir}/child`))).toBe(false);
    expect(existsSync(dirname(readFileSync(`${dir}/sock`, "utf8").trim()))).toBe(false);
    expect(readFileSync(`${dir}/runs`, "utf8").trim()).toBe("2");
    expect(readFileSync(`${dir}/log`, "utf8")).toContain("/bin/sh not ready in time");
  });
});

describe.skipIf(!isRoot || noPython())("under systemd (NOTIFY_SOCKET given)", () => {
  test.skipIf(noNotify())("--foreground --supervise --ready notify: systemd hears READY=1 with MAINPID= of the daemonize process, from it, once", async () => {
    const dir = dirFor();
    const name = `daemonize-ready-test-${process.pid}-${Math.random().toString(36).slice(2)}`;
    const systemd = Bun.spawn([PY, "-c", PY_SYSTEMD, name], { stdin: "pipe", stdout: "pipe", stderr: "inherit" });
    track(systemd.pid);
    const heard = lines(systemd.stdout);
    expect(await heard()).toBe("bound");
    const script = [
      `echo $$ > ${dir}/me; sleep 0.3; touch ${dir}/told; systemd-notify --ready`,
      `while [ ! -e ${dir}/gate ]; do sleep 0.01; done`,
      // Ready again, then a later datagram: once status shows it, the second READY=1 was handled.
      `systemd-notify --ready; systemd-notify --status=after`,
      "exec sleep 1000",
    ].join("\n");
    const service = Bun.spawn([BIN, "--foreground", "--supervise", "--ready", "notify", "-p", `${dir}/p.pid`, "--", "/bin/sh", "-c", script], {
      env: envFor(dir, { NOTIFY_SOCKET: `@${name}` }),
      stdin: "ignore",
      stdout: "ignore",
      stderr: "pipe",
    });
    track(service.pid);
    const said = new Response(service.stderr).text();
    const first = JSON.parse(await heard());
    expect(existsSync(`${dir}/told`)).toBe(true);
    expect(first).toEqual({ text: `READY=1\nMAINPID=${service.pid}`, pid: service.pid, uid: 0, gid: 0 });
    // The program got a socket of the monitor's, not systemd's.
    const socket = procEnv(pidIn(`${dir}/me`)).get("NOTIFY_SOCKET") ?? "";
    expect(socket).toMatch(/^\/(run|tmp)\/daemonize-notify-[^/]+\/notify$/);
    expect(readPid(`${dir}/p.pid`)).toBe(service.pid);
    writeFileSync(`${dir}/gate`, "");
    await waitFor(() => status(`${dir}/p.pid`).notifyStatus === "after", "the program's later STATUS=");
    systemd.stdin.end();
    expect(JSON.parse(await heard())).toEqual([]);
    process.kill(service.pid, "SIGTERM");
    expect(await service.exited).toBe(0);
    expect(await said).not.toContain("cannot tell");
    await waitFor(() => ours(dir).length === 0, "the program to be gone");
    expect(existsSync(dirname(socket))).toBe(false);
  });

  for (const supervise of [false, true])
    test(`--foreground${supervise ? " --supervise" : ""} without --ready: NOTIFY_SOCKET reaches the program untouched`, async () => {
      const dir = dirFor();
      const given = `@daemonize-ready-test-${Math.random().toString(36).slice(2)}`;
      const service = Bun.spawn(
        [BIN, "--foreground", ...(supervise ? ["--supervise"] : []), "--", "/bin/sh", "-c", `echo $$ > ${dir}/me; printf %s "$NOTIFY_SOCKET" > ${dir}/ns.tmp; mv ${dir}/ns.tmp ${dir}/ns; exec sleep 1000`],
        { env: envFor(dir, { NOTIFY_SOCKET: given }), stdin: "ignore", stdout: "ignore", stderr: "inherit" },
      );
      track(service.pid);
      await waitFor(() => existsSync(`${dir}/ns`), "the program");
      expect(readFileSync(`${dir}/ns`, "utf8")).toBe(given);
      const program = pidIn(`${dir}/me`);
      if (!supervise) expect(program).toBe(service.pid);
      await waitFor(() => procEnv(program).get("NOTIFY_SOCKET") === given, "the program's environment");
    });
});

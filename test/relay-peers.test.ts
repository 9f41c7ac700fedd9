// The log relay against the tools it meets in production: logrotate renaming
// the log under a program that never pauses, a disk that fills up, and a real
// rsyslogd. The relay's own behaviour is in relay.test.ts.
import { afterEach, describe, expect, test } from "bun:test";
import { closeSync, constants, existsSync, mkdirSync, openSync, readFileSync, rmSync, statfsSync, statSync, writeFileSync, writeSync } from "node:fs";
import { alive, BIN, cleanup, isRoot, kill, missing, procStat, procStatus, readPid, run, tempDir, track, waitFor } from "./helpers";

afterEach(cleanup);

const read = (path: string) => (existsSync(path) ? readFileSync(path, "utf8") : "");
const size = (path: string) => (existsSync(path) ? statSync(path).size : 0);

/** "" when `text` is exactly line(1) … line(n), each whole and once, in order; else where it first goes wrong. */
function sequence(text: string, line: (i: number) => string): { count: number; problem: string } {
  if (text !== "" && !text.endsWith("\n")) return { count: 0, problem: `ends inside a line: ${JSON.stringify(text.slice(-40))}` };
  const lines = text === "" ? [] : text.slice(0, -1).split("\n");
  for (let i = 0; i < lines.length; i++)
    if (lines[i] !== line(i + 1)) return { count: i, problem: `line ${i + 1} is ${JSON.stringify(lines[i])}, not ${JSON.stringify(line(i + 1))}` };
  return { count: lines.length, problem: "" };
}

/** The running program under a supervised daemon, from status --json. */
async function child(pidfile: string): Promise<number> {
  const r = await run(["status", "--json", "-p", pidfile]);
  const pid = JSON.parse(r.stdout).child;
  if (typeof pid !== "number") throw new Error(`no program in ${r.stdout}`);
  return track(pid);
}

/** Bytes a process has written, counted by the kernel. */
const written = (pid: number) => Number(readFileSync(`/proc/${pid}/io`, "utf8").match(/^wchar: (\d+)$/m)?.[1]);

/** Waits until sample() has kept one value for `ms`, and returns it. */
async function settled<T>(sample: () => T, what: string, ms: number, deadline = 15_000): Promise<T> {
  let last = sample();
  let since = Date.now();
  return waitFor(() => {
    const now = sample();
    if (now !== last) {
      last = now;
      since = Date.now();
    }
    return Date.now() - since >= ms ? { value: now } : undefined;
  }, what, deadline).then((v) => v.value);
}

describe.skipIf(missing("logrotate with reopen-logs", ["logrotate", "logrotate"]))("logrotate without copytruncate", () => {
  test("postrotate `daemonize reopen-logs`, under a writer that never pauses: every line once, in order, whole", async () => {
    const dir = tempDir();
    const pidfile = `${dir}/app.pid`;
    const log = `${dir}/app.log`;
    const r = await run(["--supervise", "--restart", "never", "-p", pidfile, "-l", log, "--", "/bin/sh", "-c", 'i=0; while :; do i=$((i+1)); echo "line $i"; done']);
    expect(r.code).toBe(0);
    const monitor = track(readPid(pidfile));
    writeFileSync(
      `${dir}/logrotate.conf`,
      `${log} {\n\trotate 3\n\tmissingok\n\tnocreate\n\tnocopytruncate\n\tpostrotate\n\t\t${BIN} reopen-logs --pidfile ${pidfile}\n\tendscript\n}\n`,
    );
    for (let i = 1; i <= 3; i++) {
      // Each file gets a good share of lines, and the writer is mid-flight when logrotate renames it.
      await waitFor(() => size(log) >= 64 * 1024, `output before rotation ${i}`);
      const lr = Bun.spawnSync(["logrotate", "-f", "-s", `${dir}/state`, `${dir}/logrotate.conf`], { stderr: "pipe" });
      expect(lr.stderr.toString()).toBe("");
      expect(lr.exitCode).toBe(0);
      expect(JSON.parse((await run(["status", "--json", "-p", pidfile])).stdout).logReopens).toBe(i);
    }
    await waitFor(() => size(log) > 0, "lines in the newest file");
    expect((await run(["stop", "-p", pidfile])).code).toBe(0);
    expect(alive(monitor)).toBe(false);

    const files = [`${log}.3`, `${log}.2`, `${log}.1`, log];
    expect(existsSync(`${log}.4`)).toBe(false);
    for (const f of files) {
      const text = read(f);
      // logrotate's rename lands between two of the monitor's writes, which are whole lines.
      expect(text).toMatch(/^line \d+\n/);
      expect(text).toEndWith("\n");
    }
    const { count, problem } = sequence(files.map(read).join(""), (i) => `line ${i}`);
    expect(problem).toBe("");
    expect(count).toBeGreaterThan(10_000);
  });
});

describe.skipIf(!isRoot || missing("a full disk", ["mount", "mount"], ["umount", "mount"], ["/usr/bin/python3", "python3"]))("a full disk", () => {
  // The monitor's "cannot write log" goes to syslog and to its own stderr, which is /dev/null
  // when detached: only syslog shows it, so the test binds the syslog socket itself. Each of
  // the program's lines is a datagram too, and one the socket cannot take at once is dropped;
  // the program therefore stops after the line that meets the full disk, so that the monitor's
  // message goes out on a quiet socket, and only floods the pipe once that message is in.
  const receiver = `
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1])
with open(sys.argv[2], "ab", buffering=0) as out:
    while True:
        d = s.recv(65536)
        if b" daemonize[" in d:
            out.write(d + b"\\n")
`;

  test("the program blocks, the monitor's memory stays flat, it says so once, and resumes losing nothing", async () => {
    const dir = tempDir();
    const disk = `${dir}/disk`;
    const sock = `${dir}/log.sock`;
    const said = `${dir}/said`;
    const fifo = `${dir}/go`;
    const pidfile = `${dir}/app.pid`;
    const log = `${disk}/app.log`;
    // Each line is 16 bytes: 256 of them fill exactly one tmpfs page, so the first line after them needs a new one.
    const line = (i: number) => `line ${String(i).padStart(10, "0")}`;
    // More than the pipe's 1 MiB after the disk is full, so the program must block; all of it fits once the filler is gone.
    const last = 200_000;
    mkdirSync(disk);
    // 0755: a log's directory must not be writable by others. 4 MiB: the run's whole output has to fit once the filler is gone.
    const mount = Bun.spawnSync(["mount", "-t", "tmpfs", "-o", "size=4m,mode=0755", "tmpfs", disk], { stderr: "pipe" });
    expect([mount.exitCode, mount.stderr.toString()]).toEqual([0, ""]);
    const pids: number[] = [];
    let go = -1;
    try {
      expect(Bun.spawnSync(["mkfifo", fifo]).exitCode).toBe(0);
      // Held open for writing, so that the program's open for reading does not wait for the test.
      go = openSync(fifo, constants.O_RDWR);
      const rx = Bun.spawn(["/usr/bin/python3", "-c", receiver, sock, said], { stdio: ["ignore", "ignore", "inherit"] });
      pids.push(track(rx.pid));
      await waitFor(() => existsSync(sock), "the test's syslog socket");

      const script = [
        `exec 3<${fifo}`,
        "i=0",
        "while [ $i -lt 256 ]; do i=$((i+1)); printf 'line %010d\\n' $i; done",
        "read x <&3",
        "i=$((i+1)); printf 'line %010d\\n' $i",
        "read x <&3",
        `while [ $i -lt ${last} ]; do i=$((i+1)); printf 'line %010d\\n' $i; done`,
        "exec sleep 1000",
      ].join("\n");
      const r = await run(["--supervise", "--restart", "never", "--syslog", "--syslog-socket", sock, "-p", pidfile, "-l", log, "--", "/bin/sh", "-c", script]);
      expect(r.code).toBe(0);
      const monitor = track(readPid(pidfile));
      pids.push(monitor);
      const program = await child(pidfile);
      pids.push(program);
      await waitFor(() => size(log) === 4096, "the first 256 lines");

      // Every free page of the disk goes to the filler.
      const filler = openSync(`${disk}/filler`, "w");
      try {
        const chunk = Buffer.alloc(64 * 1024);
        for (;;) writeSync(filler, chunk);
      } catch (e) {
        expect((e as NodeJS.ErrnoException).code).toBe("ENOSPC");
      } finally {
        closeSync(filler);
      }
      expect(statfsSync(disk).bavail).toBe(0);

      writeSync(go, "\n");
      const cannot = await waitFor(() => read(said).match(/^<(\d+)>\w{3} [ \d]\d \d\d:\d\d:\d\d daemonize\[(\d+)\]: cannot write log (.*)$/m), "the monitor to say it cannot write");
      expect(Number(cannot[1]) >> 3).toBe(3);
      expect(Number(cannot[2])).toBe(monitor);
      expect(cannot[3]).toBe("app.log: No space left on device; holding the program's output until it can");
      expect(size(log)).toBe(4096);

      writeSync(go, "\n");
      // The program writes until the pipe is full, then sleeps in that write.
      const blockedAt = await settled(() => written(program), "the program to block on its output", 500);
      expect(procStat(program).state).toBe("S");
      const wchan = readFileSync(`/proc/${program}/wchan`, "utf8");
      if (wchan !== "0") expect(wchan).toContain("pipe_write");
      expect(blockedAt).toBeGreaterThan(1024 * 1024);

      // Over three of the monitor's one-second retries: nothing moves, and its memory does not grow.
      const rss = () => Number(procStatus(monitor).RssAnon?.match(/^(\d+) kB$/)?.[1]);
      const samples: number[] = [];
      const until = Date.now() + 3200;
      await waitFor(() => (samples.push(rss()), Date.now() > until), "three retries", 5000);
      expect(Math.max(...samples) - Math.min(...samples)).toBeLessThanOrEqual(16);
      expect(written(program)).toBe(blockedAt);
      expect(size(log)).toBe(4096);
      expect(statfsSync(disk).bavail).toBe(0);

      rmSync(`${disk}/filler`);
      await waitFor(() => size(log) === last * 16, "every line, once the disk has room", 15_000);
      expect(written(program)).toBeGreaterThan(blockedAt);
      await waitFor(() => read(said).includes("writing log app.log again"), "the monitor to say it writes again");
      expect((await run(["stop", "-p", pidfile])).code).toBe(0);
      expect(alive(monitor)).toBe(false);

      expect(sequence(read(log), line)).toEqual({ count: last, problem: "" });
      expect(read(said).match(/cannot write log/g)?.length).toBe(1);
      expect(read(said).match(/writing log app.log again/g)?.length).toBe(1);
    } finally {
      if (go >= 0) closeSync(go);
      // Nothing may hold a file on the disk when it is unmounted.
      for (const pid of pids) await kill(pid);
      const umount = Bun.spawnSync(["umount", disk], { stderr: "pipe" });
      if (umount.exitCode !== 0) Bun.spawnSync(["umount", "-l", disk]);
      expect(umount.stderr.toString()).toBe("");
    }
  });
});

/** The program the syslog tests start: its tag is this file's name. */
function numbers(dir: string, n: number): string {
  const path = `${dir}/numbers`;
  writeFileSync(
    path,
    `#!/bin/sh\ni=0\nwhile [ $i -lt ${n} ]; do i=$((i+1)); echo "out $i"; echo "err $i" >&2; done\ntouch ${dir}/done\nexec sleep 1000\n`,
    { mode: 0o755 },
  );
  return path;
}

const expected = (stream: string, n: number) => Array.from({ length: n }, (_, i) => `${stream} ${i + 1}`);

describe.skipIf(missing("rsyslog", ["/usr/sbin/rsyslogd", "rsyslog"], ["logger", "bsdutils"]))("a real rsyslogd", () => {
  test("every line arrives with the facility, info for stdout, err for stderr, and the tag PROGRAM[PID]", async () => {
    const dir = tempDir();
    const sock = `${dir}/log.sock`;
    const out = `${dir}/out.log`;
    // Its own socket only (no /dev/log), its own work directory and pidfile, no rate limit.
    writeFileSync(
      `${dir}/rsyslog.conf`,
      [
        `global(workDirectory="${dir}")`,
        `module(load="imuxsock" SysSock.Use="off")`,
        `input(type="imuxsock" Socket="${sock}" RateLimit.Interval="0")`,
        `template(name="t" type="string" string="%syslogfacility-text% %syslogseverity-text% %syslogtag%%msg%\\n")`,
        `action(type="omfile" file="${out}" template="t")`,
        "",
      ].join("\n"),
    );
    const rsyslogPid = `${dir}/rsyslogd.pid`;
    const rsyslog = Bun.spawn(["/usr/sbin/rsyslogd", "-n", "-f", `${dir}/rsyslog.conf`, "-i", rsyslogPid], { stdio: ["ignore", "ignore", "inherit"] });
    track(rsyslog.pid);
    await waitFor(() => existsSync(sock) && existsSync(rsyslogPid), "rsyslogd's socket");

    const n = 20;
    const pidfile = `${dir}/app.pid`;
    const log = `${dir}/app.log`;
    const r = await run(["--syslog=local3", "--syslog-socket", sock, "-p", pidfile, "-l", log, "--", numbers(dir, n)]);
    expect(r.code).toBe(0);
    track(readPid(pidfile));
    const program = await child(pidfile);
    await waitFor(() => existsSync(`${dir}/done`) && read(log).split("\n").length === 2 * n + 1, "every line in the log file");
    // The monitor sent each line before writing it; a line of the test's own, sent after, marks the end.
    expect(Bun.spawnSync(["logger", "-u", sock, "-t", "marker", "end"]).exitCode).toBe(0);
    await waitFor(() => read(out).includes("marker: end"), "rsyslogd to write everything before the marker");

    const got = read(out)
      .split("\n")
      .map((l) => l.match(/^(\S+) (\S+) numbers\[(\d+)\]: ?(.*)$/))
      .filter((m) => m !== null);
    for (const [, facility, severity, pid, msg] of got) {
      expect([facility, severity, Number(pid)]).toEqual(["local3", msg?.startsWith("out") ? "info" : "err", program]);
      expect(msg).toMatch(/^(out|err) \d+$/);
    }
    const msgs = got.map((m) => m[4]);
    expect(msgs.filter((m) => m?.startsWith("out"))).toEqual(expected("out", n));
    expect(msgs.filter((m) => m?.startsWith("err"))).toEqual(expected("err", n));

    expect((await run(["stop", "-p", pidfile])).code).toBe(0);
    // -n keeps rsyslogd in the foreground: the pid it writes (with no newline) is the one spawned.
    expect(Number(readFileSync(rsyslogPid, "utf8"))).toBe(rsyslog.pid);
    process.kill(rsyslog.pid, "SIGTERM");
    await waitFor(() => !alive(rsyslog.pid), "rsyslogd to exit");
  });
});

describe("a syslog socket that is not there", () => {
  test("the start works, every line reaches the log file, and nothing blocks", async () => {
    const dir = tempDir();
    const n = 20;
    const pidfile = `${dir}/app.pid`;
    const log = `${dir}/app.log`;
    const r = await run(["--syslog=local3", "--syslog-socket", `${dir}/absent.sock`, "-p", pidfile, "-l", log, "--", numbers(dir, n)]);
    expect([r.code, r.stderr]).toEqual([0, ""]);
    const monitor = track(readPid(pidfile));
    const program = await child(pidfile);
    await waitFor(() => existsSync(`${dir}/done`), "the program to get past its output");
    await waitFor(() => read(log).split("\n").length === 2 * n + 1, "every line in the log file");
    const lines = read(log).trimEnd().split("\n");
    expect(lines.filter((l) => l.startsWith("out"))).toEqual(expected("out", n));
    expect(lines.filter((l) => l.startsWith("err"))).toEqual(expected("err", n));
    // Both wait in their sleeps: the program in its own, the monitor in poll.
    await waitFor(() => procStat(program).state === "S" && procStat(monitor).state === "S", "both to sleep");
    expect(existsSync(`${dir}/absent.sock`)).toBe(false);
    expect((await run(["stop", "-p", pidfile])).code).toBe(0);
    expect(alive(monitor)).toBe(false);
  });
});

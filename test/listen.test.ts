// --listen and socket activation: sockets bound as root before the drop, handed to the
// program as fds 3.. by the systemd protocol (LISTEN_FDS, LISTEN_PID, LISTEN_FDNAMES),
// passed through from systemd-socket-activate, held by the monitor while the program is
// killed again and again, and refused with nothing left behind. The program is
// test/socket-server.py, a server that reads LISTEN_FDS as any socket-activated one does.
import { afterEach, describe, expect, test } from "bun:test";
import { chmodSync, existsSync, mkdirSync, readFileSync, readdirSync, statSync, writeFileSync } from "node:fs";
import { connect, createServer } from "node:net";
import { alive, cleanup, isRoot, missing, NOBODY, readPid, run, tempDir, track, waitFor } from "./helpers";
import { parseListen } from "../src/listen";
import { CLIENT, freePort, get, report, SERVER } from "./sockets";

afterEach(cleanup);

/** Sends a datagram and waits (bounded) for the answer. */
async function udpAsk(port: number): Promise<string> {
  let answer = "";
  const s = await Bun.udpSocket({ hostname: "127.0.0.1", port: 0, socket: { data: (_s, data) => void (answer = Buffer.from(data).toString().trim()) } });
  try {
    return await waitFor(() => (s.send("hi", port, "127.0.0.1"), answer || undefined), "the UDP answer", 5000);
  } finally {
    s.close();
  }
}

/** Connects to a unix socket and reads the whole answer to a GET. */
function unixGet(path: string): Promise<string> {
  return new Promise((resolve, reject) => {
    let data = "";
    const c = connect(path, () => c.write("GET / HTTP/1.0\r\n\r\n"));
    c.setTimeout(5000, () => c.destroy(new Error("timeout")));
    c.on("data", (d) => (data += d.toString()));
    c.on("end", () => resolve(data.split("\r\n\r\n")[1]?.trim() ?? ""));
    c.on("error", reject);
  });
}

/** Starts the server as a plain daemon; returns its pid and report. */
async function start(dir: string, options: string[]) {
  const log = `${dir}/log`;
  const r = await run(["-p", `${dir}/pid`, "-o", log, ...options, "--", "/usr/bin/python3", SERVER]);
  if (r.code !== 0) throw new Error(`start failed (${r.code}): ${r.stderr}`);
  const pid = track(readPid(`${dir}/pid`));
  return { pid, report: await report(log) };
}

const portBusy = (host: string, port: number): Promise<boolean> =>
  new Promise((resolve) => {
    const s = createServer();
    s.once("error", () => resolve(true));
    s.listen(port, host, () => s.close(() => resolve(false)));
  });

describe.skipIf(!isRoot || missing("--listen", ["/usr/bin/python3", "python3"]))("--listen", () => {
  test("port 80 on 127.0.0.1, bound as root, served by a python3 server running as nobody that takes fd 3 by LISTEN_FDS/LISTEN_PID", async () => {
    if (await portBusy("127.0.0.1", 80)) {
      process.stderr.write("skip: port 80 on 127.0.0.1 is in use by something else\n");
      return;
    }
    const dir = tempDir();
    const { pid, report: r } = await start(dir, ["--user", "nobody", "--listen", "tcp:127.0.0.1:80"]);
    expect(r).toMatchObject({ pid, uid: NOBODY.uid, fds: 1, names: ["unknown"] });
    expect(r.socks).toEqual([{ family: 2, type: 1, addr: "('127.0.0.1', 80)" }]);
    expect(await get("127.0.0.1", 80)).toBe(`${pid} ${NOBODY.uid}`);
  });

  test("TCP, UDP and unix sockets in the order given, with their names, the unix socket owned by the user with mode 0660", async () => {
    const dir = tempDir();
    const [tcp, udp] = [await freePort(), await freePort("127.0.0.1", true)];
    const path = `${dir}/app.sock`;
    const { pid, report: r } = await start(dir, [
      "--user", "nobody", "--listen", `web=tcp:127.0.0.1:${tcp}`, "--listen", `udp:127.0.0.1:${udp}`, "--listen", `admin.v2=unix:${path}`,
    ]);
    expect(r).toMatchObject({ pid, uid: NOBODY.uid, fds: 3, names: ["web", "unknown", "admin.v2"] });
    expect(r.socks.map((s) => [s.family, s.type])).toEqual([[2, 1], [2, 2], [1, 1]]);
    const st = statSync(path);
    expect([st.isSocket(), st.uid, st.gid, st.mode & 0o777]).toEqual([true, NOBODY.uid, NOBODY.gid, 0o660]);
    expect(await get("127.0.0.1", tcp)).toBe(`${pid} ${NOBODY.uid}`);
    expect(await udpAsk(udp)).toBe(`${pid} ${NOBODY.uid}`);
    expect(await unixGet(path)).toBe(`${pid} ${NOBODY.uid}`);
    // Nothing but stdio and the three sockets reaches the program.
    expect(readdirSync(`/proc/${pid}/fd`).map(Number).filter((fd) => fd >= 3 && fd < 6).length).toBe(3);
  });

  test("IPv6: [::1] alone, and an omitted host on both IPv4 and IPv6", async () => {
    const v6 = await freePort("::1").catch(() => undefined);
    if (v6 === undefined) {
      process.stderr.write("skip: IPv6: the loopback has no ::1 here\n");
      return;
    }
    const dir = tempDir();
    const any = await freePort("::");
    const { pid, report: r } = await start(dir, ["--listen", `tcp:[::1]:${v6}`, "--listen", `tcp:${any}`]);
    expect(r.socks.map((s) => s.family)).toEqual([10, 10]);
    expect(await get("::1", v6)).toBe(`${pid} 0`);
    expect(await get("::1", any)).toBe(`${pid} 0`);
    expect(await get("127.0.0.1", any)).toBe(`${pid} 0`);
    // [::1] is IPv6 only.
    await expect(get("127.0.0.1", v6)).rejects.toThrow();
  });

  test("a stale socket file is replaced; a live one or another file is not, and nothing is left", async () => {
    const dir = tempDir();
    const path = `${dir}/s.sock`;
    // Stale: a socket file nothing listens on.
    Bun.spawnSync(["python3", "-c", `import socket; s=socket.socket(socket.AF_UNIX); s.bind(${JSON.stringify(path)})`]);
    expect(statSync(path).isSocket()).toBe(true);
    const { pid } = await start(dir, ["--listen", `unix:${path}`]);
    expect(await unixGet(path)).toBe(`${pid} 0`);
    // Live: the daemon above listens on it.
    const other = tempDir();
    const r = await run(["-p", `${other}/pid`, "--listen", `unix:${path}`, "--", "/bin/sleep", "60"]);
    expect(r.code).toBe(73);
    expect(r.stderr).toBe(`daemonize: error: --listen unix:${path}: something listens on ${path} already\n`);
    expect(existsSync(`${other}/pid`)).toBe(false);
    expect(await unixGet(path)).toBe(`${pid} 0`);
    // Not a socket.
    writeFileSync(`${other}/file`, "keep me");
    const f = await run(["-p", `${other}/pid`, "--listen", `unix:${other}/file`, "--", "/bin/sleep", "60"]);
    expect([f.code, f.stderr]).toEqual([73, `daemonize: error: --listen unix:${other}/file: ${other}/file is not a socket; refusing to replace it\n`]);
    expect(readFileSync(`${other}/file`, "utf8")).toBe("keep me");
  });

  test.skipIf(missing("systemd-socket-activate upstream", ["systemd-socket-activate", "systemd"]))(
    "systemd-socket-activate upstream: its socket first, its name kept, LISTEN_PID rewritten, then --listen's",
    async () => {
      const dir = tempDir();
      const [outer, inner] = [await freePort(), await freePort()];
      const activator = Bun.spawn(
        ["systemd-socket-activate", "-l", `127.0.0.1:${outer}`, "--fdname=act", "-E", "PATH", `${import.meta.dir}/../dist/daemonize`,
          "-p", `${dir}/pid`, "-o", `${dir}/log`, "--listen", `web=tcp:127.0.0.1:${inner}`, "--", "/usr/bin/python3", SERVER],
        { stdout: "ignore", stderr: "pipe", env: { PATH: process.env.PATH ?? "/usr/bin:/bin" } },
      );
      track(activator.pid);
      // It execs daemonize on the first connection, which waits in the activator's backlog until the program accepts it.
      const deadline = Date.now() + 10000;
      while (!(await portBusy("127.0.0.1", outer)) && Date.now() < deadline) await Bun.sleep(10);
      const first = get("127.0.0.1", outer);
      const pid = track(await waitFor(() => existsSync(`${dir}/pid`) && readPid(`${dir}/pid`), "the pidfile", 10000));
      const r = await report(`${dir}/log`);
      expect(r).toMatchObject({ pid, fds: 2, names: ["act", "web"] });
      expect(r.socks.map((s) => s.addr)).toEqual([`('127.0.0.1', ${outer})`, `('127.0.0.1', ${inner})`]);
      expect(await first).toBe(`${pid} 0`);
      expect(await get("127.0.0.1", inner)).toBe(`${pid} 0`);
      // daemonize itself, exec'd in the activator's place, is gone: the daemon is detached.
      await waitFor(() => !alive(activator.pid), "the launcher to exit");
      expect(await activator.exited).toBe(0);
    },
  );

  test("an activator's LISTEN_FDS meant for another pid is not taken", async () => {
    const dir = tempDir();
    const r = await run(["-p", `${dir}/pid`, "-o", `${dir}/log`, "--", "/usr/bin/python3", SERVER], {
      env: { PATH: "/usr/bin:/bin", LISTEN_FDS: "1", LISTEN_PID: "1", LISTEN_FDNAMES: "x" },
    });
    expect(r.code).toBe(0);
    track(readPid(`${dir}/pid`));
    expect((await report(`${dir}/log`)).fds).toBe(0);
  });
});

describe.skipIf(!isRoot)("--listen: bad input", () => {
  const nothingLeft = (dir: string) => expect(readdirSync(dir)).toEqual([]);

  test.each([
    ["tcp:", "PORT must be a number from 1 to 65535"],
    ["tcp:127.0.0.1:0", "PORT must be a number from 1 to 65535"],
    ["tcp:127.0.0.1:65536", "PORT must be a number from 1 to 65535"],
    ["tcp:localhost:80", "HOST must be an IPv4 address or an IPv6 address in brackets (names are not looked up)"],
    ["tcp:::1:80", "PORT must be a number from 1 to 65535"],
    ["tcp:[::g]:80", "HOST must be an IPv4 address or an IPv6 address in brackets (names are not looked up)"],
    ["tcp:256.1.1.1:80", "HOST must be an IPv4 address or an IPv6 address in brackets (names are not looked up)"],
    ["sctp:80", "ADDR must be tcp:[HOST:]PORT, udp:[HOST:]PORT or unix:PATH"],
    ["unix:", "unix: needs a PATH"],
    [`unix:/${"x".repeat(120)}`, "the path is longer than a socket address holds (107 bytes)"],
    ["a b=tcp:80", "NAME must be 1 to 255 letters, digits, _, - or ."],
    ["=tcp:80", "NAME must be 1 to 255 letters, digits, _, - or ."],
    [`${"n".repeat(256)}=tcp:80`, "NAME must be 1 to 255 letters, digits, _, - or ."],
  ])("--listen %s: 64", async (addr, why) => {
    const dir = tempDir();
    const r = await run(["-p", `${dir}/pid`, "--listen", addr, "--", "/bin/true"]);
    expect([r.code, r.stderr]).toEqual([64, `daemonize: error: --listen ${JSON.stringify(addr)}: ${why}\n`]);
    nothingLeft(dir);
  });

  test("an address in use: 73, naming the address and the error; nothing left, and --check says the same", async () => {
    const dir = tempDir();
    const port = await freePort();
    const holder = Bun.listen({ hostname: "127.0.0.1", port, socket: { data() {} } });
    try {
      for (const check of [[], ["--check"]]) {
        const r = await run([...check, "-p", `${dir}/pid`, "-o", `${dir}/log`, "--listen", `unix:${dir}/a.sock`, "--listen", `tcp:127.0.0.1:${port}`, "--", "/bin/true"]);
        expect(r.code).toBe(73);
        expect(r.stderr).toBe(`daemonize: error: --listen tcp:127.0.0.1:${port}: bind: Address already in use\n`);
        // The unix socket made before it is gone again, and no pidfile or log was made.
        nothingLeft(dir);
      }
    } finally {
      holder.stop(true);
    }
  });

  test("--check binds for a moment and leaves no socket file", async () => {
    const dir = tempDir();
    const r = await run(["--check", "-p", `${dir}/pid`, "--listen", `unix:${dir}/a.sock`, "--listen", `tcp:127.0.0.1:${await freePort()}`, "--", "/bin/true"]);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain("ok    sockets: fds 3 to 4");
    nothingLeft(dir);
  });

  test.skipIf(missing("--listen as nobody", ["setpriv", "util-linux"]))("a privileged port for a caller that is not root: 77", async () => {
    const port = Number(readFileSync("/proc/sys/net/ipv4/ip_unprivileged_port_start", "utf8"));
    if (port <= 80) {
      process.stderr.write("skip: net.ipv4.ip_unprivileged_port_start lets anyone bind port 80 here\n");
      return;
    }
    const p = Bun.spawnSync(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", `${import.meta.dir}/../dist/daemonize`, "--listen", "tcp:127.0.0.1:80", "--", "/bin/true"], {
      stderr: "pipe",
      cwd: "/",
    });
    expect([p.exitCode, p.stderr.toString()]).toEqual([
      77,
      "daemonize: error: --listen tcp:127.0.0.1:80: bind: Permission denied (a port below 1024 needs root or CAP_NET_BIND_SERVICE)\n",
    ]);
  });

  test("a unix socket in a directory others could write: 77, nothing made", async () => {
    const dir = tempDir();
    const open = `${dir}/open`;
    mkdirSync(open);
    chmodSync(open, 0o777);
    const r = await run(["-p", `${dir}/pid`, "--listen", `unix:${open}/a.sock`, "--", "/bin/true"]);
    expect(r.code).toBe(77);
    expect(r.stderr).toBe(`daemonize: error: --listen unix:${open}/a.sock: directory ${open} is writable by group or others; refusing to use it (--unsafe allows it)\n`);
    expect(readdirSync(open)).toEqual([]);
    expect(existsSync(`${dir}/pid`)).toBe(false);
  });

  test("--ready tcp: on a --listen port: 64, as the socket accepts before the program runs", async () => {
    const dir = tempDir();
    const port = await freePort();
    const r = await run(["-p", `${dir}/pid`, "--listen", `tcp:127.0.0.1:${port}`, "--ready", `tcp:127.0.0.1:${port}`, "--", "/bin/true"]);
    expect([r.code, r.stderr]).toEqual([64, `daemonize: error: --ready tcp:127.0.0.1:${port}: that port is a --listen socket, which accepts connections before the program runs; use --ready notify or fd:N\n`]);
    nothingLeft(dir);
  });

  test("--keep-fd or --ready fd: where a socket goes: 64, nothing bound", async () => {
    const dir = tempDir();
    const port = await freePort();
    const r = await run(["-p", `${dir}/pid`, "--listen", `tcp:127.0.0.1:${port}`, "--listen", `unix:${dir}/a.sock`, "--keep-fd", "4", "--", "/bin/true"]);
    expect([r.code, r.stderr]).toEqual([64, "daemonize: error: fd 4 (--keep-fd or --ready fd:) is where a socket goes: the 2 socket(s) are fds 3 to 4, so kept fds must come after them\n"]);
    nothingLeft(dir);
    expect(await portBusyAfter(port)).toBe(false);
  });
});

const portBusyAfter = (port: number) => portBusy("127.0.0.1", port);

describe.skipIf(!isRoot)("--listen beside --ready fd:N", () => {
  test.each([[5], [6], [9], [16]])("fd:%i after two sockets, plain and supervised: the sockets at 3 and 4, the readiness fd where asked", async (n) => {
    const dir = tempDir();
    const [a, b] = [await freePort(), await freePort()];
    for (const mode of [[], ["--supervise"]]) {
      const pidfile = `${dir}/pid${mode.length}`;
      const script = `ls -l /proc/$$/fd > ${dir}/fds${mode.length}; echo >&${n}; exec sleep 60`;
      const r = await run([...mode, "--ready", `fd:${n}`, "-p", pidfile, "--listen", `tcp:127.0.0.1:${a}`, "--listen", `tcp:127.0.0.1:${b}`, "--", "/bin/bash", "-c", script]);
      expect([r.code, r.stderr]).toEqual([0, ""]);
      track(readPid(pidfile));
      const fds = readFileSync(`${dir}/fds${mode.length}`, "utf8");
      expect(fds).toMatch(/ 3 -> socket:/);
      expect(fds).toMatch(/ 4 -> socket:/);
      expect(fds).toMatch(new RegExp(` ${n} -> pipe:`));
      await run(["stop", "-p", pidfile]);
    }
  });
});

describe.skipIf(!isRoot || missing("--listen under --supervise", ["/usr/bin/python3", "python3"]))("--listen under --supervise", () => {
  test("the monitor holds the socket: SIGKILLed 20 times under a client connecting in a loop, no connection is refused", async () => {
    const dir = tempDir();
    const port = await freePort();
    const pidfile = `${dir}/pid`;
    const r = await run([
      "--supervise", "--restart", "always", "--restart-delay", "0", "--max-restarts", "0", "-p", pidfile, "-o", `${dir}/log`,
      "--listen", `tcp:127.0.0.1:${port}`, "--", "/usr/bin/python3", SERVER,
    ]);
    expect(r.code).toBe(0);
    const monitor = track(readPid(pidfile));
    const client = Bun.spawn(["python3", CLIENT, "127.0.0.1", String(port), "100000", "60", `${dir}/stop`, "connect"], { stdout: "pipe" });
    track(client.pid);
    let last = 0;
    for (let i = 0; i < 20; i++) {
      // The new run, once it has taken its socket and said so.
      const pid = await waitFor(() => {
        const c = Number(readFileSync(`/proc/${monitor}/task/${monitor}/children`, "utf8").trim().split(" ")[0]);
        return c && c !== last && readFileSync(`${dir}/log`, "utf8").includes(`{"pid": ${c},`) ? c : undefined;
      }, "a new run");
      process.kill(pid, "SIGKILL");
      last = pid;
    }
    writeFileSync(`${dir}/stop`, "");
    const counts = JSON.parse(await new Response(client.stdout).text());
    expect(counts.refused).toBe(0);
    expect(counts.ok).toBeGreaterThan(0);
  });
});

describe("--listen addresses", () => {
  test.each([
    ["tcp:[::1]:80", [...Array(15).fill(0), 1]],
    ["tcp:[::]:80", Array(16).fill(0)],
    ["tcp:[fe80::1:2]:80", [0xfe, 0x80, ...Array(10).fill(0), 0, 1, 0, 2]],
    ["tcp:[1:2:3:4:5:6:7:8]:80", [0, 1, 0, 2, 0, 3, 0, 4, 0, 5, 0, 6, 0, 7, 0, 8]],
    ["tcp:[::ffff:127.0.0.1]:80", [...Array(10).fill(0), 0xff, 0xff, 127, 0, 0, 1]],
    ["udp:10.1.2.3:53", [10, 1, 2, 3]],
  ])("%s", (text, bytes) => {
    expect([...(parseListen(text, "/").addr as Uint8Array)]).toEqual(bytes);
  });

  test.each(["tcp:[1:2:3:4:5:6:7:8:9]:80", "tcp:[1::2::3]:80", "tcp:[12345::]:80", "tcp:[::1.2.3]:80", "tcp:[1:2:3:4:5:6:7]:80"])("%s is refused", (text) => {
    expect(() => parseListen(text, "/")).toThrow("HOST must be");
  });

  test("a name, an omitted host, a relative unix path", () => {
    expect(parseListen("web=tcp:8080", "/")).toMatchObject({ name: "web", kind: "tcp", port: 8080, addr: undefined });
    expect(parseListen("unix:run/a=b.sock", "/srv")).toMatchObject({ name: undefined, kind: "unix", path: "/srv/run/a=b.sock" });
  });
});

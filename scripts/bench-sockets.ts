// npm run bench, fourth part: sockets held across restarts, and reload.
//   1. A small C server is killed with SIGKILL BENCH_SOCKET_KILLS times (100) while a client
//      connects in a loop: under daemonize --supervise --listen, whose monitor holds the socket,
//      and under runsv, s6-supervise and supervisord restarting it, where it binds the port itself.
//      Counted: connections refused.
//   2. An HTTP server (test/socket-server.py) through BENCH_RELOADS (20) `daemonize reload`s, the
//      same number of `daemonize restart`s, and pm2 fork-mode `pm2 reload`s (pm2 from npm into a
//      temp prefix, when it installs), under a client making requests without pause. Counted:
//      failed requests.
// Prints markdown tables.
import { closeSync, existsSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import type { Subprocess } from "bun";
import { needCc, onInterrupt } from "./bench-common";

const root = new URL("..", import.meta.url).pathname;
const bin = `${root}dist/daemonize`;
const server = `${root}test/socket-server.py`;
const client = `${root}test/socket-client.py`;
const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith("npm_") && k !== "INIT_CWD" && k !== "NODE")) as Record<string, string>;
const kills = Number(process.env.BENCH_SOCKET_KILLS ?? 100);
const reloads = Number(process.env.BENCH_RELOADS ?? 20);
const UP_TIMEOUT_MS = 30_000;
const PACE_MS = 20;

needCc();
const tmp = mkdtempSync("/tmp/daemonize-bench-sockets-");
const spawned = new Set<Subprocess>();

function cleanup() {
  for (const p of spawned) p.kill("SIGKILL");
  rmSync(tmp, { recursive: true, force: true });
}
onInterrupt(cleanup);

// Accepts, says ok, closes; appends its pid to DIR/up once it listens. Its socket is fd 3 by
// LISTEN_FDS when it is given one, else it binds 127.0.0.1:PORT itself.
const srv = `${tmp}/srv`;
writeFileSync(
  `${srv}.c`,
  `#include <arpa/inet.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

int main(int argc, char **argv) {
  const char *pid = getenv("LISTEN_PID");
  int fd = 3;
  if (!pid || atoi(pid) != getpid()) {
    fd = socket(AF_INET, SOCK_STREAM, 0);
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(atoi(argv[2])) };
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(fd, (struct sockaddr *)&a, sizeof a) || listen(fd, SOMAXCONN)) return 1;
  }
  char path[4096], line[32];
  snprintf(path, sizeof path, "%s/up", argv[1]);
  int n = snprintf(line, sizeof line, "%d\\n", (int)getpid());
  int up = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
  if (up < 0 || write(up, line, n) != n) return 2;
  close(up);
  for (;;) {
    int c = accept(fd, NULL, NULL);
    if (c >= 0) {
      if (write(c, "ok\\n", 3) < 0) {}
      close(c);
    }
  }
}
`,
);
{
  const cc = Bun.spawnSync(["cc", "-O2", "-static", "-o", srv, `${srv}.c`], { stderr: "pipe" });
  if (!cc.success) throw new Error(cc.stderr.toString());
}

async function freePort(): Promise<number> {
  const s = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data() {} } });
  const port = s.port;
  s.stop(true);
  return port;
}

function run(argv: string[], extra: Record<string, string> = {}) {
  const r = Bun.spawnSync(argv, { env: { ...env, ...extra }, stdout: "pipe", stderr: "pipe" });
  if (!r.success) throw new Error(`${argv.join(" ")}: ${(r.stderr.toString() || r.stdout.toString()).trim().split("\n")[0]}`);
  return r.stdout.toString();
}

function background(argv: string[], dir: string, extra: Record<string, string> = {}): Subprocess {
  const log = openSync(`${dir}/supervisor.log`, "a");
  const p = Bun.spawn(argv, { cwd: dir, env: { ...env, ...extra }, stdin: "ignore", stdout: log, stderr: log });
  closeSync(log);
  spawned.add(p);
  return p;
}

/** The pids the server wrote to dir/up, in order. */
const ups = (dir: string): number[] => (existsSync(`${dir}/up`) ? readFileSync(`${dir}/up`, "utf8").split("\n").slice(0, -1).map(Number) : []);

async function nthUp(dir: string, n: number): Promise<number> {
  for (const deadline = Date.now() + UP_TIMEOUT_MS; Date.now() < deadline; await Bun.sleep(1)) {
    const all = ups(dir);
    if (all.length > n) return all[n] as number;
  }
  throw new Error(`run ${n + 1} did not come up within ${UP_TIMEOUT_MS / 1000} s`);
}

interface Counts {
  ok: number;
  refused: number;
  failed: number;
  slowestMs: number;
}

/** test/socket-client.py in the background until the returned function stops it. */
async function startClient(port: number, mode: "connect" | "http", dir: string): Promise<() => Promise<Counts & { seconds: number }>> {
  const stop = `${dir}/stop-client`;
  rmSync(stop, { force: true });
  rmSync(`${stop}.started`, { force: true });
  const p = Bun.spawn(["python3", client, "127.0.0.1", String(port), "100000000", "3600", stop, mode], { env, stdout: "pipe", stderr: "inherit" });
  spawned.add(p);
  for (const deadline = Date.now() + UP_TIMEOUT_MS; !existsSync(`${stop}.started`); await Bun.sleep(5))
    if (Date.now() > deadline) throw new Error("the client did not start");
  const began = performance.now();
  return async () => {
    writeFileSync(stop, "");
    const counts = JSON.parse(await new Response(p.stdout).text()) as Counts;
    spawned.delete(p);
    return { ...counts, seconds: (performance.now() - began) / 1000 };
  };
}

interface Peer {
  name: string;
  needs: string[];
  pkg: string;
  start(dir: string, port: number): Subprocess | undefined;
  stop(dir: string, p: Subprocess | undefined): void | Promise<void>;
}

const runScript = (dir: string, port: number) => {
  writeFileSync(`${dir}/run`, `#!/bin/sh\nexec ${srv} ${dir} ${port}\n`, { mode: 0o755 });
};

/** A supervisor of one service directory, whose ./run execs the server: `down` are the commands that stop it, given the directory. */
const servicePeer = (name: string, pkg: string, supervise: string, down: string[][]): Peer => ({
  name: `${name} (the program binds the port)`,
  needs: [supervise, ...down.map(([tool]) => tool as string)],
  pkg,
  start(dir, port) {
    runScript(dir, port);
    return background([supervise, dir], dir);
  },
  async stop(dir, p) {
    for (const argv of down) run([...argv, dir]);
    await p?.exited;
  },
});

const peers: Peer[] = [
  {
    name: "daemonize `--supervise --listen` (the monitor holds the socket)",
    needs: [],
    pkg: "",
    start(dir, port) {
      run([bin, "--supervise", "-p", `${dir}/pid`, "--restart", "always", "--restart-delay", "0", "--max-restarts", "0", "--listen", `tcp:127.0.0.1:${port}`, "--", srv, dir, String(port)]);
      return undefined;
    },
    stop(dir) {
      run([bin, "stop", "-p", `${dir}/pid`]);
    },
  },
  servicePeer("runit `runsv`", "runit", "runsv", [["sv", "-w", "10", "down"], ["sv", "exit"]]),
  servicePeer("s6 `s6-supervise`", "s6", "s6-supervise", [["s6-svc", "-wD", "-T", "10000", "-d"], ["s6-svc", "-x"]]),
  {
    name: "`supervisord` (the program binds the port)",
    needs: ["supervisord", "supervisorctl"],
    pkg: "supervisor",
    start(dir, port) {
      writeFileSync(
        `${dir}/supervisord.conf`,
        `[unix_http_server]\nfile=${dir}/supervisor.sock\n\n[supervisord]\nnodaemon=true\nlogfile=${dir}/supervisord.log\npidfile=${dir}/supervisord.pid\nchildlogdir=${dir}\n\n` +
          `[rpcinterface:supervisor]\nsupervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface\n\n[supervisorctl]\nserverurl=unix://${dir}/supervisor.sock\n\n` +
          `[program:srv]\ncommand=${srv} ${dir} ${port}\nautorestart=true\nstartsecs=0\nstartretries=1000000\nstdout_logfile=NONE\nstderr_logfile=NONE\n`,
      );
      return background(["supervisord", "-n", "-c", `${dir}/supervisord.conf`], dir);
    },
    async stop(dir, p) {
      run(["supervisorctl", "-c", `${dir}/supervisord.conf`, "shutdown"]);
      await p?.exited;
    },
  },
];

async function crashLoop(peer: Peer, index: number): Promise<string> {
  const missing = peer.needs.filter((t) => !Bun.which(t));
  if (missing.length) return `| ${peer.name} | skipped: ${missing.join(", ")} not found (apt-get install ${peer.pkg}) | | | |`;
  const dir = `${tmp}/kill-${index}`;
  mkdirSync(dir);
  const port = await freePort();
  const p = peer.start(dir, port);
  try {
    await nthUp(dir, 0);
    const done = await startClient(port, "connect", dir);
    for (let i = 0; i < kills; i++) {
      // Each run serves a while, so the client reaches every run, and every gap.
      await Bun.sleep(PACE_MS);
      process.kill(await nthUp(dir, i), "SIGKILL");
      await nthUp(dir, i + 1);
    }
    const c = await done();
    return `| ${peer.name} | ${c.refused} | ${c.ok} | ${c.failed} | ${c.seconds.toFixed(1)} s |`;
  } finally {
    await peer.stop(dir, p);
  }
}

/** The HTTP server under daemonize, replaced `reloads` times by `command` under a client; `listen`: the monitor holds its socket, else it binds it itself. */
async function daemonizeCycles(command: "reload" | "restart", listen: boolean): Promise<string> {
  const dir = `${tmp}/${command}-${listen}`;
  mkdirSync(dir);
  const port = await freePort();
  const socket = listen ? ["--listen", `tcp:127.0.0.1:${port}`] : ["--env", `PORT=${port}`];
  run([bin, "--supervise", "--ready", "notify", "-p", `${dir}/pid`, "-o", `${dir}/log`, ...socket, "--", "/usr/bin/python3", server]);
  try {
    const done = await startClient(port, "http", dir);
    const began = performance.now();
    for (let i = 0; i < reloads; i++) run([bin, command, "-p", `${dir}/pid`]);
    const each = (performance.now() - began) / reloads;
    const c = await done();
    const what =
      command === "reload" ? "`daemonize reload` (`--supervise --ready notify --listen`)"
      : listen ? "`daemonize restart` without a program (the same daemon: the monitor holds the socket)"
      : "`daemonize restart` without a program, the server binding its port itself (`--supervise --ready notify`)";
    return `| ${what} | ${c.failed + c.refused} | ${c.refused} | ${c.ok} | ${c.slowestMs} ms | ${each.toFixed(0)} ms |`;
  } finally {
    run([bin, "stop", "-p", `${dir}/pid`]);
  }
}

async function pm2Cycles(): Promise<string> {
  const prefix = `${tmp}/pm2`;
  const installed = Bun.spawnSync(["npm", "install", "--prefix", prefix, "--no-audit", "--no-fund", "--silent", "pm2"], { env, stdout: "pipe", stderr: "pipe" });
  const pm2 = `${prefix}/node_modules/.bin/pm2`;
  if (!installed.success || !existsSync(pm2)) return "| pm2 fork mode `pm2 reload` | skipped: pm2 did not install from npm here | | | | |";
  const version = JSON.parse(readFileSync(`${prefix}/node_modules/pm2/package.json`, "utf8")).version as string;
  const dir = `${tmp}/pm2-run`;
  mkdirSync(dir);
  const port = await freePort();
  const home = { PM2_HOME: `${tmp}/pm2-home`, PORT: String(port) };
  run([pm2, "start", "/usr/bin/python3", "--name", "srv", "--interpreter", "none", "--", server], home);
  try {
    // Up once it answers.
    for (const deadline = Date.now() + UP_TIMEOUT_MS; ; await Bun.sleep(20)) {
      const probe = Bun.spawnSync(["python3", client, "127.0.0.1", String(port), "1", "5", `${dir}/never`, "http"], { env, stdout: "pipe" });
      if (JSON.parse(probe.stdout.toString()).ok === 1) break;
      if (Date.now() > deadline) throw new Error("the server under pm2 did not answer");
    }
    const done = await startClient(port, "http", dir);
    const began = performance.now();
    for (let i = 0; i < reloads; i++) run([pm2, "reload", "srv"], home);
    const each = (performance.now() - began) / reloads;
    const c = await done();
    return `| pm2 ${version} fork mode \`pm2 reload\` (the program binds the port) | ${c.failed + c.refused} | ${c.refused} | ${c.ok} | ${c.slowestMs} ms | ${each.toFixed(0)} ms |`;
  } finally {
    Bun.spawnSync([pm2, "kill"], { env: { ...env, ...home }, stdout: "ignore", stderr: "ignore" });
  }
}

try {
  const rows: string[] = [];
  for (const [i, peer] of peers.entries()) rows.push(await crashLoop(peer, i));
  console.log(`\nSIGKILL ${kills} times, as soon as each run is up, under a client connecting in a loop to 127.0.0.1:\n`);
  console.log("| supervisor | refused | connections made | other failures | duration |\n|---|---:|---:|---:|---:|");
  console.log(rows.join("\n"));
  const cycles = [await daemonizeCycles("reload", true), await daemonizeCycles("restart", true), await daemonizeCycles("restart", false), await pm2Cycles()];
  console.log(`\n${reloads} replacements of an HTTP server under a client making requests without pause (test/socket-server.py, which finishes its requests on TERM):\n`);
  console.log("| | failed requests | of them refused | requests answered | slowest request | time per replacement |\n|---|---:|---:|---:|---:|---:|");
  console.log(cycles.join("\n"));
} finally {
  cleanup();
}

// npm run bench, fourth part: what --watchdog, --health and --max-memory cost the monitor. The
// monitor's resident memory and its CPU time over a stretch, scaled to an hour, with none of them,
// with all three (an HTTP or a tcp: probe every second), and with an exec: probe every second.
// Prints a markdown table.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { onInterrupt } from "./bench-common";

const root = new URL("..", import.meta.url).pathname;
const bin = `${root}dist/daemonize`;
const seconds = Number(process.env.BENCH_LIVENESS_SECONDS ?? 60);
const tmp = mkdtempSync("/tmp/daemonize-bench-liveness-");
const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith("npm_") && k !== "INIT_CWD" && k !== "NODE")) as Record<string, string>;

// The watched program: an HTTP server on a free loopback port that sends WATCHDOG=1 every 200 ms.
writeFileSync(
  `${tmp}/app.py`,
  `import http.server, os, socket, threading, time
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self): self.send_response(200); self.end_headers()
    def log_message(self, *a): pass
server = http.server.HTTPServer(("127.0.0.1", 0), H)
open("${tmp}/port", "w").write(str(server.server_address[1]))
def ping():
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    while "NOTIFY_SOCKET" in os.environ:
        s.sendto(b"WATCHDOG=1", os.environ["NOTIFY_SOCKET"]); time.sleep(0.2)
threading.Thread(target=ping, daemon=True).start()
server.serve_forever()
`,
);

const pidfile = `${tmp}/app.pid`;
const stop = () => Bun.spawnSync([bin, "stop", "-p", pidfile], { env, stdout: "ignore", stderr: "ignore" });
onInterrupt(() => {
  stop();
  rmSync(tmp, { recursive: true, force: true });
});

function status(pid: number): Record<string, number> {
  const out: Record<string, number> = {};
  for (const line of readFileSync(`/proc/${pid}/status`, "utf8").split("\n")) {
    const m = /^(\w+):\s+(\d+) kB$/.exec(line);
    if (m) out[m[1] as string] = Number(m[2]);
  }
  return out;
}
/** The process's CPU time so far, ns (its first thread's schedstat: the monitor has one thread). */
const cpuNs = (pid: number) => Number(readFileSync(`/proc/${pid}/schedstat`, "utf8").split(" ")[0]);

interface Row {
  name: string;
  /** The options; PORT is the program's port, known once the first run is up. */
  options: (port: string) => string[];
}

async function measure(row: Row) {
  rmSync(`${tmp}/port`, { force: true });
  // The first run starts without the checks that need its port: the port is known only once it runs.
  const start = (options: string[]) => {
    const r = Bun.spawnSync([bin, "--supervise", "-p", pidfile, ...options, "--", "/usr/bin/python3", `${tmp}/app.py`], { env, stderr: "pipe" });
    if (r.exitCode !== 0) throw new Error(`start failed: ${r.stderr.toString()}`);
    return Number(readFileSync(pidfile, "utf8"));
  };
  let monitor = start([]);
  for (let i = 0; i < 500 && !(await Bun.file(`${tmp}/port`).exists()); i++) await Bun.sleep(10);
  const port = readFileSync(`${tmp}/port`, "utf8");
  stop();
  monitor = start(row.options(port));
  // Past its first probes and allocations.
  await Bun.sleep(3000);
  const before = cpuNs(monitor);
  await Bun.sleep(seconds * 1000);
  const used = cpuNs(monitor) - before;
  const mem = status(monitor);
  const json = JSON.parse(Bun.spawnSync([bin, "status", "--json", "-p", pidfile], { env }).stdout.toString());
  stop();
  return { rssAnon: mem.RssAnon, vmRss: mem.VmRSS, perHour: (used / 1e9) * (3600 / seconds), restarts: json.restarts as number };
}

const rows: Row[] = [
  { name: "`--supervise` alone", options: () => [] },
  {
    name: "`--watchdog 1s --health http://… --health-interval 1s --max-memory 1G`",
    options: (port) => ["--watchdog", "1s", "--health", `http://127.0.0.1:${port}/`, "--health-interval", "1s", "--max-memory", "1G"],
  },
  { name: "`--health exec:/bin/true --health-interval 1s`", options: () => ["--health", "exec:/bin/true", "--health-interval", "1s"] },
  {
    name: "all three, with `--health tcp:PORT --health-interval 1s`",
    options: (port) => ["--watchdog", "1s", "--health", `tcp:${port}`, "--health-interval", "1s", "--max-memory", "1G"],
  },
];

let failed = false;
try {
  const load = readFileSync("/proc/loadavg", "utf8").split(" ").slice(0, 3).join(" ");
  console.log(`The monitor with liveness checks on (over ${seconds} s each, scaled to an hour; load average ${load} at the start)\n`);
  console.log("| monitor | RssAnon KiB | VmRSS KiB | CPU time per hour | restarts |");
  console.log("|---|---:|---:|---:|---:|");
  for (const row of rows) {
    const r = await measure(row);
    console.log(`| ${row.name} | ${r.rssAnon} | ${r.vmRss} | ${r.perHour.toFixed(2)} s | ${r.restarts} |`);
  }
  console.log(
    "\nCPU time from /proc/PID/schedstat. The program is a python3 HTTP server that sends WATCHDOG=1 every 200 ms (the monitor reads each one), so the row with all three also reads 5 notifications a second, sums the tree's memory 4 times a second and makes an HTTP request every second. No peer has all three: supervisord needs superlance's httpok and memmon (separate Python processes), runit, s6 and daemontools have none.",
  );
} catch (e) {
  console.error(`bench: ${(e as Error).message}`);
  failed = true;
} finally {
  stop();
  rmSync(tmp, { recursive: true, force: true });
}
process.exit(failed ? 1 : 0);

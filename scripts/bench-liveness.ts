// npm run bench, fourth part: what --watchdog, --health and --max-memory cost the monitor. The
// monitor's resident memory and its CPU time over a stretch, scaled to an hour, with none of them,
// with all three (an HTTP or a tcp: probe every second), and with an exec: probe every second.
// Prints a markdown table.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { onInterrupt, procStatus } from "./bench-common";
import { freePort } from "./free-port";

const root = new URL("..", import.meta.url).pathname;
const bin = `${root}dist/daemonize`;
const seconds = Number(process.env.BENCH_LIVENESS_SECONDS ?? 60);
const tmp = mkdtempSync("/tmp/daemonize-bench-liveness-");
const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith("npm_") && k !== "INIT_CWD" && k !== "NODE")) as Record<string, string>;

// The watched program: an HTTP server on a loopback port that sends WATCHDOG=1 every half
// WATCHDOG_USEC, as systemd asks (sd_watchdog_enabled(3)).
writeFileSync(
  `${tmp}/app.py`,
  `import http.server, os, socket, sys, threading, time
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self): self.send_response(200); self.end_headers()
    def log_message(self, *a): pass
server = http.server.HTTPServer(("127.0.0.1", int(sys.argv[1])), H)
def ping():
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    while "WATCHDOG_USEC" in os.environ:
        s.sendto(b"WATCHDOG=1", os.environ["NOTIFY_SOCKET"]); time.sleep(int(os.environ["WATCHDOG_USEC"]) / 2e6)
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

/** The process's CPU time so far, ns (its first thread's schedstat: the monitor has one thread). */
const cpuNs = (pid: number) => Number(readFileSync(`/proc/${pid}/schedstat`, "utf8").split(" ")[0]);

interface Row {
  name: string;
  options: (port: number) => string[];
}


async function measure(row: Row) {
  const port = freePort();
  const r = Bun.spawnSync([bin, "--supervise", "-p", pidfile, ...row.options(port), "--", "/usr/bin/python3", `${tmp}/app.py`, String(port)], { env, stderr: "pipe" });
  if (r.exitCode !== 0) throw new Error(`start failed: ${r.stderr.toString()}`);
  const monitor = Number(readFileSync(pidfile, "utf8"));
  // Past its first probes and allocations.
  await Bun.sleep(3000);
  const before = cpuNs(monitor);
  await Bun.sleep(seconds * 1000);
  const used = cpuNs(monitor) - before;
  const mem = procStatus(monitor);
  const json = JSON.parse(Bun.spawnSync([bin, "status", "--json", "-p", pidfile], { env }).stdout.toString());
  stop();
  return { rssAnon: mem.RssAnon, vmRss: mem.VmRSS, perHour: (used / 1e9) * (3600 / seconds), restarts: json.restarts as number };
}

const rows: Row[] = [
  { name: "`--supervise` alone", options: () => [] },
  { name: "`--watchdog 1s` (the program pings every 500 ms)", options: () => ["--watchdog", "1s"] },
  { name: "`--health tcp:PORT --health-interval 1s`", options: (port) => ["--health", `tcp:${port}`, "--health-interval", "1s"] },
  { name: "`--health http://… --health-interval 1s`", options: (port) => ["--health", `http://127.0.0.1:${port}/`, "--health-interval", "1s"] },
  { name: "`--health exec:/bin/true --health-interval 1s`", options: () => ["--health", "exec:/bin/true", "--health-interval", "1s"] },
  { name: "`--max-memory 1G`", options: () => ["--max-memory", "1G"] },
  {
    name: "all three: `--watchdog 1s --health http://… --health-interval 1s --max-memory 1G`",
    options: (port) => ["--watchdog", "1s", "--health", `http://127.0.0.1:${port}/`, "--health-interval", "1s", "--max-memory", "1G"],
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
    "\nCPU time from /proc/PID/schedstat. The program is a python3 HTTP server (with a second thread) that sends WATCHDOG=1 every half period, as sd_watchdog_enabled(3) asks: the row with all three reads 2 notifications a second, makes an HTTP request every second and sums the tree's memory every 2 s (every 250 ms only near the limit). No peer has all three: supervisord needs superlance's httpok and memmon (separate Python processes), runit, s6 and daemontools have none.",
  );
} catch (e) {
  console.error(`bench: ${(e as Error).message}`);
  failed = true;
} finally {
  stop();
  rmSync(tmp, { recursive: true, force: true });
}
process.exit(failed ? 1 : 0);

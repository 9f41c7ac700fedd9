// npm run bench, --cgroup part: what a cgroup of its own costs a start (plain and supervised,
// with and without --cgroup, through hyperfine), the monitor's memory with it, and what is
// left of a tree of 20 children and a setsid grandchild after `kill -9` of the monitor and
// `daemonize stop`, with and without it. Prints markdown tables. Needs root and a writable
// cgroup2 hierarchy; makes cgroups only under its `daemonize` directory and removes them.
import { $ } from "bun";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { median, onInterrupt } from "./bench-common";

const root = new URL("..", import.meta.url).pathname;
$.env(Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith("npm_") && k !== "INIT_CWD" && k !== "NODE")));
const bin = `${root}dist/daemonize`;
const runs = Number(process.env.BENCH_RUNS ?? 100);
const rounds = Number(process.env.BENCH_ROUNDS ?? 5);

if (!Bun.which("hyperfine")) {
  console.error("bench: hyperfine is missing (apt-get install hyperfine)");
  process.exit(1);
}
const probe = Bun.spawnSync([bin, "--check", "--cgroup", "-p", "/tmp/daemonize-bench-cgroup-probe.pid", "--", "/bin/true"], { stderr: "pipe" });
if (probe.exitCode !== 0) {
  console.error(`bench: --cgroup cannot run here: ${probe.stderr.toString().trim()}`);
  process.exit(1);
}

const tmp = mkdtempSync("/tmp/daemonize-bench-cgroup-");
const pidfile = `${tmp}/b.pid`;
const stop = () => Bun.spawnSync([bin, "stop", "-p", pidfile]);
onInterrupt(() => {
  stop();
  rmSync(tmp, { recursive: true, force: true });
});

const rows: [string, string[]][] = [
  ["daemonize", []],
  ["daemonize --cgroup", ["--cgroup"]],
  ["daemonize --supervise", ["--supervise"]],
  ["daemonize --supervise --cgroup", ["--supervise", "--cgroup"]],
];

console.log(`\nA start with and without --cgroup (hyperfine, ${runs} runs each, the daemon stopped before each run; milliseconds)\n`);
console.log("| command | mean | median | min |");
console.log("|---|---|---|---|");
for (const [name, extra] of rows) {
  const json = `${tmp}/h.json`;
  await $`hyperfine -N --style none --runs ${runs} --warmup 5 --prepare ${`${bin} stop -p ${pidfile}`} --export-json ${json} ${`${bin} -p ${pidfile} ${extra.join(" ")} -- /bin/sleep 1000`}`.quiet();
  stop();
  const r = JSON.parse(readFileSync(json, "utf8")).results[0] as { mean: number; median: number; min: number };
  console.log(`| \`${name}\` | ${(r.mean * 1000).toFixed(2)} | ${(r.median * 1000).toFixed(2)} | ${(r.min * 1000).toFixed(2)} |`);
}

const status = (pid: number) =>
  Object.fromEntries(
    readFileSync(`/proc/${pid}/status`, "utf8")
      .split("\n")
      .map((l) => l.split(":"))
      .filter((f) => f.length === 2)
      .map(([k, v]) => [k, (v as string).trim()]),
  );
const marked = (marker: string) =>
  readdirSync("/proc")
    .filter((e) => /^\d+$/.test(e))
    .filter((p) => {
      try {
        return readFileSync(`/proc/${p}/cmdline`, "utf8").includes(marker) && !/^[ZX]/.test(status(Number(p)).State ?? "Z");
      } catch {
        return false;
      }
    })
    .map(Number);
const waitUntil = async (ok: () => boolean, what: string) => {
  for (const deadline = Date.now() + 10_000; !ok(); await Bun.sleep(5)) if (Date.now() > deadline) throw new Error(`bench: timed out waiting for ${what}`);
};

console.log(`\nkill -9 of the monitor of a program with 20 children and a setsid grandchild, then \`daemonize stop\` (${rounds} rounds; the stop's median time in ms)\n`);
console.log("| | monitor RssAnon KiB | processes of the tree after the kill | left after stop | stop |");
console.log("|---|---|---|---|---|");
for (const [name, extra] of [rows[2], rows[3]] as [string, string[]][]) {
  const anon: number[] = [];
  const afterKill: number[] = [];
  const left: number[] = [];
  const took: number[] = [];
  for (let i = 0; i < rounds; i++) {
    const marker = `0${Math.floor(Math.random() * 1e9)}`;
    const script = `${tmp}/tree.sh`;
    writeFileSync(script, `#!/bin/sh\ni=0\nwhile [ $i -lt 20 ]; do sleep 1000 ${marker} & i=$((i+1)); done\nsetsid sh -c 'sleep 1000 ${marker}; :' &\nexec sleep 1000 ${marker}\n`, { mode: 0o755 });
    await $`${bin} -p ${pidfile} ${extra} -- ${script}`.quiet();
    const monitor = Number(readFileSync(pidfile, "utf8"));
    await waitUntil(() => marked(marker).length === 23, "the tree");
    anon.push(Number.parseInt(status(monitor).RssAnon ?? "0"));
    process.kill(monitor, "SIGKILL");
    await waitUntil(() => marked(marker).length === 22, "the program to die with its monitor");
    afterKill.push(marked(marker).length);
    const t = performance.now();
    stop();
    took.push(performance.now() - t);
    left.push(marked(marker).length);
    for (const pid of marked(marker)) process.kill(pid, "SIGKILL");
    if (existsSync(pidfile)) rmSync(pidfile);
  }
  console.log(`| \`${name}\` | ${median(anon)} | ${median(afterKill)} | ${median(left)} | ${median(took).toFixed(1)} |`);
}
rmSync(tmp, { recursive: true, force: true });

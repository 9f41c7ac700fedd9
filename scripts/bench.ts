// npm run bench: launch time of daemonize (a start, --version and status) beside the
// floor for any Bun tool (a compiled hello world built with the same flags) and the
// peers that are installed (apt-get install hyperfine time daemon daemonize); then stop
// and status over many pidfiles. Prints markdown tables.
import { $ } from "bun";
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { median } from "./bench-common";
import { FLAGS } from "./flags";

const root = new URL("..", import.meta.url).pathname;
// npm run adds a hundred npm_* variables, which daemonize copies to every daemon: time the
// launchers with the environment of the shell that ran npm, as a user's script would have it.
$.env(Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith("npm_") && k !== "INIT_CWD" && k !== "NODE")));
const bin = `${root}dist/daemonize`;
const tmp = mkdtempSync("/tmp/daemonize-bench-");
const pidfile = `${tmp}/bench.pid`;
const runs = Number(process.env.BENCH_RUNS ?? 200);

if (!Bun.which("hyperfine") || !Bun.which("/usr/bin/time")) {
  console.error("bench: hyperfine or GNU time is missing (apt-get install hyperfine time)");
  process.exit(1);
}

writeFileSync(`${tmp}/bench.toml`, `program = ["/bin/sleep", "1000"]\npidfile = ${JSON.stringify(pidfile)}\n`, { mode: 0o644 });
// The floor: the same build flags as scripts/build.ts, around a one-line program.
writeFileSync(`${tmp}/hello.ts`, 'console.log("hello world");\n');
await $`${process.execPath} build ${FLAGS} ${tmp}/hello.ts --outfile ${tmp}/hello`.quiet();
// What the design costs before daemonize checks anything: native library, clone, pidfile, exec.
await $`${process.execPath} build ${FLAGS} ${root}scripts/minimal-launcher.ts --outfile ${tmp}/minimal`.quiet();

interface Row {
  name: string;
  command: string;
  /** Starts no daemon: nothing to stop before the next run. */
  still?: true;
}
// status asks about a daemon that runs through the whole table.
const running = `${tmp}/running.pid`;
const rows: Row[] = [
  { name: "Bun hello world (floor)", command: `${tmp}/hello`, still: true },
  { name: "minimal launcher on the same native path", command: `${tmp}/minimal ${pidfile} /bin/sleep 1000` },
  { name: "daemonize --version", command: `${bin} --version`, still: true },
  { name: "daemonize (this)", command: `${bin} --pidfile ${pidfile} -- /bin/sleep 1000` },
  // The same start from a config file: trust, TOML and the merge, loaded only for -c.
  { name: "daemonize -c FILE (the same start)", command: `${bin} -c ${tmp}/bench.toml` },
  { name: "daemonize status (a running daemon)", command: `${bin} status -p ${running}`, still: true },
];
const peers: [string, string, string][] = [
  ["daemonize", "bmc daemonize", `daemonize -p ${pidfile} /bin/sleep 1000`],
  ["daemon", "libslack daemon", `daemon --pidfile=${pidfile} -- /bin/sleep 1000`],
  ["start-stop-daemon", "start-stop-daemon", `start-stop-daemon --start --background --make-pidfile --pidfile ${pidfile} --exec /bin/sleep -- 1000`],
];
// The common real case: drop to nobody and log to a file. bmc daemonize opens
// the log after the drop, so the file must already be nobody's.
const log = `${tmp}/bench.log`;
await $`chmod 755 ${tmp} && touch ${log} && chown nobody ${log}`;
const asUser: [string, string, string][] = [
  ["daemonize", "bmc daemonize --user", `daemonize -u nobody -o ${log} -p ${pidfile} /bin/sleep 1000`],
  ["start-stop-daemon", "start-stop-daemon --chuid", `start-stop-daemon --start --background --chuid nobody --output ${log} --make-pidfile --pidfile ${pidfile} --exec /bin/sleep -- 1000`],
];
rows.push({ name: "daemonize --user nobody --stdout LOG", command: `${bin} --user nobody --stdout ${log} --pidfile ${pidfile} -- /bin/sleep 1000` });
// Diagnosis, not a setting daemonize could use: the start without JavaScriptCore's heap warm-up thread (env's own exec included).
rows.push({ name: "daemonize, warm-up thread off (env BUN_JSC_useWarmUpMarkedBlocks=0)", command: `env BUN_JSC_useWarmUpMarkedBlocks=0 ${bin} --pidfile ${pidfile} -- /bin/sleep 1000` });
const skipped: string[] = [];
for (const [cmd, name, command] of [...peers, ...asUser]) {
  // bmc daemonize shares our name: only a binary other than ours counts.
  const path = Bun.which(cmd);
  if (path && path !== bin) rows.push({ name, command });
  else skipped.push(name);
}

// Each run leaves a daemon behind: end it (by its pidfile) before the next run.
// Some launchers return before their pidfile is written, so wait for it a little.
const stop = `sh -c 'for i in $(seq 100); do [ -s ${pidfile} ] && break; sleep 0.01; done; kill $(cat ${pidfile} 2>/dev/null) 2>/dev/null; rm -f ${pidfile}'`;
const json = `${tmp}/results.json`;
/** Median, mean, σ, min and max of samples in seconds. */
function summary(times: number[]) {
  const t = [...times].sort((a, b) => a - b);
  const mean = t.reduce((a, b) => a + b, 0) / t.length;
  const stddev = Math.sqrt(t.reduce((a, b) => a + (b - mean) ** 2, 0) / (t.length - 1));
  return { median: median(t), mean, stddev, min: t[0] as number, max: t.at(-1) as number };
}

// hyperfine runs all of one command, then all of the next: on a shared machine the
// speed drifts between them by more than the differences measured. So the runs are
// split into rounds, each round running every command, and the samples pooled.
const ROUNDS = 10;
try {
  await $`${bin} -p ${running} -- /bin/sleep 1000`;
  const samples: number[][] = rows.map(() => []);
  // One --prepare per command: waiting for a pidfile that never comes would idle the machine before every run of those.
  const prepare = rows.flatMap((r) => ["--prepare", r.still ? "true" : stop]);
  for (let round = 0; round < ROUNDS; round++) {
    const warmup = round === 0 ? 20 : 3;
    await $`hyperfine -N --warmup ${warmup} --runs ${Math.ceil(runs / ROUNDS)} ${prepare} --export-json ${json} ${rows.map((r) => r.command)}`.quiet();
    const results = JSON.parse(readFileSync(json, "utf8")).results as { times: number[] }[];
    results.forEach((r, i) => samples[i]?.push(...r.times));
  }
  await $`sh -c ${stop}`.nothrow();
  const results = samples.map(summary);
  const floor = (results[0] as { median: number }).median;
  const ms = (s: number) => (s * 1000).toFixed(2);
  console.log(`Launch until the launcher returns (hyperfine, ${samples[0]?.length} runs each in ${ROUNDS} interleaved rounds; ms)\n`);
  console.log("| command | median | mean ± σ | min … max | × hello world |");
  console.log("|---|---:|---:|---:|---:|");
  results.forEach((r, i) =>
    console.log(`| ${rows[i]?.name} | ${ms(r.median)} | ${ms(r.mean)} ± ${ms(r.stddev)} | ${ms(r.min)} … ${ms(r.max)} | ${(r.median / floor).toFixed(2)} |`),
  );
  if (skipped.length) console.log(`\nNot installed, skipped: ${skipped.join(", ")}.`);
  console.log("libslack daemon with --user=nobody exits 1 with a root-owned pidfile directory, so it has no --user row.");
  console.log("\nPeak RSS of the launcher (median of 5 runs, MiB)\n");
  console.log("| command | peak RSS |");
  console.log("|---|---:|");
  // GNU time's %M: the launcher's own high-water mark, in KiB (time is small, so its fork adds nothing).
  for (const row of rows) {
    const rss: number[] = [];
    for (let i = 0; i < 5; i++) {
      if (!row.still) await $`sh -c ${stop}`.nothrow();
      const r = Bun.spawnSync(["/usr/bin/time", "-f", "%M", "sh", "-c", `exec ${row.command}`], { stdout: "ignore", stderr: "pipe" });
      rss.push(Number(r.stderr.toString().trim().split("\n").at(-1)));
    }
    rss.sort((a, b) => a - b);
    console.log(`| ${row.name} | ${((rss[2] ?? 0) / 1024).toFixed(1)} |`);
  }
  await $`sh -c ${stop}`.nothrow();
  if (Bun.which("strace")) {
    console.log("\nJavaScriptCore's heap blocks (16 KiB each): past 64 allocated, it starts a thread that pre-faults 32 more\n");
    console.log("| command | least threshold that starts no warm-up thread |");
    console.log("|---|---:|");
    const program = ["/bin/true"];
    for (const [name, command] of [
      ["Bun hello world (floor)", [`${tmp}/hello`]],
      ["minimal launcher", [`${tmp}/minimal`, pidfile, ...program]],
      ["daemonize --version", [bin, "--version"]],
      ["daemonize", [bin, "--pidfile", pidfile, "--", ...program]],
      ["daemonize status (a running daemon)", [bin, "status", "-p", running]],
    ] as [string, string[]][])
      console.log(`| ${name} | ${heapBlocks(command)} |`);
  } else console.log("\nstrace is missing (apt-get install strace): no heap block counts.");
  const mib = (p: string) => (statSync(p).size / 2 ** 20).toFixed(2);
  console.log(`\nBinary size: daemonize ${mib(bin)} MiB, hello world ${mib(`${tmp}/hello`)} MiB.`);
  await controlCommands();
} finally {
  await $`sh -c ${stop}`.nothrow();
  await $`${bin} stop -p ${running}`.nothrow().quiet();
  // The stop benchmark's daemon, should it have failed between a start and its stop (its argv does not name the temp dir).
  await $`${bin} stop -p ${tmp}/stop.pid`.nothrow().quiet();
  // A launcher that returned before writing its pidfile leaves a daemon no pidfile names: find ours by the temp dir in argv.
  for (const pid of readdirSync("/proc").filter((e) => /^\d+$/.test(e))) {
    try {
      if (readFileSync(`/proc/${pid}/cmdline`, "utf8").includes(tmp)) process.kill(Number(pid));
    } catch {}
  }
  rmSync(tmp, { recursive: true, force: true });
}

/**
 * The least BUN_JSC_warmUpMarkedBlockStartAfterBlocks at which a command starts no heap warm-up
 * thread (strace counts its threads): how many blocks it allocates, whatever the machine's load.
 */
function heapBlocks(command: string[]): number {
  let [lo, hi] = [1, 512];
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    rmSync(pidfile, { force: true });
    Bun.spawnSync(["strace", "-f", "-qq", "-e", "trace=clone3", "-o", `${tmp}/threads`, ...command], {
      env: { ...process.env, BUN_JSC_warmUpMarkedBlockStartAfterBlocks: String(mid) },
      stdout: "ignore",
      stderr: "ignore",
    });
    const threads = readFileSync(`${tmp}/threads`, "utf8").split("\n").filter((l) => l.includes("clone3(")).length;
    if (threads > 0) lo = mid + 1;
    else hi = mid;
  }
  rmSync(pidfile, { force: true });
  return lo;
}

/** stop latency, and status over 1,000 pidfiles: a shell loop, as an init system would, and one call. */
async function controlCommands() {
  const pid = readFileSync(running, "utf8");
  const many = `${tmp}/many`;
  await $`mkdir ${many}`;
  for (let i = 0; i < 1000; i++) writeFileSync(`${many}/${i}.pid`, pid);
  const start = `sh -c '${bin} -p ${tmp}/stop.pid -- /bin/sleep 1000'`;
  await $`hyperfine -N --warmup 3 --runs ${Math.min(runs, 50)} --prepare ${start} --export-json ${json} ${`${bin} stop -p ${tmp}/stop.pid`}`.quiet();
  const stopped = JSON.parse(readFileSync(json, "utf8")).results[0];
  await $`hyperfine --warmup 1 --runs 3 --export-json ${json} ${`for f in ${many}/*.pid; do ${bin} status -p $f >/dev/null; done`}`.quiet();
  const loop = JSON.parse(readFileSync(json, "utf8")).results[0];
  await $`hyperfine --warmup 1 --runs 20 --export-json ${json} ${`${bin} status ${many}/*.pid >/dev/null`}`.quiet();
  const once = JSON.parse(readFileSync(json, "utf8")).results[0];
  const ms = (s: number) => (s * 1000).toFixed(2);
  console.log("\nControl commands (median, ms)\n");
  console.log("| command | median | mean ± σ |");
  console.log("|---|---:|---:|");
  console.log(`| stop (TERM, until gone) | ${ms(stopped.median)} | ${ms(stopped.mean)} ± ${ms(stopped.stddev)} |`);
  console.log(`| status over 1,000 pidfiles (shell loop) | ${ms(loop.median)} | ${ms(loop.mean)} ± ${ms(loop.stddev)} |`);
  console.log(`| status over 1,000 pidfiles (one call) | ${ms(once.median)} | ${ms(once.mean)} ± ${ms(once.stddev)} |`);
}

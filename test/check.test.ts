// --check: a dry run that makes every check a start makes, runs the child path
// as the target user in a throwaway process, and creates and starts nothing.
// Its agreement with a real start on every failure is tested in errors.test.ts.
import { afterEach, describe, expect, test } from "bun:test";
import { chmodSync, mkdirSync, readdirSync } from "node:fs";
import { cleanup, isRoot, marked, PROBE, readPid, run, startProbe, tempDir, track } from "./helpers";

afterEach(cleanup);

const NAMES = ["user", "chdir", "arguments", "limit", "environment", "program", "pidfile", "stdio", "daemon", "publish", "exec"];

describe("--check", () => {
  test.skipIf(!isRoot)("a start that would work: one ok line per check, exit 0, nothing created or started; the start then agrees", async () => {
    const dir = tempDir();
    // Only root can create files here: the log is created by the launcher, as root, so the start works.
    mkdirSync(`${dir}/logs`, { mode: 0o755 });
    mkdirSync(`${dir}/work`, { mode: 0o755 });
    const marker = `marker-${Math.random()}`;
    const args = ["-p", `${dir}/p.pid`, "-u", "nobody", "-o", `${dir}/logs/out.log`, "-C", `${dir}/work`, "--", PROBE, marker];
    const r = await run(["--check", ...args]);
    expect([r.code, r.stderr]).toEqual([0, ""]);
    const lines = r.stdout.trimEnd().split("\n");
    expect(lines.map((l) => l.match(/^ok {4}(\w+): /)?.[1])).toEqual([...NAMES, undefined]);
    expect(lines[0]).toBe("ok    user: nobody (uid 65534), gid 65534, groups 65534");
    expect(lines.at(-2)).toBe(`ok    exec: ${PROBE} (and any #! or ELF interpreter) can be executed as uid 65534`);
    expect(lines.at(-1)).toBe("a start would succeed");
    expect([readdirSync(dir).sort(), readdirSync(`${dir}/logs`), marked(marker)]).toEqual([["logs", "work"], [], []]);

    const started = await run(args);
    expect([started.code, started.stderr]).toEqual([0, ""]);
    track(readPid(`${dir}/p.pid`));
  });

  test("--json: one object with ok, the exit code and every check; a failure is also on stderr", async () => {
    const dir = tempDir();
    const good = await run(["--check", "--json", "-p", `${dir}/p.pid`, "--", PROBE]);
    expect(good.code).toBe(0);
    const report = JSON.parse(good.stdout);
    expect([report.ok, report.exitCode]).toEqual([true, 0]);
    expect(report.checks.map((c: { check: string }) => c.check)).toEqual(NAMES);
    expect(report.checks.every((c: { ok: boolean }) => c.ok)).toBe(true);

    const bad = await run(["--check", "--json", "-p", `${dir}/p.pid`, "--", `${dir}/nope`]);
    expect(bad.code).toBe(127);
    expect(bad.stderr).toBe(`daemonize: error: program ${dir}/nope not found\n`);
    const failed = JSON.parse(bad.stdout);
    expect([failed.ok, failed.exitCode, failed.checks.at(-1)]).toEqual([false, 127, { check: "program", ok: false, detail: `program ${dir}/nope not found` }]);
    expect(readdirSync(dir)).toEqual([]);
  });

  test("a running daemon: exit 1 as the start would, or 0 with --oknodo", async () => {
    const dir = tempDir();
    const { pid, pidfile } = await startProbe(dir);
    const r = await run(["--check", "-p", pidfile, "--", PROBE]);
    expect([r.code, r.stderr]).toEqual([1, `daemonize: error: already running (pid ${pid})\n`]);
    expect(r.stdout.trimEnd().split("\n").slice(-2)).toEqual([`FAIL  pidfile: already running (pid ${pid})`, "a start would fail with exit code 1"]);
    const ok = await run(["--check", "--oknodo", "-p", pidfile, "--", PROBE]);
    expect([ok.code, ok.stderr]).toEqual([0, ""]);
    expect(ok.stdout).toContain(`ok    pidfile: already running (pid ${pid}); with --oknodo a start exits 0\n`);
  });

  test("--truncate is not applied and an existing log keeps its contents", async () => {
    const dir = tempDir();
    await Bun.write(`${dir}/log`, "keep\n");
    chmodSync(`${dir}/log`, 0o644);
    const r = await run(["--check", "--truncate", "-l", `${dir}/log`, "--", PROBE]);
    expect(r.code).toBe(0);
    expect(await Bun.file(`${dir}/log`).text()).toBe("keep\n");
  });

  test("a control character in what a check names cannot forge a line of its own", async () => {
    const dir = tempDir();
    const r = await run(["--check", "--", `${dir}/a\nFAIL  forged`]);
    expect(r.code).toBe(127);
    expect(r.stdout.split("\n").filter((l) => l.startsWith("FAIL"))).toEqual([`FAIL  program: program ${dir}/a\\nFAIL  forged not found`]);
  });

  test("--json without --check is a usage error", async () => {
    const r = await run(["--json", "--", PROBE]);
    expect([r.code, r.stderr]).toEqual([64, "daemonize: error: --json goes with --check\n"]);
  });
});

// daemonize is not a privilege boundary: a copy installed set-user-ID, set-group-ID or with
// file capabilities refuses every command at once, before it reads an option or opens a file.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { chmodSync, copyFileSync, existsSync, mkdtempSync, readdirSync, rmSync } from "node:fs";
import { BIN, cleanup, isRoot, missing, NOBODY, PROBE } from "./helpers";

const skip = !isRoot || missing("set-user-ID refusal", ["setpriv", "util-linux"]);

describe.skipIf(skip)("a privileged install", () => {
  let dir = "";
  let bin = "";
  const rootOnly = () => `${dir}/root-only`;

  beforeAll(() => {
    dir = mkdtempSync("/tmp/daemonize-guard-");
    chmodSync(dir, 0o755);
    bin = `${dir}/daemonize`;
    copyFileSync(BIN, bin);
    copyFileSync(PROBE, `${dir}/probe`);
    chmodSync(`${dir}/probe`, 0o755);
    Bun.spawnSync(["mkdir", "-m", "700", rootOnly()]);
  });
  afterAll(async () => {
    await cleanup();
    rmSync(dir, { recursive: true, force: true });
  });

  const asNobody = (args: string[], env: Record<string, string> = {}) => {
    const r = Bun.spawnSync(
      ["setpriv", "--reuid", String(NOBODY.uid), "--regid", String(NOBODY.gid), "--clear-groups", "--", "env", "-i", ...Object.entries(env).map(([k, v]) => `${k}=${v}`), bin, ...args],
      { cwd: dir, stdout: "pipe", stderr: "pipe" },
    );
    return { code: r.exitCode, stdout: r.stdout.toString(), stderr: r.stderr.toString() };
  };

  const refused = (r: { code: number; stdout: string; stderr: string }, ids: RegExp) => {
    expect(r.code).toBe(77);
    expect(r.stdout).toBe("");
    expect(r.stderr).toMatch(/^daemonize: error: refusing to run set-user-ID, set-group-ID or with file capabilities \(uid 65534, euid \d+, gid 65534, egid \d+\): daemonize is not a privilege boundary; let users start daemons through sudo instead \(see the README\)\n$/);
    expect(r.stderr).toMatch(ids);
  };

  const commands = () => [
    ["--unsafe", "-p", `${dir}/c.pid`, "--", `${dir}/probe`, "x"],
    ["--user", "root", "-p", `${dir}/r.pid`, "--", `${dir}/probe`, "x"],
    ["-p", `${rootOnly()}/evil.pid`, "--", `${dir}/probe`, "x"],
    ["stop", "-p", `${dir}/c.pid`],
    ["--version"],
  ];

  test("set-user-ID root: every command is refused with 77, and nothing is created", () => {
    chmodSync(bin, 0o4755);
    for (const args of commands()) refused(asNobody(args), /euid 0, gid 65534, egid 65534/);
    expect(readdirSync(rootOnly())).toEqual([]);
    expect(existsSync(`${dir}/c.pid`) || existsSync(`${dir}/r.pid`)).toBe(false);
  });

  test("set-group-ID root: refused the same way", () => {
    chmodSync(bin, 0o2755);
    for (const args of commands()) refused(asNobody(args), /euid 65534, gid 65534, egid 0\)/);
    expect(existsSync(`${dir}/c.pid`)).toBe(false);
  });

  test.skipIf(missing("file capabilities", ["setcap", "libcap2-bin"]))("file capabilities: refused though every id is the caller's", () => {
    chmodSync(bin, 0o755);
    expect(Bun.spawnSync(["setcap", "cap_dac_override+ep", bin]).exitCode).toBe(0);
    try {
      refused(asNobody(["-p", `${rootOnly()}/evil.pid`, "--", `${dir}/probe`, "x"]), /euid 65534, gid 65534, egid 65534/);
      expect(readdirSync(rootOnly())).toEqual([]);
    } finally {
      Bun.spawnSync(["setcap", "-r", bin]);
    }
  });

  test("the same copy, not privileged, runs for nobody", () => {
    chmodSync(bin, 0o755);
    const r = asNobody(["--version"]);
    expect([r.code, r.stderr]).toEqual([0, ""]);
  });
});

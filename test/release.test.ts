// The release binary is self-contained: it runs from anywhere, with an empty
// environment, as any user, and its checksum and version say what it is.
import { afterEach, describe, expect, test } from "bun:test";
import { chmodSync, copyFileSync, existsSync, readFileSync, writeFileSync } from "node:fs";
import { BIN, cleanup, isRoot, missing, PROBE, procArgv, procEnv, readPid, ROOT, run, tempDir, track } from "./helpers";

afterEach(cleanup);

describe("release build", () => {
  test("dist/daemonize.sha256 matches the binary", () => {
    const r = Bun.spawnSync(["sha256sum", "-c", "daemonize.sha256"], { cwd: `${ROOT}dist` });
    expect(r.stdout.toString()).toBe("daemonize: OK\n");
  });

  test("--version names the version, the Bun version and the commit", () => {
    const pkg = JSON.parse(readFileSync(`${ROOT}package.json`, "utf8"));
    const head = Bun.spawnSync(["git", "rev-parse", "--short", "HEAD"], { cwd: ROOT }).stdout.toString().trim();
    const out = Bun.spawnSync([BIN, "--version"]).stdout.toString();
    expect(out).toBe(`daemonize ${pkg.version} (bun ${Bun.version}, commit ${head || "unknown"})\n`);
  });

  for (const asNobody of [false, true]) {
    test.skipIf(asNobody && (!isRoot || missing("release copy run as nobody", ["setpriv", "util-linux"])))(`a copy outside the repo runs with env -i${asNobody ? " as nobody" : ""}`, () => {
      const dir = tempDir();
      copyFileSync(BIN, `${dir}/daemonize`);
      chmodSync(`${dir}/daemonize`, 0o755);
      copyFileSync(PROBE, `${dir}/probe`);
      chmodSync(`${dir}/probe`, 0o755);
      if (asNobody) Bun.spawnSync(["chown", "65534:65534", dir]);
      const cmd = ["env", "-i", `${dir}/daemonize`, "-p", `${dir}/p.pid`, "--", `${dir}/probe`, "x"];
      const r = Bun.spawnSync(asNobody ? ["setpriv", "--reuid", "65534", "--regid", "65534", "--clear-groups", "--", ...cmd] : cmd, { cwd: dir, stderr: "pipe" });
      expect([r.exitCode, r.stderr.toString()]).toEqual([0, ""]);
      expect(procArgv(track(readPid(`${dir}/p.pid`)))).toEqual([`${dir}/probe`, "x"]);
    });
  }

  // A compiled Bun program would otherwise read .env and bunfig.toml from the
  // working directory: another user's directory could set the daemon's
  // environment, or run code as root through a preload.
  test("files in the working directory neither change the environment nor run code", async () => {
    const dir = tempDir();
    for (const name of [".env", ".env.local", ".env.production"]) writeFileSync(`${dir}/${name}`, "INJECTED=1\n");
    writeFileSync(`${dir}/bunfig.toml`, 'preload = ["./preload.js"]\n[run]\npreload = ["./preload.js"]\n');
    writeFileSync(`${dir}/preload.js`, `require("node:fs").writeFileSync(${JSON.stringify(`${dir}/ran`)}, "");\n`);
    const r = await run(["-p", `${dir}/p.pid`, "--", PROBE, "x"], { cwd: dir });
    expect([r.code, r.stderr]).toEqual([0, ""]);
    const env = procEnv(track(readPid(`${dir}/p.pid`)));
    expect(env.get("INJECTED")).toBeUndefined();
    expect(env.get("PATH")).toBeDefined();
    expect(existsSync(`${dir}/ran`)).toBe(false);
  });
});

// Preloaded once per `bun test` run: builds the probe program every end-to-end
// test starts as its daemon, statically so it also runs inside a bare chroot.
import { setDefaultTimeout } from "bun:test";
import { chmodSync, mkdtempSync, rmSync } from "node:fs";

const dir = mkdtempSync("/tmp/daemonize-probe-");
chmodSync(dir, 0o755);
const probe = `${dir}/probe`;
const cc = Bun.spawnSync(["cc", "-O2", "-static", "-o", probe, `${import.meta.dir}/probe.c`], { stderr: "pipe" });
if (cc.exitCode !== 0) throw new Error(`cannot build the test probe: ${cc.stderr.toString()}`);
process.env.DZ_PROBE = probe;
process.on("exit", () => rmSync(dir, { recursive: true, force: true }));

// End-to-end tests start real processes; the race and reuse tests take seconds.
setDefaultTimeout(30_000);

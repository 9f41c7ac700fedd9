// daemonize is not a privilege boundary. Installed set-user-ID or set-group-ID, or with file
// capabilities, it would run any caller's program as its owner, write where only its owner may,
// and stop the owner's daemons: so it refuses to run at all. main.ts imports this first, so the
// refusal comes before any option is read and before any file the caller names is opened. (Bun
// reads BUN_OPTIONS before this runs: the README says why that makes such an install unsafe anyway.)
import { readFileSync, writeSync } from "node:fs";
import { EXIT } from "./errors";

const AT_SECURE = 23n;

/**
 * The kernel's own verdict on this exec: set for a set-user-ID or set-group-ID binary and for one
 * that gained file capabilities. The saved ids need no look of their own: exec copies the
 * effective ids into them.
 */
function secureExec(): boolean {
  let auxv: Buffer;
  try {
    auxv = readFileSync("/proc/self/auxv");
  } catch (e) {
    // A process may always read its own auxv, unless the exec made it non-dumpable, as a secure exec does.
    // Without /proc, the ids still tell a set-user-ID or set-group-ID binary.
    return (e as NodeJS.ErrnoException).code === "EACCES";
  }
  for (let at = 0; at + 16 <= auxv.length; at += 16)
    if (auxv.readBigUInt64LE(at) === AT_SECURE) return auxv.readBigUInt64LE(at + 8) !== 0n;
  return false;
}

const [uid, euid, gid, egid] = [process.getuid?.(), process.geteuid?.(), process.getgid?.(), process.getegid?.()];
if (uid !== euid || gid !== egid || secureExec()) {
  writeSync(
    2,
    `daemonize: error: refusing to run set-user-ID, set-group-ID or with file capabilities (uid ${uid}, euid ${euid}, gid ${gid}, egid ${egid}): daemonize is not a privilege boundary; let users start daemons through sudo instead (see the README)\n`,
  );
  process.exit(EXIT.noperm.code);
}

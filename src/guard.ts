// daemonize is not a privilege boundary. Installed set-user-ID or set-group-ID, or with file
// capabilities, it would run any caller's program as its owner, write where only its owner may,
// and stop the owner's daemons: so it refuses to run at all. main.ts imports this first, so the
// ids are compared before any option is read and before any file the caller names is opened;
// ffi/native.ts asks the kernel's own verdict (AT_SECURE, which file capabilities set too) before
// it binds anything. (Bun reads BUN_OPTIONS before either runs: the README says why that makes such
// an install unsafe anyway.) The saved ids need no look of their own: exec copies the effective ids
// into them.
import { EXIT } from "./errors";

const [uid, euid, gid, egid] = [process.getuid?.(), process.geteuid?.(), process.getgid?.(), process.getegid?.()];

export async function refusePrivileged(): Promise<never> {
  (await import("node:fs")).writeSync(
    2,
    `daemonize: error: refusing to run set-user-ID, set-group-ID or with file capabilities (uid ${uid}, euid ${euid}, gid ${gid}, egid ${egid}): daemonize is not a privilege boundary; let users start daemons through sudo instead (see the README)\n`,
  );
  return process.exit(EXIT.noperm.code);
}

if (uid !== euid || gid !== egid) await refusePrivileged();

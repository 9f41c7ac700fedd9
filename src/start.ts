// The start recipe, in order. Everything that can be checked is checked before
// the fork; after it, the native child path runs the steps and reports back.
//
//   1. who       user and groups, looked up outside any chroot (privileges.ts)
//   2. env       the daemon's environment (env.ts)
//   3. program   found and, as root, checked for safety (program.ts)
//   4. pidfile   refuse early if its daemon is alive (pidfile.ts)
//   5. stdio     /dev/null and the log files, opened here (stdio.ts)
//   6. detach    double fork, setsid, chroot, chdir, groups, gid, uid, umask,
//                core limit, stdio, fds, signals, then wait (detach.ts)
//   7. publish   the pidfile names the daemon itself, before it execs
//   8. exec      release the daemon; the status pipe closing means exec worked
import { execInPlace, type Spec, spawn } from "./detach";
import { buildEnv, envp, MAX_STRING } from "./env";
import { DaemonizeError, fail } from "./errors";
import type { StartOptions } from "./options";
import { absolute } from "./paths";
import { checkDirectory, publish, runningPid, unpublish } from "./pidfile";
import { requireRoot, resolveIdentity } from "./privileges";
import { checkSafe, DEFAULT_PATH, explainExec, resolveProgram } from "./program";
import { openStdio } from "./stdio";
import { E, isDir, isInheritable, OsError, stat } from "./sys";

function checkDir(host: string, what: string): void {
  try {
    if (isDir(stat(host))) return;
    fail("noinput", `${what} ${host}: Not a directory`);
  } catch (e) {
    if (!(e instanceof OsError)) throw e;
    const missing = e.errno === E.ENOENT || e.errno === E.ENOTDIR;
    fail(missing ? "noinput" : e.errno === E.EACCES ? "noperm" : "oserr", `${what} ${host}: ${e.message}`);
  }
}

export function start(o: StartOptions): { pid: number } {
  const who = resolveIdentity(o.user, o.group);
  const root = o.chroot === undefined ? undefined : absolute(o.cwd, o.chroot).replace(/\/+$/, "") || "/";
  if (root !== undefined) {
    requireRoot("--chroot");
    checkDir(root, "chroot");
  }
  const dir = root === undefined ? absolute(o.cwd, o.chdir) : absolute("/", o.chdir);
  checkDir(root ? `${root}${dir}` : dir, "chdir");
  for (const fd of o.keepFds)
    if (!isInheritable(fd)) fail("usage", `--keep-fd ${fd}: not an open file, pipe, socket or device that daemonize inherited`);
  for (const arg of o.argv)
    if (Buffer.byteLength(arg) >= MAX_STRING) fail("usage", `an argument is longer than the kernel's limit of ${MAX_STRING} bytes`);

  const env = buildEnv(o, who, o.envFile === undefined ? undefined : absolute(o.cwd, o.envFile));
  const program = resolveProgram(o.argv[0] as string, { cwd: o.cwd, root, dir, searchPath: env.PATH ?? DEFAULT_PATH });
  if ((process.geteuid?.() ?? 0) === 0 && !o.unsafe) checkSafe(program, who?.uid ?? 0);

  const pidfile = o.pidfile === undefined ? undefined : absolute(o.cwd, o.pidfile);
  if (pidfile) checkDirectory(pidfile, o.unsafe);
  const live = pidfile === undefined ? undefined : runningPid(pidfile, o.unsafe);
  if (live !== undefined) fail("running", `already running (pid ${live})`);

  const stdio = openStdio(o, who);
  const spec: Spec = {
    path: program.path,
    argv: o.argv,
    envp: envp(env),
    root,
    dir,
    groups: who?.groups,
    uid: who?.uid ?? -1,
    gid: who?.gid ?? -1,
    umask: o.umask,
    core: o.core,
    stdio: stdio.fds,
    keep: o.keepFds,
  };
  try {
    if (o.foreground) {
      const onExec = explainExec(program);
      if (pidfile) publish(pidfile, process.pid, o.unsafe);
      // By the time the exec fails this process may be chrooted and unprivileged: the native side cleans up.
      execInPlace({ ...spec, cleanup: [...(pidfile ? [pidfile] : []), ...stdio.created] }, onExec);
    }
    const daemon = spawn(spec, (errno) => explainExec(program)(errno));
    try {
      if (pidfile) publish(pidfile, daemon.pid, o.unsafe);
    } catch (e) {
      daemon.abandon();
      throw e;
    }
    try {
      daemon.release();
    } catch (e) {
      if (pidfile) unpublish(pidfile, daemon.pid);
      throw e;
    }
    return { pid: daemon.pid };
  } catch (e) {
    // A start that lost to a running daemon must not take away a log that daemon may use.
    if (!(e instanceof DaemonizeError && e.kind === "running")) stdio.discard();
    throw e;
  } finally {
    stdio.close();
  }
}

// The start recipe, in order. Everything that can be checked is checked before
// the fork; after it, the native child path runs the steps and reports back.
//
//   1. who       user and groups, looked up outside any chroot (privileges.ts);
//                the settings checked against this system (settings.ts, host.ts)
//   2. env       the daemon's environment (env.ts)
//   3. program   found and, as root, checked for safety (program.ts)
//   4. pidfile   refuse early if its daemon is alive (pidfile.ts)
//   5. sockets   an activator's, then --listen's, bound here as root (sockets.ts)
//   6. stdio     /dev/null and the log files, opened here (stdio.ts)
//      cgroup    what a killed monitor left in the pidfile's cgroup, ended; with
//                --cgroup, the cgroup made, marked and limited (cgroup.ts), for
//                the daemon to be born in
//   7. detach    double fork, setsid, limits and priorities, chroot, groups,
//                gid, uid, capabilities, chdir, umask, stdio, sockets as fds
//                3.. with LISTEN_PID, fds, every setting read back, signals,
//                then wait (detach.ts)
//   8. publish   the pidfile names the daemon itself, before it execs
//   9. exec      release the daemon; the status pipe closing means exec worked
//
// --check (check.ts) runs steps 1 to 7 (binding the sockets for a moment), then asks the
// throwaway daemon whether the exec would work instead of doing it.
import { byteLength } from "./bytes";
import { execInPlace, type Spec, spawn } from "./detach";
import { buildEnv, envp, MAX_STRING } from "./env";
import { activated, listenEnvironment } from "./listen";
import { type Opened, openSockets } from "./sockets";
import { DaemonizeError, fail } from "./errors";
import type { StartOptions } from "./options";
import { absolute } from "./paths";
import { checkDirectory, examine, publish, unpublish } from "./pidfile";
import { type Identity, requireRoot, resolveIdentity } from "./privileges";
import { checkSafe, DEFAULT_PATH, explainExec, type Program, resolveProgram } from "./program";
import { host } from "./host";
import { resolveRun } from "./settings";
import { openStdio, type Stdio } from "./stdio";
import { close, E, isDir, isInheritable, OsError, stat } from "./sys";

/** What --check is told as each step passes: the step's name, then what was found. */
export interface Trace {
  begin(check: string): void;
  pass(detail: string): void;
}

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

export interface Prepared {
  who?: Identity;
  program: Program;
  /** --health exec:'s program, found as the program is. */
  probe?: Program;
  pidfile?: string;
  /** The log files, for the pidfile's record. */
  logs: string[];
  stdio: Stdio;
  sockets: Opened;
  spec: Spec;
  /** The cgroup the pidfile records for a daemon that is gone (src/cgroup.ts leftBehind). */
  leftCgroup?: string;
  /** --cgroup: the cgroup made for the daemon, once start has made it. */
  cgroup?: { path: string; record: string };
}

const describeWho = (who: Identity) =>
  `${who.uid < 0 ? "uid unchanged" : `${who.env?.USER ?? who.uid} (uid ${who.uid})`}, gid ${who.gid}, groups ${who.groups.join(",") || "none"}`;

/** --health exec:'s program, found and checked as the program is; a failure names the option. */
function healthProgram(name: string, where: Parameters<typeof resolveProgram>[1], safeFor: number | undefined): Program {
  try {
    const probe = resolveProgram(name, where);
    if (safeFor !== undefined) checkSafe(probe, safeFor);
    return probe;
  } catch (e) {
    if (e instanceof DaemonizeError) fail(e.kind, `--health exec: ${e.message}`);
    throw e;
  }
}

/** Steps 1 to 5: everything that can be known or refused before a process exists. */
export function prepare(o: StartOptions, t?: Trace): Prepared {
  t?.begin("user");
  const who = resolveIdentity(o.user, o.group);
  t?.pass(who ? describeWho(who) : `unchanged (uid ${process.geteuid?.() ?? 0})`);
  const root = o.chroot === undefined ? undefined : absolute(o.cwd, o.chroot).replace(/\/+$/, "") || "/";
  if (root !== undefined) {
    t?.begin("chroot");
    requireRoot("--chroot");
    checkDir(root, "chroot");
    t?.pass(`${root} is a directory`);
  }
  const dir = root === undefined ? absolute(o.cwd, o.chdir) : absolute("/", o.chdir);
  t?.begin("chdir");
  checkDir(root ? `${root}${dir}` : dir, "chdir");
  t?.pass(`${dir} is a directory`);
  t?.begin("arguments");
  // The kept fds and --ready's fd keep their numbers, after the sockets.
  const handed = activated().fds.length + o.listen.length;
  const clash = [...o.keepFds, ...(o.ready?.fd !== undefined ? [o.ready.fd] : [])].find((fd) => fd < 3 + handed);
  if (clash !== undefined)
    fail("usage", `fd ${clash} (--keep-fd or --ready fd:) is where a socket goes: the ${handed} socket(s) are fds 3 to ${2 + handed}, so kept fds must come after them`);
  const probed = o.ready?.port;
  if (probed !== undefined && o.listen.some((l) => l.kind === "tcp" && l.port === probed))
    fail("usage", `--ready ${o.ready?.how}: that port is a --listen socket, which accepts connections before the program runs; use --ready notify or fd:N`);
  for (const fd of o.keepFds)
    if (!isInheritable(fd)) fail("usage", `--keep-fd ${fd}: not an open file, pipe, socket or device that daemonize inherited`);
  for (const arg of o.argv)
    if (byteLength(arg) >= MAX_STRING) fail("usage", `an argument is longer than the kernel's limit of ${MAX_STRING} bytes`);
  t?.pass(`${o.argv.length} argument(s)${o.keepFds.length ? `, kept fds ${o.keepFds.join(",")}` : ""}`);
  const run = resolveRun(o.run, host, t);

  t?.begin("environment");
  const env = buildEnv(o, who, o.envFile === undefined ? undefined : absolute(o.cwd, o.envFile));
  t?.pass(`${Object.keys(env).length} variable(s)`);
  t?.begin("program");
  const program = resolveProgram(o.argv[0] as string, { cwd: o.cwd, root, dir, searchPath: env.PATH ?? DEFAULT_PATH });
  const asRoot = (process.geteuid?.() ?? 0) === 0;
  if (asRoot && !o.unsafe) checkSafe(program, who?.uid ?? 0);
  t?.pass(`${program.path}${asRoot ? (o.unsafe ? " (safety check skipped: --unsafe)" : ", no one else can replace it") : ""}`);
  const probeName = o.supervise?.liveness?.health?.argv?.[0];
  if (probeName !== undefined) t?.begin("health probe");
  const probe = probeName === undefined ? undefined : healthProgram(probeName, { cwd: o.cwd, root, dir, searchPath: env.PATH ?? DEFAULT_PATH }, asRoot && !o.unsafe ? (who?.uid ?? 0) : undefined);
  if (probe) t?.pass(`--health exec:${probe.path}, run as the program is`);

  const pidfile = o.pidfile === undefined ? undefined : absolute(o.cwd, o.pidfile);
  let leftCgroup: string | undefined;
  if (pidfile) {
    t?.begin("pidfile");
    checkDirectory(pidfile, o.unsafe);
    const found = examine(pidfile, o.unsafe);
    if (found.state === "running") fail("running", `already running (pid ${found.pid})`);
    t?.pass(`${pidfile}: no daemon running, directory trusted`);
    if (found.state === "dead") leftCgroup = found.cgroup;
  }

  if (handed) t?.begin("sockets");
  const sockets = openSockets(o.listen, who, o.unsafe);
  if (handed) {
    t?.pass(`fds 3 to ${2 + handed}: ${sockets.names.join(", ")}${o.listen.length ? ` (bound: ${o.listen.map((l) => l.text).join(", ")})` : ""}`);
  }
  let stdio: Stdio;
  try {
    t?.begin("stdio");
    stdio = openStdio({ ...o, umask: o.run.umask }, who);
  } catch (e) {
    sockets.discard();
    throw e;
  }
  t?.pass(`stdin /dev/null, stdout ${o.stdout ? absolute(o.cwd, o.stdout) : "/dev/null"}, stderr ${o.stderr ? absolute(o.cwd, o.stderr) : "/dev/null"}`);
  const spec: Spec = {
    path: program.path,
    argv: o.argv,
    envp: envp(listenEnvironment(env, sockets)),
    root,
    dir,
    groups: who?.groups,
    uid: who?.uid ?? -1,
    gid: who?.gid ?? -1,
    run,
    stdio: stdio.fds,
    keep: o.keepFds,
    listen: sockets.fds,
  };
  const logs = [...new Set([o.stdout, o.stderr].flatMap((f) => (f === undefined ? [] : [absolute(o.cwd, f)])))];
  return { who, program, probe, pidfile, logs, stdio, sockets, spec, leftCgroup };
}

/** Steps 6 to 8 for a prepared start: a plain daemon here, a supervised one in supervise.ts. */
export type Launch = (p: Prepared, o: StartOptions) => { pid: number };

export async function start(o: StartOptions, launch: Launch = launchPlain): Promise<{ pid: number }> {
  const p = prepare(o);
  let made: import("./cgroup").Made | undefined;
  try {
    // What a killed monitor left in its cgroup goes before anything starts.
    const cgroup = o.cgroup || p.leftCgroup !== undefined ? await import("./cgroup") : undefined;
    if (p.leftCgroup !== undefined && p.pidfile) cgroup?.leftBehind(p.leftCgroup, p.pidfile, true);
    if (o.cgroup && cgroup) {
      made = cgroup.create(o.cgroup, p.pidfile);
      p.spec.cgroupFd = made.fd;
      p.cgroup = { path: made.path, record: cgroup.record(made.path, o.supervise?.stopTimeout ?? o.cgroup.stopTimeout) };
    }
    return launch(p, o);
  } catch (e) {
    made?.undo();
    // A start that lost to a running daemon must not take away a log that daemon may use.
    if (!(e instanceof DaemonizeError && e.kind === "running")) p.stdio.discard();
    p.sockets.discard();
    throw e;
  } finally {
    if (made) close(made.fd);
    p.stdio.close();
    p.sockets.close();
  }
}

export function launchPlain({ program, pidfile, logs, stdio, spec, cgroup }: Prepared, o: StartOptions): { pid: number } {
  const attrs = { logs, cgroup: cgroup?.record };
  if (o.foreground) {
    const onExec = explainExec(program);
    if (pidfile) publish(pidfile, process.pid, o.unsafe, undefined, attrs);
    // By the time the exec fails this process may be chrooted and unprivileged: the native side cleans up.
    execInPlace({ ...spec, cleanup: [...(pidfile ? [pidfile] : []), ...stdio.created] }, onExec);
  }
  const daemon = spawn(spec, (errno) => explainExec(program)(errno));
  try {
    if (pidfile) publish(pidfile, daemon.pid, o.unsafe, undefined, attrs);
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
}

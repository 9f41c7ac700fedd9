// --supervise: the program runs under the monitor (ffi/monitor.c), a small
// static program embedded in this binary. After start.ts's steps 1 to 5:
//
//   6. monitor   its image in an executable memory file, loaded before anything
//                is created: no file on disk to plant, or to find on a noexec mount
//   7. draft     the pidfile's temporary file, created and locked before the fork:
//                the monitor inherits the lock and holds it from before the
//                pidfile exists until it exits
//   8. detach    the monitor goes through the child path as a daemon would (own
//                session, not its leader, no terminal, the program's stdio and
//                kept fds) but stays root and outside any chroot, with its own
//                limits, priorities and capabilities: user, groups, chroot,
//                working directory and the settings are applied to every run
//   9. publish   the pidfile names the monitor
//  10. release   the monitor execs, starts the first run and reports its exec on
//                the status pipe, so a failure leaves nothing, as in a plain start
import monitorPath from "../build/daemonize-monitor" with { type: "file" };
import { native } from "../ffi/native";
import { decode, encode } from "./bytes";
import { MONITOR_STATES, type MonitorKey } from "./contract";
import { catchInterrupts, execInPlace, type Spec, type Started, spawn } from "./detach";
import { fail } from "./errors";
import type { Liveness, Policy, StartOptions } from "./options";
import { type Draft, discard, draft, publish, unpublish } from "./pidfile";
import { explainExec, type Program } from "./program";
import { leftAlone, monitorSettings } from "./settings";
import { type Prepared, start } from "./start";
import { absolute, basename, dirname } from "./paths";
import { close, cstr, denied, fstat, O, OsError, open, stat } from "./sys";

/** The monitor's image as an executable memory file; the caller closes it. */
export async function monitorImage(): Promise<number> {
  const image = await Bun.file(monitorPath).bytes();
  const fd = native.dz_memfd_exec(cstr("daemonize-monitor"), image, image.length);
  if (fd >= 0) return fd;
  if (denied(-fd))
    fail("noperm", "--supervise: this system forbids running programs from memory files (vm.memfd_noexec=2), and the monitor is one");
  return fail("oserr", `--supervise: cannot create the monitor's memory file: ${new OsError(-fd).message}`);
}

/** The monitor's first state in the pidfile, until it writes its own (the format is ffi/monitor.c's). */
const firstState = (policy: Policy) => `${MONITOR_STATES[0]} 0 0 0 - ${policy.stopTimeout}`;

/** Only keys the monitor reads (src/contract.ts); a list is the key once for each item. */
type Settings = Partial<Record<MonitorKey, string | number | string[]>>;

/** How the program's output reaches the monitor's relay (ffi/relay.c), and the fds that takes. */
interface Wiring {
  settings: Settings;
  keep: number[];
  stdio: [number, number, number];
  /** Opened here, closed once the monitor has its copies. */
  opened: number[];
}

/**
 * Each log file goes to the monitor with its directory, so that rotation and
 * reopening stay inside the directory the launcher checked; the monitor's own
 * stdout and stderr are /dev/null, as are streams that go nowhere.
 */
function wire(p: Prepared, o: StartOptions): Wiring {
  const relay = o.supervise?.relay;
  const devnull = open("/dev/null", O.WRONLY);
  const w: Wiring = { settings: {}, keep: [], stdio: [p.spec.stdio[0], devnull, devnull], opened: [devnull] };
  const paths = [o.stdout, o.stderr].map((f) => (f === undefined ? undefined : absolute(o.cwd, f)));
  paths.forEach((path, i) => {
    if (path === undefined) return;
    if (i === 1 && path === paths[0]) {
      w.settings.err = "out";
      return;
    }
    const fd = p.spec.stdio[i + 1] as number;
    const dir = open(dirname(path), O.PATH | O.DIRECTORY);
    w.opened.push(dir);
    const now = stat(path, false);
    const held = fstat(fd);
    if (now.dev !== held.dev || now.ino !== held.ino) fail("cantcreat", `log file ${path} was replaced while daemonize opened it`);
    w.settings[i ? "err" : "out"] = `${fd}:${dir}:${basename(path)}`;
    w.keep.push(fd, dir);
  });
  // The kept files count for rotate-logs too, with or without --log-max-size.
  if (relay) w.settings["log-keep"] = relay.keep;
  if (relay?.maxSize !== undefined) w.settings["log-max-size"] = relay.maxSize;
  if (relay?.timestamps) w.settings["log-timestamps"] = 1;
  if (relay?.syslog !== undefined) w.settings.syslog = relay.syslog;
  if (relay?.syslogSocket !== undefined) w.settings["syslog-socket"] = absolute(o.cwd, relay.syslogSocket);
  // The trust rules for a log the monitor reopens: root's, the starter's or the target user's.
  // RFC 3164 allows a tag 32 characters long.
  const name = encode(basename(o.argv[0] as string));
  let cut = Math.min(32, name.length);
  while (cut > 0 && cut < name.length && ((name[cut] as number) & 0xc0) === 0x80) cut--;
  const tag = relay?.syslogTag ?? decode(name.subarray(0, cut));
  Object.assign(w.settings, { tag, caller: process.geteuid?.() ?? 0 });
  if (o.ready) Object.assign(w.settings, { ready: o.ready.how, "ready-timeout": o.ready.timeout });
  // systemd Type=notify: the monitor in the foreground is the service, and tells systemd once the program is ready.
  const notify = p.spec.envp.find((e) => e.startsWith("NOTIFY_SOCKET="))?.slice(14);
  if (o.ready && o.foreground && notify) w.settings.notify = notify;
  return w;
}

/** --watchdog, --health and --max-memory as the monitor reads them (ffi/liveness.h). */
function livenessSettings(l: Liveness | undefined, probe: Program | undefined): Settings {
  const h = l?.health;
  return {
    ...(l?.watchdog ? { watchdog: l.watchdog } : {}),
    ...(h
      ? {
          health: probe ? `exec:${probe.path}` : h.probe,
          ...(h.argv ? { "health-arg": h.argv } : {}),
          "health-interval": h.interval,
          "health-timeout": h.timeout,
          "health-retries": h.retries,
          "health-start": h.start,
        }
      : {}),
    ...(l?.maxMemory ? { "max-memory": l.maxMemory } : {}),
  };
}

/** The monitor's argv: its settings as key=value, then the program's argv. */
function monitorArgv(run: Spec, policy: Policy, own: Settings): string[] {
  const settings: Settings = {
    ...own,
    path: run.path,
    ...(run.root === undefined ? {} : { root: run.root }),
    dir: run.dir,
    uid: run.uid,
    gid: run.gid,
    ...(run.groups ? { groups: run.groups.join(",") } : {}),
    ...monitorSettings(run.run),
    ...(run.keep.length ? { keep: run.keep.join(",") } : {}),
    // The monitor holds the sockets for its whole life and hands them to every run.
    ...(run.listen.length ? { listen: run.listen.join(",") } : {}),
    restart: policy.restart,
    "success-exit": policy.successExit.join(","),
    "restart-delay": policy.restartDelay,
    "restart-max-delay": policy.restartMaxDelay,
    "min-uptime": policy.minUptime,
    "max-restarts": policy.maxRestarts,
    "restart-window": policy.restartWindow,
    "stop-timeout": policy.stopTimeout,
  };
  return ["daemonize-monitor", ...Object.entries(settings).flatMap(([k, v]) => [v].flat().map((item) => `${k}=${item}`)), "--", ...run.argv];
}

/** The monitor as the child path runs it: detached, with the relay's fds, every other step left to the runs. */
function monitorSpec(run: Spec, policy: Policy, image: number, w: Wiring, lock: Draft | undefined, pidfile: string | undefined, reportFd?: number): Spec {
  const own = { ...(reportFd === undefined ? {} : { report: reportFd }), ...(lock ? { lock: lock.fd, pidfile: pidfile as string } : {}), ...w.settings };
  return {
    path: run.path,
    argv: monitorArgv(run, policy, own),
    // With --ready notify the monitor gives each run its own socket.
    // --watchdog: it gives each run WATCHDOG_USEC and WATCHDOG_PID too.
    envp: run.envp.filter((e) => !(("ready" in w.settings || "watchdog" in w.settings) && /^(NOTIFY_SOCKET|WATCHDOG_USEC|WATCHDOG_PID)=/.test(e))),
    dir: "/",
    uid: -1,
    gid: -1,
    // Its own limits, priorities and privileges stay as they are: a run's --limit nproc=1 or low nofile must not stop it restarting the run.
    run: leftAlone(run.run),
    stdio: w.stdio,
    keep: [...run.keep, ...run.listen, ...w.keep, ...(lock ? [lock.fd] : [])].sort((a, b) => a - b),
    listen: [],
    execFd: image,
    reportFd,
  };
}

function launchMonitor(p: Prepared, o: StartOptions, image: number): { pid: number } {
  const policy = o.supervise as Policy;
  const { pidfile, spec: run } = p;
  const onExec = explainExec(p.program);
  const w = wire(p, o);
  Object.assign(w.settings, livenessSettings(policy.liveness, p.probe));
  const attrs = { monitor: firstState(policy), logs: p.logs, cgroup: p.cgroup?.record };
  // The monitor stays outside the cgroup it puts each run in.
  if (p.cgroup) w.settings.cgroup = p.cgroup.path;
  try {
    if (o.foreground) {
      // This process becomes the monitor: the pidfile names it, and its draft's fd, locked, goes through the exec.
      const lock = pidfile ? draft(pidfile, true) : undefined;
      if (pidfile && lock) publish(pidfile, process.pid, o.unsafe, lock, attrs);
      execInPlace({ ...monitorSpec(run, policy, image, w, lock, pidfile), cleanup: [...(pidfile ? [pidfile] : []), ...p.stdio.created] }, onExec);
    }
    const path = pidfile as string;
    const lock = draft(path, true);
    let monitor: Started | undefined;
    try {
      // Above every fd the monitor keeps: the child path moves the status pipe there for it.
      const reportFd = Math.max(2, image, lock.fd, ...run.keep, ...run.listen, ...w.keep) + 1;
      monitor = spawn(monitorSpec(run, policy, image, w, lock, path, reportFd), onExec, run);
      publish(path, monitor.pid, o.unsafe, lock, attrs);
    } catch (e) {
      monitor?.abandon();
      discard(lock);
      throw e;
    }
    // The monitor holds the lock through its own copy of the fd: this one must go before any unpublish can lock it.
    close(lock.fd);
    const { pid, release } = monitor;
    try {
      release();
    } catch (e) {
      unpublish(path, pid);
      throw e;
    }
    return { pid };
  } finally {
    w.opened.forEach(close);
  }
}

export async function supervise(o: StartOptions): Promise<{ pid: number }> {
  const image = await monitorImage();
  // In the foreground this process becomes the monitor, and no one waits.
  const restore = o.foreground ? undefined : catchInterrupts();
  try {
    return await start(o, (p) => launchMonitor(p, o, image));
  } finally {
    restore?.();
    close(image);
  }
}

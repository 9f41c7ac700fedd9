// --check: a dry run of a start. Every check the start makes, in the same order
// and with the same exit code, then the real child path in a throwaway daemon
// that stops just before exec and asks, as the target user, whether the exec
// would work. It creates nothing (no pidfile, no log) and starts nothing; --listen's
// sockets are bound for a moment, as only that says whether they can be, then closed
// and their files removed.
import { byteLength } from "./bytes";
import { DEFAULTS } from "./contract";
import { isExecStep, stepError, trial } from "./detach";
import { DaemonizeError, fail } from "./errors";
import type { StartOptions } from "./options";
import { draftName } from "./pidfile";
import { explainExec } from "./program";
import { prepare, type Trace } from "./start";
import { basename, dirname } from "./paths";
import { access, close, E, OsError, W_OK, X_OK } from "./sys";

/** Linux's longest file name. */
const NAME_MAX = 255;

export interface CheckLine {
  check: string;
  ok: boolean;
  detail: string;
}

export interface CheckReport {
  ok: boolean;
  exitCode: number;
  checks: CheckLine[];
}

/** What creating the pidfile's temporary file beside it (src/pidfile.ts draft) would say. */
function canCreate(pidfile: string): void {
  try {
    if (byteLength(basename(draftName(pidfile))) > NAME_MAX) throw new OsError(E.ENAMETOOLONG);
    access(dirname(pidfile), W_OK | X_OK);
  } catch (e) {
    if (!(e instanceof OsError)) throw e;
    fail("cantcreat", `cannot create pidfile ${pidfile}: ${e.message}`);
  }
}

export async function check(o: StartOptions): Promise<CheckReport> {
  const checks: CheckLine[] = [];
  let current = "options";
  const t: Trace = {
    begin: (name) => void (current = name),
    pass: (detail) => void checks.push({ check: current, ok: true, detail }),
  };
  try {
    if (o.ready) {
      // Checked before the dry run, as before a start (src/run.ts).
      t.begin("ready");
      t.pass(`--ready ${o.ready.how}, waiting at most ${o.ready.timeout} ms`);
    }
    if (o.supervise) {
      t.begin("monitor");
      const { monitorImage } = await import("./supervise");
      close(await monitorImage());
      t.pass(`--restart ${o.supervise.restart}: the monitor can be run from a memory file`);
      const l = o.supervise.liveness;
      if (l) {
        t.begin("liveness");
        const h = l.health;
        t.pass(
          [
            l.watchdog && `--watchdog: WATCHDOG=1 at least every ${l.watchdog} ms`,
            h && `--health ${h.argv ? `exec:${h.argv.join(" ")}` : h.probe} every ${h.interval} ms, ${h.timeout} ms each, ${h.retries} failures in a row, none counted for ${h.start} ms`,
            l.maxMemory && `--max-memory ${l.maxMemory} bytes for the tree, summed every ${DEFAULTS.memoryCheck} to ${DEFAULTS.memoryCheckMax} ms`,
          ].filter(Boolean).join("; "),
        );
      }
    }
    const { who, program, pidfile, spec, stdio, sockets, leftCgroup } = prepare(o, t);
    try {
      if (o.cgroup || leftCgroup !== undefined) {
        const cgroup = await import("./cgroup");
        const left = leftCgroup !== undefined && pidfile ? cgroup.leftBehind(leftCgroup, pidfile, false) : undefined;
        t.begin("cgroup");
        if (o.cgroup) t.pass(`${cgroup.describe(o.cgroup, pidfile)}${left ? `; ${left}` : ""}`);
        else if (left) t.pass(left);
      }
      const as = who && who.uid >= 0 ? `uid ${who.uid}` : `uid ${process.geteuid?.() ?? 0}`;
      const setUp = `limits${spec.root ? `, chroot ${spec.root}` : ""}, groups, gid, uid, chdir ${spec.dir}, umask, stdio, fds, every setting read back, and signals`;
      t.begin("daemon");
      const failed = trial(spec);
      if (failed && !isExecStep(failed)) stepError(failed, spec, explainExec(program));
      t.pass(`${setUp} done in a throwaway child as ${as}`);
      // A start creates its pidfile here, once the daemon is set up and before it execs.
      if (pidfile) {
        t.begin("publish");
        canCreate(pidfile);
        t.pass(`${pidfile} can be created`);
      }
      t.begin("exec");
      if (failed) stepError(failed, spec, explainExec(program));
      t.pass(`${program.path} (and any #! or ELF interpreter) can be executed as ${as}`);
    } finally {
      stdio.close();
      // Bound only to know that they could be: closed again, the socket files removed.
      sockets.discard();
    }
    return { ok: true, exitCode: 0, checks };
  } catch (e) {
    if (!(e instanceof DaemonizeError)) throw e;
    if (e.kind === "running" && o.oknodo) {
      checks.push({ check: current, ok: true, detail: `${e.message}; with --oknodo a start exits 0` });
      return { ok: true, exitCode: 0, checks };
    }
    checks.push({ check: current, ok: false, detail: e.message });
    return { ok: false, exitCode: e.exitCode, checks };
  }
}

// --ready for a plain start: the launcher returns only once the program says,
// or shows, that it is ready (ffi/ready.c speaks the four protocols). Before the
// fork the launcher opens the notify socket or the fd:N pipe and becomes a
// subreaper, so the daemon comes back to it as a child and its exit status is
// known; a program that will not be ready has its process group stopped and its
// pidfile removed. Under --supervise the monitor waits instead (ffi/monitor.c).
import { native } from "../ffi/native";
import { catchInterrupts, stepError } from "./detach";
import { fail } from "./errors";
import { say } from "./messages";
import type { Readiness, StartOptions } from "./options";
import { unpublish } from "./pidfile";
import { explainExec } from "./program";
import { launchPlain, type Prepared, start } from "./start";
import { cString, cstr, OsError } from "./sys";

/** Steps 6 to 8 as for a plain daemon, then the wait; `heard` collects each new STATUS=, for --verbose. */
function launchReady(p: Prepared, o: StartOptions, ready: Readiness, heard: string[]): { pid: number } {
  const env = new Uint8Array(4200);
  const fds = new BigInt64Array(2);
  const root = p.spec.root !== undefined ? 1 : 0;
  const r = native.dz_ready_prepare(cstr(ready.how), p.who?.uid ?? -1, p.who?.gid ?? -1, root, env, env.length, fds);
  if (r < 0) fail("oserr", `--ready ${ready.how}: ${new OsError(-r).message}`);
  const notify = cString(env);
  const spec = {
    ...p.spec,
    // The daemon's NOTIFY_SOCKET is this launcher's, whatever it inherited.
    envp: notify ? [...p.spec.envp.filter((e) => !e.startsWith("NOTIFY_SOCKET=")), notify] : p.spec.envp,
    readyFd: Number(fds[0]),
    readyTo: Number(fds[1]),
  };
  const { pid } = launchPlain({ ...p, spec }, o);
  const res = new BigInt64Array(5);
  const status = new Uint8Array(256);
  for (;;) {
    const r = native.dz_ready_wait(pid, ready.timeout, status, status.length, res);
    const text = cString(status);
    if (text && text !== heard.at(-1)) heard.push(text);
    if (r === 0) return { pid };
    if (r === 1) continue;
    if (p.pidfile) unpublish(p.pidfile, pid);
    return stepError({ step: Number(res[1]), errno: Number(res[2]) }, spec, explainExec(p.program));
  }
}

/**
 * What the launcher or the monitor will parse (ffi/ready.c), parsed the same way
 * before anything starts: an address it cannot use is a usage error, not a failed start.
 */
export function checkReady(ready: Readiness): void {
  if (native.dz_ready_config(cstr(ready.how)) < 0) fail("usage", `--ready ${ready.how}: not an address, port, fd or path it can use`);
}

export async function startReady(o: StartOptions): Promise<{ pid: number }> {
  checkReady(o.ready as Readiness);
  const heard: string[] = [];
  // From before anything is created: a signal that comes before the wait is acted on by the wait.
  const restore = catchInterrupts();
  try {
    return await start(o, (p) => launchReady(p, o, o.ready as Readiness, heard));
  } finally {
    native.dz_ready_done();
    restore();
    if (o.verbose) for (const text of heard) await say("info", `status: ${text}`);
  }
}

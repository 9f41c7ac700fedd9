// --ready for a plain start: the launcher returns only once the program says,
// or shows, that it is ready (ffi/ready.c speaks the four protocols). Before the
// fork the launcher opens the notify socket or the fd:N pipe and becomes a
// subreaper, so the daemon comes back to it as a child and its exit status is
// known; a program that will not be ready has its process group stopped and its
// pidfile removed. Under --supervise the monitor waits instead (ffi/monitor.c).
import { native } from "../ffi/native";
import { catchInterrupts, stepError } from "./detach";
import { READY_KINDS, READY_REFUSALS, type ReadyRefusal } from "./contract";
import { fail } from "./errors";
import { say } from "./messages";
import type { Readiness, StartOptions } from "./options";
import { absolute } from "./paths";
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

/** Why ffi/ready.c refuses an argument, in words; `how` as given, and file: made absolute for an address. */
const REFUSED: Record<ReadyRefusal, (how: string) => string> = {
  form: (how) => `--ready ${JSON.stringify(how)} is not notify, fd:N, tcp:[HOST:]PORT or file:PATH`,
  stdio: (how) => `--ready ${how}: stdin, stdout and stderr are daemonize's; use fd 3 or above`,
  port: (how) => `--ready ${how}: no such port`,
  host: (how) => `--ready ${how}: HOST must be an IP address or localhost`,
  address: (how) => `--ready ${how}: not an address, port, fd or path it can use`,
};

/**
 * --ready checked, before anything is stopped or started, by the parser the launcher and
 * the monitor will use (ffi/ready.c): a refusal is a usage error. A file: path is made
 * absolute, as the launcher sees it, wherever the monitor that looks for it runs.
 */
export function readiness(o: StartOptions): Readiness {
  const given = o.ready as Readiness;
  const read = new Int32Array(3);
  const parse = (how: string) => READY_REFUSALS[native.dz_ready_parse(cstr(how), read) - 1];
  const refused = parse(given.how);
  if (refused && refused !== "address") fail("usage", REFUSED[refused](given.how));
  const [kind, fd, port] = [READY_KINDS[(read[0] as number) - 1], read[1] as number, read[2] as number];
  if (kind === "fd" && o.keepFds.includes(fd)) fail("usage", `--ready ${given.how}: fd ${given.how.slice("fd:".length)} is also given with --keep-fd`);
  // In the foreground no launcher is left to wait, but a monitor is.
  if (o.foreground && !o.supervise) fail("usage", "--ready waits in the launcher, which --foreground replaces: add --supervise, whose monitor waits");
  const how = kind === "file" ? `file:${absolute(o.cwd, given.how.slice("file:".length))}` : given.how;
  if (refused || (kind === "file" && parse(how))) fail("usage", REFUSED.address(how));
  return { ...given, how, ...(kind === "fd" ? { fd } : kind === "tcp" ? { port } : {}) };
}

/**
 * --health's tcp:[HOST:]PORT, or the HOST:PORT of its http://, checked by --ready tcp:'s parser,
 * which the monitor's probe uses too. Nothing is looked up: a name could stand for anything by
 * the time it resolves.
 */
export function checkProbe(probe: string): void {
  const http = /^http:\/\/(.*?):(\d+)\//.exec(probe);
  const tcp = http ? `tcp:${http[1]}:${http[2]}` : probe;
  const what = `--health ${probe}`;
  const refused = READY_REFUSALS[native.dz_ready_parse(cstr(tcp), new Int32Array(3)) - 1];
  if (refused === "port") fail("usage", `${what}: no such port`);
  if (refused === "host") fail("usage", `${what}: HOST must be an IP address or localhost`);
  if (refused) fail("usage", `${what} is not tcp:[HOST:]PORT, http://ADDR:PORT/PATH or exec:PROGRAM [ARGS]`);
}

export async function startReady(o: StartOptions): Promise<{ pid: number }> {
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

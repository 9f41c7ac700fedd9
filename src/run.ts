// Runs a command that acts on files or processes: start (plain, --ready, --supervise,
// --check), restart, status, stop, signal, reload, reopen-logs and logs. Each loads only what it needs.
import type { Command } from "./cli";
import { DaemonizeError, fail, statusSetExit } from "./errors";
import { printable } from "./bytes";
import { say } from "./messages";
import type { StartOptions } from "./options";
import { absolute } from "./paths";
import { OsError } from "./sys";

/** Runs a start; its failures become one line and an exit code. */
async function launch(o: StartOptions): Promise<number> {
  try {
    const { pid } = o.supervise
      ? await (await import("./supervise")).supervise(o)
      : o.ready
        ? await (await import("./ready")).startReady(o)
        : await (await import("./start")).start(o);
    if (o.verbose) await say("info", o.supervise ? `started ${o.argv[0]} under monitor pid ${pid}` : `started ${o.argv[0]} as pid ${pid}`);
    return 0;
  } catch (e) {
    if (!(e instanceof DaemonizeError)) throw e;
    if (e.kind === "running" && o.oknodo) {
      if (!o.quiet) await say("info", e.message);
      return 0;
    }
    await say("error", e.message);
    return e.exitCode;
  }
}

/** --check: one line per check on stdout (or one JSON object), the failure on stderr too, and the start's exit code. */
async function dryRun(o: StartOptions): Promise<number> {
  const { check } = await import("./check");
  const report = await check(o);
  const failed = report.checks.find((c) => !c.ok);
  if (o.json) await say("log", JSON.stringify(report));
  else if (!o.quiet) {
    const lines = report.checks.map((c) => `${c.ok ? "ok  " : "FAIL"}  ${c.check}: ${printable(c.detail)}`);
    lines.push(report.ok ? "a start would succeed" : `a start would fail with exit code ${report.exitCode}`);
    await say("log", lines.join("\n"));
  }
  if (failed) await say("error", failed.detail);
  return report.exitCode;
}

/** A start's --ready and --health addresses, checked by their one parser before anything is stopped or started (src/ready.ts). */
async function checkedReady(o: StartOptions): Promise<StartOptions> {
  const probe = o.supervise?.liveness?.health?.probe;
  if (probe && probe !== "exec:") (await import("./ready")).checkProbe(probe);
  return o.ready ? { ...o, ready: (await import("./ready")).readiness(o) } : o;
}

async function runCommand(cmd: Exclude<Command, { name: "help" | "version" | "print-config" }>): Promise<number> {
  switch (cmd.name) {
    case "start": {
      const o = await checkedReady(cmd.start);
      return o.check ? dryRun(o) : launch(o);
    }
    case "status": {
      const { statuses } = await import("./control");
      const { unsafe } = cmd;
      const all =
        typeof unsafe === "boolean" ? await statuses(cmd.pidfiles, unsafe) : (await Promise.all(cmd.pidfiles.map((p, i) => statuses([p], unsafe[i] as boolean)))).flat();
      const one = all.length === 1;
      if (cmd.json) {
        // A supervised daemon's state is its monitor's (starting, running, backoff, stopping, failed), beside the program's pid.
        const objects = all.map(({ message, supervised, ...fields }) => ({ running: fields.state === "running", ...fields, ...supervised }));
        await say("log", JSON.stringify(one ? objects[0] : objects));
      } else await say("log", all.map((s) => printable(one ? s.message : `${s.pidfile}: ${s.message}`)).join("\n"));
      return statusSetExit(all.map((s) => s.state));
    }
    case "restart": {
      const o = await checkedReady(cmd.start);
      const { stop } = await import("./control");
      const pidfile = absolute(cmd.start.cwd, cmd.start.pidfile as string);
      const stopped = await stop(pidfile, cmd.schedule, cmd.start.unsafe);
      if (stopped.warning) await say("warn", stopped.warning);
      if (stopped.code !== 0) {
        await say("error", stopped.message);
        return stopped.code;
      }
      return launch(o);
    }
    case "logs": {
      const { logs } = await import("./control");
      const r = await logs(cmd.pidfile, cmd.lines, cmd.follow, cmd.unsafe);
      if (r.code !== 0) await say("error", r.message);
      return r.code;
    }
    case "stop":
    case "signal":
    case "restart-program":
    case "reload":
    case "reopen-logs":
    case "rotate-logs": {
      const { reload, reopenLogs, restartProgram, signal, stop } = await import("./control");
      const r =
        cmd.name === "stop"
          ? await stop(cmd.pidfile, cmd.schedule, cmd.unsafe)
          : cmd.name === "signal"
            ? signal(cmd.pidfile, cmd.signal, cmd.unsafe)
            : cmd.name === "reopen-logs" || cmd.name === "rotate-logs"
              ? await reopenLogs(cmd.pidfile, cmd.unsafe, cmd.name === "rotate-logs")
              : cmd.name === "reload"
                ? await reload(cmd.pidfile, cmd.unsafe)
                : await restartProgram(cmd.pidfile, cmd.unsafe);
      if (r.code !== 0) await say("error", r.message);
      else if (cmd.verbose) await say("info", r.message);
      if (r.warning) await say("warn", r.warning);
      return r.code;
    }
  }
}

export async function run(cmd: Exclude<Command, { name: "help" | "version" | "print-config" }>): Promise<number> {
  try {
    return await runCommand(cmd);
  } catch (e) {
    // Every failure path names its step; an OsError that still gets here is a bug, but it gets one line and 71 too.
    if (e instanceof OsError) fail("oserr", e.call ? `${e.call}: ${e.message}` : e.message);
    throw e;
  }
}

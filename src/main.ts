import { startOptions, usageText, versionText } from "./cli";
import { DaemonizeError } from "./errors";
import { say } from "./log";
import type { StartOptions } from "./options";
import { start } from "./start";
import { OsError } from "./sys";

const argv = process.argv.slice(2);
let options: StartOptions | undefined;
try {
  const parsed = startOptions(argv[0] === "start" ? argv.slice(1) : argv, process.cwd());
  if (parsed === "help") process.stdout.write(await usageText(Boolean(process.stdout.isTTY)));
  else if (parsed === "version") process.stdout.write(versionText());
  else {
    options = parsed;
    const { pid } = start(parsed);
    if (parsed.verbose) await say("info", `started ${parsed.argv[0]} as pid ${pid}`);
  }
} catch (caught) {
  // Every failure path names its step; an OsError that still gets here is a bug, but it gets one line and 71 too.
  const e = caught instanceof OsError ? new DaemonizeError("oserr", caught.message) : caught;
  if (!(e instanceof DaemonizeError)) throw e;
  if (e.kind === "running" && options?.oknodo) {
    if (!options.quiet) await say("info", e.message);
  } else {
    await say("error", e.message);
    process.exitCode = e.exitCode;
  }
}

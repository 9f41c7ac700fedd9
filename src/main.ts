// The entry. The refusal of a privileged exec (guard.ts) runs first; everything else, the native
// library included, is loaded only after it.
import "./guard";
import { printable } from "./bytes";
import { DaemonizeError, EXIT } from "./errors";

try {
  await import("./dispatch");
} catch (e) {
  // What no step anticipated, a native library that cannot load included: one line and 71, never a stack trace.
  const known = e instanceof DaemonizeError;
  (await import("node:fs")).writeSync(2, `daemonize: error: ${printable(known ? e.message : `unexpected: ${e instanceof Error ? e.message : String(e)}`)}\n`);
  process.exitCode = known ? e.exitCode : EXIT.oserr.code;
}

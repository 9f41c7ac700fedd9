// Reads the command line and answers what needs no native code: --help, --version, usage
// errors and --print-config (a config file's trust excepted). Every other command is run by
// run.ts, which loads the native library.
import { type Command, parseCommandLine, versionText } from "./cli";
import { DaemonizeError } from "./errors";
import { say } from "./messages";

/**
 * process.argv holds the arguments decoded as UTF-8, every byte that is not UTF-8
 * replaced by U+FFFD: only then are they read again, byte for byte, from /proc.
 */
async function commandLineArguments(): Promise<string[]> {
  const given = process.argv.slice(2);
  return given.some((a) => a.includes("\uFFFD")) ? (await import("./proc")).ownArguments() : given;
}

async function answer(cmd: Command): Promise<number> {
  switch (cmd.name) {
    case "help":
      await say("log", (await import("./help")).helpText(cmd.of).trimEnd());
      return 0;
    case "print-config":
      await say("log", cmd.text.trimEnd());
      return 0;
    case "version":
      await say("log", versionText().trimEnd());
      return 0;
    default:
      return (await import("./run")).run(cmd);
  }
}

try {
  process.exitCode = await answer(await parseCommandLine(await commandLineArguments(), process.cwd()));
} catch (e) {
  if (!(e instanceof DaemonizeError)) throw e;
  await say("error", e.message);
  process.exitCode = e.exitCode;
}

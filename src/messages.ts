// Human-facing messages, one line each on stderr in the classic `prog: message`
// form that scripts can grep, or the answer itself on stdout (status). consola
// costs milliseconds to load, so it is loaded only when there is something to
// say, and only its core: the full entry pulls in node:tty and node:util at
// start-up even when imported lazily.
import type { BunFile } from "bun";
import { encode, printable } from "./bytes";

export type Level = "error" | "warn" | "info" | "log";

/**
 * Bun.write to the fd itself: the first touch of process.stdout costs more than a
 * whole `status`, node:fs costs milliseconds to load, and the native library is not
 * loaded for --help, --version or a usage error. It waits out a non-blocking fd.
 */
async function emit(to: BunFile, text: string): Promise<void> {
  try {
    await Bun.write(to, encode(text));
  } catch (e) {
    // No one is reading: the exit code is all that can still be said.
    if ((e as NodeJS.ErrnoException).code !== "EPIPE") throw e;
  }
}

/** `log` is the answer, on stdout as it is; the other levels go to stderr, prefixed. */
export async function say(level: Level, message: string): Promise<void> {
  const { createConsola } = await import("consola/core");
  let written: Promise<void> | undefined;
  createConsola({
    reporters: [
      {
        log: ({ type, args }) => {
          const text = args.join(" ");
          written =
            type === "log"
              ? emit(Bun.stdout, `${text}\n`)
              : emit(Bun.stderr, `daemonize: ${type === "info" ? "" : type === "warn" ? "warning: " : `${type}: `}${printable(text)}\n`);
        },
      },
    ],
  })[level](message);
  await written;
}

// Human-facing messages, one line each on stderr in the classic `prog: message`
// form that scripts can grep, or the answer itself on stdout (status). consola
// costs milliseconds to load, so it is loaded only when there is something to
// say, and only its core: the full entry pulls in node:tty and node:util at
// start-up even when imported lazily.
import { encode, printable } from "./bytes";
import { E, OsError, writeAll } from "./sys";

export type Level = "error" | "warn" | "info" | "log";

/**
 * Straight to the file descriptor: the first touch of process.stdout costs more
 * than a whole `status`, and a synchronous write cannot be cut short at exit.
 */
function emit(fd: 1 | 2, text: string): void {
  try {
    writeAll(fd, encode(text));
  } catch (e) {
    // No one is reading: the exit code is all that can still be said.
    if (e instanceof OsError && e.errno === E.EPIPE) return;
    // A non-blocking fd (EAGAIN) is Bun's streams' job.
    (fd === 1 ? process.stdout : process.stderr).write(text);
  }
}

/** `log` is the answer, on stdout as it is; the other levels go to stderr, prefixed. */
export async function say(level: Level, message: string): Promise<void> {
  const { createConsola } = await import("consola/core");
  createConsola({
    reporters: [
      {
        log: ({ type, args }) => {
          const text = args.join(" ");
          if (type === "log") emit(1, `${text}\n`);
          else emit(2, `daemonize: ${type === "info" ? "" : type === "warn" ? "warning: " : `${type}: `}${printable(text)}\n`);
        },
      },
    ],
  })[level](message);
}

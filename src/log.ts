// Human-facing messages, one line each on stderr in the classic `prog: message`
// form that scripts can grep, or the answer itself on stdout (status). consola
// costs milliseconds to load, so it is loaded only when there is something to
// say, and only its core: the full entry pulls in node:tty and node:util at
// start-up even when imported lazily.
export type Level = "error" | "warn" | "info" | "log";

/** Control characters from user input (a newline in a program name) must not split the line. */
const oneLine = (text: string) => text.replace(/[\x00-\x1f\x7f]/g, (c) => JSON.stringify(c).slice(1, -1));

/** `log` is the answer, on stdout as it is; the other levels go to stderr, prefixed. */
export async function say(level: Level, message: string): Promise<void> {
  const { createConsola } = await import("consola/core");
  const line = (type: string, text: string) =>
    type === "log" ? `${text}\n` : `daemonize: ${type === "info" ? "" : `${type}: `}${oneLine(text)}\n`;
  createConsola({
    reporters: [
      { log: (entry) => (entry.type === "log" ? process.stdout : process.stderr).write(line(entry.type, entry.args.join(" "))) },
    ],
  })[level](message);
}

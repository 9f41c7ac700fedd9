// `daemonize logs`: the last lines of a daemon's log and, with -f, what is written
// after them, across rotations: when the log's path leads to a new file, the old
// one is read to its end, then any file rotated after it (FILE.k-1 … FILE.1, if
// several rotations came between two looks), then the new one from its start.
import { close, E, fstat, O, OsError, open, pread, type Stat, stat, writeAll } from "./sys";

const CHUNK = 65536;
const POLL_MS = 100;

const same = (a: Stat, b: Stat) => a.dev === b.dev && a.ino === b.ino;

/** Where the last `lines` lines of the file start. */
function tailStart(fd: number, size: number, lines: number): number {
  if (lines === 0) return size;
  const buf = Buffer.allocUnsafe(CHUNK);
  let seen = 0;
  for (let at = size; at > 0; ) {
    const from = Math.max(0, at - CHUNK);
    const n = pread(fd, buf.subarray(0, at - from), from);
    for (let i = n - 1; i >= 0; i--)
      // The file's own last newline ends the last line; it starts none.
      if (buf[i] === 10 && from + i !== size - 1 && ++seen === lines) return from + i + 1;
    at = from;
  }
  return 0;
}

/** Copies the file from `at` to its end onto stdout; returns the new offset. */
function copy(fd: number, at: number): number {
  const buf = Buffer.allocUnsafe(CHUNK);
  for (;;) {
    const n = pread(fd, buf, at);
    if (n === 0) return at;
    writeAll(1, buf.subarray(0, n));
    at += n;
  }
}

/**
 * The files rotated after `old`, oldest first: FILE.k is where it went, FILE.k-1 …
 * FILE.1 came after it. A number may be missing for a moment while a rotation
 * renames the files one by one, so the look goes on past a gap; if `old` itself
 * has been rotated out of reach, every rotated file came after it.
 */
function rotatedAfter(path: string, old: Stat): string[] {
  const newer: string[] = [];
  for (let k = 1, gap = 0; k <= 1000 && gap < 3; k++) {
    let st: Stat;
    try {
      st = stat(`${path}.${k}`, false);
    } catch {
      gap++;
      continue;
    }
    gap = 0;
    if (same(st, old)) return newer.reverse();
    newer.push(`${path}.${k}`);
  }
  return newer.reverse();
}

const openLog = (path: string) => open(path, O.RDONLY | O.NOFOLLOW | O.NONBLOCK);

/** Prints the tail; with `follow`, goes on until killed, or until no one reads stdout. */
export async function printLog(path: string, lines: number, follow: boolean): Promise<void> {
  let fd = openLog(path);
  try {
    let held = fstat(fd);
    let at = copy(fd, tailStart(fd, held.size, lines));
    while (follow) {
      await Bun.sleep(POLL_MS);
      at = copy(fd, at);
      let now: Stat | undefined;
      try {
        now = stat(path, false);
      } catch {}
      if (now && !same(now, held)) {
        copy(fd, at);
        close(fd);
        for (const newer of rotatedAfter(path, held)) {
          const r = openLog(newer);
          try {
            copy(r, 0);
          } finally {
            close(r);
          }
        }
        fd = openLog(path);
        held = fstat(fd);
        at = copy(fd, 0);
      } else if (fstat(fd).size < at) at = copy(fd, 0); // emptied in place (copytruncate)
    }
  } catch (e) {
    if (!(e instanceof OsError && e.errno === E.EPIPE)) throw e;
  } finally {
    close(fd);
  }
}

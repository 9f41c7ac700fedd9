// `daemonize logs`: the last lines of a daemon's log and, with -f, what is written
// after them, across rotations: when the log's path leads to a new file, the old
// one is read to its end, then every file rotated after it (FILE.k-1 … FILE.1, if
// several rotations came between two looks), then the new one from its start.
import { close, E, fstat, O, OsError, open, pread, type Stat, stat, writeAll } from "./sys";

const CHUNK = 65536;
const POLL_MS = 100;

const same = (a: Stat, b: Stat) => a.dev === b.dev && a.ino === b.ino;

/** Where the last `lines` lines of the file start. */
function tailStart(fd: number, size: number, lines: number): number {
  if (lines === 0) return size;
  const buf = new Uint8Array(CHUNK);
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
  const buf = new Uint8Array(CHUNK);
  for (;;) {
    const n = pread(fd, buf, at);
    if (n === 0) return at;
    writeAll(1, buf.subarray(0, n));
    at += n;
  }
}

const openLog = (path: string) => open(path, O.RDONLY | O.NOFOLLOW | O.NONBLOCK);
const exists = (path: string) => {
  try {
    stat(path, false);
    return true;
  } catch {
    return false;
  }
};

/**
 * One look at the files that came after `held`, each opened before its identity is
 * read: FILE, FILE.1 … up to `held`, or up to the end when `held` has been rotated
 * out of reach. A rotation moves every file one number up, so a look taken while
 * names move meets some file twice or a gap: then it is not a moment's truth and
 * gives nothing. Otherwise: the open files, newest first.
 */
function lookAfter(path: string, held: Stat): number[] | undefined {
  const fds: number[] = [];
  const seen: Stat[] = [];
  let whole = false;
  for (let k = 0; k <= 1000; k++) {
    const name = k === 0 ? path : `${path}.${k}`;
    let fd: number;
    try {
      fd = openLog(name);
    } catch (e) {
      if (!(e instanceof OsError && e.errno === E.ENOENT)) throw e;
      // A gap a rotation is moving through has files above it.
      whole = k > 0 && ![1, 2, 3].some((j) => exists(`${path}.${k + j}`));
      break;
    }
    const st = fstat(fd);
    if (same(st, held) || seen.some((s) => same(s, st))) {
      close(fd);
      whole = k > 0 && same(st, held);
      break;
    }
    fds.push(fd);
    seen.push(st);
  }
  if (whole) return fds;
  for (const fd of fds) close(fd);
  return undefined;
}

/** The files after `held`, oldest first and open, the log itself last; none while a burst of rotations goes on. */
function filesAfter(path: string, held: Stat): number[] | undefined {
  for (let tries = 0; tries < 100; tries++) {
    const fds = lookAfter(path, held);
    if (fds) return fds.reverse();
  }
  return undefined;
}

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
      const after = now && !same(now, held) ? filesAfter(path, held) : undefined;
      if (after) {
        copy(fd, at);
        close(fd);
        fd = after.pop() as number;
        try {
          for (const r of after) copy(r, 0);
        } finally {
          for (const r of after) close(r);
        }
        held = fstat(fd);
        at = copy(fd, 0);
      } else if (!now || same(now, held)) {
        if (fstat(fd).size < at) at = copy(fd, 0); // emptied in place (copytruncate)
      }
    }
  } catch (e) {
    if (!(e instanceof OsError && e.errno === E.EPIPE)) throw e;
  } finally {
    close(fd);
  }
}

// The daemon's stdin, stdout and stderr, opened by the launcher: before any
// privilege drop (so /var/log works), never through a symlink, and with new log
// files handed to the target user (so it can reopen them after a rotation).
import { fail } from "./errors";
import { absolute, dirname } from "./paths";
import type { Identity } from "./privileges";
import { access, close, E, fchmod, fchown, fstat, ftruncate, isFile, O, OsError, open, setBlocking, type Stat, stat, unlink, W_OK, X_OK } from "./sys";

export interface Stdio {
  fds: [number, number, number];
  /** The log files this start created. */
  created: string[];
  /** Closes the launcher's copies. */
  close(): void;
  /**
   * Removes the log files this start created, if they are still the same empty
   * files: used when the start fails. Another start may have opened one since.
   */
  discard(): void;
}

interface LogRequest {
  cwd: string;
  stdout?: string;
  stderr?: string;
  truncate: boolean;
  umask: number;
  unsafe: boolean;
  check: boolean;
}

export function openStdio(r: LogRequest, who: Identity | undefined): Stdio {
  const opened: number[] = [];
  const made: { path: string; dev: number; ino: number }[] = [];
  const keep = (fd: number) => (opened.push(fd), fd);
  const done: Stdio = {
    fds: [-1, -1, -1],
    created: [],
    close: () => opened.splice(0).forEach(close),
    discard: () =>
      made.splice(0).forEach(({ path, dev, ino }) => {
        try {
          const now = stat(path, false);
          if (now.dev === dev && now.ino === ino && now.size === 0) unlink(path);
        } catch {}
      }),
  };

  /** --check creates nothing: a missing log is judged by its directory, as O_CREAT would judge it. */
  function probeMissing(path: string): number | undefined {
    // O_CREAT refuses a name ending in a slash whatever is there.
    if (path.endsWith("/")) return failLog(path, new OsError(E.EISDIR));
    try {
      stat(path, false);
      return undefined;
    } catch (e) {
      if (!(e instanceof OsError && e.errno === E.ENOENT)) return failLog(path, e);
    }
    try {
      access(dirname(path), W_OK | X_OK);
    } catch (e) {
      return failLog(path, e);
    }
    return keep(open("/dev/null", O.WRONLY));
  }

  function openLog(path: string): number {
    const mode = 0o666 & ~r.umask;
    if (r.check) {
      const none = probeMissing(path);
      if (none !== undefined) return none;
    } else {
      try {
        const fd = keep(open(path, O.WRONLY | O.APPEND | O.CREAT | O.EXCL | O.NOFOLLOW, mode));
        const st = fstat(fd);
        made.push({ path, dev: st.dev, ino: st.ino });
        done.created.push(path);
        fchmod(fd, mode);
        if (who) fchown(fd, who.uid, who.gid);
        return fd;
      } catch (e) {
        if (!(e instanceof OsError)) throw e;
        if (e.errno !== E.EEXIST) return failLog(path, e);
      }
    }
    let fd: number;
    try {
      // O_NONBLOCK: a FIFO with no reader fails at once instead of hanging the start.
      fd = keep(open(path, O.WRONLY | O.APPEND | O.NOFOLLOW | O.NONBLOCK));
      setBlocking(fd);
    } catch (e) {
      if (e instanceof OsError && e.errno === E.ENXIO) failLog(path, `log file ${path} is a FIFO with no reader`);
      return failLog(path, e);
    }
    const st = fstat(fd);
    const why = r.unsafe ? undefined : untrusted(st);
    if (why) failLog(path, `log file ${path} ${why}; refusing to write to it (--unsafe allows it)`, "noperm");
    // Only now: a file that was refused must keep its contents.
    if (r.truncate && isFile(st) && !r.check) ftruncate(fd);
    return fd;
  }

  /**
   * An existing log that someone other than root, the caller or the target user
   * could have put there: writing to it would hand them the daemon's output, or
   * through a hard link append to a file of theirs choosing.
   */
  function untrusted(st: Stat): string | undefined {
    const owners = [0, process.geteuid?.() ?? 0, ...(who && who.uid >= 0 ? [who.uid] : [])];
    if (!owners.includes(st.uid)) return `is owned by uid ${st.uid}`;
    if (isFile(st) && st.nlink > 1) return `has ${st.nlink} hard links`;
    return undefined;
  }

  function failLog(path: string, e: unknown, kind: "cantcreat" | "noperm" = "cantcreat"): never {
    done.discard();
    done.close();
    if (typeof e === "string") fail(kind, e);
    if (e instanceof OsError && e.errno === E.ELOOP) fail("cantcreat", `log file ${path} is a symbolic link; refusing to follow it`);
    return fail("cantcreat", `cannot open log file ${path}: ${(e as Error).message}`);
  }

  const out = r.stdout === undefined ? undefined : absolute(r.cwd, r.stdout);
  const err = r.stderr === undefined ? undefined : absolute(r.cwd, r.stderr);
  done.fds[0] = keep(open("/dev/null", O.RDONLY));
  const devNull = out === undefined || err === undefined ? keep(open("/dev/null", O.WRONLY)) : -1;
  done.fds[1] = out === undefined ? devNull : openLog(out);
  done.fds[2] = err === undefined ? devNull : err === out ? done.fds[1] : openLog(err);
  return done;
}

// The daemon's stdin, stdout and stderr, opened by the launcher: before any
// privilege drop (so /var/log works), never through a symlink, and with new log
// files handed to the target user (so it can reopen them after a rotation).
import { fail } from "./errors";
import { absolute } from "./paths";
import type { Identity } from "./privileges";
import { close, E, fchmod, fchown, fstat, O, OsError, open, stat, unlink } from "./sys";

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

  function openLog(path: string): number {
    const mode = 0o666 & ~r.umask;
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
    try {
      return keep(open(path, O.WRONLY | O.APPEND | O.NOFOLLOW | (r.truncate ? O.TRUNC : 0)));
    } catch (e) {
      return failLog(path, e);
    }
  }

  function failLog(path: string, e: unknown): never {
    done.discard();
    done.close();
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

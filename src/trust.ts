// Whether anyone but the expected owners could change what a path leads to:
// the program daemonize runs as root, the directory of a pidfile it trusts.
import { dirname } from "./paths";
import { E, isDir, isLink, OsError, openToOthers, readlink, type Stat, stat } from "./sys";

export interface Entry {
  /** The path as seen from `root` (the daemon's view inside a chroot). */
  at: string;
  st: Stat;
}

/**
 * Follows `path` the way the kernel will, one component and one symlink at a
 * time, so that absolute links inside a chroot (`root`) stay inside it.
 * Calls `visit` for "/" and every entry passed; returns the final file's host
 * path and status. Throws OsError as the kernel would.
 */
export function walk(path: string, root: string | undefined, visit?: (e: Entry) => void) {
  const host = (at: string) => (root ? `${root}${at}` : at);
  let dir = "/";
  let dirStat = stat(host(dir), false);
  visit?.({ at: dir, st: dirStat });
  const pending = path.split("/").filter(Boolean);
  for (let links = 0; ; ) {
    const name = pending.shift();
    if (name === undefined || name === ".") {
      if (name === undefined) return { host: host(dir), st: dirStat };
      continue;
    }
    if (name === "..") {
      dir = dirname(dir);
      dirStat = stat(host(dir), false);
      continue;
    }
    const at = `${dir === "/" ? "" : dir}/${name}`;
    const st = stat(host(at), false);
    visit?.({ at, st });
    if (isLink(st)) {
      if (++links > 40) throw new OsError(E.ELOOP);
      const target = readlink(host(at));
      pending.unshift(...target.split("/").filter(Boolean));
      if (target.startsWith("/")) {
        dir = "/";
        dirStat = stat(host(dir), false);
      }
      continue;
    }
    if (pending.length === 0) return { host: host(at), st };
    if (!isDir(st)) throw new OsError(E.ENOTDIR);
    dir = at;
    dirStat = st;
  }
}

/**
 * The first entry on the way that someone outside `owners` could replace: one
 * they own, or a directory they can write that is not sticky (like /tmp). A
 * symlink's own mode means nothing; who owns it does.
 */
export function untrusted(entries: Entry[], owners: number[]): { at: string; why: string } | undefined {
  for (const { at, st } of entries) {
    const why = isLink(st) ? openToOthers({ ...st, mode: 0 }, owners) : openToOthers(st, owners);
    if (why) return { at, why };
  }
  return undefined;
}

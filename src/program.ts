// Which file will be exec'd, found before forking so that "not found" and "not
// executable" are reported without starting anything, and refused as root when
// another user could have replaced it.
import { fail } from "./errors";
import { absolute } from "./paths";
import { E, isDir, OsError, readFile } from "./sys";
import { type Entry, untrusted, walk } from "./trust";

/** Used when the daemon's environment has no PATH. */
export const DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

export interface Program {
  /** As given on the command line. */
  name: string;
  /** The path handed to execve, as the daemon sees it (inside the chroot). */
  path: string;
  /** The same file as the launcher sees it, symlinks followed. */
  host: string;
  /** The chroot directory on the host, if any. */
  root?: string;
  /** Every entry the kernel will pass on the way to it, links included. */
  entries: Entry[];
}

interface Where {
  cwd: string;
  /** The chroot directory on the host, if any. */
  root?: string;
  /** The daemon's working directory, inside the root. */
  dir: string;
  searchPath: string;
}

function probe(name: string, path: string, root: string | undefined) {
  const entries: Entry[] = [];
  try {
    const { host, st } = walk(path, root, (e) => entries.push(e));
    return { host, entries, found: isDir(st) ? "directory" : st.mode & 0o111 ? "ok" : "noexec" };
  } catch (e) {
    if (!(e instanceof OsError)) throw e;
    if (e.errno === E.ENOENT || e.errno === E.ENOTDIR) return { host: path, entries, found: "missing" };
    return fail("cantexec", `program ${name}: ${e.message}`);
  }
}

/**
 * Finds the program like execvp, but only in absolute PATH entries (a relative
 * entry would be taken against the daemon's working directory), and never falls
 * back to running a file with no #! line through /bin/sh.
 */
export function resolveProgram(name: string, w: Where): Program {
  if (name.includes("/")) {
    const path = w.root ? absolute(w.dir, name) : absolute(w.cwd, name);
    const { found, host, entries } = probe(name, path, w.root);
    if (found === "missing") fail("notfound", `program ${name} not found${w.root ? ` in ${w.root}` : ""}`);
    if (found === "directory") fail("cantexec", `program ${name} is a directory`);
    if (found === "noexec") fail("cantexec", `program ${name} is not executable`);
    return { name, path, host, root: w.root, entries };
  }
  let unusable: string | undefined;
  for (const entry of w.searchPath.split(":")) {
    if (!entry.startsWith("/")) continue;
    // A regular expression only for the rare entry with a trailing slash: the first one a process runs is costly.
    const path = `${entry.endsWith("/") ? entry.replace(/\/+$/, "") : entry}/${name}`;
    const { found, host, entries } = probe(name, path, w.root);
    if (found === "ok") return { name, path, host, root: w.root, entries };
    if (found !== "missing") unusable ??= path;
  }
  if (unusable) return fail("cantexec", `program ${name} found as ${unusable}, which is not an executable file`);
  return fail("notfound", `program ${name} not found in PATH (${w.searchPath})${w.root ? ` inside ${w.root}` : ""}`);
}

/**
 * As root, refuse a program that someone other than root or the target user
 * could replace. Of the entries the kernel will pass, link by link (inside the
 * chroot when there is one), recorded when the program was found, every one must belong to one of them;
 * every directory must be writable by no one else unless it is sticky (like
 * /tmp), and the program file by no one else at all.
 */
export function checkSafe(p: Program, targetUid: number): void {
  const found = untrusted(p.entries, [0, targetUid]);
  if (found) fail("noperm", `refusing to run ${p.name} as root: ${p.root ? `${p.root}${found.at}` : found.at} ${found.why} (--unsafe allows it)`);
}

/**
 * How to name an exec failure: ENOENT for a file that exists means its #!
 * interpreter or ELF loader is missing. The file is looked at now, because
 * after a --foreground chroot the launcher can no longer see it.
 */
export function explainExec(p: Program): (errno: number) => never {
  const interpreter = shebang(p.host);
  const exists = probe(p.name, p.path, p.root).found !== "missing";
  return (errno) => {
    const text = new OsError(errno).message;
    if (errno === E.ENOENT) {
      if (interpreter !== undefined) fail("cantexec", `exec ${p.name}: bad interpreter ${interpreter}: ${text}`);
      if (exists) fail("cantexec", `exec ${p.name}: ${text} (its ELF interpreter is missing)`);
      fail("notfound", `exec ${p.name}: ${text}`);
    }
    return fail(errno === E.E2BIG ? "oserr" : "cantexec", `exec ${p.name}: ${text}`);
  };
}

function shebang(host: string): string | undefined {
  try {
    const head = readFile(host, 0, 256);
    if (!head.startsWith("#!")) return undefined;
    // Only blanks and tabs end the name, as for the kernel: a \r left by CRLF line ends is part of it.
    return head.slice(2).split("\n")[0]?.replace(/^[ \t]+/, "").split(/[ \t]/)[0];
  } catch {
    return undefined;
  }
}

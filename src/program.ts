// Which file will be exec'd, found before forking so that "not found" and "not
// executable" are reported without starting anything, and refused as root when
// another user could have replaced it.
import { fail } from "./errors";
import { absolute, dirname } from "./paths";
import { E, isDir, OsError, readFile, realpath, stat } from "./sys";

/** Used when the daemon's environment has no PATH. */
export const DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

export interface Program {
  /** As given on the command line. */
  name: string;
  /** The path handed to execve, as the daemon sees it (inside the chroot). */
  path: string;
  /** The same file as the launcher sees it. */
  host: string;
}

interface Where {
  cwd: string;
  /** The chroot directory on the host, if any. */
  root?: string;
  /** The daemon's working directory, inside the root. */
  dir: string;
  searchPath: string;
}

const onHost = (w: Where, p: string) => (w.root ? `${w.root}${p}` : p);

function probe(name: string, host: string): "ok" | "missing" | "directory" | "noexec" {
  try {
    const st = stat(host);
    if (isDir(st)) return "directory";
    return st.mode & 0o111 ? "ok" : "noexec";
  } catch (e) {
    if (!(e instanceof OsError)) throw e;
    if (e.errno === E.ENOENT || e.errno === E.ENOTDIR) return "missing";
    return fail("cantexec", `program ${name}: ${host}: ${e.message}`);
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
    const host = onHost(w, path);
    const found = probe(name, host);
    if (found === "missing") fail("notfound", `program ${name} not found${w.root ? ` in ${w.root}` : ""}`);
    if (found === "directory") fail("cantexec", `program ${name} is a directory`);
    if (found === "noexec") fail("cantexec", `program ${name} is not executable`);
    return { name, path, host };
  }
  let unusable: string | undefined;
  for (const entry of w.searchPath.split(":")) {
    if (!entry.startsWith("/")) continue;
    const path = `${entry.replace(/\/+$/, "")}/${name}`;
    const found = probe(name, onHost(w, path));
    if (found === "ok") return { name, path, host: onHost(w, path) };
    if (found !== "missing") unusable ??= path;
  }
  if (unusable) return fail("cantexec", `program ${name} found as ${unusable}, which is not an executable file`);
  return fail("notfound", `program ${name} not found in PATH (${w.searchPath})${w.root ? ` inside ${w.root}` : ""}`);
}

/**
 * As root, refuse a program that someone other than root or the target user
 * could have written: the file and every directory above it must belong to one
 * of them and be writable by no one else (a sticky directory, like /tmp, is fine).
 */
export function checkSafe(p: Program, targetUid: number): void {
  let path: string;
  try {
    path = realpath(p.host);
  } catch (e) {
    return fail("cantexec", `program ${p.name}: ${(e as Error).message}`);
  }
  for (let at = path, first = true; ; at = dirname(at), first = false) {
    const st = stat(at, false);
    const why =
      st.uid !== 0 && st.uid !== targetUid
        ? `is owned by uid ${st.uid}`
        : st.mode & 0o022 && (first || !(st.mode & 0o1000))
          ? "is writable by group or others"
          : undefined;
    if (why) fail("noperm", `refusing to run ${p.name} as root: ${at} ${why} (--unsafe allows it)`);
    if (at === "/") return;
  }
}

/** Names an exec failure; ENOENT for a file that exists means its #! interpreter is missing. */
export function execFailure(p: Program, errno: number): never {
  const text = new OsError(errno).message;
  if (errno === E.ENOENT) {
    const interpreter = shebang(p.host);
    if (interpreter !== undefined) fail("cantexec", `exec ${p.name}: bad interpreter ${interpreter}: ${text}`);
    if (probe(p.name, p.host) !== "missing") fail("cantexec", `exec ${p.name}: ${text} (its ELF interpreter is missing)`);
    fail("notfound", `exec ${p.name}: ${text}`);
  }
  if (errno === E.E2BIG) fail("oserr", `exec ${p.name}: ${text}`);
  return fail("cantexec", `exec ${p.name}: ${text}`);
}

function shebang(host: string): string | undefined {
  try {
    const head = readFile(host, 0, 256);
    if (!head.startsWith("#!")) return undefined;
    return head.slice(2).split("\n")[0]?.trim().split(/\s+/)[0];
  } catch {
    return undefined;
  }
}

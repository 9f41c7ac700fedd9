// npm run install-system / uninstall-system [-- --prefix DIR]: the binary, the man page and
// the completions, each where Debian's man-db, bash-completion and zsh look under PREFIX
// (default /usr/local), below $DESTDIR when it is set, as `make install DESTDIR=...` does.
// Install records what it wrote and which directories it made in a manifest; uninstall
// removes only those files, only while they are as installed, and only those directories,
// once empty. The binary is not built here: that would leave root-owned files in the tree.
import { chmodSync, existsSync, mkdirSync, readFileSync, renameSync, rmdirSync, statSync, unlinkSync, writeFileSync } from "node:fs";
import { dirname, isAbsolute, join, normalize } from "node:path";

const root = new URL("..", import.meta.url).pathname;
const USAGE = "usage: npm run install-system|uninstall-system -- [--prefix DIR]";

class Failure extends Error {
  constructor(message: string, readonly code: number) {
    super(message);
  }
}

/** What goes where, as paths on the target system. */
function layout(prefix: string) {
  // Debian's zsh searches /usr/share/zsh/vendor-completions and /usr/local/share/zsh/site-functions.
  const zsh = prefix === "/usr" ? "share/zsh/vendor-completions" : "share/zsh/site-functions";
  return {
    files: [
      { from: "dist/daemonize", to: join(prefix, "bin/daemonize"), mode: 0o755 },
      { from: "docs/daemonize.1", to: join(prefix, "share/man/man1/daemonize.1"), mode: 0o644 },
      { from: "completions/daemonize.bash", to: join(prefix, "share/bash-completion/completions/daemonize"), mode: 0o644 },
      { from: "completions/_daemonize", to: join(prefix, zsh, "_daemonize"), mode: 0o644 },
    ],
    manifest: join(prefix, "share/daemonize/manifest.json"),
  };
}

/** Installed files with their sha256, and the directories install created. */
interface Manifest {
  files: Record<string, string>;
  dirs: string[];
}

const sha256 = (bytes: Uint8Array) => new Bun.CryptoHasher("sha256").update(bytes).digest("hex");

function parse(argv: string[]) {
  const [command, ...rest] = argv;
  if (command !== "install" && command !== "uninstall") throw new Failure(`unknown command ${JSON.stringify(command ?? "")}; ${USAGE}`, 64);
  let prefix = "/usr/local";
  for (let i = 0; i < rest.length; i++) {
    const arg = rest[i] as string;
    const value = arg === "--prefix" ? rest[++i] : arg.startsWith("--prefix=") ? arg.slice("--prefix=".length) : undefined;
    if (value === undefined) throw new Failure(arg === "--prefix" ? `--prefix needs a directory; ${USAGE}` : `unknown argument ${JSON.stringify(arg)}; ${USAGE}`, 64);
    prefix = value;
  }
  // npm runs scripts in the package directory, so a relative path would not mean what was typed.
  if (!isAbsolute(prefix)) throw new Failure(`--prefix must be an absolute path, not ${JSON.stringify(prefix)}`, 64);
  const destdir = process.env.DESTDIR ?? "";
  if (destdir !== "" && !isAbsolute(destdir)) throw new Failure(`DESTDIR must be an absolute path, not ${JSON.stringify(destdir)}`, 64);
  return { command, prefix: normalize(prefix).replace(/(.)\/$/, "$1"), destdir: destdir.replace(/\/+$/, "") };
}

function readManifest(path: string): Manifest | undefined {
  if (!existsSync(path)) return undefined;
  try {
    const m = JSON.parse(readFileSync(path, "utf8"));
    if (typeof m?.files === "object" && Array.isArray(m?.dirs)) return m;
  } catch {}
  throw new Failure(`${path} is not a manifest this script wrote; remove the files by hand`, 1);
}

function install(prefix: string, destdir: string) {
  const { files, manifest: manifestPath } = layout(prefix);
  for (const f of files)
    if (!existsSync(join(root, f.from)))
      throw new Failure(`${f.from} is missing${f.from.startsWith("dist/") ? ": run `npm run build` first" : ""}`, 1);
  const at = (path: string) => destdir + path;
  const old = readManifest(at(manifestPath));
  // A reinstall still owns what the first install made.
  const manifest: Manifest = { files: { ...old?.files }, dirs: [...(old?.dirs ?? [])] };
  const makeDirs = (dir: string) => {
    const missing: string[] = [];
    // Stops at "/" too: a DESTDIR that does not exist yet is made as well, and is not ours to remove.
    for (let d = dir; d !== "/" && !existsSync(at(d)); d = dirname(d)) missing.unshift(d);
    if (!existsSync(at("/"))) mkdirSync(at("/"), { recursive: true });
    for (const d of missing) {
      mkdirSync(at(d));
      chmodSync(at(d), 0o755);
      manifest.dirs.push(d);
    }
  };
  const put = (to: string, bytes: Uint8Array, mode: number) => {
    makeDirs(dirname(to));
    // Written beside and renamed over, so a running daemonize keeps its old file (no ETXTBSY).
    const tmp = join(dirname(at(to)), `.install.${process.pid}.tmp`);
    writeFileSync(tmp, bytes);
    chmodSync(tmp, mode);
    renameSync(tmp, at(to));
  };
  // A file already there that an earlier install did not write is someone else's (bmc daemonize has the same name).
  for (const f of files)
    if (existsSync(at(f.to)) && manifest.files[f.to] === undefined)
      throw new Failure(`${at(f.to)} exists and was not installed here; remove it, or install under another --prefix`, 1);
  try {
    for (const f of files) {
      const bytes = readFileSync(join(root, f.from));
      put(f.to, bytes, f.mode);
      manifest.files[f.to] = sha256(bytes);
      console.log(`installed ${at(f.to)}`);
    }
  } finally {
    if (manifest.dirs.length > 0 || Object.keys(manifest.files).length > 0) {
      makeDirs(dirname(manifestPath));
      put(manifestPath, new TextEncoder().encode(`${JSON.stringify(manifest, null, 2)}\n`), 0o644);
    }
  }
}

function uninstall(prefix: string, destdir: string) {
  const { files, manifest: manifestPath } = layout(prefix);
  const at = (path: string) => destdir + path;
  const manifest = readManifest(at(manifestPath));
  if (!manifest) throw new Failure(`nothing to uninstall: no ${at(manifestPath)}`, 1);
  // Whoever could write the manifest must not choose what root removes: only this layout's paths, and its directories.
  const ours = new Set(files.map((f) => f.to));
  const above = (dir: string) => files.some((f) => f.to.startsWith(`${dir}/`)) || manifestPath.startsWith(`${dir}/`);
  for (const [path, digest] of Object.entries(manifest.files)) {
    if (!ours.has(path)) {
      console.error(`kept ${at(path)}: not a file this script installs`);
      continue;
    }
    if (!existsSync(at(path))) continue;
    if (!statSync(at(path)).isFile() || sha256(readFileSync(at(path))) !== digest) {
      console.error(`kept ${at(path)}: changed since it was installed`);
      continue;
    }
    unlinkSync(at(path));
    console.log(`removed ${at(path)}`);
  }
  unlinkSync(at(manifestPath));
  // Deepest first, and only when empty: anything else put there since stays.
  for (const dir of [...manifest.dirs].filter(above).sort((a, b) => b.length - a.length)) {
    try {
      rmdirSync(at(dir));
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code !== "ENOENT" && code !== "ENOTEMPTY") throw e;
    }
  }
}

try {
  const { command, prefix, destdir } = parse(process.argv.slice(2));
  (command === "install" ? install : uninstall)(prefix, destdir);
} catch (e) {
  const err = e as NodeJS.ErrnoException;
  console.error(`install.ts: error: ${err.message}${err.code === "EACCES" ? " (run as root, or choose another --prefix)" : ""}`);
  process.exit(e instanceof Failure ? e.code : 1);
}

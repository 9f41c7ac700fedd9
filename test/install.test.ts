// npm run install-system / uninstall-system, for real into a temporary DESTDIR: every file
// with its mode, the installed binary and completions at work, and an uninstall that puts
// the tree back as it was, other files and directories included.
import { afterEach, describe, expect, test } from "bun:test";
import { appendFileSync, cpSync, existsSync, lstatSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { BIN, cleanup, missing, ROOT, tempDir } from "./helpers";

afterEach(cleanup);

const SCRIPT = `${ROOT}scripts/install.ts`;

function script(args: string[], destdir: string, path = SCRIPT) {
  const r = Bun.spawnSync([process.execPath, path, ...args], { env: { PATH: process.env.PATH ?? "/usr/bin:/bin", DESTDIR: destdir }, stderr: "pipe" });
  return { code: r.exitCode, stdout: r.stdout.toString(), stderr: r.stderr.toString() };
}

/** Every entry below dir, with its mode and, for a file, its content. */
function tree(dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const name of (readdirSync(dir, { recursive: true }) as string[]).sort()) {
    const st = lstatSync(`${dir}/${name}`);
    out[name] = `${st.mode.toString(8)}${st.isFile() ? ` ${readFileSync(`${dir}/${name}`, "base64")}` : ""}`;
  }
  return out;
}

/** A DESTDIR that already holds a directory of the prefix and a file in it. */
function destdir(): string {
  const dest = tempDir();
  mkdirSync(`${dest}/usr/local/bin`, { recursive: true });
  writeFileSync(`${dest}/usr/local/bin/other`, "#!/bin/sh\n", { mode: 0o755 });
  return dest;
}

const INSTALLED = [
  ["usr/local/bin/daemonize", "dist/daemonize", 0o755],
  ["usr/local/share/man/man1/daemonize.1", "docs/daemonize.1", 0o644],
  ["usr/local/share/bash-completion/completions/daemonize", "completions/daemonize.bash", 0o644],
  ["usr/local/share/zsh/site-functions/_daemonize", "completions/_daemonize", 0o644],
] as const;

describe("install-system and uninstall-system", () => {
  test("are npm scripts", () => {
    const { scripts } = JSON.parse(readFileSync(`${ROOT}package.json`, "utf8"));
    expect([scripts["install-system"], scripts["uninstall-system"]]).toEqual(["bun scripts/install.ts install", "bun scripts/install.ts uninstall"]);
  });

  test("install puts each file under DESTDIR/PREFIX with its mode; what it put there works; uninstall leaves the tree as before", () => {
    const dest = destdir();
    const before = tree(dest);
    const r = script(["install", "--prefix", "/usr/local"], dest);
    expect([r.code, r.stderr]).toEqual([0, ""]);
    expect(r.stdout).toBe(INSTALLED.map(([to]) => `installed ${dest}/${to}\n`).join(""));
    for (const [to, from, mode] of INSTALLED) {
      expect([to, lstatSync(`${dest}/${to}`).mode & 0o7777]).toEqual([to, mode]);
      expect(readFileSync(`${dest}/${to}`).equals(readFileSync(`${ROOT}${from}`))).toBe(true);
    }
    for (const dir of ["usr/local/share", "usr/local/share/man/man1", "usr/local/share/zsh/site-functions"]) expect(lstatSync(`${dest}/${dir}`).mode & 0o7777).toBe(0o755);
    expect(readFileSync(`${dest}/usr/local/bin/other`, "utf8")).toBe("#!/bin/sh\n");

    const version = Bun.spawnSync([`${dest}/usr/local/bin/daemonize`, "--version"]);
    expect(version.stdout.toString()).toBe(Bun.spawnSync([BIN, "--version"]).stdout.toString());
    expect(version.stdout.toString()).toStartWith("daemonize ");

    const complete = (words: string[]) =>
      Bun.spawnSync(["bash", "-c", `source "$1"; COMP_WORDS=(${words.map((w) => `'${w}'`).join(" ")}); COMP_CWORD=${words.length - 1}; _daemonize; printf '%s\\n' "\${COMPREPLY[@]}"`, "bash", `${dest}/usr/local/share/bash-completion/completions/daemonize`])
        .stdout.toString()
        .trim()
        .split("\n");
    expect(complete(["daemonize", "--pid"])).toEqual(["--pidfile"]);
    expect(complete(["daemonize", "stop", "--re"])).toEqual(["--retry"]);
    expect(complete(["daemonize", "sta"])).toContain("status");

    const u = script(["uninstall", "--prefix", "/usr/local"], dest);
    expect([u.code, u.stderr]).toEqual([0, ""]);
    expect(u.stdout).toBe(INSTALLED.map(([to]) => `removed ${dest}/${to}\n`).join(""));
    expect(tree(dest)).toEqual(before);
  });

  test("a second install owns the directories the first one made; the default prefix is /usr/local", () => {
    const dest = destdir();
    const before = tree(dest);
    expect(script(["install"], dest).code).toBe(0);
    expect(script(["install", "--prefix=/usr/local/"], dest).code).toBe(0);
    expect(script(["uninstall"], dest).code).toBe(0);
    expect(tree(dest)).toEqual(before);
  });

  test("uninstall keeps a file changed since the install, and the directories that hold it", () => {
    const dest = destdir();
    expect(script(["install"], dest).code).toBe(0);
    const zsh = `${dest}/usr/local/share/zsh/site-functions/_daemonize`;
    appendFileSync(zsh, "# mine\n");
    const changed = readFileSync(zsh, "utf8");
    const u = script(["uninstall"], dest);
    expect([u.code, u.stderr]).toEqual([0, `kept ${zsh}: changed since it was installed\n`]);
    expect(readFileSync(zsh, "utf8")).toBe(changed);
    expect(Object.keys(tree(dest))).toEqual(["usr", "usr/local", "usr/local/bin", "usr/local/bin/other", "usr/local/share", "usr/local/share/zsh", "usr/local/share/zsh/site-functions", "usr/local/share/zsh/site-functions/_daemonize"]);
  });

  test.skipIf(missing("zsh completion directories", ["zsh", "zsh"]))("the zsh completion lands on zsh's own fpath, /usr's vendor-completions for /usr, and registers itself", () => {
    const fpath = Bun.spawnSync(["zsh", "-fc", "print -rl -- $fpath"]).stdout.toString().split("\n");
    for (const [prefix, dir] of [["/usr/local", "/usr/local/share/zsh/site-functions"], ["/usr", "/usr/share/zsh/vendor-completions"]] as const) {
      const dest = tempDir();
      expect(script(["install", "--prefix", prefix], dest).code).toBe(0);
      expect(existsSync(`${dest}${dir}/_daemonize`)).toBe(true);
      expect(fpath).toContain(dir);
      const comps = Bun.spawnSync(["zsh", "-fc", 'fpath=("$1" $fpath); autoload -Uz compinit; compinit -u -D; print -r -- $_comps[daemonize]', "zsh", `${dest}${dir}`]);
      expect(comps.stdout.toString()).toBe("_daemonize\n");
    }
  });

  test.skipIf(missing("bash-completion loader", ["/usr/share/bash-completion/bash_completion", "bash-completion"]))("bash-completion's loader finds the bash completion below PREFIX/share", () => {
    const dest = tempDir();
    expect(script(["install"], dest).code).toBe(0);
    // /usr/local/share is on the loader's default XDG_DATA_DIRS; here it is DESTDIR's.
    const r = Bun.spawnSync(["bash", "-c", "source /usr/share/bash-completion/bash_completion; __load_completion daemonize && complete -p daemonize"], {
      env: { PATH: "/usr/bin:/bin", XDG_DATA_DIRS: `${dest}/usr/local/share`, BASH_COMPLETION_USER_DIR: `${dest}/none` },
    });
    expect(r.stdout.toString()).toBe("complete -F _daemonize daemonize\n");
  });

  const usage = "usage: npm run install-system|uninstall-system -- [--prefix DIR]";
  for (const [args, env, message] of [
    [[], "", `unknown command ""; ${usage}`],
    [["remove"], "", `unknown command "remove"; ${usage}`],
    [["install", "--prefix"], "", `--prefix needs a directory; ${usage}`],
    [["install", "--prefix", "usr"], "", '--prefix must be an absolute path, not "usr"'],
    [["uninstall", "--force"], "", `unknown argument "--force"; ${usage}`],
    [["install"], "stage", 'DESTDIR must be an absolute path, not "stage"'],
  ] as const) {
    test(`usage error, one line and exit 64: ${[...args, ...(env ? [`DESTDIR=${env}`] : [])].join(" ") || "no arguments"}`, () => {
      const dest = tempDir();
      const r = script([...args], env || dest);
      expect([r.code, r.stdout, r.stderr]).toEqual([64, "", `install.ts: error: ${message}\n`]);
      expect(readdirSync(dest)).toEqual([]);
    });
  }

  test("without a built binary, install says so and writes nothing", () => {
    const copy = tempDir();
    for (const path of ["scripts/install.ts", "docs/daemonize.1", "completions/daemonize.bash", "completions/_daemonize"]) cpSync(`${ROOT}${path}`, `${copy}/${path}`);
    const dest = tempDir();
    const r = script(["install"], dest, `${copy}/scripts/install.ts`);
    expect([r.code, r.stderr]).toEqual([1, "install.ts: error: dist/daemonize is missing: run `npm run build` first\n"]);
    expect(readdirSync(dest)).toEqual([]);
  });

  test("a DESTDIR that does not exist yet is made, and uninstall leaves it", () => {
    const dest = `${tempDir()}/stage/root`;
    const r = script(["install", "--prefix", "/opt/dz"], dest);
    expect([r.code, r.stderr]).toEqual([0, ""]);
    expect(existsSync(`${dest}/opt/dz/bin/daemonize`)).toBe(true);
    expect(script(["uninstall", "--prefix", "/opt/dz"], dest).code).toBe(0);
    expect(readdirSync(dest)).toEqual([]);
  });

  test("install refuses to replace a file it did not install (another package's daemonize)", () => {
    const dest = destdir();
    writeFileSync(`${dest}/usr/local/bin/daemonize`, "#!/bin/sh\necho bmc\n", { mode: 0o755 });
    const before = tree(dest);
    const r = script(["install"], dest);
    expect([r.code, r.stderr]).toEqual([1, `install.ts: error: ${dest}/usr/local/bin/daemonize exists and was not installed here; remove it, or install under another --prefix\n`]);
    expect(tree(dest)).toEqual(before);
  });

  test("uninstall removes only the paths this script installs, whatever the manifest lists", () => {
    const dest = destdir();
    expect(script(["install"], dest).code).toBe(0);
    // A manifest edited by whoever could write the prefix: another file, with its right checksum, and a directory.
    writeFileSync(`${dest}/victim`, "precious\n");
    mkdirSync(`${dest}/empty`);
    const path = `${dest}/usr/local/share/daemonize/manifest.json`;
    const m = JSON.parse(readFileSync(path, "utf8"));
    m.files["/victim"] = new Bun.CryptoHasher("sha256").update("precious\n").digest("hex");
    m.dirs.push("/empty");
    writeFileSync(path, JSON.stringify(m));
    const r = script(["uninstall"], dest);
    expect(r.code).toBe(0);
    expect(r.stderr).toBe(`kept ${dest}/victim: not a file this script installs\n`);
    expect([existsSync(`${dest}/victim`), existsSync(`${dest}/empty`), existsSync(`${dest}/usr/local/bin/daemonize`)]).toEqual([true, true, false]);
  });

  test("uninstall with nothing installed says so and removes nothing", () => {
    const dest = destdir();
    const before = tree(dest);
    const r = script(["uninstall"], dest);
    expect([r.code, r.stderr]).toEqual([1, `install.ts: error: nothing to uninstall: no ${dest}/usr/local/share/daemonize/manifest.json\n`]);
    expect(tree(dest)).toEqual(before);
  });
});

// The README tables, the man page and the completions are generated from the
// command declarations: they must not drift, and the completion must work.
import { describe, expect, test } from "bun:test";
import { missing, ROOT as root } from "./helpers";

describe("generated documentation", () => {
  test("README tables, man page and completions match the declarations (npm run docs)", () => {
    const r = Bun.spawnSync([process.execPath, `${root}scripts/docs.ts`, "--check"], { stderr: "pipe" });
    expect(r.stderr.toString()).toBe("");
    expect(r.exitCode).toBe(0);
  });

  test("the bash completion offers each command's options, and files for FILE values", () => {
    const complete = (words: string[]) =>
      Bun.spawnSync(["bash", "-c", `source ${root}completions/daemonize.bash; COMP_WORDS=(${words.map((w) => `'${w}'`).join(" ")}); COMP_CWORD=${words.length - 1}; _daemonize; printf '%s\\n' "\${COMPREPLY[@]}"`])
        .stdout.toString()
        .trim()
        .split("\n");
    expect(complete(["daemonize", "stop", "--re"])).toEqual(["--retry"]);
    expect(complete(["daemonize", "--pid"])).toEqual(["--pidfile"]);
    expect(complete(["daemonize", "--env-file", `${root}package.j`])).toEqual([`${root}package.json`]);
    expect(complete(["daemonize", "sta"])).toContain("status");
    expect(complete(["daemonize", "help", "rot"])).toEqual(["rotate-logs"]);
    expect(complete(["daemonize", "-c", `${root}package.j`])).toEqual([`${root}package.json`]);
  });

  test.skipIf(missing("zsh completion", ["zsh", "zsh"]))("the zsh completion parses and names the command", async () => {
    const r = Bun.spawnSync(["zsh", "-n", `${root}completions/_daemonize`], { stderr: "pipe" });
    expect([r.exitCode, r.stderr.toString()]).toEqual([0, ""]);
    expect(await Bun.file(`${root}completions/_daemonize`).text()).toStartWith("#compdef daemonize\n");
  });

  test("the man page has every command and exit code", async () => {
    const page = await Bun.file(`${root}docs/daemonize.1`).text();
    for (const section of ["START OPTIONS", "STATUS OPTIONS", "STOP OPTIONS", "RESTART OPTIONS", "SIGNAL OPTIONS", "EXIT STATUS"]) expect(page).toContain(`.SH ${section}`);
    expect(page).toContain("\\-\\-pidfile");
  });
});

// npm run build: the native library and the monitor, then the single-file binary that embeds them
// (never stripped: strip would remove the embedded program), then its checksum.
import { $ } from "bun";
import { contractHeader } from "./contract";
import { FLAGS } from "./flags";

const root = new URL("..", import.meta.url).pathname;
$.cwd(root);
await $`mkdir -p build dist`;
// What both languages agree on, from src/contract.ts, for every C file (-Ibuild).
await Bun.write("build/contract.h", contractHeader());
const cc = process.env.CC ?? "cc";
// -z now: every symbol is bound at load, so the dynamic linker never runs in a child that shares the launcher's memory.
await $`${cc} -O2 -s -Wall -Wextra -Werror -fPIC -shared -fstack-protector-strong -D_FORTIFY_SOURCE=2 -Ibuild -Wl,-z,now -Wl,-z,relro -o build/libdaemonize.so ffi/child.c ffi/handon.c ffi/sockets.c ffi/launcher.c ffi/ready.c ffi/tree.c ffi/proc.c ffi/files.c ffi/users.c ffi/processes.c ffi/cgroup.c`;
// The supervise monitor lives for months: static, so it maps no shared library and its resident memory stays a few pages.
await $`${cc} -O2 -s -static -Wall -Wextra -Werror -fstack-protector-strong -D_FORTIFY_SOURCE=2 -Ibuild -o build/daemonize-monitor ffi/monitor.c ffi/reload.c ffi/relay.c ffi/ready.c ffi/tree.c ffi/proc.c ffi/child.c ffi/handon.c ffi/cgroup.c ffi/watchdog.c ffi/health.c ffi/memory.c`;
const commit = (await $`git rev-parse --short HEAD`.nothrow().quiet()).stdout.toString().trim() || "unknown";
await $`${process.execPath} build ${FLAGS} --define ${`__COMMIT__=${JSON.stringify(commit)}`} src/main.ts --outfile dist/daemonize`.quiet();
// A checksum beside the release binary, in the format sha256sum -c reads.
const digest = new Bun.CryptoHasher("sha256").update(await Bun.file("dist/daemonize").bytes()).digest("hex");
await Bun.write("dist/daemonize.sha256", `${digest}  daemonize\n`);

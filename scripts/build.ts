// npm run build: the native library, then the single-file binary that embeds it.
import { $ } from "bun";

const root = new URL("..", import.meta.url).pathname;
$.cwd(root);
await $`mkdir -p build dist`;
const cc = process.env.CC ?? "cc";
await $`${cc} -O2 -s -Wall -Wextra -Werror -fPIC -shared -fstack-protector-strong -D_FORTIFY_SOURCE=2 -o build/libdaemonize.so ffi/daemonize.c`;
const commit = (await $`git rev-parse --short HEAD`.nothrow().quiet()).stdout.toString().trim() || "unknown";
await $`${process.execPath} build --compile --splitting --minify --bytecode --format=esm --define ${`__COMMIT__=${JSON.stringify(commit)}`} src/main.ts --outfile dist/daemonize`.quiet();

// Not part of daemonize: the least a launcher built the way daemonize is built
// can do. It loads the native library from a memfd, clones the daemon through
// it, writes a plain pidfile and waits for the exec; it checks nothing.
// bench.ts compiles it with the release flags and times it beside daemonize, so
// the table shows what the design costs and what daemonize's own checks add.
// Usage: minimal-launcher PIDFILE PROGRAM [ARGS...]
import { encode } from "../src/bytes";
import { spawn } from "../src/detach";
import { parseRun } from "../src/settings";
import { close, O, open, writeAll } from "../src/sys";

const [pidfile, ...argv] = process.argv.slice(2) as [string, ...string[]];
const devnull = open("/dev/null", O.RDWR);
const daemon = spawn(
  { path: argv[0] as string, argv, envp: [], dir: "/", uid: -1, gid: -1, run: parseRun(() => undefined), stdio: [devnull, devnull, devnull], keep: [], listen: [] },
  (errno) => {
    throw new Error(`exec failed: errno ${errno}`);
  },
);
const fd = open(pidfile, O.WRONLY | O.CREAT | O.TRUNC, 0o644);
writeAll(fd, encode(`${daemon.pid}\n`));
close(fd);
daemon.release();

// Bad input: each case gets one clear line naming what failed, a documented exit
// code, and leaves nothing behind (no pidfile, no log it created, no process).
import { afterEach, describe, expect, test } from "bun:test";
import { chmodSync, chownSync, copyFileSync, existsSync, linkSync, mkdirSync, readdirSync, readFileSync, readlinkSync, symlinkSync, writeFileSync } from "node:fs";
import { BIN, cleanup, isRoot, kill, marked, missing, PROBE, procLimit, procStatus, readPid, run, tempDir, track, waitFor } from "./helpers";

afterEach(cleanup);

interface Case {
  name: string;
  /** Options before the program; `dir` is a fresh directory, `$P` the probe. */
  args: (dir: string) => string[];
  code: number;
  message: (dir: string) => string | RegExp;
  setup?: (dir: string) => void;
  /** Run the launcher as nobody instead of root. */
  asNobody?: boolean;
  /** Run the launcher with this stack limit, which bounds the daemon's arguments and environment. */
  stackKiB?: number;
  rootOnly?: boolean;
}

const P = PROBE;
const LIMIT_NAMES = "as, core, cpu, data, fsize, locks, memlock, msgqueue, nice, nofile, nproc, rss, rtprio, rttime, sigpending, stack";
const NR_OPEN = readFileSync("/proc/sys/fs/nr_open", "utf8").trim();
const NOFILE_HARD = Number(procLimit(process.pid, "Max open files")[1]);
const CAN_RAISE_LIMITS = Boolean((BigInt(`0x${procStatus(process.pid).CapEff}`) >> 24n) & 1n);
const ONLINE_CPUS = readFileSync("/sys/devices/system/cpu/online", "utf8").trim();
const plain = (dir: string) => ["-p", `${dir}/p.pid`, "-l", `${dir}/log`];
const script = (dir: string, name: string, body: string, mode = 0o755) => writeFileSync(`${dir}/${name}`, body, { mode });
const mkfifo = (path: string) => expect(Bun.spawnSync(["mkfifo", path]).exitCode).toBe(0);
const foreignLog = (path: string) => {
  writeFileSync(path, "keep\n");
  chownSync(path, 65534, 65534);
};
const jail = (dir: string) => {
  mkdirSync(`${dir}/jail/bin`, { recursive: true });
  chmodSync(`${dir}/jail`, 0o755);
};

const cases: Case[] = [
  { name: "unknown long option", args: (d) => [...plain(d), "--bogus", "--", P], code: 64, message: () => "unknown option --bogus" },
  { name: "unknown short option", args: (d) => [...plain(d), "-Z", "--", P], code: 64, message: () => "unknown option -Z" },
  { name: "option without its value", args: () => ["--pidfile"], code: 64, message: () => "option --pidfile needs a value" },
  { name: "value given to a flag", args: (d) => [...plain(d), "--core=yes", "--", P], code: 64, message: () => "option --core takes no value" },
  { name: "empty pidfile name", args: () => ["--pidfile=", "--", P], code: 64, message: () => "--pidfile needs a non-empty value" },
  { name: "umask not octal", args: (d) => [...plain(d), "--umask", "08", "--", P], code: 64, message: () => '--umask "08" is not an octal mode from 000 to 777' },
  { name: "umask too large", args: (d) => [...plain(d), "--umask", "1777", "--", P], code: 64, message: () => '--umask "1777" is not an octal mode from 000 to 777' },
  { name: "--env without =", args: (d) => [...plain(d), "-E", "NOVALUE", "--", P], code: 64, message: () => '--env "NOVALUE" is not NAME=VALUE' },
  { name: "--env with empty name", args: (d) => [...plain(d), "-E", "=x", "--", P], code: 64, message: () => '--env "=x" is not NAME=VALUE' },
  { name: "--keep-fd not a number", args: (d) => [...plain(d), "--keep-fd", "x", "--", P], code: 64, message: () => '--keep-fd "x" is not a file descriptor number' },
  { name: "--keep-fd of stdio", args: (d) => [...plain(d), "--keep-fd", "2", "--", P], code: 64, message: () => "--keep-fd 2: stdin, stdout and stderr are always set up by daemonize" },
  { name: "--keep-fd not open", args: (d) => [...plain(d), "--keep-fd", "200", "--", P], code: 64, message: () => "--keep-fd 200: not an open file, pipe, socket or device that daemonize inherited" },
  { name: "--keep-fd of the launcher's own event loop", args: (d) => [...plain(d), "--keep-fd", "3", "--", P], code: 64, message: () => "--keep-fd 3: not an open file, pipe, socket or device that daemonize inherited" },
  { name: "no program", args: (d) => plain(d), code: 64, message: () => "no program given: daemonize [options] -- program [args...]" },
  { name: "empty program", args: (d) => [...plain(d), "--", ""], code: 64, message: () => "the program name is empty" },
  { name: "option after the program", args: (d) => [...plain(d), P, "-x"], code: 64, message: () => "option -x follows the program; put -- before the program to pass it options" },
  { name: "argument before --", args: (d) => [...plain(d), "stray", "--", P], code: 64, message: () => 'unexpected argument "stray" before --' },
  { name: "--verbose with --quiet", args: (d) => [...plain(d), "-v", "-q", "--", P], code: 64, message: () => "--verbose and --quiet contradict each other" },
  { name: "USER: with no group", args: (d) => [...plain(d), "-u", "nobody:", "--", P], code: 64, message: () => '--user "nobody:" is not USER or USER:GROUP' },
  { name: "group given twice", args: (d) => [...plain(d), "-u", "nobody:nogroup", "-g", "nogroup", "--", P], code: 64, message: () => "give the group once: either --user USER:GROUP or --group GROUP", rootOnly: true },
  { name: "env file line without =", args: (d) => [...plain(d), "--env-file", `${d}/env`, "--", P], setup: (d) => writeFileSync(`${d}/env`, "OK=1\nbroken line\n"), code: 64, message: (d) => `env file ${d}/env line 2: "broken line" is not NAME=VALUE` },
  { name: "variable over the kernel's limit", args: (d) => [...plain(d), "--env-file", `${d}/env`, "--", P], setup: (d) => writeFileSync(`${d}/env`, `BIG=${"x".repeat(200_000)}\n`), code: 64, message: () => "environment variable BIG is longer than the kernel's limit of 131072 bytes" },
  { name: "env file over 1 MiB", args: (d) => [...plain(d), "--env-file", `${d}/env`, "--", P], setup: (d) => writeFileSync(`${d}/env`, "A=1\n".repeat(300_000)), code: 64, message: (d) => `env file ${d}/env is larger than 1 MiB` },
  { name: "--limit without =", args: (d) => [...plain(d), "--limit", "nofile", "--", P], code: 64, message: () => '--limit "nofile" is not NAME=SOFT[:HARD]' },
  { name: "unknown limit", args: (d) => [...plain(d), "--limit", "files=10", "--", P], code: 64, message: () => `--limit "files=10": no such limit (${LIMIT_NAMES})` },
  { name: "limit not a number", args: (d) => [...plain(d), "--limit", "nofile=lots", "--", P], code: 64, message: () => '--limit "nofile=lots": "lots" is not a number or unlimited' },
  { name: "a size for a limit that is not in bytes", args: (d) => [...plain(d), "--limit", "nproc=1K", "--", P], code: 64, message: () => '--limit "nproc=1K": "1K" is not a number or unlimited' },
  { name: "limit size with an unknown unit", args: (d) => [...plain(d), "--limit", "as=1T", "--", P], code: 64, message: () => '--limit "as=1T": "1T" is not a number, a size with K, M or G or unlimited' },
  { name: "limit past what one can be", args: (d) => [...plain(d), "--limit", "fsize=9999999999999999999", "--", P], code: 64, message: () => '--limit "fsize=9999999999999999999": 9999999999999999999 is more than a limit can be; give unlimited' },
  { name: "soft limit above the hard one", args: (d) => [...plain(d), "--limit", "nofile=4096:1024", "--", P], code: 64, message: () => '--limit "nofile=4096:1024": the soft limit is above the hard one' },
  { name: "unlimited soft limit under a hard one", args: (d) => [...plain(d), "--limit", "cpu=unlimited:10", "--", P], code: 64, message: () => '--limit "cpu=unlimited:10": the soft limit is above the hard one' },
  { name: "a limit given twice", args: (d) => [...plain(d), "--limit", "nofile=100", "--limit", "nofile=200", "--", P], code: 64, message: () => '--limit "nofile=200": nofile is given twice' },
  { name: "--core with --limit core=", args: (d) => [...plain(d), "--core", "--limit", "core=0", "--", P], code: 64, message: () => "--core and --limit core= contradict each other: give one" },
  { name: "open-file limit past fs.nr_open", args: (d) => [...plain(d), "--limit", "nofile=unlimited", "--", P], code: 64, message: () => `--limit nofile=unlimited: above this kernel's fs.nr_open, ${NR_OPEN}` },
  { name: "raising a hard limit as non-root", args: (d) => [...plain(d), "--limit", `nofile=${NOFILE_HARD + 1}`, "--", P], asNobody: true, code: 77, message: () => `--limit nofile=${NOFILE_HARD + 1}: raising the hard limit above ${NOFILE_HARD} needs CAP_SYS_RESOURCE` },
  ...(CAN_RAISE_LIMITS ? [] : [{ name: "raising a hard limit without CAP_SYS_RESOURCE, even as root", args: (d: string) => [...plain(d), "--limit", `nofile=${NOFILE_HARD + 1}`, "--", P], code: 77, message: () => `--limit nofile=${NOFILE_HARD + 1}: raising the hard limit above ${NOFILE_HARD} needs CAP_SYS_RESOURCE` }]),
  { name: "nice out of range", args: (d) => [...plain(d), "--nice", "20", "--", P], code: 64, message: () => '--nice "20" is not a number from -20 to 19' },
  { name: "nice not a number", args: (d) => [...plain(d), "--nice", "high", "--", P], code: 64, message: () => '--nice "high" is not a number from -20 to 19' },
  { name: "a negative nice as non-root", args: (d) => [...plain(d), "--nice", "-5", "--", P], asNobody: true, code: 77, message: () => "--nice -5: a nice value below 0 needs CAP_SYS_NICE or --limit nice=25" },
  { name: "unknown scheduling policy", args: (d) => [...plain(d), "--sched", "deadline", "--", P], code: 64, message: () => '--sched "deadline" is not other, batch, idle, fifo:PRIO or rr:PRIO' },
  { name: "real-time policy without a priority", args: (d) => [...plain(d), "--sched", "fifo", "--", P], code: 64, message: () => '--sched "fifo": fifo needs a priority from 1 to 99, as fifo:10' },
  { name: "real-time priority out of range", args: (d) => [...plain(d), "--sched", "rr:100", "--", P], code: 64, message: () => '--sched "rr:100": rr needs a priority from 1 to 99, as rr:10' },
  { name: "a priority for a policy that takes none", args: (d) => [...plain(d), "--sched", "batch:3", "--", P], code: 64, message: () => '--sched "batch:3": only fifo and rr take a priority' },
  { name: "a real-time policy as non-root", args: (d) => [...plain(d), "--sched", "fifo:10", "--", P], asNobody: true, code: 77, message: () => "--sched fifo:10: a real-time policy needs CAP_SYS_NICE or --limit rtprio=10" },
  { name: "unknown I/O class", args: (d) => [...plain(d), "--ionice", "fast", "--", P], code: 64, message: () => '--ionice "fast" is not realtime[:LEVEL], best-effort[:LEVEL] or idle' },
  { name: "I/O level out of range", args: (d) => [...plain(d), "--ionice", "best-effort:8", "--", P], code: 64, message: () => '--ionice "best-effort:8": the level is from 0 to 7' },
  { name: "a level for the idle I/O class", args: (d) => [...plain(d), "--ionice", "idle:3", "--", P], code: 64, message: () => '--ionice "idle:3": idle takes no level' },
  { name: "the realtime I/O class as non-root", args: (d) => [...plain(d), "--ionice", "realtime", "--", P], asNobody: true, code: 77, message: () => "--ionice realtime:4: the realtime class needs CAP_SYS_NICE or CAP_SYS_ADMIN" },
  { name: "OOM score adjustment out of range", args: (d) => [...plain(d), "--oom-score-adjust", "1001", "--", P], code: 64, message: () => '--oom-score-adjust "1001" is not a number from -1000 to 1000' },
  // Only the kernel knows how low this process may go: the child path finds out.
  { name: "a negative OOM score as non-root", args: (d) => [...plain(d), "--oom-score-adjust", "-100", "--", P], setup: (d) => chownSync(d, 65534, 65534), asNobody: true, code: 77, message: () => "--oom-score-adjust -100: Permission denied" },
  { name: "a negative OOM score for a supervised run, as non-root", args: (d) => ["--supervise", ...plain(d), "--oom-score-adjust", "-100", "--", P], setup: (d) => chownSync(d, 65534, 65534), asNobody: true, code: 77, message: () => "--oom-score-adjust -100: Permission denied" },
  { name: "CPU list not a list", args: (d) => [...plain(d), "--cpus", "first", "--", P], code: 64, message: () => '--cpus "first" is not a list of CPUs such as 0-3,8' },
  { name: "CPU range backwards", args: (d) => [...plain(d), "--cpus", "3-1", "--", P], code: 64, message: () => '--cpus "3-1": 3-1 runs backwards' },
  { name: "CPU past any mask", args: (d) => [...plain(d), "--cpus", "4096", "--", P], code: 64, message: () => '--cpus "4096": daemonize can pin to CPUs 0 to 1023' },
  { name: "a CPU this machine does not have", args: (d) => [...plain(d), "--cpus", "1023", "--", P], code: 64, message: () => `--cpus 1023: this machine has no CPU 1023 (online: ${ONLINE_CPUS})` },
  { name: "unknown capability", args: (d) => [...plain(d), "--cap", "net_bind_service,cap_fly", "--", P], code: 64, message: () => '--cap "net_bind_service,cap_fly": no capability is called cap_fly' },
  { name: "an empty capability name", args: (d) => [...plain(d), "--cap", "kill,", "--", P], code: 64, message: () => '--cap "kill,": an empty name' },
  { name: "--cap as non-root", args: (d) => [...plain(d), "--cap", "net_bind_service", "--", P], asNobody: true, code: 77, message: () => "--cap needs root (running as uid 65534)" },
  ...(CAN_RAISE_LIMITS ? [] : [{ name: "--cap of one this process does not have", args: (d: string) => [...plain(d), "--cap", "sys_resource", "--", P], rootOnly: true, code: 77, message: () => "--cap sys_resource: this process does not have CAP_SYS_RESOURCE, so the program cannot keep it" }]),
  { name: "value given to --no-new-privs", args: (d) => [...plain(d), "--no-new-privs=1", "--", P], code: 64, message: () => "option --no-new-privs takes no value" },
  // Each refusal of ffi/ready.c's one grammar, as a start and --check word it.
  { name: "--ready of no known protocol", args: (d) => [...plain(d), "--ready", "fd:-1", "--", P], code: 64, message: () => '--ready "fd:-1" is not notify, fd:N, tcp:[HOST:]PORT or file:PATH' },
  { name: "--ready tcp: with a space in the host", args: (d) => [...plain(d), "--ready", "tcp:a\u00a0b:80", "--", P], code: 64, message: () => '--ready "tcp:a\u00a0b:80" is not notify, fd:N, tcp:[HOST:]PORT or file:PATH' },
  { name: "--ready file: starting on a new line", args: (d) => [...plain(d), "--ready", "file:\nx", "--", P], code: 64, message: () => '--ready "file:\\nx" is not notify, fd:N, tcp:[HOST:]PORT or file:PATH' },
  { name: "--ready on stderr", args: (d) => [...plain(d), "--ready", "fd:2", "--", P], code: 64, message: () => "--ready fd:2: stdin, stdout and stderr are daemonize's; use fd 3 or above" },
  { name: "--ready fd: also kept", args: (d) => [...plain(d), "--keep-fd", "5", "--ready", "fd:05", "--", P], code: 64, message: () => "--ready fd:05: fd 05 is also given with --keep-fd" },
  { name: "--ready tcp: port 0", args: (d) => [...plain(d), "--ready", "tcp:[::1]:0", "--", P], code: 64, message: () => "--ready tcp:[::1]:0: no such port" },
  { name: "--ready tcp: a quad past 255", args: (d) => [...plain(d), "--ready", "tcp:1.2.3.256:80", "--", P], code: 64, message: () => "--ready tcp:1.2.3.256:80: HOST must be an IP address or localhost" },
  // Relative: only once made absolute (against /, where these run) is it too long.
  { name: "--ready file: longer than a path", args: (d) => [...plain(d), "--ready", `file:${"a".repeat(4095)}`, "--", P], code: 64, message: () => `--ready file:/${"a".repeat(4095)}: not an address, port, fd or path it can use` },
  { name: "--ready --foreground without a monitor", args: (d) => [...plain(d), "--foreground", "--ready", "notify", "--", P], code: 64, message: () => "--ready waits in the launcher, which --foreground replaces: add --supervise, whose monitor waits" },
  { name: "--ready tcp: with an address the kernel cannot take", args: (d) => [...plain(d), "--ready", "tcp:[1:2]:80", "--", P], code: 64, message: () => "--ready tcp:[1:2]:80: not an address, port, fd or path it can use" },
  { name: "--ready tcp: with a host name", args: (d) => [...plain(d), "--ready", "tcp:example.com:80", "--", P], code: 64, message: () => "--ready tcp:example.com:80: HOST must be an IP address or localhost" },
  { name: "--syslog FACILITY, without the =", args: (d) => [...plain(d), "--syslog", "local0", "--", P], code: 64, message: () => "--syslog local0: give the facility after an =, as --syslog=local0" },
  { name: "--log-max-size past any file's size", args: (d) => [...plain(d), "--log-max-size", "999999999999G", "--", P], code: 64, message: () => '--log-max-size "999999999999G" is larger than any file can be' },
  { name: "--syslog-socket longer than a socket address", args: (d) => [...plain(d), "--syslog", "--syslog-socket", `/${"s".repeat(120)}`, "--", P], code: 64, message: () => `--syslog-socket "/${"s".repeat(120)}" is longer than a socket address holds (107 bytes)` },
  { name: "--restart-delay past the default cap", args: (d) => [...plain(d), "--supervise", "--restart-delay", "2m", "--", P], code: 64, message: () => "--restart-max-delay (default 60s) is shorter than --restart-delay 2m" },
  { name: "missing env file", args: (d) => [...plain(d), "--env-file", `${d}/nope`, "--", P], code: 66, message: (d) => `env file ${d}/nope: No such file or directory` },
  // A FIFO with no writer would wait forever for one.
  { name: "env file is a FIFO", args: (d) => [...plain(d), "--env-file", `${d}/env`, "--", P], setup: (d) => mkfifo(`${d}/env`), code: 66, message: (d) => `env file ${d}/env is not a regular file` },
  { name: "env file is a directory", args: (d) => [...plain(d), "--env-file", d, "--", P], code: 66, message: (d) => `env file ${d} is not a regular file` },
  { name: "missing chdir directory", args: (d) => [...plain(d), "-C", `${d}/nope`, "--", P], code: 66, message: (d) => `chdir ${d}/nope: No such file or directory` },
  { name: "chdir to a file", args: (d) => [...plain(d), "-C", "/etc/hostname", "--", P], code: 66, message: () => "chdir /etc/hostname: Not a directory" },
  { name: "missing chroot directory", args: (d) => [...plain(d), "--chroot", `${d}/nope`, "--", P], code: 66, message: (d) => `chroot ${d}/nope: No such file or directory`, rootOnly: true },
  { name: "chdir missing inside the chroot", args: (d) => [...plain(d), "--chroot", `${d}/jail`, "-C", "/nope", "--", "/bin/probe"], setup: jail, code: 66, message: (d) => `chdir ${d}/jail/nope: No such file or directory`, rootOnly: true },
  { name: "unknown user", args: (d) => [...plain(d), "-u", "no-such-user-dz", "--", P], code: 67, message: () => 'unknown user "no-such-user-dz"', rootOnly: true },
  { name: "unknown group", args: (d) => [...plain(d), "-g", "no-such-group-dz", "--", P], code: 67, message: () => 'unknown group "no-such-group-dz"', rootOnly: true },
  { name: "unknown uid without a group", args: (d) => [...plain(d), "-u", "4242", "--", P], code: 67, message: () => "uid 4242 has no passwd entry, so its group is unknown: give one with --user 4242:GROUP", rootOnly: true },
  { name: "uid beyond 32 bits (would wrap to root)", args: (d) => [...plain(d), "-u", "4294967296", "--", P], code: 67, message: () => "uid 4294967296 is out of range", rootOnly: true },
  { name: "pidfile in a missing directory", args: (d) => ["-p", `${d}/nope/p.pid`, "--", P], code: 73, message: (d) => `cannot create pidfile ${d}/nope/p.pid: No such file or directory` },
  { name: "pidfile is a symlink", args: (d) => plain(d).concat("--", P), setup: (d) => symlinkSync("/etc/hostname", `${d}/p.pid`), code: 73, message: (d) => `pidfile ${d}/p.pid is a symbolic link; refusing to follow it` },
  { name: "pidfile is a dangling symlink", args: (d) => plain(d).concat("--", P), setup: (d) => symlinkSync(`${d}/elsewhere`, `${d}/p.pid`), code: 73, message: (d) => `pidfile ${d}/p.pid is a symbolic link; refusing to follow it` },
  { name: "pidfile holds no pid", args: (d) => plain(d).concat("--", P), setup: (d) => writeFileSync(`${d}/p.pid`, "hello\n"), code: 73, message: (d) => `pidfile ${d}/p.pid does not hold a pid ("hello\\n"); remove it if it is stale` },
  { name: "pidfile is a directory", args: (d) => plain(d).concat("--", P), setup: (d) => mkdirSync(`${d}/p.pid`), code: 73, message: (d) => `pidfile ${d}/p.pid is not a regular file` },
  { name: "pidfile owned by another user", args: (d) => plain(d).concat("--", P), setup: (d) => { writeFileSync(`${d}/p.pid`, "4194303\n"); Bun.spawnSync(["chown", "65534", `${d}/p.pid`]); }, code: 77, message: (d) => `pidfile ${d}/p.pid is owned by uid 65534; refusing to trust it (--unsafe allows it)`, rootOnly: true },
  { name: "pidfile directory writable by others", args: (d) => ["-p", `${d}/open/p.pid`, "--", P], setup: (d) => { mkdirSync(`${d}/open`); chmodSync(`${d}/open`, 0o777); }, code: 77, message: (d) => `pidfile directory ${d}/open is writable by group or others; refusing to use it (--unsafe allows it)` },
  { name: "a directory above the pidfile's owned by another user", args: (d) => ["-p", `${d}/theirs/mine/p.pid`, "--", P], setup: (d) => { mkdirSync(`${d}/theirs/mine`, { recursive: true }); chownSync(`${d}/theirs`, 65534, 65534); }, code: 77, message: (d) => `pidfile directory ${d}/theirs is owned by uid 65534; refusing to use it (--unsafe allows it)`, rootOnly: true },
  { name: "pidfile directory owned by another user", args: (d) => ["-p", `${d}/theirs/p.pid`, "--", P], setup: (d) => { mkdirSync(`${d}/theirs`); Bun.spawnSync(["chown", "65534", `${d}/theirs`]); }, code: 77, message: (d) => `pidfile directory ${d}/theirs is owned by uid 65534; refusing to use it (--unsafe allows it)`, rootOnly: true },
  { name: "pidfile name too long for its temporary file", args: (d) => ["-p", `${d}/${"y".repeat(250)}`, "--", P], code: 73, message: (d) => `cannot create pidfile ${d}/${"y".repeat(250)}: File name too long` },
  // The start creates its pidfile only once the daemon is set up: a chdir it cannot enter is what it reports.
  { name: "a pidfile it cannot create, behind a chdir it cannot enter", args: (d) => ["-p", `${d}/ro/p.pid`, "-C", `${d}/private`, "--", P], setup: (d) => { mkdirSync(`${d}/ro`, { mode: 0o755 }); mkdirSync(`${d}/private`, { mode: 0o700 }); }, asNobody: true, code: 77, message: (d) => `chdir ${d}/private: Permission denied` },
  { name: "log in a missing directory", args: (d) => ["-p", `${d}/p.pid`, "-o", `${d}/nope/log`, "--", P], code: 73, message: (d) => `cannot open log file ${d}/nope/log: No such file or directory` },
  { name: "log named with a trailing slash", args: (d) => ["-p", `${d}/p.pid`, "-o", `${d}/newlog/`, "--", P], code: 73, message: (d) => `cannot open log file ${d}/newlog/: Is a directory` },
  { name: "an existing log named with a trailing slash", args: (d) => ["-p", `${d}/p.pid`, "-o", `${d}/old.log/`, "--", P], setup: (d) => writeFileSync(`${d}/old.log`, ""), code: 73, message: (d) => `cannot open log file ${d}/old.log/: Is a directory` },
  { name: "log is a symlink", args: (d) => ["-p", `${d}/p.pid`, "-e", `${d}/log`, "--", P], setup: (d) => symlinkSync("/etc/hostname", `${d}/log`), code: 73, message: (d) => `log file ${d}/log is a symbolic link; refusing to follow it` },
  // A FIFO must not hang the start: the target user may own the log directory.
  { name: "pidfile is a FIFO", args: (d) => plain(d).concat("--", P), setup: (d) => mkfifo(`${d}/p.pid`), code: 73, message: (d) => `pidfile ${d}/p.pid is not a regular file` },
  { name: "log is a FIFO with no reader", args: (d) => ["-p", `${d}/p.pid`, "-o", `${d}/log`, "--", P], setup: (d) => mkfifo(`${d}/log`), code: 73, message: (d) => `log file ${d}/log is a FIFO with no reader` },
  { name: "log owned by another user", args: (d) => ["-p", `${d}/p.pid`, "--truncate", "-o", `${d}/log`, "--", P], setup: (d) => foreignLog(`${d}/log`), code: 77, message: (d) => `log file ${d}/log is owned by uid 65534; refusing to write to it (--unsafe allows it)`, rootOnly: true },
  { name: "log with a second hard link", args: (d) => ["-p", `${d}/p.pid`, "--truncate", "-e", `${d}/log`, "--", P], setup: (d) => (writeFileSync(`${d}/other`, "keep\n"), linkSync(`${d}/other`, `${d}/log`)), code: 77, message: (d) => `log file ${d}/log has 2 hard links; refusing to write to it (--unsafe allows it)` },
  { name: "log is a directory", args: (d) => ["-p", `${d}/p.pid`, "-l", `${d}/sub`, "--", P], setup: (d) => mkdirSync(`${d}/sub`), code: 73, message: (d) => `cannot open log file ${d}/sub: Is a directory` },
  { name: "second log fails, first is removed", args: (d) => ["-p", `${d}/p.pid`, "-o", `${d}/log`, "-e", `${d}/nope/err`, "--", P], code: 73, message: (d) => `cannot open log file ${d}/nope/err: No such file or directory` },
  { name: "--user as non-root", args: (d) => [...plain(d), "-u", "nobody", "--", P], asNobody: true, code: 77, message: () => "--user needs root (running as uid 65534)" },
  { name: "--group as non-root", args: (d) => [...plain(d), "-g", "nogroup", "--", P], asNobody: true, code: 77, message: () => "--group needs root (running as uid 65534)" },
  { name: "--chroot as non-root", args: (d) => [...plain(d), "--chroot", "/", "--", P], asNobody: true, code: 77, message: () => "--chroot needs root (running as uid 65534)" },
  { name: "world-writable program", args: (d) => [...plain(d), "--", `${d}/prog`], setup: (d) => { copyFileSync(P, `${d}/prog`); chmodSync(`${d}/prog`, 0o777); }, code: 77, message: (d) => `refusing to run ${d}/prog as root: ${d}/prog is writable by group or others (--unsafe allows it)`, rootOnly: true },
  { name: "program in a world-writable directory", args: (d) => [...plain(d), "--", `${d}/open/prog`], setup: (d) => { mkdirSync(`${d}/open`); chmodSync(`${d}/open`, 0o777); copyFileSync(P, `${d}/open/prog`); chmodSync(`${d}/open/prog`, 0o755); }, code: 77, message: (d) => `refusing to run ${d}/open/prog as root: ${d}/open is writable by group or others (--unsafe allows it)`, rootOnly: true },
  { name: "program owned by another user", args: (d) => [...plain(d), "--", `${d}/prog`], setup: (d) => { copyFileSync(P, `${d}/prog`); chmodSync(`${d}/prog`, 0o755); Bun.spawnSync(["chown", "65534", `${d}/prog`]); }, code: 77, message: (d) => `refusing to run ${d}/prog as root: ${d}/prog is owned by uid 65534 (--unsafe allows it)`, rootOnly: true },
  { name: "program reached through a symlink in another user's directory", args: (d) => [...plain(d), "--", `${d}/eve/app`], setup: (d) => { mkdirSync(`${d}/eve`); symlinkSync("/bin/true", `${d}/eve/app`); Bun.spawnSync(["chown", "-h", "65534", `${d}/eve`, `${d}/eve/app`]); }, code: 77, message: (d) => `refusing to run ${d}/eve/app as root: ${d}/eve is owned by uid 65534 (--unsafe allows it)`, rootOnly: true },
  { name: "symlink to a program in a world-writable directory", args: (d) => [...plain(d), "--", `${d}/app`], setup: (d) => { mkdirSync(`${d}/open`); chmodSync(`${d}/open`, 0o777); copyFileSync(P, `${d}/open/prog`); chmodSync(`${d}/open/prog`, 0o755); symlinkSync(`${d}/open/prog`, `${d}/app`); }, code: 77, message: (d) => `refusing to run ${d}/app as root: ${d}/open is writable by group or others (--unsafe allows it)`, rootOnly: true },
  { name: "another user's symlink in a sticky directory", args: (d) => [...plain(d), "--", `${d}/sticky/app`], setup: (d) => { mkdirSync(`${d}/sticky`); chmodSync(`${d}/sticky`, 0o1777); symlinkSync("/bin/true", `${d}/sticky/app`); Bun.spawnSync(["chown", "-h", "65534", `${d}/sticky/app`]); }, code: 77, message: (d) => `refusing to run ${d}/sticky/app as root: ${d}/sticky/app is owned by uid 65534 (--unsafe allows it)`, rootOnly: true },
  { name: "program not executable", args: (d) => [...plain(d), "--", `${d}/prog`], setup: (d) => script(d, "prog", "#!/bin/sh\n", 0o644), code: 126, message: (d) => `program ${d}/prog is not executable` },
  { name: "program is a directory", args: (d) => [...plain(d), "--", d], code: 126, message: (d) => `program ${d} is a directory` },
  { name: "only a non-executable in PATH", args: (d) => [...plain(d), "-E", `PATH=${d}`, "--", "prog"], setup: (d) => script(d, "prog", "#!/bin/sh\n", 0o644), code: 126, message: (d) => `program prog found as ${d}/prog, which is not an executable file` },
  { name: "bad interpreter", args: (d) => [...plain(d), "--", `${d}/prog`], setup: (d) => script(d, "prog", "#!/no/such/shell -x\necho hi\n"), code: 126, message: (d) => `exec ${d}/prog: bad interpreter /no/such/shell: No such file or directory` },
  { name: "a #! line with a CRLF ending names the interpreter as the kernel reads it", args: (d) => [...plain(d), "--", `${d}/prog`], setup: (d) => script(d, "prog", "#!/bin/sh\r\necho hi\r\n"), code: 126, message: (d) => `exec ${d}/prog: bad interpreter /bin/sh\\r: No such file or directory` },
  { name: "not a valid executable", args: (d) => [...plain(d), "--", `${d}/prog`], setup: (d) => script(d, "prog", "\x7fELF garbage\n"), code: 126, message: (d) => `exec ${d}/prog: Exec format error` },
  { name: "no #! line is not run through /bin/sh", args: (d) => [...plain(d), "--", `${d}/prog`], setup: (d) => script(d, "prog", "echo hi\n"), code: 126, message: (d) => `exec ${d}/prog: Exec format error` },
  { name: "program unreadable for the dropped user", args: (d) => [...plain(d), "-u", "nobody", "--", `${d}/private/prog`], setup: (d) => { mkdirSync(`${d}/private`, { mode: 0o700 }); copyFileSync(P, `${d}/private/prog`); chmodSync(`${d}/private/prog`, 0o755); }, code: 126, message: (d) => `exec ${d}/private/prog: Permission denied`, rootOnly: true },
  { name: "chdir into a directory only root can enter", args: (d) => [...plain(d), "-u", "nobody", "-C", `${d}/private`, "--", P], setup: (d) => mkdirSync(`${d}/private`, { mode: 0o700 }), code: 77, message: (d) => `chdir ${d}/private: Permission denied`, rootOnly: true },
  { name: "#! interpreter only root can run", args: (d) => [...plain(d), "-u", "nobody", "--", `${d}/prog`], setup: (d) => { mkdirSync(`${d}/private`, { mode: 0o700 }); copyFileSync("/bin/sh", `${d}/private/sh`); chmodSync(`${d}/private/sh`, 0o755); script(d, "prog", `#!${d}/private/sh\necho hi\n`); }, code: 126, message: (d) => `exec ${d}/prog: Permission denied`, rootOnly: true },
  { name: "dynamic program in a chroot without its loader", args: (d) => [...plain(d), "--chroot", `${d}/jail`, "--", "/bin/true"], setup: (d) => { jail(d); copyFileSync("/bin/true", `${d}/jail/bin/true`); chmodSync(`${d}/jail/bin/true`, 0o755); }, code: 126, message: () => "exec /bin/true: No such file or directory (its ELF interpreter is missing)", rootOnly: true },
  { name: "program is a symlink loop", args: (d) => [...plain(d), "--", `${d}/loop`], setup: (d) => symlinkSync("loop", `${d}/loop`), code: 126, message: (d) => `program ${d}/loop: Too many levels of symbolic links` },
  // A quarter of a 2 MiB stack is less than the 900 KB environment: only the exec can tell.
  { name: "arguments and environment past the kernel's total", args: (d) => [...plain(d), "--env-file", `${d}/env`, "--", P], setup: (d) => writeFileSync(`${d}/env`, Array.from({ length: 9 }, (_, i) => `V${i}=${"x".repeat(100_000)}\n`).join("")), stackKiB: 2048, code: 71, message: () => `exec ${P}: Argument list too long` },
  { name: "a newline in the program name stays on one line", args: (d) => [...plain(d), "-E", `PATH=${d}`, "--", "two\nlines"], code: 127, message: (d) => `program two\\nlines not found in PATH (${d})` },
  { name: "program not found", args: (d) => [...plain(d), "--", `${d}/nope`], code: 127, message: (d) => `program ${d}/nope not found` },
  { name: "program not in PATH", args: (d) => [...plain(d), "-E", `PATH=${d}:relative`, "--", "no-such-program-dz"], code: 127, message: (d) => `program no-such-program-dz not found in PATH (${d}:relative)` },
  { name: "program missing inside the chroot", args: (d) => [...plain(d), "--chroot", `${d}/jail`, "--", "/bin/probe"], setup: jail, code: 127, message: (d) => `program /bin/probe not found in ${d}/jail`, rootOnly: true },
];

/** Runs a case, with `leading` options first; judges the message, the code, and that nothing is left behind. */
async function attempt(c: Case, leading: string[] = []) {
  const dir = tempDir();
  c.setup?.(dir);
  const before = new Set(readdirSync(dir));
  const marker = `marker-${Math.random()}`;
  const args = [...leading, ...c.args(dir)];
  const full = args.includes("--") && args.at(-1) !== "--" ? [...args, marker] : args;
  const via = [
    ...(c.asNobody ? ["setpriv", "--reuid", "65534", "--regid", "65534", "--clear-groups", "--"] : []),
    ...(c.stackKiB ? ["sh", "-c", `ulimit -s ${c.stackKiB} && exec "$@"`, "sh"] : []),
  ];
  const r = via.length
    ? await (async () => {
        const p = Bun.spawn([...via, BIN, ...full], { stderr: "pipe", stdout: "pipe" });
        return { code: await p.exited, stderr: await new Response(p.stderr).text() };
      })()
    : await run(full);
  const expected = c.message(dir);
  expect(r.stderr).toEqual(typeof expected === "string" ? `daemonize: error: ${expected}\n` : expect.stringMatching(expected));
  expect(r.code).toBe(c.code);
  expect(readdirSync(dir).filter((f) => !before.has(f))).toEqual([]);
  // A case that wrongly started its program fails here, and its daemon still ends with the test.
  const left = marked(marker);
  left.forEach(track);
  expect(left).toEqual([]);
}

const skip = (c: Case) => (Boolean(c.rootOnly || c.asNobody) && !isRoot) || (Boolean(c.asNobody) && missing("bad input as non-root", ["setpriv", "util-linux"]));

describe("bad input", () => {
  test("covers at least 30 kinds", () => expect(cases.length).toBeGreaterThanOrEqual(30));

  for (const c of cases) test.skipIf(skip(c))(`${c.name}: exit ${c.code}`, () => attempt(c));
});

// --check must catch every one of them, with the start's message and exit code, and create nothing either.
describe("--check agrees with the start", () => {
  for (const c of cases) test.skipIf(skip(c))(`${c.name}: exit ${c.code}`, () => attempt(c, ["--check", "--quiet"]));
});

describe("checks that can be lifted", () => {
  test.skipIf(!isRoot)("--unsafe runs a program others could write", async () => {
    const dir = tempDir();
    copyFileSync(PROBE, `${dir}/prog`);
    chmodSync(`${dir}/prog`, 0o777);
    const r = await run(["-p", `${dir}/p.pid`, "--unsafe", "--", `${dir}/prog`]);
    expect(r.code).toBe(0);
    expect(readlinkSync(`/proc/${track(readPid(`${dir}/p.pid`))}/exe`)).toBe(`${dir}/prog`);
  });

  test.skipIf(!isRoot)("a refused log keeps its contents; --unsafe writes to it; the target user's own log is trusted", async () => {
    const dir = tempDir();
    foreignLog(`${dir}/log`);
    let r = await run(["-p", `${dir}/p.pid`, "--truncate", "-o", `${dir}/log`, "--", PROBE]);
    expect([r.code, readFileSync(`${dir}/log`, "utf8")]).toEqual([77, "keep\n"]);
    r = await run(["-p", `${dir}/p.pid`, "-u", "nobody", "-o", `${dir}/log`, "--", PROBE]);
    expect([r.code, r.stderr]).toEqual([0, ""]);
    await kill(track(readPid(`${dir}/p.pid`)));
    r = await run(["-p", `${dir}/q.pid`, "--unsafe", "--truncate", "-o", `${dir}/log`, "--", PROBE]);
    expect([r.code, r.stderr]).toEqual([0, ""]);
    track(readPid(`${dir}/q.pid`));
    await waitFor(() => readFileSync(`${dir}/log`, "utf8").startsWith("probe pid="), "the truncated log to get the report");
  });

  test("status, stop and signal do not hang on a FIFO in the pidfile's place", async () => {
    const dir = tempDir();
    mkfifo(`${dir}/p.pid`);
    const codes = await Promise.all(["status", "stop", "signal"].map(async (cmd) => (await run([cmd, "-p", `${dir}/p.pid`, ...(cmd === "signal" ? ["HUP"] : [])])).code));
    expect(codes).toEqual([4, 1, 1]);
  });

  test.skipIf(!isRoot)("--unsafe trusts a pidfile another user owns", async () => {
    const dir = tempDir();
    writeFileSync(`${dir}/p.pid`, "4194303\n");
    Bun.spawnSync(["chown", "65534", `${dir}/p.pid`]);
    const r = await run(["-p", `${dir}/p.pid`, "--unsafe", "--", PROBE]);
    expect(r.code).toBe(0);
    track(readPid(`${dir}/p.pid`));
  });

  test("a pidfile straight in a sticky shared directory is fine", async () => {
    const dir = tempDir();
    mkdirSync(`${dir}/shared`);
    chmodSync(`${dir}/shared`, 0o1777);
    const r = await run(["-p", `${dir}/shared/p.pid`, "--", PROBE]);
    expect(r.code).toBe(0);
    track(readPid(`${dir}/shared/p.pid`));
  });

  test("out of file descriptors, every start names the call that failed and leaves nothing", async () => {
    for (const limit of [8, 9, 10, 12, 14]) {
      for (const extra of [[], ["--supervise"]]) {
        const dir = tempDir();
        const marker = `marker-${Math.random()}`;
        const p = Bun.spawn(["sh", "-c", `ulimit -n ${limit} && exec "$@"`, "sh", BIN, ...extra, "-p", `${dir}/p.pid`, "-l", `${dir}/log`, "--", PROBE, marker], { stderr: "pipe" });
        const [code, stderr] = [await p.exited, await new Response(p.stderr).text()];
        marked(marker).forEach(track);
        if (code === 0) continue;
        expect(stderr).toMatch(/^daemonize: error: [^\n]*\S+[^\n]*: Too many open files\n$/);
        expect(stderr).not.toMatch(/^daemonize: error: Too many open files/);
        expect(readdirSync(dir)).toEqual([]);
        expect(marked(marker)).toEqual([]);
      }
    }
  });

  test("a pidfile left by a dead daemon is replaced", async () => {
    const dir = tempDir();
    writeFileSync(`${dir}/p.pid`, "4194303\n");
    const r = await run(["-p", `${dir}/p.pid`, "--", PROBE]);
    expect(r.code).toBe(0);
    expect(track(readPid(`${dir}/p.pid`))).not.toBe(4194303);
    expect(existsSync(`${dir}/p.pid`)).toBe(true);
  });
});

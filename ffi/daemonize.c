/*
 * The native half of daemonize.
 *
 * No JavaScript may run in a child of a Bun process, so everything from the
 * first clone to exec lives here. The children are made like posix_spawn makes
 * its child: clone(CLONE_VM), which copies no page tables (a Bun process maps
 * about 100 MB, and two fork() copies plus their teardown were most of a
 * launch). A CLONE_VM child shares the launcher's memory, including the errno
 * and locks of the launcher's thread, so the child path makes raw system calls
 * only: no libc function, no errno. The parent-side helpers further down return
 * -errno for the same reason: errno cannot be read reliably from JavaScript.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <poll.h>
#include <pwd.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <linux/capability.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <unistd.h>

#ifndef SYS_close_range
#define SYS_close_range 436
#endif
#ifndef CLOSE_RANGE_CLOEXEC
#define CLOSE_RANGE_CLOEXEC (1U << 2)
#endif

/* A system call that returns -errno and touches no memory but its arguments. */
static inline long sys6(long n, long a, long b, long c, long d, long e, long f)
{
#if defined(__x86_64__)
	register long r10 __asm__("r10") = d;
	register long r8 __asm__("r8") = e;
	register long r9 __asm__("r9") = f;
	long ret;
	__asm__ volatile("syscall"
			 : "=a"(ret)
			 : "a"(n), "D"(a), "S"(b), "d"(c), "r"(r10), "r"(r8), "r"(r9)
			 : "rcx", "r11", "memory");
	return ret;
#elif defined(__aarch64__)
	register long x8 __asm__("x8") = n;
	register long x0 __asm__("x0") = a;
	register long x1 __asm__("x1") = b;
	register long x2 __asm__("x2") = c;
	register long x3 __asm__("x3") = d;
	register long x4 __asm__("x4") = e;
	register long x5 __asm__("x5") = f;
	__asm__ volatile("svc 0" : "+r"(x0) : "r"(x8), "r"(x1), "r"(x2), "r"(x3), "r"(x4), "r"(x5) : "memory");
	return x0;
#else
#error "daemonize's child path supports x86_64 and aarch64"
#endif
}
#define sys3(n, a, b, c) sys6(n, (long)(a), (long)(b), (long)(c), 0, 0, 0)
#define sys4(n, a, b, c, d) sys6(n, (long)(a), (long)(b), (long)(c), (long)(d), 0, 0)

/* Steps, in the order the child takes them; src/detach.ts mirrors this list. */
enum {
	STEP_READY = 0, STEP_PIPE, STEP_FORK, STEP_SETSID, STEP_FORK2, STEP_CHROOT,
	STEP_CHDIR, STEP_SETGROUPS, STEP_SETGID, STEP_SETUID, STEP_VERIFY,
	STEP_RLIMIT, STEP_STDIO, STEP_FDS, STEP_EXEC,
	/* Not steps but what the launcher saw: the daemon was stopped, or killed, before its exec. */
	STEP_STOPPED, STEP_KILLED,
};

/* Every field is 8 bytes wide so JavaScript can fill it with one typed array. */
struct dz_spec {
	const char *path;      /* resolved program, as seen after chroot */
	char *const *argv;
	char *const *envp;
	const char *root;      /* chroot directory, or NULL */
	const char *dir;       /* working directory, inside root */
	const gid_t *groups;   /* supplementary groups, or NULL to leave them */
	int64_t ngroups;
	int64_t uid;           /* -1: keep */
	int64_t gid;           /* -1: keep */
	int64_t umask;
	int64_t core;          /* nonzero: allow core dumps */
	int64_t stdio[3];
	const int32_t *keep;   /* inherited fds to leave open, sorted */
	int64_t nkeep;
	char *const *cleanup;  /* --foreground: files to remove if the exec fails, or NULL */
};

/* What the parent learns: the daemon's pid and, on failure, the step and errno. */
struct dz_result {
	int64_t pid;
	int64_t step;
	int64_t err;
	int64_t go_fd;
	int64_t status_fd;
};

/* One record on the status pipe; smaller than PIPE_BUF, so it arrives whole. */
struct record {
	int32_t step;
	int32_t err;
	int32_t pid;
};

struct rlimit64_k {
	uint64_t cur, max;
};

static gid_t have_groups[NGROUPS_MAX + 1];

/* Marks [from, to] close-on-exec; kernels before 5.11 get a loop instead. */
static long cloexec_range(int from, int to)
{
	if (from > to)
		return 0;
	if (sys3(SYS_close_range, from, to, CLOSE_RANGE_CLOEXEC) == 0)
		return 0;
	struct rlimit64_k nofile;
	if (sys4(SYS_prlimit64, 0, RLIMIT_NOFILE, 0, &nofile) == 0 && nofile.cur < (uint64_t)to + 1)
		to = (int)nofile.cur - 1;
	for (int fd = from; fd <= to; fd++)
		sys3(SYS_fcntl, fd, F_SETFD, FD_CLOEXEC);
	return 0;
}

/* Leave exactly stdio and the kept fds to the program; everything else closes on exec. */
static long mark_fds(const struct dz_spec *s)
{
	int from = 3;
	long r;
	for (int64_t i = 0; i < s->nkeep; i++) {
		int k = s->keep[i];
		cloexec_range(from, k - 1);
		if ((r = sys3(SYS_fcntl, k, F_SETFD, 0)) < 0)
			return r;
		from = k + 1;
	}
	return cloexec_range(from, INT_MAX);
}

/* After the drop: every id is the target's, the groups are exactly the asked ones, root is gone for good. */
static int ids_dropped(const struct dz_spec *s)
{
	uid_t u[3];
	gid_t g[3];
	if (sys3(SYS_getresuid, &u[0], &u[1], &u[2]) || sys3(SYS_getresgid, &g[0], &g[1], &g[2]))
		return 0;
	for (int i = 0; i < 3; i++)
		if ((s->uid >= 0 && u[i] != (uid_t)s->uid) || (s->gid >= 0 && g[i] != (gid_t)s->gid))
			return 0;
	if (s->groups) {
		long n = sys3(SYS_getgroups, NGROUPS_MAX + 1, have_groups, 0);
		if (n != s->ngroups)
			return 0;
		for (int64_t i = 0; i < s->ngroups; i++) {
			int found = 0;
			for (long j = 0; j < n && !found; j++)
				found = have_groups[j] == s->groups[i];
			if (!found)
				return 0;
		}
	}
	if (s->uid > 0) {
		if (sys3(SYS_setuid, 0, 0, 0) == 0 || sys3(SYS_setresuid, -1, 0, -1) == 0)
			return 0;
		/* securebits or ambient capabilities could keep privileges across the uid change. */
		struct __user_cap_header_struct hdr = { _LINUX_CAPABILITY_VERSION_3, 0 };
		struct __user_cap_data_struct caps[2];
		if (sys3(SYS_capget, &hdr, caps, 0) < 0)
			return 0;
		for (int i = 0; i < 2; i++)
			if (caps[i].effective || caps[i].permitted)
				return 0;
	}
	return 1;
}

/* Everything between detaching and exec. Returns -errno and sets *step on failure. */
static long setup(const struct dz_spec *s, int *step)
{
	long r;
	/* Until exec this process shares the launcher's memory: no one may attach to it, even after the drop. */
	sys3(SYS_prctl, PR_SET_DUMPABLE, 0, 0);
#define TRY(st, call)                  \
	do {                           \
		*step = (st);          \
		if ((r = (call)) < 0)  \
			return r;      \
	} while (0)
	if (s->root)
		TRY(STEP_CHROOT, sys3(SYS_chroot, s->root, 0, 0));
	TRY(STEP_CHDIR, sys3(SYS_chdir, s->dir, 0, 0));
	if (s->groups)
		TRY(STEP_SETGROUPS, sys3(SYS_setgroups, s->ngroups, s->groups, 0));
	if (s->gid >= 0)
		TRY(STEP_SETGID, sys3(SYS_setresgid, s->gid, s->gid, s->gid));
	if (s->uid >= 0)
		TRY(STEP_SETUID, sys3(SYS_setresuid, s->uid, s->uid, s->uid));
	*step = STEP_VERIFY;
	if (!ids_dropped(s))
		return -EPERM;
	sys3(SYS_umask, s->umask, 0, 0);
	struct rlimit64_k core = { 0, 0 };
	if (s->core)
		TRY(STEP_RLIMIT, sys4(SYS_prlimit64, 0, RLIMIT_CORE, 0, &core));
	core.cur = core.max;
	TRY(STEP_RLIMIT, sys4(SYS_prlimit64, 0, RLIMIT_CORE, &core, 0));
	/* Copy first: a prepared fd may itself sit on 0, 1 or 2. */
	int tmp[3];
	for (int i = 0; i < 3; i++) {
		TRY(STEP_STDIO, sys3(SYS_fcntl, s->stdio[i], F_DUPFD_CLOEXEC, 3));
		tmp[i] = (int)r;
	}
	for (int i = 0; i < 3; i++)
		TRY(STEP_STDIO, sys3(SYS_dup3, tmp[i], i, 0));
	TRY(STEP_FDS, mark_fds(s));
	/* Ignored dispositions survive exec, and Bun ignores SIGPIPE and SIGXFSZ. */
	long dfl[4] = { 0, 0, 0, 0 }; /* SIG_DFL, no flags, empty mask: the same in every layout */
	for (int sig = 1; sig < 65; sig++)
		if (sig != SIGKILL && sig != SIGSTOP)
			sys4(SYS_rt_sigaction, sig, dfl, 0, 8);
	return 0;
#undef TRY
}

static void report(int fd, int step, long err)
{
	struct record rec = { step, (int32_t)-err, (int32_t)sys3(SYS_getpid, 0, 0, 0) };
	while (sys3(SYS_write, fd, &rec, sizeof rec) == -EINTR)
		;
}

static void unblock_all(void)
{
	uint64_t none = 0;
	sys4(SYS_rt_sigprocmask, SIG_SETMASK, &none, 0, 8);
}

/* Every signal, glibc's internal 32 and 33 included (sigfillset leaves those out). */
static void block_all(uint64_t *old)
{
	uint64_t all = ~(uint64_t)0;
	sys4(SYS_rt_sigprocmask, SIG_SETMASK, &all, old, 8);
}

static void restore_mask(const uint64_t *old)
{
	sys4(SYS_rt_sigprocmask, SIG_SETMASK, old, 0, 8);
}

struct child_args {
	const struct dz_spec *spec;
	int status_fd, go_fd, parent_status, parent_go;
	char *stack;
	size_t stack_size;
	/* Written by the children in the memory they share with the launcher: the
	 * daemon's pid, and whether it got as far as calling execve. */
	volatile pid_t daemon;
	volatile int execing;
};

static int grandchild(void *p)
{
	struct child_args *a = p;
	int step;
	long r = setup(a->spec, &step);
	if (r < 0) {
		report(a->status_fd, step, r);
		sys3(SYS_exit, 127, 0, 0);
	}
	report(a->status_fd, STEP_READY, 0);
	char go;
	while ((r = sys3(SYS_read, a->go_fd, &go, 1)) == -EINTR)
		;
	if (r != 1)
		sys3(SYS_exit, 0, 0, 0); /* the launcher gave up (lost the pidfile race, or died) */
	unblock_all();
	a->execing = 1;
	r = sys3(SYS_execve, a->spec->path, a->spec->argv, a->spec->envp);
	a->execing = 0;
	report(a->status_fd, STEP_EXEC, r);
	sys3(SYS_exit, 127, 0, 0);
	return 0;
}

/* Runs while the launcher is suspended (CLONE_VFORK); it only starts a new session. */
static int intermediate(void *p)
{
	struct child_args *a = p;
	sys3(SYS_close, a->parent_status, 0, 0);
	sys3(SYS_close, a->parent_go, 0, 0);
	long r = sys3(SYS_setsid, 0, 0, 0);
	if (r < 0) {
		report(a->status_fd, STEP_SETSID, r);
		return 1;
	}
	/* This session leader exits, so the daemon can never acquire a terminal.
	 * glibc's clone sets up the new stack; the launcher is suspended (CLONE_VFORK),
	 * so the errno it may write cannot race with anything. */
	a->daemon = clone(grandchild, a->stack + a->stack_size, CLONE_VM | SIGCHLD, a);
	if (a->daemon < 0)
		report(a->status_fd, STEP_FORK2, -errno);
	return 0;
}

/* A child stack with a guard page below it. */
static char *new_stack(size_t size)
{
	char *m = mmap(NULL, size + 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
	if (m == MAP_FAILED)
		return NULL;
	mprotect(m, 4096, PROT_NONE);
	return m + 4096;
}

static int fail(struct dz_result *res, int step, int err)
{
	res->step = step;
	res->err = err;
	return -1;
}

/*
 * After the drop, the target user may signal the daemon. A SIGSTOP would leave
 * the launcher, and an init script with it, waiting for ever, so a daemon that
 * is silent this long is looked at, and killed if it is stopped. One that is
 * merely slow (a busy disk, a remote file system) is waited for.
 */
#define CHECK_MS 1000
#define STOPPED (-2)

static int is_stopped(pid_t pid)
{
	char path[32], buf[512];
	snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	ssize_t n = read(fd, buf, sizeof buf - 1);
	close(fd);
	if (n <= 0)
		return 0;
	buf[n] = 0;
	const char *end = strrchr(buf, ')'); /* the name may hold any byte, ')' too */
	return end && end[1] == ' ' && (end[2] == 'T' || end[2] == 't');
}

/*
 * Reads one record from the daemon's status pipe: its size, 0 at EOF, -1 with
 * errno, or STOPPED once the daemon was found stopped and killed.
 */
static int read_record(int fd, struct record *r, pid_t daemon)
{
	if (fd < 0) {
		errno = EBADF;
		return -1;
	}
	struct pollfd p = { .fd = fd, .events = POLLIN };
	for (;;) {
		int ready = poll(&p, 1, CHECK_MS);
		if (ready > 0)
			break;
		if (ready < 0 && errno != EINTR)
			return -1;
		/* Silent and open: only the daemon holds the write end, so it is alive and the pid is its own. */
		if (ready == 0 && daemon > 0 && is_stopped(daemon)) {
			kill(daemon, SIGKILL);
			return STOPPED;
		}
	}
	ssize_t n;
	do
		n = read(fd, r, sizeof *r);
	while (n < 0 && errno == EINTR);
	return (int)n;
}


#define STACK_SIZE (256 * 1024)
/* Shared with the daemon until it execs or exits, so it lives as long as the launcher. */
static struct child_args args;

/*
 * Starts the daemon (double clone, new session) and runs setup in it. Returns 0
 * once it is set up and waiting for dz_release(); -1 with res->step and res->err
 * otherwise. All signals stay blocked across clone so no handler of the
 * launcher's can run in a child.
 */
int dz_spawn(const struct dz_spec *s, struct dz_result *res)
{
	int status[2], go[2];
	memset(res, 0, sizeof *res);
	res->go_fd = res->status_fd = -1;
	if (pipe2(status, O_CLOEXEC))
		return fail(res, STEP_PIPE, errno);
	if (pipe2(go, O_CLOEXEC)) {
		int e = errno;
		close(status[0]);
		close(status[1]);
		return fail(res, STEP_PIPE, e);
	}
	char *first = new_stack(STACK_SIZE);
	if (!args.stack)
		args.stack = new_stack(STACK_SIZE);
	if (!first || !args.stack) {
		if (first)
			munmap(first - 4096, STACK_SIZE + 4096);
		close(status[0]), close(status[1]), close(go[0]), close(go[1]);
		return fail(res, STEP_FORK, ENOMEM);
	}
	args = (struct child_args){ s, status[1], go[0], status[0], go[1], args.stack, STACK_SIZE, 0, 0 };
	uint64_t old;
	block_all(&old);
	pid_t child = clone(intermediate, first + STACK_SIZE, CLONE_VM | CLONE_VFORK | SIGCHLD, &args);
	int clone_err = errno;
	restore_mask(&old);
	munmap(first - 4096, STACK_SIZE + 4096);
	close(status[1]);
	close(go[0]);
	if (child < 0) {
		close(status[0]);
		close(go[1]);
		return fail(res, STEP_FORK, clone_err);
	}
	while (waitpid(child, NULL, __WALL) < 0 && errno == EINTR)
		;
	struct record r;
	int n = read_record(status[0], &r, args.daemon);
	int e = errno;
	if (n != (int)sizeof r || r.step != STEP_READY) {
		close(status[0]);
		close(go[1]);
		res->pid = args.daemon;
		if (n == STOPPED)
			return fail(res, STEP_STOPPED, 0);
		/* EOF with no report: the daemon was killed during set-up. */
		if (n != (int)sizeof r)
			return n < 0 ? fail(res, STEP_READY, e) : fail(res, STEP_KILLED, 0);
		res->pid = r.pid;
		return fail(res, r.step, r.err);
	}
	res->pid = r.pid;
	res->go_fd = go[1];
	res->status_fd = status[0];
	return 0;
}

/* Let the daemon exec. Returns 0 when it did (the status pipe closed on exec). */
int dz_release(struct dz_result *res)
{
	char go = 1;
	ssize_t w;
	do
		w = write((int)res->go_fd, &go, 1);
	while (w < 0 && errno == EINTR);
	close((int)res->go_fd);
	struct record r;
	int n = read_record((int)res->status_fd, &r, (pid_t)res->pid);
	int e = errno;
	close((int)res->status_fd);
	res->go_fd = res->status_fd = -1;
	if (n == STOPPED)
		return fail(res, STEP_STOPPED, 0);
	/* The pipe also closes when the daemon is killed before it execs: execing tells the two apart. */
	if (w != 1 || (n == 0 && !args.execing))
		return fail(res, STEP_KILLED, 0);
	if (n == 0)
		return 0;
	if (n != (int)sizeof r)
		return fail(res, STEP_EXEC, n < 0 ? e : EPIPE);
	return fail(res, r.step, r.err);
}

/* Tell a daemon that is set up but not yet exec'd to exit quietly, and wait until it has. */
void dz_abandon(struct dz_result *res)
{
	close((int)res->go_fd);
	struct record r;
	read_record((int)res->status_fd, &r, (pid_t)res->pid);
	close((int)res->status_fd);
	res->go_fd = res->status_fd = -1;
}

struct cleaner_args {
	char *const *paths;
	int trigger, trigger_w, ack, ack_r;
	char *stack;
};

/*
 * The foreground launcher may be chrooted and unprivileged by the time its exec
 * fails. This helper, cloned before any of that, stays root and outside the
 * chroot: it removes the pidfile and new logs when asked, and exits quietly
 * when the exec succeeds (the trigger pipe closes on exec).
 */
static int cleaner(void *p)
{
	struct cleaner_args *a = p;
	sys3(SYS_close, a->trigger_w, 0, 0);
	sys3(SYS_close, a->ack_r, 0, 0);
	char c;
	long r;
	while ((r = sys3(SYS_read, a->trigger, &c, 1)) == -EINTR)
		;
	if (r == 1)
		for (char *const *f = a->paths; *f; f++)
			sys3(SYS_unlinkat, AT_FDCWD, *f, 0);
	sys3(SYS_exit, 0, 0, 0);
	return 0;
}

/* Clones the cleaner from a short-lived child, so it is not left as a child of the exec'd program. */
static int cleaner_parent(void *p)
{
	struct cleaner_args *a = p;
	return clone(cleaner, a->stack + STACK_SIZE, CLONE_VM, a) < 0;
}

static struct cleaner_args cleanup_args;

/* Starts the cleaner; returns the fds to trigger it and to wait for it, or -1s. */
static void start_cleaner(char *const *paths, int *trigger, int *ack)
{
	int t[2], k[2];
	*trigger = *ack = -1;
	if (pipe2(t, O_CLOEXEC))
		return;
	if (pipe2(k, O_CLOEXEC)) {
		close(t[0]), close(t[1]);
		return;
	}
	char *first = new_stack(STACK_SIZE);
	if (!cleanup_args.stack)
		cleanup_args.stack = new_stack(STACK_SIZE);
	if (first && cleanup_args.stack) {
		cleanup_args = (struct cleaner_args){ paths, t[0], t[1], k[1], k[0], cleanup_args.stack };
		/* Blocked for good in the cleaner: no handler of the launcher's may run in it,
		 * and a Ctrl-C meant for the program must not cost its cleanup. */
		uint64_t old;
		block_all(&old);
		pid_t pid = clone(cleaner_parent, first + STACK_SIZE, CLONE_VM | CLONE_VFORK | SIGCHLD, &cleanup_args);
		restore_mask(&old);
		if (pid > 0) {
			while (waitpid(pid, NULL, __WALL) < 0 && errno == EINTR)
				;
			*trigger = t[1];
			*ack = k[0];
			t[1] = k[0] = -1;
		}
	}
	if (first)
		munmap(first - 4096, STACK_SIZE + 4096);
	close(t[0]), close(k[1]);
	if (t[1] >= 0)
		close(t[1]), close(k[0]);
}

/*
 * --foreground: the same setup in this process, then exec in place. On failure
 * stdio is put back, and the cleaner has removed the files, so the launcher can
 * still report the error.
 */
int dz_exec(const struct dz_spec *s, struct dz_result *res)
{
	int saved[3], step, trigger = -1, ack = -1;
	memset(res, 0, sizeof *res);
	if (s->cleanup && *s->cleanup)
		start_cleaner(s->cleanup, &trigger, &ack);
	for (int i = 0; i < 3; i++)
		saved[i] = fcntl(i, F_DUPFD_CLOEXEC, 3);
	/* setup() resets every handler of this process: a failed exec must give Bun its own back
	 * (SIGPIPE ignored, the collector's SIGPWR) before it goes on to report the error. */
	long handlers[65][4];
	for (int sig = 1; sig < 65; sig++)
		sys4(SYS_rt_sigaction, sig, 0, handlers[sig], 8);
	uint64_t old;
	block_all(&old);
	long r = setup(s, &step);
	if (r == 0) {
		unblock_all();
		r = sys3(SYS_execve, s->path, s->argv, s->envp);
		step = STEP_EXEC;
	}
	for (int sig = 1; sig < 65; sig++)
		if (sig != SIGKILL && sig != SIGSTOP)
			sys4(SYS_rt_sigaction, sig, handlers[sig], 0, 8);
	restore_mask(&old);
	for (int i = 0; i < 3; i++)
		if (saved[i] >= 0) {
			dup2(saved[i], i);
			close(saved[i]);
		}
	if (trigger >= 0) {
		char c = 1;
		if (write(trigger, &c, 1) == 1)
			while (read(ack, &c, 1) < 0 && errno == EINTR)
				;
		close(trigger);
		close(ack);
	}
	return fail(res, step, (int)-r);
}

/* ---- Parent-side helpers: plain syscalls that return -errno. ---- */

/*
 * Points out[0..n-1] at the n NUL-terminated strings packed in block, and
 * out[n] at NULL: one call builds an argv or envp of any size. -EINVAL unless
 * the block holds exactly n strings.
 */
int dz_split(const char *block, int64_t len, int64_t n, const char **out)
{
	const char *p = block, *end = block + len;
	for (int64_t i = 0; i < n; i++) {
		const char *nul = memchr(p, 0, (size_t)(end - p));
		if (!nul)
			return -EINVAL;
		out[i] = p;
		p = nul + 1;
	}
	out[n] = NULL;
	return p == end ? 0 : -EINVAL;
}

#define RET(x) return (x) < 0 ? -errno : (x)

int dz_open(const char *path, int flags, int mode) { int r = open(path, flags | O_CLOEXEC, mode); RET(r); }
int dz_close(int fd) { int r = close(fd); RET(r); }
int64_t dz_read(int fd, void *buf, int64_t len) { ssize_t r = read(fd, buf, (size_t)len); RET(r); }
int64_t dz_write(int fd, const void *buf, int64_t len) { ssize_t r = write(fd, buf, (size_t)len); RET(r); }
int dz_link(const char *from, const char *to) { int r = link(from, to); RET(r); }
int dz_rename(const char *from, const char *to) { int r = rename(from, to); RET(r); }
int dz_unlink(const char *path) { int r = unlink(path); RET(r); }
int dz_flock(int fd, int op) { int r = flock(fd, op); RET(r); }
int dz_fchown(int fd, int64_t uid, int64_t gid) { int r = fchown(fd, (uid_t)uid, (gid_t)gid); RET(r); }
int dz_fsetxattr(int fd, const char *name, const void *v, int64_t len) { int r = fsetxattr(fd, name, v, (size_t)len, 0); RET(r); }
int64_t dz_fgetxattr(int fd, const char *name, void *v, int64_t len) { ssize_t r = fgetxattr(fd, name, v, (size_t)len); RET(r); }
int dz_fchmod(int fd, int mode) { int r = fchmod(fd, (mode_t)mode); RET(r); }
int dz_ftruncate(int fd) { int r = ftruncate(fd, 0); RET(r); }
/* The same numbers on every architecture since Linux 5.3. */
#ifndef SYS_pidfd_open
#define SYS_pidfd_open 434
#endif
#ifndef SYS_pidfd_send_signal
#define SYS_pidfd_send_signal 424
#endif
int dz_pidfd_open(int pid) { long r = syscall(SYS_pidfd_open, pid, 0); RET(r); }
int dz_pidfd_signal(int fd, int sig) { long r = syscall(SYS_pidfd_send_signal, fd, sig, NULL, 0); RET(r); }
int dz_kill(int pid, int sig) { int r = kill(pid, sig); RET(r); }
int dz_blocking(int fd)
{
	int fl = fcntl(fd, F_GETFL);
	if (fl < 0)
		return -errno;
	int r = fcntl(fd, F_SETFL, fl & ~O_NONBLOCK);
	RET(r);
}

/* out: dev, ino, mode, uid, gid, size, mtime seconds, mtime nanoseconds. */
static int stat_out(int r, const struct stat *st, int64_t *out)
{
	if (r < 0)
		return -errno;
	out[0] = (int64_t)st->st_dev;
	out[1] = (int64_t)st->st_ino;
	out[2] = st->st_mode;
	out[3] = st->st_uid;
	out[4] = st->st_gid;
	out[5] = st->st_size;
	out[6] = st->st_mtim.tv_sec;
	out[7] = st->st_mtim.tv_nsec;
	out[8] = (int64_t)st->st_nlink;
	return 0;
}
int dz_stat(const char *path, int follow, int64_t *out)
{
	struct stat st;
	return stat_out(follow ? stat(path, &st) : lstat(path, &st), &st, out);
}
int dz_fstat(int fd, int64_t *out)
{
	struct stat st;
	return stat_out(fstat(fd, &st), &st, out);
}

int64_t dz_readlink(const char *path, char *out, int64_t len) { ssize_t r = readlink(path, out, (size_t)len); RET(r); }
/* GNU strerror_r may return a static string instead of filling out. */
void dz_strerror(int err, char *out, int64_t len)
{
	const char *m = strerror_r(err, out, (size_t)len);
	if (m != out) {
		strncpy(out, m, (size_t)len - 1);
		out[len - 1] = 0;
	}
}

/*
 * User and group lookups go through NSS, so LDAP and sssd users work.
 * Returns 1 found, 0 no such entry, -errno on lookup failure.
 */
/*
 * NSS lookups into a buffer that grows until the entry fits: a group with
 * thousands of members (LDAP, AD) needs more than any fixed size.
 */
#define NSS_START (1 << 14)
#define NSS_MAX (1 << 26)
#define NSS_LOOKUP(call, found)                                                  \
	char *buf = NULL;                                                        \
	int r = ERANGE;                                                          \
	for (size_t size = NSS_START; r == ERANGE && size <= NSS_MAX; size *= 2) { \
		char *bigger = realloc(buf, size);                               \
		if (!bigger) {                                                   \
			r = ENOMEM;                                              \
			break;                                                   \
		}                                                                \
		buf = bigger;                                                    \
		r = (call);                                                      \
	}                                                                        \
	if (r && r != ENOENT && r != ESRCH && r != EBADF && r != EPERM) {        \
		free(buf);                                                       \
		return -r;                                                       \
	}                                                                        \
	if (!(found)) {                                                          \
		free(buf);                                                       \
		return 0;                                                        \
	}

int dz_getpw(const char *name, int64_t uid, int64_t *ids, char *home, int64_t home_len, char *login, int64_t login_len)
{
	struct passwd pw, *p = NULL;
	NSS_LOOKUP(name ? getpwnam_r(name, &pw, buf, size, &p) : getpwuid_r((uid_t)uid, &pw, buf, size, &p), p)
	ids[0] = p->pw_uid;
	ids[1] = p->pw_gid;
	int fits = strlen(p->pw_dir) < (size_t)home_len && strlen(p->pw_name) < (size_t)login_len;
	if (fits) {
		strcpy(home, p->pw_dir);
		strcpy(login, p->pw_name);
	}
	free(buf);
	return fits ? 1 : -ENAMETOOLONG;
}

int dz_getgr(const char *name, int64_t *gid)
{
	struct group gr, *g = NULL;
	NSS_LOOKUP(getgrnam_r(name, &gr, buf, size, &g), g)
	*gid = g->gr_gid;
	free(buf);
	return 1;
}

/* The groups initgroups() would set; returns their count, or -1 if more than max. */
int dz_grouplist(const char *user, int64_t gid, gid_t *out, int max)
{
	int n = max;
	if (getgrouplist(user, (gid_t)gid, out, &n) < 0)
		return -1;
	return n;
}

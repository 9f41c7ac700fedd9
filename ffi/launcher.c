/*
 * The launcher's side of a start: it clones the daemon the way posix_spawn
 * makes its child, clone(CLONE_VM), which copies no page tables (a Bun process
 * maps about 100 MB, and two fork() copies plus their teardown were most of a
 * launch), waits on a close-on-exec status pipe for the child path (child.c)
 * to report, and only then lets the daemon exec. No JavaScript may run in a
 * child of a Bun process, so all of this is native.
 */
#include "cgroup.h"
#include "proc.h"
#include "ready.h"
#include "sockets.h"
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

/* What the parent learns: the daemon's pid and, on failure, the step and errno. */
struct dz_result {
	int64_t pid;
	int64_t step;
	int64_t err;
	int64_t go_fd;
	int64_t status_fd;
};

struct child_args {
	const struct dz_spec *spec;
	int status_fd, go_fd, parent_status, parent_go;
	char *stack;
	size_t stack_size;
	/* Written by the children in the memory they share with the launcher: the
	 * daemon's pid, and whether it got as far as calling execve. */
	volatile pid_t daemon;
	volatile int execing;
	/* The daemon was born in its cgroup (--cgroup), and skips joining it. */
	volatile int placed;
};

static int grandchild(void *p)
{
	struct child_args *a = p;
	int step;
	/* Born in its cgroup: a copy of the spec without it, as the launcher's is shared. */
	struct dz_spec born;
	const struct dz_spec *s = a->spec;
	if (a->placed) {
		born = *s;
		born.cgroup_fd = -1;
		s = &born;
	}
	long r = child_setup(s, &step);
	if (r < 0) {
		child_report(a->status_fd, step, r);
		sys3(SYS_exit, RUN_NOT_STARTED, 0, 0);
	}
	if (s->check) {
		/* --check: a throwaway daemon, as the target user, asks what the exec would say. */
		r = child_probe_exec(s);
		child_report(a->status_fd, r < 0 ? STEP_EXEC : STEP_READY, r);
		sys3(SYS_exit, 0, 0, 0);
	}
	child_report(a->status_fd, STEP_READY, 0);
	char go;
	while ((r = sys3(SYS_read, a->go_fd, &go, 1)) == -EINTR)
		;
	if (r != 1)
		sys3(SYS_exit, 0, 0, 0); /* the launcher gave up (lost the pidfile race, or died) */
	/* The monitor reports its first run on this copy; the close-on-exec one still reports a failed exec. */
	int keep = (int)s->report_fd;
	if (keep >= 0 && (r = keep == a->status_fd ? sys3(SYS_fcntl, keep, F_SETFD, 0) : sys3(SYS_dup3, a->status_fd, keep, 0)) < 0) {
		child_report(a->status_fd, STEP_FDS, r);
		sys3(SYS_exit, RUN_NOT_STARTED, 0, 0);
	}
	unblock_all();
	a->execing = 1;
	r = child_exec(s);
	a->execing = 0;
	child_report(a->status_fd, STEP_EXEC, r);
	sys3(SYS_exit, RUN_NOT_STARTED, 0, 0);
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
		child_report(a->status_fd, STEP_SETSID, r);
		return 1;
	}
	/* This session leader exits, so the daemon can never acquire a terminal.
	 * --cgroup: the daemon is born in its cgroup where the kernel can do it (clone3);
	 * where it refuses, no child exists, and a plain clone's first step joins instead. */
	a->placed = a->spec->cgroup_fd >= 0;
	if (a->placed) {
		a->daemon = cgroup_clone_vm(grandchild, a->stack, a->stack_size, a, (int)a->spec->cgroup_fd);
		a->placed = a->daemon > 0;
		if (a->placed)
			return 0;
	}
	/* glibc's clone sets up the new stack; the launcher is suspended (CLONE_VFORK),
	 * so the errno it may write cannot race with anything. */
	a->daemon = clone(grandchild, a->stack + a->stack_size, CLONE_VM | SIGCHLD, a);
	if (a->daemon < 0)
		child_report(a->status_fd, STEP_FORK2, -errno);
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
 * A start the caller gives up on: SIGHUP, SIGINT or SIGTERM (a Ctrl-C, an init
 * script's timeout) while the launcher waits would kill it at their default
 * action, from any of Bun's threads, and leave a half-started daemon. While a
 * start that waits runs, they are caught here instead: the handler, run by any
 * thread, only records the first and wakes the wait through a pipe, and the
 * wait (dz_ready_wait, or dz_release for a monitor) stops what was started.
 */
static volatile sig_atomic_t interrupted;
/* Never closed: a handler in another thread may write to it as the dispositions are put back. */
static int wake[2] = { -1, -1 };
static const int INTERRUPTS[] = { SIGHUP, SIGINT, SIGTERM };
static struct sigaction before[3];

static void on_interrupt(int sig)
{
	int e = errno;
	if (!interrupted)
		interrupted = sig;
	if (write(wake[1], "", 1) < 0) {
		/* A full pipe is readable already. */
	}
	errno = e;
}

/* 0, or -errno. */
int dz_interrupt_catch(void)
{
	if (wake[0] < 0 && pipe2(wake, O_CLOEXEC | O_NONBLOCK) < 0)
		return -errno;
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_interrupt;
	sa.sa_flags = SA_RESTART;
	sigfillset(&sa.sa_mask);
	for (int i = 0; i < 3; i++) {
		sigaction(INTERRUPTS[i], NULL, &before[i]);
		/* One ignored from the start stays ignored, as nohup and a shell's background jobs want. */
		if (before[i].sa_handler != SIG_IGN)
			sigaction(INTERRUPTS[i], &sa, NULL);
	}
	return 0;
}

void dz_interrupt_restore(void)
{
	for (int i = 0; i < 3; i++)
		sigaction(INTERRUPTS[i], &before[i], NULL);
}

/*
 * After the drop, the target user may signal the daemon. A SIGSTOP would leave
 * the launcher, and an init script with it, waiting for ever, so a daemon that
 * is silent this long is looked at, and killed if it is stopped. One that is
 * merely slow (a busy disk, a remote file system) is waited for.
 */
#define CHECK_MS 1000
#define STOPPED (-2)
#define INTERRUPTED (-3)

static int is_stopped(pid_t pid)
{
	char state;
	pid_t ppid, pgrp;
	return proc_stat(pid, &state, &ppid, &pgrp) == 0 && (state == 'T' || state == 't');
}

/*
 * Reads one record from the daemon's status pipe: its size, 0 at EOF, -1 with
 * errno, or STOPPED once the daemon was found stopped and killed; with
 * `interruptible`, INTERRUPTED once the caller's signal came and the pipe is silent.
 */
static int read_record(int fd, struct record *r, pid_t daemon, int interruptible)
{
	if (fd < 0) {
		errno = EBADF;
		return -1;
	}
	struct pollfd p[2] = { { .fd = fd, .events = POLLIN }, { .fd = interruptible ? wake[0] : -1, .events = POLLIN } };
	for (;;) {
		int ready = poll(p, 2, CHECK_MS);
		if (ready > 0 && p[0].revents)
			break;
		if (ready < 0 && errno != EINTR)
			return -1;
		/* Silent and open: only the daemon holds the write end, so it is alive and the pid is its own. */
		if (interruptible && interrupted)
			return INTERRUPTED;
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
	/* Neither pipe may be where the daemon gets a socket or --ready fd:N (which is above the sockets). */
	long moved = handon_clear(s, status, 2);
	if (moved == 0)
		moved = handon_clear(s, go, 2);
	if (moved == 0)
		moved = ready_clear(status, 2);
	if (moved == 0)
		moved = ready_clear(go, 2);
	if (moved < 0) {
		close(status[0]), close(status[1]), close(go[0]), close(go[1]);
		return fail(res, STEP_PIPE, (int)-moved);
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
	args = (struct child_args){ s, status[1], go[0], status[0], go[1], args.stack, STACK_SIZE, 0, 0, 0 };
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
	int n = read_record(status[0], &r, args.daemon, 0);
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
	struct record r, rest;
	/* A monitor says how its first run went, which can take as long as --ready waits. */
	int reports = args.spec->report_fd >= 0;
	int n = read_record((int)res->status_fd, &r, (pid_t)res->pid, reports);
	int e = errno;
	/* The monitor's own stop: its run's tree, its pidfile and its notify socket go before it exits. */
	if (n == INTERRUPTED)
		kill((pid_t)res->pid, SIGTERM);
	/* A monitor that failed its first run exits, or one that was stopped: wait for it, so its pidfile lock is gone too. */
	if (n == INTERRUPTED || (n == (int)sizeof r && r.step != STEP_READY))
		while (read_record((int)res->status_fd, &rest, (pid_t)res->pid, 0) > 0)
			;
	close((int)res->status_fd);
	res->go_fd = res->status_fd = -1;
	if (n == INTERRUPTED)
		return fail(res, STEP_INTERRUPTED, interrupted);
	if (n == STOPPED)
		return fail(res, STEP_STOPPED, 0);
	/* The pipe also closes when the daemon is killed before it execs: execing tells the two apart.
	 * A monitor says how its first run went instead: its silence means it died. */
	if (w != 1 || (n == 0 && (!args.execing || reports)))
		return fail(res, STEP_KILLED, 0);
	if (n == 0 || (reports && n == (int)sizeof r && r.step == STEP_READY))
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
	read_record((int)res->status_fd, &r, (pid_t)res->pid, 0);
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
	int cleaner[2] = { trigger, ack };
	/* Whatever handon_clear moved before a failure is closed where it was: take the new numbers. */
	if (trigger >= 0) {
		handon_clear(s, cleaner, 2);
		trigger = cleaner[0], ack = cleaner[1];
	}
	/* Above the sockets and fd:N, which the child path puts in place over whatever is there. */
	int floor = 3 + (int)s->nlisten;
	if (s->ready_to >= floor)
		floor = (int)s->ready_to + 1;
	for (int i = 0; i < 3; i++)
		saved[i] = fcntl(i, F_DUPFD_CLOEXEC, floor);
	/* setup() resets every handler of this process: a failed exec must give Bun its own back
	 * (SIGPIPE ignored, the collector's SIGPWR) before it goes on to report the error. */
	long handlers[65][4];
	for (int sig = 1; sig < 65; sig++)
		sys4(SYS_rt_sigaction, sig, 0, handlers[sig], 8);
	uint64_t old;
	block_all(&old);
	long r = child_setup(s, &step);
	if (r == 0) {
		unblock_all();
		r = child_exec(s);
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

/* ---- --ready for a plain start: the launcher waits for the daemon itself (ready.h). ---- */

#include "tree.h"
#include "clock.h"
#include <sys/prctl.h>

#define STOP_MS 5000

static int64_t ready_deadline;

/*
 * Before the fork: the protocol, its socket or pipe, and this process made a
 * subreaper, so the daemon comes back to it as a child when the middle process
 * exits, and its exit status can be known. `env` gets NOTIFY_SOCKET=… or "";
 * fds[0] and fds[1] the pipe's write end and the number the daemon gets it as.
 */
int dz_ready_prepare(const char *how, int64_t uid, int64_t gid, int64_t abstract, char *env, int64_t size, int64_t *fds)
{
	long r = ready_config(how);
	if (r == 0)
		r = ready_open(uid, gid, (int)abstract, env, (size_t)size);
	if (r == 0)
		r = ready_arm(&fds[0], &fds[1]);
	if (r == 0 && prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) < 0)
		r = -errno;
	return (int)r;
}

/*
 * A start that will not be ready: its whole tree is stopped (tree.h), KILL to
 * what is left after STOP_MS. Ends with all of it reaped: two looks in a row
 * find no child but the daemon, which is reaped last, and nothing is left in
 * its group.
 */
static void stop_tree(pid_t daemon, pid_t pgid)
{
	int killing = 0, quiet = 0;
	tree_begin();
	for (int64_t until = now_ms(CLOCK_MONOTONIC) + STOP_MS;;) {
		quiet = tree_signal(daemon, pgid, killing ? SIGKILL : SIGTERM) ? 0 : quiet + 1;
		if (quiet >= 2 && !proc_group_alive(pgid))
			break;
		if (!killing && now_ms(CLOCK_MONOTONIC) >= until) {
			killing = 1;
			continue;
		}
		poll(NULL, 0, 20);
	}
	waitpid(daemon, NULL, WNOHANG);
}

/*
 * Waits until the daemon is ready: 0. With 1 a new STATUS= is in `status` (call
 * again). With -1 it will not be: res->step says how (STEP_EXITED with the wait
 * status in res->err, STEP_TIMEOUT, STEP_ERRNO with the error, STEP_CLOSED),
 * and the daemon's process group is gone.
 */
int dz_ready_wait(int64_t pid, int64_t timeout_ms, char *status, int64_t size, struct dz_result *res)
{
	if (!ready_deadline) {
		ready_deadline = now_ms(CLOCK_MONOTONIC) + timeout_ms;
		/* The daemon has its copy of fd:N's pipe: with this one gone, its closing is seen. */
		ready_armed();
	}
	pid_t daemon = (pid_t)pid, pgid = getpgid(daemon);
	for (int looked = 0;; looked = 1) {
		struct pollfd p[3];
		int n = ready_pollfd(p);
		p[n++] = (struct pollfd){ wake[0], POLLIN, 0 };
		int64_t left = ready_deadline - now_ms(CLOCK_MONOTONIC);
		/* A look first, for a program ready at once; then the daemon's death is seen within a probe's time. */
		if (looked)
			poll(p, (nfds_t)n, left < 0 ? 0 : left < PROBE_MS ? (int)left : PROBE_MS);
		/* Caught at any time since the start began, and not ready before: the start is undone. */
		if (interrupted) {
			stop_tree(daemon, pgid > 0 ? pgid : daemon);
			return fail(res, STEP_INTERRUPTED, interrupted);
		}
		struct ready_event e;
		ready_check(daemon, &e);
		if (e.extend_ms)
			ready_deadline = now_ms(CLOCK_MONOTONIC) + e.extend_ms;
		snprintf(status, (size_t)size, "%s", ready_status());
		if (e.ready)
			return 0;
		siginfo_t info = { 0 };
		int exited = waitid(P_PID, (id_t)daemon, &info, WEXITED | WNOHANG | WNOWAIT) == 0 && info.si_pid == daemon;
		int step = exited ? STEP_EXITED : e.err ? STEP_ERRNO : e.closed ? STEP_CLOSED : now_ms(CLOCK_MONOTONIC) >= ready_deadline ? STEP_TIMEOUT : -1;
		/* A STATUS= is handed up only once the rest of its message has been judged. */
		if (step < 0 && e.status)
			return 1;
		if (step < 0)
			continue;
		int err = exited ? (info.si_code == CLD_EXITED ? info.si_status << 8 : info.si_status) : e.err;
		stop_tree(daemon, pgid > 0 ? pgid : daemon);
		return fail(res, step, err);
	}
}

/* --ready's argument checked before anything starts: 0 or REFUSED_*; out gets its kind, fd and port. */
int dz_ready_parse(const char *how, int32_t *out)
{
	struct ready_how h;
	int refused = ready_parse(how, &h);
	out[0] = h.kind;
	out[1] = h.fd;
	out[2] = h.port;
	return refused;
}

/* The notify socket and its directory, gone. */
void dz_ready_done(void)
{
	ready_close();
}

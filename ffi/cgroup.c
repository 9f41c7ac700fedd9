/* A program's own cgroup: see cgroup.h. */
#include "cgroup.h"
#include "clock.h"
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#ifndef SYS_clone3
#define SYS_clone3 435
#endif
#ifndef CLONE_INTO_CGROUP
#define CLONE_INTO_CGROUP 0x200000000ULL
#endif

long cgroup_join(int dir)
{
	long fd = sys4(SYS_openat, dir, "cgroup.procs", O_WRONLY | O_CLOEXEC, 0);
	if (fd < 0)
		return fd;
	/* "0": the writer itself. */
	long r = sys3(SYS_write, fd, "0", 1);
	sys3(SYS_close, fd, 0, 0);
	return r < 0 ? r : 0;
}

struct clone_args_v2 {
	uint64_t flags, pidfd, child_tid, parent_tid, exit_signal, stack, stack_size, tls, set_tid, set_tid_size, cgroup;
};

pid_t cgroup_fork(int dir, int *placed)
{
	struct clone_args_v2 args = { .flags = CLONE_INTO_CGROUP, .exit_signal = SIGCHLD, .cgroup = (uint64_t)dir };
	/* No stack given: the child returns here on a copy of this one, as from fork(). */
	long r = sys3(SYS_clone3, &args, sizeof args, 0);
	*placed = r >= 0;
	if (r >= 0)
		return (pid_t)r;
	/* Any refusal (no clone3, no CLONE_INTO_CGROUP, a cgroup that will not take it): the child's first step joins, or says why it cannot. */
	return fork();
}

/*
 * clone3 with a stack of its own: the child starts on that stack and must not
 * return into this function's frame, so it calls fn(arg) and exits with its
 * value from assembly, as glibc's clone() does. Returns the child's pid, or -errno.
 */
long clone3_run(struct clone_args_v2 *args, size_t size, int (*fn)(void *), void *arg);
#if defined(__x86_64__)
__asm__(".text\n.globl clone3_run\n.hidden clone3_run\n.type clone3_run,@function\n"
	"clone3_run:\n"
	"\tmov %rdx, %r8\n"
	"\tmov %rcx, %r9\n"
	"\tmov $435, %eax\n"
	"\tsyscall\n"
	"\ttest %rax, %rax\n"
	"\tjnz 1f\n"
	"\txor %ebp, %ebp\n"
	"\tmov %r9, %rdi\n"
	"\tcall *%r8\n"
	"\tmov %eax, %edi\n"
	"\tmov $60, %eax\n"
	"\tsyscall\n"
	"\thlt\n"
	"1:\tret\n"
	".size clone3_run, .-clone3_run\n");
#elif defined(__aarch64__)
__asm__(".text\n.globl clone3_run\n.hidden clone3_run\n.type clone3_run,%function\n"
	"clone3_run:\n"
	"\tmov x9, x2\n"
	"\tmov x10, x3\n"
	"\tmov x8, #435\n"
	"\tsvc #0\n"
	"\tcbnz x0, 1f\n"
	"\tmov x29, #0\n"
	"\tmov x0, x10\n"
	"\tblr x9\n"
	"\tmov x8, #93\n"
	"\tsvc #0\n"
	"1:\tret\n"
	".size clone3_run, .-clone3_run\n");
#endif

pid_t cgroup_clone_vm(int (*fn)(void *), char *stack, size_t size, void *arg, int dir)
{
	struct clone_args_v2 args = {
		.flags = CLONE_VM | CLONE_INTO_CGROUP, .exit_signal = SIGCHLD, .stack = (uint64_t)stack, .stack_size = size, .cgroup = (uint64_t)dir
	};
	return (pid_t)clone3_run(&args, sizeof args, fn, arg);
}

/* Opens a file of the cgroup, for reading or writing. */
static int open_in(int dir, const char *name, int flags)
{
	return openat(dir, name, flags | O_CLOEXEC);
}

int cgroup_signal(int dir, int sig)
{
	int fd = open_in(dir, "cgroup.procs", O_RDONLY);
	if (fd < 0)
		return 0;
	char buf[4096];
	long pid = -1;
	int found = 0;
	ssize_t n;
	/* A pid may span two reads: the number is carried until its newline. */
	while ((n = read(fd, buf, sizeof buf)) > 0)
		for (ssize_t i = 0; i < n; i++) {
			if (buf[i] >= '0' && buf[i] <= '9')
				pid = (pid < 0 ? 0 : pid * 10) + (buf[i] - '0');
			else if (pid > 0) {
				kill((pid_t)pid, sig);
				found++;
				pid = -1;
			}
		}
	close(fd);
	return found;
}

/*
 * KILL to all of it at once (cgroup.kill, Linux 5.14), or to each process. Only for a cgroup
 * that is removed next: after a cgroup.kill, Linux 6.18 kills every child later born in the
 * cgroup with CLONE_INTO_CGROUP, so the monitor, which starts runs in it again, KILLs each.
 */
static void cgroup_kill(int dir)
{
	int fd = open_in(dir, "cgroup.kill", O_WRONLY);
	if (fd >= 0 && write(fd, "1", 1) == 1) {
		close(fd);
		return;
	}
	if (fd >= 0)
		close(fd);
	cgroup_signal(dir, SIGKILL);
}

int cgroup_populated(int dir)
{
	int fd = open_in(dir, "cgroup.events", O_RDONLY);
	if (fd < 0)
		return -errno;
	char buf[256];
	ssize_t n = read(fd, buf, sizeof buf - 1);
	close(fd);
	if (n < 0)
		return -errno;
	buf[n] = 0;
	const char *p = strstr(buf, "populated ");
	return p ? p[10] == '1' : -EINVAL;
}

/* Whether the directory has a cgroup below it; getdents64 into a buffer of its own, as opendir would allocate. */
static int has_children(const char *path)
{
	int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return 1;
	char buf[4096];
	long n;
	int found = 0;
	while (!found && (n = sys3(SYS_getdents64, fd, buf, sizeof buf)) > 0)
		for (long off = 0; off < n && !found;) {
			/* struct linux_dirent64: ino, off, reclen, type, name. */
			unsigned short reclen;
			memcpy(&reclen, buf + off + 16, sizeof reclen);
			const char *name = buf + off + 19;
			found = buf[off + 18] == 4 /* DT_DIR */ && strcmp(name, ".") && strcmp(name, "..");
			off += reclen;
		}
	close(fd);
	return found;
}

/* Writes "-CONTROLLER" for each space-separated one of `list` to the directory's cgroup.subtree_control. */
static void switch_off(const char *dir, char *list)
{
	char file[PATH_MAX];
	if (snprintf(file, sizeof file, "%s/cgroup.subtree_control", dir) >= (int)sizeof file)
		return;
	int fd = open(file, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return;
	for (char *c = strtok(list, " "); c; c = strtok(NULL, " ")) {
		char off[64];
		int len = snprintf(off, sizeof off, "-%s", c);
		if (len < (int)sizeof off && write(fd, off, (size_t)len) < 0) {
			/* Still in use below: it stays, as it would have for whoever uses it. */
		}
	}
	close(fd);
}

int cgroup_remove(const char *path)
{
	if (rmdir(path) < 0 && errno != ENOENT)
		return -errno;
	char dir[PATH_MAX];
	if (strlen(path) >= sizeof dir)
		return 0;
	strcpy(dir, path);
	for (char *slash; (slash = strrchr(dir, '/')) && slash != dir;) {
		*slash = 0;
		char enabled[256];
		ssize_t n = getxattr(dir, XATTR_CGROUP_ENABLED, enabled, sizeof enabled - 1);
		int made = getxattr(dir, XATTR_CGROUP_MADE, NULL, 0) >= 0;
		if ((n < 0 && !made) || has_children(dir))
			break;
		if (n >= 0) {
			enabled[n] = 0;
			switch_off(dir, enabled);
			removexattr(dir, XATTR_CGROUP_ENABLED);
		}
		if (made && rmdir(dir) < 0)
			break;
	}
	return 0;
}

#define END_POLL_MS 20

/* src/cgroup.ts makes the cgroup and the directories above it: 0 or -errno. */
int dz_mkdir(const char *path)
{
	return mkdir(path, 0755) < 0 ? -errno : 0;
}

/*
 * stop, start and --cgroup failures (src/cgroup.ts): TERM to everything in the
 * cgroup at `path`, KILL to what is left after timeout_ms, and once it is empty
 * the cgroup removed. Returns how many processes it found first, or -errno:
 * -EBUSY when something stayed (a process stuck in the kernel) after KILL.
 */
int dz_cgroup_end(const char *path, int64_t timeout_ms)
{
	int dir = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dir < 0)
		return errno == ENOENT ? cgroup_remove(path) : -errno;
	int found = cgroup_signal(dir, SIGTERM), killed = 0;
	/* After KILL the kernel still has to tear each process down; a stuck one is given this long. */
	for (int64_t t = now_ms(CLOCK_MONOTONIC), until = t + timeout_ms, give_up = until + 10000; cgroup_populated(dir) > 0; t = now_ms(CLOCK_MONOTONIC)) {
		if (t >= give_up) {
			close(dir);
			return -EBUSY;
		}
		if (!killed && t >= until) {
			cgroup_kill(dir);
			killed = 1;
		}
		poll(NULL, 0, END_POLL_MS);
	}
	close(dir);
	int r = cgroup_remove(path);
	return r < 0 ? r : found;
}

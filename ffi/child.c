/*
 * The child path: chroot, chdir, groups, gid, uid (verified), umask, core limit,
 * stdio, fds and signal dispositions, then exec. It runs in a clone(CLONE_VM)
 * child of the launcher, which shares the launcher's memory, errno and locks, so
 * it makes raw system calls only (sys.h). The supervise monitor runs the same
 * code for every run of the program.
 */
#include "child.h"
#include <fcntl.h>
#include <limits.h>
#include <linux/capability.h>
#include <sys/prctl.h>
#include <sys/resource.h>

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
long child_setup(const struct dz_spec *s, int *step)
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
	if (s->groups)
		TRY(STEP_SETGROUPS, sys3(SYS_setgroups, s->ngroups, s->groups, 0));
	if (s->gid >= 0)
		TRY(STEP_SETGID, sys3(SYS_setresgid, s->gid, s->gid, s->gid));
	if (s->uid >= 0)
		TRY(STEP_SETUID, sys3(SYS_setresuid, s->uid, s->uid, s->uid));
	*step = STEP_VERIFY;
	if (!ids_dropped(s))
		return -EPERM;
	/* Only now: a uid change clears the parent-death signal. */
	if (s->pdeath)
		sys3(SYS_prctl, PR_SET_PDEATHSIG, s->pdeath, 0);
	/* As the target user: a directory only root can enter would leave the program where it cannot look. */
	TRY(STEP_CHDIR, sys3(SYS_chdir, s->dir, 0, 0));
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
	if (s->ready_to >= 0)
		TRY(STEP_FDS, s->ready_fd == s->ready_to ? 0 : sys3(SYS_dup3, s->ready_fd, s->ready_to, 0));
	TRY(STEP_FDS, mark_fds(s));
	if (s->ready_to >= 0)
		TRY(STEP_FDS, sys3(SYS_fcntl, s->ready_to, F_SETFD, 0));
	/* Ignored dispositions survive exec, and Bun ignores SIGPIPE and SIGXFSZ. */
	long dfl[4] = { 0, 0, 0, 0 }; /* SIG_DFL, no flags, empty mask: the same in every layout */
	for (int sig = 1; sig < 65; sig++)
		if (sig != SIGKILL && sig != SIGSTOP)
			sys4(SYS_rt_sigaction, sig, dfl, 0, 8);
	return 0;
#undef TRY
}

void child_report(int fd, int step, long err)
{
	struct record rec = { step, (int32_t)-err, (int32_t)sys3(SYS_getpid, 0, 0, 0) };
	while (sys3(SYS_write, fd, &rec, sizeof rec) == -EINTR)
		;
}

long child_exec(const struct dz_spec *s)
{
	if (s->exec_fd >= 0)
		return sys6(SYS_execveat, s->exec_fd, (long)"", (long)s->argv, (long)s->envp, AT_EMPTY_PATH, 0);
	return sys3(SYS_execve, s->path, s->argv, s->envp);
}

static uint64_t le(const unsigned char *p, int bytes)
{
	uint64_t v = 0;
	for (int i = bytes - 1; i >= 0; i--)
		v = v << 8 | p[i];
	return v;
}

/* Whatever the kernel would refuse first: exec permission (noexec mounts too), then a
 * #! interpreter (as deep as the kernel follows them) or the ELF loader. */
static long can_exec(const char *path, int depth)
{
	long r = sys4(SYS_faccessat, AT_FDCWD, path, X_OK, 0);
	if (r < 0)
		return r;
	long fd = sys4(SYS_openat, AT_FDCWD, path, O_RDONLY | O_CLOEXEC, 0);
	if (fd < 0)
		return 0; /* execute-only: the kernel runs a binary it will not let us read */
	unsigned char buf[256];
	long n = sys4(SYS_pread64, fd, buf, sizeof buf - 1, 0);
	char interp[256];
	long len = -1;
	if (n >= 2 && buf[0] == '#' && buf[1] == '!') {
		buf[n] = 0;
		unsigned char *p = buf + 2, *end;
		while (*p == ' ' || *p == '\t')
			p++;
		for (end = p; *end && *end != ' ' && *end != '\t' && *end != '\n'; end++)
			;
		len = end - p;
		for (long i = 0; i < len; i++)
			interp[i] = (char)p[i];
	} else if (n >= 64 && buf[0] == 0x7f && buf[1] == 'E' && buf[2] == 'L' && buf[3] == 'F') {
		int wide = buf[4] == 2;
		uint64_t phoff = wide ? le(buf + 32, 8) : le(buf + 28, 4);
		uint64_t size = le(buf + (wide ? 54 : 42), 2), count = le(buf + (wide ? 56 : 44), 2);
		for (uint64_t i = 0; i < count && i < 128; i++) {
			unsigned char ph[56];
			if (sys4(SYS_pread64, fd, ph, sizeof ph, phoff + i * size) < (wide ? 56 : 32) || le(ph, 4) != 3 /* PT_INTERP */)
				continue;
			uint64_t at = wide ? le(ph + 8, 8) : le(ph + 4, 4), bytes = wide ? le(ph + 32, 8) : le(ph + 16, 4);
			if (bytes > 1 && bytes < sizeof interp && sys4(SYS_pread64, fd, interp, bytes, at) == (long)bytes)
				len = (long)bytes - 1;
			break;
		}
		if (len < 0) {
			sys3(SYS_close, fd, 0, 0);
			return 0; /* static */
		}
	}
	sys3(SYS_close, fd, 0, 0);
	if (len <= 0)
		return -ENOEXEC;
	interp[len] = 0;
	/* The kernel's limit of nested interpreters (BINPRM_MAX_RECURSION). */
	if (depth >= 4)
		return -ELOOP;
	return can_exec(interp, depth + 1);
}

/* The kernel's E2BIG rule: strings and pointers together within a quarter of the stack limit, at most 6 MiB, at least 128 KiB. */
static long args_fit(const struct dz_spec *s)
{
	uint64_t size = 0;
	for (int list = 0; list < 2; list++)
		for (char *const *p = list ? s->envp : s->argv; *p; p++) {
			const char *c = *p;
			while (*c++)
				;
			size += (uint64_t)(c - *p) + sizeof(void *);
		}
	struct rlimit64_k stack;
	uint64_t limit = 6 << 20;
	if (sys4(SYS_prlimit64, 0, RLIMIT_STACK, 0, &stack) == 0 && stack.cur / 4 < limit)
		limit = stack.cur / 4;
	if (limit < 128 << 10)
		limit = 128 << 10;
	return size > limit ? -E2BIG : 0;
}

long child_probe_exec(const struct dz_spec *s)
{
	long r = can_exec(s->path, 0);
	return r < 0 ? r : args_fit(s);
}

/*
 * The child path: limits, nice, scheduling, I/O class, OOM score and CPU
 * affinity while still root; chroot, groups, gid, uid, capabilities and
 * no-new-privs (verified); chdir, umask, stdio, fds; every setting read back;
 * signal dispositions; then exec. It runs in a clone(CLONE_VM) child of the
 * launcher, which shares the launcher's memory, errno and locks, so it makes
 * raw system calls only (sys.h). The supervise monitor runs the same code for
 * every run of the program.
 */
#include "child.h"
#include "sockets.h"
#include "cgroup.h"
#include <fcntl.h>
#include <limits.h>
#include <linux/capability.h>
#include <sys/prctl.h>
#include <sys/resource.h>

#define IOPRIO_WHO_PROCESS 1
#ifndef SCHED_RESET_ON_FORK
#define SCHED_RESET_ON_FORK 0x40000000
#endif
#define NLIMITS (int)(sizeof((struct dz_spec *)0)->limit / sizeof(int64_t) / 2)
#define CPU_WORDS (int)(sizeof((struct dz_spec *)0)->cpus / sizeof(int64_t))

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

/* Leave exactly stdio, the sockets and the kept fds to the program; everything else closes on exec. */
static long mark_fds(const struct dz_spec *s)
{
	int from = 3 + (int)s->nlisten;
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

/* A failed call of a setting's step, as the launcher names it: which setting, which item of it. */
static long failed(long r, int setting, int item)
{
	return r < 0 ? -SETTING_FAILED(-r, setting, item) : r;
}

/* A setting that reads back otherwise than it was made. */
static long differs(int setting, int item)
{
	return -SETTING_FAILED(0, setting, item);
}

/* --limit core= decides the core limit; without it, --core does. */
static int limit_setting(const struct dz_spec *s, int r)
{
	return r == RLIMIT_CORE && s->limit[2 * r] == SETTING_UNSET ? SETTING_CORE : SETTING_LIMIT;
}

/*
 * The limit asked for resource r, any half not given as it is now (in *now): 1, or 0 when
 * nothing is asked, or -errno. --core asks for the soft limit to be the hard one, and its
 * absence for no core at all.
 */
static long wanted_limit(const struct dz_spec *s, int r, struct rlimit64_k *want, struct rlimit64_k *now)
{
	int64_t soft = s->limit[2 * r], hard = s->limit[2 * r + 1];
	int core = limit_setting(s, r) == SETTING_CORE && s->core != SETTING_UNSET;
	if (soft == SETTING_UNSET && hard == SETTING_UNSET && !core)
		return 0;
	long e = sys4(SYS_prlimit64, 0, r, 0, now);
	if (e < 0)
		return e;
	if (core) {
		want->cur = want->max = s->core ? now->max : 0;
		return 1;
	}
	want->cur = soft == SETTING_UNSET ? now->cur : (uint64_t)soft;
	want->max = hard == SETTING_UNSET ? now->max : (uint64_t)hard;
	return 1;
}

static long set_limits(const struct dz_spec *s)
{
	for (int r = 0; r < NLIMITS; r++) {
		struct rlimit64_k want, now;
		long e = wanted_limit(s, r, &want, &now);
		/*
		 * The child path opens fds yet, above the launcher's many: the open-file limit only rises
		 * here, where raising the hard one may need root, and comes down once the fds are done
		 * (lower_nofile), which anyone may do.
		 */
		if (e > 0 && r == RLIMIT_NOFILE) {
			want.max = want.max > now.max ? want.max : now.max;
			want.cur = want.cur > now.cur ? want.cur : now.cur;
		}
		if (e > 0)
			e = sys4(SYS_prlimit64, 0, r, &want, 0);
		if (e < 0)
			return failed(e, limit_setting(s, r), r);
	}
	return 0;
}

static long lower_nofile(const struct dz_spec *s)
{
	struct rlimit64_k want, now;
	long e = wanted_limit(s, RLIMIT_NOFILE, &want, &now);
	if (e > 0 && (want.cur != now.cur || want.max != now.max))
		e = sys4(SYS_prlimit64, 0, RLIMIT_NOFILE, &want, 0);
	return failed(e < 0 ? e : 0, SETTING_LIMIT, RLIMIT_NOFILE);
}

static long set_sched(int64_t v)
{
	int prio = (int)(v & 0xff);
	return sys3(SYS_sched_setscheduler, 0, v >> 8, &prio);
}

/* Writes oom_score_adj and reads it back at once, since a chroot may hide /proc: 0, 1 when it reads back otherwise, or -errno. */
static long set_oom(int64_t adj)
{
	char text[8], *p = text + sizeof text;
	uint64_t n = adj < 0 ? (uint64_t)-adj : (uint64_t)adj;
	do
		*--p = (char)('0' + n % 10);
	while (n /= 10);
	if (adj < 0)
		*--p = '-';
	long fd = sys4(SYS_openat, AT_FDCWD, "/proc/self/oom_score_adj", O_RDWR | O_CLOEXEC, 0);
	if (fd < 0)
		return fd;
	long r = sys3(SYS_write, fd, p, text + sizeof text - p);
	char back[16];
	long got = r < 0 ? r : sys4(SYS_pread64, fd, back, sizeof back - 1, 0);
	sys3(SYS_close, fd, 0, 0);
	if (got < 0)
		return got;
	int64_t v = 0;
	int neg = got > 0 && back[0] == '-';
	for (long i = neg; i < got && back[i] >= '0' && back[i] <= '9'; i++)
		v = v * 10 + (back[i] - '0');
	return (neg ? -v : v) != adj;
}

static int cpus_given(const struct dz_spec *s)
{
	for (int i = 0; i < CPU_WORDS; i++)
		if (s->cpus[i])
			return 1;
	return 0;
}

/* The effective, permitted and inheritable sets, 64 bits each: 0 or -errno. */
static long get_caps(uint64_t set[3])
{
	struct __user_cap_header_struct hdr = { _LINUX_CAPABILITY_VERSION_3, 0 };
	struct __user_cap_data_struct d[2];
	long r = sys3(SYS_capget, &hdr, d, 0);
	set[0] = d[0].effective | (uint64_t)d[1].effective << 32;
	set[1] = d[0].permitted | (uint64_t)d[1].permitted << 32;
	set[2] = d[0].inheritable | (uint64_t)d[1].inheritable << 32;
	return r;
}

static long set_caps(uint64_t eff, uint64_t perm, uint64_t inh)
{
	struct __user_cap_header_struct hdr = { _LINUX_CAPABILITY_VERSION_3, 0 };
	struct __user_cap_data_struct d[2];
	for (int i = 0; i < 2; i++) {
		d[i].effective = (uint32_t)(eff >> 32 * i);
		d[i].permitted = (uint32_t)(perm >> 32 * i);
		d[i].inheritable = (uint32_t)(inh >> 32 * i);
	}
	return sys3(SYS_capset, &hdr, d, 0);
}

/*
 * --cap: exactly the named capabilities stay, in every set: all others leave the
 * bounding set too, and for another user the named ones are ambient, so they
 * survive the exec of a program without file capabilities.
 */
static long keep_caps(const struct dz_spec *s)
{
	uint64_t keep = (uint64_t)s->cap, set[3];
	long r = get_caps(set);
	/* The uid change emptied the effective set (PR_SET_KEEPCAPS kept the permitted one), and the bounding set needs CAP_SETPCAP. */
	if (r < 0 || (r = set_caps(set[1], set[1], set[2])) < 0)
		return r;
	for (int c = 0; c < 64; c++)
		if (!(keep >> c & 1) && (r = sys3(SYS_prctl, PR_CAPBSET_DROP, c, 0)) < 0) {
			if (r == -EINVAL)
				break; /* past the last capability this kernel knows */
			return r;
		}
	if ((r = set_caps(keep, keep, keep)) < 0)
		return r;
	for (int c = 0; c < 64 && s->uid > 0; c++)
		if (keep >> c & 1 && (r = sys3(SYS_prctl, PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, c)) < 0)
			return r;
	return sys3(SYS_prctl, PR_SET_KEEPCAPS, 0, 0);
}

/*
 * After the drop: every id is the target's, the groups are exactly the asked ones,
 * the capabilities exactly those --cap names (none for another user without it),
 * and root is gone for good, unless --cap setuid keeps the way back.
 */
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
	int named = s->cap != SETTING_UNSET;
	uint64_t want = named ? (uint64_t)s->cap : 0, set[3];
	/* securebits or ambient capabilities could keep privileges across the uid change. */
	if ((named || s->uid > 0) && (get_caps(set) < 0 || set[0] != want || set[1] != want || (named && set[2] != want)))
		return 0;
	for (int c = 0; c < 64 && named; c++) {
		long bounding = sys3(SYS_prctl, PR_CAPBSET_READ, c, 0);
		if (bounding < 0)
			break;
		long ambient = sys3(SYS_prctl, PR_CAP_AMBIENT, PR_CAP_AMBIENT_IS_SET, c);
		if (bounding != (long)(want >> c & 1) || ambient != (long)(s->uid > 0 && want >> c & 1))
			return 0;
	}
	if (s->uid > 0 && !(want >> CAP_SETUID & 1) && (sys3(SYS_setuid, 0, 0, 0) == 0 || sys3(SYS_setresuid, -1, 0, -1) == 0))
		return 0;
	return 1;
}

/* Every setting as the kernel has it now: 0, or the failure that names the first that reads back otherwise. */
static long settings_hold(const struct dz_spec *s)
{
	long r;
	for (int i = 0; i < NLIMITS; i++) {
		struct rlimit64_k want, now;
		if ((r = wanted_limit(s, i, &want, &now)) < 0)
			return failed(r, limit_setting(s, i), i);
		if (r && (now.cur != want.cur || now.max != want.max))
			return differs(limit_setting(s, i), i);
	}
	/* The raw getpriority says 20 - nice, so that it is never negative. */
	if (s->nice != SETTING_UNSET && (r = sys3(SYS_getpriority, PRIO_PROCESS, 0, 0)) != 20 - s->nice)
		return r < 0 ? failed(r, SETTING_NICE, 0) : differs(SETTING_NICE, 0);
	if (s->sched != SETTING_UNSET) {
		int prio = -1;
		long policy = sys3(SYS_sched_getscheduler, 0, 0, 0);
		if (policy < 0 || (r = sys3(SYS_sched_getparam, 0, &prio, 0)) < 0)
			return failed(policy < 0 ? policy : r, SETTING_SCHED, 0);
		if ((policy & ~SCHED_RESET_ON_FORK) != s->sched >> 8 || prio != (s->sched & 0xff))
			return differs(SETTING_SCHED, 0);
	}
	if (s->ionice != SETTING_UNSET && (r = sys3(SYS_ioprio_get, IOPRIO_WHO_PROCESS, 0, 0)) != s->ionice)
		return r < 0 ? failed(r, SETTING_IONICE, 0) : differs(SETTING_IONICE, 0);
	if (cpus_given(s)) {
		int64_t have[CPU_WORDS] = { 0 };
		if ((r = sys3(SYS_sched_getaffinity, 0, sizeof have, have)) < 0)
			return failed(r, SETTING_CPUS, 0);
		for (int i = 0; i < CPU_WORDS; i++)
			if (have[i] != s->cpus[i])
				return differs(SETTING_CPUS, 0);
	}
	if (s->no_new_privs && (r = sys3(SYS_prctl, PR_GET_NO_NEW_PRIVS, 0, 0)) != 1)
		return r < 0 ? failed(r, SETTING_NO_NEW_PRIVS, 0) : differs(SETTING_NO_NEW_PRIVS, 0);
	return 0;
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
	/* --cgroup, where the process was not born in it: first, so that nothing the program forks is outside. */
	if (s->cgroup_fd >= 0)
		TRY(STEP_CGROUP, cgroup_join((int)s->cgroup_fd));
	/* While root: raising a hard limit, a negative nice, a real-time policy and a negative OOM score need it. */
	TRY(STEP_LIMITS, set_limits(s));
	if (s->nice != SETTING_UNSET)
		TRY(STEP_NICE, failed(sys3(SYS_setpriority, PRIO_PROCESS, 0, s->nice), SETTING_NICE, 0));
	if (s->sched != SETTING_UNSET)
		TRY(STEP_SCHED, failed(set_sched(s->sched), SETTING_SCHED, 0));
	if (s->ionice != SETTING_UNSET)
		TRY(STEP_IONICE, failed(sys3(SYS_ioprio_set, IOPRIO_WHO_PROCESS, 0, s->ionice), SETTING_IONICE, 0));
	if (s->oom_score_adjust != SETTING_UNSET) {
		TRY(STEP_OOM, failed(set_oom(s->oom_score_adjust), SETTING_OOM_SCORE_ADJUST, 0));
		if (r > 0)
			TRY(STEP_VERIFY_SETTINGS, differs(SETTING_OOM_SCORE_ADJUST, 0));
	}
	if (cpus_given(s))
		TRY(STEP_AFFINITY, failed(sys3(SYS_sched_setaffinity, 0, sizeof s->cpus, s->cpus), SETTING_CPUS, 0));
	if (s->root)
		TRY(STEP_CHROOT, sys3(SYS_chroot, s->root, 0, 0));
	/* Without it the uid change would empty the permitted set, and nothing named could be kept. */
	if (s->cap != SETTING_UNSET && s->uid > 0)
		TRY(STEP_CAPS, failed(sys3(SYS_prctl, PR_SET_KEEPCAPS, 1, 0), SETTING_CAP, 0));
	if (s->groups)
		TRY(STEP_SETGROUPS, sys3(SYS_setgroups, s->ngroups, s->groups, 0));
	if (s->gid >= 0)
		TRY(STEP_SETGID, sys3(SYS_setresgid, s->gid, s->gid, s->gid));
	if (s->uid >= 0)
		TRY(STEP_SETUID, sys3(SYS_setresuid, s->uid, s->uid, s->uid));
	if (s->cap != SETTING_UNSET)
		TRY(STEP_CAPS, failed(keep_caps(s), SETTING_CAP, 0));
	if (s->no_new_privs)
		TRY(STEP_NNP, failed(sys3(SYS_prctl, PR_SET_NO_NEW_PRIVS, 1, 0), SETTING_NO_NEW_PRIVS, 0));
	*step = STEP_VERIFY;
	if (!ids_dropped(s))
		return -EPERM;
	/* Only now: a uid change clears the parent-death signal. */
	if (s->pdeath)
		sys3(SYS_prctl, PR_SET_PDEATHSIG, s->pdeath, 0);
	/* As the target user: a directory only root can enter would leave the program where it cannot look. */
	TRY(STEP_CHDIR, sys3(SYS_chdir, s->dir, 0, 0));
	sys3(SYS_umask, s->umask, 0, 0);
	/* Copy first: a prepared fd may itself sit on 0, 1 or 2. */
	int tmp[3];
	for (int i = 0; i < 3; i++) {
		TRY(STEP_STDIO, sys3(SYS_fcntl, s->stdio[i], F_DUPFD_CLOEXEC, 3));
		tmp[i] = (int)r;
	}
	for (int i = 0; i < 3; i++)
		TRY(STEP_STDIO, sys3(SYS_dup3, tmp[i], i, 0));
	int64_t ready_fd = s->ready_fd;
	TRY(STEP_SOCKETS, handon_place(s, &ready_fd));
	if (s->ready_to >= 0)
		TRY(STEP_FDS, ready_fd == s->ready_to ? 0 : sys3(SYS_dup3, ready_fd, s->ready_to, 0));
	TRY(STEP_FDS, mark_fds(s));
	if (s->ready_to >= 0)
		TRY(STEP_FDS, sys3(SYS_fcntl, s->ready_to, F_SETFD, 0));
	TRY(STEP_LIMITS, lower_nofile(s));
	TRY(STEP_VERIFY_SETTINGS, settings_hold(s));
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

/*
 * The native half of daemonize.
 *
 * After fork() in a Bun process no JavaScript may run again, so everything from
 * fork to exec lives here and uses only async-signal-safe calls. The parent-side
 * helpers below return -errno instead of touching errno, because errno cannot be
 * read reliably from JavaScript between two FFI calls.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <unistd.h>

#ifndef CLOSE_RANGE_CLOEXEC
#define CLOSE_RANGE_CLOEXEC (1U << 2)
#endif

/* Steps, in the order the child takes them; src/native.ts mirrors this list. */
enum {
	STEP_READY = 0, STEP_PIPE, STEP_FORK, STEP_SETSID, STEP_FORK2, STEP_CHROOT,
	STEP_CHDIR, STEP_SETGROUPS, STEP_SETGID, STEP_SETUID, STEP_VERIFY,
	STEP_RLIMIT, STEP_STDIO, STEP_FDS, STEP_EXEC,
};

/* Every field is 8 bytes wide so JavaScript can fill it with one DataView. */
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
	const int32_t *keep;   /* inherited fds to leave open */
	int64_t nkeep;
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

static gid_t have_groups[NGROUPS_MAX + 1];

static int set_cloexec_from(int from, int to)
{
	if (from > to)
		return 0;
	if (syscall(SYS_close_range, (unsigned)from, (unsigned)to, CLOSE_RANGE_CLOEXEC) == 0)
		return 0;
	/* Kernels before 5.11 lack CLOSE_RANGE_CLOEXEC: mark each descriptor by hand. */
	struct rlimit rl;
	int last = to;
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY && (rlim_t)last >= rl.rlim_cur)
		last = (int)rl.rlim_cur - 1;
	for (int fd = from; fd <= last; fd++)
		fcntl(fd, F_SETFD, FD_CLOEXEC);
	return 0;
}

/* Leave exactly stdio and the kept fds to the program; everything else closes on exec. */
static int mark_fds(const struct dz_spec *s)
{
	int from = 3;
	/* keep[] is sorted and unique (the parent prepares it). */
	for (int64_t i = 0; i < s->nkeep; i++) {
		int k = s->keep[i];
		set_cloexec_from(from, k - 1);
		if (fcntl(k, F_SETFD, 0) < 0)
			return -1;
		from = k + 1;
	}
	return set_cloexec_from(from, INT_MAX);
}

static int verify_ids(const struct dz_spec *s)
{
	uid_t ru, eu, su;
	gid_t rg, eg, sg;
	if (getresuid(&ru, &eu, &su) || getresgid(&rg, &eg, &sg))
		return -1;
	if (s->uid >= 0 && (ru != (uid_t)s->uid || eu != (uid_t)s->uid || su != (uid_t)s->uid))
		return -1;
	if (s->gid >= 0 && (rg != (gid_t)s->gid || eg != (gid_t)s->gid || sg != (gid_t)s->gid))
		return -1;
	if (s->groups) {
		int n = getgroups(NGROUPS_MAX + 1, have_groups);
		if (n != s->ngroups)
			return -1;
		for (int64_t i = 0; i < s->ngroups; i++) {
			int found = 0;
			for (int j = 0; j < n && !found; j++)
				found = have_groups[j] == s->groups[i];
			if (!found)
				return -1;
		}
	}
	/* The drop must be one-way: regaining root has to fail. */
	if (s->uid > 0 && (setuid(0) == 0 || seteuid(0) == 0))
		return -1;
	if (s->gid > 0 && s->uid > 0 && (setgid(0) == 0 || setegid(0) == 0))
		return -1;
	return 0;
}

static void reset_signals(void)
{
	struct sigaction dfl;
	memset(&dfl, 0, sizeof dfl);
	dfl.sa_handler = SIG_DFL;
	/* Ignored dispositions survive exec, and Bun ignores SIGPIPE and SIGXFSZ. */
	for (int sig = 1; sig < NSIG; sig++)
		if (sig != SIGKILL && sig != SIGSTOP)
			sigaction(sig, &dfl, NULL);
}

/* Everything between detaching and exec. Sets *step to the step that failed. */
static int setup(const struct dz_spec *s, int *step)
{
	*step = STEP_CHROOT;
	if (s->root && chroot(s->root))
		return -1;
	*step = STEP_CHDIR;
	if (chdir(s->dir))
		return -1;
	*step = STEP_SETGROUPS;
	if (s->groups && setgroups((size_t)s->ngroups, s->groups))
		return -1;
	*step = STEP_SETGID;
	if (s->gid >= 0 && setresgid((gid_t)s->gid, (gid_t)s->gid, (gid_t)s->gid))
		return -1;
	*step = STEP_SETUID;
	if (s->uid >= 0 && setresuid((uid_t)s->uid, (uid_t)s->uid, (uid_t)s->uid))
		return -1;
	*step = STEP_VERIFY;
	if (verify_ids(s)) {
		errno = EPERM;
		return -1;
	}
	umask((mode_t)s->umask);
	*step = STEP_RLIMIT;
	struct rlimit core = { 0, 0 };
	if (s->core) {
		if (getrlimit(RLIMIT_CORE, &core))
			return -1;
		core.rlim_cur = core.rlim_max;
	}
	if (setrlimit(RLIMIT_CORE, &core))
		return -1;
	*step = STEP_STDIO;
	/* Copy first: a prepared fd may itself sit on 0, 1 or 2. */
	int tmp[3];
	for (int i = 0; i < 3; i++)
		if ((tmp[i] = fcntl((int)s->stdio[i], F_DUPFD_CLOEXEC, 3)) < 0)
			return -1;
	for (int i = 0; i < 3; i++)
		if (dup2(tmp[i], i) < 0)
			return -1;
	*step = STEP_FDS;
	if (mark_fds(s))
		return -1;
	reset_signals();
	return 0;
}

static void report(int fd, int step, int err)
{
	struct record r = { step, err, (int32_t)getpid() };
	ssize_t n;
	do
		n = write(fd, &r, sizeof r);
	while (n < 0 && errno == EINTR);
}

static void grandchild(const struct dz_spec *s, int status_fd, int go_fd)
{
	int step;
	if (setup(s, &step)) {
		report(status_fd, step, errno);
		_exit(127);
	}
	report(status_fd, STEP_READY, 0);
	char go;
	ssize_t n;
	do
		n = read(go_fd, &go, 1);
	while (n < 0 && errno == EINTR);
	if (n != 1)
		_exit(0); /* the launcher gave up (lost the pidfile race, or died) */
	sigset_t none;
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	execve(s->path, s->argv, s->envp);
	report(status_fd, STEP_EXEC, errno);
	_exit(127);
}

static int read_record(int fd, struct record *r)
{
	ssize_t n;
	do
		n = read(fd, r, sizeof *r);
	while (n < 0 && errno == EINTR);
	return (int)n;
}

static int fail(struct dz_result *res, int step, int err)
{
	res->step = step;
	res->err = err;
	return -1;
}

/*
 * Double-fork a daemon and run setup in it. Returns 0 once the daemon is set
 * up and waiting for dz_release(); -1 with res->step and res->err otherwise.
 * All signals stay blocked across fork so no JavaScript handler can run in a child.
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
	sigset_t all, old;
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	pid_t child = fork();
	if (child == 0) {
		close(status[0]);
		close(go[1]);
		if (setsid() < 0) {
			report(status[1], STEP_SETSID, errno);
			_exit(1);
		}
		/* The session leader exits, so the daemon can never acquire a terminal. */
		pid_t daemon = fork();
		if (daemon == 0)
			grandchild(s, status[1], go[0]);
		if (daemon < 0)
			report(status[1], STEP_FORK2, errno);
		_exit(0);
	}
	int fork_err = errno;
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	close(status[1]);
	close(go[0]);
	if (child < 0) {
		close(status[0]);
		close(go[1]);
		return fail(res, STEP_FORK, fork_err);
	}
	while (waitpid(child, NULL, 0) < 0 && errno == EINTR)
		;
	struct record r;
	int n = read_record(status[0], &r);
	if (n != (int)sizeof r || r.step != STEP_READY) {
		close(status[0]);
		close(go[1]);
		if (n != (int)sizeof r)
			return fail(res, STEP_FORK2, n < 0 ? errno : EPIPE);
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
	int n = read_record((int)res->status_fd, &r);
	close((int)res->status_fd);
	res->go_fd = res->status_fd = -1;
	if (w != 1)
		return fail(res, STEP_EXEC, EPIPE);
	if (n == 0)
		return 0;
	if (n != (int)sizeof r)
		return fail(res, STEP_EXEC, n < 0 ? errno : EPIPE);
	return fail(res, r.step, r.err);
}

/* Tell a daemon that is set up but not yet exec'd to exit quietly. */
void dz_abandon(struct dz_result *res)
{
	close((int)res->go_fd);
	close((int)res->status_fd);
	res->go_fd = res->status_fd = -1;
}

/*
 * --foreground: the same setup in this process, then exec in place. On failure
 * stdio is put back so the launcher can still report the error.
 */
int dz_exec(const struct dz_spec *s, struct dz_result *res)
{
	int saved[3], step;
	memset(res, 0, sizeof *res);
	for (int i = 0; i < 3; i++)
		saved[i] = fcntl(i, F_DUPFD_CLOEXEC, 3);
	sigset_t all, old;
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	if (setup(s, &step) == 0) {
		sigset_t none;
		sigemptyset(&none);
		sigprocmask(SIG_SETMASK, &none, NULL);
		execve(s->path, s->argv, s->envp);
		step = STEP_EXEC;
	}
	int err = errno;
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	for (int i = 0; i < 3; i++)
		if (saved[i] >= 0)
			dup2(saved[i], i);
	return fail(res, step, err);
}

/* ---- Parent-side helpers: plain syscalls that return -errno. ---- */

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
int dz_fdflags(int fd) { int r = fcntl(fd, F_GETFD); RET(r); }
int dz_fsetxattr(int fd, const char *name, const void *v, int64_t len) { int r = fsetxattr(fd, name, v, (size_t)len, 0); RET(r); }
int64_t dz_fgetxattr(int fd, const char *name, void *v, int64_t len) { ssize_t r = fgetxattr(fd, name, v, (size_t)len); RET(r); }
int dz_fchmod(int fd, int mode) { int r = fchmod(fd, (mode_t)mode); RET(r); }

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

int dz_realpath(const char *path, char *out) { return realpath(path, out) ? 0 : -errno; }
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
static char nss_buf[1 << 16];

int dz_getpw(const char *name, int64_t uid, int64_t *ids, char *home, int64_t home_len, char *login, int64_t login_len)
{
	struct passwd pw, *p = NULL;
	int r = name ? getpwnam_r(name, &pw, nss_buf, sizeof nss_buf, &p)
	             : getpwuid_r((uid_t)uid, &pw, nss_buf, sizeof nss_buf, &p);
	if (r && r != ENOENT && r != ESRCH && r != EBADF && r != EPERM)
		return -r;
	if (!p)
		return 0;
	ids[0] = p->pw_uid;
	ids[1] = p->pw_gid;
	if (strlen(p->pw_dir) >= (size_t)home_len || strlen(p->pw_name) >= (size_t)login_len)
		return -ENAMETOOLONG;
	strcpy(home, p->pw_dir);
	strcpy(login, p->pw_name);
	return 1;
}

int dz_getgr(const char *name, int64_t *gid)
{
	struct group gr, *g = NULL;
	int r = getgrnam_r(name, &gr, nss_buf, sizeof nss_buf, &g);
	if (r && r != ENOENT && r != ESRCH && r != EBADF && r != EPERM)
		return -r;
	if (!g)
		return 0;
	*gid = g->gr_gid;
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

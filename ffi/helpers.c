/*
 * Parent-side helpers for the TypeScript half: plain libc calls that return
 * -errno, since errno cannot be read reliably from JavaScript, and the NSS
 * lookups (so LDAP and sssd users work).
 */
#include "proc.h"
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/xattr.h>
#include <unistd.h>

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
int64_t dz_pread(int fd, void *buf, int64_t len, int64_t off) { ssize_t r = pread(fd, buf, (size_t)len, (off_t)off); RET(r); }
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
#ifndef MFD_EXEC
#define MFD_EXEC 0x0010U
#endif
/*
 * The monitor's image in an executable memory file, sealed so it cannot change
 * once written. Kernels before 6.3 know no MFD_EXEC (every memfd is executable
 * there); vm.memfd_noexec=2 refuses it with EACCES.
 */
int dz_memfd_exec(const char *name, const void *image, int64_t len)
{
	int fd = memfd_create(name, MFD_CLOEXEC | MFD_ALLOW_SEALING | MFD_EXEC);
	if (fd < 0 && errno == EINVAL)
		fd = memfd_create(name, MFD_CLOEXEC | MFD_ALLOW_SEALING);
	if (fd < 0)
		return -errno;
	for (int64_t off = 0; off < len;) {
		ssize_t n = write(fd, (const char *)image + off, (size_t)(len - off));
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			int e = n < 0 ? errno : EIO;
			close(fd);
			return -e;
		}
		off += n;
	}
	if (fcntl(fd, F_ADD_SEALS, F_SEAL_SEAL | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE) < 0) {
		int e = errno;
		close(fd);
		return -e;
	}
	return fd;
}

/* Queues sig with value to a process, through its pidfd when there is one (pidfd < 0: by pid). */
int dz_sigqueue(int pidfd, int pid, int sig, int value)
{
	siginfo_t info;
	memset(&info, 0, sizeof info);
	info.si_signo = sig;
	info.si_code = SI_QUEUE;
	info.si_pid = getpid();
	info.si_uid = getuid();
	info.si_value.sival_int = value;
	long r = pidfd >= 0 ? syscall(SYS_pidfd_send_signal, pidfd, sig, &info, 0) : syscall(SYS_rt_sigqueueinfo, pid, sig, &info);
	RET(r);
}

/* The temporary files in dir that launchers now gone left there (proc.h). */
void dz_sweep(const char *dir, const char *prefix, const char *suffix)
{
	proc_sweep(dir, prefix, suffix, 0, S_IFREG);
}

int dz_access(const char *path, int mode) { int r = faccessat(AT_FDCWD, path, mode, AT_EACCESS); RET(r); }
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

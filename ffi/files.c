/* The file and fd calls of the TypeScript half, plain libc calls (native.h), and an errno's text. */
#include "native.h"
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

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
int dz_access(const char *path, int mode) { int r = faccessat(AT_FDCWD, path, mode, AT_EACCESS); RET(r); }
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

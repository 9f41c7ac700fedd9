/*
 * --listen in the launcher: sockets created, bound and listening while it is
 * still root, before any fork (see sockets.h). Each function returns the fd or
 * -errno, with the call that failed in *call (LISTEN_CALLS in src/listen.ts).
 */
#include "sockets.h"
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

enum { CALL_SOCKET, CALL_SETSOCKOPT, CALL_BIND, CALL_LISTEN, CALL_CHOWN, CALL_CHMOD, CALL_REPLACE };

static int failed(int fd, int32_t *call, int which)
{
	int e = errno;
	if (fd >= 0)
		close(fd);
	*call = which;
	return -e;
}

/* family AF_INET (addr 4 bytes) or AF_INET6 (16); v6only 0 makes an IPv6 socket take IPv4 too. */
int dz_listen_inet(int type, int family, const uint8_t *addr, int port, int v6only, int32_t *call)
{
	int fd = socket(family, type | SOCK_CLOEXEC, 0), one = 1;
	if (fd < 0)
		return failed(fd, call, CALL_SOCKET);
	if (type == SOCK_STREAM && setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) < 0)
		return failed(fd, call, CALL_SETSOCKOPT);
	struct sockaddr_storage ss;
	socklen_t len;
	memset(&ss, 0, sizeof ss);
	if (family == AF_INET6) {
		struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
		if (setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &v6only, sizeof v6only) < 0)
			return failed(fd, call, CALL_SETSOCKOPT);
		a->sin6_family = AF_INET6;
		a->sin6_port = htons((uint16_t)port);
		memcpy(&a->sin6_addr, addr, 16);
		len = sizeof *a;
	} else {
		struct sockaddr_in *a = (struct sockaddr_in *)&ss;
		a->sin_family = AF_INET;
		a->sin_port = htons((uint16_t)port);
		memcpy(&a->sin_addr, addr, 4);
		len = sizeof *a;
	}
	if (bind(fd, (struct sockaddr *)&ss, len) < 0)
		return failed(fd, call, CALL_BIND);
	if (type == SOCK_STREAM && listen(fd, SOMAXCONN) < 0)
		return failed(fd, call, CALL_LISTEN);
	return fd;
}

/*
 * A stream socket at path, owned by uid:gid with mode: a socket file already
 * there is replaced only when nothing accepts on it, any other file never.
 */
int dz_listen_unix(const char *path, int64_t uid, int64_t gid, int mode, int32_t *call)
{
	struct sockaddr_un a = { .sun_family = AF_UNIX };
	if (strlen(path) >= sizeof a.sun_path) {
		errno = ENAMETOOLONG;
		return failed(-1, call, CALL_BIND);
	}
	strcpy(a.sun_path, path);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return failed(fd, call, CALL_SOCKET);
	struct stat st;
	if (lstat(path, &st) == 0) {
		if (!S_ISSOCK(st.st_mode)) {
			errno = EEXIST;
			return failed(fd, call, CALL_REPLACE);
		}
		int probe = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (probe < 0)
			return failed(fd, call, CALL_REPLACE);
		int r = connect(probe, (struct sockaddr *)&a, sizeof a);
		int e = errno;
		close(probe);
		if (r == 0 || e != ECONNREFUSED) {
			errno = r == 0 ? EADDRINUSE : e;
			return failed(fd, call, CALL_REPLACE);
		}
		if (unlink(path) < 0 && errno != ENOENT)
			return failed(fd, call, CALL_REPLACE);
	}
	/* No one may connect before the owner and mode are right. */
	mode_t old = umask(0177);
	int r = bind(fd, (struct sockaddr *)&a, sizeof a);
	umask(old);
	if (r < 0)
		return failed(fd, call, CALL_BIND);
	int which = -1;
	if ((uid >= 0 || gid >= 0) && lchown(path, (uid_t)uid, (gid_t)gid) < 0)
		which = CALL_CHOWN;
	else if (chmod(path, (mode_t)mode) < 0)
		which = CALL_CHMOD;
	else if (listen(fd, SOMAXCONN) < 0)
		which = CALL_LISTEN;
	if (which >= 0) {
		int e = errno;
		unlink(path);
		errno = e;
		return failed(fd, call, which);
	}
	return fd;
}

/* Readiness: see ready.h. */
#include "ready.h"
#include "proc.h"
#include "clock.h"
#include <arpa/inet.h>
#include <stddef.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

/* systemd's own limit for a notification; a longer one is dropped whole. */
#define MESSAGE_MAX 4096
/* Exiting closes fd:N before the exit itself shows: a close counts only once the program outlived it this long. */
#define CLOSED_MS (2 * PROBE_MS)

static int kind, target = -1, listening;
static int sock = -1, pipe_rd = -1, pipe_wr = -1;
static struct sockaddr_storage peer;
static socklen_t peer_len;
static char path[PATH_MAX], dir[PATH_MAX];
static char status[256];
static pid_t mainpid;
static int64_t closed_at; /* when fd:N was closed without a newline */

/*
 * The grammar was first a JavaScript regular expression, and what it refused as a
 * form stays a form error: \s and the line terminators "." does not match, beyond
 * ASCII, in UTF-8. Their length at s, or 0.
 */
static size_t space_at(const char *s, int terminators_only)
{
	static const char *const wide[] = { "\xe2\x80\xa8", "\xe2\x80\xa9", "\xc2\xa0", "\xe1\x9a\x80", "\xe2\x80\xaf",
					    "\xe2\x81\x9f", "\xe3\x80\x80", "\xef\xbb\xbf" };
	if (*s == '\n' || *s == '\r' || (!terminators_only && (*s == ' ' || (*s >= '\t' && *s <= '\r'))))
		return 1;
	for (size_t i = 0; i < sizeof wide / sizeof *wide; i++)
		if ((i < 2 || !terminators_only) && !strncmp(s, wide[i], strlen(wide[i])))
			return strlen(wide[i]);
	/* U+2000 to U+200A */
	if (!terminators_only && (unsigned char)s[0] == 0xe2 && (unsigned char)s[1] == 0x80 && (unsigned char)s[2] >= 0x80 &&
	    (unsigned char)s[2] <= 0x8a)
		return 3;
	return 0;
}

/* Whether s[0..len) is all digits, at least one and at most max of them. */
static int digits(const char *s, size_t len, size_t max)
{
	if (len == 0 || len > max)
		return 0;
	for (size_t i = 0; i < len; i++)
		if (s[i] < '0' || s[i] > '9')
			return 0;
	return 1;
}

/* Whether s[0..len) is made of the characters in set only. */
static int only(const char *s, size_t len, const char *set)
{
	for (size_t i = 0; i < len; i++)
		if (!s[i] || !strchr(set, s[i]))
			return 0;
	return 1;
}

#define HEX "0123456789abcdefABCDEF"

/* tcp:'s HOST as written: [v6 or v4], a word without ':' or space, or hex and ':'. */
static int host_form(const char *h, size_t len)
{
	if (len >= 3 && h[0] == '[' && h[len - 1] == ']' && only(h + 1, len - 2, HEX ":."))
		return 1;
	if (len && only(h, len, HEX ":"))
		return 1;
	for (size_t i = 0, n = 0; i < len; i += n ? n : 1)
		if (h[i] == ':' || (n = space_at(h + i, 0)))
			return 0;
	return len > 0;
}

/* A dotted quad of numbers below 256, as written (inet_pton then has its say). */
static int dotted(const char *h, size_t len)
{
	int parts = 0;
	for (size_t i = 0; i <= len; parts++) {
		size_t n = 0;
		while (i + n < len && h[i + n] != '.')
			n++;
		if (!digits(h + i, n, 3) || atoi(h + i) > 255)
			return 0;
		i += n + 1;
	}
	return parts == 4;
}

/* tcp:'s [HOST:]PORT, into out's port and peer: 0 or REFUSED_*. */
static int tcp_address(const char *spec, struct ready_how *out)
{
	const char *colon = strrchr(spec, ':'), *port = colon ? colon + 1 : spec;
	size_t len = colon ? (size_t)(colon - spec) : 0;
	if (!digits(port, strlen(port), 5) || (colon && !host_form(spec, len)))
		return REFUSED_FORM;
	out->kind = READY_TCP;
	out->port = atoi(port);
	if (out->port < 1 || out->port > 65535)
		return REFUSED_PORT;
	/* Nothing is looked up: a name could stand for anything by the time it resolves. */
	char host[INET6_ADDRSTRLEN] = "127.0.0.1";
	if (colon) {
		const char *bare = spec;
		size_t n = len;
		if (n >= 2 && spec[0] == '[' && spec[n - 1] == ']')
			bare++, n -= 2;
		int local = n == 9 && !strncmp(bare, "localhost", 9);
		if (!local && !dotted(bare, n) && !(only(bare, n, HEX ":.") && memchr(bare, ':', n)))
			return REFUSED_HOST;
		if (n >= sizeof host)
			return REFUSED_ADDRESS;
		if (!local) {
			memcpy(host, bare, n);
			host[n] = 0;
		}
	}
	struct sockaddr_in *v4 = (struct sockaddr_in *)&out->peer;
	struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)&out->peer;
	if (inet_pton(AF_INET, host, &v4->sin_addr) == 1) {
		v4->sin_family = AF_INET;
		v4->sin_port = htons((uint16_t)out->port);
		out->peer_len = sizeof *v4;
	} else if (inet_pton(AF_INET6, host, &v6->sin6_addr) == 1) {
		v6->sin6_family = AF_INET6;
		v6->sin6_port = htons((uint16_t)out->port);
		out->peer_len = sizeof *v6;
	} else
		return REFUSED_ADDRESS;
	return 0;
}

int ready_parse(const char *how, struct ready_how *out)
{
	memset(out, 0, sizeof *out);
	if (!strcmp(how, "notify"))
		return out->kind = READY_NOTIFY, 0;
	if (!strncmp(how, "fd:", 3)) {
		if (!digits(how + 3, strlen(how + 3), 9))
			return REFUSED_FORM;
		out->kind = READY_FD;
		out->fd = atoi(how + 3);
		return out->fd < 3 ? REFUSED_STDIO : 0;
	}
	if (!strncmp(how, "file:", 5) && how[5] && !space_at(how + 5, 1)) {
		out->kind = READY_FILE;
		out->path = how + 5;
		return strlen(out->path) < PATH_MAX ? 0 : REFUSED_ADDRESS;
	}
	return strncmp(how, "tcp:", 4) ? REFUSED_FORM : tcp_address(how + 4, out);
}

int ready_address(const char *spec, struct sockaddr_storage *out, socklen_t *len)
{
	struct ready_how h = { 0 };
	if (tcp_address(spec, &h))
		return -EINVAL;
	*out = h.peer;
	*len = h.peer_len;
	return 0;
}

int ready_config(const char *how)
{
	struct ready_how h;
	if (ready_parse(how, &h))
		return -EINVAL;
	kind = h.kind;
	target = h.fd;
	peer = h.peer;
	peer_len = h.peer_len;
	if (h.path)
		strcpy(path, h.path);
	return 0;
}

int ready_wanted(void)
{
	return kind != 0;
}

void ready_listen(void)
{
	listening = 1;
}

int ready_probed(void)
{
	return kind == READY_TCP || kind == READY_FILE;
}

/* An address as NOTIFY_SOCKET names it: a path, or "@name" for the abstract namespace. */
static socklen_t address(const char *name, struct sockaddr_un *a)
{
	size_t len = strlen(name);
	memset(a, 0, sizeof *a);
	a->sun_family = AF_UNIX;
	if (len == 0 || len >= sizeof a->sun_path)
		return 0;
	memcpy(a->sun_path, name, len);
	if (name[0] == '@')
		a->sun_path[0] = 0;
	/* The length counts the abstract name's bytes exactly, not the whole sun_path. */
	return (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len + (name[0] != '@'));
}

long ready_open(int64_t uid, int64_t gid, int abstract, char *env, size_t size)
{
	env[0] = 0;
	if (kind != READY_NOTIFY && !listening)
		return 0;
	sock = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (sock < 0)
		return -errno;
	int on = 1;
	setsockopt(sock, SOL_SOCKET, SO_PASSCRED, &on, sizeof on);
	char name[PATH_MAX];
	if (abstract) {
		/* A chroot cannot reach a path outside it; the abstract namespace needs none. */
		unsigned char r[8];
		int fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
		if (fd < 0 || read(fd, r, sizeof r) != (ssize_t)sizeof r) {
			int e = fd < 0 ? errno : EIO;
			if (fd >= 0)
				close(fd);
			return -e;
		}
		close(fd);
		snprintf(name, sizeof name, "@daemonize-notify-%02x%02x%02x%02x%02x%02x%02x%02x", r[0], r[1], r[2], r[3], r[4], r[5],
			 r[6], r[7]);
	} else {
		const char *base = getenv("XDG_RUNTIME_DIR");
		if (geteuid() == 0 || !base || !*base)
			base = geteuid() == 0 && access("/run", W_OK) == 0 ? "/run" : "/tmp";
		/* Named after its maker, so that what a killed launcher or monitor left is found and removed here. */
		proc_sweep(base, "daemonize-notify-", "-", 6, S_IFDIR);
		snprintf(dir, sizeof dir, "%s/daemonize-notify-%d.%lld-XXXXXX", base, (int)getpid(), proc_started(getpid()));
		if (!mkdtemp(dir)) {
			dir[0] = 0;
			return -errno;
		}
		/* Only the daemon's user may send, and only the kernel-checked sender is believed. */
		if (uid >= 0 && uid != (int64_t)geteuid())
			chmod(dir, 0711);
		if ((size_t)snprintf(name, sizeof name, "%.4000s/notify", dir) >= sizeof name)
			return -ENAMETOOLONG;
	}
	struct sockaddr_un a;
	socklen_t len = address(name, &a);
	if (!len || bind(sock, (struct sockaddr *)&a, len) < 0)
		return -(len ? errno : ENAMETOOLONG);
	if (!abstract) {
		strcpy(path, name);
		chmod(path, 0600);
		if ((uid >= 0 || gid >= 0) && chown(path, (uid_t)uid, (gid_t)gid) < 0)
			return -errno;
	}
	if ((size_t)snprintf(env, size, "NOTIFY_SOCKET=%s", name) >= size)
		return -ENAMETOOLONG;
	return 0;
}

long ready_arm(int64_t *fd, int64_t *to)
{
	/* What a run said of itself is the run's: a new one starts with nothing said. */
	mainpid = 0;
	status[0] = 0;
	closed_at = 0;
	*fd = *to = -1;
	if (kind != READY_FD)
		return 0;
	if (pipe_rd >= 0)
		close(pipe_rd);
	int p[2];
	if (pipe2(p, O_CLOEXEC) < 0)
		return -errno;
	pipe_rd = p[0];
	pipe_wr = p[1];
	fcntl(pipe_rd, F_SETFL, O_RDONLY | O_NONBLOCK);
	*fd = pipe_wr;
	*to = target;
	return 0;
}

long ready_clear(int *fds, int n)
{
	long r = 0;
	if (kind != READY_FD || pipe_wr < 0)
		return 0;
	for (int i = 0; i < n; i++)
		if (fds[i] == target) {
			int moved = fcntl(fds[i], F_DUPFD_CLOEXEC, target + 1);
			if (moved < 0 && !r)
				r = -errno;
			close(fds[i]);
			fds[i] = moved;
		}
	return r;
}

void ready_armed(void)
{
	if (pipe_wr >= 0)
		close(pipe_wr);
	pipe_wr = -1;
}

int ready_pollfd(struct pollfd *p)
{
	int n = 0;
	if (sock >= 0)
		p[n++] = (struct pollfd){ sock, POLLIN, 0 };
	if (kind == READY_FD && pipe_rd >= 0)
		p[n++] = (struct pollfd){ pipe_rd, POLLIN, 0 };
	return n;
}

/*
 * Whether pid is `main` or descends from it, by the parents /proc gives. The
 * waiter (launcher or monitor) is the subreaper of main's tree, so an orphan
 * of it that came back here counts too.
 */
static int descends(pid_t pid, pid_t main)
{
	for (int depth = 0; pid > 1 && depth < 64; depth++) {
		char state;
		pid_t pgrp;
		if (pid == main || pid == getpid())
			return 1;
		if (proc_stat(pid, &state, &pid, &pgrp) < 0)
			return 0;
	}
	return 0;
}

static void parse(char *msg, size_t len, struct ready_event *e)
{
	msg[len] = 0;
	for (char *line = msg, *next; line && *line; line = next) {
		next = strchr(line, '\n');
		if (next)
			*next++ = 0;
		if (!strcmp(line, "READY=1"))
			e->ready = kind == READY_NOTIFY;
		else if (!strcmp(line, "WATCHDOG=1"))
			e->watchdog |= WATCHDOG_PING;
		else if (!strcmp(line, "WATCHDOG=trigger"))
			e->watchdog |= WATCHDOG_TRIGGER;
		else if (!strncmp(line, "WATCHDOG_USEC=", 14)) {
			char *end;
			long long n = strtoll(line + 14, &end, 10);
			if (!*end && end != line + 14 && n >= 0) {
				e->watchdog |= WATCHDOG_PERIOD;
				e->watchdog_usec = n;
			}
		}
		else if (!strncmp(line, "STATUS=", 7)) {
			snprintf(status, sizeof status, "%s", line + 7);
			e->status = 1;
		} else if (!strncmp(line, "ERRNO=", 6)) {
			char *end;
			long n = strtol(line + 6, &end, 10);
			if (!*end && n > 0 && n < 4096)
				e->err = (int)n;
		} else if (!strncmp(line, "EXTEND_TIMEOUT_USEC=", 20)) {
			char *end;
			long long n = strtoll(line + 20, &end, 10);
			if (!*end && n >= 0)
				e->extend_ms = n / 1000 + 1;
		} else if (!strncmp(line, "MAINPID=", 8)) {
			char *end;
			long n = strtol(line + 8, &end, 10);
			if (!*end && n > 1)
				mainpid = (pid_t)n;
		}
	}
}

static void read_notify(pid_t main, struct ready_event *e)
{
	for (;;) {
		char msg[MESSAGE_MAX + 1];
		union {
			struct cmsghdr h;
			char buf[CMSG_SPACE(sizeof(struct ucred)) + CMSG_SPACE(sizeof(int) * 16)];
		} control;
		struct iovec iov = { msg, MESSAGE_MAX };
		struct msghdr m = { 0 };
		m.msg_iov = &iov;
		m.msg_iovlen = 1;
		m.msg_control = control.buf;
		m.msg_controllen = sizeof control.buf;
		ssize_t n = recvmsg(sock, &m, MSG_DONTWAIT | MSG_CMSG_CLOEXEC | MSG_TRUNC);
		if (n < 0)
			return;
		pid_t sender = 0;
		for (struct cmsghdr *c = CMSG_FIRSTHDR(&m); c; c = CMSG_NXTHDR(&m, c)) {
			if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_CREDENTIALS) {
				struct ucred cred;
				memcpy(&cred, CMSG_DATA(c), sizeof cred);
				sender = cred.pid;
			}
			/* Passed fds (systemd-notify's BARRIER=1 carries one it waits on) are closed at once. */
			if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS) {
				int *fds = (int *)CMSG_DATA(c);
				size_t count = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
				for (size_t i = 0; i < count; i++)
					close(fds[i]);
			}
		}
		/* Oversized, cut short, or from someone else: dropped whole. */
		if (n > MESSAGE_MAX || (m.msg_flags & (MSG_TRUNC | MSG_CTRUNC)) || !sender || !descends(sender, main))
			continue;
		parse(msg, (size_t)n, e);
	}
}

static void read_fd(struct ready_event *e)
{
	char buf[512];
	ssize_t n;
	while ((n = read(pipe_rd, buf, sizeof buf)) > 0)
		if (memchr(buf, '\n', (size_t)n))
			e->ready = 1;
	if (n == 0 && !e->ready) {
		closed_at = now_ms(CLOCK_MONOTONIC);
		close(pipe_rd);
		pipe_rd = -1;
	}
}

static int connects(void)
{
	int s = socket(peer.ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (s < 0)
		return 0;
	int ok = connect(s, (struct sockaddr *)&peer, peer_len) == 0;
	if (!ok && errno == EINPROGRESS) {
		struct pollfd p = { s, POLLOUT, 0 };
		int err = 0;
		socklen_t len = sizeof err;
		ok = poll(&p, 1, 100) == 1 && getsockopt(s, SOL_SOCKET, SO_ERROR, &err, &len) == 0 && err == 0;
	}
	close(s);
	return ok;
}

void ready_listened(pid_t main, struct ready_event *e)
{
	memset(e, 0, sizeof *e);
	if (sock >= 0)
		read_notify(main, e);
}

void ready_check(pid_t main, struct ready_event *e)
{
	ready_listened(main, e);
	if (kind == READY_FD && pipe_rd >= 0)
		read_fd(e);
	else if (kind == READY_TCP)
		e->ready = connects();
	else if (kind == READY_FILE)
		e->ready = access(path, F_OK) == 0;
	int64_t closing = ready_closing();
	e->closed = closing && now_ms(CLOCK_MONOTONIC) >= closing;
}

int64_t ready_closing(void)
{
	return closed_at ? closed_at + CLOSED_MS : 0;
}

const char *ready_status(void)
{
	return status;
}

pid_t ready_mainpid(void)
{
	return mainpid;
}

void ready_close(void)
{
	if (sock >= 0)
		close(sock);
	sock = -1;
	if (kind == READY_NOTIFY && path[0])
		unlink(path);
	if (dir[0])
		rmdir(dir);
	path[0] = dir[0] = 0;
	if (pipe_rd >= 0)
		close(pipe_rd);
	pipe_rd = -1;
	ready_armed();
}

int ready_forward(const char *socket_name, const char *text)
{
	struct sockaddr_un a;
	socklen_t len = address(socket_name, &a);
	if (!len)
		return -EINVAL;
	int s = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (s < 0)
		return -errno;
	int r = sendto(s, text, strlen(text), MSG_NOSIGNAL, (struct sockaddr *)&a, len) < 0 ? -errno : 0;
	close(s);
	return r;
}

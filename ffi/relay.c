/*
 * The log relay: see relay.h. Each stream is read into a 1 MiB buffer from a
 * pipe grown to 1 MiB, and only whole lines are written: a line longer than
 * the buffer is cut into pieces, each ended with a newline. Rotation renames
 * and reopens within the log's directory (an fd the launcher opened), never
 * follows a symlink, and applies the launcher's trust rules to every file it
 * opens. When a log cannot be written, its pipe is not read: the program blocks
 * as on any full pipe, and the relay's memory stays what it was. Buffers are
 * given back to the kernel when the relay has been idle a while.
 */
#include "relay.h"
#include "clock.h"
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#define IN_SIZE (1 << 20)
/* "2026-11-22T04:13:56.123456Z "; the staged copy holds at least the longest line, stamped. */
#define STAMP 28
#define OUT_SIZE (2 * IN_SIZE)
#define RETRY_MS 1000
#define IDLE_MS 2000
#define SYSLOG_RETRY_MS 5000
/* A syslog daemon busy with a burst is waited for this long, a stuck one not again for a second. */
#define SYSLOG_WAIT_MS 100
#define SYSLOG_STUCK_MS 1000
#define SYSLOG_MAX 8192

struct sink {
	int fd, dir; /* dir < 0: an fd the monitor was given, never rotated or reopened */
	char name[256];
	int64_t size;
	int err;        /* the last write's errno, said once; 0 when writing works */
	int reopen;     /* REOPEN or ROTATE asked for (relay_reopen), done at the next line boundary */
	const char *stuck; /* ROTATE or REOPEN when that failed last, said once; NULL when they work */
	void *midline;  /* the stream whose line is half written, which alone may go on */
};

struct stream {
	int rd, wr;
	struct sink *sink; /* NULL: syslog only */
	int severity;
	char *in, *out;    /* out == in without timestamps: whole lines are written from where they were read */
	size_t len;        /* bytes in `in` */
	size_t off, end;   /* out[off, end): staged whole lines, not yet written */
	int used;          /* its buffers hold pages */
};

static struct sink sinks[2] = { { -1, -1, "", 0, 0, 0, 0, 0 }, { -1, -1, "", 0, 0, 0, 0, 0 } };
static struct stream streams[2] = { { -1, -1, 0, 6, 0, 0, 0, 0, 0, 0 }, { -1, -1, 0, 3, 0, 0, 0, 0, 0, 0 } };
static int64_t max_size, keep = DEFAULT_LOG_KEEP, facility = -1, caller = -1;
static int timestamps;
static struct sockaddr_un slog_addr = { AF_UNIX, "/dev/log" };
static int slog = -1;
static int64_t slog_retry, slog_stuck, idle_since, failed_at;
static char tag[64] = "daemonize";
static pid_t run_pid;
static int64_t file_uid = -1, file_gid = -1, file_mode = 0644;
static const char ROTATE[] = "rotate", REOPEN[] = "reopen";

/* The RFC 3339 UTC time with microseconds and a space, STAMP bytes, into out (STAMP + 1 bytes or more). */
static void stamp(char *out)
{
	char buf[96];
	struct timespec now;
	struct tm tm;
	clock_gettime(CLOCK_REALTIME, &now);
	gmtime_r(&now.tv_sec, &tm);
	snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%06ldZ ", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
		 tm.tm_min, tm.tm_sec, now.tv_nsec / 1000);
	memcpy(out, buf, STAMP + 1);
}

static void syslog_send(int severity, const char *who, pid_t pid, const char *line, size_t len)
{
	if (facility < 0)
		return;
	if (slog < 0) {
		if (now_ms(CLOCK_MONOTONIC) < slog_retry)
			return;
		slog = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
		if (slog >= 0 && connect(slog, (struct sockaddr *)&slog_addr, sizeof slog_addr) < 0) {
			close(slog);
			slog = -1;
		}
		if (slog < 0) {
			slog_retry = now_ms(CLOCK_MONOTONIC) + SYSLOG_RETRY_MS;
			return;
		}
	}
	char msg[SYSLOG_MAX];
	time_t now = time(NULL);
	struct tm tm;
	localtime_r(&now, &tm);
	int n = snprintf(msg, sizeof msg, "<%d>", (int)(facility * 8 + severity));
	n += (int)strftime(msg + n, sizeof msg - (size_t)n, "%b %e %H:%M:%S ", &tm);
	n += snprintf(msg + n, sizeof msg - (size_t)n, "%s[%d]: ", who, (int)pid);
	if (len > sizeof msg - (size_t)n)
		len = sizeof msg - (size_t)n;
	memcpy(msg + n, line, len);
	/*
	 * The socket's queue holds few datagrams (net.unix.max_dgram_qlen, 10 by default), so a
	 * burst fills it before the daemon wakes: wait a little for room. A daemon that takes
	 * no more loses the line for syslog only (the files have it); a gone one is tried again later.
	 */
	for (int waited = 0;; waited = 1) {
		if (send(slog, msg, (size_t)n + len, MSG_DONTWAIT | MSG_NOSIGNAL) >= 0)
			return;
		if (errno != EAGAIN)
			break;
		struct pollfd p = { slog, POLLOUT, 0 };
		if (waited || now_ms(CLOCK_MONOTONIC) < slog_stuck || poll(&p, 1, SYSLOG_WAIT_MS) != 1) {
			slog_stuck = now_ms(CLOCK_MONOTONIC) + SYSLOG_STUCK_MS;
			return;
		}
	}
	close(slog);
	slog = -1;
	slog_retry = now_ms(CLOCK_MONOTONIC) + SYSLOG_RETRY_MS;
}

/* What the monitor has to say about the relay itself: to syslog, and to its own stderr. */
static void note(const char *fmt, ...)
{
	char line[512];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(line, sizeof line - 1, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	if (n > (int)sizeof line - 2)
		n = sizeof line - 2;
	syslog_send(4, "daemonize", getpid(), line, (size_t)n);
	char out[600];
	int m = snprintf(out, sizeof out, "daemonize[%d]: %.*s\n", (int)getpid(), n, line);
	if (write(2, out, (size_t)m) < 0) {
		/* Nowhere left to say it. */
	}
}

/* The launcher's rule for a log it did not create: a regular file of root's, the starter's or the target user's, with one link. */
static int trusted(int fd)
{
	struct stat st;
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_nlink != 1)
		return 0;
	return st.st_uid == 0 || (int64_t)st.st_uid == caller || (int64_t)st.st_uid == file_uid;
}

/*
 * A rotation or reopen that failed: the relay writes on to the file it has, past --log-max-size, and
 * tries again only after as much more output. At every line it would meet the same failure again,
 * and do nothing else. Said once, until the step works again.
 */
static void stuck(struct sink *k, const char *step)
{
	if (k->stuck != step)
		note("cannot %s log %s (%s): writing on to the file it has%s", step, k->name, strerror(errno),
		     max_size > 0 ? ", past --log-max-size; trying again after as much more" : "");
	k->stuck = step;
	k->size = 0;
}

static void unstuck(struct sink *k, const char *step)
{
	if (k->stuck == step) {
		note("can %s log %s again", step, k->name);
		k->stuck = NULL;
	}
}

/* Opens the log's name afresh: a new file for the target user, or the file there now if it can be trusted. */
static int reopen_sink(struct sink *k)
{
	int fd = openat(k->dir, k->name, O_WRONLY | O_APPEND | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, (mode_t)file_mode);
	if (fd >= 0) {
		if (fchmod(fd, (mode_t)file_mode) < 0 || ((file_uid >= 0 || file_gid >= 0) && fchown(fd, (uid_t)file_uid, (gid_t)file_gid) < 0)) {
			/* The file is root's then, which the trust rules allow. */
		}
	} else if (errno == EEXIST) {
		/* O_NONBLOCK: a FIFO put there must not hang the monitor. */
		fd = openat(k->dir, k->name, O_WRONLY | O_APPEND | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
		if (fd >= 0 && !trusted(fd)) {
			close(fd);
			fd = -1;
			errno = EPERM;
		}
		if (fd >= 0)
			fcntl(fd, F_SETFL, O_WRONLY | O_APPEND);
	}
	if (fd < 0) {
		stuck(k, REOPEN);
		return -1;
	}
	unstuck(k, REOPEN);
	struct stat st;
	close(k->fd);
	k->fd = fd;
	k->size = fstat(fd, &st) == 0 ? st.st_size : 0;
	return 0;
}

static void rotate(struct sink *k)
{
	struct stat held, at;
	char from[300], to[300];
	/* Only the file this relay writes: if the name leads elsewhere now, someone else moved it, and it is not ours to move. */
	if (fstat(k->fd, &held) == 0 && fstatat(k->dir, k->name, &at, AT_SYMLINK_NOFOLLOW) == 0 && held.st_dev == at.st_dev &&
	    held.st_ino == at.st_ino) {
		snprintf(to, sizeof to, "%s.%lld", k->name, (long long)keep);
		unlinkat(k->dir, to, 0);
		for (int64_t i = keep - 1; i >= 1; i--) {
			snprintf(from, sizeof from, "%s.%lld", k->name, (long long)i);
			snprintf(to, sizeof to, "%s.%lld", k->name, (long long)(i + 1));
			renameat(k->dir, from, k->dir, to);
		}
		snprintf(to, sizeof to, "%s.1", k->name);
		if (keep > 0 ? renameat(k->dir, k->name, k->dir, to) : unlinkat(k->dir, k->name, 0)) {
			/* Not reopened: the name still leads to the file this relay writes. */
			stuck(k, ROTATE);
			return;
		}
		unstuck(k, ROTATE);
	}
	reopen_sink(k);
}

/* Does the reopen or rotation asked for. */
static void renew(struct sink *k)
{
	int how = k->reopen;
	k->reopen = 0;
	if (how == RENEW_ROTATE)
		rotate(k);
	else
		reopen_sink(k);
}

static void write_failed(struct sink *k, int err)
{
	if (!k->err)
		note("cannot write log %s: %s; holding the program's output until it can", k->dir >= 0 ? k->name : "output",
		     strerror(err));
	k->err = err;
	failed_at = now_ms(CLOCK_MONOTONIC);
}

/* Writes what is staged; 1 when all of it is written, 0 when the log is blocked. */
static int write_out(struct stream *st)
{
	struct sink *k = st->sink;
	if (!k) {
		st->off = st->end;
		return 1;
	}
	while (st->off < st->end) {
		if (k->midline && k->midline != st)
			return 0;
		if (!k->midline && k->reopen && k->dir >= 0)
			renew(k);
		char *p = st->out + st->off;
		size_t n = st->end - st->off;
		if (!k->midline && max_size > 0 && k->dir >= 0 && k->size + (int64_t)n > max_size) {
			size_t fit = k->size < max_size ? (size_t)(max_size - k->size) : 0;
			char *nl = fit ? memrchr(p, '\n', fit) : NULL;
			if (nl)
				n = (size_t)(nl - p) + 1;
			else {
				if (k->size > 0)
					rotate(k);
				/*
				 * One line now, whatever the file holds: a line longer than the limit goes alone into
				 * its file, and a full file found at the name after the rotation cannot keep the relay
				 * rotating without writing, deaf to the monitor's signals meanwhile.
				 */
				n = (size_t)((char *)memchr(p, '\n', n) - p) + 1;
			}
		}
		ssize_t w = write(k->fd, p, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0) {
			write_failed(k, w < 0 ? errno : EIO);
			return 0;
		}
		if (k->err) {
			note("writing log %s again", k->dir >= 0 ? k->name : "output");
			k->err = 0;
		}
		st->off += (size_t)w;
		k->size += w;
		k->midline = p[w - 1] == '\n' ? NULL : st;
	}
	return 1;
}

static void send_lines(struct stream *st, const char *p, size_t n)
{
	while (n > 0) {
		const char *nl = memchr(p, '\n', n);
		size_t len = (size_t)(nl - p);
		syslog_send(st->severity, tag, run_pid, p, len);
		n -= len + 1;
		p = nl + 1;
	}
}

/* Stages whole lines from `in`; with `whole`, a last line without its newline too. Returns whether it staged any. */
static int stage(struct stream *st, int whole)
{
	if (st->len == 0)
		return 0;
	if (!timestamps) {
		char *nl = memrchr(st->in, '\n', st->len);
		if (nl)
			st->end = (size_t)(nl - st->in) + 1;
		else if (st->len == IN_SIZE || whole) {
			st->in[st->len++] = '\n';
			st->end = st->len;
		} else
			return 0;
		send_lines(st, st->in, st->end);
		return 1;
	}
	char now[STAMP + 1];
	stamp(now);
	size_t scan = 0;
	while (scan < st->len) {
		char *line = st->in + scan;
		char *nl = memchr(line, '\n', st->len - scan);
		size_t len = nl ? (size_t)(nl - line) : st->len - scan;
		if (!nl && !(whole || (scan == 0 && st->len == IN_SIZE)))
			break;
		if (st->end + STAMP + len + 1 > OUT_SIZE)
			break;
		memcpy(st->out + st->end, now, STAMP);
		memcpy(st->out + st->end + STAMP, line, len);
		st->out[st->end + STAMP + len] = '\n';
		st->end += STAMP + len + 1;
		syslog_send(st->severity, tag, run_pid, line, len);
		scan += nl ? len + 1 : len;
	}
	memmove(st->in, st->in + scan, st->len - scan);
	st->len -= scan;
	return scan > 0;
}

/* Drops what was written: with timestamps the staged copy, without them the lines themselves. */
static void compact(struct stream *st)
{
	if (st->off < st->end)
		return;
	if (!timestamps && st->end) {
		memmove(st->in, st->in + st->end, st->len - st->end);
		st->len -= st->end;
	}
	st->off = st->end = 0;
}

/* Stages and writes all it can; 1 when nothing staged is left unwritten. */
static int flush(struct stream *st, int whole)
{
	for (;;) {
		if (st->off < st->end && !write_out(st))
			return 0;
		compact(st);
		if (!stage(st, whole))
			return 1;
	}
}

/* One read, then flush; 1 when the pipe may have more. */
static int pump(struct stream *st, int whole)
{
	if (!flush(st, 0))
		return 0;
	ssize_t n = read(st->rd, st->in + st->len, IN_SIZE - st->len);
	if (n > 0) {
		st->len += (size_t)n;
		st->used = 1;
		idle_since = now_ms(CLOCK_MONOTONIC);
	}
	flush(st, whole && n <= 0);
	return n > 0;
}

static int blocked(const struct stream *st)
{
	return st->off < st->end;
}

int relay_setting(const char *key, const char *value)
{
	char *end;
	int64_t n = strtoll(value, &end, 10);
	int number = *value && !*end;
	if (!strcmp(key, "out") || !strcmp(key, "err")) {
		struct stream *st = &streams[key[0] == 'e'];
		if (st == &streams[1] && !strcmp(value, "out")) {
			st->sink = &sinks[0];
			return 1;
		}
		struct sink *k = &sinks[st == &streams[1]];
		int fd, dir = -1, used = 0;
		if (sscanf(value, "%d:%d:%n", &fd, &dir, &used) == 2 && used > 0 && strlen(value + used) < sizeof k->name)
			strcpy(k->name, value + used);
		else if (sscanf(value, "%d%n", &fd, &used) != 1 || value[used])
			return -1;
		k->fd = fd;
		k->dir = dir;
		st->sink = k;
		return 1;
	}
	if (!strcmp(key, "log-max-size"))
		return number && n >= 0 ? (max_size = n, 1) : -1;
	if (!strcmp(key, "log-keep"))
		return number && n >= 0 && n <= 1000 ? (keep = n, 1) : -1;
	if (!strcmp(key, "log-timestamps"))
		return (timestamps = 1);
	if (!strcmp(key, "syslog"))
		return number && n >= 0 && n < 24 ? (facility = n, 1) : -1;
	if (!strcmp(key, "syslog-socket"))
		return strlen(value) < sizeof slog_addr.sun_path ? (strcpy(slog_addr.sun_path, value), 1) : -1;
	if (!strcmp(key, "tag"))
		return strlen(value) < sizeof tag ? (strcpy(tag, value), 1) : -1;
	if (!strcmp(key, "caller"))
		return number ? (caller = n, 1) : -1;
	return 0;
}

int relay_start(int64_t *out, int64_t *err, int64_t uid, int64_t gid, int64_t umask)
{
	file_uid = uid;
	file_gid = gid;
	file_mode = 0666 & ~umask;
	for (int i = 0; i < 2; i++) {
		struct stream *st = &streams[i];
		if (!st->sink && facility < 0)
			continue;
		int p[2];
		if (pipe2(p, O_CLOEXEC) < 0)
			return -errno;
		/* A bigger pipe: fewer wake-ups for the monitor, and a program that writes in bursts blocks less. */
		fcntl(p[1], F_SETPIPE_SZ, IN_SIZE);
		fcntl(p[0], F_SETFL, O_RDONLY | O_NONBLOCK);
		st->rd = p[0];
		st->wr = p[1];
		size_t size = IN_SIZE + 1 + (timestamps ? OUT_SIZE : 0);
		st->in = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (st->in == MAP_FAILED)
			return -errno;
		st->out = timestamps ? st->in + IN_SIZE + 1 : st->in;
		struct stat s;
		if (st->sink && fstat(st->sink->fd, &s) == 0)
			st->sink->size = s.st_size;
		*(i ? err : out) = st->wr;
	}
	return 0;
}

int relay_pollfds(struct pollfd *p)
{
	int n = 0;
	for (int i = 0; i < 2; i++)
		if (streams[i].rd >= 0 && !blocked(&streams[i]))
			p[n++] = (struct pollfd){ streams[i].rd, POLLIN, 0 };
	return n;
}

void relay_ready(const struct pollfd *p, int n)
{
	for (int j = 0; j < n; j++)
		if (p[j].revents)
			for (int i = 0; i < 2; i++)
				if (streams[i].rd == p[j].fd)
					pump(&streams[i], 0);
}

int64_t relay_wake(int64_t now)
{
	int64_t wake = -1;
	for (int i = 0; i < 2; i++) {
		const struct stream *st = &streams[i];
		int64_t at = blocked(st) ? failed_at + RETRY_MS : st->used && st->len == 0 ? idle_since + IDLE_MS : -1;
		if (at >= 0 && (wake < 0 || at < wake))
			wake = at;
	}
	return wake < 0 ? -1 : wake < now ? now : wake;
}

void relay_tick(int64_t now)
{
	for (int i = 0; i < 2; i++) {
		struct stream *st = &streams[i];
		if (blocked(st) && now >= failed_at + RETRY_MS)
			flush(st, 0);
		/* Idle: the buffers' pages go back to the kernel, to be faulted in again with the next line. */
		if (st->used && st->len == 0 && !blocked(st) && now >= idle_since + IDLE_MS) {
			madvise(st->in, IN_SIZE + 1 + (timestamps ? OUT_SIZE : 0), MADV_DONTNEED);
			st->used = 0;
		}
	}
}

void relay_drain(int whole)
{
	for (int i = 0; i < 2; i++)
		if (streams[i].rd >= 0)
			while (pump(&streams[i], whole))
				;
}

void relay_reopen(int how)
{
	for (int i = 0; i < 2; i++)
		sinks[i].reopen = sinks[i].dir >= 0 ? how : 0;
	/* Now, unless a line is half written (a full disk): then at its end. */
	for (int i = 0; i < 2; i++)
		if (sinks[i].reopen && !sinks[i].midline)
			renew(&sinks[i]);
}

int relay_reopening(void)
{
	return (sinks[0].reopen != 0) + (sinks[1].reopen != 0);
}

void relay_run(pid_t pid)
{
	run_pid = pid;
}

int relay_say(const char *line, size_t len)
{
	struct stream *st = streams[1].rd >= 0 ? &streams[1] : streams[0].rd >= 0 ? &streams[0] : NULL;
	if (!st)
		return 0;
	syslog_send(5, "daemonize", getpid(), line, len);
	struct sink *k = st->sink;
	/* Between the program's lines, never inside one, and never past a log that cannot be written. */
	if (!k || k->midline || k->err)
		return 1;
	char out[STAMP + 600];
	size_t n = 0;
	if (timestamps) {
		stamp(out);
		n = STAMP;
	}
	if (len > sizeof out - n - 1)
		len = sizeof out - n - 1;
	memcpy(out + n, line, len);
	out[n + len] = '\n';
	n += len + 1;
	if (max_size > 0 && k->dir >= 0 && k->size > 0 && k->size + (int64_t)n > max_size)
		rotate(k);
	ssize_t w = write(k->fd, out, n);
	if (w > 0)
		k->size += w;
	return 1;
}

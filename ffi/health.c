/* --health: see liveness.h. */
#include "liveness.h"
#include "clock.h"
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

enum { OFF, TCP, HTTP, EXEC };
/* What the last probe found: the kinds of result, as its token names them. */
enum { CONNECTED, ANSWERED, FAILED, TIMEOUT, EXITED, KILLED, GARBLED };
static const char *const RESULT[] = { "connected", "http", "errno", "timeout", "exit", "signal", "badreply" };
static const char *const STATE[] = HEALTH_NAMES;

static int kind;
static struct sockaddr_storage peer;
static socklen_t peer_len;
static char request[1024];
static int request_len;
static const char *program;
static char *args[LIMIT_HEALTH_ARGS + 1];
static int nargs;
static int64_t interval = DEFAULT_HEALTH_INTERVAL, timeout = DEFAULT_HEALTH_TIMEOUT, retries = DEFAULT_HEALTH_RETRIES,
	       start = DEFAULT_HEALTH_START;

/* This run's probing. */
static const struct dz_spec *run;
static int64_t ready_at, next_at, deadline; /* next_at 0: disarmed; deadline 0: no probe in flight */
static int sock = -1, connecting, devnull = -1;
static char reply[16];
static size_t got;
static int code; /* the answer's status, once its line came; the probe ends when the server closes */
static pid_t probe_pid;
static enum health state;
static int failures, unhealthy, dirty;
static int result = -1, result_value, result_ok;
static int64_t result_wall;

static int64_t duration(const char *v, int64_t min)
{
	char *end;
	long long n = strtoll(v, &end, 10);
	return *end || end == v || n < min || n > INT64_MAX / 4 ? -1 : n;
}

/* http://HOST:PORT/PATH: the address as ready_address takes it, and the request, made once. */
static int http(const char *url)
{
	const char *authority = url + 7, *slash = strchr(authority, '/');
	const char *path = slash ? slash : "/";
	size_t len = slash ? (size_t)(slash - authority) : strlen(authority);
	char hostport[64];
	if (len == 0 || len >= sizeof hostport || strpbrk(path, " \r\n\t"))
		return -1;
	memcpy(hostport, authority, len);
	hostport[len] = 0;
	if (ready_address(hostport, &peer, &peer_len) < 0)
		return -1;
	request_len = snprintf(request, sizeof request,
			       "GET %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: daemonize\r\nConnection: close\r\n\r\n", path, hostport);
	return request_len < (int)sizeof request ? HTTP : -1;
}

int health_setting(const char *k, const char *v)
{
	if (!strcmp(k, "health")) {
		if (!strncmp(v, "tcp:", 4))
			kind = ready_address(v + 4, &peer, &peer_len) == 0 ? TCP : -1;
		else if (!strncmp(v, "http://", 7))
			kind = http(v);
		else if (!strncmp(v, "exec:/", 6)) {
			program = v + 5;
			kind = EXEC;
		} else
			kind = -1;
		return kind < 0 ? -1 : 1;
	}
	if (!strcmp(k, "health-arg")) {
		if (nargs >= LIMIT_HEALTH_ARGS)
			return -1;
		args[nargs++] = (char *)v;
		return 1;
	}
	int64_t *field = !strcmp(k, "health-interval") ? &interval
			 : !strcmp(k, "health-timeout") ? &timeout
			 : !strcmp(k, "health-retries") ? &retries
			 : !strcmp(k, "health-start") ? &start
							: NULL;
	if (!field)
		return 0;
	*field = duration(v, field == &start ? 0 : 1);
	return *field < 0 ? -1 : 1;
}

int health_on(void)
{
	return kind != OFF && (kind != EXEC || nargs > 0);
}

void health_arm(const struct dz_spec *s, int64_t t)
{
	if (!health_on())
		return;
	run = s;
	/* The first probe one interval after the run is ready, as Docker does: time to start listening. */
	ready_at = t;
	next_at = t + interval;
	state = HEALTH_STARTING;
	failures = unhealthy = 0;
	result = -1;
	dirty = CHANGED_STATE;
}

static void drop(void)
{
	if (sock >= 0)
		close(sock);
	sock = -1;
	/* Its own process group: a probe's children go with it. */
	if (probe_pid > 0 && deadline) {
		kill(-probe_pid, SIGKILL);
		kill(probe_pid, SIGKILL);
	}
	deadline = 0;
}

void health_disarm(void)
{
	drop();
	/* The tree's stop reaps it, as any child. */
	probe_pid = 0;
	next_at = 0;
}

static void judge(int ok, int what, int value, int64_t t)
{
	drop();
	int before[] = { (int)state, failures, result, result_value };
	result = what;
	result_value = value;
	result_ok = ok;
	result_wall = now_ms(CLOCK_REALTIME);
	if (ok) {
		failures = 0;
		state = HEALTH_HEALTHY;
	} else if (state != HEALTH_STARTING || t >= ready_at + start) {
		/* In the start period a failure is not counted; a success ends it. */
		failures++;
		state = HEALTH_UNHEALTHY;
		unhealthy = failures >= retries;
	}
	/* The same result again moves only its time. */
	int after[] = { (int)state, failures, result, result_value };
	note_change(&dirty, memcmp(before, after, sizeof after) ? CHANGED_STATE : CHANGED_TIME);
}

static void answered(int64_t t)
{
	judge(code >= 200 && code < 400, ANSWERED, code, t);
}

static void advance(int64_t t);

static void begin(int64_t t)
{
	next_at = t + interval;
	deadline = t + timeout;
	code = 0;
	if (kind == EXEC) {
		if (devnull < 0)
			devnull = open("/dev/null", O_RDWR | O_CLOEXEC);
		extern char **environ;
		struct dz_spec s = *run;
		s.path = program;
		s.argv = args;
		s.envp = environ;
		s.ready_fd = s.ready_to = -1;
		/* --listen's sockets are the program's, not its probe's. */
		s.listen = NULL;
		s.nlisten = 0;
		s.stdio[0] = s.stdio[1] = devnull;
		int none[2] = { -1, -1 };
		probe_pid = monitor_spawn(&s, none, 0);
		if (probe_pid < 0)
			judge(0, FAILED, errno, t);
		return;
	}
	sock = socket(peer.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	connecting = 1;
	if (sock < 0 || (connect(sock, (struct sockaddr *)&peer, peer_len) < 0 && errno != EINPROGRESS)) {
		judge(0, FAILED, errno, t);
		return;
	}
	/* On the loopback the handshake is done by now, as a rule: a look saves a wake-up. */
	struct pollfd now = { sock, POLLOUT, 0 };
	if (poll(&now, 1, 0) == 1)
		advance(t);
}

/* The socket is ready for what the probe waits for. */
static void advance(int64_t t)
{
	if (connecting) {
		int err = 0;
		socklen_t len = sizeof err;
		if (getsockopt(sock, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
			err = errno;
		if (err || kind == TCP) {
			judge(!err, err ? FAILED : CONNECTED, err, t);
			return;
		}
		connecting = 0;
		got = 0;
		code = 0;
		/* A request this small goes into an empty socket buffer whole, or not at all. */
		ssize_t n = send(sock, request, (size_t)request_len, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n != request_len)
			judge(0, FAILED, n < 0 ? errno : EIO, t);
		return;
	}
	/*
	 * All that came is read (the status line, the rest, the close often come together), up to a
	 * bound against an endless answer; the rest is dropped, but read: closing on unread data would
	 * reset the server's connection.
	 */
	for (int reads = 0; reads < 64; reads++) {
		char rest[512];
		ssize_t n = recv(sock, code ? rest : reply + got, code ? sizeof rest : 12 - got, MSG_DONTWAIT);
		if (n < 0 && (errno == EAGAIN || errno == EINTR))
			return;
		if (n < 0 && !code) {
			judge(0, FAILED, errno, t);
			return;
		}
		if (code && n <= 0) {
			answered(t);
			return;
		}
		if (code)
			continue;
		got += (size_t)n;
		if (got < 12 && n > 0)
			continue;
		/* "HTTP/1.1 200": the version, a space, three digits. */
		code = got == 12 && !strncmp(reply, "HTTP/1.", 7) && reply[8] == ' ' ? atoi(reply + 9) : 0;
		if (code < 100 || code > 999) {
			judge(0, GARBLED, 0, t);
			return;
		}
		if (n == 0) {
			answered(t);
			return;
		}
	}
}

int health_pollfd(struct pollfd *p)
{
	if (sock < 0)
		return 0;
	*p = (struct pollfd){ sock, connecting ? POLLOUT : POLLIN, 0 };
	return 1;
}

int64_t health_wake(void)
{
	return deadline ? deadline : probe_pid > 0 ? -1 : next_at ? next_at : -1;
}

int health_tick(int64_t t, short revents, int *changed)
{
	if (!next_at)
		return 0;
	if (sock >= 0 && revents)
		advance(t);
	if (deadline && t >= deadline && code && sock >= 0)
		answered(t);
	else if (deadline && t >= deadline)
		judge(0, TIMEOUT, (int)timeout, t);
	if (!deadline && probe_pid <= 0 && !unhealthy && t >= next_at)
		begin(t);
	note_change(changed, dirty);
	dirty = 0;
	return unhealthy;
}

int health_reaped(pid_t pid, int code, int status)
{
	if (pid != probe_pid || pid <= 0)
		return 0;
	/* After a timeout it was KILLed, and counted then. */
	if (deadline)
		judge(code == CLD_EXITED && status == 0, code == CLD_EXITED ? EXITED : KILLED, status, now_ms(CLOCK_MONOTONIC));
	probe_pid = 0;
	return 1;
}

pid_t health_probe_pid(void)
{
	return probe_pid;
}

static void said(char *out, size_t size)
{
	switch (result) {
	case CONNECTED:
		snprintf(out, size, "connected");
		break;
	case ANSWERED:
		snprintf(out, size, "HTTP %d", result_value);
		break;
	case FAILED:
		snprintf(out, size, "%s", strerror(result_value));
		break;
	case TIMEOUT:
		snprintf(out, size, "no answer within %d ms", result_value);
		break;
	case EXITED:
		snprintf(out, size, "exited with code %d", result_value);
		break;
	case KILLED:
		snprintf(out, size, "killed by signal %d", result_value);
		break;
	default:
		snprintf(out, size, "not an HTTP answer");
	}
}

void health_describe(char *out, size_t size)
{
	char last[64];
	said(last, sizeof last);
	snprintf(out, size, "failed %d health check%s in a row (last: %s)", failures, failures == 1 ? "" : "s", last);
}

void health_field(char *out, size_t size)
{
	if (!health_on())
		snprintf(out, size, "-");
	else
		snprintf(out, size, "%s:%d:%lld", STATE[state], failures, (long long)retries);
}

void health_probe_field(char *out, size_t size)
{
	if (result < 0)
		snprintf(out, size, "-");
	else if (result == CONNECTED || result == TIMEOUT || result == GARBLED)
		snprintf(out, size, "%c%s@%lld", result_ok ? '+' : '-', RESULT[result], (long long)result_wall);
	else
		snprintf(out, size, "%c%s:%d@%lld", result_ok ? '+' : '-', RESULT[result], result_value, (long long)result_wall);
}

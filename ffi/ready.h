/*
 * Readiness: knowing when a started program is ready to serve, by one of four
 * protocols, for the launcher (a plain start) and the monitor (every run).
 *   notify        sd_notify: READY=1 on a datagram socket named by NOTIFY_SOCKET
 *   fd:N          s6: a newline on fd N
 *   tcp:HOST:PORT a TCP connect succeeds
 *   file:PATH     PATH exists
 * Only the program and its descendants are heard on the notify socket.
 */
#ifndef DZ_READY_H
#define DZ_READY_H
#include "child.h"
#include <poll.h>
#include <sys/socket.h>

/* How often tcp: and file: are probed while a program is not ready yet. */
#define PROBE_MS 50

/* What one look said. */
struct ready_event {
	int ready;
	int err;           /* ERRNO=: the program failed, with this error */
	int closed;        /* fd:N was closed without a newline, and the program outlived that: it never will be ready */
	int64_t extend_ms; /* EXTEND_TIMEOUT_USEC=: the deadline is now + this */
	int status;        /* STATUS= changed: ready_status() */
	int watchdog;      /* WATCHDOG_*: what --watchdog heard */
	int64_t watchdog_usec; /* with WATCHDOG_PERIOD: WATCHDOG_USEC= */
};
enum { WATCHDOG_PING = 1, WATCHDOG_TRIGGER = 2, WATCHDOG_PERIOD = 4 };

/* --ready's argument, parsed. */
struct ready_how {
	int kind;         /* READY_NOTIFY, READY_FD, READY_TCP or READY_FILE */
	int fd;           /* fd:N */
	int port;         /* tcp:'s */
	const char *path; /* file:PATH, in the argument */
	struct sockaddr_storage peer;
	socklen_t peer_len;
};

/*
 * "notify", "fd:N", "tcp:[HOST:]PORT" or "file:PATH": 0, or why it is refused
 * (REFUSED_*), the kind and fd filled in as far as it was read. The one
 * grammar: the launcher checks an argument with it before anything starts.
 */
HIDDEN int ready_parse(const char *how, struct ready_how *out);
/* The protocol the waits below use: 0, or -EINVAL for an argument ready_parse refuses. */
HIDDEN int ready_config(const char *how);
HIDDEN int ready_wanted(void);
/* [HOST:]PORT as tcp: takes it (ready_parse), HOST an address or localhost (127.0.0.1 when left out): 0, or -EINVAL. */
HIDDEN int ready_address(const char *spec, struct sockaddr_storage *out, socklen_t *len);
/* The notify socket is opened and read whatever the protocol (--watchdog hears on it). */
HIDDEN void ready_listen(void);
/*
 * Makes the notify socket, in a private directory the target user can reach
 * (an abstract address when the program runs in a chroot); `env` gets
 * "NOTIFY_SOCKET=…", or "" for the other protocols. 0 or -errno.
 */
HIDDEN long ready_open(int64_t uid, int64_t gid, int abstract, char *env, size_t size);
/* Before each run: for fd:N, a new pipe whose write end the run gets as fd N. 0 or -errno. */
HIDDEN long ready_arm(int64_t *fd, int64_t *target);
/*
 * fd:N is moved onto N in the run: pipes of its starter's, made between
 * ready_arm and the run's start, must be elsewhere. Each of fds that is N is
 * moved above it, close-on-exec, or closed and -1 if it cannot be. 0, or -errno.
 */
HIDDEN long ready_clear(int *fds, int n);
/* After the run's exec: the parent's copy of the write end goes. */
HIDDEN void ready_armed(void);
/* The fds to poll, at most two (the notify socket, and fd:N's pipe); how many. */
HIDDEN int ready_pollfd(struct pollfd *p);
/* Whether the protocol is probed (tcp, file) rather than told. */
HIDDEN int ready_probed(void);
/* Reads what came on the notify socket only. */
HIDDEN void ready_listened(pid_t main, struct ready_event *e);
/* Reads what came (or probes); `main` and its descendants are the ones heard. */
HIDDEN void ready_check(pid_t main, struct ready_event *e);
/* When a close of fd:N that was seen will count as closed, or 0. */
HIDDEN int64_t ready_closing(void);
HIDDEN const char *ready_status(void);
HIDDEN pid_t ready_mainpid(void);
/* The socket and its directory removed. */
HIDDEN void ready_close(void);
/* Sends text to a notify socket given as NOTIFY_SOCKET names it ("/path" or "@abstract"). */
HIDDEN int ready_forward(const char *socket, const char *text);
#endif

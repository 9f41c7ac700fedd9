/*
 * The log relay, inside the monitor: the program's stdout and stderr are pipes
 * the monitor holds across runs and writes, line by line, to the log files
 * (rotated by size, reopened on request, with optional timestamps) and to
 * syslog. A stream with neither goes straight to /dev/null instead.
 */
#ifndef DZ_RELAY_H
#define DZ_RELAY_H
#include "child.h"
#include <poll.h>

/* Takes one key=value setting; 1 if it was the relay's, 0 if not, -1 if its value is bad. */
HIDDEN int relay_setting(const char *key, const char *value);
/* Makes the pipes; says which fd each run gets as stdout and stderr. The target user owns new log files. */
HIDDEN int relay_start(int64_t *out, int64_t *err, int64_t uid, int64_t gid, int64_t umask);
/* The pipes to poll now (none while their log cannot be written); returns how many were added. */
HIDDEN int relay_pollfds(struct pollfd *p);
HIDDEN void relay_ready(const struct pollfd *p, int n);
/* Milliseconds until relay_tick wants to run (-1: never), then the tick itself: retries, reconnects, idle memory. */
HIDDEN int64_t relay_wake(int64_t now);
HIDDEN void relay_tick(int64_t now);
/* Everything the pipes hold, written; with `whole`, a last line without its newline too (a run ended). */
HIDDEN void relay_drain(int whole);
/* rotate-logs asks for RENEW_ROTATE: each log is rotated as --log-max-size would, then reopened. */
enum { RENEW_REOPEN = 1, RENEW_ROTATE = 2 };
HIDDEN void relay_reopen(int how);
/* How many logs still wait for the reopen or rotation asked for: each is done at its next line boundary. */
HIDDEN int relay_reopening(void);
/* The pid syslog names for the program's lines. */
HIDDEN void relay_run(pid_t pid);
/* The monitor's own message, as a line of stderr's; 0 when there is no relay to take it. */
HIDDEN int relay_say(const char *line, size_t len);
#endif

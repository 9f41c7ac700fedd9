/*
 * The child path, shared by the launcher's library and the supervise monitor:
 * every step between a new process and its exec, in raw system calls only.
 */
#ifndef DZ_CHILD_H
#define DZ_CHILD_H
#include "sys.h"

#define HIDDEN __attribute__((visibility("hidden")))

/* Steps, in the order the child takes them; src/detach.ts mirrors this list. */
enum {
	STEP_READY = 0, STEP_PIPE, STEP_FORK, STEP_SETSID, STEP_FORK2, STEP_CHROOT,
	STEP_CHDIR, STEP_SETGROUPS, STEP_SETGID, STEP_SETUID, STEP_VERIFY,
	STEP_RLIMIT, STEP_STDIO, STEP_FDS, STEP_EXEC,
	/* Not steps but what the launcher saw: the daemon was stopped, or killed, before its exec. */
	STEP_STOPPED, STEP_KILLED,
	/* Not ready (ready.h): it exited first (err: its wait status), did not say so in time,
	 * reported ERRNO= (err), or closed its readiness fd without a word. */
	STEP_EXITED, STEP_TIMEOUT, STEP_ERRNO, STEP_CLOSED,
	/* The launcher was sent SIGHUP, SIGINT or SIGTERM (err) while it waited, and stopped the start. */
	STEP_INTERRUPTED,
};

/* Their names, for the monitor's messages. */
#define STEP_NAMES                                                                                          \
	{ "ready", "pipe", "fork", "setsid", "fork", "chroot", "chdir", "setgroups", "setgid", "setuid",    \
	  "verify privileges", "set RLIMIT_CORE", "redirect stdio", "close fds", "exec", "stopped", "killed", \
	  "exited before ready", "not ready in time", "reported an error", "closed its readiness fd", "interrupted" }

/* Every field is 8 bytes wide so JavaScript can fill it with one typed array. */
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
	const int32_t *keep;   /* inherited fds to leave open, sorted */
	int64_t nkeep;
	char *const *cleanup;  /* --foreground: files to remove if the exec fails, or NULL */
	int64_t exec_fd;       /* >= 0: exec this open file (the monitor's memfd) instead of path */
	int64_t report_fd;     /* >= 0: the exec'd monitor keeps the status pipe open on this fd */
	int64_t check;         /* nonzero: --check, find out whether the exec would work instead of doing it */
	int64_t pdeath;        /* nonzero: the signal this process gets when its parent dies */
	int64_t ready_fd;      /* >= 0: --ready fd:N, the pipe's write end the program gets ... */
	int64_t ready_to;      /* ... as this fd */
};

/* One record on a status pipe; smaller than PIPE_BUF, so it arrives whole. */
struct record {
	int32_t step;
	int32_t err;
	int32_t pid;
};

/* Everything between a new process and exec. Returns -errno and sets *step on failure. */
HIDDEN long child_setup(const struct dz_spec *s, int *step);
/* Whether the exec of s->path would succeed for the ids now in force: 0 or -errno. */
HIDDEN long child_probe_exec(const struct dz_spec *s);
/* execve, or execveat of s->exec_fd. Returns only on failure, with -errno. */
HIDDEN long child_exec(const struct dz_spec *s);
HIDDEN void child_report(int fd, int step, long err);
#endif

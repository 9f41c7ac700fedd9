/*
 * The child path, shared by the launcher's library and the supervise monitor:
 * every step between a new process and its exec, in raw system calls only.
 */
#ifndef DZ_CHILD_H
#define DZ_CHILD_H
#include "sys.h"
#include "contract.h" /* steps, exit codes, struct dz_spec: generated from src/contract.ts */

#define HIDDEN __attribute__((visibility("hidden")))

/* A child that could not exec ends as a shell says of a command it could not run. */
#define RUN_NOT_STARTED EXIT_NOTFOUND

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

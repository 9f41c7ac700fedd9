/* What /proc says of a process, for the launcher and the monitor (never the child path). */
#ifndef DZ_PROC_H
#define DZ_PROC_H
#include "child.h"
#include <sys/stat.h>

/* Its state letter, parent and process group from /proc/PID/stat; 0, or -1 when it is gone. */
HIDDEN int proc_stat(pid_t pid, char *state, pid_t *ppid, pid_t *pgrp);
/* When the live process started, in ticks since boot; -1 when it is gone or a zombie. */
HIDDEN long long proc_started(pid_t pid);
/*
 * Calls each() with every child of this process, dead or alive, from every
 * thread's list (each thread has its own), until one returns nonzero; returns
 * that. It allocates nothing, for the monitor.
 */
HIDDEN int proc_children(int (*each)(pid_t pid, void *arg), void *arg);
/* The same for the children of another process (0: this one). */
HIDDEN int proc_children_of(pid_t pid, int (*each)(pid_t pid, void *arg), void *arg);
/* Its resident memory in bytes (the resident pages of /proc/PID/statm); -1 when it is gone. */
HIDDEN long long proc_resident(pid_t pid);
/* Whether any process of the group is alive, not a zombie. */
HIDDEN int proc_group_alive(pid_t pgid);
/*
 * What a process makes for itself for a while is named after it, PREFIX<pid>.<ticks>SUFFIX
 * (the pid and start time of its maker) and `extra` more bytes. This removes from dir
 * such entries of this user's, of the given type (S_IFREG, or S_IFDIR with what is in
 * it), whose maker is gone: no live process has that pid and start time.
 */
HIDDEN void proc_sweep(const char *dir, const char *prefix, const char *suffix, size_t extra, mode_t type);
#endif

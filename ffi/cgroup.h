/*
 * A program's own cgroup v2 (--cgroup): putting each run in it before its first
 * instruction, and ending everything in it. src/cgroup.ts finds, creates, marks
 * and checks the cgroup; this is what acts on it, for the child path (raw system
 * calls only), the monitor (no allocation) and the launcher's stop. Every
 * function takes an open directory fd of the cgroup.
 */
#ifndef DZ_CGROUP_H
#define DZ_CGROUP_H
#include "child.h"

/* The child path's first step: this process into the cgroup. 0 or -errno; raw system calls only. */
HIDDEN long cgroup_join(int dir);
/*
 * Joining by cgroup.procs is a migration, which waits for an RCU grace period
 * (tens of milliseconds); a child born in the cgroup costs nothing more than a
 * fork. Both of these say in *placed, or by their result, whether it was.
 */
/* fork(), the child born in the cgroup (clone3 CLONE_INTO_CGROUP, Linux 5.7), or plain fork() where the kernel lacks it: *placed says which. */
HIDDEN pid_t cgroup_fork(int dir, int *placed);
/* clone(CLONE_VM) of fn(arg) on [stack, stack + size), born in the cgroup; -errno where the kernel refuses, and nothing was started. */
HIDDEN pid_t cgroup_clone_vm(int (*fn)(void *), char *stack, size_t size, void *arg, int dir);
/* `sig` to every process in the cgroup; returns how many there were. */
HIDDEN int cgroup_signal(int dir, int sig);
/* 1 while any process is in it (cgroup.events), 0 when none, -errno. */
HIDDEN int cgroup_populated(int dir);
/*
 * Removes the empty cgroup at `path`, then leaves its ancestors as daemonize
 * found them: controllers it enabled (XATTR_CGROUP_ENABLED on a directory) are
 * switched off, and a directory it made (XATTR_CGROUP_MADE) is removed, once
 * nothing else is below them. 0 or -errno of the rmdir.
 */
HIDDEN int cgroup_remove(const char *path);
#endif

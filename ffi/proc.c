#include "proc.h"
#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* The fields of /proc/PID/stat after the process's name, into buf; NULL when it is gone. */
static const char *stat_fields(pid_t pid, char *buf, size_t size)
{
	char path[32];
	snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return NULL;
	ssize_t n = read(fd, buf, size - 1);
	close(fd);
	if (n <= 0)
		return NULL;
	buf[n] = 0;
	/* The name may hold any byte, ')' too: the fields start after the last one. */
	const char *end = strrchr(buf, ')');
	return end ? end + 1 : NULL;
}

int proc_stat(pid_t pid, char *state, pid_t *ppid, pid_t *pgrp)
{
	char buf[512];
	const char *fields = stat_fields(pid, buf, sizeof buf);
	int parent, group;
	if (!fields || sscanf(fields, " %c %d %d", state, &parent, &group) != 3)
		return -1;
	*ppid = parent;
	*pgrp = group;
	return 0;
}

long long proc_started(pid_t pid)
{
	char buf[512], state;
	long long ticks;
	const char *fields = stat_fields(pid, buf, sizeof buf);
	/* The state, 18 more fields, then the start time. */
	if (!fields ||
	    sscanf(fields, " %c %*s %*s %*s %*s %*s %*s %*s %*s %*s %*s %*s %*s %*s %*s %*s %*s %*s %*s %lld", &state, &ticks) != 2 ||
	    state == 'Z' || state == 'X')
		return -1;
	return ticks;
}

/* A name PREFIX<pid>.<ticks>SUFFIX followed by `extra` more bytes: 0 with its pid and ticks, or -1. */
static int parse_name(const char *name, const char *prefix, const char *suffix, size_t extra, pid_t *pid, long long *ticks)
{
	size_t len = strlen(prefix);
	if (strncmp(name, prefix, len) || name[len] < '1' || name[len] > '9')
		return -1;
	char *dot, *rest;
	long p = strtol(name + len, &dot, 10);
	if (p > 0x7fffffff || *dot != '.' || dot[1] < '0' || dot[1] > '9')
		return -1;
	*ticks = strtoll(dot + 1, &rest, 10);
	*pid = (pid_t)p;
	return strncmp(rest, suffix, strlen(suffix)) || strlen(rest) != strlen(suffix) + extra ? -1 : 0;
}

/*
 * Calls each() for every entry of the directory open at dfd but . and .., from a
 * buffer on the stack (the monitor allocates nothing), until one returns nonzero;
 * returns that.
 */
static int each_entry(int dfd, int (*each)(int dfd, const char *name, void *arg), void *arg)
{
	char buf[2048] __attribute__((aligned(8)));
	ssize_t n;
	while ((n = getdents64(dfd, buf, sizeof buf)) > 0)
		for (ssize_t off = 0; off < n;) {
			struct dirent64 *e = (struct dirent64 *)(buf + off);
			off += e->d_reclen;
			int r = strcmp(e->d_name, ".") && strcmp(e->d_name, "..") ? each(dfd, e->d_name, arg) : 0;
			if (r)
				return r;
		}
	return 0;
}

/* each_entry() of a directory by its path; 0 when it cannot be opened. */
static int each_in(const char *dir, int (*each)(int dfd, const char *name, void *arg), void *arg)
{
	int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0)
		return 0;
	int r = each_entry(dfd, each, arg);
	close(dfd);
	return r;
}

struct children {
	int (*each)(pid_t pid, void *arg);
	void *arg;
};

/* One thread's children, from /proc/self/task/TID/children: "PID PID ... ". */
static int task_children(int dfd, const char *task, void *arg)
{
	const struct children *c = arg;
	char path[32], buf[4096];
	snprintf(path, sizeof path, "%.16s/children", task);
	int fd = openat(dfd, path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	int r = 0;
	long pid = 0;
	ssize_t n;
	while (!r && (n = read(fd, buf, sizeof buf)) > 0)
		for (ssize_t i = 0; i < n && !r; i++) {
			if (buf[i] >= '0' && buf[i] <= '9') {
				pid = pid * 10 + (buf[i] - '0');
				continue;
			}
			if (pid > 0)
				r = c->each((pid_t)pid, c->arg);
			pid = 0;
		}
	close(fd);
	return r;
}

int proc_children(int (*each)(pid_t pid, void *arg), void *arg)
{
	return proc_children_of(0, each, arg);
}

int proc_children_of(pid_t pid, int (*each)(pid_t pid, void *arg), void *arg)
{
	struct children c = { each, arg };
	char dir[32] = "/proc/self/task";
	if (pid)
		snprintf(dir, sizeof dir, "/proc/%d/task", (int)pid);
	return each_in(dir, task_children, &c);
}

long long proc_resident(pid_t pid)
{
	char path[32], buf[128];
	snprintf(path, sizeof path, "/proc/%d/statm", (int)pid);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	ssize_t n = read(fd, buf, sizeof buf - 1);
	close(fd);
	long long pages;
	if (n <= 0)
		return -1;
	buf[n] = 0;
	if (sscanf(buf, "%*s %lld", &pages) != 1)
		return -1;
	return pages * sysconf(_SC_PAGESIZE);
}

static int in_group(int dfd, const char *name, void *arg)
{
	(void)dfd;
	char state;
	pid_t ppid, pgrp, pid = (pid_t)atoi(name);
	return pid > 0 && proc_stat(pid, &state, &ppid, &pgrp) == 0 && pgrp == *(const pid_t *)arg && state != 'Z';
}

int proc_group_alive(pid_t pgid)
{
	return each_in("/proc", in_group, &pgid);
}

static int remove_entry(int dfd, const char *name, void *arg)
{
	(void)arg;
	unlinkat(dfd, name, 0);
	return 0;
}

struct sweep {
	const char *prefix, *suffix;
	size_t extra;
	mode_t type;
};

static int sweep_entry(int dfd, const char *name, void *arg)
{
	const struct sweep *w = arg;
	struct stat st;
	pid_t pid;
	long long ticks;
	if (parse_name(name, w->prefix, w->suffix, w->extra, &pid, &ticks) < 0 || proc_started(pid) == ticks ||
	    fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0 || (st.st_mode & S_IFMT) != w->type || st.st_uid != geteuid())
		return 0;
	if (w->type == S_IFDIR) {
		/* A directory its maker kept for itself holds only what it put there. */
		int sub = openat(dfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (sub < 0)
			return 0;
		each_entry(sub, remove_entry, NULL);
		close(sub);
	}
	unlinkat(dfd, name, w->type == S_IFDIR ? AT_REMOVEDIR : 0);
	return 0;
}

void proc_sweep(const char *dir, const char *prefix, const char *suffix, size_t extra, mode_t type)
{
	struct sweep w = { prefix, suffix, extra, type };
	each_in(dir, sweep_entry, &w);
}

/* --max-memory: see liveness.h. */
#include "liveness.h"
#include "proc.h"
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Deeper than any real tree; it bounds the walk's stack. */
#define DEPTH_MAX 32
/*
 * The fastest growth the check is made for, in bytes per ms (100 MB/s): the next look comes no later
 * than the tree could reach the limit at that rate, and no sooner than DEFAULT_MEMORY_CHECK, so a tree
 * far below it costs a look every DEFAULT_MEMORY_CHECK_MAX, and one growing that fast passes it by at most one
 * DEFAULT_MEMORY_CHECK of growth (25 MB).
 */
#define GROWTH_PER_MS 100000

static int64_t limit;    /* bytes; 0: off */
static int64_t next_at;  /* the next sum; 0: disarmed */
static int64_t used = -1, saved = -1;
static int current = -1; /* the cgroup's memory.current, held open, with --cgroup and its memory controller */

struct walk {
	pid_t skip;
	int depth;
	int64_t sum;
};

static int add(pid_t pid, void *arg)
{
	struct walk *w = arg;
	long long rss = pid == w->skip ? -1 : proc_resident(pid);
	if (rss < 0)
		return 0;
	w->sum += rss;
	if (w->depth < DEPTH_MAX) {
		w->depth++;
		proc_children_of(pid, add, w);
		w->depth--;
	}
	return 0;
}

int memory_setting(const char *k, const char *v)
{
	if (strcmp(k, "max-memory"))
		return 0;
	char *end;
	long long n = strtoll(v, &end, 10);
	if (*end || end == v || n < 1)
		return -1;
	limit = n;
	return 1;
}

void memory_cgroup(int dir)
{
	if (limit && dir >= 0)
		current = openat(dir, "memory.current", O_RDONLY | O_CLOEXEC);
}

/* What the cgroup says it holds, or -1. */
static int64_t charged(void)
{
	char buf[32];
	ssize_t n = current >= 0 ? pread(current, buf, sizeof buf - 1, 0) : -1;
	if (n <= 0)
		return -1;
	buf[n] = 0;
	return strtoll(buf, NULL, 10);
}

int memory_on(void)
{
	return limit > 0;
}

void memory_arm(int64_t t)
{
	next_at = limit ? t : 0;
	used = saved = -1;
}

void memory_disarm(void)
{
	next_at = 0;
}

int64_t memory_wake(void)
{
	return next_at ? next_at : -1;
}

int memory_tick(int64_t t, pid_t skip, int *changed)
{
	if (!next_at || t < next_at)
		return 0;
	used = charged();
	if (used < 0) {
		struct walk w = { skip, 0, 0 };
		proc_children_of(0, add, &w);
		used = w.sum;
	}
	int64_t wait = (limit - used) / GROWTH_PER_MS;
	next_at = t + (wait < DEFAULT_MEMORY_CHECK ? DEFAULT_MEMORY_CHECK : wait > DEFAULT_MEMORY_CHECK_MAX ? DEFAULT_MEMORY_CHECK_MAX : wait);
	/* The state is written again only for a change status would show: a sixteenth, or 1 MiB. */
	int64_t moved = used > saved ? used - saved : saved - used;
	if (saved < 0 || (moved > saved / 16 && moved >= 1 << 20)) {
		saved = used;
		note_change(changed, CHANGED_STATE);
	}
	if (used <= limit)
		return 0;
	next_at = 0;
	saved = used;
	note_change(changed, CHANGED_STATE);
	return 1;
}

static void mib(char *out, size_t size, int64_t bytes)
{
	snprintf(out, size, "%lld.%lld MiB", (long long)(bytes >> 20), (long long)((bytes & ((1 << 20) - 1)) * 10 >> 20));
}

void memory_describe(char *out, size_t size)
{
	char now[32], most[32];
	mib(now, sizeof now, used);
	mib(most, sizeof most, limit);
	snprintf(out, size, "used %s, over --max-memory %s", now, most);
}

void memory_field(char *out, size_t size)
{
	if (limit && saved >= 0)
		snprintf(out, size, "%lld", (long long)saved);
	else
		snprintf(out, size, "-");
}

/* reload, the monitor's side: see reload.h. */
#include "reload.h"
#include "tree.h"
#include <signal.h>
#include <stdio.h>

/* How often a draining tree is looked at: as the monitor's stop does. */
#define DRAIN_SCAN_MS 100

static const char *const OUTCOME[] = RELOAD_NAMES;
static enum reload_phase phase;
static struct run_id old;
static int queued, killing, empty_looks;
static int64_t kill_at, scan_at, reloads;
static enum reload_outcome outcome = RELOAD_NONE, failure;
static int outcome_n, failure_n;

enum reload_phase reload_phase(void)
{
	return phase;
}

void reload_ask(void)
{
	queued = 1;
}

int reload_queued(void)
{
	return queued;
}

void reload_keep(const struct run_id *serving)
{
	queued = 0;
	old = *serving;
	phase = RELOAD_STARTING;
	failure = RELOAD_NONE;
	tree_spare(old.pid, old.pgid);
}

static void over(enum reload_outcome why, int n)
{
	phase = RELOAD_IDLE;
	tree_spare(0, 0);
	outcome = why;
	outcome_n = n;
	reloads++;
}

void reload_failed(enum reload_outcome why, int n)
{
	if (failure == RELOAD_NONE)
		failure = why, failure_n = n;
}

int reload_restore(struct run_id *run)
{
	over(failure == RELOAD_NONE ? RELOAD_FAILED : failure, failure_n);
	if (old.pid <= 0)
		return 0;
	*run = old;
	old.pid = 0;
	return 1;
}

void reload_drain(pid_t pid, pid_t pgid, int64_t now, int64_t stop_ms)
{
	phase = RELOAD_DRAINING;
	tree_spare(pid, pgid);
	killing = 0;
	empty_looks = 0;
	kill_at = now + stop_ms;
	scan_at = now;
	tree_begin();
}

int reload_tick(int64_t now)
{
	if (phase != RELOAD_DRAINING || now < scan_at)
		return 0;
	if (!killing && now >= kill_at)
		killing = 1;
	int found = tree_signal(old.pid, old.pgid, killing ? SIGKILL : SIGTERM);
	scan_at = now + DRAIN_SCAN_MS;
	/* Two looks in a row that find nothing (tree.h); the leader's own reaping is the monitor's. */
	empty_looks = old.pid <= 0 && found == 0 ? empty_looks + 1 : 0;
	if (empty_looks < 2)
		return 0;
	over(RELOAD_OK, 0);
	return 1;
}

int64_t reload_wake(void)
{
	if (phase != RELOAD_DRAINING)
		return -1;
	return !killing && kill_at < scan_at ? kill_at : scan_at;
}

void reload_abandon(void)
{
	if (phase == RELOAD_IDLE)
		return;
	if (old.pid > 0)
		kill(-old.pgid, SIGTERM), kill(old.pid, SIGTERM);
	over(phase == RELOAD_DRAINING ? RELOAD_OK : RELOAD_STOPPED, 0);
	old.pid = 0;
	queued = 0;
}

int reload_reaped(pid_t pid)
{
	if (phase == RELOAD_IDLE || pid != old.pid)
		return 0;
	old.pid = 0;
	/* What is left of its tree is looked for at once. */
	scan_at = 0;
	return 1;
}

int reload_fields(char *out, size_t size)
{
	int under_way = phase != RELOAD_IDLE;
	return snprintf(out, size, "%lld %s:%d %d %d %lld", (long long)reloads, OUTCOME[outcome], outcome_n, under_way + queued,
			under_way ? (int)old.pid : 0, under_way ? (long long)old.started_wall : 0LL);
}

/*
 * reload, the monitor's side: a new run started beside the one serving, which is
 * kept aside untouched until the new one is ready, then drained (its whole tree
 * TERM, KILL after --stop-timeout) while the new one serves. Both get the same
 * listening sockets. A new run that exits, fails or is not ready in time is
 * stopped and the old one is the run again. A reload asked for while one is
 * under way runs once that one ends (several such make one).
 */
#ifndef DZ_RELOAD_H
#define DZ_RELOAD_H
#include "child.h"

enum reload_phase { RELOAD_IDLE, RELOAD_STARTING, RELOAD_DRAINING };

/* The serving run, as the monitor knows it. */
struct run_id {
	pid_t pid, pgid;
	int64_t started, started_wall;
};

HIDDEN enum reload_phase reload_phase(void);
/* Asked for: 1 when one should start now (none under way), else it is queued. */
HIDDEN void reload_ask(void);
/* Whether a queued reload waits to start. */
HIDDEN int reload_queued(void);
/* Starting one: the serving run set aside, spared by any stop of the new one. */
HIDDEN void reload_keep(const struct run_id *old);
/* The new run failed (outcome, with its number: code, signal, errno); the first reason of a reload is kept. */
HIDDEN void reload_failed(enum reload_outcome why, int n);
/*
 * The new run's tree is gone after a failure: the old run back in *run, or 0 when
 * it ended meanwhile. The reload is over.
 */
HIDDEN int reload_restore(struct run_id *run);
/* The new run (pid, pgid) is ready: the old one's tree gets TERM now, KILL at now + stop_ms. */
HIDDEN void reload_drain(pid_t pid, pid_t pgid, int64_t now, int64_t stop_ms);
/* One look at the draining tree when due; 1 once it is gone and the reload is over. */
HIDDEN int reload_tick(int64_t now);
/* When reload_tick is next due, or -1. */
HIDDEN int64_t reload_wake(void);
/* A stop of everything cuts a reload short: the old run is no longer spared, and is sent TERM. */
HIDDEN void reload_abandon(void);
/* pid was reaped: 1 if it was the old run's leader. */
HIDDEN int reload_reaped(pid_t pid);
/* The state fields (MONITOR_STATE_FIELDS): reloads, reloadOutcome, reloadPending, oldChild, oldStartedMs. */
HIDDEN int reload_fields(char *out, size_t size);
#endif

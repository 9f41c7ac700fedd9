/*
 * Liveness, for the monitor: a run that is alive but hung or bloated is stopped
 * like one that failed. Three checks, each off unless its option was given, and
 * each driven from the monitor's event loop by a deadline (`*_wake`, -1 for
 * none) and a look (`*_tick`, which says whether the run failed it):
 *   watchdog.c  --watchdog: WATCHDOG=1 on the notify socket at least every period
 *   health.c    --health: a tcp:, http:// or exec: probe every interval
 *   memory.c    --max-memory: the run's tree's resident memory, summed, or its cgroup's
 * Each keeps its state in static storage and allocates nothing.
 */
#ifndef DZ_LIVENESS_H
#define DZ_LIVENESS_H
#include "ready.h"

/*
 * What a look changed in the state status shows: a time only (the age of a ping, of a probe),
 * which the monitor writes at most once a second, or more, which it writes at once.
 */
enum { CHANGED_TIME = 1, CHANGED_STATE = 2 };
static inline void note_change(int *changed, int how)
{
	if (how > *changed)
		*changed = how;
}

/* A monitor key of its own: 1 when taken, 0 when not its key, -1 when the value is bad. */
HIDDEN int watchdog_setting(const char *k, const char *v);
HIDDEN int health_setting(const char *k, const char *v);
HIDDEN int memory_setting(const char *k, const char *v);

HIDDEN int watchdog_on(void);
/* WATCHDOG_USEC= and WATCHDOG_PID= for every run's environment, into env[0] and env[1]. */
HIDDEN void watchdog_env(char **env);
/* In a run's process, before its exec: WATCHDOG_PID is its own pid. */
HIDDEN void watchdog_child(void);
/* The run exec'd: its period starts now, as configured. */
HIDDEN void watchdog_arm(int64_t t);
HIDDEN void watchdog_disarm(void);
/* What the run said: 1 when it asked to fail (WATCHDOG=trigger); *changed: note_change. */
HIDDEN int watchdog_heard(const struct ready_event *e, int64_t t, int *changed);
HIDDEN int64_t watchdog_wake(void);
HIDDEN int watchdog_tick(int64_t t);
/* "sent no WATCHDOG=1 for 30s", for the line the restart policy writes. */
HIDDEN void watchdog_describe(char *out, size_t size);
HIDDEN void watchdog_field(char *out, size_t size);

HIDDEN int health_on(void);
/* The run is ready: probing starts now. `run` is its spec, which an exec: probe goes through too. */
HIDDEN void health_arm(const struct dz_spec *run, int64_t t);
/* No more probes for this run; one in flight is dropped (an exec: probe is KILLed). */
HIDDEN void health_disarm(void);
HIDDEN int health_pollfd(struct pollfd *p);
HIDDEN int64_t health_wake(void);
/* Advances the probe (revents: its socket's, or 0); 1 when the run is now unhealthy; *changed: note_change. */
HIDDEN int health_tick(int64_t t, short revents, int *changed);
/* A child was reaped (its waitid info): 1 when it was the exec: probe. */
HIDDEN int health_reaped(pid_t pid, int code, int status);
HIDDEN pid_t health_probe_pid(void);
HIDDEN void health_describe(char *out, size_t size);
HIDDEN void health_field(char *out, size_t size);
HIDDEN void health_probe_field(char *out, size_t size);

HIDDEN int memory_on(void);
/* --cgroup: its memory.current is read instead of the tree's sum, where the memory controller is on. */
HIDDEN void memory_cgroup(int dir);
HIDDEN void memory_arm(int64_t t);
HIDDEN void memory_disarm(void);
HIDDEN int64_t memory_wake(void);
/* Sums the tree (the monitor's children but `skip`, and theirs) when due, or reads the cgroup's: 1 when it is over the limit. */
HIDDEN int memory_tick(int64_t t, pid_t skip, int *changed);
HIDDEN void memory_describe(char *out, size_t size);
HIDDEN void memory_field(char *out, size_t size);

/* The monitor's: a child through the child path, in its own process group (monitor.c). */
HIDDEN pid_t monitor_spawn(const struct dz_spec *s, const int status[2], int run);
#endif

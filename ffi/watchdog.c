/* --watchdog: see liveness.h. */
#include "liveness.h"
#include "clock.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int64_t period;     /* as configured, ms; 0: off */
static int64_t run_period; /* this run's: WATCHDOG_USEC= changes it until the next run, as under systemd */
static int64_t last;       /* the last WATCHDOG=1 (or the exec), monotonic; 0: disarmed */
static int64_t last_wall;  /* the last WATCHDOG=1, for status; 0: none yet */
static int triggered;
static char usec_env[48], pid_env[32];

int watchdog_setting(const char *k, const char *v)
{
	if (strcmp(k, "watchdog"))
		return 0;
	char *end;
	long long ms = strtoll(v, &end, 10);
	if (*end || end == v || ms < 1 || ms > INT64_MAX / 4000)
		return -1;
	period = run_period = ms;
	return 1;
}

int watchdog_on(void)
{
	return period > 0;
}

void watchdog_env(char **env)
{
	snprintf(usec_env, sizeof usec_env, "WATCHDOG_USEC=%lld", (long long)period * 1000);
	strcpy(pid_env, "WATCHDOG_PID=");
	env[0] = usec_env;
	env[1] = pid_env;
}

void watchdog_child(void)
{
	snprintf(pid_env, sizeof pid_env, "WATCHDOG_PID=%d", (int)getpid());
}

void watchdog_arm(int64_t t)
{
	run_period = period;
	last = t;
	last_wall = 0;
	triggered = 0;
}

void watchdog_disarm(void)
{
	last = 0;
}

int watchdog_heard(const struct ready_event *e, int64_t t, int *changed)
{
	if (!period || !last || !e->watchdog)
		return 0;
	if (e->watchdog & WATCHDOG_PERIOD) {
		/* systemd's meaning: the new period counts from now, and 0 turns the watchdog off. */
		run_period = e->watchdog_usec / 1000 + (e->watchdog_usec % 1000 != 0);
		last = t;
		note_change(changed, CHANGED_STATE);
	}
	if (e->watchdog & WATCHDOG_PING) {
		last = t;
		last_wall = now_ms(CLOCK_REALTIME);
		note_change(changed, CHANGED_TIME);
	}
	if (e->watchdog & WATCHDOG_TRIGGER) {
		triggered = 1;
		last = 0;
		return 1;
	}
	return 0;
}

int64_t watchdog_wake(void)
{
	return last && run_period ? last + run_period : -1;
}

int watchdog_tick(int64_t t)
{
	if (!last || !run_period || t < last + run_period)
		return 0;
	last = 0;
	return 1;
}

void watchdog_describe(char *out, size_t size)
{
	if (triggered)
		snprintf(out, size, "sent WATCHDOG=trigger");
	else if (run_period % 1000)
		snprintf(out, size, "sent no WATCHDOG=1 for %lldms", (long long)run_period);
	else
		snprintf(out, size, "sent no WATCHDOG=1 for %llds", (long long)run_period / 1000);
}

void watchdog_field(char *out, size_t size)
{
	if (period)
		snprintf(out, size, "%lld:%lld", (long long)run_period, (long long)last_wall);
	else
		snprintf(out, size, "-");
}

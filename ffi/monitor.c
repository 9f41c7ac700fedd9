/*
 * The supervise monitor: keeps one program running, and stops all of it.
 *
 * A small static program, embedded in daemonize and exec'd from a memory file
 * by the launcher's child path, already detached (its own session, not its
 * leader, no terminal) and with the program's stdio. Every run of the program
 * goes through the same child path as a plain start (child.c). The monitor is
 * a child subreaper, so every orphan of the program's tree comes back to it to
 * be reaped, or stopped. It allocates nothing: all its state is below.
 *
 * Its arguments: key=value settings (MONITOR_KEYS in src/contract.ts), "--",
 * then the program's argv; its environment is the program's. src/supervise.ts
 * writes both.
 *
 * State for `daemonize status` lives in the attribute XATTR_MONITOR of the
 * pidfile, which the monitor holds open and locked for its whole life (its
 * fields: MONITOR_STATE_FIELDS in src/contract.ts), and the program's last
 * STATUS= (sd_notify) in XATTR_STATUS.
 *
 * With --cgroup (the key cgroup=PATH) every run is born in that cgroup, and the
 * monitor stays outside it: a stop ends everything in it, and it is removed
 * when the monitor exits.
 */
#include "cgroup.h"
#include "liveness.h"
#include "relay.h"
#include "reload.h"
#include "sockets.h"
#include "tree.h"
#include "clock.h"
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <time.h>
#include <unistd.h>

#define MAX_KEEP 1024
#define SCAN_MS 100
/* A time that moved alone (a ping's, a probe's) is written to the state at most this often. */
#define SAVE_MS 1000

enum policy { NEVER, ON_FAILURE, ALWAYS };
static const char *const STATE[] = STATE_NAMES;
static const char *const STEP[] = STEP_NAMES;
/* Why the tree is being stopped, in rising priority: a later, stronger reason wins. A reload's new run is the weakest. */
enum goal { NONE, NEW_RUN_FAILED, AFTER_RUN, RESTART_RUN, FIRST_FAILED, EXIT };

static struct dz_spec spec;
static gid_t groups[NGROUPS_MAX];
static int32_t keep[MAX_KEEP], listen_fds[MAX_KEEP];

static struct {
	enum policy restart;
	uint64_t success[4]; /* exit codes 0-255 that count as success */
	int64_t delay, max_delay, min_uptime, max_restarts, window, stop_timeout, ready_timeout;
	const char *notify; /* systemd's socket, told once the first run is ready */
} cfg = { ON_FAILURE, { 1 }, DEFAULT_RESTART_DELAY, DEFAULT_RESTART_MAX_DELAY, DEFAULT_MIN_UPTIME, DEFAULT_MAX_RESTARTS,
	    DEFAULT_RESTART_WINDOW, DEFAULT_STOP_TIMEOUT, DEFAULT_READY_TIMEOUT, NULL };

static pid_t self, run_pid, run_pgid;
static int run_status = -1; /* the run's status pipe, until it execs */
static int report_fd = -1, lock_fd = -1, sfd = -1;
static const char *pidfile, *cgroup_path;
static enum state state = STATE_STARTING;
static enum goal goal = NONE;
static int first = 1, first_failure = EXIT_OSERR, killing, stopping, last_code = -1, last_signal;
/* Why the monitor stopped this run, which had not ended (liveness.h); what the last failed run's was, for status. */
static enum failure failure;
static char last_failure[24] = "-";
/* A missed watchdog's SIGABRT is the program's to act on before the tree is sent TERM. */
static int aborting;
static const char *const FAILURE[] = FAILURE_NAMES;
/* The run has exec'd and is not ready yet; it was not ready, which fails it whatever its exit code. */
static int awaiting, unready;
/* reopen-logs or rotate-logs was asked for: answered (the count in the state goes up) once every log is done. */
static int reopen_asked;
static int64_t ready_by, probe_at;
/* When the state was last written, and when a change of a time only will be (0: none held back). */
static int64_t saved_at, save_at;
static int64_t run_started, run_started_wall, delay, restarts, counted_restarts, restart_at, kill_at, scan_at, reopens;
static int64_t restart_times[LIMIT_MAX_RESTARTS];

/* A line on the program's stderr: through the relay, between the program's own lines, or straight. */
static void say(const char *fmt, ...)
{
	char line[512];
	int n = snprintf(line, sizeof line, "daemonize[%d]: ", (int)self);
	va_list ap;
	va_start(ap, fmt);
	n += vsnprintf(line + n, sizeof line - (size_t)n, fmt, ap);
	va_end(ap);
	if (n >= (int)sizeof line - 1)
		n = sizeof line - 2;
	if (relay_say(line, (size_t)n))
		return;
	line[n++] = '\n';
	if (write(2, line, (size_t)n) < 0) {
		/* A full disk or a closed log: the monitor goes on, silently. */
	}
}

/* The settings of src/settings.ts, which go into the run's spec as they are. */
static const struct {
	const char *key;
	size_t at;
	int64_t count, min, max, leave;
} settings[] = RUN_SETTINGS;

/* What a run's failed step says: its errno, or for a setting, which one and how it failed. */
static void say_failed(const char *step, int err)
{
	int which = SETTING_OF(err);
	if (which < 0 || which >= (int)(sizeof settings / sizeof *settings))
		say("%s failed: %s", step, strerror(err));
	else if (SETTING_ERRNO(err))
		say("%s --%s failed: %s", step, settings[which].key, strerror(SETTING_ERRNO(err)));
	else
		say("%s: --%s was set, but reads back otherwise", step, settings[which].key);
}

/*
 * A reload needs the new run to say it is ready (notify, fd:N): a tcp: or file: probe would find
 * the old run's port or file and call the new run ready at once.
 */
static int reloadable(void)
{
	return ready_wanted() && !ready_probed();
}

static void save_state(void)
{
	char v[384], last[32] = "-";
	if (last_code >= 0)
		snprintf(last, sizeof last, "exit:%d", last_code);
	else if (last_signal)
		snprintf(last, sizeof last, "signal:%d", last_signal);
	int n = snprintf(v, sizeof v, "%s %d %lld %lld %s %lld %lld %d %d ", STATE[state], (int)run_pid, (long long)restarts,
			 (long long)run_started_wall, last, (long long)cfg.stop_timeout, (long long)reopens, (int)ready_mainpid(),
			 reloadable() ? 1 : ready_wanted() ? 2 : 0);
	n += reload_fields(v + n, sizeof v - (size_t)n);
	char watchdog[48], health[32], probe[48], memory[24];
	watchdog_field(watchdog, sizeof watchdog);
	health_field(health, sizeof health);
	health_probe_field(probe, sizeof probe);
	memory_field(memory, sizeof memory);
	n += snprintf(v + n, sizeof v - (size_t)n, " %s %s %s %s %s", watchdog, health, probe, memory, last_failure);
	if (lock_fd >= 0)
		fsetxattr(lock_fd, XATTR_MONITOR, v, (size_t)n, 0);
	saved_at = now_ms(CLOCK_MONOTONIC);
	save_at = 0;
}

/* After a liveness look: what status shows is written at once, a time that moved once a second at most. */
static void save_change(int changed, int64_t t)
{
	if (changed == CHANGED_STATE || (changed && t - saved_at >= SAVE_MS))
		save_state();
	else if (changed && !save_at)
		save_at = saved_at + SAVE_MS;
}

static void set_state(enum state s)
{
	state = s;
	save_state();
}

/* Removes the pidfile if the path still leads to the one this monitor holds. */
static void remove_pidfile(void)
{
	struct stat held, now;
	if (pidfile && lock_fd >= 0 && fstat(lock_fd, &held) == 0 && lstat(pidfile, &now) == 0 && held.st_dev == now.st_dev &&
	    held.st_ino == now.st_ino)
		unlink(pidfile);
}

/* The program's exit status as a process exit code: its code, or 128 + its signal, as a shell says it. */
static int last_status(void)
{
	return last_code >= 0 ? last_code : 128 + last_signal;
}

/* The tree is gone by now: the cgroup is empty. */
static void leave_cgroup(void)
{
	if (cgroup_path)
		cgroup_remove(cgroup_path);
}

static void finish(int code)
{
	relay_drain(1);
	ready_close();
	leave_cgroup();
	if (code == 0)
		remove_pidfile();
	_exit(code);
}

static void report_first(int step, long err)
{
	if (report_fd < 0)
		return;
	child_report(report_fd, step, err);
	if (step == STEP_READY) {
		close(report_fd);
		report_fd = -1;
	}
}

static void save_status(void);

pid_t monitor_spawn(const struct dz_spec *s, const int status[2], int run)
{
	int placed = 0;
	pid_t pid = s->cgroup_fd >= 0 ? cgroup_fork((int)s->cgroup_fd, &placed) : fork();
	if (pid == 0) {
		if (status[0] >= 0)
			close(status[0]);
		/* Born in the cgroup: no join (on the child's own copy of the spec). */
		struct dz_spec own = *s;
		if (placed)
			own.cgroup_fd = -1;
		setpgid(0, 0);
		if (run)
			watchdog_child();
		int step;
		long r = child_setup(&own, &step);
		/* The death signal is armed only now: if the monitor died before, no one would stop this child. */
		if (r == 0 && getppid() != self)
			_exit(RUN_NOT_STARTED);
		if (r == 0) {
			unblock_all();
			r = child_exec(&own);
			step = STEP_EXEC;
		}
		if (status[1] >= 0)
			child_report(status[1], step, r);
		_exit(RUN_NOT_STARTED);
	}
	if (pid > 0)
		setpgid(pid, pid);
	return pid;
}

static void start_run(void)
{
	int p[2];
	run_started = now_ms(CLOCK_MONOTONIC);
	run_started_wall = now_ms(CLOCK_REALTIME);
	unready = 0;
	long armed = ready_arm(&spec.ready_fd, &spec.ready_to);
	if (armed < 0)
		say("--ready: %s", strerror((int)-armed));
	if (ready_wanted())
		save_status();
	if (pipe2(p, O_CLOEXEC) < 0) {
		p[0] = p[1] = -1;
	}
	/* Sockets first: what ready_clear moves goes above fd:N, which is above them. */
	if (p[0] >= 0 && (handon_clear(&spec, p, 2) < 0 || ready_clear(p, 2) < 0)) {
		/* A pipe left where the child puts a socket or fd:N would be overwritten: go without it. */
		for (int i = 0; i < 2; i++)
			if (p[i] >= 0)
				close(p[i]);
		p[0] = p[1] = -1;
	}
	failure = FAILURE_NONE;
	pid_t pid = monitor_spawn(&spec, p, 1);
	if (p[1] >= 0)
		close(p[1]);
	ready_armed();
	if (pid < 0) {
		int e = errno;
		say("cannot start %s: %s", spec.path, strerror(e));
		if (p[0] >= 0)
			close(p[0]);
		run_pid = 0;
		last_code = RUN_NOT_STARTED;
		last_signal = 0;
		if (first) {
			report_first(STEP_FORK, -e);
			_exit(EXIT_OSERR);
		}
		goal = AFTER_RUN;
		return;
	}
	run_pid = run_pgid = pid;
	relay_run(pid);
	run_status = p[0];
	set_state(STATE_STARTING);
}

static void became_ready(void)
{
	awaiting = 0;
	if (first) {
		report_first(STEP_READY, 0);
		/* Under systemd Type=notify: the service is this monitor, ready now. */
		if (cfg.notify) {
			char text[64];
			snprintf(text, sizeof text, "READY=1\nMAINPID=%d", (int)self);
			if (ready_forward(cfg.notify, text) < 0)
				say("cannot tell %s that the service is ready: %s", cfg.notify, strerror(errno));
		}
	}
	first = 0;
	/* A reload's new run serves now: the old one drains. */
	if (reload_phase() == RELOAD_STARTING)
		reload_drain(run_pid, run_pgid, now_ms(CLOCK_MONOTONIC), cfg.stop_timeout);
	if (goal == NONE) {
		health_arm(&spec, now_ms(CLOCK_MONOTONIC));
		set_state(STATE_RUNNING);
	}
}

static void stop_tree(enum goal why);

/*
 * A run that had not ended failed a liveness check: its tree is stopped, and the run counts as
 * failed. A missed watchdog sends the program SIGABRT first, as systemd does, so that a core can
 * show where it hung; a stopped tree gets CONT after TERM, or TERM would wait for the KILL.
 */
static void stop_failed(enum failure why)
{
	if (goal != NONE || run_pid <= 0)
		return;
	failure = why;
	aborting = why == FAILURE_WATCHDOG;
	if (aborting)
		kill(run_pid, SIGABRT);
	stop_tree(AFTER_RUN);
	kill(-run_pgid, SIGCONT);
	kill(run_pid, SIGCONT);
	if (spec.cgroup_fd >= 0)
		cgroup_signal((int)spec.cgroup_fd, SIGCONT);
}

/* The run will not be ready: it is stopped, and counts as failed. */
static void not_ready(int step, int err)
{
	awaiting = 0;
	unready = 1;
	if (first) {
		report_first(step, -err);
		first_failure = step == STEP_TIMEOUT ? EXIT_READYTIMEOUT : EXIT_NOTREADY;
		first = 0;
		goal = FIRST_FAILED;
	}
	say("%s %s%s%s", spec.path, STEP[step], err ? ": " : "", err ? strerror(err) : "");
	if (reload_phase() == RELOAD_STARTING) {
		reload_failed(step == STEP_TIMEOUT ? RELOAD_TIMEOUT : step == STEP_ERRNO ? RELOAD_ERRNO : RELOAD_CLOSED, err);
		stop_tree(NEW_RUN_FAILED);
		return;
	}
	stop_tree(AFTER_RUN);
}

static void save_status(void)
{
	const char *text = ready_status();
	if (lock_fd >= 0)
		fsetxattr(lock_fd, XATTR_STATUS, text, strlen(text), 0);
}

/* What the program said, or what a probe found. */
static void hear(void)
{
	struct ready_event e;
	int64_t t = now_ms(CLOCK_MONOTONIC);
	if (ready_probed() && (!awaiting || t < probe_at)) {
		if (!watchdog_on())
			return;
		ready_listened(run_pid, &e);
	} else {
		probe_at = t + PROBE_MS;
		ready_check(run_pid, &e);
	}
	if (e.status)
		save_status();
	int changed = 0;
	if (watchdog_heard(&e, t, &changed)) {
		stop_failed(FAILURE_WATCHDOG);
		return;
	}
	save_change(changed, t);
	if (!awaiting)
		return;
	if (e.extend_ms)
		ready_by = t + e.extend_ms;
	if (e.ready)
		became_ready();
	else if (e.err)
		not_ready(STEP_ERRNO, e.err);
	else if (e.closed)
		not_ready(STEP_CLOSED, 0);
	else if (t >= ready_by)
		not_ready(STEP_TIMEOUT, 0);
}

/* The run's status pipe: EOF when it exec'd, or the step that failed. */
static void read_run_status(void)
{
	struct record rec;
	ssize_t n;
	do
		n = read(run_status, &rec, sizeof rec);
	while (n < 0 && errno == EINTR);
	close(run_status);
	run_status = -1;
	if (n == (ssize_t)sizeof rec) {
		const char *step = rec.step >= 0 && rec.step < (int)(sizeof STEP / sizeof *STEP) ? STEP[rec.step] : "?";
		/* A first run's failure is the launcher's to report, and its log must stay as empty as it was. */
		if ((!first || report_fd < 0) && rec.step == STEP_EXEC)
			say("%s %s: %s", step, spec.path, strerror(rec.err));
		else if (!first || report_fd < 0)
			say_failed(step, rec.err);
		if (reload_phase() == RELOAD_STARTING)
			reload_failed(RELOAD_FAILED, rec.err);
		if (first) {
			/* The launcher reports it and removes the pidfile once this monitor is gone;
			 * in the foreground there is no launcher, and the exit code says it as a shell would. */
			report_first(rec.step, -rec.err);
			first_failure = rec.step != STEP_EXEC ? EXIT_OSERR : rec.err == ENOENT ? EXIT_NOTFOUND : EXIT_CANTEXEC;
			goal = FIRST_FAILED;
		}
		return;
	}
	int64_t t = now_ms(CLOCK_MONOTONIC);
	watchdog_arm(t);
	memory_arm(t);
	if (ready_wanted()) {
		/* starting until it says it is ready */
		awaiting = 1;
		probe_at = t;
		ready_by = probe_at + cfg.ready_timeout;
		return;
	}
	became_ready();
}

/* The stop may act on the whole cgroup: not while a reload's failed new run is stopped, as the old run is in it too. */
static int whole_cgroup(void)
{
	return spec.cgroup_fd >= 0 && goal != NEW_RUN_FAILED;
}

static void stop_tree(enum goal why)
{
	if (why > goal)
		goal = why;
	/* Anything but a reload's own failure stops both runs. */
	if (why != NEW_RUN_FAILED && reload_phase() != RELOAD_IDLE)
		reload_abandon();
	if (stopping) {
		if (why != NEW_RUN_FAILED && state != STATE_STOPPING)
			set_state(STATE_STOPPING);
		return;
	}
	int64_t t = now_ms(CLOCK_MONOTONIC);
	watchdog_disarm();
	health_disarm();
	memory_disarm();
	stopping = 1;
	set_state(why == NEW_RUN_FAILED ? STATE_RELOADING : STATE_STOPPING);
	killing = 0;
	kill_at = t + cfg.stop_timeout;
	scan_at = t + SCAN_MS;
	tree_begin();
	/*
	 * A fatal TERM takes effect as it is sent, but a core-dumping ABRT only once the program runs to
	 * take it: TERM now would end a program that was not scheduled in between by TERM. The tree's
	 * TERM waits for the program to be gone (reap), or for the KILL at --stop-timeout.
	 */
	if (aborting) {
		scan_at = kill_at;
		return;
	}
	tree_signal(run_pid, run_pgid, SIGTERM);
	/* Those of the tree that are not yet the monitor's children, setsid or not. */
	if (whole_cgroup())
		cgroup_signal((int)spec.cgroup_fd, SIGTERM);
}

static int succeeded(void)
{
	return last_code >= 0 && (cfg.success[last_code >> 6] >> (last_code & 63) & 1);
}

/* As status reads it: exit:CODE or signal:NUMBER. */
static void describe_exit(char *out, size_t size)
{
	if (last_code >= 0)
		snprintf(out, size, "exit:%d", last_code);
	else
		snprintf(out, size, "signal:%d", last_signal);
}

/* What ended the run, for the line the policy writes. */
static void describe_end(char *out, size_t size)
{
	if (failure == FAILURE_WATCHDOG)
		watchdog_describe(out, size);
	else if (failure == FAILURE_HEALTH)
		health_describe(out, size);
	else if (failure == FAILURE_MEMORY)
		memory_describe(out, size);
	else if (last_code >= 0)
		snprintf(out, size, "exited with code %d", last_code);
	else
		snprintf(out, size, "was killed by signal %d", last_signal);
}

/* The run ended and its tree is gone: restart, wait, or end, as the policy says. */
static void decide(void)
{
	char how[128];
	describe_end(how, sizeof how);
	int ok = succeeded() && !unready && !failure;
	if (!ok) {
		if (failure)
			snprintf(last_failure, sizeof last_failure, "%s", FAILURE[failure]);
		else
			describe_exit(last_failure, sizeof last_failure);
	}
	if (cfg.restart == NEVER || (cfg.restart == ON_FAILURE && ok)) {
		if (ok)
			finish(0);
		set_state(STATE_FAILED);
		say("%s %s; not restarting (--restart %s)", spec.path, how, cfg.restart == NEVER ? "never" : "on-failure");
		finish(last_status());
	}
	int64_t t = now_ms(CLOCK_MONOTONIC);
	if (cfg.max_restarts > 0 && counted_restarts >= cfg.max_restarts &&
	    t - restart_times[(counted_restarts - cfg.max_restarts) % LIMIT_MAX_RESTARTS] < cfg.window) {
		set_state(STATE_FAILED);
		say("%s %s; giving up after %lld restarts within %lld ms", spec.path, how, (long long)cfg.max_restarts,
		    (long long)cfg.window);
		finish(last_status());
	}
	if (t - run_started >= cfg.min_uptime)
		delay = cfg.delay;
	restart_at = t + delay;
	say("%s %s; restarting in %lld ms", spec.path, how, (long long)delay);
	delay = delay * 2 > cfg.max_delay ? cfg.max_delay : delay * 2;
	set_state(STATE_BACKOFF);
}

/* `counted`: a restart the policy made, which the give-up window counts; one asked for is not. */
static void restart_now(int counted)
{
	if (counted)
		restart_times[counted_restarts++ % LIMIT_MAX_RESTARTS] = now_ms(CLOCK_MONOTONIC);
	restarts++;
	start_run();
}

/* Called whenever the tree may have emptied. */
static void tree_check(void)
{
	if (goal == NONE || run_pid > 0 || tree_left() || (whole_cgroup() && cgroup_populated((int)spec.cgroup_fd) > 0))
		return;
	/* What the ended run wrote last is in the log before anything else happens. */
	relay_drain(1);
	enum goal g = goal;
	goal = NONE;
	stopping = 0;
	switch (g) {
	case EXIT:
		finish(0);
		break;
	case FIRST_FAILED:
		ready_close();
		/* In the foreground no launcher is left to remove the pidfile this process published. */
		if (report_fd < 0)
			remove_pidfile();
		leave_cgroup();
		_exit(first_failure);
		break;
	case RESTART_RUN:
		delay = cfg.delay;
		restart_now(0);
		break;
	case AFTER_RUN:
		decide();
		break;
	case NEW_RUN_FAILED: {
		struct run_id old;
		if (!reload_restore(&old)) {
			/* The old run ended while the new one failed: the policy decides, as for any ended run. */
			decide();
			break;
		}
		run_pid = old.pid, run_pgid = old.pgid, run_started = old.started, run_started_wall = old.started_wall;
		relay_run(run_pid);
		set_state(STATE_RUNNING);
		break;
	}
	case NONE:
		break;
	}
}

static void reap(void)
{
	siginfo_t info;
	for (;;) {
		info.si_pid = 0;
		/* Looked at before it is reaped: an unreaped run still pins its process group for stop_tree. */
		if (waitid(P_ALL, 0, &info, WEXITED | WNOHANG | WNOWAIT) < 0 || info.si_pid == 0)
			return;
		pid_t pid = info.si_pid;
		health_reaped(pid, info.si_code, info.si_status);
		if (reload_reaped(pid)) {
			say("%s (pid %d, the run a reload replaces) %s %d", spec.path, (int)pid,
			    info.si_code == CLD_EXITED ? "exited with code" : "was killed by signal", info.si_status);
		} else if (pid == run_pid && reload_phase() == RELOAD_STARTING) {
			if (run_status >= 0)
				read_run_status();
			reload_failed(info.si_code == CLD_EXITED ? RELOAD_EXITED : RELOAD_KILLED, info.si_status);
			say("%s (the new run of a reload, pid %d) %s %d before it was ready; the old run serves on", spec.path, (int)pid,
			    info.si_code == CLD_EXITED ? "exited with code" : "was killed by signal", info.si_status);
			awaiting = 0;
			stop_tree(NEW_RUN_FAILED);
		} else if (pid == run_pid) {
			if (run_status >= 0)
				read_run_status();
			last_code = info.si_code == CLD_EXITED ? info.si_status : -1;
			last_signal = info.si_code == CLD_EXITED ? 0 : info.si_status;
			if (first) {
				/* Exited before it was ready, with the status the launcher reports; or died at exec, before
				 * the status pipe said so, and the launcher hears EOF without a report. */
				if (awaiting)
					report_first(STEP_EXITED, -(info.si_code == CLD_EXITED ? info.si_status << 8 : info.si_status));
				first_failure = awaiting ? EXIT_NOTREADY : first_failure;
				first = 0;
				goal = goal > FIRST_FAILED ? goal : FIRST_FAILED;
			}
			unready |= awaiting;
			awaiting = 0;
			stop_tree(AFTER_RUN);
			/* It took its ABRT: the rest of the tree is sent TERM now. */
			if (aborting) {
				aborting = 0;
				scan_at = now_ms(CLOCK_MONOTONIC);
			}
		}
		while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
			;
		if (pid == run_pid) {
			run_pid = 0;
			save_state();
		}
	}
}

/* The run's liveness checks that are due; the first one it fails stops it. */
static void check_liveness(int64_t t, short revents)
{
	int changed = 0;
	if (watchdog_tick(t))
		stop_failed(FAILURE_WATCHDOG);
	else if (health_tick(t, revents, &changed))
		stop_failed(FAILURE_HEALTH);
	else if (memory_tick(t, health_probe_pid(), &changed))
		stop_failed(FAILURE_MEMORY);
	if (goal == NONE)
		save_change(changed, t);
}

static void on_signal(const struct signalfd_siginfo *si)
{
	switch (si->ssi_signo) {
	case SIGCHLD:
		reap();
		break;
	case SIGTERM:
	case SIGINT:
	case SIGQUIT:
		stop_tree(EXIT);
		break;
	case CONTROL_SIGNAL:
		if (si->ssi_code != SI_QUEUE)
			break;
		if (si->ssi_int == CONTROL_RESTART)
			stop_tree(RESTART_RUN);
		else if (si->ssi_int == CONTROL_RELOAD && reloadable()) {
			reload_ask();
			save_state();
		}
		else if (si->ssi_int == CONTROL_REOPEN || si->ssi_int == CONTROL_ROTATE) {
			relay_reopen(si->ssi_int == CONTROL_ROTATE ? RENEW_ROTATE : RENEW_REOPEN);
			reopen_asked = 1;
		}
		else if (si->ssi_int > 0 && si->ssi_int < 65 && run_pid > 0)
			kill(run_pid, si->ssi_int);
		break;
	default:
		/* A signal the monitor's own write raised (SIGPIPE, SIGXFSZ) is not the program's to get. */
		if (run_pid > 0 && si->ssi_pid != (uint32_t)self)
			kill(run_pid, (int)si->ssi_signo);
	}
}

/* A new run beside the serving one, which is set aside until the new one is ready (reload.h). */
static void reload_start(void)
{
	struct run_id serving = { run_pid, run_pgid, run_started, run_started_wall };
	reload_keep(&serving);
	say("reloading %s: a new run beside pid %d", spec.path, (int)run_pid);
	start_run();
	if (run_pid > 0) {
		set_state(STATE_RELOADING);
		return;
	}
	/* It could not even fork: the serving run is the run again. */
	goal = NONE;
	reload_failed(RELOAD_FAILED, errno);
	reload_restore(&serving);
	run_pid = serving.pid, run_pgid = serving.pgid, run_started = serving.started, run_started_wall = serving.started_wall;
	relay_run(run_pid);
	set_state(STATE_RUNNING);
}

static int64_t number(const char *key, const char *v, int64_t min, int64_t max)
{
	char *end;
	errno = 0;
	long long n = strtoll(v, &end, 10);
	if (errno || end == v || *end || n < min || n > max) {
		say("bad setting %s=%s", key, v);
		_exit(EXIT_OSERR);
	}
	return n;
}

/* A comma list of numbers into out; returns how many. */
static int64_t numbers(const char *key, const char *v, int64_t max, void (*put)(int64_t i, int64_t n), int64_t limit)
{
	int64_t count = 0;
	char item[24];
	while (*v) {
		size_t len = strcspn(v, ",");
		if (len == 0 || len >= sizeof item || count >= limit) {
			say("bad setting %s", key);
			_exit(EXIT_OSERR);
		}
		memcpy(item, v, len);
		item[len] = 0;
		put(count++, number(key, item, 0, max));
		v += len + (v[len] == ',');
	}
	return count;
}

static void put_group(int64_t i, int64_t n) { groups[i] = (gid_t)n; }
static void put_keep(int64_t i, int64_t n) { keep[i] = (int32_t)n; }
static void put_listen(int64_t i, int64_t n) { listen_fds[i] = (int32_t)n; }
static void put_success(int64_t i, int64_t n)
{
	if (i == 0)
		memset(cfg.success, 0, sizeof cfg.success);
	cfg.success[n >> 6] |= (uint64_t)1 << (n & 63);
}

/* A setting of src/settings.ts: one number, or a comma list of `count` where an empty item is `leave`; 0 if k is not one. */
static int run_setting(const char *k, const char *v)
{
	for (size_t i = 0; i < sizeof settings / sizeof *settings; i++) {
		if (strcmp(k, settings[i].key))
			continue;
		int64_t *field = (int64_t *)((char *)&spec + settings[i].at);
		for (int64_t n = 0; n < settings[i].count; n++) {
			char item[24];
			size_t len = strcspn(v, ",");
			if (len >= sizeof item || (v[len] == ',') != (n + 1 < settings[i].count)) {
				say("bad setting %s", k);
				_exit(EXIT_OSERR);
			}
			memcpy(item, v, len);
			item[len] = 0;
			field[n] = len ? number(k, item, settings[i].min, settings[i].max) : settings[i].leave;
			v += len + (v[len] == ',');
		}
		return 1;
	}
	return 0;
}

static void configure(int argc, char **argv)
{
	int i = 1;
	for (size_t s = 0; s < sizeof settings / sizeof *settings; s++)
		for (int64_t n = 0; n < settings[s].count; n++)
			((int64_t *)((char *)&spec + settings[s].at))[n] = settings[s].leave;
	spec.uid = spec.gid = -1;
	spec.dir = "/";
	spec.exec_fd = spec.report_fd = -1;
	spec.pdeath = SIGKILL;
	spec.ready_fd = spec.ready_to = spec.cgroup_fd = -1;
	spec.stdio[0] = 0, spec.stdio[1] = 1, spec.stdio[2] = 2;
	for (; i < argc && strcmp(argv[i], "--") != 0; i++) {
		int r;
		/* Split without writing to argv, which ps shows as it is. */
		const char *eq = strchr(argv[i], '=');
		char k[32];
		size_t len = eq ? (size_t)(eq - argv[i]) : 0;
		if (!eq || len >= sizeof k) {
			say("bad setting %s", argv[i]);
			_exit(EXIT_OSERR);
		}
		memcpy(k, argv[i], len);
		k[len] = 0;
		const char *v = eq + 1;
		if (!strcmp(k, "report"))
			report_fd = (int)number(k, v, 3, INT_MAX);
		else if (!strcmp(k, "lock"))
			lock_fd = (int)number(k, v, 3, INT_MAX);
		else if (!strcmp(k, "pidfile"))
			pidfile = v;
		else if (!strcmp(k, "path"))
			spec.path = v;
		else if (!strcmp(k, "cgroup")) {
			cgroup_path = v;
			spec.cgroup_fd = open(v, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
			if (spec.cgroup_fd < 0) {
				say("cgroup %s: %s", v, strerror(errno));
				report_first(STEP_CGROUP, -errno);
				_exit(EXIT_OSERR);
			}
		}
		else if (!strcmp(k, "root"))
			spec.root = v;
		else if (!strcmp(k, "dir"))
			spec.dir = v;
		else if (!strcmp(k, "uid"))
			spec.uid = number(k, v, -1, 0xfffffffe);
		else if (!strcmp(k, "gid"))
			spec.gid = number(k, v, -1, 0xfffffffe);
		else if (!strcmp(k, "groups")) {
			spec.ngroups = numbers(k, v, 0xfffffffe, put_group, NGROUPS_MAX);
			spec.groups = groups;
		} else if (!strcmp(k, "listen")) {
			spec.nlisten = numbers(k, v, INT_MAX, put_listen, MAX_KEEP);
			spec.listen = listen_fds;
		} else if (!strcmp(k, "keep")) {
			spec.nkeep = numbers(k, v, INT_MAX, put_keep, MAX_KEEP);
			spec.keep = keep;
		} else if (!strcmp(k, "restart")) {
			cfg.restart = !strcmp(v, "always") ? ALWAYS : !strcmp(v, "never") ? NEVER : ON_FAILURE;
			if (cfg.restart == ON_FAILURE && strcmp(v, "on-failure")) {
				say("bad setting %s=%s", k, v);
				_exit(EXIT_OSERR);
			}
		} else if (!strcmp(k, "success-exit"))
			numbers(k, v, 255, put_success, 256);
		else if (!strcmp(k, "restart-delay"))
			cfg.delay = number(k, v, 0, INT64_MAX / 4);
		else if (!strcmp(k, "restart-max-delay"))
			cfg.max_delay = number(k, v, 0, INT64_MAX / 4);
		else if (!strcmp(k, "min-uptime"))
			cfg.min_uptime = number(k, v, 0, INT64_MAX / 4);
		else if (!strcmp(k, "max-restarts"))
			cfg.max_restarts = number(k, v, 0, LIMIT_MAX_RESTARTS);
		else if (!strcmp(k, "restart-window"))
			cfg.window = number(k, v, 0, INT64_MAX / 4);
		else if (!strcmp(k, "stop-timeout"))
			cfg.stop_timeout = number(k, v, 0, INT64_MAX / 4);
		else if (!strcmp(k, "ready")) {
			if (ready_config(v) < 0) {
				say("bad setting %s=%s", k, v);
				_exit(EXIT_OSERR);
			}
		} else if (!strcmp(k, "ready-timeout"))
			cfg.ready_timeout = number(k, v, 0, INT64_MAX / 4);
		else if (!strcmp(k, "notify"))
			cfg.notify = v;
		else if (run_setting(k, v))
			;
		else if ((r = watchdog_setting(k, v)) || (r = health_setting(k, v)) || (r = memory_setting(k, v))) {
			if (r < 0) {
				say("bad setting %s=%s", k, v);
				_exit(EXIT_OSERR);
			}
		} else {
			r = relay_setting(k, v);
			if (r <= 0) {
				say(r ? "bad setting %s=%s" : "unknown setting %s", k, v);
				_exit(EXIT_OSERR);
			}
		}
	}
	if (i + 1 >= argc || !spec.path) {
		say("no program to supervise");
		_exit(EXIT_OSERR);
	}
	spec.argv = argv + i + 1;
	extern char **environ;
	spec.envp = environ;
	delay = cfg.delay;
}

int main(int argc, char **argv)
{
	self = getpid();
	configure(argc, argv);
	memory_cgroup((int)spec.cgroup_fd);
	prctl(PR_SET_NAME, "daemonize", 0, 0, 0);
	prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0);
	/* Every signal is read from the signalfd, except those the kernel sends for a fault of the monitor's own. */
	sigset_t all;
	sigfillset(&all);
	for (int s = 32; s < 65; s++)
		sigaddset(&all, s);
	int sync[] = { SIGFPE, SIGILL, SIGSEGV, SIGBUS, SIGABRT, SIGTRAP, SIGSYS, SIGTTIN, SIGTTOU };
	for (size_t i = 0; i < sizeof sync / sizeof *sync; i++)
		sigdelset(&all, sync[i]);
	sigprocmask(SIG_SETMASK, &all, NULL);
	sfd = signalfd(-1, &all, SFD_NONBLOCK | SFD_CLOEXEC);
	if (sfd < 0) {
		say("signalfd: %s", strerror(errno));
		report_first(STEP_FORK, -errno);
		_exit(EXIT_OSERR);
	}
	int r = relay_start(&spec.stdio[1], &spec.stdio[2], spec.uid, spec.gid, spec.umask);
	if (r < 0) {
		say("log relay: %s", strerror((int)-r));
		report_first(STEP_STDIO, r);
		_exit(EXIT_OSERR);
	}
	if (watchdog_on())
		ready_listen();
	if (ready_wanted() || watchdog_on()) {
		static char notify_env[PATH_MAX + 32];
		r = ready_open(spec.uid, spec.gid, spec.root != NULL, notify_env, sizeof notify_env);
		if (r < 0) {
			say("--ready: %s", strerror((int)-r));
			report_first(STEP_PIPE, r);
			_exit(EXIT_OSERR);
		}
		if (notify_env[0]) {
			/* Every run's environment names the monitor's socket: built once, for the monitor's life. */
			size_t n = 0;
			while (spec.envp[n])
				n++;
			char **env = malloc((n + 4) * sizeof *env);
			if (!env)
				_exit(EXIT_OSERR);
			memcpy(env, spec.envp, n * sizeof *env);
			env[n++] = notify_env;
			if (watchdog_on()) {
				watchdog_env(env + n);
				n += 2;
			}
			env[n] = NULL;
			spec.envp = env;
		}
	}
	save_state();
	start_run();
	for (;;) {
		int64_t t = now_ms(CLOCK_MONOTONIC), wake = relay_wake(t);
		if (state == STATE_BACKOFF && goal == NONE && (wake < 0 || restart_at < wake))
			wake = restart_at;
		if (goal != NONE && (wake < 0 || (killing || scan_at < kill_at ? scan_at : kill_at) < wake))
			wake = killing || scan_at < kill_at ? scan_at : kill_at;
		int64_t draining = reload_wake();
		if (draining >= 0 && (wake < 0 || draining < wake))
			wake = draining;
		if (awaiting) {
			int64_t next = ready_probed() && probe_at < ready_by ? probe_at : ready_by, closing = ready_closing();
			if (closing && closing < next)
				next = closing;
			if (wake < 0 || next < wake)
				wake = next;
		}
		int64_t checks[] = { watchdog_wake(), health_wake(), memory_wake(), save_at ? late(save_at, SAVE_MS) : -1 };
		for (size_t i = 0; i < sizeof checks / sizeof *checks; i++)
			if (checks[i] >= 0 && (wake < 0 || checks[i] < wake))
				wake = checks[i];
		int timeout = wake < 0 ? -1 : wake <= t ? 0 : wake - t > INT_MAX ? INT_MAX : (int)(wake - t);
		struct pollfd p[7] = { { sfd, POLLIN, 0 }, { run_status, POLLIN, 0 } };
		int n = run_status >= 0 ? 2 : 1;
		int relayed = relay_pollfds(p + n);
		int told = run_pid > 0 ? ready_pollfd(p + n + relayed) : 0;
		int probing = health_pollfd(p + n + relayed + told);
		poll(p, (nfds_t)(n + relayed + told + probing), timeout);
		/* The status pipe first: a run that failed its exec has also sent SIGCHLD. */
		if (run_status >= 0 && p[1].revents)
			read_run_status();
		relay_ready(p + n, relayed);
		/* Only what has something to say is read: a liveness check's wake-up costs no more than its own work. */
		short heard = 0;
		for (int i = 0; i < told; i++)
			heard |= p[n + relayed + i].revents;
		if (run_pid > 0 && run_status < 0 && (awaiting || heard))
			hear();
		struct signalfd_siginfo si;
		while (p[0].revents && read(sfd, &si, sizeof si) == (ssize_t)sizeof si)
			on_signal(&si);
		t = now_ms(CLOCK_MONOTONIC);
		relay_tick(t);
		if (reopen_asked && !relay_reopening()) {
			reopen_asked = 0;
			reopens++;
			save_state();
		}
		if (goal != NONE) {
			if (!killing && t >= kill_at) {
				killing = 1;
				tree_signal(run_pid, run_pgid, SIGKILL);
				if (whole_cgroup())
					cgroup_signal((int)spec.cgroup_fd, SIGKILL);
				scan_at = t + SCAN_MS;
			}
			if (t >= scan_at) {
				tree_signal(run_pid, run_pgid, killing ? SIGKILL : SIGTERM);
				/* KILL to each, not cgroup.kill: after one, this kernel (6.18) kills every later child
				 * born in the cgroup with CLONE_INTO_CGROUP, as its kill count no longer matches. */
				if (killing && whole_cgroup())
					cgroup_signal((int)spec.cgroup_fd, SIGKILL);
				scan_at = t + SCAN_MS;
			}
			tree_check();
		} else if (state == STATE_BACKOFF && t >= restart_at)
			restart_now(1);
		else
			check_liveness(t, probing ? p[n + relayed + told].revents : 0);
		if (save_at && t >= save_at)
			save_state();
		if (reload_tick(t))
			save_state();
		if (reload_queued() && reload_phase() == RELOAD_IDLE && goal == NONE && state == STATE_RUNNING && run_pid > 0)
			reload_start();
	}
}

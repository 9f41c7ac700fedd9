/* Stopping a program's whole tree: see tree.h. */
#include "tree.h"
#include "proc.h"
#include <sys/wait.h>

/*
 * Those sent TERM in this stop, so that each gets it once; past this many, one
 * more is sent TERM at every look instead. A fixed array, as the monitor
 * allocates nothing: its pages become resident only as far as they are used.
 */
#define TREE_MAX 4096
static pid_t termed[TREE_MAX];
static int nterm, group_signalled;
/* The run a reload keeps out of this stop: its leader and its process group. */
static pid_t spare_pid, spare_pgid;

void tree_spare(pid_t pid, pid_t pgid)
{
	spare_pid = pid;
	spare_pgid = pgid;
}

static int spared(pid_t pid, pid_t pgrp)
{
	return spare_pid > 0 && (pid == spare_pid || pgrp == spare_pgid);
}

struct look {
	pid_t leader, pgid;
	int sig, found;
};

void tree_begin(void)
{
	nterm = 0;
	group_signalled = 0;
}

static int signal_child(pid_t pid, void *arg)
{
	struct look *l = arg;
	char state;
	pid_t ppid, pgrp = 0;
	int looked = proc_stat(pid, &state, &ppid, &pgrp);
	if (spared(pid, pgrp))
		return 0;
	if (looked < 0 || state == 'Z') {
		if (pid != l->leader) {
			waitpid(pid, NULL, WNOHANG);
			l->found++;
		}
		return 0;
	}
	l->found++;
	if (l->sig == SIGKILL) {
		kill(pid, SIGKILL);
		return 0;
	}
	/* The group's TERM reached it already. */
	if (group_signalled && pgrp == l->pgid)
		return 0;
	int seen = 0;
	for (int i = 0; i < nterm && !seen; i++)
		seen = termed[i] == pid;
	if (seen)
		return 0;
	kill(pid, SIGTERM);
	if (nterm < TREE_MAX)
		termed[nterm++] = pid;
	return 0;
}

int tree_signal(pid_t leader, pid_t pgid, int sig)
{
	if (leader > 0 && (sig == SIGKILL || !group_signalled)) {
		kill(-pgid, sig);
		kill(leader, sig);
		group_signalled = 1;
	}
	struct look l = { leader, pgid, sig, 0 };
	proc_children(signal_child, &l);
	return l.found;
}

static int any(pid_t pid, void *arg)
{
	(void)arg;
	char state;
	pid_t ppid, pgrp = 0;
	proc_stat(pid, &state, &ppid, &pgrp);
	return !spared(pid, pgrp);
}

int tree_left(void)
{
	return proc_children(any, NULL);
}

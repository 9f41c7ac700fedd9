/*
 * Stopping a program's whole tree, for the process that is its subreaper: the
 * launcher when its --ready wait fails, and the monitor. TERM to the program's
 * process group, only while the program, alive or not yet reaped, pins the
 * group's id (after that the number could name someone else's group), and once
 * to every other process that comes back to this one as an orphan; KILL to all
 * of it when the caller says. Children are always safe to signal, since their
 * pids cannot be reused until this process reaps them, and whatever left the
 * group stays a descendant, so it comes back here when its parent dies. It
 * allocates nothing, for the monitor.
 */
#ifndef DZ_TREE_H
#define DZ_TREE_H
#include "child.h"

/*
 * A reload's two runs: the one this stop spares (its leader, alive or not yet
 * reaped, and its process group; 0: none), which tree_signal leaves alone and
 * tree_left does not count. An orphan that left the spared run's group cannot be
 * told from the other run's.
 */
HIDDEN void tree_spare(pid_t pid, pid_t pgid);
/* A new stop: who the last one sent TERM is forgotten. */
HIDDEN void tree_begin(void);
/*
 * One look at the tree of `leader` (0 once it is reaped), whose process group is
 * pgid: with SIGTERM, TERM to the group and the leader if this stop has not sent
 * it yet, and to each child that is not in the group and was not sent it before;
 * with SIGKILL, KILL to the group and the leader, while it pins the group, and to
 * every child. Dead children are reaped, but the leader: its status is the
 * caller's, and it pins the group.
 *
 * Returns how many children it found, dead or alive, but a dead leader. A child
 * that dies during a look may have handed its own children to a thread's list
 * the look had read already: only two looks in a row that find none say that
 * nothing is left.
 */
HIDDEN int tree_signal(pid_t leader, pid_t pgid, int sig);
/*
 * Whether this process has a child left, dead or alive. One look is enough for
 * a process of one thread: a child hands its own children over before it can
 * be reaped.
 */
HIDDEN int tree_left(void);
#endif

/* What /proc says of a process, for the launcher and the monitor (never the child path). */
#ifndef DZ_PROC_H
#define DZ_PROC_H
#include "child.h"

/* Its state letter, parent and process group from /proc/PID/stat; 0, or -1 when it is gone. */
HIDDEN int proc_stat(pid_t pid, char *state, pid_t *ppid, pid_t *pgrp);
#endif

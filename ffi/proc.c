#include "proc.h"
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

int proc_stat(pid_t pid, char *state, pid_t *ppid, pid_t *pgrp)
{
	char path[32], buf[512];
	snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	ssize_t n = read(fd, buf, sizeof buf - 1);
	close(fd);
	if (n <= 0)
		return -1;
	buf[n] = 0;
	/* The name may hold any byte, ')' too: the fields start after the last one. */
	const char *end = strrchr(buf, ')');
	int parent, group;
	if (!end || sscanf(end + 1, " %c %d %d", state, &parent, &group) != 3)
		return -1;
	*ppid = parent;
	*pgrp = group;
	return 0;
}

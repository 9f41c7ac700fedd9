/* The child path's part of --listen: see sockets.h. Raw system calls only (sys.h). */
#include "sockets.h"
#include <fcntl.h>

/* The most sockets one daemon is handed: the protocol has no limit, but a child path cannot allocate. */
#define MAX_HANDON 1024
static int moved[MAX_HANDON];

long handon_clear(const struct dz_spec *s, int *fds, int n)
{
	int top = 3 + (int)s->nlisten;
	for (int i = 0; i < n; i++)
		if (fds[i] >= 3 && fds[i] < top) {
			long r = sys3(SYS_fcntl, fds[i], F_DUPFD_CLOEXEC, top);
			if (r < 0)
				return r;
			sys3(SYS_close, fds[i], 0, 0);
			fds[i] = (int)r;
		}
	return 0;
}

/* The pid into "LISTEN_PID=0000000000", whose ten digits the launcher left for it. */
static void write_pid(char *const *envp)
{
	static const char key[] = "LISTEN_PID=";
	for (; *envp; envp++) {
		char *e = *envp;
		int i = 0;
		while (key[i] && e[i] == key[i])
			i++;
		if (key[i])
			continue;
		char digits[12], *p = digits + sizeof digits;
		long pid = sys3(SYS_getpid, 0, 0, 0);
		*--p = 0;
		do
			*--p = (char)('0' + pid % 10);
		while (pid /= 10);
		while ((e[i++] = *p++))
			;
		return;
	}
}

long handon_place(const struct dz_spec *s, int64_t *ready_fd)
{
	int n = (int)s->nlisten;
	if (n <= 0)
		return 0;
	if (n > MAX_HANDON)
		return -EMFILE;
	/* Every source first goes above every target, so no move lands on a source not yet moved. */
	int above = 3 + n;
	if (s->ready_to >= above)
		above = (int)s->ready_to + 1;
	long r;
	if (*ready_fd >= 0) {
		if ((r = sys3(SYS_fcntl, *ready_fd, F_DUPFD_CLOEXEC, above)) < 0)
			return r;
		*ready_fd = r;
	}
	for (int i = 0; i < n; i++) {
		if ((r = sys3(SYS_fcntl, s->listen[i], F_DUPFD_CLOEXEC, above)) < 0)
			return r;
		moved[i] = (int)r;
	}
	for (int i = 0; i < n; i++)
		if ((r = sys3(SYS_dup3, moved[i], 3 + i, 0)) < 0)
			return r;
	write_pid(s->envp);
	return 0;
}

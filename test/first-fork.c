/*
 * Test program for --cgroup: its very first instruction forks (no libc, no
 * start-up code), then both processes wait to be judged from outside and
 * ended. The child can only be in the program's cgroup if the program was
 * there before it ran at all.
 */
#include "../ffi/sys.h"

void _start(void)
{
	/* clone(SIGCHLD) with no stack is fork on every architecture, aarch64 having no fork. */
	sys6(SYS_clone, SIGCHLD, 0, 0, 0, 0, 0);
	for (;;)
		sys6(SYS_ppoll, 0, 0, 0, 0, 0, 0);
}

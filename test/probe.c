/*
 * Test helper started as the daemon. It reports the two things only the process
 * itself can tell (whether root can be regained, whether a terminal can be
 * opened), then waits to be judged from the outside through /proc.
 *   PROBE_CLOSE_FDS=1  close every descriptor first, as many daemons do
 *   PROBE_EXIT=N       exit with N right after reporting
 *   PROBE_IGNORE_TERM  ignore SIGTERM, as a stuck daemon would
 *   PROBE_BIND=PORT    bind a TCP socket to 127.0.0.1:PORT and report "bind PORT: ok" or the error
 * SIGHUP, SIGUSR1 and SIGUSR2 are caught and reported as "signal N" lines.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static void caught(int sig)
{
	char line[] = "signal 00\n";
	line[7] = (char)('0' + sig / 10);
	line[8] = (char)('0' + sig % 10);
	(void)!write(1, line, sizeof line - 1);
}

int main(void)
{
	signal(SIGHUP, caught);
	signal(SIGUSR1, caught);
	signal(SIGUSR2, caught);
	if (getenv("PROBE_IGNORE_TERM"))
		signal(SIGTERM, SIG_IGN);
	int regained = setuid(0) == 0 && geteuid() == 0;
	int tty = open("/dev/tty", O_RDWR | O_NOCTTY);
	const char *tty_text = tty >= 0 ? "open" : strerror(errno);
	printf("probe pid=%d root=%s tty=%s\n", (int)getpid(), regained ? "regained" : "refused", tty_text);
	fflush(stdout);
	const char *port = getenv("PROBE_BIND");
	if (port) {
		struct sockaddr_in at = { .sin_family = AF_INET, .sin_port = htons((uint16_t)atoi(port)), .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
		int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
		printf("bind %s: %s\n", port, s >= 0 && bind(s, (struct sockaddr *)&at, sizeof at) == 0 ? "ok" : strerror(errno));
		fflush(stdout);
	}
	if (getenv("PROBE_CLOSE_FDS"))
		for (int fd = 0; fd < 1024; fd++)
			close(fd);
	if (getenv("PROBE_EXIT"))
		return atoi(getenv("PROBE_EXIT"));
	for (;;)
		pause();
}

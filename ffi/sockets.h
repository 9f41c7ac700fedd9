/*
 * --listen and socket activation. The launcher creates, binds and listens
 * (sockets.c, libc, before any fork or privilege drop); the child path hands
 * the sockets on as fds 3, 4, ... with LISTEN_PID set to its own pid
 * (handon.c, raw system calls, in the launcher's children and the monitor's runs).
 */
#ifndef DZ_SOCKETS_H
#define DZ_SOCKETS_H
#include "child.h"

/* Moves the sockets to 3, 4, ... (and the --ready fd, wherever it was, above them first); sets LISTEN_PID. 0 or -errno. */
HIDDEN long handon_place(const struct dz_spec *s, int64_t *ready_fd);
/* Moves each of fds that sits where a socket goes above them, close-on-exec: the starter's pipes must survive handon_place. 0 or -errno. */
HIDDEN long handon_clear(const struct dz_spec *s, int *fds, int n);
#endif

/*
 * What the TypeScript half does to processes (native.h): an argv or envp from
 * one block, the monitor's executable memory file, signals by pid or pidfd,
 * the monitor's queued control signal, and the sweep of what gone launchers left.
 */
#include "native.h"
#include "proc.h"
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

/*
 * Points out[0..n-1] at the n NUL-terminated strings packed in block, and
 * out[n] at NULL: one call builds an argv or envp of any size. -EINVAL unless
 * the block holds exactly n strings.
 */
int dz_split(const char *block, int64_t len, int64_t n, const char **out)
{
	const char *p = block, *end = block + len;
	for (int64_t i = 0; i < n; i++) {
		const char *nul = memchr(p, 0, (size_t)(end - p));
		if (!nul)
			return -EINVAL;
		out[i] = p;
		p = nul + 1;
	}
	out[n] = NULL;
	return p == end ? 0 : -EINVAL;
}

#ifndef MFD_EXEC
#define MFD_EXEC 0x0010U
#endif
/*
 * The monitor's image in an executable memory file, sealed so it cannot change
 * once written. Kernels before 6.3 know no MFD_EXEC (every memfd is executable
 * there); vm.memfd_noexec=2 refuses it with EACCES.
 */
int dz_memfd_exec(const char *name, const void *image, int64_t len)
{
	int fd = memfd_create(name, MFD_CLOEXEC | MFD_ALLOW_SEALING | MFD_EXEC);
	if (fd < 0 && errno == EINVAL)
		fd = memfd_create(name, MFD_CLOEXEC | MFD_ALLOW_SEALING);
	if (fd < 0)
		return -errno;
	for (int64_t off = 0; off < len;) {
		ssize_t n = write(fd, (const char *)image + off, (size_t)(len - off));
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			int e = n < 0 ? errno : EIO;
			close(fd);
			return -e;
		}
		off += n;
	}
	if (fcntl(fd, F_ADD_SEALS, F_SEAL_SEAL | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE) < 0) {
		int e = errno;
		close(fd);
		return -e;
	}
	return fd;
}

/* Queues sig with value to a process, through its pidfd when there is one (pidfd < 0: by pid). */
int dz_sigqueue(int pidfd, int pid, int sig, int value)
{
	siginfo_t info;
	memset(&info, 0, sizeof info);
	info.si_signo = sig;
	info.si_code = SI_QUEUE;
	info.si_pid = getpid();
	info.si_uid = getuid();
	info.si_value.sival_int = value;
	long r = pidfd >= 0 ? syscall(SYS_pidfd_send_signal, pidfd, sig, &info, 0) : syscall(SYS_rt_sigqueueinfo, pid, sig, &info);
	RET(r);
}

/* The temporary files in dir that launchers now gone left there (proc.h). */
void dz_sweep(const char *dir, const char *prefix, const char *suffix)
{
	proc_sweep(dir, prefix, suffix, 0, S_IFREG);
}

int dz_pidfd_open(int pid) { long r = syscall(SYS_pidfd_open, pid, 0); RET(r); }
int dz_pidfd_signal(int fd, int sig) { long r = syscall(SYS_pidfd_send_signal, fd, sig, NULL, 0); RET(r); }
int dz_kill(int pid, int sig) { int r = kill(pid, sig); RET(r); }

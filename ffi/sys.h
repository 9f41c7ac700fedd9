/*
 * Raw system calls, for code that runs where libc must not: a child that shares
 * the launcher's memory (clone(CLONE_VM)) would share its errno and locks too.
 * Each returns -errno and touches no memory but its arguments.
 */
#ifndef DZ_SYS_H
#define DZ_SYS_H
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <sys/syscall.h>
#include <sys/types.h>

/* The same numbers on every architecture. */
#ifndef SYS_close_range
#define SYS_close_range 436
#endif
#ifndef CLOSE_RANGE_CLOEXEC
#define CLOSE_RANGE_CLOEXEC (1U << 2)
#endif
#ifndef SYS_pidfd_open
#define SYS_pidfd_open 434
#endif
#ifndef SYS_pidfd_send_signal
#define SYS_pidfd_send_signal 424
#endif

static inline long sys6(long n, long a, long b, long c, long d, long e, long f)
{
#if defined(__x86_64__)
	register long r10 __asm__("r10") = d;
	register long r8 __asm__("r8") = e;
	register long r9 __asm__("r9") = f;
	long ret;
	__asm__ volatile("syscall"
			 : "=a"(ret)
			 : "a"(n), "D"(a), "S"(b), "d"(c), "r"(r10), "r"(r8), "r"(r9)
			 : "rcx", "r11", "memory");
	return ret;
#elif defined(__aarch64__)
	register long x8 __asm__("x8") = n;
	register long x0 __asm__("x0") = a;
	register long x1 __asm__("x1") = b;
	register long x2 __asm__("x2") = c;
	register long x3 __asm__("x3") = d;
	register long x4 __asm__("x4") = e;
	register long x5 __asm__("x5") = f;
	__asm__ volatile("svc 0" : "+r"(x0) : "r"(x8), "r"(x1), "r"(x2), "r"(x3), "r"(x4), "r"(x5) : "memory");
	return x0;
#else
#error "daemonize's child path supports x86_64 and aarch64"
#endif
}
#define sys3(n, a, b, c) sys6(n, (long)(a), (long)(b), (long)(c), 0, 0, 0)
#define sys4(n, a, b, c, d) sys6(n, (long)(a), (long)(b), (long)(c), (long)(d), 0, 0)

static inline void unblock_all(void)
{
	uint64_t none = 0;
	sys4(SYS_rt_sigprocmask, SIG_SETMASK, &none, 0, 8);
}

/* Every signal, glibc's internal 32 and 33 included (sigfillset leaves those out). */
static inline void block_all(uint64_t *old)
{
	uint64_t all = ~(uint64_t)0;
	sys4(SYS_rt_sigprocmask, SIG_SETMASK, &all, old, 8);
}

static inline void restore_mask(const uint64_t *old)
{
	sys4(SYS_rt_sigprocmask, SIG_SETMASK, old, 0, 8);
}
#endif

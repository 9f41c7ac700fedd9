/* Milliseconds on a clock, for the launcher's waits, the monitor and its relay. */
#ifndef DZ_CLOCK_H
#define DZ_CLOCK_H
#include <stdint.h>
#include <time.h>

/* CLOCK_MONOTONIC for deadlines and waits, which a change of the date must not move; CLOCK_REALTIME for a time shown. */
static inline int64_t now_ms(clockid_t clock)
{
	struct timespec t;
	clock_gettime(clock, &t);
	return (int64_t)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}
#endif

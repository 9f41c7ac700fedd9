/*
 * For the library's functions that TypeScript calls (ffi/native.ts binds them):
 * errno cannot be read reliably from JavaScript, so they return -errno instead.
 */
#ifndef DZ_NATIVE_H
#define DZ_NATIVE_H
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>

#define RET(x) return (x) < 0 ? -errno : (x)
#endif

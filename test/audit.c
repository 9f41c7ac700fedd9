/*
 * An LD_AUDIT library for test/loader.test.ts: says on stderr each daemonize
 * symbol the process binds, so that what a command binds is seen from outside.
 */
#define _GNU_SOURCE
#include <link.h>
#include <string.h>
#include <unistd.h>

unsigned la_version(unsigned version)
{
	return version;
}

unsigned la_objopen(struct link_map *map, Lmid_t lmid, uintptr_t *cookie)
{
	(void)map, (void)lmid, (void)cookie;
	return LA_FLG_BINDTO | LA_FLG_BINDFROM;
}

uintptr_t la_symbind64(Elf64_Sym *sym, unsigned ndx, uintptr_t *refcook, uintptr_t *defcook, unsigned *flags, const char *name)
{
	(void)ndx, (void)refcook, (void)defcook, (void)flags;
	if (!strncmp(name, "dz_", 3)) {
		char line[128];
		size_t n = strlen(name) < 100 ? strlen(name) : 100;
		memcpy(line, "bound ", 6);
		memcpy(line + 6, name, n);
		line[6 + n] = '\n';
		/* Nothing to do about a failed write but let the test see the line missing. */
		(void)!write(2, line, 7 + n);
	}
	return sym->st_value;
}

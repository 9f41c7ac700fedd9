/*
 * User and group lookups for the TypeScript half. They go through NSS, so LDAP
 * and sssd users work. Returns 1 found, 0 no such entry, -errno on lookup failure.
 */
#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/*
 * NSS lookups into a buffer that grows until the entry fits: a group with
 * thousands of members (LDAP, AD) needs more than any fixed size.
 */
#define NSS_START (1 << 14)
#define NSS_MAX (1 << 26)
#define NSS_LOOKUP(call, found)                                                  \
	char *buf = NULL;                                                        \
	int r = ERANGE;                                                          \
	for (size_t size = NSS_START; r == ERANGE && size <= NSS_MAX; size *= 2) { \
		char *bigger = realloc(buf, size);                               \
		if (!bigger) {                                                   \
			r = ENOMEM;                                              \
			break;                                                   \
		}                                                                \
		buf = bigger;                                                    \
		r = (call);                                                      \
	}                                                                        \
	if (r && r != ENOENT && r != ESRCH && r != EBADF && r != EPERM) {        \
		free(buf);                                                       \
		return -r;                                                       \
	}                                                                        \
	if (!(found)) {                                                          \
		free(buf);                                                       \
		return 0;                                                        \
	}

int dz_getpw(const char *name, int64_t uid, int64_t *ids, char *home, int64_t home_len, char *login, int64_t login_len)
{
	struct passwd pw, *p = NULL;
	NSS_LOOKUP(name ? getpwnam_r(name, &pw, buf, size, &p) : getpwuid_r((uid_t)uid, &pw, buf, size, &p), p)
	ids[0] = p->pw_uid;
	ids[1] = p->pw_gid;
	int fits = strlen(p->pw_dir) < (size_t)home_len && strlen(p->pw_name) < (size_t)login_len;
	if (fits) {
		strcpy(home, p->pw_dir);
		strcpy(login, p->pw_name);
	}
	free(buf);
	return fits ? 1 : -ENAMETOOLONG;
}

int dz_getgr(const char *name, int64_t *gid)
{
	struct group gr, *g = NULL;
	NSS_LOOKUP(getgrnam_r(name, &gr, buf, size, &g), g)
	*gid = g->gr_gid;
	free(buf);
	return 1;
}

/* The groups initgroups() would set; returns their count, or -1 if more than max. */
int dz_grouplist(const char *user, int64_t gid, gid_t *out, int max)
{
	int n = max;
	if (getgrouplist(user, (gid_t)gid, out, &n) < 0)
		return -1;
	return n;
}

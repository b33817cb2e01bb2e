/* posix_compat.h: the few POSIX calls the C tests use besides the library
 * (setenv, unsetenv, mkdtemp), for the Windows build, where tests/CMakeLists.txt
 * force-includes this header into every C test. Under Wine a path such as
 * "/tmp/x" names the drive that maps the Unix root, so the tests' folders
 * land where they do on Linux. */
#ifndef SIMDGAN_TESTS_POSIX_COMPAT_H
#define SIMDGAN_TESTS_POSIX_COMPAT_H

#include <direct.h>
#include <errno.h>
#include <process.h>
#include <stdlib.h>
#include <string.h>

static inline int setenv(const char *name, const char *value, int overwrite)
{
    if (!overwrite && getenv(name)) return 0;
    return _putenv_s(name, value) == 0 ? 0 : -1;
}

/* _putenv_s with an empty value removes the variable. */
static inline int unsetenv(const char *name) { return _putenv_s(name, "") == 0 ? 0 : -1; }

static inline char *mkdtemp(char *tmpl)
{
    size_t n = strlen(tmpl);
    if (n < 6 || strcmp(tmpl + n - 6, "XXXXXX") != 0) return errno = EINVAL, NULL;
    static unsigned counter;
    for (int tries = 0; tries < 100; tries++) {
        unsigned v = (unsigned)_getpid() * 2654435761u + ++counter * 40503u;
        for (int i = 0; i < 6; i++, v /= 36) tmpl[n - 6 + i] = "0123456789abcdefghijklmnopqrstuvwxyz"[v % 36];
        if (_mkdir(tmpl) == 0) return tmpl;
        if (errno != EEXIST) return NULL;
    }
    return NULL;
}

#endif

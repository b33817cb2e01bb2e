/* platform.h: the operating system behind one interface, POSIX (Linux,
 * macOS) or Win32 (MinGW-w64), so that no other file in src/ tests for the OS.
 *
 * Paths are UTF-8 strings everywhere; on Windows they are converted to UTF-16
 * for the wide-character APIs (so names outside the ANSI code page work), and
 * both separators and drive letters are accepted. Files are always opened in
 * binary mode. Functions return 0, or -1 with errno set, unless said
 * otherwise; on Windows, errno is mapped from GetLastError. */
#ifndef SIMDGAN_PLATFORM_H
#define SIMDGAN_PLATFORM_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "hw.h"

/* ---- the process ---------------------------------------------------------- */

/* Call first in main(): on Windows, replaces argv by the command line in
 * UTF-8 (the C runtime's is in the ANSI code page) and makes the console print
 * UTF-8; elsewhere nothing. */
void sg_platform_args(int *argc, char ***argv);

/* An environment variable as UTF-8, or NULL when unset. The pointer stays
 * valid until the calling thread's next sg_getenv. */
const char *sg_getenv(const char *name);

long sg_pid(void);
/* Whether process pid may still exist (1), or certainly does not (0). */
int sg_pid_alive(long pid);

/* Stop requests. fn(SIGINT) on Ctrl+C (SIGINT; CTRL_C_EVENT and
 * CTRL_BREAK_EVENT), fn(SIGTERM) on SIGTERM or, on Windows, a closed console,
 * a logoff or a shutdown, where the process is then given a few seconds to
 * finish its step and write its state. fn runs in a signal handler (POSIX) or
 * in a thread of its own (Windows): it may set a flag, remove files and
 * _exit. A closed stdout makes writes fail with EPIPE instead of killing the
 * process. Installations nest (up to 4 deep); sg_stop_pop restores the one
 * before. */
void sg_stop_push(void (*fn)(int sig));
void sg_stop_pop(void);

/* 1 when f is a terminal that takes ANSI escape sequences (on Windows, a
 * console that accepts virtual-terminal processing), else 0. */
int sg_term_ansi(FILE *f);

/* ---- memory -------------------------------------------------------------- */

/* align a power of two >= sizeof(void *); NULL when out of memory. Free with
 * sg_aligned_free only (on Windows, free() on it is an error). */
void *sg_aligned_alloc(size_t align, size_t bytes);
void sg_aligned_free(void *p);

/* ---- files and folders --------------------------------------------------- */

/* fopen with a UTF-8 path; mode is one of "rb", "wb", "ab". On Windows the
 * file may be renamed over or removed while open (FILE_SHARE_DELETE). */
FILE *sg_fopen(const char *path, const char *mode);

/* A file descriptor for reading: binary, close-on-exec, and non-blocking on
 * POSIX so that a FIFO never blocks the open (sg_fstat then refuses it). */
int sg_open_read(const char *path);
/* pread: reads at offset off without moving the descriptor's position; the
 * bytes read, or -1 with errno. */
long long sg_pread(int fd, void *buf, size_t n, uint64_t off);

typedef enum sg_kind {
    SG_KIND_FILE,
    SG_KIND_DIR,
    SG_KIND_LINK,   /* only from sg_stat with follow = 0 */
    SG_KIND_FIFO,
    SG_KIND_SOCKET,
    SG_KIND_CHAR,
    SG_KIND_BLOCK,
    SG_KIND_OTHER
} sg_kind;

typedef struct sg_file_info {
    sg_kind kind;
    uint64_t size;  /* bytes, for a regular file */
} sg_file_info;

/* What path names; follow = 0 describes a symlink itself (lstat). errno
 * ENOENT, ENOTDIR or ELOOP as POSIX sets them. */
int sg_stat(const char *path, int follow, sg_file_info *st);
int sg_fstat(int fd, sg_file_info *st);

/* The file's data and size on the disk (fsync; FlushFileBuffers), after
 * fflush. */
int sg_fsync(FILE *f);
/* The folder's entries on the disk (fsync of the folder). A file system that
 * cannot sync a folder (EINVAL, EROFS) counts as done; on Windows NTFS
 * journals the rename itself and there is nothing to sync. */
int sg_sync_dir(const char *dir);
/* Atomic rename of from over to, replacing it if it exists (rename;
 * MoveFileExW with MOVEFILE_REPLACE_EXISTING | MOVEFILE_WRITE_THROUGH). On
 * Windows a file another program holds open cannot be replaced: the rename
 * waits up to 2 s for it to be closed, then fails with EACCES. */
int sg_replace(const char *from, const char *to);
/* Removes a file. Async-signal-safe on POSIX (unlink). On Windows a file
 * opened by sg_fopen is removed when its last handle closes. */
int sg_remove(const char *path);
/* Creates one folder (mode 0777 before the umask). */
int sg_mkdir_one(const char *path);
/* Removes an empty folder. */
int sg_rmdir(const char *path);
/* Free bytes for this user on the file system holding path. */
int sg_free_bytes(const char *path, uint64_t *bytes);

/* A folder's entries, "." and ".." left out. sg_dir_next returns a name
 * valid until the next call, or NULL at the end. */
typedef struct sg_dir sg_dir;
sg_dir *sg_dir_open(const char *path);
const char *sg_dir_next(sg_dir *d);
void sg_dir_close(sg_dir *d);

/* One process per folder: an exclusive lock on the file path (flock;
 * LockFileEx on a byte far past the PID, so that the PID stays readable),
 * which then holds the locker's PID. Held until sg_unlock or the end of the
 * process. Returns SG_LOCK_OK (*lock set), SG_LOCK_BUSY (another process
 * holds it: *holder is its PID, 0 if unreadable), or a negative SG_LOCK_E*
 * with errno: the file could not be created, locked, or written. */
typedef intptr_t sg_lock;
#define SG_NO_LOCK ((sg_lock)-1)
enum { SG_LOCK_OK = 0, SG_LOCK_BUSY = 1, SG_LOCK_EOPEN = -1, SG_LOCK_ELOCK = -2,
       SG_LOCK_EWRITE = -3 };
int sg_lock_file(const char *path, sg_lock *lock, long *holder);
void sg_unlock(sg_lock lock);

/* ---- where the program is ------------------------------------------------- */

/* The folder of the running executable (/proc/self/exe; GetModuleFileNameW);
 * -1 when unknown. */
int sg_exe_dir(char *out, size_t cap);
/* The folder of the shared library or executable holding code address addr
 * (dladdr; GetModuleHandleExW); -1 when unknown. */
int sg_module_dir(const void *addr, char *out, size_t cap);

/* ---- the machine ------------------------------------------------------------ */

/* Cores, hardware threads and cache sizes from the OS (sysconf and sysfs on
 * Linux, GetLogicalProcessorInformationEx on Windows); figures it cannot
 * tell are left 0. Sets hw->source. */
void sg_os_topology(sg_hw *hw);

#endif

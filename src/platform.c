/* platform.c: the OS-specific code of simdgan, POSIX first, then Win32
 * (platform.h says what each function promises). The rest of src/ is
 * portable C on top of these. */
#if !defined(_WIN32)
#define _GNU_SOURCE /* dladdr, O_CLOEXEC, flock */
#endif
#include "platform.h"

#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

/* Stop handlers installed, innermost last (sg_stop_push). */
#define STOP_DEPTH 4

#if !defined(_WIN32)
/* ======================================================================= */
/* POSIX                                                                    */
/* ======================================================================= */
#include <dirent.h>
#include <dlfcn.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

void sg_platform_args(int *argc, char ***argv)
{
    (void)argc, (void)argv;
}

const char *sg_getenv(const char *name) { return getenv(name); }

long sg_pid(void) { return (long)getpid(); }

int sg_pid_alive(long pid) { return kill((pid_t)pid, 0) == 0 || errno != ESRCH; }

static struct {
    struct sigaction intr, term, pipe;
} stop_saved[STOP_DEPTH];
static int stop_depth;

void sg_stop_push(void (*fn)(int sig))
{
    if (stop_depth == STOP_DEPTH) abort(); /* a programming error: nesting is bounded */
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = fn;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESTART;
    sigaction(SIGINT, &sa, &stop_saved[stop_depth].intr);
    sigaction(SIGTERM, &sa, &stop_saved[stop_depth].term);
    /* A closed stdout (simdgan train | head -1) must not kill the run: the
     * write fails with EPIPE instead. */
    sa.sa_handler = SIG_IGN;
    sigaction(SIGPIPE, &sa, &stop_saved[stop_depth].pipe);
    stop_depth++;
}

void sg_stop_pop(void)
{
    if (stop_depth == 0) return;
    stop_depth--;
    sigaction(SIGINT, &stop_saved[stop_depth].intr, NULL);
    sigaction(SIGTERM, &stop_saved[stop_depth].term, NULL);
    sigaction(SIGPIPE, &stop_saved[stop_depth].pipe, NULL);
}

int sg_term_ansi(FILE *f) { return isatty(fileno(f)); }

void *sg_aligned_alloc(size_t align, size_t bytes)
{
    void *p = NULL;
    return posix_memalign(&p, align, bytes ? bytes : align) == 0 ? p : NULL;
}

void sg_aligned_free(void *p) { free(p); }

FILE *sg_fopen(const char *path, const char *mode) { return fopen(path, mode); }

int sg_open_read(const char *path)
{
    return open(path, O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
}

long long sg_pread(int fd, void *buf, size_t n, uint64_t off)
{
    ssize_t r;
    do r = pread(fd, buf, n, (off_t)off);
    while (r < 0 && errno == EINTR);
    return r;
}

static sg_kind kind_of(mode_t m)
{
    return S_ISREG(m) ? SG_KIND_FILE : S_ISDIR(m) ? SG_KIND_DIR : S_ISLNK(m) ? SG_KIND_LINK
         : S_ISFIFO(m) ? SG_KIND_FIFO : S_ISSOCK(m) ? SG_KIND_SOCKET : S_ISCHR(m) ? SG_KIND_CHAR
         : S_ISBLK(m) ? SG_KIND_BLOCK : SG_KIND_OTHER;
}

int sg_stat(const char *path, int follow, sg_file_info *info)
{
    struct stat st;
    if ((follow ? stat(path, &st) : lstat(path, &st)) != 0) return -1;
    info->kind = kind_of(st.st_mode);
    info->size = (uint64_t)st.st_size;
    return 0;
}

int sg_fstat(int fd, sg_file_info *info)
{
    struct stat st;
    if (fstat(fd, &st) != 0) return -1;
    info->kind = kind_of(st.st_mode);
    info->size = (uint64_t)st.st_size;
    return 0;
}

int sg_fsync(FILE *f) { return fsync(fileno(f)); }

int sg_sync_dir(const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return -1;
    int rc = fsync(fd), e = errno;
    close(fd);
    if (rc != 0 && e != EINVAL && e != EROFS) {
        errno = e;
        return -1;
    }
    return 0;
}

int sg_replace(const char *from, const char *to) { return rename(from, to); }

int sg_remove(const char *path) { return unlink(path); }

int sg_mkdir_one(const char *path) { return mkdir(path, 0777); }

int sg_rmdir(const char *path) { return rmdir(path); }

int sg_free_bytes(const char *path, uint64_t *bytes)
{
    struct statvfs fs;
    if (statvfs(path, &fs) != 0) return -1;
    *bytes = (uint64_t)fs.f_bavail * fs.f_frsize;
    return 0;
}

struct sg_dir {
    DIR *d;
};

sg_dir *sg_dir_open(const char *path)
{
    DIR *d = opendir(path);
    if (!d) return NULL;
    sg_dir *h = malloc(sizeof *h);
    if (!h) {
        closedir(d);
        errno = ENOMEM;
        return NULL;
    }
    h->d = d;
    return h;
}

const char *sg_dir_next(sg_dir *h)
{
    struct dirent *e;
    while ((e = readdir(h->d)))
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) return e->d_name;
    return NULL;
}

void sg_dir_close(sg_dir *h)
{
    if (!h) return;
    closedir(h->d);
    free(h);
}

int sg_lock_file(const char *path, sg_lock *lock, long *holder)
{
    int f = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0666);
    if (f < 0) return SG_LOCK_EOPEN;
    if (flock(f, LOCK_EX | LOCK_NB) != 0) {
        int e = errno;
        char buf[32] = {0};
        ssize_t n = pread(f, buf, sizeof buf - 1, 0);
        *holder = n > 0 ? strtol(buf, NULL, 10) : 0;
        close(f);
        errno = e;
        return e == EWOULDBLOCK ? SG_LOCK_BUSY : SG_LOCK_ELOCK;
    }
    char pid[32];
    int len = snprintf(pid, sizeof pid, "%ld\n", sg_pid());
    if (ftruncate(f, 0) != 0 || pwrite(f, pid, (size_t)len, 0) != len) {
        int e = errno;
        close(f);
        errno = e;
        return SG_LOCK_EWRITE;
    }
    *lock = f;
    return SG_LOCK_OK;
}

void sg_unlock(sg_lock lock)
{
    if (lock != SG_NO_LOCK) close((int)lock);
}

static int dir_of(const char *file, char *out, size_t cap)
{
    const char *slash = strrchr(file, '/');
    size_t n = slash ? (size_t)(slash - file) : 0;
    if (!slash || n >= cap) return -1;
    memcpy(out, file, n);
    out[n] = 0;
    return 0;
}

int sg_exe_dir(char *out, size_t cap)
{
    char exe[4096];
    ssize_t len = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (len <= 0) return -1;
    exe[len] = 0;
    return dir_of(exe, out, cap);
}

int sg_module_dir(const void *addr, char *out, size_t cap)
{
    Dl_info so;
    if (!dladdr((void *)addr, &so) || !so.dli_fname) return -1;
    return dir_of(so.dli_fname, out, cap);
}

static size_t sysfs_cache(int index)
{
    char path[128];
    snprintf(path, sizeof path, "/sys/devices/system/cpu/cpu0/cache/index%d/size", index);
    FILE *f = fopen(path, "r");
    if (!f) return 0;
    unsigned long v = 0;
    char unit = 0;
    int n = fscanf(f, "%lu%c", &v, &unit);
    fclose(f);
    if (n < 1) return 0;
    return (size_t)v * (unit == 'K' ? 1024u : unit == 'M' ? 1024u * 1024u : 1u);
}

void sg_os_topology(sg_hw *hw)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    hw->cores = hw->pus = n > 0 ? (int)n : 1;
    hw->l1d = sysfs_cache(0);
    hw->l2 = sysfs_cache(2);
    hw->l3 = sysfs_cache(3);
    hw->l3_cores = hw->cores;
    hw->source = "sysconf";
}

#else
/* ======================================================================= */
/* Win32                                                                    */
/* ======================================================================= */
#include <windows.h>
#include <fcntl.h>
#include <io.h>
#include <shellapi.h>
#include <sys/stat.h>

/* MinGW-w64's fmaf (libmingwex) rounds (double)x * y + z to double and then
 * to float: two roundings, where a fused multiply-add has one. It differs
 * from glibc's in a few cases per thousand random operands, and the
 * unfused Adam (src/model.c) and the tests' references call fmaf: this
 * definition, linked before libmingwex, gives the Windows build the fused
 * result, so its bits are the Linux build's. x * y is exact in double (48
 * significant bits), so s = x * y + z is rounded once; rounding s again to
 * float can only go wrong when s lies exactly halfway between two floats
 * while the sum was inexact: then s moves one double ulp toward the exact
 * sum (whose remainder the two-sum gives) and rounds the right way. */
float fmaf(float x, float y, float z)
{
    double p = (double)x * (double)y, s = p + (double)z;
    uint64_t b;
    memcpy(&b, &s, sizeof b);
    int e = (int)(b >> 52 & 0x7ff);
    /* Low bits of s below the float's precision: 29, more where the float
     * is subnormal (its ulp stays 2^-149). */
    int drop = e >= 1023 - 126 ? 29 : 926 - e;
    if (e == 0x7ff || drop > 52) return (float)s;
    uint64_t mask = ((uint64_t)1 << drop) - 1, half = (uint64_t)1 << (drop - 1);
    if ((b & mask) != half) return (float)s;
    double t = s - p, rest = (p - (s - t)) + ((double)z - t); /* x * y + z - s, exactly */
    if (rest == 0.0) return (float)s;
    b += (rest > 0.0) == (s > 0.0) ? 1 : (uint64_t)-1;
    memcpy(&s, &b, sizeof s);
    return (float)s;
}

/* UTF-8 to a malloc'ed UTF-16 string, NULL (errno EINVAL) when not UTF-8. */
static wchar_t *widen(const char *s)
{
    int n = MultiByteToWideChar(CP_UTF8, MB_ERR_INVALID_CHARS, s, -1, NULL, 0);
    wchar_t *w = n > 0 ? malloc((size_t)n * sizeof *w) : NULL;
    if (!w || MultiByteToWideChar(CP_UTF8, MB_ERR_INVALID_CHARS, s, -1, w, n) != n) {
        free(w);
        errno = n > 0 ? ENOMEM : EINVAL;
        return NULL;
    }
    return w;
}

/* UTF-16 to UTF-8 into out; -1 when it does not fit. */
static int narrow(const wchar_t *w, char *out, size_t cap)
{
    int n = WideCharToMultiByte(CP_UTF8, 0, w, -1, out, cap > INT_MAX ? INT_MAX : (int)cap, NULL,
                                NULL);
    return n > 0 ? 0 : -1;
}

/* errno from GetLastError, for the messages strerror words. */
static int set_errno(void)
{
    switch (GetLastError()) {
    case ERROR_FILE_NOT_FOUND:
    case ERROR_PATH_NOT_FOUND:
    case ERROR_INVALID_DRIVE:
    case ERROR_BAD_NETPATH:
    case ERROR_BAD_PATHNAME:
    case ERROR_INVALID_NAME: errno = ENOENT; break;
    case ERROR_ACCESS_DENIED:
    case ERROR_SHARING_VIOLATION:
    case ERROR_LOCK_VIOLATION:
    case ERROR_WRITE_PROTECT: errno = EACCES; break;
    case ERROR_ALREADY_EXISTS:
    case ERROR_FILE_EXISTS: errno = EEXIST; break;
    case ERROR_DISK_FULL:
    case ERROR_HANDLE_DISK_FULL: errno = ENOSPC; break;
    case ERROR_NOT_ENOUGH_MEMORY:
    case ERROR_OUTOFMEMORY: errno = ENOMEM; break;
    case ERROR_DIRECTORY: errno = ENOTDIR; break;
    case ERROR_DIR_NOT_EMPTY: errno = ENOTEMPTY; break;
    case ERROR_FILENAME_EXCED_RANGE: errno = ENAMETOOLONG; break;
    case ERROR_CANT_RESOLVE_FILENAME: errno = ELOOP; break; /* a symlink loop */
    default: errno = EIO; break;
    }
    return -1;
}

void sg_platform_args(int *argc, char ***argv)
{
    SetConsoleOutputCP(CP_UTF8);
    int n;
    wchar_t **w = CommandLineToArgvW(GetCommandLineW(), &n);
    if (!w) return;
    char **a = malloc(((size_t)n + 1) * sizeof *a);
    if (!a) return;
    for (int i = 0; i < n; i++) {
        int len = WideCharToMultiByte(CP_UTF8, 0, w[i], -1, NULL, 0, NULL, NULL);
        a[i] = len > 0 ? malloc((size_t)len) : NULL;
        if (!a[i] || WideCharToMultiByte(CP_UTF8, 0, w[i], -1, a[i], len, NULL, NULL) != len)
            return; /* keep the C runtime's argv */
    }
    a[n] = NULL;
    LocalFree(w);
    *argc = n;
    *argv = a; /* for the life of the process */
}

const char *sg_getenv(const char *name)
{
    static _Thread_local char value[8192];
    wchar_t *wn = widen(name);
    const wchar_t *w = wn ? _wgetenv(wn) : NULL;
    free(wn);
    if (!w) return NULL;
    return narrow(w, value, sizeof value) == 0 ? value : getenv(name);
}

long sg_pid(void) { return (long)GetCurrentProcessId(); }

int sg_pid_alive(long pid)
{
    HANDLE h = OpenProcess(PROCESS_QUERY_LIMITED_INFORMATION, FALSE, (DWORD)pid);
    if (!h) return GetLastError() != ERROR_INVALID_PARAMETER;
    DWORD code = 0;
    int alive = !GetExitCodeProcess(h, &code) || code == STILL_ACTIVE;
    CloseHandle(h);
    return alive;
}

/* The console's control events, mapped to the signals train.c handles. The
 * handler runs in a thread the system starts. After Ctrl+C it returns at
 * once; after a close, logoff or shutdown the process ends when the handler
 * returns, so it waits there (Windows allows about 5 s) while the main
 * thread finishes its step, writes the state and exits. */
static void (*volatile stop_fn[STOP_DEPTH])(int);
static volatile LONG stop_depth;

static BOOL WINAPI on_console(DWORD event)
{
    LONG d = stop_depth;
    void (*fn)(int) = d > 0 ? stop_fn[d - 1] : NULL;
    if (!fn) return FALSE;
    switch (event) {
    case CTRL_C_EVENT:
    case CTRL_BREAK_EVENT: fn(SIGINT); return TRUE;
    case CTRL_CLOSE_EVENT:
    case CTRL_LOGOFF_EVENT:
    case CTRL_SHUTDOWN_EVENT:
        fn(SIGTERM);
        Sleep(10000);
        return TRUE;
    default: return FALSE;
    }
}

void sg_stop_push(void (*fn)(int sig))
{
    if (stop_depth == STOP_DEPTH) abort(); /* a programming error: nesting is bounded */
    stop_fn[stop_depth] = fn;
    if (InterlockedIncrement(&stop_depth) == 1) SetConsoleCtrlHandler(on_console, TRUE);
}

void sg_stop_pop(void)
{
    if (stop_depth == 0) return;
    if (InterlockedDecrement(&stop_depth) == 0) SetConsoleCtrlHandler(on_console, FALSE);
}

int sg_term_ansi(FILE *f)
{
    HANDLE h = (HANDLE)_get_osfhandle(_fileno(f));
    DWORD mode;
    if (h == INVALID_HANDLE_VALUE || !GetConsoleMode(h, &mode)) return 0;
    /* ENABLE_VIRTUAL_TERMINAL_PROCESSING (Windows 10 1511 and later). */
    return (mode & 0x0004) || SetConsoleMode(h, mode | 0x0004);
}

void *sg_aligned_alloc(size_t align, size_t bytes)
{
    return _aligned_malloc(bytes ? bytes : align, align);
}

void sg_aligned_free(void *p) { _aligned_free(p); }

/* A HANDLE with every sharing mode (a reader never stops a removal), made a
 * C runtime descriptor; not inherited by child processes (no security
 * attributes). */
static int open_fd(const char *path, DWORD access, DWORD disposition, int flags)
{
    wchar_t *w = widen(path);
    if (!w) return -1;
    HANDLE h = CreateFileW(w, access, FILE_SHARE_READ | FILE_SHARE_WRITE | FILE_SHARE_DELETE, NULL,
                           disposition, FILE_ATTRIBUTE_NORMAL | FILE_FLAG_BACKUP_SEMANTICS, NULL);
    free(w);
    if (h == INVALID_HANDLE_VALUE) return set_errno();
    int fd = _open_osfhandle((intptr_t)h, flags | _O_BINARY);
    if (fd < 0) CloseHandle(h);
    return fd;
}

FILE *sg_fopen(const char *path, const char *mode)
{
    int fd;
    if (!strcmp(mode, "rb"))
        fd = open_fd(path, GENERIC_READ, OPEN_EXISTING, _O_RDONLY);
    else if (!strcmp(mode, "wb"))
        fd = open_fd(path, GENERIC_WRITE, CREATE_ALWAYS, _O_WRONLY);
    else if (!strcmp(mode, "ab"))
        fd = open_fd(path, FILE_APPEND_DATA, OPEN_ALWAYS, _O_WRONLY | _O_APPEND);
    else {
        errno = EINVAL;
        return NULL;
    }
    if (fd < 0) return NULL;
    FILE *f = _fdopen(fd, mode);
    if (!f) _close(fd);
    return f;
}

int sg_open_read(const char *path) { return open_fd(path, GENERIC_READ, OPEN_EXISTING, _O_RDONLY); }

long long sg_pread(int fd, void *buf, size_t n, uint64_t off)
{
    HANDLE h = (HANDLE)_get_osfhandle(fd);
    OVERLAPPED at = {0};
    at.Offset = (DWORD)off;
    at.OffsetHigh = (DWORD)(off >> 32);
    DWORD got = 0;
    if (n > 0x40000000u) n = 0x40000000u;
    /* On a synchronous handle ReadFile with an offset moves the file
     * pointer: put it back, as pread leaves it. */
    LARGE_INTEGER zero = {0}, pos;
    if (!SetFilePointerEx(h, zero, &pos, FILE_CURRENT)) return set_errno();
    BOOL ok = ReadFile(h, buf, (DWORD)n, &got, &at);
    DWORD e = GetLastError();
    SetFilePointerEx(h, pos, NULL, FILE_BEGIN);
    if (!ok && e != ERROR_HANDLE_EOF) {
        SetLastError(e);
        return set_errno();
    }
    return (long long)got;
}

static int info_of(HANDLE h, sg_file_info *info)
{
    BY_HANDLE_FILE_INFORMATION fi;
    DWORD type = GetFileType(h);
    info->size = 0;
    if (type == FILE_TYPE_PIPE) return info->kind = SG_KIND_FIFO, 0;
    if (type == FILE_TYPE_CHAR) return info->kind = SG_KIND_CHAR, 0;
    if (!GetFileInformationByHandle(h, &fi)) return set_errno();
    info->kind = fi.dwFileAttributes & FILE_ATTRIBUTE_DIRECTORY ? SG_KIND_DIR : SG_KIND_FILE;
    info->size = (uint64_t)fi.nFileSizeHigh << 32 | fi.nFileSizeLow;
    return 0;
}

int sg_stat(const char *path, int follow, sg_file_info *info)
{
    wchar_t *w = widen(path);
    if (!w) return -1;
    DWORD attr = GetFileAttributesW(w);
    if (attr == INVALID_FILE_ATTRIBUTES) {
        free(w);
        return set_errno();
    }
    if (!follow && (attr & FILE_ATTRIBUTE_REPARSE_POINT)) {
        free(w);
        info->kind = SG_KIND_LINK;
        info->size = 0;
        return 0;
    }
    HANDLE h = CreateFileW(w, 0, FILE_SHARE_READ | FILE_SHARE_WRITE | FILE_SHARE_DELETE, NULL,
                           OPEN_EXISTING, FILE_FLAG_BACKUP_SEMANTICS, NULL);
    free(w);
    if (h == INVALID_HANDLE_VALUE) return set_errno();
    int rc = info_of(h, info);
    CloseHandle(h);
    return rc;
}

int sg_fstat(int fd, sg_file_info *info)
{
    HANDLE h = (HANDLE)_get_osfhandle(fd);
    if (h == INVALID_HANDLE_VALUE) return errno = EBADF, -1;
    return info_of(h, info);
}

int sg_fsync(FILE *f)
{
    HANDLE h = (HANDLE)_get_osfhandle(_fileno(f));
    if (h == INVALID_HANDLE_VALUE) return errno = EBADF, -1;
    return FlushFileBuffers(h) ? 0 : set_errno();
}

int sg_sync_dir(const char *dir)
{
    (void)dir;
    return 0;
}

/* A file another program holds open (a viewer, PyTorch loading a
 * checkpoint, a virus scanner) cannot be replaced until it closes it: the
 * rename is retried for up to 2 s before it fails. */
int sg_replace(const char *from, const char *to)
{
    wchar_t *wf = widen(from), *wt = wf ? widen(to) : NULL;
    int rc = -1;
    for (int tries = 0; wt && rc != 0; tries++) {
        if (MoveFileExW(wf, wt, MOVEFILE_REPLACE_EXISTING | MOVEFILE_WRITE_THROUGH)) {
            rc = 0;
            break;
        }
        DWORD e = GetLastError();
        if (tries == 40 || (e != ERROR_ACCESS_DENIED && e != ERROR_SHARING_VIOLATION)) {
            set_errno();
            break;
        }
        Sleep(50);
    }
    free(wf), free(wt);
    return rc;
}

int sg_remove(const char *path)
{
    wchar_t *w = widen(path);
    int rc = w && DeleteFileW(w) ? 0 : w ? set_errno() : -1;
    free(w);
    return rc;
}

int sg_mkdir_one(const char *path)
{
    wchar_t *w = widen(path);
    int rc = w && CreateDirectoryW(w, NULL) ? 0 : w ? set_errno() : -1;
    free(w);
    return rc;
}

int sg_rmdir(const char *path)
{
    wchar_t *w = widen(path);
    int rc = w && RemoveDirectoryW(w) ? 0 : w ? set_errno() : -1;
    free(w);
    return rc;
}

int sg_free_bytes(const char *path, uint64_t *bytes)
{
    wchar_t *w = widen(path);
    ULARGE_INTEGER avail;
    int rc = w && GetDiskFreeSpaceExW(w, &avail, NULL, NULL) ? 0 : w ? set_errno() : -1;
    free(w);
    if (rc == 0) *bytes = avail.QuadPart;
    return rc;
}

struct sg_dir {
    HANDLE h;
    int first;               /* fd holds an entry not yet returned */
    WIN32_FIND_DATAW fd;
    char name[MAX_PATH * 4]; /* UTF-8 of fd.cFileName */
};

sg_dir *sg_dir_open(const char *path)
{
    size_t n = strlen(path);
    char *pattern = malloc(n + 3);
    if (!pattern) return errno = ENOMEM, NULL;
    memcpy(pattern, path, n);
    memcpy(pattern + n, "/*", 3);
    wchar_t *w = widen(pattern);
    free(pattern);
    sg_dir *d = w ? calloc(1, sizeof *d) : NULL;
    if (!d) {
        free(w);
        return NULL;
    }
    d->h = FindFirstFileW(w, &d->fd);
    free(w);
    if (d->h == INVALID_HANDLE_VALUE) {
        set_errno();
        free(d);
        return NULL;
    }
    d->first = 1;
    return d;
}

const char *sg_dir_next(sg_dir *d)
{
    for (;;) {
        if (!d->first && !FindNextFileW(d->h, &d->fd)) return NULL;
        d->first = 0;
        const wchar_t *n = d->fd.cFileName;
        if (!wcscmp(n, L".") || !wcscmp(n, L"..")) continue;
        if (narrow(n, d->name, sizeof d->name) == 0) return d->name;
    }
}

void sg_dir_close(sg_dir *d)
{
    if (!d) return;
    FindClose(d->h);
    free(d);
}

/* The locked byte: far past the PID at the start, which other processes
 * read while it is held (Windows locks are mandatory for the bytes they
 * cover). */
#define LOCK_OFFSET 0x40000000u

int sg_lock_file(const char *path, sg_lock *lock, long *holder)
{
    wchar_t *w = widen(path);
    if (!w) return SG_LOCK_EOPEN;
    HANDLE h = CreateFileW(w, GENERIC_READ | GENERIC_WRITE,
                           FILE_SHARE_READ | FILE_SHARE_WRITE | FILE_SHARE_DELETE, NULL,
                           OPEN_ALWAYS, FILE_ATTRIBUTE_NORMAL, NULL);
    free(w);
    if (h == INVALID_HANDLE_VALUE) return set_errno(), SG_LOCK_EOPEN;
    OVERLAPPED at = {0};
    at.Offset = LOCK_OFFSET;
    if (!LockFileEx(h, LOCKFILE_EXCLUSIVE_LOCK | LOCKFILE_FAIL_IMMEDIATELY, 0, 1, 0, &at)) {
        DWORD e = GetLastError();
        char buf[32] = {0};
        DWORD got = 0;
        OVERLAPPED start = {0};
        *holder = ReadFile(h, buf, sizeof buf - 1, &got, &start) && got > 0
                      ? strtol(buf, NULL, 10) : 0;
        CloseHandle(h);
        SetLastError(e);
        set_errno();
        return e == ERROR_LOCK_VIOLATION || e == ERROR_IO_PENDING ? SG_LOCK_BUSY : SG_LOCK_ELOCK;
    }
    char pid[32];
    int len = snprintf(pid, sizeof pid, "%ld\n", sg_pid());
    DWORD put = 0;
    OVERLAPPED start = {0};
    LARGE_INTEGER zero = {0};
    if (!SetFilePointerEx(h, zero, NULL, FILE_BEGIN) || !SetEndOfFile(h) ||
        !WriteFile(h, pid, (DWORD)len, &put, &start) || put != (DWORD)len) {
        set_errno();
        CloseHandle(h);
        return SG_LOCK_EWRITE;
    }
    *lock = (sg_lock)h;
    return SG_LOCK_OK;
}

void sg_unlock(sg_lock lock)
{
    if (lock != SG_NO_LOCK) CloseHandle((HANDLE)lock);
}

/* The folder of the module's file name (either separator). */
static int module_folder(HMODULE m, char *out, size_t cap)
{
    wchar_t w[32768];
    DWORD n = GetModuleFileNameW(m, w, sizeof w / sizeof *w);
    if (n == 0 || n >= sizeof w / sizeof *w) return -1;
    if (narrow(w, out, cap) != 0) return -1;
    char *a = strrchr(out, '\\'), *b = strrchr(out, '/');
    char *sep = a > b ? a : b;
    if (!sep) return -1;
    *sep = 0;
    return 0;
}

int sg_exe_dir(char *out, size_t cap) { return module_folder(NULL, out, cap); }

int sg_module_dir(const void *addr, char *out, size_t cap)
{
    HMODULE m;
    if (!GetModuleHandleExW(GET_MODULE_HANDLE_EX_FLAG_FROM_ADDRESS |
                                GET_MODULE_HANDLE_EX_FLAG_UNCHANGED_REFCOUNT,
                            (LPCWSTR)addr, &m))
        return -1;
    return module_folder(m, out, cap);
}

static int popcount64(unsigned long long x)
{
    int n = 0;
    for (; x; x &= x - 1) n++;
    return n;
}

void sg_os_topology(sg_hw *hw)
{
    SYSTEM_INFO si;
    GetSystemInfo(&si);
    hw->cores = hw->pus = si.dwNumberOfProcessors > 0 ? (int)si.dwNumberOfProcessors : 1;
    hw->l3_cores = hw->cores;
    hw->source = "Windows";
    DWORD len = 0;
    GetLogicalProcessorInformationEx(RelationAll, NULL, &len);
    char *buf = len ? malloc(len) : NULL;
    if (!buf || !GetLogicalProcessorInformationEx(RelationAll, (void *)buf, &len)) {
        free(buf);
        return;
    }
    int cores = 0, pus = 0, l3_pus = 0;
    for (DWORD at = 0; at < len;) {
        SYSTEM_LOGICAL_PROCESSOR_INFORMATION_EX *e = (void *)(buf + at);
        if (e->Relationship == RelationProcessorCore) {
            cores++;
            for (WORD g = 0; g < e->Processor.GroupCount; g++)
                pus += popcount64(e->Processor.GroupMask[g].Mask);
        } else if (e->Relationship == RelationCache) {
            const CACHE_RELATIONSHIP *c = &e->Cache;
            int unified_or_data = c->Type == CacheData || c->Type == CacheUnified;
            if (c->Level == 1 && c->Type == CacheData && !hw->l1d) hw->l1d = c->CacheSize;
            if (c->Level == 2 && unified_or_data && !hw->l2) hw->l2 = c->CacheSize;
            if (c->Level == 3 && unified_or_data && !hw->l3) {
                hw->l3 = c->CacheSize;
                l3_pus = popcount64(c->GroupMask.Mask);
            }
        }
        at += e->Size;
    }
    free(buf);
    if (cores > 0) hw->cores = cores;
    if (pus > 0) hw->pus = pus;
    /* The L3's sharers in cores: its hardware threads over threads per core. */
    hw->l3_cores = l3_pus > 0 ? (l3_pus * hw->cores + hw->pus - 1) / hw->pus : hw->cores;
}
#endif

/* test_platform.c: src/platform.h on the OS it runs on (Linux natively,
 * Windows under Wine): UTF-8 paths, binary files, the atomic replace, append,
 * pread, stat kinds, removal of an
 * open file, the folder lock and its holder's PID, folder listing, free
 * space, the program's folder, PIDs, aligned memory, and fmaf's single
 * rounding (MinGW's own rounds twice).
 *
 * Usage: test_platform OUT_DIR NAME, NAME being UNICODE_NAME below (the
 * command line in UTF-8, which Windows passes as UTF-16); OUT_DIR is emptied
 * of what a previous run left, and of what this one made. */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "platform.h"
#include "util.h"

/* A name outside ASCII and outside any Windows ANSI code page: déjà-日本. */
#define UNICODE_NAME "d\xc3\xa9j\xc3\xa0-\xe6\x97\xa5\xe6\x9c\xac"

static char root[4096], sub[4096];

static const char *at(const char *dir, const char *name)
{
    static char path[4][4400];
    static int i;
    i = (i + 1) % 4;
    sg_join(path[i], sizeof path[i], dir, name);
    return path[i];
}

static void put(const char *path, const char *mode, const char *text)
{
    FILE *f = sg_fopen(path, mode);
    CHECK(f != NULL, "%s: sg_fopen %s: %s", path, mode, strerror(errno));
    if (!f) return;
    CHECK(fwrite(text, 1, strlen(text), f) == strlen(text), "%s: write", path);
    CHECK(fclose(f) == 0, "%s: close", path);
}

/* The file's bytes (at most cap - 1) as a string. */
static const char *get(FILE *f, char *buf, size_t cap)
{
    size_t n = f ? fread(buf, 1, cap - 1, f) : 0;
    buf[n] = 0;
    return buf;
}

/* The last component of a path, either separator. */
static const char *last_name(const char *path)
{
    const char *name = path;
    for (const char *p = path; *p; p++)
        if (*p == '/' || *p == '\\') name = p + 1;
    return name;
}

static void empty_folder(const char *dir)
{
    sg_dir *d = sg_dir_open(dir);
    const char *name;
    while (d && (name = sg_dir_next(d))) {
        sg_file_info st;
        const char *p = at(dir, name);
        if (sg_stat(p, 0, &st) == 0 && st.kind == SG_KIND_DIR)
            empty_folder(p), sg_rmdir(p);
        else
            sg_remove(p);
    }
    sg_dir_close(d);
}

static void files(void)
{
    const char *target = at(sub, "state.bin"), *tmp = at(sub, "state.bin.tmp.1");
    sg_file_info st;
    put(target, "wb", "one\n\r\n");   /* binary: no newline translation */
    CHECK(sg_stat(target, 1, &st) == 0 && st.kind == SG_KIND_FILE && st.size == 6,
          "stat %s: kind %d size %llu", target, (int)st.kind, (unsigned long long)st.size);
    CHECK(sg_stat(sub, 1, &st) == 0 && st.kind == SG_KIND_DIR, "stat %s: kind %d", sub,
          (int)st.kind);
    errno = 0;
    CHECK(sg_stat(at(sub, "none"), 1, &st) == -1 && errno == ENOENT, "stat of nothing: errno %d",
          errno);

    /* Atomic replace over an existing file (on Windows not while another
     * handle has it open: sg_replace waits for it). */
    put(tmp, "wb", "two");
    char buf[64];
    FILE *f = sg_fopen(target, "rb");
    CHECK(strcmp(get(f, buf, sizeof buf), "one\n\r\n") == 0, "before the replace: '%s'", buf);
    if (f) fclose(f);
    CHECK(sg_replace(tmp, target) == 0, "replace: %s", strerror(errno));
    f = sg_fopen(target, "rb");
    CHECK(strcmp(get(f, buf, sizeof buf), "two") == 0, "after the replace: '%s'", buf);
    if (f) fclose(f);
    CHECK(sg_stat(tmp, 0, &st) == -1, "the temporary is gone");

    /* Append, then pread: bytes at an offset, the position left at 0. */
    put(target, "ab", "3");
    int fd = sg_open_read(target);
    CHECK(fd >= 0, "sg_open_read: %s", strerror(errno));
    CHECK(sg_fstat(fd, &st) == 0 && st.kind == SG_KIND_FILE && st.size == 4, "fstat: size %llu",
          (unsigned long long)st.size);
    memset(buf, 0, sizeof buf);
    CHECK(sg_pread(fd, buf, 2, 1) == 2 && memcmp(buf, "wo", 2) == 0, "pread at 1: '%.2s'", buf);
    CHECK(sg_pread(fd, buf, 8, 3) == 1 && buf[0] == '3', "pread at the end: '%c'", buf[0]);
    memset(buf, 0, sizeof buf);
    CHECK(read(fd, buf, 8) == 4 && strcmp(buf, "two3") == 0, "read after pread: '%s'", buf);
    close(fd);
    fd = sg_open_read(sub);
    CHECK(fd < 0 || (sg_fstat(fd, &st) == 0 && st.kind == SG_KIND_DIR),
          "a folder opened for reading is refused or known as a folder");
    if (fd >= 0) close(fd);

    /* A file removed while open: gone once closed (at once on POSIX). */
    f = sg_fopen(target, "rb");
    CHECK(sg_remove(target) == 0, "remove an open file: %s", strerror(errno));
    if (f) fclose(f);
    CHECK(sg_stat(target, 0, &st) == -1, "%s still there after remove and close", target);

    /* Creating a folder where one is, and a file in a missing folder. */
    errno = 0;
    CHECK(sg_mkdir_one(sub) == -1 && errno == EEXIST, "mkdir over a folder: errno %d", errno);
    CHECK(sg_fopen(at(at(sub, "missing"), "x"), "wb") == NULL && errno == ENOENT,
          "a file in a missing folder: errno %d", errno);
    CHECK(sg_sync_dir(sub) == 0, "sync %s: %s", sub, strerror(errno));
}

static void lock(void)
{
    const char *path = at(sub, ".lock");
    sg_lock a = SG_NO_LOCK, b = SG_NO_LOCK;
    long holder = -1;
    CHECK(sg_lock_file(path, &a, &holder) == SG_LOCK_OK, "first lock: %s", strerror(errno));
    CHECK(sg_lock_file(path, &b, &holder) == SG_LOCK_BUSY && holder == sg_pid(),
          "second lock: holder %ld, expected %ld", holder, sg_pid());
    sg_unlock(a);
    CHECK(sg_lock_file(path, &b, &holder) == SG_LOCK_OK, "lock after unlock: %s", strerror(errno));
    sg_unlock(b);
}

static void folders(void)
{
    put(at(sub, UNICODE_NAME ".txt"), "wb", "x");
    int seen = 0, n = 0;
    sg_dir *d = sg_dir_open(sub);
    CHECK(d != NULL, "sg_dir_open %s: %s", sub, strerror(errno));
    const char *name;
    while (d && (name = sg_dir_next(d))) {
        n++;
        seen += strcmp(name, UNICODE_NAME ".txt") == 0;
        CHECK(strcmp(name, ".") && strcmp(name, ".."), "listed %s", name);
    }
    sg_dir_close(d);
    CHECK(seen == 1, "%s.txt listed %d times among %d", UNICODE_NAME, seen, n);

    uint64_t bytes = 0;
    CHECK(sg_free_bytes(sub, &bytes) == 0 && bytes > 0, "free bytes: %llu (%s)",
          (unsigned long long)bytes, strerror(errno));

    char exe[4096], mod[4096];
    sg_file_info st;
    CHECK(sg_exe_dir(exe, sizeof exe) == 0 && sg_stat(exe, 1, &st) == 0 && st.kind == SG_KIND_DIR,
          "exe dir '%s'", exe);
    /* The code is linked into the program: the same folder (dladdr may name
     * it as the program was started, relative). */
    CHECK(sg_module_dir((const void *)sg_exe_dir, mod, sizeof mod) == 0 &&
              sg_stat(mod, 1, &st) == 0 && st.kind == SG_KIND_DIR &&
              !strcmp(last_name(mod), last_name(exe)),
          "module dir '%s', exe dir '%s'", mod, exe);
}

static void process(void)
{
    CHECK(sg_pid() > 0 && sg_pid_alive(sg_pid()), "own pid %ld", sg_pid());
    CHECK(!sg_pid_alive(0x7ffffff0L), "pid 0x7ffffff0 alive");
    CHECK(setenv("SIMDGAN_TEST_PLATFORM", "abc", 1) == 0, "setenv");
    const char *v = sg_getenv("SIMDGAN_TEST_PLATFORM");
    CHECK(v && strcmp(v, "abc") == 0, "sg_getenv: %s", v ? v : "(null)");
    unsetenv("SIMDGAN_TEST_PLATFORM");
    CHECK(sg_getenv("SIMDGAN_TEST_PLATFORM") == NULL, "unset variable");
    for (size_t align = 16; align <= 4096; align *= 4) {
        void *p = sg_aligned_alloc(align, 100);
        CHECK(p && (uintptr_t)p % align == 0, "aligned %zu: %p", align, p);
        sg_aligned_free(p);
    }
}

/* fmaf rounds once: a case where rounding x * y + z to double lands halfway
 * between two floats, then random operands against long double (64-bit
 * mantissa: x * y has 48 bits and z lies within a few binades, so the sum is
 * exact there and rounds once to float). */
static void fused(void)
{
    volatile float x = ldexpf(1.0f + 0x1p-18f, -12), y = ldexpf(1.0f - 0x1p-18f, -12);
    volatile float z = 1.0f + 0x1p-23f;
    /* x y = 2^-24 - 2^-60: x y + z lies just under the midpoint 1 + 3 2^-24. */
    CHECK(fmaf(x, y, z) == 1.0f + 0x1p-23f, "fmaf halfway case: %a", (double)fmaf(x, y, z));
    CHECK(fmaf(-x, y, -z) == -(1.0f + 0x1p-23f), "fmaf halfway case, negated: %a",
          (double)fmaf(-x, y, -z));
    uint32_t s = 12345;
    int bad = 0;
    for (int i = 0; i < 1000000; i++) {
        float v[3];
        for (int k = 0; k < 3; k++) {
            s = s * 1664525u + 1013904223u;
            uint32_t u = (s & 0x807fffffu) | (k < 2 ? 0x3f000000u : 0x3e800000u);
            memcpy(&v[k], &u, 4);
        }
        volatile float a = v[0], b = v[1], c = v[2];
        float want = (float)((long double)a * (long double)b + (long double)c);
        bad += fmaf(a, b, c) != want;
    }
    CHECK(bad == 0, "fmaf: %d of 1000000 random operands not rounded once", bad);
}

int main(int argc, char **argv)
{
    sg_platform_args(&argc, &argv);
    if (argc != 3) {
        fprintf(stderr, "usage: test_platform OUT_DIR NAME\n");
        return 2;
    }
    CHECK(strcmp(argv[2], UNICODE_NAME) == 0, "argv[2] '%s', expected '%s' (UTF-8)", argv[2],
          UNICODE_NAME);
    snprintf(root, sizeof root, "%s", argv[1]);
    if (sg_mkdir(root) != 0) {
        fprintf(stderr, "test_platform: %s\n", sg_last_error());
        return 1;
    }
    empty_folder(root);
    snprintf(sub, sizeof sub, "%s", at(root, UNICODE_NAME));
    CHECK(sg_mkdir_one(sub) == 0, "mkdir %s: %s", sub, strerror(errno));
    files();
    lock();
    folders();
    process();
    fused();
    empty_folder(root);
    return check_finish("test_platform");
}

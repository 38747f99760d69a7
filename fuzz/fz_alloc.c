/* fz_alloc.c — the fuzz build's allocator under the kernel's k_malloc/k_calloc/k_free: large
 * blocks (a server's state) are kept for the next boot instead of going back to ASan. */
#include <sanitizer/allocator_interface.h>
#include <sanitizer/asan_interface.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

/*
 * The targets that boot per input (tcpip, fs, httpd) give the kernel a server state of 0.5 to
 * 1.5 MiB at every boot (core/task.c). ASan maps a block that large afresh each time and
 * unmaps it when freed, so every boot first-touched hundreds of new pages and their shadow:
 * three quarters of fuzz_httpd's time, a quarter of fuzz_tcpip's (docs/fuzzing.md, "Profile").
 * Here a freed block of FZ_ALLOC_BIG bytes or more waits in a small cache, poisoned (an
 * access to it is an ASan use-after-poison report, as a use after free), and an allocation of the same
 * size takes it back, unpoisoned and, for calloc, zeroed. The kernel's own accounting
 * (core/alloc.c: the live count, failure injection) is unchanged: fuzz/CMakeLists.txt compiles
 * the fuzz build's copy of alloc.c with malloc, calloc and free named fz_malloc, fz_calloc and
 * fz_free.
 */
enum {
    FZ_ALLOC_BIG = 64 * 1024, /* smaller blocks come from ASan's size classes, reused anyway */
    FZ_ALLOC_KEPT = 8,        /* blocks kept: one state per server of a boot, and then some */
};

void *fz_malloc(size_t n);
void *fz_calloc(size_t n, size_t size);
void fz_free(void *p);

static struct fz_kept {
    void *p;     /* poisoned while here */
    size_t size; /* as asked for */
} kept[FZ_ALLOC_KEPT];
static int nkept;

static void *take(size_t size)
{
    for (int i = 0; i < nkept; i++)
        if (kept[i].size == size) {
            void *p = kept[i].p;
            kept[i] = kept[--nkept];
            ASAN_UNPOISON_MEMORY_REGION(p, size);
            return p;
        }
    return NULL;
}

void *fz_malloc(size_t n)
{
    void *p = n >= FZ_ALLOC_BIG ? take(n) : NULL;
    return p ? p : malloc(n);
}

void *fz_calloc(size_t n, size_t size)
{
    if (size && n > (size_t)-1 / size)
        return calloc(n, size); /* overflows: calloc says so */
    void *p = n * size >= FZ_ALLOC_BIG ? take(n * size) : NULL;
    if (!p)
        return calloc(n, size);
    memset(p, 0, n * size);
    return p;
}

void fz_free(void *p)
{
    size_t size = p ? __sanitizer_get_allocated_size(p) : 0;
    if (size < FZ_ALLOC_BIG || nkept == FZ_ALLOC_KEPT) {
        free(p);
        return;
    }
    ASAN_POISON_MEMORY_REGION(p, size);
    kept[nkept++] = (struct fz_kept){p, size};
}

/* bmlibc.h — the freestanding C subset's implementation names (bm_*), shared by the image and host
 * tests. */
#ifndef BM_LIBC_H
#define BM_LIBC_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

/*
 * Every function of the subset is defined under a bm_ name so the host unit
 * tests (tests/test_libc.c) can link it next to glibc. The image compiles the
 * same files with -DBM_STD_NAMES, which adds the standard names as aliases.
 */
#ifdef BM_STD_NAMES
#define BM_ALIAS(std, impl) extern __typeof(impl) std __attribute__((alias(#impl)));
#else
#define BM_ALIAS(std, impl)
#endif

/* string.c */
void *bm_memcpy(void *dst, const void *src, size_t n);
void *bm_memmove(void *dst, const void *src, size_t n);
void *bm_memset(void *dst, int c, size_t n);
int bm_memcmp(const void *a, const void *b, size_t n);
void *bm_memchr(const void *s, int c, size_t n);
size_t bm_strlen(const char *s);
size_t bm_strnlen(const char *s, size_t max);
int bm_strcmp(const char *a, const char *b);
int bm_strncmp(const char *a, const char *b, size_t n);
char *bm_strchr(const char *s, int c);
char *bm_strrchr(const char *s, int c);
char *bm_strstr(const char *hay, const char *needle);
char *bm_strcpy(char *dst, const char *src);
char *bm_strncpy(char *dst, const char *src, size_t n);
char *bm_strcat(char *dst, const char *src);

/* stdlib.c */
long bm_strtol(const char *s, char **end, int base);
unsigned long bm_strtoul(const char *s, char **end, int base);
unsigned long long bm_strtoull(const char *s, char **end, int base);
int bm_abs(int x);
void bm_qsort(void *base, size_t n, size_t size, int (*cmp)(const void *, const void *));

/* ctype.c */
int bm_isspace(int c);
int bm_isdigit(int c);
int bm_isalpha(int c);
int bm_isalnum(int c);
int bm_isprint(int c);
int bm_isxdigit(int c);
int bm_isupper(int c);
int bm_islower(int c);
int bm_tolower(int c);
int bm_toupper(int c);

/* format.c */
int bm_vsnprintf(char *buf, size_t size, const char *fmt, va_list ap);
int bm_snprintf(char *buf, size_t size, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* heap.c: a boundary-tag allocator with segregated free lists over one region. */
typedef struct bm_heap_stats {
    size_t total;     /* bytes managed */
    size_t used;      /* bytes in live chunks, headers included */
    size_t free;      /* bytes in free chunks */
    size_t largest;   /* largest free chunk */
    long allocations; /* live allocations */
} bm_heap_stats_t;

/* Give the allocator its region (may be called again to start over). */
void bm_heap_init(void *base, size_t len);
void *bm_malloc(size_t n);
void *bm_calloc(size_t n, size_t size);
void *bm_realloc(void *p, size_t n);
void bm_free(void *p);
void bm_heap_get_stats(bm_heap_stats_t *out);
/* Walk every chunk and check the boundary tags and free lists: 0 if sound, else -1. */
int bm_heap_check(void);

#endif

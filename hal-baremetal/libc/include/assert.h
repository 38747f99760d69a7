/* assert.h — assert() for the bare-metal image: a failed assertion in a task kills that task. */
#ifndef BM_ASSERT_H
#define BM_ASSERT_H

_Noreturn void bm_assert_fail(const char *expr, const char *file, int line, const char *func);

#endif

#undef assert
#ifdef NDEBUG
#define assert(e) ((void)0)
#else
#define assert(e) ((e) ? (void)0 : bm_assert_fail(#e, __FILE__, __LINE__, __func__))
#endif

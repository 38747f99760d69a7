/* kcheck.h — NEVER/ALWAYS: branches that cannot happen, checked in test builds, plain in release.
 */
#ifndef K_CHECK_H
#define K_CHECK_H

/*
 * SQLite's idea. A defensive branch that should never be taken is written
 *     if (NEVER(queue_full)) return;
 * and one that should always be taken
 *     if (ALWAYS(found)) ...
 * In a checked build (K_CHECKS, set by core/CMakeLists.txt for sanitizer and
 * Debug builds, the ones the test suite runs) a wrong guess is a kernel bug:
 * k_check_failed prints it on the console and stops the process. In release
 * builds the macros are the plain condition, so the branch still keeps the
 * kernel safe and costs nothing more than it did.
 */
#ifdef K_CHECKS
_Noreturn void k_check_failed(const char *what, const char *expr, const char *file, int line);
#define NEVER(x) ((x) ? (k_check_failed("NEVER", #x, __FILE__, __LINE__), 1) : 0)
#define ALWAYS(x) ((x) ? 1 : (k_check_failed("ALWAYS", #x, __FILE__, __LINE__), 0))
#else
#define NEVER(x) (!!(x))
#define ALWAYS(x) (!!(x))
#endif

#endif

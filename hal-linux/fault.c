/* fault.c — a hardware fault in a task (SIGSEGV, SIGBUS, SIGILL, SIGFPE) kills that task alone. */
#define _GNU_SOURCE
#include "internal.h"

#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <ucontext.h>

#include <k/kernel.h>

/*
 * Each thread that calls k_run_one registers its worker index and gets an
 * alternate signal stack, so even a task's stack overflow reaches the
 * handler. On a fault while that worker runs a task handler, the handler
 * calls k_task_fault, which longjmps back into k_run_one: the task dies, the
 * worker goes on. SA_NODEFER keeps the signal unblocked after that jump.
 * Any other fault (the kernel's own, the loop thread's, a sanitizer's
 * report) goes to the action that was installed before ours: we restore it
 * and return, the instruction faults again and that action handles it.
 *
 * The message names the fault. A fault just below the thread's stack is a
 * stack overflow. A deterministic thread (the simulator's) never prints a
 * host address other than the never-mapped first 64 KiB: stack, heap and
 * code addresses move with ASLR from one process to the next, and the
 * console output of a seed must not.
 *
 * This catches what faults; a wild store that lands in mapped memory does
 * not fault on a host, unlike on bare metal where each task is checked by
 * the MMU against the same kernel mappings.
 */

static const int fault_signals[] = {SIGSEGV, SIGBUS, SIGILL, SIGFPE};
enum {
    NSIGS = sizeof(fault_signals) / sizeof(fault_signals[0]),
    ALTSTACK = 64 * 1024,    /* the handler and k_task_fault */
    LOW_ADDRESSES = 0x10000, /* never mapped (vm.mmap_min_addr): the same in every run */
    OVERFLOW_BELOW = 1 << 20 /* a fault this far below the stack's end is an overflow */
};

static struct sigaction previous[NSIGS];
static int installed; /* atomic: threads registered */

static __thread int tl_worker = -1;
static __thread bool tl_deterministic;
static __thread void *tl_altstack;
static __thread stack_t tl_old_altstack; /* a sanitizer's, restored on leave */
/* the lowest usable address of the thread's stack (0: unknown) */
static __thread uintptr_t tl_stack_lo;

static const char *signal_name(int sig)
{
    switch (sig) {
    case SIGSEGV:
        return "page fault";
    case SIGBUS:
        return "bus error";
    case SIGILL:
        return "illegal instruction";
    default:
        return "arithmetic fault";
    }
}

static size_t append(char *out, size_t n, size_t max, const char *s)
{
    for (; *s && n + 1 < max; s++)
        out[n++] = *s;
    out[n] = '\0';
    return n;
}

static size_t append_hex(char *out, size_t n, size_t max, uintptr_t a)
{
    static const char hex[] = "0123456789abcdef";
    n = append(out, n, max, "0x");
    int shift = (int)sizeof(a) * 8 - 4;
    while (shift > 0 && ((a >> shift) & 0xf) == 0)
        shift -= 4;
    for (; shift >= 0 && n + 1 < max; shift -= 4)
        out[n++] = hex[(a >> shift) & 0xf];
    out[n] = '\0';
    return n;
}

static bool is_stack_overflow(int sig, uintptr_t a)
{
    return sig == SIGSEGV && tl_stack_lo != 0 && a < tl_stack_lo + 4096 &&
           a + OVERFLOW_BELOW >= tl_stack_lo;
}

/* "page fault at 0x0", "page fault at 0x7ffd5e746f0c (stack overflow)", on the simulator's thread
 * "page fault (stack overflow)": by hand, snprintf is not async-signal-safe. */
static void describe(char *out, size_t max, int sig, const void *addr)
{
    uintptr_t a = (uintptr_t)addr;
    bool code = sig == SIGILL || sig == SIGFPE; /* si_addr is the instruction's */
    bool overflow = is_stack_overflow(sig, a);
    size_t n = append(out, 0, max, signal_name(sig));
    if (!tl_deterministic || (!code && a < LOW_ADDRESSES)) {
        n = append(out, n, max, " at ");
        n = append_hex(out, n, max, a);
    } else if (!code && !overflow) {
        n = append(out, n, max, " at a host address");
    }
    if (overflow)
        append(out, n, max, " (stack overflow)");
}

static void on_fault(int sig, siginfo_t *si, void *uc)
{
    int w = tl_worker;
    if (w >= 0 && k_in_task((unsigned)w)) {
        /* We leave by longjmp, not by returning, so restore the signal mask of the code that
         * faulted as sigreturn would. SA_NODEFER alone is not enough: TSan runs our handler
         * with every signal blocked (its sigaction fills sa_mask), and a fault signal still
         * blocked at the task's next fault kills the whole process. */
        pthread_sigmask(SIG_SETMASK, &((ucontext_t *)uc)->uc_sigmask, NULL);
        char what[80];
        describe(what, sizeof what, sig, si->si_addr);
        k_task_fault((unsigned)w, what); /* does not return */
    }
    for (int i = 0; i < NSIGS; i++)
        if (fault_signals[i] == sig)
            sigaction(sig, &previous[i], NULL);
}

static uintptr_t stack_low_end(void)
{
    pthread_attr_t attr;
    void *addr = NULL;
    size_t size = 0;
    if (pthread_getattr_np(pthread_self(), &attr) != 0)
        return 0;
    if (pthread_attr_getstack(&attr, &addr, &size) != 0)
        addr = NULL;
    pthread_attr_destroy(&attr);
    return (uintptr_t)addr;
}

int hl_fault_thread_enter(unsigned worker, bool deterministic)
{
    if (__atomic_fetch_add(&installed, 1, __ATOMIC_ACQ_REL) == 0) {
        struct sigaction sa;
        memset(&sa, 0, sizeof sa);
        sa.sa_sigaction = on_fault;
        sa.sa_flags = SA_SIGINFO | SA_ONSTACK | SA_NODEFER;
        sigemptyset(&sa.sa_mask);
        for (int i = 0; i < NSIGS; i++)
            sigaction(fault_signals[i], &sa, &previous[i]);
    }
    tl_altstack = malloc(ALTSTACK);
    if (tl_altstack) {
        stack_t ss = {.ss_sp = tl_altstack, .ss_size = ALTSTACK, .ss_flags = 0};
        if (sigaltstack(&ss, &tl_old_altstack) != 0) {
            free(tl_altstack);
            tl_altstack = NULL;
        }
    }
    tl_stack_lo = stack_low_end();
    tl_deterministic = deterministic;
    tl_worker = (int)worker;
    return 0;
}

void hl_fault_thread_leave(void)
{
    tl_worker = -1;
    if (tl_altstack) {
        stack_t ss = tl_old_altstack;
        if (ss.ss_flags & SS_DISABLE || !ss.ss_sp)
            ss = (stack_t){.ss_flags = SS_DISABLE};
        sigaltstack(&ss, NULL);
        free(tl_altstack);
        tl_altstack = NULL;
    }
    if (__atomic_sub_fetch(&installed, 1, __ATOMIC_ACQ_REL) == 0)
        for (int i = 0; i < NSIGS; i++)
            sigaction(fault_signals[i], &previous[i], NULL);
}

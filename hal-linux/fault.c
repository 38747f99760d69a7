/* fault.c — a hardware fault in a task's handler (SIGSEGV, SIGBUS, SIGILL, SIGFPE) kills that task alone. */
#include "internal.h"

#include <signal.h>
#include <stdlib.h>
#include <string.h>

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
 * This catches what faults; a wild store that lands in mapped memory does
 * not fault on a host, unlike on bare metal where each task is checked by
 * the MMU against the same kernel mappings.
 */

static const int fault_signals[] = {SIGSEGV, SIGBUS, SIGILL, SIGFPE};
enum { NSIGS = sizeof(fault_signals) / sizeof(fault_signals[0]), ALTSTACK = 64 * 1024 };

static struct sigaction previous[NSIGS];
static int installed; /* atomic: threads registered */

static __thread int tl_worker = -1;
static __thread void *tl_altstack;

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

/* "page fault at 0x0": formatted by hand, snprintf is not async-signal-safe. */
static void describe(char *out, size_t max, int sig, const void *addr)
{
    static const char hex[] = "0123456789abcdef";
    size_t n = 0;
    for (const char *s = signal_name(sig); *s && n + 1 < max; s++)
        out[n++] = *s;
    for (const char *s = " at 0x"; *s && n + 1 < max; s++)
        out[n++] = *s;
    uintptr_t a = (uintptr_t)addr;
    int shift = (int)sizeof(a) * 8 - 4;
    while (shift > 0 && ((a >> shift) & 0xf) == 0)
        shift -= 4;
    for (; shift >= 0 && n + 1 < max; shift -= 4)
        out[n++] = hex[(a >> shift) & 0xf];
    out[n] = '\0';
}

static void on_fault(int sig, siginfo_t *si, void *uc)
{
    (void)uc;
    int w = tl_worker;
    if (w >= 0 && k_in_task((unsigned)w)) {
        char what[64];
        describe(what, sizeof what, sig, si->si_addr);
        k_task_fault((unsigned)w, what); /* does not return */
    }
    for (int i = 0; i < NSIGS; i++)
        if (fault_signals[i] == sig)
            sigaction(sig, &previous[i], NULL);
}

int hl_fault_thread_enter(unsigned worker)
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
        if (sigaltstack(&ss, NULL) != 0) {
            free(tl_altstack);
            tl_altstack = NULL;
        }
    }
    tl_worker = (int)worker;
    return 0;
}

void hl_fault_thread_leave(void)
{
    tl_worker = -1;
    if (tl_altstack) {
        stack_t ss = {.ss_flags = SS_DISABLE};
        sigaltstack(&ss, NULL);
        free(tl_altstack);
        tl_altstack = NULL;
    }
    if (__atomic_sub_fetch(&installed, 1, __ATOMIC_ACQ_REL) == 0)
        for (int i = 0; i < NSIGS; i++)
            sigaction(fault_signals[i], &previous[i], NULL);
}

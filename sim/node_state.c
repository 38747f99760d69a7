/* node_state.c — the per-node state section: saved and loaded when the simulator switches node. */
#include "sim_priv.h"

#include <stdlib.h>
#include <string.h>

/*
 * The build moves every writable static of the kernel, the servers and lwIP into the sections
 * orrery_node (initialised) and orrery_node_bss (zeroed) (orrery_node_state() in
 * CMakeLists.txt); the linker marks their bounds. A simulated node's whole memory is then
 * its tasks' allocations (reached from those statics) plus one copy of these two sections,
 * so the simulator runs several nodes in one process by copying the sections out of and
 * into place between steps, at the same addresses, which keeps every pointer into them valid.
 * lwIP keeps all its state in globals; this is how two lwIP stacks share one process.
 */
extern char __start_orrery_node[] __attribute__((weak));
extern char __stop_orrery_node[] __attribute__((weak));
extern char __start_orrery_node_bss[] __attribute__((weak));
extern char __stop_orrery_node_bss[] __attribute__((weak));

static void *pristine; /* both sections as the program was loaded, before anything ran */

static size_t data_len(void)
{
    return __start_orrery_node ? (size_t)(__stop_orrery_node - __start_orrery_node) : 0;
}

static size_t bss_len(void)
{
    return __start_orrery_node_bss ? (size_t)(__stop_orrery_node_bss - __start_orrery_node_bss)
                                   : 0;
}

size_t sim_node_state_size(void)
{
    return data_len() + bss_len();
}

/*
 * ASan keeps red zones between the globals of these sections; its memcpy checks them, so an
 * ASan build copies with the check off (words, then the tail). Elsewhere memcpy.
 */
#if defined(__SANITIZE_ADDRESS__)
#define SIM_NODE_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define SIM_NODE_ASAN 1
#endif
#endif

#ifdef SIM_NODE_ASAN
__attribute__((no_sanitize_address)) static void copy(void *dst, const void *src, size_t n)
{
    /* volatile: the compiler must not turn the loop back into a (checked) memcpy call */
    volatile uint64_t *dw = dst;
    const volatile uint64_t *sw = src;
    size_t words = n / sizeof(uint64_t);
    for (size_t i = 0; i < words; i++)
        dw[i] = sw[i];
    volatile unsigned char *d = (volatile unsigned char *)dst + words * sizeof(uint64_t);
    const volatile unsigned char *s = (const volatile unsigned char *)src + words * sizeof(uint64_t);
    for (size_t i = 0; i < n % sizeof(uint64_t); i++)
        d[i] = s[i];
}
#else
static void copy(void *dst, const void *src, size_t n)
{
    memcpy(dst, src, n);
}
#endif

void sim_node_state_save(void *buf)
{
    copy(buf, __start_orrery_node, data_len());
    copy((char *)buf + data_len(), __start_orrery_node_bss, bss_len());
}

void sim_node_state_load(const void *buf)
{
    copy(__start_orrery_node, buf, data_len());
    copy(__start_orrery_node_bss, (const char *)buf + data_len(), bss_len());
}

/* Taken before main, so every node of every run starts from the state the program loaded. */
__attribute__((constructor)) static void take_pristine(void)
{
    size_t n = sim_node_state_size();
    if (n == 0)
        return;
    pristine = malloc(n);
    if (pristine)
        sim_node_state_save(pristine);
}

void *sim_node_state_new(void)
{
    size_t n = sim_node_state_size();
    if (n == 0 || pristine == NULL)
        return NULL;
    void *p = malloc(n);
    if (p)
        memcpy(p, pristine, n);
    return p;
}

/* mem.c — physical memory: the heap and DMA pages from the boot memory map; MMIO mappings above 4
 * GiB. */
#include <string.h>

#include <bm/bm.h>
#include <bm/x86.h>

#include "libc/bmlibc.h"

/*
 * entry.S identity-maps 0-4 GiB (page 0 not present, 3-4 GiB uncached). The
 * largest usable RAM range above the image and below 4 GiB becomes: first
 * DMA_POOL bytes of page-granular DMA memory (virtqueues), the rest the heap.
 */
enum {
    PAGE = 4096,
    DMA_POOL = 1 << 20,
};

extern char __image_start[], __image_end[];
extern uint64_t boot_pml4[], boot_pdpt[], boot_pt0[];
extern char boot_stack_guard[];

static uintptr_t dma_next, dma_end;
static uint64_t heap_base, heap_len;

void bm_mem_init(void)
{
    uint64_t best = 0, best_len = 0;
    uint64_t lo_limit = (uint64_t)(uintptr_t)__image_end;

    for (int i = 0; i < bm_boot.nram; i++) {
        uint64_t b = bm_boot.ram[i].base, e = b + bm_boot.ram[i].len;
        if (b < lo_limit)
            b = lo_limit;
        if (e > 0x100000000ull)
            e = 0x100000000ull;
        b = (b + PAGE - 1) & ~(uint64_t)(PAGE - 1);
        e &= ~(uint64_t)(PAGE - 1);
        if (e > b && e - b > best_len) {
            best = b;
            best_len = e - b;
        }
    }
    /* The boot information has been copied: unmap page 0 so NULL dereferences fault, and
     * the page below the stack so an overflow faults instead of eating the page tables. */
    boot_pt0[0] = 0;
    __asm__ volatile("invlpg (%0)" : : "r"(0UL) : "memory");
    boot_pt0[(uintptr_t)boot_stack_guard >> 12] = 0;
    __asm__ volatile("invlpg (%0)" : : "r"(boot_stack_guard) : "memory");
    if (best_len < 2 * DMA_POOL)
        bm_panic("not enough RAM: largest free range is %lu KiB", (unsigned long)(best_len >> 10));
    dma_next = (uintptr_t)best;
    dma_end = dma_next + DMA_POOL;
    heap_base = best + DMA_POOL;
    heap_len = best_len - DMA_POOL;
    bm_heap_init((void *)(uintptr_t)heap_base, (size_t)heap_len);
}

void *bm_pages_alloc(size_t npages)
{
    void *p;

    if (npages > (dma_end - dma_next) / PAGE)
        return NULL;
    p = (void *)dma_next;
    dma_next += npages * PAGE;
    memset(p, 0, npages * PAGE);
    return p;
}

/* Identity-map whole GiBs above 4 GiB with uncached 2 MiB pages (BARs placed high). */
int bm_map_mmio(uint64_t phys, uint64_t len)
{
    for (uint64_t gib = phys >> 30; gib <= (phys + len - 1) >> 30; gib++) {
        uint64_t *pd;
        if (gib >= 512)
            return -1;
        if (boot_pdpt[gib] & 1)
            continue;
        pd = bm_pages_alloc(1);
        if (!pd)
            return -1;
        for (int i = 0; i < 512; i++)
            pd[i] = ((gib << 30) + ((uint64_t)i << 21)) | 0x83 | 0x18;
        boot_pdpt[gib] = (uint64_t)(uintptr_t)pd | 3;
    }
    write_cr3(read_cr3());
    return 0;
}

void bm_mem_describe(void)
{
    bm_printf("[bm] ram %lu MiB in %d ranges; image %#lx-%#lx; dma %#lx; heap %#lx + %lu MiB\n",
              (unsigned long)(bm_boot.ram_total >> 20), bm_boot.nram,
              (unsigned long)(uintptr_t)__image_start, (unsigned long)(uintptr_t)__image_end,
              (unsigned long)(dma_end - DMA_POOL), (unsigned long)heap_base,
              (unsigned long)(heap_len >> 20));
}

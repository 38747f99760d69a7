/* boot.c — what the loader told us: the PVH start_info (memory map, command line), else fw_cfg
 * e820. */
#include <string.h>

#include <bm/bm.h>

/* The PVH boot ABI (xen/include/public/arch-x86/hvm/start_info.h). */
#define HVM_START_MAGIC 0x336ec578u
typedef struct hvm_start_info {
    uint32_t magic;
    uint32_t version;
    uint32_t flags;
    uint32_t nr_modules;
    uint64_t modlist_paddr;
    uint64_t cmdline_paddr;
    uint64_t rsdp_paddr;
    uint64_t memmap_paddr;   /* version >= 1 */
    uint32_t memmap_entries; /* version >= 1 */
    uint32_t reserved;
} hvm_start_info_t;

typedef struct hvm_memmap_entry {
    uint64_t addr;
    uint64_t size;
    uint32_t type; /* 1: RAM (e820 types) */
    uint32_t reserved;
} hvm_memmap_entry_t;

typedef struct __attribute__((packed)) e820_entry {
    uint64_t addr;
    uint64_t size;
    uint32_t type;
} e820_entry_t;

bm_boot_t bm_boot;
static char cmdline[512];

static void add_ram(uint64_t addr, uint64_t size)
{
    if (size == 0 || bm_boot.nram == (int)(sizeof(bm_boot.ram) / sizeof(bm_boot.ram[0])))
        return;
    bm_boot.ram[bm_boot.nram].base = addr;
    bm_boot.ram[bm_boot.nram].len = size;
    bm_boot.nram++;
    bm_boot.ram_total += size;
}

/* No memory map in start_info (version 0): ask QEMU's fw_cfg for its e820 table. */
static void e820_from_fwcfg(void)
{
    uint16_t sel;
    long size = bm_fwcfg_find("etc/e820", &sel);
    e820_entry_t table[32];

    if (size <= 0)
        return;
    if ((size_t)size > sizeof(table))
        size = sizeof(table);
    bm_fwcfg_read(sel, table, (size_t)size);
    for (long i = 0; i < size / (long)sizeof(e820_entry_t); i++) {
        if (table[i].type == 1)
            add_ram(table[i].addr, table[i].size);
    }
}

bool bm_cmdline_has(const char *word)
{
    size_t n = strlen(word);

    for (const char *p = bm_boot.cmdline; (p = strstr(p, word)) != NULL; p += n) {
        bool start = p == bm_boot.cmdline || p[-1] == ' ';
        bool end = p[n] == '\0' || p[n] == ' ' || p[n] == '=';
        if (start && end)
            return true;
    }
    return false;
}

uint32_t bm_cmdline_u32(const char *word)
{
    size_t n = strlen(word);

    for (const char *p = bm_boot.cmdline; (p = strstr(p, word)) != NULL; p += n) {
        if ((p == bm_boot.cmdline || p[-1] == ' ') && p[n] == '=') {
            uint32_t v = 0;
            for (const char *d = p + n + 1; *d >= '0' && *d <= '9' && v < 100000; d++)
                v = v * 10 + (uint32_t)(*d - '0');
            return v;
        }
    }
    return 0;
}

void bm_boot_parse(uint64_t paddr)
{
    const hvm_start_info_t *si = (const hvm_start_info_t *)(uintptr_t)paddr;

    bm_boot.cmdline = cmdline;
    if (paddr == 0 || si->magic != HVM_START_MAGIC)
        bm_panic("not started by a PVH loader (start_info %#lx); boot with qemu -kernel",
                 (unsigned long)paddr);
    if (si->cmdline_paddr) {
        strncpy(cmdline, (const char *)(uintptr_t)si->cmdline_paddr, sizeof(cmdline) - 1);
    }
    if (si->version >= 1 && si->memmap_paddr && si->memmap_entries) {
        const hvm_memmap_entry_t *m = (const hvm_memmap_entry_t *)(uintptr_t)si->memmap_paddr;
        for (uint32_t i = 0; i < si->memmap_entries; i++) {
            if (m[i].type == 1)
                add_ram(m[i].addr, m[i].size);
        }
    } else {
        e820_from_fwcfg();
    }
    if (bm_boot.nram == 0)
        bm_panic("no usable RAM in the boot memory map");
    bm_boot.tty = bm_cmdline_has("tty");
    bm_boot.cols = bm_cmdline_u32("cols");
    bm_boot.rows = bm_cmdline_u32("rows");
    bm_boot.verbose = bm_cmdline_has("verbose");
}

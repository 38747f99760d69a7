/* fwcfg.c — QEMU's fw_cfg through its I/O ports and DMA interface (how --manifest reaches the
 * image). */
#include <string.h>

#include <bm/bm.h>
#include <bm/x86.h>

/*
 * Ports 0x510 (selector, 16-bit) and 0x511 (data, byte at a time) exist on q35
 * and microvm; 0x514 takes the address of a DMA descriptor (big-endian halves).
 * Byte reads cost one VM exit each, so files are read by DMA when offered.
 */
enum {
    FW_SEL = 0x510,
    FW_DATA = 0x511,
    FW_DMA = 0x514,
    FW_SIGNATURE = 0x0000,
    FW_ID = 0x0001,
    FW_FILE_DIR = 0x0019,
    FW_DMA_ERROR = 0x01,
    FW_DMA_READ = 0x02,
    FW_DMA_SELECT = 0x08,
};

typedef struct fw_dma {
    uint32_t control; /* big-endian */
    uint32_t length;
    uint64_t address;
} fw_dma_t;

static int state; /* 0 unknown, 1 no fw_cfg, 2 ports only, 3 ports + DMA */

static uint32_t be32(uint32_t v)
{
    return __builtin_bswap32(v);
}

static int probe(void)
{
    char sig[4];

    if (state)
        return state;
    outw(FW_SEL, FW_SIGNATURE);
    for (int i = 0; i < 4; i++)
        sig[i] = (char)inb(FW_DATA);
    if (memcmp(sig, "QEMU", 4) != 0) {
        state = 1;
        return state;
    }
    outw(FW_SEL, FW_ID);
    uint32_t id = inb(FW_DATA);
    state = (id & 2) ? 3 : 2;
    return state;
}

/* Read len bytes of the item `select` from its start (select < 0: continue the current one). */
static void read_item(int select, void *buf, size_t len)
{
    if (probe() == 3) {
        static volatile fw_dma_t dma __attribute__((aligned(16)));
        uint32_t ctl = FW_DMA_READ | (select >= 0 ? FW_DMA_SELECT | ((uint32_t)select << 16) : 0);
        dma.control = be32(ctl);
        dma.length = be32((uint32_t)len);
        dma.address = __builtin_bswap64((uint64_t)(uintptr_t)buf);
        uint64_t a = (uint64_t)(uintptr_t)&dma;
        barrier();
        outl(FW_DMA, be32((uint32_t)(a >> 32)));
        outl(FW_DMA + 4, be32((uint32_t)a));
        while (be32(dma.control) & ~(uint32_t)FW_DMA_ERROR)
            cpu_pause();
        return;
    }
    if (select >= 0)
        outw(FW_SEL, (uint16_t)select);
    for (size_t i = 0; i < len; i++)
        ((uint8_t *)buf)[i] = inb(FW_DATA);
}

long bm_fwcfg_find(const char *name, uint16_t *select)
{
    struct __attribute__((packed)) {
        uint32_t size;
        uint16_t select;
        uint16_t reserved;
        char name[56];
    } f;
    uint32_t count;

    if (probe() == 1)
        return -1;
    read_item(FW_FILE_DIR, &count, sizeof(count));
    count = be32(count);
    for (uint32_t i = 0; i < count && i < 1024; i++) {
        read_item(-1, &f, sizeof(f));
        if (strncmp(f.name, name, sizeof(f.name)) == 0) {
            *select = __builtin_bswap16(f.select);
            return (long)be32(f.size);
        }
    }
    return -1;
}

void bm_fwcfg_read(uint16_t select, void *buf, size_t len)
{
    read_item(select, buf, len);
}

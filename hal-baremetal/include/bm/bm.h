/* bm.h — the bare-metal platform's internal interfaces (boot, CPU, memory, clock, serial, devices).
 */
#ifndef BM_BM_H
#define BM_BM_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <os/os.h>

/* Set by entry.S. */
extern uint64_t bm_tsc_entry;  /* TSC at the first instruction */
extern uint64_t bm_start_info; /* physical address of struct hvm_start_info */

/* Vectors. */
enum {
    BM_VEC_TIMER = 0x20,    /* LAPIC timer */
    BM_VEC_SERIAL = 0x24,   /* COM1 through IOAPIC pin 4 */
    BM_VEC_PIC_BASE = 0x30, /* the legacy PIC, remapped and masked */
    BM_VEC_DEVICE = 0x40,   /* 0x40.. : device interrupts by GSI (virtio) */
    BM_VEC_SPURIOUS = 0xff,
};

/* What the stubs in isr.S push, lowest address first. */
typedef struct bm_frame {
    uint64_t r15, r14, r13, r12, r11, r10, r9, r8, rbp, rdi, rsi, rdx, rcx, rbx, rax;
    uint64_t vector, error;
    uint64_t rip, cs, rflags, rsp, ss; /* pushed by the CPU */
} bm_frame_t;

/* Exit statuses the platform itself produces (documented in docs/baremetal.md). */
enum {
    BM_STATUS_PANIC = OS_EXIT_KERNEL_PANIC, /* kernel fault or panic (os.h defines the statuses) */
};

/* ---- boot.c: the boot information ---------------------------------------------------- */
typedef struct bm_region {
    uint64_t base, len;
} bm_region_t;
typedef struct bm_boot {
    const char *cmdline; /* kernel command line (-append), "" if none */
    bm_region_t ram[16]; /* usable RAM from the boot memory map */
    int nram;
    uint64_t ram_total;
    bool tty;     /* "tty" on the command line: the serial line is a person's terminal (the
                     console server edits lines); without it, lines are piped */
    uint32_t cols, rows; /* "cols=N rows=N": the terminal's size, 0 unknown */
    bool verbose; /* "verbose": platform log lines at boot */
} bm_boot_t;
extern bm_boot_t bm_boot;
void bm_boot_parse(uint64_t start_info_paddr);
bool bm_cmdline_has(const char *word);
/* The number after "word=" on the command line, or 0. */
uint32_t bm_cmdline_u32(const char *word);

/* ---- cpu.c: GDT, IDT, exceptions ------------------------------------------------------- */
void bm_cpu_init(void);
typedef void (*bm_irq_fn)(void *self);
void bm_irq_set(int vector, bm_irq_fn fn, void *self);
_Noreturn void bm_panic(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
extern volatile bool bm_kernel_running; /* k_boot returned: task faults go to the kernel */

/* ---- mem.c: page tables and physical memory ------------------------------------------- */
void bm_mem_init(void);
/* Page-aligned, zeroed, physically contiguous (identity mapped) memory for DMA; never freed. */
void *bm_pages_alloc(size_t npages);
/* Make [phys, phys+len) reachable (identity, uncached); for BARs above 4 GiB. 0 or -1. */
int bm_map_mmio(uint64_t phys, uint64_t len);
void bm_mem_describe(void); /* one log line: RAM, image, DMA pool, heap */

/* ---- apic.c: LAPIC, IOAPIC, legacy PIC -------------------------------------------------- */
void bm_apic_init(void);
void bm_apic_eoi(void);
/* Route a GSI to a vector on this CPU (edge, active high unless level). */
void bm_ioapic_route(int gsi, int vector, bool level); /* gsi 24-47: the second IOAPIC */
uint32_t bm_lapic_id(void);
int bm_vector_alloc(void); /* a free device vector (0x40..), -1 when none is left */
void bm_lapic_timer_oneshot(uint32_t count); /* unmasks; 0 stops */
void bm_lapic_timer_mask(void);
uint32_t bm_lapic_timer_current(void);

/* ---- clock.c: TSC clock and the kernel timer ----------------------------------------- */
void bm_clock_init(void);
void bm_clock_start(void); /* install the timer interrupt handler */
uint64_t bm_tsc_hz(void);
const char *bm_tsc_source(void);
uint64_t bm_tsc_to_ns(uint64_t ticks);
extern volatile bool bm_timer_due; /* the timer interrupt fired: call k_timer_tick */

/* ---- serial.c: the 16550 console ----------------------------------------------------- */
void bm_serial_init(void);
void bm_serial_write(const void *buf, size_t len);
void bm_serial_write_now(const void *buf, size_t len); /* bypasses the boot hold */
void bm_serial_start_irq(void);
/* Move received bytes to the kernel as console lines; true if anything is pending. */
bool bm_serial_poll(void);
bool bm_serial_pending(void);
/* While set, console output is held in memory (boot), then flushed at ready. */
void bm_console_hold(bool hold);
void bm_printf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void bm_vprintf(const char *fmt, va_list ap);
int bm_console_register(void);

/* ---- fwcfg.c: QEMU's fw_cfg (the --manifest file) -------------------------------------- */
/* Find a fw_cfg file by name; its size, or -1. Read it into buf (up to len bytes). */
long bm_fwcfg_find(const char *name, uint16_t *select);
void bm_fwcfg_read(uint16_t select, void *buf, size_t len);

/* ---- entropy.c ---------------------------------------------------------------------- */
void bm_entropy_init(void);
const char *bm_entropy_source(void);

/* ---- trace_serial.c: trace records as frames on virtio-console or COM2 ------------------ */
struct hal_trace_sink;
/* The sink for k_config_t.trace if fw_cfg opt/orrery/trace exists, else NULL: virtio-console
 * when a device is there (after bm_virtio_probe), else COM2. */
const struct hal_trace_sink *bm_trace_init(void);
void bm_trace_finish(void); /* every record out of the machine before it stops (once; exit
                              * and panic) */
/* "traceglitch" (tests), on either channel: before frame n with n % 10 == GLITCH_JUNK_AT the
 * bytes bm_trace_junk (a magic, then a length that fails its check, and a loose byte); the
 * check of frame n with n % 10 == GLITCH_CRC_AT spoiled (COM2: the CRC; virtio: the version 2
 * check), so the host drops that record, counted. */
enum { BM_TRACE_GLITCH_JUNK_AT = 3, BM_TRACE_GLITCH_CRC_AT = 6, BM_TRACE_JUNK_BYTES = 13 };
extern const uint8_t bm_trace_junk[BM_TRACE_JUNK_BYTES];
/* virtio/console.c: the bulk channel. NULL when there is no usable virtio-console device. */
const struct hal_trace_sink *bm_trace_virtio_init(bool glitch);
void bm_trace_virtio_idle(void);   /* run loop, before halting: send a partly filled buffer */
void bm_trace_virtio_finish(void); /* send the rest and wait until QEMU has it all */

/* ---- exit ------------------------------------------------------------------------------ */
_Noreturn void bm_exit(int status); /* isa-debug-exit, else halt */

#endif

/* cpu.c — GDT, TSS, IDT and the trap dispatcher: exceptions dump registers and kill the task or
 * panic. */
#include <stdio.h>
#include <string.h>

#include <k/kernel.h>

#include <bm/bm.h>
#include <bm/x86.h>

/* Selectors: 0x08 code, 0x10 data, 0x18 TSS (two slots). */
static uint64_t gdt[5] = {
    0,
    0x00AF9A000000FFFFull, /* 64-bit code, DPL 0 */
    0x00CF92000000FFFFull, /* data */
    0,
    0, /* TSS, filled in below */
};

static struct __attribute__((packed)) {
    uint32_t reserved0;
    uint64_t rsp[3];
    uint64_t reserved1;
    uint64_t ist[7];
    uint64_t reserved2;
    uint16_t reserved3;
    uint16_t iomap;
} tss;

typedef struct __attribute__((packed)) idt_gate {
    uint16_t off_lo;
    uint16_t sel;
    uint8_t ist;
    uint8_t type;
    uint16_t off_mid;
    uint32_t off_hi;
    uint32_t zero;
} idt_gate_t;

static idt_gate_t idt[256] __attribute__((aligned(16)));
static uint8_t fault_stack[16384] __attribute__((aligned(16))); /* IST1: double fault, NMI */
extern const uint64_t bm_isr_table[256];
extern char boot_stack_guard[];

static struct {
    bm_irq_fn fn;
    void *self;
} handlers[256];

volatile bool bm_kernel_running;
static volatile int irq_depth; /* > 0 while an interrupt handler runs */
static volatile int fault_depth;

static void load_tables(void)
{
    struct __attribute__((packed)) {
        uint16_t limit;
        uint64_t base;
    } gp = {sizeof(gdt) - 1, (uint64_t)(uintptr_t)gdt},
      ip = {sizeof(idt) - 1, (uint64_t)(uintptr_t)idt};

    __asm__ volatile("lgdt %0" : : "m"(gp));
    __asm__ volatile("lidt %0" : : "m"(ip));
    __asm__ volatile("ltr %w0" : : "r"(0x18));
}

void bm_cpu_init(void)
{
    uint64_t base = (uint64_t)(uintptr_t)&tss;
    uint64_t limit = sizeof(tss) - 1;

    tss.ist[0] = (uint64_t)(uintptr_t)(fault_stack + sizeof(fault_stack));
    tss.iomap = sizeof(tss);
    gdt[3] = (limit & 0xffff) | ((base & 0xffffff) << 16) | (0x89ull << 40) |
             (((limit >> 16) & 0xf) << 48) | (((base >> 24) & 0xff) << 56);
    gdt[4] = base >> 32;
    for (int v = 0; v < 256; v++) {
        uint64_t off = bm_isr_table[v];
        idt[v].off_lo = (uint16_t)off;
        idt[v].sel = 0x08;
        idt[v].ist = (v == 2 || v == 8) ? 1 : 0;
        idt[v].type = 0x8E; /* present, DPL 0, 64-bit interrupt gate */
        idt[v].off_mid = (uint16_t)(off >> 16);
        idt[v].off_hi = (uint32_t)(off >> 32);
    }
    load_tables();
}

void bm_irq_set(int vector, bm_irq_fn fn, void *self)
{
    handlers[vector].self = self;
    handlers[vector].fn = fn;
}

static const char *const exception_names[32] = {
    "divide error",
    "debug",
    "NMI",
    "breakpoint",
    "overflow",
    "bound range exceeded",
    "invalid opcode",
    "device not available",
    "double fault",
    "coprocessor segment overrun",
    "invalid TSS",
    "segment not present",
    "stack fault",
    "general protection fault",
    "page fault",
    "reserved",
    "x87 floating point",
    "alignment check",
    "machine check",
    "SIMD floating point",
    "virtualization",
    "control protection",
};

static const char *exception_name(uint64_t v)
{
    return v < 32 && exception_names[v] ? exception_names[v] : "reserved exception";
}

static void dump(const bm_frame_t *f, uint64_t cr2)
{
    bm_printf("[fault] %s (vector %lu, error %#lx) at rip %#lx\n", exception_name(f->vector),
              (unsigned long)f->vector, (unsigned long)f->error, (unsigned long)f->rip);
    if (f->vector == 14)
        bm_printf("[fault] cr2 0x%016lx (%s, %s)\n", (unsigned long)cr2,
                  (f->error & 2) ? "write" : "read",
                  (f->error & 1) ? "protection violation" : "page not present");
    bm_printf("[fault] rax %016lx rbx %016lx rcx %016lx rdx %016lx\n", (unsigned long)f->rax,
              (unsigned long)f->rbx, (unsigned long)f->rcx, (unsigned long)f->rdx);
    bm_printf("[fault] rsi %016lx rdi %016lx rbp %016lx rsp %016lx\n", (unsigned long)f->rsi,
              (unsigned long)f->rdi, (unsigned long)f->rbp, (unsigned long)f->rsp);
    bm_printf("[fault] r8  %016lx r9  %016lx r10 %016lx r11 %016lx\n", (unsigned long)f->r8,
              (unsigned long)f->r9, (unsigned long)f->r10, (unsigned long)f->r11);
    bm_printf("[fault] r12 %016lx r13 %016lx r14 %016lx r15 %016lx\n", (unsigned long)f->r12,
              (unsigned long)f->r13, (unsigned long)f->r14, (unsigned long)f->r15);
    bm_printf("[fault] rflags %08lx cs %02lx ss %02lx cr3 %08lx\n", (unsigned long)f->rflags,
              (unsigned long)f->cs, (unsigned long)f->ss, (unsigned long)read_cr3());
}

/*
 * A task's handler faulted: hand it to the kernel, which kills the task and
 * longjmps back into k_run_one. We leave this exception frame for good, so
 * nothing the iretq would have restored matters except the interrupt flag,
 * which the interrupt gate cleared: turn it back on.
 */
static _Noreturn void task_fault(const char *what)
{
    fault_depth = 0;
    irq_enable();
    k_task_fault(0, what);
}

static void exception(bm_frame_t *f)
{
    uint64_t cr2 = f->vector == 14 ? read_cr2() : 0;
    char what[160];

    if (++fault_depth > 1) {
        /* NEVER: a fault while reporting a fault; print the bare minimum. */
        bm_printf("\n[fault] nested %s at rip %#lx\n", exception_name(f->vector),
                  (unsigned long)f->rip);
        bm_exit(BM_STATUS_PANIC);
    }
    if (f->vector == 8)
        snprintf(what, sizeof(what), "double fault (rip 0x%lx, rsp 0x%lx: a stack overflow?)",
                 (unsigned long)f->rip, (unsigned long)f->rsp);
    else if (f->vector == 14 && cr2 >= (uintptr_t)boot_stack_guard &&
             cr2 < (uintptr_t)boot_stack_guard + 4096)
        snprintf(what, sizeof(what), "stack overflow (page fault at 0x%lx, rip 0x%lx)",
                 (unsigned long)cr2, (unsigned long)f->rip);
    else if (f->vector == 14)
        snprintf(what, sizeof(what), "page fault at 0x%lx (%s, rip 0x%lx)", (unsigned long)cr2,
                 (f->error & 2) ? "write" : "read", (unsigned long)f->rip);
    else
        snprintf(what, sizeof(what), "%s (rip 0x%lx)", exception_name(f->vector),
                 (unsigned long)f->rip);
    dump(f, cr2);
    /* A double fault inside a task's handler is, in practice, the handler running off the
     * stack: IST1 gave us a stack to report it on, and the longjmp returns to the main one. */
    if (bm_kernel_running && irq_depth == 0 && f->vector != 18 && k_in_task(0))
        task_fault(what);
    bm_panic("%s in the kernel%s", what, irq_depth ? " (in an interrupt handler)" : "");
}

void bm_trap(bm_frame_t *f);
void bm_trap(bm_frame_t *f)
{
    uint64_t v = f->vector;

    if (v < 32) {
        exception(f);
        return;
    }
    if (v == BM_VEC_SPURIOUS || (v >= BM_VEC_PIC_BASE && v < BM_VEC_PIC_BASE + 16))
        return; /* spurious LAPIC or (masked) PIC interrupt: no EOI */
    irq_depth++;
    if (handlers[v].fn)
        handlers[v].fn(handlers[v].self);
    irq_depth--;
    bm_apic_eoi();
}

/* Used by libc's assert(): in a task it kills the task, else the kernel panics. */
_Noreturn void bm_assert_fail(const char *expr, const char *file, int line, const char *func)
{
    char what[200];

    snprintf(what, sizeof(what), "assertion failed: %s (%s:%d, %s)", expr, file, line, func);
    if (bm_kernel_running && irq_depth == 0 && k_in_task(0))
        k_task_fault(0, what);
    bm_panic("%s", what);
}

_Noreturn void bm_panic(const char *fmt, ...)
{
    char msg[256];
    va_list ap;

    irq_disable();
    bm_console_hold(false);
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    bm_printf("\n[panic] %s\n[panic] halting with exit status %d\n", msg, BM_STATUS_PANIC);
    bm_trace_finish(); /* the records that led here are the ones worth having */
    bm_exit(BM_STATUS_PANIC);
}

/*
 * QEMU's isa-debug-exit (iobase 0xf4, 4 bytes) ends QEMU with exit code
 * (value << 1) | 1. We write status + 1, so the host reads code 2*status + 3
 * and QEMU's own failures (exit 1) are never mistaken for "status 0".
 * Statuses above OS_EXIT_STATUS_MAX (126: 8-bit exit codes) become it.
 */
_Noreturn void bm_exit(int status)
{
    if (status < 0 || status > OS_EXIT_STATUS_MAX)
        status = OS_EXIT_STATUS_MAX;
    irq_disable();
    outl(0xf4, (uint32_t)status + 1);
    bm_serial_write("[exit] no isa-debug-exit device; halted\n", 41);
    for (;;)
        __asm__ volatile("cli; hlt");
}

/* entry.S — PVH entry (32-bit protected mode, from QEMU -kernel) to long mode, then bm_main. */

/*
 * QEMU (q35 with SeaBIOS + pvh.bin, microvm with qboot) loads this ELF at its
 * physical addresses and jumps to the address in the XEN_ELFNOTE_PHYS32_ENTRY
 * note: 32-bit protected mode, paging off, flat segments, interrupts off,
 * %ebx = physical address of struct hvm_start_info. We read the TSC first (the
 * boot line's "entry"), zero .bss, identity-map the first 4 GiB (2 MiB pages;
 * the first 2 MiB with 4 KiB pages so that bm_mem_init can unmap page 0 and NULL faults;
 * 3-4 GiB uncached for MMIO), enable PAE + long mode and jump to 64-bit code.
 */
#define XEN_ELFNOTE_PHYS32_ENTRY 18

    .section .note.pvh, "a", @note
    .align 4
    .long 4                         /* name size: "Xen\0" */
    .long 4                         /* descriptor size */
    .long XEN_ELFNOTE_PHYS32_ENTRY
    .asciz "Xen"
    .long pvh_start
    .align 4

    .section .boot.text, "ax"
    .code32
    .globl pvh_start
pvh_start:
    cli
    cld
    movl %ebx, bm_start_info        /* in .data: survives the .bss clearing */
    rdtsc
    movl %eax, bm_tsc_entry
    movl %edx, bm_tsc_entry + 4

    /*
     * Caches. qboot (microvm) leaves the MTRRs disabled, which makes all of
     * RAM uncached under KVM (everything runs ~50x slower). If they are off,
     * enable them with write-back as the default type; MMIO ranges are made
     * uncached by the page tables (PCD|PWT). Also clear CR0.CD/NW.
     */
    movl %cr0, %eax
    andl $0x9FFFFFFF, %eax
    movl %eax, %cr0
    movl $1, %eax
    cpuid
    testl $0x1000, %edx             /* MTRR supported */
    jz 1f
    movl $0x2FF, %ecx               /* IA32_MTRR_DEF_TYPE */
    rdmsr
    testl $0x800, %eax              /* already enabled by the firmware (SeaBIOS) */
    jnz 1f
    movl $0x806, %eax               /* enabled, default write-back */
    xorl %edx, %edx
    wrmsr
1:
    movl $__bss_start, %edi
    movl $__bss_end, %ecx
    subl %edi, %ecx
    shrl $2, %ecx                   /* the linker script page-aligns both ends */
    xorl %eax, %eax
    rep stosl

    /* pt0: 4 KiB pages for 0..2 MiB. Page 0 stays mapped until bm_mem_init has
     * read the boot information (the firmware may leave start_info there). */
    movl $boot_pt0, %edi
    movl $0x0003, %eax              /* 4 KiB, present | writable */
    movl $512, %ecx
2:  movl %eax, (%edi)
    addl $0x1000, %eax
    addl $8, %edi
    loop 2b

    /* 4 page directories: 2048 entries of 2 MiB. */
    movl $boot_pd, %edi
    movl $0x83, %eax                /* present | writable | 2 MiB */
    xorl %edx, %edx                 /* entry index */
3:  movl %eax, %ebx
    cmpl $1536, %edx                /* >= 3 GiB: PCD|PWT (MMIO) */
    jb 4f
    orl $0x18, %ebx
4:  movl %ebx, (%edi)
    addl $0x200000, %eax
    addl $8, %edi
    incl %edx
    cmpl $2048, %edx
    jne 3b
    movl $boot_pt0 + 3, boot_pd     /* the first 2 MiB through pt0 */

    movl $boot_pd + 3, boot_pdpt
    movl $boot_pd + 0x1003, boot_pdpt + 8
    movl $boot_pd + 0x2003, boot_pdpt + 16
    movl $boot_pd + 0x3003, boot_pdpt + 24
    movl $boot_pdpt + 3, boot_pml4

    movl $boot_pml4, %eax
    movl %eax, %cr3
    movl %cr4, %eax
    orl $0x20, %eax                 /* PAE */
    movl %eax, %cr4
    movl $0xC0000080, %ecx          /* EFER */
    rdmsr
    orl $0x100, %eax                /* LME */
    wrmsr
    movl %cr0, %eax
    orl $0x80010001, %eax           /* PG | WP | PE */
    movl %eax, %cr0
    lgdt boot_gdt_ptr
    ljmp $0x08, $long_entry

    .code64
long_entry:
    movw $0x10, %ax
    movw %ax, %ds
    movw %ax, %es
    movw %ax, %ss
    xorw %ax, %ax
    movw %ax, %fs
    movw %ax, %gs
    movq $boot_stack_top, %rsp
    xorl %ebp, %ebp
    movl bm_start_info, %edi
    call bm_main
5:  cli
    hlt
    jmp 5b

    .section .rodata
    .align 16
boot_gdt:
    .quad 0
    .quad 0x00AF9A000000FFFF        /* 0x08: 64-bit code */
    .quad 0x00CF92000000FFFF        /* 0x10: data */
boot_gdt_end:
boot_gdt_ptr:
    .word boot_gdt_end - boot_gdt - 1
    .long boot_gdt

    .section .data
    .align 8
    .globl bm_tsc_entry, bm_start_info
bm_tsc_entry:  .quad 0
bm_start_info: .quad 0

    .section .bss
    .align 4096
    .globl boot_pml4, boot_pdpt, boot_pd, boot_pt0
boot_pml4:  .space 4096
boot_pdpt:  .space 4096
boot_pd:    .space 4096 * 4
boot_pt0:   .space 4096
    .globl boot_stack_guard, boot_stack_top
boot_stack_guard: .space 4096   /* unmapped by bm_mem_init: an overflow faults */
boot_stack: .space 65536
boot_stack_top:

    .section .note.GNU-stack, "", @progbits

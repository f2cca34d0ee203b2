//! The loader's first instructions: the multiboot 1 header (with the a.out kludge, so that
//! QEMU accepts an ELF64 file) and the 32-bit entry that builds an identity map of the first
//! 4 GiB with 2 MiB pages, enters long mode and calls `loader_main(magic, info)`.
//!
//! It must never touch memory outside the loader image: the modules QEMU loaded sit right
//! after `__loader_bss_end`.

core::arch::global_asm!(
    r#"
    .section .multiboot, "a"
    .balign 4
multiboot_header:
    .long 0x1BADB002
    .long 0x00010003
    .long -(0x1BADB002 + 0x00010003)
    .long multiboot_header
    .long __loader_start
    .long __loader_load_end
    .long __loader_bss_end
    .long loader_entry32

    .section .bss
    .balign 4096
boot_page_tables:
    .space 6 * 4096
boot_stack:
    .space 64 * 1024
boot_stack_top:

    .section .data
    .balign 8
boot_gdt:
    .quad 0
    .quad 0x00AF9A000000FFFF
    .quad 0x00CF92000000FFFF
boot_gdt_end:
boot_gdt_pointer:
    .word boot_gdt_end - boot_gdt - 1
    .long boot_gdt
boot_magic:
    .long 0
boot_info:
    .long 0

    .section .text.entry32, "ax"
    .code32
    .global loader_entry32
loader_entry32:
    cli
    cld
    mov dword ptr [boot_magic], eax
    mov dword ptr [boot_info], ebx
    mov esp, offset boot_stack_top

    mov edi, offset boot_page_tables
    mov ecx, 6 * 4096 / 4
    xor eax, eax
    rep stosd

    mov eax, offset boot_page_tables + 4096
    or eax, 3
    mov dword ptr [boot_page_tables], eax

    mov edi, offset boot_page_tables + 4096
    mov eax, offset boot_page_tables + 8192
    or eax, 3
    mov ecx, 4
2:
    mov dword ptr [edi], eax
    add eax, 4096
    add edi, 8
    loop 2b

    mov edi, offset boot_page_tables + 8192
    mov eax, 0x83
    mov ecx, 2048
3:
    mov dword ptr [edi], eax
    add eax, 0x200000
    add edi, 8
    loop 3b

    mov eax, cr4
    or eax, 1 << 5
    mov cr4, eax
    mov eax, offset boot_page_tables
    mov cr3, eax

    mov eax, 0x80000001
    cpuid
    xor esi, esi
    bt edx, 20
    jnc 4f
    mov esi, 1 << 11
4:
    mov ecx, 0xC0000080
    rdmsr
    or eax, 1 << 8
    or eax, esi
    wrmsr

    mov eax, cr0
    or eax, 0x80010001
    mov cr0, eax

    lgdt [boot_gdt_pointer]
    mov eax, 0x08
    push eax
    mov eax, offset loader_entry64
    push eax
    retf

    .code64
loader_entry64:
    mov ax, 0x10
    mov ds, ax
    mov es, ax
    mov ss, ax
    mov fs, ax
    mov gs, ax
    mov rsp, offset boot_stack_top
    mov edi, dword ptr [boot_magic]
    mov esi, dword ptr [boot_info]
    call loader_main
5:
    hlt
    jmp 5b
"#
);

//! The IDT and the 256 hand-written entry stubs. Each stub pushes a zero error code when the
//! CPU does not, then its vector, and jumps to `trap_common`, which saves the full
//! [`TrapFrame`], swaps GS when it came from user mode, and calls `trap::dispatch`.
//! `trap_return` is the one way back to an interrupted context (user threads start there).

use super::gdt::{IST_DOUBLE_FAULT, IST_MACHINE_CHECK, IST_NMI};
use super::trap_frame::{CS_OFFSET, KERNEL_CODE, TrapFrame};
use core::arch::{asm, global_asm};

/// The vector user code may raise with `int` to make a foreign system call (xv6's `int $64`).
pub const INT_SYSCALL_VECTOR: usize = mach_abi::forward::entry::INT_0X40 as usize;

/// Each stub starts at `trap_stubs + vector * STUB_SIZE`.
const STUB_SIZE: u64 = 16;

global_asm!(
    r#"
    .section .text
    .balign 16
    .global trap_stubs
trap_stubs:
    .set vector, 0
    .rept 256
    .balign 16
    .if (vector == 8) || (vector == 10) || (vector == 11) || (vector == 12) || (vector == 13) || (vector == 14) || (vector == 17) || (vector == 21) || (vector == 29) || (vector == 30)
    .else
    push 0
    .endif
    push vector
    jmp trap_common
    .set vector, vector + 1
    .endr

trap_common:
    push rax
    push rbx
    push rcx
    push rdx
    push rsi
    push rdi
    push rbp
    push r8
    push r9
    push r10
    push r11
    push r12
    push r13
    push r14
    push r15
    test byte ptr [rsp + {cs}], 3
    jz 2f
    swapgs
2:
    mov rdi, rsp
    cld
    call {dispatch}

    .global trap_return
trap_return:
    test byte ptr [rsp + {cs}], 3
    jz 3f
    swapgs
3:
    pop r15
    pop r14
    pop r13
    pop r12
    pop r11
    pop r10
    pop r9
    pop r8
    pop rbp
    pop rdi
    pop rsi
    pop rdx
    pop rcx
    pop rbx
    pop rax
    add rsp, 16
    iretq
"#,
    cs = const CS_OFFSET,
    dispatch = sym trap_entry,
);

extern "C" fn trap_entry(frame: *mut TrapFrame) {
    crate::trap::dispatch(frame);
}

#[derive(Clone, Copy)]
#[repr(C)]
struct Gate {
    offset_low: u16,
    selector: u16,
    ist: u8,
    flags: u8,
    offset_mid: u16,
    offset_high: u32,
    reserved: u32,
}

static mut IDT: [Gate; 256] =
    [Gate { offset_low: 0, selector: 0, ist: 0, flags: 0, offset_mid: 0, offset_high: 0, reserved: 0 }; 256];

#[repr(C, packed)]
struct DescriptorPointer {
    limit: u16,
    base: u64,
}

pub fn init() {
    unsafe extern "C" {
        static trap_stubs: u8;
    }
    let stubs = &raw const trap_stubs as u64;
    // `&mut IDT` directly is refused for a static mut.
    #[allow(clippy::deref_addrof)]
    // SAFETY: runs once at boot on the only CPU, before interrupts are enabled.
    unsafe {
        let idt = &mut *(&raw mut IDT);
        for (vector, gate) in idt.iter_mut().enumerate() {
            let handler = stubs + vector as u64 * STUB_SIZE;
            let ist = match vector {
                2 => IST_NMI,
                8 => IST_DOUBLE_FAULT,
                18 => IST_MACHINE_CHECK,
                _ => 0,
            };
            *gate = Gate {
                offset_low: handler as u16,
                selector: KERNEL_CODE as u16,
                ist,
                // present, interrupt gate (IF cleared on entry); DPL 3 only for int3 (user
                // breakpoints become exceptions instead of #GP) and for `int $64`, the other
                // system-call entry (xv6's), forwarded like `syscall`.
                flags: if vector == 3 || vector == INT_SYSCALL_VECTOR { 0xEE } else { 0x8E },
                offset_mid: (handler >> 16) as u16,
                offset_high: (handler >> 32) as u32,
                reserved: 0,
            };
        }
        let pointer = DescriptorPointer {
            limit: (core::mem::size_of::<[Gate; 256]>() - 1) as u16,
            base: idt.as_ptr() as u64,
        };
        asm!("lidt [{}]", in(reg) &pointer, options(nostack));
    }
}

/// Names of the architectural exception vectors.
pub fn exception_name(vector: u64) -> &'static str {
    match vector {
        0 => "divide error",
        1 => "debug",
        2 => "non-maskable interrupt",
        3 => "breakpoint",
        4 => "overflow",
        5 => "bound range exceeded",
        6 => "invalid opcode",
        7 => "device not available",
        8 => "double fault",
        10 => "invalid TSS",
        11 => "segment not present",
        12 => "stack-segment fault",
        13 => "general protection fault",
        14 => "page fault",
        16 => "x87 floating-point error",
        17 => "alignment check",
        18 => "machine check",
        19 => "SIMD floating-point error",
        20 => "virtualization exception",
        21 => "control protection",
        _ => "reserved exception",
    }
}

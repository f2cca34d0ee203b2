//! SYSCALL/SYSRET. The entry swaps to the kernel GS, saves the user stack pointer, switches
//! to the current thread's kernel stack and builds the same [`TrapFrame`] an interrupt would,
//! so the rest of the kernel never cares how a thread entered. It returns with SYSRET when
//! the frame still looks like a plain syscall return, and with IRETQ otherwise (a changed
//! segment or a non-canonical rip, which SYSRET would fault on in ring 0).

use super::cpu::{self, MSR_EFER, MSR_FMASK, MSR_GS_BASE, MSR_KERNEL_GS_BASE, MSR_LSTAR, MSR_STAR};
use super::trap_frame::{KERNEL_CODE, SYSCALL_VECTOR, TrapFrame, USER_CODE, USER_DATA};
use core::arch::global_asm;
use mach_abi::layout::USER_END;

/// Per-CPU data reached through GS in kernel mode. Field offsets are used by the assembly.
#[repr(C)]
pub struct PerCpu {
    /// Top of the current thread's kernel stack (offset 0).
    pub kernel_stack_top: u64,
    /// Scratch slot for the user rsp during SYSCALL entry (offset 8).
    pub user_rsp: u64,
}

static mut PER_CPU: PerCpu = PerCpu { kernel_stack_top: 0, user_rsp: 0 };

/// Make `top` the kernel stack SYSCALL switches to (and interrupts from user mode, via TSS).
pub fn set_kernel_stack(top: u64) {
    // SAFETY: one CPU; only the SYSCALL entry reads this, never concurrently with this write.
    unsafe { PER_CPU.kernel_stack_top = top };
    super::gdt::set_kernel_stack(top);
}

global_asm!(
    r#"
    .section .text
    .global syscall_entry
syscall_entry:
    swapgs
    mov gs:[8], rsp
    mov rsp, gs:[0]
    push {user_data}
    push qword ptr gs:[8]
    push r11
    push {user_code}
    push rcx
    push 0
    push {vector}
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
    mov rdi, rsp
    cld
    call {dispatch}
    test al, al
    jz trap_return
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
    pop rcx
    add rsp, 8
    pop r11
    pop rsp
    swapgs
    sysretq
"#,
    user_data = const USER_DATA,
    user_code = const USER_CODE,
    vector = const SYSCALL_VECTOR,
    dispatch = sym syscall_entry_rust,
);

/// Returns true when the frame may go back with SYSRET.
extern "C" fn syscall_entry_rust(frame: *mut TrapFrame) -> bool {
    crate::trap::syscall(frame);
    // SAFETY: this thread's own saved frame, which nothing else uses now.
    let frame = unsafe { &*frame };
    frame.vector == SYSCALL_VECTOR
        && frame.cs == USER_CODE
        && frame.ss == USER_DATA
        && frame.rip < USER_END
        && frame.rsp < USER_END
}

/// The rflags bits SYSCALL clears on entry: every flag a user could set that would change
/// how the kernel runs (the arithmetic flags, TF, IF, DF, IOPL, NT, RF, AC, ID), so the kernel
/// always runs with the same flags. NT matters most: an `iretq` with NT set faults, and
/// `switch_context` keeps no flags per thread, so a user's NT would reach another thread's
/// return to user mode. (Interrupt and exception gates clear TF, NT, RF and IF themselves.)
/// SYSRET restores the user's own flags from r11.
const ENTRY_CLEARED_FLAGS: u64 = 0x0001       // CF
    | 0x0004 // PF
    | 0x0010 // AF
    | 0x0040 // ZF
    | 0x0080 // SF
    | 0x0100 // TF
    | 0x0200 // IF
    | 0x0400 // DF
    | 0x0800 // OF
    | 0x3000 // IOPL
    | 0x4000 // NT
    | 0x1_0000 // RF
    | 0x4_0000 // AC
    | 0x20_0000; // ID

pub fn init() {
    unsafe extern "C" {
        fn syscall_entry();
    }
    // SAFETY: boot-time setup of this CPU's syscall MSRs and GS bases; the selectors match
    // the GDT (SYSRET takes CS = STAR[63:48] + 16, SS = STAR[63:48] + 8).
    unsafe {
        cpu::wrmsr(MSR_EFER, cpu::rdmsr(MSR_EFER) | 1);
        cpu::wrmsr(MSR_STAR, ((USER_DATA - 8 - 3) << 48) | (KERNEL_CODE << 32));
        cpu::wrmsr(MSR_LSTAR, syscall_entry as *const () as u64);
        cpu::wrmsr(MSR_FMASK, ENTRY_CLEARED_FLAGS);
        cpu::wrmsr(MSR_GS_BASE, &raw const PER_CPU as u64);
        cpu::wrmsr(MSR_KERNEL_GS_BASE, 0);
    }
}

//! Switching kernel stacks between threads: save the callee-saved registers on the old
//! stack, store its pointer, load the new one, restore, return. A new thread's stack is
//! prepared so that this return lands in `trap_return` with its user frame on top.

use super::trap_frame::TrapFrame;
use core::arch::global_asm;

global_asm!(
    r#"
    .section .text
    .global switch_context
switch_context:
    push rbp
    push rbx
    push r12
    push r13
    push r14
    push r15
    mov [rdi], rsp
    mov rsp, rsi
    pop r15
    pop r14
    pop r13
    pop r12
    pop rbx
    pop rbp
    ret
"#
);

unsafe extern "C" {
    /// Save the current context's stack pointer in `*save` and continue on `load`.
    pub fn switch_context(save: *mut u64, load: u64);
    fn trap_return();
}

/// Lay out a fresh kernel stack (top at `stack_top`, 16-byte aligned) so that switching to
/// it enters user mode with `frame`. Returns the stack pointer to switch to.
///
/// # Safety
/// `[stack_top - 512, stack_top)` must be writable memory owned by the new thread.
pub unsafe fn prepare_user_entry(stack_top: u64, frame: &TrapFrame) -> u64 {
    let frame_at = stack_top - core::mem::size_of::<TrapFrame>() as u64;
    // SAFETY: within the caller's stack.
    unsafe {
        (frame_at as *mut TrapFrame).write(*frame);
        let mut sp = frame_at as *mut u64;
        sp = sp.sub(1);
        sp.write(trap_return as *const () as u64);
        for _ in 0..6 {
            sp = sp.sub(1);
            sp.write(0);
        }
        sp as u64
    }
}

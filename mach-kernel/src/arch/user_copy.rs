//! Copying to and from the current task's memory without walking its page tables: the
//! copy runs on the user addresses directly, and a page fault inside it is turned by the
//! fault handler into an error return instead of a kernel exception.
//!
//! Callers check that the range lies in user space first; kernel pages are never touched
//! here. CR0.WP is set, so writing a read-only user page faults too.

use core::arch::global_asm;

global_asm!(
    r#"
    .section .text
    .global user_copy
    // user_copy(dst: rdi, src: rsi, len: rdx) -> eax: 0 copied, 1 faulted
user_copy:
    mov rcx, rdx
    shr rcx, 3
    .global user_copy_start
user_copy_start:
    rep movsq
    mov rcx, rdx
    and rcx, 7
    rep movsb
    .global user_copy_end
user_copy_end:
    xor eax, eax
    ret
    .global user_copy_fault
user_copy_fault:
    mov eax, 1
    ret
"#
);

unsafe extern "C" {
    fn user_copy(dst: *mut u8, src: *const u8, len: usize) -> u32;
    static user_copy_start: u8;
    static user_copy_end: u8;
    static user_copy_fault: u8;
}

/// Whether `[address, address + len)` lies in user space.
#[inline(always)]
fn in_user_space(address: u64, len: usize) -> bool {
    address.checked_add(len as u64).is_some_and(|end| end <= mach_abi::layout::USER_END)
}

/// Copy `len` bytes of the current address space's user memory at `user` to `to`; false if
/// the range is not user space or a page fault stopped the copy (part may have been copied).
///
/// # Safety
/// `to` must be kernel memory valid for `len` bytes of writes.
#[inline(always)]
pub unsafe fn copy_from_user(to: *mut u8, user: u64, len: usize) -> bool {
    // SAFETY: the source is user space (checked; faults are fixed up), `to` the caller's.
    in_user_space(user, len) && unsafe { user_copy(to, user as *const u8, len) == 0 }
}

/// Copy `len` bytes at `from` into the current address space's user memory at `user`; false
/// as for [`copy_from_user`].
///
/// # Safety
/// `from` must be kernel memory valid for `len` bytes of reads.
#[inline(always)]
pub unsafe fn copy_to_user(user: u64, from: *const u8, len: usize) -> bool {
    // SAFETY: the destination is user space (checked; faults are fixed up), `from` the caller's.
    in_user_space(user, len) && unsafe { user_copy(user as *mut u8, from, len) == 0 }
}

/// If `rip` is inside the copy routine, where to resume after a page fault there.
pub fn fixup_for(rip: u64) -> Option<u64> {
    let start = &raw const user_copy_start as u64;
    let end = &raw const user_copy_end as u64;
    (start..end).contains(&rip).then_some(&raw const user_copy_fault as u64)
}

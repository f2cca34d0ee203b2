//! The `syscall` instruction: number in rax, arguments in rdi, rsi, rdx, r10, r8, r9; the
//! kernel clobbers rcx and r11 (SYSCALL/SYSRET) and returns in rax.

/// # Safety
/// The trap may read or write memory that the arguments point at.
pub unsafe fn raw_syscall(number: i64, args: [u64; 6]) -> i64 {
    let result: i64;
    // SAFETY: delegated to the caller; the register contract is the kernel's ABI.
    unsafe {
        core::arch::asm!(
            "syscall",
            inlateout("rax") number => result,
            in("rdi") args[0],
            in("rsi") args[1],
            in("rdx") args[2],
            in("r10") args[3],
            in("r8") args[4],
            in("r9") args[5],
            lateout("rcx") _,
            lateout("r11") _,
            options(nostack),
        );
    }
    result
}

//! The end of the line for kernel bugs: the panic handler prints the message, a
//! frame-pointer backtrace and the last trace records (the flight recorder) on the kernel
//! log and stops QEMU with the failure status.

use crate::arch::cpu;
use crate::log;
use core::fmt::Write;
use mach_abi::qemu_exit;

#[panic_handler]
fn panic(info: &core::panic::PanicInfo) -> ! {
    let mut out = log::emergency();
    let _ = writeln!(out, "KERNEL PANIC: {info}");
    let rbp: u64;
    // SAFETY: reading rbp has no side effects.
    unsafe { core::arch::asm!("mov {}, rbp", out(reg) rbp, options(nomem, nostack)) };
    backtrace(&mut out, rbp);
    crate::trace::print_last(&mut out, 32);
    let _ = writeln!(out, "mach-kernel: stopped (panic)");
    cpu::exit_qemu(qemu_exit::FAILURE);
}

/// Walk saved frame pointers (the kernel is built with them) while they stay in the kernel
/// half, printing return addresses.
pub fn backtrace(out: &mut dyn Write, mut rbp: u64) {
    let _ = write!(out, "backtrace:");
    for _ in 0..16 {
        if rbp < 0xffff_8000_0000_0000 || !rbp.is_multiple_of(8) {
            break;
        }
        // SAFETY: rbp is a kernel-half, aligned address from a frame-pointer chain; the
        // kernel stacks are mapped. A corrupt chain ends the walk at the checks above.
        let (next, ret) = unsafe { (*(rbp as *const u64), *((rbp + 8) as *const u64)) };
        if ret == 0 {
            break;
        }
        let _ = write!(out, " {ret:#x}");
        rbp = next;
    }
    let _ = writeln!(out);
}

//! template-hello: the program personality-template runs (/template/hello on the disk). A
//! bare program of Linux's x86-64 ABI: no libc, no libmach, only the `syscall` instruction
//! (rax = the number; rdi, rsi, rdx the arguments; rax the result; rcx and r11 clobbered).
//! It writes a greeting, asks getpid (answered -38, ENOSYS, until a reader adds the call to
//! the personality) and exits with 0.
//!
//! It must never use Machina's own traps or libmach: it speaks only the personality's ABI,
//! as a program of the OS being imitated would.
#![no_std]
#![no_main]

use core::fmt::Write;

const SYS_WRITE: u64 = 1;
const SYS_GETPID: u64 = 39;
const SYS_EXIT: u64 = 60;

/// Where the personality starts the program, on the stack it made (rsp 8 bytes off a 16-byte
/// boundary; no return address to use): end the frame chain, align the stack, call `main`.
// SAFETY: `_start` is the only symbol of that name (the entry user.ld names), and the naked
// body is all the function does: it never returns (`main` does not; `ud2` if it did).
#[unsafe(naked)]
#[unsafe(no_mangle)]
unsafe extern "C" fn _start() -> ! {
    core::arch::naked_asm!("xor ebp, ebp", "and rsp, -16", "call {main}", "ud2", main = sym main)
}

extern "C" fn main() -> ! {
    write(1, b"hello from the template personality\n");
    let pid = syscall(SYS_GETPID, 0, 0, 0);
    let mut line = Line::new();
    let _ = writeln!(line, "getpid: {pid}");
    write(1, line.bytes());
    exit(0)
}

/// A system call with three arguments.
fn syscall(number: u64, a0: u64, a1: u64, a2: u64) -> i64 {
    let result: i64;
    // SAFETY: `syscall` enters the kernel, which forwards the call to the personality and
    // returns its answer in rax; it changes no memory of ours but what a call's arguments
    // name, and clobbers only rcx and r11 (declared).
    unsafe {
        core::arch::asm!(
            "syscall",
            inlateout("rax") number as i64 => result,
            in("rdi") a0,
            in("rsi") a1,
            in("rdx") a2,
            lateout("rcx") _,
            lateout("r11") _,
            options(nostack),
        );
    }
    result
}

/// Write all of `bytes` to descriptor `fd` (a write may take fewer bytes than it was given).
fn write(fd: u64, mut bytes: &[u8]) {
    while !bytes.is_empty() {
        let n = syscall(SYS_WRITE, fd, bytes.as_ptr() as u64, bytes.len() as u64);
        if n <= 0 {
            return;
        }
        bytes = bytes.get(n as usize..).unwrap_or(&[]);
    }
}

fn exit(status: u64) -> ! {
    syscall(SYS_EXIT, status, 0, 0);
    // exit does not return; if a personality answered it anyway, stop here.
    loop {
        core::hint::spin_loop();
    }
}

/// A line formatted without a heap (what does not fit in 64 bytes is cut).
struct Line {
    buffer: [u8; 64],
    len: usize,
}

impl Line {
    const fn new() -> Self {
        Line { buffer: [0; 64], len: 0 }
    }

    fn bytes(&self) -> &[u8] {
        self.buffer.get(..self.len).unwrap_or(&[])
    }
}

impl Write for Line {
    fn write_str(&mut self, s: &str) -> core::fmt::Result {
        for &b in s.as_bytes() {
            let slot = self.buffer.get_mut(self.len).ok_or(core::fmt::Error)?;
            *slot = b;
            self.len += 1;
        }
        Ok(())
    }
}

#[panic_handler]
fn panic(_: &core::panic::PanicInfo) -> ! {
    exit(1)
}

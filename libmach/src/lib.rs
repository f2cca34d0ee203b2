//! libmach: the user side of mach-kernel for servers and test programs built for
//! `x86_64-unknown-none`: the traps, the program entry (`libmach::entry!`), a panic handler
//! that reports on the kernel log and ends the task, and `println!` to the kernel log.
//!
//! It must never hide a kernel error: every trap wrapper returns `Result<_, KernelError>`.
#![no_std]

extern crate alloc;

#[cfg(test)]
extern crate std;

pub use mach_abi::{KernelError, trap};

pub mod device;
pub mod heap;
pub mod ipc;
pub mod loader;
pub mod name_service;
pub mod rpc;
mod syscall;
pub mod task;
pub use syscall::raw_syscall;

/// Write `text` to the kernel log (prefixed by the kernel with this task's name).
pub fn debug_write(text: &[u8]) -> Result<usize, KernelError> {
    trap_call(trap::DEBUG_WRITE, [text.as_ptr() as u64, text.len() as u64, 0, 0, 0, 0]).map(|n| n as usize)
}

/// Nanoseconds since boot (the kernel timer's resolution, 10 ms).
pub fn uptime_ns() -> u64 {
    trap_call(trap::CLOCK_READ, [mach_abi::clock::MONOTONIC, 0, 0, 0, 0, 0]).unwrap_or(0)
}

/// The time-stamp counter (under QEMU's `-icount shift=0`: guest instructions).
pub fn rdtsc() -> u64 {
    // SAFETY: rdtsc only reads the time-stamp counter.
    unsafe { core::arch::x86_64::_rdtsc() }
}

/// Nanoseconds since 1970 (the CMOS clock at boot plus the time since).
pub fn realtime_ns() -> u64 {
    trap_call(trap::CLOCK_READ, [mach_abi::clock::REALTIME, 0, 0, 0, 0, 0]).unwrap_or(0)
}

/// End the calling task with `code`.
pub fn task_exit(code: u64) -> ! {
    // SAFETY: the trap does not return.
    unsafe { raw_syscall(trap::TASK_EXIT, [code, 0, 0, 0, 0, 0]) };
    unreachable!("task_exit returned")
}

/// A trap through its checked wrapper: every trap validates its arguments in the kernel, and
/// the wrappers in this crate pass only pointers to memory they own, with its length.
pub(crate) fn trap_call(number: i64, args: [u64; 6]) -> Result<u64, KernelError> {
    // SAFETY: see above; the kernel reads or writes only the ranges the arguments name.
    into_result(unsafe { raw_syscall(number, args) })
}

fn into_result(value: i64) -> Result<u64, KernelError> {
    if value >= 0 {
        Ok(value as u64)
    } else {
        Err(KernelError::from_return(value).unwrap_or(KernelError::InvalidTrap))
    }
}

/// A line buffer that goes to the kernel log with one trap per line.
pub struct DebugLine {
    buffer: [u8; 256],
    len: usize,
}

impl DebugLine {
    pub const fn new() -> Self {
        DebugLine { buffer: [0; 256], len: 0 }
    }
    pub fn flush(&mut self) {
        if self.len > 0 {
            let _ = debug_write(self.buffer.get(..self.len).unwrap_or(&[]));
            self.len = 0;
        }
    }
}

impl Default for DebugLine {
    fn default() -> Self {
        Self::new()
    }
}

impl core::fmt::Write for DebugLine {
    fn write_str(&mut self, s: &str) -> core::fmt::Result {
        for &b in s.as_bytes() {
            if self.len == self.buffer.len() {
                self.flush();
            }
            if let Some(slot) = self.buffer.get_mut(self.len) {
                *slot = b;
                self.len += 1;
            }
        }
        Ok(())
    }
}

/// `println!` to the kernel log, one debug_write per call.
#[macro_export]
macro_rules! println {
    ($($arg:tt)*) => {{
        use core::fmt::Write as _;
        let mut line = $crate::DebugLine::new();
        let _ = write!(line, $($arg)*);
        line.flush();
    }};
}

static STARTUP_PORT: core::sync::atomic::AtomicU32 = core::sync::atomic::AtomicU32::new(0);

#[doc(hidden)]
pub fn set_startup_port(name: u32) {
    STARTUP_PORT.store(name, core::sync::atomic::Ordering::Relaxed);
}

/// The port name the program was started with in `rdx`: the host port for the first task,
/// else whatever its creator passed (0 if nothing).
pub fn startup_port() -> ipc::PortName {
    STARTUP_PORT.load(core::sync::atomic::Ordering::Relaxed)
}

/// Define the program entry: `libmach::entry!(main)` with `fn main(args: &str) -> u64`;
/// `args` is the command line the program was started with, the return value its exit code.
#[macro_export]
macro_rules! entry {
    ($main:path) => {
        #[unsafe(no_mangle)]
        pub unsafe extern "C" fn _start(args: *const u8, len: usize, startup_port: u32) -> ! {
            $crate::set_startup_port(startup_port);
            // SAFETY: the kernel put `len` bytes of UTF-8 at `args` on this thread's stack.
            let args = unsafe { core::slice::from_raw_parts(args, len) };
            let args = core::str::from_utf8(args).unwrap_or("");
            let main: fn(&str) -> u64 = $main;
            $crate::task_exit(main(args))
        }
    };
}

#[cfg(all(not(test), target_os = "none"))]
#[panic_handler]
fn panic(info: &core::panic::PanicInfo) -> ! {
    println!("panic: {info}");
    task_exit(101)
}

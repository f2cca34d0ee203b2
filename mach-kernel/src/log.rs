//! The kernel log: QEMU's debugcon (port 0xE9), never COM1, so that it cannot interleave with
//! what the console server prints. `make run` shows it on the terminal or in a file; the test
//! harness reads it from a file.

use core::fmt::Write;
use spin::Mutex;

pub struct KernelLog;

impl Write for KernelLog {
    fn write_str(&mut self, s: &str) -> core::fmt::Result {
        for byte in s.bytes() {
            // SAFETY: debugcon has no state; writing it only emits the byte.
            unsafe { crate::arch::cpu::outb(0xe9, byte) };
        }
        Ok(())
    }
}

pub static LOG: Mutex<KernelLog> = Mutex::new(KernelLog);

/// The log writer for the panic and fault paths: never waits for a lock another path may
/// hold forever.
pub fn emergency() -> KernelLog {
    KernelLog
}

#[macro_export]
macro_rules! kprintln {
    ($($arg:tt)*) => {{
        use core::fmt::Write as _;
        let _ = writeln!($crate::log::LOG.lock(), $($arg)*);
    }};
}

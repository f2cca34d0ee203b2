//! Formatted output to a file descriptor, as xv6's `printf(fd, fmt, ...)`, with Rust's
//! `core::fmt`: `printf!(1, "{} files\n", n)`.
//!
//! The text goes into a 512-byte buffer that is written with one `write` per call (more only
//! when the text is longer than the buffer), so that lines from several processes do not mix.

use crate::ulib::sys::write;
use core::fmt;

/// A buffered writer to a file descriptor; what is left in the buffer is written by `flush`
/// or when the writer is dropped. Write errors are ignored, as xv6's printf ignores them.
pub struct FdWriter {
    fd: i32,
    buf: [u8; 512],
    len: usize,
}

impl FdWriter {
    /// A writer to `fd` with an empty buffer.
    pub const fn new(fd: i32) -> FdWriter {
        FdWriter { fd, buf: [0; 512], len: 0 }
    }

    /// Append `bytes`, writing out the buffer each time it fills.
    pub fn put(&mut self, bytes: &[u8]) {
        for &byte in bytes {
            if self.len == self.buf.len() {
                self.flush();
            }
            self.buf[self.len] = byte;
            self.len += 1;
        }
    }

    /// Write out what the buffer holds.
    pub fn flush(&mut self) {
        if self.len > 0 {
            write(self.fd, &self.buf[..self.len]);
            self.len = 0;
        }
    }
}

impl fmt::Write for FdWriter {
    fn write_str(&mut self, text: &str) -> fmt::Result {
        self.put(text.as_bytes());
        Ok(())
    }
}

impl Drop for FdWriter {
    fn drop(&mut self) {
        self.flush();
    }
}

/// `printf!(fd, "format", args...)`: format as `core::write!` does and write the text to
/// `fd` (one `write` for up to 512 bytes).
#[macro_export]
macro_rules! printf {
    ($fd:expr, $($arg:tt)*) => {{
        use ::core::fmt::Write as _;
        let mut out = $crate::ulib::printf::FdWriter::new($fd);
        let _ = ::core::write!(out, $($arg)*);
        out.flush();
    }};
}

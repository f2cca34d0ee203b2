//! The helpers of xv6's `ulib.c` that Rust's `core` does not already give: `atoi`, `gets`
//! (read a line from fd 0), `stat` (by path), and reading C strings.

use crate::ulib::sys::{O_RDONLY, Stat, close, fstat, open, read};
use core::ffi::CStr;

/// The number that the leading decimal digits of `s` spell (0 if there are none), as xv6's
/// `atoi`: no sign, and whatever follows the digits is ignored.
pub fn atoi(s: &str) -> i32 {
    s.bytes()
        .take_while(u8::is_ascii_digit)
        .fold(0i32, |n, digit| n.wrapping_mul(10).wrapping_add(i32::from(digit - b'0')))
}

/// Read a line from fd 0 into `buf`, one byte at a time, as xv6's `gets`: stop after a
/// newline or carriage return (kept in `buf`), at end of file, or when `buf` is full. Returns
/// how many bytes were stored: 0 means end of file (or an error) before any byte.
pub fn gets(buf: &mut [u8]) -> usize {
    let mut len = 0;
    while len < buf.len() {
        let mut byte = [0u8; 1];
        if read(0, &mut byte) < 1 {
            break;
        }
        buf[len] = byte[0];
        len += 1;
        if byte[0] == b'\n' || byte[0] == b'\r' {
            break;
        }
    }
    len
}

/// Describe the file at `path` into `st` (open, fstat, close): 0, or -1.
pub fn stat(path: &str, st: &mut Stat) -> i32 {
    let fd = open(path, O_RDONLY);
    if fd < 0 {
        return -1;
    }
    let result = fstat(fd, st);
    close(fd);
    result
}

/// The NUL-terminated string at `p` as a `&str`; if it is not UTF-8, its longest UTF-8
/// prefix.
///
/// # Safety
/// `p` must point at a NUL-terminated string that lives and does not change for `'a`.
pub unsafe fn c_str<'a>(p: *const u8) -> &'a str {
    // SAFETY: delegated to the caller.
    let bytes = unsafe { CStr::from_ptr(p.cast()) }.to_bytes();
    match core::str::from_utf8(bytes) {
        Ok(text) => text,
        Err(error) => core::str::from_utf8(&bytes[..error.valid_up_to()]).unwrap_or(""),
    }
}

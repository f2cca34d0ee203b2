//! ulib for the xv6 personality: what xv6's user programs link with (its `usys.S`, `ulib.c`,
//! `printf.c` and `umalloc.c`), for programs written in Rust.
//!
//! - [`ulib::sys`]: the system calls (trap `int $64`), safe wrappers on slices and `&str`, and
//!   `unsafe` raw forms that take pointers as they are (for tests of bad pointers);
//! - [`ulib::start`]: the program entry `_start` (made by [`entry!`]) and the ELF note that
//!   marks a program as an xv6 one;
//! - [`ulib::printf`]: [`printf!`] to a file descriptor;
//! - [`ulib::umalloc`]: `malloc`/`free` on `sbrk`, and the global allocator over them, so
//!   that programs may use `alloc` (`Vec`, `String`, `Box`);
//! - [`ulib::string`]: `atoi`, `gets`, `stat` and C strings.
//!
//! The common names are re-exported here: `use xv6::{open, read, printf, O_RDONLY};`.
#![no_std]

extern crate alloc;

pub mod ulib;

pub use ulib::string::{atoi, gets, stat};
pub use ulib::sys::*;

/// Every allocation of a program (`Vec`, `String`, `Box`) goes to ulib's `malloc`.
#[global_allocator]
static ALLOCATOR: ulib::umalloc::Umalloc = ulib::umalloc::Umalloc;

/// A panic prints its message to fd 2 and ends the process, as xv6's `panic()` in sh does.
#[panic_handler]
fn panic(info: &core::panic::PanicInfo) -> ! {
    printf!(2, "{}\n", info);
    exit()
}

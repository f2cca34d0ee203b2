//! The program entry and the ELF note of xv6 programs.
//!
//! The personality starts a program at `_start` with rdi = argc and rsi = argv (a
//! null-terminated array of pointers to NUL-terminated strings, on the stack), rsp aligned
//! to 16 and no return address. [`entry!`](crate::entry) defines `_start` in the program: a
//! naked function that calls [`start`] with (argc, argv), which builds the arguments as
//! `&str`s, calls the program's `main` and then `exit()`.
//!
//! [`NOTE`] marks the executable as an xv6 program: the loader finds it through the PT_NOTE
//! program header that `xv6.ld` makes for section `.note.machina`.

use crate::ulib::string::c_str;
use crate::ulib::sys::{MAXARG, exit};

/// An ELF note with an 8-byte name and a 4-byte description (the layout the ELF
/// specification gives a note: three words, then the name and the description, each padded
/// to 4 bytes).
#[repr(C, align(4))]
pub struct ElfNote {
    pub namesz: u32,
    pub descsz: u32,
    pub note_type: u32,
    pub name: [u8; 8],
    pub desc: [u8; 4],
}

/// The note "Machina" of type 1 whose description "xv6" names the personality that serves
/// this program.
#[used]
#[unsafe(link_section = ".note.machina")]
pub static NOTE: ElfNote =
    ElfNote { namesz: 8, descsz: 4, note_type: 1, name: *b"Machina\0", desc: *b"xv6\0" };

const _: () = assert!(size_of::<ElfNote>() == 24);

/// Define the program entry: `xv6::entry!(main);` with `fn main(args: &[&str])`. `args[0]`
/// is the program's name as its caller gave it; when `main` returns, the program exits.
#[macro_export]
macro_rules! entry {
    ($main:path) => {
        /// Where the personality starts the program: rdi = argc, rsi = argv, no return
        /// address. Clear the frame pointer (the end of the frame chain), align the stack to
        /// 16 bytes, and call the Rust entry with (argc, argv) still in rdi and rsi; the call
        /// pushes a return address, so the callee sees the stack the System V ABI promises.
        #[unsafe(naked)]
        #[unsafe(no_mangle)]
        pub unsafe extern "C" fn _start() -> ! {
            ::core::arch::naked_asm!(
                "xor ebp, ebp",
                "and rsp, -16",
                "call {start}",
                "ud2",
                start = sym __xv6_start,
            )
        }

        #[doc(hidden)]
        extern "C" fn __xv6_start(argc: usize, argv: *const *const u8) -> ! {
            let main: fn(&[&str]) = $main;
            // SAFETY: `_start` passes on argc and argv as the personality gave them.
            unsafe { $crate::ulib::start::start(argc, argv, main) }
        }
    };
}

/// The Rust part of the entry: make `argv` into at most [`MAXARG`] `&str`s, run `main`, exit.
///
/// # Safety
/// `argv` must be null or point at `argc` pointers (or fewer, ended by a null one) to
/// NUL-terminated strings that stay in place for the life of the process.
pub unsafe fn start(argc: usize, argv: *const *const u8, main: fn(&[&str])) -> ! {
    // The note is referenced so that nothing can decide it is unused (the linker script also
    // keeps it).
    core::hint::black_box(&NOTE);
    let mut args: [&str; MAXARG] = [""; MAXARG];
    let mut count = 0;
    if !argv.is_null() {
        while count < argc.min(MAXARG) {
            // SAFETY: the caller promises `argc` readable pointers (we stop at a null one).
            let arg = unsafe { *argv.add(count) };
            if arg.is_null() {
                break;
            }
            // SAFETY: each is a NUL-terminated string on the initial stack, which lives as
            // long as the process.
            args[count] = unsafe { c_str(arg) };
            count += 1;
        }
    }
    main(&args[..count]);
    exit()
}

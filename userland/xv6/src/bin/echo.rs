//! echo: write the arguments, separated by spaces and ended by a newline; xv6's `echo.c`
//! (which writes no newline when there are no arguments; this one always does).
#![no_std]
#![no_main]

use xv6::ulib::printf::FdWriter;

xv6::entry!(main);

fn main(args: &[&str]) {
    // One buffer, so that a short line goes out in a single write.
    let mut out = FdWriter::new(1);
    for (i, arg) in args.iter().enumerate().skip(1) {
        if i > 1 {
            out.put(b" ");
        }
        out.put(arg.as_bytes());
    }
    out.put(b"\n");
    out.flush();
}

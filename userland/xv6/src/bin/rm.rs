//! rm: remove each FILE named (unlink its name); xv6's `rm.c`.
#![no_std]
#![no_main]

use xv6::{exit, printf, unlink};

xv6::entry!(main);

fn main(args: &[&str]) {
    if args.len() < 2 {
        printf!(2, "Usage: rm files...\n");
        exit()
    }
    for path in &args[1..] {
        if unlink(path) < 0 {
            printf!(2, "rm: {} failed to delete\n", path);
            return;
        }
    }
}

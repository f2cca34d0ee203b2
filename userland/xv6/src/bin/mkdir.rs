//! mkdir: make each DIR named; xv6's `mkdir.c`.
#![no_std]
#![no_main]

use xv6::{exit, mkdir, printf};

xv6::entry!(main);

fn main(args: &[&str]) {
    if args.len() < 2 {
        printf!(2, "Usage: mkdir files...\n");
        exit()
    }
    for path in &args[1..] {
        if mkdir(path) < 0 {
            printf!(2, "mkdir: {} failed to create\n", path);
            return;
        }
    }
}

//! ln: give the file OLD a second name NEW (a hard link); xv6's `ln.c`.
#![no_std]
#![no_main]

use xv6::{exit, link, printf};

xv6::entry!(main);

fn main(args: &[&str]) {
    let [_, old, new] = args else {
        printf!(2, "Usage: ln old new\n");
        exit()
    };
    if link(old, new) < 0 {
        printf!(2, "link {} {}: failed\n", old, new);
    }
}

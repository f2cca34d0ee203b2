//! kill: kill each process PID named; xv6's `kill.c` (which does not report failures; this
//! one does).
#![no_std]
#![no_main]

use xv6::{atoi, exit, kill, printf};

xv6::entry!(main);

fn main(args: &[&str]) {
    if args.len() < 2 {
        printf!(2, "usage: kill pid...\n");
        exit()
    }
    for arg in &args[1..] {
        let pid = atoi(arg);
        if kill(pid) < 0 {
            printf!(2, "kill: no process {}\n", pid);
        }
    }
}

//! bootstrap: the first task the kernel starts, from the first boot module.
//!
//! Today it announces itself on the kernel log and exits. With IPC it will start the servers
//! from the other boot modules, keep the name service and watch what it started.
#![no_std]
#![no_main]

libmach::entry!(main);

fn main(args: &str) -> u64 {
    libmach::println!("hello from user mode (args \"{args}\")");
    0
}

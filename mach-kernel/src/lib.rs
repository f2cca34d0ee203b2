//! mach-kernel's pure logic: the parts that need no hardware, compiled for the host too so
//! that they have unit tests (`cargo test -p mach-kernel --lib`). The kernel binary
//! (`main.rs`) builds on these.
#![no_std]
#![deny(unsafe_op_in_unsafe_fn, clippy::undocumented_unsafe_blocks)]

extern crate alloc;
#[cfg(test)]
extern crate std;

pub mod frame_bitmap;
pub mod held;
pub mod id_table;
pub mod ipc;
pub mod options;
pub mod run_queue;
pub mod thread_queue;

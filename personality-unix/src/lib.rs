//! personality-unix's logic that compiles for the host too: Linux's numbers (system calls,
//! errno values, flags), the layout of a new process's stack, file descriptor tables. Host unit tests live beside
//! the code; the server itself is `main.rs` and the modules it declares.
#![cfg_attr(not(test), no_std)]
extern crate alloc;

pub mod fdtable;
pub mod linux;
pub mod stack;

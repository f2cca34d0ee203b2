//! fs-server's logic that compiles for the host too: the ext2 file system over a block
//! device, with its block cache. Host unit tests live beside the code.
#![cfg_attr(not(test), no_std)]
extern crate alloc;

pub mod ext2;

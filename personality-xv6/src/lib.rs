//! personality-xv6's host-testable part: the xv6 system-call ABI (numbers, open flags, the
//! `stat` and `dirent` layouts) and path handling. The server itself is in main.rs and the
//! modules it declares.
#![cfg_attr(target_os = "none", no_std)]

extern crate alloc;

pub mod abi;

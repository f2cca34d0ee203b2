//! The console server's host-testable part: the line discipline ([`line`]), pure logic over
//! `interfaces::console::Termios` with no I/O. The server itself (`src/main.rs` and the
//! modules beside it) is the binary; it is built for `x86_64-unknown-none` only.
//!
//! This library must never do I/O or depend on the kernel: `cargo test -p console --lib` runs
//! it on the host.
#![cfg_attr(not(test), no_std)]

pub mod line;

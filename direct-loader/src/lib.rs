//! The direct loader's pure logic: the `limine.conf` parser, the memory-map conversion and
//! the Limine protocol's binary layout. Kept apart from the boot code so that it has host
//! unit tests (`cargo test -p direct-loader --lib`).
#![no_std]

#[cfg(test)]
extern crate std;

pub mod config;
pub mod limine_abi;
pub mod memory_map;

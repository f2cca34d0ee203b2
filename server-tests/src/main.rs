//! server-tests: the in-guest test client of the servers, started by bootstrap after them
//! with a command line naming the cases to run, in order. bootstrap's policy lets it look up
//! "fs", "blk", "blk.control" and "unix" (not "host"):
//!
//! - `policy`: what it may not reach (the host port, the block server) stays out of reach;
//! - `hostile`: unknown ids, garbage, 16 KiB messages, unasked rights and memory, no reply
//!   port, to fs-server, the console and bootstrap: error answers, and they serve on;
//! - `block`: the block server's protocol: reads (inline and out of line), a write read back,
//!   error answers for out-of-range and malformed requests;
//! - `fs-files`: create, write, read, stat, errors, rename, links, symlinks, truncate, sparse;
//! - `fs-big`: 20 MiB written and read back with checksums, into the triple-indirect region;
//! - `fs-dir`: a directory with 1,000 entries made, listed and emptied;
//! - `fs-full`: a full disk answers ENOSPC and damages nothing written before;
//! - `restart`: reads a file over and over with checksums while the block server is killed
//!   three times (the reader must see no error);
//! - `console-two`: two clients write lines to the console at once (the host checks them);
//! - `console-echo`: reads lines from the terminal and prints them back (the host types);
//! - `bench-fs`: instruction counts of fs reads (under icount, `make bench`);
//! - `unix-pipes`: the Unix personality's pipes as `io` ports (it must run beside).
//!
//! Each case prints `case NAME: ok` or `case NAME: FAILED: why` on the kernel log.
#![no_std]
#![no_main]

extern crate alloc;

mod client;
mod console_cases;
mod fs_cases;
mod unix_cases;

use alloc::string::String;
use libmach::println;

libmach::entry!(main);

pub type Outcome = Result<(), String>;

fn main(args: &str) -> u64 {
    let mut failures = 0;
    for case in args.split_ascii_whitespace().skip(1) {
        let result = match case {
            "policy" => fs_cases::policy(),
            "hostile" => fs_cases::hostile(),
            "block" => fs_cases::block(),
            "fs-files" => fs_cases::files(),
            "fs-big" => fs_cases::big(),
            "fs-dir" => fs_cases::directory(),
            "fs-full" => fs_cases::full(),
            "restart" => fs_cases::restart(),
            "bench-fs" => fs_cases::bench(),
            "console-two" => console_cases::two_writers(),
            "console-echo" => console_cases::echo(),
            "unix-pipes" => unix_cases::pipes(),
            other => Err(alloc::format!("unknown case {other}")),
        };
        match result {
            Ok(()) => println!("case {case}: ok"),
            Err(why) => {
                failures += 1;
                println!("case {case}: FAILED: {why}");
            }
        }
    }
    println!("server-tests: {failures} failed");
    failures
}

/// `Err(what)` unless `ok`.
pub fn check(ok: bool, what: &str) -> Outcome {
    if ok { Ok(()) } else { Err(what.into()) }
}

/// `check` for an expected value, saying what came instead.
pub fn expect<T: PartialEq + core::fmt::Debug>(got: T, want: T, what: &str) -> Outcome {
    if got == want { Ok(()) } else { Err(alloc::format!("{what}: got {got:?}, want {want:?}")) }
}

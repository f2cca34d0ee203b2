//! personality-xv6: a second personality beside the Unix one. It runs programs written for
//! MIT xv6's system-call interface (docs/personality.md): they enter the kernel with
//! `int $64`, which the kernel forwards to the process's syscall port like any foreign system
//! call, and this server answers the 21 calls with xv6's numbers and rules (-1 for every
//! error). Files are the same files Unix sees (fs-server), the terminal the same console
//! server, pipes the Unix personality's (`unix.pipe`), so descriptors cross between the two
//! at exec as the `io` ports they are.
//!
//! Started by bootstrap as a server (name "xv6"): other personalities hand it processes
//! (`personality.adopt`); with a program on its command line it also runs that one first
//! (its end does not end the server).
//!
//! It must never trust a message or a process: requests are decoded once and checked, a
//! process's memory is reached only through its task port (a bad pointer is -1), and nothing
//! a process does can end the personality.
#![cfg_attr(target_os = "none", no_std)]
#![cfg_attr(target_os = "none", no_main)]

#[cfg(target_os = "none")]
extern crate alloc;

#[cfg(target_os = "none")]
mod calls;
#[cfg(target_os = "none")]
mod files;
#[cfg(target_os = "none")]
mod handoff;
#[cfg(target_os = "none")]
mod program;
#[cfg(target_os = "none")]
mod server;

#[cfg(not(target_os = "none"))]
fn main() {
    eprintln!("personality-xv6 runs in Machina (build it for x86_64-unknown-none)");
    std::process::exit(1);
}

#[cfg(target_os = "none")]
libmach::entry!(main);

#[cfg(target_os = "none")]
fn main(args: &str) -> u64 {
    use libmach::println;
    let mut xv6 = match server::Xv6::start() {
        Ok(x) => x,
        Err(why) => {
            println!("cannot start: {why}");
            return 1;
        }
    };
    let argv: alloc::vec::Vec<&str> = args.split_ascii_whitespace().skip(1).collect();
    if let Some(program) = argv.first()
        && let Err(why) = xv6.spawn(program, &argv)
    {
        println!("cannot run {program}: {why}");
    }
    xv6.serve()
}

//! personality-unix: the Unix personality. It runs Linux x86-64 programs: it loads a static
//! (or static-pie) ELF executable from the file system into a new task, gives the task a
//! syscall port of its own, and serves every system call its threads make, which the kernel
//! turns into messages on that port. The process is known by the port its calls arrive on,
//! never by a number in a message.
//!
//! This first version serves one program (its command line names it) and the calls a Rust
//! std or C program makes to start, write to its terminal, use memory and exit
//! (`syscalls.rs`); an unknown call answers -ENOSYS and is logged once per number. When the
//! program ends, so does the personality (and bootstrap then shuts the system down).
//!
//! It must never trust a message or a process: requests are decoded once and checked, user
//! memory is reached only through the process's task port (a bad pointer is -EFAULT), and
//! nothing a process does can end the personality.
#![cfg_attr(target_os = "none", no_std)]
#![cfg_attr(target_os = "none", no_main)]

#[cfg(target_os = "none")]
extern crate alloc;

#[cfg(target_os = "none")]
mod files;
#[cfg(target_os = "none")]
mod handoff;
#[cfg(target_os = "none")]
mod pipes;
#[cfg(target_os = "none")]
mod poll;
#[cfg(target_os = "none")]
mod process;
#[cfg(target_os = "none")]
mod procs;
#[cfg(target_os = "none")]
mod signals;
#[cfg(target_os = "none")]
mod syscalls;
#[cfg(target_os = "none")]
mod threads;
#[cfg(target_os = "none")]
mod tracing;

#[cfg(not(target_os = "none"))]
fn main() {
    eprintln!("personality-unix runs in Machina (build it for x86_64-unknown-none)");
    std::process::exit(1);
}

#[cfg(target_os = "none")]
libmach::entry!(main);

#[cfg(target_os = "none")]
fn main(args: &str) -> u64 {
    use libmach::println;
    let words = personality_unix::words(args);
    let Some(program) = words.get(1) else {
        println!("usage: personality-unix PROGRAM [ARGS...] (an argument may be 'quoted')");
        return 2;
    };
    let argv: alloc::vec::Vec<&str> = words.iter().skip(1).map(|w| w.as_str()).collect();
    let mut unix = match process::Personality::start() {
        Ok(p) => p,
        Err(why) => {
            println!("cannot start: {why}");
            return 1;
        }
    };
    if let Err(why) = unix.spawn(program.as_str(), &argv) {
        println!("cannot run {program}: {why}");
        return 1;
    }
    unix.serve()
}

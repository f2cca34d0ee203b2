//! bench: what xv6 system calls cost under the xv6 personality, in guest instructions (`make
//! bench` runs it under QEMU's `-icount shift=0`, where rdtsc counts instructions): getpid
//! and a 1-byte write to the console, the same two /bin/bench measures through the Unix
//! personality. Not an xv6 program (xv6 has no rdtsc tool); ours.
#![no_std]
#![no_main]

use xv6::{getpid, printf, write};

xv6::entry!(main);

fn rdtsc() -> u64 {
    // SAFETY: rdtsc reads the time-stamp counter; nothing else.
    unsafe { core::arch::x86_64::_rdtsc() }
}

/// Instructions per round of `f`, over `rounds` rounds after one warm-up.
fn measure(rounds: u64, mut f: impl FnMut()) -> u64 {
    f();
    let start = rdtsc();
    for _ in 0..rounds {
        f();
    }
    (rdtsc() - start) / rounds
}

fn main(_args: &[&str]) {
    let pid = measure(1000, || {
        getpid();
    });
    printf!(1, "bench-xv6: getpid: {} instructions\n", pid);
    let console = measure(100, || {
        write(1, b".");
    });
    printf!(1, "\nbench-xv6: 1-byte write to the console: {} instructions\n", console);
}

//! bench: what ordinary Linux system calls cost on Machina, in guest instructions (`make
//! bench` boots it under QEMU's `-icount shift=0`, where rdtsc counts instructions): getpid,
//! a 4 KiB pread of a cached file, a 4 KiB write to /dev/null, a 1-byte write to the
//! console, a one-byte round trip through
//! two pipes between two processes, and fork + exec + wait of a static program. The same
//! binary runs on Linux for comparison (../shared/FACTS.md has Linux's figures).
//!
//! `bench --exit` exits at once (what the fork + exec + wait case runs).
use std::ffi::CString;

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

fn check(ok: bool, what: &str) {
    if !ok {
        eprintln!("bench: {what} failed: {}", std::io::Error::last_os_error());
        std::process::exit(1);
    }
}

fn main() {
    if std::env::args().nth(1).as_deref() == Some("--exit") {
        return;
    }
    // SAFETY (all the libc calls below): plain system calls on this process's own buffers and
    // descriptors, each checked.
    unsafe {
        let getpid = measure(1000, || {
            libc::syscall(libc::SYS_getpid);
        });
        println!("bench-unix: getpid: {getpid} instructions");

        let path = CString::new("/bench.dat").unwrap_or_default();
        let fd = libc::open(path.as_ptr(), libc::O_RDWR | libc::O_CREAT | libc::O_TRUNC, 0o644);
        check(fd >= 0, "open /bench.dat");
        let block = [0x5au8; 4096];
        for _ in 0..16 {
            check(libc::write(fd, block.as_ptr().cast(), 4096) == 4096, "write /bench.dat");
        }
        let mut buffer = [0u8; 4096];
        let pread = measure(200, || {
            libc::pread(fd, buffer.as_mut_ptr().cast(), 4096, 0);
        });
        check(buffer[0] == 0x5a, "pread");
        println!("bench-unix: 4 KiB cached pread: {pread} instructions");
        libc::close(fd);
        libc::unlink(path.as_ptr());

        let null = CString::new("/dev/null").unwrap_or_default();
        let fd = libc::open(null.as_ptr(), libc::O_WRONLY);
        check(fd >= 0, "open /dev/null");
        let devnull = measure(200, || {
            libc::write(fd, block.as_ptr().cast(), 4096);
        });
        println!("bench-unix: 4 KiB write to /dev/null: {devnull} instructions");
        libc::close(fd);

        // One byte to the terminal (the console server), as /xv6/bench measures it too.
        let console = measure(100, || {
            libc::write(1, b".".as_ptr().cast(), 1);
        });
        println!("\nbench-unix: 1-byte write to the console: {console} instructions");

        let (mut to_child, mut to_parent) = ([0i32; 2], [0i32; 2]);
        check(libc::pipe(to_child.as_mut_ptr()) == 0 && libc::pipe(to_parent.as_mut_ptr()) == 0, "pipe");
        let rounds = 200;
        let child = libc::fork();
        check(child >= 0, "fork");
        if child == 0 {
            let mut byte = [0u8; 1];
            for _ in 0..=rounds {
                libc::read(to_child[0], byte.as_mut_ptr().cast(), 1);
                libc::write(to_parent[1], byte.as_ptr().cast(), 1);
            }
            libc::_exit(0);
        }
        let mut byte = [7u8; 1];
        let pipe_rt = measure(rounds, || {
            libc::write(to_child[1], byte.as_ptr().cast(), 1);
            libc::read(to_parent[0], byte.as_mut_ptr().cast(), 1);
        });
        let mut status = 0;
        libc::waitpid(child, &mut status, 0);
        println!("bench-unix: 1-byte pipe round trip between two processes: {pipe_rt} instructions");

        let program = CString::new("/bin/bench").unwrap_or_default();
        let exit = CString::new("--exit").unwrap_or_default();
        let argv = [program.as_ptr(), exit.as_ptr(), core::ptr::null()];
        let envp = [core::ptr::null()];
        let spawn = measure(10, || {
            let pid = libc::fork();
            if pid == 0 {
                libc::execve(program.as_ptr(), argv.as_ptr(), envp.as_ptr());
                libc::_exit(127);
            }
            let mut status = 0;
            libc::waitpid(pid, &mut status, 0);
        });
        println!("bench-unix: fork + exec + wait of a static program: {spawn} instructions");
    }
}

//! hello: an ordinary static Linux program (Rust std, `x86_64-unknown-linux-musl`) that
//! Machina runs through personality-unix. With no mode it prints a greeting, its arguments
//! and `PATH`, touches the heap, and exits with the status its first argument names. With
//! `files` it reads, writes and lists files through std::fs; with `read` it reads a line
//! from its terminal; with `stress` it runs 200 fork + exec + wait, sends 1 MiB through a
//! pipe and writes and reads back 20 MiB, each with a checksum; with `efault` it passes a bad
//! pointer to 30 system calls and prints those that did not answer EFAULT; `threads` and
//! `signals` are in signals.rs. The system tests (tests/tests/unix.rs) check each line it prints.
use std::io::{BufRead, Write};

mod signals;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    match args.get(1).map(String::as_str) {
        Some("files") => files(),
        Some("read") => read_line(),
        Some("stress") => stress(),
        Some("efault") => efault(),
        Some("threads") => signals::threads(),
        Some("signals") => signals::signals(),
        Some("blocked") => signals::blocked_readers(),
        Some("user") => as_a_user(),
        Some("quiet") => std::process::exit(args.get(2).and_then(|a| a.parse().ok()).unwrap_or(0)),
        Some("gen") => {
            let mut out = std::io::stdout().lock();
            let mut block = vec![0u8; 4096];
            for k in 0..256u64 {
                pattern(&mut block, k * 4096);
                if out.write_all(&block).is_err() {
                    break;
                }
            }
        }
        _ => greet(&args),
    }
}

fn greet(args: &[String]) {
    println!("hello from a Linux program on Machina");
    println!("argv: {args:?}");
    println!("PATH={}", std::env::var("PATH").unwrap_or_default());
    let numbers: Vec<u64> = (1..=10_000).collect();
    println!("heap: the sum of 1..=10000 is {}", numbers.iter().sum::<u64>());
    let _ = std::io::stdout().flush();
    let status = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(0);
    std::process::exit(status);
}

/// std::fs through the personality and fs-server.
fn files() {
    match std::fs::read_to_string("/etc/motd") {
        Ok(text) => println!("motd: {}", text.trim_end()),
        Err(e) => println!("motd: error {e}"),
    }
    let size = std::fs::metadata("/etc/motd").map(|m| m.len());
    println!("motd size: {size:?}");
    let written = std::fs::write("/hello.txt", b"written by hello\n");
    println!("write /hello.txt: {written:?}");
    println!("read back: {:?}", std::fs::read_to_string("/hello.txt"));
    let mut names: Vec<String> = match std::fs::read_dir("/") {
        Ok(entries) => {
            entries.filter_map(|e| e.ok()).map(|e| e.file_name().to_string_lossy().into_owned()).collect()
        }
        Err(e) => vec![format!("error {e}")],
    };
    names.sort();
    println!("ls /: {}", names.join(" "));
    println!("missing: {:?}", std::fs::read("/no/such/file").map_err(|e| e.kind()));
    println!("/dev/null: {:?}", std::fs::write("/dev/null", b"gone"));
    mapped_file();
    remapped();
    let mut random = [0u8; 32];
    let urandom =
        std::fs::File::open("/dev/urandom").and_then(|mut f| std::io::Read::read_exact(&mut f, &mut random));
    println!("urandom: {:?}, not all zero {}", urandom.map(|_| 32), random.iter().any(|&b| b != 0));
}

/// A line from the terminal.
fn read_line() {
    print!("type a line> ");
    let _ = std::io::stdout().flush();
    let mut line = String::new();
    match std::io::stdin().lock().read_line(&mut line) {
        Ok(n) => println!("you typed {n} bytes: [{}]", line.trim_end()),
        Err(e) => println!("read error: {e}"),
    }
}

/// FNV-1a over `data`, from `hash`.
fn checksum(hash: u64, data: &[u8]) -> u64 {
    data.iter().fold(hash, |h, &b| (h ^ b as u64).wrapping_mul(0x100_0000_01b3))
}

/// A deterministic byte pattern: byte `i` of the stream.
fn pattern(block: &mut [u8], start: u64) {
    for (i, b) in block.iter_mut().enumerate() {
        let n = start + i as u64;
        *b = (n ^ (n >> 8) ^ (n >> 16)).wrapping_mul(31) as u8;
    }
}

fn stress() {
    use std::io::Read;
    use std::process::{Command, Stdio};
    // 200 fork + exec + wait of a program that exits with the status it is given.
    let mut wrong = 0;
    for i in 0..200u32 {
        let status = Command::new("/bin/hello").arg("quiet").arg((i % 7).to_string()).status();
        if status.ok().and_then(|s| s.code()) != Some((i % 7) as i32) {
            wrong += 1;
        }
    }
    println!("stress: 200 fork + exec + wait, {wrong} wrong statuses");
    // 1 MiB through a pipe between two processes: a child writes it, this one reads it.
    let mut expected = 0xcbf2_9ce4_8422_2325u64;
    let mut block = vec![0u8; 4096];
    for k in 0..256u64 {
        pattern(&mut block, k * 4096);
        expected = checksum(expected, &block);
    }
    match Command::new("/bin/hello").arg("gen").stdout(Stdio::piped()).spawn() {
        Ok(mut child) => {
            let mut received = Vec::new();
            let _ = child.stdout.take().expect("piped stdout").read_to_end(&mut received);
            let _ = child.wait();
            let got = checksum(0xcbf2_9ce4_8422_2325, &received);
            let verdict = if got == expected { "right" } else { "WRONG" };
            println!("stress: 1 MiB through a pipe: {} bytes, checksum {verdict}", received.len());
        }
        Err(e) => println!("stress: spawn: {e}"),
    }
    // 20 MiB written to a file and read back.
    let mut sum = 0xcbf2_9ce4_8422_2325u64;
    let mut block = vec![0u8; 64 * 1024];
    match std::fs::File::create("/stress.dat") {
        Ok(mut f) => {
            for k in 0..320u64 {
                let at = k * block.len() as u64;
                pattern(&mut block, at);
                sum = checksum(sum, &block);
                if f.write_all(&block).is_err() {
                    println!("stress: write failed");
                    return;
                }
            }
        }
        Err(e) => return println!("stress: create: {e}"),
    }
    let data = std::fs::read("/stress.dat").unwrap_or_default();
    let back = checksum(0xcbf2_9ce4_8422_2325, &data);
    println!(
        "stress: 20 MiB file: {} bytes, checksum {}",
        data.len(),
        if back == sum { "right" } else { "WRONG" }
    );
    let _ = std::fs::remove_file("/stress.dat");
}

/// 30 system calls with a pointer into no mapped memory: each must answer EFAULT, and the
/// process (and the system) live on.
fn efault() {
    let bad = 0xdead_0000u64 as libc::c_long;
    let dir = std::ffi::CString::new("/").unwrap_or_default();
    let file = std::ffi::CString::new("/etc/motd").unwrap_or_default();
    // SAFETY: every call gets a bad pointer on purpose; the kernel and the personality check
    // them, so nothing is written to this process's memory.
    let (dirfd, filefd) = unsafe {
        (
            libc::open(dir.as_ptr(), libc::O_RDONLY | libc::O_DIRECTORY),
            libc::open(file.as_ptr(), libc::O_RDONLY),
        )
    };
    let (d, f) = (dirfd as libc::c_long, filefd as libc::c_long);
    let calls: [(&str, libc::c_long, [libc::c_long; 4]); 30] = [
        ("write", libc::SYS_write, [1, bad, 10, 0]),
        ("writev", libc::SYS_writev, [1, bad, 1, 0]),
        ("read", libc::SYS_read, [f, bad, 10, 0]),
        ("pread64", libc::SYS_pread64, [f, bad, 10, 0]),
        ("readv", libc::SYS_readv, [f, bad, 1, 0]),
        ("open", libc::SYS_open, [bad, 0, 0, 0]),
        ("openat", libc::SYS_openat, [-100, bad, 0, 0]),
        ("stat", libc::SYS_stat, [bad, bad, 0, 0]),
        ("lstat", libc::SYS_lstat, [bad, bad, 0, 0]),
        ("fstat", libc::SYS_fstat, [f, bad, 0, 0]),
        ("newfstatat", libc::SYS_newfstatat, [-100, bad, bad, 0]),
        ("getdents64", libc::SYS_getdents64, [d, bad, 4096, 0]),
        ("getcwd", libc::SYS_getcwd, [bad, 100, 0, 0]),
        ("chdir", libc::SYS_chdir, [bad, 0, 0, 0]),
        ("mkdir", libc::SYS_mkdir, [bad, 0o755, 0, 0]),
        ("rmdir", libc::SYS_rmdir, [bad, 0, 0, 0]),
        ("unlink", libc::SYS_unlink, [bad, 0, 0, 0]),
        ("rename", libc::SYS_rename, [bad, bad, 0, 0]),
        ("link", libc::SYS_link, [bad, bad, 0, 0]),
        ("symlink", libc::SYS_symlink, [bad, bad, 0, 0]),
        ("readlink", libc::SYS_readlink, [bad, bad, 10, 0]),
        ("chmod", libc::SYS_chmod, [bad, 0o644, 0, 0]),
        ("access", libc::SYS_access, [bad, 0, 0, 0]),
        ("execve", libc::SYS_execve, [bad, 0, 0, 0]),
        ("pipe2", libc::SYS_pipe2, [bad, 0, 0, 0]),
        ("uname", libc::SYS_uname, [bad, 0, 0, 0]),
        ("clock_gettime", libc::SYS_clock_gettime, [0, bad, 0, 0]),
        ("getrandom", libc::SYS_getrandom, [bad, 8, 0, 0]),
        ("nanosleep", libc::SYS_nanosleep, [bad, 0, 0, 0]),
        ("rt_sigaction", libc::SYS_rt_sigaction, [2, bad, 0, 8]),
    ];
    let mut wrong = Vec::new();
    for (name, number, [a, b, c, e]) in calls {
        // SAFETY: as above.
        let r = unsafe { libc::syscall(number, a, b, c, e) };
        let errno = std::io::Error::last_os_error().raw_os_error().unwrap_or(0);
        if r != -1 || errno != libc::EFAULT {
            wrong.push(format!("{name}: {r} errno {errno}"));
        }
    }
    println!("efault: {} calls, not EFAULT: {wrong:?}", calls.len());
}

/// A private mapping of /etc/motd holds its bytes; writing to it leaves the file as it was.
fn mapped_file() {
    use std::os::fd::AsRawFd;
    let Ok(file) = std::fs::File::open("/etc/motd") else { return println!("mmap: no /etc/motd") };
    let text = std::fs::read("/etc/motd").unwrap_or_default();
    // SAFETY: a fresh private mapping of an open file; it is read and written only within
    // its length, then unmapped.
    unsafe {
        let at = libc::mmap(
            std::ptr::null_mut(),
            8192,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE,
            file.as_raw_fd(),
            0,
        );
        if at == libc::MAP_FAILED {
            return println!("mmap: {}", std::io::Error::last_os_error());
        }
        let mapped = std::slice::from_raw_parts_mut(at.cast::<u8>(), 8192);
        let same = mapped[..text.len()] == text[..] && mapped[text.len()..].iter().all(|&b| b == 0);
        mapped[0] = b'X';
        let unchanged = std::fs::read("/etc/motd").is_ok_and(|now| now == text);
        libc::munmap(at, 8192);
        println!("mmap: private mapping holds the file {same}, file unchanged by a write {unchanged}");
    }
}

/// mremap grows a mapping (moving it when it must) and keeps its bytes.
fn remapped() {
    // SAFETY: fresh anonymous mappings, used within their lengths, then unmapped.
    unsafe {
        let small = 64 * 1024;
        let big = 1024 * 1024;
        let at = libc::mmap(
            std::ptr::null_mut(),
            small,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
            -1,
            0,
        );
        if at == libc::MAP_FAILED {
            return println!("mremap: no mapping");
        }
        let bytes = std::slice::from_raw_parts_mut(at.cast::<u8>(), small);
        for (i, b) in bytes.iter_mut().enumerate() {
            *b = (i % 251) as u8;
        }
        // Something right after it, so growing in place cannot work: it must move.
        let blocker = libc::mmap(
            at.cast::<u8>().add(small).cast(),
            4096,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_FIXED,
            -1,
            0,
        );
        let moved = libc::mremap(at, small, big, libc::MREMAP_MAYMOVE);
        if moved == libc::MAP_FAILED {
            return println!("mremap: {}", std::io::Error::last_os_error());
        }
        let grown = std::slice::from_raw_parts_mut(moved.cast::<u8>(), big);
        let kept = grown[..small].iter().enumerate().all(|(i, &b)| b == (i % 251) as u8);
        let zero = grown[small..].iter().all(|&b| b == 0);
        grown[big - 1] = 7;
        println!("mremap: moved {}, bytes kept {kept}, new pages zero {zero}", moved != at);
        libc::munmap(moved, big);
        libc::munmap(blocker, 4096);
    }
}

/// Become user 1000 (group 1000) and meet the file permissions fs-server checks against
/// those ids: reading a world-readable file works, writing a root-owned one or creating in
/// a root-owned directory is EACCES, a directory the user owns takes new files, and root
/// cannot be taken back.
fn as_a_user() {
    let _ = std::fs::create_dir("/home1000");
    // SAFETY: plain calls with integer arguments; a NUL-terminated path for chown.
    let (gid, uid) = unsafe {
        libc::chown(c"/home1000".as_ptr(), 1000, 1000);
        (libc::setgid(1000), libc::setuid(1000))
    };
    // SAFETY: as above.
    let ids = unsafe { (libc::getuid(), libc::geteuid(), libc::getgid(), libc::getegid()) };
    println!("user: setgid {gid} setuid {uid}, ids {ids:?}");
    let kind = |r: std::io::Result<()>| match r {
        Ok(()) => "ok".to_string(),
        Err(e) => format!("{:?}", e.kind()),
    };
    println!("user: read /etc/motd {}", kind(std::fs::read("/etc/motd").map(|_| ())));
    println!(
        "user: write /etc/motd {}",
        kind(std::fs::OpenOptions::new().append(true).open("/etc/motd").map(|_| ()))
    );
    println!("user: create /u.txt {}", kind(std::fs::write("/u.txt", b"no")));
    println!("user: create /home1000/u.txt {}", kind(std::fs::write("/home1000/u.txt", b"yes")));
    // SAFETY: an integer argument.
    let back = unsafe { libc::setuid(0) };
    println!("user: setuid 0 again {back} ({:?})", std::io::Error::last_os_error().kind());
}

//! hello's `threads` and `signals` modes: 8 std threads that meet on a Mutex and a Condvar
//! (clone with CLONE_THREAD, futex wait and wake, pthread_join through the cleared thread
//! id); and signal handlers run through the personality's signal frames: raise, blocking and
//! unblocking, a read interrupted with EINTR and one restarted (SA_RESTART), SIGCHLD, pause,
//! a stopped and continued child seen by waitpid(WUNTRACED), and a handler on an alternate
//! stack. Each check prints one line; the system test reads them.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};

/// 8 threads each add 1 to a shared counter 1,000 times under a Mutex, then all wait at a
/// Condvar until the last one arrives; the main thread joins them.
pub fn threads() {
    let shared = Arc::new((Mutex::new((0u64, 0usize)), Condvar::new()));
    let tids = Arc::new(Mutex::new(Vec::new()));
    let workers: Vec<_> = (0..8)
        .map(|_| {
            let (shared, tids) = (Arc::clone(&shared), Arc::clone(&tids));
            std::thread::spawn(move || {
                // SAFETY: gettid has no arguments.
                let tid = unsafe { libc::syscall(libc::SYS_gettid) };
                tids.lock().map(|mut t| t.push(tid)).ok();
                let (lock, arrived) = &*shared;
                for _ in 0..1000 {
                    if let Ok(mut state) = lock.lock() {
                        state.0 += 1;
                    }
                    std::thread::yield_now();
                }
                let Ok(mut state) = lock.lock() else { return };
                state.1 += 1;
                arrived.notify_all();
                while state.1 < 8 {
                    state = match arrived.wait(state) {
                        Ok(s) => s,
                        Err(_) => return,
                    };
                }
            })
        })
        .collect();
    let joined = workers.into_iter().map(|w| w.join()).filter(|r| r.is_ok()).count();
    let total = shared.0.lock().map(|s| s.0).unwrap_or(0);
    let mut tids = tids.lock().map(|t| t.clone()).unwrap_or_default();
    tids.sort();
    tids.dedup();
    // SAFETY: getpid has no arguments.
    let pid = unsafe { libc::getpid() } as i64;
    println!("threads: {joined} joined, counter {total}");
    println!("threads: {} distinct thread ids, none the pid: {}", tids.len(), !tids.contains(&pid));
    fpu_state_is_inherited();
}

fn mxcsr() -> u32 {
    let mut value = 0u32;
    // SAFETY: stmxcsr writes 4 bytes to a local.
    unsafe { core::arch::asm!("stmxcsr [{}]", in(reg) &mut value, options(nostack)) };
    value
}

fn set_mxcsr(value: u32) {
    // SAFETY: ldmxcsr of a valid MXCSR (default bits with a rounding mode).
    unsafe { core::arch::asm!("ldmxcsr [{}]", in(reg) &value, options(nostack)) };
}

/// A forked child and a new thread start with this thread's x87/SSE registers: here the
/// SSE rounding mode (round toward zero), which decides what 1.0 / 3.0 rounds to.
fn fpu_state_is_inherited() {
    let before = mxcsr();
    set_mxcsr((before & !0x6000) | 0x6000);
    let wanted = mxcsr();
    // SAFETY: the child only reads MXCSR and exits.
    let child = unsafe { libc::fork() };
    if child == 0 {
        // SAFETY: leaving the child.
        unsafe { libc::_exit(if mxcsr() == wanted { 0 } else { 1 }) };
    }
    let mut status = 0;
    // SAFETY: waiting for our child with a valid status pointer.
    unsafe { libc::waitpid(child, &mut status, 0) };
    let in_thread = std::thread::spawn(mxcsr).join().ok();
    set_mxcsr(before);
    println!(
        "fpu: fork keeps the rounding mode {}, a new thread too {}",
        libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
        in_thread == Some(wanted)
    );
}

static HANDLED: AtomicU64 = AtomicU64::new(0);
static LAST_SIGNAL: AtomicU64 = AtomicU64::new(0);
static ON_ALT_STACK: AtomicU64 = AtomicU64::new(0);

extern "C" fn count(signal: libc::c_int) {
    HANDLED.fetch_add(1, Ordering::SeqCst);
    LAST_SIGNAL.store(signal as u64, Ordering::SeqCst);
}

extern "C" fn where_am_i(_: libc::c_int) {
    let local = 0u8;
    ON_ALT_STACK.store(&local as *const u8 as u64, Ordering::SeqCst);
}

/// Install `handler` for `signal` with `flags` (SA_RESTART or not).
fn install(signal: libc::c_int, handler: extern "C" fn(libc::c_int), flags: libc::c_int) {
    // SAFETY: a zeroed sigaction is valid; the handler is an extern "C" fn.
    unsafe {
        let mut action: libc::sigaction = std::mem::zeroed();
        action.sa_sigaction = handler as usize;
        action.sa_flags = flags;
        libc::sigemptyset(&mut action.sa_mask);
        libc::sigaction(signal, &action, std::ptr::null_mut());
    }
}

fn mask(how: libc::c_int, signal: libc::c_int) {
    // SAFETY: a sigset built with sigemptyset/sigaddset.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, signal);
        libc::sigprocmask(how, &set, std::ptr::null_mut());
    }
}

/// A child that sleeps `ms` then sends `signal` to its parent, then (if `write` is given)
/// writes it to that descriptor.
fn signal_parent_after(ms: u64, signal: libc::c_int, write: Option<libc::c_int>) -> libc::pid_t {
    // SAFETY: fork in a single-threaded program; the child only sleeps, signals, writes and exits.
    unsafe {
        let parent = libc::getpid();
        let child = libc::fork();
        if child == 0 {
            std::thread::sleep(std::time::Duration::from_millis(ms));
            libc::kill(parent, signal);
            if let Some(fd) = write {
                libc::write(fd, b"x".as_ptr().cast(), 1);
            }
            libc::_exit(0);
        }
        child
    }
}

pub fn signals() {
    // 1. raise runs the handler before raise returns.
    install(libc::SIGUSR1, count, libc::SA_RESTART);
    // SAFETY: raising a signal this process handles.
    unsafe { libc::raise(libc::SIGUSR1) };
    println!(
        "raise: handled {} time(s), signal {}",
        HANDLED.load(Ordering::SeqCst),
        LAST_SIGNAL.load(Ordering::SeqCst)
    );

    // 2. Blocked, it waits; unblocked, it runs.
    mask(libc::SIG_BLOCK, libc::SIGUSR1);
    // SAFETY: as above.
    unsafe { libc::raise(libc::SIGUSR1) };
    let while_blocked = HANDLED.load(Ordering::SeqCst);
    mask(libc::SIG_UNBLOCK, libc::SIGUSR1);
    println!("blocked: {} while blocked, {} after unblocking", while_blocked, HANDLED.load(Ordering::SeqCst));

    // 3. A read of an empty pipe, interrupted by a handler without SA_RESTART: EINTR.
    let mut fds = [0; 2];
    // SAFETY: fds has room for two descriptors.
    unsafe { libc::pipe(fds.as_mut_ptr()) };
    install(libc::SIGUSR2, count, 0);
    let child = signal_parent_after(100, libc::SIGUSR2, None);
    let mut byte = [0u8; 1];
    // SAFETY: byte is a valid buffer of 1 byte.
    let n = unsafe { libc::read(fds[0], byte.as_mut_ptr().cast(), 1) };
    let errno = std::io::Error::last_os_error().raw_os_error().unwrap_or(0);
    println!("interrupted read: {n}, EINTR {}", errno == libc::EINTR);
    // SAFETY: waiting for our child.
    unsafe { libc::waitpid(child, std::ptr::null_mut(), 0) };

    // 4. The same with SA_RESTART: the read starts again and gets the byte written after.
    install(libc::SIGUSR2, count, libc::SA_RESTART);
    let before = HANDLED.load(Ordering::SeqCst);
    let child = signal_parent_after(100, libc::SIGUSR2, Some(fds[1]));
    // SAFETY: as above.
    let n = unsafe { libc::read(fds[0], byte.as_mut_ptr().cast(), 1) };
    println!(
        "restarted read: {n} byte {:?}, handler ran {}",
        byte[0] as char,
        HANDLED.load(Ordering::SeqCst) - before
    );
    // SAFETY: as above.
    unsafe { libc::waitpid(child, std::ptr::null_mut(), 0) };

    // 5. SIGCHLD comes when a child ends; pause waits for a signal.
    install(libc::SIGCHLD, count, libc::SA_RESTART);
    let before = HANDLED.load(Ordering::SeqCst);
    // SAFETY: the child exits at once.
    let child = unsafe { libc::fork() };
    if child == 0 {
        // SAFETY: leaving the child.
        unsafe { libc::_exit(3) };
    }
    let mut status = 0;
    // SAFETY: waiting for our child with a valid status pointer.
    unsafe { libc::waitpid(child, &mut status, 0) };
    println!(
        "sigchld: handler ran {}, child exit status {}",
        HANDLED.load(Ordering::SeqCst) - before,
        libc::WEXITSTATUS(status)
    );
    install(libc::SIGUSR1, count, 0);
    let before = HANDLED.load(Ordering::SeqCst);
    let child = signal_parent_after(50, libc::SIGUSR1, None);
    // SAFETY: pause returns after a handler.
    let r = unsafe { libc::pause() };
    println!("pause: {r} after {} handler(s)", HANDLED.load(Ordering::SeqCst) - before);
    // SAFETY: as above.
    unsafe { libc::waitpid(child, std::ptr::null_mut(), 0) };

    // 6. Stop and continue a child; waitpid(WUNTRACED) sees the stop; SIGTERM ends it.
    // SAFETY: the child sleeps in a loop until killed.
    let child = unsafe { libc::fork() };
    if child == 0 {
        loop {
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }
    // SAFETY: signalling and waiting for our own child.
    unsafe {
        libc::kill(child, libc::SIGSTOP);
        let mut status = 0;
        libc::waitpid(child, &mut status, libc::WUNTRACED);
        let stopped = libc::WIFSTOPPED(status) && libc::WSTOPSIG(status) == libc::SIGSTOP;
        libc::kill(child, libc::SIGCONT);
        libc::kill(child, libc::SIGTERM);
        libc::waitpid(child, &mut status, 0);
        println!(
            "stop: stopped {stopped}, then ended by signal {}",
            if libc::WIFSIGNALED(status) { libc::WTERMSIG(status) } else { 0 }
        );
    }

    // 7. A handler on the alternate stack.
    let mut alt = vec![0u8; 64 * 1024];
    let base = alt.as_mut_ptr() as u64;
    // SAFETY: the stack lives until the end of this function; the handler only stores.
    unsafe {
        let stack = libc::stack_t { ss_sp: alt.as_mut_ptr().cast(), ss_flags: 0, ss_size: alt.len() };
        libc::sigaltstack(&stack, std::ptr::null_mut());
        install(libc::SIGUSR2, where_am_i, libc::SA_ONSTACK);
        libc::raise(libc::SIGUSR2);
    }
    let at = ON_ALT_STACK.load(Ordering::SeqCst);
    println!("altstack: handler ran on it {}", (base..base + alt.len() as u64).contains(&at));

    // 8. The x87/SSE registers are saved in the frame: the handler starts with the default
    // rounding mode (as on Linux), and one that changes it leaves the interrupted code's as
    // it was.
    install(libc::SIGUSR1, change_rounding, libc::SA_RESTART);
    let before = mxcsr();
    set_mxcsr((before & !0x6000) | 0x2000);
    let ours = mxcsr();
    // SAFETY: raising a signal this process handles.
    unsafe { libc::raise(libc::SIGUSR1) };
    let kept = mxcsr() == ours;
    set_mxcsr(before);
    println!(
        "fpu in handlers: the handler started with the default mode {}, saw its own {}, ours kept {kept}",
        HANDLER_START.load(Ordering::SeqCst) as u32 & 0x6000 == 0,
        HANDLER_MXCSR.load(Ordering::SeqCst) as u32 & 0x6000 == 0x6000,
    );

    // 9. An interrupted nanosleep says how much time was left.
    install(libc::SIGUSR2, count, 0);
    let child = signal_parent_after(100, libc::SIGUSR2, None);
    let asked = libc::timespec { tv_sec: 2, tv_nsec: 0 };
    let mut left = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: valid timespecs; waiting for our child after.
    let r = unsafe { libc::nanosleep(&asked, &mut left) };
    let errno = std::io::Error::last_os_error().raw_os_error().unwrap_or(0);
    // SAFETY: as above.
    unsafe { libc::waitpid(child, std::ptr::null_mut(), 0) };
    let left_ms = left.tv_sec * 1000 + left.tv_nsec / 1_000_000;
    println!(
        "nanosleep: interrupted {}, time left plausible {}",
        r == -1 && errno == libc::EINTR,
        (1000..2000).contains(&left_ms)
    );

    // 10. O_NONBLOCK pipes: an empty read and a full write answer EAGAIN; select sees the
    // write end of a pipe with no reader as writable (the write would fail at once).
    let mut fds = [0; 2];
    // SAFETY: fds has room for two descriptors; buffers are live locals.
    unsafe {
        libc::pipe2(fds.as_mut_ptr(), libc::O_NONBLOCK);
        let mut byte = [0u8; 1];
        let empty = libc::read(fds[0], byte.as_mut_ptr().cast(), 1) == -1
            && std::io::Error::last_os_error().raw_os_error() == Some(libc::EAGAIN);
        let block = [7u8; 4096];
        let mut total = 0;
        loop {
            let n = libc::write(fds[1], block.as_ptr().cast(), block.len());
            if n <= 0 {
                break;
            }
            total += n;
        }
        let full = std::io::Error::last_os_error().raw_os_error() == Some(libc::EAGAIN);
        libc::close(fds[0]);
        let mut writable: libc::fd_set = std::mem::zeroed();
        libc::FD_SET(fds[1], &mut writable);
        let mut zero = libc::timeval { tv_sec: 0, tv_usec: 0 };
        let ready =
            libc::select(fds[1] + 1, std::ptr::null_mut(), &mut writable, std::ptr::null_mut(), &mut zero);
        let flagged = libc::FD_ISSET(fds[1], &writable);
        libc::close(fds[1]);
        println!(
            "nonblocking: empty read EAGAIN {empty}, full after {total} bytes EAGAIN {full}, select on a reader-less pipe {ready} {flagged}"
        );
    }
}

static HANDLER_START: AtomicU64 = AtomicU64::new(u64::MAX);
static HANDLER_MXCSR: AtomicU64 = AtomicU64::new(0);

extern "C" fn change_rounding(_: libc::c_int) {
    HANDLER_START.store(mxcsr() as u64, Ordering::SeqCst);
    set_mxcsr(mxcsr() | 0x6000);
    HANDLER_MXCSR.store(mxcsr() as u64, Ordering::SeqCst);
}

/// 20 children each block in a read of an empty pipe of its own; while they wait, this
/// process forks, execs and waits 20 programs and writes and reads back a file (which
/// needs the personality: were it held up by the readers, this would never finish). Then
/// one byte to each pipe releases the readers, which exit with the byte they read.
pub fn blocked_readers() {
    let mut writers = Vec::new();
    let mut children = Vec::new();
    for i in 0..20u8 {
        let mut fds = [0; 2];
        // SAFETY: fds has room for two descriptors; the child only reads, then exits.
        unsafe {
            libc::pipe(fds.as_mut_ptr());
            let child = libc::fork();
            if child == 0 {
                libc::close(fds[1]);
                let mut byte = [0u8; 1];
                let n = libc::read(fds[0], byte.as_mut_ptr().cast(), 1);
                libc::_exit(if n == 1 { byte[0] as i32 } else { 255 });
            }
            libc::close(fds[0]);
            writers.push((fds[1], i + 1));
            children.push((child, i + 1));
        }
    }
    let mut work = 0;
    for i in 0..20 {
        let status = std::process::Command::new("/bin/hello").args(["quiet", &(i % 5).to_string()]).status();
        if status.ok().and_then(|s| s.code()) == Some(i % 5) {
            work += 1;
        }
    }
    let written = std::fs::write("/blocked.txt", b"while 20 wait").is_ok();
    let read_back = std::fs::read("/blocked.txt").is_ok_and(|b| b == b"while 20 wait");
    let _ = std::fs::remove_file("/blocked.txt");
    // SAFETY: waitpid with WNOHANG on our children: none may have ended yet.
    let ended_early = children
        .iter()
        .filter(|&&(c, _)| unsafe { libc::waitpid(c, std::ptr::null_mut(), libc::WNOHANG) } != 0)
        .count();
    println!(
        "blocked: 20 readers waiting, {work} programs run and a file written {written} and read {read_back} meanwhile, {ended_early} ended early"
    );
    for &(fd, byte) in &writers {
        // SAFETY: writing one byte from a live buffer to our pipe.
        unsafe { libc::write(fd, [byte].as_ptr().cast(), 1) };
    }
    let mut right = 0;
    for &(child, byte) in &children {
        let mut status = 0;
        // SAFETY: waiting for our child with a valid status pointer.
        unsafe { libc::waitpid(child, &mut status, 0) };
        if libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == byte as i32 {
            right += 1;
        }
    }
    println!("blocked: {right} of 20 readers got their byte");
}

//! usertests: tests of the xv6 personality's system calls, in the spirit of xv6's
//! `usertests.c` (the tests are our own). Each test prints "test NAME: " and then "OK" or
//! "FAILED: reason"; the first failure ends the program. After the last one it prints
//! "ALL TESTS PASSED". It works in the current directory, with files it removes again.
//!
//! xv6's exit has no status, so a child that checks something reports through a pipe: see
//! [`spawn`].
#![no_std]
#![no_main]

extern crate alloc;

use alloc::format;
use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;
use xv6::{
    O_CREATE, O_RDONLY, O_RDWR, O_WRONLY, Stat, T_DIR, T_FILE, chdir, close, dup, exec, exit, fork, fstat,
    getpid, kill, link, mkdir, open, pipe, printf, read, sbrk, sleep, unlink, uptime, wait, write,
};

xv6::entry!(main);

/// What a test returns: `Err` carries the reason it failed.
type TestResult = Result<(), String>;

/// A test: its name and its function.
type Test = (&'static str, fn() -> TestResult);

/// Fail the test with a formatted reason unless `cond` holds.
macro_rules! check {
    ($cond:expr, $($reason:tt)+) => {
        if !$cond {
            return Err(format!($($reason)+));
        }
    };
}

const TESTS: &[Test] = &[
    ("forkloop", fork_loop),
    ("forkwait", fork_wait),
    ("exec", exec_echo),
    ("execmissing", exec_missing),
    ("pipe", pipe_data),
    ("pipeeof", pipe_eof),
    ("pipenoreader", pipe_no_reader),
    ("sbrk", sbrk_grow_shrink),
    ("sbrkhuge", sbrk_huge),
    ("malloc", malloc_reuse),
    ("manyfiles", many_files),
    ("bigfile", big_file),
    ("dirs", directories),
    ("link", link_unlink),
    ("dup", dup_offset),
    ("badfd", bad_fds),
    ("badpointers", bad_pointers),
    ("getpid", getpid_child),
    ("kill", kill_sleeper),
    ("uptime", uptime_sleep),
];

fn main(_args: &[&str]) {
    printf!(1, "usertests starting\n");
    for (name, test) in TESTS {
        printf!(1, "test {}: ", name);
        match test() {
            Ok(()) => printf!(1, "OK\n"),
            Err(reason) => {
                printf!(1, "FAILED: {}\n", reason);
                exit()
            }
        }
    }
    printf!(1, "ALL TESTS PASSED\n");
}

// ---------------------------------------------------------------------------------------
// Helpers

/// A child started by [`spawn`], with the read end of the pipe it reports through.
struct Child {
    pid: i32,
    report_fd: i32,
}

/// What a child reported before it ended.
enum Report {
    Passed,
    Failed(String),
    /// It ended without writing anything (it was killed, or crashed).
    Silent,
}

/// Fork a child that runs `body` and writes its result into a pipe: "OK", or the reason it
/// failed. The parent reads it with [`Child::report`] or [`Child::finish`].
fn spawn(body: impl FnOnce() -> TestResult) -> Result<Child, String> {
    let mut fds = [0; 2];
    check!(pipe(&mut fds) == 0, "pipe failed");
    let [read_end, write_end] = fds;
    let pid = fork();
    if pid < 0 {
        close(read_end);
        close(write_end);
        return Err(String::from("fork failed"));
    }
    if pid == 0 {
        close(read_end);
        let message = match body() {
            Ok(()) => String::from("OK"),
            Err(reason) => reason,
        };
        write(write_end, message.as_bytes());
        exit()
    }
    close(write_end);
    Ok(Child { pid, report_fd: read_end })
}

impl Child {
    /// Read the report until end of file (the child has exited, or at least closed its end).
    fn report(&self) -> Report {
        let bytes = read_to_end(self.report_fd).unwrap_or_default();
        close(self.report_fd);
        match bytes.as_slice() {
            b"" => Report::Silent,
            b"OK" => Report::Passed,
            reason => Report::Failed(String::from_utf8_lossy(reason).into_owned()),
        }
    }

    /// Read the report and wait for the child; anything but a pass is an error.
    fn finish(self) -> TestResult {
        let report = self.report();
        let waited = wait();
        check!(waited == self.pid, "wait returned {} instead of the child {}", waited, self.pid);
        match report {
            Report::Passed => Ok(()),
            Report::Failed(reason) => Err(format!("in the child: {reason}")),
            Report::Silent => Err(String::from("the child ended without reporting")),
        }
    }
}

/// Wait for each of `pids` (in any order).
fn reap(pids: &[i32]) -> TestResult {
    for _ in pids {
        let pid = wait();
        check!(pids.contains(&pid), "wait returned {}, expected one of {:?}", pid, pids);
    }
    Ok(())
}

/// Everything that `fd` gives until end of file.
fn read_to_end(fd: i32) -> Result<Vec<u8>, String> {
    let mut data = Vec::new();
    let mut buf = [0u8; 512];
    loop {
        let n = read(fd, &mut buf);
        check!(n >= 0, "read of fd {} failed", fd);
        let Some(chunk) = buf.get(..n as usize) else {
            return Err(format!("read returned {n} for a buffer of {}", buf.len()));
        };
        if chunk.is_empty() {
            return Ok(data);
        }
        data.extend_from_slice(chunk);
    }
}

/// The whole content of the file at `path`.
fn read_file(path: &str) -> Result<Vec<u8>, String> {
    let fd = open(path, O_RDONLY);
    check!(fd >= 0, "cannot open {}", path);
    let data = read_to_end(fd);
    close(fd);
    data
}

/// Create (or overwrite) the file at `path` with `data`.
fn write_file(path: &str, data: &[u8]) -> TestResult {
    let fd = open(path, O_CREATE | O_WRONLY);
    check!(fd >= 0, "cannot create {}", path);
    let written = write(fd, data);
    close(fd);
    check!(written as usize == data.len(), "write to {} returned {}", path, written);
    Ok(())
}

// ---------------------------------------------------------------------------------------
// fork, exec, wait

/// 100 times: fork a child that exits at once, and wait for it.
fn fork_loop() -> TestResult {
    for i in 0..100 {
        let pid = fork();
        check!(pid >= 0, "fork {} failed", i);
        if pid == 0 {
            exit()
        }
        let waited = wait();
        check!(waited == pid, "wait returned {} instead of {}", waited, pid);
    }
    Ok(())
}

/// Fork 10 children; 10 waits return each once; then there are none left.
fn fork_wait() -> TestResult {
    let mut pids = [0; 10];
    for pid in pids.iter_mut() {
        *pid = fork();
        check!(*pid >= 0, "fork failed");
        if *pid == 0 {
            exit()
        }
    }
    let mut seen = [false; 10];
    for _ in 0..pids.len() {
        let waited = wait();
        let Some(i) = pids.iter().position(|&pid| pid == waited) else {
            return Err(format!("wait returned {waited}, not a child"));
        };
        check!(!seen[i], "wait returned {} twice", waited);
        seen[i] = true;
    }
    check!(wait() == -1, "wait without children did not return -1");
    Ok(())
}

/// Exec /xv6/echo in a child, its output redirected to a file: the file holds the arguments.
fn exec_echo() -> TestResult {
    const OUTPUT: &str = "ut.echo";
    for round in 0..5 {
        unlink(OUTPUT);
        let word = format!("round{round}");
        let pid = fork();
        check!(pid >= 0, "fork failed");
        if pid == 0 {
            close(1);
            if open(OUTPUT, O_CREATE | O_WRONLY) != 1 {
                printf!(2, "usertests: cannot open {} as fd 1\n", OUTPUT);
                exit()
            }
            exec("/xv6/echo", &["echo", "hello", &word]);
            printf!(2, "usertests: exec /xv6/echo failed\n");
            exit()
        }
        let waited = wait();
        check!(waited == pid, "wait returned {} instead of {}", waited, pid);
        let output = read_file(OUTPUT)?;
        let expected = format!("hello {word}\n");
        check!(
            output == expected.as_bytes(),
            "echo wrote {:?}, expected {:?}",
            String::from_utf8_lossy(&output),
            expected
        );
    }
    check!(unlink(OUTPUT) == 0, "unlink {} failed", OUTPUT);
    Ok(())
}

fn exec_missing() -> TestResult {
    let result = exec("/xv6/no-such-program", &["no-such-program"]);
    check!(result == -1, "exec of a missing file returned {}", result);
    Ok(())
}

// ---------------------------------------------------------------------------------------
// Pipes

/// The byte at `offset` of the data the pipe test sends.
fn pipe_byte(offset: usize) -> u8 {
    (offset % 251) as u8
}

/// The parent writes 5 x 1033 bytes into a pipe; the child reads and checks them, then sees
/// end of file once the parent has closed its end.
fn pipe_data() -> TestResult {
    const CHUNK: usize = 1033;
    const TOTAL: usize = 5 * CHUNK;
    let mut fds = [0; 2];
    check!(pipe(&mut fds) == 0, "pipe failed");
    let [read_end, write_end] = fds;
    let child = spawn(move || {
        close(write_end);
        let mut buf = vec![0u8; 700];
        let mut total = 0;
        loop {
            let n = read(read_end, &mut buf);
            check!(n >= 0, "read from the pipe failed after {} bytes", total);
            let Some(chunk) = buf.get(..n as usize) else {
                return Err(format!("read returned {n}"));
            };
            if chunk.is_empty() {
                break;
            }
            for (i, &byte) in chunk.iter().enumerate() {
                check!(byte == pipe_byte(total + i), "wrong byte at offset {}", total + i);
            }
            total += chunk.len();
            check!(total <= TOTAL, "read {} bytes, more than the {} sent", total, TOTAL);
        }
        check!(total == TOTAL, "read {} bytes instead of {}", total, TOTAL);
        check!(read(read_end, &mut buf) == 0, "a second read at end of file did not return 0");
        Ok(())
    })?;
    close(read_end);
    let mut chunk = vec![0u8; CHUNK];
    for round in 0..5 {
        for (i, byte) in chunk.iter_mut().enumerate() {
            *byte = pipe_byte(round * CHUNK + i);
        }
        let written = write(write_end, &chunk);
        check!(written as usize == CHUNK, "write {} returned {}", round, written);
    }
    close(write_end);
    child.finish()
}

/// A read on a pipe whose writers have all closed returns what is left, then 0.
fn pipe_eof() -> TestResult {
    let mut fds = [0; 2];
    check!(pipe(&mut fds) == 0, "pipe failed");
    let [read_end, write_end] = fds;
    check!(write(write_end, b"x") == 1, "write to the pipe failed");
    check!(close(write_end) == 0, "close of the write end failed");
    let mut buf = [0u8; 16];
    check!(read(read_end, &mut buf) == 1, "read did not return the byte left");
    check!(read(read_end, &mut buf) == 0, "read after the writers closed did not return 0");
    close(read_end);
    Ok(())
}

/// Writing into a pipe without a reader fails with -1 or ends the writer; it must not block.
/// A watchdog process kills the writer if it is still there after `LIMIT` ticks.
fn pipe_no_reader() -> TestResult {
    const LIMIT: i32 = 500;
    let mut fds = [0; 2];
    check!(pipe(&mut fds) == 0, "pipe failed");
    let [read_end, write_end] = fds;
    check!(close(read_end) == 0, "close of the read end failed");
    let start = uptime();
    let child = spawn(move || {
        let data = [b'x'; 1024];
        for _ in 0..1024 {
            if write(write_end, &data) < 0 {
                return Ok(());
            }
        }
        Err(String::from("1 MiB went into a pipe without a reader"))
    })?;
    close(write_end);
    let watchdog = fork();
    check!(watchdog >= 0, "fork failed");
    if watchdog == 0 {
        sleep(LIMIT);
        kill(child.pid);
        exit()
    }
    let report = child.report();
    kill(watchdog);
    reap(&[child.pid, watchdog])?;
    let took = uptime() - start;
    match report {
        Report::Passed => Ok(()),
        Report::Failed(reason) => Err(reason),
        // The personality ended the writer, as Unix's SIGPIPE would.
        Report::Silent if took < LIMIT => Ok(()),
        Report::Silent => Err(format!("the write blocked until the watchdog ({took} ticks)")),
    }
}

// ---------------------------------------------------------------------------------------
// sbrk

const PAGE: usize = 4096;
const MIB: usize = 1 << 20;

/// sbrk(n) as an address, or an error naming the call.
///
/// # Safety
/// As for `sbrk`: a shrink may free only memory this test grew.
unsafe fn sbrk_at(n: i32) -> Result<usize, String> {
    // SAFETY: delegated to the caller.
    match unsafe { sbrk(n) } {
        Some(old) => Ok(old as usize),
        None => Err(format!("sbrk({n}) failed")),
    }
}

/// Grow the break by 1 MiB in pages, checking the old break each time and touching every
/// page; shrink by 512 KiB, grow again (the new memory reads as zeros), and give it all back.
/// The break is first moved up to a page boundary: a shrink frees only whole pages (as in
/// xv6, the page that holds the break stays), so the regrown pages are all new only then.
/// Nothing allocates on the heap meanwhile except on failure (printf! does not allocate).
fn sbrk_grow_shrink() -> TestResult {
    // SAFETY (every sbrk call of this test): the test frees only memory it grew itself, and
    // reads and writes only memory between the break it started with and the current one.
    unsafe {
        let first = sbrk_at(0)?;
        let again = sbrk_at(0)?;
        check!(first == again, "sbrk(0) returned {:#x}, then {:#x}", first, again);
        let padding = first.next_multiple_of(PAGE) - first;
        sbrk_at(padding as i32)?;
        let start = sbrk_at(0)?;
        check!(start == first + padding, "sbrk({}) moved the break to {:#x}", padding, start);
        for i in 0..MIB / PAGE {
            let old = sbrk_at(PAGE as i32)?;
            check!(old == start + i * PAGE, "sbrk returned {:#x} for page {}", old, i);
            let page = old as *mut u8;
            page.write_volatile(i as u8);
            page.add(PAGE - 1).write_volatile(!(i as u8));
        }
        check!(sbrk_at(0)? == start + MIB, "the break is not 1 MiB up");
        for i in 0..MIB / PAGE {
            let page = (start + i * PAGE) as *const u8;
            check!(page.read_volatile() == i as u8, "page {} lost its first byte", i);
            check!(page.add(PAGE - 1).read_volatile() == !(i as u8), "page {} lost its last byte", i);
        }

        let old = sbrk_at(-(MIB as i32 / 2))?;
        check!(old == start + MIB, "shrinking returned {:#x}", old);
        check!(sbrk_at(0)? == start + MIB / 2, "the break did not go down by 512 KiB");
        for i in 0..MIB / 2 / PAGE {
            let page = (start + i * PAGE) as *const u8;
            check!(page.read_volatile() == i as u8, "page {} changed when the break shrank", i);
        }

        let old = sbrk_at(MIB as i32 / 2)?;
        check!(old == start + MIB / 2, "growing again returned {:#x}", old);
        for i in MIB / 2 / PAGE..MIB / PAGE {
            let page = (start + i * PAGE) as *mut u8;
            check!(page.read_volatile() == 0, "grown again, page {} does not read as zero", i);
            check!(page.add(PAGE - 1).read_volatile() == 0, "page {} is not zero at its end", i);
            page.write_volatile(1);
        }

        let old = sbrk_at(-(MIB as i32))?;
        check!(old == start + MIB, "giving back 1 MiB returned {:#x}", old);
        check!(sbrk_at(0)? == start, "the break did not go back down by 1 MiB");
        sbrk_at(-(padding as i32))?;
        check!(sbrk_at(0)? == first, "the break did not return to where it started");
    }
    Ok(())
}

/// Ask for 1 GiB at a time, at most 4 times: the personality may grant some or refuse (-1)
/// but must not crash; what it granted is given back.
fn sbrk_huge() -> TestResult {
    const GIB: i32 = 1 << 30;
    // SAFETY: the test gives back exactly what it got, and touches none of it.
    unsafe {
        let start = sbrk_at(0)?;
        let mut granted = 0;
        for _ in 0..4 {
            if sbrk(GIB).is_none() {
                break;
            }
            granted += 1;
        }
        for _ in 0..granted {
            sbrk_at(-GIB)?;
        }
        let end = sbrk_at(0)?;
        check!(end == start, "after {} GiB granted and given back, the break moved", granted);
    }
    Ok(())
}

/// The byte at `offset` of heap block number `block` of the malloc test.
fn heap_byte(block: usize, offset: usize) -> u8 {
    (block * 13 + offset) as u8
}

/// Fill blocks of many sizes, free every other one, allocate again, check every block's
/// content; do it twice, and the second round must fit in the memory the first one got
/// (free merges blocks, malloc reuses them). A large alignment is honoured.
fn malloc_reuse() -> TestResult {
    fn round() -> TestResult {
        let mut blocks: Vec<Vec<u8>> = Vec::new();
        for block in 0..400 {
            let size = (block * 37) % 3000 + 1;
            blocks.push((0..size).map(|offset| heap_byte(block, offset)).collect());
        }
        for block in (0..blocks.len()).step_by(2) {
            blocks[block] = Vec::new();
        }
        for block in (0..blocks.len()).step_by(2) {
            let size = (block * 53) % 2000 + 1;
            blocks[block] = (0..size).map(|offset| heap_byte(block, offset)).collect();
        }
        for (block, data) in blocks.iter().enumerate() {
            for (offset, &byte) in data.iter().enumerate() {
                check!(byte == heap_byte(block, offset), "block {} changed at offset {}", block, offset);
            }
        }
        Ok(())
    }
    // SAFETY: sbrk(0) moves nothing.
    let heap_top = || unsafe { sbrk(0) }.map(|top| top as usize).unwrap_or(0);
    round()?;
    let after_first = heap_top();
    round()?;
    let after_second = heap_top();
    check!(after_second == after_first, "the heap grew by {} bytes", after_second - after_first);

    #[repr(align(64))]
    struct Aligned([u8; 64]);
    let aligned = alloc::boxed::Box::new(Aligned([7; 64]));
    check!((&*aligned as *const Aligned as usize).is_multiple_of(64), "a Box is not 64-byte aligned");
    check!(aligned.0.iter().all(|&byte| byte == 7), "the aligned block lost its content");
    Ok(())
}

// ---------------------------------------------------------------------------------------
// Files and directories

/// The 512 bytes of file number `index` of the many-files test.
fn small_file(index: usize) -> [u8; 512] {
    core::array::from_fn(|i| (index * 7 + i) as u8)
}

/// Create f0..f99 with 512 bytes each, read them back, fstat them, unlink them.
fn many_files() -> TestResult {
    const COUNT: usize = 100;
    for i in 0..COUNT {
        let name = format!("f{i}");
        unlink(&name); // left over from an interrupted run
        write_file(&name, &small_file(i))?;
    }
    for i in 0..COUNT {
        let name = format!("f{i}");
        let fd = open(&name, O_RDONLY);
        check!(fd >= 0, "cannot open {}", name);
        let data = read_to_end(fd);
        let mut st = Stat::default();
        let fstat_result = fstat(fd, &mut st);
        close(fd);
        check!(data? == small_file(i), "{} does not hold what was written", name);
        check!(fstat_result == 0, "fstat of {} failed", name);
        check!(st.typ == T_FILE, "{} has type {}", name, st.typ);
        check!(st.size == 512, "{} has size {}", name, st.size);
    }
    for i in 0..COUNT {
        let name = format!("f{i}");
        check!(unlink(&name) == 0, "unlink {} failed", name);
        let fd = open(&name, O_RDONLY);
        check!(fd < 0, "{} opens after its unlink", name);
    }
    Ok(())
}

/// The byte at `offset` of the big file (not periodic with the 8 KiB writes).
fn big_byte(offset: usize) -> u8 {
    (offset % 251) as u8 ^ (offset >> 13) as u8
}

/// Write 2 MiB in 8 KiB writes, read it back in odd-sized reads, fstat, unlink.
fn big_file() -> TestResult {
    const NAME: &str = "ut.big";
    const SIZE: usize = 2 * MIB;
    const CHUNK: usize = 8192;
    unlink(NAME);
    let fd = open(NAME, O_CREATE | O_WRONLY);
    check!(fd >= 0, "cannot create {}", NAME);
    let mut buf = vec![0u8; CHUNK];
    for offset in (0..SIZE).step_by(CHUNK) {
        for (i, byte) in buf.iter_mut().enumerate() {
            *byte = big_byte(offset + i);
        }
        let written = write(fd, &buf);
        check!(written as usize == CHUNK, "write at offset {} returned {}", offset, written);
    }
    close(fd);

    let fd = open(NAME, O_RDONLY);
    check!(fd >= 0, "cannot open {}", NAME);
    let mut st = Stat::default();
    check!(fstat(fd, &mut st) == 0, "fstat failed");
    check!(st.size as usize == SIZE, "fstat says {} bytes instead of {}", st.size, SIZE);
    let mut buf = vec![0u8; 3000];
    let mut offset = 0;
    loop {
        let n = read(fd, &mut buf);
        check!(n >= 0, "read at offset {} failed", offset);
        let Some(chunk) = buf.get(..n as usize) else { return Err(format!("read returned {n}")) };
        if chunk.is_empty() {
            break;
        }
        for (i, &byte) in chunk.iter().enumerate() {
            check!(byte == big_byte(offset + i), "wrong byte at offset {}", offset + i);
        }
        offset += chunk.len();
        check!(offset <= SIZE, "read more than was written");
    }
    close(fd);
    check!(offset == SIZE, "read {} bytes instead of {}", offset, SIZE);
    check!(unlink(NAME) == 0, "unlink failed");
    Ok(())
}

/// mkdir, chdir in, create a file, chdir out; a directory that is not empty cannot be
/// unlinked; mkdir of an existing name fails.
fn directories() -> TestResult {
    const DIR: &str = "ut.dir";
    check!(mkdir(DIR) == 0, "mkdir {} failed", DIR);
    check!(mkdir(DIR) == -1, "mkdir of an existing name did not fail");
    let fd = open(DIR, O_RDONLY);
    check!(fd >= 0, "cannot open the directory");
    let mut st = Stat::default();
    let fstat_result = fstat(fd, &mut st);
    close(fd);
    check!(fstat_result == 0 && st.typ == T_DIR, "fstat of the directory: not T_DIR");

    check!(chdir(DIR) == 0, "chdir into {} failed", DIR);
    write_file("file", b"inside")?;
    check!(chdir("..") == 0, "chdir .. failed");
    check!(unlink(DIR) == -1, "unlink of a directory that is not empty did not fail");
    let path = format!("{DIR}/file");
    check!(read_file(&path)? == b"inside", "{} does not hold what was written", path);
    check!(unlink(&path) == 0, "unlink {} failed", path);
    check!(unlink(DIR) == 0, "unlink of the empty directory failed");
    check!(chdir(DIR) == -1, "chdir into the removed directory did not fail");
    Ok(())
}

/// link a second name, unlink the first, read through the second.
fn link_unlink() -> TestResult {
    const OLD: &str = "ut.link.old";
    const NEW: &str = "ut.link.new";
    unlink(OLD);
    unlink(NEW);
    write_file(OLD, b"linked")?;
    check!(link(OLD, NEW) == 0, "link failed");
    check!(link(OLD, NEW) == -1, "link onto an existing name did not fail");
    check!(unlink(OLD) == 0, "unlink of the old name failed");
    check!(open(OLD, O_RDONLY) < 0, "the old name opens after its unlink");
    check!(read_file(NEW)? == b"linked", "the new name does not read the content");
    check!(unlink(NEW) == 0, "unlink of the new name failed");
    Ok(())
}

/// A dup shares the offset: "ab" through one fd and "cd" through the other give "abcd".
fn dup_offset() -> TestResult {
    const NAME: &str = "ut.dup";
    unlink(NAME);
    let fd = open(NAME, O_CREATE | O_RDWR);
    check!(fd >= 0, "cannot create {}", NAME);
    let copy = dup(fd);
    check!(copy >= 0 && copy != fd, "dup returned {}", copy);
    check!(write(fd, b"ab") == 2, "write through the fd failed");
    check!(write(copy, b"cd") == 2, "write through the dup failed");
    close(fd);
    close(copy);
    check!(read_file(NAME)? == b"abcd", "the file does not hold \"abcd\"");
    check!(unlink(NAME) == 0, "unlink failed");
    Ok(())
}

/// Bad file descriptors are answered with -1.
fn bad_fds() -> TestResult {
    let fd = open(".", O_RDONLY);
    check!(fd >= 0, "cannot open .");
    check!(close(fd) == 0, "close failed");
    check!(close(fd) == -1, "a second close of the same fd did not fail");
    check!(close(99) == -1, "close(99) did not fail");
    check!(close(-1) == -1, "close(-1) did not fail");
    let mut buf = [0u8; 8];
    check!(read(99, &mut buf) == -1, "read of fd 99 did not fail");
    check!(write(99, b"x") == -1, "write of fd 99 did not fail");
    Ok(())
}

/// Pointers outside the program's memory are answered with -1, never a crash.
fn bad_pointers() -> TestResult {
    const NAME: &str = "ut.bad";
    const KERNEL: usize = 0xffff_8000_0000_0000;
    unlink(NAME);
    write_file(NAME, b"twenty bytes of data")?;
    let fd = open(NAME, O_RDONLY);
    check!(fd >= 0, "cannot open {}", NAME);
    // SAFETY: none of these pointers points into this program (the program starts at 4 MiB,
    // the others are kernel or non-canonical addresses), so whatever the personality did with
    // them, no memory that Rust knows about could change.
    let results = unsafe {
        [
            ("read into 0x1000", xv6::read_raw(fd, 0x1000 as *mut u8, 10)),
            ("write from a kernel address", xv6::write_raw(1, KERNEL as *const u8, 10)),
            ("open of a path at 0x10", xv6::open_raw(0x10 as *const u8, O_RDONLY)),
            (
                "exec with a bad argv",
                xv6::exec_raw(c"/xv6/echo".as_ptr().cast(), 0xffff_ffff_ffff_0000 as *const *const u8),
            ),
            ("pipe into 0x1000", xv6::pipe_raw(0x1000 as *mut i32)),
            ("fstat into a kernel address", xv6::fstat_raw(fd, KERNEL as *mut Stat)),
        ]
    };
    close(fd);
    for (call, result) in results {
        check!(result == -1, "{} returned {}", call, result);
    }
    check!(unlink(NAME) == 0, "unlink failed");
    Ok(())
}

// ---------------------------------------------------------------------------------------
// Processes and time

/// getpid is stable and a child has another pid.
fn getpid_child() -> TestResult {
    let me = getpid();
    check!(me > 0, "getpid returned {}", me);
    check!(getpid() == me, "getpid changed");
    let child = spawn(move || {
        let mine = getpid();
        check!(mine > 0 && mine != me, "the child's getpid returned {} (the parent is {})", mine, me);
        Ok(())
    })?;
    check!(child.pid != me, "fork returned the parent's own pid");
    child.finish()
}

/// A child sleeping 1000 ticks is killed: wait returns it long before the sleep would end.
/// kill of a pid that does not exist fails.
fn kill_sleeper() -> TestResult {
    let pid = fork();
    check!(pid >= 0, "fork failed");
    if pid == 0 {
        sleep(1000);
        exit()
    }
    sleep(2); // let the child fall asleep
    let start = uptime();
    check!(kill(pid) == 0, "kill of the child failed");
    let waited = wait();
    let took = uptime() - start;
    check!(waited == pid, "wait returned {} instead of {}", waited, pid);
    check!(took < 500, "the killed child was waited for only after {} ticks", took);
    check!(kill(0x7fff_0000) == -1, "kill of a pid that does not exist did not fail");
    Ok(())
}

fn uptime_sleep() -> TestResult {
    let before = uptime();
    check!(before >= 0, "uptime returned {}", before);
    check!(sleep(5) == 0, "sleep failed");
    let after = uptime();
    check!(after - before >= 4, "sleep(5) took {} ticks by uptime", after - before);
    Ok(())
}

//! The system calls of xv6 (its `usys.S` and `user.h`), on x86-64.
//!
//! The trap is `int $64`: the call number in rax, up to three arguments in rdi, rsi and rdx,
//! the result in rax. Every error is -1. The safe wrappers take slices and `&str` (a path is
//! copied into a NUL-terminated buffer of [`MAXPATH`] bytes; a longer one fails with -1); the
//! `*_raw` functions pass pointers as they are, so that tests can hand the kernel bad ones.

use alloc::vec::Vec;
use core::ptr;

// The call numbers (xv6's syscall.h).
pub const SYS_FORK: u64 = 1;
pub const SYS_EXIT: u64 = 2;
pub const SYS_WAIT: u64 = 3;
pub const SYS_PIPE: u64 = 4;
pub const SYS_READ: u64 = 5;
pub const SYS_KILL: u64 = 6;
pub const SYS_EXEC: u64 = 7;
pub const SYS_FSTAT: u64 = 8;
pub const SYS_CHDIR: u64 = 9;
pub const SYS_DUP: u64 = 10;
pub const SYS_GETPID: u64 = 11;
pub const SYS_SBRK: u64 = 12;
pub const SYS_SLEEP: u64 = 13;
pub const SYS_UPTIME: u64 = 14;
pub const SYS_OPEN: u64 = 15;
pub const SYS_WRITE: u64 = 16;
pub const SYS_MKNOD: u64 = 17;
pub const SYS_UNLINK: u64 = 18;
pub const SYS_LINK: u64 = 19;
pub const SYS_MKDIR: u64 = 20;
pub const SYS_CLOSE: u64 = 21;

// The flags of `open` (xv6's fcntl.h). There is no O_TRUNC: opening an existing file for
// writing overwrites it from offset 0.
pub const O_RDONLY: i32 = 0x000;
pub const O_WRONLY: i32 = 0x001;
pub const O_RDWR: i32 = 0x002;
pub const O_CREATE: i32 = 0x200;

// The file types of `Stat::typ` (xv6's stat.h).
pub const T_DIR: i16 = 1;
pub const T_FILE: i16 = 2;
pub const T_DEV: i16 = 3;

/// The longest name in a directory entry.
pub const DIRSIZ: usize = 14;
/// The size of the buffer a path is copied into, its NUL included.
pub const MAXPATH: usize = 128;
/// The most arguments `exec` passes (xv6's param.h).
pub const MAXARG: usize = 32;

/// What `fstat` tells about a file: xv6's `struct stat`, in its C layout (20 bytes).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stat {
    /// T_DIR, T_FILE or T_DEV.
    pub typ: i16,
    /// The file system's disk device.
    pub dev: i32,
    /// The inode number.
    pub ino: u32,
    /// The number of links to the file.
    pub nlink: i16,
    /// The size of the file in bytes.
    pub size: u32,
}

const _: () = assert!(size_of::<Stat>() == 20);

/// One entry of a directory, as `read` returns them: xv6's `struct dirent` (16 bytes).
#[derive(Clone, Copy, Debug)]
pub struct Dirent {
    /// The inode number; 0 marks a free slot.
    pub inum: u16,
    /// The name, padded with NULs (a name of `DIRSIZ` bytes has none).
    pub name: [u8; DIRSIZ],
}

impl Dirent {
    /// The size of an entry in the directory's data.
    pub const SIZE: usize = 2 + DIRSIZ;

    /// Decode an entry read from a directory (`inum` is little-endian).
    pub fn from_bytes(bytes: &[u8; Self::SIZE]) -> Dirent {
        let mut name = [0; DIRSIZ];
        name.copy_from_slice(&bytes[2..]);
        Dirent { inum: u16::from_le_bytes([bytes[0], bytes[1]]), name }
    }

    /// The name without its NUL padding.
    pub fn name(&self) -> &[u8] {
        let len = self.name.iter().position(|&b| b == 0).unwrap_or(DIRSIZ);
        &self.name[..len]
    }
}

/// Trap into the personality with call `number` and three arguments; returns rax.
///
/// # Safety
/// The call may read or write the memory the arguments point at, as the call defines.
pub unsafe fn syscall(number: u64, a0: u64, a1: u64, a2: u64) -> i64 {
    let result: i64;
    // SAFETY: the caller vouches for the arguments. The personality changes only rax; rcx, r11
    // and memory are declared clobbered to be safe (memory is, because the asm has neither
    // `nomem` nor `readonly`). The stack is left alone by the trap, but we do not promise
    // `nostack`, so the compiler keeps nothing below rsp.
    unsafe {
        core::arch::asm!(
            "int 0x40",
            inlateout("rax") number as i64 => result,
            in("rdi") a0,
            in("rsi") a1,
            in("rdx") a2,
            lateout("rcx") _,
            lateout("r11") _,
        );
    }
    result
}

/// An `int` argument, sign-extended to the 64-bit register.
fn int(value: i32) -> u64 {
    value as i64 as u64
}

/// The `int` result of a call (-1 on every error).
fn int_result(value: i64) -> i32 {
    value as i32
}

/// A slice length as the `int` count of read and write (longer slices are cut).
fn count(len: usize) -> i32 {
    i32::try_from(len).unwrap_or(i32::MAX)
}

/// Copy `path` into `buf` with a NUL after it; `None` if it does not fit or holds a NUL.
fn c_path<'b>(path: &str, buf: &'b mut [u8; MAXPATH]) -> Option<&'b [u8]> {
    let bytes = path.as_bytes();
    if bytes.len() >= MAXPATH || bytes.contains(&0) {
        return None;
    }
    buf[..bytes.len()].copy_from_slice(bytes);
    buf[bytes.len()] = 0;
    Some(&buf[..=bytes.len()])
}

/// A call whose only argument is a path; -1 if the path does not fit.
fn path_call(number: u64, path: &str) -> i32 {
    let mut buf = [0; MAXPATH];
    let Some(path) = c_path(path, &mut buf) else { return -1 };
    // SAFETY: the personality reads the NUL-terminated string in `buf`.
    int_result(unsafe { syscall(number, path.as_ptr() as u64, 0, 0) })
}

/// Create a process, a copy of this one: the child's pid in the parent, 0 in the child, -1
/// on error.
pub fn fork() -> i32 {
    // SAFETY: fork passes no pointers.
    int_result(unsafe { syscall(SYS_FORK, 0, 0, 0) })
}

/// End this process. xv6's exit has no status.
pub fn exit() -> ! {
    loop {
        // SAFETY: exit passes no pointers; it does not return (if it ever did, try again).
        unsafe { syscall(SYS_EXIT, 0, 0, 0) };
    }
}

/// Wait for a child to exit: its pid, or -1 when this process has no children.
pub fn wait() -> i32 {
    // SAFETY: wait passes no pointers.
    int_result(unsafe { syscall(SYS_WAIT, 0, 0, 0) })
}

/// Make a pipe: `fds[0]` is the read end, `fds[1]` the write end. 0, or -1 on error.
pub fn pipe(fds: &mut [i32; 2]) -> i32 {
    // SAFETY: the personality writes two ints into `fds`, which we borrow mutably.
    unsafe { pipe_raw(fds.as_mut_ptr()) }
}

/// Read up to `buf.len()` bytes from `fd`: how many were read, 0 at end of file, -1 on error.
pub fn read(fd: i32, buf: &mut [u8]) -> i32 {
    // SAFETY: the personality writes at most `buf.len()` bytes into `buf`, borrowed mutably.
    unsafe { read_raw(fd, buf.as_mut_ptr(), count(buf.len())) }
}

/// Write `buf` to `fd`: how many bytes were written, or -1 on error.
pub fn write(fd: i32, buf: &[u8]) -> i32 {
    // SAFETY: the personality reads at most `buf.len()` bytes of `buf`.
    unsafe { write_raw(fd, buf.as_ptr(), count(buf.len())) }
}

/// Close `fd`: 0, or -1 if it was not open.
pub fn close(fd: i32) -> i32 {
    // SAFETY: close passes no pointers.
    int_result(unsafe { syscall(SYS_CLOSE, int(fd), 0, 0) })
}

/// Kill process `pid` (it exits the next time it would return to user mode): 0, or -1 if
/// there is no such process.
pub fn kill(pid: i32) -> i32 {
    // SAFETY: kill passes no pointers.
    int_result(unsafe { syscall(SYS_KILL, int(pid), 0, 0) })
}

/// Replace this program with the one at `path`, started with arguments `argv` (by custom
/// `argv[0]` is the program's name). Returns only on error, with -1.
pub fn exec(path: &str, argv: &[&str]) -> i32 {
    let mut buf = [0; MAXPATH];
    let Some(path) = c_path(path, &mut buf) else { return -1 };
    if argv.len() > MAXARG {
        return -1;
    }
    // The arguments as NUL-terminated copies, then the array of their addresses, ended by a
    // null pointer as C's argv is.
    let strings: Vec<Vec<u8>> = argv
        .iter()
        .map(|arg| {
            let mut string = Vec::with_capacity(arg.len() + 1);
            string.extend_from_slice(arg.as_bytes());
            string.push(0);
            string
        })
        .collect();
    let mut pointers: Vec<*const u8> = strings.iter().map(|string| string.as_ptr()).collect();
    pointers.push(ptr::null());
    // SAFETY: `path`, `pointers` and every string it points at live until exec returns.
    unsafe { exec_raw(path.as_ptr(), pointers.as_ptr()) }
}

/// Open the file at `path` with `flags` (O_RDONLY, O_WRONLY, O_RDWR, optionally | O_CREATE):
/// the lowest free file descriptor, or -1.
pub fn open(path: &str, flags: i32) -> i32 {
    let mut buf = [0; MAXPATH];
    let Some(path) = c_path(path, &mut buf) else { return -1 };
    // SAFETY: `path` is a NUL-terminated string in `buf`.
    unsafe { open_raw(path.as_ptr(), flags) }
}

/// Make a device file at `path` for device `major`, `minor`: 0, or -1.
pub fn mknod(path: &str, major: i16, minor: i16) -> i32 {
    let mut buf = [0; MAXPATH];
    let Some(path) = c_path(path, &mut buf) else { return -1 };
    let (major, minor) = (int(major.into()), int(minor.into()));
    // SAFETY: the personality reads the NUL-terminated string in `buf`.
    int_result(unsafe { syscall(SYS_MKNOD, path.as_ptr() as u64, major, minor) })
}

/// Remove the name `path` (the file goes when its last link and descriptor do): 0, or -1.
pub fn unlink(path: &str) -> i32 {
    path_call(SYS_UNLINK, path)
}

/// Describe the file open as `fd` into `st`: 0, or -1.
pub fn fstat(fd: i32, st: &mut Stat) -> i32 {
    // SAFETY: the personality writes one `Stat` into `st`, borrowed mutably.
    unsafe { fstat_raw(fd, st) }
}

/// Give the file at `old` the second name `new`: 0, or -1.
pub fn link(old: &str, new: &str) -> i32 {
    let (mut old_buf, mut new_buf) = ([0; MAXPATH], [0; MAXPATH]);
    let (Some(old), Some(new)) = (c_path(old, &mut old_buf), c_path(new, &mut new_buf)) else {
        return -1;
    };
    // SAFETY: the personality reads the two NUL-terminated strings in the buffers.
    int_result(unsafe { syscall(SYS_LINK, old.as_ptr() as u64, new.as_ptr() as u64, 0) })
}

/// Make the directory `path`: 0, or -1 (also if the name exists).
pub fn mkdir(path: &str) -> i32 {
    path_call(SYS_MKDIR, path)
}

/// Make `path` the current directory: 0, or -1.
pub fn chdir(path: &str) -> i32 {
    path_call(SYS_CHDIR, path)
}

/// A second descriptor (the lowest free one) for the file open as `fd`, sharing its offset;
/// -1 on error.
pub fn dup(fd: i32) -> i32 {
    // SAFETY: dup passes no pointers.
    int_result(unsafe { syscall(SYS_DUP, int(fd), 0, 0) })
}

/// This process's id.
pub fn getpid() -> i32 {
    // SAFETY: getpid passes no pointers.
    int_result(unsafe { syscall(SYS_GETPID, 0, 0, 0) })
}

/// Move the end of this process's data ("the break") by `n` bytes (shrink it if `n` is
/// negative): the old break, or `None` when the personality refuses (it returned -1).
/// `sbrk(0)` tells where the break is. New memory reads as zeros.
///
/// # Safety
/// Shrinking frees the memory above the new break: nothing may still use it, in particular
/// memory that `malloc` (the global allocator) got with its own `sbrk` calls.
pub unsafe fn sbrk(n: i32) -> Option<*mut u8> {
    // SAFETY: sbrk passes no pointers; the caller vouches for what a shrink frees.
    let old = unsafe { syscall(SYS_SBRK, int(n), 0, 0) };
    (old != -1).then_some(old as usize as *mut u8)
}

/// Sleep for `ticks` clock ticks (10 ms each): 0, or -1 if the process was killed meanwhile.
pub fn sleep(ticks: i32) -> i32 {
    // SAFETY: sleep passes no pointers.
    int_result(unsafe { syscall(SYS_SLEEP, int(ticks), 0, 0) })
}

/// Clock ticks (10 ms each) since the system started.
pub fn uptime() -> i32 {
    // SAFETY: uptime passes no pointers.
    int_result(unsafe { syscall(SYS_UPTIME, 0, 0, 0) })
}

/// `read` with a raw buffer pointer.
///
/// # Safety
/// If `buf` points into this program, the `n` bytes there must be writable and not borrowed.
/// (A pointer the personality must refuse, such as an unmapped or kernel address, is fine.)
pub unsafe fn read_raw(fd: i32, buf: *mut u8, n: i32) -> i32 {
    // SAFETY: delegated to the caller.
    int_result(unsafe { syscall(SYS_READ, int(fd), buf as u64, int(n)) })
}

/// `write` with a raw buffer pointer.
///
/// # Safety
/// If `buf` points into this program, the `n` bytes there must be initialized.
pub unsafe fn write_raw(fd: i32, buf: *const u8, n: i32) -> i32 {
    // SAFETY: delegated to the caller.
    int_result(unsafe { syscall(SYS_WRITE, int(fd), buf as u64, int(n)) })
}

/// `open` with a raw path pointer.
///
/// # Safety
/// If `path` points into this program, a NUL-terminated string must be there.
pub unsafe fn open_raw(path: *const u8, flags: i32) -> i32 {
    // SAFETY: delegated to the caller.
    int_result(unsafe { syscall(SYS_OPEN, path as u64, int(flags), 0) })
}

/// `exec` with raw pointers: `argv` is a null-terminated array of pointers to NUL-terminated
/// strings.
///
/// # Safety
/// What the pointers point at in this program must be as described above.
pub unsafe fn exec_raw(path: *const u8, argv: *const *const u8) -> i32 {
    // SAFETY: delegated to the caller.
    int_result(unsafe { syscall(SYS_EXEC, path as u64, argv as u64, 0) })
}

/// `pipe` with a raw pointer to the two ints it fills.
///
/// # Safety
/// If `fds` points into this program, two `i32`s there must be writable and not borrowed.
pub unsafe fn pipe_raw(fds: *mut i32) -> i32 {
    // SAFETY: delegated to the caller.
    int_result(unsafe { syscall(SYS_PIPE, fds as u64, 0, 0) })
}

/// `fstat` with a raw pointer to the `Stat` it fills.
///
/// # Safety
/// If `st` points into this program, a `Stat` there must be writable and not borrowed.
pub unsafe fn fstat_raw(fd: i32, st: *mut Stat) -> i32 {
    // SAFETY: delegated to the caller.
    int_result(unsafe { syscall(SYS_FSTAT, int(fd), st as u64, 0) })
}

//! Linux x86-64's numbers, as programs use them: system call numbers, errno values, and the
//! flags the served calls take. Only what the personality serves is here.
//!
//! It must never hold anything but constants: the numbers are the ABI.

/// System call numbers (arch/x86/entry/syscalls/syscall_64.tbl).
pub mod nr {
    pub const READ: u64 = 0;
    pub const WRITE: u64 = 1;
    pub const OPEN: u64 = 2;
    pub const CLOSE: u64 = 3;
    pub const STAT: u64 = 4;
    pub const FSTAT: u64 = 5;
    pub const LSTAT: u64 = 6;
    pub const POLL: u64 = 7;
    pub const LSEEK: u64 = 8;
    pub const ACCESS: u64 = 21;
    pub const MMAP: u64 = 9;
    pub const MPROTECT: u64 = 10;
    pub const MUNMAP: u64 = 11;
    pub const BRK: u64 = 12;
    pub const RT_SIGACTION: u64 = 13;
    pub const RT_SIGPROCMASK: u64 = 14;
    pub const RT_SIGRETURN: u64 = 15;
    pub const PWRITE64: u64 = 18;
    pub const FCHMOD: u64 = 91;
    pub const CHOWN: u64 = 92;
    pub const FCHOWN: u64 = 93;
    pub const LCHOWN: u64 = 94;
    pub const FCHOWNAT: u64 = 260;
    pub const UTIMENSAT: u64 = 280;
    pub const PAUSE: u64 = 34;
    pub const SENDFILE: u64 = 40;
    pub const RT_SIGPENDING: u64 = 127;
    pub const SCHED_YIELD: u64 = 24;
    pub const SELECT: u64 = 23;
    pub const PSELECT6: u64 = 270;
    pub const PPOLL: u64 = 271;
    pub const MREMAP: u64 = 25;
    pub const ALARM: u64 = 37;
    pub const UMASK: u64 = 95;
    pub const GETTIMEOFDAY: u64 = 96;
    pub const GETRLIMIT: u64 = 97;
    pub const GETRUSAGE: u64 = 98;
    pub const SYSINFO: u64 = 99;
    pub const SETUID: u64 = 105;
    pub const SETGID: u64 = 106;
    pub const SETREUID: u64 = 113;
    pub const SETREGID: u64 = 114;
    pub const GETGROUPS: u64 = 115;
    pub const SETGROUPS: u64 = 116;
    pub const SETRESUID: u64 = 117;
    pub const GETRESUID: u64 = 118;
    pub const SETRESGID: u64 = 119;
    pub const GETRESGID: u64 = 120;
    pub const PRCTL: u64 = 157;
    pub const SETRLIMIT: u64 = 160;
    pub const SCHED_GETAFFINITY: u64 = 204;
    pub const PRLIMIT64: u64 = 302;
    pub const RSEQ: u64 = 334;
    pub const RT_SIGSUSPEND: u64 = 130;
    pub const FUTEX: u64 = 202;
    pub const WAITID: u64 = 247;
    pub const SET_ROBUST_LIST: u64 = 273;
    pub const IOCTL: u64 = 16;
    pub const PREAD64: u64 = 17;
    pub const READV: u64 = 19;
    pub const WRITEV: u64 = 20;
    pub const PIPE: u64 = 22;
    pub const MADVISE: u64 = 28;
    pub const DUP: u64 = 32;
    pub const DUP2: u64 = 33;
    pub const NANOSLEEP: u64 = 35;
    pub const GETPID: u64 = 39;
    pub const CLONE: u64 = 56;
    pub const FORK: u64 = 57;
    pub const VFORK: u64 = 58;
    pub const EXECVE: u64 = 59;
    pub const EXIT: u64 = 60;
    pub const WAIT4: u64 = 61;
    pub const KILL: u64 = 62;
    pub const UNAME: u64 = 63;
    pub const FCNTL: u64 = 72;
    pub const FSYNC: u64 = 74;
    pub const FTRUNCATE: u64 = 77;
    pub const GETCWD: u64 = 79;
    pub const CHDIR: u64 = 80;
    pub const FCHDIR: u64 = 81;
    pub const RENAME: u64 = 82;
    pub const MKDIR: u64 = 83;
    pub const RMDIR: u64 = 84;
    pub const LINK: u64 = 86;
    pub const UNLINK: u64 = 87;
    pub const SYMLINK: u64 = 88;
    pub const READLINK: u64 = 89;
    pub const CHMOD: u64 = 90;
    pub const GETUID: u64 = 102;
    pub const GETGID: u64 = 104;
    pub const GETEUID: u64 = 107;
    pub const GETEGID: u64 = 108;
    pub const SYNC: u64 = 162;
    pub const REBOOT: u64 = 169;
    pub const SETPGID: u64 = 109;
    pub const GETPPID: u64 = 110;
    pub const GETPGRP: u64 = 111;
    pub const SETSID: u64 = 112;
    pub const GETPGID: u64 = 121;
    pub const GETSID: u64 = 124;
    pub const SIGALTSTACK: u64 = 131;
    pub const ARCH_PRCTL: u64 = 158;
    pub const GETTID: u64 = 186;
    pub const TKILL: u64 = 200;
    pub const TIME: u64 = 201;
    pub const GETDENTS64: u64 = 217;
    pub const SET_TID_ADDRESS: u64 = 218;
    pub const CLOCK_GETTIME: u64 = 228;
    pub const EXIT_GROUP: u64 = 231;
    pub const TGKILL: u64 = 234;
    pub const CLOCK_NANOSLEEP: u64 = 230;
    pub const OPENAT: u64 = 257;
    pub const MKDIRAT: u64 = 258;
    pub const NEWFSTATAT: u64 = 262;
    pub const UNLINKAT: u64 = 263;
    pub const RENAMEAT: u64 = 264;
    pub const LINKAT: u64 = 265;
    pub const SYMLINKAT: u64 = 266;
    pub const READLINKAT: u64 = 267;
    pub const FCHMODAT: u64 = 268;
    pub const FACCESSAT: u64 = 269;
    pub const DUP3: u64 = 292;
    pub const PIPE2: u64 = 293;
    pub const RENAMEAT2: u64 = 316;
    pub const GETRANDOM: u64 = 318;
    pub const STATX: u64 = 332;
}

/// The name of a Linux x86-64 system call (the ones programs here make), for `trace`.
pub fn syscall_name(number: u64) -> Option<&'static str> {
    const NAMES: &[(u64, &str)] = &[
        (0, "read"),
        (1, "write"),
        (2, "open"),
        (3, "close"),
        (4, "stat"),
        (5, "fstat"),
        (6, "lstat"),
        (7, "poll"),
        (8, "lseek"),
        (9, "mmap"),
        (10, "mprotect"),
        (11, "munmap"),
        (12, "brk"),
        (13, "rt_sigaction"),
        (14, "rt_sigprocmask"),
        (15, "rt_sigreturn"),
        (16, "ioctl"),
        (17, "pread64"),
        (18, "pwrite64"),
        (19, "readv"),
        (20, "writev"),
        (21, "access"),
        (22, "pipe"),
        (23, "select"),
        (24, "sched_yield"),
        (25, "mremap"),
        (28, "madvise"),
        (32, "dup"),
        (33, "dup2"),
        (34, "pause"),
        (35, "nanosleep"),
        (39, "getpid"),
        (40, "sendfile"),
        (56, "clone"),
        (57, "fork"),
        (58, "vfork"),
        (59, "execve"),
        (60, "exit"),
        (61, "wait4"),
        (62, "kill"),
        (63, "uname"),
        (72, "fcntl"),
        (74, "fsync"),
        (77, "ftruncate"),
        (79, "getcwd"),
        (80, "chdir"),
        (81, "fchdir"),
        (82, "rename"),
        (83, "mkdir"),
        (84, "rmdir"),
        (86, "link"),
        (87, "unlink"),
        (88, "symlink"),
        (89, "readlink"),
        (90, "chmod"),
        (95, "umask"),
        (96, "gettimeofday"),
        (97, "getrlimit"),
        (102, "getuid"),
        (104, "getgid"),
        (107, "geteuid"),
        (108, "getegid"),
        (109, "setpgid"),
        (110, "getppid"),
        (111, "getpgrp"),
        (112, "setsid"),
        (130, "rt_sigsuspend"),
        (131, "sigaltstack"),
        (157, "prctl"),
        (158, "arch_prctl"),
        (162, "sync"),
        (186, "gettid"),
        (200, "tkill"),
        (202, "futex"),
        (204, "sched_getaffinity"),
        (217, "getdents64"),
        (218, "set_tid_address"),
        (228, "clock_gettime"),
        (230, "clock_nanosleep"),
        (231, "exit_group"),
        (234, "tgkill"),
        (247, "waitid"),
        (257, "openat"),
        (258, "mkdirat"),
        (262, "newfstatat"),
        (263, "unlinkat"),
        (264, "renameat"),
        (267, "readlinkat"),
        (269, "faccessat"),
        (270, "pselect6"),
        (271, "ppoll"),
        (273, "set_robust_list"),
        (280, "utimensat"),
        (292, "dup3"),
        (293, "pipe2"),
        (302, "prlimit64"),
        (316, "renameat2"),
        (318, "getrandom"),
        (332, "statx"),
        (334, "rseq"),
    ];
    NAMES.iter().find(|(n, _)| *n == number).map(|(_, name)| *name)
}

/// errno values (positive; a call answers their negation).
pub mod errno {
    pub const EPERM: i64 = 1;
    pub const ENOENT: i64 = 2;
    pub const EBADF: i64 = 9;
    pub const ENOMEM: i64 = 12;
    pub const EFAULT: i64 = 14;
    pub const EINVAL: i64 = 22;
    pub const ENOTTY: i64 = 25;
    pub const ECHILD: i64 = 10;
    pub const ESRCH: i64 = 3;
    pub const E2BIG: i64 = 7;
    pub const ENOEXEC: i64 = 8;
    pub const EEXIST: i64 = 17;
    pub const ENOTDIR: i64 = 20;
    pub const EISDIR: i64 = 21;
    pub const EMFILE: i64 = 24;
    pub const ESPIPE: i64 = 29;
    pub const ENAMETOOLONG: i64 = 36;
    pub const ENOSYS: i64 = 38;
    pub const EPIPE: i64 = 32;
    pub const EIO: i64 = 5;
    pub const ERANGE: i64 = 34;
    pub const EINTR: i64 = 4;
    pub const EAGAIN: i64 = 11;
    pub const EACCES: i64 = 13;
    pub const ETIMEDOUT: i64 = 110;
    pub const ENODEV: i64 = 19;
}

/// arch_prctl codes.
pub const ARCH_SET_FS: u64 = 0x1002;
pub const ARCH_GET_FS: u64 = 0x1003;

/// mmap flags and protections.
pub mod mmap {
    pub const PROT_WRITE: u64 = 2;
    pub const PROT_EXEC: u64 = 4;
    pub const MAP_SHARED: u64 = 0x01;
    pub const MAP_FIXED: u64 = 0x10;
    pub const MAP_ANONYMOUS: u64 = 0x20;
}

/// Terminal ioctls.
pub mod ioctl {
    pub const TCGETS: u64 = 0x5401;
    pub const TIOCGWINSZ: u64 = 0x5413;
    pub const TIOCGPGRP: u64 = 0x540f;
    pub const TIOCSPGRP: u64 = 0x5410;
    pub const TCSETS: u64 = 0x5402;
    pub const TCSETSW: u64 = 0x5403;
    pub const TCSETSF: u64 = 0x5404;
    pub const TIOCSWINSZ: u64 = 0x5414;
    pub const FIONREAD: u64 = 0x541b;
}

/// The kernel's `struct termios` (36 bytes: four flag words, the line discipline, 19
/// control characters) to and from the console protocol's settings.
pub mod termios {
    use interfaces::console::{NCCS, Termios};

    pub const SIZE: usize = 16 + 1 + NCCS;

    pub fn to_bytes(t: &Termios) -> alloc::vec::Vec<u8> {
        let mut bytes = alloc::vec::Vec::with_capacity(SIZE);
        for word in [t.iflag, t.oflag, t.cflag, t.lflag] {
            bytes.extend_from_slice(&word.to_le_bytes());
        }
        bytes.push(t.line);
        bytes.extend_from_slice(&t.cc);
        bytes
    }

    pub fn from_bytes(bytes: &[u8; SIZE]) -> Termios {
        let word = |i: usize| {
            u32::from_le_bytes([bytes[i * 4], bytes[i * 4 + 1], bytes[i * 4 + 2], bytes[i * 4 + 3]])
        };
        let mut cc = [0u8; NCCS];
        cc.copy_from_slice(&bytes[17..SIZE]);
        Termios { iflag: word(0), oflag: word(1), cflag: word(2), lflag: word(3), line: bytes[16], cc }
    }

    #[cfg(test)]
    #[test]
    fn termios_bytes_round_trip_in_linux_layout() {
        let mut t = Termios::sane();
        t.lflag &= !interfaces::console::lflag::ICANON;
        let bytes = to_bytes(&t);
        assert_eq!(bytes.len(), 36);
        assert_eq!(&bytes[12..16], &t.lflag.to_le_bytes());
        let array: [u8; SIZE] = bytes.try_into().unwrap();
        assert_eq!(from_bytes(&array), t);
    }
}

/// Auxiliary vector keys.
pub mod auxv {
    pub const AT_NULL: u64 = 0;
    pub const AT_PHDR: u64 = 3;
    pub const AT_PHENT: u64 = 4;
    pub const AT_PHNUM: u64 = 5;
    pub const AT_PAGESZ: u64 = 6;
    pub const AT_BASE: u64 = 7;
    pub const AT_ENTRY: u64 = 9;
    pub const AT_UID: u64 = 11;
    pub const AT_EUID: u64 = 12;
    pub const AT_GID: u64 = 13;
    pub const AT_EGID: u64 = 14;
    pub const AT_SECURE: u64 = 23;
    pub const AT_RANDOM: u64 = 25;
    pub const AT_EXECFN: u64 = 31;
}

/// open flags.
pub mod open {
    pub const ACCESS_MODE: u64 = 3;
    pub const WRONLY: u64 = 1;
    pub const RDWR: u64 = 2;
    pub const CREAT: u64 = 0o100;
    pub const EXCL: u64 = 0o200;
    pub const TRUNC: u64 = 0o1000;
    pub const APPEND: u64 = 0o2000;
    pub const NONBLOCK: u64 = 0o4000;
    pub const DIRECTORY: u64 = 0o200000;
    pub const NOFOLLOW: u64 = 0o400000;
    pub const CLOEXEC: u64 = 0o2000000;
}

/// Signal numbers.
pub mod signal {
    pub const SIGHUP: u64 = 1;
    pub const SIGINT: u64 = 2;
    pub const SIGQUIT: u64 = 3;
    pub const SIGILL: u64 = 4;
    pub const SIGTRAP: u64 = 5;
    pub const SIGABRT: u64 = 6;
    pub const SIGBUS: u64 = 7;
    pub const SIGFPE: u64 = 8;
    pub const SIGSEGV: u64 = 11;
    pub const SIGALRM: u64 = 14;
    pub const SIGXCPU: u64 = 24;
    pub const SIGXFSZ: u64 = 25;
    pub const SIGSYS: u64 = 31;
    pub const SIGUSR1: u64 = 10;
    pub const SIGKILL: u64 = 9;
    pub const SIGUSR2: u64 = 12;
    pub const SIGPIPE: u64 = 13;
    pub const SIGTERM: u64 = 15;
    pub const SIGCHLD: u64 = 17;
    pub const SIGCONT: u64 = 18;
    pub const SIGSTOP: u64 = 19;
    pub const SIGTSTP: u64 = 20;
    pub const SIGTTIN: u64 = 21;
    pub const SIGTTOU: u64 = 22;
    pub const SIGURG: u64 = 23;
    pub const SIGWINCH: u64 = 28;
    /// sigaction handler values.
    pub const SIG_DFL: u64 = 0;
    pub const SIG_IGN: u64 = 1;
}

/// wait4 options.
pub const WNOHANG: u64 = 1;
pub const WUNTRACED: u64 = 2;
/// clone's exit signal for a plain fork: SIGCHLD.
pub const SIGCHLD: u64 = 17;

/// The *at calls' directory "here" and flags.
pub const AT_FDCWD: u64 = (-100i64) as u64;
pub const AT_SYMLINK_NOFOLLOW: u64 = 0x100;
pub const AT_EMPTY_PATH: u64 = 0x1000;
pub const AT_REMOVEDIR: u64 = 0x200;

/// fcntl commands.
pub mod fcntl {
    pub const F_DUPFD: u64 = 0;
    pub const F_GETFD: u64 = 1;
    pub const F_SETFD: u64 = 2;
    pub const F_GETFL: u64 = 3;
    pub const F_SETFL: u64 = 4;
    pub const F_DUPFD_CLOEXEC: u64 = 1030;
    pub const FD_CLOEXEC: u64 = 1;
}

/// `struct stat` as x86-64 Linux lays it out (144 bytes).
pub fn stat_bytes(s: &interfaces::io::Stat) -> [u8; 144] {
    let mut out = [0u8; 144];
    let mut put = |at: usize, bytes: &[u8]| out[at..at + bytes.len()].copy_from_slice(bytes);
    put(0, &s.dev.to_le_bytes());
    put(8, &s.ino.to_le_bytes());
    put(16, &(s.nlink as u64).to_le_bytes());
    put(24, &s.mode.to_le_bytes());
    put(28, &s.uid.to_le_bytes());
    put(32, &s.gid.to_le_bytes());
    put(40, &s.rdev.to_le_bytes());
    put(48, &s.size.to_le_bytes());
    put(56, &(s.blksize as u64).to_le_bytes());
    put(64, &s.blocks.to_le_bytes());
    put(72, &s.atime.to_le_bytes());
    put(88, &s.mtime.to_le_bytes());
    put(104, &s.ctime.to_le_bytes());
    out
}

/// `struct statx` (256 bytes) from a stat, with the basic fields (STATX_BASIC_STATS) set;
/// a device number is split Linux's way (major: bits 8-19, minor: the low 8 and 20-31).
pub fn statx_bytes(s: &interfaces::io::Stat) -> [u8; 256] {
    const STATX_BASIC_STATS: u32 = 0x7ff;
    let mut out = [0u8; 256];
    let mut put = |at: usize, bytes: &[u8]| out[at..at + bytes.len()].copy_from_slice(bytes);
    let major = |d: u64| ((d >> 8) & 0xfff) as u32;
    let minor = |d: u64| ((d & 0xff) | ((d >> 12) & 0xfff00)) as u32;
    put(0, &STATX_BASIC_STATS.to_le_bytes());
    put(4, &s.blksize.to_le_bytes());
    put(16, &s.nlink.to_le_bytes());
    put(20, &s.uid.to_le_bytes());
    put(24, &s.gid.to_le_bytes());
    put(28, &(s.mode as u16).to_le_bytes());
    put(32, &s.ino.to_le_bytes());
    put(40, &s.size.to_le_bytes());
    put(48, &s.blocks.to_le_bytes());
    put(64, &s.atime.to_le_bytes());
    put(96, &s.ctime.to_le_bytes());
    put(112, &s.mtime.to_le_bytes());
    put(128, &major(s.rdev).to_le_bytes());
    put(132, &minor(s.rdev).to_le_bytes());
    put(136, &major(s.dev).to_le_bytes());
    put(140, &minor(s.dev).to_le_bytes());
    out
}

/// Append a `struct linux_dirent64` to `out` if it fits in `limit` bytes in all: d_ino,
/// d_off (the next entry's position), d_reclen, d_type, the name and its NUL, padded to 8.
pub fn put_dirent64(
    out: &mut alloc::vec::Vec<u8>,
    limit: usize,
    ino: u64,
    next: u64,
    kind: u8,
    name: &[u8],
) -> bool {
    let size = (19 + name.len() + 1).next_multiple_of(8);
    if out.len() + size > limit {
        return false;
    }
    out.extend_from_slice(&ino.to_le_bytes());
    out.extend_from_slice(&next.to_le_bytes());
    out.extend_from_slice(&(size as u16).to_le_bytes());
    out.push(kind);
    out.extend_from_slice(name);
    out.resize(out.len() + size - 19 - name.len(), 0);
    true
}

/// `path` made absolute from `cwd`, with "." and ".." taken out (lexically: the caller has
/// checked that the result is a directory where it matters).
pub fn normalize(cwd: &str, path: &str) -> alloc::string::String {
    let mut parts: alloc::vec::Vec<&str> = alloc::vec::Vec::new();
    let start = if path.starts_with('/') { "" } else { cwd };
    for part in start.split('/').chain(path.split('/')) {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            p => parts.push(p),
        }
    }
    let mut out = alloc::string::String::new();
    for p in &parts {
        out.push('/');
        out.push_str(p);
    }
    if out.is_empty() {
        out.push('/');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_and_dirent_layouts() {
        let s = interfaces::io::Stat {
            dev: 1,
            ino: 12,
            mode: 0o100644,
            nlink: 1,
            size: 20,
            blksize: 1024,
            blocks: 2,
            mtime: 7,
            ..Default::default()
        };
        let b = stat_bytes(&s);
        assert_eq!(u64::from_le_bytes(b[8..16].try_into().unwrap()), 12);
        assert_eq!(u32::from_le_bytes(b[24..28].try_into().unwrap()), 0o100644);
        assert_eq!(i64::from_le_bytes(b[48..56].try_into().unwrap()), 20);
        assert_eq!(i64::from_le_bytes(b[88..96].try_into().unwrap()), 7);
        let mut out = alloc::vec::Vec::new();
        assert!(put_dirent64(&mut out, 64, 2, 12, 4, b"."));
        assert_eq!(out.len(), 24);
        assert_eq!(u16::from_le_bytes(out[16..18].try_into().unwrap()), 24);
        assert_eq!(&out[19..21], b".\0");
        assert!(put_dirent64(&mut out, 64, 11, 40, 8, b"motd"));
        assert_eq!(out.len(), 48);
        assert!(!put_dirent64(&mut out, 64, 12, 80, 8, b"a-longer-name"), "over the limit");
    }
}

#[cfg(test)]
mod path_tests {
    #[test]
    fn paths_are_made_absolute_and_plain() {
        assert_eq!(super::normalize("/", "etc"), "/etc");
        assert_eq!(super::normalize("/etc", ".."), "/");
        assert_eq!(super::normalize("/a/b", "../c/./d/"), "/a/c/d");
        assert_eq!(super::normalize("/a", "/x/../.."), "/");
        assert_eq!(super::normalize("/", ""), "/");
    }
}

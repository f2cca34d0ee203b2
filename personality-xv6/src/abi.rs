//! The xv6 system-call interface as its programs see it (MIT xv6, the x86 "xv6-public"
//! rev11, on x86-64): `int $64` with the number in rax and the arguments in rdi, rsi, rdx;
//! the result in rax, -1 for every error. Pure data: numbers, flags, layouts and paths, with
//! host tests. It must never panic on what a program passes.

use alloc::string::String;
use alloc::vec::Vec;

/// The call numbers (xv6's syscall.h).
pub mod nr {
    pub const FORK: u64 = 1;
    pub const EXIT: u64 = 2;
    pub const WAIT: u64 = 3;
    pub const PIPE: u64 = 4;
    pub const READ: u64 = 5;
    pub const KILL: u64 = 6;
    pub const EXEC: u64 = 7;
    pub const FSTAT: u64 = 8;
    pub const CHDIR: u64 = 9;
    pub const DUP: u64 = 10;
    pub const GETPID: u64 = 11;
    pub const SBRK: u64 = 12;
    pub const SLEEP: u64 = 13;
    pub const UPTIME: u64 = 14;
    pub const OPEN: u64 = 15;
    pub const WRITE: u64 = 16;
    pub const MKNOD: u64 = 17;
    pub const UNLINK: u64 = 18;
    pub const LINK: u64 = 19;
    pub const MKDIR: u64 = 20;
    pub const CLOSE: u64 = 21;
}

/// A call's name, for logs and `trace`.
pub fn call_name(number: u64) -> Option<&'static str> {
    const NAMES: [&str; 21] = [
        "fork", "exit", "wait", "pipe", "read", "kill", "exec", "fstat", "chdir", "dup", "getpid", "sbrk",
        "sleep", "uptime", "open", "write", "mknod", "unlink", "link", "mkdir", "close",
    ];
    NAMES.get(usize::try_from(number).ok()?.checked_sub(1)?).copied()
}

/// `open` flags (fcntl.h). There is no O_TRUNC: writing an existing file overwrites it from
/// the start.
pub mod open {
    pub const RDONLY: u64 = 0x000;
    pub const WRONLY: u64 = 0x001;
    pub const RDWR: u64 = 0x002;
    pub const CREATE: u64 = 0x200;
}

/// File types in `struct stat` (stat.h).
pub const T_DIR: i16 = 1;
pub const T_FILE: i16 = 2;
pub const T_DEV: i16 = 3;

/// Open files a process may have (param.h's NOFILE).
pub const NOFILE: usize = 16;
/// Arguments `exec` takes (MAXARG).
pub const MAXARG: usize = 32;
/// Bytes of a name in a directory entry (DIRSIZ).
pub const DIRSIZ: usize = 14;
/// A tick, xv6's unit of `sleep` and `uptime`: 10 ms (its timer runs at 100 Hz).
pub const TICK_NS: u64 = 10_000_000;
/// The device number xv6 gives the console (`mknod("console", 1, 1)`).
pub const CONSOLE_MAJOR: u32 = 1;

/// `struct stat`: short type; int dev; uint ino; short nlink; uint size (20 bytes, C layout).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Stat {
    pub kind: i16,
    pub dev: i32,
    pub ino: u32,
    pub nlink: i16,
    pub size: u32,
}

impl Stat {
    pub const SIZE: usize = 20;

    /// From a Machina stat's mode, numbers and size (type from `S_IFMT`).
    pub fn from_machina(mode: u32, dev: u64, ino: u64, nlink: u32, size: u64) -> Stat {
        let kind = match mode & 0o170000 {
            0o040000 => T_DIR,
            0o020000 | 0o060000 => T_DEV,
            _ => T_FILE,
        };
        Stat {
            kind,
            dev: dev as i32,
            ino: ino as u32,
            nlink: nlink.min(i16::MAX as u32) as i16,
            size: size.min(u32::MAX as u64) as u32,
        }
    }

    pub fn to_bytes(self) -> [u8; Stat::SIZE] {
        let mut out = [0u8; Stat::SIZE];
        out[0..2].copy_from_slice(&self.kind.to_le_bytes());
        out[4..8].copy_from_slice(&self.dev.to_le_bytes());
        out[8..12].copy_from_slice(&self.ino.to_le_bytes());
        out[12..14].copy_from_slice(&self.nlink.to_le_bytes());
        out[16..20].copy_from_slice(&self.size.to_le_bytes());
        out
    }
}

/// `struct dirent`: ushort inum; char name[DIRSIZ] (16 bytes; a 14-byte name has no NUL).
/// Longer names are cut to 14 bytes, as xv6's file system would never have them; inode
/// numbers above 65,535 are cut to 16 bits (ls shows them, nothing opens by number).
pub fn dirent(ino: u64, name: &[u8]) -> [u8; 16] {
    let mut out = [0u8; 16];
    out[0..2].copy_from_slice(&(ino as u16).to_le_bytes());
    let n = name.len().min(DIRSIZ);
    out[2..2 + n].copy_from_slice(&name[..n]);
    out
}

/// `path` made absolute against `cwd` and normalised ("." and ".." resolved, no empty or
/// trailing components).
pub fn absolute(cwd: &str, path: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    let joined = if path.starts_with('/') { [path, ""] } else { [cwd, path] };
    for part in joined.iter().flat_map(|p| p.split('/')) {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            p => parts.push(p),
        }
    }
    let mut out = String::new();
    for p in &parts {
        out.push('/');
        out.push_str(p);
    }
    if out.is_empty() {
        out.push('/');
    }
    out
}

/// The initial stack of a program: its argument strings, then the NULL-terminated argv
/// array, 16-byte aligned, ending at `top`. Returns the bytes (to be written at
/// `top - bytes.len()`), the stack pointer and argv's address.
pub fn initial_stack(top: u64, args: &[&[u8]]) -> (Vec<u8>, u64, u64) {
    let strings: usize = args.iter().map(|a| a.len() + 1).sum();
    let strings_at = (top - strings as u64) & !15;
    let argv_at = (strings_at - 8 * (args.len() as u64 + 1)) & !15;
    // rsp: argv's address, with a zero word below it (alignment kept: no return address).
    let rsp = argv_at - 16;
    let mut bytes = alloc::vec![0u8; (top - rsp) as usize];
    let mut at = strings_at;
    for (i, arg) in args.iter().enumerate() {
        let offset = (at - rsp) as usize;
        bytes[offset..offset + arg.len()].copy_from_slice(arg);
        let slot = (argv_at - rsp) as usize + 8 * i;
        bytes[slot..slot + 8].copy_from_slice(&at.to_le_bytes());
        at += arg.len() as u64 + 1;
    }
    (bytes, rsp, argv_at)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_and_dirent_layouts() {
        let s = Stat::from_machina(0o100644, 1, 287, 1, 20);
        let b = s.to_bytes();
        assert_eq!(i16::from_le_bytes([b[0], b[1]]), T_FILE);
        assert_eq!(i32::from_le_bytes(b[4..8].try_into().unwrap()), 1);
        assert_eq!(u32::from_le_bytes(b[8..12].try_into().unwrap()), 287);
        assert_eq!(i16::from_le_bytes([b[12], b[13]]), 1);
        assert_eq!(u32::from_le_bytes(b[16..20].try_into().unwrap()), 20);
        assert_eq!(Stat::from_machina(0o040755, 1, 2, 3, 1024).kind, T_DIR);
        assert_eq!(Stat::from_machina(0o020666, 1, 2, 1, 0).kind, T_DEV);
        let d = dirent(12, b"a-name-longer-than-fourteen");
        assert_eq!(&d[..2], &12u16.to_le_bytes());
        assert_eq!(&d[2..], b"a-name-longer-");
        assert_eq!(&dirent(3, b"ls")[2..6], b"ls\0\0");
    }

    #[test]
    fn paths_are_made_absolute() {
        assert_eq!(absolute("/", "xv6/ls"), "/xv6/ls");
        assert_eq!(absolute("/a/b", "../c/./d/"), "/a/c/d");
        assert_eq!(absolute("/a", "/x/../.."), "/");
        assert_eq!(absolute("/", ""), "/");
    }

    #[test]
    fn names_and_numbers() {
        assert_eq!(call_name(nr::FORK), Some("fork"));
        assert_eq!(call_name(nr::CLOSE), Some("close"));
        assert_eq!(call_name(0), None);
        assert_eq!(call_name(22), None);
    }

    #[test]
    fn the_initial_stack_holds_argv() {
        let top = 0x8000_0000u64;
        let (bytes, rsp, argv) = initial_stack(top, &[b"echo", b"hi"]);
        assert_eq!(rsp % 16, 0);
        assert_eq!(rsp + bytes.len() as u64, top);
        let word = |at: u64| {
            let o = (at - rsp) as usize;
            u64::from_le_bytes(bytes[o..o + 8].try_into().unwrap())
        };
        let first = word(argv);
        let o = (first - rsp) as usize;
        assert_eq!(&bytes[o..o + 5], b"echo\0");
        let second = word(argv + 8);
        let o = (second - rsp) as usize;
        assert_eq!(&bytes[o..o + 3], b"hi\0");
        assert_eq!(word(argv + 16), 0);
    }
}

//! ls: list each PATH (the current directory when there is none): for a file its line, for a
//! directory one line per entry; a line is "name type inode size", the name padded to 14
//! columns. xv6's `ls.c` (which lists devices only inside directories; this one lists a
//! device named directly, as a file).
#![no_std]
#![no_main]

extern crate alloc;

use alloc::format;
use xv6::{DIRSIZ, Dirent, MAXPATH, O_RDONLY, Stat, T_DIR, close, fstat, open, printf, read, stat};

xv6::entry!(main);

/// Print the line of the file at `path`, named by the last part of the path.
fn print_line(path: &str, st: &Stat) {
    // xv6's fmtname: what follows the last '/', padded with spaces to DIRSIZ.
    let name = path.rsplit('/').next().unwrap_or(path);
    printf!(1, "{:<width$} {} {} {}\n", name, st.typ, st.ino, st.size, width = DIRSIZ);
}

/// Print a line per entry of the directory open as `fd` at `path`.
fn list_directory(fd: i32, path: &str) {
    if path.len() + 1 + DIRSIZ + 1 > MAXPATH {
        printf!(2, "ls: path too long\n");
        return;
    }
    let mut entry = [0u8; Dirent::SIZE];
    while usize::try_from(read(fd, &mut entry)) == Ok(Dirent::SIZE) {
        let entry = Dirent::from_bytes(&entry);
        if entry.inum == 0 {
            continue;
        }
        let Ok(name) = core::str::from_utf8(entry.name()) else {
            printf!(2, "ls: skipping a name that is not UTF-8 (inode {})\n", entry.inum);
            continue;
        };
        let entry_path = format!("{path}/{name}");
        let mut st = Stat::default();
        if stat(&entry_path, &mut st) < 0 {
            printf!(2, "ls: cannot stat {}\n", entry_path);
            continue;
        }
        print_line(&entry_path, &st);
    }
}

fn ls(path: &str) {
    let fd = open(path, O_RDONLY);
    if fd < 0 {
        printf!(2, "ls: cannot open {}\n", path);
        return;
    }
    let mut st = Stat::default();
    if fstat(fd, &mut st) < 0 {
        printf!(2, "ls: cannot stat {}\n", path);
    } else if st.typ == T_DIR {
        list_directory(fd, path);
    } else {
        print_line(path, &st);
    }
    close(fd);
}

fn main(args: &[&str]) {
    if args.len() < 2 {
        ls(".");
        return;
    }
    for path in &args[1..] {
        ls(path);
    }
}

//! cat: copy each FILE (or standard input when there is none) to standard output; xv6's
//! `cat.c`.
#![no_std]
#![no_main]

use xv6::{O_RDONLY, close, exit, open, printf, read, write};

xv6::entry!(main);

/// Copy everything `fd` gives to fd 1, 512 bytes at a time.
fn cat(fd: i32) {
    let mut buf = [0u8; 512];
    loop {
        let n = read(fd, &mut buf);
        if n == 0 {
            return;
        }
        let Some(chunk) = usize::try_from(n).ok().and_then(|n| buf.get(..n)) else {
            printf!(2, "cat: read error\n");
            exit()
        };
        if write(1, chunk) != n {
            printf!(2, "cat: write error\n");
            exit()
        }
    }
}

fn main(args: &[&str]) {
    if args.len() <= 1 {
        cat(0);
        return;
    }
    for path in &args[1..] {
        let fd = open(path, O_RDONLY);
        if fd < 0 {
            printf!(2, "cat: cannot open {}\n", path);
            exit()
        }
        cat(fd);
        close(fd);
    }
}

//! wc: count the lines, words and bytes of each FILE (or standard input when there is none)
//! and print "lines words bytes name"; xv6's `wc.c`.
#![no_std]
#![no_main]

use xv6::{O_RDONLY, close, exit, open, printf, read};

xv6::entry!(main);

/// The bytes that separate words.
const WHITESPACE: &[u8] = b" \r\t\n\x0b";

fn wc(fd: i32, name: &str) {
    let (mut lines, mut words, mut bytes) = (0u64, 0u64, 0u64);
    let mut in_word = false;
    let mut buf = [0u8; 512];
    loop {
        let n = read(fd, &mut buf);
        if n == 0 {
            break;
        }
        let Some(chunk) = usize::try_from(n).ok().and_then(|n| buf.get(..n)) else {
            printf!(2, "wc: read error\n");
            exit()
        };
        for &byte in chunk {
            bytes += 1;
            if byte == b'\n' {
                lines += 1;
            }
            if WHITESPACE.contains(&byte) {
                in_word = false;
            } else if !in_word {
                words += 1;
                in_word = true;
            }
        }
    }
    printf!(1, "{} {} {} {}\n", lines, words, bytes, name);
}

fn main(args: &[&str]) {
    if args.len() <= 1 {
        wc(0, "");
        return;
    }
    for path in &args[1..] {
        let fd = open(path, O_RDONLY);
        if fd < 0 {
            printf!(2, "wc: cannot open {}\n", path);
            exit()
        }
        wc(fd, path);
        close(fd);
    }
}

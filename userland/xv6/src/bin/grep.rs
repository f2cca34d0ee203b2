//! grep: print the lines of each FILE (or of standard input) that match PATTERN; xv6's
//! `grep.c`, with its tiny regular expressions (from Kernighan and Pike's "The Practice of
//! Programming"): `c` matches itself, `.` any byte, `c*` any run of `c`, `^` the start of the
//! line and `$` its end.
#![no_std]
#![no_main]

use xv6::{O_RDONLY, close, exit, open, printf, read, write};

xv6::entry!(main);

/// Read `fd` and write each matching line (with its newline) to fd 1. A last line without a
/// newline is matched too (xv6's grep drops it); a line longer than the buffer is cut.
fn grep(pattern: &[u8], fd: i32) {
    let mut buf = [0u8; 1024];
    // `buf[..filled]` holds bytes read but not yet matched: the start of a line.
    let mut filled = 0;
    loop {
        let n = read(fd, &mut buf[filled..]);
        if n < 0 {
            printf!(2, "grep: read error\n");
            exit()
        }
        if n == 0 {
            break;
        }
        filled += usize::try_from(n).unwrap_or(0).min(buf.len() - filled);
        // Match every complete line.
        let mut start = 0;
        while let Some(newline) = buf[start..filled].iter().position(|&b| b == b'\n') {
            let line = &buf[start..start + newline + 1];
            if matches(pattern, &line[..newline]) {
                write(1, line);
            }
            start += newline + 1;
        }
        if start == 0 && filled == buf.len() {
            // A full buffer with no newline: drop it, as xv6 does.
            filled = 0;
        } else {
            // Keep the incomplete line for the next read.
            buf.copy_within(start..filled, 0);
            filled -= start;
        }
    }
    if filled > 0 && matches(pattern, &buf[..filled]) {
        write(1, &buf[..filled]);
        write(1, b"\n");
    }
}

/// Does `re` match somewhere in `text`?
fn matches(re: &[u8], text: &[u8]) -> bool {
    if let Some(re) = re.strip_prefix(b"^") {
        return match_here(re, text);
    }
    // Try at every position, the empty end included.
    let mut text = text;
    loop {
        if match_here(re, text) {
            return true;
        }
        match text.split_first() {
            Some((_, rest)) => text = rest,
            None => return false,
        }
    }
}

/// Does `re` match at the beginning of `text`?
fn match_here(re: &[u8], text: &[u8]) -> bool {
    match re {
        [] => true,
        [c, b'*', rest @ ..] => match_star(*c, rest, text),
        [b'$'] => text.is_empty(),
        [c, rest @ ..] => match text.split_first() {
            Some((t, text_rest)) if *c == b'.' || c == t => match_here(rest, text_rest),
            _ => false,
        },
    }
}

/// Does `c*re` match at the beginning of `text`? (Zero or more `c`, then `re`.)
fn match_star(c: u8, re: &[u8], text: &[u8]) -> bool {
    let mut text = text;
    loop {
        if match_here(re, text) {
            return true;
        }
        match text.split_first() {
            Some((&t, rest)) if t == c || c == b'.' => text = rest,
            _ => return false,
        }
    }
}

fn main(args: &[&str]) {
    let Some(pattern) = args.get(1) else {
        printf!(2, "usage: grep pattern [file ...]\n");
        exit()
    };
    if args.len() == 2 {
        grep(pattern.as_bytes(), 0);
        return;
    }
    for path in &args[2..] {
        let fd = open(path, O_RDONLY);
        if fd < 0 {
            printf!(2, "grep: cannot open {}\n", path);
            exit()
        }
        grep(pattern.as_bytes(), fd);
        close(fd);
    }
}

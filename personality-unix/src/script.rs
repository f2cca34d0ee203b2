//! What execve decides before loading anything: may this caller execute this file (its
//! mode, owner and group against the caller's effective ids), and is it a `#!` script (then
//! which interpreter runs it, with which argument).
//!
//! Pure logic, host-tested. It must never read past the first line of a script, nor accept an
//! interpreter line longer than Linux's 256 bytes.

use alloc::string::String;
use alloc::vec::Vec;

/// Linux's limit on a `#!` line (BINPRM_BUF_SIZE).
pub const MAX_LINE: usize = 256;

/// May a caller with effective `uid`/`gid` execute a regular file with `mode`, `owner` and
/// `group`? The superuser needs one execute bit anywhere; others need theirs.
pub fn may_execute(mode: u32, owner: u32, group: u32, uid: u32, gid: u32) -> bool {
    const REGULAR: u32 = 0o100000;
    const TYPE_MASK: u32 = 0o170000;
    if mode & TYPE_MASK != REGULAR {
        return false;
    }
    let bits = if uid == 0 {
        mode & 0o111
    } else if uid == owner {
        mode & 0o100
    } else if gid == group {
        mode & 0o010
    } else {
        mode & 0o001
    };
    bits != 0
}

/// A `#!` line's interpreter and its one optional argument (the rest of the line, trimmed,
/// as Linux takes it). None when the file does not start with `#!`; Err when the line is
/// too long or names no interpreter.
pub fn interpreter(image: &[u8]) -> Option<Result<(String, Option<String>), ()>> {
    let rest = image.strip_prefix(b"#!")?;
    let end = rest.iter().position(|&b| b == b'\n');
    let line = match end {
        Some(n) if n + 2 <= MAX_LINE => &rest[..n],
        None if rest.len() + 2 <= MAX_LINE => rest,
        _ => return Some(Err(())),
    };
    let Ok(line) = core::str::from_utf8(line) else { return Some(Err(())) };
    let line = line.trim_matches(|c| c == ' ' || c == '\t' || c == '\r');
    let (path, argument) = match line.find([' ', '\t']) {
        Some(at) => (&line[..at], Some(line[at..].trim_matches(|c| c == ' ' || c == '\t'))),
        None => (line, None),
    };
    if path.is_empty() {
        return Some(Err(()));
    }
    Some(Ok((String::from(path), argument.filter(|a| !a.is_empty()).map(String::from))))
}

/// The argument list a script runs with: the interpreter, its argument, the script's path,
/// then the original arguments after argv[0].
pub fn script_argv(interpreter: &str, argument: Option<&str>, path: &str, argv: &[String]) -> Vec<String> {
    let mut out = Vec::with_capacity(argv.len() + 2);
    out.push(String::from(interpreter));
    if let Some(a) = argument {
        out.push(String::from(a));
    }
    out.push(String::from(path));
    out.extend(argv.iter().skip(1).cloned());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn execute_permission_by_owner_group_and_others() {
        assert!(may_execute(0o100755, 5, 5, 1000, 1000));
        assert!(!may_execute(0o100644, 0, 0, 0, 0), "root needs one x bit");
        assert!(may_execute(0o100001, 0, 0, 0, 0));
        assert!(may_execute(0o100700, 1000, 7, 1000, 1));
        assert!(!may_execute(0o100070, 1000, 7, 1000, 7), "the owner's bits count for the owner");
        assert!(may_execute(0o100070, 1, 7, 1000, 7));
        assert!(!may_execute(0o040755, 0, 0, 0, 0), "a directory is not executed");
    }

    #[test]
    fn shebang_lines() {
        let ok = |s: &str| interpreter(s.as_bytes()).unwrap().unwrap();
        assert_eq!(ok("#!/bin/sh\necho"), ("/bin/sh".into(), None));
        assert_eq!(ok("#! /bin/busybox  sh -e \nx"), ("/bin/busybox".into(), Some("sh -e".into())));
        assert_eq!(ok("#!/bin/ash\r\n"), ("/bin/ash".into(), None));
        assert!(interpreter(b"\x7fELF").is_none());
        assert_eq!(interpreter(b"#!\n"), Some(Err(())));
        let long = alloc::format!("#!/{}\n", "x".repeat(300));
        assert_eq!(interpreter(long.as_bytes()), Some(Err(())));
        let argv = script_argv("/bin/ash", Some("-e"), "/s.sh", &["s.sh".into(), "a".into()]);
        assert_eq!(argv, ["/bin/ash", "-e", "/s.sh", "a"]);
    }
}

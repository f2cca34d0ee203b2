//! Path walking for fs-server: from a directory inode through a path's components, with
//! search permission checked on every directory passed and symbolic links followed inside
//! the file system (an absolute target starts again at the root).
//!
//! It must never loop: at most `fs::MAX_SYMLINKS` links are followed per walk.

use super::access::{Want, check};
use crate::Fs;
use alloc::string::String;
use fs_server::ext2::{FileType, Ino};
use interfaces::Error;
use interfaces::fs::{Credentials, MAX_NAME, MAX_PATH, MAX_SYMLINKS};

use super::to_error;

/// Walk `path` from `start`. With `follow_last`, a symbolic link as the last component is
/// followed too (stat, open); without, it is the answer (lstat, readlink, O_NOFOLLOW).
pub fn walk(
    fs: &mut Fs,
    start: Ino,
    path: &str,
    credentials: &Credentials,
    follow_last: bool,
) -> Result<Ino, Error> {
    if path.len() > MAX_PATH {
        return Err(Error::NameTooLong);
    }
    let root = fs.root();
    let mut current = if path.starts_with('/') { root } else { start };
    let mut remaining = String::from(path);
    let mut links = 0;
    loop {
        let trimmed = remaining.trim_start_matches('/');
        if trimmed.is_empty() {
            return Ok(current);
        }
        let (name, rest) = match trimmed.find('/') {
            Some(at) => (&trimmed[..at], &trimmed[at..]),
            None => (trimmed, ""),
        };
        if name.len() > MAX_NAME {
            return Err(Error::NameTooLong);
        }
        let is_last = rest.trim_start_matches('/').is_empty();
        let dir = fs.stat(current).map_err(to_error)?;
        if dir.file_type() != FileType::Directory {
            return Err(Error::NotDir);
        }
        check(&dir, credentials, Want::Search)?;
        let next = fs.lookup(current, name.as_bytes()).map_err(to_error)?;
        let stat = fs.stat(next).map_err(to_error)?;
        if stat.file_type() == FileType::Symlink && (!is_last || follow_last || rest.ends_with('/')) {
            links += 1;
            if links > MAX_SYMLINKS {
                return Err(Error::Loop);
            }
            let mut target = [0u8; 4096];
            let len = fs.readlink(next, &mut target).map_err(to_error)?;
            let target =
                core::str::from_utf8(target.get(..len).unwrap_or(&[])).map_err(|_| Error::NoEntry)?;
            if target.starts_with('/') {
                current = root;
            }
            let mut joined = String::from(target);
            joined.push_str(rest);
            remaining = joined;
            continue;
        }
        current = next;
        remaining = String::from(rest);
    }
}

/// Split `path` into the directory holding its last component (walked from `start`) and the
/// last component's name, for the operations that make or remove a name.
pub fn walk_parent<'p>(
    fs: &mut Fs,
    start: Ino,
    path: &'p str,
    credentials: &Credentials,
) -> Result<(Ino, &'p str), Error> {
    let trimmed = path.trim_end_matches('/');
    if trimmed.is_empty() {
        return Err(if path.is_empty() { Error::NoEntry } else { Error::Busy });
    }
    let (dir_path, name) = match trimmed.rfind('/') {
        Some(at) => (&trimmed[..=at], &trimmed[at + 1..]),
        None => ("", trimmed),
    };
    if name.len() > MAX_NAME {
        return Err(Error::NameTooLong);
    }
    let dir = walk(fs, start, dir_path, credentials, true)?;
    let stat = fs.stat(dir).map_err(to_error)?;
    if stat.file_type() != FileType::Directory {
        return Err(Error::NotDir);
    }
    Ok((dir, name))
}

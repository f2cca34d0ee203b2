//! The `fs` protocol: fs-server's directory ports. The first one, for `/`, is what bootstrap
//! hands to those allowed to use the file system (see docs/servers.md); every other port
//! comes from [`Open`]. A directory port speaks `io` too (stat, and read answers `IsDir`).
//!
//! Paths are relative to the directory port the request is sent to; an absolute path starts
//! at the file system's root. Symbolic links are followed inside the file system (a link's
//! target is a path in it), up to [`MAX_SYMLINKS`] of them. Every request that touches names
//! carries the caller's [`Credentials`]: fs-server checks the permission bits against them.
//! It trusts them because only personalities hold its ports, and they vouch for their
//! processes' ids.
//!
//! Ids 0x200..0x2ff.

use crate::io::Stat;
use crate::{Bytes, Error};
use serde::{Deserialize, Serialize};

/// Longest path a request carries.
pub const MAX_PATH: usize = 4096;
/// Longest name in a directory.
pub const MAX_NAME: usize = 255;
/// Symbolic links followed in one lookup before `Loop`.
pub const MAX_SYMLINKS: u32 = 40;

#[derive(Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq)]
pub struct Credentials {
    pub uid: u32,
    pub gid: u32,
}

impl Credentials {
    pub const ROOT: Credentials = Credentials { uid: 0, gid: 0 };
}

/// `OpenRequest::flags`.
pub mod open {
    pub const READ: u32 = 1;
    pub const WRITE: u32 = 2;
    /// Every write goes to the end.
    pub const APPEND: u32 = 4;
    /// Create the file if it does not exist (with `mode`).
    pub const CREATE: u32 = 8;
    /// With CREATE: fail with `Exists` if it does.
    pub const EXCLUSIVE: u32 = 16;
    /// Cut a regular file to 0 bytes.
    pub const TRUNCATE: u32 = 32;
    /// Fail with `NotDir` unless it is a directory.
    pub const DIRECTORY: u32 = 64;
    /// Fail with `Loop` if the last component is a symbolic link.
    pub const NO_FOLLOW: u32 = 128;
}

#[derive(Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq)]
pub struct OpenRequest<'a> {
    pub path: &'a str,
    /// `open::*` bits.
    pub flags: u32,
    /// Permission bits for a created file (the caller applied its umask).
    pub mode: u32,
    pub credentials: Credentials,
}

#[derive(Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq)]
pub struct PathRequest<'a> {
    pub path: &'a str,
    pub credentials: Credentials,
}

#[derive(Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq)]
pub struct MakeRequest<'a> {
    pub path: &'a str,
    /// Type and permission bits (mkdir: permissions only).
    pub mode: u32,
    pub credentials: Credentials,
}

/// rename and link: `to` is relative to the directory port carried as port descriptor 0, or
/// to the same directory port when the request carries none.
#[derive(Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq)]
pub struct TwoPathRequest<'a> {
    pub from: &'a str,
    pub to: &'a str,
    pub credentials: Credentials,
}

#[derive(Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq)]
pub struct SymlinkRequest<'a> {
    pub target: &'a str,
    pub path: &'a str,
    pub credentials: Credentials,
}

#[derive(Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq)]
pub struct StatRequest<'a> {
    pub path: &'a str,
    /// Follow a symbolic link in the last component (stat) or not (lstat).
    pub follow: bool,
    pub credentials: Credentials,
}

#[derive(Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq)]
pub struct AccessRequest<'a> {
    pub path: &'a str,
    /// 4 read, 2 write, 1 execute; 0: does it exist.
    pub mask: u8,
    pub credentials: Credentials,
}

#[derive(Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Attributes {
    /// Permission bits (chmod).
    pub mode: Option<u32>,
    pub uid: Option<u32>,
    pub gid: Option<u32>,
    /// Seconds since 1970.
    pub atime: Option<u64>,
    pub mtime: Option<u64>,
}

/// chmod, chown, utimes. An empty `path` means the object the port stands for.
#[derive(Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq)]
pub struct SetAttributesRequest<'a> {
    pub path: &'a str,
    pub follow: bool,
    pub attributes: Attributes,
    pub credentials: Credentials,
}

#[derive(Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReadDirRequest {
    /// Where to go on: 0 at the start, else a `next` from a previous answer.
    pub cookie: u64,
    /// Most bytes of entries to answer (at most `io::MAX_TRANSFER`).
    pub max_bytes: u32,
}

#[derive(Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct FsStats {
    pub block_size: u32,
    pub blocks: u64,
    pub free_blocks: u64,
    pub inodes: u64,
    pub free_inodes: u64,
    /// The block cache: hits, misses, blocks written to the device.
    pub cache_hits: u64,
    pub cache_misses: u64,
    pub cache_writes: u64,
}

/// A directory entry's type in a [`ReadDir`] answer (Linux's `d_type` values).
pub mod entry_type {
    pub const UNKNOWN: u8 = 0;
    pub const FIFO: u8 = 1;
    pub const CHAR_DEVICE: u8 = 2;
    pub const DIRECTORY: u8 = 4;
    pub const BLOCK_DEVICE: u8 = 6;
    pub const REGULAR: u8 = 8;
    pub const SYMLINK: u8 = 10;
    pub const SOCKET: u8 = 12;
}

/// One entry of a [`ReadDir`] answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DirEntry<'a> {
    pub ino: u64,
    /// The cookie that continues after this entry.
    pub next: u64,
    /// An `entry_type::*`.
    pub kind: u8,
    pub name: &'a [u8],
}

/// Bytes an entry takes in a [`ReadDir`] answer: ino, next (8 each), kind, name length, name.
pub const fn entry_size(name_len: usize) -> usize {
    18 + name_len
}

/// Append `entry` to a [`ReadDir`] answer in `out` at `at`; false if it does not fit.
pub fn put_entry(out: &mut [u8], at: &mut usize, entry: &DirEntry) -> bool {
    let size = entry_size(entry.name.len());
    let Some(room) = out.get_mut(*at..*at + size) else { return false };
    if entry.name.len() > MAX_NAME {
        return false;
    }
    room[..8].copy_from_slice(&entry.ino.to_le_bytes());
    room[8..16].copy_from_slice(&entry.next.to_le_bytes());
    room[16] = entry.kind;
    room[17] = entry.name.len() as u8;
    room[18..].copy_from_slice(entry.name);
    *at += size;
    true
}

/// The entries of a [`ReadDir`] answer, in order; stops at the first malformed one.
pub fn entries(mut data: &[u8]) -> impl Iterator<Item = DirEntry<'_>> {
    core::iter::from_fn(move || {
        let word = |r: core::ops::Range<usize>, d: &[u8]| {
            d.get(r).and_then(|b| b.try_into().ok()).map(u64::from_le_bytes)
        };
        let ino = word(0..8, data)?;
        let next = word(8..16, data)?;
        let kind = *data.get(16)?;
        let len = *data.get(17)? as usize;
        let name = data.get(18..18 + len)?;
        data = data.get(18 + len..)?;
        Some(DirEntry { ino, next, kind, name })
    })
}

crate::protocol!(OPERATIONS = "fs";
    /// Open (or create) `path`. The answer carries a send right to a new port for the object
    /// (port descriptor 0), which speaks `io` (and `fs` for a directory), and its stat.
    Open "open" = 0x201, OpenRequest<'a> => Result<Stat, Error>;
    /// Make a directory.
    MakeDirectory "mkdir" = 0x202, MakeRequest<'a> => Result<(), Error>;
    /// Make a file of another type (fifo, device node, regular) without opening it.
    MakeNode "mknod" = 0x203, MakeRequest<'a> => Result<(), Error>;
    /// Remove a name that is not a directory.
    Unlink "unlink" = 0x204, PathRequest<'a> => Result<(), Error>;
    /// Remove an empty directory.
    RemoveDirectory "rmdir" = 0x205, PathRequest<'a> => Result<(), Error>;
    /// Rename `from` to `to`, replacing `to` as POSIX rename does. `to` is relative to the
    /// directory port carried (if any).
    Rename "rename" = 0x206, TwoPathRequest<'a> => Result<(), Error>;
    /// A hard link `to` for `from` (`to` as in [`Rename`]).
    Link "link" = 0x207, TwoPathRequest<'a> => Result<(), Error>;
    /// A symbolic link at `path` holding `target`.
    Symlink "symlink" = 0x208, SymlinkRequest<'a> => Result<(), Error>;
    /// The target of the symbolic link at `path`.
    ReadLink "readlink" = 0x209, PathRequest<'a> => Result<Bytes<'a>, Error>;
    /// Stat `path` (an empty path: the directory itself).
    StatPath "stat" = 0x20a, StatRequest<'a> => Result<Stat, Error>;
    /// Change mode, owner or times.
    SetAttributes "setattr" = 0x20b, SetAttributesRequest<'a> => Result<(), Error>;
    /// Entries of this directory from `cookie` on, packed (see [`entries`]); no bytes at the
    /// end of the directory.
    ReadDir "readdir" = 0x20c, ReadDirRequest => Result<Bytes<'a>, Error>;
    /// Write every changed block to the disk and flush it (sync(2); bootstrap sends it at an
    /// orderly shutdown).
    SyncAll "syncall" = 0x20d, () => Result<(), Error>;
    /// Sizes and free counts of the file system, and the block cache's counts.
    Statistics "statfs" = 0x20e, () => Result<FsStats, Error>;
    /// Check permission `mask` (4 read, 2 write, 1 execute, 0 existence) for `path`.
    Access "access" = 0x20f, AccessRequest<'a> => Result<(), Error>;
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_round_trip() {
        let mut out = [0u8; 64];
        let mut at = 0;
        assert!(put_entry(
            &mut out,
            &mut at,
            &DirEntry { ino: 2, next: 12, kind: entry_type::DIRECTORY, name: b"." }
        ));
        assert!(put_entry(
            &mut out,
            &mut at,
            &DirEntry { ino: 11, next: 40, kind: entry_type::REGULAR, name: b"motd" }
        ));
        assert!(!put_entry(&mut out, &mut at, &DirEntry { ino: 12, next: 80, kind: 8, name: &[b'x'; 40] }));
        let got: [DirEntry; 2] = {
            let mut it = entries(&out[..at]);
            [it.next().unwrap(), it.next().unwrap()]
        };
        assert_eq!(got[1], DirEntry { ino: 11, next: 40, kind: entry_type::REGULAR, name: b"motd" });
        assert_eq!(entries(&out[..at]).count(), 2);
        assert_eq!(entries(&out[..at - 1]).count(), 1, "a cut entry is not returned");
    }
}

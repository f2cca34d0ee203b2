//! Permission checks: the mode bits of an inode against the credentials a request carries
//! (fs-server trusts them: only personalities hold its ports, and they vouch for their
//! processes). Root passes every check but execute, which needs some execute bit.
//!
//! It must never grant what the bits refuse to anyone but root.

use fs_server::ext2::{FileType, Stat};
use interfaces::Error;
use interfaces::fs::Credentials;

#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Want {
    Read,
    Write,
    /// Execute a file, search a directory.
    Search,
}

/// The permission bits (of `rwx` = 4, 2, 1) that apply to `credentials` for `stat`.
fn applicable_bits(stat: &Stat, credentials: &Credentials) -> u32 {
    let mode = stat.mode as u32;
    if credentials.uid == stat.uid {
        (mode >> 6) & 7
    } else if credentials.gid == stat.gid {
        (mode >> 3) & 7
    } else {
        mode & 7
    }
}

/// Does `mask` (4 read, 2 write, 1 execute) hold for `credentials`?
pub fn allows(stat: &Stat, credentials: &Credentials, mask: u8) -> bool {
    let mask = mask as u32 & 7;
    if credentials.uid == 0 {
        let any_execute = stat.mode as u32 & 0o111 != 0 || stat.file_type() == FileType::Directory;
        return mask & 1 == 0 || any_execute;
    }
    applicable_bits(stat, credentials) & mask == mask
}

pub fn check(stat: &Stat, credentials: &Credentials, want: Want) -> Result<(), Error> {
    let mask = match want {
        Want::Read => 4,
        Want::Write => 2,
        Want::Search => 1,
    };
    if allows(stat, credentials, mask) { Ok(()) } else { Err(Error::Access) }
}

/// May `credentials` change the owner, mode or times of `stat`? (Its owner, or root.)
pub fn is_owner(stat: &Stat, credentials: &Credentials) -> bool {
    credentials.uid == 0 || credentials.uid == stat.uid
}

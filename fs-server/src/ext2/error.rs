//! The errors the ext2 code answers with, and the Linux errno value for each.
//!
//! Must never carry heap data or panic: an error is a plain value the server turns into a
//! reply. Corruption is always `Corrupt(why)`, never a panic or a silent zero.

use core::fmt;

/// The block device could not do what was asked (the server's connection failed, the
/// sector is out of range, ...). The device itself says no more than that.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IoError;

/// Why a file-system operation failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Error {
    /// No such file or directory (ENOENT).
    NoEntry,
    /// The name is already taken (EEXIST).
    Exists,
    /// A directory was needed (ENOTDIR).
    NotDir,
    /// Not allowed on a directory (EISDIR).
    IsDir,
    /// The directory still has entries (ENOTEMPTY).
    NotEmpty,
    /// A name longer than 255 bytes, or a symlink target longer than a block (ENAMETOOLONG).
    NameTooLong,
    /// No free block or inode left (ENOSPC).
    NoSpace,
    /// A bad argument: an inode number out of range, a name with '/' or NUL, "." where a
    /// new name is needed, moving a directory under itself (EINVAL).
    InvalidArgument,
    /// The link count would pass ext2's limit of 32000 (EMLINK).
    TooManyLinks,
    /// readlink of something that is not a symbolic link (EINVAL).
    NotSymlink,
    /// Past the largest file the block map can describe (EFBIG).
    FileTooBig,
    /// Not permitted, e.g. a hard link to a directory (EPERM).
    NotPermitted,
    /// The block device failed (EIO).
    Io,
    /// The data on disk is inconsistent; the text says what was wrong (EUCLEAN, Linux's
    /// EFSCORRUPTED).
    Corrupt(&'static str),
    /// The file system uses something this code does not implement (EOPNOTSUPP).
    Unsupported(&'static str),
}

impl Error {
    /// The Linux errno value (positive) for this error.
    pub fn errno(&self) -> i32 {
        match self {
            Error::NoEntry => 2,
            Error::Exists => 17,
            Error::NotDir => 20,
            Error::IsDir => 21,
            Error::NotEmpty => 39,
            Error::NameTooLong => 36,
            Error::NoSpace => 28,
            Error::InvalidArgument => 22,
            Error::TooManyLinks => 31,
            Error::NotSymlink => 22,
            Error::FileTooBig => 27,
            Error::NotPermitted => 1,
            Error::Io => 5,
            Error::Corrupt(_) => 117,
            Error::Unsupported(_) => 95,
        }
    }
}

impl From<IoError> for Error {
    fn from(_: IoError) -> Self {
        Error::Io
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Corrupt(why) => write!(f, "file system corrupt: {why}"),
            Error::Unsupported(what) => write!(f, "not supported: {what}"),
            other => write!(f, "{other:?} (errno {})", other.errno()),
        }
    }
}

//! The `blk` protocol: the block server's device port (held by fs-server only) and its
//! control port (held by bootstrap, which hands it to tests only).
//!
//! Sectors are 512 bytes. A transfer of up to [`INLINE_LIMIT`] bytes travels inline; a
//! larger one (up to [`MAX_TRANSFER`]) travels as one out-of-line region, whole pages, whose
//! size the [`Data::OutOfLine`] value states. A request past the end of the disk, or of no
//! sectors, answers `InvalidArgument`; a failed device request answers `Io`.
//!
//! Ids 0x300..0x3ff.

use crate::{Bytes, Error};
use serde::{Deserialize, Serialize};

pub const SECTOR_SIZE: usize = 512;
/// Largest transfer carried inline.
pub const INLINE_LIMIT: usize = 4096;
/// Largest transfer of one request (128 KiB).
pub const MAX_TRANSFER: usize = 128 * 1024;

/// A transfer's bytes: inline, or the message's out-of-line region 0 holding this many.
#[derive(Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq)]
pub enum Data<'a> {
    #[serde(borrow)]
    Inline(Bytes<'a>),
    OutOfLine(u32),
}

#[derive(Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq)]
pub struct Geometry {
    pub sectors: u64,
    pub read_only: bool,
}

#[derive(Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReadRequest {
    pub sector: u64,
    pub count: u32,
}

#[derive(Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq)]
pub struct WriteRequest<'a> {
    pub sector: u64,
    #[serde(borrow)]
    pub data: Data<'a>,
}

#[derive(Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct DriverStatistics {
    pub reads: u64,
    pub writes: u64,
    pub flushes: u64,
    pub interrupts: u64,
    pub errors: u64,
}

crate::protocol!(OPERATIONS = "blk";
    /// The disk's size.
    Info "info" = 0x301, () => Result<Geometry, Error>;
    /// Read `count` sectors from `sector`.
    Read "read" = 0x302, ReadRequest => Result<Data<'a>, Error>;
    /// Write whole sectors at `sector`.
    Write "write" = 0x303, WriteRequest<'a> => Result<(), Error>;
    /// Make every completed write durable (the device's flush).
    Flush "flush" = 0x304, () => Result<(), Error>;
    /// Control port: counts since the driver started.
    Statistics "stats" = 0x310, () => Result<DriverStatistics, Error>;
    /// Control port: crash on purpose (fault injection for the restart tests). Never answered:
    /// the driver dies with a page fault, as a buggy one would.
    Crash "crash" = 0x311, () => Result<(), Error>;
);

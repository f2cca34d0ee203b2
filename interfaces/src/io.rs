//! The `io` protocol: spoken by every port that stands for an open object (DESIGN.md, "An
//! open file is a port"): fs-server's file and directory ports, the console server's terminal
//! ports, the Unix personality's pipe ends. A client holding any of them reads and writes it
//! the same way; what a port cannot do answers `Error::NotSupported` (or `IllegalSeek`).
//!
//! The port is the open object: its position, its access mode and its flags live in the
//! server, keyed by the port the request arrived on, and every holder of the same send right
//! shares them (as processes share an open file description after fork). When the last send
//! right goes, the server gets a no-more-senders notification and closes the object: there is
//! no close request.
//!
//! Ids 0x100..0x1ff.

use crate::{Bytes, Error};
use serde::{Deserialize, Serialize};

/// Most bytes one read or write carries inline (the rest of a larger transfer is the
/// caller's loop, as with short reads).
pub const MAX_TRANSFER: u32 = 4096;

/// `readiness` bits.
pub mod ready {
    /// A read would not wait.
    pub const READABLE: u8 = 1;
    /// A write would not wait.
    pub const WRITABLE: u8 = 2;
    /// The other end is gone (a pipe with no writers, a terminal that closed).
    pub const HANGUP: u8 = 4;
}

#[derive(Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReadRequest {
    /// At most this many bytes (more than [`MAX_TRANSFER`] is cut to it).
    pub count: u32,
    /// `Some(offset)`: read there and leave the position alone (pread). `None`: read at the
    /// position and move it.
    pub at: Option<u64>,
    /// Answer `WouldBlock` instead of waiting for data (O_NONBLOCK).
    pub nonblocking: bool,
}

#[derive(Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq)]
pub struct WriteRequest<'a> {
    #[serde(borrow)]
    pub data: Bytes<'a>,
    /// As in [`ReadRequest::at`]. An object opened for appending ignores it.
    pub at: Option<u64>,
}

#[derive(Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq)]
pub enum Whence {
    Start,
    Current,
    End,
}

#[derive(Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq)]
pub struct SeekRequest {
    pub offset: i64,
    pub whence: Whence,
}

#[derive(Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReadinessRequest {
    /// The `ready::*` bits the caller cares about.
    pub interest: u8,
    /// `true`: answer only once one of them holds (poll with no timeout; the caller may give
    /// up by destroying its reply port). `false`: answer now.
    pub wait: bool,
}

/// What `stat` says about an object: Linux's `struct stat` fields, so a personality fills
/// its own layout from it.
#[derive(Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Stat {
    /// Which server (fs-server 1, console 2, pipes 3).
    pub dev: u64,
    pub ino: u64,
    /// File type and permission bits, as in `st_mode` (S_IFREG | 0644 ...).
    pub mode: u32,
    pub nlink: u32,
    pub uid: u32,
    pub gid: u32,
    pub rdev: u64,
    pub size: u64,
    pub blksize: u32,
    /// 512-byte units allocated.
    pub blocks: u64,
    /// Seconds since 1970.
    pub atime: u64,
    pub mtime: u64,
    pub ctime: u64,
}

/// `st_mode` file types.
pub mod mode {
    pub const TYPE_MASK: u32 = 0o170000;
    pub const SOCKET: u32 = 0o140000;
    pub const SYMLINK: u32 = 0o120000;
    pub const REGULAR: u32 = 0o100000;
    pub const BLOCK_DEVICE: u32 = 0o060000;
    pub const DIRECTORY: u32 = 0o040000;
    pub const CHAR_DEVICE: u32 = 0o020000;
    pub const FIFO: u32 = 0o010000;
}

crate::protocol!(OPERATIONS = "io";
    /// Read up to `count` bytes. A terminal or pipe with nothing to read keeps the request
    /// until there is (unless `nonblocking`); `Ok` of no bytes is end of file.
    Read "read" = 0x101, ReadRequest => Result<Bytes<'a>, Error>;
    /// Write `data`; answers how many bytes were taken (all of them, unless the disk is full
    /// part way: then the count written so far, or `NoSpace` if none).
    Write "write" = 0x102, WriteRequest<'a> => Result<u32, Error>;
    /// Move the position; answers the new one. Terminals and pipes: `IllegalSeek`.
    Seek "seek" = 0x103, SeekRequest => Result<u64, Error>;
    GetStat "stat" = 0x104, () => Result<Stat, Error>;
    /// Which of `interest` holds now (or, with `wait`, as soon as one does).
    Readiness "readiness" = 0x105, ReadinessRequest => Result<u8, Error>;
    /// Set the size (files only).
    Truncate "truncate" = 0x106, u64 => Result<(), Error>;
    /// Put what was written to this object on the device (fsync).
    Sync "sync" = 0x107, () => Result<(), Error>;
);

/// Bytes before the data in an encoded [`Read`] answer, at most: `Ok`'s variant index and
/// the length (a varint of up to two bytes: counts stay below 16,384).
const READ_ANSWER_HEADER: usize = 3;

/// Encode the answer `Ok(Bytes(data))` to an `io.read` straight into `room` (a message's
/// data area), `fill` writing up to `count` bytes of data in place and saying how many it
/// wrote: the same bytes `postcard` makes, without a copy of the data. Returns the answer's
/// length; `fill`'s error is returned for the caller to encode as `Err`.
pub fn encode_read_answer(
    room: &mut [u8],
    count: usize,
    fill: impl FnOnce(&mut [u8]) -> Result<usize, Error>,
) -> Result<usize, Error> {
    let count = count.min(MAX_TRANSFER as usize);
    let data = room.get_mut(READ_ANSWER_HEADER..READ_ANSWER_HEADER + count).ok_or(Error::InvalidArgument)?;
    let n = fill(data)?.min(count);
    let [ok, low, high, ..] = room else { return Err(Error::InvalidArgument) };
    *ok = 0; // Result::Ok
    if n < 0x80 {
        *low = n as u8;
        room.copy_within(READ_ANSWER_HEADER..READ_ANSWER_HEADER + n, 2);
        Ok(2 + n)
    } else {
        *low = (n as u8 & 0x7f) | 0x80;
        *high = (n >> 7) as u8;
        Ok(READ_ANSWER_HEADER + n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_read_answer_encoded_in_place_is_what_postcard_makes() {
        for n in [0usize, 1, 127, 128, 129, 1000, 4095, 4096] {
            let data: [u8; 4096] = core::array::from_fn(|i| (i * 7) as u8);
            let mut expected = [0u8; 4200];
            let want =
                postcard::to_slice(&Ok::<Bytes, Error>(Bytes(&data[..n])), &mut expected).unwrap().len();
            let mut room = [0xaau8; 4200];
            let used = encode_read_answer(&mut room, 4096, |out| {
                out[..n].copy_from_slice(&data[..n]);
                Ok(n)
            })
            .unwrap();
            assert_eq!(&room[..used], &expected[..want], "{n} bytes");
            let back: Result<Bytes, Error> = postcard::from_bytes(&room[..used]).unwrap();
            assert_eq!(back, Ok(Bytes(&data[..n])));
        }
        let mut room = [0u8; 16];
        assert_eq!(
            encode_read_answer(&mut room, 4096, |_| Ok(0)),
            Err(Error::InvalidArgument),
            "too small a room"
        );
    }
}

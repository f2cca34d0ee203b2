//! Every server protocol of Machina, defined once (our MIG, over `libmach::rpc`).
//!
//! One module per protocol: [`io`] (spoken by every port that stands for an open file,
//! directory, terminal or pipe end), [`fs`] (fs-server's directory ports), [`blk`] (the block
//! server), [`console`] (the console server), [`unix`] (the Unix personality's service:
//! pipes for others). Servers and clients import the same types, so
//! they cannot disagree about ids, layouts or which rights travel.
//!
//! All protocols live in this one crate, not one per server crate, because three kinds of
//! program need several of them at once: a personality speaks io, fs and console; a server
//! speaks io beside its own protocol; and `trace` decodes every message of the system. Message
//! ids are unique across the whole system (each protocol owns a range), so a message can be
//! named from its id alone: see [`operation_name`].
//!
//! This crate must never hold server logic: types, ids and helpers to encode them only.
#![no_std]
extern crate alloc;

pub mod blk;
pub mod console;
pub mod fs;
pub mod io;
pub mod personality;
pub mod unix;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Bytes in a message (file data, a link's target, directory entries), encoded as one
/// length and the bytes themselves. (A plain `&[u8]` would be encoded element by element,
/// which costs about 8 instructions a byte; the bytes on the wire are the same.) Decoding
/// borrows from the message buffer.
#[derive(Clone, Copy, PartialEq, Eq, Default)]
pub struct Bytes<'a>(pub &'a [u8]);

/// As a byte string, `b"Welcome\n"` (what a trace shows of file data).
impl core::fmt::Debug for Bytes<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "b\"{}\"", self.0.escape_ascii())
    }
}

impl Serialize for Bytes<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_bytes(self.0)
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for Bytes<'a> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        <&'a [u8]>::deserialize(deserializer).map(Bytes)
    }
}

impl core::ops::Deref for Bytes<'_> {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        self.0
    }
}

/// Define a protocol: its operations (`rpc!` each) and the table of their names.
/// `protocol!(OPERATIONS = "fs"; Open "open" = 0x201, Req<'a> => Reply<'a>; ...)`.
#[macro_export]
macro_rules! protocol {
    ($names:ident = $proto:literal; $($(#[$doc:meta])* $op:ident $opname:literal = $id:expr, $request:ty => $reply:ty;)*) => {
        $(libmach::rpc!($(#[$doc])* $op = $id, $request => $reply);)*
        /// Every operation of this protocol: (message id, "protocol.operation").
        pub const $names: &[(u32, &str)] = &[$(($id, concat!($proto, ".", $opname)),)*];

        /// A message of this protocol shown from its inline data (decoded as the operation's
        /// request, or with the reply bit as its reply), for `trace`. None: not one of its
        /// ids, or the data does not decode (a trace record keeps only its start).
        // 'a names the lifetime some request and reply types borrow from the data.
        #[allow(unreachable_patterns, clippy::needless_lifetimes)]
        pub fn describe<'a>(id: u32, data: &'a [u8]) -> Option<alloc::string::String> {
            let reply = id & libmach::rpc::REPLY_BIT != 0;
            match id & !libmach::rpc::REPLY_BIT {
                $(
                    x if x == $id && !reply => postcard::from_bytes::<$request>(data).ok().map(|r| alloc::format!("{r:?}")),
                    x if x == $id => postcard::from_bytes::<$reply>(data).ok().map(|r| alloc::format!("{r:?}")),
                )*
                _ => None,
            }
        }
    };
}

/// The error every protocol answers with. The values are Linux's errno numbers, so a
/// personality passes them on unchanged (see [`Error::errno`]).
#[derive(Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq)]
pub enum Error {
    /// EPERM: not allowed for anyone (a hard link to a directory).
    NotPermitted,
    /// ENOENT
    NoEntry,
    /// EIO: the device failed.
    Io,
    /// EBADF: the port does not allow this (read of a write-only open file).
    BadFile,
    /// EAGAIN: nothing now, and the caller asked not to wait.
    WouldBlock,
    /// ENOMEM
    NoMemory,
    /// EACCES: the permission bits refuse the caller.
    Access,
    /// EEXIST
    Exists,
    /// EXDEV
    CrossDevice,
    /// ENOTDIR
    NotDir,
    /// EISDIR
    IsDir,
    /// EINVAL: a malformed or out-of-range request.
    InvalidArgument,
    /// EFBIG
    FileTooBig,
    /// ENOSPC
    NoSpace,
    /// ESPIPE: seek on a terminal or pipe.
    IllegalSeek,
    /// EROFS
    ReadOnly,
    /// EMLINK
    TooManyLinks,
    /// ENAMETOOLONG
    NameTooLong,
    /// ENOSYS: the server does not implement this request.
    NotSupported,
    /// ENOTEMPTY
    NotEmpty,
    /// ELOOP
    Loop,
    /// ENOTTY: not a terminal.
    NotTerminal,
    /// EINTR
    Interrupted,
    /// EBUSY
    Busy,
    /// EUCLEAN: the file system's data on disk is inconsistent.
    Corrupt,
    /// EPIPE: a write to a pipe no one reads.
    BrokenPipe,
}

impl Error {
    /// Linux's errno for this error.
    pub const fn errno(self) -> i32 {
        match self {
            Error::NotPermitted => 1,
            Error::NoEntry => 2,
            Error::Interrupted => 4,
            Error::Io => 5,
            Error::BadFile => 9,
            Error::WouldBlock => 11,
            Error::NoMemory => 12,
            Error::Access => 13,
            Error::Busy => 16,
            Error::Exists => 17,
            Error::CrossDevice => 18,
            Error::NotDir => 20,
            Error::IsDir => 21,
            Error::InvalidArgument => 22,
            Error::NotTerminal => 25,
            Error::FileTooBig => 27,
            Error::NoSpace => 28,
            Error::IllegalSeek => 29,
            Error::ReadOnly => 30,
            Error::TooManyLinks => 31,
            Error::NameTooLong => 36,
            Error::NotSupported => 38,
            Error::NotEmpty => 39,
            Error::Loop => 40,
            Error::Corrupt => 117,
            Error::BrokenPipe => 32,
        }
    }
}

/// A message of any protocol shown from (the start of) its inline data, for `trace`.
pub fn describe(id: u32, data: &[u8]) -> Option<alloc::string::String> {
    io::describe(id, data)
        .or_else(|| fs::describe(id, data))
        .or_else(|| blk::describe(id, data))
        .or_else(|| console::describe(id, data))
        .or_else(|| unix::describe(id, data))
        .or_else(|| personality::describe(id, data))
}

/// Every protocol's operations (id, name).
pub const PROTOCOLS: [&[(u32, &str)]; 6] = [
    io::OPERATIONS,
    fs::OPERATIONS,
    blk::OPERATIONS,
    console::OPERATIONS,
    unix::OPERATIONS,
    personality::OPERATIONS,
];

/// The name of the operation a message id stands for, in any protocol ("fs.open",
/// "blk.read"; replies carry the request's id with `libmach::rpc::REPLY_BIT`).
pub fn operation_name(id: u32) -> Option<&'static str> {
    let id = id & !libmach::rpc::REPLY_BIT;
    PROTOCOLS.iter().flat_map(|ops| ops.iter()).find(|(op, _)| *op == id).map(|(_, name)| *name)
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;

    #[test]
    fn messages_are_described_from_their_data() {
        let request = io::ReadRequest { count: 4096, at: Some(0), nonblocking: false };
        let mut buffer = [0u8; 64];
        let bytes = postcard::to_slice(&request, &mut buffer).unwrap().to_vec();
        let id = <io::Read as libmach::rpc::Rpc>::ID;
        assert_eq!(
            describe(id, &bytes).as_deref(),
            Some("ReadRequest { count: 4096, at: Some(0), nonblocking: false }")
        );
        let answer: Result<u32, Error> = Err(Error::NoSpace);
        let mut buffer = [0u8; 64];
        let bytes = postcard::to_slice(&answer, &mut buffer).unwrap().to_vec();
        let write = <io::Write as libmach::rpc::Rpc>::ID | libmach::rpc::REPLY_BIT;
        assert_eq!(describe(write, &bytes).as_deref(), Some("Err(NoSpace)"));
        assert_eq!(describe(0x7777, &bytes), None);
        assert_eq!(describe(id, &[0xff, 0xff, 0xff, 0xff, 0xff, 0xff]), None);
    }

    #[test]
    fn ids_are_unique_across_every_protocol() {
        let mut all: std::vec::Vec<u32> =
            PROTOCOLS.iter().flat_map(|ops| ops.iter().map(|(id, _)| *id)).collect();
        let count = all.len();
        all.sort();
        all.dedup();
        assert_eq!(all.len(), count);
        assert!(all.iter().all(|id| id & libmach::rpc::REPLY_BIT == 0 && *id > 2));
    }

    #[test]
    fn bytes_encode_as_one_length_and_the_bytes() {
        let data = [7u8; 300];
        let mut a = [0u8; 400];
        let mut b = [0u8; 400];
        let plain = postcard::to_slice(&&data[..], &mut a).unwrap().to_vec();
        let wrapped = postcard::to_slice(&Bytes(&data), &mut b).unwrap().to_vec();
        assert_eq!(plain, wrapped);
        let mut c = [0u8; 16];
        let used = postcard::to_slice(&Ok::<Bytes, Error>(Bytes(b"hi")), &mut c).unwrap().len();
        let back: Result<Bytes, Error> = postcard::from_bytes(&c[..used]).unwrap();
        assert_eq!(back, Ok(Bytes(b"hi")));
    }

    #[test]
    fn names_come_from_the_definitions() {
        assert_eq!(operation_name(<io::Read as libmach::rpc::Rpc>::ID), Some("io.read"));
        assert_eq!(
            operation_name(<fs::Open as libmach::rpc::Rpc>::ID | libmach::rpc::REPLY_BIT),
            Some("fs.open")
        );
        assert_eq!(operation_name(0x7777), None);
    }
}

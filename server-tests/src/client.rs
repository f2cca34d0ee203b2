//! A small client of the `io` and `fs` protocols for the tests: each call is one
//! `libmach::rpc::call` of an operation defined in `interfaces`, with a reply port of its own.
//! A failed call (the kernel refused, the answer did not decode) becomes `Error::Io`.

use alloc::boxed::Box;
use alloc::vec::Vec;
use interfaces::fs::{self, Credentials};
use interfaces::io::{self, Stat};
use interfaces::{Bytes, Error};
use libmach::ipc::{Message, PortName, ReceiveRight, SendRight, received};
use libmach::rpc::{self, Rpc};

pub const ROOT: Credentials = Credentials::ROOT;

pub struct Client {
    reply: ReceiveRight,
    m: Box<Message>,
}

impl Client {
    pub fn new() -> Client {
        Client { reply: ReceiveRight::allocate().expect("a reply port"), m: Box::new(Message::new()) }
    }

    fn call<'s, R: Rpc>(
        &'s mut self,
        to: PortName,
        request: &R::Request<'_>,
        rights: &[(PortName, u8)],
    ) -> Result<R::Reply<'s>, Error> {
        rpc::call_timeout::<R>(to, request, rights, self.reply.name(), &mut self.m, 60_000)
            .map_err(|_| Error::Io)
    }

    pub fn open(
        &mut self,
        dir: PortName,
        path: &str,
        flags: u32,
        mode: u32,
    ) -> Result<(SendRight, Stat), Error> {
        let request = fs::OpenRequest { path, flags, mode, credentials: ROOT };
        let stat = self.call::<fs::Open>(dir, &request, &[])??;
        match self.m.port(0) {
            Some(d) if d.disposition == received::SEND => Ok((SendRight::from_name(d.name), stat)),
            _ => Err(Error::Io),
        }
    }

    pub fn read_at(&mut self, file: PortName, at: Option<u64>, count: u32) -> Result<Vec<u8>, Error> {
        let request = io::ReadRequest { count, at, nonblocking: false };
        self.call::<io::Read>(file, &request, &[])?.map(|d| d.to_vec())
    }

    /// Read into `out` at `at`; returns the bytes read (no allocation).
    pub fn read_into(&mut self, file: PortName, at: u64, out: &mut [u8]) -> Result<usize, Error> {
        let request = io::ReadRequest { count: out.len() as u32, at: Some(at), nonblocking: false };
        let data = self.call::<io::Read>(file, &request, &[])??;
        let n = data.len().min(out.len());
        out[..n].copy_from_slice(&data[..n]);
        Ok(n)
    }

    pub fn write_at(&mut self, file: PortName, at: Option<u64>, data: &[u8]) -> Result<u32, Error> {
        self.call::<io::Write>(file, &io::WriteRequest { data: Bytes(data), at }, &[])?
    }

    pub fn stat(&mut self, file: PortName) -> Result<Stat, Error> {
        self.call::<io::GetStat>(file, &(), &[])?
    }

    pub fn stat_path(&mut self, dir: PortName, path: &str, follow: bool) -> Result<Stat, Error> {
        self.call::<fs::StatPath>(dir, &fs::StatRequest { path, follow, credentials: ROOT }, &[])?
    }

    pub fn truncate(&mut self, file: PortName, size: u64) -> Result<(), Error> {
        self.call::<io::Truncate>(file, &size, &[])?
    }

    pub fn mkdir(&mut self, dir: PortName, path: &str) -> Result<(), Error> {
        self.call::<fs::MakeDirectory>(dir, &fs::MakeRequest { path, mode: 0o755, credentials: ROOT }, &[])?
    }

    pub fn unlink(&mut self, dir: PortName, path: &str) -> Result<(), Error> {
        self.call::<fs::Unlink>(dir, &fs::PathRequest { path, credentials: ROOT }, &[])?
    }

    pub fn rmdir(&mut self, dir: PortName, path: &str) -> Result<(), Error> {
        self.call::<fs::RemoveDirectory>(dir, &fs::PathRequest { path, credentials: ROOT }, &[])?
    }

    pub fn rename(&mut self, dir: PortName, from: &str, to: &str) -> Result<(), Error> {
        self.call::<fs::Rename>(dir, &fs::TwoPathRequest { from, to, credentials: ROOT }, &[])?
    }

    pub fn link(&mut self, dir: PortName, from: &str, to: &str) -> Result<(), Error> {
        self.call::<fs::Link>(dir, &fs::TwoPathRequest { from, to, credentials: ROOT }, &[])?
    }

    pub fn symlink(&mut self, dir: PortName, target: &str, path: &str) -> Result<(), Error> {
        self.call::<fs::Symlink>(dir, &fs::SymlinkRequest { target, path, credentials: ROOT }, &[])?
    }

    pub fn readlink(&mut self, dir: PortName, path: &str) -> Result<Vec<u8>, Error> {
        self.call::<fs::ReadLink>(dir, &fs::PathRequest { path, credentials: ROOT }, &[])?.map(|d| d.to_vec())
    }

    /// Every entry of a directory: (name, ino, kind), read in batches of `batch` bytes.
    pub fn list(&mut self, dir: PortName, batch: u32) -> Result<Vec<(Vec<u8>, u64, u8)>, Error> {
        let mut all = Vec::new();
        let mut cookie = 0;
        loop {
            let data =
                self.call::<fs::ReadDir>(dir, &fs::ReadDirRequest { cookie, max_bytes: batch }, &[])??;
            if data.is_empty() {
                return Ok(all);
            }
            for e in fs::entries(&data) {
                all.push((e.name.to_vec(), e.ino, e.kind));
                cookie = e.next;
            }
        }
    }

    pub fn sync(&mut self, fs_port: PortName) -> Result<(), Error> {
        self.call::<fs::SyncAll>(fs_port, &(), &[])?
    }

    pub fn statistics(&mut self, fs_port: PortName) -> Result<fs::FsStats, Error> {
        self.call::<fs::Statistics>(fs_port, &(), &[])?
    }
}

/// A deterministic byte stream for test data (xorshift64*).
pub struct Pattern(u64);

impl Pattern {
    pub fn new(seed: u64) -> Pattern {
        Pattern(seed | 1)
    }
    pub fn fill(&mut self, out: &mut [u8]) {
        for chunk in out.chunks_mut(8) {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            let v = self.0.wrapping_mul(0x2545_f491_4f6c_dd1d).to_le_bytes();
            chunk.copy_from_slice(&v[..chunk.len()]);
        }
    }
}

/// FNV-1a over `data`, continuing from `hash`.
pub fn checksum(hash: u64, data: &[u8]) -> u64 {
    data.iter().fold(hash, |h, &b| (h ^ b as u64).wrapping_mul(0x100_0000_01b3))
}

pub const CHECKSUM_START: u64 = 0xcbf2_9ce4_8422_2325;

//! fs-server's service: the ports it hands out and the requests it answers on them.
//!
//! Every port stands for one open object (DESIGN.md, "An open file is a port"): the root
//! directory port bootstrap hands out, and one new port per `fs.open`. The object's inode,
//! access mode and position live here, keyed by the port a request arrives on; the port
//! speaks `io`, and a directory port speaks `fs` too. When the last send right to a port goes
//! (a no-more-senders notification), the object is closed and the port destroyed.
//!
//! It must never trust a request: every request is decoded once into its typed value; one
//! that does not decode, or that the object cannot do, gets an error reply; the rights of a
//! refused request are released. It never blocks on a client: replies use send-once rights.

pub mod access;
pub mod block_client;
pub mod path;

use crate::Fs;
use access::{Want, check, is_owner};
use alloc::collections::BTreeMap;
use alloc::vec::Vec;
use fs_server::ext2::{self, FileType, Ino, SetAttr};
use interfaces::fs::{self as proto, Credentials, open};
use interfaces::io::{self, Whence};
use interfaces::{Bytes, Error};
use libmach::ipc::LargestMessage as Request;
use libmach::ipc::*;
use libmach::rpc::{self, Incoming, Rpc};

/// Body size of the buffers requests arrive in (the largest message there is).
const LARGEST: usize = libmach::ipc::LARGEST_MESSAGE_BODY;

/// The `dev` of everything fs-server serves.
pub const DEVICE: u64 = 1;

/// An open object: what a port stands for.
#[derive(Clone, Copy, Debug)]
struct Object {
    ino: Ino,
    directory: bool,
    readable: bool,
    writable: bool,
    append: bool,
    position: u64,
}

pub struct FileServer {
    pub fs: Fs,
    set: PortName,
    notifications: ReceiveRight,
    root: PortName,
    objects: BTreeMap<PortName, Object>,
    /// Room for a link's target or directory entries before they are encoded.
    scratch: Vec<u8>,
    /// The port an open made, until its answer has gone (undone if it cannot go).
    just_opened: Option<PortName>,
}

pub fn to_error(e: ext2::Error) -> Error {
    match e {
        ext2::Error::NoEntry => Error::NoEntry,
        ext2::Error::Exists => Error::Exists,
        ext2::Error::NotDir => Error::NotDir,
        ext2::Error::IsDir => Error::IsDir,
        ext2::Error::NotEmpty => Error::NotEmpty,
        ext2::Error::NameTooLong => Error::NameTooLong,
        ext2::Error::NoSpace => Error::NoSpace,
        ext2::Error::InvalidArgument | ext2::Error::NotSymlink => Error::InvalidArgument,
        ext2::Error::TooManyLinks => Error::TooManyLinks,
        ext2::Error::FileTooBig => Error::FileTooBig,
        ext2::Error::NotPermitted => Error::NotPermitted,
        ext2::Error::Io => Error::Io,
        ext2::Error::Corrupt(_) => Error::Corrupt,
        ext2::Error::Unsupported(_) => Error::NotSupported,
    }
}

fn to_stat(s: &ext2::Stat) -> io::Stat {
    io::Stat {
        dev: DEVICE,
        ino: s.ino as u64,
        mode: s.mode as u32,
        nlink: s.nlink as u32,
        uid: s.uid,
        gid: s.gid,
        rdev: 0,
        size: s.size,
        blksize: s.blksize,
        blocks: s.blocks,
        atime: s.atime as u64,
        mtime: s.mtime as u64,
        ctime: s.ctime as u64,
    }
}

fn entry_type(t: FileType) -> u8 {
    use proto::entry_type as e;
    match t {
        FileType::Regular => e::REGULAR,
        FileType::Directory => e::DIRECTORY,
        FileType::Symlink => e::SYMLINK,
        FileType::CharDevice => e::CHAR_DEVICE,
        FileType::BlockDevice => e::BLOCK_DEVICE,
        FileType::Fifo => e::FIFO,
        FileType::Socket => e::SOCKET,
        FileType::Unknown => e::UNKNOWN,
    }
}

impl FileServer {
    /// Serve `fs` with a root directory port; returns the server and a send right to it.
    pub fn new(fs: Fs) -> Result<(FileServer, SendRight), libmach::KernelError> {
        let set = port_allocate_set()?;
        let notifications = ReceiveRight::allocate()?;
        port_move_member(notifications.name(), set)?;
        let root_port = port_allocate()?;
        port_move_member(root_port, set)?;
        let send = SendRight::from_name(port_make_send(root_port)?);
        let root = fs.root();
        let mut objects = BTreeMap::new();
        objects.insert(
            root_port,
            Object {
                ino: root,
                directory: true,
                readable: true,
                writable: false,
                append: false,
                position: 0,
            },
        );
        let server = FileServer {
            fs,
            set,
            notifications,
            root: root_port,
            objects,
            scratch: alloc::vec![0; io::MAX_TRANSFER as usize],
            just_opened: None,
        };
        Ok((server, send))
    }

    /// Serve for ever. An answer and the wait for the next request are one trap (the kernel
    /// hands the answer straight to the waiting client); the request then arrives in the
    /// answer's buffer, and the two buffers change roles.
    pub fn run(&mut self) -> ! {
        let mut request = alloc::boxed::Box::new(Request::new());
        let mut answer = alloc::boxed::Box::new(Request::new());
        let mut answered = false;
        loop {
            let received = if answered {
                match answer.call(self.set) {
                    Ok(()) => true,
                    Err(_) => {
                        // The answer could not go (its client is gone) or the receive
                        // failed: undo an open whose right never left, then receive alone.
                        self.forget_unsent_open();
                        answer.receive(self.set).is_ok()
                    }
                }
            } else {
                answer.receive(self.set).is_ok()
            };
            self.just_opened = None;
            if !received {
                answered = false;
                libmach::ipc::sleep_ms(10);
                continue;
            }
            core::mem::swap(&mut request, &mut answer);
            // Requests that change something read the clock first. Reads do not (a clock
            // trap each would cost a tenth of a cached read): relatime's occasional atime
            // update takes the time of the last request that read the clock.
            if !matches!(request.header.id, io::Read::ID | io::GetStat::ID | io::Readiness::ID | io::Seek::ID)
            {
                self.fs.set_time((libmach::realtime_ns() / 1_000_000_000) as u32);
            }
            answered = self.handle(&request, &mut answer);
        }
    }

    /// An open's answer did not reach its client: close the object it made.
    fn forget_unsent_open(&mut self) {
        if let Some(port) = self.just_opened.take()
            && let Some(o) = self.objects.remove(&port)
        {
            let _ = port_destroy(port);
            if !o.directory {
                let _ = self.fs.close_inode(o.ino);
            }
        }
    }

    /// Handle one request; true when its answer is laid out in `answer`, to be sent.
    fn handle(&mut self, request: &Request, answer: &mut Request) -> bool {
        let local = request.header.local;
        if local == self.notifications.name() {
            self.notified(request);
            return false;
        }
        let Some(object) = self.objects.get(&local).copied() else {
            request.release_carried();
            return false;
        };
        let incoming = Incoming::new(request);
        let to = incoming.reply_to();
        if to == PORT_NULL {
            // Nobody to answer: a one-way message is no request of ours.
            request.release_carried();
            return false;
        }
        macro_rules! answer {
            ($op:ty, $value:expr) => {{
                let value = $value;
                rpc::prepare_reply::<$op, { LARGEST }>(answer, to, &value, &[]).is_ok()
            }};
        }
        macro_rules! decode {
            ($op:ty) => {
                match incoming.decode::<$op>() {
                    Ok(r) => r,
                    Err(_) => {
                        request.release_carried();
                        return answer!($op, Err::<_, Error>(Error::InvalidArgument));
                    }
                }
            };
        }
        match incoming.id() {
            io::Read::ID => {
                let r = decode!(io::Read);
                // The data goes from the block cache straight into the answer.
                answer.start(to, disposition::MOVE_SEND_ONCE, io::Read::ID | rpc::REPLY_BIT);
                let count = r.count as usize;
                let filled = answer.fill_data(|room| {
                    io::encode_read_answer(room, count, |data| self.read(local, object, r, data))
                });
                match filled {
                    Ok(()) => true,
                    Err(e) => answer!(io::Read, Err::<Bytes, Error>(e)),
                }
            }
            io::Write::ID => {
                let r = decode!(io::Write);
                answer!(io::Write, self.write(local, object, r))
            }
            io::Seek::ID => {
                let r = decode!(io::Seek);
                answer!(io::Seek, self.seek(local, object, r))
            }
            io::GetStat::ID => {
                answer!(io::GetStat, self.fs.stat(object.ino).map(|s| to_stat(&s)).map_err(to_error))
            }
            io::Readiness::ID => {
                let r = decode!(io::Readiness);
                answer!(
                    io::Readiness,
                    Ok::<u8, Error>(r.interest & (io::ready::READABLE | io::ready::WRITABLE))
                )
            }
            io::Truncate::ID => {
                let size = decode!(io::Truncate);
                let result = if object.directory {
                    Err(Error::IsDir)
                } else if !object.writable {
                    Err(Error::InvalidArgument)
                } else {
                    self.fs.truncate(object.ino, size).map_err(to_error)
                };
                answer!(io::Truncate, result)
            }
            io::Sync::ID | proto::SyncAll::ID => {
                self.close_forgotten();
                let result = self.fs.sync().map_err(to_error);
                if incoming.id() == io::Sync::ID {
                    answer!(io::Sync, result)
                } else {
                    answer!(proto::SyncAll, result)
                }
            }
            proto::Statistics::ID => answer!(proto::Statistics, self.statistics()),
            id if !object.directory && proto::OPERATIONS.iter().any(|(op, _)| *op == id) => {
                request.release_carried();
                rpc::prepare_answer(answer, to, id, &Err::<(), Error>(Error::NotDir)).is_ok()
            }
            proto::Open::ID => {
                let r = decode!(proto::Open);
                match self.open(object.ino, &r) {
                    Ok((port, stat)) => {
                        self.just_opened = Some(port);
                        let ready = rpc::prepare_reply::<proto::Open, { LARGEST }>(
                            answer,
                            to,
                            &Ok(stat),
                            &[(port, disposition::MAKE_SEND)],
                        )
                        .is_ok();
                        if !ready {
                            self.forget_unsent_open();
                        }
                        ready
                    }
                    Err(e) => answer!(proto::Open, Err::<io::Stat, Error>(e)),
                }
            }
            proto::MakeDirectory::ID => {
                let r = decode!(proto::MakeDirectory);
                answer!(proto::MakeDirectory, self.make(object.ino, &r, true))
            }
            proto::MakeNode::ID => {
                let r = decode!(proto::MakeNode);
                answer!(proto::MakeNode, self.make(object.ino, &r, false))
            }
            proto::Unlink::ID => {
                let r = decode!(proto::Unlink);
                answer!(proto::Unlink, self.remove(object.ino, &r, false))
            }
            proto::RemoveDirectory::ID => {
                let r = decode!(proto::RemoveDirectory);
                answer!(proto::RemoveDirectory, self.remove(object.ino, &r, true))
            }
            proto::Rename::ID | proto::Link::ID => {
                let link = incoming.id() == proto::Link::ID;
                let r = if link { decode!(proto::Link) } else { decode!(proto::Rename) };
                let target_dir = match incoming.port(0) {
                    None => Ok(object.ino),
                    // A right to one of our own ports arrives under that port's name.
                    Some(d) => match self.objects.get(&d.name) {
                        Some(o) if o.directory => Ok(o.ino),
                        Some(_) => Err(Error::NotDir),
                        None => Err(Error::CrossDevice),
                    },
                };
                request.release_carried();
                let result = target_dir.and_then(|to_dir| self.rename_or_link(object.ino, to_dir, &r, link));
                if link { answer!(proto::Link, result) } else { answer!(proto::Rename, result) }
            }
            proto::Symlink::ID => {
                let r = decode!(proto::Symlink);
                answer!(proto::Symlink, self.symlink(object.ino, &r))
            }
            proto::ReadLink::ID => {
                let r = decode!(proto::ReadLink);
                let result = self.readlink(object.ino, &r);
                answer!(proto::ReadLink, result.map(|n| Bytes(self.scratch.get(..n).unwrap_or(&[]))))
            }
            proto::StatPath::ID => {
                let r = decode!(proto::StatPath);
                let result = path::walk(&mut self.fs, object.ino, r.path, &r.credentials, r.follow)
                    .and_then(|ino| self.fs.stat(ino).map_err(to_error))
                    .map(|s| to_stat(&s));
                answer!(proto::StatPath, result)
            }
            proto::SetAttributes::ID => {
                let r = decode!(proto::SetAttributes);
                answer!(proto::SetAttributes, self.set_attributes(object.ino, &r))
            }
            proto::ReadDir::ID => {
                let r = decode!(proto::ReadDir);
                let result = self.read_dir(object.ino, &r);
                answer!(proto::ReadDir, result.map(|n| Bytes(self.scratch.get(..n).unwrap_or(&[]))))
            }
            proto::Access::ID => {
                let r = decode!(proto::Access);
                let result = path::walk(&mut self.fs, object.ino, r.path, &r.credentials, true)
                    .and_then(|ino| self.fs.stat(ino).map_err(to_error))
                    .and_then(|s| {
                        if access::allows(&s, &r.credentials, r.mask) { Ok(()) } else { Err(Error::Access) }
                    });
                answer!(proto::Access, result)
            }
            id => {
                request.release_carried();
                rpc::prepare_answer(answer, to, id, &Err::<(), Error>(Error::NotSupported)).is_ok()
            }
        }
    }

    /// A notification: the last send right to an object's port went, so the object closes.
    fn notified(&mut self, notification: &Request) {
        if notification.header.id == mach_abi::notify::NO_SENDERS_MESSAGE
            && let Some(port) =
                notification.data().get(..4).and_then(|b| b.try_into().ok()).map(u32::from_le_bytes)
            && port != self.root
            && let Some(object) = self.objects.remove(&port)
        {
            let _ = port_destroy(port);
            if !object.directory {
                let _ = self.fs.close_inode(object.ino);
            }
        }
        notification.release_carried();
    }

    /// Close the objects whose clients are already gone before a sync, so an unlinked file
    /// that was open is freed on the disk rather than left for e2fsck.
    fn close_forgotten(&mut self) {
        let mut pending = alloc::boxed::Box::new(Request::new());
        while pending.receive_timeout(self.notifications.name(), 0).is_ok() {
            self.notified(&pending);
        }
    }

    fn read(
        &mut self,
        port: PortName,
        object: Object,
        r: io::ReadRequest,
        out: &mut [u8],
    ) -> Result<usize, Error> {
        if object.directory {
            return Err(Error::IsDir);
        }
        if !object.readable {
            return Err(Error::BadFile);
        }
        let offset = r.at.unwrap_or(object.position);
        let n = self.fs.read(object.ino, offset, out).map_err(to_error)?;
        if r.at.is_none()
            && let Some(o) = self.objects.get_mut(&port)
        {
            o.position = offset + n as u64;
        }
        Ok(n)
    }

    fn write(&mut self, port: PortName, object: Object, r: io::WriteRequest) -> Result<u32, Error> {
        if object.directory {
            return Err(Error::IsDir);
        }
        if !object.writable {
            return Err(Error::BadFile);
        }
        let offset = if object.append {
            self.fs.stat(object.ino).map_err(to_error)?.size
        } else {
            r.at.unwrap_or(object.position)
        };
        let n = self.fs.write(object.ino, offset, &r.data).map_err(to_error)?;
        if (r.at.is_none() || object.append)
            && let Some(o) = self.objects.get_mut(&port)
        {
            o.position = offset + n as u64;
        }
        Ok(n as u32)
    }

    fn seek(&mut self, port: PortName, object: Object, r: io::SeekRequest) -> Result<u64, Error> {
        let base = match r.whence {
            Whence::Start => 0,
            Whence::Current => object.position as i64,
            Whence::End => self.fs.stat(object.ino).map_err(to_error)?.size as i64,
        };
        let position = base.checked_add(r.offset).filter(|p| *p >= 0).ok_or(Error::InvalidArgument)? as u64;
        if let Some(o) = self.objects.get_mut(&port) {
            o.position = position;
        }
        Ok(position)
    }

    fn open(&mut self, dir: Ino, r: &proto::OpenRequest) -> Result<(PortName, io::Stat), Error> {
        let cred = &r.credentials;
        let follow = r.flags & open::NO_FOLLOW == 0;
        let ino = match path::walk(&mut self.fs, dir, r.path, cred, follow) {
            Ok(ino) => {
                if r.flags & open::CREATE != 0 && r.flags & open::EXCLUSIVE != 0 {
                    return Err(Error::Exists);
                }
                ino
            }
            Err(Error::NoEntry) if r.flags & open::CREATE != 0 => {
                let (parent, name) = path::walk_parent(&mut self.fs, dir, r.path, cred)?;
                let parent_stat = self.fs.stat(parent).map_err(to_error)?;
                check(&parent_stat, cred, Want::Write)?;
                let mode = (r.mode & 0o7777) as u16 | 0o100000;
                self.fs.create(parent, name.as_bytes(), mode, cred.uid, cred.gid).map_err(to_error)?
            }
            Err(e) => return Err(e),
        };
        let stat = self.fs.stat(ino).map_err(to_error)?;
        let directory = stat.file_type() == FileType::Directory;
        if stat.file_type() == FileType::Symlink {
            return Err(Error::Loop);
        }
        if r.flags & open::DIRECTORY != 0 && !directory {
            return Err(Error::NotDir);
        }
        let writable = r.flags & (open::WRITE | open::APPEND) != 0;
        if directory && writable {
            return Err(Error::IsDir);
        }
        let created_now = stat.ctime == self.fs_time() && stat.size == 0;
        if r.flags & open::READ != 0 && !created_now {
            check(&stat, cred, Want::Read)?;
        }
        if writable && !created_now {
            check(&stat, cred, Want::Write)?;
        }
        if r.flags & open::TRUNCATE != 0 && writable && stat.file_type() == FileType::Regular && stat.size > 0
        {
            self.fs.truncate(ino, 0).map_err(to_error)?;
        }
        let stat = self.fs.stat(ino).map_err(to_error)?;
        if !directory {
            self.fs.open_inode(ino).map_err(to_error)?;
        }
        let port = port_allocate().map_err(|_| Error::NoMemory)?;
        let set_up = port_move_member(port, self.set).and_then(|()| {
            port_request_notification(
                port,
                mach_abi::notify::NO_SENDERS,
                self.notifications.name(),
                disposition::MAKE_SEND_ONCE,
            )
        });
        if set_up.is_err() {
            let _ = port_destroy(port);
            if !directory {
                let _ = self.fs.close_inode(ino);
            }
            return Err(Error::NoMemory);
        }
        self.objects.insert(
            port,
            Object {
                ino,
                directory,
                readable: r.flags & open::READ != 0,
                writable,
                append: r.flags & open::APPEND != 0,
                position: 0,
            },
        );
        Ok((port, to_stat(&stat)))
    }

    fn fs_time(&self) -> u32 {
        (libmach::realtime_ns() / 1_000_000_000) as u32
    }

    fn make(&mut self, dir: Ino, r: &proto::MakeRequest, directory: bool) -> Result<(), Error> {
        let cred = &r.credentials;
        // The root (a path of slashes only) exists already: mkdir -p asks for it first.
        if !r.path.is_empty() && r.path.trim_end_matches('/').is_empty() {
            return Err(Error::Exists);
        }
        let (parent, name) = path::walk_parent(&mut self.fs, dir, r.path, cred)?;
        if name == "." || name == ".." {
            return Err(Error::Exists);
        }
        let parent_stat = self.fs.stat(parent).map_err(to_error)?;
        check(&parent_stat, cred, Want::Write)?;
        if directory {
            self.fs.mkdir(parent, name.as_bytes(), (r.mode & 0o7777) as u16, cred.uid, cred.gid).map(|_| ())
        } else {
            let kind = if r.mode & io::mode::TYPE_MASK == 0 {
                io::mode::REGULAR
            } else {
                r.mode & io::mode::TYPE_MASK
            };
            if kind == io::mode::DIRECTORY || kind == io::mode::SYMLINK {
                return Err(Error::InvalidArgument);
            }
            self.fs
                .create(parent, name.as_bytes(), (kind | (r.mode & 0o7777)) as u16, cred.uid, cred.gid)
                .map(|_| ())
        }
        .map_err(to_error)
    }

    fn remove(&mut self, dir: Ino, r: &proto::PathRequest, directory: bool) -> Result<(), Error> {
        let cred = &r.credentials;
        let (parent, name) = path::walk_parent(&mut self.fs, dir, r.path, cred)?;
        let parent_stat = self.fs.stat(parent).map_err(to_error)?;
        check(&parent_stat, cred, Want::Write)?;
        self.check_sticky(parent, &parent_stat, name, cred)?;
        if directory {
            if name == "." {
                return Err(Error::InvalidArgument);
            }
            if name == ".." {
                return Err(Error::NotEmpty);
            }
            self.fs.rmdir(parent, name.as_bytes())
        } else {
            self.fs.unlink(parent, name.as_bytes())
        }
        .map_err(to_error)
    }

    /// In a sticky directory (/tmp) only the owner of an entry (or of the directory) may
    /// remove or rename it.
    fn check_sticky(
        &mut self,
        dir: Ino,
        dir_stat: &ext2::Stat,
        name: &str,
        cred: &Credentials,
    ) -> Result<(), Error> {
        if dir_stat.mode & 0o1000 == 0 || cred.uid == 0 || cred.uid == dir_stat.uid {
            return Ok(());
        }
        let ino = self.fs.lookup(dir, name.as_bytes()).map_err(to_error)?;
        let stat = self.fs.stat(ino).map_err(to_error)?;
        if stat.uid == cred.uid { Ok(()) } else { Err(Error::NotPermitted) }
    }

    fn rename_or_link(
        &mut self,
        from_dir: Ino,
        to_dir: Ino,
        r: &proto::TwoPathRequest,
        link: bool,
    ) -> Result<(), Error> {
        let cred = &r.credentials;
        let (to_parent, to_name) = path::walk_parent(&mut self.fs, to_dir, r.to, cred)?;
        let to_stat = self.fs.stat(to_parent).map_err(to_error)?;
        check(&to_stat, cred, Want::Write)?;
        if link {
            let ino = path::walk(&mut self.fs, from_dir, r.from, cred, false)?;
            return self.fs.link(ino, to_parent, to_name.as_bytes()).map_err(to_error);
        }
        let (from_parent, from_name) = path::walk_parent(&mut self.fs, from_dir, r.from, cred)?;
        if matches!(from_name, "." | "..") || matches!(to_name, "." | "..") {
            return Err(Error::Busy);
        }
        let from_stat = self.fs.stat(from_parent).map_err(to_error)?;
        check(&from_stat, cred, Want::Write)?;
        self.check_sticky(from_parent, &from_stat, from_name, cred)?;
        self.fs.rename(from_parent, from_name.as_bytes(), to_parent, to_name.as_bytes()).map_err(to_error)
    }

    fn symlink(&mut self, dir: Ino, r: &proto::SymlinkRequest) -> Result<(), Error> {
        let cred = &r.credentials;
        let (parent, name) = path::walk_parent(&mut self.fs, dir, r.path, cred)?;
        let parent_stat = self.fs.stat(parent).map_err(to_error)?;
        check(&parent_stat, cred, Want::Write)?;
        if r.target.is_empty() {
            return Err(Error::NoEntry);
        }
        self.fs
            .symlink(parent, name.as_bytes(), r.target.as_bytes(), cred.uid, cred.gid)
            .map(|_| ())
            .map_err(to_error)
    }

    fn readlink(&mut self, dir: Ino, r: &proto::PathRequest) -> Result<usize, Error> {
        let ino = path::walk(&mut self.fs, dir, r.path, &r.credentials, false)?;
        let stat = self.fs.stat(ino).map_err(to_error)?;
        if stat.file_type() != FileType::Symlink {
            return Err(Error::InvalidArgument);
        }
        self.fs.readlink(ino, &mut self.scratch).map_err(to_error)
    }

    fn set_attributes(&mut self, dir: Ino, r: &proto::SetAttributesRequest) -> Result<(), Error> {
        let cred = &r.credentials;
        let ino = path::walk(&mut self.fs, dir, r.path, cred, r.follow)?;
        let stat = self.fs.stat(ino).map_err(to_error)?;
        let a = &r.attributes;
        let owner_only = a.mode.is_some() || a.uid.is_some_and(|u| u != stat.uid) || a.gid.is_some();
        if owner_only && !is_owner(&stat, cred) {
            return Err(Error::NotPermitted);
        }
        if a.uid.is_some_and(|u| u != stat.uid) && cred.uid != 0 {
            return Err(Error::NotPermitted);
        }
        if (a.atime.is_some() || a.mtime.is_some()) && !is_owner(&stat, cred) {
            check(&stat, cred, Want::Write)?;
        }
        let attr = SetAttr {
            mode: a.mode.map(|m| (m & 0o7777) as u16),
            uid: a.uid,
            gid: a.gid,
            atime: a.atime.map(|t| t as u32),
            mtime: a.mtime.map(|t| t as u32),
        };
        self.fs.set_attr(ino, &attr).map_err(to_error)
    }

    fn read_dir(&mut self, dir: Ino, r: &proto::ReadDirRequest) -> Result<usize, Error> {
        let max = (r.max_bytes.min(io::MAX_TRANSFER) as usize).min(self.scratch.len());
        let mut used = 0;
        let out = self.scratch.get_mut(..max).ok_or(Error::InvalidArgument)?;
        let mut fits = true;
        self.fs
            .readdir(dir, r.cookie, |entry, next| {
                let e = proto::DirEntry {
                    ino: entry.ino as u64,
                    next,
                    kind: entry_type(entry.file_type),
                    name: &entry.name,
                };
                fits = proto::put_entry(out, &mut used, &e);
                fits
            })
            .map_err(to_error)?;
        if used == 0 && !fits {
            return Err(Error::InvalidArgument);
        }
        Ok(used)
    }

    fn statistics(&mut self) -> Result<proto::FsStats, Error> {
        let s = self.fs.statfs().map_err(to_error)?;
        Ok(proto::FsStats {
            block_size: s.block_size,
            blocks: s.blocks,
            free_blocks: s.free_blocks,
            inodes: s.inodes,
            free_inodes: s.free_inodes,
            cache_hits: s.cache.hits,
            cache_misses: s.cache.misses,
            cache_writes: s.cache.device_writes,
        })
    }
}

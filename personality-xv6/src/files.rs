//! Descriptors: read and write (sent to the object's `io` port and answered when the answer
//! comes, since a terminal or a pipe may make them wait), directories read as xv6 `dirent`s,
//! open and the other calls by path (fs-server), fstat, dup, close, and pipes (the Unix
//! personality's, whose ends are `io` ports too).
//!
//! It must never write into a process's memory past what the call named, and never let a
//! descriptor outlive the right it stands for.

use crate::calls::descriptor;
use crate::server::{CALL_TIMEOUT_MS, Caller, InFlight, Object, Reply, Write, Xv6, decode_answer, read_user};
use alloc::vec::Vec;
use interfaces::fs::{self, Credentials};
use interfaces::{Bytes, Error, io};
use libmach::ipc::*;
use libmach::rpc;
use libmach::task::vm_write;
use personality_xv6::abi::{self, Stat, absolute, dirent, nr};

/// Bytes one read or write call moves at most per message.
const CHUNK: usize = io::MAX_TRANSFER as usize;

/// The lowest free descriptor of process `port`.
fn free_fd(xv6: &Xv6, port: PortName) -> Option<usize> {
    xv6.processes.get(&port)?.fds.iter().position(|f| f.is_none())
}

/// Put `object` in the lowest free descriptor (its right held once more); the number.
fn install(xv6: &mut Xv6, port: PortName, object: Object) -> Option<usize> {
    let fd = free_fd(xv6, port)?;
    *xv6.processes.get_mut(&port)?.fds.get_mut(fd)? = Some(object);
    xv6.hold(object.port());
    Some(fd)
}

/// `install` for a right that just arrived in an answer (released if no descriptor is free).
fn install_arrived(xv6: &mut Xv6, port: PortName, object: Object) -> Option<usize> {
    let Some(fd) = free_fd(xv6, port) else {
        let _ = port_deallocate(object.port());
        return None;
    };
    *xv6.processes.get_mut(&port)?.fds.get_mut(fd)? = Some(object);
    xv6.hold_arrived(object.port());
    Some(fd)
}

/// Send `io` operation `R` to `to` with a fresh answer port, and remember what to do with
/// the answer.
fn send_io<R: rpc::Rpc>(xv6: &mut Xv6, to: PortName, request: &R::Request<'_>, flight: InFlight) -> Reply {
    let Some(answer) = xv6.answer_port() else { return Reply::Value(-1) };
    let mut m = Message::new();
    m.start(to, disposition::COPY_SEND, R::ID).reply_to(answer.name(), disposition::MAKE_SEND_ONCE);
    if rpc::encode(&mut m, request).is_err() || m.send_timeout(CALL_TIMEOUT_MS).is_err() {
        return Reply::Value(-1);
    }
    xv6.in_flight.insert(answer.name(), (answer, flight));
    Reply::Later
}

pub fn read(xv6: &mut Xv6, caller: Caller, fd: i32, to: u64, n: i32) -> Reply {
    let Some(object) = descriptor(xv6, caller.process, fd) else { return Reply::Value(-1) };
    if n < 0 {
        return Reply::Value(-1);
    }
    if n == 0 {
        return Reply::Value(0);
    }
    match object {
        Object::Io(port) => {
            let request =
                io::ReadRequest { count: (n as u32).min(CHUNK as u32), at: None, nonblocking: false };
            send_io::<io::Read>(xv6, port, &request, InFlight::Read { caller, to })
        }
        Object::Directory { port, cookie } => read_directory(xv6, caller, fd, port, cookie, to, n as usize),
    }
}

/// A read of a directory: as many whole 16-byte `dirent`s as fit in `n`.
fn read_directory(
    xv6: &mut Xv6,
    caller: Caller,
    fd: i32,
    dir: PortName,
    cookie: u64,
    to: u64,
    n: usize,
) -> Reply {
    let wanted = (n / 16).clamp(1, 64);
    let request = fs::ReadDirRequest { cookie, max_bytes: io::MAX_TRANSFER };
    let answer = rpc::call_timeout::<fs::ReadDir>(
        dir,
        &request,
        &[],
        xv6.reply.name(),
        &mut xv6.scratch,
        CALL_TIMEOUT_MS,
    );
    let Ok(Ok(listing)) = answer else { return Reply::Value(-1) };
    let mut out = Vec::new();
    let mut next = cookie;
    for entry in fs::entries(&listing).take(wanted) {
        out.extend_from_slice(&dirent(entry.ino, entry.name));
        next = entry.next;
    }
    if n < 16 && !out.is_empty() {
        return Reply::Value(-1);
    }
    let Some(task) = xv6.processes.get(&caller.process).map(|p| p.task) else { return Reply::Gone };
    if vm_write(task, to, &out).is_err() {
        return Reply::Value(-1);
    }
    if let Some(Some(Object::Directory { cookie, .. })) =
        xv6.processes.get_mut(&caller.process).and_then(|p| p.fds.get_mut(fd as usize))
    {
        *cookie = next;
    }
    Reply::Value(out.len() as i64)
}

pub fn write(xv6: &mut Xv6, caller: Caller, task: PortName, fd: i32, from: u64, n: i32) -> Reply {
    let Some(object) = descriptor(xv6, caller.process, fd) else { return Reply::Value(-1) };
    let Object::Io(port) = object else { return Reply::Value(-1) };
    if n < 0 {
        return Reply::Value(-1);
    }
    if n == 0 {
        return Reply::Value(0);
    }
    send_write(xv6, caller, Write { task, port, from, len: n as usize, done: 0 })
}

/// Send the next piece of a write, read from the process's memory only now (a piece at a
/// time: a count of any size costs no more memory here than one piece).
fn send_write(xv6: &mut Xv6, caller: Caller, write: Write) -> Reply {
    let piece = CHUNK.min(write.len - write.done);
    let Some(data) = read_user(write.task, write.from + write.done as u64, piece) else {
        return Reply::Value(if write.done > 0 { write.done as i64 } else { -1 });
    };
    let request = io::WriteRequest { data: Bytes(&data), at: None };
    send_io::<io::Write>(xv6, write.port, &request, InFlight::Write { caller, write })
}

/// The answer to a read or write in flight came: copy, continue, or answer the call.
pub fn io_answered(xv6: &mut Xv6, message: &LargestMessage, flight: InFlight) {
    match flight {
        InFlight::Read { caller, to } => {
            let Some(task) = xv6.processes.get(&caller.process).map(|p| p.task) else {
                let _ = port_deallocate(caller.reply);
                return;
            };
            let value = match decode_answer::<io::Read>(message) {
                Some(Ok(bytes)) if vm_write(task, to, &bytes).is_ok() => bytes.len() as i64,
                // A write end with nobody left, or any other error: -1.
                _ => -1,
            };
            xv6.answer(caller, value);
        }
        InFlight::Write { caller, write } => {
            let written = match decode_answer::<io::Write>(message) {
                Some(Ok(n)) if n > 0 => n as usize,
                _ => {
                    xv6.answer(caller, if write.done > 0 { write.done as i64 } else { -1 });
                    return;
                }
            };
            let write = Write { done: (write.done + written).min(write.len), ..write };
            if write.done >= write.len {
                xv6.answer(caller, write.done as i64);
            } else if let Reply::Value(v) = send_write(xv6, caller, write) {
                xv6.answer(caller, v);
            }
        }
    }
}

pub fn close(xv6: &mut Xv6, port: PortName, fd: i32) -> Reply {
    let slot = usize::try_from(fd)
        .ok()
        .and_then(|fd| xv6.processes.get_mut(&port)?.fds.get_mut(fd))
        .and_then(|slot| slot.take());
    match slot {
        Some(object) => {
            xv6.release(object.port());
            Reply::Value(0)
        }
        None => Reply::Value(-1),
    }
}

pub fn dup(xv6: &mut Xv6, port: PortName, fd: i32) -> Reply {
    let Some(object) = descriptor(xv6, port, fd) else { return Reply::Value(-1) };
    install(xv6, port, object).map_or(Reply::Value(-1), |fd| Reply::Value(fd as i64))
}

/// A pipe from the Unix personality: its read end in fds[0], its write end in fds[1].
pub fn pipe(xv6: &mut Xv6, port: PortName, fds_at: u64) -> Reply {
    let Some(service) = xv6.unix_service() else { return Reply::Value(-1) };
    let made = rpc::call_timeout::<interfaces::unix::MakePipe>(
        service,
        &(),
        &[],
        xv6.reply.name(),
        &mut xv6.scratch,
        CALL_TIMEOUT_MS,
    );
    let ends = match (made, xv6.scratch.port(0), xv6.scratch.port(1)) {
        (Ok(Ok(())), Some(r), Some(w))
            if r.disposition == received::SEND && w.disposition == received::SEND =>
        {
            (r.name, w.name)
        }
        _ => return Reply::Value(-1),
    };
    let Some(task) = xv6.processes.get(&port).map(|p| p.task) else { return Reply::Gone };
    let read = install_arrived(xv6, port, Object::Io(ends.0));
    let write = install_arrived(xv6, port, Object::Io(ends.1));
    let (Some(r), Some(w)) = (read, write) else {
        if let Some(r) = read {
            close(xv6, port, r as i32);
        }
        return Reply::Value(-1);
    };
    let mut pair = [0u8; 8];
    pair[..4].copy_from_slice(&(r as i32).to_le_bytes());
    pair[4..].copy_from_slice(&(w as i32).to_le_bytes());
    if vm_write(task, fds_at, &pair).is_err() {
        close(xv6, port, r as i32);
        close(xv6, port, w as i32);
        return Reply::Value(-1);
    }
    Reply::Value(0)
}

pub fn fstat(xv6: &mut Xv6, port: PortName, fd: i32, to: u64) -> Reply {
    let Some(object) = descriptor(xv6, port, fd) else { return Reply::Value(-1) };
    let answer = rpc::call_timeout::<io::GetStat>(
        object.port(),
        &(),
        &[],
        xv6.reply.name(),
        &mut xv6.scratch,
        CALL_TIMEOUT_MS,
    );
    let Ok(Ok(s)) = answer else { return Reply::Value(-1) };
    // xv6's fstat of a pipe fails.
    if s.mode & 0o170000 == 0o010000 {
        return Reply::Value(-1);
    }
    let stat = Stat::from_machina(s.mode, s.dev, s.ino, s.nlink, s.size);
    let Some(task) = xv6.processes.get(&port).map(|p| p.task) else { return Reply::Gone };
    match vm_write(task, to, &stat.to_bytes()) {
        Ok(()) => Reply::Value(0),
        Err(_) => Reply::Value(-1),
    }
}

/// Ask fs-server's root port operation `R` (a request with no rights to carry).
fn ask<'m, R, T>(xv6: &'m mut Xv6, request: &R::Request<'_>) -> Result<T, Error>
where
    R: rpc::Rpc<Reply<'m> = Result<T, Error>>,
{
    let fs = xv6.fs.name();
    rpc::call_timeout::<R>(fs, request, &[], xv6.reply.name(), &mut xv6.scratch, CALL_TIMEOUT_MS)
        .map_err(|_| Error::Io)?
}

/// open, mknod, unlink, mkdir and chdir: `path` relative to the caller's directory.
pub fn by_path(xv6: &mut Xv6, port: PortName, number: u64, path: &str, a1: u64, _a2: i32) -> Reply {
    let Some(p) = xv6.processes.get(&port) else { return Reply::Gone };
    let credentials = Credentials { uid: p.uid, gid: p.gid };
    // xv6 refuses to unlink "." or ".." (the path is normalised below, which would make
    // them the directory itself).
    let last = path.trim_end_matches('/').rsplit('/').next().unwrap_or("");
    if number == nr::UNLINK && (last == "." || last == "..") {
        return Reply::Value(-1);
    }
    let path = absolute(&p.cwd, path);
    let done = |r: Result<(), Error>| Reply::Value(if r.is_ok() { 0 } else { -1 });
    match number {
        nr::OPEN => open(xv6, port, &path, a1, credentials),
        nr::MKNOD => {
            // Any device node is the console here (xv6's only device): its numbers are not kept.
            let request = fs::MakeRequest { path: &path, mode: 0o020666, credentials };
            done(ask::<fs::MakeNode, _>(xv6, &request))
        }
        nr::MKDIR => {
            done(ask::<fs::MakeDirectory, _>(xv6, &fs::MakeRequest { path: &path, mode: 0o755, credentials }))
        }
        nr::UNLINK => {
            // xv6's unlink also removes an empty directory.
            let request = fs::PathRequest { path: &path, credentials };
            match ask::<fs::Unlink, _>(xv6, &request) {
                Err(Error::IsDir) => done(ask::<fs::RemoveDirectory, _>(xv6, &request)),
                other => done(other),
            }
        }
        nr::CHDIR => {
            let request = fs::StatRequest { path: &path, follow: true, credentials };
            match ask::<fs::StatPath, _>(xv6, &request) {
                Ok(s) if s.mode & 0o170000 == 0o040000 => {
                    if let Some(p) = xv6.processes.get_mut(&port) {
                        p.cwd = path;
                    }
                    Reply::Value(0)
                }
                _ => Reply::Value(-1),
            }
        }
        _ => Reply::Value(-1),
    }
}

fn open(xv6: &mut Xv6, port: PortName, path: &str, flags: u64, credentials: Credentials) -> Reply {
    if free_fd(xv6, port).is_none() {
        return Reply::Value(-1);
    }
    let mut fs_flags = match flags & 3 {
        abi::open::WRONLY => fs::open::WRITE,
        abi::open::RDWR => fs::open::READ | fs::open::WRITE,
        _ => fs::open::READ,
    };
    if flags & abi::open::CREATE != 0 {
        fs_flags |= fs::open::CREATE;
    }
    let request = fs::OpenRequest { path, flags: fs_flags, mode: 0o644, credentials };
    let Ok(stat) = ask::<fs::Open, _>(xv6, &request) else { return Reply::Value(-1) };
    let Some(object_port) = xv6.scratch.port(0).filter(|d| d.disposition == received::SEND).map(|d| d.name)
    else {
        return Reply::Value(-1);
    };
    let object = match stat.mode & 0o170000 {
        // xv6's create() fails when the name is a directory.
        0o040000 if flags & abi::open::CREATE != 0 => {
            let _ = port_deallocate(object_port);
            return Reply::Value(-1);
        }
        0o040000 => Object::Directory { port: object_port, cookie: 0 },
        // A device node: the console.
        0o020000 => {
            let _ = port_deallocate(object_port);
            let terminal = xv6.terminal;
            return install(xv6, port, Object::Io(terminal))
                .map_or(Reply::Value(-1), |fd| Reply::Value(fd as i64));
        }
        _ => Object::Io(object_port),
    };
    install_arrived(xv6, port, object).map_or(Reply::Value(-1), |fd| Reply::Value(fd as i64))
}

pub fn link(xv6: &mut Xv6, port: PortName, old: &str, new: &str) -> Reply {
    let Some(p) = xv6.processes.get(&port) else { return Reply::Gone };
    let credentials = Credentials { uid: p.uid, gid: p.gid };
    let (from, to) = (absolute(&p.cwd, old), absolute(&p.cwd, new));
    let request = fs::TwoPathRequest { from: &from, to: &to, credentials };
    Reply::Value(if ask::<fs::Link, _>(xv6, &request).is_ok() { 0 } else { -1 })
}

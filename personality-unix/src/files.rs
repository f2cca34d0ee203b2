//! The calls on file descriptors: open, read, write, close, stat, seek, directory listing,
//! dup and fcntl, and terminal ioctls. A descriptor names an open object (fdtable.rs): a
//! terminal port of the console server, a file or directory port of fs-server (one `fs.open`
//! each), or /dev/null and /dev/zero, which the personality answers itself.
//!
//! A read of a terminal waits for a line: the personality never waits with it. It sends the
//! `io.read` with a reply port of its own in its port set, keeps the caller's reply right,
//! and answers the system call when the console answers (`Personality::pending_reads`), so
//! other processes' calls go on meanwhile.
//!
//! It must never trust a path or a pointer: paths are read from the process through its task
//! port (at most 4 KiB, NUL-terminated), data through `vm_read` or the reply's copy-out.

use crate::process::{PendingRead, Personality};
use crate::syscalls::{Answer, error};
use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;
use interfaces::fs as proto;
use interfaces::{Bytes, Error, console, io};
use libmach::ipc::{Message, PortName, ReceiveRight, SendRight, disposition, received};
use libmach::rpc;
use libmach::task::vm_read;
use mach_abi::forward::SyscallRequest;
use mach_abi::zerocopy::IntoBytes;
use personality_unix::fdtable::{Descriptor, Object};
use personality_unix::linux::{self, errno::*, fcntl, ioctl, nr, open};

const PAGE: u64 = 4096;
/// The most one write takes at a time (more is a short write, as Linux allows).
const MAX_WRITE: usize = 64 * 1024;
const CALL_TIMEOUT_MS: u64 = 30_000;

/// Serve `call` if it is one of the descriptor calls; None otherwise.
pub fn dispatch(
    unix: &mut Personality,
    port: PortName,
    call: &SyscallRequest,
    reply_to: PortName,
) -> Option<Answer> {
    let task = unix.processes.get(&port)?.task;
    let [a0, a1, a2, a3, _, _] = call.args;
    let answer = match call.number {
        nr::READ => read(unix, port, task, a0, a1, a2, None, reply_to),
        nr::PREAD64 => read(unix, port, task, a0, a1, a2, Some(a3), reply_to),
        // readv reads into its first buffer that has room: a short read, as POSIX allows.
        nr::READV => match read_iovecs(task, a1, a2) {
            Ok(iov) => match iov.iter().find(|&&(_, len)| len > 0) {
                Some(&(address, len)) => read(unix, port, task, a0, address, len, None, reply_to),
                None => Answer::Value(0),
            },
            Err(e) => error(e),
        },
        nr::WRITE => write(unix, port, task, a0, &[(a1, a2)], None, reply_to),
        nr::PWRITE64 => write(unix, port, task, a0, &[(a1, a2)], Some(a3), reply_to),
        nr::SENDFILE => sendfile(unix, port, task, a0, a1, a2, a3, reply_to),
        nr::WRITEV => match read_iovecs(task, a1, a2) {
            Ok(iov) => write(unix, port, task, a0, &iov, None, reply_to),
            Err(e) => error(e),
        },
        nr::OPEN => openat(unix, port, task, linux::AT_FDCWD, a0, a1, a2),
        nr::OPENAT => openat(unix, port, task, a0, a1, a2, a3),
        nr::CLOSE => close(unix, port, a0),
        nr::PIPE => crate::pipes::make(unix, port, a0, 0),
        nr::PIPE2 => crate::pipes::make(unix, port, a0, a1),
        nr::FSTAT => fstat(unix, port, a0, a1),
        nr::STAT => stat_path(unix, port, task, linux::AT_FDCWD, a0, a1, 0),
        nr::LSTAT => stat_path(unix, port, task, linux::AT_FDCWD, a0, a1, linux::AT_SYMLINK_NOFOLLOW),
        nr::NEWFSTATAT => stat_path(unix, port, task, a0, a1, a2, a3),
        // Rust's std asks statx first and falls back to the calls above.
        nr::STATX => match stat_of(unix, port, task, a0, a1, a2) {
            Ok(stat) => {
                Answer::CopyOut { value: 0, to: call.args[4], bytes: linux::statx_bytes(&stat).to_vec() }
            }
            Err(e) => error(e),
        },
        nr::FCHMOD => set_attributes_fd(
            unix,
            port,
            a0,
            proto::Attributes { mode: Some((a1 & 0o7777) as u32), ..Default::default() },
        ),
        nr::FCHOWN => set_attributes_fd(unix, port, a0, owner(a1, a2)),
        nr::CHOWN => {
            names(unix, port, task, Name::SetAttributes(owner(a1, a2), true), linux::AT_FDCWD, a0, 0, 0)
        }
        nr::LCHOWN => {
            names(unix, port, task, Name::SetAttributes(owner(a1, a2), false), linux::AT_FDCWD, a0, 0, 0)
        }
        nr::FCHOWNAT => {
            let follow = call.args[4] & linux::AT_SYMLINK_NOFOLLOW == 0;
            names(unix, port, task, Name::SetAttributes(owner(a2, a3), follow), a0, a1, 0, 0)
        }
        nr::UTIMENSAT => match times(task, a2) {
            Ok(attributes) if a1 == 0 => set_attributes_fd(unix, port, a0, attributes),
            Ok(attributes) => {
                let follow = a3 & linux::AT_SYMLINK_NOFOLLOW == 0;
                names(unix, port, task, Name::SetAttributes(attributes, follow), a0, a1, 0, 0)
            }
            Err(e) => error(e),
        },
        nr::LSEEK => seek(unix, port, a0, a1, a2),
        nr::GETDENTS64 => getdents(unix, port, a0, a1, a2),
        nr::DUP => dup(unix, port, a0, 0, false),
        nr::DUP2 => dup2(unix, port, a0, a1, false),
        nr::DUP3 => dup2(unix, port, a0, a1, a2 & open::CLOEXEC != 0),
        nr::FCNTL => fcntl(unix, port, a0, a1, a2),
        nr::IOCTL => ioctl(unix, port, a0, a1, a2),
        nr::CHDIR => match read_string(task, a0) {
            Ok(path) => change_directory(unix, port, &path),
            Err(e) => error(e),
        },
        nr::FCHDIR => error(ENOSYS),
        nr::MKDIR => names(unix, port, task, Name::MakeDirectory(a1), linux::AT_FDCWD, a0, 0, 0),
        nr::MKDIRAT => names(unix, port, task, Name::MakeDirectory(a2), a0, a1, 0, 0),
        nr::RMDIR => names(unix, port, task, Name::RemoveDirectory, linux::AT_FDCWD, a0, 0, 0),
        nr::UNLINK => names(unix, port, task, Name::Unlink, linux::AT_FDCWD, a0, 0, 0),
        nr::UNLINKAT if a2 & linux::AT_REMOVEDIR != 0 => {
            names(unix, port, task, Name::RemoveDirectory, a0, a1, 0, 0)
        }
        nr::UNLINKAT => names(unix, port, task, Name::Unlink, a0, a1, 0, 0),
        nr::RENAME => names(unix, port, task, Name::Rename, linux::AT_FDCWD, a0, linux::AT_FDCWD, a1),
        nr::RENAMEAT => names(unix, port, task, Name::Rename, a0, a1, a2, a3),
        nr::RENAMEAT2 if call.args[4] == 0 => names(unix, port, task, Name::Rename, a0, a1, a2, a3),
        nr::RENAMEAT2 => error(EINVAL),
        nr::LINK => names(unix, port, task, Name::Link, linux::AT_FDCWD, a0, linux::AT_FDCWD, a1),
        nr::LINKAT => names(unix, port, task, Name::Link, a0, a1, a2, a3),
        nr::SYMLINK => names(unix, port, task, Name::Symlink(a0), linux::AT_FDCWD, a1, 0, 0),
        nr::SYMLINKAT => names(unix, port, task, Name::Symlink(a0), a1, a2, 0, 0),
        nr::READLINK => names(unix, port, task, Name::ReadLink(a1, a2), linux::AT_FDCWD, a0, 0, 0),
        nr::READLINKAT => names(unix, port, task, Name::ReadLink(a2, a3), a0, a1, 0, 0),
        nr::CHMOD => names(unix, port, task, Name::Chmod(a1), linux::AT_FDCWD, a0, 0, 0),
        nr::FCHMODAT => names(unix, port, task, Name::Chmod(a2), a0, a1, 0, 0),
        nr::ACCESS => names(unix, port, task, Name::Access(a1), linux::AT_FDCWD, a0, 0, 0),
        nr::FACCESSAT => names(unix, port, task, Name::Access(a2), a0, a1, 0, 0),
        nr::FTRUNCATE => match descriptor(unix, port, a0).map(|d| d.object) {
            Ok(Object::File(file)) => {
                done(ask::<io::Truncate, _>(file, &a1, unix.reply.name(), &mut unix.scratch))
            }
            Ok(_) => error(EINVAL),
            Err(e) => error(e),
        },
        nr::FSYNC | nr::SYNC => {
            done(ask::<proto::SyncAll, _>(unix.fs.name(), &(), unix.reply.name(), &mut unix.scratch))
        }
        nr::GETCWD => {
            let cwd = unix.processes.get(&port).map(|p| p.cwd.clone()).unwrap_or_default();
            let mut bytes = cwd.into_bytes();
            bytes.push(0);
            if bytes.len() as u64 > a1 {
                return Some(error(linux::errno::ERANGE));
            }
            let len = bytes.len() as i64;
            Answer::CopyOut { value: len, to: a0, bytes }
        }
        _ => return None,
    };
    Some(answer)
}

/// chdir: the directory must exist (and be one); the working directory is kept as a plain
/// absolute path, which fs-server resolves for relative paths.
fn change_directory(unix: &mut Personality, port: PortName, path: &str) -> Answer {
    let cwd = unix.processes.get(&port).map(|p| p.cwd.clone()).unwrap_or_default();
    let target = linux::normalize(&cwd, path);
    let credentials = unix.credentials(port);
    let request = proto::StatRequest { path: &target, follow: true, credentials };
    match ask::<proto::StatPath, _>(unix.fs.name(), &request, unix.reply.name(), &mut unix.scratch) {
        Ok(stat) if stat.mode & io::mode::TYPE_MASK == io::mode::DIRECTORY => {
            if let Some(p) = unix.processes.get_mut(&port) {
                p.cwd = target;
            }
            Answer::Value(0)
        }
        Ok(_) => error(ENOTDIR),
        Err(e) => error(e),
    }
}

/// The calls that make, remove or change a name.
enum Name {
    /// mkdir with this mode.
    MakeDirectory(u64),
    RemoveDirectory,
    Unlink,
    /// rename from the first path to the second (each with its directory descriptor).
    Rename,
    Link,
    /// symlink: the target string's address; the path is where the link goes.
    Symlink(u64),
    /// readlink into (buffer, size).
    ReadLink(u64, u64),
    /// chmod to this mode.
    Chmod(u64),
    /// chown, utimes: these attributes, following a last symbolic link or not.
    SetAttributes(proto::Attributes, bool),
    /// access with this mask.
    Access(u64),
}

/// Serve a name call: `path` relative to `dirfd`, and for rename and link a second path
/// relative to `dirfd2`.
#[allow(clippy::too_many_arguments)]
fn names(
    unix: &mut Personality,
    port: PortName,
    task: PortName,
    call: Name,
    dirfd: u64,
    path: u64,
    dirfd2: u64,
    path2: u64,
) -> Answer {
    let path = match read_string(task, path) {
        Ok(p) => p,
        Err(e) => return error(e),
    };
    let (base, path) = match base_for(unix, port, dirfd, &path) {
        Ok(b) => b,
        Err(e) => return error(e),
    };
    let credentials = unix.credentials(port);
    let umask = unix.processes.get(&port).map_or(0o022, |p| p.umask);
    let reply = unix.reply.name();
    let m = &mut unix.scratch;
    macro_rules! call {
        ($op:ty, $request:expr) => {
            done(ask::<$op, _>(base, &$request, reply, m))
        };
    }
    match call {
        Name::MakeDirectory(mode) => {
            call!(
                proto::MakeDirectory,
                proto::MakeRequest { path: &path, mode: (mode & 0o7777) as u32 & !umask, credentials }
            )
        }
        Name::RemoveDirectory => {
            call!(proto::RemoveDirectory, proto::PathRequest { path: &path, credentials })
        }
        Name::Unlink => call!(proto::Unlink, proto::PathRequest { path: &path, credentials }),
        Name::Rename | Name::Link => {
            let to = match read_string(task, path2) {
                Ok(p) => p,
                Err(e) => return error(e),
            };
            // Both paths from the root (absolute), so one directory port serves both.
            let from = absolute_of(unix, port, dirfd, &path);
            let to = absolute_of(unix, port, dirfd2, &to);
            let (Some(from), Some(to)) = (from, to) else { return error(ENOSYS) };
            let base = unix.fs.name();
            let request = proto::TwoPathRequest { from: &from, to: &to, credentials };
            let m = &mut unix.scratch;
            done(if matches!(call, Name::Rename) {
                ask::<proto::Rename, _>(base, &request, reply, m)
            } else {
                ask::<proto::Link, _>(base, &request, reply, m)
            })
        }
        Name::Symlink(target) => {
            let target = match read_string(task, target) {
                Ok(t) => t,
                Err(e) => return error(e),
            };
            call!(proto::Symlink, proto::SymlinkRequest { target: &target, path: &path, credentials })
        }
        Name::ReadLink(buffer, size) => {
            match ask::<proto::ReadLink, _>(base, &proto::PathRequest { path: &path, credentials }, reply, m)
            {
                Ok(target) => {
                    let n = target.len().min(size as usize);
                    Answer::CopyOut { value: n as i64, to: buffer, bytes: target[..n].to_vec() }
                }
                Err(e) => error(e),
            }
        }
        Name::Chmod(mode) => {
            let attributes = proto::Attributes { mode: Some((mode & 0o7777) as u32), ..Default::default() };
            call!(
                proto::SetAttributes,
                proto::SetAttributesRequest { path: &path, follow: true, attributes, credentials }
            )
        }
        Name::SetAttributes(attributes, follow) => {
            call!(
                proto::SetAttributes,
                proto::SetAttributesRequest { path: &path, follow, attributes, credentials }
            )
        }
        Name::Access(mask) => {
            call!(proto::Access, proto::AccessRequest { path: &path, mask: (mask & 7) as u8, credentials })
        }
    }
}

/// An *at path as an absolute one, when its directory is the working directory or the path
/// is absolute (a directory descriptor's own path is not known: None).
fn absolute_of(unix: &Personality, port: PortName, dirfd: u64, path: &str) -> Option<String> {
    if path.starts_with('/') || is_cwd(dirfd) {
        let cwd = unix.processes.get(&port).map(|p| p.cwd.clone()).unwrap_or_else(|| String::from("/"));
        return Some(linux::normalize(&cwd, path));
    }
    None
}

/// One request of operation `R` to `to` (waiting at most `CALL_TIMEOUT_MS`): its answer's
/// value, or the errno for the caller (the server's error, or EIO when it did not answer).
pub fn ask<'m, R, T>(
    to: PortName,
    request: &R::Request<'_>,
    reply: PortName,
    m: &'m mut Message,
) -> Result<T, i64>
where
    R: rpc::Rpc<Reply<'m> = Result<T, Error>>,
{
    match rpc::call_timeout::<R>(to, request, &[], reply, m, CALL_TIMEOUT_MS) {
        Ok(answer) => answer.map_err(to_errno),
        Err(_) => Err(linux::errno::EIO),
    }
}

/// An answer of no value from `result`.
fn done(result: Result<(), i64>) -> Answer {
    match result {
        Ok(()) => Answer::Value(0),
        Err(e) => error(e),
    }
}

fn to_errno(e: Error) -> i64 {
    e.errno() as i64
}

/// Linux takes a descriptor (and a *at call's directory) as a 32-bit int: the register's
/// upper half is not part of it (glibc leaves it zero under AT_FDCWD's -100).
fn is_cwd(dirfd: u64) -> bool {
    dirfd as u32 == linux::AT_FDCWD as u32
}

pub fn descriptor(unix: &Personality, port: PortName, fd: u64) -> Result<Descriptor, i64> {
    unix.processes.get(&port).and_then(|p| p.fds.get(fd as u32 as u64)).copied().ok_or(EBADF)
}

/// A NUL-terminated string of at most 4 KiB at `address` in `task`.
pub fn read_string(task: PortName, address: u64) -> Result<String, i64> {
    let mut bytes = Vec::new();
    let mut at = address;
    while bytes.len() < 4096 {
        let chunk = ((PAGE - at % PAGE) as usize).min(4096 - bytes.len());
        let mut page = vec![0u8; chunk];
        vm_read(task, at, &mut page).map_err(|_| EFAULT)?;
        if let Some(end) = page.iter().position(|&b| b == 0) {
            bytes.extend_from_slice(&page[..end]);
            return String::from_utf8(bytes).map_err(|_| ENOENT);
        }
        bytes.extend_from_slice(&page);
        at += chunk as u64;
    }
    Err(ENAMETOOLONG)
}

/// The directory port a path is relative to, and the path as fs-server takes it: an
/// absolute path from the root port, a relative one from the directory `dirfd` names or the
/// process's working directory.
fn base_for(unix: &Personality, port: PortName, dirfd: u64, path: &str) -> Result<(PortName, String), i64> {
    if path.starts_with('/') {
        return Ok((unix.fs.name(), String::from(path)));
    }
    if is_cwd(dirfd) {
        let cwd = unix.processes.get(&port).map(|p| p.cwd.clone()).unwrap_or_else(|| String::from("/"));
        let mut full = cwd;
        if !full.ends_with('/') {
            full.push('/');
        }
        full.push_str(path);
        return Ok((unix.fs.name(), full));
    }
    match descriptor(unix, port, dirfd)?.object {
        Object::Directory(dir) => Ok((dir, String::from(path))),
        _ => Err(ENOTDIR),
    }
}

#[allow(clippy::too_many_arguments)]
fn openat(
    unix: &mut Personality,
    port: PortName,
    task: PortName,
    dirfd: u64,
    path: u64,
    flags: u64,
    mode: u64,
) -> Answer {
    let path = match read_string(task, path) {
        Ok(p) => p,
        Err(e) => return error(e),
    };
    let close_on_exec = flags & open::CLOEXEC != 0;
    let special = match path.as_str() {
        "/dev/null" => Some(Object::Null),
        "/dev/zero" => Some(Object::Zero),
        "/dev/urandom" | "/dev/random" => Some(Object::Random),
        "/dev/tty" | "/dev/console" => Some(Object::Terminal(unix.terminal.name())),
        _ => None,
    };
    if let Some(object) = special {
        let nonblocking = flags & open::NONBLOCK != 0;
        return install(unix, port, Descriptor { object, close_on_exec, cookie: 0, nonblocking });
    }
    let (base, path) = match base_for(unix, port, dirfd, &path) {
        Ok(b) => b,
        Err(e) => return error(e),
    };
    let mut wanted = match flags & open::ACCESS_MODE {
        open::WRONLY => proto::open::WRITE,
        open::RDWR => proto::open::READ | proto::open::WRITE,
        _ => proto::open::READ,
    };
    for (linux_flag, flag) in [
        (open::CREAT, proto::open::CREATE),
        (open::EXCL, proto::open::EXCLUSIVE),
        (open::TRUNC, proto::open::TRUNCATE),
        (open::APPEND, proto::open::APPEND),
        (open::DIRECTORY, proto::open::DIRECTORY),
        (open::NOFOLLOW, proto::open::NO_FOLLOW),
    ] {
        if flags & linux_flag != 0 {
            wanted |= flag;
        }
    }
    let umask = unix.processes.get(&port).map_or(0o022, |p| p.umask);
    let request = proto::OpenRequest {
        path: &path,
        flags: wanted,
        mode: (mode & 0o7777) as u32 & !umask,
        credentials: unix.credentials(port),
    };
    let stat = match ask::<proto::Open, _>(base, &request, unix.reply.name(), &mut unix.scratch) {
        Ok(stat) => stat,
        Err(e) => return error(e),
    };
    let object_port = match unix.scratch.port(0) {
        Some(d) if d.disposition == received::SEND => d.name,
        _ => return error(linux::errno::EIO),
    };
    let object = if stat.mode & io::mode::TYPE_MASK == io::mode::DIRECTORY {
        Object::Directory(object_port)
    } else {
        Object::File(object_port)
    };
    let nonblocking = flags & open::NONBLOCK != 0;
    let answer = install(unix, port, Descriptor { object, close_on_exec, cookie: 0, nonblocking });
    if matches!(answer, Answer::Value(v) if v < 0) {
        drop(SendRight::from_name(object_port));
    }
    answer
}

/// Give the process a descriptor for `d` (the lowest free number).
fn install(unix: &mut Personality, port: PortName, d: Descriptor) -> Answer {
    let Some(p) = unix.processes.get_mut(&port) else { return Answer::None };
    match p.fds.insert(d, &mut unix.uses, 0) {
        Some(fd) => Answer::Value(fd as i64),
        None => error(EMFILE),
    }
}

fn close(unix: &mut Personality, port: PortName, fd: u64) -> Answer {
    let Some(p) = unix.processes.get_mut(&port) else { return Answer::None };
    match p.fds.close(fd as u32 as u64, &mut unix.uses) {
        Ok(gone) => {
            if let Some(gone) = gone {
                unix.released(gone);
            }
            Answer::Value(0)
        }
        Err(_) => error(EBADF),
    }
}

#[allow(clippy::too_many_arguments)]
fn read(
    unix: &mut Personality,
    port: PortName,
    task: PortName,
    fd: u64,
    address: u64,
    count: u64,
    at: Option<u64>,
    reply_to: PortName,
) -> Answer {
    let d = match descriptor(unix, port, fd) {
        Ok(d) => d,
        Err(e) => return error(e),
    };
    let count = count.min(io::MAX_TRANSFER as u64) as u32;
    match d.object {
        Object::Null => Answer::Value(0),
        Object::Zero => Answer::CopyOut { value: count as i64, to: address, bytes: vec![0; count as usize] },
        Object::Random => {
            let count = count.min(4096);
            Answer::CopyOut {
                value: count as i64,
                to: address,
                bytes: crate::process::random(count as usize),
            }
        }
        Object::Directory(_) => error(EISDIR),
        Object::PipeWrite(_) => error(EBADF),
        Object::PipeRead(_) if at.is_some() => error(ESPIPE),
        Object::PipeRead(id) => crate::pipes::read(
            unix,
            id,
            count as usize,
            crate::pipes::Waiter::call(port, reply_to, address),
            d.nonblocking,
        ),
        Object::File(file) => {
            let request = io::ReadRequest { count, at, nonblocking: false };
            match ask::<io::Read, _>(file, &request, unix.reply.name(), &mut unix.scratch) {
                Ok(data) => Answer::CopyOut { value: data.len() as i64, to: address, bytes: data.to_vec() },
                Err(e) => error(e),
            }
        }
        Object::Terminal(terminal) => {
            if at.is_some() {
                return error(ESPIPE);
            }
            let _ = task;
            if d.nonblocking {
                let request = io::ReadRequest { count, at: None, nonblocking: true };
                return match ask::<io::Read, _>(terminal, &request, unix.reply.name(), &mut unix.scratch) {
                    Ok(data) => {
                        Answer::CopyOut { value: data.len() as i64, to: address, bytes: data.to_vec() }
                    }
                    Err(e) => error(e),
                };
            }
            // The console answers when a line is typed; the caller's reply right waits here.
            let Ok(answer_port) = ReceiveRight::allocate() else { return error(linux::errno::ENOMEM) };
            let mut m = Message::new();
            m.start(terminal, disposition::COPY_SEND, <io::Read as rpc::Rpc>::ID)
                .reply_to(answer_port.name(), disposition::MAKE_SEND_ONCE);
            let request = io::ReadRequest { count, at: None, nonblocking: false };
            if rpc::encode(&mut m, &request).is_err() || m.send_timeout(CALL_TIMEOUT_MS).is_err() {
                return error(linux::errno::EIO);
            }
            if unix.wait_for_read(answer_port, PendingRead { process: port, reply_to, address }) {
                Answer::Later
            } else {
                error(linux::errno::ENOMEM)
            }
        }
    }
}

/// sendfile: up to `count` bytes (64 KiB at a time) from file `from`, at `*offset` when an
/// offset is given (which is then moved on), or at its own offset, to `to`.
#[allow(clippy::too_many_arguments)]
fn sendfile(
    unix: &mut Personality,
    port: PortName,
    task: PortName,
    to: u64,
    from: u64,
    offset: u64,
    count: u64,
    reply_to: PortName,
) -> Answer {
    let source = match descriptor(unix, port, from) {
        Ok(Descriptor { object: Object::File(p), .. }) => p,
        Ok(_) => return error(EINVAL),
        Err(e) => return error(e),
    };
    let at = if offset == 0 {
        None
    } else {
        let mut word = [0u8; 8];
        if vm_read(task, offset, &mut word).is_err() {
            return error(EFAULT);
        }
        Some(u64::from_le_bytes(word))
    };
    let count = count.min(MAX_WRITE as u64).min(io::MAX_TRANSFER as u64) as u32;
    let request = io::ReadRequest { count, at, nonblocking: false };
    let data = match ask::<io::Read, _>(source, &request, unix.reply.name(), &mut unix.scratch) {
        Ok(data) => data.to_vec(),
        Err(e) => return error(e),
    };
    if data.is_empty() {
        return Answer::Value(0);
    }
    let target = match descriptor(unix, port, to) {
        Ok(d) => d.object,
        Err(e) => return error(e),
    };
    let answer = match target {
        Object::PipeWrite(id) => {
            crate::pipes::write(unix, id, data.clone(), crate::pipes::Waiter::call(port, reply_to, 0), false)
        }
        Object::File(p) | Object::Terminal(p) => write_bytes(unix, p, &data, None),
        Object::Null => Answer::Value(data.len() as i64),
        _ => error(EBADF),
    };
    // With an offset of its own, the source's offset stays; the given one moves on by what
    // was read (a pipe that waits takes it all once it is answered).
    if let (Some(at), Answer::Value(n) | Answer::CopyOut { value: n, .. }) = (at, &answer)
        && *n > 0
    {
        let _ = libmach::task::vm_write(task, offset, &(at + *n as u64).to_le_bytes());
    } else if let (Some(at), Answer::Later) = (at, &answer) {
        let _ = libmach::task::vm_write(task, offset, &(at + data.len() as u64).to_le_bytes());
    }
    answer
}

/// The (address, length) pairs of an iovec array in the process.
fn read_iovecs(task: PortName, at: u64, count: u64) -> Result<Vec<(u64, u64)>, i64> {
    if count > 1024 {
        return Err(EINVAL);
    }
    let mut raw = vec![0u8; count as usize * 16];
    vm_read(task, at, &mut raw).map_err(|_| EFAULT)?;
    Ok(raw
        .chunks_exact(16)
        .map(|c| {
            let word = |r: core::ops::Range<usize>| {
                c.get(r).and_then(|b| b.try_into().ok()).map_or(0, u64::from_le_bytes)
            };
            (word(0..8), word(8..16))
        })
        .collect())
}

/// write / writev: the pieces gathered (up to 64 KiB), then written in 4 KiB requests.
fn write(
    unix: &mut Personality,
    port: PortName,
    task: PortName,
    fd: u64,
    pieces: &[(u64, u64)],
    at: Option<u64>,
    reply_to: PortName,
) -> Answer {
    let d = match descriptor(unix, port, fd) {
        Ok(d) => d,
        Err(e) => return error(e),
    };
    let target = match d.object {
        Object::Null | Object::Zero | Object::Random => {
            return Answer::Value(pieces.iter().map(|&(_, n)| n as i64).sum());
        }
        Object::Directory(_) => return error(EISDIR),
        Object::PipeRead(_) => return error(EBADF),
        Object::File(p) | Object::Terminal(p) => Some(p),
        Object::PipeWrite(_) => None,
    };
    let mut data = Vec::new();
    for &(address, len) in pieces {
        let n = (len as usize).min(MAX_WRITE.saturating_sub(data.len()));
        if n == 0 {
            continue;
        }
        let at = data.len();
        data.resize(at + n, 0);
        if vm_read(task, address, &mut data[at..]).is_err() {
            return error(EFAULT);
        }
    }
    let Some(target) = target else {
        let Object::PipeWrite(id) = d.object else { return error(EBADF) };
        if at.is_some() {
            return error(ESPIPE);
        }
        return crate::pipes::write(
            unix,
            id,
            data,
            crate::pipes::Waiter::call(port, reply_to, 0),
            d.nonblocking,
        );
    };
    write_bytes(unix, target, &data, at)
}

/// Write `data` to a file or terminal port (at `at`, or where the file's offset is).
fn write_bytes(unix: &mut Personality, target: PortName, data: &[u8], at: Option<u64>) -> Answer {
    let mut written = 0i64;
    for chunk in data.chunks(io::MAX_TRANSFER as usize) {
        let request = io::WriteRequest { data: Bytes(chunk), at: at.map(|a| a + written as u64) };
        match ask::<io::Write, _>(target, &request, unix.reply.name(), &mut unix.scratch) {
            Ok(n) => {
                written += n as i64;
                if (n as usize) < chunk.len() {
                    break;
                }
            }
            Err(e) if written == 0 => return error(e),
            Err(_) => break,
        }
    }
    Answer::Value(written)
}

fn fstat(unix: &mut Personality, port: PortName, fd: u64, out: u64) -> Answer {
    match stat_fd(unix, port, fd) {
        Ok(stat) => Answer::CopyOut { value: 0, to: out, bytes: linux::stat_bytes(&stat).to_vec() },
        Err(e) => error(e),
    }
}

/// The stat of what descriptor `fd` names.
fn stat_fd(unix: &mut Personality, port: PortName, fd: u64) -> Result<io::Stat, i64> {
    let d = descriptor(unix, port, fd)?;
    Ok(match d.object.port() {
        Some(p) => ask::<io::GetStat, _>(p, &(), unix.reply.name(), &mut unix.scratch)?,
        None if matches!(d.object, Object::PipeRead(_) | Object::PipeWrite(_)) => {
            io::Stat { mode: io::mode::FIFO | 0o600, nlink: 1, dev: 3, blksize: 4096, ..io::Stat::default() }
        }
        // /dev/null, /dev/zero, /dev/urandom: character devices 1:3, 1:5 and 1:9.
        None => io::Stat {
            mode: io::mode::CHAR_DEVICE | 0o666,
            nlink: 1,
            rdev: match d.object {
                Object::Null => 0x103,
                Object::Zero => 0x105,
                _ => 0x109,
            },
            dev: 5,
            ..io::Stat::default()
        },
    })
}

#[allow(clippy::too_many_arguments)]
fn stat_path(
    unix: &mut Personality,
    port: PortName,
    task: PortName,
    dirfd: u64,
    path: u64,
    out: u64,
    flags: u64,
) -> Answer {
    match stat_of(unix, port, task, dirfd, path, flags) {
        Ok(stat) => Answer::CopyOut { value: 0, to: out, bytes: linux::stat_bytes(&stat).to_vec() },
        Err(e) => error(e),
    }
}

/// The stat of `path` relative to `dirfd` (AT_EMPTY_PATH: of `dirfd` itself).
fn stat_of(
    unix: &mut Personality,
    port: PortName,
    task: PortName,
    dirfd: u64,
    path: u64,
    flags: u64,
) -> Result<io::Stat, i64> {
    let path = read_string(task, path)?;
    if path.is_empty() {
        return if flags & linux::AT_EMPTY_PATH != 0 { stat_fd(unix, port, dirfd) } else { Err(ENOENT) };
    }
    let (base, path) = base_for(unix, port, dirfd, &path)?;
    let request = proto::StatRequest {
        path: &path,
        follow: flags & linux::AT_SYMLINK_NOFOLLOW == 0,
        credentials: unix.credentials(port),
    };
    ask::<proto::StatPath, _>(base, &request, unix.reply.name(), &mut unix.scratch)
}

/// chown's ids as attributes (-1: unchanged).
fn owner(uid: u64, gid: u64) -> proto::Attributes {
    let id = |v: u64| (v as u32 != u32::MAX).then_some(v as u32);
    proto::Attributes { uid: id(uid), gid: id(gid), ..Default::default() }
}

/// utimensat's two timespecs (NULL: both now; UTIME_NOW, UTIME_OMIT) as attributes, in the
/// whole seconds the file system keeps.
fn times(task: PortName, at: u64) -> Result<proto::Attributes, i64> {
    const UTIME_NOW: u64 = (1 << 30) - 1;
    const UTIME_OMIT: u64 = (1 << 30) - 2;
    let now = libmach::realtime_ns() / 1_000_000_000;
    if at == 0 {
        return Ok(proto::Attributes { atime: Some(now), mtime: Some(now), ..Default::default() });
    }
    let mut raw = [0u8; 32];
    vm_read(task, at, &mut raw).map_err(|_| EFAULT)?;
    let word = |i: usize| u64::from_le_bytes(raw[i * 8..i * 8 + 8].try_into().unwrap_or([0; 8]));
    let one = |seconds: u64, nanos: u64| match nanos {
        UTIME_NOW => Ok(Some(now)),
        UTIME_OMIT => Ok(None),
        n if n >= 1_000_000_000 => Err(EINVAL),
        _ => Ok(Some(seconds)),
    };
    Ok(proto::Attributes {
        atime: one(word(0), word(1))?,
        mtime: one(word(2), word(3))?,
        ..Default::default()
    })
}

/// Set attributes of the object descriptor `fd` names (fchmod, fchown, futimens).
fn set_attributes_fd(
    unix: &mut Personality,
    port: PortName,
    fd: u64,
    attributes: proto::Attributes,
) -> Answer {
    let d = match descriptor(unix, port, fd) {
        Ok(d) => d,
        Err(e) => return error(e),
    };
    let Some(object) = d.object.port().filter(|_| matches!(d.object, Object::File(_) | Object::Directory(_)))
    else {
        return error(EPERM);
    };
    let request = proto::SetAttributesRequest {
        path: "",
        follow: true,
        attributes,
        credentials: unix.credentials(port),
    };
    done(ask::<proto::SetAttributes, _>(object, &request, unix.reply.name(), &mut unix.scratch))
}

fn seek(unix: &mut Personality, port: PortName, fd: u64, offset: u64, whence: u64) -> Answer {
    let d = match descriptor(unix, port, fd) {
        Ok(d) => d,
        Err(e) => return error(e),
    };
    let whence = match whence {
        0 => io::Whence::Start,
        1 => io::Whence::Current,
        2 => io::Whence::End,
        _ => return error(EINVAL),
    };
    let target = match d.object {
        Object::File(p) => p,
        Object::Directory(_) if offset == 0 && whence == io::Whence::Start => {
            if let Some(d) = unix.processes.get_mut(&port).and_then(|p| p.fds.get_mut(fd as u32 as u64)) {
                d.cookie = 0;
            }
            return Answer::Value(0);
        }
        Object::Null | Object::Zero | Object::Random => return Answer::Value(0),
        _ => return error(ESPIPE),
    };
    let request = io::SeekRequest { offset: offset as i64, whence };
    match ask::<io::Seek, _>(target, &request, unix.reply.name(), &mut unix.scratch) {
        Ok(at) => Answer::Value(at as i64),
        Err(e) => error(e),
    }
}

fn getdents(unix: &mut Personality, port: PortName, fd: u64, out: u64, count: u64) -> Answer {
    let d = match descriptor(unix, port, fd) {
        Ok(d) => d,
        Err(e) => return error(e),
    };
    let Object::Directory(dir) = d.object else { return error(ENOTDIR) };
    let limit = (count as usize).min(io::MAX_TRANSFER as usize);
    let request =
        proto::ReadDirRequest { cookie: d.cookie, max_bytes: (limit as u32).min(io::MAX_TRANSFER) / 2 };
    let entries = match ask::<proto::ReadDir, _>(dir, &request, unix.reply.name(), &mut unix.scratch) {
        Ok(data) => data.to_vec(),
        Err(e) => return error(e),
    };
    let mut bytes = Vec::new();
    let mut cookie = d.cookie;
    for e in proto::entries(&entries) {
        if !linux::put_dirent64(&mut bytes, limit, e.ino, e.next, e.kind, e.name) {
            break;
        }
        cookie = e.next;
    }
    if bytes.is_empty() && !entries.is_empty() {
        return error(EINVAL); // the buffer cannot hold one entry
    }
    if let Some(d) = unix.processes.get_mut(&port).and_then(|p| p.fds.get_mut(fd as u32 as u64)) {
        d.cookie = cookie;
    }
    Answer::CopyOut { value: bytes.len() as i64, to: out, bytes }
}

fn dup(unix: &mut Personality, port: PortName, fd: u64, at_least: u64, close_on_exec: bool) -> Answer {
    let d = match descriptor(unix, port, fd) {
        Ok(d) => d,
        Err(e) => return error(e),
    };
    let Some(p) = unix.processes.get_mut(&port) else { return Answer::None };
    match p.fds.insert(Descriptor { close_on_exec, ..d }, &mut unix.uses, at_least as usize) {
        Some(fd) => Answer::Value(fd as i64),
        None => error(EMFILE),
    }
}

fn dup2(unix: &mut Personality, port: PortName, fd: u64, to: u64, close_on_exec: bool) -> Answer {
    let d = match descriptor(unix, port, fd) {
        Ok(d) => d,
        Err(e) => return error(e),
    };
    if fd == to {
        return Answer::Value(to as i64);
    }
    let Some(p) = unix.processes.get_mut(&port) else { return Answer::None };
    match p.fds.place(to as u32 as u64, Descriptor { close_on_exec, ..d }, &mut unix.uses) {
        Ok(gone) => {
            if let Some(gone) = gone {
                unix.released(gone);
            }
            Answer::Value(to as i64)
        }
        Err(_) => error(EBADF),
    }
}

fn fcntl(unix: &mut Personality, port: PortName, fd: u64, command: u64, argument: u64) -> Answer {
    let d = match descriptor(unix, port, fd) {
        Ok(d) => d,
        Err(e) => return error(e),
    };
    match command {
        fcntl::F_DUPFD => dup(unix, port, fd, argument, false),
        fcntl::F_DUPFD_CLOEXEC => dup(unix, port, fd, argument, true),
        fcntl::F_GETFD => Answer::Value(if d.close_on_exec { fcntl::FD_CLOEXEC as i64 } else { 0 }),
        fcntl::F_SETFD => {
            if let Some(d) = unix.processes.get_mut(&port).and_then(|p| p.fds.get_mut(fd as u32 as u64)) {
                d.close_on_exec = argument & fcntl::FD_CLOEXEC != 0;
            }
            Answer::Value(0)
        }
        fcntl::F_GETFL => Answer::Value((open::RDWR | if d.nonblocking { open::NONBLOCK } else { 0 }) as i64),
        // Of the status flags, O_NONBLOCK is kept (O_APPEND is the open file's, fixed at open).
        fcntl::F_SETFL => {
            if let Some(d) = unix.processes.get_mut(&port).and_then(|p| p.fds.get_mut(fd as u32 as u64)) {
                d.nonblocking = argument & open::NONBLOCK != 0;
            }
            Answer::Value(0)
        }
        _ => error(EINVAL),
    }
}

fn ioctl(unix: &mut Personality, port: PortName, fd: u64, request: u64, out: u64) -> Answer {
    let d = match descriptor(unix, port, fd) {
        Ok(d) => d,
        Err(e) => return error(e),
    };
    let Object::Terminal(terminal) = d.object else {
        return match (d.object, request) {
            // FIONREAD on a pipe: the bytes buffered.
            (Object::PipeRead(id), ioctl::FIONREAD) => {
                let n = unix.pipes.get(&id).map_or(0, |p| p.len()) as u32;
                Answer::CopyOut { value: 0, to: out, bytes: n.to_le_bytes().to_vec() }
            }
            _ => error(ENOTTY),
        };
    };
    let task = unix.processes.get(&port).map(|p| p.task).unwrap_or(0);
    let (reply, m) = (unix.reply.name(), &mut unix.scratch);
    match request {
        ioctl::TIOCGWINSZ => match ask::<console::GetWindowSize, _>(terminal, &(), reply, m) {
            Ok(size) => {
                let words: [u16; 4] = [size.rows, size.columns, 0, 0];
                Answer::CopyOut { value: 0, to: out, bytes: words.as_bytes().to_vec() }
            }
            Err(e) => error(e),
        },
        ioctl::TIOCSWINSZ => {
            let mut words = [0u8; 4];
            if vm_read(task, out, &mut words).is_err() {
                return error(EFAULT);
            }
            let size = console::WindowSize {
                rows: u16::from_le_bytes([words[0], words[1]]),
                columns: u16::from_le_bytes([words[2], words[3]]),
            };
            done(ask::<console::SetWindowSize, _>(terminal, &size, reply, m))
        }
        ioctl::FIONREAD => match ask::<console::Pending, _>(terminal, &(), reply, m) {
            Ok(n) => Answer::CopyOut { value: 0, to: out, bytes: n.to_le_bytes().to_vec() },
            Err(e) => error(e),
        },
        ioctl::TCGETS => match ask::<console::GetTermios, _>(terminal, &(), reply, m) {
            Ok(t) => Answer::CopyOut { value: 0, to: out, bytes: linux::termios::to_bytes(&t) },
            Err(e) => error(e),
        },
        ioctl::TCSETS | ioctl::TCSETSW | ioctl::TCSETSF => {
            let mut bytes = [0u8; linux::termios::SIZE];
            if vm_read(task, out, &mut bytes).is_err() {
                return error(EFAULT);
            }
            let when = match request {
                ioctl::TCSETS => console::When::Now,
                ioctl::TCSETSW => console::When::Drain,
                _ => console::When::Flush,
            };
            let request = console::SetTermiosRequest { termios: linux::termios::from_bytes(&bytes), when };
            done(ask::<console::SetTermios, _>(terminal, &request, reply, m))
        }
        ioctl::TIOCGPGRP => {
            Answer::CopyOut { value: 0, to: out, bytes: (unix.foreground as u32).to_le_bytes().to_vec() }
        }
        ioctl::TIOCSPGRP => {
            let mut group = [0u8; 4];
            if vm_read(task, out, &mut group).is_err() {
                return error(EFAULT);
            }
            unix.foreground = u32::from_le_bytes(group) as u64;
            Answer::Value(0)
        }
        _ => error(EINVAL),
    }
}

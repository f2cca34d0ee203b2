//! Pipes, served by the personality itself (`pipe.rs` has their rules): pipe and pipe2 make
//! one, reads and writes on its ends go here, and a read or write that must wait keeps its
//! reply right in the pipe until a write, read or the last close of the other end answers it.
//!
//! A pipe's ends can also be ports the personality serves with the `io` protocol (the
//! `unix.pipe` service for other personalities and servers, and later a descriptor handed
//! to another personality): a read or write there waits the same way, and is answered with
//! an `io` reply. A send right to an end port counts as an open end until no-senders.
//!
//! It must never answer a waiter twice or forget one: every waiter leaves the pipe answered,
//! or with its process (whose reply rights are released).

use crate::process::Personality;
use crate::syscalls::{Answer, error};
use alloc::vec::Vec;
use interfaces::{Bytes, Error, io};
use libmach::ipc::{
    LargestMessage, Message, PortName, ReceiveRight, disposition, port_move_member, port_request_notification,
};
use libmach::rpc;
use personality_unix::fdtable::{Descriptor, Object};
use personality_unix::linux::{errno::*, open};
use personality_unix::pipe::{Outcome, Pipe};

/// Who waits on a pipe: the process, the reply right of its call, where read bytes go; or
/// (`io`) a client of an end port, answered with an `io` reply.
#[derive(Clone, Copy)]
pub struct Waiter {
    pub process: PortName,
    pub reply_to: PortName,
    pub address: u64,
    pub io: bool,
}

impl Waiter {
    pub fn call(process: PortName, reply_to: PortName, address: u64) -> Waiter {
        Waiter { process, reply_to, address, io: false }
    }
}

/// A pipe end served as an `io` port.
pub struct EndPort {
    pub id: u32,
    pub write: bool,
    /// The port (dropping it destroys the port).
    pub right: ReceiveRight,
}

pub type ServedPipe = Pipe<Waiter>;

/// The number of a new pipe.
fn new_pipe_number(unix: &mut Personality) -> u32 {
    let id = unix.next_pipe;
    unix.next_pipe = unix.next_pipe.wrapping_add(1);
    id
}

/// pipe / pipe2: a new pipe, its read and write ends as two descriptors.
pub fn make(unix: &mut Personality, port: PortName, out: u64, flags: u64) -> Answer {
    let id = new_pipe_number(unix);
    let close_on_exec = flags & open::CLOEXEC != 0;
    let nonblocking = flags & open::NONBLOCK != 0;
    let Some(p) = unix.processes.get_mut(&port) else { return Answer::None };
    let read_end = p.fds.insert(
        Descriptor { object: Object::PipeRead(id), close_on_exec, cookie: 0, nonblocking },
        &mut unix.uses,
        0,
    );
    let Some(read_end) = read_end else { return error(EMFILE) };
    let write_end = p.fds.insert(
        Descriptor { object: Object::PipeWrite(id), close_on_exec, cookie: 0, nonblocking },
        &mut unix.uses,
        0,
    );
    let Some(write_end) = write_end else {
        let _ = p.fds.close(read_end, &mut unix.uses);
        return error(EMFILE);
    };
    unix.pipes.insert(id, ServedPipe::default());
    let mut bytes = Vec::with_capacity(8);
    bytes.extend_from_slice(&(read_end as i32).to_le_bytes());
    bytes.extend_from_slice(&(write_end as i32).to_le_bytes());
    Answer::CopyOut { value: 0, to: out, bytes }
}

/// An outcome as the answer to a call.
fn answer_of(outcome: Outcome, address: u64) -> Answer {
    match outcome {
        Outcome::Data(bytes) if bytes.is_empty() => Answer::Value(0),
        Outcome::Data(bytes) => Answer::CopyOut { value: bytes.len() as i64, to: address, bytes },
        Outcome::EndOfFile => Answer::Value(0),
        Outcome::Wrote(n) => Answer::Value(n as i64),
        Outcome::Broken => error(EPIPE),
        Outcome::Waiting => Answer::Later,
    }
}

/// Answer the waiters of pipe `id` that can be answered now.
pub fn settle(unix: &mut Personality, id: u32) {
    let Some(pipe) = unix.pipes.get_mut(&id) else { return };
    // A client of an end port that gave up (its reply right is dead) gets no bytes: they
    // stay for the next reader.
    let dead = |w: &Waiter| {
        w.io && libmach::ipc::port_type(w.reply_to)
            .is_ok_and(|t| t & mach_abi::ipc::right_type::DEAD_NAME != 0)
    };
    for gone in pipe.forget(dead) {
        let _ = libmach::ipc::port_deallocate(gone.reply_to);
    }
    let answered = pipe.settle();
    if answered.is_empty() {
        return;
    }
    for (waiter, outcome) in answered {
        if waiter.io {
            io_answer(unix, waiter.reply_to, outcome);
        } else {
            unix.answer_held(waiter.reply_to, answer_of(outcome, waiter.address));
        }
    }
}

/// A read of pipe `id`; one that would wait answers EAGAIN when `nonblocking`.
pub fn read(unix: &mut Personality, id: u32, count: usize, waiter: Waiter, nonblocking: bool) -> Answer {
    let Some(pipe) = unix.pipes.get_mut(&id) else { return error(EBADF) };
    let outcome = pipe.read(count, waiter);
    if outcome == Outcome::Waiting && nonblocking {
        let _ = pipe.forget(|w| w.reply_to == waiter.reply_to);
        return error(EAGAIN);
    }
    let answer = answer_of(outcome, waiter.address);
    settle(unix, id);
    answer
}

/// A write to pipe `id`; one that would wait (the pipe is full) answers EAGAIN when
/// `nonblocking`.
pub fn write(unix: &mut Personality, id: u32, bytes: Vec<u8>, waiter: Waiter, nonblocking: bool) -> Answer {
    let Some(pipe) = unix.pipes.get_mut(&id) else { return error(EBADF) };
    let outcome = pipe.write(bytes, waiter);
    if outcome == Outcome::Waiting && nonblocking {
        let _ = pipe.forget(|w| w.reply_to == waiter.reply_to);
        return error(EAGAIN);
    }
    if outcome == Outcome::Broken {
        // No reader: SIGPIPE (which ends the writer unless it ignores it), then EPIPE.
        let signal = personality_unix::linux::signal::SIGPIPE;
        let info = personality_unix::signal::SignalInfo { signal, code: 0x80, pid: 0, status: 0 };
        unix.signal(waiter.process, signal, info);
        if !unix.processes.contains_key(&waiter.process) {
            return Answer::None;
        }
    }
    let answer = answer_of(outcome, 0);
    settle(unix, id);
    answer
}

/// The last descriptor of one end of pipe `id` went.
pub fn end_closed(unix: &mut Personality, end: Object) {
    let id = match end {
        Object::PipeRead(id) | Object::PipeWrite(id) => id,
        _ => return,
    };
    // A send right to this end's port keeps it open.
    let write = matches!(end, Object::PipeWrite(_));
    if unix.pipe_ends.values().any(|e| e.id == id && e.write == write) {
        return;
    }
    close_end(unix, id, write);
}

/// No reader (or no writer) is left at all: waiters are answered (end of file, EPIPE), and
/// a pipe with neither goes.
fn close_end(unix: &mut Personality, id: u32, write: bool) {
    let Some(pipe) = unix.pipes.get_mut(&id) else { return };
    if write {
        pipe.writers = 0;
    } else {
        pipe.readers = 0;
    }
    settle(unix, id);
    if let Some(pipe) = unix.pipes.get(&id)
        && pipe.readers == 0
        && pipe.writers == 0
    {
        unix.pipes.remove(&id);
    }
}

/// The port of pipe `id`'s read or write end (made on first use), to hand out as a send
/// right (MAKE_SEND).
pub fn end_port(unix: &mut Personality, id: u32, write: bool) -> Option<PortName> {
    if let Some(end) = unix.pipe_ends.values().find(|e| e.id == id && e.write == write) {
        return Some(end.right.name());
    }
    let right = ReceiveRight::allocate().ok()?;
    port_move_member(right.name(), unix.port_set()).ok()?;
    port_request_notification(
        right.name(),
        mach_abi::notify::NO_SENDERS,
        unix.pipe_notices.name(),
        disposition::MAKE_SEND_ONCE,
    )
    .ok()?;
    let name = right.name();
    unix.pipe_ends.insert(name, EndPort { id, write, right });
    Some(name)
}

/// `unix.pipe`: a new pipe whose ends are ports, for a client that is not a process here.
pub fn make_for_client(unix: &mut Personality, reply_to: PortName) {
    let id = new_pipe_number(unix);
    unix.pipes.insert(id, ServedPipe::default());
    let ends = (end_port(unix, id, false), end_port(unix, id, true));
    let mut m = Message::new();
    let _ = match ends {
        (Some(r), Some(w)) => rpc::reply::<interfaces::unix::MakePipe>(
            &mut m,
            reply_to,
            &Ok(()),
            &[(r, disposition::MAKE_SEND), (w, disposition::MAKE_SEND)],
        ),
        _ => {
            rpc::reply::<interfaces::unix::MakePipe>(&mut m, reply_to, &Err(interfaces::Error::NoMemory), &[])
        }
    };
}

/// The last send right to an end port went: that end closes unless a process still has a
/// descriptor for it.
pub fn end_port_unused(unix: &mut Personality, port: PortName) {
    let Some(end) = unix.pipe_ends.remove(&port) else { return };
    let object = if end.write { Object::PipeWrite(end.id) } else { Object::PipeRead(end.id) };
    if unix.uses.count(&object) == 0 {
        close_end(unix, end.id, end.write);
    }
}

/// Send the `io` answer for an outcome to a client of an end port.
fn io_answer(unix: &mut Personality, reply_to: PortName, outcome: Outcome) {
    let mut m = Message::new();
    let _ = match outcome {
        Outcome::Data(bytes) => rpc::reply::<io::Read>(&mut m, reply_to, &Ok(Bytes(&bytes)), &[]),
        Outcome::EndOfFile => rpc::reply::<io::Read>(&mut m, reply_to, &Ok(Bytes(&[])), &[]),
        Outcome::Wrote(n) => rpc::reply::<io::Write>(&mut m, reply_to, &Ok(n as u32), &[]),
        Outcome::Broken => rpc::reply::<io::Write>(&mut m, reply_to, &Err(Error::BrokenPipe), &[]),
        Outcome::Waiting => return,
    };
    let _ = unix;
}

/// A request on an end port: read on the read end, write on the write end (each may wait),
/// stat and readiness on both; anything else is refused.
pub fn serve_end(unix: &mut Personality, port: PortName, request: &LargestMessage) {
    let Some((id, write)) = unix.pipe_ends.get(&port).map(|e| (e.id, e.write)) else { return };
    let incoming = rpc::Incoming::new(request);
    let reply_to = incoming.reply_to();
    let id_of = incoming.id();
    let mut m = Message::new();
    let refuse = |m: &mut Message, e: Error| {
        request.release_carried();
        if reply_to != 0 && rpc::prepare_answer(m, reply_to, id_of, &Err::<(), _>(e)).is_ok() {
            let _ = m.send_timeout(1000);
        }
    };
    if reply_to == 0 {
        request.release_carried();
        return;
    }
    let waiter = Waiter { process: 0, reply_to, address: 0, io: true };
    match id_of {
        <io::Read as rpc::Rpc>::ID if !write => {
            let Ok(r) = incoming.decode::<io::Read>() else { return refuse(&mut m, Error::InvalidArgument) };
            if r.at.is_some() {
                return refuse(&mut m, Error::IllegalSeek);
            }
            let Some(pipe) = unix.pipes.get_mut(&id) else { return refuse(&mut m, Error::BadFile) };
            let count = r.count.min(io::MAX_TRANSFER) as usize;
            match pipe.read(count, waiter) {
                Outcome::Waiting if r.nonblocking => {
                    let _ = pipe.forget(|w| w.reply_to == reply_to);
                    refuse(&mut m, Error::WouldBlock)
                }
                outcome => io_answer(unix, reply_to, outcome),
            }
            settle(unix, id);
        }
        <io::Write as rpc::Rpc>::ID if write => {
            let Ok(r) = incoming.decode::<io::Write>() else { return refuse(&mut m, Error::InvalidArgument) };
            if r.at.is_some() {
                return refuse(&mut m, Error::IllegalSeek);
            }
            let Some(pipe) = unix.pipes.get_mut(&id) else { return refuse(&mut m, Error::BadFile) };
            let outcome = pipe.write(r.data.0.to_vec(), waiter);
            io_answer(unix, reply_to, outcome);
            settle(unix, id);
        }
        <io::GetStat as rpc::Rpc>::ID => {
            let stat = io::Stat {
                mode: io::mode::FIFO | 0o600,
                nlink: 1,
                dev: 3,
                blksize: 4096,
                ..io::Stat::default()
            };
            let _ = rpc::reply::<io::GetStat>(&mut m, reply_to, &Ok(stat), &[]);
        }
        <io::Readiness as rpc::Rpc>::ID => {
            let Ok(r) = incoming.decode::<io::Readiness>() else {
                return refuse(&mut m, Error::InvalidArgument);
            };
            let now = match unix.pipes.get(&id) {
                Some(p) if write && p.readers == 0 => io::ready::HANGUP,
                Some(p) if write && p.len() < personality_unix::pipe::CAPACITY => io::ready::WRITABLE,
                Some(p) if !write && p.writers == 0 => io::ready::HANGUP | io::ready::READABLE,
                Some(p) if !write && !p.is_empty() => io::ready::READABLE,
                _ => 0,
            };
            // Answered now, even with `wait` (a waiting readiness on a pipe end is not kept).
            let _ = rpc::reply::<io::Readiness>(
                &mut m,
                reply_to,
                &Ok(now & (r.interest | io::ready::HANGUP)),
                &[],
            );
        }
        <io::Read as rpc::Rpc>::ID | <io::Write as rpc::Rpc>::ID => refuse(&mut m, Error::BadFile),
        <io::Seek as rpc::Rpc>::ID => refuse(&mut m, Error::IllegalSeek),
        _ => refuse(&mut m, Error::NotSupported),
    }
}

//! Pipes, served by the personality itself (`pipe.rs` has their rules): pipe and pipe2 make
//! one, reads and writes on its ends go here, and a read or write that must wait keeps its
//! reply right in the pipe until a write, read or the last close of the other end answers it.
//!
//! It must never answer a waiter twice or forget one: every waiter leaves the pipe answered,
//! or with its process (whose reply rights are released).

use crate::process::Personality;
use crate::syscalls::{Answer, error};
use alloc::vec::Vec;
use libmach::ipc::PortName;
use personality_unix::fdtable::{Descriptor, Object};
use personality_unix::linux::{errno::*, open};
use personality_unix::pipe::{Outcome, Pipe};

/// Who waits on a pipe: the process, the reply right of its call, where read bytes go.
#[derive(Clone, Copy)]
pub struct Waiter {
    pub process: PortName,
    pub reply_to: PortName,
    pub address: u64,
}

pub type ServedPipe = Pipe<Waiter>;

/// pipe / pipe2: a new pipe, its read and write ends as two descriptors.
pub fn make(unix: &mut Personality, port: PortName, out: u64, flags: u64) -> Answer {
    let id = unix.next_pipe;
    unix.next_pipe = unix.next_pipe.wrapping_add(1);
    let close_on_exec = flags & open::CLOEXEC != 0;
    let Some(p) = unix.processes.get_mut(&port) else { return Answer::None };
    let read_end = p.fds.insert(
        Descriptor { object: Object::PipeRead(id), close_on_exec, cookie: 0 },
        &mut unix.uses,
        0,
    );
    let Some(read_end) = read_end else { return error(EMFILE) };
    let write_end = p.fds.insert(
        Descriptor { object: Object::PipeWrite(id), close_on_exec, cookie: 0 },
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
    let answered = pipe.settle();
    if answered.is_empty() {
        return;
    }
    for (waiter, outcome) in answered {
        unix.answer_held(waiter.reply_to, answer_of(outcome, waiter.address));
    }
}

pub fn read(unix: &mut Personality, id: u32, count: usize, waiter: Waiter) -> Answer {
    let Some(pipe) = unix.pipes.get_mut(&id) else { return error(EBADF) };
    let answer = answer_of(pipe.read(count, waiter), waiter.address);
    settle(unix, id);
    answer
}

pub fn write(unix: &mut Personality, id: u32, bytes: Vec<u8>, waiter: Waiter) -> Answer {
    let Some(pipe) = unix.pipes.get_mut(&id) else { return error(EBADF) };
    let outcome = pipe.write(bytes, waiter);
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
    let Some(pipe) = unix.pipes.get_mut(&id) else { return };
    match end {
        Object::PipeRead(_) => pipe.readers = 0,
        _ => pipe.writers = 0,
    }
    settle(unix, id);
    if let Some(pipe) = unix.pipes.get(&id)
        && pipe.readers == 0
        && pipe.writers == 0
    {
        unix.pipes.remove(&id);
    }
}

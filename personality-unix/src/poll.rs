//! poll, ppoll, select and pselect6: which descriptors are ready. Files, directories,
//! /dev/null and /dev/zero always are; a pipe end is by the personality's own pipe state; a
//! terminal is asked (`io.readiness`) of the console server.
//!
//! A poll that finds nothing ready and may wait keeps its reply right (as a read does): it is
//! looked at again after every call the personality serves (pipes change only then), when
//! the console answers a waiting readiness request for one of its terminals, and when its
//! timeout passes. It must never block the personality, and never answer a poll twice.

use crate::files::{ask, descriptor};
use crate::process::Personality;
use crate::syscalls::{Answer, error};
use alloc::vec;
use alloc::vec::Vec;
use interfaces::io;
use libmach::ipc::{Message, PortName, ReceiveRight, disposition, port_move_member};
use libmach::rpc;
use libmach::task::{vm_read, vm_write};
use mach_abi::forward::SyscallRequest;
use personality_unix::fdtable::Object;
use personality_unix::linux::{errno::*, nr};

const POLLIN: i16 = 1;
/// Urgent data: what select's except set is about (never here).
const POLLPRI: i16 = 2;
const POLLOUT: i16 = 4;
const POLLERR: i16 = 8;
const POLLHUP: i16 = 16;
const POLLNVAL: i16 = 32;
/// The most descriptors one poll or select looks at.
const MAX_FDS: u64 = 1024;

/// How the caller gave its descriptors, so the answer goes back the same way.
#[derive(Clone, Copy)]
pub enum Form {
    /// An array of `struct pollfd` at this address.
    Poll(u64),
    /// select's three fd_set bitmaps (0: not given), for descriptors below `nfds`.
    Select { read: u64, write: u64, except: u64, nfds: u64 },
}

/// A poll that waits.
pub struct PendingPoll {
    pub process: PortName,
    pub reply_to: PortName,
    pub fds: Vec<(i32, i16)>,
    pub form: Form,
    pub deadline: Option<u64>,
    /// Ports on which the console answers our waiting readiness requests for its terminals.
    pub watches: Vec<ReceiveRight>,
}

/// Serve `call` if it is poll, ppoll, select or pselect6; None otherwise.
pub fn dispatch(
    unix: &mut Personality,
    port: PortName,
    call: &SyscallRequest,
    reply_to: PortName,
) -> Option<Answer> {
    if !matches!(call.number, nr::POLL | nr::PPOLL | nr::SELECT | nr::PSELECT6) {
        return None;
    }
    let task = unix.processes.get(&port)?.task;
    let [a0, a1, a2, a3, a4, _] = call.args;
    let now = libmach::uptime_ns();
    let asked = match call.number {
        nr::POLL => read_pollfds(task, a0, a1).map(|fds| {
            let timeout = a2 as i32;
            (fds, Form::Poll(a0), (timeout >= 0).then(|| now + timeout as u64 * 1_000_000))
        }),
        nr::PPOLL => {
            read_pollfds(task, a0, a1).and_then(|fds| Ok((fds, Form::Poll(a0), timespec(task, a2)?)))
        }
        nr::SELECT => read_fdsets(task, a0, a1, a2, a3).and_then(|(fds, form)| {
            // struct timeval: seconds and microseconds.
            let deadline = if a4 == 0 {
                None
            } else {
                let mut tv = [0u8; 16];
                vm_read(task, a4, &mut tv).map_err(|_| EFAULT)?;
                let (s, us) = (word(&tv, 0), word(&tv, 8));
                Some(now + s.min(1 << 32) * 1_000_000_000 + us.min(1_000_000) * 1000)
            };
            Ok((fds, form, deadline))
        }),
        nr::PSELECT6 => {
            read_fdsets(task, a0, a1, a2, a3).and_then(|(fds, form)| Ok((fds, form, timespec(task, a4)?)))
        }
        _ => return None,
    };
    let (fds, form, deadline) = match asked {
        Ok(asked) => asked,
        Err(e) => return Some(error(e)),
    };
    let revents = ready(unix, port, &fds);
    if revents.iter().any(|&r| r != 0) || deadline.is_some_and(|d| d <= now) {
        return Some(answer(task, &fds, &revents, form));
    }
    let mut watches = Vec::new();
    for &(fd, events) in &fds {
        if events & POLLIN != 0
            && let Ok(d) = descriptor(unix, port, fd as u64)
            && let Object::Terminal(terminal) = d.object
            && let Some(watch) = watch_terminal(unix, terminal)
        {
            watches.push(watch);
        }
    }
    unix.polls.push(PendingPoll { process: port, reply_to, fds, form, deadline, watches });
    Some(Answer::Later)
}

fn word(bytes: &[u8], at: usize) -> u64 {
    bytes.get(at..at + 8).and_then(|b| b.try_into().ok()).map_or(0, u64::from_le_bytes)
}

/// A `struct timespec` timeout (NULL: none) as a deadline.
fn timespec(task: PortName, at: u64) -> Result<Option<u64>, i64> {
    if at == 0 {
        return Ok(None);
    }
    let length = crate::syscalls::read_timespec(task, at)?;
    Ok(Some(crate::syscalls::deadline(length, None)))
}

fn read_pollfds(task: PortName, at: u64, count: u64) -> Result<Vec<(i32, i16)>, i64> {
    if count > MAX_FDS {
        return Err(EINVAL);
    }
    let mut raw = vec![0u8; count as usize * 8];
    vm_read(task, at, &mut raw).map_err(|_| EFAULT)?;
    Ok(raw
        .chunks_exact(8)
        .map(|c| (i32::from_le_bytes([c[0], c[1], c[2], c[3]]), i16::from_le_bytes([c[4], c[5]])))
        .collect())
}

/// select's bitmaps as a poll list: a descriptor in the read set wants POLLIN, in the write
/// set POLLOUT, in the except set POLLPRI. Back as Linux maps them: readable on POLLIN,
/// POLLHUP or POLLERR; writable on POLLOUT or POLLERR; except on POLLPRI.
fn read_fdsets(
    task: PortName,
    nfds: u64,
    read: u64,
    write: u64,
    except: u64,
) -> Result<(Vec<(i32, i16)>, Form), i64> {
    if nfds > MAX_FDS {
        return Err(EINVAL);
    }
    let words = nfds.div_ceil(64) as usize;
    let set = |at: u64| -> Result<Vec<u64>, i64> {
        if at == 0 {
            return Ok(vec![0; words]);
        }
        let mut raw = vec![0u8; words * 8];
        vm_read(task, at, &mut raw).map_err(|_| EFAULT)?;
        Ok(raw.chunks_exact(8).map(|c| word(c, 0)).collect())
    };
    let (r, w, e) = (set(read)?, set(write)?, set(except)?);
    let has = |s: &[u64], fd: u64| s.get(fd as usize / 64).is_some_and(|x| x >> (fd % 64) & 1 != 0);
    let fds = (0..nfds)
        .filter_map(|fd| {
            let events = (if has(&r, fd) { POLLIN } else { 0 })
                | (if has(&w, fd) { POLLOUT } else { 0 })
                | (if has(&e, fd) { POLLPRI } else { 0 });
            (events != 0).then_some((fd as i32, events))
        })
        .collect();
    Ok((fds, Form::Select { read, write, except, nfds }))
}

/// What each of `fds` is ready for now.
fn ready(unix: &mut Personality, port: PortName, fds: &[(i32, i16)]) -> Vec<i16> {
    fds.iter()
        .map(|&(fd, events)| {
            if fd < 0 {
                return 0;
            }
            let Ok(d) = descriptor(unix, port, fd as u64) else { return POLLNVAL };
            match d.object {
                Object::PipeRead(id) => match unix.pipes.get(&id) {
                    Some(p) if p.writers == 0 => POLLHUP | (if p.is_empty() { 0 } else { events & POLLIN }),
                    Some(p) if !p.is_empty() => events & POLLIN,
                    _ => 0,
                },
                Object::PipeWrite(id) => match unix.pipes.get(&id) {
                    Some(p) if p.readers == 0 => POLLERR,
                    Some(p) if p.len() < personality_unix::pipe::CAPACITY => events & POLLOUT,
                    _ => 0,
                },
                Object::Terminal(terminal) => {
                    let mut revents = events & POLLOUT;
                    if events & POLLIN != 0 {
                        let request = io::ReadinessRequest { interest: io::ready::READABLE, wait: false };
                        match ask::<io::Readiness, _>(
                            terminal,
                            &request,
                            unix.reply.name(),
                            &mut unix.scratch,
                        ) {
                            Ok(now) if now & io::ready::READABLE != 0 => revents |= POLLIN,
                            Ok(now) if now & io::ready::HANGUP != 0 => revents |= POLLHUP,
                            Ok(_) => {}
                            Err(_) => revents |= POLLERR,
                        }
                    }
                    revents
                }
                _ => events & (POLLIN | POLLOUT),
            }
        })
        .collect()
}

/// Ask the console to answer on a port of ours once `terminal` has input.
fn watch_terminal(unix: &mut Personality, terminal: PortName) -> Option<ReceiveRight> {
    let watch = ReceiveRight::allocate().ok()?;
    port_move_member(watch.name(), unix.port_set()).ok()?;
    let mut m = Message::new();
    m.start(terminal, disposition::COPY_SEND, <io::Readiness as rpc::Rpc>::ID)
        .reply_to(watch.name(), disposition::MAKE_SEND_ONCE);
    let request = io::ReadinessRequest { interest: io::ready::READABLE, wait: true };
    rpc::encode(&mut m, &request).ok()?;
    m.send_timeout(1000).ok()?;
    Some(watch)
}

/// The answer: how many are ready, and the revents (or bitmaps) written back.
fn answer(task: PortName, fds: &[(i32, i16)], revents: &[i16], form: Form) -> Answer {
    let count = revents.iter().filter(|&&r| r != 0).count();
    match form {
        Form::Poll(at) => {
            let mut bytes = Vec::with_capacity(fds.len() * 8);
            for (&(fd, events), &r) in fds.iter().zip(revents) {
                bytes.extend_from_slice(&fd.to_le_bytes());
                bytes.extend_from_slice(&events.to_le_bytes());
                bytes.extend_from_slice(&r.to_le_bytes());
            }
            if bytes.is_empty() {
                return Answer::Value(0);
            }
            Answer::CopyOut { value: count as i64, to: at, bytes }
        }
        Form::Select { read, write, except, nfds } => {
            let words = nfds.div_ceil(64) as usize;
            let (mut r, mut w, mut e) = (vec![0u64; words], vec![0u64; words], vec![0u64; words]);
            let mut total = 0;
            for (&(fd, events), &rev) in fds.iter().zip(revents) {
                let (at, bit) = (fd as usize / 64, 1u64 << (fd % 64));
                if events & POLLIN != 0 && rev & (POLLIN | POLLHUP | POLLERR) != 0 {
                    r[at] |= bit;
                    total += 1;
                }
                if events & POLLOUT != 0 && rev & (POLLOUT | POLLERR) != 0 {
                    w[at] |= bit;
                    total += 1;
                }
                if events & POLLPRI != 0 && rev & POLLPRI != 0 {
                    e[at] |= bit;
                    total += 1;
                }
            }
            if fds.iter().zip(revents).any(|(_, &rev)| rev & POLLNVAL != 0) {
                return error(EBADF);
            }
            for (address, set) in [(read, &r), (write, &w), (except, &e)] {
                let bytes: Vec<u8> = set.iter().flat_map(|x| x.to_le_bytes()).collect();
                if address != 0 && vm_write(task, address, &bytes).is_err() {
                    return error(EFAULT);
                }
            }
            Answer::Value(total)
        }
    }
}

impl Personality {
    /// Look again at the waiting polls (all, or those `watch` belongs to); answer those that
    /// found something or timed out.
    pub fn recheck_polls(&mut self, watch: Option<PortName>) {
        let now = libmach::uptime_ns();
        let mut i = 0;
        while i < self.polls.len() {
            let p = &self.polls[i];
            if watch.is_some_and(|w| !p.watches.iter().any(|r| r.name() == w)) {
                i += 1;
                continue;
            }
            let (process, fds, form, timed_out) =
                (p.process, p.fds.clone(), p.form, p.deadline.is_some_and(|d| d <= now));
            let revents = ready(self, process, &fds);
            if revents.iter().any(|&r| r != 0) || timed_out {
                let done = self.polls.remove(i);
                let task = self.processes.get(&process).map(|p| p.task);
                if let Some(task) = task {
                    self.answer_held(done.reply_to, answer(task, &fds, &revents, form));
                }
            } else {
                i += 1;
            }
        }
    }
}

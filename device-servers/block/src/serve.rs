//! The block server's message loop: the `blk` protocol (interfaces::blk) on the device port,
//! Statistics and Crash on the control port, both in one port set and told apart by the port
//! a request arrived on.
//!
//! Every request is checked before the device sees it: an id the port does not serve answers
//! `NotSupported`, data that does not decode `InvalidArgument`, a transfer of no sectors, of
//! more than `MAX_TRANSFER`, of bytes that are not whole sectors, or past the end of the disk
//! `InvalidArgument`; a failed device request `Io`. The rights and out-of-line memory a
//! request carried are released whatever happens to it.
//!
//! This module must never panic on a message, never reply twice or with a right it does not
//! hold, and never block on a client (replies go through send-once rights, which no queue
//! limit holds back; a reply through a plain send right does not wait).

use crate::disk::Disk;
use interfaces::blk::{
    Crash, Data, DriverStatistics, Flush, Geometry, INLINE_LIMIT, Info, MAX_TRANSFER, Read, ReadRequest,
    SECTOR_SIZE, Statistics, Write, WriteRequest,
};
use interfaces::{Bytes, Error};
use libmach::ipc::{
    LargestMessage, Message, PORT_DEAD, PortName, ReceiveRight, disposition, port_deallocate, received,
};
use libmach::rpc::{self, REPLY_BIT, Rpc};
use serde::Serialize;

/// Room for the largest message the kernel delivers, so a receive never fails `TooLarge`
/// (which would leave a hostile message at the head of the queue for ever).
type Request = LargestMessage;

const MAX_SECTORS: u32 = (MAX_TRANSFER / SECTOR_SIZE) as u32;

pub struct Server {
    disk: Disk,
    device: ReceiveRight,
    control: ReceiveRight,
    set: PortName,
    stats: DriverStatistics,
}

/// Where a reply goes: the right and how to use it.
#[derive(Clone, Copy)]
struct ReplyTo {
    name: PortName,
    how: u8,
}

impl Server {
    pub fn new(disk: Disk, device: ReceiveRight, control: ReceiveRight, set: PortName) -> Server {
        Server { disk, device, control, set, stats: DriverStatistics::default() }
    }

    /// Serve for ever (the task ends on a stuck device, or by Crash).
    pub fn run(&mut self) -> ! {
        let mut request = alloc::boxed::Box::new(Request::new());
        let mut answer = alloc::boxed::Box::new(Message::new());
        let mut failures = 0u32;
        loop {
            if let Err(e) = request.receive(self.set) {
                // Nothing a client sends makes this fail; say so once in a while, never spin.
                failures += 1;
                if failures.is_power_of_two() {
                    libmach::println!("receive failed: {e:?} ({failures} times)");
                }
                libmach::ipc::sleep_ms(10);
                continue;
            }
            self.handle(&request, &mut answer);
            if self.disk.stuck {
                libmach::println!("the device did not complete a request; ending for a restart");
                libmach::task_exit(4);
            }
        }
    }

    fn handle(&mut self, m: &Request, answer: &mut Message) {
        let reply_to = match m.header.remote_disposition {
            _ if m.header.remote == 0 || m.header.remote == PORT_DEAD => None,
            received::SEND_ONCE => Some(ReplyTo { name: m.header.remote, how: disposition::MOVE_SEND_ONCE }),
            received::SEND => Some(ReplyTo { name: m.header.remote, how: disposition::MOVE_SEND }),
            _ => None,
        };
        let on_device = m.header.local == self.device.name();
        let on_control = m.header.local == self.control.name();
        let id = m.header.id;

        if on_control && id == Crash::ID {
            crash();
        }
        let handled = match (on_device, on_control, id) {
            (true, _, Info::ID) => {
                let geometry = Geometry { sectors: self.disk.sectors(), read_only: self.disk.read_only() };
                self.reply::<Info>(answer, reply_to, &Ok(geometry))
            }
            (true, _, Read::ID) => self.read(m, answer, reply_to),
            (true, _, Write::ID) => {
                let result = self.write(m);
                self.count(&result, |s| &mut s.writes);
                self.reply::<Write>(answer, reply_to, &result)
            }
            (true, _, Flush::ID) => {
                let result = self.disk.flush();
                self.count(&result, |s| &mut s.flushes);
                self.reply::<Flush>(answer, reply_to, &result)
            }
            (_, true, Statistics::ID) => {
                let stats = DriverStatistics { interrupts: self.disk.interrupts, ..self.stats };
                self.reply::<Statistics>(answer, reply_to, &Ok(stats))
            }
            _ => {
                // Unknown here (or a reply, or a notification): "not supported", if it can be said.
                let result: Result<(), Error> = Err(Error::NotSupported);
                send_reply(answer, reply_to, id & !REPLY_BIT, &result, None)
            }
        };
        // Whatever the request carried (no request of the protocol keeps a right), its
        // out-of-line data included, once it was used.
        m.release_carried();
        if !handled && let Some(r) = reply_to {
            // The reply could not be sent: the right is still ours.
            let _ = port_deallocate(r.name);
        }
    }

    fn count(&mut self, result: &Result<(), Error>, counter: fn(&mut DriverStatistics) -> &mut u64) {
        match result {
            Ok(()) => *counter(&mut self.stats) += 1,
            Err(Error::Io) => self.stats.errors += 1,
            Err(_) => {}
        }
    }

    fn reply<R: Rpc>(&self, answer: &mut Message, to: Option<ReplyTo>, value: &R::Reply<'_>) -> bool {
        send_reply(answer, to, R::ID, value, None)
    }

    /// Read: the data inline up to `INLINE_LIMIT`, else out of line straight from the DMA
    /// buffer (the kernel copies it when the reply is sent).
    fn read(&mut self, m: &Request, answer: &mut Message, to: Option<ReplyTo>) -> bool {
        let result = postcard::from_bytes::<ReadRequest>(m.data())
            .map_err(|_| Error::InvalidArgument)
            .and_then(|r| self.check_range(r.sector, r.count).map(|()| r))
            .and_then(|r| self.disk.read(r.sector, r.count).map(|()| r.count as usize * SECTOR_SIZE));
        let result = result.map(|len| len as u32);
        let unit = result.map(|_| ());
        self.count(&unit, |s| &mut s.reads);
        match result {
            Ok(len) if len as usize <= INLINE_LIMIT => {
                let value: Result<Data, Error> = Ok(Data::Inline(Bytes(self.disk.buffer(len as usize))));
                send_reply(answer, to, Read::ID, &value, None)
            }
            Ok(len) => {
                let value: Result<Data, Error> = Ok(Data::OutOfLine(len));
                send_reply(answer, to, Read::ID, &value, Some((self.disk.buffer_address(), len)))
            }
            Err(e) => send_reply(answer, to, Read::ID, &Err::<Data, Error>(e), None),
        }
    }

    /// Write: whole sectors, inline or out of line, copied into the DMA buffer first.
    fn write(&mut self, m: &Request) -> Result<(), Error> {
        let request = postcard::from_bytes::<WriteRequest>(m.data()).map_err(|_| Error::InvalidArgument)?;
        let len = match request.data {
            Data::Inline(bytes) => bytes.len(),
            Data::OutOfLine(n) => n as usize,
        };
        if len == 0 || len > MAX_TRANSFER || !len.is_multiple_of(SECTOR_SIZE) {
            return Err(Error::InvalidArgument);
        }
        self.check_range(request.sector, (len / SECTOR_SIZE) as u32)?;
        match request.data {
            Data::Inline(bytes) => copy_words(self.disk.buffer_mut(len), bytes.0),
            Data::OutOfLine(_) => {
                let region = m.ool(0).filter(|r| r.address != 0 && r.size as usize >= len);
                let Some(region) = region else { return Err(Error::InvalidArgument) };
                // SAFETY: the kernel mapped `region.size` (>= len) bytes of the message's
                // out-of-line copy at `region.address` in this task; it stays mapped until
                // `release_carried` after this request.
                let source = unsafe { core::slice::from_raw_parts(region.address as *const u8, len) };
                copy_words(self.disk.buffer_mut(len), source);
            }
        }
        self.disk.write(request.sector, len)
    }

    /// `count` sectors from `sector`: at least one, at most `MAX_TRANSFER`, inside the disk.
    fn check_range(&self, sector: u64, count: u32) -> Result<(), Error> {
        let end = sector.checked_add(count as u64).ok_or(Error::InvalidArgument)?;
        if count == 0 || count > MAX_SECTORS || end > self.disk.sectors() {
            return Err(Error::InvalidArgument);
        }
        Ok(())
    }
}

/// Send `value` as the reply with id `id | REPLY_BIT`, with `ool` (address, size) as
/// out-of-line region 0. False when there was nowhere to send it, or the kernel refused.
fn send_reply<T: Serialize>(
    answer: &mut Message,
    to: Option<ReplyTo>,
    id: u32,
    value: &T,
    ool: Option<(u64, u32)>,
) -> bool {
    let Some(to) = to else { return false };
    answer.start(to.name, to.how, id | REPLY_BIT);
    if let Some((address, size)) = ool {
        answer.push_ool(address, size, 0);
    }
    if rpc::encode(answer, value).is_err() {
        return false;
    }
    // A send-once reply never waits for queue room; a plain send right must not block us.
    let sent = match to.how {
        disposition::MOVE_SEND_ONCE => answer.send(),
        _ => answer.send_timeout(0),
    };
    match sent {
        Ok(()) => true,
        // Refused (the client's port died, ...): the right is still ours, or already
        // destroyed; the caller gives it back either way.
        Err(_) => false,
    }
}

/// Copy `from` into `to` (same length). `copy_from_slice` is compiler_builtins' memcpy, which
/// on this target copies with `rep movsq` (under `-icount` each iteration is an instruction, so
/// eight bytes cost one).
fn copy_words(to: &mut [u8], from: &[u8]) {
    let n = to.len().min(from.len());
    if let (Some(to), Some(from)) = (to.get_mut(..n), from.get(..n)) {
        to.copy_from_slice(from);
    }
}

/// Crash on purpose, as a buggy driver would: a write to page 0.
fn crash() -> ! {
    libmach::println!("crashing on request (fault injection)");
    // SAFETY: deliberately invalid: page 0 is never mapped, so this faults and the kernel ends
    // the task (no exception port). Nothing after it runs.
    unsafe { core::ptr::write_volatile(core::ptr::without_provenance_mut::<u64>(8), 0xdead) };
    libmach::task_exit(5)
}

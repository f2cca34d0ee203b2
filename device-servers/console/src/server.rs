//! The console server's ports and requests: one terminal (COM1 and its line discipline)
//! reached through many terminal ports, one per client.
//!
//! Every port the server receives on is in one port set:
//! - the **service port**, registered as "console": `console.OpenTerminal` answers with a send
//!   right (MAKE_SEND) to a new terminal port for that client;
//! - the **terminal ports**: `io` and the `console` terminal requests. The server knows which
//!   client asks by the port a request arrives on (`header.local`). Each carries a
//!   no-senders request, so the port is destroyed (and its waiting reads dropped) when its
//!   last client goes;
//! - the **interrupt port**: IRQ 4 as messages; each drains the UART's receive FIFO through
//!   the line discipline, then acknowledges the line;
//! - the **notification port**: the kernel's no-senders notifications (nobody else holds a
//!   right to it).
//!
//! Reads that cannot be answered yet keep their reply right and are answered, in the order
//! they came, when a line (or a byte in raw mode) arrives; so are `Readiness` requests with
//! `wait`. A write is written whole before the next request is taken (the server has one
//! thread and writes synchronously), so two clients' writes never interleave. Events (^C,
//! ^\, ^Z, window changes) go one way to the owner's event port with a short send timeout.
//!
//! This module must never block on a client (replies go to send-once rights, which never wait
//! for queue space; events wait at most [`EVENT_TIMEOUT_MS`]), never trust a request (a
//! malformed one is `InvalidArgument`, an unknown one `NotSupported`, and the rights of every
//! request it does not keep are released), and never panic.

use crate::uart::{COM1_IRQ, Uart, Writer};
use alloc::boxed::Box;
use alloc::collections::VecDeque;
use alloc::vec::Vec;
use console::line::{ReadResult, Terminal};
use interfaces::console::{self as con, ConsoleStatistics, Event};
use interfaces::io::{self, MAX_TRANSFER, Stat, ready};
use interfaces::{Bytes, Error, io::mode};
use libmach::KernelError;
use libmach::ipc::*;
use libmach::rpc::{self, REPLY_BIT, Rpc, RpcError};
use mach_abi::{IRQ_MESSAGE, notify};

/// Room for any message the kernel delivers, so no request can be too large to take off its
/// queue.
pub type Request = LargestMessage;

/// How long an event may wait for room in the owner's queue before it is dropped.
pub const EVENT_TIMEOUT_MS: u64 = 10;
/// Most reads (and, separately, readiness waits) kept waiting at once.
const MAX_WAITING: usize = 256;
/// Most terminal ports at once.
const MAX_TERMINALS: usize = 1024;
/// Most bytes taken from the UART per interrupt (a UART that always says "data ready", or a
/// paste faster than the drain, cannot keep the server in one interrupt for ever).
const MAX_DRAIN: usize = 4096;

/// Stat of the terminal: dev 2 is the console server (see `interfaces::io::Stat`), rdev 4:64
/// as Linux's ttyS0 (encoded as Linux's `st_rdev`), owner root, group tty (5), mode 0620.
const DEV: u64 = 2;
const RDEV: u64 = (4 << 8) | 64;
const TTY_GROUP: u32 = 5;

/// A read waiting for input.
struct WaitingRead {
    terminal: PortName,
    reply: PortName,
    count: u32,
}

/// A `Readiness` request with `wait`, waiting for one of `interest` to hold.
struct WaitingReady {
    terminal: PortName,
    reply: PortName,
    interest: u8,
}

pub struct Ports {
    pub set: PortName,
    pub service: PortName,
    pub irq: PortName,
    pub notify: PortName,
}

pub struct Server {
    host: PortName,
    me: PortName,
    uart: Uart,
    line: Box<Terminal>,
    ports: Ports,
    terminals: Vec<PortName>,
    reads: VecDeque<WaitingRead>,
    readies: Vec<WaitingReady>,
    /// The owner's event port (a send right), if one was set.
    events: Option<PortName>,
    sent: u64,
    interrupts: u64,
    started_s: u64,
    input_s: u64,
    output_s: u64,
    answer: Box<Message>,
    data: Box<[u8; MAX_TRANSFER as usize]>,
}

/// Release a right received in a message (a receive right is destroyed).
fn release(name: PortName, kind: u8) {
    if name == PORT_NULL || name == PORT_DEAD {
        return;
    }
    if kind == received::RECEIVE {
        let _ = port_destroy(name);
    } else {
        let _ = port_deallocate(name);
    }
}

/// Answer operation `R` through the send-once right `reply` (none: nothing to do). A reply
/// that cannot be sent releases the right: a dead client costs the server nothing.
fn send_reply<R: Rpc>(
    answer: &mut Message,
    reply: PortName,
    value: &R::Reply<'_>,
    rights: &[(PortName, u8)],
) -> bool {
    if reply == PORT_NULL {
        return false;
    }
    if rpc::reply::<R>(answer, reply, value, rights).is_ok() {
        return true;
    }
    let _ = port_deallocate(reply);
    false
}

/// Answer any request with `Err(error)`: every reply of these protocols is a
/// `Result<_, Error>`, and postcard encodes an `Err` the same whatever the `Ok` type is.
fn send_error(answer: &mut Message, reply: PortName, id: u32, error: Error) {
    if reply == PORT_NULL {
        return;
    }
    answer.start(reply, disposition::MOVE_SEND_ONCE, id | REPLY_BIT);
    let value: Result<(), Error> = Err(error);
    if rpc::encode(answer, &value).is_err() || answer.send().is_err() {
        let _ = port_deallocate(reply);
    }
}

/// Decode a request as operation `R` (from a buffer of any size).
fn decode<R: Rpc>(request: &Request) -> Option<R::Request<'_>> {
    postcard::from_bytes(request.data()).ok()
}

/// Is the send-once right `reply` still worth answering (its port alive)?
fn alive(reply: PortName) -> bool {
    port_type(reply).is_ok_and(|t| t & right_type::DEAD_NAME == 0)
}

fn now_s() -> u64 {
    libmach::realtime_ns() / 1_000_000_000
}

impl Server {
    pub fn new(host: PortName, me: PortName, uart: Uart, ports: Ports) -> Server {
        let now = now_s();
        Server {
            host,
            me,
            uart,
            line: Box::new(Terminal::new()),
            ports,
            terminals: Vec::new(),
            reads: VecDeque::new(),
            readies: Vec::new(),
            events: None,
            sent: 0,
            interrupts: 0,
            started_s: now,
            input_s: now,
            output_s: now,
            answer: Box::new(Message::new()),
            data: Box::new([0; MAX_TRANSFER as usize]),
        }
    }

    /// Serve for ever (returns only if the port set stops working).
    pub fn run(&mut self) -> u64 {
        let mut request = Box::new(Request::new());
        // Bytes typed before the interrupt was enabled.
        self.drain_uart();
        let mut failures = 0;
        loop {
            match request.receive(self.ports.set) {
                Ok(()) => {
                    failures = 0;
                    self.handle(&request);
                }
                Err(e) => {
                    failures += 1;
                    if failures == 1 || failures >= 100 {
                        libmach::println!("receive failed: {e:?}");
                    }
                    if failures >= 100 {
                        return 1;
                    }
                }
            }
        }
    }

    /// One message from any of the server's ports.
    pub fn handle(&mut self, request: &Request) {
        self.drop_out_of_line(request);
        let header = request.header;
        // Only a send-once right is a reply right; any other right there is released.
        let reply = match (header.remote, header.remote_disposition) {
            (PORT_NULL, _) => PORT_NULL,
            (r, received::SEND_ONCE) => r,
            (r, kind) => {
                release(r, kind);
                PORT_NULL
            }
        };
        let local = header.local;
        if local == self.ports.irq || local == self.ports.notify {
            request.release_carried();
            release(reply, received::SEND_ONCE);
            if local == self.ports.irq && header.id == IRQ_MESSAGE {
                self.interrupt();
            } else if local == self.ports.notify && header.id == notify::NO_SENDERS_MESSAGE {
                let name = request.data().try_into().map(u32::from_le_bytes).unwrap_or(PORT_NULL);
                self.close(name);
            }
        } else if local == self.ports.service {
            request.release_carried();
            if header.id == con::OpenTerminal::ID {
                self.open_terminal(reply);
            } else {
                send_error(&mut self.answer, reply, header.id, Error::NotSupported);
            }
        } else if self.terminals.contains(&local) {
            self.serve_terminal(local, request, reply);
        } else {
            request.release_carried();
            send_error(&mut self.answer, reply, header.id, Error::NotSupported);
        }
    }

    /// Out-of-line memory no request of these protocols carries: give it back at once.
    fn drop_out_of_line(&mut self, request: &Request) {
        for i in 0..request.header.ool_count as usize {
            if let Some(region) = request.ool(i) {
                let size = (region.size as u64).next_multiple_of(4096);
                if region.address != 0 && size != 0 {
                    let _ = libmach::task::vm_deallocate(self.me, region.address, size);
                }
            }
        }
    }

    // ---- the service port ----

    fn open_terminal(&mut self, reply: PortName) {
        if reply == PORT_NULL {
            return; // nobody would get the port
        }
        let port = match self.new_terminal() {
            Ok(port) => port,
            Err(e) => return send_error(&mut self.answer, reply, con::OpenTerminal::ID, e),
        };
        let rights = [(port, disposition::MAKE_SEND)];
        if !send_reply::<con::OpenTerminal>(&mut self.answer, reply, &Ok(()), &rights) {
            // No send right reached anyone, so no no-senders notification will come.
            self.close(port);
        }
    }

    fn new_terminal(&mut self) -> Result<PortName, Error> {
        if self.terminals.len() >= MAX_TERMINALS {
            return Err(Error::NoMemory);
        }
        let port = port_allocate().map_err(|_| Error::NoMemory)?;
        let armed = port_move_member(port, self.ports.set).and_then(|()| {
            port_request_notification(
                port,
                notify::NO_SENDERS,
                self.ports.notify,
                disposition::MAKE_SEND_ONCE,
            )
        });
        if armed.is_err() {
            let _ = port_destroy(port);
            return Err(Error::NoMemory);
        }
        self.terminals.push(port);
        Ok(port)
    }

    /// The last client of terminal port `name` went: drop its waiting requests and the port.
    fn close(&mut self, name: PortName) {
        let Some(i) = self.terminals.iter().position(|&t| t == name) else { return };
        self.terminals.swap_remove(i);
        self.reads.retain(|r| {
            let keep = r.terminal != name;
            if !keep {
                let _ = port_deallocate(r.reply);
            }
            keep
        });
        self.readies.retain(|r| {
            let keep = r.terminal != name;
            if !keep {
                let _ = port_deallocate(r.reply);
            }
            keep
        });
        let _ = port_destroy(name);
    }

    // ---- terminal ports ----

    fn serve_terminal(&mut self, terminal: PortName, request: &Request, reply: PortName) {
        let id = request.header.id;
        if id == con::SetEventPort::ID {
            return self.set_event_port(request, reply);
        }
        request.release_carried();
        match id {
            io::Read::ID => match decode::<io::Read>(request) {
                Some(r) => self.read(terminal, reply, r),
                None => send_error(&mut self.answer, reply, id, Error::InvalidArgument),
            },
            io::Write::ID => match decode::<io::Write>(request) {
                // pwrite on a terminal: ESPIPE, as on Linux.
                Some(w) if w.at.is_some() => send_error(&mut self.answer, reply, id, Error::IllegalSeek),
                Some(w) => {
                    self.write(w.data.0);
                    send_reply::<io::Write>(&mut self.answer, reply, &Ok(w.data.len() as u32), &[]);
                }
                None => send_error(&mut self.answer, reply, id, Error::InvalidArgument),
            },
            io::Seek::ID => send_error(&mut self.answer, reply, id, Error::IllegalSeek),
            io::GetStat::ID => {
                let stat = self.stat();
                send_reply::<io::GetStat>(&mut self.answer, reply, &Ok(stat), &[]);
            }
            io::Readiness::ID => match decode::<io::Readiness>(request) {
                Some(r) => self.readiness(terminal, reply, r),
                None => send_error(&mut self.answer, reply, id, Error::InvalidArgument),
            },
            // ftruncate of a character device: EINVAL, as on Linux.
            io::Truncate::ID => send_error(&mut self.answer, reply, id, Error::InvalidArgument),
            // Writes are on the line before they are answered: nothing is left to sync.
            io::Sync::ID => {
                send_reply::<io::Sync>(&mut self.answer, reply, &Ok(()), &[]);
            }
            con::GetTermios::ID => {
                let termios = self.line.termios();
                send_reply::<con::GetTermios>(&mut self.answer, reply, &Ok(termios), &[]);
            }
            con::SetTermios::ID => match decode::<con::SetTermios>(request) {
                Some(s) => {
                    let effects = self.line.set_termios(s.termios, s.when);
                    send_reply::<con::SetTermios>(&mut self.answer, reply, &Ok(()), &[]);
                    if effects.wake {
                        self.wake();
                    }
                }
                None => send_error(&mut self.answer, reply, id, Error::InvalidArgument),
            },
            con::GetWindowSize::ID => {
                let window = self.line.window_size();
                send_reply::<con::GetWindowSize>(&mut self.answer, reply, &Ok(window), &[]);
            }
            con::SetWindowSize::ID => match decode::<con::SetWindowSize>(request) {
                Some(window) => {
                    let event = self.line.set_window_size(window);
                    send_reply::<con::SetWindowSize>(&mut self.answer, reply, &Ok(()), &[]);
                    if let Some(event) = event {
                        self.send_event(event);
                    }
                }
                None => send_error(&mut self.answer, reply, id, Error::InvalidArgument),
            },
            con::Pending::ID => {
                let pending = self.line.pending();
                send_reply::<con::Pending>(&mut self.answer, reply, &Ok(pending), &[]);
            }
            con::Statistics::ID => {
                let stats = ConsoleStatistics {
                    received: self.line.received(),
                    sent: self.sent,
                    overflowed: self.line.overflowed(),
                    interrupts: self.interrupts,
                };
                send_reply::<con::Statistics>(&mut self.answer, reply, &Ok(stats), &[]);
            }
            _ => send_error(&mut self.answer, reply, id, Error::NotSupported),
        }
    }

    fn read(&mut self, terminal: PortName, reply: PortName, request: io::ReadRequest) {
        if request.at.is_some() {
            // pread on a terminal: ESPIPE, as on Linux.
            return send_error(&mut self.answer, reply, io::Read::ID, Error::IllegalSeek);
        }
        if reply == PORT_NULL {
            return; // nobody to give the bytes to: leave them for the next reader
        }
        let count = request.count.min(MAX_TRANSFER);
        if count == 0 {
            send_reply::<io::Read>(&mut self.answer, reply, &Ok(Bytes(&[])), &[]);
            return;
        }
        // Earlier readers come first: data is theirs until they are answered.
        if self.reads.is_empty() && self.answer_read(reply, count) {
            return;
        }
        if request.nonblocking {
            return send_error(&mut self.answer, reply, io::Read::ID, Error::WouldBlock);
        }
        if self.reads.len() >= MAX_WAITING {
            self.reads.retain(|r| {
                let keep = alive(r.reply);
                if !keep {
                    let _ = port_deallocate(r.reply);
                }
                keep
            });
            if self.reads.len() >= MAX_WAITING {
                return send_error(&mut self.answer, reply, io::Read::ID, Error::Busy);
            }
        }
        self.reads.push_back(WaitingRead { terminal, reply, count });
    }

    /// Answer a read of up to `count` bytes if there is something to read; false if not.
    fn answer_read(&mut self, reply: PortName, count: u32) -> bool {
        let out = self.data.get_mut(..count as usize).unwrap_or(&mut []);
        let n = match self.line.read(out) {
            ReadResult::Data(n) => n,
            ReadResult::EndOfFile => 0,
            ReadResult::Empty => return false,
        };
        let bytes = self.data.get(..n).unwrap_or(&[]);
        send_reply::<io::Read>(&mut self.answer, reply, &Ok(Bytes(bytes)), &[]);
        true
    }

    /// Output processing, then the UART: all of `data` before anything else is served.
    fn write(&mut self, data: &[u8]) {
        let mut writer = Writer::new(&mut self.uart);
        self.line.write_output(data, &mut |b| writer.put(b));
        self.sent += writer.finish();
        self.output_s = now_s();
    }

    fn ready(&self) -> u8 {
        let readable = if self.line.readable() { ready::READABLE } else { 0 };
        readable | ready::WRITABLE
    }

    fn readiness(&mut self, terminal: PortName, reply: PortName, request: io::ReadinessRequest) {
        let now = self.ready() & request.interest;
        if now != 0 || !request.wait {
            send_reply::<io::Readiness>(&mut self.answer, reply, &Ok(now), &[]);
            return;
        }
        if reply == PORT_NULL {
            return;
        }
        if self.readies.len() >= MAX_WAITING {
            self.readies.retain(|r| {
                let keep = alive(r.reply);
                if !keep {
                    let _ = port_deallocate(r.reply);
                }
                keep
            });
            if self.readies.len() >= MAX_WAITING {
                return send_error(&mut self.answer, reply, io::Readiness::ID, Error::Busy);
            }
        }
        self.readies.push(WaitingReady { terminal, reply, interest: request.interest });
    }

    fn stat(&self) -> Stat {
        Stat {
            dev: DEV,
            ino: 1,
            mode: mode::CHAR_DEVICE | 0o620,
            nlink: 1,
            uid: 0,
            gid: TTY_GROUP,
            rdev: RDEV,
            size: 0,
            blksize: 1024,
            blocks: 0,
            atime: self.input_s,
            mtime: self.output_s,
            ctime: self.started_s,
        }
    }

    /// Where events go: the send right in port descriptor 0, or none (no events).
    fn set_event_port(&mut self, request: &Request, reply: PortName) {
        let count = request.header.port_count as usize;
        let new = match request.port(0) {
            None => Ok(None),
            // A right to one of the server's own ports would send events to itself.
            Some(d) if d.disposition == received::SEND && d.name != PORT_DEAD && !self.is_own(d.name) => {
                Ok(Some(d.name))
            }
            Some(_) => Err(Error::InvalidArgument),
        };
        // Every right but the one kept is released.
        let keep = if let Ok(Some(_)) = new { 1 } else { 0 };
        for i in keep..count {
            if let Some(d) = request.port(i) {
                release(d.name, d.disposition);
            }
        }
        match new {
            Ok(port) => {
                if let Some(old) = core::mem::replace(&mut self.events, port) {
                    let _ = port_deallocate(old);
                }
                send_reply::<con::SetEventPort>(&mut self.answer, reply, &Ok(()), &[]);
            }
            Err(e) => send_error(&mut self.answer, reply, con::SetEventPort::ID, e),
        }
    }

    fn is_own(&self, name: PortName) -> bool {
        let p = &self.ports;
        [p.set, p.service, p.irq, p.notify].contains(&name) || self.terminals.contains(&name)
    }

    /// One event to the owner, one way, waiting at most [`EVENT_TIMEOUT_MS`]; an event port
    /// that died (or is no send right any more) is dropped.
    fn send_event(&mut self, event: Event) {
        let Some(port) = self.events else { return };
        let sent = rpc::send::<con::Notify>(
            &mut self.answer,
            port,
            disposition::COPY_SEND,
            &event,
            &[],
            EVENT_TIMEOUT_MS,
        );
        match sent {
            Ok(()) | Err(RpcError::Kernel(KernelError::TimedOut | KernelError::NoMemory)) => {}
            Err(_) => {
                let _ = port_deallocate(port);
                self.events = None;
            }
        }
    }

    // ---- input ----

    /// IRQ 4: drain the receive FIFO through the line discipline, acknowledge the line, then
    /// tell the owner and answer whoever the input lets go on.
    fn interrupt(&mut self) {
        self.interrupts += 1;
        let (wake, events) = self.take_input();
        let _ = libmach::device::irq_ack(self.host, COM1_IRQ);
        self.after_input(wake, events);
    }

    /// Bytes typed before the interrupt was enabled (none in a fresh QEMU, but a restarted
    /// server may find some).
    fn drain_uart(&mut self) {
        let (wake, events) = self.take_input();
        self.after_input(wake, events);
    }

    /// Everything in the receive FIFO through the line discipline, echo to the UART.
    fn take_input(&mut self) -> (bool, Vec<Event>) {
        let mut wake = false;
        let mut events: Vec<Event> = Vec::new();
        let mut writer = Writer::new(&mut self.uart);
        let mut taken = 0;
        while taken < MAX_DRAIN {
            let Some(byte) = writer.uart().try_read() else { break };
            taken += 1;
            let effects = self.line.input(byte, &mut |b| writer.put(b));
            wake |= effects.wake;
            events.extend(effects.event);
        }
        self.sent += writer.finish();
        if taken > 0 {
            self.input_s = now_s();
        }
        (wake, events)
    }

    fn after_input(&mut self, wake: bool, events: Vec<Event>) {
        for event in events {
            self.send_event(event);
        }
        if wake {
            self.wake();
        }
    }

    /// Input arrived (or the settings changed): answer waiting reads in order while there is
    /// something to read, then the readiness waits that now hold.
    fn wake(&mut self) {
        while let Some(first) = self.reads.front() {
            let (reply, count) = (first.reply, first.count);
            if !alive(reply) {
                // The reader gave up: its bytes stay for the next one.
                let _ = port_deallocate(reply);
                self.reads.pop_front();
                continue;
            }
            if !self.answer_read(reply, count) {
                break;
            }
            self.reads.pop_front();
        }
        let now = self.ready();
        let mut i = 0;
        while let Some(w) = self.readies.get(i) {
            if w.interest & now == 0 {
                i += 1;
                continue;
            }
            let w = self.readies.swap_remove(i);
            send_reply::<io::Readiness>(&mut self.answer, w.reply, &Ok(w.interest & now), &[]);
        }
    }
}

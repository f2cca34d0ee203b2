//! The personality's state and its one loop: processes (each known by its syscall port),
//! their descriptors, the calls that wait (wait, sleep, reads and writes in flight), and the
//! messages that come in: system calls, answers from the servers, tasks that ended, and
//! other personalities' requests on the "xv6" service port.
//!
//! It must never block on a process: a call that waits keeps its reply right and is answered
//! when what it waits for comes.

use alloc::boxed::Box;
use alloc::collections::BTreeMap;
use alloc::string::String;
use alloc::vec::Vec;
use interfaces::console;
use libmach::ipc::*;
use libmach::println;
use libmach::rpc;
use libmach::task::{task_id, task_notify_ended, task_set_special_port, task_terminate};
use mach_abi::forward::{SYSCALL_MESSAGE, SyscallReply, SyscallRequest, entry};
use mach_abi::zerocopy::{FromBytes, IntoBytes};
use mach_abi::{TASK_ENDED_MESSAGE, special_port};
use personality_xv6::abi::NOFILE;

/// How long a call to another server may take before it counts as failed.
pub const CALL_TIMEOUT_MS: u64 = 10_000;

/// What a descriptor stands for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Object {
    /// An `io` port: a file of fs-server, the console's terminal, a pipe end of the Unix
    /// personality.
    Io(PortName),
    /// A directory port of fs-server, and the readdir cookie reads go on from.
    Directory { port: PortName, cookie: u64 },
}

impl Object {
    pub fn port(&self) -> PortName {
        match *self {
            Object::Io(p) | Object::Directory { port: p, .. } => p,
        }
    }
}

pub struct Process {
    pub pid: u64,
    /// The parent's pid; 0 when nobody here waits for it (adopted, or orphaned).
    pub parent: u64,
    pub task: PortName,
    pub task_id: u64,
    /// The task's thread (xv6 processes have one).
    pub thread: PortName,
    pub name: String,
    pub fds: [Option<Object>; NOFILE],
    pub cwd: String,
    pub brk_start: u64,
    pub brk: u64,
    pub uid: u32,
    pub gid: u32,
    /// Where the exit goes when another personality handed this process over.
    pub report: Option<SendRight>,
}

/// A call that was answered later: who to answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Caller {
    /// The process's syscall port.
    pub process: PortName,
    /// The send-once right that answers the call.
    pub reply: PortName,
}

/// A read or write sent to an `io` port, waiting for its answer.
pub enum InFlight {
    Read { caller: Caller, to: u64 },
    Write { caller: Caller, write: Write },
}

/// A write in progress: `len` bytes at `from` in `task` to `port`, `done` of them taken.
#[derive(Debug, Clone, Copy)]
pub struct Write {
    pub task: PortName,
    pub port: PortName,
    pub from: u64,
    pub len: usize,
    pub done: usize,
}

/// A process of ours running as another personality's.
pub struct HandedOver {
    pub report: ReceiveRight,
    pub process: PortName,
    /// That personality's task for it (ours to end when our process is killed).
    pub task: SendRight,
}

/// What a call's handler decided.
pub enum Reply {
    Value(i64),
    /// The reply right is kept; the call is answered later.
    Later,
    /// The process is gone: nothing to answer.
    Gone,
}

pub struct Xv6 {
    /// fs-server's root directory port.
    pub fs: SendRight,
    /// The console's terminal port: descriptors 0-2 of a program started here, and what
    /// opening a device node gives.
    pub terminal: PortName,
    /// The Unix personality's service, for pipes and for handing it Linux programs.
    pub unix: Option<SendRight>,
    /// Every port this server receives on.
    pub set: PortName,
    /// Task-ended notifications of every process's task.
    pub ended: ReceiveRight,
    /// The "xv6" service port.
    pub service: ReceiveRight,
    pub processes: BTreeMap<PortName, Process>,
    next_pid: u64,
    /// Send rights held by descriptors, counted: the right goes when its last user does.
    uses: BTreeMap<PortName, usize>,
    /// Exited processes whose parent has not waited yet: (parent pid, pid).
    pub zombies: Vec<(u64, u64)>,
    /// Parents waiting in `wait`.
    pub waiting: Vec<(u64, Caller)>,
    /// Sleeping callers and when they wake (uptime in ns).
    pub sleeping: Vec<(u64, Caller)>,
    /// Reads and writes in flight, by the port their answer comes to.
    pub in_flight: BTreeMap<PortName, (ReceiveRight, InFlight)>,
    /// Processes handed to another personality, by the report port their end comes to: the
    /// report port, our process (waiting for it), and the other side's task for it.
    pub handed_over: BTreeMap<PortName, HandedOver>,
    pub reply: ReceiveRight,
    pub scratch: Box<Message>,
    /// Answer ports of reads and writes that were answered, kept for the next ones (each
    /// `io` request gets exactly one answer, so a used one is quiet).
    answer_ports: Vec<ReceiveRight>,
    /// The answer to the last call served, sent in the same trap as the next receive.
    outgoing: Box<LargestMessage>,
    outgoing_ready: bool,
}

impl Xv6 {
    /// Reach the file system and the console, and offer the "xv6" service.
    pub fn start() -> Result<Xv6, &'static str> {
        let fs = libmach::name_service::look_up("fs").map_err(|_| "no file system (\"fs\")")?;
        let console = libmach::name_service::look_up("console").map_err(|_| "no console")?;
        let reply = ReceiveRight::allocate().map_err(|_| "no ports")?;
        let mut scratch = Box::new(Message::new());
        rpc::call_timeout::<console::OpenTerminal>(
            console.name(),
            &(),
            &[],
            reply.name(),
            &mut scratch,
            CALL_TIMEOUT_MS,
        )
        .map_err(|_| "the console does not answer")?
        .map_err(|_| "the console gave no terminal")?;
        let terminal = match scratch.port(0) {
            Some(d) if d.disposition == received::SEND => d.name,
            _ => return Err("the console gave no terminal"),
        };
        let set = port_allocate_set().map_err(|_| "no ports")?;
        let ended = ReceiveRight::allocate().map_err(|_| "no ports")?;
        port_move_member(ended.name(), set).map_err(|_| "no ports")?;
        let (service, offered) = libmach::name_service::offer("xv6", set).map_err(|_| "no ports")?;
        if let Err(why) = offered {
            println!("the xv6 service is not offered ({why:?})");
        }
        let mut uses = BTreeMap::new();
        // The personality's own use of the terminal never ends.
        uses.insert(terminal, 1);
        Ok(Xv6 {
            fs,
            terminal,
            unix: None,
            set,
            ended,
            service,
            processes: BTreeMap::new(),
            next_pid: 1,
            uses,
            zombies: Vec::new(),
            waiting: Vec::new(),
            sleeping: Vec::new(),
            in_flight: BTreeMap::new(),
            handed_over: BTreeMap::new(),
            reply,
            scratch,
            answer_ports: Vec::new(),
            outgoing: Box::new(LargestMessage::new()),
            outgoing_ready: false,
        })
    }

    pub fn new_pid(&mut self) -> u64 {
        let pid = self.next_pid;
        self.next_pid += 1;
        pid
    }

    /// One more descriptor uses `port`.
    pub fn hold(&mut self, port: PortName) {
        *self.uses.entry(port).or_insert(0) += 1;
    }

    /// Whether a descriptor (or the personality itself) holds `port`.
    pub fn holds(&self, port: PortName) -> bool {
        self.uses.contains_key(&port)
    }

    /// A send right that just arrived in a message, for a descriptor: if this task held one
    /// to the same port already (the kernel gives it the same name), the extra reference goes
    /// at once, so that each name is one reference counted by `uses`.
    pub fn hold_arrived(&mut self, port: PortName) {
        if self.uses.contains_key(&port) {
            let _ = port_deallocate(port);
        }
        self.hold(port);
    }

    /// A descriptor of `port` went; the right goes with the last one.
    pub fn release(&mut self, port: PortName) {
        match self.uses.get_mut(&port) {
            Some(n) if *n > 1 => *n -= 1,
            Some(_) => {
                self.uses.remove(&port);
                let _ = port_deallocate(port);
            }
            None => {}
        }
    }

    /// The Unix personality's service, looked up once.
    pub fn unix_service(&mut self) -> Option<PortName> {
        if self.unix.is_none() {
            self.unix = libmach::name_service::look_up("unix").ok();
        }
        self.unix.as_ref().map(|s| s.name())
    }

    /// Start `path` as a new process with the terminal as descriptors 0, 1 and 2.
    pub fn spawn(&mut self, path: &str, argv: &[&str]) -> Result<u64, &'static str> {
        let args: Vec<Vec<u8>> = argv.iter().map(|a| a.as_bytes().to_vec()).collect();
        let mut fds = [None; NOFILE];
        for fd in fds.iter_mut().take(3) {
            *fd = Some(Object::Io(self.terminal));
        }
        let pid = self.new_pid();
        self.create(pid, 0, path, &args, fds, String::from("/"), None).map_err(|_| "cannot load it")?;
        println!("started {path} as process {pid}");
        Ok(pid)
    }

    /// A new process `pid` running `path` with descriptors `fds` (held for it on success;
    /// on failure they are the caller's still). Returns its syscall port. An adopted process
    /// (one with a `report` port) starts suspended: its origin resumes its task once it has
    /// done what it does first (trace it).
    #[allow(clippy::too_many_arguments)]
    pub fn create(
        &mut self,
        pid: u64,
        parent: u64,
        path: &str,
        args: &[Vec<u8>],
        fds: [Option<Object>; NOFILE],
        cwd: String,
        report: Option<SendRight>,
    ) -> Result<PortName, crate::program::ExecError> {
        let loaded = crate::program::load(self, path, args)?;
        if report.is_some() && libmach::task::task_suspend(loaded.task).is_err() {
            let _ = task_terminate(loaded.task);
            let _ = port_deallocate(loaded.task);
            return Err(crate::program::ExecError::NoMemory);
        }
        let port = port_allocate().map_err(|_| crate::program::ExecError::NoMemory)?;
        let attached = port_move_member(port, self.set).is_ok() && self.attach(loaded.task, port).is_ok();
        let thread = attached.then(|| loaded.start()).flatten();
        let Some(thread) = thread else {
            let _ = port_destroy(port);
            let _ = task_terminate(loaded.task);
            let _ = port_deallocate(loaded.task);
            return Err(crate::program::ExecError::NoMemory);
        };
        for object in fds.iter().flatten() {
            self.hold(object.port());
        }
        let name = String::from(path.rsplit('/').next().unwrap_or(path));
        let process = Process {
            pid,
            parent,
            task: loaded.task,
            task_id: task_id(loaded.task).unwrap_or(0),
            thread,
            name,
            fds,
            cwd,
            brk_start: loaded.brk,
            brk: loaded.brk,
            uid: 0,
            gid: 0,
            report,
        };
        self.processes.insert(port, process);
        Ok(port)
    }

    /// Make `port` the syscall port of `task`, and learn when the task ends.
    pub fn attach(&mut self, task: PortName, port: PortName) -> Result<(), libmach::KernelError> {
        let send = port_make_send(port)?;
        let set = task_set_special_port(task, special_port::SYSCALL, send)
            .and_then(|()| task_notify_ended(task, self.ended.name(), disposition::MAKE_SEND));
        let _ = port_deallocate(send);
        set
    }

    /// Serve for ever.
    pub fn serve(&mut self) -> u64 {
        let mut request = Box::new(LargestMessage::new());
        loop {
            self.wake_sleepers();
            let deadline = self.sleeping.iter().map(|(t, _)| *t).min();
            // The last answer goes out in the same trap as the next receive (the message
            // comes into that buffer; the two buffers then change roles).
            let answer = core::mem::take(&mut self.outgoing_ready);
            let received = self.outgoing.answer_and_receive(answer, self.set, deadline);
            if received.is_err() {
                continue;
            }
            core::mem::swap(&mut request, &mut self.outgoing);
            let local = request.header.local;
            if let Some((answer_port, flight)) = self.in_flight.remove(&local) {
                crate::files::io_answered(self, &request, flight);
                if self.answer_ports.len() < 16 {
                    self.answer_ports.push(answer_port);
                }
            } else if let Some(handed) = self.handed_over.remove(&local) {
                crate::handoff::reported(self, &request, handed);
            } else if local == self.ended.name() {
                if request.header.id == TASK_ENDED_MESSAGE
                    && let Some(id) =
                        request.data().get(..8).and_then(|b| b.try_into().ok()).map(u64::from_le_bytes)
                    && let Some(port) = self.processes.iter().find(|(_, p)| p.task_id == id).map(|(&k, _)| k)
                {
                    // A fault (or someone else) ended it: as SIGSEGV, for an origin that asks.
                    self.exited(port, 11);
                }
                request.release_carried();
            } else if local == self.service.name() {
                crate::handoff::serve_service(self, &request);
            } else if request.header.id == SYSCALL_MESSAGE && self.processes.contains_key(&local) {
                // A call the kernel forwards carries no rights or memory; a process that sends
                // one itself (to its own syscall port) gets nothing kept.
                if request.header.port_count > 0 || request.header.ool_count > 0 {
                    request.release_carried();
                }
                let reply = request.header.remote;
                let Ok((call, _)) = SyscallRequest::read_from_prefix(request.data()) else {
                    let _ = port_deallocate(reply);
                    continue;
                };
                let caller = Caller { process: local, reply };
                let answer = if call.entry == entry::INT_0X40 {
                    crate::calls::dispatch(self, caller, &call)
                } else {
                    // A Linux `syscall` from an xv6 program: not this personality's ABI.
                    Reply::Value(-1)
                };
                match answer {
                    Reply::Value(v) => self.answer(caller, v),
                    Reply::Later => {}
                    Reply::Gone => {
                        let _ = port_deallocate(reply);
                    }
                }
            } else {
                request.release_carried();
                if request.header.remote != 0 {
                    let _ = port_deallocate(request.header.remote);
                }
            }
        }
    }

    /// Answer a call with `value` (rax): built in `outgoing`, sent with the next receive (an
    /// answer already waiting there goes first, on its own).
    pub fn answer(&mut self, caller: Caller, value: i64) {
        if core::mem::take(&mut self.outgoing_ready) && self.outgoing.send_timeout(CALL_TIMEOUT_MS).is_err() {
            let _ = port_deallocate(self.outgoing.header.remote);
        }
        let reply = SyscallReply { result: value, ..SyscallReply::default() };
        self.outgoing
            .start(caller.reply, disposition::MOVE_SEND_ONCE, SYSCALL_MESSAGE | rpc::REPLY_BIT)
            .set_data(reply.as_bytes());
        self.outgoing_ready = true;
    }

    /// A port for the answer to an `io` request: a used one, or a new one in the set.
    pub fn answer_port(&mut self) -> Option<ReceiveRight> {
        if let Some(port) = self.answer_ports.pop() {
            return Some(port);
        }
        let port = ReceiveRight::allocate().ok()?;
        port_move_member(port.name(), self.set).ok()?;
        Some(port)
    }

    /// Answer the sleepers whose time has come.
    fn wake_sleepers(&mut self) {
        let now = libmach::uptime_ns();
        let (due, later): (Vec<_>, Vec<_>) = self.sleeping.drain(..).partition(|(at, _)| *at <= now);
        self.sleeping = later;
        for (_, caller) in due {
            self.answer(caller, 0);
        }
    }

    /// Process `port` ended (exit, kill, a fault) with a wait status as Linux encodes it
    /// (xv6's exit has no code: 0; killed: 9): its task and descriptors go; its parent gets
    /// it from `wait` (at once if it waits already), or its origin the status.
    pub fn exited(&mut self, port: PortName, status: u32) {
        let Some(p) = self.processes.remove(&port) else { return };
        // Running as another personality's: that task goes too.
        let elsewhere: Vec<PortName> =
            self.handed_over.iter().filter(|(_, h)| h.process == port).map(|(&k, _)| k).collect();
        for k in elsewhere {
            if let Some(h) = self.handed_over.remove(&k) {
                let _ = task_terminate(h.task.name());
            }
        }
        let _ = task_terminate(p.task);
        let _ = port_deallocate(p.task);
        let _ = port_deallocate(p.thread);
        for object in p.fds.iter().flatten() {
            self.release(object.port());
        }
        // Its waiting calls die with it.
        self.forget_calls(port);
        let _ = port_destroy(port);
        // Its children have nobody to wait for them now.
        for child in self.processes.values_mut().filter(|c| c.parent == p.pid) {
            child.parent = 0;
        }
        self.zombies.retain(|&(parent, _)| parent != p.pid);
        if let Some(report) = p.report {
            interfaces::personality::report_exit(report.name(), status);
        }
        if p.parent == 0 {
            return;
        }
        let waiter = self.waiting.iter().position(|(parent, _)| *parent == p.parent);
        match waiter {
            Some(i) => {
                let (_, caller) = self.waiting.remove(i);
                self.answer(caller, p.pid as i64);
            }
            None => self.zombies.push((p.parent, p.pid)),
        }
    }

    /// Drop the calls process `port` waits in (their reply rights go with its task).
    fn forget_calls(&mut self, port: PortName) {
        let mut gone = Vec::new();
        self.waiting.retain(|(_, c)| c.process != port || !gone_push(&mut gone, c));
        self.sleeping.retain(|(_, c)| c.process != port || !gone_push(&mut gone, c));
        let flights: Vec<PortName> = self
            .in_flight
            .iter()
            .filter(|(_, (_, f))| match f {
                InFlight::Read { caller, .. } | InFlight::Write { caller, .. } => caller.process == port,
            })
            .map(|(&k, _)| k)
            .collect();
        for k in flights {
            if let Some((_, InFlight::Read { caller, .. } | InFlight::Write { caller, .. })) =
                self.in_flight.remove(&k)
            {
                gone.push(caller);
            }
        }
        for c in gone {
            let _ = port_deallocate(c.reply);
        }
    }
}

fn gone_push(gone: &mut Vec<Caller>, c: &Caller) -> bool {
    gone.push(*c);
    true
}

/// An `io` operation's answer in `message`, decoded: `R`'s reply.
pub fn decode_answer<R: rpc::Rpc>(message: &LargestMessage) -> Option<R::Reply<'_>> {
    let incoming = rpc::Incoming::new(message);
    if incoming.id() != R::ID | rpc::REPLY_BIT {
        return None;
    }
    postcard::from_bytes(message.data()).ok()
}

/// Read `len` bytes of `task`'s memory at `address` (a bad pointer is None).
pub fn read_user(task: PortName, address: u64, len: usize) -> Option<Vec<u8>> {
    let mut out = alloc::vec![0u8; len];
    libmach::task::vm_read(task, address, &mut out).ok()?;
    Some(out)
}

/// The NUL-terminated string at `address` in `task` (at most 4,096 bytes).
pub fn read_string(task: PortName, address: u64) -> Option<String> {
    let mut out = Vec::new();
    let mut chunk = [0u8; 64];
    while out.len() < 4096 {
        let at = address.checked_add(out.len() as u64)?;
        // Up to the end of the page, so that a string ending before an unmapped page reads.
        let room = (4096 - (at % 4096)) as usize;
        let piece = &mut chunk[..room.min(64)];
        libmach::task::vm_read(task, at, piece).ok()?;
        match piece.iter().position(|&b| b == 0) {
            Some(end) => {
                out.extend_from_slice(&piece[..end]);
                return String::from_utf8(out).ok();
            }
            None => out.extend_from_slice(piece),
        }
    }
    None
}

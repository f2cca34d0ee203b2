//! Processes: a task, its syscall port, and the personality's tables for it; spawning one
//! from an executable on the file system; the serving loop.
//!
//! It must never let one process reach another's state: a request is looked up by the port
//! it arrived on, and each process has its own port.

use crate::syscalls;
use alloc::collections::{BTreeMap, BTreeSet};
use alloc::string::String;
use alloc::vec::Vec;
use interfaces::Bytes;
use interfaces::fs::{Credentials, open};
use interfaces::{console, io};
use libmach::ipc::*;
use libmach::rpc;
use libmach::task::*;
use libmach::{loader, println};
use mach_abi::forward::{SYSCALL_MESSAGE, SyscallRequest};
use mach_abi::zerocopy::FromBytes;
use mach_abi::{TASK_ENDED_MESSAGE, protection, special_port};
use personality_unix::fdtable::{Descriptor, FdTable, Object, PortUses};
use personality_unix::{linux, stack};

/// Where a process's stack ends, and its size.
const STACK_TOP: u64 = mach_abi::layout::USER_STACK_TOP;
const STACK_SIZE: u64 = 1 << 20;

pub struct Process {
    pub pid: u64,
    pub task: PortName,
    /// The program's name, for the log.
    pub name: String,
    /// The program break: where the heap started and where it ends now.
    pub brk_start: u64,
    pub brk: u64,
    pub fds: FdTable,
    /// The working directory (absolute, as fs-server takes paths).
    pub cwd: String,
}

/// A terminal read the console has not answered yet: whose, which reply right answers the
/// system call, and where the bytes go.
pub struct PendingRead {
    pub process: PortName,
    pub reply_to: PortName,
    pub address: u64,
}

pub struct Personality {
    pub fs: SendRight,
    pub terminal: SendRight,
    set: PortName,
    ended: ReceiveRight,
    /// Processes by their syscall port.
    pub processes: BTreeMap<PortName, Process>,
    next_pid: u64,
    /// Unknown call numbers already logged.
    pub logged: BTreeSet<u64>,
    pub reply: ReceiveRight,
    pub scratch: alloc::boxed::Box<Message>,
    /// The first process's exit status, once it has ended.
    exit_status: Option<u64>,
    /// How many descriptors name each server port.
    pub uses: PortUses,
    /// Terminal reads waiting for the console, by the port its answer comes to.
    pending_reads: BTreeMap<PortName, (ReceiveRight, PendingRead)>,
}

impl Personality {
    /// Reach the file system and a terminal.
    pub fn start() -> Result<Personality, &'static str> {
        let fs = libmach::name_service::look_up("fs").map_err(|_| "no file system (\"fs\")")?;
        let console = libmach::name_service::look_up("console").map_err(|_| "no console")?;
        let reply = ReceiveRight::allocate().map_err(|_| "no ports")?;
        let mut m = alloc::boxed::Box::new(Message::new());
        rpc::call_timeout::<console::OpenTerminal>(console.name(), &(), &[], reply.name(), &mut m, 10_000)
            .map_err(|_| "the console does not answer")?
            .map_err(|_| "the console gave no terminal")?;
        let terminal = match m.port(0) {
            Some(d) if d.disposition == received::SEND => SendRight::from_name(d.name),
            _ => return Err("the console gave no terminal"),
        };
        let set = port_allocate_set().map_err(|_| "no ports")?;
        let ended = ReceiveRight::allocate().map_err(|_| "no ports")?;
        port_move_member(ended.name(), set).map_err(|_| "no ports")?;
        Ok(Personality {
            fs,
            terminal,
            set,
            ended,
            processes: BTreeMap::new(),
            next_pid: 1,
            logged: BTreeSet::new(),
            reply,
            scratch: m,
            exit_status: None,
            uses: PortUses::default(),
            pending_reads: BTreeMap::new(),
        })
    }

    /// The whole file at `path` (absolute), read through the file system.
    fn read_file(&mut self, path: &str) -> Result<Vec<u8>, &'static str> {
        let request =
            interfaces::fs::OpenRequest { path, flags: open::READ, mode: 0, credentials: Credentials::ROOT };
        let fs = self.fs.name();
        let stat = rpc::call_timeout::<interfaces::fs::Open>(
            fs,
            &request,
            &[],
            self.reply.name(),
            &mut self.scratch,
            10_000,
        )
        .map_err(|_| "the file system does not answer")?
        .map_err(|_| "no such file")?;
        let file = match self.scratch.port(0) {
            Some(d) if d.disposition == received::SEND => SendRight::from_name(d.name),
            _ => return Err("no such file"),
        };
        let mut data = Vec::with_capacity(stat.size as usize);
        loop {
            let at = data.len() as u64;
            let request = io::ReadRequest { count: io::MAX_TRANSFER, at: Some(at), nonblocking: false };
            let chunk = rpc::call_timeout::<io::Read>(
                file.name(),
                &request,
                &[],
                self.reply.name(),
                &mut self.scratch,
                10_000,
            )
            .map_err(|_| "the file system does not answer")?
            .map_err(|_| "a read failed")?;
            if chunk.is_empty() {
                return Ok(data);
            }
            data.extend_from_slice(&chunk);
        }
    }

    /// Start `path` with `argv` as a new process.
    pub fn spawn(&mut self, path: &str, argv: &[&str]) -> Result<u64, &'static str> {
        let image = self.read_file(path)?;
        let task = task_create().map_err(|_| "task_create")?;
        let built = self.build(task, path, argv, &image);
        match built {
            Ok(pid) => Ok(pid),
            Err(why) => {
                let _ = task_terminate(task);
                let _ = port_deallocate(task);
                Err(why)
            }
        }
    }

    fn build(
        &mut self,
        task: PortName,
        path: &str,
        argv: &[&str],
        image: &[u8],
    ) -> Result<u64, &'static str> {
        let name = path.rsplit('/').next().unwrap_or(path);
        let _ = task_set_name(task, name);
        let loaded = loader::load_elf_image(task, image).map_err(|_| "not a loadable ELF executable")?;
        vm_allocate(task, STACK_TOP - STACK_SIZE, STACK_SIZE, protection::WRITE)
            .map_err(|_| "no memory for the stack")?;
        use linux::auxv::*;
        let auxv = [
            (AT_PHDR, loaded.program_headers),
            (AT_PHENT, loaded.program_header_size),
            (AT_PHNUM, loaded.program_header_count),
            (AT_PAGESZ, 4096),
            (AT_BASE, 0),
            (AT_ENTRY, loaded.entry),
            (AT_UID, 0),
            (AT_EUID, 0),
            (AT_GID, 0),
            (AT_EGID, 0),
            (AT_SECURE, 0),
        ];
        let argv: Vec<&[u8]> = argv.iter().map(|a| a.as_bytes()).collect();
        let envp: [&[u8]; 3] = [b"PATH=/bin", b"HOME=/", b"TERM=vt100"];
        let initial = stack::build(STACK_TOP, &argv, &envp, &auxv, random_bytes(), path.as_bytes());
        vm_write(task, STACK_TOP - initial.bytes.len() as u64, &initial.bytes).map_err(|_| "stack")?;
        // Its own syscall port: its calls come here, and the port says who calls.
        let port = port_allocate().map_err(|_| "no ports")?;
        let send = port_make_send(port).map_err(|_| "no ports")?;
        let set_up = port_move_member(port, self.set)
            .and_then(|()| task_set_special_port(task, special_port::SYSCALL, send))
            .and_then(|()| task_notify_ended(task, self.ended.name(), disposition::MAKE_SEND));
        let _ = port_deallocate(send);
        if set_up.is_err() {
            let _ = port_destroy(port);
            return Err("cannot set up the syscall port");
        }
        let pid = self.next_pid;
        self.next_pid += 1;
        let brk = loaded.end;
        // Descriptors 0, 1 and 2: the terminal (the personality's own use of it never ends).
        let mut fds = FdTable::default();
        let terminal = Object::Terminal(self.terminal.name());
        if self.uses.count(self.terminal.name()) == 0 {
            self.uses.add(&terminal);
        }
        for _ in 0..3 {
            fds.insert(Descriptor { object: terminal, close_on_exec: false, cookie: 0 }, &mut self.uses, 0);
        }
        let process =
            Process { pid, task, name: name.into(), brk_start: brk, brk, fds, cwd: String::from("/") };
        self.processes.insert(port, process);
        let thread =
            thread_create_at(task, loaded.entry, initial.stack_pointer, 0, 0).map_err(|_| "thread_create")?;
        let _ = port_deallocate(thread as PortName);
        println!("started {path} as process {pid}");
        Ok(pid)
    }

    /// Serve system calls until the first process has ended; its exit status is ours.
    pub fn serve(&mut self) -> u64 {
        let mut request = alloc::boxed::Box::new(LargestMessage::new());
        let mut answer = alloc::boxed::Box::new(Message::new());
        loop {
            if let Some(status) = self.exit_status {
                return status;
            }
            if request.receive(self.set).is_err() {
                sleep_ms(10);
                continue;
            }
            let local = request.header.local;
            if let Some((answer_port, read)) = self.pending_reads.remove(&local) {
                self.read_answered(&request, read, &mut answer);
                drop(answer_port);
                continue;
            }
            if local == self.ended.name() {
                if request.header.id == TASK_ENDED_MESSAGE {
                    self.task_ended();
                }
                request.release_carried();
                continue;
            }
            if request.header.id != SYSCALL_MESSAGE || !self.processes.contains_key(&local) {
                request.release_carried();
                continue;
            }
            let Ok((call, _)) = SyscallRequest::read_from_prefix(request.data()) else {
                request.release_carried();
                continue;
            };
            let reply_to = request.header.remote;
            syscalls::serve(self, local, &call, reply_to, &mut answer);
        }
    }

    /// A process's task ended without exit (a fault): forget the processes whose task is gone.
    fn task_ended(&mut self) {
        let gone: Vec<PortName> = self
            .processes
            .iter()
            .filter(|(_, p)| task_get_special_port(p.task, special_port::SYSCALL).is_err())
            .map(|(&port, _)| port)
            .collect();
        for port in gone {
            self.exited(port, 128 + 11);
        }
    }

    /// Wait for the console's answer to a terminal read on `answer_port`.
    pub fn wait_for_read(&mut self, answer_port: ReceiveRight, read: PendingRead) {
        if port_move_member(answer_port.name(), self.set).is_err() {
            let _ = port_deallocate(read.reply_to);
            return;
        }
        self.pending_reads.insert(answer_port.name(), (answer_port, read));
    }

    /// The console answered a terminal read: answer the system call that waited for it.
    fn read_answered(&mut self, message: &LargestMessage, read: PendingRead, answer: &mut Message) {
        use crate::syscalls::{Answer, send_answer};
        if !self.processes.contains_key(&read.process) {
            let _ = port_deallocate(read.reply_to);
            return;
        }
        let incoming = rpc::Incoming::new(message);
        let decoded = if incoming.id() == <io::Read as rpc::Rpc>::ID | rpc::REPLY_BIT {
            postcard_decode(message.data())
        } else {
            None
        };
        let result = match decoded {
            Some(Ok(bytes)) => Answer::CopyOut { value: bytes.len() as i64, to: read.address, bytes },
            Some(Err(e)) => Answer::Value(-(e.errno() as i64)),
            None => Answer::Value(-linux::errno::EIO),
        };
        send_answer(result, read.reply_to, answer);
    }

    /// Process `port` ended with `status`.
    pub fn exited(&mut self, port: PortName, status: u64) {
        let waiting: Vec<PortName> =
            self.pending_reads.iter().filter(|(_, (_, r))| r.process == port).map(|(&p, _)| p).collect();
        for answer_port in waiting {
            if let Some((right, read)) = self.pending_reads.remove(&answer_port) {
                let _ = port_deallocate(read.reply_to);
                drop(right);
            }
        }
        if let Some(p) = self.processes.get_mut(&port) {
            for d in p.fds.drain() {
                if let Some(gone) = self.uses.remove(&d.object)
                    && gone != self.terminal.name()
                {
                    let _ = port_deallocate(gone);
                }
            }
        }
        if let Some(p) = self.processes.remove(&port) {
            let _ = task_terminate(p.task);
            let _ = port_deallocate(p.task);
            let _ = port_destroy(port);
            println!("process {} ({}) exited with status {status}", p.pid, p.name);
            if p.pid == 1 {
                self.exit_status = Some(status);
            }
        }
    }
}

/// 16 bytes for AT_RANDOM: the time-stamp counter stirred (no entropy source yet).
fn random_bytes() -> [u8; 16] {
    let mut x = rdtsc() ^ libmach::realtime_ns() ^ 0x9e37_79b9_7f4a_7c15;
    core::array::from_fn(|_| {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x as u8
    })
}

pub fn rdtsc() -> u64 {
    let (lo, hi): (u32, u32);
    // SAFETY: rdtsc reads the time-stamp counter; it touches no memory.
    unsafe { core::arch::asm!("rdtsc", out("eax") lo, out("edx") hi, options(nomem, nostack)) };
    ((hi as u64) << 32) | lo as u64
}

/// An `io.read` answer's value: the bytes, or the error.
fn postcard_decode(data: &[u8]) -> Option<Result<Vec<u8>, interfaces::Error>> {
    let decoded: Result<Bytes, interfaces::Error> = postcard::from_bytes(data).ok()?;
    Some(decoded.map(|b| b.0.to_vec()))
}

//! Processes: a task, its syscall port, and the personality's tables for it; spawning one
//! from an executable on the file system; the serving loop.
//!
//! It must never let one process reach another's state: a request is looked up by the port
//! it arrived on, and each process has its own port.

use crate::syscalls::{self, Answer};
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
use mach_abi::forward::{Registers, SYSCALL_MESSAGE, SyscallRequest};
use mach_abi::zerocopy::FromBytes;
use mach_abi::{TASK_ENDED_MESSAGE, protection, special_port};
use personality_unix::fdtable::{Descriptor, FdTable, Object, Uses};
use personality_unix::ids::Ids;
use personality_unix::signal::{SignalInfo, Signals};
use personality_unix::{linux, script, stack};

/// Where a process's stack ends, and its size.
const STACK_TOP: u64 = mach_abi::layout::USER_STACK_TOP;
const STACK_SIZE: u64 = 1 << 20;

pub struct Process {
    pub pid: u64,
    /// The parent's pid (0: none, the first process).
    pub parent: u64,
    pub task: PortName,
    /// The program's name, for the log.
    pub name: String,
    /// The program break: where the heap started and where it ends now.
    pub brk_start: u64,
    pub brk: u64,
    pub fds: FdTable,
    /// The working directory (absolute, as fs-server takes paths).
    pub cwd: String,
    /// Process group and session.
    pub pgid: u64,
    pub sid: u64,
    /// Actions, mask, pending signals (signal.rs).
    pub signals: Signals,
    /// Who sent each pending signal (for the handler's siginfo).
    pub signal_info: BTreeMap<u64, SignalInfo>,
    /// Its threads; the first is the one exec or fork made.
    pub threads: Vec<Thread>,
    /// Stopped by this signal (its task is suspended).
    pub stopped: Option<u64>,
    /// A stop its parent has not been told of by wait4(WUNTRACED) yet.
    pub stop_report: Option<u64>,
    /// User and group ids (real, effective, saved); files are checked against the
    /// effective ones.
    pub ids: Ids,
    /// The file mode creation mask.
    pub umask: u32,
    /// Traced for `trace` (its children and programs are too).
    pub traced: bool,
    /// Handed to another personality at exec (its name): `task` is that personality's task
    /// for it, and its end comes as a report (handoff.rs).
    pub elsewhere: Option<String>,
    /// Adopted from another personality: where its end is reported.
    pub report: Option<SendRight>,
}

/// What fs-server checks a process's file requests against: its effective ids.
pub fn credentials(ids: &Ids) -> Credentials {
    Credentials { uid: ids.euid, gid: ids.egid }
}

/// A thread of a process: the id its forwarded calls carry, its thread id (the first
/// thread's is the pid), its thread port, and where to clear its id when it ends
/// (set_tid_address, CLONE_CHILD_CLEARTID).
#[derive(Clone, Copy)]
pub struct Thread {
    pub id: u64,
    pub tid: u64,
    pub port: PortName,
    pub clear_tid: u64,
}

impl Process {
    fn new(pid: u64, parent: u64, task: PortName, name: String, fds: FdTable, cwd: String) -> Process {
        Process {
            pid,
            parent,
            task,
            name,
            brk_start: 0,
            brk: 0,
            fds,
            cwd,
            pgid: pid,
            sid: pid,
            signals: Signals::default(),
            signal_info: BTreeMap::new(),
            threads: Vec::new(),
            stopped: None,
            stop_report: None,
            ids: Ids::default(),
            umask: 0o022,
            traced: false,
            elsewhere: None,
            report: None,
        }
    }

    /// The thread a call came from (by the id the kernel put in the request).
    pub fn thread(&self, id: u64) -> Option<&Thread> {
        self.threads.iter().find(|t| t.id == id)
    }
}

/// A system call being served, or held to be answered later: whose, from which thread,
/// its number and the registers at the call (to come back to after a signal handler, or to
/// restart it).
#[derive(Clone, Copy)]
pub struct Caller {
    pub process: PortName,
    /// The calling thread's kernel id (`SyscallRequest::thread`).
    pub thread: u64,
    pub number: u64,
    pub registers: Registers,
}

/// A nanosleep in progress: answered when the clock passes `deadline` (ns since boot).
pub struct PendingSleep {
    pub reply_to: PortName,
    pub deadline: u64,
    /// Where the time left goes if a signal interrupts it (0: nowhere), in `task`.
    pub remaining_to: u64,
    pub task: PortName,
}

/// An ended process its parent has not waited for: its wait status.
pub struct Zombie {
    pub pid: u64,
    pub parent: u64,
    pub pgid: u64,
    pub status: u64,
}

/// A wait4 or waitid that found no child to report yet: who waits (its process and pid),
/// for which children, how to answer, and the reply right that answers it.
pub struct PendingWait {
    pub pid: u64,
    pub filter: crate::procs::WaitFilter,
    pub form: crate::procs::WaitForm,
    pub options: u64,
    pub reply_to: PortName,
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
    pub uses: Uses,
    /// Pipes by number, and the next number.
    pub pipes: BTreeMap<u32, crate::pipes::ServedPipe>,
    pub next_pipe: u32,
    /// Terminal reads waiting for the console, by the port its answer comes to.
    pending_reads: BTreeMap<PortName, (ReceiveRight, PendingRead)>,
    pub zombies: Vec<Zombie>,
    pub waits: Vec<PendingWait>,
    /// The terminal's foreground process group (TIOCSPGRP): ^C signals it.
    pub foreground: u64,
    pub sleeps: Vec<PendingSleep>,
    /// The console's events (^C, ^\\, ^Z) for our terminal come here.
    events: ReceiveRight,
    /// Calls answered later, by their reply right.
    pub held: BTreeMap<PortName, Caller>,
    /// futex waits.
    pub futexes: Vec<crate::threads::FutexWait>,
    /// polls and selects that wait.
    pub polls: Vec<crate::poll::PendingPoll>,
    /// The message answers are built in.
    answer: alloc::boxed::Box<Message>,
    /// The answer to the call being served goes out with the next receive: its buffer,
    /// whether it holds one, and which call is being served.
    outgoing: alloc::boxed::Box<LargestMessage>,
    outgoing_ready: bool,
    serving: Option<PortName>,
    /// Pipe ends served as `io` ports, by port; their no-senders notices come to
    /// `pipe_notices`.
    pub pipe_ends: BTreeMap<PortName, crate::pipes::EndPort>,
    pub pipe_notices: ReceiveRight,
    /// The `unix` service port (bootstrap name "unix"): pipes for other personalities.
    service: ReceiveRight,
    /// The trace port (bootstrap's "trace"), if the policy gives it.
    pub trace: Option<SendRight>,
    /// The traced processes' tasks by id, with pid and name (kept after they end, so a trace
    /// read later still names them).
    pub traced_tasks: BTreeMap<u64, (u64, String)>,
    /// Processes handed to another personality, by the report port their end comes to.
    pub handed_over: BTreeMap<PortName, (ReceiveRight, PortName)>,
    /// Other personalities' service ports, by name, looked up when first needed.
    pub personalities: BTreeMap<String, SendRight>,
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
        // The terminal's owner: ^C, ^\\ and ^Z come to us as events.
        let events = ReceiveRight::allocate().map_err(|_| "no ports")?;
        port_move_member(events.name(), set).map_err(|_| "no ports")?;
        let registered = rpc::call_timeout::<console::SetEventPort>(
            terminal.name(),
            &(),
            &[(events.name(), disposition::MAKE_SEND)],
            reply.name(),
            &mut m,
            10_000,
        );
        if !matches!(registered, Ok(Ok(()))) {
            println!("the console took no event port: ^C will not reach programs");
        }
        let pipe_notices = ReceiveRight::allocate().map_err(|_| "no ports")?;
        port_move_member(pipe_notices.name(), set).map_err(|_| "no ports")?;
        // The `unix` service, for other personalities and servers (bootstrap's policy says
        // who may look it up).
        let (service, offered) = libmach::name_service::offer("unix", set).map_err(|_| "no ports")?;
        if let Err(why) = offered {
            println!("the unix service is not offered ({why:?})");
        }
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
            uses: Uses::default(),
            pipes: BTreeMap::new(),
            next_pipe: 1,
            pending_reads: BTreeMap::new(),
            zombies: Vec::new(),
            waits: Vec::new(),
            foreground: 1,
            sleeps: Vec::new(),
            events,
            held: BTreeMap::new(),
            futexes: Vec::new(),
            polls: Vec::new(),
            answer: alloc::boxed::Box::new(Message::new()),
            outgoing: alloc::boxed::Box::new(LargestMessage::new()),
            outgoing_ready: false,
            serving: None,
            pipe_ends: BTreeMap::new(),
            pipe_notices,
            service,
            trace: libmach::name_service::look_up("trace").ok(),
            traced_tasks: BTreeMap::new(),
            handed_over: BTreeMap::new(),
            personalities: BTreeMap::new(),
        })
    }

    /// The whole file at `path` (absolute), read through the file system, and its stat; an
    /// error is an errno.
    fn read_file(&mut self, path: &str) -> Result<(Vec<u8>, io::Stat), i64> {
        use crate::files::ask;
        let request =
            interfaces::fs::OpenRequest { path, flags: open::READ, mode: 0, credentials: Credentials::ROOT };
        let stat =
            ask::<interfaces::fs::Open, _>(self.fs.name(), &request, self.reply.name(), &mut self.scratch)?;
        let file = match self.scratch.port(0) {
            Some(d) if d.disposition == received::SEND => SendRight::from_name(d.name),
            _ => return Err(linux::errno::EIO),
        };
        let mut data = Vec::with_capacity(stat.size as usize);
        loop {
            let at = data.len() as u64;
            let request = io::ReadRequest { count: io::MAX_TRANSFER, at: Some(at), nonblocking: false };
            let chunk = ask::<io::Read, _>(file.name(), &request, self.reply.name(), &mut self.scratch)?;
            if chunk.is_empty() {
                return Ok((data, stat));
            }
            data.extend_from_slice(&chunk);
        }
    }

    /// Start `path` with `argv` as a new process (the first one: no parent).
    pub fn spawn(&mut self, path: &str, argv: &[&str]) -> Result<u64, &'static str> {
        // Descriptors 0, 1 and 2: the terminal (the personality's own use never ends).
        let mut fds = FdTable::default();
        let terminal = Object::Terminal(self.terminal.name());
        if self.uses.count(&terminal) == 0 {
            self.uses.add(&terminal);
        }
        for _ in 0..3 {
            fds.insert(
                Descriptor { object: terminal, close_on_exec: false, cookie: 0, nonblocking: false },
                &mut self.uses,
                0,
            );
        }
        let argv: Vec<String> = argv.iter().map(|a| String::from(*a)).collect();
        match self.start_process(path, &argv, fds, String::from("/"), 0, false) {
            Ok(port) => {
                let pid = self.processes.get(&port).map_or(0, |p| p.pid);
                println!("started {path} as process {pid}");
                Ok(pid)
            }
            Err(fds) => {
                for d in fds {
                    self.uses.remove(&d.object);
                }
                Err("cannot load it")
            }
        }
    }

    /// A new process running the Linux program at `path` with descriptors `fds` (counted in
    /// `uses` already), working directory `cwd` and parent `parent`: its syscall port. On an
    /// error the descriptors come back, for the caller to release. `suspended`: its task
    /// waits for someone to resume it (an adopted process's origin).
    pub fn start_process(
        &mut self,
        path: &str,
        argv: &[String],
        fds: FdTable,
        cwd: String,
        parent: u64,
        suspended: bool,
    ) -> Result<PortName, Vec<Descriptor>> {
        let mut fds = fds;
        let image = match self.read_file(path) {
            // A program of another personality is not started here (no hand-over ping-pong).
            Ok((image, _)) if libmach::loader::personality_note(&image).is_none() => image,
            _ => return Err(fds.drain()),
        };
        let Ok(task) = task_create() else { return Err(fds.drain()) };
        let envp: Vec<String> =
            ["PATH=/bin", "HOME=/", "TERM=vt100"].iter().map(|e| String::from(*e)).collect();
        let pid = self.new_pid();
        let started = (|| {
            if suspended {
                task_suspend(task).map_err(|_| "task_suspend")?;
            }
            let (entry, rsp, brk) = prepare(task, path, argv, &envp, &image)?;
            let port = port_allocate().map_err(|_| "no ports")?;
            if port_move_member(port, self.set).is_err() || self.attach(task, port).is_err() {
                let _ = port_destroy(port);
                return Err("cannot set up the syscall port");
            }
            let thread = start_thread(task, entry, rsp, pid)?;
            Ok((port, entry, brk, thread))
        })();
        match started {
            Ok((port, _, brk, thread)) => {
                let name = String::from(path.rsplit('/').next().unwrap_or(path));
                let mut process = Process::new(pid, parent, task, name, fds, cwd);
                (process.brk_start, process.brk) = (brk, brk);
                process.threads.push(thread);
                self.processes.insert(port, process);
                Ok(port)
            }
            Err(_) => {
                let _ = task_terminate(task);
                let _ = port_deallocate(task);
                Err(fds.drain())
            }
        }
    }

    pub fn new_pid(&mut self) -> u64 {
        let pid = self.next_pid;
        self.next_pid += 1;
        pid
    }

    /// Make `port` the syscall port of `task`, and learn when the task ends.
    fn attach(&mut self, task: PortName, port: PortName) -> Result<(), libmach::KernelError> {
        let send = port_make_send(port)?;
        let set = task_set_special_port(task, special_port::SYSCALL, send)
            .and_then(|()| task_notify_ended(task, self.ended.name(), disposition::MAKE_SEND));
        let _ = port_deallocate(send);
        set
    }

    /// A forked copy of process `parent_port` in `child` (a task copy): its own syscall port,
    /// a copy of the parent's descriptors, working directory and break. Returns its pid.
    pub fn adopt_copy(
        &mut self,
        parent_port: PortName,
        child: PortName,
        parent_pid: u64,
        pid: u64,
        thread: Thread,
    ) -> Option<u64> {
        let parent = self.processes.get(&parent_port)?;
        let mut process =
            Process::new(pid, parent_pid, child, parent.name.clone(), parent.fds.clone(), parent.cwd.clone());
        (process.brk_start, process.brk) = (parent.brk_start, parent.brk);
        (process.pgid, process.sid) = (parent.pgid, parent.sid);
        (process.ids, process.umask, process.traced) = (parent.ids, parent.umask, parent.traced);
        // The child inherits actions and mask; nothing is pending in it.
        process.signals = parent.signals.clone();
        process.signals.pending = 0;
        process.signals.suspended_mask = None;
        process.threads.push(thread);
        let port = port_allocate().ok()?;
        if port_move_member(port, self.set).is_err() || self.attach(child, port).is_err() {
            let _ = port_destroy(port);
            return None;
        }
        for d in process.fds.iter() {
            self.uses.add(&d.object);
        }
        let _ = task_set_name(child, &process.name);
        self.processes.insert(port, process);
        Some(pid)
    }

    /// The thread port of the thread whose kernel id is `id` in process `port`.
    pub fn caller_thread_port(&self, port: PortName, id: u64) -> Option<PortName> {
        self.processes.get(&port)?.thread(id).map(|t| t.port)
    }

    /// The port set every port the personality serves is in.
    pub fn port_set(&self) -> PortName {
        self.set
    }

    /// The credentials process `port`'s file requests carry.
    pub fn credentials(&self, port: PortName) -> Credentials {
        self.processes
            .get(&port)
            .map_or(Credentials { uid: u32::MAX, gid: u32::MAX }, |p| credentials(&p.ids))
    }

    /// `path` made absolute from process `port`'s working directory.
    pub fn absolute(&self, port: PortName, path: &str) -> String {
        if path.starts_with('/') {
            return String::from(path);
        }
        let mut full = self.processes.get(&port).map(|p| p.cwd.clone()).unwrap_or_else(|| String::from("/"));
        if !full.ends_with('/') {
            full.push('/');
        }
        full.push_str(path);
        full
    }

    /// execve: the program at `path` replaces process `port`'s, in a new task that keeps the
    /// process's syscall port (so its pid), descriptors (but close-on-exec ones) and working
    /// directory. On an error the process goes on unchanged.
    pub fn exec(&mut self, port: PortName, path: &str, argv: &[String], envp: &[String]) -> Result<(), i64> {
        let ids = self.processes.get(&port).map(|p| p.ids).ok_or(linux::errno::ESRCH)?;
        let mut load = |path: &str| -> Result<Vec<u8>, i64> {
            let (image, stat) = self.read_file(path)?;
            if !script::may_execute(stat.mode, stat.uid, stat.gid, ids.euid, ids.egid) {
                return Err(linux::errno::EACCES);
            }
            Ok(image)
        };
        let mut image = load(path)?;
        // A `#!` script runs its interpreter (one level: the interpreter must be a program).
        let script_args;
        let (path, argv) = match script::interpreter(&image) {
            None => (path, argv),
            Some(Err(())) => return Err(linux::errno::ENOEXEC),
            Some(Ok((interpreter, argument))) => {
                image = load(&interpreter)?;
                script_args = script::script_argv(&interpreter, argument.as_deref(), path, argv);
                let interpreter_path: &str = script_args.first().map_or("", |s| s.as_str());
                (interpreter_path, script_args.as_slice())
            }
        };
        if image.get(..4) != Some(b"\x7fELF") {
            return Err(linux::errno::ENOEXEC);
        }
        // A program of another personality (its ELF note names it): that personality runs it.
        if let Some(other) = libmach::loader::personality_note(&image) {
            let other = String::from_utf8_lossy(other).into_owned();
            return crate::handoff::hand_over(self, port, &other, path, argv);
        }
        let task = task_create().map_err(|_| linux::errno::ENOMEM)?;
        let prepared = prepare(task, path, argv, envp, &image).map_err(|_| linux::errno::ENOEXEC);
        let attached =
            prepared.and_then(|p| self.attach(task, port).map(|()| p).map_err(|_| linux::errno::ENOMEM));
        let (entry, rsp, brk) = match attached {
            Ok(p) => p,
            Err(e) => {
                let _ = task_terminate(task);
                let _ = port_deallocate(task);
                return Err(e);
            }
        };
        // The point of no return: the old task goes, the new one runs.
        let Some(process) = self.processes.get_mut(&port) else { return Err(linux::errno::ESRCH) };
        let old = core::mem::replace(&mut process.task, task);
        process.name = String::from(path.rsplit('/').next().unwrap_or(path));
        process.brk_start = brk;
        process.brk = brk;
        // Handlers do not survive exec; ignored signals stay ignored.
        process.signals.reset_for_exec();
        // An adopted process's origin ends and stops it through its task: tell it the new one.
        if let Some(report) = &process.report {
            interfaces::personality::report_task(report.name(), task);
        }
        let pid = process.pid;
        let old_threads = core::mem::take(&mut process.threads);
        let closing: Vec<u64> =
            process.fds.iter_numbered().filter(|(_, d)| d.close_on_exec).map(|(fd, _)| fd).collect();
        for fd in closing {
            if let Some(p) = self.processes.get_mut(&port)
                && let Ok(Some(gone)) = p.fds.close(fd, &mut self.uses)
            {
                self.released(gone);
            }
        }
        // The other threads' calls die with the old task.
        self.forget_calls(port);
        let _ = task_terminate(old);
        let _ = port_deallocate(old);
        for t in old_threads {
            let _ = port_deallocate(t.port);
        }
        // A traced process's new program is traced from its first instruction.
        crate::tracing::follow(self, port);
        match start_thread(task, entry, rsp, pid) {
            Ok(thread) => {
                if let Some(p) = self.processes.get_mut(&port) {
                    p.threads.push(thread);
                }
            }
            Err(_) => self.exited(port, 127 << 8),
        }
        Ok(())
    }

    /// Serve system calls until the first process has ended; its exit status is ours.
    /// The answer to the call just served and the wait for the next message are one trap
    /// (as fs-server does): the answer is built in `outgoing`, the next message arrives in
    /// that buffer, and the two buffers change roles.
    pub fn serve(&mut self) -> u64 {
        let mut request = alloc::boxed::Box::new(LargestMessage::new());
        loop {
            if let Some(status) = self.exit_status {
                if self.outgoing_ready {
                    let _ = self.outgoing.send_timeout(1000);
                }
                self.end_all();
                return status;
            }
            self.wake_sleepers();
            // Whatever the last message changed (a pipe, a process's end) may answer a poll.
            if !self.polls.is_empty() {
                self.recheck_polls(None);
            }
            let answer = core::mem::take(&mut self.outgoing_ready);
            let received = self.outgoing.answer_and_receive(answer, self.set, self.next_deadline());
            if received.is_err() {
                continue;
            }
            core::mem::swap(&mut request, &mut self.outgoing);
            let local = request.header.local;
            if local == self.events.name() {
                self.terminal_event(&request);
                continue;
            }
            if let Some((answer_port, read)) = self.pending_reads.remove(&local) {
                self.read_answered(&request, read);
                drop(answer_port);
                continue;
            }
            if self.polls.iter().any(|p| p.watches.iter().any(|w| w.name() == local)) {
                request.release_carried();
                self.recheck_polls(Some(local));
                continue;
            }
            if local == self.service.name() {
                self.serve_service(&request);
                continue;
            }
            if let Some((report, process)) = self.handed_over.remove(&local) {
                crate::handoff::reported(self, &request, report, process);
                continue;
            }
            if local == self.pipe_notices.name() {
                if request.header.id == mach_abi::notify::NO_SENDERS_MESSAGE
                    && let Some(port) =
                        request.data().get(..4).and_then(|b| b.try_into().ok()).map(u32::from_le_bytes)
                {
                    crate::pipes::end_port_unused(self, port);
                }
                request.release_carried();
                continue;
            }
            if self.pipe_ends.contains_key(&local) {
                crate::pipes::serve_end(self, local, &request);
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
            let caller = Caller {
                process: local,
                thread: call.thread,
                number: call.number,
                registers: call.registers,
            };
            let answer = syscalls::serve(self, local, &call, reply_to);
            self.serving = Some(reply_to);
            self.finish(caller, reply_to, answer);
            self.serving = None;
        }
    }

    /// A request on the `unix` service port.
    fn serve_service(&mut self, request: &LargestMessage) {
        let incoming = rpc::Incoming::new(request);
        let reply_to = incoming.reply_to();
        if incoming.id() == <interfaces::personality::Adopt as rpc::Rpc>::ID {
            crate::handoff::adopt(self, request);
            return;
        }
        request.release_carried();
        if reply_to == 0 {
            return;
        }
        if incoming.id() == <interfaces::unix::MakePipe as rpc::Rpc>::ID {
            crate::pipes::make_for_client(self, reply_to);
        } else {
            let mut m = Message::new();
            let refused = Err::<(), _>(interfaces::Error::NotSupported);
            if rpc::prepare_answer(&mut m, reply_to, incoming.id(), &refused).is_ok() {
                let _ = m.send_timeout(1000);
            }
        }
    }

    /// The end of serving a call: answer it now, keep its reply right to answer later, or
    /// (the process or thread is gone) release the right.
    pub fn finish(&mut self, caller: Caller, reply_to: PortName, answer: Answer) {
        match answer {
            Answer::Later => {
                self.held.insert(reply_to, caller);
            }
            Answer::None => {
                let _ = port_deallocate(reply_to);
            }
            answer => self.reply(caller, reply_to, answer),
        }
    }

    /// Answer a call that was held (a wait that ended).
    pub fn answer_held(&mut self, reply_to: PortName, answer: Answer) {
        // Not held (any more): its process is gone and the right was released with it.
        if let Some(caller) = self.held.remove(&reply_to) {
            self.finish(caller, reply_to, answer);
        }
    }

    /// Send `answer` to `caller`: with a signal handler to run first when one is due (the
    /// call's result goes into the frame it returns to).
    pub fn reply(&mut self, caller: Caller, reply_to: PortName, answer: Answer) {
        match crate::signals::deliver(self, &caller, answer) {
            // The call being served now: its answer goes with the next receive.
            Ok(answer) if self.serving == Some(reply_to) => {
                self.outgoing_ready = syscalls::build_answer(answer, reply_to, &mut self.outgoing);
            }
            Ok(answer) => syscalls::send_answer(answer, reply_to, &mut self.answer),
            Err(signal) => {
                // No frame could be written (no restorer, a bad stack): as Linux, the
                // process dies of SIGSEGV.
                let _ = port_deallocate(reply_to);
                println!("cannot deliver signal {signal}: a bad signal stack or no restorer");
                self.exited(caller.process, linux::signal::SIGSEGV);
            }
        }
    }

    /// Take the held call `reply_to` off whatever it waits on (a terminal read, a pipe, a
    /// child, a sleep, a futex): it is to be answered now, or never.
    pub fn cancel_wait(&mut self, reply_to: PortName) {
        self.pending_reads.retain(|_, (_, r)| r.reply_to != reply_to);
        self.waits.retain(|w| w.reply_to != reply_to);
        self.sleeps.retain(|z| z.reply_to != reply_to);
        self.futexes.retain(|f| f.reply_to != reply_to);
        self.polls.retain(|p| p.reply_to != reply_to);
        for pipe in self.pipes.values_mut() {
            let _ = pipe.forget(|w| w.reply_to == reply_to);
        }
    }

    /// Drop every held call of process `port` (it ended, or exec replaced its threads).
    pub fn forget_calls(&mut self, port: PortName) {
        let calls: Vec<PortName> =
            self.held.iter().filter(|(_, c)| c.process == port).map(|(&r, _)| r).collect();
        self.forget_held(&calls);
    }

    /// Drop the held calls `calls`: off their waits, their reply rights released.
    pub fn forget_held(&mut self, calls: &[PortName]) {
        for &reply_to in calls {
            self.cancel_wait(reply_to);
            self.held.remove(&reply_to);
            let _ = port_deallocate(reply_to);
        }
    }

    /// A process's task ended without exit (a fault): forget the processes whose task is gone.
    fn task_ended(&mut self) {
        let gone: Vec<PortName> = self
            .processes
            .iter()
            // A process handed to another personality ends by its report (handoff.rs).
            .filter(|(_, p)| p.elsewhere.is_none())
            .filter(|(_, p)| task_get_special_port(p.task, special_port::SYSCALL).is_err())
            .map(|(&port, _)| port)
            .collect();
        for port in gone {
            // Ended by the kernel: a fault (reported on the kernel log), as SIGSEGV.
            self.exited(port, 11);
        }
    }

    fn next_deadline(&self) -> Option<u64> {
        let sleeps = self.sleeps.iter().map(|s| s.deadline);
        let polls = self.polls.iter().filter_map(|p| p.deadline);
        sleeps.chain(self.futexes.iter().filter_map(|f| f.deadline)).chain(polls).min()
    }

    /// Answer the sleeps and futex waits whose time has come.
    fn wake_sleepers(&mut self) {
        if self.sleeps.is_empty() && self.futexes.is_empty() && self.polls.is_empty() {
            return;
        }
        let now = libmach::uptime_ns();
        let done: Vec<PortName> =
            self.sleeps.iter().filter(|z| z.deadline <= now).map(|z| z.reply_to).collect();
        self.sleeps.retain(|z| z.deadline > now);
        for reply_to in done {
            self.answer_held(reply_to, Answer::Value(0));
        }
        let timed_out: Vec<PortName> = self
            .futexes
            .iter()
            .filter(|f| f.deadline.is_some_and(|d| d <= now))
            .map(|f| f.reply_to)
            .collect();
        self.futexes.retain(|f| f.deadline.is_none_or(|d| d > now));
        for reply_to in timed_out {
            self.answer_held(reply_to, Answer::Value(-linux::errno::ETIMEDOUT));
        }
        if self.polls.iter().any(|p| p.deadline.is_some_and(|d| d <= now)) {
            self.recheck_polls(None);
        }
    }

    /// ^C, ^\\ or ^Z typed at the terminal: a signal for its foreground process group.
    fn terminal_event(&mut self, message: &LargestMessage) {
        let event = rpc::Incoming::new(message).decode::<console::Notify>();
        let signal = match event {
            Ok(console::Event::Interrupt) => linux::signal::SIGINT,
            Ok(console::Event::Quit) => linux::signal::SIGQUIT,
            Ok(console::Event::Suspend) => linux::signal::SIGTSTP,
            _ => return,
        };
        let group = self.foreground;
        let members: Vec<PortName> =
            self.processes.iter().filter(|(_, p)| p.pgid == group).map(|(&port, _)| port).collect();
        for port in members {
            self.signal(port, signal, SignalInfo { signal, code: 0x80, pid: 0, status: 0 });
        }
    }

    /// poweroff: every process ends and the personality with them; bootstrap then syncs the
    /// file system and halts (busybox's `poweroff`, `halt` and `reboot` all power off here).
    pub fn power_off(&mut self) {
        println!("power off asked: ending every process");
        self.exit_status = Some(0);
    }

    /// Wait for the console's answer to a terminal read on `answer_port`.
    /// False when it cannot wait (the call is then answered with an error).
    pub fn wait_for_read(&mut self, answer_port: ReceiveRight, read: PendingRead) -> bool {
        if port_move_member(answer_port.name(), self.set).is_err() {
            return false;
        }
        self.pending_reads.insert(answer_port.name(), (answer_port, read));
        true
    }

    /// The console answered a terminal read: answer the system call that waited for it.
    fn read_answered(&mut self, message: &LargestMessage, read: PendingRead) {
        if !self.processes.contains_key(&read.process) {
            self.forget_held(&[read.reply_to]);
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
        self.answer_held(read.reply_to, result);
    }

    /// Process `port` ended with wait status `status` (exit code << 8, or a signal number):
    /// its task and descriptors go, and it waits as a zombie for its parent (which is
    /// answered at once if it waits already). The first process's end ends the personality.
    pub fn exited(&mut self, port: PortName, status: u64) {
        self.forget_calls(port);
        let descriptors = self.processes.get_mut(&port).map(|p| p.fds.drain()).unwrap_or_default();
        for d in descriptors {
            if let Some(gone) = self.uses.remove(&d.object) {
                self.released(gone);
            }
        }
        let Some(p) = self.processes.remove(&port) else { return };
        let _ = task_terminate(p.task);
        let _ = port_deallocate(p.task);
        // Handed over: its report will not be waited for; adopted: its origin is told.
        self.handed_over.retain(|_, (_, process)| *process != port);
        if let Some(report) = &p.report {
            interfaces::personality::report_exit(report.name(), status as u32);
        }
        for t in &p.threads {
            let _ = port_deallocate(t.port);
        }
        let _ = port_destroy(port);
        let (code, signal) = (status >> 8 & 0xff, status & 0x7f);
        if signal != 0 {
            println!("process {} ({}) ended by signal {signal}", p.pid, p.name);
        } else {
            println!("process {} ({}) exited with status {code}", p.pid, p.name);
        }
        // Its children are the first process's now; its own zombies are nobody's.
        for child in self.processes.values_mut().filter(|c| c.parent == p.pid) {
            child.parent = 1;
        }
        self.zombies.retain(|z| z.parent != p.pid);
        // Adopted from another personality: its parent is there, and was told above.
        if p.report.is_some() {
            return;
        }
        if p.pid == 1 {
            self.exit_status = Some(if signal != 0 { 128 + signal } else { code });
            return;
        }
        let zombie = Zombie { pid: p.pid, parent: p.parent, pgid: p.pgid, status };
        crate::procs::child_ended(self, zombie);
    }

    /// The last descriptor of `object` (in any process) went: release its server port, or
    /// close that end of its pipe.
    pub fn released(&mut self, object: Object) {
        match object {
            Object::PipeRead(_) | Object::PipeWrite(_) => crate::pipes::end_closed(self, object),
            other => {
                if let Some(port) = other.port()
                    && port != self.terminal.name()
                {
                    let _ = port_deallocate(port);
                }
            }
        }
    }

    /// End every process (the personality is stopping).
    pub fn end_all(&mut self) {
        let ports: Vec<PortName> = self.processes.keys().copied().collect();
        for port in ports {
            self.exited(port, 9);
        }
    }
}

/// 16 bytes for AT_RANDOM.
fn random_bytes() -> [u8; 16] {
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&random(16));
    bytes
}

/// `len` bytes stirred from the time-stamp counter and the clock (no entropy source yet):
/// for AT_RANDOM and getrandom.
pub fn random(len: usize) -> Vec<u8> {
    let mut x = libmach::rdtsc() ^ libmach::realtime_ns() ^ 0x9e37_79b9_7f4a_7c15;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

/// An `io.read` answer's value: the bytes, or the error.
fn postcard_decode(data: &[u8]) -> Option<Result<Vec<u8>, interfaces::Error>> {
    let decoded: Result<Bytes, interfaces::Error> = postcard::from_bytes(data).ok()?;
    Some(decoded.map(|b| b.0.to_vec()))
}

/// Load `image` into `task` and give it its first stack (argv, envp, auxv): the entry point,
/// the stack pointer and where the break starts.
fn prepare(
    task: PortName,
    path: &str,
    argv: &[String],
    envp: &[String],
    image: &[u8],
) -> Result<(u64, u64, u64), &'static str> {
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
    let envp: Vec<&[u8]> = envp.iter().map(|e| e.as_bytes()).collect();
    let initial = stack::build(STACK_TOP, &argv, &envp, &auxv, random_bytes(), path.as_bytes());
    if initial.bytes.len() as u64 > STACK_SIZE / 2 {
        return Err("arguments too long");
    }
    vm_write(task, STACK_TOP - initial.bytes.len() as u64, &initial.bytes).map_err(|_| "stack")?;
    Ok((loaded.entry, initial.stack_pointer, loaded.end))
}

/// The task's first thread, at `entry` with stack pointer `rsp`; its thread id is `tid`.
fn start_thread(task: PortName, entry: u64, rsp: u64, tid: u64) -> Result<Thread, &'static str> {
    let port = thread_create_at(task, entry, rsp, 0, 0).map_err(|_| "thread_create")? as PortName;
    let id = thread_id(port).map_err(|_| "thread_id")?;
    Ok(Thread { id, tid, port, clear_tid: 0 })
}

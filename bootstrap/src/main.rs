//! bootstrap: the first task the kernel starts, from the first boot module.
//!
//! It starts every other boot module as a task, in limine.conf's order, loading its ELF image
//! in user space through the new task's port (`libmach::loader`), with the module's command
//! line as arguments. Each task gets a service port of its own as its bootstrap port, so
//! bootstrap knows who asks by the port a request arrives on. On those ports it serves the
//! name service (`libmach::name_service`) under the policy of `policy.rs`: who may register
//! and look up which names. A server that provides names must register the first of them
//! before the next module starts (block, then fs-server, then console and the rest).
//!
//! It watches every task through a task-ended notification on a port of that task's own.
//! A driver that dies is started again from its module and registers the same names again
//! (the reincarnation server of MINIX 3). When the last program that is not a server has
//! ended, bootstrap shuts down in order: the file system is synced, the servers are ended,
//! and bootstrap exits, so the kernel halts.
//!
//! It must never trust a request: a malformed one gets an error reply or is dropped, and a
//! right is handed out only as the policy says.
#![no_std]
#![no_main]

extern crate alloc;

mod names;
mod policy;

use alloc::string::String;
use alloc::vec::Vec;
use libmach::ipc::*;
use libmach::name_service::{End, List, LookUp, NameError, Register, Service};
use libmach::rpc::{self, Incoming, Rpc};
use libmach::task::*;
use libmach::{loader, println};
use mach_abi::{TASK_ENDED_MESSAGE, special_port};
use names::Names;

libmach::entry!(main);

/// Where module images are mapped in bootstrap while their task is built.
const MODULE_WINDOW: u64 = 0x2000_0000_0000;
/// How long a server may take to register its first name before the next module starts.
const READY_TIMEOUT_MS: u64 = 20_000;
/// How often a driver is restarted before bootstrap gives up on it.
const MAX_RESTARTS: u32 = 20;
/// How long the orderly shutdown waits for the file system's sync.
const SYNC_TIMEOUT_MS: u64 = 60_000;

/// A task bootstrap started, alive or ended.
struct Child {
    module: usize,
    /// The module's file name: the policy's key.
    program: String,
    args: String,
    /// Send right to its task port (0 once it ended).
    task: PortName,
    /// Its bootstrap port: requests arriving here come from this task.
    service: ReceiveRight,
    /// Its task-ended notification arrives here.
    ended: ReceiveRight,
    restarts: u32,
}

impl Child {
    fn policy(&self) -> Option<&'static policy::Program> {
        policy::program(&self.program)
    }
    fn is_server(&self) -> bool {
        self.policy().is_some_and(|p| p.server)
    }
    fn alive(&self) -> bool {
        self.task != 0
    }
}

struct Bootstrap {
    host: PortName,
    /// The trace port (the right to trace, without the host's other privileges).
    trace: Option<PortName>,
    set: PortName,
    children: Vec<Child>,
    names: Names,
    /// A terminal port of the console server, once it is up: where the summary goes.
    terminal: Option<SendRight>,
    /// Lines of the boot summary written before the console was up.
    summary: Vec<String>,
    shutting_down: bool,
}

fn main(args: &str) -> u64 {
    println!("hello from user mode (args \"{args}\")");
    let Ok(set) = port_allocate_set() else {
        println!("cannot allocate ports");
        return 1;
    };
    let mut boot = Bootstrap {
        host: libmach::startup_port(),
        trace: libmach::task::host_trace_port(libmach::startup_port()).ok(),
        set,
        children: Vec::new(),
        names: Names::default(),
        terminal: None,
        summary: Vec::new(),
        shutting_down: false,
    };
    let mut modules = Vec::new();
    for index in 1.. {
        let Ok(info) = host_module_info(boot.host, index) else { break };
        modules.push((index, info));
    }
    if modules.is_empty() {
        println!("no other boot modules: nothing to start");
        return 0;
    }

    // Requests arrive in a buffer for the largest message, so none is too large to take.
    let mut request = alloc::boxed::Box::new(LargestMessage::new());
    let mut answer = Message::new();
    for (index, info) in &modules {
        let path = text(&info.path, info.path_len);
        match boot.start(*index, path, text(&info.cmdline, info.cmdline_len)) {
            Ok(child) => boot.wait_until_ready(child, &mut request, &mut answer),
            Err(why) => println!("cannot start module {index} ({path}): {why}"),
        }
    }
    let running = boot.children.iter().filter(|c| c.alive()).count();
    println!("started {running} task(s); serving names");
    let line = alloc::format!("Machina: {running} task(s) started");
    boot.say(&line);

    loop {
        if !boot.children.iter().any(|c| c.alive() && !c.is_server()) {
            return boot.shut_down(&mut answer);
        }
        if request.receive(boot.set).is_err() {
            println!("receive failed; exiting");
            return 1;
        }
        boot.handle(&request, &mut answer);
    }
}

impl Bootstrap {
    /// Start module `module` as a task; returns its index in `children`.
    fn start(&mut self, module: usize, path: &str, args: &str) -> Result<usize, &'static str> {
        let program = path.rsplit('/').next().unwrap_or(path);
        let service = ReceiveRight::allocate().map_err(|_| "no ports")?;
        let ended = ReceiveRight::allocate().map_err(|_| "no ports")?;
        let service_send = service.make_send().map_err(|_| "no ports")?;
        let task = start_module(self.host, module, program, args, &service_send, &ended)?;
        let _ = port_move_member(service.name(), self.set);
        let _ = port_move_member(ended.name(), self.set);
        println!("started {path} \"{args}\"");
        self.children.push(Child {
            module,
            program: program.into(),
            args: args.into(),
            task,
            service,
            ended,
            restarts: 0,
        });
        Ok(self.children.len() - 1)
    }

    /// Serve requests until `child` registered the first name it provides (or ended, or
    /// took too long), so the next module finds it.
    fn wait_until_ready(&mut self, child: usize, request: &mut LargestMessage, answer: &mut Message) {
        let Some(first) = self.children.get(child).and_then(|c| c.policy()).and_then(|p| p.provides.first())
        else {
            return;
        };
        while self.names.find(first).is_none() && self.children.get(child).is_some_and(|c| c.alive()) {
            if request.receive_timeout(self.set, READY_TIMEOUT_MS).is_err() {
                println!("{first} not registered within {READY_TIMEOUT_MS} ms; going on");
                return;
            }
            self.handle(request, answer);
        }
        if self.names.find(first).is_some() {
            let program = self.children.get(child).map_or("?", |c| c.program.as_str());
            let line = alloc::format!("Machina: {program} is up as \"{first}\"");
            self.say(&line);
        }
    }

    fn handle(&mut self, request: &LargestMessage, answer: &mut Message) {
        let local = request.header.local;
        if let Some(i) = self.children.iter().position(|c| c.ended.name() == local) {
            if request.header.id == TASK_ENDED_MESSAGE {
                let id = request.data().try_into().map(u64::from_le_bytes).unwrap_or(0);
                self.ended(i, id);
            }
        } else if let Some(i) = self.children.iter().position(|c| c.service.name() == local) {
            let program = self.children.get(i).map(|c| c.program.clone()).unwrap_or_default();
            self.serve(i, &program, request, answer);
        } else {
            request.release_carried();
        }
    }

    /// Child `i` (kernel task `id`) ended: forget its names, restart it if it is a driver.
    fn ended(&mut self, i: usize, id: u64) {
        let Some(child) = self.children.get_mut(i) else { return };
        let _ = port_deallocate(child.task);
        child.task = 0;
        self.names.forget_owner(i);
        let running = self.children.iter().filter(|c| c.alive() && !c.is_server()).count();
        let Some(child) = self.children.get(i) else { return };
        println!("task {id} ended; {running} still running");
        let restart = child.policy().is_some_and(|p| p.restart) && !self.shutting_down;
        if !restart {
            return;
        }
        if child.restarts >= MAX_RESTARTS {
            println!("{} died {MAX_RESTARTS} times; not restarting it", child.program);
            return;
        }
        let (module, program, args, restarts) =
            (child.module, child.program.clone(), child.args.clone(), child.restarts + 1);
        let service_send = match child.service.make_send() {
            Ok(s) => s,
            Err(_) => return,
        };
        // The same ports as before: the restarted driver is the same child to the policy.
        match start_module(self.host, module, &program, &args, &service_send, &child.ended) {
            Ok(task) => {
                println!("restarted {program} (restart {restarts}): it died as task {id}");
                if let Some(child) = self.children.get_mut(i) {
                    child.task = task;
                    child.restarts = restarts;
                }
            }
            Err(why) => println!("cannot restart {program}: {why}"),
        }
    }

    fn serve(&mut self, child: usize, program: &str, request: &LargestMessage, answer: &mut Message) {
        let incoming = Incoming::new(request);
        let reply_to = incoming.reply_to();
        match incoming.id() {
            Register::ID => {
                let result = match (incoming.decode::<Register>(), incoming.port(0)) {
                    (Ok(r), Some(d)) if request.header.port_count == 1 && d.disposition == received::SEND => {
                        if !policy::may_register(program, r.name) {
                            Err(NameError::NoRight)
                        } else {
                            self.names.register(r.name, d.name, child)
                        }
                    }
                    (Ok(_), _) => Err(NameError::NoRight),
                    (Err(_), _) => Err(NameError::BadName),
                };
                if result.is_err() {
                    request.release_carried();
                }
                let _ = rpc::reply::<Register>(answer, reply_to, &result, &[]);
            }
            LookUp::ID => {
                request.release_carried();
                let found = incoming.decode::<LookUp>().map_err(|_| NameError::BadName).and_then(|r| {
                    if !policy::may_look_up(program, r.name) {
                        Err(NameError::NotFound)
                    } else if r.name == policy::HOST {
                        Ok(self.host)
                    } else if r.name == policy::TRACE {
                        self.trace.ok_or(NameError::NotFound)
                    } else {
                        self.names.find(r.name).ok_or(NameError::NotFound)
                    }
                });
                let _ = match found {
                    Ok(port) => {
                        rpc::reply::<LookUp>(answer, reply_to, &Ok(()), &[(port, disposition::COPY_SEND)])
                    }
                    Err(e) => rpc::reply::<LookUp>(answer, reply_to, &Err(e), &[]),
                };
            }
            End::ID => {
                request.release_carried();
                let result = incoming.decode::<End>().map_err(|_| NameError::BadName).and_then(|r| {
                    if !policy::may_end(program, r.name) {
                        return Err(NameError::NoRight);
                    }
                    let owner = self.names.owner(r.name).ok_or(NameError::NotFound)?;
                    let task = self.children.get(owner).map(|c| c.task).filter(|&t| t != 0);
                    let task = task.ok_or(NameError::NotFound)?;
                    println!("ending {} (task of \"{}\") as {program} asked", r.name, r.name);
                    let _ = libmach::task::task_terminate(task);
                    Ok(())
                });
                let _ = rpc::reply::<End>(answer, reply_to, &result, &[]);
            }
            List::ID => {
                request.release_carried();
                let services: Vec<Service> = self
                    .names
                    .iter()
                    .map(|(name, owner)| {
                        let child = self.children.get(owner);
                        Service {
                            name,
                            program: child.map_or("?", |c| c.program.as_str()),
                            task: child.and_then(|c| libmach::task::task_id(c.task).ok()).unwrap_or(0),
                            restarts: child.map_or(0, |c| c.restarts),
                        }
                    })
                    .collect();
                let _ = rpc::reply::<List>(answer, reply_to, &Ok(services), &[]);
            }
            _ => {
                request.release_carried();
                if reply_to != 0 {
                    let _ = port_deallocate(reply_to);
                }
            }
        }
    }

    /// A line of the boot summary: on the console once it is up (and in the kernel log).
    fn say(&mut self, line: &str) {
        println!("{line}");
        self.summary.push(line.into());
        if self.terminal.is_none() {
            self.terminal = self.names.find("console").and_then(open_terminal);
        }
        if let Some(terminal) = &self.terminal {
            for line in self.summary.drain(..) {
                let mut text = line;
                text.push('\n');
                let _ = write_terminal(terminal.name(), text.as_bytes());
            }
        }
    }

    /// The orderly shutdown: sync the file system, end the servers, exit (the kernel halts).
    fn shut_down(&mut self, answer: &mut Message) -> u64 {
        self.shutting_down = true;
        println!("all programs ended; shutting down");
        if let Some(fs) = self.names.find("fs") {
            match sync_file_system(fs, answer) {
                Ok(()) => self.say("Machina: file system synced"),
                Err(why) => println!("file system sync failed: {why}"),
            }
        }
        self.say("Machina: halting");
        self.terminal = None;
        for child in self.children.iter().filter(|c| c.alive()) {
            let _ = task_terminate(child.task);
        }
        println!("all tasks ended; exiting");
        0
    }
}

fn text(bytes: &[u8], len: u32) -> &str {
    core::str::from_utf8(bytes.get(..len as usize).unwrap_or(&[])).unwrap_or("?")
}

/// Build a task from boot module `index` and start its first thread; returns its task port.
fn start_module(
    host: PortName,
    index: usize,
    program: &str,
    args: &str,
    service: &SendRight,
    ended: &ReceiveRight,
) -> Result<PortName, &'static str> {
    let info = host_module_info(host, index).map_err(|_| "host_module_info")?;
    let me = task_self().map_err(|_| "task_self")?;
    let window = MODULE_WINDOW + index as u64 * 0x1_0000_0000;
    let mapped = host_module_map(host, index, window).map_err(|_| "host_module_map")?;
    // SAFETY: the kernel mapped the module's `info.size` bytes read-only at `window`.
    let image = unsafe { core::slice::from_raw_parts(window as *const u8, info.size as usize) };
    let result = (|| {
        let task = task_create().map_err(|_| "task_create")?;
        let _ = task_set_name(task, program);
        let built = (|| {
            let entry = loader::load_elf(task, image).map_err(|_| "not a loadable ELF executable")?;
            task_set_special_port(task, special_port::BOOTSTRAP, service.name())
                .map_err(|_| "special port")?;
            task_notify_ended(task, ended.name(), disposition::MAKE_SEND_ONCE).map_err(|_| "notify")?;
            let (rsp, args_at) = loader::make_stack(task, args).map_err(|_| "stack")?;
            let thread = thread_create_at(task, entry, rsp, args_at, args.len() as u64)
                .map_err(|_| "thread_create")?;
            let _ = port_deallocate(thread as PortName);
            Ok(())
        })();
        if let Err(why) = built {
            let _ = task_terminate(task);
            let _ = port_deallocate(task);
            return Err(why);
        }
        Ok(task)
    })();
    let _ = vm_deallocate(me, window, mapped);
    let _ = port_deallocate(me);
    result
}

/// A terminal port of the console server behind `console`.
fn open_terminal(console: PortName) -> Option<SendRight> {
    let reply = ReceiveRight::allocate().ok()?;
    let mut m = Message::new();
    let answer =
        rpc::call_timeout::<interfaces::console::OpenTerminal>(console, &(), &[], reply.name(), &mut m, 5000);
    match (answer, m.port(0)) {
        (Ok(Ok(())), Some(d)) if d.disposition == received::SEND => Some(SendRight::from_name(d.name)),
        _ => None,
    }
}

fn write_terminal(terminal: PortName, text: &[u8]) -> Result<(), rpc::RpcError> {
    let reply = ReceiveRight::allocate()?;
    let mut m = Message::new();
    let request = interfaces::io::WriteRequest { data: interfaces::Bytes(text), at: None };
    rpc::call_timeout::<interfaces::io::Write>(terminal, &request, &[], reply.name(), &mut m, 5000)
        .map(|_| ())
}

fn sync_file_system(fs: PortName, buffer: &mut Message) -> Result<(), &'static str> {
    let reply = ReceiveRight::allocate().map_err(|_| "no ports")?;
    match rpc::call_timeout::<interfaces::fs::SyncAll>(fs, &(), &[], reply.name(), buffer, SYNC_TIMEOUT_MS) {
        Ok(Ok(())) => Ok(()),
        Ok(Err(_)) => Err("the file system refused"),
        Err(_) => Err("no answer"),
    }
}

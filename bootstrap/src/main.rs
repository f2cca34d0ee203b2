//! bootstrap: the first task the kernel starts, from the first boot module.
//!
//! It starts every other boot module as a task, loading its ELF image in user space through
//! the new task's port (`libmach::loader`), with the module's command line as arguments and
//! bootstrap's name service as the task's bootstrap port. Then it serves the name service
//! (`libmach::name_service`) and watches what it started through task-ended notifications;
//! when the last one has ended it exits, and the kernel halts. (A restart policy would go
//! where an ended task is noticed: `task_ended`.)
//!
//! It must never trust a request: a malformed one gets an error reply or is dropped.
#![no_std]
#![no_main]

use libmach::ipc::*;
use libmach::name_service::{LookUp, MAX_NAME, NameError, Register};
use libmach::rpc::{self, Incoming, Rpc};
use libmach::task::*;
use libmach::{loader, println};
use mach_abi::{ModuleInfo, TASK_ENDED_MESSAGE, special_port};

libmach::entry!(main);

/// Where module images are mapped in bootstrap while their task is built.
const MODULE_WINDOW: u64 = 0x2000_0000_0000;
const MAX_NAMES: usize = 32;

struct Entry {
    name: [u8; MAX_NAME],
    len: usize,
    port: PortName,
}

struct Names {
    entries: [Option<Entry>; MAX_NAMES],
}

impl Names {
    fn find(&self, name: &str) -> Option<&Entry> {
        self.entries.iter().flatten().find(|e| e.name.get(..e.len) == Some(name.as_bytes()))
    }

    fn register(&mut self, name: &str, port: PortName) -> Result<(), NameError> {
        if name.is_empty() || name.len() > MAX_NAME {
            return Err(NameError::BadName);
        }
        if self.find(name).is_some() {
            return Err(NameError::Exists);
        }
        let slot = self.entries.iter_mut().find(|e| e.is_none()).ok_or(NameError::TableFull)?;
        let mut entry = Entry { name: [0; MAX_NAME], len: name.len(), port };
        entry.name[..name.len()].copy_from_slice(name.as_bytes());
        *slot = Some(entry);
        Ok(())
    }
}

fn main(args: &str) -> u64 {
    println!("hello from user mode (args \"{args}\")");
    let host = libmach::startup_port();
    let (Ok(service), Ok(notifications), Ok(set)) =
        (ReceiveRight::allocate(), ReceiveRight::allocate(), port_allocate_set())
    else {
        println!("cannot allocate ports");
        return 1;
    };
    let _ = port_move_member(service.name(), set);
    let _ = port_move_member(notifications.name(), set);
    let Ok(service_send) = service.make_send() else { return 1 };

    let mut running = 0u32;
    for index in 1.. {
        let Ok(info) = host_module_info(host, index) else { break };
        match start_module(host, index, &info, &service_send, &notifications) {
            Ok(()) => running += 1,
            Err(why) => println!("cannot start module {index} ({}): {why}", text(&info.path, info.path_len)),
        }
    }
    if running == 0 {
        println!("no other boot modules: nothing to start");
        return 0;
    }
    println!("started {running} task(s); serving names");

    let mut names = Names { entries: [const { None }; MAX_NAMES] };
    let mut request = Message::new();
    let mut answer = Message::new();
    loop {
        if request.receive(set).is_err() {
            println!("receive failed; exiting");
            return 1;
        }
        if request.header.local == notifications.name() && request.header.id == TASK_ENDED_MESSAGE {
            let id = request.data().try_into().map(u64::from_le_bytes).unwrap_or(0);
            running = running.saturating_sub(1);
            task_ended(id, running);
            if running == 0 {
                println!("all tasks ended; exiting");
                return 0;
            }
        } else if request.header.local == service.name() {
            serve(&mut names, &request, &mut answer);
        }
    }
}

/// A started task ended (the place for a restart policy).
fn task_ended(id: u64, running: u32) {
    println!("task {id} ended; {running} still running");
}

fn text(bytes: &[u8], len: u32) -> &str {
    core::str::from_utf8(bytes.get(..len as usize).unwrap_or(&[])).unwrap_or("?")
}

fn start_module(
    host: PortName,
    index: usize,
    info: &ModuleInfo,
    service: &SendRight,
    notifications: &ReceiveRight,
) -> Result<(), &'static str> {
    let me = task_self().map_err(|_| "task_self")?;
    let window = MODULE_WINDOW + index as u64 * 0x1_0000_0000;
    let mapped = host_module_map(host, index, window).map_err(|_| "host_module_map")?;
    // SAFETY: the kernel mapped the module's `info.size` bytes read-only at `window`.
    let image = unsafe { core::slice::from_raw_parts(window as *const u8, info.size as usize) };
    let result = (|| {
        let task = task_create().map_err(|_| "task_create")?;
        let path = text(&info.path, info.path_len);
        let _ = task_set_name(task, path.rsplit('/').next().unwrap_or(path));
        let args = text(&info.cmdline, info.cmdline_len);
        let built = (|| {
            let entry = loader::load_elf(task, image).map_err(|_| "not a loadable ELF executable")?;
            task_set_special_port(task, special_port::BOOTSTRAP, service.name())
                .map_err(|_| "special port")?;
            task_notify_ended(task, notifications.name(), disposition::MAKE_SEND_ONCE)
                .map_err(|_| "notify")?;
            let (rsp, args_at) = loader::make_stack(task, args).map_err(|_| "stack")?;
            let thread = thread_create_at(task, entry, rsp, args_at, args.len() as u64)
                .map_err(|_| "thread_create")?;
            let _ = port_deallocate(thread as PortName);
            Ok(())
        })();
        if built.is_err() {
            let _ = task_terminate(task);
        }
        let _ = port_deallocate(task);
        built?;
        println!("started {path} \"{args}\"");
        Ok(())
    })();
    let _ = vm_deallocate(me, window, mapped);
    let _ = port_deallocate(me);
    result
}

fn serve(names: &mut Names, request: &Message, answer: &mut Message) {
    let incoming = Incoming::new(request);
    let reply_to = incoming.reply_to();
    let drop_rights = || {
        for i in 0..request.header.port_count as usize {
            if let Some(d) = request.port(i) {
                let _ = port_deallocate(d.name);
            }
        }
    };
    match incoming.id() {
        Register::ID => {
            let result = match (incoming.decode::<Register>(), incoming.port(0)) {
                (Ok(r), Some(d)) if request.header.port_count == 1 && d.disposition == received::SEND => {
                    let result = names.register(r.name, d.name);
                    if result.is_err() {
                        drop_rights();
                    }
                    result
                }
                (Ok(_), _) => {
                    drop_rights();
                    Err(NameError::NoRight)
                }
                (Err(_), _) => {
                    drop_rights();
                    Err(NameError::BadName)
                }
            };
            let _ = rpc::reply::<Register>(answer, reply_to, &result, &[]);
        }
        LookUp::ID => {
            drop_rights();
            let found = incoming
                .decode::<LookUp>()
                .map_err(|_| NameError::BadName)
                .and_then(|r| names.find(r.name).map(|e| e.port).ok_or(NameError::NotFound));
            let _ = match found {
                Ok(port) => {
                    rpc::reply::<LookUp>(answer, reply_to, &Ok(()), &[(port, disposition::COPY_SEND)])
                }
                Err(e) => rpc::reply::<LookUp>(answer, reply_to, &Err(e), &[]),
            };
        }
        _ => {
            drop_rights();
            if reply_to != 0 {
                let _ = port_deallocate(reply_to);
            }
        }
    }
}

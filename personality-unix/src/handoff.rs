//! Processes crossing between personalities at exec (interfaces::personality, DESIGN.md: an
//! open file is a port, so descriptors cross as they are).
//!
//! - `hand_over`: a process here execs a program whose ELF note names another personality
//!   ("xv6"). That personality adopts it with the process's descriptors; the process stays
//!   here (its pid, its parent's wait4, its signals: `task` is now the other side's task, so
//!   ending or stopping it works as before) and ends when the report comes.
//! - `adopt`: another personality's process execs a Linux program: it runs here as a process
//!   of its own (no parent here), and its end is reported back.
//!
//! It must never lose or double a right: each carried right becomes exactly one descriptor's
//! use, and what a refused request carried is released.

use crate::process::Personality;
use alloc::string::String;
use alloc::vec::Vec;
use interfaces::personality::{Adopt, AdoptOutcome, AdoptRequest, Exited, List, NewTask};
use interfaces::{Bytes, Error};
use libmach::ipc::*;
use libmach::rpc;
use personality_unix::fdtable::{Descriptor, FdTable, Object};
use personality_unix::linux::errno::{EACCES, EIO, ENOEXEC, ENOMEM};

const CALL_TIMEOUT_MS: u64 = 10_000;

/// exec of a program for personality `other`: hand process `port` over to it.
pub fn hand_over(
    unix: &mut Personality,
    port: PortName,
    other: &str,
    path: &str,
    argv: &[String],
) -> Result<(), i64> {
    // Only a personality bootstrap lets us reach by that name (its policy).
    if !unix.personalities.contains_key(other) {
        let service = libmach::name_service::look_up(other).map_err(|_| ENOEXEC)?;
        unix.personalities.insert(String::from(other), service);
    }
    let service = unix.personalities.get(other).map(|s| s.name()).ok_or(ENOEXEC)?;
    let p = unix.processes.get(&port).ok_or(EIO)?;
    let mut args = Vec::new();
    for a in argv {
        args.extend_from_slice(a.as_bytes());
        args.push(0);
    }
    let report = ReceiveRight::allocate().map_err(|_| ENOMEM)?;
    let mut rights = alloc::vec![(report.name(), disposition::MAKE_SEND)];
    let mut numbers = Vec::new();
    let open: Vec<(u64, Object)> =
        p.fds.iter_numbered().filter(|(_, d)| !d.close_on_exec).map(|(fd, d)| (fd, d.object)).collect();
    let (cwd, ids) = (p.cwd.clone(), p.ids);
    for (fd, object) in open {
        let right = match object {
            Object::Terminal(port) | Object::File(port) | Object::Directory(port) => {
                Some((port, disposition::COPY_SEND))
            }
            Object::PipeRead(id) => {
                crate::pipes::end_port(unix, id, false).map(|p| (p, disposition::MAKE_SEND))
            }
            Object::PipeWrite(id) => {
                crate::pipes::end_port(unix, id, true).map(|p| (p, disposition::MAKE_SEND))
            }
            // /dev/null and the like have no port: the program goes without them.
            Object::Null | Object::Zero | Object::Random => None,
        };
        if let (Some(right), Ok(fd)) = (right, u8::try_from(fd)) {
            rights.push(right);
            numbers.push(fd);
        }
    }
    let request = AdoptRequest {
        path,
        args: Bytes(&args),
        cwd: &cwd,
        uid: ids.euid,
        gid: ids.egid,
        fds: Bytes(&numbers),
    };
    let mut m = alloc::boxed::Box::new(Message::new());
    let answer =
        rpc::call_timeout::<Adopt>(service, &request, &rights, unix.reply.name(), &mut m, CALL_TIMEOUT_MS);
    // (When the call failed, `m` still holds our request: its rights are not ours to release.)
    let task = match (answer, m.port(0)) {
        (Ok(Ok(_)), Some(d)) if d.disposition == received::SEND => d.name,
        (Ok(Err(Error::NoEntry)), _) => return Err(ENOEXEC),
        (Ok(Err(_)), _) => return Err(EACCES),
        (Ok(Ok(_)), _) => return Err(EIO),
        // The personality is gone (ended): forget it, a later exec looks it up again.
        (Err(_), _) => {
            unix.personalities.remove(other);
            return Err(ENOEXEC);
        }
    };
    port_move_member(report.name(), unix.port_set()).map_err(|_| EIO)?;
    // If the other personality ends without reporting (it was ended), its right to the report
    // port goes: the no-senders notification says the process died with it.
    let _ = port_request_notification(
        report.name(),
        mach_abi::notify::NO_SENDERS,
        report.name(),
        disposition::MAKE_SEND_ONCE,
    );
    // The point of no return: the old program goes; the process is the other side's task.
    // As at any exec, handlers are reset; and its descriptors are the other side's now (an
    // end of a pipe stays open while its end port has senders).
    unix.forget_calls(port);
    let Some(p) = unix.processes.get_mut(&port) else { return Err(EIO) };
    let old = core::mem::replace(&mut p.task, task);
    p.name = String::from(path.rsplit('/').next().unwrap_or(path));
    p.elsewhere = Some(String::from(other));
    p.signals.reset_for_exec();
    let descriptors = p.fds.drain();
    if let Some(report) = &p.report {
        interfaces::personality::report_task(report.name(), task);
    }
    for d in descriptors {
        if let Some(gone) = unix.uses.remove(&d.object) {
            unix.released(gone);
        }
    }
    let Some(p) = unix.processes.get_mut(&port) else { return Err(EIO) };
    let threads = core::mem::take(&mut p.threads);
    let _ = libmach::task::task_terminate(old);
    let _ = port_deallocate(old);
    for t in threads {
        let _ = port_deallocate(t.port);
    }
    unix.handed_over.insert(report.name(), (report, port));
    // A traced process's program is traced from its first instruction, then let go.
    crate::tracing::follow(unix, port);
    let _ = libmach::task::task_resume(task);
    Ok(())
}

/// `ps`'s lines for the processes other personalities run on their own (the ones handed
/// over from here are listed as ours): pid and parent are theirs, the personality column
/// says whose. Asked briefly (1 s), so that a busy personality costs `ps` little.
pub fn other_processes(unix: &mut Personality) -> String {
    use core::fmt::Write;
    let mut out = String::new();
    for name in ["xv6"] {
        if !unix.personalities.contains_key(name) {
            match libmach::name_service::look_up(name) {
                Ok(service) => {
                    unix.personalities.insert(String::from(name), service);
                }
                Err(_) => continue,
            }
        }
        let Some(service) = unix.personalities.get(name).map(|s| s.name()) else { continue };
        let mut m = alloc::boxed::Box::new(Message::new());
        let Ok(Ok(processes)) = rpc::call_timeout::<List>(service, &(), &[], unix.reply.name(), &mut m, 1000)
        else {
            continue;
        };
        // Their pids are theirs: "xv6:2", not to be taken for ours.
        let pid = |n: u64| if n == 0 { String::from("0") } else { alloc::format!("{name}:{n}") };
        for p in processes.iter().filter(|p| !p.adopted) {
            let state = char::from(p.state);
            let _ = writeln!(
                out,
                "{}\t{}\t-\t{state}\t{}\t1\t{name}\t{}",
                pid(p.pid),
                pid(p.parent),
                p.task,
                p.name
            );
        }
    }
    out
}

/// A message on a handed-over process's report port: it ended (with a wait status), or
/// it exec'd (its task is the carried one now).
pub fn reported(unix: &mut Personality, message: &LargestMessage, report: ReceiveRight, process: PortName) {
    if message.header.id == <NewTask as rpc::Rpc>::ID
        && let Some(task) = message.port(0).filter(|d| d.disposition == received::SEND)
    {
        if let Some(p) = unix.processes.get_mut(&process) {
            let old = core::mem::replace(&mut p.task, task.name);
            let _ = port_deallocate(old);
            if let Some(origin) = &p.report {
                interfaces::personality::report_task(origin.name(), task.name);
            }
            unix.handed_over.insert(report.name(), (report, process));
        } else {
            let _ = port_deallocate(task.name);
        }
        return;
    }
    drop(report);
    let status = match rpc::Incoming::new(message).decode::<Exited>() {
        Ok(report) if message.header.id == <Exited as rpc::Rpc>::ID => report.status,
        // No report will come: its personality ended, and the process with it (as by SIGKILL).
        _ if message.header.id == mach_abi::notify::NO_SENDERS_MESSAGE => 9,
        _ => 0,
    };
    message.release_carried();
    unix.exited(process, u64::from(status));
}

/// `personality.adopt` on the "unix" service: run a Linux program for another personality.
pub fn adopt(unix: &mut Personality, request: &LargestMessage) {
    let incoming = rpc::Incoming::new(request);
    let outcome = match incoming.decode::<Adopt>() {
        Ok(adopt) => adopt_process(unix, &incoming, &adopt),
        Err(_) => Err((Error::InvalidArgument, false)),
    };
    interfaces::personality::answer_adopt(request, outcome, CALL_TIMEOUT_MS);
}

/// Whether `port` is a terminal (a character device of the console), asked briefly.
fn is_terminal(unix: &mut Personality, port: PortName) -> bool {
    let mut m = alloc::boxed::Box::new(Message::new());
    let answer =
        rpc::call_timeout::<interfaces::io::GetStat>(port, &(), &[], unix.reply.name(), &mut m, 1000);
    matches!(answer, Ok(Ok(stat)) if stat.mode & 0o170000 == 0o020000)
}

/// The new process's pid and task; an error says whether the carried rights went already.
fn adopt_process(
    unix: &mut Personality,
    incoming: &rpc::Incoming<'_, { libmach::ipc::LARGEST_MESSAGE_BODY }>,
    request: &AdoptRequest,
) -> AdoptOutcome {
    let refused = (Error::InvalidArgument, false);
    let report = incoming.port(0).filter(|d| d.disposition == received::SEND).ok_or(refused)?.name;
    let mut carried = Vec::new();
    for (i, &fd) in request.fds.iter().enumerate() {
        let port = incoming.port(i + 1).filter(|d| d.disposition == received::SEND).ok_or(refused)?.name;
        carried.push((u64::from(fd), port));
    }
    if !request.path.starts_with('/') || !request.cwd.starts_with('/') {
        return Err(refused);
    }
    // Each argument ends with a NUL (an empty one too).
    let argv: Vec<String> = request.args.strip_suffix(&[0]).map_or(Vec::new(), |a| {
        a.split(|&b| b == 0).map(|a| String::from_utf8_lossy(a).into_owned()).collect()
    });
    // Each carried right becomes one descriptor's use: our terminal and our own pipe ends
    // are known by name; anything else is a file (an `io` port of some server). A name held
    // already got one more reference from the message: that one goes back.
    let mut fds = FdTable::default();
    for (fd, port) in carried {
        let object = if port == unix.terminal.name() {
            Object::Terminal(port)
        } else if let Some(end) = unix.pipe_ends.get(&port) {
            if end.write { Object::PipeWrite(end.id) } else { Object::PipeRead(end.id) }
        } else if is_terminal(unix, port) {
            // Another client's terminal of the console (the xv6 personality's): read the
            // way ours is, by an answer that may come later.
            Object::Terminal(port)
        } else {
            Object::File(port)
        };
        // Ours (our terminal, an end port) or held already: the message's extra reference
        // goes back; else this reference is the descriptor's.
        let owned_elsewhere =
            port == unix.terminal.name() || matches!(object, Object::PipeRead(_) | Object::PipeWrite(_));
        let held = unix.uses.count(&object) > 0;
        let d = Descriptor { object, close_on_exec: false, cookie: 0, nonblocking: false };
        // A number given twice, or beyond the table: the carried reference goes back.
        if fds.get(fd).is_some() || fds.place(fd, d, &mut unix.uses).is_err() {
            let _ = port_deallocate(port);
            continue;
        }
        if held || owned_elsewhere {
            let _ = port_deallocate(port);
        }
    }
    let started = unix.start_process(request.path, &argv, fds, String::from(request.cwd), 0, true);
    let port = match started {
        Ok(port) => port,
        Err(fds) => {
            // The descriptors go as a process's would; the report right with them.
            for d in fds {
                if let Some(gone) = unix.uses.remove(&d.object) {
                    unix.released(gone);
                }
            }
            let _ = port_deallocate(report);
            return Err((Error::NoEntry, true));
        }
    };
    let p = unix.processes.get_mut(&port).ok_or((Error::Io, true))?;
    p.report = Some(SendRight::from_name(report));
    p.ids = personality_unix::ids::Ids {
        uid: request.uid,
        euid: request.uid,
        suid: request.uid,
        gid: request.gid,
        egid: request.gid,
        sgid: request.gid,
    };
    Ok((p.pid, p.task))
}

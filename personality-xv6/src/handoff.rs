//! Processes crossing between personalities at exec (interfaces::personality): another
//! personality hands this one an xv6 program to run (`adopt`, on the "xv6" service port),
//! and an xv6 process that execs a program of another personality (a Linux one) is handed to
//! the Unix personality, while its xv6 process waits for the report of its end.
//!
//! It must never lose a right: what a refused request carried is released, and a process is
//! handed over only with the descriptors it has.

use crate::server::{CALL_TIMEOUT_MS, Caller, HandedOver, Object, Reply, Xv6};
use alloc::string::String;
use alloc::vec::Vec;
use interfaces::personality::{Adopt, AdoptOutcome, AdoptRequest, Exited, List, NewTask, ProcessInfo};
use interfaces::{Bytes, Error};
use libmach::ipc::*;
use libmach::rpc;
use personality_xv6::abi::NOFILE;

/// A request on the "xv6" service port.
pub fn serve_service(xv6: &mut Xv6, request: &LargestMessage) {
    let incoming = rpc::Incoming::new(request);
    let reply_to = incoming.reply_to();
    if incoming.id() == <List as rpc::Rpc>::ID {
        request.release_carried();
        list(xv6, reply_to);
        return;
    }
    let outcome = match incoming.decode::<Adopt>() {
        Ok(adopt) if incoming.id() == <Adopt as rpc::Rpc>::ID => adopt_process(xv6, &incoming, &adopt),
        _ => Err((Error::NotSupported, false)),
    };
    interfaces::personality::answer_adopt(request, outcome, CALL_TIMEOUT_MS);
}

/// `personality.list`: every process, for `ps`.
fn list(xv6: &Xv6, reply_to: PortName) {
    if reply_to == 0 {
        return;
    }
    let waiting: Vec<PortName> =
        xv6.waiting
            .iter()
            .chain(xv6.sleeping.iter())
            .map(|(_, c)| c.process)
            .chain(xv6.in_flight.values().map(|(_, f)| match f {
                crate::server::InFlight::Read { caller, .. }
                | crate::server::InFlight::Write { caller, .. } => caller.process,
            }))
            .collect();
    let processes: Vec<ProcessInfo> = xv6
        .processes
        .iter()
        .map(|(port, p)| ProcessInfo {
            pid: p.pid,
            parent: p.parent,
            task: p.task_id,
            state: if p.task_id == 0 {
                b'E'
            } else if waiting.contains(port) {
                b'S'
            } else {
                b'R'
            },
            adopted: p.report.is_some(),
            name: &p.name,
        })
        .collect();
    let mut m = Message::new();
    let _ = rpc::reply::<List>(&mut m, reply_to, &Ok(processes), &[]);
}

/// Run an adopted program: its descriptors are the carried `io` ports after the report port.
/// An error says whether the carried rights were released already.
fn adopt_process(
    xv6: &mut Xv6,
    incoming: &rpc::Incoming<'_, { libmach::ipc::LARGEST_MESSAGE_BODY }>,
    request: &AdoptRequest,
) -> AdoptOutcome {
    let refused = (Error::InvalidArgument, false);
    let report = incoming.port(0).filter(|d| d.disposition == received::SEND).ok_or(refused)?.name;
    let mut fds = [None; NOFILE];
    let mut carried = Vec::new();
    for (i, &fd) in request.fds.iter().enumerate() {
        let port = incoming.port(i + 1).filter(|d| d.disposition == received::SEND).ok_or(refused)?.name;
        match fds.get_mut(usize::from(fd)) {
            // A descriptor number xv6 has (NOFILE) and not given twice.
            Some(slot @ None) => {
                *slot = Some(Object::Io(port));
                carried.push(port);
            }
            // Beyond xv6's table, or twice: that right goes back.
            _ => {
                let _ = port_deallocate(port);
            }
        }
    }
    if !request.path.starts_with('/') || !request.cwd.starts_with('/') {
        return Err(refused);
    }
    // Each argument ends with a NUL (an empty one too).
    let args: Vec<Vec<u8>> = request
        .args
        .strip_suffix(&[0])
        .map_or(Vec::new(), |a| a.split(|&b| b == 0).map(|a| a.to_vec()).collect());
    // One reference per name from here on: a right to a port this task held already (the
    // kernel gives it the same name), or one carried twice, gives back the extra reference.
    let mut new_names = Vec::new();
    for (i, &port) in carried.iter().enumerate() {
        if xv6.holds(port) || carried[..i].contains(&port) {
            let _ = port_deallocate(port);
        } else {
            new_names.push(port);
        }
    }
    let pid = xv6.new_pid();
    let created = xv6.create(
        pid,
        0,
        request.path,
        &args,
        fds,
        String::from(request.cwd),
        Some(SendRight::from_name(report)),
    );
    let Ok(port) = created else {
        // The report right went with the failed `create`'s `Option<SendRight>`.
        for port in new_names {
            let _ = port_deallocate(port);
        }
        return Err((Error::NoEntry, true));
    };
    let p = xv6.processes.get_mut(&port).ok_or((Error::Io, true))?;
    (p.uid, p.gid) = (request.uid, request.gid);
    Ok((pid, p.task))
}

/// An xv6 process execs a program of another personality: the Unix personality runs it,
/// with this process's descriptors, and this process waits (without a task) for its end.
pub fn exec_elsewhere(xv6: &mut Xv6, caller: Caller, path: &str, args: &[Vec<u8>]) -> Reply {
    let Some(service) = xv6.unix_service() else { return Reply::Value(-1) };
    let Some(p) = xv6.processes.get(&caller.process) else { return Reply::Gone };
    let mut joined = Vec::new();
    for a in args {
        joined.extend_from_slice(a);
        joined.push(0);
    }
    let mut numbers = Vec::new();
    let mut rights = Vec::new();
    let Ok(report) = ReceiveRight::allocate() else { return Reply::Value(-1) };
    rights.push((report.name(), disposition::MAKE_SEND));
    for (fd, object) in p.fds.iter().enumerate() {
        if let Some(Object::Io(port)) = object {
            numbers.push(fd as u8);
            rights.push((*port, disposition::COPY_SEND));
        }
    }
    let cwd = p.cwd.clone();
    let request =
        AdoptRequest { path, args: Bytes(&joined), cwd: &cwd, uid: p.uid, gid: p.gid, fds: Bytes(&numbers) };
    // In the set before the call, so that nothing the other side sends there is missed.
    if port_move_member(report.name(), xv6.set).is_err() {
        return Reply::Value(-1);
    }
    let answer = rpc::call_timeout::<Adopt>(
        service,
        &request,
        &rights,
        xv6.reply.name(),
        &mut xv6.scratch,
        CALL_TIMEOUT_MS,
    );
    // An answer of refusal carries nothing; a failed call leaves our own request in the
    // buffer, whose rights are not ours to release.
    let task = match (answer, xv6.scratch.port(0)) {
        (Ok(Ok(_)), Some(d)) if d.disposition == received::SEND => SendRight::from_name(d.name),
        _ => return Reply::Value(-1),
    };
    // The old program goes; the process stays, waiting for the report.
    let Some(p) = xv6.processes.get_mut(&caller.process) else {
        let _ = libmach::task::task_terminate(task.name());
        return Reply::Gone;
    };
    let _ = libmach::task::task_terminate(p.task);
    p.task_id = 0;
    // Our own origin, if any, ends or stops the process through the new task now.
    if let Some(origin) = &p.report {
        interfaces::personality::report_task(origin.name(), task.name());
    }
    // The program waits, suspended, for us to let it go (interfaces::personality).
    let _ = libmach::task::task_resume(task.name());
    xv6.handed_over.insert(report.name(), HandedOver { report, process: caller.process, task });
    let _ = port_deallocate(caller.reply);
    Reply::Later
}

/// A message on a handed-over process's report port: it ended (with its status), it
/// exec'd (its new task), or the other personality ended (no senders: as by SIGKILL).
pub fn reported(xv6: &mut Xv6, message: &LargestMessage, mut handed: HandedOver) {
    let id = message.header.id;
    if id == <NewTask as rpc::Rpc>::ID
        && let Some(task) = message.port(0).filter(|d| d.disposition == received::SEND)
    {
        handed.task = SendRight::from_name(task.name);
        if let Some(origin) = xv6.processes.get(&handed.process).and_then(|p| p.report.as_ref()) {
            interfaces::personality::report_task(origin.name(), task.name);
        }
        xv6.handed_over.insert(handed.report.name(), handed);
        return;
    }
    let status = match rpc::Incoming::new(message).decode::<Exited>() {
        Ok(report) if id == <Exited as rpc::Rpc>::ID => report.status,
        _ => 9,
    };
    message.release_carried();
    xv6.exited(handed.process, status);
}

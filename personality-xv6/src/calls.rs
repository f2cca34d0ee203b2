//! The 21 system calls: decoded once from the forwarded trap (number in rax, arguments in
//! rdi, rsi, rdx), then served. Processes and memory are here; files, pipes and directories
//! in files.rs. Every error is -1, as in xv6.

use crate::files;
use crate::program::{self, ExecError};
use crate::server::{Caller, Object, Process, Reply, Xv6, read_string, read_user};
use alloc::string::String;
use alloc::vec::Vec;
use libmach::ipc::*;
use libmach::task::{
    task_create_copy, task_id, task_resume, task_suspend, task_terminate, thread_get_fpu_state,
    thread_set_fpu_state, thread_set_state, vm_allocate, vm_deallocate,
};
use mach_abi::forward::SyscallRequest;
use mach_abi::protection;
use personality_xv6::abi::{MAXARG, TICK_NS, absolute, nr};

/// The most a process's break may grow to (above where it started).
const MAX_HEAP: u64 = 1 << 30;

pub fn dispatch(xv6: &mut Xv6, caller: Caller, call: &SyscallRequest) -> Reply {
    let Some(process) = xv6.processes.get(&caller.process) else { return Reply::Gone };
    let (task, pid) = (process.task, process.pid);
    let [a0, a1, a2, ..] = call.args;
    // xv6's int arguments are 32 bits: a negative one comes sign-extended or not at all.
    let int = |v: u64| v as i32;
    match call.number {
        nr::FORK => fork(xv6, caller, call),
        nr::EXIT => {
            xv6.exited(caller.process, 0);
            Reply::Gone
        }
        nr::WAIT => wait(xv6, caller, pid),
        nr::KILL => kill(xv6, caller, int(a0)),
        nr::EXEC => exec(xv6, caller, a0, a1),
        nr::GETPID => Reply::Value(pid as i64),
        nr::SBRK => sbrk(xv6, caller.process, int(a0)),
        nr::SLEEP => {
            let ticks = int(a0).max(0) as u64;
            let at = libmach::uptime_ns().saturating_add(ticks * TICK_NS);
            xv6.sleeping.push((at, caller));
            Reply::Later
        }
        nr::UPTIME => Reply::Value((libmach::uptime_ns() / TICK_NS) as i64),
        nr::READ => files::read(xv6, caller, int(a0), a1, int(a2)),
        nr::WRITE => files::write(xv6, caller, task, int(a0), a1, int(a2)),
        nr::CLOSE => files::close(xv6, caller.process, int(a0)),
        nr::DUP => files::dup(xv6, caller.process, int(a0)),
        nr::PIPE => files::pipe(xv6, caller.process, a0),
        nr::FSTAT => files::fstat(xv6, caller.process, int(a0), a1),
        nr::OPEN | nr::MKNOD | nr::UNLINK | nr::MKDIR | nr::CHDIR => {
            let Some(path) = read_string(task, a0) else { return Reply::Value(-1) };
            files::by_path(xv6, caller.process, call.number, &path, a1, int(a2))
        }
        nr::LINK => {
            let (Some(old), Some(new)) = (read_string(task, a0), read_string(task, a1)) else {
                return Reply::Value(-1);
            };
            files::link(xv6, caller.process, &old, &new)
        }
        _ => Reply::Value(-1),
    }
}

/// A copy of the calling process; it continues from the call with rax = 0.
fn fork(xv6: &mut Xv6, caller: Caller, call: &SyscallRequest) -> Reply {
    let Some(parent) = xv6.processes.get(&caller.process) else { return Reply::Gone };
    let (parent_task, parent_thread) = (parent.task, parent.thread);
    let Ok(child) = task_create_copy(parent_task) else { return Reply::Value(-1) };
    let mut registers = call.registers;
    registers.rax = 0;
    // Made suspended, given every register of the parent's thread (x87/SSE too), let go.
    let thread = (|| {
        task_suspend(child).ok()?;
        let thread = thread_create_at(child, registers.rip, registers.rsp, 0, 0).ok()? as PortName;
        if let Ok(fpu) = thread_get_fpu_state(parent_thread) {
            let _ = thread_set_fpu_state(thread, &fpu);
        }
        if thread_set_state(thread, &registers).is_err() {
            let _ = port_deallocate(thread);
            return None;
        }
        Some(thread)
    })();
    let port = port_allocate().ok();
    let (Some(thread), Some(port)) = (thread, port) else {
        if let Some(thread) = thread {
            let _ = port_deallocate(thread);
        }
        let _ = task_terminate(child);
        let _ = port_deallocate(child);
        return Reply::Value(-1);
    };
    if port_move_member(port, xv6.set).is_err() || xv6.attach(child, port).is_err() {
        let _ = port_destroy(port);
        let _ = port_deallocate(thread);
        let _ = task_terminate(child);
        let _ = port_deallocate(child);
        return Reply::Value(-1);
    }
    let pid = xv6.new_pid();
    let Some(parent) = xv6.processes.get(&caller.process) else { return Reply::Gone };
    let process = Process {
        pid,
        parent: parent.pid,
        task: child,
        task_id: task_id(child).unwrap_or(0),
        thread,
        name: parent.name.clone(),
        fds: parent.fds,
        cwd: parent.cwd.clone(),
        brk_start: parent.brk_start,
        brk: parent.brk,
        uid: parent.uid,
        gid: parent.gid,
        report: None,
    };
    for object in process.fds.iter().flatten() {
        xv6.hold(object.port());
    }
    xv6.processes.insert(port, process);
    let _ = task_resume(child);
    Reply::Value(pid as i64)
}

/// The pid of an exited child (waiting until one exits); -1 when there are no children.
fn wait(xv6: &mut Xv6, caller: Caller, pid: u64) -> Reply {
    if let Some(i) = xv6.zombies.iter().position(|&(parent, _)| parent == pid) {
        let (_, child) = xv6.zombies.remove(i);
        return Reply::Value(child as i64);
    }
    if xv6.processes.values().any(|p| p.parent == pid) {
        xv6.waiting.push((pid, caller));
        return Reply::Later;
    }
    Reply::Value(-1)
}

/// End process `target` (xv6 ends it when it next leaves the kernel; here at once).
fn kill(xv6: &mut Xv6, caller: Caller, target: i32) -> Reply {
    let Some(port) = xv6.processes.iter().find(|(_, p)| p.pid as i64 == i64::from(target)).map(|(&k, _)| k)
    else {
        return Reply::Value(-1);
    };
    xv6.exited(port, 9);
    if port == caller.process { Reply::Gone } else { Reply::Value(0) }
}

/// Replace the caller's program (in a new task that keeps its syscall port, pid and
/// descriptors); a program of another personality is handed over to it. Returns only on an
/// error.
fn exec(xv6: &mut Xv6, caller: Caller, path_at: u64, argv_at: u64) -> Reply {
    let Some(p) = xv6.processes.get(&caller.process) else { return Reply::Gone };
    let task = p.task;
    let Some(path) = read_string(task, path_at) else { return Reply::Value(-1) };
    let path = absolute(&p.cwd, &path);
    let Some(args) = read_argv(task, argv_at) else { return Reply::Value(-1) };
    let loaded = match program::load(xv6, &path, &args) {
        Ok(l) => l,
        Err(ExecError::NotXv6) => return crate::handoff::exec_elsewhere(xv6, caller, &path, &args),
        Err(_) => return Reply::Value(-1),
    };
    if xv6.attach(loaded.task, caller.process).is_err() {
        let _ = task_terminate(loaded.task);
        let _ = port_deallocate(loaded.task);
        return Reply::Value(-1);
    }
    let Some(thread) = loaded.start() else {
        let _ = task_terminate(loaded.task);
        let _ = port_deallocate(loaded.task);
        xv6.exited(caller.process, 127 << 8);
        return Reply::Gone;
    };
    // The point of no return: the old task goes (and the call with it), the new one runs.
    let Some(p) = xv6.processes.get_mut(&caller.process) else { return Reply::Gone };
    let (old_task, old_thread) = (p.task, p.thread);
    p.task = loaded.task;
    p.task_id = task_id(loaded.task).unwrap_or(0);
    p.thread = thread;
    p.name = String::from(path.rsplit('/').next().unwrap_or(&path));
    (p.brk_start, p.brk) = (loaded.brk, loaded.brk);
    let _ = task_terminate(old_task);
    let _ = port_deallocate(old_task);
    let _ = port_deallocate(old_thread);
    // An adopted process's origin ends and stops it through its task: tell it the new one.
    if let Some(report) = xv6.processes.get(&caller.process).and_then(|p| p.report.as_ref()) {
        interfaces::personality::report_task(report.name(), loaded.task);
    }
    Reply::Gone
}

/// The NULL-terminated argv array at `at` in `task`: at most MAXARG strings.
fn read_argv(task: PortName, at: u64) -> Option<Vec<Vec<u8>>> {
    let mut args = Vec::new();
    for i in 0..=MAXARG as u64 {
        let word = read_user(task, at.checked_add(i * 8)?, 8)?;
        let pointer = u64::from_le_bytes(word.try_into().ok()?);
        if pointer == 0 {
            return Some(args);
        }
        args.push(read_string(task, pointer)?.into_bytes());
    }
    None
}

/// Grow (or shrink) the break by `n` bytes; the old break, or -1.
fn sbrk(xv6: &mut Xv6, port: PortName, n: i32) -> Reply {
    let Some(p) = xv6.processes.get_mut(&port) else { return Reply::Gone };
    let old = p.brk;
    let Some(new) = old.checked_add_signed(i64::from(n)) else { return Reply::Value(-1) };
    if new < p.brk_start || new - p.brk_start > MAX_HEAP {
        return Reply::Value(-1);
    }
    let (old_end, new_end) = (old.next_multiple_of(4096), new.next_multiple_of(4096));
    if new_end > old_end && vm_allocate(p.task, old_end, new_end - old_end, protection::WRITE).is_err() {
        return Reply::Value(-1);
    }
    if new_end < old_end {
        let _ = vm_deallocate(p.task, new_end, old_end - new_end);
    }
    p.brk = new;
    Reply::Value(old as i64)
}

/// A descriptor's object, if `fd` is open.
pub fn descriptor(xv6: &Xv6, port: PortName, fd: i32) -> Option<Object> {
    let fd = usize::try_from(fd).ok()?;
    xv6.processes.get(&port)?.fds.get(fd).copied().flatten()
}

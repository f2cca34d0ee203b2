//! Processes making processes: fork (a copy-on-write copy of the task, through
//! `task_create_copy`), execve (a new task for the new program, keeping the process's
//! syscall port, pid and descriptors), exit (the process becomes a zombie until its parent
//! waits), and wait4 (answered at once, or kept until a child ends: the personality never
//! waits with it).
//!
//! It must never let a process act on one that is not its child, and never lose a zombie's
//! status or a waiting parent's reply right.

use crate::process::{PendingWait, Personality, Thread, Zombie};
use crate::syscalls::{Answer, error};
use alloc::string::String;
use alloc::vec::Vec;
use libmach::ipc::{PortName, port_deallocate};
use libmach::task::{
    task_create_copy, task_resume, task_suspend, task_terminate, thread_get_fpu_state, thread_id,
    thread_set_fpu_state, thread_set_state, vm_read,
};
use mach_abi::forward::SyscallRequest;
use personality_unix::linux::{self, errno::*, nr};

/// CLONE_VM with CLONE_VFORK is how musl's posix_spawn starts its child (on a stack of its
/// own, until it execs): served as a fork onto that stack. The copy is invisible to the
/// parent, as posix_spawn needs (the child reports only through a close-on-exec pipe); the
/// parent is not held until the exec (posix_spawn waits on that pipe anyway).
const CLONE_VM: u64 = 0x100;
const CLONE_VFORK: u64 = 0x4000;
const CLONE_PARENT_SETTID: u64 = 0x0010_0000;
const CLONE_CHILD_CLEARTID: u64 = 0x0020_0000;
const CLONE_CHILD_SETTID: u64 = 0x0100_0000;
/// The clone flags a fork may carry (with the exit signal in the low byte).
const FORK_FLAGS: u64 =
    CLONE_VM | CLONE_VFORK | CLONE_PARENT_SETTID | CLONE_CHILD_CLEARTID | CLONE_CHILD_SETTID | 0xff;

/// Serve `call` if it is one of the process calls; None otherwise.
pub fn dispatch(
    unix: &mut Personality,
    port: PortName,
    call: &SyscallRequest,
    reply_to: PortName,
) -> Option<Answer> {
    let [a0, a1, a2, a3, _, _] = call.args;
    let answer = match call.number {
        nr::FORK | nr::VFORK => fork(unix, port, call, None),
        // clone as fork: no shared memory, no new stack, SIGCHLD at the end; glibc's fork
        // also asks for the child's id to be written (CLONE_CHILD_SETTID, to the child's
        // memory at a3; CLONE_PARENT_SETTID, to the parent's at a2). CLONE_CHILD_CLEARTID
        // matters to threads only: accepted.
        nr::CLONE
            if a0 & !FORK_FLAGS == 0 && a0 & 0xff == linux::SIGCHLD && (a1 == 0 || a0 & CLONE_VM != 0) =>
        {
            let answer = fork(unix, port, call, (a1 != 0).then_some(a1));
            if let Answer::Value(pid) = answer
                && pid > 0
            {
                let id = (pid as u32).to_le_bytes();
                if a0 & CLONE_PARENT_SETTID != 0
                    && let Some(parent) = unix.processes.get(&port)
                {
                    let _ = libmach::task::vm_write(parent.task, a2, &id);
                }
                if a0 & CLONE_CHILD_SETTID != 0
                    && let Some(child) = unix.processes.values().find(|p| p.pid == pid as u64)
                {
                    let _ = libmach::task::vm_write(child.task, a3, &id);
                }
            }
            answer
        }
        nr::CLONE => error(ENOSYS),
        nr::EXECVE => execve(unix, port, a0, a1, a2),
        nr::WAIT4 => {
            let Some(filter) = filter_of(unix, port, a0 as i32 as i64) else { return Some(error(ECHILD)) };
            wait(unix, port, filter, WaitForm::Wait4 { status: a1 }, a2, reply_to)
        }
        nr::WAITID => {
            let filter = match a0 {
                P_ALL => WaitFilter::Any,
                P_PID => WaitFilter::Pid(a1),
                P_PGID => WaitFilter::Group(a1),
                _ => return Some(error(EINVAL)),
            };
            if a3 & (WEXITED | linux::WUNTRACED) == 0 {
                return Some(error(EINVAL));
            }
            wait(unix, port, filter, WaitForm::Waitid { info: a2 }, a3, reply_to)
        }
        nr::EXIT | nr::EXIT_GROUP => {
            unix.exited(port, (a0 & 0xff) << 8);
            Answer::None
        }
        _ => return None,
    };
    let _ = a3;
    Some(answer)
}

/// A copy of the calling process; its first thread continues from the call with rax = 0, on
/// `stack` when one is given (clone's new stack).
fn fork(unix: &mut Personality, port: PortName, call: &SyscallRequest, stack: Option<u64>) -> Answer {
    let Some(parent) = unix.processes.get(&port) else { return Answer::None };
    let (parent_task, parent_pid) = (parent.task, parent.pid);
    let Ok(child) = task_create_copy(parent_task) else { return error(ENOMEM) };
    // The child's first thread continues from the fork with rax = 0. It is made suspended,
    // given every register of the parent's thread, then let go.
    let mut registers = call.registers;
    registers.rax = 0;
    if let Some(stack) = stack {
        registers.rsp = stack;
    }
    let started = (|| {
        task_suspend(child).ok()?;
        let thread =
            libmach::ipc::thread_create_at(child, registers.rip, registers.rsp, 0, 0).ok()? as PortName;
        // The x87/SSE registers go with the other registers (Linux copies them on fork).
        if let Some(fpu) =
            unix.caller_thread_port(port, call.thread).and_then(|t| thread_get_fpu_state(t).ok())
        {
            let _ = thread_set_fpu_state(thread, &fpu);
        }
        match thread_set_state(thread, &registers).and_then(|()| thread_id(thread)) {
            Ok(id) => Some((thread, id)),
            Err(_) => {
                let _ = port_deallocate(thread);
                None
            }
        }
    })();
    let pid = started.and_then(|(thread, id)| {
        let pid = unix.new_pid();
        // The calling thread is the one that goes on in the child, its clear-tid address too.
        let clear_tid =
            unix.processes.get(&port).and_then(|p| p.thread(call.thread)).map_or(0, |t| t.clear_tid);
        let adopted =
            unix.adopt_copy(port, child, parent_pid, pid, Thread { id, tid: pid, port: thread, clear_tid });
        if adopted.is_none() {
            let _ = port_deallocate(thread);
        }
        adopted
    });
    match pid {
        Some(pid) => {
            if let Some(child_port) = unix.processes.iter().find(|(_, p)| p.pid == pid).map(|(&k, _)| k) {
                crate::tracing::follow(unix, child_port);
            }
            let _ = task_resume(child);
            Answer::Value(pid as i64)
        }
        None => {
            let _ = task_terminate(child);
            let _ = port_deallocate(child);
            error(ENOMEM)
        }
    }
}

/// The NUL-terminated strings of a NULL-terminated pointer array in `task` (argv, envp).
fn read_strings(task: PortName, array: u64) -> Result<Vec<String>, i64> {
    let mut strings = Vec::new();
    if array == 0 {
        return Ok(strings);
    }
    let mut total = 0;
    for i in 0..4096u64 {
        let mut pointer = [0u8; 8];
        vm_read(task, array + i * 8, &mut pointer).map_err(|_| EFAULT)?;
        let pointer = u64::from_le_bytes(pointer);
        if pointer == 0 {
            return Ok(strings);
        }
        let s = crate::files::read_string(task, pointer)?;
        total += s.len() + 1;
        if total > 128 * 1024 {
            return Err(E2BIG);
        }
        strings.push(s);
    }
    Err(E2BIG)
}

fn execve(unix: &mut Personality, port: PortName, path: u64, argv: u64, envp: u64) -> Answer {
    let Some(task) = unix.processes.get(&port).map(|p| p.task) else { return Answer::None };
    let path = match crate::files::read_string(task, path) {
        Ok(p) => p,
        Err(e) => return error(e),
    };
    let (argv, envp) = match (read_strings(task, argv), read_strings(task, envp)) {
        (Ok(a), Ok(e)) => (a, e),
        (Err(e), _) | (_, Err(e)) => return error(e),
    };
    let path = unix.absolute(port, &path);
    match unix.exec(port, &path, &argv, &envp) {
        // The old task is gone with the thread that called: nothing to answer.
        Ok(()) => Answer::None,
        Err(e) => error(e),
    }
}

/// Which children a wait is for.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum WaitFilter {
    Any,
    Pid(u64),
    Group(u64),
}

impl WaitFilter {
    fn matches(self, pid: u64, pgid: u64) -> bool {
        match self {
            WaitFilter::Any => true,
            WaitFilter::Pid(p) => p == pid,
            WaitFilter::Group(g) => g == pgid,
        }
    }
}

/// How a wait answers: wait4's status word, or waitid's siginfo; with the options asked.
#[derive(Clone, Copy, Debug)]
pub enum WaitForm {
    Wait4 { status: u64 },
    Waitid { info: u64 },
}

/// waitid's id types and its "exited" option.
const P_ALL: u64 = 0;
const P_PID: u64 = 1;
const P_PGID: u64 = 2;
const WEXITED: u64 = 4;
/// si_code values for SIGCHLD.
const CLD_EXITED: i32 = 1;
const CLD_KILLED: i32 = 2;
const CLD_STOPPED: i32 = 5;

/// wait4's pid as a filter: -1 any, 0 the caller's group, < -1 that group, else that child.
fn filter_of(unix: &Personality, port: PortName, pid: i64) -> Option<WaitFilter> {
    Some(match pid {
        -1 => WaitFilter::Any,
        0 => WaitFilter::Group(unix.processes.get(&port)?.pgid),
        n if n < -1 => WaitFilter::Group(n.unsigned_abs()),
        n => WaitFilter::Pid(n as u64),
    })
}

/// wait4 / waitid: an ended child (or, with WUNTRACED, a stopped one not reported yet) is
/// answered at once; otherwise the call waits (unless WNOHANG) until one is.
fn wait(
    unix: &mut Personality,
    port: PortName,
    filter: WaitFilter,
    form: WaitForm,
    options: u64,
    reply_to: PortName,
) -> Answer {
    let Some(me) = unix.processes.get(&port).map(|p| p.pid) else { return Answer::None };
    let exited_wanted = !matches!(form, WaitForm::Waitid { .. }) || options & WEXITED != 0;
    if exited_wanted
        && let Some(at) = unix.zombies.iter().position(|z| z.parent == me && filter.matches(z.pid, z.pgid))
    {
        let z = unix.zombies.remove(at);
        return reaped(&z, form);
    }
    if options & linux::WUNTRACED != 0
        && let Some(child) = unix
            .processes
            .values_mut()
            .find(|c| c.parent == me && c.stop_report.is_some() && filter.matches(c.pid, c.pgid))
    {
        let signal = child.stop_report.take().unwrap_or(0);
        return stopped_answer(child.pid, signal, form);
    }
    let has_children = unix.processes.values().any(|p| p.parent == me && filter.matches(p.pid, p.pgid));
    if !has_children {
        return error(ECHILD);
    }
    if options & linux::WNOHANG != 0 {
        return match form {
            WaitForm::Wait4 { .. } => Answer::Value(0),
            WaitForm::Waitid { info } => Answer::CopyOut { value: 0, to: info, bytes: alloc::vec![0; 128] },
        };
    }
    unix.waits.push(PendingWait { pid: me, filter, form, options, reply_to });
    Answer::Later
}

/// siginfo for waitid: SIGCHLD, how the child changed, its pid and status.
fn child_info(pid: u64, code: i32, status: i32) -> alloc::vec::Vec<u8> {
    let info = personality_unix::signal::SignalInfo { signal: linux::SIGCHLD, code, pid, status };
    info.to_bytes().to_vec()
}

/// The answer to a wait that found ended child `z`.
pub fn reaped(z: &Zombie, form: WaitForm) -> Answer {
    match form {
        WaitForm::Wait4 { status: 0 } => Answer::Value(z.pid as i64),
        WaitForm::Wait4 { status } => Answer::CopyOut {
            value: z.pid as i64,
            to: status,
            bytes: (z.status as u32).to_le_bytes().to_vec(),
        },
        WaitForm::Waitid { info } => {
            let (code, status) = if z.status & 0x7f != 0 {
                (CLD_KILLED, (z.status & 0x7f) as i32)
            } else {
                (CLD_EXITED, (z.status >> 8 & 0xff) as i32)
            };
            Answer::CopyOut { value: 0, to: info, bytes: child_info(z.pid, code, status) }
        }
    }
}

fn stopped_answer(pid: u64, signal: u64, form: WaitForm) -> Answer {
    match form {
        WaitForm::Wait4 { status: 0 } => Answer::Value(pid as i64),
        WaitForm::Wait4 { status } => {
            let word = ((signal as u32) << 8) | 0x7f;
            Answer::CopyOut { value: pid as i64, to: status, bytes: word.to_le_bytes().to_vec() }
        }
        WaitForm::Waitid { info } => {
            Answer::CopyOut { value: 0, to: info, bytes: child_info(pid, CLD_STOPPED, signal as i32) }
        }
    }
}

/// A child ended: a parent waiting for it is answered, else it stays a zombie (none is
/// kept when the parent ignores SIGCHLD); the parent gets SIGCHLD.
pub fn child_ended(unix: &mut Personality, zombie: Zombie) {
    let parent = unix
        .processes
        .iter()
        .find(|(_, p)| p.pid == zombie.parent)
        .map(|(&port, p)| (port, p.signals.action(linux::SIGCHLD)));
    let waiter = unix.waits.iter().position(|w| {
        w.pid == zombie.parent
            && w.filter.matches(zombie.pid, zombie.pgid)
            && (!matches!(w.form, WaitForm::Waitid { .. }) || w.options & WEXITED != 0)
    });
    let (code, status) = if zombie.status & 0x7f != 0 {
        (CLD_KILLED, (zombie.status & 0x7f) as i32)
    } else {
        (CLD_EXITED, (zombie.status >> 8 & 0xff) as i32)
    };
    let pid = zombie.pid;
    // SIGCHLD is posted first, so a handler runs as the wait returns (as on Linux), not
    // instead of it.
    let info = personality_unix::signal::SignalInfo { signal: linux::SIGCHLD, code, pid, status };
    let posted = parent.map(|(port, _)| (port, unix.post(port, linux::SIGCHLD, info)));
    match waiter {
        Some(at) => {
            let w = unix.waits.remove(at);
            unix.answer_held(w.reply_to, reaped(&zombie, w.form));
        }
        None if parent.is_some_and(|(_, a)| a.handler == linux::signal::SIG_IGN) => {}
        None => unix.zombies.push(zombie),
    }
    if let Some((port, posted)) = posted {
        unix.act(port, linux::SIGCHLD, posted);
    }
}

/// A child stopped: a parent waiting with WUNTRACED is answered; the parent gets SIGCHLD
/// unless it asked not to (SA_NOCLDSTOP).
pub fn child_stopped(unix: &mut Personality, port: PortName, signal: u64) {
    let Some(child) = unix.processes.get(&port) else { return };
    let (pid, pgid, parent_pid) = (child.pid, child.pgid, child.parent);
    let waiter = unix.waits.iter().position(|w| {
        w.pid == parent_pid && w.options & linux::WUNTRACED != 0 && w.filter.matches(pid, pgid)
    });
    if let Some(at) = waiter {
        let w = unix.waits.remove(at);
        if let Some(c) = unix.processes.get_mut(&port) {
            c.stop_report = None;
        }
        unix.answer_held(w.reply_to, stopped_answer(pid, signal, w.form));
    }
    let parent = unix
        .processes
        .iter()
        .find(|(_, p)| p.pid == parent_pid)
        .map(|(&port, p)| (port, p.signals.action(linux::SIGCHLD)));
    if let Some((parent, action)) = parent
        && action.flags & personality_unix::signal::flags::SA_NOCLDSTOP == 0
    {
        let info = personality_unix::signal::SignalInfo {
            signal: linux::SIGCHLD,
            code: CLD_STOPPED,
            pid,
            status: signal as i32,
        };
        unix.signal(parent, linux::SIGCHLD, info);
    }
}

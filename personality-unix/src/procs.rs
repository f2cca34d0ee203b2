//! Processes making processes: fork (a copy-on-write copy of the task, through
//! `task_create_copy`), execve (a new task for the new program, keeping the process's
//! syscall port, pid and descriptors), exit (the process becomes a zombie until its parent
//! waits), and wait4 (answered at once, or kept until a child ends: the personality never
//! waits with it).
//!
//! It must never let a process act on one that is not its child, and never lose a zombie's
//! status or a waiting parent's reply right.

use crate::process::{PendingWait, Personality, Zombie};
use crate::syscalls::{Answer, error};
use alloc::string::String;
use alloc::vec::Vec;
use libmach::ipc::{PortName, port_deallocate};
use libmach::task::{task_create_copy, task_resume, task_suspend, task_terminate, thread_set_state, vm_read};
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
        nr::WAIT4 => wait4(unix, port, a0 as i64, a1, a2, reply_to),
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
        let set = thread_set_state(thread, &registers);
        let _ = port_deallocate(thread);
        set.ok()
    })();
    let pid = started.and_then(|()| unix.adopt_copy(port, child, parent_pid));
    match pid {
        Some(pid) => {
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

fn wait4(
    unix: &mut Personality,
    port: PortName,
    pid: i64,
    status: u64,
    options: u64,
    reply_to: PortName,
) -> Answer {
    let Some(me) = unix.processes.get(&port).map(|p| p.pid) else { return Answer::None };
    let wanted = |z: &Zombie| z.parent == me && (pid == -1 || pid == z.pid as i64);
    if let Some(at) = unix.zombies.iter().position(wanted) {
        let z = unix.zombies.remove(at);
        return reaped(z, status);
    }
    let has_children = unix.processes.values().any(|p| p.parent == me && (pid == -1 || pid == p.pid as i64));
    if !has_children {
        return error(ECHILD);
    }
    if options & linux::WNOHANG != 0 {
        return Answer::Value(0);
    }
    unix.waits.push(PendingWait { process: port, pid: me, filter: pid, status, reply_to });
    Answer::Later
}

/// The answer to a wait that found `z`.
pub fn reaped(z: Zombie, status: u64) -> Answer {
    if status == 0 {
        Answer::Value(z.pid as i64)
    } else {
        Answer::CopyOut { value: z.pid as i64, to: status, bytes: (z.status as u32).to_le_bytes().to_vec() }
    }
}

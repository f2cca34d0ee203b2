//! Threads of a process (clone with CLONE_VM|CLONE_THREAD: a new kernel thread in the same
//! task), their ids (gettid, set_tid_address), a thread's exit (its id cleared and its joiner
//! woken), and futex wait and wake, with which threads meet.
//!
//! A futex wait keeps its reply right until a wake, a timeout or a signal answers it: the
//! personality is single-threaded, so checking the futex word and queueing the waiter happen
//! with no other call in between, as Linux's futex promises.
//!
//! It must never let a thread of one process wake or wait on another's futex: waits are keyed
//! by the process's syscall port and the address.

use crate::process::{Personality, Thread};
use crate::syscalls::{Answer, error};
use libmach::ipc::{PortName, port_deallocate, thread_create_at};
use libmach::task::{
    task_resume, task_suspend, thread_get_fpu_state, thread_id, thread_set_fpu_state, thread_set_state,
    thread_terminate, vm_read, vm_write,
};
use mach_abi::forward::SyscallRequest;
use personality_unix::linux::{errno::*, nr};

pub const CLONE_VM: u64 = 0x100;
pub const CLONE_SIGHAND: u64 = 0x800;
pub const CLONE_THREAD: u64 = 0x10000;
const CLONE_SETTLS: u64 = 0x80000;
const CLONE_PARENT_SETTID: u64 = 0x0010_0000;
const CLONE_CHILD_CLEARTID: u64 = 0x0020_0000;
const CLONE_CHILD_SETTID: u64 = 0x0100_0000;

const FUTEX_WAIT: u64 = 0;
const FUTEX_WAKE: u64 = 1;
const FUTEX_REQUEUE: u64 = 3;
const FUTEX_CMP_REQUEUE: u64 = 4;
const FUTEX_WAIT_BITSET: u64 = 9;
const FUTEX_WAKE_BITSET: u64 = 10;
const FUTEX_PRIVATE_FLAG: u64 = 128;
const FUTEX_CLOCK_REALTIME: u64 = 256;

/// A thread waiting on a futex word.
pub struct FutexWait {
    pub process: PortName,
    pub address: u64,
    pub bitset: u32,
    pub reply_to: PortName,
    /// When it times out (ns since boot), if it does.
    pub deadline: Option<u64>,
}

/// Serve `call` if it is one of the thread calls; None otherwise.
pub fn dispatch(
    unix: &mut Personality,
    port: PortName,
    call: &SyscallRequest,
    reply_to: PortName,
) -> Option<Answer> {
    if !matches!(
        call.number,
        nr::CLONE | nr::GETTID | nr::SET_TID_ADDRESS | nr::SET_ROBUST_LIST | nr::EXIT | nr::FUTEX
    ) {
        return None;
    }
    let [a0, a1, a2, a3, a4, a5] = call.args;
    let p = unix.processes.get_mut(&port)?;
    let tid = p.thread(call.thread).map_or(p.pid, |t| t.tid);
    let answer = match call.number {
        nr::CLONE if a0 & CLONE_THREAD != 0 => clone_thread(unix, port, call),
        nr::GETTID => Answer::Value(tid as i64),
        nr::SET_TID_ADDRESS => {
            if let Some(t) = p.threads.iter_mut().find(|t| t.id == call.thread) {
                t.clear_tid = a0;
            }
            Answer::Value(tid as i64)
        }
        // Robust futex lists are accepted and not walked (a thread that dies holding a
        // robust mutex leaves it held).
        nr::SET_ROBUST_LIST => Answer::Value(0),
        nr::EXIT if p.threads.len() > 1 => thread_exit(unix, port, call.thread),
        nr::FUTEX => futex(unix, port, a0, a1, a2, a3, a4, a5, reply_to),
        _ => return None,
    };
    Some(answer)
}

/// A new thread in the caller's task: the caller's registers but rax = 0, on `stack`, with
/// the FS base `tls` when CLONE_SETTLS asks. Its thread id comes from the pid numbers.
fn clone_thread(unix: &mut Personality, port: PortName, call: &SyscallRequest) -> Answer {
    let [flags, stack, parent_tid, child_tid, tls, _] = call.args;
    if flags & (CLONE_VM | CLONE_SIGHAND) != (CLONE_VM | CLONE_SIGHAND) || stack == 0 {
        return error(EINVAL);
    }
    let Some(task) = unix.processes.get(&port).map(|p| p.task) else { return Answer::None };
    let mut registers = call.registers;
    registers.rax = 0;
    registers.rsp = stack;
    if flags & CLONE_SETTLS != 0 {
        registers.fs_base = tls;
    }
    // Made while the task is held, so it runs first with these registers.
    if task_suspend(task).is_err() {
        return error(ENOMEM);
    }
    let made = (|| {
        let thread = thread_create_at(task, registers.rip, stack, 0, 0).ok()? as PortName;
        if let Some(fpu) =
            unix.caller_thread_port(port, call.thread).and_then(|t| thread_get_fpu_state(t).ok())
        {
            let _ = thread_set_fpu_state(thread, &fpu);
        }
        if thread_set_state(thread, &registers).is_err() {
            let _ = thread_terminate(thread);
            let _ = port_deallocate(thread);
            return None;
        }
        Some(thread)
    })();
    let Some(thread) = made else {
        let _ = task_resume(task);
        return error(EAGAIN);
    };
    let tid = unix.new_pid();
    let id = (tid as u32).to_le_bytes();
    if flags & CLONE_PARENT_SETTID != 0 {
        let _ = vm_write(task, parent_tid, &id);
    }
    if flags & CLONE_CHILD_SETTID != 0 {
        let _ = vm_write(task, child_tid, &id);
    }
    let clear_tid = if flags & CLONE_CHILD_CLEARTID != 0 { child_tid } else { 0 };
    let kernel_id = thread_id(thread).unwrap_or(0);
    if let Some(p) = unix.processes.get_mut(&port) {
        p.threads.push(Thread { id: kernel_id, tid, port: thread, clear_tid });
    }
    let _ = task_resume(task);
    Answer::Value(tid as i64)
}

/// One thread of several ends: its id word is cleared and one waiter on it woken (how
/// pthread_join learns of it), then the kernel thread goes.
fn thread_exit(unix: &mut Personality, port: PortName, id: u64) -> Answer {
    let Some(p) = unix.processes.get_mut(&port) else { return Answer::None };
    let Some(at) = p.threads.iter().position(|t| t.id == id) else { return Answer::None };
    let thread = p.threads.remove(at);
    if thread.clear_tid != 0 && vm_write(p.task, thread.clear_tid, &0u32.to_le_bytes()).is_ok() {
        wake(unix, port, thread.clear_tid, 1, u32::MAX);
    }
    let _ = thread_terminate(thread.port);
    let _ = port_deallocate(thread.port);
    Answer::None
}

/// Answer up to `count` waiters on (`port`, `address`) whose bitset meets `bitset`.
fn wake(unix: &mut Personality, port: PortName, address: u64, count: u64, bitset: u32) -> u64 {
    let mut woken = alloc::vec::Vec::new();
    unix.futexes.retain(|f| {
        let take = (woken.len() as u64) < count
            && f.process == port
            && f.address == address
            && f.bitset & bitset != 0;
        if take {
            woken.push(f.reply_to);
        }
        !take
    });
    let n = woken.len() as u64;
    for reply_to in woken {
        unix.answer_held(reply_to, Answer::Value(0));
    }
    n
}

#[allow(clippy::too_many_arguments)]
fn futex(
    unix: &mut Personality,
    port: PortName,
    address: u64,
    op: u64,
    value: u64,
    timeout: u64,
    address2: u64,
    value3: u64,
    reply_to: PortName,
) -> Answer {
    let Some(task) = unix.processes.get(&port).map(|p| p.task) else { return Answer::None };
    if !address.is_multiple_of(4) {
        return error(EINVAL);
    }
    let read_word = |at: u64| -> Result<u32, i64> {
        let mut word = [0u8; 4];
        vm_read(task, at, &mut word).map_err(|_| EFAULT)?;
        Ok(u32::from_le_bytes(word))
    };
    match op & !(FUTEX_PRIVATE_FLAG | FUTEX_CLOCK_REALTIME) {
        command @ (FUTEX_WAIT | FUTEX_WAIT_BITSET) => {
            let bitset = if command == FUTEX_WAIT_BITSET { value3 as u32 } else { u32::MAX };
            if bitset == 0 {
                return error(EINVAL);
            }
            match read_word(address) {
                Err(e) => return error(e),
                Ok(word) if word != value as u32 => return error(EAGAIN),
                Ok(_) => {}
            }
            // FUTEX_WAIT's timeout is relative; FUTEX_WAIT_BITSET's absolute, on the
            // monotonic clock unless FUTEX_CLOCK_REALTIME.
            let deadline = if timeout == 0 {
                None
            } else {
                let length = match crate::syscalls::read_timespec(task, timeout) {
                    Ok(length) => length,
                    Err(e) => return error(e),
                };
                let absolute = (command == FUTEX_WAIT_BITSET).then_some(op & FUTEX_CLOCK_REALTIME != 0);
                Some(crate::syscalls::deadline(length, absolute))
            };
            if deadline.is_some_and(|d| d <= libmach::uptime_ns()) {
                return error(ETIMEDOUT);
            }
            unix.futexes.push(FutexWait { process: port, address, bitset, reply_to, deadline });
            Answer::Later
        }
        command @ (FUTEX_WAKE | FUTEX_WAKE_BITSET) => {
            let bitset = if command == FUTEX_WAKE_BITSET { value3 as u32 } else { u32::MAX };
            if bitset == 0 {
                return error(EINVAL);
            }
            Answer::Value(wake(unix, port, address, value, bitset) as i64)
        }
        command @ (FUTEX_REQUEUE | FUTEX_CMP_REQUEUE) => {
            if command == FUTEX_CMP_REQUEUE {
                match read_word(address) {
                    Err(e) => return error(e),
                    Ok(word) if word != value3 as u32 => return error(EAGAIN),
                    Ok(_) => {}
                }
            }
            let woken = wake(unix, port, address, value, u32::MAX);
            // The timeout argument is the most to move (val2).
            let mut moved = 0u64;
            for f in unix.futexes.iter_mut().filter(|f| f.process == port && f.address == address) {
                if moved >= timeout {
                    break;
                }
                f.address = address2;
                moved += 1;
            }
            Answer::Value((woken + moved) as i64)
        }
        _ => error(ENOSYS),
    }
}

//! Traps on threads, named by their thread ports: create, exit, sleep, priorities, and their
//! saved registers (`thread_get_state`, `thread_set_state`).
//!
//! Registers a user supplies are checked (`forward::UserRegisters`) before they are loaded:
//! no rip, rsp or FS base outside user space ever reaches the CPU. Handlers that take the
//! world never switch threads; the dispatcher does, after, when one must give way.

use crate::arch::trap_frame::TrapFrame;
use crate::forward::{UserRegisters, registers_of};
use crate::memory::user::UserPtr;
use crate::port_traps::give_to_caller;
use crate::sched;
use crate::world::{self, TaskId, ThreadId, World};
use mach_abi::KernelError;
use mach_abi::forward::Registers;
use mach_abi::layout::USER_END;

/// `thread_create(task, rip, rsp, rdi, rsi) -> name`: a thread that enters user mode at
/// `rip` with stack `rsp`; the caller gets a send right to its port.
pub fn thread_create(
    w: &mut World,
    task: TaskId,
    rip: u64,
    rsp: u64,
    rdi: u64,
    rsi: u64,
) -> Result<u64, KernelError> {
    if rip >= USER_END || rsp >= USER_END {
        return Err(KernelError::InvalidAddress);
    }
    crate::memory::heap::room_for_user_objects()?;
    let mut frame = TrapFrame::new_user(rip, rsp);
    frame.rdi = rdi;
    frame.rsi = rsi;
    let thread = world::spawn_thread(w, task, &frame, world::DEFAULT_PRIORITY)?;
    give_thread_port(w, thread)
}

/// `sleep(ms)`; `sleep(0)` yields to ready threads of the same or higher priority. Takes
/// no lock: it switches threads.
pub fn sleep(ms: u64) -> Result<u64, KernelError> {
    if ms == 0 {
        sched::schedule();
    } else {
        sched::block_current(None, Some(sched::deadline_after_ms(ms)));
    }
    Ok(0)
}

/// A send right to `thread`'s port, put into the caller's name space.
fn give_thread_port(w: &mut World, thread: ThreadId) -> Result<u64, KernelError> {
    let right = w.thread_port_right(thread).ok_or(KernelError::InvalidArgument)?;
    give_to_caller(w, right)
}

/// `thread_self() -> name`: a send right to the calling thread's port.
pub fn thread_self(w: &mut World) -> Result<u64, KernelError> {
    let thread = w.current_thread();
    give_thread_port(w, thread)
}

/// `thread_terminate(thread)`: mark the thread dead (it is reaped like any ended thread: a
/// forwarded call it waited in loses its reply right). True when it is the caller, which
/// must then schedule away and never return.
pub fn thread_terminate(w: &mut World, thread: ThreadId) -> bool {
    world::kill_thread(w, thread);
    w.current_thread() == thread
}

/// `thread_get_fpu_state(thread, out)`: the thread's x87/SSE registers (FXSAVE layout). For
/// the caller, as they are now.
pub fn thread_get_fpu_state(
    w: &mut World,
    thread: ThreadId,
    out: UserPtr<[u8; 512]>,
) -> Result<u64, KernelError> {
    let current = w.current_thread() == thread;
    let t = w.threads.get_mut(thread).ok_or(KernelError::InvalidArgument)?;
    let fpu = t.fpu.as_deref_mut().ok_or(KernelError::InvalidArgument)?;
    if current {
        fpu.save();
    }
    out.write(fpu.bytes())?;
    Ok(0)
}

/// `thread_set_fpu_state(thread, state)`: replace them (refused, InvalidArgument, when MXCSR
/// has a bit the CPU does not support: loading it would fault). For the caller, at once.
pub fn thread_set_fpu_state(
    w: &mut World,
    thread: ThreadId,
    input: UserPtr<[u8; 512]>,
) -> Result<u64, KernelError> {
    let bytes = input.read()?;
    let current = w.current_thread() == thread;
    let t = w.threads.get_mut(thread).ok_or(KernelError::InvalidArgument)?;
    let fpu = t.fpu.as_deref_mut().ok_or(KernelError::InvalidArgument)?;
    if !fpu.set_checked(&bytes) {
        return Err(KernelError::InvalidArgument);
    }
    if current {
        fpu.load();
    }
    Ok(0)
}

/// `thread_get_state(thread, out: *mut Registers)`: the thread's user registers as they
/// are while it is stopped in the kernel (for the caller itself: as at this trap).
pub fn thread_get_state(
    w: &mut World,
    thread: ThreadId,
    out: UserPtr<Registers>,
) -> Result<u64, KernelError> {
    let fs_base = w.fs_base(thread);
    let registers =
        w.with_user_frame(thread, |f| registers_of(f, fs_base)).ok_or(KernelError::InvalidArgument)?;
    out.write(&registers)?;
    Ok(0)
}

/// `thread_set_state(thread, registers: *const Registers)`: replace the thread's user
/// registers (rip, rsp and the FS base must be user addresses). Meant for a thread that is
/// suspended or stopped in a fault; a thread inside a system call gets that call's result in
/// rax after. Not the caller's own.
pub fn thread_set_state(
    w: &mut World,
    thread: ThreadId,
    input: UserPtr<Registers>,
) -> Result<u64, KernelError> {
    let registers = UserRegisters::check(&input.read()?)?;
    if w.current_thread() == thread {
        return Err(KernelError::InvalidArgument);
    }
    w.update_user_frame(thread, |frame| registers.apply(frame)).ok_or(KernelError::InvalidArgument)?;
    w.set_fs_base(thread, registers.fs_base());
    Ok(0)
}

/// `thread_set_priority(thread, priority) -> previous`. Returns also whether the caller must
/// give way at once: a ready thread now outranks it (it raised another, or lowered itself).
pub fn thread_set_priority(
    w: &mut World,
    thread: ThreadId,
    priority: u64,
) -> Result<(u64, bool), KernelError> {
    if priority > mach_abi::MAX_PRIORITY {
        return Err(KernelError::InvalidArgument);
    }
    let old = w.set_priority(thread, priority as u8)?;
    Ok((u64::from(old), w.is_outranked()))
}

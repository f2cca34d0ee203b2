//! Traps on threads, named by their thread ports: create, exit, sleep, priorities, and their
//! saved registers (`thread_get_state`, `thread_set_state`).
//!
//! Registers a user supplies are checked (`forward::UserRegisters`) before they are loaded:
//! no rip, rsp or FS base outside user space ever reaches the CPU.

use crate::arch::trap_frame::TrapFrame;
use crate::args::thread_of;
use crate::memory::user::UserPtr;
use crate::sched;
use crate::world;
use mach_abi::KernelError;
use mach_abi::layout::USER_END;

pub fn thread_create(task: u64, rip: u64, rsp: u64, rdi: u64, rsi: u64) -> Result<u64, KernelError> {
    let task = crate::args::task_of(task)?;
    if rip >= USER_END || rsp >= USER_END {
        return Err(KernelError::InvalidAddress);
    }
    crate::memory::heap::room_for_user_objects()?;
    let mut frame = TrapFrame::new_user(rip, rsp);
    frame.rdi = rdi;
    frame.rsi = rsi;
    let thread = world::spawn_thread(task, &frame, world::DEFAULT_PRIORITY)?;
    crate::thread_traps::give_thread_port(thread)
}

/// `sleep(ms)`; `sleep(0)` yields to ready threads of the same or higher priority.
pub fn sleep(ms: u64) -> Result<u64, KernelError> {
    if ms == 0 {
        sched::schedule();
    } else {
        sched::block_current(None, Some(sched::deadline_after_ms(ms)));
    }
    Ok(0)
}

/// A send right to `thread`'s port, put into the caller's name space.
pub fn give_thread_port(thread: world::ThreadId) -> Result<u64, KernelError> {
    world::with(|w| {
        let right = w.thread_port_right(thread).ok_or(KernelError::InvalidArgument)?;
        crate::port_traps::give_to_caller(w, right)
    })
}

/// `thread_get_state(thread, out: *mut Registers)`: the thread's user registers as they
/// are while it is stopped in the kernel (for the caller itself: as at this trap).
pub fn thread_get_state(thread: u64, out: u64) -> Result<u64, KernelError> {
    let thread = thread_of(thread)?;
    let registers = world::with(|w| {
        let fs_base = w.fs_base(thread);
        w.with_user_frame(thread, |f| crate::forward::registers_of(f, fs_base))
            .ok_or(KernelError::InvalidArgument)
    })?;
    UserPtr::new(out).write(&registers)?;
    Ok(0)
}

/// `thread_set_state(thread, registers: *const Registers)`: replace the thread's user
/// registers (rip, rsp and the FS base must be user addresses). Meant for a thread that is
/// suspended or stopped in a fault; a thread inside a system call gets that call's result in
/// rax after.
pub fn thread_set_state(thread: u64, input: u64) -> Result<u64, KernelError> {
    let thread = thread_of(thread)?;
    let registers = UserPtr::<mach_abi::forward::Registers>::new(input).read()?;
    let registers = crate::forward::UserRegisters::check(&registers)?;
    world::with(|w| {
        if w.current_thread() == thread {
            return Err(KernelError::InvalidArgument);
        }
        w.update_user_frame(thread, |frame| registers.apply(frame)).ok_or(KernelError::InvalidArgument)?;
        w.set_fs_base(thread, registers.fs_base());
        Ok(0)
    })
}

/// `thread_self() -> name`: a send right to the calling thread's port.
pub fn thread_self() -> Result<u64, KernelError> {
    give_thread_port(world::with(|w| w.current_thread()))
}

/// `thread_set_priority(thread, priority) -> previous`. The caller gives way at once when a
/// ready thread now outranks it (it raised another, or lowered itself).
pub fn thread_set_priority(thread: u64, priority: u64) -> Result<u64, KernelError> {
    let thread = thread_of(thread)?;
    if priority > mach_abi::MAX_PRIORITY {
        return Err(KernelError::InvalidArgument);
    }
    let (old, give_way) = world::with(|w| {
        let old = w.set_priority(thread, priority as u8)?;
        Ok::<_, KernelError>((old, w.is_outranked()))
    })?;
    if give_way {
        sched::schedule();
    }
    Ok(u64::from(old))
}

//! Traps on tasks, named by their task ports: create (empty, or a copy-on-write copy for
//! fork), terminate, special ports, end notifications, names, suspend and resume. Holding a
//! send right to a task's port is the permission to use it; nothing else is checked, and
//! nothing else is needed.
//!
//! Handlers get their arguments decoded (`args.rs`, by `trap.rs`) and the world locked; they
//! must never trust anything else, and never switch threads (the dispatcher does, after).

use crate::args::kept_right_arg;
use crate::memory::paging::AddressSpace;
use crate::memory::user::UserSlice;
use crate::port_traps::give_to_caller;
use crate::world::{self, TaskId, World};
use alloc::string::String;
use alloc::vec::Vec;
use mach_abi::KernelError;
use mach_abi::ipc::{PORT_NULL, PortName, disposition};
use mach_kernel::ipc::CarriedRight;

/// `task_self() -> name`: a send right to the caller's own task port (one more reference
/// under the same name).
pub fn task_self(w: &mut World) -> Result<u64, KernelError> {
    let task = w.current_task_id().ok_or(KernelError::InvalidArgument)?;
    give_task_port(w, task)
}

/// A send right to task `id`'s port, in the caller's name space.
fn give_task_port(w: &mut World, id: TaskId) -> Result<u64, KernelError> {
    let port = w.tasks.get(id).map(|t| t.self_port.port).ok_or(KernelError::InvalidArgument)?;
    let right = w.ports.make_send(port).ok_or(KernelError::PortDead)?;
    give_to_caller(w, right)
}

/// `task_create() -> name`: a new task with empty memory, no rights and no thread.
pub fn task_create(w: &mut World) -> Result<u64, KernelError> {
    crate::memory::heap::room_for_user_objects()?;
    let space = AddressSpace::new_user()?;
    let parent = w.current_task_id().and_then(|t| w.tasks.get(t)).map(|t| t.name.clone()).unwrap_or_default();
    let id = world::create_task(w, &alloc::format!("{parent}.child"), space, None);
    give_task_port(w, id)
}

/// `task_create_copy(parent) -> name`: a new task whose memory is a copy-on-write copy of the
/// parent's (no threads, no rights); the caller gets a send right to its port. For fork.
pub fn task_create_copy(w: &mut World, parent: TaskId) -> Result<u64, KernelError> {
    crate::memory::heap::room_for_user_objects()?;
    let p = w.tasks.get_mut(parent).ok_or(KernelError::InvalidArgument)?;
    let name = alloc::format!("{}.copy", p.name);
    let space = p.space.copy_on_write()?;
    // The copy has the parent's memory, so "anywhere" placement goes on where it was.
    let hint = p.next_free_address;
    let id = world::create_task(w, &name, space, Some(hint));
    give_task_port(w, id)
}

/// `task_set_special_port(task, which, name)`: the task gets a copy of the caller's send
/// right `name` (0 clears).
pub fn task_set_special_port(
    w: &mut World,
    task: TaskId,
    index: usize,
    name: PortName,
) -> Result<u64, KernelError> {
    let mut events = Vec::new();
    let right = if name == PORT_NULL {
        None
    } else {
        let (caller, ports) = w.current_task_and_ports().ok_or(KernelError::InvalidArgument)?;
        kept_right_arg(&caller.names, ports, name, disposition::COPY_SEND)?;
        Some(caller.names.copyin(name, disposition::COPY_SEND, ports, &mut events)?)
    };
    let t = w.tasks.get_mut(task).ok_or(KernelError::InvalidArgument)?;
    let old = t.special_ports.get_mut(index).ok_or(KernelError::InvalidArgument)?;
    let old = core::mem::replace(old, right);
    if let Some(old) = old {
        w.ports.release(old, &mut events);
    }
    w.handle_events(&mut events);
    Ok(0)
}

/// `task_get_special_port(task, which) -> name`: a copy of the send right, 0 for none, or
/// `PORT_DEAD` when its port died.
pub fn task_get_special_port(w: &mut World, task: TaskId, index: usize) -> Result<u64, KernelError> {
    let port = w.tasks.get(task).and_then(|t| t.special_ports.get(index).copied().flatten());
    let Some(port) = port else { return Ok(0) };
    let Some(copy) = w.ports.make_send(port.port) else { return Ok(u64::from(mach_abi::ipc::PORT_DEAD)) };
    give_to_caller(w, copy)
}

/// The send right (kernel-held) that a task's syscall or exception messages go to.
pub fn special_port_of(w: &World, task: TaskId, which: u64) -> Option<CarriedRight> {
    let index = crate::args::special_index(which).ok()?;
    w.tasks.get(task)?.special_ports.get(index).copied().flatten()
}

/// `task_notify_ended(task, port, disposition)`: a task-ended message goes to `port` when
/// the task ends.
pub fn task_notify_ended(w: &mut World, task: TaskId, port: PortName, how: u8) -> Result<u64, KernelError> {
    crate::memory::heap::room_for_user_objects()?;
    let mut events = Vec::new();
    let (caller, ports) = w.current_task_and_ports().ok_or(KernelError::InvalidArgument)?;
    kept_right_arg(&caller.names, ports, port, how)?;
    let right = caller.names.copyin(port, how, ports, &mut events)?;
    match w.tasks.get_mut(task) {
        Some(t) => t.ended_notifications.push(right),
        None => w.ports.release(right, &mut events),
    }
    w.handle_events(&mut events);
    Ok(0)
}

/// `task_set_name(task, text, length)`: the name the kernel log shows (1 to 32 bytes of
/// UTF-8).
pub fn task_set_name(w: &mut World, task: TaskId, text: u64, len: u64) -> Result<u64, KernelError> {
    let len =
        usize::try_from(len).ok().filter(|&l| (1..=32).contains(&l)).ok_or(KernelError::InvalidArgument)?;
    let mut buffer = [0u8; 32];
    let bytes = buffer.get_mut(..len).ok_or(KernelError::InvalidArgument)?;
    UserSlice::new(text, len)?.read(bytes)?;
    let name = core::str::from_utf8(bytes).map_err(|_| KernelError::InvalidArgument)?;
    w.tasks.get_mut(task).ok_or(KernelError::InvalidArgument)?.name = String::from(name);
    Ok(0)
}

/// `task_suspend(task)`: its threads stop running (counted). The dispatcher switches away
/// after, in case the caller suspended its own task.
pub fn task_suspend(w: &mut World, task: TaskId) -> Result<u64, KernelError> {
    w.suspend_task(task)?;
    Ok(0)
}

/// `task_resume(task)`: undo one suspension.
pub fn task_resume(w: &mut World, task: TaskId) -> Result<u64, KernelError> {
    w.resume_task(task)?;
    Ok(0)
}

/// `task_terminate(task)`: every thread ends, memory and rights are freed. Takes the lock
/// itself: the caller may have ended its own task, and then never comes back.
pub fn task_terminate(task: TaskId) -> Result<u64, KernelError> {
    if world::terminate_task(task)? {
        crate::sched::schedule();
        unreachable!("a terminated thread was scheduled");
    }
    Ok(0)
}

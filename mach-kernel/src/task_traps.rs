//! Traps on tasks, named by their task ports: create (empty, or a copy-on-write copy for
//! fork), terminate, special ports, end notifications, names, suspend and resume. Holding a
//! send right to a task's port is the permission to use it; nothing else is checked, and
//! nothing else is needed.
//!
//! It must never trust an argument: every name and index is checked (`args.rs`) before
//! anything changes.

use crate::args::{name_arg, special_index, task_of};
use crate::port_traps::give_to_caller;
use crate::sched::{self};
use crate::world;
use crate::world::{TaskId, World};
use alloc::vec::Vec;
use mach_abi::KernelError;
use mach_abi::ipc::{PORT_NULL, disposition};
use mach_kernel::ipc::CarriedRight;

/// A send right to the caller's own task port (one more reference under the same name).
pub fn task_self() -> Result<u64, KernelError> {
    world::with(|w| {
        let port = w.current_task_id().and_then(|t| w.tasks.get(t)).map(|t| t.self_port.port);
        let right = port.and_then(|p| w.ports.make_send(p)).ok_or(KernelError::PortDead)?;
        give_to_caller(w, right)
    })
}

pub fn task_create() -> Result<u64, KernelError> {
    crate::memory::heap::room_for_user_objects()?;
    let space = crate::memory::paging::AddressSpace::new_user()?;
    let parent = world::with_current_task(|t| t.name.clone()).unwrap_or_default();
    let id = world::create_task(&alloc::format!("{parent}.child"), space, None);
    give_task_port(id)
}

/// A send right to task `id`'s port, in the caller's name space.
fn give_task_port(id: TaskId) -> Result<u64, KernelError> {
    world::with(|w| {
        let port = w.tasks.get(id).map(|t| t.self_port.port).ok_or(KernelError::InvalidArgument)?;
        let right = w.ports.make_send(port).ok_or(KernelError::PortDead)?;
        crate::port_traps::give_to_caller(w, right)
    })
}

pub fn task_terminate(task: u64) -> Result<u64, KernelError> {
    let task = task_of(task)?;
    if world::terminate_task(task)? {
        sched::schedule();
        unreachable!("a terminated thread was scheduled");
    }
    Ok(0)
}

pub fn task_set_special_port(task: u64, which: u64, name: u64) -> Result<u64, KernelError> {
    let task = task_of(task)?;
    let index = special_index(which)?;
    let name = name_arg(name)?;
    world::with(|w| {
        let mut events = Vec::new();
        let right = if name == PORT_NULL {
            None
        } else {
            let (caller, ports) = w.current_task_and_ports().ok_or(KernelError::InvalidArgument)?;
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
    })
}

pub fn task_get_special_port(task: u64, which: u64) -> Result<u64, KernelError> {
    let task = task_of(task)?;
    let index = special_index(which)?;
    world::with(|w| {
        let port = w.tasks.get(task).and_then(|t| t.special_ports.get(index).copied().flatten());
        let Some(port) = port else { return Ok(0) };
        let Some(copy) = w.ports.make_send(port.port) else { return Ok(u64::from(mach_abi::ipc::PORT_DEAD)) };
        crate::port_traps::give_to_caller(w, copy)
    })
}

/// The send right (kernel-held) that a task's syscall or exception messages go to.
pub fn special_port_of(w: &World, task: TaskId, which: u64) -> Option<CarriedRight> {
    w.tasks.get(task)?.special_ports.get(special_index(which).ok()?).copied().flatten()
}

pub fn task_notify_ended(task: u64, port: u64, how: u64) -> Result<u64, KernelError> {
    let task = task_of(task)?;
    let port = name_arg(port)?;
    let how = u8::try_from(how).map_err(|_| KernelError::InvalidDisposition)?;
    if how == disposition::MOVE_RECEIVE {
        return Err(KernelError::InvalidDisposition);
    }
    crate::memory::heap::room_for_user_objects()?;
    world::with(|w| {
        let mut events = Vec::new();
        let (caller, ports) = w.current_task_and_ports().ok_or(KernelError::InvalidArgument)?;
        let right = caller.names.copyin(port, how, ports, &mut events)?;
        match w.tasks.get_mut(task) {
            Some(t) => t.ended_notifications.push(right),
            None => w.ports.release(right, &mut events),
        }
        w.handle_events(&mut events);
        Ok(0)
    })
}

pub fn task_set_name(task: u64, text: u64, len: u64) -> Result<u64, KernelError> {
    let task = task_of(task)?;
    let len =
        usize::try_from(len).ok().filter(|&l| (1..=32).contains(&l)).ok_or(KernelError::InvalidArgument)?;
    let mut buffer = [0u8; 32];
    let bytes = buffer.get_mut(..len).ok_or(KernelError::InvalidArgument)?;
    crate::memory::user::UserSlice::new(text, len)?.read(bytes)?;
    let name = core::str::from_utf8(bytes).map_err(|_| KernelError::InvalidArgument)?;
    world::with(|w| {
        let t = w.tasks.get_mut(task).ok_or(KernelError::InvalidArgument)?;
        t.name = alloc::string::String::from(name);
        Ok(0)
    })
}

pub fn task_suspend(task: u64) -> Result<u64, KernelError> {
    let task = task_of(task)?;
    world::with(|w| w.suspend_task(task))?;
    // The caller may have suspended its own task: it stops here until resumed.
    sched::schedule();
    Ok(0)
}

pub fn task_resume(task: u64) -> Result<u64, KernelError> {
    let task = task_of(task)?;
    world::with(|w| w.resume_task(task))?;
    Ok(0)
}

/// `task_create_copy(parent) -> name`: a new task whose memory is a copy-on-write copy of the
/// parent's (no threads, no rights); the caller gets a send right to its port. For fork.
pub fn task_create_copy(parent: u64) -> Result<u64, KernelError> {
    let parent = task_of(parent)?;
    crate::memory::heap::room_for_user_objects()?;
    let (space, name, hint) = world::with(|w| {
        let p = w.tasks.get_mut(parent).ok_or(KernelError::InvalidArgument)?;
        let name = alloc::format!("{}.copy", p.name);
        Ok::<_, KernelError>((p.space.copy_on_write()?, name, p.next_free_address))
    })?;
    // The copy has the parent's memory, so "anywhere" placement goes on where it was.
    let id = world::create_task(&name, space, Some(hint));
    give_task_port(id)
}

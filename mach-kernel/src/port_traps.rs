//! The port traps: allocate, deallocate, destroy, type, sets, send rights, queue limits and
//! notification requests, all on the caller's own name space.
//!
//! Every name comes from the caller and is looked up in its name space: a bad one is an
//! error code, never a kernel fault; nothing here touches user memory.

use crate::args::name_arg;
use crate::message::Message;
use crate::world;
use crate::world::World;
use alloc::vec::Vec;
use mach_abi::KernelError;
use mach_abi::ipc::disposition;
use mach_kernel::ipc::{CarriedRight, Event, NotificationKind, PortTable};

/// Run a name-space operation on the current task.
fn on_names<T>(
    f: impl FnOnce(&mut world::Task, &mut PortTable<Message>, &mut Vec<Event>) -> Result<T, KernelError>,
) -> Result<T, KernelError> {
    world::with(|w| {
        let mut events = Vec::new();
        let result = {
            let (task, ports) = w.current_task_and_ports().ok_or(KernelError::InvalidArgument)?;
            f(task, ports, &mut events)
        };
        w.handle_events(&mut events);
        result
    })
}

pub fn port_allocate() -> Result<u64, KernelError> {
    crate::memory::heap::room_for_user_objects()?;
    on_names(|t, p, _| {
        t.held.room_for_name(t.names.len())?;
        t.names.allocate_port(p).map(u64::from)
    })
}

pub fn port_allocate_set() -> Result<u64, KernelError> {
    crate::memory::heap::room_for_user_objects()?;
    on_names(|t, p, _| {
        t.held.room_for_name(t.names.len())?;
        t.names.allocate_set(p).map(u64::from)
    })
}

pub fn port_deallocate(name: u64) -> Result<u64, KernelError> {
    let name = name_arg(name)?;
    on_names(|t, p, e| t.names.deallocate(name, p, e).map(|_| 0))
}

pub fn port_destroy(name: u64) -> Result<u64, KernelError> {
    let name = name_arg(name)?;
    on_names(|t, p, e| t.names.destroy(name, p, e).map(|_| 0))
}

pub fn port_type(name: u64) -> Result<u64, KernelError> {
    let name = name_arg(name)?;
    on_names(|t, p, _| t.names.right_type(name, p))
}

pub fn port_move_member(member: u64, set: u64) -> Result<u64, KernelError> {
    let (member, set) = (name_arg(member)?, name_arg(set)?);
    on_names(|t, p, _| t.names.move_member(member, set, p).map(|_| 0))
}

/// Add a send reference under the name of a receive right the task holds.
pub fn port_make_send(name: u64) -> Result<u64, KernelError> {
    let name = name_arg(name)?;
    on_names(|t, p, e| {
        let right = t.names.copyin(name, disposition::MAKE_SEND, p, e)?;
        t.names.copyout(right, p, e).map(u64::from)
    })
}

pub fn port_set_queue_limit(name: u64, limit: u64) -> Result<u64, KernelError> {
    let name = name_arg(name)?;
    let limit =
        usize::try_from(limit).ok().filter(|l| (1..=1024).contains(l)).ok_or(KernelError::InvalidArgument)?;
    let (id, room) = on_names(|t, p, _| {
        let id = t.names.receive_port(name)?;
        let port = p.get_mut(id).ok_or(KernelError::InvalidName)?;
        port.queue_limit = limit;
        Ok((id, limit.saturating_sub(port.queue.len())))
    })?;
    // A higher limit makes room: senders waiting for it try again (those that find none
    // wait again).
    world::with(|w| (0..room).take_while(|_| w.wake_one_waiting_on(id, true)).count());
    Ok(0)
}

/// `port_request_notification(name, kind, notify_port, disposition)`.
pub fn port_request_notification(name: u64, kind: u64, notify: u64, how: u64) -> Result<u64, KernelError> {
    let (name, notify) = (name_arg(name)?, name_arg(notify)?);
    let kind = match kind {
        mach_abi::notify::DEAD_NAME => NotificationKind::DeadName,
        mach_abi::notify::NO_SENDERS => NotificationKind::NoSenders,
        mach_abi::notify::PORT_DESTROYED => NotificationKind::PortDestroyed,
        _ => return Err(KernelError::InvalidArgument),
    };
    let how = u8::try_from(how).map_err(|_| KernelError::InvalidDisposition)?;
    if how == disposition::MOVE_RECEIVE {
        return Err(KernelError::InvalidDisposition);
    }
    crate::memory::heap::room_for_user_objects()?;
    on_names(|t, p, e| {
        let to = t.names.copyin(notify, how, p, e)?;
        t.names.request_notification(name, kind, to, p, e).map(|_| 0)
    })
}

/// Put a right the kernel made (a send right to a kernel object, say) into the caller's
/// name space; its name.
pub fn give_to_caller(w: &mut World, right: CarriedRight) -> Result<u64, KernelError> {
    let mut events = Vec::new();
    let name = match w.current_task_and_ports() {
        Some((task, ports)) => task.names.copyout(right, ports, &mut events),
        None => {
            w.ports.release(right, &mut events);
            Err(KernelError::InvalidArgument)
        }
    };
    w.handle_events(&mut events);
    name.map(u64::from)
}

//! The port traps: allocate, deallocate, destroy, type, sets, send rights, queue limits and
//! notification requests, all on the caller's own name space.
//!
//! Every name comes from the caller and is looked up in its name space: a bad one is an
//! error code, never a kernel fault; nothing here touches user memory.

use crate::message::Message;
use crate::world;
use crate::world::World;
use alloc::vec::Vec;
use mach_abi::KernelError;
use mach_abi::ipc::{PortName, disposition};
use mach_kernel::ipc::{CarriedRight, Event, NotificationKind, PortTable};

/// Run a name-space operation on the caller, then act on what it caused.
fn on_names<T>(
    w: &mut World,
    f: impl FnOnce(&mut world::Task, &mut PortTable<Message>, &mut Vec<Event>) -> Result<T, KernelError>,
) -> Result<T, KernelError> {
    let mut events = Vec::new();
    let result = {
        let (task, ports) = w.current_task_and_ports().ok_or(KernelError::InvalidArgument)?;
        f(task, ports, &mut events)
    };
    w.handle_events(&mut events);
    result
}

/// `port_allocate() -> name`: a new port; the caller holds its receive right.
pub fn port_allocate(w: &mut World) -> Result<u64, KernelError> {
    crate::memory::heap::room_for_user_objects()?;
    on_names(w, |t, p, _| {
        t.held.room_for_name(t.names.len())?;
        t.names.allocate_port(p).map(u64::from)
    })
}

/// `port_allocate_set() -> name`: a new, empty port set.
pub fn port_allocate_set(w: &mut World) -> Result<u64, KernelError> {
    crate::memory::heap::room_for_user_objects()?;
    on_names(w, |t, p, _| {
        t.held.room_for_name(t.names.len())?;
        t.names.allocate_set(p).map(u64::from)
    })
}

/// `port_deallocate(name)`: drop one reference of a send, send-once or dead-name right.
pub fn port_deallocate(w: &mut World, name: PortName) -> Result<u64, KernelError> {
    on_names(w, |t, p, e| t.names.deallocate(name, p, e).map(|_| 0))
}

/// `port_destroy(name)`: destroy every right under the name (a receive right kills the
/// port).
pub fn port_destroy(w: &mut World, name: PortName) -> Result<u64, KernelError> {
    on_names(w, |t, p, e| t.names.destroy(name, p, e).map(|_| 0))
}

/// `port_type(name) -> bits`: which rights the name stands for (`right_type`).
pub fn port_type(w: &mut World, name: PortName) -> Result<u64, KernelError> {
    on_names(w, |t, p, _| t.names.right_type(name, p))
}

/// `port_move_member(member, set)`: put a receive right into a set (0: take it out).
pub fn port_move_member(w: &mut World, member: PortName, set: PortName) -> Result<u64, KernelError> {
    on_names(w, |t, p, _| t.names.move_member(member, set, p).map(|_| 0))
}

/// Add a send reference under the name of a receive right the task holds.
pub fn port_make_send(w: &mut World, name: PortName) -> Result<u64, KernelError> {
    on_names(w, |t, p, e| {
        let right = t.names.copyin(name, disposition::MAKE_SEND, p, e)?;
        t.names.copyout(right, p, e).map(u64::from)
    })
}

/// `port_set_queue_limit(name, limit)`: messages queued before senders wait (1..=1024);
/// a higher limit lets waiting senders go on.
pub fn port_set_queue_limit(w: &mut World, name: PortName, limit: u64) -> Result<u64, KernelError> {
    let limit =
        usize::try_from(limit).ok().filter(|l| (1..=1024).contains(l)).ok_or(KernelError::InvalidArgument)?;
    let (id, room) = on_names(w, |t, p, _| {
        let id = t.names.receive_port(name)?;
        let port = p.get_mut(id).ok_or(KernelError::InvalidName)?;
        port.queue_limit = limit;
        Ok((id, limit.saturating_sub(port.queue.len())))
    })?;
    // A higher limit makes room: senders waiting for it try again (those that find none
    // wait again).
    (0..room).take_while(|_| w.wake_one_waiting_on(id, true)).count();
    Ok(0)
}

/// `port_request_notification(name, kind, notify_port, disposition)`.
pub fn port_request_notification(
    w: &mut World,
    name: PortName,
    kind: u64,
    notify: PortName,
    how: u64,
) -> Result<u64, KernelError> {
    let kind = match kind {
        mach_abi::notify::DEAD_NAME => NotificationKind::DeadName,
        mach_abi::notify::NO_SENDERS => NotificationKind::NoSenders,
        mach_abi::notify::PORT_DESTROYED => NotificationKind::PortDestroyed,
        _ => return Err(KernelError::InvalidArgument),
    };
    let how = crate::args::kept_disposition_arg(how)?;
    crate::memory::heap::room_for_user_objects()?;
    on_names(w, |t, p, e| {
        crate::args::kept_right_arg(&t.names, p, notify, how)?;
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

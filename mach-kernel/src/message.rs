//! The kernel's message: what `mach_msg` copies out of a sender and into a receiver (inline
//! data, rights in transit, out-of-line pages), and the messages the kernel sends itself
//! (notifications, task-ended notices, interrupts, forwarded calls), queued without a limit.
//!
//! It must never block and never touch user memory: building and queueing only.

use crate::memory::frames;
use crate::world::TaskId;
use crate::world::World;
use alloc::vec::Vec;
use mach_abi::ipc::{HEADER_SIZE, OOL_DESCRIPTOR_SIZE, PORT_DESCRIPTOR_SIZE};
use mach_kernel::held::HeldCharge;
use mach_kernel::ipc::{CarriedRight, Event, Notification, NotificationKind, PortTable};

/// A message on its way: rights in transit, out-of-line pages, and the inline data.
pub struct Message {
    /// The reply right the sender attached (delivered as `remote`).
    pub reply: Option<CarriedRight>,
    pub id: u32,
    pub trace: u32,
    pub ports: Vec<CarriedRight>,
    pub ool: Vec<OolRegion>,
    pub data: Vec<u8>,
    /// What the message counts against its sender's limit until it is received or
    /// destroyed (None for the kernel's own messages): kept for its `Drop`, which gives it
    /// back.
    #[allow(dead_code)]
    pub charge: Option<HeldCharge>,
}

/// A copied out-of-line region: its frames (owned by the message until received).
pub struct OolRegion {
    pub frames: Vec<u64>,
    pub size: u32,
}

impl OolRegion {
    pub fn free(self) {
        self.frames.into_iter().for_each(frames::free);
    }
}

/// What a message carries besides rights, read from the sender before the lock is taken.
pub struct Body {
    pub data: Vec<u8>,
    pub ool: Vec<OolRegion>,
    /// Regions to unmap from the sender once the message is queued (DEALLOCATE).
    pub deallocate: Vec<(u64, u64)>,
    /// The sender's charge for the data and the copies.
    pub charge: Option<HeldCharge>,
}

impl Body {
    pub fn free(self) {
        self.ool.into_iter().for_each(OolRegion::free);
    }
}

impl Message {
    /// A message the kernel itself sends (a notification, an interrupt, a forwarded call).
    pub fn from_kernel(
        id: u32,
        data: Vec<u8>,
        reply: Option<CarriedRight>,
        ports: Vec<CarriedRight>,
    ) -> Self {
        Message { reply, id, trace: 0, ports, ool: Vec::new(), data, charge: None }
    }

    /// Bytes the message takes in a receive buffer.
    pub fn size(&self) -> usize {
        HEADER_SIZE
            + self.ports.len() * PORT_DESCRIPTOR_SIZE
            + self.ool.len() * OOL_DESCRIPTOR_SIZE
            + self.data.len()
    }

    /// Release everything the message carries (it will never be received).
    pub fn destroy(self, ports: &mut PortTable<Message>, events: &mut Vec<Event>) {
        for right in self.reply.into_iter().chain(self.ports) {
            ports.release(right, events);
        }
        self.ool.into_iter().for_each(OolRegion::free);
    }
}

/// Queue a message the kernel itself sends (a notification) through `right`, ignoring the
/// queue limit; the right is used up. A dead destination destroys the message.
pub fn enqueue_from_kernel(w: &mut World, right: CarriedRight, message: Message, events: &mut Vec<Event>) {
    let alive = w.ports.get(right.port).is_some_and(|p| !p.is_dead() && p.kernel_object == 0);
    // A port-destroyed notification carrying a receive right to its own port (or round a
    // cycle of rights in transit) is destroyed, and the port with it.
    let cycle =
        message.ports.iter().chain(&message.reply).any(|r| {
            r.kind == mach_kernel::ipc::CarriedKind::Receive && w.ports.would_cycle(right.port, r.port)
        });
    if !alive || cycle {
        message.destroy(&mut w.ports, events);
        w.ports.release(right, events);
        return;
    }
    w.ports.note_queued(&message.ports, right.port);
    let set = w.ports.get_mut(right.port).map(|p| {
        p.queue.push_back(message);
        p.set
    });
    w.ports.consume_destination(right, events);
    if !w.wake_one_waiting_on(right.port, false)
        && let Some(Some(set)) = set
    {
        w.wake_one_waiting_on(set, false);
    }
}

/// Send one notification the port table asked for.
pub fn send_notification(w: &mut World, n: Notification, events: &mut Vec<Event>) {
    let id = match n.kind {
        NotificationKind::DeadName => mach_abi::notify::DEAD_NAME_MESSAGE,
        NotificationKind::NoSenders => mach_abi::notify::NO_SENDERS_MESSAGE,
        NotificationKind::PortDestroyed => mach_abi::notify::PORT_DESTROYED_MESSAGE,
    };
    let message =
        Message::from_kernel(id, n.name.to_le_bytes().to_vec(), None, n.receive.into_iter().collect());
    enqueue_from_kernel(w, n.to, message, events);
}

/// Send the task-ended notifications of a finished task.
pub fn notify_task_ended(w: &mut World, task: TaskId, rights: Vec<CarriedRight>, events: &mut Vec<Event>) {
    for right in rights {
        let message =
            Message::from_kernel(mach_abi::TASK_ENDED_MESSAGE, task.to_le_bytes().to_vec(), None, Vec::new());
        crate::message::enqueue_from_kernel(w, right, message, events);
    }
}

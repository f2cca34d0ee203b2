//! Ports and rights: the kernel's bookkeeping of who may send to and receive from what.
//!
//! - A [`Port`] is a queue of messages with one receive right and any number of send and
//!   send-once rights. Ports live in the [`PortTable`], referenced by [`PortId`].
//! - A [`NameSpace`] is a task's view: names mapping to rights. A task has one name per port
//!   for its receive and send rights together (send references are counted on that name);
//!   every send-once right gets a name of its own. When a port dies, the names of its send
//!   and send-once rights become dead names, lazily, when next looked at.
//! - A right in a message is a [`CarriedRight`]: taken out of the sender's name space by
//!   [`NameSpace::copyin`] and put into the receiver's by [`NameSpace::copyout`].
//!
//! This module is pure bookkeeping with host unit tests. It never blocks, never touches user
//! memory and never sends a message: operations return [`Event`]s (a port died, a port has
//! no senders left) for the kernel to act on. It must never panic on a user's mistake: every
//! bad name or disposition is an `Err`.

use crate::thread_queue::ThreadQueue;
use alloc::boxed::Box;
use alloc::collections::{BTreeMap, VecDeque};
use alloc::vec::Vec;
use mach_abi::KernelError;
use mach_abi::ipc::{PORT_DEAD, PORT_NULL, PortName, disposition, right_type};

/// Index of a port in the [`PortTable`].
pub type PortId = u32;

/// A right in transit (inside a message, or being moved by a trap).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CarriedRight {
    pub port: PortId,
    pub kind: CarriedKind,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CarriedKind {
    Receive,
    Send,
    SendOnce,
}

impl CarriedKind {
    /// The `received::*` code the receiver sees.
    pub fn received_code(self) -> u8 {
        match self {
            CarriedKind::Receive => mach_abi::ipc::received::RECEIVE,
            CarriedKind::Send => mach_abi::ipc::received::SEND,
            CarriedKind::SendOnce => mach_abi::ipc::received::SEND_ONCE,
        }
    }
}

/// Something the kernel must act on after a rights operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    /// The port's receive right was destroyed: wake its waiters with `PortDead`; its queued
    /// messages were handed back in [`PortTable::take_dead_messages`].
    PortDied(PortId),
    /// The last send right to a live port went away (no-senders notification).
    NoSenders(PortId),
    /// A send-once right was destroyed unused (the receiver will get no reply).
    SendOnceDestroyed(PortId),
}

/// The notifications a task can ask for (`mach_abi::notify`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotificationKind {
    /// On a send or send-once name: the port died.
    DeadName,
    /// On a receive right: the last send right went away.
    NoSenders,
    /// On a receive right: instead of dying, the receive right is sent in the notification.
    PortDestroyed,
}

/// A notification the kernel must send: through `to`, about the requester's `name`, carrying
/// `receive` for a port-destroyed notification.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Notification {
    pub to: CarriedRight,
    pub kind: NotificationKind,
    pub name: PortName,
    pub receive: Option<CarriedRight>,
}

/// Who holds a port's receive right.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Receiver {
    /// A task, under this name in its name space.
    Task { task: u64, name: PortName },
    /// In a message.
    InTransit,
    /// Nobody: the port is dead.
    Dead,
}

#[cfg_attr(test, derive(Clone))]
pub struct Port<M> {
    pub receiver: Receiver,
    /// The port set this port belongs to (the set's id), if any.
    pub set: Option<PortId>,
    /// Whether this is a port set rather than a port.
    pub is_set: bool,
    /// Members, for a port set.
    pub members: Vec<PortId>,
    /// Name-space entries and carried rights that refer to this slot.
    refs: u32,
    /// Send rights in existence (entries holding send, plus in transit).
    pub send_rights: u32,
    pub send_once_rights: u32,
    pub queue: VecDeque<M>,
    pub queue_limit: usize,
    /// Threads blocked receiving on this port (or set), oldest first. The kernel keeps it;
    /// entries may be stale (the thread timed out) and are checked when used.
    pub waiting_receivers: ThreadQueue,
    /// Threads blocked sending to this port because its queue is full.
    pub waiting_senders: ThreadQueue,
    /// Kernel-defined tag for ports that stand for kernel objects (0 = a plain port).
    pub kernel_object: u64,
    /// While the receive right is in a queued message: the port that message is queued on
    /// (see [`PortTable::note_queued`]); None otherwise.
    queued_on: Option<PortId>,
    /// Notification requests: right to notify through, and the requester's name.
    no_senders_request: Option<(CarriedRight, PortName)>,
    destroyed_request: Option<(CarriedRight, PortName)>,
    dead_name_requests: Vec<(CarriedRight, PortName)>,
}

impl<M> Port<M> {
    pub fn is_dead(&self) -> bool {
        self.receiver == Receiver::Dead
    }
}

/// All ports. `M` is the kernel's message type, kept opaque here.
#[cfg_attr(test, derive(Clone))]
pub struct PortTable<M> {
    /// Each port in its own allocation: the table stays 8 bytes a port, so growing it never
    /// needs a large contiguous piece of the kernel heap.
    slots: Vec<Option<Box<Port<M>>>>,
    free: Vec<PortId>,
    /// Messages queued on ports that died, for the kernel to destroy (their rights and
    /// memory must be released, which may kill further ports).
    dead_messages: Vec<M>,
    /// Threads that were waiting on ports that died, with the port: the kernel wakes them.
    dead_waiters: Vec<(PortId, u64)>,
    /// Threads that were waiting to receive on ports whose receive right left its task (moved
    /// into a message, or saved by a port-destroyed request), with the port: the kernel wakes
    /// them to look again (they hold that right no more).
    moved_waiters: Vec<(PortId, u64)>,
    /// Notifications to send.
    notifications: Vec<Notification>,
}

impl<M> Default for PortTable<M> {
    fn default() -> Self {
        PortTable {
            slots: Vec::new(),
            free: Vec::new(),
            dead_messages: Vec::new(),
            dead_waiters: Vec::new(),
            moved_waiters: Vec::new(),
            notifications: Vec::new(),
        }
    }
}

impl<M> PortTable<M> {
    #[inline]
    pub fn get(&self, id: PortId) -> Option<&Port<M>> {
        self.slots.get(id as usize)?.as_deref()
    }

    #[inline]
    pub fn get_mut(&mut self, id: PortId) -> Option<&mut Port<M>> {
        self.slots.get_mut(id as usize)?.as_deref_mut()
    }

    /// Number of port slots in use (live or dead but still referenced).
    pub fn len(&self) -> usize {
        self.slots.iter().filter(|s| s.is_some()).count()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn create(&mut self, receiver: Receiver, is_set: bool) -> PortId {
        let port = Port {
            receiver,
            set: None,
            is_set,
            members: Vec::new(),
            refs: 1,
            send_rights: 0,
            send_once_rights: 0,
            queue: VecDeque::new(),
            queue_limit: mach_abi::ipc::DEFAULT_QUEUE_LIMIT,
            waiting_receivers: ThreadQueue::new(),
            waiting_senders: ThreadQueue::new(),
            kernel_object: 0,
            queued_on: None,
            no_senders_request: None,
            destroyed_request: None,
            dead_name_requests: Vec::new(),
        };
        // The free list may hold ids the table was cut below since (see `free_slot`): they
        // are skipped, and so is one whose slot is in use again.
        while let Some(id) = self.free.pop() {
            if let Some(slot @ None) = self.slots.get_mut(id as usize) {
                *slot = Some(Box::new(port));
                return id;
            }
        }
        self.slots.push(Some(Box::new(port)));
        (self.slots.len() - 1) as PortId
    }

    fn add_ref(&mut self, id: PortId) {
        if let Some(p) = self.get_mut(id) {
            p.refs += 1;
        }
    }

    fn drop_ref(&mut self, id: PortId) {
        let Some(p) = self.get_mut(id) else { return };
        p.refs -= 1;
        if p.refs == 0 {
            self.free_slot(id);
        }
    }

    /// The last reference to the slot `id` is gone: it is free for a new port. Freeing the
    /// top slot cuts the table below the highest slot in use, and the table gives memory back
    /// once three quarters of it are unused, so what a burst of ports took comes back.
    #[cold]
    fn free_slot(&mut self, id: PortId) {
        if let Some(slot) = self.slots.get_mut(id as usize) {
            *slot = None;
        }
        if id as usize + 1 != self.slots.len() {
            self.free.push(id);
            return;
        }
        while self.slots.last().is_some_and(|s| s.is_none()) {
            self.slots.pop();
        }
        if self.slots.capacity() > 256 && self.slots.len() < self.slots.capacity() / 4 {
            self.slots.shrink_to(self.slots.len() * 2);
        }
        if self.free.capacity() > 256 && self.free.len() < self.free.capacity() / 4 {
            self.free.shrink_to(self.free.len() * 2);
        }
    }

    /// One send right fewer. Reports no-senders when it was the last.
    fn drop_send_right(&mut self, id: PortId, events: &mut Vec<Event>) {
        if let Some(p) = self.get_mut(id) {
            p.send_rights -= 1;
            if p.send_rights == 0 && !p.is_dead() {
                events.push(Event::NoSenders(id));
                if let Some((to, name)) = p.no_senders_request.take() {
                    self.notifications.push(Notification {
                        to,
                        kind: NotificationKind::NoSenders,
                        name,
                        receive: None,
                    });
                }
            }
        }
    }

    fn drop_send_once_right(&mut self, id: PortId, events: &mut Vec<Event>) {
        if let Some(p) = self.get_mut(id) {
            p.send_once_rights -= 1;
            if !p.is_dead() {
                events.push(Event::SendOnceDestroyed(id));
            }
        }
    }

    /// Kill a port whose receive right is being destroyed: its queue goes to
    /// `dead_messages`, it leaves its set, and a set loses its members.
    fn kill(&mut self, id: PortId, events: &mut Vec<Event>) {
        let Some(port) = self.get_mut(id) else { return };
        // A port-destroyed request saves the port: its receive right goes to the requester.
        if let Some((to, name)) = port.destroyed_request.take() {
            port.receiver = Receiver::InTransit;
            port.queued_on = None;
            let waiters: Vec<u64> = port.waiting_receivers.drain().collect();
            let set = port.set.take();
            self.moved_waiters.extend(waiters.into_iter().map(|t| (id, t)));
            if let Some(set) = set.and_then(|s| self.get_mut(s)) {
                set.members.retain(|&m| m != id);
            }
            self.add_ref(id);
            let receive = Some(CarriedRight { port: id, kind: CarriedKind::Receive });
            self.notifications.push(Notification {
                to,
                kind: NotificationKind::PortDestroyed,
                name,
                receive,
            });
            return;
        }
        port.receiver = Receiver::Dead;
        let no_senders = port.no_senders_request.take();
        let dead_names = core::mem::take(&mut port.dead_name_requests);
        let queued: Vec<M> = port.queue.drain(..).collect();
        let set = port.set.take();
        let members = core::mem::take(&mut port.members);
        let waiters: Vec<u64> = port.waiting_receivers.drain().chain(port.waiting_senders.drain()).collect();
        self.dead_messages.extend(queued);
        self.dead_waiters.extend(waiters.into_iter().map(|t| (id, t)));
        if let Some(set) = set.and_then(|s| self.get_mut(s)) {
            set.members.retain(|&m| m != id);
        }
        for member in members {
            if let Some(m) = self.get_mut(member) {
                m.set = None;
            }
        }
        for (to, name) in dead_names {
            self.notifications.push(Notification {
                to,
                kind: NotificationKind::DeadName,
                name,
                receive: None,
            });
        }
        if let Some((to, _)) = no_senders {
            self.release(to, events);
        }
        events.push(Event::PortDied(id));
    }

    /// Whether dead messages, waiters or notifications are waiting to be taken.
    pub fn has_dead_leftovers(&self) -> bool {
        !self.dead_messages.is_empty()
            || !self.dead_waiters.is_empty()
            || !self.moved_waiters.is_empty()
            || !self.notifications.is_empty()
    }

    /// Notifications to send since the last call.
    pub fn take_notifications(&mut self) -> Vec<Notification> {
        core::mem::take(&mut self.notifications)
    }

    /// Messages that were queued on ports that died since the last call.
    pub fn take_dead_messages(&mut self) -> Vec<M> {
        core::mem::take(&mut self.dead_messages)
    }

    /// Threads that were waiting on ports that died since the last call, with the port.
    pub fn take_dead_waiters(&mut self) -> Vec<(PortId, u64)> {
        core::mem::take(&mut self.dead_waiters)
    }

    /// Threads that were waiting to receive on ports whose receive right left their task
    /// since the last call, with the port.
    pub fn take_moved_waiters(&mut self) -> Vec<(PortId, u64)> {
        core::mem::take(&mut self.moved_waiters)
    }

    /// Destroy a right in transit (its message is being destroyed).
    pub fn release(&mut self, right: CarriedRight, events: &mut Vec<Event>) {
        match right.kind {
            CarriedKind::Receive => self.kill(right.port, events),
            CarriedKind::Send => self.drop_send_right(right.port, events),
            CarriedKind::SendOnce => self.drop_send_once_right(right.port, events),
        }
        self.drop_ref(right.port);
    }

    /// The right a message was addressed with has done its job: a send right goes away as
    /// usual, a send-once right is used up (no "destroyed unused" event).
    pub fn consume_destination(&mut self, right: CarriedRight, events: &mut Vec<Event>) {
        match right.kind {
            CarriedKind::SendOnce => self.use_send_once(right.port),
            _ => self.release(right, events),
        }
    }

    /// A send-once right to `id` was used to send: it is gone, without a "destroyed unused"
    /// event.
    #[inline(always)]
    fn use_send_once(&mut self, id: PortId) {
        let Some(p) = self.get_mut(id) else { return };
        p.send_once_rights -= 1;
        p.refs -= 1;
        if p.refs == 0 {
            self.free_slot(id);
        }
    }

    /// Whether queueing a message that carries the receive right of `receive` on
    /// `destination` would make a cycle: the port's receive right inside its own queue,
    /// directly or through receive rights in messages queued on each other. Such a port could
    /// never be received from or destroyed again, nor anything queued on it, so the kernel
    /// refuses (or, for its own notifications, destroys) such a message.
    pub fn would_cycle(&self, destination: PortId, receive: PortId) -> bool {
        let mut at = destination;
        // Each step follows a distinct queued message: no more steps than ports.
        for _ in 0..=self.slots.len() {
            if at == receive {
                return true;
            }
            match self.get(at) {
                Some(p) if p.receiver == Receiver::InTransit => match p.queued_on {
                    Some(next) => at = next,
                    None => return false,
                },
                _ => return false,
            }
        }
        true
    }

    /// The message carrying `rights` was queued on `destination`: remember where each
    /// receive right among them is, for [`PortTable::would_cycle`].
    pub fn note_queued(&mut self, rights: &[CarriedRight], destination: PortId) {
        for right in rights.iter().filter(|r| r.kind == CarriedKind::Receive) {
            if let Some(p) = self.get_mut(right.port) {
                p.queued_on = Some(destination);
            }
        }
    }

    /// A new send-once right to a port, made by the kernel (for kernel reply ports).
    pub fn make_send_once(&mut self, id: PortId) -> Option<CarriedRight> {
        let p = self.get_mut(id)?;
        if p.is_dead() {
            return None;
        }
        p.send_once_rights += 1;
        p.refs += 1;
        Some(CarriedRight { port: id, kind: CarriedKind::SendOnce })
    }

    /// Make a port owned by nobody yet, with its receive right in transit: for kernel
    /// object ports and for tests. The caller holds the right until it copies it out.
    pub fn create_in_transit(&mut self) -> CarriedRight {
        CarriedRight { port: self.create(Receiver::InTransit, false), kind: CarriedKind::Receive }
    }

    /// A new send right to a port, made by the kernel (for kernel object ports).
    pub fn make_send(&mut self, id: PortId) -> Option<CarriedRight> {
        let p = self.get_mut(id)?;
        if p.is_dead() {
            return None;
        }
        p.send_rights += 1;
        self.add_ref(id);
        Some(CarriedRight { port: id, kind: CarriedKind::Send })
    }
}

/// One name's rights in a task.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Entry {
    /// The entry's own name (generation included): a lookup compares it.
    name: PortName,
    port: PortId,
    receive: bool,
    /// Send references (0 = no send right).
    send: u32,
    /// 1 for a send-once name, else 0.
    send_once: u32,
    /// References of a dead name (set once the port is seen dead).
    dead: u32,
    /// The entry names a port set.
    set: bool,
}

/// A task's port name space.
#[cfg_attr(test, derive(Clone))]
pub struct NameSpace {
    task: u64,
    entries: Vec<Option<Entry>>,
    /// Generation of each slot, part of the name, so a stale name is not a new right.
    generations: Vec<u8>,
    free: Vec<usize>,
    /// The name under which this task holds receive/send rights to a port.
    by_port: BTreeMap<PortId, PortName>,
}

const INDEX_BITS: u32 = 24;
const MAX_NAMES: usize = (1 << INDEX_BITS) - 2;

#[inline(always)]
fn index_of(name: PortName) -> usize {
    ((name & ((1 << INDEX_BITS) - 1)) as usize).wrapping_sub(1)
}

impl NameSpace {
    pub fn new(task: u64) -> Self {
        NameSpace {
            task,
            entries: Vec::new(),
            generations: Vec::new(),
            free: Vec::new(),
            by_port: BTreeMap::new(),
        }
    }

    /// Names in use (every slot not in use is on the free list).
    pub fn len(&self) -> usize {
        self.entries.len() - self.free.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    #[inline(always)]
    fn name_for(&self, index: usize) -> PortName {
        let generation = self.generations.get(index).copied().unwrap_or(0) as u32;
        ((index + 1) as u32) | (generation << INDEX_BITS)
    }

    /// The entry `name` denotes. PORT_NULL and PORT_DEAD never match one: no slot has index
    /// -1, and no name has the index bits of PORT_DEAD (`MAX_NAMES`).
    #[inline(always)]
    fn entry(&self, name: PortName) -> Result<&Entry, KernelError> {
        match self.entries.get(index_of(name)) {
            Some(Some(entry)) if entry.name == name => Ok(entry),
            _ => Err(KernelError::InvalidName),
        }
    }

    fn entry_mut(&mut self, name: PortName) -> Result<&mut Entry, KernelError> {
        match self.entries.get_mut(index_of(name)) {
            Some(Some(entry)) if entry.name == name => Ok(entry),
            _ => Err(KernelError::InvalidName),
        }
    }

    /// Put `entry` in the free slot `index` under the slot's current name.
    #[inline(always)]
    fn fill(&mut self, index: usize, entry: Entry) -> PortName {
        let name = self.name_for(index);
        if let Some(slot) = self.entries.get_mut(index) {
            *slot = Some(Entry { name, ..entry });
        }
        name
    }

    fn insert(&mut self, entry: Entry) -> Result<PortName, KernelError> {
        let index = match self.free.pop() {
            Some(index) => index,
            None if self.entries.len() < MAX_NAMES => {
                self.entries.push(None);
                self.generations.push(0);
                self.entries.len() - 1
            }
            None => return Err(KernelError::NoMemory),
        };
        let name = self.fill(index, entry);
        if !entry.set && entry.send_once == 0 && entry.dead == 0 {
            self.by_port.insert(entry.port, name);
        }
        Ok(name)
    }

    #[inline(always)]
    fn remove(&mut self, name: PortName) {
        let index = index_of(name);
        if let Some(entry) = self.entries.get_mut(index).and_then(|e| e.take()) {
            // Only receive and send names are in `by_port`.
            if !entry.set && entry.send_once == 0 && self.by_port.get(&entry.port) == Some(&name) {
                self.by_port.remove(&entry.port);
            }
            if let Some(g) = self.generations.get_mut(index) {
                *g = g.wrapping_add(1);
            }
            self.free.push(index);
        }
    }

    /// Turn the entry's send / send-once references into dead-name references if its port
    /// died. Returns the (possibly updated) entry.
    fn refresh<M>(&mut self, name: PortName, ports: &mut PortTable<M>) -> Result<Entry, KernelError> {
        let entry = *self.entry(name)?;
        if entry.set || entry.dead > 0 || entry.receive {
            return Ok(entry);
        }
        let dead = ports.get(entry.port).is_none_or(|p| p.is_dead());
        if !dead {
            return Ok(entry);
        }
        // The port died: its send rights die with it (the counts no longer matter).
        if self.by_port.get(&entry.port) == Some(&name) {
            self.by_port.remove(&entry.port);
        }
        let e = self.entry_mut(name)?;
        e.dead = e.send + e.send_once;
        e.send = 0;
        e.send_once = 0;
        Ok(*e)
    }

    /// A new port whose receive right this task holds.
    pub fn allocate_port<M>(&mut self, ports: &mut PortTable<M>) -> Result<PortName, KernelError> {
        let id = ports.create(Receiver::InTransit, false);
        let name = self.insert(Entry {
            name: PORT_NULL,
            port: id,
            receive: true,
            send: 0,
            send_once: 0,
            dead: 0,
            set: false,
        });
        match name {
            Ok(name) => {
                if let Some(p) = ports.get_mut(id) {
                    p.receiver = Receiver::Task { task: self.task, name };
                }
                Ok(name)
            }
            Err(e) => {
                ports.kill(id, &mut Vec::new());
                ports.drop_ref(id);
                Err(e)
            }
        }
    }

    /// A new, empty port set.
    pub fn allocate_set<M>(&mut self, ports: &mut PortTable<M>) -> Result<PortName, KernelError> {
        let id = ports.create(Receiver::InTransit, true);
        let name = self.insert(Entry {
            name: PORT_NULL,
            port: id,
            receive: true,
            send: 0,
            send_once: 0,
            dead: 0,
            set: true,
        })?;
        if let Some(p) = ports.get_mut(id) {
            p.receiver = Receiver::Task { task: self.task, name };
        }
        Ok(name)
    }

    /// The `right_type` bits of a name.
    pub fn right_type<M>(&mut self, name: PortName, ports: &mut PortTable<M>) -> Result<u64, KernelError> {
        let e = self.refresh(name, ports)?;
        Ok(if e.set {
            right_type::PORT_SET
        } else {
            (if e.receive { right_type::RECEIVE } else { 0 })
                | (if e.send > 0 { right_type::SEND } else { 0 })
                | (if e.send_once > 0 { right_type::SEND_ONCE } else { 0 })
                | (if e.dead > 0 { right_type::DEAD_NAME } else { 0 })
        })
    }

    /// The port a receive right (or port set) name denotes.
    #[inline(always)]
    pub fn receive_port(&self, name: PortName) -> Result<PortId, KernelError> {
        let e = self.entry(name)?;
        if e.receive { Ok(e.port) } else { Err(KernelError::InvalidRight) }
    }

    /// The port a send or send-once name denotes (for sending). A dead name is `PortDead`.
    pub fn send_port<M>(&mut self, name: PortName, ports: &mut PortTable<M>) -> Result<PortId, KernelError> {
        let e = self.refresh(name, ports)?;
        if e.dead > 0 {
            return Err(KernelError::PortDead);
        }
        if e.send == 0 && e.send_once == 0 {
            return Err(KernelError::InvalidRight);
        }
        Ok(e.port)
    }

    /// The port `name` denotes when `copyin(name, how)` would succeed on a live port,
    /// changing nothing: the IPC fast path checks every condition before it acts. `None`
    /// whenever copyin would fail or the port is dead (the general path then reports it).
    #[inline(always)]
    pub fn peek_copyin<M>(&self, name: PortName, how: u8, ports: &PortTable<M>) -> Option<PortId> {
        let e = self.entry(name).ok()?;
        let alive = ports.get(e.port).is_some_and(|p| !p.is_dead());
        if e.set || e.dead > 0 || !alive {
            return None;
        }
        let allowed = match how {
            disposition::MAKE_SEND | disposition::MAKE_SEND_ONCE | disposition::MOVE_RECEIVE => e.receive,
            disposition::COPY_SEND | disposition::MOVE_SEND => e.send > 0,
            disposition::MOVE_SEND_ONCE => e.send_once > 0,
            _ => false,
        };
        allowed.then_some(e.port)
    }

    /// The name the next right put in this space under a new name will get (None when the
    /// space is full). The IPC fast path writes it to the receiver before moving the right.
    #[inline(always)]
    pub fn next_name(&self) -> Option<PortName> {
        match self.free.last() {
            Some(&index) => Some(self.name_for(index)),
            None if self.entries.len() < MAX_NAMES => Some(self.name_for(self.entries.len())),
            None => None,
        }
    }

    /// The IPC fast path's `copyin(name, MOVE_SEND_ONCE)` of a message's destination and its
    /// use (`consume_destination`), in one step. The caller checked with `peek_copyin`.
    #[inline(always)]
    pub fn use_send_once<M>(&mut self, name: PortName, ports: &mut PortTable<M>) {
        let Ok(&Entry { port, send_once: 1, .. }) = self.entry(name) else { return };
        self.remove(name);
        ports.use_send_once(port);
    }

    /// The IPC fast path's copyout of a send-once right to a live port: a new name, the
    /// one `next_name` announced.
    #[inline(always)]
    pub fn insert_send_once(&mut self, right: CarriedRight) -> Result<PortName, KernelError> {
        let entry = Entry {
            name: PORT_NULL,
            port: right.port,
            receive: false,
            send: 0,
            send_once: 1,
            dead: 0,
            set: false,
        };
        // A free slot: the common case, done here (a send-once name is never in `by_port`).
        if let Some(index) = self.free.pop() {
            return Ok(self.fill(index, entry));
        }
        self.insert(entry)
    }

    /// Take a right out of this name space to carry it, as `disposition` says.
    pub fn copyin<M>(
        &mut self,
        name: PortName,
        how: u8,
        ports: &mut PortTable<M>,
        events: &mut Vec<Event>,
    ) -> Result<CarriedRight, KernelError> {
        let e = self.refresh(name, ports)?;
        if e.set {
            return Err(KernelError::InvalidRight);
        }
        if e.dead > 0 {
            return Err(KernelError::PortDead);
        }
        let id = e.port;
        let carried = |kind| CarriedRight { port: id, kind };
        match how {
            disposition::MAKE_SEND | disposition::MAKE_SEND_ONCE => {
                if !e.receive {
                    return Err(KernelError::InvalidRight);
                }
                let p = ports.get_mut(id).ok_or(KernelError::InvalidName)?;
                let kind = if how == disposition::MAKE_SEND {
                    p.send_rights += 1;
                    CarriedKind::Send
                } else {
                    p.send_once_rights += 1;
                    CarriedKind::SendOnce
                };
                ports.add_ref(id);
                Ok(carried(kind))
            }
            disposition::COPY_SEND => {
                if e.send == 0 {
                    return Err(KernelError::InvalidRight);
                }
                ports.get_mut(id).ok_or(KernelError::InvalidName)?.send_rights += 1;
                ports.add_ref(id);
                Ok(carried(CarriedKind::Send))
            }
            disposition::MOVE_SEND => {
                if e.send == 0 {
                    return Err(KernelError::InvalidRight);
                }
                let entry = self.entry_mut(name)?;
                entry.send -= 1;
                if entry.send > 0 {
                    // The name keeps its send right: the carried one is an extra right.
                    ports.get_mut(id).ok_or(KernelError::InvalidName)?.send_rights += 1;
                    ports.add_ref(id);
                } else if !entry.receive {
                    self.remove(name); // the entry's reference moves to the carried right
                } else {
                    ports.add_ref(id);
                }
                Ok(carried(CarriedKind::Send))
            }
            disposition::MOVE_SEND_ONCE => {
                if e.send_once == 0 {
                    return Err(KernelError::InvalidRight);
                }
                self.remove(name);
                Ok(carried(CarriedKind::SendOnce))
            }
            disposition::MOVE_RECEIVE => {
                if !e.receive {
                    return Err(KernelError::InvalidRight);
                }
                let port = ports.get_mut(id).ok_or(KernelError::InvalidName)?;
                port.receiver = Receiver::InTransit;
                port.queued_on = None;
                let waiters: Vec<u64> = port.waiting_receivers.drain().collect();
                let set = port.set.take();
                if let Some(set) = set.and_then(|s| ports.get_mut(s)) {
                    set.members.retain(|&m| m != id);
                }
                ports.moved_waiters.extend(waiters.into_iter().map(|t| (id, t)));
                let entry = self.entry_mut(name)?;
                entry.receive = false;
                if entry.send == 0 {
                    self.remove(name);
                } else {
                    ports.add_ref(id);
                }
                let _ = events;
                Ok(carried(CarriedKind::Receive))
            }
            _ => Err(KernelError::InvalidDisposition),
        }
    }

    /// Put a carried right into this name space; returns its name. A send or send-once right
    /// to a port that died in transit becomes [`PORT_DEAD`] (and is released).
    pub fn copyout<M>(
        &mut self,
        right: CarriedRight,
        ports: &mut PortTable<M>,
        events: &mut Vec<Event>,
    ) -> Result<PortName, KernelError> {
        let id = right.port;
        let dead = ports.get(id).is_none_or(|p| p.is_dead());
        if dead && right.kind != CarriedKind::Receive {
            ports.release(right, events);
            return Ok(PORT_DEAD);
        }
        match right.kind {
            CarriedKind::SendOnce => self.insert_send_once(right),
            CarriedKind::Send | CarriedKind::Receive => {
                let existing = self.by_port.get(&id).copied();
                let name = match existing {
                    Some(name) => {
                        let entry = self.entry_mut(name)?;
                        if right.kind == CarriedKind::Send {
                            if entry.send > 0 {
                                // Coalesces with the send right already under this name.
                                if let Some(p) = ports.get_mut(id) {
                                    p.send_rights -= 1;
                                }
                            }
                            entry.send += 1;
                        } else {
                            entry.receive = true;
                        }
                        ports.drop_ref(id); // the entry already holds a reference
                        name
                    }
                    None => {
                        let receive = right.kind == CarriedKind::Receive;
                        let send = u32::from(!receive);
                        self.insert(Entry {
                            name: PORT_NULL,
                            port: id,
                            receive,
                            send,
                            send_once: 0,
                            dead: 0,
                            set: false,
                        })?
                    }
                };
                if right.kind == CarriedKind::Receive
                    && let Some(p) = ports.get_mut(id)
                {
                    p.receiver = Receiver::Task { task: self.task, name };
                }
                Ok(name)
            }
        }
    }

    /// Drop one user reference of a send, send-once or dead-name right (`port_deallocate`).
    pub fn deallocate<M>(
        &mut self,
        name: PortName,
        ports: &mut PortTable<M>,
        events: &mut Vec<Event>,
    ) -> Result<(), KernelError> {
        let e = self.refresh(name, ports)?;
        if e.set {
            return Err(KernelError::InvalidRight);
        }
        let entry = self.entry_mut(name)?;
        if entry.dead > 0 {
            entry.dead -= 1;
            if entry.dead == 0 {
                self.remove(name);
                ports.drop_ref(e.port);
            }
        } else if entry.send_once > 0 {
            self.remove(name);
            ports.drop_send_once_right(e.port, events);
            ports.drop_ref(e.port);
        } else if entry.send > 0 {
            entry.send -= 1;
            if entry.send == 0 {
                ports.drop_send_right(e.port, events);
                if !entry.receive {
                    self.remove(name);
                    ports.drop_ref(e.port);
                }
            }
        } else {
            return Err(KernelError::InvalidRight);
        }
        Ok(())
    }

    /// Destroy everything a name denotes (`port_destroy`): the receive right kills the port;
    /// send rights under the same name go too. A port set releases its members.
    pub fn destroy<M>(
        &mut self,
        name: PortName,
        ports: &mut PortTable<M>,
        events: &mut Vec<Event>,
    ) -> Result<(), KernelError> {
        let e = self.refresh(name, ports)?;
        self.remove(name);
        if e.receive || e.set {
            ports.kill(e.port, events);
        }
        if e.send > 0 {
            ports.drop_send_right(e.port, events);
        }
        if e.send_once > 0 {
            ports.drop_send_once_right(e.port, events);
        }
        ports.drop_ref(e.port);
        Ok(())
    }

    /// Destroy every right in the space (the task ended).
    pub fn destroy_all<M>(&mut self, ports: &mut PortTable<M>, events: &mut Vec<Event>) {
        let names: Vec<PortName> = (0..self.entries.len())
            .filter(|&i| self.entries.get(i).is_some_and(|e| e.is_some()))
            .map(|i| self.name_for(i))
            .collect();
        for name in names {
            let _ = self.destroy(name, ports, events);
        }
    }

    /// Ask for a notification of `kind` about `name`, sent through `to` (a send or
    /// send-once right already copied in). A previous request of the same kind on a
    /// receive right is replaced and its right released. A dead-name request on a name that
    /// is already dead is notified at once. On an error `to` is released.
    pub fn request_notification<M>(
        &mut self,
        name: PortName,
        kind: NotificationKind,
        to: CarriedRight,
        ports: &mut PortTable<M>,
        events: &mut Vec<Event>,
    ) -> Result<(), KernelError> {
        let e = match self.refresh(name, ports) {
            Ok(e) => e,
            Err(err) => {
                ports.release(to, events);
                return Err(err);
            }
        };
        let result = match kind {
            NotificationKind::NoSenders | NotificationKind::PortDestroyed if e.receive && !e.set => {
                match ports.get_mut(e.port) {
                    Some(port) => {
                        let slot = if kind == NotificationKind::NoSenders {
                            &mut port.no_senders_request
                        } else {
                            &mut port.destroyed_request
                        };
                        if let Some((old, _)) = slot.replace((to, name)) {
                            ports.release(old, events);
                        }
                        return Ok(());
                    }
                    None => Err(KernelError::InvalidName),
                }
            }
            NotificationKind::DeadName if e.dead > 0 => {
                ports.notifications.push(Notification { to, kind, name, receive: None });
                return Ok(());
            }
            NotificationKind::DeadName if e.send > 0 || e.send_once > 0 => match ports.get_mut(e.port) {
                Some(port) => {
                    port.dead_name_requests.push((to, name));
                    return Ok(());
                }
                None => Err(KernelError::InvalidName),
            },
            _ => Err(KernelError::InvalidRight),
        };
        ports.release(to, events);
        result
    }

    /// Put the port named `member` (a receive right) into the set named `set`, or take it
    /// out of any set when `set` is 0.
    pub fn move_member<M>(
        &mut self,
        member: PortName,
        set: PortName,
        ports: &mut PortTable<M>,
    ) -> Result<(), KernelError> {
        let m = *self.entry(member)?;
        if !m.receive || m.set {
            return Err(KernelError::InvalidRight);
        }
        let new_set = if set == PORT_NULL {
            None
        } else {
            let s = *self.entry(set)?;
            if !s.set {
                return Err(KernelError::InvalidRight);
            }
            Some(s.port)
        };
        let old = ports.get_mut(m.port).ok_or(KernelError::InvalidName)?.set.take();
        if let Some(old) = old.and_then(|o| ports.get_mut(o)) {
            old.members.retain(|&x| x != m.port);
        }
        if let Some(s) = new_set {
            ports.get_mut(s).ok_or(KernelError::InvalidName)?.members.push(m.port);
            ports.get_mut(m.port).ok_or(KernelError::InvalidName)?.set = Some(s);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mach_abi::ipc::disposition::*;
    use std::vec;

    type Ports = PortTable<u32>;

    fn setup() -> (Ports, NameSpace, NameSpace) {
        (Ports::default(), NameSpace::new(1), NameSpace::new(2))
    }

    fn port(ports: &Ports, id: PortId) -> &Port<u32> {
        ports.get(id).unwrap()
    }

    #[test]
    fn make_send_and_copyout_coalesce_on_one_name() {
        let (mut ports, mut a, mut b) = setup();
        let mut ev = vec![];
        let rx = a.allocate_port(&mut ports).unwrap();
        let id = a.receive_port(rx).unwrap();
        let s1 = a.copyin(rx, MAKE_SEND, &mut ports, &mut ev).unwrap();
        let s2 = a.copyin(rx, MAKE_SEND, &mut ports, &mut ev).unwrap();
        assert_eq!(port(&ports, id).send_rights, 2);
        let n1 = b.copyout(s1, &mut ports, &mut ev).unwrap();
        let n2 = b.copyout(s2, &mut ports, &mut ev).unwrap();
        assert_eq!(n1, n2, "send rights to one port share a name");
        assert_eq!(port(&ports, id).send_rights, 1, "coalesced into one right with two references");
        assert_eq!(b.right_type(n1, &mut ports).unwrap(), right_type::SEND);
        b.deallocate(n1, &mut ports, &mut ev).unwrap();
        assert!(ev.is_empty());
        b.deallocate(n1, &mut ports, &mut ev).unwrap();
        assert_eq!(ev, vec![Event::NoSenders(id)]);
        assert_eq!(b.deallocate(n1, &mut ports, &mut ev), Err(KernelError::InvalidName));
    }

    #[test]
    fn peek_copyin_agrees_with_copyin_and_changes_nothing() {
        let (mut ports, mut a, mut b) = setup();
        let mut ev = vec![];
        let rx = a.allocate_port(&mut ports).unwrap();
        let set = a.allocate_set(&mut ports).unwrap();
        let other = b.allocate_port(&mut ports).unwrap();
        let once = b.copyin(other, MAKE_SEND_ONCE, &mut ports, &mut ev).unwrap();
        let once = a.copyout(once, &mut ports, &mut ev).unwrap();
        let send = b.copyin(other, MAKE_SEND, &mut ports, &mut ev).unwrap();
        let send = a.copyout(send, &mut ports, &mut ev).unwrap();
        let all = [MOVE_RECEIVE, MOVE_SEND, MOVE_SEND_ONCE, COPY_SEND, MAKE_SEND, MAKE_SEND_ONCE, 99];
        for name in [rx, set, once, send, 12345] {
            for how in all {
                let before = (a.right_type(name, &mut ports), ports.len());
                let peeked = a.peek_copyin(name, how, &ports);
                assert_eq!((a.right_type(name, &mut ports), ports.len()), before, "peek changed something");
                // Try the real thing on a copy of the state.
                let (mut a2, mut p2) = (a.clone(), ports.clone());
                let real = a2.copyin(name, how, &mut p2, &mut vec![]);
                assert_eq!(peeked, real.ok().map(|r| r.port), "name {name:#x} disposition {how}");
            }
        }
        // A dead port: peek says no (copyin would hand out a dead name's error).
        b.destroy(other, &mut ports, &mut ev).unwrap();
        assert_eq!(a.peek_copyin(send, COPY_SEND, &ports), None);
        assert_eq!(a.peek_copyin(once, MOVE_SEND_ONCE, &ports), None);
    }

    /// The fast path's steps leave the same state as the general ones: a request with a
    /// MAKE_SEND_ONCE reply right copied out to the receiver, and the reply sent back
    /// through it with MOVE_SEND_ONCE.
    #[test]
    fn fast_path_steps_match_copyin_and_copyout() {
        let (mut ports, mut client, mut server) = setup();
        let mut ev = vec![];
        let reply = client.allocate_port(&mut ports).unwrap();
        let reply_id = client.receive_port(reply).unwrap();
        let (mut ports2, mut client2, mut server2) = (ports.clone(), client.clone(), server.clone());

        // General path.
        let right = client.copyin(reply, MAKE_SEND_ONCE, &mut ports, &mut ev).unwrap();
        let name = server.copyout(right, &mut ports, &mut ev).unwrap();
        // Fast path.
        assert_eq!(client2.peek_copyin(reply, MAKE_SEND_ONCE, &ports2), Some(reply_id));
        let announced = server2.next_name().unwrap();
        let right2 = ports2.make_send_once(reply_id).unwrap();
        let name2 = server2.insert_send_once(right2).unwrap();
        assert_eq!((announced, name2), (name, name));
        assert_eq!(port(&ports2, reply_id).send_once_rights, port(&ports, reply_id).send_once_rights);
        assert_eq!(server2.right_type(name2, &mut ports2), server.right_type(name, &mut ports));

        // The reply uses the send-once right up.
        let used = server.copyin(name, MOVE_SEND_ONCE, &mut ports, &mut ev).unwrap();
        ports.consume_destination(used, &mut ev);
        assert_eq!(server2.peek_copyin(name2, MOVE_SEND_ONCE, &ports2), Some(reply_id));
        server2.use_send_once(name2, &mut ports2);
        assert!(ev.is_empty());
        assert_eq!(port(&ports2, reply_id).send_once_rights, 0);
        assert_eq!(port(&ports, reply_id).send_once_rights, 0);
        assert_eq!(server2.right_type(name2, &mut ports2), Err(KernelError::InvalidName));
        assert_eq!((server2.len(), ports2.len()), (server.len(), ports.len()));
        assert_eq!(server2.next_name(), server.next_name(), "the freed name's slot is reused the same way");
        let _ = (&mut client2, &mut client);
    }

    #[test]
    fn make_send_into_own_space_joins_the_receive_name() {
        let (mut ports, mut a, _) = setup();
        let mut ev = vec![];
        let rx = a.allocate_port(&mut ports).unwrap();
        let s = a.copyin(rx, MAKE_SEND, &mut ports, &mut ev).unwrap();
        assert_eq!(a.copyout(s, &mut ports, &mut ev).unwrap(), rx);
        assert_eq!(a.right_type(rx, &mut ports).unwrap(), right_type::RECEIVE | right_type::SEND);
        assert_eq!(a.len(), 1);
    }

    #[test]
    fn send_once_rights_get_their_own_names_and_are_consumed() {
        let (mut ports, mut a, mut b) = setup();
        let mut ev = vec![];
        let rx = a.allocate_port(&mut ports).unwrap();
        let id = a.receive_port(rx).unwrap();
        let o1 = a.copyin(rx, MAKE_SEND_ONCE, &mut ports, &mut ev).unwrap();
        let o2 = a.copyin(rx, MAKE_SEND_ONCE, &mut ports, &mut ev).unwrap();
        let n1 = b.copyout(o1, &mut ports, &mut ev).unwrap();
        let n2 = b.copyout(o2, &mut ports, &mut ev).unwrap();
        assert_ne!(n1, n2);
        assert_eq!(port(&ports, id).send_once_rights, 2);
        let moved = b.copyin(n1, MOVE_SEND_ONCE, &mut ports, &mut ev).unwrap();
        assert_eq!(moved.kind, CarriedKind::SendOnce);
        assert_eq!(b.right_type(n1, &mut ports), Err(KernelError::InvalidName), "moved away");
        assert_eq!(b.copyin(n2, COPY_SEND, &mut ports, &mut ev), Err(KernelError::InvalidRight));
        b.deallocate(n2, &mut ports, &mut ev).unwrap();
        assert_eq!(ev, vec![Event::SendOnceDestroyed(id)]);
    }

    #[test]
    fn move_send_keeps_or_removes_the_name() {
        let (mut ports, mut a, mut b) = setup();
        let mut ev = vec![];
        let rx = a.allocate_port(&mut ports).unwrap();
        let id = a.receive_port(rx).unwrap();
        for _ in 0..2 {
            let s = a.copyin(rx, MAKE_SEND, &mut ports, &mut ev).unwrap();
            b.copyout(s, &mut ports, &mut ev).unwrap();
        }
        let bn = *b.by_port.get(&id).unwrap();
        let m1 = b.copyin(bn, MOVE_SEND, &mut ports, &mut ev).unwrap();
        assert_eq!(b.right_type(bn, &mut ports).unwrap(), right_type::SEND, "one reference left");
        assert_eq!(port(&ports, id).send_rights, 2);
        let m2 = b.copyin(bn, MOVE_SEND, &mut ports, &mut ev).unwrap();
        assert_eq!(b.right_type(bn, &mut ports), Err(KernelError::InvalidName));
        assert_eq!(port(&ports, id).send_rights, 2);
        ports.release(m1, &mut ev);
        ports.release(m2, &mut ev);
        assert_eq!(ev, vec![Event::NoSenders(id)]);
    }

    #[test]
    fn moving_the_receive_right_changes_the_receiver() {
        let (mut ports, mut a, mut b) = setup();
        let mut ev = vec![];
        let rx = a.allocate_port(&mut ports).unwrap();
        let id = a.receive_port(rx).unwrap();
        let r = a.copyin(rx, MOVE_RECEIVE, &mut ports, &mut ev).unwrap();
        assert_eq!(port(&ports, id).receiver, Receiver::InTransit);
        assert!(a.is_empty());
        let bn = b.copyout(r, &mut ports, &mut ev).unwrap();
        assert_eq!(port(&ports, id).receiver, Receiver::Task { task: 2, name: bn });
        assert_eq!(b.right_type(bn, &mut ports).unwrap(), right_type::RECEIVE);
    }

    #[test]
    fn destroyed_port_turns_send_names_dead_and_frees_its_slot_last() {
        let (mut ports, mut a, mut b) = setup();
        let mut ev = vec![];
        let rx = a.allocate_port(&mut ports).unwrap();
        let id = a.receive_port(rx).unwrap();
        let s = a.copyin(rx, MAKE_SEND, &mut ports, &mut ev).unwrap();
        let o = a.copyin(rx, MAKE_SEND_ONCE, &mut ports, &mut ev).unwrap();
        let sn = b.copyout(s, &mut ports, &mut ev).unwrap();
        let on = b.copyout(o, &mut ports, &mut ev).unwrap();
        ports.get_mut(id).unwrap().queue.push_back(7);
        ports.get_mut(id).unwrap().waiting_receivers.push_back(42);
        a.destroy(rx, &mut ports, &mut ev).unwrap();
        assert_eq!(ev, vec![Event::PortDied(id)]);
        assert_eq!(ports.take_dead_messages(), vec![7]);
        assert_eq!(ports.take_dead_waiters(), vec![(id, 42)]);
        assert_eq!(b.right_type(sn, &mut ports).unwrap(), right_type::DEAD_NAME);
        assert_eq!(b.right_type(on, &mut ports).unwrap(), right_type::DEAD_NAME);
        assert_eq!(b.send_port(sn, &mut ports), Err(KernelError::PortDead));
        assert_eq!(ports.len(), 1, "dead names keep the slot");
        b.deallocate(sn, &mut ports, &mut ev).unwrap();
        b.deallocate(on, &mut ports, &mut ev).unwrap();
        assert_eq!(ports.len(), 0);
        assert!(b.is_empty());
    }

    #[test]
    fn rights_in_transit_to_a_dead_port_arrive_dead() {
        let (mut ports, mut a, mut b) = setup();
        let mut ev = vec![];
        let rx = a.allocate_port(&mut ports).unwrap();
        let s = a.copyin(rx, MAKE_SEND, &mut ports, &mut ev).unwrap();
        a.destroy(rx, &mut ports, &mut ev).unwrap();
        assert_eq!(b.copyout(s, &mut ports, &mut ev).unwrap(), PORT_DEAD);
        assert_eq!(ports.len(), 0);
    }

    #[test]
    fn releasing_a_receive_right_in_transit_kills_the_port() {
        let (mut ports, mut a, _) = setup();
        let mut ev = vec![];
        let rx = a.allocate_port(&mut ports).unwrap();
        let id = a.receive_port(rx).unwrap();
        let r = a.copyin(rx, MOVE_RECEIVE, &mut ports, &mut ev).unwrap();
        ports.release(r, &mut ev);
        assert_eq!(ev, vec![Event::PortDied(id)]);
        assert_eq!(ports.len(), 0);
    }

    #[test]
    fn bad_names_and_dispositions_are_errors() {
        let (mut ports, mut a, _) = setup();
        let mut ev = vec![];
        assert_eq!(a.copyin(0, COPY_SEND, &mut ports, &mut ev), Err(KernelError::InvalidName));
        assert_eq!(a.copyin(12345, COPY_SEND, &mut ports, &mut ev), Err(KernelError::InvalidName));
        assert_eq!(a.deallocate(u32::MAX, &mut ports, &mut ev), Err(KernelError::InvalidName));
        let rx = a.allocate_port(&mut ports).unwrap();
        assert_eq!(a.copyin(rx, 99, &mut ports, &mut ev), Err(KernelError::InvalidDisposition));
        assert_eq!(a.copyin(rx, COPY_SEND, &mut ports, &mut ev), Err(KernelError::InvalidRight));
        assert_eq!(a.copyin(rx, MOVE_SEND_ONCE, &mut ports, &mut ev), Err(KernelError::InvalidRight));
        assert_eq!(a.deallocate(rx, &mut ports, &mut ev), Err(KernelError::InvalidRight));
        // A stale name (slot reused with a new generation) is not the new right.
        a.destroy(rx, &mut ports, &mut ev).unwrap();
        let rx2 = a.allocate_port(&mut ports).unwrap();
        assert_ne!(rx, rx2);
        assert_eq!(a.right_type(rx, &mut ports), Err(KernelError::InvalidName));
    }

    #[test]
    fn port_sets_track_members() {
        let (mut ports, mut a, _) = setup();
        let mut ev = vec![];
        let set = a.allocate_set(&mut ports).unwrap();
        let p1 = a.allocate_port(&mut ports).unwrap();
        let p2 = a.allocate_port(&mut ports).unwrap();
        a.move_member(p1, set, &mut ports).unwrap();
        a.move_member(p2, set, &mut ports).unwrap();
        let set_id = a.receive_port(set).unwrap();
        let (id1, id2) = (a.receive_port(p1).unwrap(), a.receive_port(p2).unwrap());
        assert_eq!(port(&ports, set_id).members, vec![id1, id2]);
        assert_eq!(a.right_type(set, &mut ports).unwrap(), right_type::PORT_SET);
        assert_eq!(a.move_member(set, set, &mut ports), Err(KernelError::InvalidRight));
        a.move_member(p1, 0, &mut ports).unwrap();
        assert_eq!(port(&ports, set_id).members, vec![id2]);
        a.destroy(p2, &mut ports, &mut ev).unwrap();
        assert!(port(&ports, set_id).members.is_empty());
        a.destroy(set, &mut ports, &mut ev).unwrap();
        assert_eq!(port(&ports, id1).set, None);
    }

    #[test]
    fn destroy_all_releases_everything() {
        let (mut ports, mut a, mut b) = setup();
        let mut ev = vec![];
        let rx = a.allocate_port(&mut ports).unwrap();
        let s = a.copyin(rx, MAKE_SEND, &mut ports, &mut ev).unwrap();
        b.copyout(s, &mut ports, &mut ev).unwrap();
        let brx = b.allocate_port(&mut ports).unwrap();
        let s2 = b.copyin(brx, MAKE_SEND_ONCE, &mut ports, &mut ev).unwrap();
        a.copyout(s2, &mut ports, &mut ev).unwrap();
        b.destroy_all(&mut ports, &mut ev);
        a.destroy_all(&mut ports, &mut ev);
        assert!(a.is_empty() && b.is_empty());
        assert_eq!(ports.len(), 0, "every port slot freed");
    }

    #[test]
    fn no_senders_notification_is_queued_when_the_last_send_right_goes() {
        let (mut ports, mut a, mut b) = setup();
        let mut ev = vec![];
        let rx = a.allocate_port(&mut ports).unwrap();
        let inbox = a.allocate_port(&mut ports).unwrap();
        let to = a.copyin(inbox, MAKE_SEND_ONCE, &mut ports, &mut ev).unwrap();
        a.request_notification(rx, NotificationKind::NoSenders, to, &mut ports, &mut ev).unwrap();
        let s = a.copyin(rx, MAKE_SEND, &mut ports, &mut ev).unwrap();
        let bn = b.copyout(s, &mut ports, &mut ev).unwrap();
        assert!(ports.take_notifications().is_empty());
        b.deallocate(bn, &mut ports, &mut ev).unwrap();
        let n = ports.take_notifications();
        assert_eq!(n.len(), 1);
        assert_eq!((n[0].kind, n[0].name, n[0].to), (NotificationKind::NoSenders, rx, to));
    }

    #[test]
    fn dead_name_notification_names_the_requesters_right() {
        let (mut ports, mut a, mut b) = setup();
        let mut ev = vec![];
        let rx = a.allocate_port(&mut ports).unwrap();
        let s = a.copyin(rx, MAKE_SEND, &mut ports, &mut ev).unwrap();
        let bn = b.copyout(s, &mut ports, &mut ev).unwrap();
        let inbox = b.allocate_port(&mut ports).unwrap();
        let to = b.copyin(inbox, MAKE_SEND_ONCE, &mut ports, &mut ev).unwrap();
        b.request_notification(bn, NotificationKind::DeadName, to, &mut ports, &mut ev).unwrap();
        let to2 = b.copyin(inbox, MAKE_SEND_ONCE, &mut ports, &mut ev).unwrap();
        assert_eq!(
            b.request_notification(bn, NotificationKind::NoSenders, to2, &mut ports, &mut ev),
            Err(KernelError::InvalidRight),
            "no-senders needs a receive right"
        );
        a.destroy(rx, &mut ports, &mut ev).unwrap();
        let n = ports.take_notifications();
        assert_eq!((n.len(), n[0].kind, n[0].name), (1, NotificationKind::DeadName, bn));
    }

    #[test]
    fn port_destroyed_request_saves_the_port() {
        let (mut ports, mut a, mut b) = setup();
        let mut ev = vec![];
        let rx = a.allocate_port(&mut ports).unwrap();
        let id = a.receive_port(rx).unwrap();
        ports.get_mut(id).unwrap().queue.push_back(5);
        let inbox = b.allocate_port(&mut ports).unwrap();
        let to = b.copyin(inbox, MAKE_SEND_ONCE, &mut ports, &mut ev).unwrap();
        a.request_notification(rx, NotificationKind::PortDestroyed, to, &mut ports, &mut ev).unwrap();
        a.destroy(rx, &mut ports, &mut ev).unwrap();
        assert!(ev.iter().all(|e| !matches!(e, Event::PortDied(_))), "the port did not die");
        let n = ports.take_notifications();
        assert_eq!(n[0].kind, NotificationKind::PortDestroyed);
        let receive = n[0].receive.unwrap();
        let name = b.copyout(receive, &mut ports, &mut ev).unwrap();
        assert_eq!(b.receive_port(name).unwrap(), id);
        assert_eq!(ports.get(id).unwrap().queue.len(), 1, "queued messages kept");
    }

    #[test]
    fn receive_rights_in_transit_never_form_a_cycle() {
        let (mut ports, mut a, _) = setup();
        let mut ev = vec![];
        let pa = a.allocate_port(&mut ports).unwrap();
        let pb = a.allocate_port(&mut ports).unwrap();
        let (ia, ib) = (a.receive_port(pa).unwrap(), a.receive_port(pb).unwrap());
        // A's own receive right on A: a cycle.
        assert!(ports.would_cycle(ia, ia));
        assert!(!ports.would_cycle(ib, ia));
        // A's receive right queued on B; then B's receive right on A closes the loop.
        let ra = a.copyin(pa, MOVE_RECEIVE, &mut ports, &mut ev).unwrap();
        ports.note_queued(&[ra], ib);
        assert!(ports.would_cycle(ia, ib), "B -> A -> B");
        // A message with A's right received again: no longer in B's queue.
        let name = a.copyout(ra, &mut ports, &mut ev).unwrap();
        assert_eq!(a.receive_port(name).unwrap(), ia);
        assert!(!ports.would_cycle(ia, ib));
        // Moved again but not queued yet: where it was before does not count.
        let _ra = a.copyin(name, MOVE_RECEIVE, &mut ports, &mut ev).unwrap();
        assert!(!ports.would_cycle(ia, ib));
    }

    #[test]
    fn receivers_waiting_on_a_receive_right_that_leaves_are_handed_back() {
        let (mut ports, mut a, mut b) = setup();
        let mut ev = vec![];
        // Moved into a message.
        let rx = a.allocate_port(&mut ports).unwrap();
        let id = a.receive_port(rx).unwrap();
        ports.get_mut(id).unwrap().waiting_receivers.push_back(7);
        let right = a.copyin(rx, MOVE_RECEIVE, &mut ports, &mut ev).unwrap();
        assert_eq!(ports.take_moved_waiters(), vec![(id, 7)]);
        assert!(ports.get(id).unwrap().waiting_receivers.is_empty());
        // Saved by a port-destroyed request when destroyed.
        let name = a.copyout(right, &mut ports, &mut ev).unwrap();
        ports.get_mut(id).unwrap().waiting_receivers.push_back(8);
        let inbox = b.allocate_port(&mut ports).unwrap();
        let to = b.copyin(inbox, MAKE_SEND_ONCE, &mut ports, &mut ev).unwrap();
        a.request_notification(name, NotificationKind::PortDestroyed, to, &mut ports, &mut ev).unwrap();
        a.destroy(name, &mut ports, &mut ev).unwrap();
        assert_eq!(ports.take_moved_waiters(), vec![(id, 8)]);
        assert!(ports.take_dead_waiters().is_empty(), "the port lives on");
    }
}

//! The IPC fast path: the common RPC step, `mach_msg(SEND | RECEIVE)` of a small message
//! to a port whose receiver is already waiting, by a thread that then waits for its own
//! answer. Instead of queueing a kernel copy of the message and going through the run
//! queue, the sender writes the message straight into the waiting receiver's buffer and
//! switches to it (a hand-off), leaving itself blocked in its receive.
//!
//! It applies only when all of this holds, checked before anything changes:
//! - the body carries no rights and no out-of-line memory, and at most
//!   [`FAST_DATA_MAX`] bytes of inline data; no trace context (traced requests take the
//!   general path, which records every hop);
//! - the destination is named with COPY_SEND or MOVE_SEND_ONCE, the reply right (if any) is
//!   MAKE_SEND_ONCE of a receive right the sender holds;
//! - the destination is a live plain port (no kernel object) with an empty queue, and a
//!   thread is blocked receiving on it (or its set) with a big enough buffer, which may run
//!   at once (no task suspended, no ready thread of higher priority);
//! - the sender then receives on a plain port of its own with an empty queue, or on a
//!   port set of its own none of whose members has a message queued (a server replying
//!   and waiting for the next request), not the destination, and does not poll.
//!
//! It must never be observable: the receiver gets the same bytes, names and rights the
//! general path (`msg.rs`) would give it, and a sender for which any condition fails
//! gets the general path with nothing changed. When writing into the receiver's buffer
//! faults, the general path runs too and reports it the same way.

use crate::memory::paging::AddressSpace;
use crate::memory::user::{UserPtr, UserSlice};
use crate::sched::{self, ReceiveBuffer, Switch, Wake};
use crate::world;
use crate::world::{DirectReceiver, World};
use core::mem::MaybeUninit;
use mach_abi::KernelError;
use mach_abi::ipc::{HEADER_SIZE, MessageHeader, PORT_NULL, PortName, disposition, options, received};
use mach_kernel::ipc::{PortId, Receiver};

/// Inline data the fast path carries (larger messages take the general path): a 4 KiB
/// block and the few bytes of its encoding, staged on the kernel stack (16 KiB).
pub const FAST_DATA_MAX: usize = 4096 + 64;

/// Bytes of one message on the fast path: header and data, word-aligned for the copies, the
/// data left uninitialised until copied in (no zeroing on the hot path).
#[repr(C, align(8))]
struct Staged {
    header: MaybeUninit<MessageHeader>,
    data: [MaybeUninit<u8>; FAST_DATA_MAX],
}

const _: () = assert!(core::mem::offset_of!(Staged, data) == HEADER_SIZE);

/// The one staging buffer: 4 KiB is too much for a 16 KiB kernel stack that an exception
/// may deepen (on the stack, the fuzz case found memory beside a stack overwritten).
static mut STAGING: Staged =
    Staged { header: MaybeUninit::uninit(), data: [MaybeUninit::uninit(); FAST_DATA_MAX] };

/// The staging buffer.
///
/// # Safety
/// One processor runs the kernel, system calls run with interrupts off (SYSCALL's FMASK
/// clears IF) and the fast path never nests, so one caller at a time uses the buffer, from
/// copying the message in to writing it into the receiver (before the thread switch).
unsafe fn staging() -> &'static mut Staged {
    let buffer: *mut Staged = &raw mut STAGING;
    // SAFETY: the caller's promise above: no other reference to STAGING is alive.
    unsafe { &mut *buffer }
}

impl Staged {
    /// The message's bytes: the header (written) and `data_size` bytes of data (copied in).
    ///
    /// # Safety
    /// The header must have been written and `data_size` data bytes copied in.
    unsafe fn bytes(&self, data_size: usize) -> &[u8] {
        // SAFETY: the caller's promise; the struct is repr(C) with the data right after the
        // header (asserted above), and `data_size <= FAST_DATA_MAX`.
        unsafe { core::slice::from_raw_parts((self as *const Staged).cast::<u8>(), HEADER_SIZE + data_size) }
    }
}

/// `mach_msg(buffer, options, receive_size, receive_name, timeout_ms)` when it sends and
/// then receives: try the fast path. `None`: it did not apply and nothing changed; run the
/// general path. `Some(result)`: the message was delivered and this thread's receive is
/// finished too.
#[inline(always)]
pub fn mach_msg(
    buffer: u64,
    opts: u64,
    receive_size: u64,
    receive_name: u64,
    timeout_ms: u64,
) -> Option<Result<(), KernelError>> {
    let both = options::SEND | options::RECEIVE;
    if opts & both != both || opts & !options::KNOWN != 0 {
        return None;
    }
    let receive_name = PortName::try_from(receive_name).ok()?;
    let deadline = match crate::msg::deadline(opts & options::RECEIVE_TIMEOUT != 0, timeout_ms) {
        None => None,
        Some(None) => return None, // a receive that polls cannot hand off: it would not wait
        Some(Some(tick)) => Some(tick),
    };
    send_receive(buffer, receive_size, receive_name, deadline)
}

/// The fast path proper, for a receive that waits until `deadline` (or for ever).
#[inline(always)]
fn send_receive(
    buffer: u64,
    capacity: u64,
    receive_name: PortName,
    deadline: Option<u64>,
) -> Option<Result<(), KernelError>> {
    let header = UserPtr::<MessageHeader>::new(buffer).read().ok()?;
    let data_size = header.data_size as usize;
    if header.port_count != 0 || header.ool_count != 0 || data_size > FAST_DATA_MAX || header.trace != 0 {
        return None;
    }
    // SAFETY: see `staging`: nothing else uses the buffer until this call has written the
    // message into its receiver (inside `deliver`) or given up.
    let staged = unsafe { staging() };
    // (Tested first: the null message, the common one, then costs nothing here.)
    if data_size > 0 {
        UserSlice::new(buffer + HEADER_SIZE as u64, data_size).ok()?.read_uninit(&mut staged.data).ok()?;
    }
    let own = ReceiveBuffer { address: buffer, capacity };
    let switch = world::with(|w| deliver(w, &header, staged, receive_name, own, deadline))?;
    // Woken: by an answer written straight into our buffer, or as in the general path.
    Some(match switch.run() {
        Wake::Delivered => Ok(()),
        Wake::Retry => crate::msg::receive(buffer, capacity, receive_name, deadline.map(Some)),
        Wake::TimedOut => Err(KernelError::TimedOut),
        Wake::PortDied => Err(KernelError::PortDead),
    })
}

/// Under the lock: check every condition, write the message (staged at `message`: room
/// for the header, then the data already read) into the receiver's buffer, then move the
/// rights and prepare the hand-off.
#[inline(always)]
fn deliver(
    w: &mut World,
    header: &MessageHeader,
    message: &mut Staged,
    receive_name: PortName,
    own: ReceiveBuffer,
    deadline: Option<u64>,
) -> Option<Switch> {
    let size = HEADER_SIZE + header.data_size as usize;
    let plan = plan(w, header, receive_name, size)?;
    let sender_space = AddressSpace::running();
    // The receiver's side, with its task looked up once: the message is written in its
    // address space (switched to now: we go there anyway) before anything changes, then
    // the reply right gets the name announced in it.
    let receiver_task = w.tasks.get_mut(plan.receiver.task)?;
    let reply_name = match plan.reply_port {
        Some(_) => Some(receiver_task.names.next_name()?),
        None => None,
    };
    let delivered = MessageHeader {
        remote: reply_name.unwrap_or(PORT_NULL),
        local: plan.local,
        remote_disposition: if reply_name.is_some() { received::SEND_ONCE } else { 0 },
        local_disposition: 0,
        port_count: 0,
        ool_count: 0,
        id: header.id,
        data_size: header.data_size,
        trace: 0,
    };
    message.header.write(delivered);
    receiver_task.space.activate();
    // SAFETY: the header was just written; the data was copied in by `send_receive`.
    let bytes = unsafe { message.bytes(header.data_size as usize) };
    let written = UserSlice::new(plan.receiver.buffer.address, size).and_then(|to| to.write(bytes));
    if written.is_err() {
        sender_space.activate();
        return None;
    }
    // The rights now; nothing here can fail (`plan` checked it all). COPY_SEND of the
    // destination: copied in and used up at once, which changes nothing.
    if let Some(reply_port) = plan.reply_port
        && let Some(right) = w.ports.make_send_once(reply_port)
    {
        // `next_name` found this slot free above, under the same lock, so the insert takes it;
        // should it not, the right is destroyed rather than kept under a name nobody knows.
        let inserted = receiver_task.names.insert_send_once(right);
        if inserted.ok() != reply_name {
            // The right is a send-once right to a port of the sender's (never a kernel
            // reply port): destroying it makes no event the kernel acts on.
            let mut events = alloc::vec::Vec::new();
            match inserted {
                Ok(name) => drop(receiver_task.names.destroy(name, &mut w.ports, &mut events)),
                Err(_) => w.ports.release(right, &mut events),
            }
            crate::kprintln!("kernel bug: the IPC fast path's reply name was not the one announced");
        }
    }
    let io_bitmap = (receiver_task.id, receiver_task.io_bitmap.as_deref().map(|b| b as *const _));
    if header.remote_disposition == disposition::MOVE_SEND_ONCE
        && let Some((task, ports)) = w.current_task_and_ports()
    {
        task.names.use_send_once(header.remote, ports);
    }
    if let Some(p) = w.ports.get_mut(plan.receiver.waited) {
        p.waiting_receivers.pop_front();
    }

    Some(sched::hand_off(w, plan.receiver.thread, io_bitmap, plan.own_port, own, deadline))
}

/// What the checks found: who receives (and where it waits), the name the receiver knows
/// the port by, the port the reply right is made from, and the port the sender will wait
/// on.
struct Plan {
    receiver: DirectReceiver,
    local: PortName,
    reply_port: Option<PortId>,
    own_port: PortId,
}

#[inline(always)]
fn plan(w: &mut World, header: &MessageHeader, receive_name: PortName, size: usize) -> Option<Plan> {
    if w.current_trace() != 0 {
        return None;
    }
    let (task, ports) = w.current_task_and_ports()?;
    let own_port = task.names.receive_port(receive_name).ok()?;
    let own = ports.get(own_port)?;
    // It will wait on its own port, or on a port set of its (a server answering one request
    // and waiting for the next): nothing may be queued there already.
    let queued = if own.is_set {
        own.members.iter().any(|&m| ports.get(m).is_some_and(|p| !p.queue.is_empty()))
    } else {
        !own.queue.is_empty()
    };
    if queued {
        return None;
    }
    if !matches!(header.remote_disposition, disposition::COPY_SEND | disposition::MOVE_SEND_ONCE) {
        return None;
    }
    let destination = task.names.peek_copyin(header.remote, header.remote_disposition, ports)?;
    // Sending to the port it then waits on: the general path lets the sender take its own
    // message; keep that.
    if destination == own_port {
        return None;
    }
    let reply_port = match header.local {
        PORT_NULL => None,
        // The usual RPC: the reply right is made from the port the sender then waits on,
        // whose receive right was checked above.
        local if local == receive_name && header.local_disposition == disposition::MAKE_SEND_ONCE => {
            if own.is_set {
                return None; // no right is made from a set: the general path says so
            }
            Some(own_port)
        }
        local if header.local_disposition == disposition::MAKE_SEND_ONCE => {
            Some(task.names.peek_copyin(local, disposition::MAKE_SEND_ONCE, ports)?)
        }
        _ => return None,
    };
    let port = ports.get(destination)?;
    let Receiver::Task { name: local, .. } = port.receiver else { return None };
    if port.is_set || port.kernel_object != 0 || !port.queue.is_empty() {
        return None;
    }
    let receiver = w.direct_receiver(destination)?;
    if receiver.buffer.capacity < size as u64 {
        return None;
    }
    Some(Plan { receiver, local, reply_port, own_port })
}

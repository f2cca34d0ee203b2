//! `mach_msg`, the general path: send, receive, or both, with timeouts and queue limits.
//!
//! A message is read from the sender's memory into a kernel [`Message`] (rights copied in
//! from the sender's name space, out-of-line regions copied into fresh frames) and, when
//! received, written into the receiver's memory and name space. A thread that must wait
//! blocks in `sched::block_current` and looks again when woken. The common RPC step has a
//! fast path (`msg_fast.rs`) that must give the same result.
//!
//! It must never trust the message: every count, disposition and descriptor is checked, and
//! nothing is copied before the kernel heap's room and the sender's limit are checked.

use crate::args::name_arg;
use crate::forward;
use crate::memory::paging;
use crate::memory::user::{UserPtr, UserSlice};
use crate::memory::{PAGE_SIZE, frames, phys_to_virt};
use crate::message::{Body, Message, OolRegion};
use crate::sched::{self, Wake};
use crate::world;
use crate::world::World;
use alloc::vec;
use alloc::vec::Vec;
use mach_abi::KernelError;
use mach_abi::ipc::{
    HEADER_SIZE, MAX_INLINE_DATA, MAX_OOL_DESCRIPTORS, MAX_OOL_SIZE, MAX_PORT_DESCRIPTORS, MessageHeader,
    OOL_DESCRIPTOR_SIZE, OolDescriptor, PORT_DESCRIPTOR_SIZE, PORT_NULL, PortDescriptor, PortName,
    disposition, ool_flags, options,
};
use mach_abi::trace as trace_kind;
use mach_kernel::ipc::{Event, PortId, PortTable};

/// What a timeout option and value mean: `None` waits forever, `Some(None)` polls,
/// `Some(Some(tick))` waits until that tick.
pub fn deadline(enabled: bool, timeout_ms: u64) -> Option<Option<u64>> {
    match (enabled, timeout_ms) {
        (false, _) => None,
        (true, 0) => Some(None),
        (true, ms) => Some(Some(sched::deadline_after_ms(ms))),
    }
}

/// `mach_msg(buffer, options, receive_size, receive_name, timeout_ms)`.
pub fn mach_msg(
    buffer: u64,
    opts: u64,
    receive_size: u64,
    receive_name: u64,
    timeout_ms: u64,
) -> Result<u64, KernelError> {
    if opts & !options::KNOWN != 0 || opts & (options::SEND | options::RECEIVE) == 0 {
        return Err(KernelError::InvalidArgument);
    }
    let receive_name = name_arg(receive_name)?;
    if opts & options::SEND != 0 {
        send(buffer, deadline(opts & options::SEND_TIMEOUT != 0, timeout_ms))?;
    }
    if opts & options::RECEIVE != 0 {
        receive(
            buffer,
            receive_size,
            receive_name,
            deadline(opts & options::RECEIVE_TIMEOUT != 0, timeout_ms),
        )?;
    }
    Ok(0)
}

/// `n` default values; no allocation (and no call) for none, the common case.
fn filled_vec<T: Default + Clone>(n: usize) -> Vec<T> {
    if n == 0 { Vec::new() } else { vec![T::default(); n] }
}

/// Read a whole outgoing message (header, descriptors, data) from the caller's memory and
/// copy its out-of-line regions. The kernel heap's room and the sender's limit of held
/// memory are checked before anything is allocated or copied.
fn read_message(buffer: u64) -> Result<(MessageHeader, Vec<PortDescriptor>, Body), KernelError> {
    let valid_remote = [
        disposition::COPY_SEND,
        disposition::MOVE_SEND,
        disposition::MOVE_SEND_ONCE,
        disposition::MAKE_SEND,
        disposition::MAKE_SEND_ONCE,
    ];
    let header = UserPtr::<MessageHeader>::new(buffer).read()?;
    let port_count = header.port_count as usize;
    let ool_count = header.ool_count as usize;
    let data_size = header.data_size as usize;
    if port_count > MAX_PORT_DESCRIPTORS || ool_count > MAX_OOL_DESCRIPTORS || data_size > MAX_INLINE_DATA {
        return Err(KernelError::InvalidArgument);
    }
    if !valid_remote.contains(&header.remote_disposition) {
        return Err(KernelError::InvalidDisposition);
    }
    if port_count + ool_count + data_size > 0 {
        crate::memory::heap::room_for_user_objects()?;
    }
    let descriptors_at = buffer + HEADER_SIZE as u64;
    let mut descriptors = filled_vec(port_count);
    UserSlice::new(descriptors_at, port_count)?.read(&mut descriptors)?;
    let ool_at = descriptors_at + (port_count * PORT_DESCRIPTOR_SIZE) as u64;
    let mut regions = [OolDescriptor::default(); MAX_OOL_DESCRIPTORS];
    let regions = regions.get_mut(..ool_count).ok_or(KernelError::InvalidArgument)?;
    UserSlice::new(ool_at, ool_count)?.read(regions)?;
    regions.iter().try_for_each(check_region)?;
    // What the message will hold: its data and a frame per page of each region.
    let held =
        data_size as u64 + regions.iter().map(|r| u64::from(r.size).next_multiple_of(PAGE_SIZE)).sum::<u64>();
    let charge = match held {
        0 => None,
        bytes => Some(
            world::with_current_task(|t| t.held.charge(bytes, t.names.len()))
                .ok_or(KernelError::InvalidArgument)??,
        ),
    };
    let mut data = filled_vec(data_size);
    UserSlice::new(ool_at + (ool_count * OOL_DESCRIPTOR_SIZE) as u64, data_size)?.read(&mut data)?;
    let mut body = Body { data, ool: Vec::new(), deallocate: Vec::new(), charge };
    for region in regions.iter() {
        match copy_region(region) {
            Ok(copy) => {
                if region.flags & ool_flags::DEALLOCATE != 0 {
                    body.deallocate.push((region.address, copy.frames.len() as u64 * PAGE_SIZE));
                }
                body.ool.push(copy);
            }
            Err(e) => {
                body.free();
                return Err(e);
            }
        }
    }
    Ok((header, descriptors, body))
}

/// An out-of-line descriptor the kernel can copy: 1 byte to `MAX_OOL_SIZE`, page aligned,
/// known flags.
fn check_region(region: &OolDescriptor) -> Result<(), KernelError> {
    if region.size == 0
        || region.size > MAX_OOL_SIZE
        || region.flags & !ool_flags::DEALLOCATE != 0
        || !region.address.is_multiple_of(PAGE_SIZE)
    {
        return Err(KernelError::InvalidArgument);
    }
    Ok(())
}

/// Copy one out-of-line region of the current task into fresh frames.
fn copy_region(region: &OolDescriptor) -> Result<OolRegion, KernelError> {
    check_region(region)?;
    let pages = u64::from(region.size).div_ceil(PAGE_SIZE);
    let mut copy = OolRegion { frames: Vec::with_capacity(pages as usize), size: region.size };
    for page in 0..pages {
        let Some(frame) = frames::alloc_uninitialised() else {
            copy.free();
            return Err(KernelError::NoMemory);
        };
        copy.frames.push(frame);
        // SAFETY: the frame is ours and mapped by the direct map.
        let target =
            unsafe { core::slice::from_raw_parts_mut(phys_to_virt(frame) as *mut u8, PAGE_SIZE as usize) };
        let source = UserSlice::new(region.address + page * PAGE_SIZE, PAGE_SIZE as usize);
        if let Err(e) = source.and_then(|s| s.read(target)) {
            copy.free();
            return Err(e);
        }
    }
    Ok(copy)
}

/// The send half of `mach_msg`: read the message, then queue it (waiting for room).
fn send(buffer: u64, timeout: Option<Option<u64>>) -> Result<(), KernelError> {
    let (header, descriptors, body) = read_message(buffer)?;
    let mut data = Some(body);
    let result = send_body(&header, &descriptors, &mut data, timeout);
    // Not queued (an error): the copied pages go back.
    if let Some(body) = data.take() {
        body.free();
    }
    result
}

/// Queue an already-read message, waiting for room as `timeout` allows.
fn send_body(
    header: &MessageHeader,
    descriptors: &[PortDescriptor],
    data: &mut Option<Body>,
    timeout: Option<Option<u64>>,
) -> Result<(), KernelError> {
    wait_until(timeout, |w, poll| try_send(w, header, descriptors, data, poll))
}

/// Run `attempt` under the lock until it is done (`None`) or fails; when it names a port to
/// wait on, block there (until the deadline, or not at all when polling) and try again.
fn wait_until(
    timeout: Option<Option<u64>>,
    mut attempt: impl FnMut(&mut World, bool) -> Result<Option<PortId>, KernelError>,
) -> Result<(), KernelError> {
    let poll = timeout.is_some_and(|d| d.is_none());
    loop {
        let Some(port) = world::with(|w| attempt(w, poll))? else { return Ok(()) };
        match sched::block_current(Some(port), timeout.flatten()) {
            Wake::Retry => continue,
            Wake::TimedOut => return Err(KernelError::TimedOut),
            Wake::PortDied => return Err(KernelError::PortDead),
            Wake::Delivered => return Ok(()),
        }
    }
}

enum SendOutcome {
    /// Queued on `port` (a member of `set`, if any): wake a receiver. `was_reply`: sent
    /// with a send-once right (the sender's part of a traced request is over).
    Queued { port: PortId, set: Option<PortId>, was_reply: bool },
    /// The queue is full: wait on the port for space.
    Wait(PortId),
}

/// Queue the message, or return the port to wait on when its queue is full.
fn try_send(
    w: &mut World,
    header: &MessageHeader,
    descriptors: &[PortDescriptor],
    data: &mut Option<Body>,
    poll: bool,
) -> Result<Option<PortId>, KernelError> {
    let current = w.current_thread();
    let mut events = Vec::new();
    // Replies to forwarded system calls and faults go straight to the waiting thread. The
    // reply is decoded and checked in full before the right is used: a malformed one is the
    // replier's error and leaves the right (and the waiting thread) as they were.
    if let Some(thread) = kernel_reply_target(w, header)? {
        if header.local != PORT_NULL || !descriptors.is_empty() {
            return Err(KernelError::InvalidArgument);
        }
        let data = data.as_ref().map_or(&[][..], |b| &b.data);
        let reply = forward::ForwardedReply::decode(w, thread, data)?;
        let (task, ports) = w.current_task_and_ports().ok_or(KernelError::InvalidArgument)?;
        let right = task.names.copyin(header.remote, header.remote_disposition, ports, &mut events)?;
        ports.consume_destination(right, &mut events);
        let trace = w.thread_trace(current);
        let task_id = w.current_task_id().unwrap_or(0);
        crate::trace::record_message(
            trace,
            trace_kind::REPLY,
            task_id,
            current,
            right.port,
            header.id,
            data.len() as u64,
            crate::trace::Carried { data, ..Default::default() },
        );
        w.set_thread_trace(current, 0);
        reply.apply(w, thread);
        w.handle_events(&mut events);
        return Ok(None);
    }
    let inherited = w.thread_trace(current);
    let outcome = match w.current_task_and_ports() {
        Some((task, ports)) => {
            send_locked(task, ports, current, header, descriptors, data, poll, inherited, &mut events)
        }
        None => Err(KernelError::InvalidArgument),
    };
    let result = match outcome {
        Ok(SendOutcome::Queued { port, set, was_reply }) => {
            // A thread carries a request's context until it replies.
            if was_reply {
                w.set_thread_trace(current, 0);
            }
            if !w.wake_one_waiting_on(port, false)
                && let Some(set) = set
            {
                w.wake_one_waiting_on(set, false);
            }
            Ok(None)
        }
        Ok(SendOutcome::Wait(port)) => Ok(Some(port)),
        Err(e) => Err(e),
    };
    w.handle_events(&mut events);
    result
}

/// The thread whose kernel reply port a message is addressed to, if it is one.
fn kernel_reply_target(w: &mut World, header: &MessageHeader) -> Result<Option<u64>, KernelError> {
    if header.remote_disposition == disposition::MAKE_SEND
        || header.remote_disposition == disposition::MAKE_SEND_ONCE
    {
        return Ok(None);
    }
    let (task, ports) = w.current_task_and_ports().ok_or(KernelError::InvalidArgument)?;
    let port = task.names.send_port(header.remote, ports)?;
    Ok(w.thread_of_reply_port(port))
}

#[allow(clippy::too_many_arguments)]
fn send_locked(
    task: &mut world::Task,
    ports: &mut PortTable<Message>,
    current: u64,
    header: &MessageHeader,
    descriptors: &[PortDescriptor],
    data: &mut Option<Body>,
    poll: bool,
    inherited_trace: u32,
    events: &mut Vec<Event>,
) -> Result<SendOutcome, KernelError> {
    let destination = match header.remote_disposition {
        // Making a right from the receive right the sender holds: it sends to itself.
        disposition::MAKE_SEND | disposition::MAKE_SEND_ONCE => task.names.receive_port(header.remote)?,
        _ => task.names.send_port(header.remote, ports)?,
    };
    let port = ports.get_mut(destination).ok_or(KernelError::PortDead)?;
    if port.is_set {
        return Err(KernelError::InvalidRight);
    }
    if port.kernel_object != 0 {
        // Kernel objects are operated on by traps that name their port, not by messages.
        return Err(KernelError::InvalidRight);
    }
    // A message sent with a send-once right (moved or made) is never held back by the limit.
    let send_once =
        matches!(header.remote_disposition, disposition::MOVE_SEND_ONCE | disposition::MAKE_SEND_ONCE);
    let full = port.queue.len() >= port.queue_limit && !send_once;
    if full {
        if poll {
            return Err(KernelError::TimedOut);
        }
        port.waiting_senders.push_back(current);
        return Ok(SendOutcome::Wait(destination));
    }

    // A queued message is kernel heap the sender makes the kernel keep.
    crate::memory::heap::room_for_user_objects()?;
    // A receive right may not end up queued on its own port, directly or through other
    // receive rights in transit: nothing could ever receive it or destroy it again.
    let moved_receive = core::iter::once((header.local, header.local_disposition))
        .chain(descriptors.iter().map(|d| (d.name, d.disposition)))
        .filter(|&(_, how)| how == disposition::MOVE_RECEIVE)
        .filter_map(|(name, _)| task.names.receive_port(name).ok());
    for moved in moved_receive {
        if ports.would_cycle(destination, moved) {
            return Err(KernelError::InvalidRight);
        }
    }
    // Copy in the rights: destination, reply, descriptors. On a mistake, what was copied in
    // is destroyed and the error returned.
    let destination_right = task.names.copyin(header.remote, header.remote_disposition, ports, events)?;
    let mut reply = None;
    let mut rights = Vec::new();
    let result = (|| {
        if header.local != PORT_NULL {
            reply = Some(task.names.copyin(header.local, header.local_disposition, ports, events)?);
        }
        if !descriptors.is_empty() {
            rights.reserve_exact(descriptors.len());
        }
        for d in descriptors {
            rights.push(task.names.copyin(d.name, d.disposition, ports, events)?);
        }
        Ok(())
    })();
    if let Err(e) = result {
        for right in core::iter::once(destination_right).chain(reply).chain(rights) {
            ports.release(right, events);
        }
        return Err(e);
    }
    let body = data.take().unwrap_or(Body {
        data: Vec::new(),
        ool: Vec::new(),
        deallocate: Vec::new(),
        charge: None,
    });
    for &(address, size) in &body.deallocate {
        (0..size).step_by(PAGE_SIZE as usize).for_each(|offset| task.space.unmap_user_page(address + offset));
    }
    let trace = if header.trace != 0 { header.trace } else { inherited_trace };
    let message = Message {
        reply,
        id: header.id,
        trace,
        ports: rights,
        ool: body.ool,
        data: body.data,
        charge: body.charge,
    };
    let was_reply = header.remote_disposition == disposition::MOVE_SEND_ONCE;
    let kind = if was_reply { trace_kind::REPLY } else { trace_kind::SEND };
    crate::trace::record_message(
        trace,
        kind,
        task.id,
        current,
        destination,
        header.id,
        message.size() as u64,
        crate::trace::Carried {
            data: &message.data,
            rights: message.ports.len(),
            regions: message.ool.len(),
        },
    );
    ports.consume_destination(destination_right, events);
    ports.note_queued(&message.ports, destination);
    ports.note_queued(message.reply.as_slice(), destination);
    let port = ports.get_mut(destination).ok_or(KernelError::PortDead)?;
    port.queue.push_back(message);
    Ok(SendOutcome::Queued { port: destination, set: port.set, was_reply })
}

/// The receive half of `mach_msg`: deliver the next message on `name` into `buffer`,
/// waiting as `timeout` allows.
pub fn receive(
    buffer: u64,
    capacity: u64,
    name: PortName,
    timeout: Option<Option<u64>>,
) -> Result<(), KernelError> {
    wait_until(timeout, |w, poll| try_receive(w, buffer, capacity, name, poll))
}

enum ReceiveOutcome {
    /// Delivered from `source`: a sender waiting for queue space there may go. `trace`: the
    /// message's trace context, which the receiving thread now carries.
    Delivered {
        source: PortId,
        trace: u32,
        /// The message's id and size (for the IRQ hop of a traced request).
        id: u32,
        size: u64,
    },
    Wait(PortId),
}

/// Deliver the next message into `buffer`, or return the port (or set) to wait on.
fn try_receive(
    w: &mut World,
    buffer: u64,
    capacity: u64,
    name: PortName,
    poll: bool,
) -> Result<Option<PortId>, KernelError> {
    let current = w.current_thread();
    let mut events = Vec::new();
    let outcome = match w.current_task_and_ports() {
        Some((task, ports)) => {
            receive_locked(task, ports, current, buffer, capacity, name, poll, &mut events)
        }
        None => Err(KernelError::InvalidArgument),
    };
    let result = match outcome {
        Ok(ReceiveOutcome::Delivered { source, trace, id, size }) => {
            let carried = w.thread_trace(current);
            if trace == 0 && id == mach_abi::IRQ_MESSAGE && carried != 0 {
                // An interrupt for a driver working on a traced request (a block read): a hop
                // of that request, which the driver goes on carrying.
                let task = w.current_task_id().unwrap_or(0);
                crate::trace::record(carried, trace_kind::IRQ, task, current, source, id, size);
            } else {
                w.set_thread_trace(current, trace);
            }
            w.wake_one_waiting_on(source, true);
            Ok(None)
        }
        Ok(ReceiveOutcome::Wait(port)) => {
            // While it waits, the fast path may write a message straight into the buffer.
            w.set_receive_buffer(sched::ReceiveBuffer { address: buffer, capacity });
            Ok(Some(port))
        }
        Err(e) => Err(e),
    };
    w.handle_events(&mut events);
    result
}

#[allow(clippy::too_many_arguments)]
fn receive_locked(
    task: &mut world::Task,
    ports: &mut PortTable<Message>,
    current: u64,
    buffer: u64,
    capacity: u64,
    name: PortName,
    poll: bool,
    events: &mut Vec<Event>,
) -> Result<ReceiveOutcome, KernelError> {
    let waited = task.names.receive_port(name)?;
    let port = ports.get(waited).ok_or(KernelError::InvalidName)?;
    let source = if port.is_set {
        port.members.iter().copied().find(|&m| ports.get(m).is_some_and(|p| !p.queue.is_empty()))
    } else {
        Some(waited).filter(|_| !port.queue.is_empty())
    };
    let Some(source) = source else {
        if poll {
            return Err(KernelError::TimedOut);
        }
        if let Some(p) = ports.get_mut(waited) {
            p.waiting_receivers.push_back(current);
        }
        return Ok(ReceiveOutcome::Wait(waited));
    };
    let source_port = ports.get(source).ok_or(KernelError::InvalidName)?;
    let size = source_port.queue.front().map_or(0, Message::size);
    let local = match source_port.receiver {
        mach_kernel::ipc::Receiver::Task { name, .. } => name,
        _ => PORT_NULL,
    };
    if size as u64 > capacity {
        return Err(KernelError::TooLarge);
    }
    UserSlice::<u8>::new(buffer, size)?.check_in(&task.space, true)?;
    let message = ports.get_mut(source).and_then(|p| p.queue.pop_front()).ok_or(KernelError::InvalidName)?;

    let mut header = MessageHeader {
        remote: PORT_NULL,
        local,
        remote_disposition: 0,
        local_disposition: 0,
        port_count: message.ports.len() as u8,
        ool_count: message.ool.len() as u8,
        id: message.id,
        data_size: message.data.len() as u32,
        trace: message.trace,
    };
    if let Some(reply) = message.reply {
        header.remote = task.names.copyout(reply, ports, events).unwrap_or(mach_abi::ipc::PORT_DEAD);
        header.remote_disposition = reply.kind.received_code();
    }
    // The buffer was checked writable above, so these writes cannot fail halfway.
    let mut result = UserPtr::new(buffer).write(&header);
    for (i, right) in message.ports.iter().enumerate() {
        let name = task.names.copyout(*right, ports, events).unwrap_or(mach_abi::ipc::PORT_DEAD);
        let d = PortDescriptor { name, disposition: right.kind.received_code(), reserved: [0; 3] };
        let at = buffer + (HEADER_SIZE + i * PORT_DESCRIPTOR_SIZE) as u64;
        result = result.and(UserPtr::new(at).write(&d));
    }
    let ool_at = buffer + (HEADER_SIZE + message.ports.len() * PORT_DESCRIPTOR_SIZE) as u64;
    for (i, region) in message.ool.into_iter().enumerate() {
        let size = region.size;
        let address = map_region(task, region);
        let d = OolDescriptor { address, size: if address == 0 { 0 } else { size }, flags: 0 };
        let at = ool_at + (i * OOL_DESCRIPTOR_SIZE) as u64;
        result = result.and(UserPtr::new(at).write(&d));
    }
    let data_at = ool_at + (header.ool_count as usize * OOL_DESCRIPTOR_SIZE) as u64;
    result = result.and(UserSlice::new(data_at, message.data.len()).and_then(|s| s.write(&message.data)));
    crate::trace::record(header.trace, trace_kind::RECEIVE, task.id, current, source, header.id, size as u64);
    result.map(|_| ReceiveOutcome::Delivered {
        source,
        trace: header.trace,
        id: header.id,
        size: size as u64,
    })
}

/// Map a received out-of-line region into `task` wherever there is room; its address, or 0
/// (and the pages freed) when the task cannot take it.
fn map_region(task: &mut world::Task, region: OolRegion) -> u64 {
    let size = region.frames.len() as u64 * PAGE_SIZE;
    let Ok(address) = task.find_anywhere(size) else {
        region.free();
        return 0;
    };
    let flags = paging::USER | paging::WRITABLE | paging::OWNED | paging::no_execute();
    // The pages mapped before an error own their frames and were freed with them.
    match task.space.map_user_pages(address, region.frames.iter().map(|&frame| (frame, flags))) {
        Ok(()) => {
            task.placed_anywhere(address, size);
            address
        }
        Err((_, mapped)) => {
            region.frames.iter().skip(mapped as usize).for_each(|&frame| frames::free(frame));
            0
        }
    }
}

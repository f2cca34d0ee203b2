//! Traps on the host port (privileged): boot modules, traces, and devices for user-space
//! drivers: I/O-port grants (the task's I/O permission bitmap), mapping a physical device
//! range, physically contiguous DMA memory, and interrupt lines delivered as messages.
//!
//! The kernel keeps to mechanism: it never touches a device for a driver. It refuses to map
//! RAM it manages, and it keeps the timer line (IRQ 0) and the cascade (IRQ 2) for itself.

use crate::arch::gdt::IO_BITMAP_BYTES;
use crate::arch::pic;
use crate::args::UserRange;
use crate::memory::paging::{self, no_execute};
use crate::memory::user::{UserPtr, UserSlice};
use crate::memory::{PAGE_SIZE, frames, phys_to_virt};
use crate::message::Message;
use crate::world::{self, TaskId, World};
use crate::{boot, kprintln};
use alloc::boxed::Box;
use alloc::vec::Vec;
use mach_abi::ipc::{PORT_NULL, PortName, disposition};
use mach_abi::{IRQ_MESSAGE, KernelError, ModuleInfo};

/// `host_module_info(host, index, *mut ModuleInfo)`: size, path and command line of a boot
/// module.
pub fn host_module_info(index: u64, info: UserPtr<ModuleInfo>) -> Result<u64, KernelError> {
    let module = usize::try_from(index).ok().and_then(boot::module).ok_or(KernelError::InvalidArgument)?;
    let mut out = ModuleInfo { size: module.bytes.len() as u64, ..ModuleInfo::default() };
    let path = module.path.as_bytes();
    let cmdline = module.cmdline.as_bytes();
    let path_len = path.len().min(out.path.len());
    let cmdline_len = cmdline.len().min(out.cmdline.len());
    out.path[..path_len].copy_from_slice(&path[..path_len]);
    out.cmdline[..cmdline_len].copy_from_slice(&cmdline[..cmdline_len]);
    out.path_len = path_len as u32;
    out.cmdline_len = cmdline_len as u32;
    info.write(&out)?;
    Ok(0)
}

/// `host_module_map(host, index, address) -> size`: the module, read-only, in the caller.
pub fn host_module_map(w: &mut World, index: u64, address: u64) -> Result<u64, KernelError> {
    let module = usize::try_from(index).ok().and_then(boot::module).ok_or(KernelError::InvalidArgument)?;
    let start = module.bytes.as_ptr() as u64;
    if !start.is_multiple_of(PAGE_SIZE) {
        kprintln!("host_module_map: module {index} is not page aligned");
        return Err(KernelError::InvalidArgument);
    }
    let size = (module.bytes.len() as u64).next_multiple_of(PAGE_SIZE).max(PAGE_SIZE);
    let UserRange { start: first, end } = UserRange::new(address, size)?;
    let physical_base = start - phys_to_virt(0);
    let (t, _) = w.current_task_and_ports().ok_or(KernelError::InvalidArgument)?;
    if !t.space.is_unmapped(first, end) {
        return Err(KernelError::InvalidAddress);
    }
    let flags = paging::USER | paging::no_execute();
    let pages = (0..size).step_by(PAGE_SIZE as usize).map(|offset| (physical_base + offset, flags));
    t.space.map_user_pages(first, pages).map_err(|(e, _)| e)?;
    Ok(size)
}

/// `host_trace_task(host, task, on)`.
pub fn host_trace_task(w: &mut World, task: TaskId, on: u64) -> Result<u64, KernelError> {
    if on > 1 {
        return Err(KernelError::InvalidArgument);
    }
    w.tasks.get_mut(task).ok_or(KernelError::InvalidArgument)?.traced = on == 1;
    Ok(0)
}

/// `host_trace_port(host) -> name`: a send right to the trace port (made on first use).
pub fn host_trace_port(w: &mut World) -> Result<u64, KernelError> {
    let right = match w.trace_port {
        Some(right) => right,
        None => {
            let right = w.ports.create_in_transit();
            if let Some(p) = w.ports.get_mut(right.port) {
                p.kernel_object = crate::world::TRACE_OBJECT;
            }
            w.trace_port = Some(right);
            right
        }
    };
    let send = w.ports.make_send(right.port).ok_or(KernelError::PortDead)?;
    crate::port_traps::give_to_caller(w, send)
}

/// `trace_task_name(trace, task_id, out, size) -> length`: the name of a live task by the id
/// trace records carry (at most `size` bytes copied).
pub fn trace_task_name(w: &mut World, task: u64, out: u64, size: u64) -> Result<u64, KernelError> {
    let name = w.tasks.get(task).map(|t| t.name.clone()).ok_or(KernelError::InvalidArgument)?;
    let n = name.len().min(size as usize);
    crate::memory::user::UserSlice::new(out, n)?.write(name.as_bytes().get(..n).unwrap_or(&[]))?;
    Ok(name.len() as u64)
}

/// `host_trace_read(host, from, buffer, max) -> count` (at most 256 records per call).
pub fn host_trace_read(w: &mut World, from: u64, buffer: u64, max: u64) -> Result<u64, KernelError> {
    use mach_abi::trace::TraceRecord;
    let max = usize::try_from(max).map_err(|_| KernelError::InvalidArgument)?.min(256);
    // The whole buffer is checked first, also when no record is there to copy.
    w.check_caller_memory(&UserSlice::<TraceRecord>::new(buffer, max)?, true)?;
    let mut records = alloc::vec![TraceRecord::default(); max];
    let count = crate::trace::read(from, &mut records);
    UserSlice::new(buffer, count)?.write(&records)?;
    Ok(count as u64)
}

/// Lines the kernel keeps: the timer and the cascade.
const KERNEL_IRQS: [u8; 2] = [0, 2];

/// `host_io_ports(host, task, first, count)`: let `task` use ports `[first, first+count)`.
pub fn io_ports(w: &mut World, task: TaskId, first: u64, count: u64) -> Result<u64, KernelError> {
    let end =
        first.checked_add(count).filter(|&e| count > 0 && e <= 65536).ok_or(KernelError::InvalidArgument)?;
    {
        let t = w.tasks.get_mut(task).ok_or(KernelError::InvalidArgument)?;
        let bitmap = t.io_bitmap.get_or_insert_with(|| Box::new([0xff; IO_BITMAP_BYTES]));
        for port in first..end {
            if let Some(byte) = bitmap.get_mut((port / 8) as usize) {
                *byte &= !(1 << (port % 8));
            }
        }
        // The running task may be the one granted: reload its bitmap on the next switch.
        crate::arch::gdt::forget_io_bitmap(task);
        if w.current_task_id() == Some(task) {
            let t = w.tasks.get(task).ok_or(KernelError::InvalidArgument)?;
            crate::arch::gdt::load_io_bitmap(task, t.io_bitmap.as_deref());
        }
        Ok(0)
    }
}

/// Whether `[physical, physical + size)` stays clear of memory the kernel hands out.
fn outside_ram(physical: u64, size: u64) -> bool {
    use limine::memory_map::EntryType;
    let end = physical.saturating_add(size);
    boot::MEMORY_MAP.get_response().is_some_and(|map| {
        map.entries().iter().all(|e| {
            let managed =
                [EntryType::USABLE, EntryType::BOOTLOADER_RECLAIMABLE, EntryType::EXECUTABLE_AND_MODULES];
            !managed.contains(&e.entry_type) || end <= e.base || e.base + e.length <= physical
        })
    })
}

/// `host_map_physical(host, task, physical, address, size)`: map a device range, uncached,
/// read-write, not executable, at `address` in `task`.
pub fn map_physical(
    w: &mut World,
    task: TaskId,
    physical: u64,
    range: UserRange,
) -> Result<u64, KernelError> {
    let (UserRange { start: address, end }, size) = (range, range.size());
    let physical_end = 1u64 << crate::arch::cpu::physical_address_bits();
    if !physical.is_multiple_of(PAGE_SIZE) || physical.checked_add(size).is_none_or(|e| e > physical_end) {
        return Err(KernelError::InvalidArgument);
    }
    if !outside_ram(physical, size) {
        return Err(KernelError::InvalidArgument);
    }
    let t = w.tasks.get_mut(task).ok_or(KernelError::InvalidArgument)?;
    if !t.space.is_unmapped(address, end) {
        return Err(KernelError::InvalidAddress);
    }
    let flags = paging::USER | paging::WRITABLE | paging::UNCACHED | no_execute();
    let pages = (0..size).step_by(PAGE_SIZE as usize).map(|offset| (physical + offset, flags));
    t.space.map_user_pages(address, pages).map_err(|(e, _)| e)?;
    Ok(0)
}

/// `host_dma_allocate(host, task, size, out: *mut [u64; 2])`: physically contiguous zeroed
/// memory mapped anywhere in `task`; writes its (address in the task, physical address).
pub fn dma_allocate(task: TaskId, size: u64, out: UserPtr<[u64; 2]>) -> Result<u64, KernelError> {
    if size == 0 || size > 16 << 20 || !size.is_multiple_of(PAGE_SIZE) {
        return Err(KernelError::InvalidArgument);
    }
    let count = (size / PAGE_SIZE) as usize;
    // The answer's place is checked before anything is allocated: a bad pointer changes
    // nothing.
    world::with(|w| w.check_caller_memory(&UserSlice::<[u64; 2]>::new(out.address(), 1)?, true))?;
    let physical = frames::alloc_contiguous_zeroed(count).ok_or(KernelError::NoMemory)?;
    let frame = |i: u64| physical + i * PAGE_SIZE;
    let address = world::with(|w| {
        let Some(t) = w.tasks.get_mut(task) else {
            (0..count as u64).for_each(|i| frames::free(frame(i)));
            return Err(KernelError::InvalidArgument);
        };
        let address = match t.find_anywhere(size) {
            Ok(address) => address,
            Err(e) => {
                (0..count as u64).for_each(|i| frames::free(frame(i)));
                return Err(e);
            }
        };
        let flags = paging::USER | paging::WRITABLE | paging::OWNED | no_execute();
        // The pages mapped before an error own their frames and were freed with them.
        if let Err((e, mapped)) =
            t.space.map_user_pages(address, (0..count as u64).map(|i| (frame(i), flags)))
        {
            (mapped..count as u64).for_each(|i| frames::free(frame(i)));
            return Err(e);
        }
        t.placed_anywhere(address, size);
        Ok(address)
    })?;
    out.write(&[address, physical])?;
    Ok(0)
}

/// An interrupt line a driver may have: 1 or 3..=15.
pub fn irq_line(irq: u64) -> Result<u8, KernelError> {
    u8::try_from(irq).ok().filter(|i| *i < 16 && !KERNEL_IRQS.contains(i)).ok_or(KernelError::InvalidArgument)
}

/// `host_irq_register(host, irq, port, disposition)`: messages for line `irq` go to `port`
/// (0: stop). The line is unmasked; each delivery masks it until `host_irq_ack`.
pub fn irq_register(w: &mut World, irq: u8, port: PortName, how: u64) -> Result<u64, KernelError> {
    let how = u8::try_from(how).map_err(|_| KernelError::InvalidDisposition)?;
    if ![disposition::MAKE_SEND, disposition::COPY_SEND, disposition::MOVE_SEND].contains(&how)
        && port != PORT_NULL
    {
        return Err(KernelError::InvalidDisposition);
    }
    {
        let mut events = Vec::new();
        let right = if port == PORT_NULL {
            None
        } else {
            let (task, ports) = w.current_task_and_ports().ok_or(KernelError::InvalidArgument)?;
            crate::args::kept_right_arg(&task.names, ports, port, how)?;
            Some(task.names.copyin(port, how, ports, &mut events)?)
        };
        let slot = w.irq_ports.get_mut(irq as usize).ok_or(KernelError::InvalidArgument)?;
        let old = core::mem::replace(slot, right);
        if let Some(old) = old {
            w.ports.release(old, &mut events);
        }
        pic::set_masked(irq, right.is_none());
        w.handle_events(&mut events);
        Ok(0)
    }
}

/// `host_irq_ack(host, irq)`: the driver handled the interrupt; unmask the line.
pub fn irq_ack(w: &mut World, irq: u8) -> Result<u64, KernelError> {
    let registered = w.irq_ports.get(irq as usize).is_some_and(|p| p.is_some());
    if !registered {
        return Err(KernelError::InvalidArgument);
    }
    pic::set_masked(irq, false);
    Ok(0)
}

/// An interrupt on a driver's line: mask it and send the message. Returns whether anyone
/// was told (otherwise the line stays masked: nobody wants it). When the kernel heap has no
/// room for the message, the line stays masked and the delivery is retried on the next
/// timer tick ([`retry_pending_irqs`]).
pub fn deliver_irq(w: &mut World, irq: u8) -> bool {
    pic::set_masked(irq, true);
    let Some(right) = w.irq_ports.get(irq as usize).copied().flatten() else { return false };
    if crate::memory::heap::room_for_user_objects().is_err() {
        w.irq_pending |= 1 << irq;
        return true;
    }
    w.irq_pending &= !(1 << irq);
    let Some(copy) = w.ports.make_send(right.port) else { return false };
    let message = Message::from_kernel(IRQ_MESSAGE, alloc::vec![irq], None, Vec::new());
    let mut events = Vec::new();
    crate::message::enqueue_from_kernel(w, copy, message, &mut events);
    w.handle_events(&mut events);
    true
}

/// Deliver the interrupts that found no room in the kernel heap when they came.
pub fn retry_pending_irqs(w: &mut World) {
    for irq in 0..16u8 {
        if w.irq_pending & (1 << irq) != 0 {
            deliver_irq(w, irq);
        }
    }
}

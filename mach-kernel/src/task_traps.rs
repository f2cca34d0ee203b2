//! Traps on kernel objects named by ports: tasks (create, terminate, memory, special ports,
//! end notifications) and the host (boot modules). Holding a send right to an object's port
//! is the permission to use it; nothing else is checked, and nothing else is needed.
//!
//! Every address and size is checked against user space and page alignment; a bad one is an
//! error code and changes nothing.

use crate::ipc_glue::{self, Message, name_arg};
use crate::memory::paging::{self, AddressSpace};
use crate::memory::{PAGE_SIZE, phys_to_virt};
use crate::sched::{self, HOST_OBJECT, TASK_OBJECT, TaskId, World};
use crate::{boot, kprintln};
use alloc::vec::Vec;
use mach_abi::ipc::{PORT_NULL, disposition};
use mach_abi::layout::USER_END;
use mach_abi::{KernelError, ModuleInfo, VM_MAX_SIZE, protection};
use mach_kernel::ipc::{CarriedRight, Event};

/// The kernel object a send right in the caller's space names, if it has tag `kind`.
fn object_of(name: u64, kind: u64) -> Result<u64, KernelError> {
    let name = name_arg(name)?;
    sched::with(|w| {
        let (task, ports) = w.current_task_and_ports().ok_or(KernelError::InvalidArgument)?;
        let id = task.names.send_port(name, ports)?;
        let object = ports.get(id).ok_or(KernelError::InvalidName)?.kernel_object;
        if object & kind == 0 {
            return Err(KernelError::InvalidRight);
        }
        Ok(object & !kind)
    })
}

pub fn task_of(name: u64) -> Result<TaskId, KernelError> {
    object_of(name, TASK_OBJECT)
}

pub fn check_host(name: u64) -> Result<(), KernelError> {
    object_of(name, HOST_OBJECT).map(|_| ())
}

/// A page-aligned, non-empty range inside user space.
pub fn user_range(address: u64, size: u64) -> Result<(u64, u64), KernelError> {
    if size == 0
        || size > VM_MAX_SIZE
        || !address.is_multiple_of(PAGE_SIZE)
        || !size.is_multiple_of(PAGE_SIZE)
    {
        return Err(KernelError::InvalidArgument);
    }
    let end = address.checked_add(size).filter(|&e| e <= USER_END && address >= PAGE_SIZE);
    Ok((address, end.ok_or(KernelError::InvalidAddress)?))
}

/// Check that `[address, address + len)` is memory the calling task may read (or write),
/// before a trap changes anything it would have to undo.
pub fn check_caller_memory(address: u64, len: usize, write: bool) -> Result<(), KernelError> {
    sched::with_current_task(|t| t.space.check_user(address, len, write))
        .ok_or(KernelError::InvalidArgument)?
}

fn protection_flags(prot: u64) -> Result<(bool, bool), KernelError> {
    if prot & !(protection::WRITE | protection::EXECUTE) != 0 {
        return Err(KernelError::InvalidArgument);
    }
    Ok((prot & protection::WRITE != 0, prot & protection::EXECUTE != 0))
}

pub fn task_create() -> Result<u64, KernelError> {
    crate::memory::heap::room_for_user_objects()?;
    let space = crate::memory::paging::AddressSpace::new_user()?;
    let parent = sched::with_current_task(|t| t.name.clone()).unwrap_or_default();
    let id = sched::create_task(&alloc::format!("{parent}.child"), space, None);
    give_task_port(id)
}

/// A send right to task `id`'s port, in the caller's name space.
fn give_task_port(id: TaskId) -> Result<u64, KernelError> {
    sched::with(|w| {
        let port = w.tasks.get(id).map(|t| t.self_port.port).ok_or(KernelError::InvalidArgument)?;
        let right = w.ports.make_send(port).ok_or(KernelError::PortDead)?;
        ipc_glue::give_to_caller(w, right)
    })
}

pub fn task_terminate(task: u64) -> Result<u64, KernelError> {
    let task = task_of(task)?;
    if sched::terminate_task(task)? {
        sched::schedule();
        unreachable!("a terminated thread was scheduled");
    }
    Ok(0)
}

/// Pages a long trap handles between two preemption points (256 KiB of memory).
const PAGES_PER_STEP: u64 = 64;

pub fn vm_allocate(task: u64, address: u64, size: u64, prot: u64) -> Result<u64, KernelError> {
    let task = task_of(task)?;
    let (writable, executable) = protection_flags(prot)?;
    let (start, end) = sched::with(|w| {
        let t = w.tasks.get_mut(task).ok_or(KernelError::InvalidArgument)?;
        let anywhere = address == 0;
        let address = if anywhere { t.find_anywhere(size)? } else { address };
        let (start, end) = user_range(address, size)?;
        if !t.space.is_unmapped(start, end) {
            return Err(KernelError::InvalidAddress);
        }
        // Placed now, so that other "anywhere" calls made while this one is preempted go
        // elsewhere (an error below unmaps what was mapped; the next search finds it free).
        if anywhere {
            t.placed_anywhere(start, size);
        }
        Ok((start, end))
    })?;
    // In steps, with the timer let in between: a gigabyte of zeroed pages takes a while.
    let mut page = start;
    while page < end {
        let step_end = (page + PAGES_PER_STEP * PAGE_SIZE).min(end);
        let mapped = sched::with(|w| {
            let t = w.tasks.get_mut(task).ok_or(KernelError::InvalidArgument)?;
            while page < step_end {
                t.space.map_new_user_page(page, writable, executable)?;
                page += PAGE_SIZE;
            }
            Ok(())
        });
        if let Err(e) = mapped {
            // Unmap what this call mapped (the task may have ended: then nothing is left).
            sched::with(|w| {
                if let Some(t) = w.tasks.get_mut(task) {
                    (start..page).step_by(PAGE_SIZE as usize).for_each(|p| t.space.unmap_user_page(p));
                }
            });
            return Err(e);
        }
        crate::arch::cpu::let_interrupts_in();
    }
    Ok(start)
}

pub fn vm_deallocate(task: u64, address: u64, size: u64) -> Result<u64, KernelError> {
    let task = task_of(task)?;
    let (start, end) = user_range(address, size)?;
    let mut page = start;
    while page < end {
        let step_end = (page + PAGES_PER_STEP * PAGE_SIZE).min(end);
        sched::with(|w| {
            let t = w.tasks.get_mut(task).ok_or(KernelError::InvalidArgument)?;
            (page..step_end).step_by(PAGE_SIZE as usize).for_each(|p| t.space.unmap_user_page(p));
            Ok::<_, KernelError>(())
        })?;
        page = step_end;
        crate::arch::cpu::let_interrupts_in();
    }
    Ok(0)
}

pub fn vm_protect(task: u64, address: u64, size: u64, prot: u64) -> Result<u64, KernelError> {
    let task = task_of(task)?;
    let (writable, executable) = protection_flags(prot)?;
    let (start, end) = user_range(address, size)?;
    sched::with(|w| {
        let t = w.tasks.get_mut(task).ok_or(KernelError::InvalidArgument)?;
        let pages = (start..end).step_by(PAGE_SIZE as usize);
        // Every page is checked before any changes: an error changes nothing.
        pages.clone().try_for_each(|page| t.space.may_protect_user_page(page, writable))?;
        pages.clone().try_for_each(|page| t.space.protect_user_page(page, writable, executable))?;
        Ok(0)
    })
}

/// `vm_map(task, address, size, source_task, source_address, protection) -> address`: map
/// the pages of `source_task` at `source_address` into `task` at `address` (0: anywhere),
/// shared: each side sees the other's writes. Every source page must be mapped; memory the
/// source does not own is never shared with more access than it has there. Nothing changes
/// when an error is returned (a copy-on-write source page may have become the source's own).
pub fn vm_map(
    task: u64,
    address: u64,
    size: u64,
    source: u64,
    source_address: u64,
    prot: u64,
) -> Result<u64, KernelError> {
    let task = task_of(task)?;
    let source = task_of(source)?;
    let (writable, executable) = protection_flags(prot)?;
    let (source_start, source_end) = user_range(source_address, size)?;
    crate::memory::heap::room_for_user_objects()?;
    let source_pages = (source_start..source_end).step_by(PAGE_SIZE as usize);
    sched::with(|w| {
        let s = w.tasks.get(source).ok_or(KernelError::InvalidArgument)?;
        source_pages.clone().try_for_each(|page| s.space.may_protect_user_page(page, writable))?;
        let t = w.tasks.get_mut(task).ok_or(KernelError::InvalidArgument)?;
        let anywhere = address == 0;
        let address = if anywhere { t.find_anywhere(size)? } else { address };
        let (start, end) = user_range(address, size)?;
        if !t.space.is_unmapped(start, end) {
            return Err(KernelError::InvalidAddress);
        }
        // Checked: now a reference to each source frame, then the mappings that hold them.
        let s = w.tasks.get_mut(source).ok_or(KernelError::InvalidArgument)?;
        let mut entries = Vec::with_capacity((size / PAGE_SIZE) as usize);
        for page in source_pages {
            match s.space.share_user_page(page, writable) {
                Ok(entry) => entries.push(entry),
                Err(e) => {
                    entries.into_iter().for_each(AddressSpace::unshare_entry);
                    return Err(e);
                }
            }
        }
        let t = w.tasks.get_mut(task).ok_or(KernelError::InvalidArgument)?;
        let pages = entries.iter().map(|&entry| paging::shared_entry(entry, writable, executable));
        if let Err((e, mapped)) = t.space.map_user_pages(start, pages) {
            // The mapped ones gave their references back when unmapped.
            entries.into_iter().skip(mapped as usize).for_each(AddressSpace::unshare_entry);
            return Err(e);
        }
        if anywhere {
            t.placed_anywhere(start, size);
        }
        Ok(start)
    })
}

/// Copy `len` bytes between the caller's memory and `task`'s, a page-sized chunk at a time.
fn vm_copy(
    task: u64,
    address: u64,
    caller_address: u64,
    len: u64,
    into_task: bool,
) -> Result<u64, KernelError> {
    let task = task_of(task)?;
    if len > VM_MAX_SIZE {
        return Err(KernelError::InvalidArgument);
    }
    let mut chunk = [0u8; PAGE_SIZE as usize];
    let mut done = 0;
    while done < len {
        let n = (len - done).min(PAGE_SIZE);
        let buffer = chunk.get_mut(..n as usize).ok_or(KernelError::InvalidArgument)?;
        sched::with(|w| {
            let caller = w.current_task_id().ok_or(KernelError::InvalidArgument)?;
            let (from_task, from, to_task, to) = if into_task {
                (caller, caller_address + done, task, address + done)
            } else {
                (task, address + done, caller, caller_address + done)
            };
            w.tasks.get(from_task).ok_or(KernelError::InvalidArgument)?.space.read_user(from, buffer)?;
            w.tasks.get(to_task).ok_or(KernelError::InvalidArgument)?.space.write_user(to, buffer)
        })?;
        done += n;
        if done.is_multiple_of(PAGES_PER_STEP * PAGE_SIZE) {
            crate::arch::cpu::let_interrupts_in();
        }
    }
    Ok(len)
}

pub fn vm_write(task: u64, address: u64, source: u64, len: u64) -> Result<u64, KernelError> {
    vm_copy(task, address, source, len, true)
}

pub fn vm_read(task: u64, address: u64, destination: u64, len: u64) -> Result<u64, KernelError> {
    vm_copy(task, address, destination, len, false)
}

fn special_index(which: u64) -> Result<usize, KernelError> {
    usize::try_from(which).ok().filter(|&i| i < 3).ok_or(KernelError::InvalidArgument)
}

pub fn task_set_special_port(task: u64, which: u64, name: u64) -> Result<u64, KernelError> {
    let task = task_of(task)?;
    let index = special_index(which)?;
    let name = name_arg(name)?;
    sched::with(|w| {
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
    sched::with(|w| {
        let port = w.tasks.get(task).and_then(|t| t.special_ports.get(index).copied().flatten());
        let Some(port) = port else { return Ok(0) };
        let Some(copy) = w.ports.make_send(port.port) else { return Ok(u64::from(mach_abi::ipc::PORT_DEAD)) };
        ipc_glue::give_to_caller(w, copy)
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
    sched::with(|w| {
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

/// Send the task-ended notifications of a finished task.
pub fn notify_task_ended(w: &mut World, task: TaskId, rights: Vec<CarriedRight>, events: &mut Vec<Event>) {
    for right in rights {
        let message =
            Message::from_kernel(mach_abi::TASK_ENDED_MESSAGE, task.to_le_bytes().to_vec(), None, Vec::new());
        ipc_glue::enqueue_from_kernel(w, right, message, events);
    }
}

pub fn host_module_info(host: u64, index: u64, info: u64) -> Result<u64, KernelError> {
    check_host(host)?;
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
    // SAFETY: ModuleInfo is plain integers and byte arrays.
    let bytes = unsafe {
        core::slice::from_raw_parts(
            &out as *const ModuleInfo as *const u8,
            core::mem::size_of::<ModuleInfo>(),
        )
    };
    sched::with_current_task(|t| t.space.write_user(info, bytes)).ok_or(KernelError::InvalidArgument)??;
    Ok(0)
}

pub fn host_module_map(host: u64, index: u64, address: u64) -> Result<u64, KernelError> {
    check_host(host)?;
    let module = usize::try_from(index).ok().and_then(boot::module).ok_or(KernelError::InvalidArgument)?;
    let start = module.bytes.as_ptr() as u64;
    if !start.is_multiple_of(PAGE_SIZE) {
        kprintln!("host_module_map: module {index} is not page aligned");
        return Err(KernelError::InvalidArgument);
    }
    let size = (module.bytes.len() as u64).next_multiple_of(PAGE_SIZE).max(PAGE_SIZE);
    let (first, end) = user_range(address, size)?;
    let physical_base = start - phys_to_virt(0);
    sched::with(|w| {
        let (t, _) = w.current_task_and_ports().ok_or(KernelError::InvalidArgument)?;
        if !t.space.is_unmapped(first, end) {
            return Err(KernelError::InvalidAddress);
        }
        let flags = paging::USER | paging::no_execute();
        let pages = (0..size).step_by(PAGE_SIZE as usize).map(|offset| (physical_base + offset, flags));
        t.space.map_user_pages(first, pages).map_err(|(e, _)| e)?;
        Ok(size)
    })
}

pub fn task_set_name(task: u64, text: u64, len: u64) -> Result<u64, KernelError> {
    let task = task_of(task)?;
    let len =
        usize::try_from(len).ok().filter(|&l| (1..=32).contains(&l)).ok_or(KernelError::InvalidArgument)?;
    let mut buffer = [0u8; 32];
    let bytes = buffer.get_mut(..len).ok_or(KernelError::InvalidArgument)?;
    sched::with_current_task(|t| t.space.read_user(text, bytes)).ok_or(KernelError::InvalidArgument)??;
    let name = core::str::from_utf8(bytes).map_err(|_| KernelError::InvalidArgument)?;
    sched::with(|w| {
        let t = w.tasks.get_mut(task).ok_or(KernelError::InvalidArgument)?;
        t.name = alloc::string::String::from(name);
        Ok(0)
    })
}

/// `host_trace_task(host, task, on)`.
pub fn host_trace_task(host: u64, task: u64, on: u64) -> Result<u64, KernelError> {
    check_host(host)?;
    let task = task_of(task)?;
    if on > 1 {
        return Err(KernelError::InvalidArgument);
    }
    sched::with(|w| {
        w.tasks.get_mut(task).ok_or(KernelError::InvalidArgument)?.traced = on == 1;
        Ok(0)
    })
}

/// `host_trace_read(host, from, buffer, max) -> count` (at most 256 records per call).
pub fn host_trace_read(host: u64, from: u64, buffer: u64, max: u64) -> Result<u64, KernelError> {
    use mach_abi::trace::TraceRecord;
    check_host(host)?;
    let max = usize::try_from(max).map_err(|_| KernelError::InvalidArgument)?.min(256);
    // The whole buffer is checked first, also when no record is there to copy.
    let buffer_len = max * core::mem::size_of::<TraceRecord>();
    check_caller_memory(buffer, buffer_len, true)?;
    let mut records = alloc::vec![TraceRecord::default(); max];
    let count = crate::trace::read(from, &mut records);
    let bytes_len = count * core::mem::size_of::<TraceRecord>();
    // SAFETY: TraceRecord is plain integers; `count` records were filled.
    let bytes = unsafe { core::slice::from_raw_parts(records.as_ptr() as *const u8, bytes_len) };
    crate::memory::paging::AddressSpace::write_current(buffer, bytes)?;
    Ok(count as u64)
}

/// The thread a send right in the caller's space names (a thread port).
fn thread_of(name: u64) -> Result<sched::ThreadId, KernelError> {
    object_of(name, sched::THREAD_OBJECT)
}

/// A send right to `thread`'s port, put into the caller's name space.
pub fn give_thread_port(thread: sched::ThreadId) -> Result<u64, KernelError> {
    sched::with(|w| {
        let right = w.thread_port_right(thread).ok_or(KernelError::InvalidArgument)?;
        ipc_glue::give_to_caller(w, right)
    })
}

/// `thread_get_state(thread, out: *mut Registers)`: the thread's user registers as they
/// are while it is stopped in the kernel (for the caller itself: as at this trap).
pub fn thread_get_state(thread: u64, out: u64) -> Result<u64, KernelError> {
    let thread = thread_of(thread)?;
    let registers = sched::with(|w| {
        let fs_base = w.fs_base(thread);
        w.user_frame(thread)
            .map(|f| crate::foreign::registers_of(&f, fs_base))
            .ok_or(KernelError::InvalidArgument)
    })?;
    // SAFETY: Registers is plain u64s.
    let bytes = unsafe {
        core::slice::from_raw_parts(
            &registers as *const _ as *const u8,
            core::mem::size_of::<mach_abi::forward::Registers>(),
        )
    };
    crate::memory::paging::AddressSpace::write_current(out, bytes)?;
    Ok(0)
}

/// `thread_set_state(thread, registers: *const Registers)`: replace the thread's user
/// registers (rip, rsp and the FS base must be user addresses). Meant for a thread that is
/// suspended or stopped in a fault; a thread inside a system call gets that call's result in
/// rax after.
pub fn thread_set_state(thread: u64, input: u64) -> Result<u64, KernelError> {
    let thread = thread_of(thread)?;
    let mut registers = [mach_abi::forward::Registers::default()];
    // SAFETY: Registers is plain u64s: any bytes are a value.
    let bytes = unsafe {
        core::slice::from_raw_parts_mut(
            registers.as_mut_ptr() as *mut u8,
            core::mem::size_of::<mach_abi::forward::Registers>(),
        )
    };
    crate::memory::paging::AddressSpace::read_current(input, bytes)?;
    let [registers] = registers;
    let registers = crate::foreign::UserRegisters::check(&registers)?;
    sched::with(|w| {
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
    give_thread_port(sched::with(|w| w.current_thread()))
}

/// `thread_set_priority(thread, priority) -> previous`. The caller gives way at once when a
/// ready thread now outranks it (it raised another, or lowered itself).
pub fn thread_set_priority(thread: u64, priority: u64) -> Result<u64, KernelError> {
    let thread = thread_of(thread)?;
    if priority > mach_abi::MAX_PRIORITY {
        return Err(KernelError::InvalidArgument);
    }
    let (old, give_way) = sched::with(|w| {
        let old = w.set_priority(thread, priority as u8)?;
        Ok::<_, KernelError>((old, w.is_outranked()))
    })?;
    if give_way {
        sched::schedule();
    }
    Ok(u64::from(old))
}

pub fn task_suspend(task: u64) -> Result<u64, KernelError> {
    let task = task_of(task)?;
    sched::with(|w| w.suspend_task(task))?;
    // The caller may have suspended its own task: it stops here until resumed.
    sched::schedule();
    Ok(0)
}

pub fn task_resume(task: u64) -> Result<u64, KernelError> {
    let task = task_of(task)?;
    sched::with(|w| w.resume_task(task))?;
    Ok(0)
}

/// `task_create_copy(parent) -> name`: a new task whose memory is a copy-on-write copy of the
/// parent's (no threads, no rights); the caller gets a send right to its port. For fork.
pub fn task_create_copy(parent: u64) -> Result<u64, KernelError> {
    let parent = task_of(parent)?;
    crate::memory::heap::room_for_user_objects()?;
    let (space, name, hint) = sched::with(|w| {
        let p = w.tasks.get_mut(parent).ok_or(KernelError::InvalidArgument)?;
        let name = alloc::format!("{}.copy", p.name);
        Ok::<_, KernelError>((p.space.copy_on_write()?, name, p.next_free_address))
    })?;
    // The copy has the parent's memory, so "anywhere" placement goes on where it was.
    let id = sched::create_task(&name, space, Some(hint));
    give_task_port(id)
}

//! What happens on each way into the kernel: device interrupts, exceptions (the user's become
//! a report and the end of the task; the kernel's stop the machine), and system calls (Mach
//! traps when rax < 0, foreign system calls otherwise).
//!
//! Every trap handler returns `Result<u64, KernelError>`; user mistakes become error codes
//! or the end of the offending task, never a kernel panic.

use crate::arch::{cpu, idt, pic, trap_frame::TrapFrame};
use crate::args::{Protection, UserRange, kept_disposition_arg, name_arg, special_index};
use crate::memory::user::UserPtr;
use crate::world::{self, World};
use crate::{host_traps, kprintln, log, msg, port_traps, sched, task_traps, thread_traps, vm_traps};
use core::fmt::Write;
use core::sync::atomic::{AtomicU64, Ordering};
use mach_abi::layout::USER_END;
use mach_abi::{DEBUG_WRITE_MAX, KernelError, qemu_exit, trap};

/// Timer interrupts since boot.
pub static TICKS: AtomicU64 = AtomicU64::new(0);

/// Every interrupt and exception. `frame` is the interrupted context's saved registers, on
/// this thread's kernel stack. Nothing here holds a reference to it: it is read once (a copy)
/// and written through the pointer, so another thread may change a blocked thread's saved
/// registers through the thread table (`World::update_user_frame`) without aliasing.
pub fn dispatch(frame: *mut TrapFrame) {
    // SAFETY: the entry stub passes this thread's own saved frame; nothing else runs now.
    let saved = unsafe { frame.read() };
    if saved.vector == 14 && copy_on_write_fault(&saved) {
        return; // the page is now the task's own: retry the write
    }
    match saved.vector {
        v if (pic::IRQ_BASE..pic::IRQ_BASE + 16).contains(&v) => interrupt((v - pic::IRQ_BASE) as u8),
        v if v == idt::INT_SYSCALL_VECTOR as u64 && saved.came_from_user() => int_syscall(frame, &saved),
        _ if saved.came_from_user() => user_exception(&saved),
        14 if let Some(resume) = crate::arch::user_copy::fixup_for(saved.rip) => {
            // SAFETY: as above; the kernel copy routine resumes at its fault exit.
            unsafe { (*frame).rip = resume };
        }
        _ => kernel_exception(&saved),
    }
}

/// `int $64` from user mode: a foreign system call like `syscall`'s (never a Mach trap),
/// forwarded with its entry kind so that the personality knows which ABI was used.
fn int_syscall(frame: *mut TrapFrame, saved: &TrapFrame) {
    let call = SyscallArgs {
        number: saved.rax,
        args: [saved.rdi, saved.rsi, saved.rdx, saved.r10, saved.r8, saved.r9],
    };
    let result = crate::forward::syscall(call, mach_abi::forward::entry::INT_0X40);
    // SAFETY: this thread's own saved frame, as in `dispatch`; whatever changed it while the
    // thread was blocked (a reply's registers) is done.
    unsafe { (*frame).rax = result };
}

/// A write to a present user page (from the user, or from the kernel's user-copy routine):
/// if the page is copy-on-write, give the task its own copy. True when handled.
fn copy_on_write_fault(frame: &TrapFrame) -> bool {
    const PRESENT_AND_WRITE: u64 = 0b11;
    let address = cpu::read_cr2();
    let user_access = frame.came_from_user() || crate::arch::user_copy::fixup_for(frame.rip).is_some();
    if frame.error_code & PRESENT_AND_WRITE != PRESENT_AND_WRITE || !user_access || address >= USER_END {
        return false;
    }
    // The running space's own tables; no lock (one CPU, interrupts off in the kernel).
    crate::memory::paging::AddressSpace::running().break_copy_on_write(address).unwrap_or(false)
}

/// A device interrupt: the timer ticks the scheduler; a driver's line becomes a message.
fn interrupt(irq: u8) {
    if pic::is_spurious(irq) {
        return;
    }
    if irq == 0 {
        pic::end_of_interrupt(irq);
        TICKS.fetch_add(1, Ordering::Relaxed);
        sched::tick();
        return;
    }
    // A driver's line: masked until the driver acknowledges it, then end of interrupt.
    world::with(|w| crate::host_traps::deliver_irq(w, irq));
    pic::end_of_interrupt(irq);
    sched::schedule();
}

/// A user thread faulted: its task's exception port gets a message and the reply resumes the
/// thread (maybe with new registers) or ends the task. Without a handler the fault is
/// reported on the kernel log and the task ends.
fn user_exception(frame: &TrapFrame) {
    let fault_address = if frame.vector == 14 { cpu::read_cr2() } else { 0 };
    if crate::forward::exception(frame, fault_address) {
        return;
    }
    report_user_fault(frame, fault_address);
    sched::exit_current_task();
}

/// Print a user fault (registers, fault address) on the kernel log.
fn report_user_fault(frame: &TrapFrame, fault_address: u64) {
    let name = world::with_current_task(|t| alloc::format!("{} (task {})", t.name, t.id)).unwrap_or_default();
    let mut out = log::LOG.lock();
    let _ = write!(
        out,
        "user fault: {name}: {} (vector {}) error {:#x} at rip {:#x}",
        idt::exception_name(frame.vector),
        frame.vector,
        frame.error_code,
        frame.rip
    );
    if frame.vector == 14 {
        let access = if frame.error_code & 2 != 0 {
            "write"
        } else if frame.error_code & 16 != 0 {
            "execute"
        } else {
            "read"
        };
        let cause = if frame.error_code & 1 != 0 { "protection" } else { "not present" };
        let _ = write!(out, ", cr2 {fault_address:#x} ({access}, {cause})");
    }
    let _ = writeln!(out);
    let _ = frame.dump(&mut *out);
    let _ = writeln!(out, "user fault: ending {name}");
}

/// An exception in the kernel itself: a kernel bug. Print everything and stop QEMU.
fn kernel_exception(frame: &TrapFrame) -> ! {
    static REPORTING: core::sync::atomic::AtomicBool = core::sync::atomic::AtomicBool::new(false);
    let nested = REPORTING.swap(true, Ordering::Relaxed);
    let mut out = log::emergency();
    if nested {
        let _ = writeln!(
            out,
            "KERNEL EXCEPTION while reporting one: vector {} at rip {:#x}",
            frame.vector, frame.rip
        );
        cpu::exit_qemu(qemu_exit::FAILURE);
    }
    let _ = writeln!(
        out,
        "KERNEL EXCEPTION: {} (vector {}) error {:#x}",
        idt::exception_name(frame.vector),
        frame.vector,
        frame.error_code
    );
    let _ = writeln!(
        out,
        "  rip {:#018x}  cr2 {:#018x}  cr3 {:#018x}",
        frame.rip,
        cpu::read_cr2(),
        cpu::read_cr3()
    );
    let _ = frame.dump(&mut out);
    crate::panic::backtrace(&mut out, frame.rbp);
    let _ = writeln!(out, "mach-kernel: stopped (exception)");
    cpu::exit_qemu(qemu_exit::FAILURE);
}

/// The registers a system call reads: its number and six arguments.
#[derive(Clone, Copy)]
pub struct SyscallArgs {
    pub number: u64,
    pub args: [u64; 6],
}

/// A system call: `frame` is the caller's saved registers. They are read once here and the
/// result written back into rax at the end; no reference to the frame is held meanwhile, so
/// a forwarded call's reply (applied by another thread through the thread table) and
/// `thread_get_state` on the caller itself see and change the one copy.
#[inline(always)]
pub fn syscall(frame: *mut TrapFrame) {
    // The RPC step (send, then wait for the answer) first: it may take the IPC fast path.
    // SAFETY: the SYSCALL entry passes this thread's own saved frame.
    let fast = unsafe {
        let f = &*frame;
        if f.rax == trap::MACH_MSG as u64 {
            crate::msg_fast::mach_msg(f.rdi, f.rsi, f.rdx, f.r10, f.r8)
        } else {
            None
        }
    };
    let result = match fast {
        Some(result) => result.map_or_else(|e| e.as_return() as u64, |()| 0),
        None => general_syscall(frame),
    };
    // SAFETY: as above; whatever changed the frame while this thread was blocked is done.
    unsafe { (*frame).rax = result };
}

#[inline(never)]
fn general_syscall(frame: *mut TrapFrame) -> u64 {
    // SAFETY: as in `syscall`; a copy of the registers, no reference kept.
    let call = unsafe {
        let f = &*frame;
        SyscallArgs { number: f.rax, args: [f.rdi, f.rsi, f.rdx, f.r10, f.r8, f.r9] }
    };
    let number = call.number as i64;
    let result = if number < 0 {
        mach_trap(number, call.args)
    } else {
        Ok(crate::forward::syscall(call, mach_abi::forward::entry::SYSCALL))
    };
    match result {
        Ok(value) => value,
        Err(error) => error.as_return() as u64,
    }
}

/// A Mach trap: decode its arguments (objects first, as docs/kernel.md lists the errors),
/// then act. Most traps are decoded and done in one hold of the world lock; those that
/// block, switch threads or work in steps decode under the lock and then take it as they go.
fn mach_trap(number: i64, args: [u64; 6]) -> Result<u64, KernelError> {
    let a = TrapArgs::from(args);
    match number {
        trap::DEBUG_WRITE => debug_write(a.rdi, a.rsi),
        trap::TASK_EXIT => task_exit(a.rdi),
        trap::THREAD_EXIT => sched::exit_current_thread(),
        trap::SLEEP => thread_traps::sleep(a.rdi),
        trap::CLOCK_READ => crate::clock::clock_read(a.rdi),
        trap::THREAD_TERMINATE => {
            let own = world::with(|w| {
                let thread = w.thread_arg(a.rdi)?;
                Ok::<bool, KernelError>(thread_traps::thread_terminate(w, thread))
            })?;
            if own {
                sched::schedule();
                unreachable!("a terminated thread was scheduled");
            }
            Ok(0)
        }
        trap::MACH_MSG => msg::mach_msg(a.rdi, a.rsi, a.rdx, a.r10, a.r8),
        trap::TASK_TERMINATE => task_traps::task_terminate(world::with(|w| w.task_arg(a.rdi))?),
        trap::TASK_SUSPEND => {
            world::with(|w| {
                let task = w.task_arg(a.rdi)?;
                task_traps::task_suspend(w, task)
            })?;
            // The caller may have suspended its own task: it stops here until resumed.
            sched::schedule();
            Ok(0)
        }
        trap::THREAD_SET_PRIORITY => {
            let (old, give_way) = world::with(|w| {
                let thread = w.thread_arg(a.rdi)?;
                thread_traps::thread_set_priority(w, thread, a.rsi)
            })?;
            if give_way {
                sched::schedule();
            }
            Ok(old)
        }
        trap::VM_ALLOCATE => {
            let task = world::with(|w| w.task_arg(a.rdi))?;
            vm_traps::vm_allocate(task, a.rsi, a.rdx, Protection::new(a.r10)?)
        }
        trap::VM_DEALLOCATE => {
            let task = world::with(|w| w.task_arg(a.rdi))?;
            vm_traps::vm_deallocate(task, UserRange::new(a.rsi, a.rdx)?)
        }
        trap::VM_WRITE => vm_traps::vm_write(world::with(|w| w.task_arg(a.rdi))?, a.rsi, a.rdx, a.r10),
        trap::VM_READ => vm_traps::vm_read(world::with(|w| w.task_arg(a.rdi))?, a.rsi, a.rdx, a.r10),
        trap::HOST_DMA_ALLOCATE => {
            let task = world::with(|w| {
                w.host_arg(a.rdi)?;
                w.task_arg(a.rsi)
            })?;
            host_traps::dma_allocate(task, a.rdx, UserPtr::new(a.r10))
        }
        trap::HOST_MODULE_INFO => {
            world::with(|w| w.host_arg(a.rdi))?;
            host_traps::host_module_info(a.rsi, UserPtr::new(a.rdx))
        }
        _ => world::with(|w| locked_trap(w, number, &a)),
    }
}

/// The traps done in one hold of the world lock: decoded, then handled.
fn locked_trap(w: &mut World, number: i64, a: &TrapArgs) -> Result<u64, KernelError> {
    match number {
        trap::PORT_ALLOCATE => port_traps::port_allocate(w),
        trap::PORT_ALLOCATE_SET => port_traps::port_allocate_set(w),
        trap::PORT_DEALLOCATE => port_traps::port_deallocate(w, name_arg(a.rdi)?),
        trap::PORT_DESTROY => port_traps::port_destroy(w, name_arg(a.rdi)?),
        trap::PORT_TYPE => port_traps::port_type(w, name_arg(a.rdi)?),
        trap::PORT_MOVE_MEMBER => port_traps::port_move_member(w, name_arg(a.rdi)?, name_arg(a.rsi)?),
        trap::PORT_MAKE_SEND => port_traps::port_make_send(w, name_arg(a.rdi)?),
        trap::PORT_SET_QUEUE_LIMIT => port_traps::port_set_queue_limit(w, name_arg(a.rdi)?, a.rsi),
        trap::PORT_REQUEST_NOTIFICATION => {
            let (name, notify) = (name_arg(a.rdi)?, name_arg(a.rdx)?);
            port_traps::port_request_notification(w, name, a.rsi, notify, a.r10)
        }
        trap::TASK_SELF => task_traps::task_self(w),
        trap::TASK_CREATE => task_traps::task_create(w),
        trap::TASK_CREATE_COPY => {
            let parent = w.task_arg(a.rdi)?;
            task_traps::task_create_copy(w, parent)
        }
        trap::TASK_SET_SPECIAL_PORT => {
            let task = w.task_arg(a.rdi)?;
            task_traps::task_set_special_port(w, task, special_index(a.rsi)?, name_arg(a.rdx)?)
        }
        trap::TASK_GET_SPECIAL_PORT => {
            let task = w.task_arg(a.rdi)?;
            task_traps::task_get_special_port(w, task, special_index(a.rsi)?)
        }
        trap::TASK_NOTIFY_ENDED => {
            let task = w.task_arg(a.rdi)?;
            task_traps::task_notify_ended(w, task, name_arg(a.rsi)?, kept_disposition_arg(a.rdx)?)
        }
        trap::TASK_SET_NAME => {
            let task = w.task_arg(a.rdi)?;
            task_traps::task_set_name(w, task, a.rsi, a.rdx)
        }
        trap::TASK_RESUME => {
            let task = w.task_arg(a.rdi)?;
            task_traps::task_resume(w, task)
        }
        trap::THREAD_CREATE => {
            let task = w.task_arg(a.rdi)?;
            thread_traps::thread_create(w, task, a.rsi, a.rdx, a.r10, a.r8)
        }
        trap::THREAD_SELF => thread_traps::thread_self(w),
        trap::THREAD_ID => w.thread_arg(a.rdi),
        trap::TASK_ID => w.task_arg(a.rdi),
        trap::THREAD_GET_FPU_STATE => {
            let thread = w.thread_arg(a.rdi)?;
            thread_traps::thread_get_fpu_state(w, thread, UserPtr::new(a.rsi))
        }
        trap::THREAD_SET_FPU_STATE => {
            let thread = w.thread_arg(a.rdi)?;
            thread_traps::thread_set_fpu_state(w, thread, UserPtr::new(a.rsi))
        }
        trap::THREAD_GET_STATE => {
            let thread = w.thread_arg(a.rdi)?;
            thread_traps::thread_get_state(w, thread, UserPtr::new(a.rsi))
        }
        trap::THREAD_SET_STATE => {
            let thread = w.thread_arg(a.rdi)?;
            thread_traps::thread_set_state(w, thread, UserPtr::new(a.rsi))
        }
        trap::VM_PROTECT => {
            let task = w.task_arg(a.rdi)?;
            let protection = Protection::new(a.r10)?;
            vm_traps::vm_protect(w, task, UserRange::new(a.rsi, a.rdx)?, protection)
        }
        trap::VM_MAP => {
            let (task, source) = (w.task_arg(a.rdi)?, w.task_arg(a.r10)?);
            let protection = Protection::new(a.r9)?;
            vm_traps::vm_map(w, task, a.rsi, source, UserRange::new(a.r8, a.rdx)?, protection)
        }
        trap::HOST_MODULE_MAP => {
            w.host_arg(a.rdi)?;
            host_traps::host_module_map(w, a.rsi, a.rdx)
        }
        trap::HOST_IO_PORTS => {
            w.host_arg(a.rdi)?;
            let task = w.task_arg(a.rsi)?;
            host_traps::io_ports(w, task, a.rdx, a.r10)
        }
        trap::HOST_MAP_PHYSICAL => {
            w.host_arg(a.rdi)?;
            let task = w.task_arg(a.rsi)?;
            host_traps::map_physical(w, task, a.rdx, UserRange::new(a.r10, a.r8)?)
        }
        trap::HOST_IRQ_REGISTER => {
            w.host_arg(a.rdi)?;
            host_traps::irq_register(w, host_traps::irq_line(a.rsi)?, name_arg(a.rdx)?, a.r10)
        }
        trap::HOST_IRQ_ACK => {
            w.host_arg(a.rdi)?;
            host_traps::irq_ack(w, host_traps::irq_line(a.rsi)?)
        }
        trap::HOST_TRACE_TASK => {
            w.trace_arg(a.rdi)?;
            let task = w.task_arg(a.rsi)?;
            host_traps::host_trace_task(w, task, a.rdx)
        }
        trap::HOST_TRACE_READ => {
            w.trace_arg(a.rdi)?;
            host_traps::host_trace_read(w, a.rsi, a.rdx, a.r10)
        }
        trap::HOST_TRACE_PORT => {
            w.host_arg(a.rdi)?;
            host_traps::host_trace_port(w)
        }
        trap::TRACE_TASK_NAME => {
            w.trace_arg(a.rdi)?;
            host_traps::trace_task_name(w, a.rsi, a.rdx, a.r10)
        }
        _ => Err(KernelError::InvalidTrap),
    }
}

/// A trap's six arguments by the registers they came in.
struct TrapArgs {
    rdi: u64,
    rsi: u64,
    rdx: u64,
    r10: u64,
    r8: u64,
    r9: u64,
}

impl From<[u64; 6]> for TrapArgs {
    fn from([rdi, rsi, rdx, r10, r8, r9]: [u64; 6]) -> Self {
        TrapArgs { rdi, rsi, rdx, r10, r8, r9 }
    }
}

/// `debug_write(text, length) -> length`: the text on the kernel log, after the task's name.
fn debug_write(address: u64, len: u64) -> Result<u64, KernelError> {
    let len = usize::try_from(len).map_err(|_| KernelError::InvalidArgument)?;
    if len > DEBUG_WRITE_MAX {
        return Err(KernelError::InvalidArgument);
    }
    let mut buffer = [0u8; DEBUG_WRITE_MAX];
    let text = buffer.get_mut(..len).ok_or(KernelError::InvalidArgument)?;
    crate::memory::user::UserSlice::new(address, len)?.read(text)?;
    let name = world::with_current_task(|t| t.name.clone()).ok_or(KernelError::InvalidArgument)?;
    let text = core::str::from_utf8(text).unwrap_or("<not UTF-8>");
    let text = text.strip_suffix('\n').unwrap_or(text);
    kprintln!("{name}: {text}");
    Ok(len as u64)
}

/// `task_exit(code)`: every thread of the caller's task ends; never returns.
fn task_exit(code: u64) -> Result<u64, KernelError> {
    world::with_current_task(|t| kprintln!("task {} ({}) exited with code {code}", t.id, t.name));
    sched::exit_current_task();
}

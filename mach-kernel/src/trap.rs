//! What happens on each way into the kernel: device interrupts, exceptions (the user's become
//! a report and the end of the task; the kernel's stop the machine), and system calls (Mach
//! traps when rax < 0, foreign system calls otherwise).
//!
//! Every trap handler returns `Result<u64, KernelError>`; user mistakes become error codes
//! or the end of the offending task, never a kernel panic.

use crate::arch::{cpu, idt, pic, trap_frame::TrapFrame};
use crate::world;
use crate::{kprintln, log, sched};
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
        _ if saved.came_from_user() => user_exception(&saved),
        14 if let Some(resume) = crate::arch::user_copy::fixup_for(saved.rip) => {
            // SAFETY: as above; the kernel copy routine resumes at its fault exit.
            unsafe { (*frame).rip = resume };
        }
        _ => kernel_exception(&saved),
    }
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
    let result = if number < 0 { mach_trap(number, call.args) } else { Ok(crate::forward::syscall(call)) };
    match result {
        Ok(value) => value,
        Err(error) => error.as_return() as u64,
    }
}

fn mach_trap(number: i64, args: [u64; 6]) -> Result<u64, KernelError> {
    let f = TrapArgs::from(args);
    match number {
        trap::DEBUG_WRITE => debug_write(f.rdi, f.rsi),
        trap::TASK_EXIT => task_exit(f.rdi),
        trap::MACH_MSG => crate::msg::mach_msg(f.rdi, f.rsi, f.rdx, f.r10, f.r8),
        trap::PORT_ALLOCATE => crate::port_traps::port_allocate(),
        trap::PORT_ALLOCATE_SET => crate::port_traps::port_allocate_set(),
        trap::PORT_DEALLOCATE => crate::port_traps::port_deallocate(f.rdi),
        trap::PORT_DESTROY => crate::port_traps::port_destroy(f.rdi),
        trap::PORT_TYPE => crate::port_traps::port_type(f.rdi),
        trap::PORT_MOVE_MEMBER => crate::port_traps::port_move_member(f.rdi, f.rsi),
        trap::PORT_MAKE_SEND => crate::port_traps::port_make_send(f.rdi),
        trap::PORT_SET_QUEUE_LIMIT => crate::port_traps::port_set_queue_limit(f.rdi, f.rsi),
        trap::TASK_SELF => crate::task_traps::task_self(),
        trap::THREAD_CREATE => crate::thread_traps::thread_create(f.rdi, f.rsi, f.rdx, f.r10, f.r8),
        trap::TASK_CREATE => crate::task_traps::task_create(),
        trap::TASK_TERMINATE => crate::task_traps::task_terminate(f.rdi),
        trap::VM_ALLOCATE => crate::vm_traps::vm_allocate(f.rdi, f.rsi, f.rdx, f.r10),
        trap::VM_DEALLOCATE => crate::vm_traps::vm_deallocate(f.rdi, f.rsi, f.rdx),
        trap::VM_PROTECT => crate::vm_traps::vm_protect(f.rdi, f.rsi, f.rdx, f.r10),
        trap::VM_WRITE => crate::vm_traps::vm_write(f.rdi, f.rsi, f.rdx, f.r10),
        trap::VM_READ => crate::vm_traps::vm_read(f.rdi, f.rsi, f.rdx, f.r10),
        trap::TASK_SET_SPECIAL_PORT => crate::task_traps::task_set_special_port(f.rdi, f.rsi, f.rdx),
        trap::TASK_GET_SPECIAL_PORT => crate::task_traps::task_get_special_port(f.rdi, f.rsi),
        trap::HOST_MODULE_INFO => crate::host_traps::host_module_info(f.rdi, f.rsi, f.rdx),
        trap::HOST_MODULE_MAP => crate::host_traps::host_module_map(f.rdi, f.rsi, f.rdx),
        trap::TASK_NOTIFY_ENDED => crate::task_traps::task_notify_ended(f.rdi, f.rsi, f.rdx),
        trap::TASK_SET_NAME => crate::task_traps::task_set_name(f.rdi, f.rsi, f.rdx),
        trap::PORT_REQUEST_NOTIFICATION => {
            crate::port_traps::port_request_notification(f.rdi, f.rsi, f.rdx, f.r10)
        }
        trap::HOST_IO_PORTS => crate::host_traps::io_ports(f.rdi, f.rsi, f.rdx, f.r10),
        trap::HOST_MAP_PHYSICAL => crate::host_traps::map_physical(f.rdi, f.rsi, f.rdx, f.r10, f.r8),
        trap::HOST_DMA_ALLOCATE => crate::host_traps::dma_allocate(f.rdi, f.rsi, f.rdx, f.r10),
        trap::HOST_IRQ_REGISTER => crate::host_traps::irq_register(f.rdi, f.rsi, f.rdx, f.r10),
        trap::HOST_IRQ_ACK => crate::host_traps::irq_ack(f.rdi, f.rsi),
        trap::HOST_TRACE_TASK => crate::host_traps::host_trace_task(f.rdi, f.rsi, f.rdx),
        trap::HOST_TRACE_READ => crate::host_traps::host_trace_read(f.rdi, f.rsi, f.rdx, f.r10),
        trap::THREAD_GET_STATE => crate::thread_traps::thread_get_state(f.rdi, f.rsi),
        trap::THREAD_SET_STATE => crate::thread_traps::thread_set_state(f.rdi, f.rsi),
        trap::TASK_SUSPEND => crate::task_traps::task_suspend(f.rdi),
        trap::TASK_RESUME => crate::task_traps::task_resume(f.rdi),
        trap::TASK_CREATE_COPY => crate::task_traps::task_create_copy(f.rdi),
        trap::THREAD_SET_PRIORITY => crate::thread_traps::thread_set_priority(f.rdi, f.rsi),
        trap::THREAD_SELF => crate::thread_traps::thread_self(),
        trap::VM_MAP => crate::vm_traps::vm_map(f.rdi, f.rsi, f.rdx, f.r10, f.r8, f.r9),
        trap::THREAD_EXIT => sched::exit_current_thread(),
        trap::SLEEP => crate::thread_traps::sleep(f.rdi),
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

fn task_exit(code: u64) -> Result<u64, KernelError> {
    world::with_current_task(|t| kprintln!("task {} ({}) exited with code {code}", t.id, t.name));
    sched::exit_current_task();
}

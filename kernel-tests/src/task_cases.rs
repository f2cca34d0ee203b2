//! In-guest task cases: creating tasks through task ports, their memory (allocate, write,
//! read, protect), threads in them, end notifications, termination, fault isolation, special
//! ports, boot modules through the host port, and bad arguments to each trap.

use crate::check;
use core::sync::atomic::{AtomicU8, AtomicUsize, Ordering};
use libmach::KernelError;
use libmach::ipc::*;
use libmach::task::*;
use mach_abi::{TASK_ENDED_MESSAGE, protection, special_port};

const CODE_AT: u64 = 0x40_0000;

/// `mov edi, 7; mov rax, -2 (task_exit); syscall`
const EXIT_7: &[u8] = &[0xbf, 7, 0, 0, 0, 0x48, 0xc7, 0xc0, 0xfe, 0xff, 0xff, 0xff, 0x0f, 0x05];
/// `mov qword ptr [0], 1`: a page fault.
const WRITE_NULL: &[u8] = &[0x48, 0xc7, 0x04, 0x25, 0, 0, 0, 0, 1, 0, 0, 0];
/// `jmp $`: spin forever.
const SPIN: &[u8] = &[0xeb, 0xfe];

/// A task running `code`, with an end notification to `inbox`. Returns its task port.
fn start_child(code: &[u8], inbox: &ReceiveRight) -> Result<PortName, &'static str> {
    let task = task_create().map_err(|_| "task_create")?;
    task_notify_ended(task, inbox.name(), disposition::MAKE_SEND_ONCE).map_err(|_| "task_notify_ended")?;
    vm_allocate(task, CODE_AT, 4096, protection::WRITE).map_err(|_| "vm_allocate code")?;
    vm_write(task, CODE_AT, code).map_err(|_| "vm_write code")?;
    let mut back = [0u8; 16];
    vm_read(task, CODE_AT, &mut back[..code.len()]).map_err(|_| "vm_read code")?;
    check(&back[..code.len()] == code, "vm_read returns what vm_write wrote")?;
    vm_protect(task, CODE_AT, 4096, protection::EXECUTE).map_err(|_| "vm_protect")?;
    let stack = vm_allocate(task, 0, 16384, protection::WRITE).map_err(|_| "vm_allocate stack")?;
    thread_create_at(task, CODE_AT, stack + 16384 - 8, 0, 0).map_err(|_| "thread_create_at")?;
    Ok(task)
}

fn wait_ended(inbox: &ReceiveRight) -> Result<u64, &'static str> {
    let mut m = Message::new();
    m.receive_timeout(inbox.name(), 5000).map_err(|_| "no task-ended notification")?;
    check(m.header.id == TASK_ENDED_MESSAGE, "notification id")?;
    let data: [u8; 8] = m.data().try_into().map_err(|_| "notification data")?;
    Ok(u64::from_le_bytes(data))
}

pub fn tasks() -> Result<(), &'static str> {
    let inbox = ReceiveRight::allocate().map_err(|_| "allocate")?;

    // A child that exits with code 7.
    let child = start_child(EXIT_7, &inbox)?;
    let id = wait_ended(&inbox)?;
    check(id > 1, "the notification names the task")?;
    check(port_type(child) == Ok(right_type::DEAD_NAME), "the task port is dead after the end")?;
    port_deallocate(child).map_err(|_| "deallocate dead task port")?;

    // A child that faults: it ends, we go on.
    let faulty = start_child(WRITE_NULL, &inbox)?;
    wait_ended(&inbox)?;
    port_deallocate(faulty).map_err(|_| "deallocate")?;

    // A child spinning forever, terminated through its task port.
    let spinner = start_child(SPIN, &inbox)?;
    sleep_ms(20);
    task_terminate(spinner).map_err(|_| "task_terminate")?;
    wait_ended(&inbox)?;
    check(task_terminate(spinner) == Err(KernelError::PortDead), "terminating an ended task")?;
    port_deallocate(spinner).map_err(|_| "deallocate")?;

    // Special ports: set and read back.
    let child = task_create().map_err(|_| "task_create")?;
    let service = ReceiveRight::allocate().map_err(|_| "allocate")?;
    let send = service.make_send().map_err(|_| "make_send")?;
    task_set_special_port(child, special_port::BOOTSTRAP, send.name()).map_err(|_| "set special port")?;
    let got = task_get_special_port(child, special_port::BOOTSTRAP).map_err(|_| "get special port")?;
    check(got == service.name(), "the special port is a send right to the same port")?;
    check(task_get_special_port(child, special_port::SYSCALL) == Ok(0), "no syscall port set")?;
    check(task_set_special_port(child, 9, 0) == Err(KernelError::InvalidArgument), "bad special port index")?;
    port_deallocate(got).map_err(|_| "deallocate")?;
    // A task without threads ends at once when terminated.
    task_notify_ended(child, inbox.name(), disposition::MAKE_SEND_ONCE).map_err(|_| "notify")?;
    task_terminate(child).map_err(|_| "terminate a task with no thread")?;
    wait_ended(&inbox)?;
    port_deallocate(child).map_err(|_| "deallocate")?;
    Ok(())
}

/// Every trap that takes a port name as its first argument refuses a name that denotes
/// nothing; every trap that reads or writes caller memory through a pointer refuses an
/// unmapped and a kernel pointer.
fn every_trap_refuses_bad_names_and_pointers() -> Result<(), &'static str> {
    use mach_abi::trap::*;
    const BAD_NAME: u64 = 0x5555;
    let named = [
        PORT_DEALLOCATE,
        PORT_DESTROY,
        PORT_TYPE,
        PORT_MOVE_MEMBER,
        PORT_MAKE_SEND,
        PORT_SET_QUEUE_LIMIT,
        THREAD_CREATE,
        TASK_TERMINATE,
        VM_ALLOCATE,
        VM_DEALLOCATE,
        VM_PROTECT,
        VM_WRITE,
        VM_READ,
        TASK_SET_SPECIAL_PORT,
        TASK_GET_SPECIAL_PORT,
        HOST_MODULE_INFO,
        HOST_MODULE_MAP,
        TASK_NOTIFY_ENDED,
        TASK_SET_NAME,
        PORT_REQUEST_NOTIFICATION,
        HOST_IO_PORTS,
        HOST_MAP_PHYSICAL,
        HOST_DMA_ALLOCATE,
        HOST_IRQ_REGISTER,
        HOST_IRQ_ACK,
        HOST_TRACE_TASK,
        HOST_TRACE_READ,
        THREAD_GET_STATE,
        THREAD_SET_STATE,
        TASK_SUSPEND,
        TASK_RESUME,
        TASK_CREATE_COPY,
        THREAD_SET_PRIORITY,
        VM_MAP,
    ];
    for trap in named {
        // Valid other arguments where a trap checks them first, so the name is the only bad one.
        let args = match trap {
            PORT_SET_QUEUE_LIMIT => [BAD_NAME, 1, 0, 0, 0, 0],
            PORT_REQUEST_NOTIFICATION => {
                [BAD_NAME, mach_abi::notify::DEAD_NAME, 0x1000, disposition::MAKE_SEND_ONCE as u64, 0, 0]
            }
            _ => [BAD_NAME, 0x1000, 0x1000, 0x1000, 0x1000, 0],
        };
        // SAFETY: the name denotes nothing: the kernel must refuse it before acting.
        let r = unsafe { libmach::raw_syscall(trap, args) };
        check(
            KernelError::from_return(r) == Some(KernelError::InvalidName),
            "a bad name refused by every trap",
        )?;
    }
    let host = libmach::startup_port() as u64;
    let me = task_self().map_err(|_| "task_self")? as u64;
    let other = task_create().map_err(|_| "task_create")?;
    task_suspend(other).map_err(|_| "task_suspend")?;
    let thread = thread_create_at(other, 0x1000, 0x2000, 0, 0).map_err(|_| "thread_create_at")?;
    let scratch = vm_allocate(me as PortName, 0, 4096, protection::WRITE).map_err(|_| "vm_allocate")?;
    for bad in [0xdead_0000u64, 0xffff_8000_0000_0000] {
        let calls = [
            (VM_WRITE, [me, scratch, bad, 8, 0, 0]),
            (VM_READ, [me, scratch, bad, 8, 0, 0]),
            (HOST_MODULE_INFO, [host, 0, bad, 0, 0, 0]),
            (TASK_SET_NAME, [other as u64, bad, 4, 0, 0, 0]),
            (HOST_DMA_ALLOCATE, [host, me, 4096, bad, 0, 0]),
            (HOST_TRACE_READ, [host, 1, bad, 4, 0, 0]),
            (THREAD_GET_STATE, [thread, bad, 0, 0, 0, 0]),
            (THREAD_SET_STATE, [thread, bad, 0, 0, 0, 0]),
        ];
        for (trap, args) in calls {
            // SAFETY: a deliberately bad pointer; the kernel must refuse it.
            let r = unsafe { libmach::raw_syscall(trap, args) };
            check(KernelError::from_return(r) == Some(KernelError::InvalidAddress), "a bad pointer refused")?;
        }
    }
    vm_deallocate(me as PortName, scratch, 4096).map_err(|_| "vm_deallocate")?;
    task_terminate(other).map_err(|_| "task_terminate")?;
    port_deallocate(thread as PortName).map_err(|_| "release thread port")?;
    port_deallocate(other).map_err(|_| "release task port")?;
    port_deallocate(me as PortName).map_err(|_| "release own task port")?;
    Ok(())
}

pub fn bad_task_arguments() -> Result<(), &'static str> {
    every_trap_refuses_bad_names_and_pointers()?;
    let task = task_create().map_err(|_| "task_create")?;
    let plain = ReceiveRight::allocate().map_err(|_| "allocate")?;
    let send = plain.make_send().map_err(|_| "make_send")?;
    let w = protection::WRITE;
    check(vm_allocate(task, 0x1001, 4096, w) == Err(KernelError::InvalidArgument), "unaligned address")?;
    check(vm_allocate(task, 0x1000, 0, w) == Err(KernelError::InvalidArgument), "size 0")?;
    check(vm_allocate(task, 0x1000, 100, w) == Err(KernelError::InvalidArgument), "unaligned size")?;
    check(
        vm_allocate(task, 0xffff_ffff_8000_0000, 4096, w) == Err(KernelError::InvalidAddress),
        "kernel address",
    )?;
    check(
        vm_allocate(task, 0x7fff_ffff_f000, 0x2000, w) == Err(KernelError::InvalidAddress),
        "past user space",
    )?;
    check(vm_allocate(task, 0x1000, 4096, 0xff) == Err(KernelError::InvalidArgument), "bad protection")?;
    // A refused size placed "anywhere" reserves nothing: the next one still fits.
    check(vm_allocate(task, 0, 1 << 62, w) == Err(KernelError::InvalidArgument), "huge size anywhere")?;
    let anywhere = vm_allocate(task, 0, 4096, w).map_err(|_| "anywhere after a refused size")?;
    check(anywhere < mach_abi::layout::USER_END, "anywhere is user space")?;
    vm_allocate(task, 0x10000, 0x3000, w).map_err(|_| "allocate")?;
    check(vm_allocate(task, 0x11000, 0x1000, w) == Err(KernelError::InvalidAddress), "overlap refused")?;
    check(vm_write(task, 0x20000, b"x") == Err(KernelError::InvalidAddress), "write to unmapped")?;
    check(vm_write(task, 0x12ffe, b"abcd") == Err(KernelError::InvalidAddress), "write running off the end")?;
    let mut buf = [0u8; 4];
    check(vm_read(task, 0x20000, &mut buf) == Err(KernelError::InvalidAddress), "read unmapped")?;
    vm_protect(task, 0x10000, 0x1000, 0).map_err(|_| "protect read-only")?;
    check(vm_write(task, 0x10000, b"x") == Err(KernelError::InvalidAddress), "write to read-only")?;
    check(vm_protect(task, 0x10000, 0x10000, 0) == Err(KernelError::InvalidAddress), "protect unmapped")?;
    vm_deallocate(task, 0x10000, 0x3000).map_err(|_| "deallocate")?;
    check(vm_read(task, 0x11000, &mut buf) == Err(KernelError::InvalidAddress), "gone after deallocate")?;
    // A source buffer in the caller that is not mapped.
    // SAFETY: deliberately bad source pointer; the kernel must refuse it.
    let r = unsafe {
        libmach::raw_syscall(mach_abi::trap::VM_WRITE, [task as u64, 0x10000, 0xdead_0000, 8, 0, 0])
    };
    check(KernelError::from_return(r).is_some(), "bad vm_write source refused")?;
    // Task traps on ports that are not tasks, or not ports.
    check(
        vm_allocate(send.name(), 0, 4096, w) == Err(KernelError::InvalidRight),
        "vm_allocate on a plain port",
    )?;
    check(task_terminate(send.name()) == Err(KernelError::InvalidRight), "terminate a plain port")?;
    check(vm_allocate(0x5555, 0, 4096, w) == Err(KernelError::InvalidName), "vm_allocate on a bad name")?;
    check(
        task_notify_ended(task, plain.name(), disposition::MOVE_RECEIVE)
            == Err(KernelError::InvalidDisposition),
        "notify with move-receive",
    )?;
    task_terminate(task).map_err(|_| "terminate")?;
    port_deallocate(task).map_err(|_| "deallocate")?;
    Ok(())
}

pub fn host() -> Result<(), &'static str> {
    let host = libmach::startup_port();
    let info = host_module_info(host, 0).map_err(|_| "host_module_info")?;
    let path = info.path.get(..info.path_len as usize).unwrap_or(&[]);
    check(path == b"/boot/kernel-tests", "module 0 is this program")?;
    check(info.size > 4096, "module size")?;
    check(host_module_info(host, 99).is_err(), "no module 99")?;
    let at = 0x3000_0000_0000;
    host_module_map(host, 0, at).map_err(|_| "host_module_map")?;
    // SAFETY: the module is mapped read-only at `at`; it starts with the ELF magic.
    let magic = unsafe { core::ptr::read_volatile(at as *const [u8; 4]) };
    check(&magic == b"\x7fELF", "the mapped module is the ELF file")?;
    let task = task_self().map_err(|_| "task_self")?;
    check(
        host_module_info(task, 0).err() == Some(KernelError::InvalidRight),
        "a task port is not the host port",
    )?;
    // The module's pages are the kernel's: they never become writable.
    check(
        vm_protect(task, at, 4096, protection::WRITE) == Err(KernelError::InvalidArgument),
        "vm_protect cannot make a module page writable",
    )?;
    check(
        vm_write(task, at, &[0x55]) == Err(KernelError::InvalidAddress),
        "the module page stays read-only",
    )?;
    // SAFETY: still mapped read-only.
    let magic = unsafe { core::ptr::read_volatile(at as *const [u8; 4]) };
    check(&magic == b"\x7fELF", "the module is unchanged")?;
    vm_deallocate(task, at, info.size.next_multiple_of(4096)).map_err(|_| "unmap module")?;
    Ok(())
}

static FORK_VALUE: core::sync::atomic::AtomicU64 = core::sync::atomic::AtomicU64::new(0);

/// Runs in the copy of this task: adds 1000 to its own FORK_VALUE and reports it through a
/// foreign `exit` to the syscall port the parent set.
extern "C" fn forked_child(_: u64) -> ! {
    let value = FORK_VALUE.fetch_add(1000, core::sync::atomic::Ordering::SeqCst) + 1000;
    // SAFETY: a foreign system call; the parent answers it.
    unsafe { libmach::raw_syscall(60, [value, 0, 0, 0, 0, 0]) };
    thread_exit()
}

/// The copy-on-write task copy (fork): the copy sees the memory as it was, then each side's
/// writes stay its own; the copy runs this program's code.
pub fn fork() -> Result<(), &'static str> {
    use core::sync::atomic::Ordering::SeqCst;
    FORK_VALUE.store(7, SeqCst);
    let me = task_self().map_err(|_| "task_self")?;
    let child = task_create_copy(me).map_err(|_| "task_create_copy")?;
    FORK_VALUE.store(8, SeqCst); // after the copy: the child must not see it
    let address = &FORK_VALUE as *const _ as u64;
    let mut bytes = [0u8; 8];
    vm_read(child, address, &mut bytes).map_err(|_| "vm_read the copy")?;
    check(u64::from_le_bytes(bytes) == 7, "the copy kept the value from fork time")?;
    vm_write(child, address, &9u64.to_le_bytes()).map_err(|_| "vm_write the copy")?;
    check(FORK_VALUE.load(SeqCst) == 8, "writing the copy leaves the parent alone")?;
    // vm_protect keeps shared pages copy-on-write: a write after it stays on its side.
    let copy = task_create_copy(me).map_err(|_| "second task_create_copy")?;
    let page = address & !4095;
    vm_protect(copy, page, 4096, protection::WRITE).map_err(|_| "vm_protect in the copy")?;
    vm_protect(me, page, 4096, protection::WRITE).map_err(|_| "vm_protect in the parent")?;
    FORK_VALUE.store(11, SeqCst);
    vm_read(copy, address, &mut bytes).map_err(|_| "vm_read the second copy")?;
    check(u64::from_le_bytes(bytes) == 8, "a parent's write after vm_protect stays the parent's")?;
    vm_write(copy, address, &12u64.to_le_bytes()).map_err(|_| "vm_write the second copy")?;
    check(FORK_VALUE.load(SeqCst) == 11, "a copy's write after vm_protect stays the copy's")?;
    task_terminate(copy).map_err(|_| "terminate the second copy")?;
    port_deallocate(copy).map_err(|_| "release the second task port")?;
    FORK_VALUE.store(8, SeqCst);
    let port = ReceiveRight::allocate().map_err(|_| "allocate")?;
    let send = port.make_send().map_err(|_| "make_send")?;
    task_set_special_port(child, special_port::SYSCALL, send.name()).map_err(|_| "syscall port")?;
    let thread =
        thread_create_at(child, forked_child as *const () as u64, crate::ipc_cases::stack_top(2), 0, 0)
            .map_err(|_| "thread in the copy")?;
    let mut m = Message::new();
    m.receive_timeout(port.name(), 3000).map_err(|_| "no report from the copy")?;
    let request = m.data().get(..8 * 7).ok_or("report size")?;
    let number = u64::from_le_bytes(request[..8].try_into().map_err(|_| "number")?);
    let value = u64::from_le_bytes(request[8..16].try_into().map_err(|_| "value")?);
    check(number == 60 && value == 1009, "the copy ran our code on its own memory")?;
    check(FORK_VALUE.load(SeqCst) == 8, "the parent's value is untouched")?;
    port_deallocate(m.header.remote).map_err(|_| "drop reply right")?;
    task_terminate(child).map_err(|_| "terminate the copy")?;
    port_deallocate(thread as PortName).map_err(|_| "release thread port")?;
    port_deallocate(child).map_err(|_| "release task port")?;
    Ok(())
}

/// Who ran, in order, in the `priorities` case (one letter per record).
static RAN: [AtomicU8; 8] = [const { AtomicU8::new(0) }; 8];
static RAN_COUNT: AtomicUsize = AtomicUsize::new(0);

fn record_run(who: u8) {
    if let Some(slot) = RAN.get(RAN_COUNT.fetch_add(1, Ordering::SeqCst)) {
        slot.store(who, Ordering::SeqCst);
    }
}

fn runs_so_far() -> ([u8; 8], usize) {
    let n = RAN_COUNT.load(Ordering::SeqCst).min(RAN.len());
    (core::array::from_fn(|i| RAN.get(i).map_or(0, |r| r.load(Ordering::SeqCst))), n)
}

extern "C" fn record_and_exit(who: u64) -> ! {
    record_run(who as u8);
    thread_exit()
}

/// Priorities: a ready thread never runs while a higher one can; lowering oneself or raising
/// another gives way at once; the timer does not preempt for a lower priority.
#[inline(never)] // its buffers stay off the other cases' stack
pub fn priorities() -> Result<(), &'static str> {
    use crate::ipc_cases::stack_top;
    use mach_abi::{DEFAULT_PRIORITY, MAX_PRIORITY};
    let me = thread_self().map_err(|_| "thread_self")?;
    let task = task_self().map_err(|_| "task_self")?;
    check(thread_set_priority(me, 30) == Ok(DEFAULT_PRIORITY), "a new thread has the default priority")?;
    let low = thread_create(task, record_and_exit, stack_top(0), u64::from(b'L')).map_err(|_| "thread L")?;
    let high = thread_create(task, record_and_exit, stack_top(1), u64::from(b'H')).map_err(|_| "thread H")?;
    check(thread_set_priority(low as PortName, 10) == Ok(DEFAULT_PRIORITY), "set L to 10")?;
    check(thread_set_priority(high as PortName, 20) == Ok(DEFAULT_PRIORITY), "set H to 20")?;
    // Busy for several timer ticks: the two ready threads are outranked and must not run.
    let mut spins = 0u64;
    for i in 0..20_000_000u64 {
        spins = core::hint::black_box(spins.wrapping_add(i));
    }
    check(runs_so_far().1 == 0, "the timer preempted a thread for lower-priority ones")?;
    // Lowering itself below both: H (20) runs to its end, then L (10), then this thread (1).
    check(thread_set_priority(me, 1) == Ok(30), "lower self to 1")?;
    record_run(b'M');
    let (ran, n) = runs_so_far();
    check(n == 3 && ran[..3] == *b"HLM", "threads ran in priority order H, L, then the caller")?;
    // Raising a ready thread above the caller runs it before the trap returns.
    check(thread_set_priority(me, 30) == Ok(1), "raise self to 30")?;
    let raised =
        thread_create(task, record_and_exit, stack_top(2), u64::from(b'R')).map_err(|_| "thread R")?;
    check(runs_so_far().1 == 3, "a thread of lower priority ran at once")?;
    check(thread_set_priority(raised as PortName, MAX_PRIORITY) == Ok(DEFAULT_PRIORITY), "raise R")?;
    record_run(b'M');
    let (ran, n) = runs_so_far();
    check(n == 5 && ran[3..5] == *b"RM", "a raised thread ran before the trap returned")?;
    // Bad arguments change nothing.
    check(
        thread_set_priority(me, MAX_PRIORITY + 1) == Err(KernelError::InvalidArgument),
        "a priority above the top",
    )?;
    check(thread_set_priority(task, 5) == Err(KernelError::InvalidRight), "a task port is no thread port")?;
    check(thread_set_priority(me, DEFAULT_PRIORITY) == Ok(30), "the bad calls changed the priority")?;
    Ok(())
}

fn read_u64(task: PortName, address: u64) -> Result<u64, &'static str> {
    let mut bytes = [0u8; 8];
    vm_read(task, address, &mut bytes).map_err(|_| "vm_read")?;
    Ok(u64::from_le_bytes(bytes))
}

fn write_u64(task: PortName, address: u64, value: u64) -> Result<(), &'static str> {
    vm_write(task, address, &value.to_le_bytes()).map_err(|_| "vm_write")
}

/// `vm_map`: memory shared between two tasks both ways; it stays shared through `vm_protect`
/// and task copies; a copy-on-write page is the source's own before it is shared; bad ranges,
/// occupied targets and more access than a module page has are refused and change nothing;
/// shared frames outlive one side and come back with the last mapping (the system test
/// checks the free-frame count at halt).
#[inline(never)] // its buffers stay off the other cases' stack
pub fn shared_memory() -> Result<(), &'static str> {
    const FIXED: u64 = 0x2000_0000_0000;
    let me = task_self().map_err(|_| "task_self")?;
    let other = task_create().map_err(|_| "task_create")?;
    // The caller's two pages into the other task.
    let mine = vm_allocate(me, 0, 8192, protection::WRITE).map_err(|_| "vm_allocate mine")?;
    write_u64(me, mine, 0x1111)?;
    let there = vm_map(other, 0, 8192, me, mine, protection::WRITE).map_err(|_| "vm_map mine")?;
    check(read_u64(other, there)? == 0x1111, "the other task sees the caller's data")?;
    write_u64(other, there + 8, 0x2222)?;
    write_u64(other, there + 4096, 0x3333)?;
    check(read_u64(me, mine + 8)? == 0x2222, "the caller sees the other's write")?;
    check(read_u64(me, mine + 4096)? == 0x3333, "the second page is shared too")?;
    // The other task's page into the caller, read and written through plain pointers.
    let theirs = vm_allocate(other, 0, 4096, protection::WRITE).map_err(|_| "vm_allocate theirs")?;
    write_u64(other, theirs, 0x4444)?;
    let here = vm_map(me, 0, 4096, other, theirs, protection::WRITE).map_err(|_| "vm_map theirs")?;
    // SAFETY: `here` was just mapped readable and writable in this task.
    unsafe {
        check(core::ptr::read_volatile(here as *const u64) == 0x4444, "mapped into the caller")?;
        core::ptr::write_volatile(here as *mut u64, 0x5555);
    }
    check(read_u64(other, theirs)? == 0x5555, "the caller's store reached the other task")?;
    // vm_protect keeps the sharing: read-only, then writable again, still the same memory.
    vm_protect(other, there, 4096, 0).map_err(|_| "vm_protect read-only")?;
    check(write_u64(other, there, 1).is_err(), "a read-only shared page refuses writes")?;
    vm_protect(other, there, 4096, protection::WRITE).map_err(|_| "vm_protect writable")?;
    write_u64(other, there, 0x6666)?;
    check(read_u64(me, mine)? == 0x6666, "sharing survives vm_protect")?;
    // A task copy keeps shared memory shared.
    let copy = task_create_copy(other).map_err(|_| "task_create_copy other")?;
    write_u64(copy, there, 0x7777)?;
    check(read_u64(me, mine)? == 0x7777, "a task copy writes the shared memory")?;
    task_terminate(copy).map_err(|_| "terminate copy")?;
    port_deallocate(copy).map_err(|_| "release copy")?;
    // A copy-on-write page becomes the caller's own before it is shared: a task copy of the
    // caller keeps the old contents.
    let private = vm_allocate(me, 0, 4096, protection::WRITE).map_err(|_| "vm_allocate private")?;
    write_u64(me, private, 0xaaaa)?;
    let fork = task_create_copy(me).map_err(|_| "task_create_copy me")?;
    let at = vm_map(other, 0, 4096, me, private, protection::WRITE).map_err(|_| "vm_map private")?;
    write_u64(other, at, 0xbbbb)?;
    check(read_u64(me, private)? == 0xbbbb, "the caller sees writes to its copy-on-write page")?;
    check(read_u64(fork, private)? == 0xaaaa, "the task copy's page is not shared")?;
    task_terminate(fork).map_err(|_| "terminate fork")?;
    port_deallocate(fork).map_err(|_| "release fork")?;
    // Errors change nothing.
    check(
        vm_map(other, FIXED, 12288, me, mine, 0) == Err(KernelError::InvalidAddress),
        "a source range with an unmapped page",
    )?;
    check(read_u64(other, FIXED).is_err(), "a refused vm_map mapped nothing")?;
    check(
        vm_map(other, there, 4096, me, private, 0) == Err(KernelError::InvalidAddress),
        "a target that is mapped already",
    )?;
    check(vm_map(other, 0, 100, me, mine, 0) == Err(KernelError::InvalidArgument), "an unaligned size")?;
    check(vm_map(other, 0, 4096, me, mine, 4) == Err(KernelError::InvalidArgument), "bad protection bits")?;
    check(
        vm_map(other, 0, 4096, other, 0, 0) == Err(KernelError::InvalidAddress),
        "source page 0 is never user memory",
    )?;
    // Memory the source does not own is shared with no more access than it has.
    let host = libmach::startup_port();
    let module = 0x3000_0000_0000;
    let module_size = host_module_map(host, 0, module).map_err(|_| "host_module_map")?;
    check(
        vm_map(other, 0, 4096, me, module, protection::WRITE) == Err(KernelError::InvalidArgument),
        "a read-only module page shared writable",
    )?;
    let shown = vm_map(other, 0, 4096, me, module, 0).map_err(|_| "vm_map module read-only")?;
    let mut magic = [0u8; 4];
    vm_read(other, shown, &mut magic).map_err(|_| "vm_read module")?;
    check(&magic == b"\x7fELF", "the module page is shared")?;
    check(
        vm_protect(other, shown, 4096, protection::WRITE) == Err(KernelError::InvalidArgument),
        "a shared module page never becomes writable",
    )?;
    vm_deallocate(me, module, module_size).map_err(|_| "unmap module")?;
    // The shared frames outlive the other task and come back with the caller's mappings.
    task_terminate(other).map_err(|_| "terminate other")?;
    port_deallocate(other).map_err(|_| "release other")?;
    check(read_u64(me, mine)? == 0x7777, "shared memory outlives the other task")?;
    check(read_u64(me, here)? == 0x5555, "the other task's page outlives it")?;
    vm_deallocate(me, here, 4096).map_err(|_| "unmap here")?;
    vm_deallocate(me, mine, 8192).map_err(|_| "unmap mine")?;
    vm_deallocate(me, private, 4096).map_err(|_| "unmap private")?;
    port_deallocate(me).map_err(|_| "release me")?;
    Ok(())
}

/// Memory runs out as an error, never a panic: user memory until `NoMemory` (IPC still
/// works), then ports until `NoMemory`, then messages until `NoMemory`; everything freed, the
/// kernel works on (the system test checks that every frame came back). A task's name table
/// keeps its largest size until the task ends, so the order matters.
#[inline(never)] // its buffers stay off the other cases' stack
pub fn exhaustion() -> Result<(), &'static str> {
    const MAX_PORTS: usize = 4 << 20;
    let me = task_self().map_err(|_| "task_self")?;
    let names_at =
        vm_allocate(me, 0, (MAX_PORTS * 4) as u64, protection::WRITE).map_err(|_| "names array")?;
    // SAFETY: just mapped, readable and writable, MAX_PORTS u32s; nothing else uses it.
    let names = unsafe { core::slice::from_raw_parts_mut(names_at as *mut PortName, MAX_PORTS) };
    // User memory runs out as NoMemory, before the kernel heap's reserve: IPC still works.
    const CHUNK: u64 = 16 << 20;
    let mut chunks = 0u64;
    let at = 0x5000_0000_0000u64;
    let error = loop {
        match vm_allocate(me, at + chunks * CHUNK, CHUNK, protection::WRITE) {
            Ok(_) => chunks += 1,
            Err(e) => break e,
        }
    };
    libmach::println!("exhaustion: {chunks} x 16 MiB of user memory, then {error:?}");
    check(error == KernelError::NoMemory, "user memory ran out with NoMemory")?;
    check(chunks > 4, "user memory before it ran out")?;
    let port = ReceiveRight::allocate().map_err(|_| "allocate with user memory exhausted")?;
    // One message buffer for the whole case: the stack is 64 KiB.
    let mut m = Message::new();
    m.start(port.name(), disposition::MAKE_SEND, 3).set_data(b"still");
    m.send().map_err(|_| "send with user memory exhausted")?;
    m.receive_timeout(port.name(), 1000).map_err(|_| "receive with user memory exhausted")?;
    check(m.data() == b"still", "the message with user memory exhausted")?;
    drop(port);
    vm_deallocate(me, at, chunks * CHUNK).map_err(|_| "free user memory")?;
    let mut count = 0;
    let error = loop {
        let Some(slot) = names.get_mut(count) else { break KernelError::InvalidArgument };
        match port_allocate() {
            Ok(name) => *slot = name,
            Err(e) => break e,
        }
        count += 1;
    };
    libmach::println!("exhaustion: {count} ports, then {error:?}");
    check(error == KernelError::NoMemory, "ports ran out with NoMemory")?;
    check(count > 100_000, "the kernel heap grew past its first arena")?;
    // Keep 1,000 ports, then queue messages of 8 KiB, 1024 to a port, until the kernel
    // refuses one.
    let (kept, freed) = names.get(..count).unwrap_or(&[]).split_at(1000);
    for &port in freed.iter().rev() {
        if let Err(e) = port_destroy(port) {
            libmach::println!("port_destroy({port:#x}): {e:?}");
            return Err("port_destroy");
        }
    }
    static DATA: [u8; 8192] = [0x5a; 8192];
    let mut queued = 0usize;
    let error = 'fill: {
        for &port in kept {
            port_set_queue_limit(port, 1024).map_err(|_| "queue limit")?;
            for _ in 0..1024 {
                m.start(port, disposition::MAKE_SEND, 1).set_data(&DATA);
                if let Err(e) =
                    m.mach_msg(libmach::ipc::options::SEND | libmach::ipc::options::SEND_TIMEOUT, 0, 0)
                {
                    break 'fill e;
                }
                queued += 1;
            }
        }
        KernelError::InvalidArgument
    };
    libmach::println!("exhaustion: {queued} messages of 8 KiB queued, then {error:?}");
    check(error == KernelError::NoMemory, "messages ran out with NoMemory")?;
    check(queued > 1024, "the freed ports' heap went to messages")?;
    for &port in kept {
        port_destroy(port).map_err(|_| "port_destroy")?;
    }
    vm_deallocate(me, names_at, (MAX_PORTS * 4) as u64).map_err(|_| "free the names")?;
    // The kernel works on: a round trip through a new port.
    let port = ReceiveRight::allocate().map_err(|_| "allocate after exhaustion")?;
    m.start(port.name(), disposition::MAKE_SEND, 2).set_data(b"alive");
    m.send().map_err(|_| "send after exhaustion")?;
    m.receive_timeout(port.name(), 1000).map_err(|_| "receive after exhaustion")?;
    check(m.data() == b"alive", "the message after exhaustion")?;
    port_deallocate(me).map_err(|_| "release me")?;
    Ok(())
}

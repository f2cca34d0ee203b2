//! In-guest cases for the holes an outside review and a hostile-input run found (issue 9),
//! one case each, in the `bad-tasks` style: each did something to the kernel that no user
//! may (stopped it, leaked memory, hung a caller) before its fix.
//!
//! - `nt-flag`: a trap made with rflags.NT set must not stop the kernel;
//! - `physical`: device memory past the direct map (or crossing 4 GiB) is never read by the
//!   kernel: `vm_read`/`vm_write` refuse device pages; physical ranges past the CPU's
//!   physical address width are refused;
//! - `anywhere`: "anywhere" placement never lands on a present page (a task copy keeps its
//!   parent's placement state);
//! - `self-receive`: a port's receive right can never end up queued on the port itself;
//! - `reap`: ended tasks are reaped (and their end notifications sent) while threads spin;
//! - `bad-reply`: a malformed reply to a forwarded syscall is refused before anything is
//!   used up or changed, and the caller can still be answered;
//! - `fs-base`: a non-canonical (or kernel) FS base is refused;
//! - `held-limit`: a task cannot make the kernel hold more than its limit for it;
//! - `own-state`: `thread_get_state` on the calling thread reads the state at the trap;
//! - `long-trap`: a long trap (256 MiB `vm_allocate`) lets the timer preempt it;
//! - `moved-receive` (found by `fuzz`): a thread waiting to receive on a port whose receive
//!   right leaves the task (moved in a message, saved by a port-destroyed request) wakes;
//! - `task-cycle` (found by the `fuzz` case): a task's own task port cannot become a right
//!   the kernel keeps for it (a special port, an end notification), which would keep a
//!   thread-less task alive for ever.

use crate::check;
use crate::forward_cases::{CODE_AT, DATA_AT, REPORT_RAX, child, concat, receive, reply, report};
use core::sync::atomic::{AtomicU64, Ordering};
use libmach::KernelError;
use libmach::ipc::*;
use libmach::task::*;
use mach_abi::forward::*;
use mach_abi::protection;

static NEW_THREAD_RAN: AtomicU64 = AtomicU64::new(0);

extern "C" fn mark_and_exit(_: u64) -> ! {
    NEW_THREAD_RAN.store(1, Ordering::SeqCst);
    thread_exit()
}

/// `sleep(20)` entered with NT set in rflags while a new thread (which starts through
/// `trap_return`'s `iretq`) is ready: the switch to it must not carry NT into the kernel.
pub fn nt_flag() -> Result<(), &'static str> {
    crate::ipc_cases::spawn(mark_and_exit, 3, 0)?;
    // SAFETY: sets NT, makes the sleep trap, restores the flags; clobbers what SYSCALL does.
    unsafe {
        core::arch::asm!(
            "pushfq",
            "push 0x4202",
            "popfq",
            "mov rax, -15",
            "mov edi, 20",
            "syscall",
            "popfq",
            out("rax") _, out("rdi") _, out("rcx") _, out("r11") _,
        )
    };
    libmach::ipc::sleep_ms(20);
    check(NEW_THREAD_RAN.load(Ordering::SeqCst) == 1, "the new thread ran")
}

/// Device memory is mapped for the user, never read by the kernel.
pub fn physical() -> Result<(), &'static str> {
    let host = libmach::startup_port();
    let me = task_self().map_err(|_| "task_self")?;
    let at = 0x5000_0000_0000;
    let mut buf = [0u8; 16];
    // Crossing 4 GiB: the page above is outside the direct map on this machine.
    if libmach::device::map_physical(host, me, 0xffff_f000, at, 0x2000).is_ok() {
        check(vm_read(me, at + 0x1000, &mut buf) == Err(KernelError::InvalidAddress), "read above 4 GiB")?;
        check(vm_read(me, at, &mut buf) == Err(KernelError::InvalidAddress), "read device page")?;
        check(vm_write(me, at, &buf) == Err(KernelError::InvalidAddress), "write device page")?;
        vm_deallocate(me, at, 0x2000).map_err(|_| "unmap")?;
    }
    // Far past the direct map but within the CPU's physical address width.
    if libmach::device::map_physical(host, me, 1 << 38, at, 0x1000).is_ok() {
        check(vm_read(me, at, &mut buf) == Err(KernelError::InvalidAddress), "read past the direct map")?;
        vm_deallocate(me, at, 0x1000).map_err(|_| "unmap")?;
    }
    // Past any physical address the CPU can form: refused.
    check(
        libmach::device::map_physical(host, me, (1 << 52) - 0x1000, at, 0x1000)
            == Err(KernelError::InvalidArgument),
        "a physical address past the CPU's width",
    )?;
    port_deallocate(me).map_err(|_| "deallocate")?;
    Ok(())
}

/// "Anywhere" placement skips pages that are present.
pub fn anywhere() -> Result<(), &'static str> {
    let host = libmach::startup_port();
    // A fresh task with a page of its own where "anywhere" starts.
    let task = task_create().map_err(|_| "task_create")?;
    let first = 0x0000_1000_0000_0000;
    vm_allocate(task, first, 4096, protection::WRITE).map_err(|_| "vm_allocate fixed")?;
    vm_write(task, first, b"mine").map_err(|_| "vm_write")?;
    let (dma, _) = libmach::device::dma_allocate(host, task, 4096).map_err(|_| "dma_allocate")?;
    check(dma != first, "DMA memory placed over a present page")?;
    let mut back = [0u8; 4];
    vm_read(task, first, &mut back).map_err(|_| "vm_read")?;
    check(&back == b"mine", "the page under DMA memory is unchanged")?;
    let anywhere = vm_allocate(task, 0, 4096, protection::WRITE).map_err(|_| "vm_allocate anywhere")?;
    check(anywhere != first && anywhere != dma, "vm_allocate anywhere over a present page")?;
    task_terminate(task).map_err(|_| "terminate")?;
    port_deallocate(task).map_err(|_| "deallocate")?;

    // A task copy keeps its parent's placement state: its new memory lands past ours.
    let me = task_self().map_err(|_| "task_self")?;
    let ours = vm_allocate(me, 0, 4096, protection::WRITE).map_err(|_| "vm_allocate ours")?;
    let copy = task_create_copy(me).map_err(|_| "task_create_copy")?;
    for _ in 0..4 {
        let (address, _) = libmach::device::dma_allocate(host, copy, 4096).map_err(|_| "dma in copy")?;
        check(address > ours, "DMA memory in a task copy placed over its memory")?;
    }
    task_terminate(copy).map_err(|_| "terminate copy")?;
    port_deallocate(copy).map_err(|_| "deallocate copy")?;
    vm_deallocate(me, ours, 4096).map_err(|_| "vm_deallocate")?;
    port_deallocate(me).map_err(|_| "deallocate me")?;
    Ok(())
}

/// Waits for a dead-name notification about `name` on `inbox`.
fn dead_name_seen(m: &mut Message, inbox: &ReceiveRight, name: PortName) -> Result<(), &'static str> {
    m.receive_timeout(inbox.name(), 2000).map_err(|_| "no dead-name notification: the port lives on")?;
    check(m.header.id == mach_abi::notify::DEAD_NAME_MESSAGE, "notification id")?;
    check(m.data() == name.to_le_bytes(), "notification names the right")
}

/// A port's receive right cannot be queued on the port itself, in a message or in its own
/// port-destroyed notification.
pub fn self_receive() -> Result<(), &'static str> {
    let inbox = ReceiveRight::allocate().map_err(|_| "allocate inbox")?;
    // In a message sent to the port itself: refused, and the sender keeps the right.
    let port = ReceiveRight::allocate().map_err(|_| "allocate")?;
    let send = port.make_send().map_err(|_| "make_send")?;
    let mut m = Message::new();
    m.start(send.name(), disposition::COPY_SEND, 1).push_port(port.name(), disposition::MOVE_RECEIVE);
    check(m.send_timeout(0) == Err(KernelError::InvalidRight), "receive right sent to its own port")?;
    check(port_type(port.name()).is_ok_and(|t| t & right_type::RECEIVE != 0), "the sender keeps it")?;
    // Through a chain: A's receive right queued on B, then B's queued on A.
    let b = ReceiveRight::allocate().map_err(|_| "allocate b")?;
    let b_send = b.make_send().map_err(|_| "make_send b")?;
    m.start(b_send.name(), disposition::COPY_SEND, 2).push_port(port.name(), disposition::MOVE_RECEIVE);
    m.send_timeout(0).map_err(|_| "A's receive right to B")?;
    m.start(send.name(), disposition::COPY_SEND, 3).push_port(b.name(), disposition::MOVE_RECEIVE);
    check(m.send_timeout(0) == Err(KernelError::InvalidRight), "a cycle of receive rights in transit")?;
    // Destroying B frees A with it: a dead-name notification on A's send right says so.
    port_request_notification(
        send.name(),
        mach_abi::notify::DEAD_NAME,
        inbox.name(),
        disposition::MAKE_SEND_ONCE,
    )
    .map_err(|_| "dead-name request on A")?;
    port_destroy(b.into_name()).map_err(|_| "destroy b")?;
    dead_name_seen(&mut m, &inbox, send.name())?;
    port_deallocate(send.into_name()).map_err(|_| "drop A's dead name")?;
    // B's send right went with `port_destroy` (one name for B's rights).
    let _ = b_send.into_name();

    // A port-destroyed notification requested on the port itself: destroying the port
    // kills it (the notification cannot hold its own receive right). A send right kept by
    // another task (a special port of a child) shows whether it died.
    let port = ReceiveRight::allocate().map_err(|_| "allocate")?;
    let send = port.make_send().map_err(|_| "make_send")?;
    let child = task_create().map_err(|_| "task_create")?;
    task_set_special_port(child, mach_abi::special_port::BOOTSTRAP, send.name()).map_err(|_| "give it")?;
    port_request_notification(
        port.name(),
        mach_abi::notify::PORT_DESTROYED,
        port.name(),
        disposition::MAKE_SEND_ONCE,
    )
    .map_err(|_| "port-destroyed request on itself")?;
    let _ = send.into_name(); // destroyed with the receive right's name below
    port_destroy(port.into_name()).map_err(|_| "destroy")?;
    let seen = task_get_special_port(child, mach_abi::special_port::BOOTSTRAP).map_err(|_| "get it")?;
    check(seen == mach_abi::ipc::PORT_DEAD, "the port lives on, holding its own receive right")?;
    task_terminate(child).map_err(|_| "terminate")?;
    port_deallocate(child).map_err(|_| "deallocate")?;
    Ok(())
}

/// `mov edi, 7; mov rax, -2 (task_exit); syscall`
const EXIT_7: &[u8] = &[0xbf, 7, 0, 0, 0, 0x48, 0xc7, 0xc0, 0xfe, 0xff, 0xff, 0xff, 0x0f, 0x05];

/// A child's end is noticed while this thread never stops running.
pub fn reap() -> Result<(), &'static str> {
    let inbox = ReceiveRight::allocate().map_err(|_| "allocate")?;
    let task = task_create().map_err(|_| "task_create")?;
    task_notify_ended(task, inbox.name(), disposition::MAKE_SEND_ONCE).map_err(|_| "notify")?;
    vm_allocate(task, CODE_AT, 4096, protection::WRITE).map_err(|_| "vm_allocate")?;
    vm_write(task, CODE_AT, EXIT_7).map_err(|_| "vm_write")?;
    vm_protect(task, CODE_AT, 4096, protection::EXECUTE).map_err(|_| "vm_protect")?;
    thread_create_at(task, CODE_AT, CODE_AT + 4096, 0, 0).map_err(|_| "thread_create_at")?;
    // Poll without ever blocking: the idle thread never runs meanwhile.
    let mut m = Message::new();
    for _ in 0..2_000_000 {
        if m.receive_timeout(inbox.name(), 0).is_ok() {
            check(m.header.id == mach_abi::TASK_ENDED_MESSAGE, "notification id")?;
            port_deallocate(task).map_err(|_| "deallocate")?;
            return Ok(());
        }
    }
    Err("no task-ended notification while this thread kept running")
}

/// Malformed replies to a forwarded system call are refused before anything is used up or
/// applied; a good reply after them still answers the call.
pub fn bad_reply() -> Result<(), &'static str> {
    let port = ReceiveRight::allocate().map_err(|_| "allocate")?;
    let send = port.make_send().map_err(|_| "make_send")?;
    // read(0, DATA_AT, 1), then report rax.
    let (code, n) = concat(&[
        &[0xb8, 0, 0, 0, 0, 0xbf, 0, 0, 0, 0, 0xbe, 0x00, 0x10, 0x40, 0x00, 0xba, 1, 0, 0, 0, 0x0f, 0x05],
        REPORT_RAX,
    ]);
    let task = child(&code[..n], &send)?;
    let (to, request) = receive::<SyscallRequest>(&port, SYSCALL_MESSAGE)?;
    check(request.number == 0, "read forwarded")?;
    // Too short.
    let mut m = Message::new();
    m.start(to, disposition::MOVE_SEND_ONCE, 0).set_data(&[1, 2, 3]);
    check(m.send() == Err(KernelError::InvalidArgument), "a short reply refused")?;
    // A copy-out with a non-canonical rip: refused, and nothing copied.
    let bad = SyscallReply {
        result: 1,
        flags: reply_flags::COPY_OUT | reply_flags::SET_REGISTERS,
        copy_to: DATA_AT,
        registers: Registers { rip: 0x8000_0000_0000_0000, rsp: CODE_AT, ..request.registers },
    };
    check(reply(to, &bad, b"X").is_err(), "a reply with a kernel rip refused")?;
    let mut byte = [0u8];
    vm_read(task, DATA_AT, &mut byte).map_err(|_| "vm_read")?;
    check(byte[0] == 77, "a refused reply copied nothing")?;
    // A non-canonical FS base.
    let bad = SyscallReply {
        result: 1,
        flags: reply_flags::SET_FS_BASE,
        registers: Registers { fs_base: 0x8000_0000_0000_0000, ..Registers::default() },
        ..SyscallReply::default()
    };
    check(reply(to, &bad, &[]).is_err(), "a reply with a non-canonical FS base refused")?;
    // The right was not used up: the real answer gets through.
    reply(to, &SyscallReply { result: 1234, ..SyscallReply::default() }, &[])?;
    check(report(&port, task)? == 1234, "the good reply answered the call")
}

/// `jmp $`: spin forever.
const SPIN: &[u8] = &[0xeb, 0xfe];

/// `thread_set_state` refuses an FS base that is not a canonical user address.
pub fn fs_base() -> Result<(), &'static str> {
    let task = task_create().map_err(|_| "task_create")?;
    vm_allocate(task, CODE_AT, 4096, protection::WRITE).map_err(|_| "vm_allocate")?;
    vm_write(task, CODE_AT, SPIN).map_err(|_| "vm_write")?;
    vm_protect(task, CODE_AT, 4096, protection::EXECUTE).map_err(|_| "vm_protect")?;
    task_suspend(task).map_err(|_| "suspend")?;
    let thread = thread_create_at(task, CODE_AT, CODE_AT + 4096, 0, 0).map_err(|_| "thread")? as PortName;
    let state = thread_get_state(thread).map_err(|_| "get state")?;
    for fs_base in [0x8000_0000_0000_0000, 0x0000_8000_0000_0000, 0xffff_8000_0000_0000] {
        let bad = Registers { fs_base, ..state };
        check(thread_set_state(thread, &bad) == Err(KernelError::InvalidAddress), "a bad FS base accepted")?;
    }
    let good = Registers { fs_base: DATA_AT, ..state };
    thread_set_state(thread, &good).map_err(|_| "a user FS base refused")?;
    task_resume(task).map_err(|_| "resume")?;
    libmach::ipc::sleep_ms(20);
    task_terminate(task).map_err(|_| "terminate")?;
    port_deallocate(thread).map_err(|_| "deallocate thread")?;
    port_deallocate(task).map_err(|_| "deallocate task")?;
    Ok(())
}

/// Queued messages (their out-of-line copies included) count against the sender's limit of
/// kernel memory: past it, a send is refused with `NoMemory` before anything is copied.
pub fn held_limit() -> Result<(), &'static str> {
    let me = task_self().map_err(|_| "task_self")?;
    let region = 4 << 20;
    let source = vm_allocate(me, 0, region, protection::WRITE).map_err(|_| "vm_allocate")?;
    let port = ReceiveRight::allocate().map_err(|_| "allocate")?;
    port_set_queue_limit(port.name(), 64).map_err(|_| "queue limit")?;
    let send = port.make_send().map_err(|_| "make_send")?;
    let message = || {
        let mut m = Message::new();
        m.start(send.name(), disposition::COPY_SEND, 9);
        for _ in 0..16 {
            m.push_ool(source, region as u32, 0);
        }
        m.send_timeout(0)
    };
    let limit = mach_abi::TASK_HELD_LIMIT;
    let mut sent = 0;
    let refusal = loop {
        match message() {
            Ok(()) => sent += 1,
            Err(e) => break e,
        }
        if sent > 16 {
            break KernelError::InvalidTrap;
        }
    };
    check(refusal == KernelError::NoMemory, "the refusal is NoMemory")?;
    check(sent >= 1, "a 64 MiB message refused")?;
    check(sent * 16 * region <= limit, "messages past the task's limit accepted")?;
    // Receiving gives the memory back to the sender's account.
    let mut m = Message::new();
    m.receive_timeout(port.name(), 0).map_err(|_| "receive")?;
    for i in 0..16 {
        let d = m.ool(i).ok_or("descriptor")?;
        vm_deallocate(me, d.address, u64::from(d.size).next_multiple_of(4096)).map_err(|_| "free ool")?;
    }
    message().map_err(|_| "a message after room was made")?;
    drop(port);
    drop(send);
    vm_deallocate(me, source, region).map_err(|_| "vm_deallocate")?;
    port_deallocate(me).map_err(|_| "deallocate")?;
    Ok(())
}

/// `thread_get_state` on the calling thread: its registers as at this trap.
pub fn own_state() -> Result<(), &'static str> {
    let me = thread_self().map_err(|_| "thread_self")?;
    let state = thread_get_state(me).map_err(|_| "thread_get_state")?;
    check(state.rax as i64 == libmach::trap::THREAD_GET_STATE, "rax holds the trap number")?;
    check(state.rdi == u64::from(me), "rdi holds the thread port")?;
    check(state.rip > 0x1000 && state.rip < mach_abi::layout::USER_END, "rip in user space")?;
    port_deallocate(me).map_err(|_| "deallocate")?;
    Ok(())
}

static TICKS_SEEN: AtomicU64 = AtomicU64::new(0);
static STOP_TICKER: AtomicU64 = AtomicU64::new(0);

extern "C" fn ticker(_: u64) -> ! {
    while STOP_TICKER.load(Ordering::SeqCst) == 0 {
        TICKS_SEEN.fetch_add(1, Ordering::SeqCst);
        libmach::ipc::sleep_ms(10);
    }
    STOP_TICKER.store(2, Ordering::SeqCst);
    thread_exit()
}

/// A higher-priority thread that sleeps 10 ms at a time keeps running while this thread is
/// in a long trap: the kernel lets the timer in between steps of the work.
pub fn long_trap() -> Result<(), &'static str> {
    let me = task_self().map_err(|_| "task_self")?;
    let task = task_create().map_err(|_| "task_create")?;
    crate::ipc_cases::spawn(ticker, 2, 0)?;
    libmach::ipc::sleep_ms(30);
    let size = 256 << 20;
    let before = TICKS_SEEN.load(Ordering::SeqCst);
    let address = vm_allocate(task, 0, size, protection::WRITE).map_err(|_| "vm_allocate 256 MiB")?;
    let during = TICKS_SEEN.load(Ordering::SeqCst) - before;
    vm_deallocate(task, address, size).map_err(|_| "vm_deallocate")?;
    STOP_TICKER.store(1, Ordering::SeqCst);
    while STOP_TICKER.load(Ordering::SeqCst) != 2 {
        libmach::ipc::sleep_ms(10);
    }
    task_terminate(task).map_err(|_| "terminate")?;
    port_deallocate(task).map_err(|_| "deallocate")?;
    port_deallocate(me).map_err(|_| "deallocate me")?;
    libmach::println!("long-trap: the ticker ran {during} times during a 256 MiB vm_allocate");
    check(during >= 2, "the timer was held off during the long trap")
}

/// Rights the kernel keeps to send through later refuse kernel object ports: a thread-less
/// task whose bootstrap port was its own task port was never ended (found by `fuzz`).
pub fn task_cycle() -> Result<(), &'static str> {
    let inbox = ReceiveRight::allocate().map_err(|_| "allocate")?;
    let task = task_create().map_err(|_| "task_create")?;
    task_notify_ended(task, inbox.name(), disposition::MAKE_SEND_ONCE).map_err(|_| "notify")?;
    check(
        task_set_special_port(task, mach_abi::special_port::BOOTSTRAP, task)
            == Err(KernelError::InvalidRight),
        "a task's own task port accepted as its special port",
    )?;
    check(
        task_notify_ended(task, task, disposition::COPY_SEND) == Err(KernelError::InvalidRight),
        "a task port accepted as an end-notification port",
    )?;
    let host = libmach::startup_port();
    check(
        port_request_notification(inbox.name(), mach_abi::notify::NO_SENDERS, host, disposition::COPY_SEND)
            == Err(KernelError::InvalidRight),
        "the host port accepted as a notification port",
    )?;
    // With our right gone the task is unreachable: it ends, and says so.
    port_deallocate(task).map_err(|_| "deallocate")?;
    let mut m = Message::new();
    m.receive_timeout(inbox.name(), 2000).map_err(|_| "the unreachable task never ended")?;
    check(m.header.id == mach_abi::TASK_ENDED_MESSAGE, "notification id")
}

static WAITER_PORT: AtomicU64 = AtomicU64::new(0);
/// 0 while waiting; then 1 + the error code of its receive (0 for a message).
static WAITER_RESULT: AtomicU64 = AtomicU64::new(0);

extern "C" fn waiter(_: u64) -> ! {
    let mut m = Message::new();
    let r = m.receive_timeout(WAITER_PORT.load(Ordering::SeqCst) as PortName, 3000);
    WAITER_RESULT.store(1 + r.err().map_or(0, |e| e as u64), Ordering::SeqCst);
    thread_exit()
}

/// Start `waiter` on `port` and give it time to block.
fn start_waiter(port: PortName) -> Result<(), &'static str> {
    WAITER_PORT.store(u64::from(port), Ordering::SeqCst);
    WAITER_RESULT.store(0, Ordering::SeqCst);
    crate::ipc_cases::spawn(waiter, 3, 0)?;
    libmach::ipc::sleep_ms(30);
    check(WAITER_RESULT.load(Ordering::SeqCst) == 0, "the waiter did not wait")
}

/// Whether the waiter came back (with an error) within 500 ms, well before its timeout.
fn waiter_woke() -> Result<(), &'static str> {
    for _ in 0..50 {
        if WAITER_RESULT.load(Ordering::SeqCst) != 0 {
            let code = WAITER_RESULT.load(Ordering::SeqCst) - 1;
            return check(
                code == KernelError::InvalidName as u64,
                "the waiter's receive fails with InvalidName",
            );
        }
        libmach::ipc::sleep_ms(10);
    }
    Err("a thread kept waiting on a receive right its task no longer holds")
}

/// A receive right that leaves its task wakes the threads of the task waiting on it.
pub fn moved_receive() -> Result<(), &'static str> {
    let inbox = ReceiveRight::allocate().map_err(|_| "allocate inbox")?;
    let inbox_send = inbox.make_send().map_err(|_| "make_send")?;
    // Moved into a message.
    let port = ReceiveRight::allocate().map_err(|_| "allocate")?.into_name();
    start_waiter(port)?;
    let mut m = Message::new();
    m.start(inbox_send.name(), disposition::COPY_SEND, 1).push_port(port, disposition::MOVE_RECEIVE);
    m.send_timeout(0).map_err(|_| "move the receive right")?;
    waiter_woke()?;
    libmach::ipc::sleep_ms(20); // the waiter's thread ends
    // Saved by a port-destroyed request when its name is destroyed.
    let port = ReceiveRight::allocate().map_err(|_| "allocate")?.into_name();
    port_request_notification(
        port,
        mach_abi::notify::PORT_DESTROYED,
        inbox.name(),
        disposition::MAKE_SEND_ONCE,
    )
    .map_err(|_| "port-destroyed request")?;
    start_waiter(port)?;
    port_destroy(port).map_err(|_| "destroy")?;
    waiter_woke()?;
    libmach::ipc::sleep_ms(20);
    // The inbox holds both receive rights; destroying it frees them.
    Ok(())
}

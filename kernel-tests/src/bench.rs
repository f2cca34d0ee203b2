//! `bench`: guest instruction counts for IPC and scheduling. Run by `make bench` under QEMU's
//! `-icount shift=0`, where the time-stamp counter counts guest instructions exactly; without
//! icount the numbers are cycles of the emulation and mean little.

use core::sync::atomic::{AtomicBool, Ordering};
use libmach::ipc::*;
use libmach::println;

const ROUNDS: u64 = 2000;

fn rdtsc() -> u64 {
    // SAFETY: rdtsc only reads the time-stamp counter (user mode may: CR4.TSD is clear).
    unsafe { core::arch::x86_64::_rdtsc() }
}

/// Replies to every request with an empty message, forever.
extern "C" fn null_server(port: u64) -> ! {
    let mut m = Message::new();
    if m.receive(port as PortName).is_err() {
        thread_exit();
    }
    let me = task_self().unwrap_or(0);
    loop {
        // Out-of-line regions are this task's memory now: give them back.
        for i in 0..m.header.ool_count as usize {
            if let Some(d) = m.ool(i) {
                let _ = libmach::task::vm_deallocate(me, d.address, u64::from(d.size).next_multiple_of(4096));
            }
        }
        let reply = m.header.remote;
        m.start(reply, disposition::MOVE_SEND_ONCE, 0);
        if m.mach_msg(options::SEND | options::RECEIVE, port as PortName, 0).is_err() {
            thread_exit();
        }
    }
}

fn round_trips(
    server: PortName,
    reply: PortName,
    data: &[u8],
    ool: Option<(u64, u32)>,
) -> Result<u64, &'static str> {
    let mut m = Message::new();
    let request = |m: &mut Message| {
        m.start(server, disposition::COPY_SEND, 1).reply_to(reply, disposition::MAKE_SEND_ONCE);
        if let Some((address, size)) = ool {
            m.push_ool(address, size, 0);
        }
        m.set_data(data);
    };
    // One warm-up call so that every page on the path is mapped and cached.
    request(&mut m);
    m.call(reply).map_err(|_| "warm-up call failed")?;
    let start = rdtsc();
    for _ in 0..ROUNDS {
        request(&mut m);
        m.call(reply).map_err(|_| "call failed")?;
    }
    Ok((rdtsc() - start) / ROUNDS)
}

static STOP_YIELDER: AtomicBool = AtomicBool::new(false);

extern "C" fn yielder(_: u64) -> ! {
    while !STOP_YIELDER.load(Ordering::Relaxed) {
        sleep_ms(0);
    }
    thread_exit()
}

/// `profile-null`: only null round trips (300), for profiling the IPC path with QEMU's
/// `-d in_asm,exec,nochain` (see docs/testing.md).
pub fn profile_null() -> Result<(), &'static str> {
    let server = ReceiveRight::allocate().map_err(|_| "allocate")?;
    let send = server.make_send().map_err(|_| "make_send")?;
    let reply = ReceiveRight::allocate().map_err(|_| "allocate")?;
    crate::ipc_cases::spawn(null_server, 3, server.name() as u64)?;
    let mut m = Message::new();
    for _ in 0..300 {
        m.start(send.name(), disposition::COPY_SEND, 1).reply_to(reply.name(), disposition::MAKE_SEND_ONCE);
        m.call(reply.name()).map_err(|_| "call failed")?;
    }
    Ok(())
}

/// Runs in a copy-on-write copy of this task: makes a port, hands a send right to it to the
/// parent through the copy's bootstrap port, then answers null requests.
extern "C" fn server_in_copy(_: u64) -> ! {
    let boot = task_self()
        .and_then(|me| libmach::task::task_get_special_port(me, mach_abi::special_port::BOOTSTRAP));
    let (Ok(boot), Ok(port)) = (boot, port_allocate()) else { thread_exit() };
    let mut m = Message::new();
    m.start(boot, disposition::COPY_SEND, 1).push_port(port, disposition::MAKE_SEND);
    if m.send().is_err() {
        thread_exit();
    }
    null_server(port as u64)
}

/// Null round trips with a server in another task (an address-space switch each way).
fn two_task_round_trip() -> Result<u64, &'static str> {
    let me = task_self().map_err(|_| "task_self")?;
    let rendezvous = ReceiveRight::allocate().map_err(|_| "allocate")?;
    let send = rendezvous.make_send().map_err(|_| "make_send")?;
    let copy = libmach::task::task_create_copy(me).map_err(|_| "task_create_copy")?;
    libmach::task::task_set_special_port(copy, mach_abi::special_port::BOOTSTRAP, send.name())
        .map_err(|_| "bootstrap port")?;
    let entry = server_in_copy as *const () as u64;
    thread_create_at(copy, entry, crate::ipc_cases::stack_top(0), 0, 0).map_err(|_| "thread in the copy")?;
    let mut m = Message::new();
    m.receive_timeout(rendezvous.name(), 3000).map_err(|_| "no port from the copy")?;
    let server = m.port(0).ok_or("no right carried")?.name;
    let reply = ReceiveRight::allocate().map_err(|_| "allocate")?;
    let result = round_trips(server, reply.name(), &[], None);
    libmach::task::task_terminate(copy).map_err(|_| "terminate the copy")?;
    result
}

pub fn run() -> Result<(), &'static str> {
    let server = ReceiveRight::allocate().map_err(|_| "allocate")?;
    let send = server.make_send().map_err(|_| "make_send")?;
    let reply = ReceiveRight::allocate().map_err(|_| "allocate")?;
    crate::ipc_cases::spawn(null_server, 3, server.name() as u64)?;

    let null = round_trips(send.name(), reply.name(), &[], None)?;
    println!("bench: null IPC round trip (two threads of one task): {null} instructions");
    let big = [0x5au8; 8192];
    let inline = round_trips(send.name(), reply.name(), &big, None)?;
    println!("bench: 8 KiB inline round trip (request 8 KiB, empty reply): {inline} instructions");
    let me = task_self().map_err(|_| "task_self")?;
    let region =
        libmach::task::vm_allocate(me, 0, 65536, mach_abi::protection::WRITE).map_err(|_| "vm_allocate")?;
    let ool = round_trips(send.name(), reply.name(), &[], Some((region, 65536)))?;
    println!(
        "bench: 64 KiB out-of-line round trip (64 KiB copied to the server, which unmaps it): {ool} instructions"
    );

    // Foreign system call through a trivial handler: a thread of this task serves the
    // task's syscall port and answers every call with 0.
    let handler = ReceiveRight::allocate().map_err(|_| "allocate")?;
    let handler_send = handler.make_send().map_err(|_| "make_send")?;
    crate::ipc_cases::spawn(syscall_server, 1, handler.name() as u64)?;
    let me = task_self().map_err(|_| "task_self")?;
    libmach::task::task_set_special_port(me, mach_abi::special_port::SYSCALL, handler_send.name())
        .map_err(|_| "set syscall port")?;
    // SAFETY: getpid takes no arguments; the handler answers 0.
    check_zero(unsafe { libmach::raw_syscall(39, [0; 6]) })?;
    let start = rdtsc();
    for _ in 0..ROUNDS {
        // SAFETY: as above.
        unsafe { libmach::raw_syscall(39, [0; 6]) };
    }
    let forwarded = (rdtsc() - start) / ROUNDS;
    // The same call entered by `int $64` (xv6's trap), forwarded to the same port.
    check_zero(int_syscall(11))?;
    let start = rdtsc();
    for _ in 0..ROUNDS {
        int_syscall(11);
    }
    let int_forwarded = (rdtsc() - start) / ROUNDS;
    libmach::task::task_set_special_port(me, mach_abi::special_port::SYSCALL, PORT_NULL)
        .map_err(|_| "clear syscall port")?;
    println!("bench: foreign syscall round trip through a trivial handler thread: {forwarded} instructions");
    println!(
        "bench: int $64 system call forwarded to the syscall port (trivial handler thread): {int_forwarded} instructions"
    );

    // The other way to serve `int $64`: without a DPL-3 gate the instruction faults (#GP), the
    // task's exception port gets the fault, and the handler answers by moving rip past the
    // 2-byte instruction with rax set. Measured on vector 0x41, which has no user gate.
    let handler = ReceiveRight::allocate().map_err(|_| "allocate")?;
    let handler_send = handler.make_send().map_err(|_| "make_send")?;
    crate::ipc_cases::spawn(int_fault_server, 1, handler.name() as u64)?;
    libmach::task::task_set_special_port(me, mach_abi::special_port::EXCEPTION, handler_send.name())
        .map_err(|_| "set exception port")?;
    check_zero(int_0x41_fault(11))?;
    let start = rdtsc();
    for _ in 0..ROUNDS {
        int_0x41_fault(11);
    }
    let through_faults = (rdtsc() - start) / ROUNDS;
    libmach::task::task_set_special_port(me, mach_abi::special_port::EXCEPTION, PORT_NULL)
        .map_err(|_| "clear exception port")?;
    println!(
        "bench: int system call served from the exception port (#GP, handler moves rip): {through_faults} instructions"
    );

    // Foreign system call without a syscall port: the kernel answers -ENOSYS itself.
    let start = rdtsc();
    for _ in 0..ROUNDS {
        // SAFETY: getpid takes no arguments; the kernel answers -ENOSYS.
        unsafe { libmach::raw_syscall(39, [0; 6]) };
    }
    println!(
        "bench: foreign syscall trap, no syscall port (kernel answers -ENOSYS): {} instructions",
        (rdtsc() - start) / ROUNDS
    );

    // Context switch: two threads of equal priority yielding to each other.
    crate::ipc_cases::spawn(yielder, 2, 0)?;
    sleep_ms(0);
    let start = rdtsc();
    for _ in 0..ROUNDS {
        sleep_ms(0);
    }
    let per_switch = (rdtsc() - start) / (2 * ROUNDS);
    STOP_YIELDER.store(true, Ordering::Relaxed);
    println!("bench: context switch (yield between two threads): {per_switch} instructions");
    // Last: it leaves a terminated task for the idle thread to reap, and this task's pages
    // copy-on-write, which would skew the figures above.
    let across = two_task_round_trip()?;
    println!(
        "bench: null IPC round trip (two tasks; the server is a copy of this task): {across} instructions"
    );
    Ok(())
}

fn check_zero(value: i64) -> Result<(), &'static str> {
    if value == 0 { Ok(()) } else { Err("the syscall handler's answer did not arrive") }
}

/// `int $64` with `number` in rax: the result.
fn int_syscall(number: u64) -> i64 {
    let result: i64;
    // SAFETY: a forwarded system call; the handler answers with rax only.
    unsafe { core::arch::asm!("int 0x40", inlateout("rax") number as i64 => result, options(nostack)) };
    result
}

/// `int $0x41`, a vector with no user gate: a #GP the exception handler answers.
fn int_0x41_fault(number: u64) -> i64 {
    let result: i64;
    // SAFETY: the fault's handler resumes this thread after the instruction with rax set.
    unsafe { core::arch::asm!("int 0x41", inlateout("rax") number as i64 => result, options(nostack)) };
    result
}

/// Answers every #GP from `int` by resuming after the 2-byte instruction with rax = 0.
extern "C" fn int_fault_server(port: u64) -> ! {
    use mach_abi::forward::{ExceptionReply, ExceptionRequest, action, reply_flags};
    use mach_abi::zerocopy::{FromBytes, IntoBytes};
    let mut m = Message::new();
    if m.receive(port as PortName).is_err() {
        thread_exit();
    }
    loop {
        let reply = m.header.remote;
        let Ok((request, _)) = ExceptionRequest::read_from_prefix(m.data()) else { thread_exit() };
        let mut registers = request.registers;
        registers.rip += 2;
        registers.rax = 0;
        let answer = ExceptionReply { action: action::RESUME, flags: reply_flags::SET_REGISTERS, registers };
        m.start(reply, disposition::MOVE_SEND_ONCE, 0).set_data(answer.as_bytes());
        if m.mach_msg(options::SEND | options::RECEIVE, port as PortName, 0).is_err() {
            thread_exit();
        }
    }
}

/// Answers every forwarded system call with 0.
extern "C" fn syscall_server(port: u64) -> ! {
    let mut m = Message::new();
    if m.receive(port as PortName).is_err() {
        thread_exit();
    }
    loop {
        let reply = m.header.remote;
        let answer = mach_abi::forward::SyscallReply::default();
        // SAFETY: SyscallReply is a repr(C) struct of integers.
        let bytes = unsafe {
            core::slice::from_raw_parts(
                &answer as *const _ as *const u8,
                core::mem::size_of::<mach_abi::forward::SyscallReply>(),
            )
        };
        m.start(reply, disposition::MOVE_SEND_ONCE, 0).set_data(bytes);
        if m.mach_msg(options::SEND | options::RECEIVE, port as PortName, 0).is_err() {
            thread_exit();
        }
    }
}

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

pub fn run() -> Result<(), &'static str> {
    let server = ReceiveRight::allocate().map_err(|_| "allocate")?;
    let send = server.make_send().map_err(|_| "make_send")?;
    let reply = ReceiveRight::allocate().map_err(|_| "allocate")?;
    crate::ipc_cases::spawn(null_server, 3, server.name() as u64)?;

    let null = round_trips(send.name(), reply.name(), &[], None)?;
    println!("bench: null IPC round trip (two threads): {null} instructions");
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
    libmach::task::task_set_special_port(me, mach_abi::special_port::SYSCALL, PORT_NULL)
        .map_err(|_| "clear syscall port")?;
    println!("bench: foreign syscall round trip through a trivial handler thread: {forwarded} instructions");

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
    Ok(())
}

fn check_zero(value: i64) -> Result<(), &'static str> {
    if value == 0 { Ok(()) } else { Err("the syscall handler's answer did not arrive") }
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

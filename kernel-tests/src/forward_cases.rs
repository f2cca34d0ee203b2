//! In-guest cases for forwarded system calls and faults: this program plays the personality
//! (syscall port) and the debugger (exception port) for small child tasks made of a few
//! instructions, and checks what the kernel sends and how it applies the replies.

use crate::check;
use libmach::ipc::*;
use libmach::task::*;
use libmach::task::{
    host_trace_read, host_trace_task, task_resume, task_suspend, thread_get_state, thread_set_state,
};
use mach_abi::forward::*;
use mach_abi::{protection, special_port};

pub(crate) const CODE_AT: u64 = 0x40_0000;
pub(crate) const DATA_AT: u64 = 0x40_1000;

/// `mov rdi, rax; mov eax, 60; syscall`: report rax through a foreign `exit`.
pub(crate) const REPORT_RAX: &[u8] = &[0x48, 0x89, 0xc7, 0xb8, 60, 0, 0, 0, 0x0f, 0x05];
/// `mov eax, 60; syscall`: report rdi.
const REPORT_RDI: &[u8] = &[0xb8, 60, 0, 0, 0, 0x0f, 0x05];

pub(crate) fn concat(parts: &[&[u8]]) -> ([u8; 64], usize) {
    let mut code = [0u8; 64];
    let mut n = 0;
    for part in parts {
        code[n..n + part.len()].copy_from_slice(part);
        n += part.len();
    }
    (code, n)
}

/// A child running `code` with its syscall and exception ports set to `port`.
pub(crate) fn child(code: &[u8], port: &SendRight) -> Result<PortName, &'static str> {
    child_then(code, port, |_| Ok(()))
}

/// As [`child`], with `before_start` called on the task before its thread starts.
pub(crate) fn child_then(
    code: &[u8],
    port: &SendRight,
    before_start: impl FnOnce(PortName) -> Result<(), &'static str>,
) -> Result<PortName, &'static str> {
    let task = task_create().map_err(|_| "task_create")?;
    task_set_special_port(task, special_port::SYSCALL, port.name()).map_err(|_| "set syscall port")?;
    task_set_special_port(task, special_port::EXCEPTION, port.name()).map_err(|_| "set exception port")?;
    vm_allocate(task, CODE_AT, 4096, protection::WRITE).map_err(|_| "vm_allocate")?;
    vm_write(task, CODE_AT, code).map_err(|_| "vm_write")?;
    vm_protect(task, CODE_AT, 4096, protection::EXECUTE).map_err(|_| "vm_protect")?;
    vm_allocate(task, DATA_AT, 4096, protection::WRITE).map_err(|_| "vm_allocate data")?;
    vm_write(task, DATA_AT, &[77]).map_err(|_| "vm_write data")?;
    let stack = vm_allocate(task, 0, 16384, protection::WRITE).map_err(|_| "vm_allocate stack")?;
    before_start(task)?;
    thread_create_at(task, CODE_AT, stack + 16384 - 8, 0, 0).map_err(|_| "thread_create_at")?;
    Ok(task)
}

pub(crate) fn receive<T: Copy + Default>(
    port: &ReceiveRight,
    id: u32,
) -> Result<(PortName, T), &'static str> {
    let mut m = Message::new();
    m.receive_timeout(port.name(), 5000).map_err(|_| "no forwarded message")?;
    check(m.header.id == id, "forwarded message id")?;
    check(m.header.remote_disposition == received::SEND_ONCE, "reply right is send-once")?;
    let data = m.data();
    check(data.len() == core::mem::size_of::<T>(), "forwarded message size")?;
    let mut value = T::default();
    // SAFETY: T is a repr(C) struct of u64s and `data` has exactly its size.
    unsafe { core::ptr::copy_nonoverlapping(data.as_ptr(), &mut value as *mut T as *mut u8, data.len()) };
    Ok((m.header.remote, value))
}

pub(crate) fn reply<T: Copy>(to: PortName, value: &T, extra: &[u8]) -> Result<(), &'static str> {
    // SAFETY: T is a repr(C) struct of u64s.
    let bytes =
        unsafe { core::slice::from_raw_parts(value as *const T as *const u8, core::mem::size_of::<T>()) };
    let mut data = [0u8; 512];
    data[..bytes.len()].copy_from_slice(bytes);
    data[bytes.len()..bytes.len() + extra.len()].copy_from_slice(extra);
    let mut m = Message::new();
    m.start(to, disposition::MOVE_SEND_ONCE, 0).set_data(&data[..bytes.len() + extra.len()]);
    m.send().map_err(|_| "reply refused")
}

/// Wait for the child's report (`exit` with a value) and end the child.
pub(crate) fn report(port: &ReceiveRight, task: PortName) -> Result<u64, &'static str> {
    let (_, request) = receive::<SyscallRequest>(port, SYSCALL_MESSAGE)?;
    check(request.number == 60, "report is exit")?;
    task_terminate(task).map_err(|_| "terminate child")?;
    port_deallocate(task).map_err(|_| "deallocate child")?;
    Ok(request.args[0])
}

pub fn forwarding() -> Result<(), &'static str> {
    let port = ReceiveRight::allocate().map_err(|_| "allocate")?;
    let send = port.make_send().map_err(|_| "make_send")?;

    // getpid: the reply's result lands in rax.
    let (code, n) = concat(&[&[0xb8, 39, 0, 0, 0, 0x0f, 0x05], REPORT_RAX]);
    let task = child(&code[..n], &send)?;
    let (to, request) = receive::<SyscallRequest>(&port, SYSCALL_MESSAGE)?;
    check(request.number == 39, "syscall number")?;
    check(request.entry == mach_abi::forward::entry::SYSCALL, "syscall's entry kind")?;
    check(request.registers.rip == CODE_AT + 7, "rip after the syscall instruction")?;
    reply(to, &SyscallReply { result: 4242, ..SyscallReply::default() }, &[])?;
    check(report(&port, task)? == 4242, "the reply's result reached rax")?;

    // `int $64` (xv6's trap): forwarded the same way, with its entry kind; getpid's number 11
    // and an argument in rdi; the reply's result lands in rax.
    let (code, n) = concat(&[&[0xb8, 11, 0, 0, 0, 0xbf, 7, 0, 0, 0, 0xcd, 0x40], REPORT_RAX]);
    let task = child(&code[..n], &send)?;
    let (to, request) = receive::<SyscallRequest>(&port, SYSCALL_MESSAGE)?;
    check(request.entry == mach_abi::forward::entry::INT_0X40, "int $64's entry kind")?;
    check(request.number == 11 && request.args[0] == 7, "int $64's number and argument")?;
    check(request.registers.rip == CODE_AT + 12, "rip after the int instruction")?;
    reply(to, &SyscallReply { result: 99, ..SyscallReply::default() }, &[])?;
    check(report(&port, task)? == 99, "int $64: the reply's result reached rax")?;

    // The reply right destroyed unanswered: the call returns -ENOSYS.
    let (code, n) = concat(&[&[0xb8, 39, 0, 0, 0, 0x0f, 0x05], REPORT_RAX]);
    let task = child(&code[..n], &send)?;
    let (to, _) = receive::<SyscallRequest>(&port, SYSCALL_MESSAGE)?;
    port_deallocate(to).map_err(|_| "destroy the reply right")?;
    check(report(&port, task)? == (-38i64) as u64, "an unanswered call returns -ENOSYS")?;

    // read(0, DATA_AT, 5): the reply carries the bytes to copy into the caller.
    let (code, n) = concat(&[
        &[0xb8, 0, 0, 0, 0, 0xbf, 0, 0, 0, 0, 0xbe, 0x00, 0x10, 0x40, 0x00, 0xba, 5, 0, 0, 0, 0x0f, 0x05],
        &[0x0f, 0xb6, 0x3c, 0x25, 0x00, 0x10, 0x40, 0x00], // movzx edi, byte [DATA_AT]
        REPORT_RDI,
    ]);
    let task = child(&code[..n], &send)?;
    let (to, request) = receive::<SyscallRequest>(&port, SYSCALL_MESSAGE)?;
    check(request.number == 0 && request.args[1] == DATA_AT && request.args[2] == 5, "read's arguments")?;
    let answer = SyscallReply {
        result: 5,
        flags: reply_flags::COPY_OUT,
        copy_to: request.args[1],
        ..SyscallReply::default()
    };
    reply(to, &answer, b"Hello")?;
    check(report(&port, task)? == u64::from(b'H'), "copied bytes reached the caller's memory")?;

    // arch_prctl(ARCH_SET_FS, DATA_AT): the reply sets the FS base; fs:[0] then reads 77.
    let (code, n) = concat(&[
        &[0xb8, 158, 0, 0, 0, 0xbf, 0x02, 0x10, 0, 0, 0xbe, 0x00, 0x10, 0x40, 0x00, 0x0f, 0x05],
        &[0x64, 0x48, 0x8b, 0x3c, 0x25, 0, 0, 0, 0], // mov rdi, fs:[0]
        REPORT_RDI,
    ]);
    let task = child(&code[..n], &send)?;
    let (to, request) = receive::<SyscallRequest>(&port, SYSCALL_MESSAGE)?;
    let mut answer = SyscallReply { flags: reply_flags::SET_FS_BASE, ..SyscallReply::default() };
    answer.registers.fs_base = request.args[1];
    reply(to, &answer, &[])?;
    check(report(&port, task)? == 77, "FS base set by the reply")?;

    // A malformed reply is refused and the thread keeps waiting for a good one.
    let (code, n) = concat(&[&[0xb8, 39, 0, 0, 0, 0x0f, 0x05], REPORT_RAX]);
    let task = child(&code[..n], &send)?;
    let (to, _) = receive::<SyscallRequest>(&port, SYSCALL_MESSAGE)?;
    let mut m = Message::new();
    m.start(to, disposition::MOVE_SEND_ONCE, 0).set_data(&[1, 2, 3]);
    check(m.send().is_err(), "a short reply is refused")?;
    task_terminate(task).map_err(|_| "terminate")?;
    port_deallocate(task).map_err(|_| "deallocate")?;
    Ok(())
}

pub fn exceptions() -> Result<(), &'static str> {
    let port = ReceiveRight::allocate().map_err(|_| "allocate")?;
    let send = port.make_send().map_err(|_| "make_send")?;

    // ud2, resumed past the instruction by the handler.
    let (code, n) = concat(&[&[0x0f, 0x0b], &[0xbf, 9, 0, 0, 0], REPORT_RDI]);
    let task = child(&code[..n], &send)?;
    let (to, request) = receive::<ExceptionRequest>(&port, EXCEPTION_MESSAGE)?;
    check(request.vector == 6 && request.registers.rip == CODE_AT, "invalid opcode at the code start")?;
    let mut registers = request.registers;
    registers.rip += 2;
    reply(to, &ExceptionReply { action: action::RESUME, flags: reply_flags::SET_REGISTERS, registers }, &[])?;
    check(report(&port, task)? == 9, "resumed after ud2 with new registers")?;

    // A page fault reports its address; the handler ends the task.
    let inbox = ReceiveRight::allocate().map_err(|_| "allocate")?;
    let task = child(&[0x48, 0xc7, 0x04, 0x25, 0x00, 0x50, 0x00, 0x00, 1, 0, 0, 0], &send)?; // mov qword [0x5000], 1
    task_notify_ended(task, inbox.name(), disposition::MAKE_SEND_ONCE).map_err(|_| "notify")?;
    let (to, request) = receive::<ExceptionRequest>(&port, EXCEPTION_MESSAGE)?;
    check(request.vector == 14 && request.fault_address == 0x5000, "page fault address")?;
    check(request.error_code & 2 != 0, "a write fault")?;
    reply(to, &ExceptionReply { action: action::TERMINATE, ..ExceptionReply::default() }, &[])?;
    let mut m = Message::new();
    m.receive_timeout(inbox.name(), 5000).map_err(|_| "task did not end")?;
    check(m.header.id == mach_abi::TASK_ENDED_MESSAGE, "ended")?;
    port_deallocate(task).map_err(|_| "deallocate")?;

    // A handler that drops the request without answering: the task ends.
    let task = child(&[0x0f, 0x0b], &send)?;
    task_notify_ended(task, inbox.name(), disposition::MAKE_SEND_ONCE).map_err(|_| "notify")?;
    let (to, _) = receive::<ExceptionRequest>(&port, EXCEPTION_MESSAGE)?;
    port_deallocate(to).map_err(|_| "drop the reply right")?;
    m.receive_timeout(inbox.name(), 5000).map_err(|_| "task did not end after an unanswered fault")?;
    port_deallocate(task).map_err(|_| "deallocate")?;
    Ok(())
}

/// Tracing: a traced child's system call is recorded hop by hop (trap, send to the syscall
/// port, receive by the handler, reply, resume), all under one trace context, in order.
pub fn tracing() -> Result<(), &'static str> {
    use mach_abi::trace::*;
    let host = libmach::startup_port();
    let port = ReceiveRight::allocate().map_err(|_| "allocate")?;
    let send = port.make_send().map_err(|_| "make_send")?;
    let mut records = [TraceRecord::default(); 64];
    // Where the ring is now: only newer records matter.
    let mut from = 1;
    loop {
        let n = host_trace_read(host, from, &mut records).map_err(|_| "host_trace_read")?;
        if n == 0 {
            break;
        }
        from = records[n - 1].sequence + 1;
    }
    // A bad buffer is refused even when there is no record to copy.
    for buffer in [0xdead_0000u64, 0xffff_8000_0000_0000] {
        // SAFETY: deliberately bad buffer; the kernel must refuse it.
        let r = unsafe {
            libmach::raw_syscall(mach_abi::trap::HOST_TRACE_READ, [host as u64, from, buffer, 64, 0, 0])
        };
        check(
            libmach::KernelError::from_return(r) == Some(libmach::KernelError::InvalidAddress),
            "bad trace buffer",
        )?;
    }
    let (code, n) = concat(&[&[0xb8, 39, 0, 0, 0, 0x0f, 0x05], REPORT_RAX]);
    // Traced before its thread starts: its first call must be traced.
    let trace_it = |task| host_trace_task(host, task, true).map_err(|_| "host_trace_task");
    let task = child_then(&code[..n], &send, trace_it)?;
    let (to, _) = receive::<SyscallRequest>(&port, SYSCALL_MESSAGE)?;
    reply(to, &SyscallReply { result: 7, ..SyscallReply::default() }, &[])?;
    check(report(&port, task)? == 7, "traced call answered")?;
    let n = host_trace_read(host, from, &mut records).map_err(|_| "host_trace_read")?;
    let hops: [u8; 5] = [TRAP, SEND, RECEIVE, REPLY, RESUME];
    let first = records[..n].iter().position(|r| r.kind == TRAP).ok_or("no TRAP record")?;
    let request = &records[first..n];
    check(request.len() >= 5, "five hops recorded")?;
    let context = request[0].trace;
    for (record, kind) in request.iter().zip(hops) {
        check(record.kind == kind, "hops in order: trap, send, receive, reply, resume")?;
        check(record.trace == context && context != 0, "one trace context for the request")?;
    }
    check(request[0].msg_id == 39 && request[1].msg_id == SYSCALL_MESSAGE, "trap and message ids")?;
    check(request[4].size == 7, "resume records the result")?;
    check(
        request.windows(2).all(|w| w[0].tsc <= w[1].tsc && w[0].sequence + 1 == w[1].sequence),
        "time and sequence",
    )?;
    check(request[1].port == request[2].port, "sent and received on the same port")?;
    check(
        host_trace_task(task_self().map_err(|_| "self")?, task, true).is_err(),
        "tracing needs the host port",
    )
}

/// Suspend and resume a task, and read and change a stopped thread's registers through its
/// thread port: a child counting in a loop stops counting while suspended, then is sent to a
/// different instruction.
pub fn suspend_and_state() -> Result<(), &'static str> {
    let port = ReceiveRight::allocate().map_err(|_| "allocate")?;
    let send = port.make_send().map_err(|_| "make_send")?;
    let (code, n) = concat(&[
        &[0x48, 0xff, 0x04, 0x25, 0x00, 0x10, 0x40, 0x00], // 0x400000: inc qword [DATA_AT]
        &[0xeb, 0xf6],                                     // jmp 0x400000
        &[0x90; 6],                                        // up to 0x400010
        &[0xbf, 5, 0, 0, 0],                               // 0x400010: mov edi, 5
        REPORT_RDI,
    ]);
    let task = task_create().map_err(|_| "task_create")?;
    task_set_special_port(task, special_port::SYSCALL, send.name()).map_err(|_| "syscall port")?;
    vm_allocate(task, CODE_AT, 4096, protection::WRITE).map_err(|_| "vm_allocate")?;
    vm_write(task, CODE_AT, &code[..n]).map_err(|_| "vm_write")?;
    vm_protect(task, CODE_AT, 4096, protection::EXECUTE).map_err(|_| "vm_protect")?;
    vm_allocate(task, DATA_AT, 4096, protection::WRITE).map_err(|_| "data")?;
    let stack = vm_allocate(task, 0, 16384, protection::WRITE).map_err(|_| "stack")?;
    let thread =
        thread_create_at(task, CODE_AT, stack + 16384 - 8, 0, 0).map_err(|_| "thread_create_at")? as PortName;
    let counter = || -> Result<u64, &'static str> {
        let mut bytes = [0u8; 8];
        vm_read(task, DATA_AT, &mut bytes).map_err(|_| "vm_read counter")?;
        Ok(u64::from_le_bytes(bytes))
    };
    sleep_ms(30);
    check(counter()? > 0, "the child counts")?;
    task_suspend(task).map_err(|_| "task_suspend")?;
    let stopped = counter()?;
    sleep_ms(30);
    check(counter()? == stopped, "a suspended task does not run")?;
    let mut registers = thread_get_state(thread).map_err(|_| "thread_get_state")?;
    check((CODE_AT..CODE_AT + 10).contains(&registers.rip), "stopped inside its loop")?;
    registers.rip = CODE_AT + 0x10;
    thread_set_state(thread, &registers).map_err(|_| "thread_set_state")?;
    let mut bad = registers;
    bad.rip = 0xffff_ffff_8000_0000;
    check(thread_set_state(thread, &bad) == Err(libmach::KernelError::InvalidAddress), "kernel rip refused")?;
    task_resume(task).map_err(|_| "task_resume")?;
    check(task_resume(task) == Err(libmach::KernelError::InvalidArgument), "resume without suspend")?;
    check(report(&port, task)? == 5, "resumed at the new rip")?;
    check(
        thread_get_state(send.name()).err() == Some(libmach::KernelError::InvalidRight),
        "not a thread port",
    )?;
    port_deallocate(thread).map_err(|_| "release the thread port")?;
    thread_ids_and_terminate()
}

/// `thread_id` tells two threads of a task apart (as forwarded calls do); `thread_terminate`
/// ends one of them while the other counts on, and the task goes with its last thread.
fn thread_ids_and_terminate() -> Result<(), &'static str> {
    use libmach::task::{thread_id, thread_terminate};
    let code = [0x48, 0xff, 0x04, 0x25, 0x00, 0x10, 0x40, 0x00, 0xeb, 0xf6]; // inc [DATA_AT]; jmp
    let task = task_create().map_err(|_| "task_create")?;
    vm_allocate(task, CODE_AT, 4096, protection::WRITE).map_err(|_| "vm_allocate")?;
    vm_write(task, CODE_AT, &code).map_err(|_| "vm_write")?;
    vm_protect(task, CODE_AT, 4096, protection::EXECUTE).map_err(|_| "vm_protect")?;
    vm_allocate(task, DATA_AT, 4096, protection::WRITE).map_err(|_| "data")?;
    let stack = vm_allocate(task, 0, 16384, protection::WRITE).map_err(|_| "stack")?;
    let counter = || -> Result<u64, &'static str> {
        let mut bytes = [0u8; 8];
        vm_read(task, DATA_AT, &mut bytes).map_err(|_| "read the counter of the two threads")?;
        Ok(u64::from_le_bytes(bytes))
    };
    let first =
        thread_create_at(task, CODE_AT, stack + 8192 - 8, 0, 0).map_err(|_| "first thread")? as PortName;
    let second =
        thread_create_at(task, CODE_AT, stack + 16384 - 8, 0, 0).map_err(|_| "second thread")? as PortName;
    let (a, b) = (thread_id(first).map_err(|_| "thread_id")?, thread_id(second).map_err(|_| "thread_id")?);
    check(a != b && a != 0 && b != 0, "two threads, two ids")?;
    let (own, other) =
        (libmach::task::task_id(task_self().map_err(|_| "self")?), libmach::task::task_id(task));
    check(matches!((own, other), (Ok(x), Ok(y)) if x != y), "two tasks, two ids")?;
    check(thread_terminate(task) == Err(libmach::KernelError::InvalidRight), "a task port is no thread")?;
    sleep_ms(20);
    check(counter()? > 0, "two threads count")?;
    // The x87/SSE registers: MXCSR starts at the default; a new rounding mode is kept; an
    // MXCSR with reserved bits is refused (loading it would fault the kernel).
    use libmach::task::{thread_get_fpu_state, thread_set_fpu_state};
    let mut fpu = thread_get_fpu_state(first).map_err(|_| "thread_get_fpu_state")?;
    check(fpu[24..28] == 0x1f80u32.to_le_bytes(), "MXCSR starts at 0x1f80")?;
    fpu[24..28].copy_from_slice(&0x7f80u32.to_le_bytes());
    thread_set_fpu_state(first, &fpu).map_err(|_| "thread_set_fpu_state")?;
    let back = thread_get_fpu_state(first).map_err(|_| "thread_get_fpu_state again")?;
    check(back[24..28] == 0x7f80u32.to_le_bytes(), "the new MXCSR kept")?;
    fpu[24..28].copy_from_slice(&0xffff_0000u32.to_le_bytes());
    check(
        thread_set_fpu_state(first, &fpu) == Err(libmach::KernelError::InvalidArgument),
        "reserved MXCSR bits refused",
    )?;
    thread_terminate(first).map_err(|_| "thread_terminate")?;
    sleep_ms(20);
    let before = counter()?;
    sleep_ms(30);
    check(counter()? > before, "the other thread counts on")?;
    thread_terminate(second).map_err(|_| "thread_terminate second")?;
    sleep_ms(20);
    check(counter().is_err(), "a task whose last thread ended is gone")?;
    let _ = port_deallocate(first);
    let _ = port_deallocate(second);
    let _ = task_terminate(task);
    let _ = port_deallocate(task);
    Ok(())
}

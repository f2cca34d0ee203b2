//! Tasks and their memory, through task ports; boot modules through the host port.

use crate::ipc::PortName;
use crate::trap_call as call;
use mach_abi::{KernelError, ModuleInfo, trap};

/// A new, empty task; returns a send right to its task port.
pub fn task_create() -> Result<PortName, KernelError> {
    call(trap::TASK_CREATE, [0; 6]).map(|n| n as PortName)
}
pub fn task_terminate(task: PortName) -> Result<(), KernelError> {
    call(trap::TASK_TERMINATE, [task as u64, 0, 0, 0, 0, 0]).map(|_| ())
}
/// Map zeroed pages into `task` (address 0 = anywhere); returns the address.
pub fn vm_allocate(task: PortName, address: u64, size: u64, protection: u64) -> Result<u64, KernelError> {
    call(trap::VM_ALLOCATE, [task as u64, address, size, protection, 0, 0])
}
pub fn vm_deallocate(task: PortName, address: u64, size: u64) -> Result<(), KernelError> {
    call(trap::VM_DEALLOCATE, [task as u64, address, size, 0, 0, 0]).map(|_| ())
}
pub fn vm_protect(task: PortName, address: u64, size: u64, protection: u64) -> Result<(), KernelError> {
    call(trap::VM_PROTECT, [task as u64, address, size, protection, 0, 0]).map(|_| ())
}
/// Copy `data` into `task`'s memory at `address`.
pub fn vm_write(task: PortName, address: u64, data: &[u8]) -> Result<(), KernelError> {
    call(trap::VM_WRITE, [task as u64, address, data.as_ptr() as u64, data.len() as u64, 0, 0]).map(|_| ())
}
/// Copy `task`'s memory at `address` into `out`.
pub fn vm_read(task: PortName, address: u64, out: &mut [u8]) -> Result<(), KernelError> {
    call(trap::VM_READ, [task as u64, address, out.as_mut_ptr() as u64, out.len() as u64, 0, 0]).map(|_| ())
}
pub fn task_set_special_port(task: PortName, which: u64, port: PortName) -> Result<(), KernelError> {
    call(trap::TASK_SET_SPECIAL_PORT, [task as u64, which, port as u64, 0, 0, 0]).map(|_| ())
}
pub fn task_get_special_port(task: PortName, which: u64) -> Result<PortName, KernelError> {
    call(trap::TASK_GET_SPECIAL_PORT, [task as u64, which, 0, 0, 0, 0]).map(|n| n as PortName)
}
/// Ask for a task-ended message on `port` (a right carried as `how`) when `task` ends.
pub fn task_notify_ended(task: PortName, port: PortName, how: u8) -> Result<(), KernelError> {
    call(trap::TASK_NOTIFY_ENDED, [task as u64, port as u64, how as u64, 0, 0, 0]).map(|_| ())
}
pub fn host_module_info(host: PortName, index: usize) -> Result<ModuleInfo, KernelError> {
    let mut info = ModuleInfo::default();
    call(trap::HOST_MODULE_INFO, [host as u64, index as u64, &mut info as *mut ModuleInfo as u64, 0, 0, 0])?;
    Ok(info)
}
/// Map boot module `index` read-only at `address` in this task; returns the mapped size.
pub fn host_module_map(host: PortName, index: usize, address: u64) -> Result<u64, KernelError> {
    call(trap::HOST_MODULE_MAP, [host as u64, index as u64, address, 0, 0, 0])
}
/// Name `task` for the kernel log and traces (1 to 32 bytes of UTF-8).
pub fn task_set_name(task: PortName, name: &str) -> Result<(), KernelError> {
    call(trap::TASK_SET_NAME, [task as u64, name.as_ptr() as u64, name.len() as u64, 0, 0, 0]).map(|_| ())
}
/// Start or stop tracing `task`'s foreign system calls (host port needed).
pub fn host_trace_task(host: PortName, task: PortName, on: bool) -> Result<(), KernelError> {
    call(trap::HOST_TRACE_TASK, [host as u64, task as u64, on as u64, 0, 0, 0]).map(|_| ())
}
/// Read trace records with sequence >= `from` into `out`; returns how many were written.
/// A send right to the trace port: the right to trace tasks and read the trace ring,
/// without the host port's other privileges.
pub fn host_trace_port(host: PortName) -> Result<PortName, KernelError> {
    call(trap::HOST_TRACE_PORT, [host as u64, 0, 0, 0, 0, 0]).map(|n| n as PortName)
}
/// The name of the live task with id `task` (as trace records carry it), into `out`;
/// returns its whole length.
pub fn trace_task_name(trace: PortName, task: u64, out: &mut [u8]) -> Result<usize, KernelError> {
    call(trap::TRACE_TASK_NAME, [trace as u64, task, out.as_mut_ptr() as u64, out.len() as u64, 0, 0])
        .map(|n| n as usize)
}
pub fn host_trace_read(
    host: PortName,
    from: u64,
    out: &mut [mach_abi::trace::TraceRecord],
) -> Result<usize, KernelError> {
    call(trap::HOST_TRACE_READ, [host as u64, from, out.as_mut_ptr() as u64, out.len() as u64, 0, 0])
        .map(|n| n as usize)
}
/// A thread's user registers (`thread` names a thread port, from `thread_create`).
pub fn thread_get_state(thread: PortName) -> Result<mach_abi::forward::Registers, KernelError> {
    let mut registers = mach_abi::forward::Registers::default();
    call(trap::THREAD_GET_STATE, [thread as u64, &mut registers as *mut _ as u64, 0, 0, 0, 0])?;
    Ok(registers)
}
/// Replace a (stopped) thread's user registers.
pub fn thread_set_state(
    thread: PortName,
    registers: &mach_abi::forward::Registers,
) -> Result<(), KernelError> {
    call(trap::THREAD_SET_STATE, [thread as u64, registers as *const _ as u64, 0, 0, 0, 0]).map(|_| ())
}
pub fn task_suspend(task: PortName) -> Result<(), KernelError> {
    call(trap::TASK_SUSPEND, [task as u64, 0, 0, 0, 0, 0]).map(|_| ())
}
pub fn task_resume(task: PortName) -> Result<(), KernelError> {
    call(trap::TASK_RESUME, [task as u64, 0, 0, 0, 0, 0]).map(|_| ())
}
/// A new task whose memory is a copy-on-write copy of `parent`'s (for fork).
pub fn task_create_copy(parent: PortName) -> Result<PortName, KernelError> {
    call(trap::TASK_CREATE_COPY, [parent as u64, 0, 0, 0, 0, 0]).map(|n| n as PortName)
}
/// A send right to the calling thread's port.
pub fn thread_self() -> Result<PortName, KernelError> {
    call(trap::THREAD_SELF, [0; 6]).map(|n| n as PortName)
}
/// Give a thread a priority (0 ..= `mach_abi::MAX_PRIORITY`, higher runs first); returns the
/// previous one. The caller gives way at once when another ready thread now outranks it.
pub fn thread_set_priority(thread: PortName, priority: u64) -> Result<u64, KernelError> {
    call(trap::THREAD_SET_PRIORITY, [thread as u64, priority, 0, 0, 0, 0])
}
/// Map `size` bytes of `source`'s memory at `source_address` into `task` at `address` (0 =
/// anywhere), shared both ways; returns the address in `task`.
pub fn vm_map(
    task: PortName,
    address: u64,
    size: u64,
    source: PortName,
    source_address: u64,
    protection: u64,
) -> Result<u64, KernelError> {
    call(trap::VM_MAP, [task as u64, address, size, source as u64, source_address, protection])
}
/// End a thread (another task's, or the caller itself).
pub fn thread_terminate(thread: PortName) -> Result<(), KernelError> {
    call(trap::THREAD_TERMINATE, [thread as u64, 0, 0, 0, 0, 0]).map(|_| ())
}
/// The id forwarded system calls carry in `SyscallRequest::thread` for this thread.
pub fn thread_id(thread: PortName) -> Result<u64, KernelError> {
    call(trap::THREAD_ID, [thread as u64, 0, 0, 0, 0, 0])
}
/// The id the kernel log and trace records use for a task.
pub fn task_id(task: PortName) -> Result<u64, KernelError> {
    call(trap::TASK_ID, [task as u64, 0, 0, 0, 0, 0])
}
/// A thread's x87/SSE registers (FXSAVE layout, 512 bytes).
pub fn thread_get_fpu_state(thread: PortName) -> Result<[u8; 512], KernelError> {
    let mut state = [0u8; 512];
    call(trap::THREAD_GET_FPU_STATE, [thread as u64, state.as_mut_ptr() as u64, 0, 0, 0, 0])?;
    Ok(state)
}
/// Replace a thread's x87/SSE registers (MXCSR must be valid for the CPU).
pub fn thread_set_fpu_state(thread: PortName, state: &[u8; 512]) -> Result<(), KernelError> {
    call(trap::THREAD_SET_FPU_STATE, [thread as u64, state.as_ptr() as u64, 0, 0, 0, 0]).map(|_| ())
}

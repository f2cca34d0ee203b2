//! Checking trap arguments: port names, kernel objects named by ports (a task, a thread, the
//! host), page-aligned user ranges, protections, special-port indices. Each turns a raw
//! register into a typed value or an error code.
//!
//! It must never act: checks only, under the world lock for as long as a lookup takes.

use crate::memory::PAGE_SIZE;
use crate::memory::user::UserSlice;
use crate::world;
use crate::world::{HOST_OBJECT, TASK_OBJECT, TaskId};
use mach_abi::ipc::PortName;
use mach_abi::layout::USER_END;
use mach_abi::zerocopy::{FromBytes, Immutable, IntoBytes};
use mach_abi::{KernelError, VM_MAX_SIZE, protection};

/// A trap argument that must be a port name (32 bits).
pub fn name_arg(value: u64) -> Result<PortName, KernelError> {
    PortName::try_from(value).map_err(|_| KernelError::InvalidName)
}

/// The kernel object a send right in the caller's space names, if it has tag `kind`.
pub fn object_of(name: u64, kind: u64) -> Result<u64, KernelError> {
    let name = name_arg(name)?;
    world::with(|w| {
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

/// The thread a send right in the caller's space names (a thread port).
pub fn thread_of(name: u64) -> Result<world::ThreadId, KernelError> {
    object_of(name, world::THREAD_OBJECT)
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

/// Check that `range` is memory the calling task may read (or write), before a trap
/// changes anything it would have to undo.
pub fn check_caller_memory<T: FromBytes + IntoBytes + Immutable>(
    range: &UserSlice<T>,
    write: bool,
) -> Result<(), KernelError> {
    world::with_current_task(|t| range.check_in(&t.space, write)).ok_or(KernelError::InvalidArgument)?
}

pub fn protection_flags(prot: u64) -> Result<(bool, bool), KernelError> {
    if prot & !(protection::WRITE | protection::EXECUTE) != 0 {
        return Err(KernelError::InvalidArgument);
    }
    Ok((prot & protection::WRITE != 0, prot & protection::EXECUTE != 0))
}

pub fn special_index(which: u64) -> Result<usize, KernelError> {
    usize::try_from(which).ok().filter(|&i| i < 3).ok_or(KernelError::InvalidArgument)
}

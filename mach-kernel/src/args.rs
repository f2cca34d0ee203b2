//! Decoding trap arguments: each turns a raw register into a typed value (a port name, a
//! kernel object named by a port, a page-aligned user range, a protection, a disposition) or
//! an error code. The trap dispatcher (`trap.rs`) decodes every argument of a trap, objects
//! first, under the same hold of the world lock the trap then acts in, so no handler looks
//! up an object twice or takes the lock again for it.
//!
//! It must never act: checks only.

use crate::memory::PAGE_SIZE;
use crate::memory::user::UserSlice;
use crate::message::Message;
use crate::world::{HOST_OBJECT, TASK_OBJECT, THREAD_OBJECT, TRACE_OBJECT, TaskId, ThreadId, World};
use core::iter::StepBy;
use core::ops::Range;
use mach_abi::ipc::{PortName, disposition};
use mach_abi::layout::USER_END;
use mach_abi::zerocopy::{FromBytes, Immutable, IntoBytes};
use mach_abi::{KernelError, VM_MAX_SIZE, protection};
use mach_kernel::ipc::{NameSpace, PortTable};

/// A trap argument that must be a port name (32 bits).
pub fn name_arg(value: u64) -> Result<PortName, KernelError> {
    PortName::try_from(value).map_err(|_| KernelError::InvalidName)
}

/// A disposition (how a right is carried) other than `MOVE_RECEIVE`, for the traps that
/// hand a right to the kernel to keep (notification and interrupt ports).
pub fn kept_disposition_arg(value: u64) -> Result<u8, KernelError> {
    let how = u8::try_from(value).map_err(|_| KernelError::InvalidDisposition)?;
    if how == disposition::MOVE_RECEIVE {
        return Err(KernelError::InvalidDisposition);
    }
    Ok(how)
}

impl World {
    /// The kernel object a send right in the caller's name space names, if it has tag
    /// `kind` (*object* in docs/kernel.md).
    fn object_arg(&mut self, value: u64, kind: u64) -> Result<u64, KernelError> {
        let name = name_arg(value)?;
        let (task, ports) = self.current_task_and_ports().ok_or(KernelError::InvalidArgument)?;
        let id = task.names.send_port(name, ports)?;
        let object = ports.get(id).ok_or(KernelError::InvalidName)?.kernel_object;
        if object & kind == 0 {
            return Err(KernelError::InvalidRight);
        }
        Ok(object & !kind)
    }

    /// The task a task-port argument names.
    pub fn task_arg(&mut self, value: u64) -> Result<TaskId, KernelError> {
        self.object_arg(value, TASK_OBJECT)
    }

    /// The thread a thread-port argument names.
    pub fn thread_arg(&mut self, value: u64) -> Result<ThreadId, KernelError> {
        self.object_arg(value, THREAD_OBJECT)
    }

    /// Check that the argument names the host port (the privilege to use a host trap).
    pub fn host_arg(&mut self, value: u64) -> Result<(), KernelError> {
        self.object_arg(value, HOST_OBJECT).map(|_| ())
    }

    /// Check that the argument names the trace port or the host port (the right to trace).
    pub fn trace_arg(&mut self, value: u64) -> Result<(), KernelError> {
        self.object_arg(value, TRACE_OBJECT).or_else(|_| self.object_arg(value, HOST_OBJECT)).map(|_| ())
    }

    /// Check that `range` is memory the calling task may read (or write), before a trap
    /// changes anything it would have to undo.
    pub fn check_caller_memory<T: FromBytes + IntoBytes + Immutable>(
        &mut self,
        range: &UserSlice<T>,
        write: bool,
    ) -> Result<(), KernelError> {
        let (task, _) = self.current_task_and_ports().ok_or(KernelError::InvalidArgument)?;
        range.check_in(&task.space, write)
    }
}

/// Check a right the kernel is to keep and send messages through later (a special port, a
/// task-ended or notification port, an interrupt port), before it is copied in: a right to
/// a kernel object port (a task, thread or host port) is refused with `InvalidRight`. Such
/// a port takes no messages, and a task's own task port kept for it would keep the task
/// alive for ever, unreachable. Other mistakes are left to the copyin, which reports them.
pub fn kept_right_arg(
    names: &NameSpace,
    ports: &PortTable<Message>,
    name: PortName,
    how: u8,
) -> Result<(), KernelError> {
    let object = names.peek_copyin(name, how, ports).and_then(|id| ports.get(id)).map(|p| p.kernel_object);
    if object.is_some_and(|o| o != 0) {
        return Err(KernelError::InvalidRight);
    }
    Ok(())
}

/// A page-aligned, non-empty range of user space, at most `VM_MAX_SIZE` (*range* in
/// docs/kernel.md).
#[derive(Debug, Clone, Copy)]
pub struct UserRange {
    pub start: u64,
    pub end: u64,
}

impl UserRange {
    pub fn new(address: u64, size: u64) -> Result<Self, KernelError> {
        if size == 0
            || size > VM_MAX_SIZE
            || !address.is_multiple_of(PAGE_SIZE)
            || !size.is_multiple_of(PAGE_SIZE)
        {
            return Err(KernelError::InvalidArgument);
        }
        let end = address.checked_add(size).filter(|&e| e <= USER_END && address >= PAGE_SIZE);
        Ok(UserRange { start: address, end: end.ok_or(KernelError::InvalidAddress)? })
    }

    pub fn size(&self) -> u64 {
        self.end - self.start
    }

    /// The address of each page, in order.
    pub fn pages(&self) -> StepBy<Range<u64>> {
        (self.start..self.end).step_by(PAGE_SIZE as usize)
    }
}

/// `vm_*` protection bits: pages are always readable; writable and executable are asked for.
#[derive(Debug, Clone, Copy)]
pub struct Protection {
    pub writable: bool,
    pub executable: bool,
}

impl Protection {
    pub fn new(bits: u64) -> Result<Self, KernelError> {
        if bits & !(protection::WRITE | protection::EXECUTE) != 0 {
            return Err(KernelError::InvalidArgument);
        }
        Ok(Protection {
            writable: bits & protection::WRITE != 0,
            executable: bits & protection::EXECUTE != 0,
        })
    }
}

/// A special-port index (`mach_abi::special_port`).
pub fn special_index(which: u64) -> Result<usize, KernelError> {
    usize::try_from(which).ok().filter(|&i| i < 3).ok_or(KernelError::InvalidArgument)
}

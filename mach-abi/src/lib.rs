//! The binary interface between mach-kernel and user space: trap numbers, error codes and
//! the fixed addresses of a new task. The kernel and `libmach` both depend on this crate, so
//! each number is written once.
//!
//! Mach traps use negative numbers in `rax`; every number >= 0 is a foreign system call that
//! the kernel forwards to the task's syscall port (see docs/kernel.md).
//! This crate must never contain code that runs: only numbers and plain layouts. Every
//! layout that crosses the user boundary derives zerocopy's `FromBytes` and `IntoBytes`,
//! which refuse types with padding or invalid bit patterns at compile time: the kernel reads
//! and writes user memory only as such plain-bytes types.
#![no_std]

pub use zerocopy;
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

/// Trap numbers (`rax` for the `syscall` instruction). Arguments go in rdi, rsi, rdx, r10,
/// r8, r9; the result comes back in rax (>= 0 success, < 0 a [`KernelError`]).
pub mod trap {
    /// `debug_write(bytes: *const u8, len: usize) -> usize`: write text to the kernel log,
    /// prefixed with the task's name. At most [`super::DEBUG_WRITE_MAX`] bytes per call.
    pub const DEBUG_WRITE: i64 = -1;
    /// `task_exit(code: u64) -> !`: end the calling task (all its threads).
    pub const TASK_EXIT: i64 = -2;
    /// `mach_msg(buffer, options, receive_size, receive_name, timeout_ms) -> 0`: send and/or
    /// receive a message (see [`crate::ipc`]).
    pub const MACH_MSG: i64 = -3;
    /// `port_allocate() -> name`: a new port; the caller holds its receive right.
    pub const PORT_ALLOCATE: i64 = -4;
    /// `port_allocate_set() -> name`: a new, empty port set.
    pub const PORT_ALLOCATE_SET: i64 = -5;
    /// `port_deallocate(name)`: drop one reference of a send, send-once or dead-name right.
    pub const PORT_DEALLOCATE: i64 = -6;
    /// `port_destroy(name)`: destroy every right under the name; a receive right kills the
    /// port (its send rights elsewhere become dead names).
    pub const PORT_DESTROY: i64 = -7;
    /// `port_type(name) -> right_type bits`.
    pub const PORT_TYPE: i64 = -8;
    /// `port_move_member(member, set)`: put a receive right into a set (0 = out of any set).
    pub const PORT_MOVE_MEMBER: i64 = -9;
    /// `port_make_send(name) -> name`: add a send reference under a receive right's name.
    pub const PORT_MAKE_SEND: i64 = -10;
    /// `port_set_queue_limit(name, limit)`: messages queued before senders wait (1..=1024).
    pub const PORT_SET_QUEUE_LIMIT: i64 = -11;
    /// `task_self() -> name`: a send right to the caller's task port.
    pub const TASK_SELF: i64 = -12;
    /// `thread_create(task, rip, rsp, rdi, rsi) -> name`: a thread in the task named by a
    /// task port, entering user mode at rip with rsp and the two argument registers; returns
    /// a send right to the new thread's port.
    pub const THREAD_CREATE: i64 = -13;
    /// `thread_exit() -> !`: end the calling thread (the task ends with its last thread).
    pub const THREAD_EXIT: i64 = -14;
    /// `task_create() -> name`: a new task with an empty address space and name space; the
    /// caller gets a send right to its task port.
    pub const TASK_CREATE: i64 = -16;
    /// `task_terminate(task)`: end every thread of the task; its memory and rights are freed.
    pub const TASK_TERMINATE: i64 = -17;
    /// `vm_allocate(task, address, size, protection) -> address`: map zeroed pages (address
    /// 0 = anywhere). Page-aligned address and size; existing mappings are not replaced.
    pub const VM_ALLOCATE: i64 = -18;
    /// `vm_deallocate(task, address, size)`: unmap pages (unmapped ones are skipped).
    pub const VM_DEALLOCATE: i64 = -19;
    /// `vm_protect(task, address, size, protection)`: change the protection of mapped pages.
    pub const VM_PROTECT: i64 = -20;
    /// `vm_write(task, address, source, len)`: copy from the caller's memory into the task's.
    pub const VM_WRITE: i64 = -21;
    /// `vm_read(task, address, destination, len)`: copy from the task's memory into the
    /// caller's.
    pub const VM_READ: i64 = -22;
    /// `task_set_special_port(task, which, name)`: give the task a copy of a send right the
    /// caller holds as its syscall, exception or bootstrap port (name 0 clears it).
    pub const TASK_SET_SPECIAL_PORT: i64 = -23;
    /// `task_get_special_port(task, which) -> name`: a copy of that send right (0 if none).
    pub const TASK_GET_SPECIAL_PORT: i64 = -24;
    /// `host_module_info(host, index, info: *mut ModuleInfo)`: describe boot module `index`.
    pub const HOST_MODULE_INFO: i64 = -25;
    /// `host_module_map(host, index, address)`: map boot module `index` read-only into the
    /// caller at the page-aligned `address`.
    pub const HOST_MODULE_MAP: i64 = -26;
    /// `task_notify_ended(task, port, disposition)`: when the task ends, the kernel sends a
    /// message with id [`super::TASK_ENDED_MESSAGE`] (data: the task id, 8 bytes) to the port,
    /// through the send or send-once right given (MAKE_SEND_ONCE, MOVE_SEND_ONCE, COPY_SEND,
    /// MAKE_SEND, MOVE_SEND).
    pub const TASK_NOTIFY_ENDED: i64 = -27;
    /// `task_set_name(task, text, len)`: the name the kernel log and traces show (<= 32 bytes).
    pub const TASK_SET_NAME: i64 = -28;
    /// `port_request_notification(name, kind, notify_port, disposition)`: ask for a message on
    /// `notify_port` (carried as `disposition`, usually MAKE_SEND_ONCE) when the right under
    /// `name` meets `kind` (see [`crate::notify`]).
    pub const PORT_REQUEST_NOTIFICATION: i64 = -29;
    /// `host_io_ports(host, task, first, count)`: let the task use I/O ports
    /// `[first, first + count)` (its I/O permission bitmap).
    pub const HOST_IO_PORTS: i64 = -30;
    /// `host_map_physical(host, task, physical, address, size)`: map a device range (outside
    /// RAM) uncached, read-write, at `address` in the task.
    pub const HOST_MAP_PHYSICAL: i64 = -31;
    /// `host_dma_allocate(host, task, size, out: *mut [u64; 2])`: physically contiguous zeroed
    /// memory in the task; writes (address in the task, physical address).
    pub const HOST_DMA_ALLOCATE: i64 = -32;
    /// `host_irq_register(host, irq, port, disposition)`: interrupt line `irq` (not 0 or 2)
    /// becomes messages with id [`super::IRQ_MESSAGE`] on `port` (0 stops).
    pub const HOST_IRQ_REGISTER: i64 = -33;
    /// `host_irq_ack(host, irq)`: unmask the line after handling its interrupt.
    pub const HOST_IRQ_ACK: i64 = -34;
    /// `host_trace_task(host, task, on)`: start (1) or stop (0) tracing the foreign system
    /// calls of a task: each gets a new trace context that follows its messages.
    pub const HOST_TRACE_TASK: i64 = -35;
    /// `host_trace_read(host, from, buffer: *mut TraceRecord, max) -> count`: copy the trace
    /// records with sequence numbers >= `from` (oldest first; older ones may be overwritten).
    pub const HOST_TRACE_READ: i64 = -36;
    /// `thread_get_state(thread, out: *mut forward::Registers)`: a thread's user registers.
    pub const THREAD_GET_STATE: i64 = -37;
    /// `thread_set_state(thread, registers: *const forward::Registers)`: replace them (not
    /// for the calling thread; rip and rsp must be user addresses).
    pub const THREAD_SET_STATE: i64 = -38;
    /// `task_suspend(task)`: its threads stop running until as many `task_resume`s.
    pub const TASK_SUSPEND: i64 = -39;
    /// `task_resume(task)`: undo one `task_suspend`.
    pub const TASK_RESUME: i64 = -40;
    /// `task_create_copy(parent) -> name`: a new task whose memory is a copy-on-write copy of
    /// the parent's (no threads, no rights); a send right to its port. For fork.
    pub const TASK_CREATE_COPY: i64 = -41;
    /// `thread_set_priority(thread, priority) -> previous priority`: 0 ..= [`super::MAX_PRIORITY`];
    /// higher runs first. A ready thread moves to the back of its new level; the caller
    /// gives way at once when it made another thread outrank itself.
    pub const THREAD_SET_PRIORITY: i64 = -42;
    /// `thread_self() -> name`: a send right to the calling thread's port.
    pub const THREAD_SELF: i64 = -43;
    /// `vm_map(task, address, size, source_task, source_address, protection) -> address`:
    /// map the source task's pages into the task at `address` (0 = anywhere), shared: each
    /// sees the other's writes, also after either is copied by `task_create_copy`.
    pub const VM_MAP: i64 = -44;
    /// `sleep(ms)`: block the calling thread for at least `ms` milliseconds; `sleep(0)`
    /// yields to other ready threads of the same or higher priority.
    pub const SLEEP: i64 = -15;
    /// `clock_read(clock) -> nanoseconds`: since boot (`clock::MONOTONIC`, the timer's
    /// resolution) or since 1970 (`clock::REALTIME`: the CMOS clock at boot plus the time
    /// since).
    pub const CLOCK_READ: i64 = -45;
    /// `thread_terminate(thread)`: end the thread (any thread whose port the caller holds;
    /// its own too). A forwarded call it waits in is abandoned: the reply right dies.
    pub const THREAD_TERMINATE: i64 = -46;
    /// `thread_id(thread) -> id`: the number forwarded requests carry in `thread` for it
    /// (how a personality tells a new thread's calls from the others').
    pub const THREAD_ID: i64 = -47;
    /// `task_id(task) -> id`: the number the kernel log, trace records and forwarded
    /// requests (`SyscallRequest::task`) use for the task.
    pub const TASK_ID: i64 = -48;
    /// `thread_get_fpu_state(thread, out: *mut [u8; 512])`: the thread's x87/SSE registers in
    /// the FXSAVE layout (for fork and signal frames).
    pub const THREAD_GET_FPU_STATE: i64 = -49;
    /// `thread_set_fpu_state(thread, state: *const [u8; 512])`: replace them; MXCSR must have
    /// no bit outside the CPU's MXCSR mask.
    pub const THREAD_SET_FPU_STATE: i64 = -50;
    /// `host_trace_port(host) -> name`: a send right to the trace port, which
    /// `host_trace_task`, `host_trace_read` and `trace_task_name` take in place of the host
    /// port: the right to trace, without the host's other privileges.
    pub const HOST_TRACE_PORT: i64 = -51;
    /// `trace_task_name(trace, task_id, out, size) -> length`: a live task's name by the id
    /// trace records carry.
    pub const TRACE_TASK_NAME: i64 = -52;
}

/// The clocks `clock_read` reads.
pub mod clock {
    pub const MONOTONIC: u64 = 0;
    pub const REALTIME: u64 = 1;
}

pub mod ipc;

/// Notification kinds and the ids of the messages they send. Data: the requester's name
/// for the right (u32, little endian); a port-destroyed message also carries the receive
/// right as its port descriptor 0.
pub mod notify {
    /// On a send or send-once name: its port died.
    pub const DEAD_NAME: u64 = 1;
    /// On a receive right: the last send right to the port went away.
    pub const NO_SENDERS: u64 = 2;
    /// On a receive right: when it would be destroyed, the port lives on and the receive right
    /// is sent in the notification instead.
    pub const PORT_DESTROYED: u64 = 3;
    pub const DEAD_NAME_MESSAGE: u32 = 0x4d_0010;
    pub const NO_SENDERS_MESSAGE: u32 = 0x4d_0011;
    pub const PORT_DESTROYED_MESSAGE: u32 = 0x4d_0012;
    /// Sent, without asking, through a send-once right that was destroyed unused (its holder
    /// ended or released it): the reply it stood for will never come. No data.
    pub const SEND_ONCE_MESSAGE: u32 = 0x4d_0013;
}

/// Trace records: one per hop of a traced request.
pub mod trace {
    use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

    /// A thread made a foreign system call (msg_id: the call number).
    pub const TRAP: u8 = 1;
    /// A message was queued on a port.
    pub const SEND: u8 = 2;
    /// A message was taken by a receiver.
    pub const RECEIVE: u8 = 3;
    /// A reply (a message sent with a send-once right) was sent.
    pub const REPLY: u8 = 4;
    /// A thread came back from its foreign system call (size: the result).
    pub const RESUME: u8 = 5;
    /// An interrupt message reached a driver thread carrying a traced request (the request
    /// waited for the device).
    pub const IRQ: u8 = 6;

    /// Records the kernel keeps (a ring: the oldest are overwritten).
    pub const RING_SIZE: usize = 4096;

    #[repr(C)]
    #[derive(Debug, Clone, Copy, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout)]
    pub struct TraceRecord {
        /// Sequence number, from 1.
        pub sequence: u64,
        /// Time stamp counter (guest instructions under `-icount shift=0`).
        pub tsc: u64,
        /// The task's id (as `task_id` answers: never reused while tracing reads it).
        pub task: u64,
        /// Message bytes (header, descriptors, data); the result for RESUME; the call's first
        /// argument for TRAP.
        pub size: u64,
        /// The trace context (request) this hop belongs to.
        pub trace: u32,
        pub thread: u32,
        /// Kernel port id (stable while the port lives); for TRAP the entry
        /// (`forward::entry`: 0 `syscall`, 0x40 `int $64`); 0 for RESUME.
        pub port: u32,
        pub msg_id: u32,
        pub kind: u8,
        /// How many bytes of `data` hold the start of the message's inline data.
        pub data_len: u8,
        /// SEND and REPLY: port rights the message carried (at most 255 counted).
        pub rights: u8,
        /// SEND and REPLY: out-of-line memory regions the message carried (at most 255).
        pub regions: u8,
        pub reserved: [u8; 4],
        /// The start of the message's inline data (for a trace to decode the request).
        pub data: [u8; TRACE_DATA],
    }

    /// Bytes of a message's inline data a trace record keeps.
    pub const TRACE_DATA: usize = 32;
}

/// Indices of a task's special ports.
pub mod special_port {
    /// Foreign system calls of the task's threads become messages here.
    pub const SYSCALL: u64 = 0;
    /// Faults of the task's threads become messages here.
    pub const EXCEPTION: u64 = 1;
    /// The name service the task was started with.
    pub const BOOTSTRAP: u64 = 2;
}

/// `vm_*` protection bits (pages are always readable by the task).
pub mod protection {
    pub const WRITE: u64 = 1;
    pub const EXECUTE: u64 = 2;
}

/// Thread priorities: 0 ..= MAX_PRIORITY, higher runs first; equal ones take turns.
pub const MAX_PRIORITY: u64 = 31;
/// The priority of a new thread.
pub const DEFAULT_PRIORITY: u64 = 16;

/// Most bytes one `vm_allocate`, `vm_write` or `vm_read` handles.
pub const VM_MAX_SIZE: u64 = 1 << 30;

/// Most kernel memory one task can make the kernel hold for it at a time: the messages it
/// sent that are still queued (inline data and out-of-line copies) and the names in its name
/// space (each costing [`HELD_PER_NAME`]). A send or a new port past it is `NoMemory`.
pub const TASK_HELD_LIMIT: u64 = 128 << 20;

/// What one name in a task's name space counts against [`TASK_HELD_LIMIT`]: the port and
/// name-space entry the kernel keeps for it, rounded up.
pub const HELD_PER_NAME: u64 = 256;

/// The message id of an interrupt message (data: the line number, 1 byte). The line stays
/// masked until `host_irq_ack`.
pub const IRQ_MESSAGE: u32 = 0x4d_0020;

/// The message id of a task-ended notification.
pub const TASK_ENDED_MESSAGE: u32 = 0x4d_0001;

/// What `host_module_info` writes.
#[repr(C)]
#[derive(Debug, Clone, Copy, FromBytes, IntoBytes, Immutable, KnownLayout)]
pub struct ModuleInfo {
    /// Bytes of the module.
    pub size: u64,
    pub path_len: u32,
    pub cmdline_len: u32,
    pub path: [u8; 64],
    pub cmdline: [u8; 192],
}

impl Default for ModuleInfo {
    fn default() -> Self {
        ModuleInfo { size: 0, path_len: 0, cmdline_len: 0, path: [0; 64], cmdline: [0; 192] }
    }
}

/// Most bytes one `debug_write` prints; longer writes are refused with `InvalidArgument`.
pub const DEBUG_WRITE_MAX: usize = 4096;

/// Error codes, returned negated in rax.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(i64)]
pub enum KernelError {
    /// The trap number is not a Mach trap this kernel knows.
    InvalidTrap = 1,
    /// A pointer argument does not name mapped user memory with the needed access.
    InvalidAddress = 2,
    /// An argument is out of range.
    InvalidArgument = 3,
    /// Reserved. (A foreign system call by a task that has no syscall port is answered
    /// -ENOSYS (-38) by the kernel, as Linux would answer an unknown call: docs/kernel.md.)
    NoSyscallPort = 4,
    /// The kernel ran out of memory for the request.
    NoMemory = 5,
    /// The name denotes no right in the caller's name space.
    InvalidName = 6,
    /// The name denotes a right, but not the one the operation needs.
    InvalidRight = 7,
    /// The operation's timeout expired (a timeout of 0 polls).
    TimedOut = 8,
    /// The receive buffer is too small for the next message; it stays queued.
    TooLarge = 9,
    /// The destination port (or the port waited on) was destroyed.
    PortDead = 10,
    /// A message disposition or option is not valid here.
    InvalidDisposition = 11,
}

impl KernelError {
    pub const fn as_return(self) -> i64 {
        -(self as i64)
    }

    pub const fn from_return(value: i64) -> Option<Self> {
        Some(match value {
            -1 => KernelError::InvalidTrap,
            -2 => KernelError::InvalidAddress,
            -3 => KernelError::InvalidArgument,
            -4 => KernelError::NoSyscallPort,
            -5 => KernelError::NoMemory,
            -6 => KernelError::InvalidName,
            -7 => KernelError::InvalidRight,
            -8 => KernelError::TimedOut,
            -9 => KernelError::TooLarge,
            -10 => KernelError::PortDead,
            -11 => KernelError::InvalidDisposition,
            _ => return None,
        })
    }
}

/// User address space layout of a task the kernel starts (the first task).
pub mod layout {
    /// First address above user space (the canonical lower half ends here).
    pub const USER_END: u64 = 0x0000_8000_0000_0000;
    /// Top of the first thread's stack; the stack grows down from here.
    pub const USER_STACK_TOP: u64 = 0x0000_7fff_ffff_0000;
    /// Size of the first thread's stack (the fuzz harness needs more than 64 KiB).
    pub const USER_STACK_SIZE: u64 = 128 * 1024;
}

/// Codes the kernel writes to QEMU's isa-debug-exit port (QEMU exits with `code * 2 + 1`).
pub mod qemu_exit {
    /// The kernel halted cleanly (no task left to run). QEMU exit status 33.
    pub const HALTED: u8 = 0x10;
    /// Kernel panic, kernel exception, or boot failure. QEMU exit status 35.
    pub const FAILURE: u8 = 0x11;
    /// The QEMU exit status that `HALTED` produces.
    pub const HALTED_STATUS: i32 = HALTED as i32 * 2 + 1;
    /// The QEMU exit status that `FAILURE` produces.
    pub const FAILURE_STATUS: i32 = FAILURE as i32 * 2 + 1;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_round_trip() {
        for e in [
            KernelError::InvalidTrap,
            KernelError::InvalidAddress,
            KernelError::InvalidArgument,
            KernelError::NoSyscallPort,
            KernelError::NoMemory,
            KernelError::InvalidName,
            KernelError::InvalidRight,
            KernelError::TimedOut,
            KernelError::TooLarge,
            KernelError::PortDead,
            KernelError::InvalidDisposition,
        ] {
            assert!(e.as_return() < 0);
            assert_eq!(KernelError::from_return(e.as_return()), Some(e));
        }
        assert_eq!(KernelError::from_return(0), None);
    }
}

/// The messages the kernel sends for a thread (foreign system calls and faults) and the
/// replies it expects. The request's `remote` is a send-once right to the thread's kernel
/// reply port; answering with `MOVE_SEND_ONCE` to it resumes the thread.
pub mod forward {
    use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

    /// A foreign system call: data is a [`SyscallRequest`].
    pub const SYSCALL_MESSAGE: u32 = 0x4d_0002;
    /// A user fault: data is an [`ExceptionRequest`].
    pub const EXCEPTION_MESSAGE: u32 = 0x4d_0003;

    /// The user registers of a thread.
    #[repr(C)]
    #[derive(Debug, Clone, Copy, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout)]
    pub struct Registers {
        pub rax: u64,
        pub rbx: u64,
        pub rcx: u64,
        pub rdx: u64,
        pub rsi: u64,
        pub rdi: u64,
        pub rbp: u64,
        pub rsp: u64,
        pub r8: u64,
        pub r9: u64,
        pub r10: u64,
        pub r11: u64,
        pub r12: u64,
        pub r13: u64,
        pub r14: u64,
        pub r15: u64,
        pub rip: u64,
        pub rflags: u64,
        pub fs_base: u64,
    }

    #[repr(C)]
    #[derive(Debug, Clone, Copy, Default, FromBytes, IntoBytes, Immutable, KnownLayout)]
    pub struct SyscallRequest {
        /// The system call number (rax).
        pub number: u64,
        /// rdi, rsi, rdx, r10, r8, r9.
        pub args: [u64; 6],
        pub task: u64,
        pub thread: u64,
        pub registers: Registers,
        /// How the call entered the kernel: [`entry::SYSCALL`] or [`entry::INT_0X40`]. A
        /// personality answers only the way its programs call (Linux's `syscall`, xv6's
        /// `int $64`); the other is the program's mistake.
        pub entry: u64,
    }

    /// How a foreign system call entered the kernel (`SyscallRequest::entry`).
    pub mod entry {
        /// The `syscall` instruction (the Linux x86-64 ABI).
        pub const SYSCALL: u64 = 0;
        /// `int $64`, vector 0x40 (xv6's system-call trap): rax is the number, rdi, rsi,
        /// rdx, r10, r8, r9 the arguments, as for `syscall`.
        pub const INT_0X40: u64 = 0x40;
    }

    /// Reply flags.
    pub mod reply_flags {
        /// Write the bytes after the [`super::SyscallReply`] to `copy_to` in the caller.
        pub const COPY_OUT: u64 = 1;
        /// Replace the thread's registers with `registers` (rax still comes from `result`).
        pub const SET_REGISTERS: u64 = 2;
        /// Set only the FS base (arch_prctl).
        pub const SET_FS_BASE: u64 = 4;
    }

    #[repr(C)]
    #[derive(Debug, Clone, Copy, Default, FromBytes, IntoBytes, Immutable, KnownLayout)]
    pub struct SyscallReply {
        /// The value for rax.
        pub result: i64,
        pub flags: u64,
        pub copy_to: u64,
        pub registers: Registers,
    }

    #[repr(C)]
    #[derive(Debug, Clone, Copy, Default, FromBytes, IntoBytes, Immutable, KnownLayout)]
    pub struct ExceptionRequest {
        pub vector: u64,
        pub error_code: u64,
        /// cr2 for a page fault, else 0.
        pub fault_address: u64,
        pub task: u64,
        pub thread: u64,
        pub registers: Registers,
    }

    /// What to do with a faulted thread.
    pub mod action {
        /// Resume it (with new registers when SET_REGISTERS is in `flags`).
        pub const RESUME: u64 = 0;
        /// End its task.
        pub const TERMINATE: u64 = 1;
    }

    #[repr(C)]
    #[derive(Debug, Clone, Copy, Default, FromBytes, IntoBytes, Immutable, KnownLayout)]
    pub struct ExceptionReply {
        pub action: u64,
        pub flags: u64,
        pub registers: Registers,
    }
}

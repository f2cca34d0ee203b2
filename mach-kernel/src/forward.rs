//! Forwarding a thread's foreign system calls and faults as messages, and applying the
//! replies: what makes a personality (syscalls) and a debugger or pager (exceptions).
//!
//! The kernel sends the request to the task's syscall or exception port with a send-once
//! right to the thread's kernel reply port as the reply right, and blocks the thread. The
//! answer, sent with that right, never queues: `deliver_reply` applies it to the blocked
//! thread (rax, registers, FS base, bytes to copy into the caller) and wakes it. If the
//! reply right is destroyed unanswered, a system call fails with -ENOSYS and a fault ends
//! the task.

use crate::arch::trap_frame::{RFLAGS_IF, TrapFrame};
use crate::memory::user::UserSlice;
use crate::message::Message;
use crate::sched::{self, Wake};
use crate::task_traps::special_port_of;
use crate::trap::SyscallArgs;
use crate::world;
use crate::world::{Pending, ThreadId, World};
use alloc::vec::Vec;
use mach_abi::forward::{
    EXCEPTION_MESSAGE, ExceptionReply, ExceptionRequest, Registers, SYSCALL_MESSAGE, SyscallReply,
    SyscallRequest, action, reply_flags,
};
use mach_abi::layout::USER_END;
use mach_abi::zerocopy::{FromBytes, IntoBytes};
use mach_abi::{KernelError, special_port};

/// Linux's ENOSYS and EFAULT, for the answers the kernel gives on a personality's behalf.
pub const ENOSYS: i64 = 38;
const EFAULT: i64 = 14;

/// A thread's user registers as forwarded messages and `thread_get_state` carry them.
pub fn registers_of(frame: &TrapFrame, fs_base: u64) -> Registers {
    Registers {
        rax: frame.rax,
        rbx: frame.rbx,
        rcx: frame.rcx,
        rdx: frame.rdx,
        rsi: frame.rsi,
        rdi: frame.rdi,
        rbp: frame.rbp,
        rsp: frame.rsp,
        r8: frame.r8,
        r9: frame.r9,
        r10: frame.r10,
        r11: frame.r11,
        r12: frame.r12,
        r13: frame.r13,
        r14: frame.r14,
        r15: frame.r15,
        rip: frame.rip,
        rflags: frame.rflags,
        fs_base,
    }
}

/// Registers a user supplied (`thread_set_state`, a reply's `SET_REGISTERS`), checked: rip,
/// rsp and the FS base are user addresses (canonical, below the kernel half), so loading them
/// can never fault in the kernel (`wrmsr` of a non-canonical FS base is a #GP; so is an
/// `iretq` to a non-canonical rip).
#[derive(Clone, Copy)]
pub struct UserRegisters(Registers);

impl UserRegisters {
    pub fn check(r: &Registers) -> Result<Self, KernelError> {
        if r.rip >= USER_END || r.rsp >= USER_END || r.fs_base >= USER_END {
            return Err(KernelError::InvalidAddress);
        }
        Ok(UserRegisters(*r))
    }

    pub fn fs_base(&self) -> u64 {
        self.0.fs_base
    }

    /// Load them into a saved frame; rflags keeps only the arithmetic flags, TF and DF
    /// (interrupts stay on, IOPL 0, no NT).
    pub fn apply(&self, frame: &mut TrapFrame) {
        const USER_FLAGS: u64 = 0x0cd5; // CF PF AF ZF SF TF DF OF
        let r = &self.0;
        *frame = TrapFrame {
            rax: r.rax,
            rbx: r.rbx,
            rcx: r.rcx,
            rdx: r.rdx,
            rsi: r.rsi,
            rdi: r.rdi,
            rbp: r.rbp,
            rsp: r.rsp,
            r8: r.r8,
            r9: r.r9,
            r10: r.r10,
            r11: r.r11,
            r12: r.r12,
            r13: r.r13,
            r14: r.r14,
            r15: r.r15,
            rip: r.rip,
            rflags: (r.rflags & USER_FLAGS) | RFLAGS_IF | 0x2,
            // Returning by IRETQ: the frame no longer matches a plain SYSCALL return.
            vector: 0,
            ..*frame
        };
    }
}

/// Send `data` as message `id` to `task`'s special port `which` on behalf of the current
/// thread and block until the reply is applied. None if the task has no such port.
fn forward(which: u64, id: u32, kind: Pending, data: Vec<u8>, trace: u32) -> Option<Wake> {
    let reply_port = world::with(|w| {
        let thread = w.current_thread();
        let task = w.current_task_id()?;
        let port = special_port_of(w, task, which)?;
        let destination = w.ports.make_send(port.port)?;
        let mut events = Vec::new();
        let Some(reply) = w.reply_right_for(thread) else {
            w.ports.release(destination, &mut events);
            w.handle_events(&mut events);
            return None;
        };
        let message = Message { trace, ..Message::from_kernel(id, data, Some(reply), Vec::new()) };
        let size = message.size() as u64;
        let task = w.current_task_id().unwrap_or(0);
        crate::trace::record(trace, mach_abi::trace::SEND, task, thread, destination.port, id, size);
        w.set_thread_pending(thread, kind);
        crate::message::enqueue_from_kernel(w, destination, message, &mut events);
        w.handle_events(&mut events);
        Some(reply.port)
    })?;
    let wake = sched::block_current(Some(reply_port), None);
    world::with(|w| {
        let thread = w.current_thread();
        w.set_thread_pending(thread, Pending::None);
    });
    Some(wake)
}

/// A foreign system call from the current thread, entered by `entry` (`syscall` or
/// `int $64`): forward it and return the value for rax. Without a syscall port, -ENOSYS
/// (logged once per task).
pub fn syscall(call: SyscallArgs, entry: u64) -> u64 {
    let (task, thread, traced, carried, registers) = world::with(|w| {
        let thread = w.current_thread();
        let task = w.current_task_id().and_then(|t| w.tasks.get(t));
        let (id, traced) = task.map_or((0, false), |t| (t.id, t.traced));
        let fs_base = w.fs_base(thread);
        let registers = w.with_user_frame(thread, |f| registers_of(f, fs_base));
        (id, thread, traced, w.thread_trace(thread), registers)
    });
    let Some(registers) = registers else { return ENOSYS.wrapping_neg() as u64 };
    // A traced task's system call starts a request; a server thread keeps the one it carries.
    let trace = if traced { crate::trace::new_context() } else { carried };
    // A trap record keeps the first argument (a descriptor, a pid) in `size`, and the entry
    // (0 for `syscall`, 0x40 for `int $64`) in `port`, for `trace`.
    crate::trace::record(
        trace,
        mach_abi::trace::TRAP,
        task,
        thread,
        entry as u32,
        call.number as u32,
        call.args[0],
    );
    let request = SyscallRequest { number: call.number, args: call.args, task, thread, registers, entry };
    let result = forward_syscall(&request, trace);
    crate::trace::record(trace, mach_abi::trace::RESUME, task, thread, 0, request.number as u32, result);
    result
}

/// Forward a system call and wait for the answer: the value for rax.
fn forward_syscall(request: &SyscallRequest, trace: u32) -> u64 {
    let forwarded =
        forward(special_port::SYSCALL, SYSCALL_MESSAGE, Pending::Syscall, request.as_bytes().to_vec(), trace);
    // A syscall port whose receiver is gone (its personality ended, nothing can ever answer):
    // the task ends, as a fault with no handler does. (With no syscall port at all, -ENOSYS.)
    if !matches!(forwarded, Some(Wake::Retry)) && personality_gone() {
        world::with_current_task(|t| {
            crate::kprintln!(
                "task {} ({}): its syscall port is dead (its personality ended): ending it",
                t.id,
                t.name
            )
        });
        sched::exit_current_task();
    }
    match forwarded {
        None => {
            world::with_current_task(|t| {
                if !t.warned_no_syscall_port {
                    t.warned_no_syscall_port = true;
                    crate::kprintln!(
                        "task {} ({}) made system call {} but has no syscall port: -ENOSYS",
                        t.id,
                        t.name,
                        request.number
                    );
                }
            });
            ENOSYS.wrapping_neg() as u64
        }
        // The reply was applied to this thread's saved frame (rax included) by `apply_reply`.
        Some(Wake::Retry) => world::with(|w| w.with_user_frame(w.current_thread(), |f| f.rax).unwrap_or(0)),
        Some(_) => ENOSYS.wrapping_neg() as u64,
    }
}

/// Whether the current task has a syscall port whose receive right is gone.
fn personality_gone() -> bool {
    world::with(|w| {
        let task = w.current_task_id()?;
        let port = special_port_of(w, task, special_port::SYSCALL)?;
        Some(w.ports.get(port.port).is_none_or(|p| p.is_dead()))
    })
    .unwrap_or(false)
}

/// A user fault of the current thread: forward it to the exception port. Returns true when
/// the handler resumed the thread (its saved registers may have changed); false when there
/// is no handler or the handler gave up (the caller then ends the task).
pub fn exception(frame: &TrapFrame, fault_address: u64) -> bool {
    let (task, thread, fs_base) = world::with(|w| {
        let thread = w.current_thread();
        (w.current_task_id().unwrap_or(0), thread, w.fs_base(thread))
    });
    let request = ExceptionRequest {
        vector: frame.vector,
        error_code: frame.error_code,
        fault_address,
        task,
        thread,
        registers: registers_of(frame, fs_base),
    };
    matches!(
        forward(
            special_port::EXCEPTION,
            EXCEPTION_MESSAGE,
            Pending::Exception,
            request.as_bytes().to_vec(),
            0
        ),
        Some(Wake::Retry)
    )
}

/// The registers a reply asks to load (`SET_REGISTERS` in `flags`), checked; None if it asks
/// for none.
fn requested_registers(flags: u64, registers: &Registers) -> Result<Option<UserRegisters>, KernelError> {
    (flags & reply_flags::SET_REGISTERS != 0).then(|| UserRegisters::check(registers)).transpose()
}

/// A reply to a forwarded call or fault, decoded and checked in full before anything is
/// used up or changed (`ForwardedReply::decode`), then applied (`apply`), which cannot fail.
pub enum ForwardedReply<'a> {
    Syscall {
        result: i64,
        /// Bytes for the caller's memory, and where; checked writable, or `result` is
        /// already -EFAULT and nothing is copied.
        copy_out: Option<(u64, &'a [u8])>,
        fs_base: Option<u64>,
        registers: Option<UserRegisters>,
    },
    Exception {
        terminate: bool,
        registers: Option<UserRegisters>,
    },
}

impl<'a> ForwardedReply<'a> {
    /// Decode `data`, the inline data of a reply to `thread`'s forwarded request. A reply to
    /// a thread that waits for none, too short, or with registers or an FS base that are not
    /// user addresses is refused (`InvalidRight`, `InvalidArgument`, `InvalidAddress`).
    pub fn decode(w: &World, thread: ThreadId, data: &'a [u8]) -> Result<Self, KernelError> {
        match w.thread_pending(thread).unwrap_or(Pending::None) {
            Pending::None => Err(KernelError::InvalidRight),
            Pending::Syscall => {
                let (reply, _) =
                    SyscallReply::read_from_prefix(data).map_err(|_| KernelError::InvalidArgument)?;
                let registers = requested_registers(reply.flags, &reply.registers)?;
                let fs_base = if reply.flags & reply_flags::SET_FS_BASE != 0 {
                    if reply.registers.fs_base >= USER_END {
                        return Err(KernelError::InvalidAddress);
                    }
                    Some(reply.registers.fs_base)
                } else {
                    registers.map(|r| r.fs_base())
                };
                let mut result = reply.result;
                let mut copy_out = None;
                if reply.flags & reply_flags::COPY_OUT != 0 {
                    let extra = data.get(core::mem::size_of::<SyscallReply>()..).unwrap_or(&[]);
                    let writable = w.thread_task(thread).and_then(|t| w.tasks.get(t)).is_some_and(|t| {
                        UserSlice::<u8>::new(reply.copy_to, extra.len())
                            .and_then(|s| s.check_in(&t.space, true))
                            .is_ok()
                    });
                    if writable {
                        copy_out = Some((reply.copy_to, extra));
                    } else {
                        result = -EFAULT;
                    }
                }
                Ok(ForwardedReply::Syscall { result, copy_out, fs_base, registers })
            }
            Pending::Exception => {
                let (reply, _) =
                    ExceptionReply::read_from_prefix(data).map_err(|_| KernelError::InvalidArgument)?;
                let registers = requested_registers(reply.flags, &reply.registers)?;
                Ok(ForwardedReply::Exception { terminate: reply.action == action::TERMINATE, registers })
            }
        }
    }

    /// Apply the checked reply to the blocked `thread` and wake it (or end its task).
    pub fn apply(self, w: &mut World, thread: ThreadId) {
        match self {
            ForwardedReply::Syscall { result, copy_out, fs_base, registers } => {
                if let Some((to, bytes)) = copy_out
                    && let Some(task) = w.thread_task(thread).and_then(|t| w.tasks.get(t))
                {
                    // Checked writable by `decode`, under the same lock: this cannot fail.
                    let _ = UserSlice::new(to, bytes.len()).and_then(|s| s.write_in(&task.space, bytes));
                }
                w.update_user_frame(thread, |frame| {
                    if let Some(registers) = registers {
                        registers.apply(frame);
                    }
                    frame.rax = result as u64;
                });
                if let Some(fs_base) = fs_base {
                    w.set_fs_base(thread, fs_base);
                }
            }
            ForwardedReply::Exception { terminate: true, .. } => {
                if let Some(task) = w.thread_task(thread) {
                    world::kill_task_threads(w, task);
                }
                return;
            }
            ForwardedReply::Exception { terminate: false, registers } => {
                if let Some(registers) = registers {
                    w.update_user_frame(thread, |frame| registers.apply(frame));
                    w.set_fs_base(thread, registers.fs_base());
                }
            }
        }
        w.wake(thread, Wake::Retry);
    }
}

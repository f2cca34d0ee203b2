//! Signals between processes: posting one (kill, tgkill, the terminal's ^C, a child's end,
//! a broken pipe), acting on it (terminate, stop, continue), and running a handler. A handler
//! runs when the process is next answered: the answer to its call (or to the call it was
//! waiting in, interrupted with EINTR or set to restart) goes into a Linux signal frame on
//! its stack, and the reply's registers start the handler; rt_sigreturn brings the frame's
//! registers back. The calls rt_sigaction, rt_sigprocmask, rt_sigreturn, sigaltstack,
//! rt_sigsuspend, pause, kill, tkill and tgkill are here; the rules are `signal.rs`.
//!
//! It must never run a handler in the middle of the personality's own work on a process, and
//! never trust a frame: rt_sigreturn takes registers and a mask only, which the kernel checks.
//! A process that runs without making calls gets its handler at its next call (a default
//! action, such as ending it, is taken at once).

use crate::process::{Caller, Personality};
use crate::syscalls::{Answer, error};
use libmach::ipc::PortName;
use libmach::task::{
    task_resume, task_suspend, thread_get_fpu_state, thread_set_fpu_state, vm_read, vm_write,
};
use mach_abi::forward::SyscallRequest;
use personality_unix::linux::{errno::*, nr, signal::*};
use personality_unix::signal::{
    Action, AltStack, Posted, SIGINFO_AT, SS_DISABLE, SS_ONSTACK, SignalInfo, UCONTEXT_AT, build_frame,
    flags, read_frame,
};

/// si_code of a signal sent by kill.
const SI_USER: i32 = 0;
/// Linux's smallest alternate stack.
const MIN_SIGNAL_STACK: u64 = 2048;

/// Serve `call` if it is one of the signal calls; None otherwise.
pub fn dispatch(unix: &mut Personality, port: PortName, call: &SyscallRequest) -> Option<Answer> {
    if !matches!(
        call.number,
        nr::RT_SIGACTION
            | nr::RT_SIGPROCMASK
            | nr::RT_SIGRETURN
            | nr::SIGALTSTACK
            | nr::RT_SIGSUSPEND
            | nr::PAUSE
            | nr::RT_SIGPENDING
            | nr::KILL
            | nr::TKILL
            | nr::TGKILL
    ) {
        return None;
    }
    let [a0, a1, a2, a3, _, _] = call.args;
    let pid = unix.processes.get(&port)?.pid;
    let answer = match call.number {
        nr::RT_SIGACTION => sigaction(unix, port, a0, a1, a2, a3),
        nr::RT_SIGPROCMASK => sigprocmask(unix, port, a0, a1, a2, a3),
        nr::RT_SIGRETURN => sigreturn(unix, port, call),
        nr::SIGALTSTACK => sigaltstack(unix, port, a0, a1, call.registers.rsp),
        nr::RT_SIGSUSPEND => suspend(unix, port, Some((a0, a1))),
        nr::PAUSE => suspend(unix, port, None),
        nr::RT_SIGPENDING => match unix.processes.get(&port) {
            Some(p) => Answer::CopyOut { value: 0, to: a0, bytes: p.signals.pending.to_le_bytes().to_vec() },
            None => Answer::None,
        },
        nr::KILL => kill(unix, port, pid, a0 as i32 as i64, a1),
        // A thread's signal goes to its process (one mask and pending set for all threads).
        nr::TKILL => match unix.process_of_thread(a0) {
            Some(target) => send_one(unix, port, pid, target, a1),
            None => error(ESRCH),
        },
        nr::TGKILL => match unix.process_of_thread(a1) {
            Some(target) if unix.processes.get(&target).is_some_and(|p| p.pid == a0) => {
                send_one(unix, port, pid, target, a2)
            }
            _ => error(ESRCH),
        },
        _ => return None,
    };
    Some(answer)
}

/// The calls that start again after a handler whose action has SA_RESTART.
fn restartable(number: u64) -> bool {
    matches!(
        number,
        nr::READ
            | nr::WRITE
            | nr::READV
            | nr::WRITEV
            | nr::PREAD64
            | nr::PWRITE64
            | nr::WAIT4
            | nr::WAITID
            | nr::OPEN
            | nr::OPENAT
            | nr::IOCTL
            | nr::FUTEX
            | nr::SENDFILE
    )
}

/// If a handler is due for `caller`'s process, make `answer` (the call's result) part of the
/// context a signal frame saves, write the frame, and answer with the handler's registers
/// instead. Err(signal): the frame could not be written.
pub fn deliver(unix: &mut Personality, caller: &Caller, answer: Answer) -> Result<Answer, u64> {
    let Some(p) = unix.processes.get_mut(&caller.process) else { return Ok(answer) };
    let Some(signal) = p.signals.deliverable() else { return Ok(answer) };
    let mut context = caller.registers;
    match answer {
        Answer::Value(v) => context.rax = v as u64,
        Answer::CopyOut { value, to, bytes } => {
            let value = if vm_write(p.task, to, &bytes).is_ok() { value } else { -EFAULT };
            context.rax = value as u64;
        }
        Answer::SetFsBase(base) => {
            context.rax = 0;
            context.fs_base = base;
        }
        Answer::SetRegisters(r) => context = r,
        Answer::Interrupted => {
            if p.signals.action(signal).flags & flags::SA_RESTART != 0 && restartable(caller.number) {
                // Back to the `syscall` instruction (2 bytes) with the number in rax.
                context.rip = context.rip.wrapping_sub(2);
                context.rax = caller.number;
            } else {
                context.rax = (-EINTR) as u64;
            }
        }
        Answer::None | Answer::Later => return Ok(answer),
    }
    let (action, restore) = p.signals.begin_delivery(signal);
    let info = p.signal_info.remove(&signal).unwrap_or(SignalInfo { signal, ..SignalInfo::default() });
    // The x87/SSE registers are saved in the frame too, and come back at rt_sigreturn.
    let fpu = p.thread(caller.thread).and_then(|t| thread_get_fpu_state(t.port).ok());
    let frame = build_frame(signal, &action, info, &context, fpu.as_ref(), restore, &p.signals.altstack)
        .ok_or(signal)?;
    vm_write(p.task, frame.address, &frame.bytes).map_err(|_| signal)?;
    // As on Linux, the handler starts with the x87/SSE registers at their defaults.
    if let Some(thread) = p.thread(caller.thread) {
        let _ = thread_set_fpu_state(thread.port, &initial_fpu_state());
    }
    Ok(Answer::SetRegisters(frame.handler))
}

/// The x87/SSE registers a new thread starts with: x87 control word 0x037f, MXCSR 0x1f80.
fn initial_fpu_state() -> [u8; 512] {
    let mut state = [0u8; 512];
    state[0..2].copy_from_slice(&0x037fu16.to_le_bytes());
    state[24..28].copy_from_slice(&0x1f80u32.to_le_bytes());
    state
}

impl Personality {
    /// The process (by syscall port) one of whose threads has thread id `tid`.
    pub fn process_of_thread(&self, tid: u64) -> Option<PortName> {
        self.processes
            .iter()
            .find(|(_, p)| p.pid == tid || p.threads.iter().any(|t| t.tid == tid))
            .map(|(&k, _)| k)
    }

    /// Post `signal` to process `port` and act on it.
    pub fn signal(&mut self, port: PortName, signal: u64, info: SignalInfo) {
        let posted = self.post(port, signal, info);
        self.act(port, signal, posted);
    }

    /// Post `signal` to process `port`: what it asks for (`act` does it).
    pub fn post(&mut self, port: PortName, signal: u64, info: SignalInfo) -> Posted {
        let Some(p) = self.processes.get_mut(&port) else { return Posted::Nothing };
        // busybox's halt, poweroff and reboot ask init (process 1) with SIGUSR1, SIGUSR2 and
        // SIGTERM: the first process here is our shell, so the personality answers for it
        // (unless the first process handles or ignores that signal itself).
        if p.pid == 1
            && p.parent == 0
            && matches!(signal, SIGUSR1 | SIGUSR2 | SIGTERM)
            && p.signals.action(signal).handler == SIG_DFL
        {
            self.power_off();
            return Posted::Nothing;
        }
        let posted = p.signals.post(signal);
        if p.signals.pending & personality_unix::signal::bit(signal) != 0 {
            p.signal_info.insert(signal, info);
        }
        posted
    }

    /// Do what posting `signal` asked for.
    pub fn act(&mut self, port: PortName, signal: u64, posted: Posted) {
        match posted {
            Posted::Nothing | Posted::Blocked => {}
            Posted::Terminate => self.exited(port, signal),
            Posted::Stop => self.stop(port, signal),
            Posted::Continue => {
                self.resume(port);
                self.interrupt_for_handler(port);
            }
            Posted::Deliver => self.interrupt_for_handler(port),
        }
    }

    /// A handler is due: a call the process waits in is interrupted (answered EINTR or set
    /// to restart) so that the handler runs now. A process not waiting gets it at its next
    /// answer.
    fn interrupt_for_handler(&mut self, port: PortName) {
        if self.processes.get(&port).and_then(|p| p.signals.deliverable()).is_none() {
            return;
        }
        let held = self.held.iter().find(|(_, c)| c.process == port).map(|(&r, &c)| (r, c));
        if let Some((reply_to, caller)) = held {
            // An interrupted sleep tells how much of it was left.
            if let Some(z) = self.sleeps.iter().find(|z| z.reply_to == reply_to && z.remaining_to != 0) {
                let left = z.deadline.saturating_sub(libmach::uptime_ns());
                let ts = [left / 1_000_000_000, left % 1_000_000_000];
                let bytes: alloc::vec::Vec<u8> = ts.iter().flat_map(|w| w.to_le_bytes()).collect();
                let _ = vm_write(z.task, z.remaining_to, &bytes);
            }
            self.cancel_wait(reply_to);
            self.held.remove(&reply_to);
            self.reply(caller, reply_to, Answer::Interrupted);
        }
    }

    /// Stop process `port` (its task is suspended) and tell its parent.
    fn stop(&mut self, port: PortName, signal: u64) {
        let Some(p) = self.processes.get_mut(&port) else { return };
        if p.stopped.is_none() {
            let _ = task_suspend(p.task);
        }
        p.stopped = Some(signal);
        p.stop_report = Some(signal);
        crate::procs::child_stopped(self, port, signal);
    }

    /// Let a stopped process run again.
    fn resume(&mut self, port: PortName) {
        let Some(p) = self.processes.get_mut(&port) else { return };
        if p.stopped.take().is_some() {
            p.stop_report = None;
            let _ = task_resume(p.task);
        }
    }

    /// The mask of `port` changed: a pending signal it no longer blocks, whose action is the
    /// default, acts now (a handled one runs at the answer).
    fn mask_changed(&mut self, port: PortName) {
        while let Some((signal, posted)) =
            self.processes.get_mut(&port).and_then(|p| p.signals.take_unblocked_default())
        {
            match posted {
                Posted::Terminate => return self.exited(port, signal),
                Posted::Stop => self.stop(port, signal),
                _ => {}
            }
        }
    }
}

fn sigaction(unix: &mut Personality, port: PortName, signal: u64, act: u64, old: u64, size: u64) -> Answer {
    if size != 8 {
        return error(EINVAL);
    }
    let Some(p) = unix.processes.get_mut(&port) else { return Answer::None };
    let new = if act != 0 {
        let mut bytes = [0u8; 32];
        if vm_read(p.task, act, &mut bytes).is_err() {
            return error(EFAULT);
        }
        Some(Action::from_bytes(&bytes))
    } else {
        None
    };
    match p.signals.set_action(signal, new) {
        Ok(before) if old != 0 => Answer::CopyOut { value: 0, to: old, bytes: before.to_bytes().to_vec() },
        Ok(_) => Answer::Value(0),
        Err(_) => error(EINVAL),
    }
}

fn sigprocmask(unix: &mut Personality, port: PortName, how: u64, set: u64, old: u64, size: u64) -> Answer {
    if size != 8 {
        return error(EINVAL);
    }
    let Some(p) = unix.processes.get_mut(&port) else { return Answer::None };
    let new = if set != 0 {
        let mut bytes = [0u8; 8];
        if vm_read(p.task, set, &mut bytes).is_err() {
            return error(EFAULT);
        }
        Some(u64::from_le_bytes(bytes))
    } else {
        None
    };
    let before = match p.signals.set_mask(how, new) {
        Ok(before) => before,
        Err(_) => return error(EINVAL),
    };
    unix.mask_changed(port);
    if !unix.processes.contains_key(&port) {
        return Answer::None;
    }
    if old != 0 {
        Answer::CopyOut { value: 0, to: old, bytes: before.to_le_bytes().to_vec() }
    } else {
        Answer::Value(0)
    }
}

/// rt_sigreturn: the restorer's `ret` took the frame's return address, so rsp points at the
/// saved ucontext. A frame that cannot be read ends the process (SIGSEGV, as Linux).
fn sigreturn(unix: &mut Personality, port: PortName, call: &SyscallRequest) -> Answer {
    let Some(p) = unix.processes.get_mut(&port) else { return Answer::None };
    let mut ucontext = [0u8; SIGINFO_AT - UCONTEXT_AT];
    let restored = vm_read(p.task, call.registers.rsp, &mut ucontext)
        .ok()
        .and_then(|()| read_frame(&ucontext, call.registers.fs_base));
    let Some(saved) = restored else {
        unix.exited(port, SIGSEGV);
        return Answer::None;
    };
    if saved.fpstate != 0 {
        let mut fpu = [0u8; 512];
        let thread = p.thread(call.thread).map(|t| t.port);
        let restored_fpu = vm_read(p.task, saved.fpstate, &mut fpu)
            .ok()
            .and_then(|()| thread.and_then(|t| thread_set_fpu_state(t, &fpu).ok()));
        if restored_fpu.is_none() {
            unix.exited(port, SIGSEGV);
            return Answer::None;
        }
    }
    p.signals.blocked = saved.mask;
    let registers = saved.registers;
    unix.mask_changed(port);
    if !unix.processes.contains_key(&port) {
        return Answer::None;
    }
    Answer::SetRegisters(registers)
}

/// sigaltstack: `stack_t` is { ss_sp, ss_flags (int), ss_size }, 24 bytes.
fn sigaltstack(unix: &mut Personality, port: PortName, new: u64, old: u64, rsp: u64) -> Answer {
    let Some(p) = unix.processes.get_mut(&port) else { return Answer::None };
    let current = p.signals.altstack;
    let on_it = !current.disabled && (current.base..current.base + current.size).contains(&rsp);
    if new != 0 {
        let mut bytes = [0u8; 24];
        if vm_read(p.task, new, &mut bytes).is_err() {
            return error(EFAULT);
        }
        if on_it {
            return error(EPERM);
        }
        let word = |at: usize| u64::from_le_bytes(bytes[at..at + 8].try_into().unwrap_or([0; 8]));
        let ss_flags = u32::from_le_bytes(bytes[8..12].try_into().unwrap_or([0; 4]));
        let (base, size) = (word(0), word(16));
        p.signals.altstack = if ss_flags & SS_DISABLE != 0 {
            AltStack { disabled: true, ..AltStack::default() }
        } else if ss_flags & !SS_ONSTACK != 0 {
            return error(EINVAL);
        } else if size < MIN_SIGNAL_STACK {
            return error(ENOMEM);
        } else {
            AltStack { base, size, disabled: false }
        };
    }
    if old == 0 {
        return Answer::Value(0);
    }
    let ss_flags: u32 = if current.disabled {
        SS_DISABLE
    } else if on_it {
        SS_ONSTACK
    } else {
        0
    };
    let mut bytes = alloc::vec![0u8; 24];
    bytes[0..8].copy_from_slice(&current.base.to_le_bytes());
    bytes[8..12].copy_from_slice(&ss_flags.to_le_bytes());
    bytes[16..24].copy_from_slice(&current.size.to_le_bytes());
    Answer::CopyOut { value: 0, to: old, bytes }
}

/// rt_sigsuspend (with a mask to wait under) and pause: wait until a handler runs, then
/// answer EINTR (the mask comes back when the handler returns).
fn suspend(unix: &mut Personality, port: PortName, mask: Option<(u64, u64)>) -> Answer {
    let Some(p) = unix.processes.get_mut(&port) else { return Answer::None };
    if let Some((at, size)) = mask {
        if size != 8 {
            return error(EINVAL);
        }
        let mut bytes = [0u8; 8];
        if vm_read(p.task, at, &mut bytes).is_err() {
            return error(EFAULT);
        }
        p.signals.suspended_mask = Some(p.signals.blocked);
        let _ = p.signals.set_mask(personality_unix::signal::SIG_SETMASK, Some(u64::from_le_bytes(bytes)));
        unix.mask_changed(port);
    }
    match unix.processes.get(&port) {
        None => Answer::None,
        Some(p) if p.signals.deliverable().is_some() => Answer::Interrupted,
        Some(_) => Answer::Later,
    }
}

/// kill: a process (pid > 0), the caller's group (0), a group (< -1), or every process but the
/// first (-1). Signal 0 only checks that there is one.
fn kill(unix: &mut Personality, port: PortName, caller: u64, pid: i64, signal: u64) -> Answer {
    if signal > 64 {
        return error(EINVAL);
    }
    let caller_group = unix.processes.get(&port).map_or(0, |p| p.pgid);
    let targets: alloc::vec::Vec<PortName> = unix
        .processes
        .iter()
        .filter(|(_, p)| match pid {
            0 => p.pgid == caller_group,
            -1 => p.pid != 1 && p.pid != caller,
            n if n < -1 => p.pgid == n.unsigned_abs(),
            n => p.pid == n as u64,
        })
        .map(|(&port, _)| port)
        .collect();
    if targets.is_empty() {
        return error(ESRCH);
    }
    let targets: alloc::vec::Vec<PortName> =
        targets.into_iter().filter(|&t| may_signal(unix, port, t)).collect();
    if targets.is_empty() {
        return error(EPERM);
    }
    if signal != 0 {
        for target in targets {
            unix.signal(target, signal, SignalInfo { signal, code: SI_USER, pid: caller, status: 0 });
        }
    }
    // The caller may have signalled itself to death: then there is nothing to answer.
    if unix.processes.contains_key(&port) { Answer::Value(0) } else { Answer::None }
}

/// May process `from` signal process `to`? The superuser may signal anyone; others only
/// processes whose real or saved user id is their real or effective one (Linux's rule).
pub fn may_signal(unix: &Personality, from: PortName, to: PortName) -> bool {
    match (unix.processes.get(&from), unix.processes.get(&to)) {
        (Some(f), Some(t)) => {
            f.ids.euid == 0 || [f.ids.uid, f.ids.euid].iter().any(|&id| id == t.ids.uid || id == t.ids.suid)
        }
        _ => false,
    }
}

fn send_one(unix: &mut Personality, port: PortName, caller: u64, target: PortName, signal: u64) -> Answer {
    if signal > 64 {
        return error(EINVAL);
    }
    if !may_signal(unix, port, target) {
        return error(EPERM);
    }
    if signal != 0 {
        unix.signal(target, signal, SignalInfo { signal, code: SI_USER, pid: caller, status: 0 });
    }
    if unix.processes.contains_key(&port) { Answer::Value(0) } else { Answer::None }
}

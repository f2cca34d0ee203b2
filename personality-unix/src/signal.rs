//! Signals as a process sees them: each signal's action (default, ignore, or a handler with
//! its flags and mask), the blocked mask, the pending set, the alternate stack; what a signal
//! does when it is posted; and the Linux x86-64 signal frame (`rt_sigframe`) the personality
//! writes on the process's stack to run a handler, and reads back at `rt_sigreturn`.
//!
//! Pure logic, host-tested. It must never let SIGKILL or SIGSTOP be caught, blocked or
//! ignored, and never trust a frame it reads back: only the registers and mask are taken
//! from it, and the kernel checks the registers again before loading them.

use crate::linux::signal::*;
use alloc::vec::Vec;
use mach_abi::forward::Registers;
use mach_abi::layout::USER_END;

/// sigaction flags (x86-64).
pub mod flags {
    pub const SA_NOCLDSTOP: u64 = 1;
    pub const SA_SIGINFO: u64 = 4;
    pub const SA_RESTORER: u64 = 0x0400_0000;
    pub const SA_ONSTACK: u64 = 0x0800_0000;
    pub const SA_RESTART: u64 = 0x1000_0000;
    pub const SA_NODEFER: u64 = 0x4000_0000;
    pub const SA_RESETHAND: u64 = 0x8000_0000;
}

/// rt_sigprocmask's `how`.
pub const SIG_BLOCK: u64 = 0;
pub const SIG_UNBLOCK: u64 = 1;
pub const SIG_SETMASK: u64 = 2;

/// sigaltstack's flags.
pub const SS_ONSTACK: u32 = 1;
pub const SS_DISABLE: u32 = 2;

/// The signals that can be neither caught, blocked nor ignored.
const UNCATCHABLE: u64 = bit(SIGKILL) | bit(SIGSTOP);

/// The mask bit of signal `signal` (1 ..= 64): bit `signal - 1`, as Linux's sigset_t.
pub const fn bit(signal: u64) -> u64 {
    1 << ((signal - 1) & 63)
}

/// One signal's action, as `struct sigaction` of the x86-64 kernel ABI carries it.
#[derive(Clone, Copy, Default, Debug, PartialEq, Eq)]
pub struct Action {
    pub handler: u64,
    pub flags: u64,
    pub restorer: u64,
    pub mask: u64,
}

impl Action {
    /// The kernel's `struct sigaction`: handler, flags, restorer, mask (32 bytes).
    pub fn to_bytes(self) -> [u8; 32] {
        let mut out = [0u8; 32];
        for (i, v) in [self.handler, self.flags, self.restorer, self.mask].iter().enumerate() {
            out[i * 8..i * 8 + 8].copy_from_slice(&v.to_le_bytes());
        }
        out
    }

    pub fn from_bytes(bytes: &[u8; 32]) -> Action {
        let word = |i: usize| {
            let mut w = [0u8; 8];
            w.copy_from_slice(&bytes[i * 8..i * 8 + 8]);
            u64::from_le_bytes(w)
        };
        Action { handler: word(0), flags: word(1), restorer: word(2), mask: word(3) }
    }
}

/// What a signal's default action is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Default {
    Terminate,
    /// Terminate "with a core dump": no core is written here.
    Core,
    Stop,
    Continue,
    Ignore,
}

pub fn default_of(signal: u64) -> Default {
    match signal {
        SIGCHLD | SIGURG | SIGWINCH => Default::Ignore,
        SIGCONT => Default::Continue,
        SIGSTOP | SIGTSTP | SIGTTIN | SIGTTOU => Default::Stop,
        SIGQUIT | SIGILL | SIGTRAP | SIGABRT | SIGBUS | SIGFPE | SIGSEGV | SIGXCPU | SIGXFSZ | SIGSYS => {
            Default::Core
        }
        _ => Default::Terminate,
    }
}

/// What posting a signal asks of the personality now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Posted {
    /// Nothing (ignored, or already pending).
    Nothing,
    /// End the process (wait status: the signal).
    Terminate,
    /// Stop the process.
    Stop,
    /// Let a stopped process run again (also done for a caught or blocked SIGCONT).
    Continue,
    /// A handler is to run: pending, and not blocked. Interrupt a call it waits in.
    Deliver,
    /// Pending until it is unblocked.
    Blocked,
}

/// The alternate signal stack (`sigaltstack`).
#[derive(Clone, Copy, Default, Debug, PartialEq, Eq)]
pub struct AltStack {
    pub base: u64,
    pub size: u64,
    pub disabled: bool,
}

/// A process's signal state.
#[derive(Clone, Debug)]
pub struct Signals {
    /// Index 0 is unused; 1 ..= 64.
    actions: [Action; 65],
    pub blocked: u64,
    pub pending: u64,
    pub altstack: AltStack,
    /// The mask to restore after a handler that interrupted rt_sigsuspend.
    pub suspended_mask: Option<u64>,
}

impl core::default::Default for Signals {
    fn default() -> Self {
        Signals {
            actions: [Action::default(); 65],
            blocked: 0,
            pending: 0,
            altstack: AltStack { disabled: true, ..AltStack::default() },
            suspended_mask: None,
        }
    }
}

/// The errors of the signal calls (EINVAL for all here).
#[derive(Debug, PartialEq, Eq)]
pub struct Invalid;

fn valid(signal: u64) -> Result<(), Invalid> {
    if (1..=64).contains(&signal) { Ok(()) } else { Err(Invalid) }
}

impl Signals {
    pub fn action(&self, signal: u64) -> Action {
        self.actions.get(signal as usize).copied().unwrap_or_default()
    }

    /// rt_sigaction: set (when `new` is given) and return the old action.
    pub fn set_action(&mut self, signal: u64, new: Option<Action>) -> Result<Action, Invalid> {
        valid(signal)?;
        let old = self.action(signal);
        if let Some(mut new) = new {
            if UNCATCHABLE & bit(signal) != 0 {
                return Err(Invalid);
            }
            new.mask &= !UNCATCHABLE;
            if let Some(slot) = self.actions.get_mut(signal as usize) {
                *slot = new;
            }
            // Setting a pending signal to be ignored discards it.
            if self.ignores(signal) {
                self.pending &= !bit(signal);
            }
        }
        Ok(old)
    }

    fn ignores(&self, signal: u64) -> bool {
        let a = self.action(signal);
        a.handler == SIG_IGN || (a.handler == SIG_DFL && default_of(signal) == Default::Ignore)
    }

    fn caught(&self, signal: u64) -> bool {
        !matches!(self.action(signal).handler, SIG_DFL | SIG_IGN)
    }

    /// rt_sigprocmask: change the blocked mask; returns the old one.
    pub fn set_mask(&mut self, how: u64, set: Option<u64>) -> Result<u64, Invalid> {
        let old = self.blocked;
        if let Some(set) = set {
            self.blocked = match how {
                SIG_BLOCK => old | set,
                SIG_UNBLOCK => old & !set,
                SIG_SETMASK => set,
                _ => return Err(Invalid),
            } & !UNCATCHABLE;
        }
        Ok(old)
    }

    /// A signal arrives: what it does now.
    pub fn post(&mut self, signal: u64) -> Posted {
        if valid(signal).is_err() {
            return Posted::Nothing;
        }
        if signal == SIGKILL {
            return Posted::Terminate;
        }
        // A stop discards a pending SIGCONT, and SIGCONT the pending stops.
        let stops = bit(SIGSTOP) | bit(SIGTSTP) | bit(SIGTTIN) | bit(SIGTTOU);
        if signal == SIGCONT {
            self.pending &= !stops;
            if self.caught(SIGCONT) {
                self.pending |= bit(SIGCONT);
            }
            return Posted::Continue;
        }
        if stops & bit(signal) != 0 {
            self.pending &= !bit(SIGCONT);
        }
        if self.ignores(signal) {
            return Posted::Nothing;
        }
        if self.blocked & bit(signal) != 0 {
            self.pending |= bit(signal);
            return Posted::Blocked;
        }
        if self.caught(signal) {
            self.pending |= bit(signal);
            return Posted::Deliver;
        }
        match default_of(signal) {
            Default::Stop => Posted::Stop,
            Default::Terminate | Default::Core => Posted::Terminate,
            Default::Continue | Default::Ignore => Posted::Nothing,
        }
    }

    /// After the mask changed: the lowest pending, unblocked signal whose default action
    /// must be taken now (terminate or stop), taken off the pending set.
    pub fn take_unblocked_default(&mut self) -> Option<(u64, Posted)> {
        let ready = self.pending & !self.blocked;
        for s in 1..=64u64 {
            if ready & bit(s) == 0 || self.caught(s) {
                continue;
            }
            self.pending &= !bit(s);
            match default_of(s) {
                Default::Stop => return Some((s, Posted::Stop)),
                Default::Terminate | Default::Core => return Some((s, Posted::Terminate)),
                _ => {}
            }
        }
        None
    }

    /// The lowest pending, unblocked signal with a handler, if any.
    pub fn deliverable(&self) -> Option<u64> {
        let mut ready = self.pending & !self.blocked;
        // Lowest first, looking only at the pending bits (the common case is none).
        while ready != 0 {
            let signal = u64::from(ready.trailing_zeros()) + 1;
            if self.caught(signal) {
                return Some(signal);
            }
            ready &= ready - 1;
        }
        None
    }

    /// Start delivering `signal`: off the pending set, its handler's mask added (and the
    /// signal itself unless SA_NODEFER), a one-shot handler reset. Returns the action and
    /// the mask to restore at rt_sigreturn.
    pub fn begin_delivery(&mut self, signal: u64) -> (Action, u64) {
        let action = self.action(signal);
        self.pending &= !bit(signal);
        let restore = self.suspended_mask.take().unwrap_or(self.blocked);
        let mut mask = self.blocked | action.mask;
        if action.flags & flags::SA_NODEFER == 0 {
            mask |= bit(signal);
        }
        self.blocked = mask & !UNCATCHABLE;
        if action.flags & flags::SA_RESETHAND != 0
            && let Some(slot) = self.actions.get_mut(signal as usize)
        {
            *slot = Action::default();
        }
        (action, restore)
    }

    /// execve: handlers go back to default (ignored signals stay ignored); the mask and
    /// pending set stay.
    pub fn reset_for_exec(&mut self) {
        for a in self.actions.iter_mut() {
            if a.handler != SIG_IGN {
                *a = Action::default();
            }
        }
        self.altstack = AltStack { disabled: true, ..AltStack::default() };
        self.suspended_mask = None;
    }
}

/// `struct siginfo` (128 bytes): the fields a handler reads here.
#[derive(Clone, Copy, Default, Debug)]
pub struct SignalInfo {
    pub signal: u64,
    /// si_code: SI_USER (0) for kill, SI_KERNEL (0x80), CLD_* for SIGCHLD.
    pub code: i32,
    pub pid: u64,
    /// SIGCHLD's si_status.
    pub status: i32,
}

impl SignalInfo {
    pub fn to_bytes(self) -> [u8; 128] {
        let mut out = [0u8; 128];
        out[0..4].copy_from_slice(&(self.signal as i32).to_le_bytes());
        out[8..12].copy_from_slice(&self.code.to_le_bytes());
        out[16..20].copy_from_slice(&(self.pid as i32).to_le_bytes());
        out[24..28].copy_from_slice(&self.status.to_le_bytes());
        out
    }
}

/// Sizes and offsets of the x86-64 `rt_sigframe`: the return address (the restorer), then
/// `struct ucontext` (flags, link, stack_t, sigcontext, sigmask), then `siginfo`.
pub const UCONTEXT_AT: usize = 8;
const MCONTEXT_AT: usize = UCONTEXT_AT + 40;
const SIGMASK_AT: usize = MCONTEXT_AT + 256;
pub const SIGINFO_AT: usize = SIGMASK_AT + 8;
pub const FRAME_SIZE: usize = SIGINFO_AT + 128;

/// sigcontext's general registers in order (r8 .. rip, then eflags).
fn mcontext_words(r: &Registers) -> [u64; 18] {
    [
        r.r8, r.r9, r.r10, r.r11, r.r12, r.r13, r.r14, r.r15, r.rdi, r.rsi, r.rbp, r.rbx, r.rdx, r.rax,
        r.rcx, r.rsp, r.rip, r.rflags,
    ]
}

/// A signal frame ready to be written: its bytes, where they go, and the registers that
/// start the handler.
pub struct Frame {
    pub address: u64,
    pub bytes: Vec<u8>,
    pub handler: Registers,
}

/// Where the saved x87/SSE state (FXSAVE, 512 bytes) goes: above the frame, 64-byte aligned,
/// `uc_mcontext.fpstate` pointing at it, as Linux lays it out.
const FPU_SIZE: u64 = 512;

/// Build the frame for `signal` with `action`, interrupting `context` (the registers to
/// come back to, rax included) and `fpu` (its x87/SSE state, when known), with
/// `restore_mask` to be restored at rt_sigreturn. On the alternate stack when asked for and
/// set, else below the red zone of the current stack; aligned as a call leaves it (rsp + 8
/// a multiple of 16). None: no restorer was given (x86-64 needs SA_RESTORER), so the
/// handler cannot return.
pub fn build_frame(
    signal: u64,
    action: &Action,
    info: SignalInfo,
    context: &Registers,
    fpu: Option<&[u8; 512]>,
    restore_mask: u64,
    altstack: &AltStack,
) -> Option<Frame> {
    // The kernel refuses registers outside user space: such a handler cannot run at all.
    let user = |a: u64| a != 0 && a < USER_END;
    if action.flags & flags::SA_RESTORER == 0 || !user(action.restorer) || !user(action.handler) {
        return None;
    }
    let on_alt = action.flags & flags::SA_ONSTACK != 0
        && !altstack.disabled
        && !(altstack.base..altstack.base + altstack.size).contains(&context.rsp);
    let top = if on_alt { altstack.base + altstack.size } else { context.rsp.checked_sub(128)? };
    let fpstate = match fpu {
        Some(_) => top.checked_sub(FPU_SIZE)? & !63,
        None => top,
    };
    let address = (fpstate.checked_sub(FRAME_SIZE as u64)? & !15).checked_sub(8)?;
    let length = if fpu.is_some() { (fpstate + FPU_SIZE - address) as usize } else { FRAME_SIZE };
    let mut bytes = alloc::vec![0u8; length];
    if let Some(state) = fpu {
        let at = (fpstate - address) as usize;
        bytes[at..at + 512].copy_from_slice(state);
        bytes[MCONTEXT_AT + 184..MCONTEXT_AT + 192].copy_from_slice(&fpstate.to_le_bytes());
    }
    bytes[0..8].copy_from_slice(&action.restorer.to_le_bytes());
    // uc_stack: the alternate stack as it was.
    // As Linux: SS_ONSTACK when the interrupted code was on the alternate stack already.
    let was_on_alt =
        !altstack.disabled && (altstack.base..altstack.base + altstack.size).contains(&context.rsp);
    let ss_flags: u32 = if altstack.disabled {
        SS_DISABLE
    } else if was_on_alt {
        SS_ONSTACK
    } else {
        0
    };
    bytes[UCONTEXT_AT + 16..UCONTEXT_AT + 24].copy_from_slice(&altstack.base.to_le_bytes());
    bytes[UCONTEXT_AT + 24..UCONTEXT_AT + 28].copy_from_slice(&ss_flags.to_le_bytes());
    bytes[UCONTEXT_AT + 32..UCONTEXT_AT + 40].copy_from_slice(&altstack.size.to_le_bytes());
    for (i, word) in mcontext_words(context).iter().enumerate() {
        bytes[MCONTEXT_AT + i * 8..MCONTEXT_AT + i * 8 + 8].copy_from_slice(&word.to_le_bytes());
    }
    // cs = 0x33 (user code), as Linux reports it.
    bytes[MCONTEXT_AT + 144..MCONTEXT_AT + 146].copy_from_slice(&0x33u16.to_le_bytes());
    bytes[MCONTEXT_AT + 152 + 16..MCONTEXT_AT + 152 + 24].copy_from_slice(&restore_mask.to_le_bytes()); // oldmask
    bytes[SIGMASK_AT..SIGMASK_AT + 8].copy_from_slice(&restore_mask.to_le_bytes());
    bytes[SIGINFO_AT..SIGINFO_AT + 128].copy_from_slice(&info.to_bytes());
    let handler = Registers {
        rip: action.handler,
        rsp: address,
        rdi: signal,
        rsi: address + SIGINFO_AT as u64,
        rdx: address + UCONTEXT_AT as u64,
        rax: 0,
        rflags: context.rflags & !0x0500, // TF and DF cleared
        fs_base: context.fs_base,
        ..Registers::default()
    };
    Some(Frame { address, bytes, handler })
}

/// What rt_sigreturn restores: the registers, the mask, and where the x87/SSE state was
/// saved (0: none).
pub struct Saved {
    pub registers: Registers,
    pub mask: u64,
    pub fpstate: u64,
}

/// rt_sigreturn: the registers and mask saved in the frame whose ucontext is `ucontext`
/// (read from rsp at the call, where the restorer's `ret` left it). rip, rsp and the FS base
/// are checked again by the kernel; `fs_base` is kept from the caller.
pub fn read_frame(ucontext: &[u8], fs_base: u64) -> Option<Saved> {
    let m = ucontext.get(MCONTEXT_AT - UCONTEXT_AT..SIGMASK_AT - UCONTEXT_AT + 8)?;
    let word = |i: usize| -> u64 {
        let mut w = [0u8; 8];
        w.copy_from_slice(&m[i * 8..i * 8 + 8]);
        u64::from_le_bytes(w)
    };
    let r = Registers {
        r8: word(0),
        r9: word(1),
        r10: word(2),
        r11: word(3),
        r12: word(4),
        r13: word(5),
        r14: word(6),
        r15: word(7),
        rdi: word(8),
        rsi: word(9),
        rbp: word(10),
        rbx: word(11),
        rdx: word(12),
        rax: word(13),
        rcx: word(14),
        rsp: word(15),
        rip: word(16),
        rflags: word(17),
        fs_base,
    };
    let mask = word((SIGMASK_AT - MCONTEXT_AT) / 8) & !UNCATCHABLE;
    if r.rip >= USER_END || r.rsp >= USER_END {
        return None;
    }
    Some(Saved { registers: r, mask, fpstate: word(23) })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn handler(flags: u64) -> Action {
        Action { handler: 0x40_1000, flags: flags | flags::SA_RESTORER, restorer: 0x40_2000, mask: 0 }
    }

    #[test]
    fn defaults_terminate_stop_continue_or_ignore() {
        let mut s = Signals::default();
        assert_eq!(s.post(SIGINT), Posted::Terminate);
        assert_eq!(s.post(SIGQUIT), Posted::Terminate);
        assert_eq!(s.post(SIGCHLD), Posted::Nothing);
        assert_eq!(s.post(SIGWINCH), Posted::Nothing);
        assert_eq!(s.post(SIGTSTP), Posted::Stop);
        assert_eq!(s.post(SIGSTOP), Posted::Stop);
        assert_eq!(s.post(SIGCONT), Posted::Continue);
        assert_eq!(s.post(0), Posted::Nothing);
        assert_eq!(s.post(65), Posted::Nothing);
        assert_eq!(s.pending, 0);
    }

    #[test]
    fn kill_and_stop_cannot_be_caught_blocked_or_ignored() {
        let mut s = Signals::default();
        assert_eq!(s.set_action(SIGKILL, Some(handler(0))), Err(Invalid));
        assert_eq!(
            s.set_action(SIGSTOP, Some(Action { handler: SIG_IGN, ..Action::default() })),
            Err(Invalid)
        );
        s.set_mask(SIG_SETMASK, Some(u64::MAX)).unwrap();
        assert_eq!(s.blocked & (bit(SIGKILL) | bit(SIGSTOP)), 0);
        assert_eq!(s.post(SIGKILL), Posted::Terminate);
        assert_eq!(s.post(SIGSTOP), Posted::Stop);
        assert_eq!(s.post(SIGTERM), Posted::Blocked);
        assert_eq!(s.set_action(0, None), Err(Invalid));
        assert_eq!(s.set_mask(7, Some(0)), Err(Invalid));
    }

    #[test]
    fn blocked_signals_wait_then_act_when_unblocked() {
        let mut s = Signals::default();
        s.set_action(SIGUSR1, Some(handler(0))).unwrap();
        s.set_mask(SIG_BLOCK, Some(bit(SIGUSR1) | bit(SIGTERM))).unwrap();
        assert_eq!(s.post(SIGUSR1), Posted::Blocked);
        assert_eq!(s.post(SIGTERM), Posted::Blocked);
        assert_eq!(s.deliverable(), None);
        assert_eq!(s.set_mask(SIG_UNBLOCK, Some(bit(SIGUSR1))), Ok(bit(SIGUSR1) | bit(SIGTERM)));
        assert_eq!(s.deliverable(), Some(SIGUSR1));
        assert_eq!(s.take_unblocked_default(), None);
        s.set_mask(SIG_SETMASK, Some(0)).unwrap();
        assert_eq!(s.take_unblocked_default(), Some((SIGTERM, Posted::Terminate)));
        assert_eq!(s.pending, bit(SIGUSR1));
    }

    #[test]
    fn delivery_masks_the_signal_and_resets_one_shot_handlers() {
        let mut s = Signals::default();
        let mut a = handler(flags::SA_RESETHAND);
        a.mask = bit(SIGTERM) | bit(SIGKILL);
        s.set_action(SIGINT, Some(a)).unwrap();
        assert_eq!(s.post(SIGINT), Posted::Deliver);
        let (action, restore) = s.begin_delivery(SIGINT);
        assert_eq!(action.handler, 0x40_1000);
        assert_eq!(restore, 0);
        assert_eq!(s.blocked, bit(SIGINT) | bit(SIGTERM));
        assert_eq!(s.action(SIGINT), Action::default());
        assert_eq!(s.pending, 0);
        // SA_NODEFER leaves the signal itself unblocked.
        let mut s = Signals::default();
        s.set_action(SIGUSR2, Some(handler(flags::SA_NODEFER))).unwrap();
        s.post(SIGUSR2);
        s.begin_delivery(SIGUSR2);
        assert_eq!(s.blocked, 0);
    }

    #[test]
    fn sigsuspend_mask_comes_back_after_the_handler() {
        let mut s = Signals::default();
        s.set_action(SIGCHLD, Some(handler(0))).unwrap();
        s.set_mask(SIG_SETMASK, Some(bit(SIGCHLD))).unwrap();
        s.suspended_mask = Some(s.blocked);
        s.blocked = 0;
        s.post(SIGCHLD);
        assert_eq!(s.deliverable(), Some(SIGCHLD));
        let (_, restore) = s.begin_delivery(SIGCHLD);
        assert_eq!(restore, bit(SIGCHLD));
        assert_eq!(s.suspended_mask, None);
    }

    #[test]
    fn ignoring_discards_and_exec_keeps_only_ignored() {
        let mut s = Signals::default();
        s.set_action(SIGUSR1, Some(handler(0))).unwrap();
        s.set_mask(SIG_BLOCK, Some(bit(SIGUSR1))).unwrap();
        s.post(SIGUSR1);
        s.set_action(SIGUSR1, Some(Action { handler: SIG_IGN, ..Action::default() })).unwrap();
        assert_eq!(s.pending, 0);
        s.set_action(SIGINT, Some(handler(0))).unwrap();
        s.reset_for_exec();
        assert_eq!(s.action(SIGUSR1).handler, SIG_IGN);
        assert_eq!(s.action(SIGINT), Action::default());
        assert_eq!(s.blocked, bit(SIGUSR1));
    }

    #[test]
    fn stop_and_continue_cancel_each_other() {
        let mut s = Signals::default();
        s.set_mask(SIG_BLOCK, Some(bit(SIGTSTP))).unwrap();
        s.post(SIGTSTP);
        assert_eq!(s.pending, bit(SIGTSTP));
        assert_eq!(s.post(SIGCONT), Posted::Continue);
        assert_eq!(s.pending, 0);
    }

    #[test]
    fn sigaction_bytes_round_trip() {
        let a = Action { handler: 1, flags: 2, restorer: 3, mask: 4 };
        assert_eq!(Action::from_bytes(&a.to_bytes()), a);
    }

    #[test]
    fn frame_layout_is_linux_rt_sigframe() {
        // struct ucontext: 8 + 8 + 24 (stack_t) + 256 (sigcontext) + 8 (sigset) = 304.
        assert_eq!(SIGINFO_AT, 8 + 304);
        assert_eq!(FRAME_SIZE, 440);
        let context = Registers {
            rax: 7,
            rbx: 8,
            rsp: 0x7fff_0000_1000,
            rip: 0x40_0123,
            rflags: 0x246,
            r8: 1,
            r15: 15,
            fs_base: 0x1234,
            ..Registers::default()
        };
        let info = SignalInfo { signal: SIGINT, code: 0, pid: 42, status: 0 };
        let a = handler(flags::SA_SIGINFO);
        let f = build_frame(SIGINT, &a, info, &context, None, 0b100, &AltStack::default()).unwrap();
        // Below the 128-byte red zone, aligned as after a call.
        assert!(f.address + FRAME_SIZE as u64 <= context.rsp - 128);
        assert_eq!((f.address + 8) % 16, 0);
        assert_eq!(&f.bytes[0..8], &0x40_2000u64.to_le_bytes());
        assert_eq!(f.handler.rip, 0x40_1000);
        assert_eq!(f.handler.rsp, f.address);
        assert_eq!(f.handler.rdi, SIGINT);
        assert_eq!(f.handler.rsi, f.address + SIGINFO_AT as u64);
        assert_eq!(f.handler.rdx, f.address + 8);
        assert_eq!(f.handler.fs_base, 0x1234);
        // gregs[REG_RIP] is the 17th word of the mcontext, gregs[REG_RAX] the 14th.
        let gregs = &f.bytes[UCONTEXT_AT + 40..];
        assert_eq!(&gregs[16 * 8..17 * 8], &0x40_0123u64.to_le_bytes());
        assert_eq!(&gregs[13 * 8..14 * 8], &7u64.to_le_bytes());
        assert_eq!(&f.bytes[SIGINFO_AT..SIGINFO_AT + 4], &2i32.to_le_bytes());
        assert_eq!(&f.bytes[SIGINFO_AT + 16..SIGINFO_AT + 20], &42i32.to_le_bytes());
        // rt_sigreturn reads back what was saved.
        let back = read_frame(&f.bytes[UCONTEXT_AT..], 0x1234).unwrap();
        assert_eq!(back.registers, context);
        assert_eq!(back.mask, 0b100);
        assert_eq!(back.fpstate, 0);
        assert!(read_frame(&f.bytes[UCONTEXT_AT..100], 0).is_none());
        // A frame whose rip is not a user address is refused.
        let mut bad = f.bytes.clone();
        bad[UCONTEXT_AT + 40 + 16 * 8..UCONTEXT_AT + 40 + 17 * 8].copy_from_slice(&u64::MAX.to_le_bytes());
        assert!(read_frame(&bad[UCONTEXT_AT..], 0).is_none());
        // With the x87/SSE state: above the frame, 64-byte aligned, fpstate pointing at it.
        let mut fpu = [0u8; 512];
        fpu[24..28].copy_from_slice(&0x7f80u32.to_le_bytes());
        let f = build_frame(SIGINT, &a, info, &context, Some(&fpu), 0, &AltStack::default()).unwrap();
        let back = read_frame(&f.bytes[UCONTEXT_AT..], 0).unwrap();
        assert_eq!(back.fpstate % 64, 0);
        assert!(back.fpstate >= f.address + FRAME_SIZE as u64 && back.fpstate + 512 <= context.rsp - 128);
        let at = (back.fpstate - f.address) as usize;
        assert_eq!(&f.bytes[at..at + 512], &fpu[..]);
        assert_eq!(f.bytes.len() as u64, back.fpstate + 512 - f.address);
    }

    #[test]
    fn frames_go_on_the_alternate_stack_when_asked() {
        let context = Registers { rsp: 0x7fff_0000_1000, ..Registers::default() };
        let alt = AltStack { base: 0x50_0000, size: 0x2000, disabled: false };
        let a = handler(flags::SA_ONSTACK);
        let f = build_frame(SIGSEGV, &a, SignalInfo::default(), &context, None, 0, &alt).unwrap();
        assert!(f.address >= alt.base && f.address + FRAME_SIZE as u64 <= alt.base + alt.size);
        // Already on it: the frame goes below the current rsp.
        let inside = Registers { rsp: 0x50_1800, ..Registers::default() };
        let f = build_frame(SIGSEGV, &a, SignalInfo::default(), &inside, None, 0, &alt).unwrap();
        assert!(f.address < 0x50_1800 - 128);
        // No restorer, or a handler outside user space: no frame.
        let bare = Action { handler: 0x40_1000, ..Action::default() };
        assert!(build_frame(SIGINT, &bare, SignalInfo::default(), &context, None, 0, &alt).is_none());
        let kernel = Action { handler: 0xffff_8000_0000_0000, ..handler(0) };
        assert!(build_frame(SIGINT, &kernel, SignalInfo::default(), &context, None, 0, &alt).is_none());
    }
}

//! The user's floating-point and SSE state (x87, MMX, XMM registers, MXCSR): Linux programs
//! use SSE everywhere, so user mode may, and each thread keeps its own. The kernel itself is
//! built soft-float and never touches these registers, so a thread's values survive its
//! traps untouched; only a switch to another thread saves them (FXSAVE) and loads the next
//! thread's (FXRSTOR).
//!
//! It must never let one thread see another's registers: every user thread has an area, set
//! to the power-on defaults when it is made, and the switch always saves before it loads.

use alloc::boxed::Box;
use core::arch::asm;

/// What FXSAVE writes: 512 bytes, 16-byte aligned.
#[repr(C, align(16))]
pub struct FpuState([u8; 512]);

impl FpuState {
    /// The state a new thread starts with: x87 control word 0x037f (all exceptions masked,
    /// double-extended precision), MXCSR 0x1f80 (all SSE exceptions masked), the rest zero.
    pub fn initial() -> Box<FpuState> {
        let mut area = [0u8; 512];
        area[0..2].copy_from_slice(&0x037fu16.to_le_bytes());
        area[24..28].copy_from_slice(&0x1f80u32.to_le_bytes());
        Box::new(FpuState(area))
    }

    /// The 512 bytes.
    pub fn bytes(&self) -> &[u8; 512] {
        &self.0
    }

    /// Replace the state with `bytes` from a user, if loading them cannot fault: MXCSR (at
    /// 24) may have no bit outside the MXCSR mask the CPU reports (0xffbf when it reports 0).
    pub fn set_checked(&mut self, bytes: &[u8; 512]) -> bool {
        let word = |at: usize| u32::from_le_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]]);
        let mask = match word(28) {
            0 => 0xffbf,
            m => m & supported_mxcsr_mask(),
        };
        if word(24) & !mask != 0 {
            return false;
        }
        self.0 = *bytes;
        // The mask field is the CPU's, not the caller's.
        self.0[28..32].copy_from_slice(&supported_mxcsr_mask().to_le_bytes());
        true
    }

    /// Save the CPU's current state here.
    #[inline(always)]
    pub fn save(&mut self) {
        // SAFETY: the area is 512 bytes, 16-byte aligned, and ours to write; SSE is enabled
        // (`init`), so FXSAVE does not fault.
        unsafe { asm!("fxsave64 [{}]", in(reg) self.0.as_mut_ptr(), options(nostack, preserves_flags)) };
    }

    /// Load this state into the CPU.
    #[inline(always)]
    pub fn load(&self) {
        // SAFETY: the area holds what FXSAVE wrote or `initial`'s defaults (reserved MXCSR
        // bits clear), so FXRSTOR does not fault.
        unsafe { asm!("fxrstor64 [{}]", in(reg) self.0.as_ptr(), options(nostack, preserves_flags)) };
    }
}

/// The MXCSR bits this CPU supports (what FXSAVE reports; 0xffbf when it reports 0).
pub fn supported_mxcsr_mask() -> u32 {
    let mut probe = FpuState([0u8; 512]);
    probe.save();
    let mask = u32::from_le_bytes([probe.0[28], probe.0[29], probe.0[30], probe.0[31]]);
    if mask == 0 { 0xffbf } else { mask }
}

/// Let user mode use x87 and SSE: CR0.EM off, CR0.MP and CR0.NE on, CR0.TS off; CR4.OSFXSR
/// (FXSAVE/FXRSTOR and SSE) and CR4.OSXMMEXCPT (SSE exceptions as #XM) on.
pub fn init() {
    // SAFETY: only the floating-point bits of CR0 and CR4 change; the kernel uses neither
    // x87 nor SSE, and every user thread gets its own state before it runs.
    unsafe {
        let mut cr0: u64;
        asm!("mov {}, cr0", out(reg) cr0, options(nomem, nostack, preserves_flags));
        cr0 = (cr0 & !(1 << 2) & !(1 << 3)) | (1 << 1) | (1 << 5);
        asm!("mov cr0, {}", in(reg) cr0, options(nomem, nostack, preserves_flags));
        let mut cr4: u64;
        asm!("mov {}, cr4", out(reg) cr4, options(nomem, nostack, preserves_flags));
        cr4 |= (1 << 9) | (1 << 10);
        asm!("mov cr4, {}", in(reg) cr4, options(nomem, nostack, preserves_flags));
        asm!("fninit", options(nomem, nostack));
    }
}

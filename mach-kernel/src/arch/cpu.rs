//! Single-instruction wrappers: port I/O, model-specific and control registers, the time
//! stamp counter, interrupt flag, and ending QEMU. Each is a thin `asm!` with its SAFETY note.

use core::arch::asm;

pub const MSR_EFER: u32 = 0xC000_0080;
pub const MSR_STAR: u32 = 0xC000_0081;
pub const MSR_LSTAR: u32 = 0xC000_0082;
pub const MSR_FMASK: u32 = 0xC000_0084;
pub const MSR_FS_BASE: u32 = 0xC000_0100;
pub const MSR_GS_BASE: u32 = 0xC000_0101;
pub const MSR_KERNEL_GS_BASE: u32 = 0xC000_0102;

/// # Safety
/// Writing an I/O port can reprogram hardware; the caller owns the device behind it.
pub unsafe fn outb(port: u16, value: u8) {
    // SAFETY: delegated to the caller.
    unsafe { asm!("out dx, al", in("dx") port, in("al") value, options(nomem, nostack, preserves_flags)) };
}

/// # Safety
/// Reading some ports has side effects; the caller owns the device behind it.
pub unsafe fn inb(port: u16) -> u8 {
    let value: u8;
    // SAFETY: delegated to the caller.
    unsafe { asm!("in al, dx", out("al") value, in("dx") port, options(nomem, nostack, preserves_flags)) };
    value
}

/// # Safety
/// `msr` must exist on this CPU.
pub unsafe fn rdmsr(msr: u32) -> u64 {
    let (high, low): (u32, u32);
    // SAFETY: delegated to the caller.
    unsafe {
        asm!("rdmsr", in("ecx") msr, out("eax") low, out("edx") high, options(nomem, nostack, preserves_flags))
    };
    ((high as u64) << 32) | low as u64
}

/// # Safety
/// `msr` must exist and the value must be one the kernel is prepared for.
pub unsafe fn wrmsr(msr: u32, value: u64) {
    // SAFETY: delegated to the caller.
    unsafe {
        asm!("wrmsr", in("ecx") msr, in("eax") value as u32, in("edx") (value >> 32) as u32,
             options(nostack, preserves_flags))
    };
}

pub fn read_cr2() -> u64 {
    let value;
    // SAFETY: reading CR2 has no side effects.
    unsafe { asm!("mov {}, cr2", out(reg) value, options(nomem, nostack, preserves_flags)) };
    value
}

pub fn read_cr3() -> u64 {
    let value;
    // SAFETY: reading CR3 has no side effects.
    unsafe { asm!("mov {}, cr3", out(reg) value, options(nomem, nostack, preserves_flags)) };
    value
}

/// # Safety
/// `pml4` must be the physical address of page tables that map the running kernel.
pub unsafe fn write_cr3(pml4: u64) {
    // SAFETY: delegated to the caller.
    unsafe { asm!("mov cr3, {}", in(reg) pml4, options(nostack, preserves_flags)) };
}

pub fn rdtsc() -> u64 {
    // SAFETY: rdtsc only reads the time-stamp counter.
    unsafe { core::arch::x86_64::_rdtsc() }
}

/// Wait for the next interrupt with interrupts enabled, then disable them again.
pub fn wait_for_interrupt() {
    // SAFETY: the kernel is ready for interrupts whenever it idles; `sti; hlt` is atomic.
    unsafe { asm!("sti", "hlt", "cli", options(nomem, nostack)) };
}

/// Let pending interrupts in for a moment (a preemption point in a long trap): the timer may
/// switch to another thread here, so the caller must hold no lock and no reference into
/// kernel state that another thread could change.
pub fn let_interrupts_in() {
    // SAFETY: the kernel takes interrupts at any point where it holds no lock (as when it
    // idles); `sti` takes effect after the next instruction, so the `nop` is the window. Not
    // `nomem`: memory may change while other threads run.
    unsafe { asm!("sti", "nop", "cli", options(nostack)) };
}

pub fn has_nx() -> bool {
    core::arch::x86_64::__cpuid(0x8000_0001).edx & (1 << 20) != 0
}

/// How many bits a physical address has on this CPU (MAXPHYADDR): page-table entries with
/// an address at or above `1 << bits` are invalid.
pub fn physical_address_bits() -> u32 {
    // Leaf 0x80000008 exists on every x86-64 CPU.
    let bits = core::arch::x86_64::__cpuid(0x8000_0008).eax & 0xff;
    if bits == 0 { 36 } else { bits }
}

/// Stop QEMU through isa-debug-exit with `code` (QEMU exits with `code * 2 + 1`); without
/// that device, halt the CPU for good.
pub fn exit_qemu(code: u8) -> ! {
    // SAFETY: port 0xf4 is isa-debug-exit in every configuration Machina runs in.
    unsafe { outb(0xf4, code) };
    loop {
        // SAFETY: halting with interrupts disabled parks this CPU.
        unsafe { asm!("cli", "hlt", options(nomem, nostack)) };
    }
}

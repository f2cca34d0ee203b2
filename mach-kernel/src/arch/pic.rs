//! The legacy 8259 interrupt controllers, remapped to vectors 32..47, and the 8254 PIT as
//! the periodic timer on IRQ 0. Simple and present on every QEMU `pc` machine; the LAPIC
//! and IOAPIC can replace them without changing what the rest of the kernel sees.

use super::cpu::{inb, outb};

pub const IRQ_BASE: u64 = 32;
pub const TIMER_HZ: u64 = 100;
const PIT_FREQUENCY: u64 = 1_193_182;

pub fn init() {
    // SAFETY: the kernel owns the PICs and the PIT; this is their documented init sequence.
    unsafe {
        outb(0x20, 0x11);
        outb(0xA0, 0x11);
        outb(0x21, IRQ_BASE as u8);
        outb(0xA1, IRQ_BASE as u8 + 8);
        outb(0x21, 4);
        outb(0xA1, 2);
        outb(0x21, 1);
        outb(0xA1, 1);
        // Mask everything but the timer (IRQ 0) and the cascade (IRQ 2).
        outb(0x21, 0b1111_1010);
        outb(0xA1, 0xff);

        let divisor = (PIT_FREQUENCY / TIMER_HZ) as u16;
        outb(0x43, 0x36); // channel 0, lobyte/hibyte, square wave
        outb(0x40, divisor as u8);
        outb(0x40, (divisor >> 8) as u8);
    }
}

/// Mask (`masked`) or unmask interrupt line `irq` (0..16) at its controller.
pub fn set_masked(irq: u8, masked: bool) {
    let (port, bit) = if irq < 8 { (0x21, irq) } else { (0xA1, irq - 8) };
    // SAFETY: read-modify-write of the PIC's interrupt mask register.
    unsafe {
        let mask = inb(port);
        outb(port, if masked { mask | (1 << bit) } else { mask & !(1 << bit) });
    }
}

/// Acknowledge `irq` at the controller(s).
pub fn end_of_interrupt(irq: u8) {
    // SAFETY: writing EOI to the PICs only re-arms them.
    unsafe {
        if irq >= 8 {
            outb(0xA0, 0x20);
        }
        outb(0x20, 0x20);
    }
}

/// Whether the PIC really raised `irq` (7 and 15 can be spurious).
pub fn is_spurious(irq: u8) -> bool {
    let (port, bit) = match irq {
        7 => (0x20, 7),
        15 => (0xA0, 7),
        _ => return false,
    };
    // SAFETY: OCW3 "read ISR" then a read of the same port; no other effect.
    let isr = unsafe {
        outb(port, 0x0B);
        inb(port)
    };
    isr & (1 << bit) == 0
}

//! Device access for user-space drivers, through the host port: I/O ports, device memory,
//! DMA memory, interrupts as messages.

use crate::ipc::PortName;
use crate::trap_call as call;
use mach_abi::{KernelError, trap};

/// Let `task` use I/O ports `[first, first + count)`.
pub fn io_ports(host: PortName, task: PortName, first: u16, count: u32) -> Result<(), KernelError> {
    call(trap::HOST_IO_PORTS, [host as u64, task as u64, first as u64, count as u64, 0, 0]).map(|_| ())
}

/// Map the device range at `physical` (outside RAM) into `task` at `address`, uncached.
pub fn map_physical(
    host: PortName,
    task: PortName,
    physical: u64,
    address: u64,
    size: u64,
) -> Result<(), KernelError> {
    call(trap::HOST_MAP_PHYSICAL, [host as u64, task as u64, physical, address, size, 0]).map(|_| ())
}

/// Physically contiguous zeroed memory in `task`: (address in the task, physical address).
pub fn dma_allocate(host: PortName, task: PortName, size: u64) -> Result<(u64, u64), KernelError> {
    let mut out = [0u64; 2];
    call(trap::HOST_DMA_ALLOCATE, [host as u64, task as u64, size, out.as_mut_ptr() as u64, 0, 0])?;
    Ok((out[0], out[1]))
}

/// Interrupt line `irq` becomes messages (`mach_abi::IRQ_MESSAGE`) on `port`, carried as
/// `how` (MAKE_SEND for a receive right the caller holds); `port` 0 stops.
pub fn irq_register(host: PortName, irq: u8, port: PortName, how: u8) -> Result<(), KernelError> {
    call(trap::HOST_IRQ_REGISTER, [host as u64, irq as u64, port as u64, how as u64, 0, 0]).map(|_| ())
}

/// The interrupt was handled: unmask the line.
pub fn irq_ack(host: PortName, irq: u8) -> Result<(), KernelError> {
    call(trap::HOST_IRQ_ACK, [host as u64, irq as u64, 0, 0, 0, 0]).map(|_| ())
}

/// # Safety
/// The port must belong to a device this task drives (granted with `io_ports`).
pub unsafe fn outb(port: u16, value: u8) {
    // SAFETY: delegated to the caller; without a grant the CPU raises #GP instead.
    unsafe { core::arch::asm!("out dx, al", in("dx") port, in("al") value, options(nomem, nostack)) };
}

/// # Safety
/// As [`outb`].
pub unsafe fn inb(port: u16) -> u8 {
    let value: u8;
    // SAFETY: delegated to the caller.
    unsafe { core::arch::asm!("in al, dx", out("al") value, in("dx") port, options(nomem, nostack)) };
    value
}

//! COM1, a 16550 UART, driven from user space through the `uart_16550` crate: the eight
//! registers at 0x3f8, which the server may touch once the host port granted them
//! (`libmach::device::io_ports`); `in` and `out` then work in ring 3 (the kernel loads the
//! task's I/O permission bitmap). The crate sets the line up (38400 8N1, FIFOs, OUT2) and
//! moves bytes (`try_receive`, `try_send_raw`: never its `send`, which rewrites 0x08 and
//! 0x7f into "\b \b" and would corrupt a raw-mode program's output, and never its
//! unbounded `receive` / `send_raw`). The probe of the scratch register and the interrupt
//! enable register are written here, the crate having no call for them.
//!
//! Input is interrupt-driven (IER bit 0 and MCR OUT2 route "data received" to IRQ 4; the
//! server drains the receive FIFO on each IRQ message). Output is polled: wait for the
//! transmit FIFO to be empty (LSR bit 5), then put up to 16 bytes in it. A UART that never
//! becomes ready costs at most [`SPIN_LIMIT`] polls per chunk, and the bytes of that chunk
//! are dropped, so output can never hang the server.
//!
//! This module must never touch a port outside the eight it was granted, and never wait
//! without bound.

use libmach::device::{inb, outb};
use uart_16550::SerialPort;

/// COM1's base port and interrupt line.
pub const COM1: u16 = 0x3f8;
pub const COM1_IRQ: u8 = 4;
/// Registers granted: base .. base + 8.
pub const REGISTERS: u32 = 8;

const IER: u16 = 1; // interrupt enable
const SCRATCH: u16 = 7;
const IER_RECEIVED_DATA: u8 = 0x01;
const FIFO_SIZE: usize = 16;

/// The most polls for an empty transmitter before a chunk is given up.
pub const SPIN_LIMIT: u32 = 1_000_000;

pub struct Uart {
    base: u16,
    port: SerialPort,
}

impl Uart {
    /// # Safety
    /// The task holds an I/O-port grant for `base .. base + 8`, and nothing else in the task
    /// drives this UART.
    pub const unsafe fn new(base: u16) -> Uart {
        // SAFETY: the caller's promise: `base` is a 16550 this task was granted.
        Uart { base, port: unsafe { SerialPort::new(base) } }
    }

    fn read(&self, register: u16) -> u8 {
        // SAFETY: `register` < 8, inside the grant `new` was promised; reading these
        // registers has no effect beyond the UART.
        unsafe { inb(self.base + register) }
    }

    fn write(&mut self, register: u16, value: u8) {
        // SAFETY: as in `read`; the UART is this server's alone.
        unsafe { outb(self.base + register, value) }
    }

    /// Is there a UART (the scratch register keeps what is written to it)?
    pub fn present(&mut self) -> bool {
        [0x5a, 0xa5].into_iter().all(|value| {
            self.write(SCRATCH, value);
            self.read(SCRATCH) == value
        })
    }

    /// 38400 8N1, FIFOs on and cleared, interrupt line enabled (MCR OUT2) but no interrupt
    /// source yet (see [`Uart::enable_receive_interrupt`]): the crate's `init` turns the
    /// receive interrupt on, which must wait until its IRQ is registered.
    pub fn init(&mut self) {
        self.port.init();
        self.write(IER, 0);
    }

    /// Received data (and the receive FIFO's timeout) raise the interrupt.
    pub fn enable_receive_interrupt(&mut self) {
        self.write(IER, IER_RECEIVED_DATA);
    }

    /// The next received byte, if one is waiting.
    pub fn try_read(&mut self) -> Option<u8> {
        self.port.try_receive().ok()
    }

    /// Send `chunk` (at most a FIFO's worth), each byte once the transmitter has room; false
    /// if it did not within [`SPIN_LIMIT`] polls in all (the rest was not sent).
    fn send_chunk(&mut self, chunk: &[u8]) -> bool {
        let mut polls = 0;
        for &b in chunk {
            while self.port.try_send_raw(b).is_err() {
                polls += 1;
                if polls >= SPIN_LIMIT {
                    return false;
                }
                core::hint::spin_loop();
            }
        }
        true
    }
}

/// Bytes on their way to the UART, 16 at a time (a transmit FIFO's worth per wait). Counts
/// what went out; [`Writer::finish`] sends the rest. Once a chunk could not be sent, the rest
/// of this writer's bytes are dropped without waiting again (a stuck UART costs one
/// [`SPIN_LIMIT`] per write, not one per chunk).
pub struct Writer<'u> {
    uart: &'u mut Uart,
    chunk: [u8; FIFO_SIZE],
    len: usize,
    sent: u64,
    stalled: bool,
}

impl<'u> Writer<'u> {
    pub fn new(uart: &'u mut Uart) -> Writer<'u> {
        Writer { uart, chunk: [0; FIFO_SIZE], len: 0, sent: 0, stalled: false }
    }

    /// The UART itself (to read from it between writes).
    pub fn uart(&mut self) -> &mut Uart {
        self.uart
    }

    pub fn put(&mut self, b: u8) {
        if let Some(slot) = self.chunk.get_mut(self.len) {
            *slot = b;
            self.len += 1;
        }
        if self.len == FIFO_SIZE {
            self.flush();
        }
    }

    fn flush(&mut self) {
        let chunk = self.chunk.get(..self.len).unwrap_or(&[]);
        if !self.stalled && self.uart.send_chunk(chunk) {
            self.sent += self.len as u64;
        } else {
            self.stalled = true;
        }
        self.len = 0;
    }

    /// Send what is left; returns the bytes that went out in all.
    pub fn finish(mut self) -> u64 {
        if self.len > 0 {
            self.flush();
        }
        self.sent
    }
}

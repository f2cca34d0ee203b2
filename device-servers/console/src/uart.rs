//! COM1, a 16550 UART, driven from user space: the eight registers at 0x3f8, which the
//! server may touch once the host port granted them (`libmach::device::io_ports`); `in` and
//! `out` then work in ring 3 (the kernel loads the task's I/O permission bitmap).
//!
//! The register accesses are written here with `libmach::device::{inb, outb}` rather than
//! with the `uart_16550` crate. That crate does build for `x86_64-unknown-none` on stable
//! (0.3.2 was checked), but it brings three more crates (`x86`, `raw-cpuid`, `bitflags` 1)
//! into the shared lock file for six registers, its `send` rewrites 0x08 and 0x7f into
//! "\b \b" (which would corrupt a raw-mode program's output), and its waits for the
//! transmitter have no bound. What the server needs is a non-blocking receive, a bounded
//! polled transmit and the receive interrupt: the few lines below.
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

/// COM1's base port and interrupt line.
pub const COM1: u16 = 0x3f8;
pub const COM1_IRQ: u8 = 4;
/// Registers granted: base .. base + 8.
pub const REGISTERS: u32 = 8;

const DATA: u16 = 0; // RBR (read) / THR (write); divisor low with DLAB
const IER: u16 = 1; // interrupt enable; divisor high with DLAB
const FCR: u16 = 2; // FIFO control (write)
const LCR: u16 = 3;
const MCR: u16 = 4;
const LSR: u16 = 5;
const SCRATCH: u16 = 7;

const LSR_DATA_READY: u8 = 0x01;
const LSR_THR_EMPTY: u8 = 0x20;
const IER_RECEIVED_DATA: u8 = 0x01;
const LCR_DLAB: u8 = 0x80;
const LCR_8N1: u8 = 0x03;
/// Enable the FIFOs, clear both, interrupt at 14 bytes.
const FCR_ENABLE_CLEAR_14: u8 = 0xc7;
/// DTR, RTS and OUT2 (which gates the interrupt line on PC UARTs).
const MCR_DTR_RTS_OUT2: u8 = 0x0b;
/// 115200 / 3 = 38400 baud, what `Termios::sane()`'s cflag says.
const DIVISOR: u16 = 3;
const FIFO_SIZE: usize = 16;

/// The most polls of LSR for an empty transmitter before a chunk is given up.
pub const SPIN_LIMIT: u32 = 1_000_000;

pub struct Uart {
    base: u16,
}

impl Uart {
    /// # Safety
    /// The task holds an I/O-port grant for `base .. base + 8`, and nothing else in the task
    /// drives this UART.
    pub const unsafe fn new(base: u16) -> Uart {
        Uart { base }
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
    /// source yet (see [`Uart::enable_receive_interrupt`]).
    pub fn init(&mut self) {
        self.write(IER, 0);
        self.write(LCR, LCR_DLAB);
        self.write(DATA, (DIVISOR & 0xff) as u8);
        self.write(IER, (DIVISOR >> 8) as u8);
        self.write(LCR, LCR_8N1);
        self.write(FCR, FCR_ENABLE_CLEAR_14);
        self.write(MCR, MCR_DTR_RTS_OUT2);
    }

    /// Received data (and the receive FIFO's timeout) raise the interrupt.
    pub fn enable_receive_interrupt(&mut self) {
        self.write(IER, IER_RECEIVED_DATA);
    }

    /// The next received byte, if one is waiting.
    pub fn try_read(&mut self) -> Option<u8> {
        if self.read(LSR) & LSR_DATA_READY != 0 { Some(self.read(DATA)) } else { None }
    }

    /// Put up to 16 bytes into the transmit FIFO once it is empty; false if it did not
    /// become empty within [`SPIN_LIMIT`] polls (the bytes were not sent).
    fn send_chunk(&mut self, chunk: &[u8]) -> bool {
        let mut polls = 0;
        while self.read(LSR) & LSR_THR_EMPTY == 0 {
            polls += 1;
            if polls >= SPIN_LIMIT {
                return false;
            }
            core::hint::spin_loop();
        }
        for &b in chunk {
            self.write(DATA, b);
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

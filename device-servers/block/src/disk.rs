//! The disk: virtio-blk through virtio-drivers' non-blocking request API, one request in
//! flight, completed by its interrupt delivered as a message.
//!
//! Every transfer goes through one DMA buffer of `MAX_TRANSFER` bytes (physically contiguous,
//! so a transfer of up to 128 KiB is one descriptor) with the request header and status byte
//! in a DMA page beside it: `Hal::share` translates those addresses, nothing is copied on the
//! way to the device.
//!
//! A request's completion: submit, then receive on the interrupt port (with a timeout slice),
//! acknowledge at the device (ISR read) and then the line (`host_irq_ack`), and check the used
//! ring; a stale interrupt (one left from a polled flush, or another device on the line) only
//! costs one more round. A request the device does not finish within [`DEADLINE_NS`] is an
//! `Io` error and leaves the disk [`Disk::stuck`]: its buffers still belong to the device, so
//! the server must end and be restarted (which resets the device).
//!
//! This module must never hand virtio-drivers a buffer it would assert on (empty, not whole
//! sectors), never touch the DMA buffer while a request is in flight, and never wait without
//! a deadline.

use crate::hal::{self, MachHal};
use crate::pci::{Found, PortCam};
use interfaces::Error;
use interfaces::blk::{MAX_TRANSFER, SECTOR_SIZE};
use libmach::device::{irq_ack, irq_register};
use libmach::ipc::{MessageBuffer, PortName, ReceiveRight, disposition, port_deallocate};
use mach_abi::{IRQ_MESSAGE, KernelError};
use virtio_drivers::device::blk::{BlkReq, BlkResp, VirtIOBlk};
use virtio_drivers::transport::pci::PciTransport;

/// How long a request may take before the device counts as stuck (TCG is slow; a 128 KiB
/// transfer takes milliseconds).
const DEADLINE_NS: u64 = 10_000_000_000;
/// How long one wait for the interrupt lasts before the used ring is looked at anyway.
const SLICE_MS: u64 = 100;

pub struct Disk {
    blk: VirtIOBlk<MachHal, PciTransport>,
    host: PortName,
    irq: u8,
    irq_port: ReceiveRight,
    irq_message: MessageBuffer<256>,
    /// The DMA data buffer (`MAX_TRANSFER` bytes), the request header and the status byte.
    data: *mut u8,
    req: *mut BlkReq,
    resp: *mut BlkResp,
    /// Interrupt messages taken.
    pub interrupts: u64,
    /// Completions found without their interrupt (after a timeout slice).
    pub missed: u64,
    /// A request timed out and is still the device's: the server must restart.
    pub stuck: bool,
}

/// What a transfer does.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Direction {
    Read,
    Write,
}

impl Disk {
    /// Initialise the device found on the bus and take its interrupt line.
    pub fn new(mut found: Found, host: PortName) -> Result<Disk, &'static str> {
        let transport = PciTransport::new::<MachHal, PortCam>(&mut found.root, found.function)
            .map_err(|_| "virtio-pci transport refused (no modern virtio capabilities?)")?;
        let blk = VirtIOBlk::<MachHal, _>::new(transport).map_err(|_| "virtio-blk initialisation failed")?;

        let io_size = MAX_TRANSFER as u64 + 4096;
        let (virt, _) = hal::dma_region(io_size).ok_or("no DMA memory for the I/O buffer")?;
        let data = virt as *mut u8;
        // The request header and the status byte in the page after the data.
        let req = (virt + MAX_TRANSFER as u64) as *mut BlkReq;
        let resp = (virt + MAX_TRANSFER as u64 + 64) as *mut BlkResp;
        // SAFETY: both lie in the DMA page just allocated for them, suitably aligned (page + 0
        // and page + 64), and nothing else uses that page.
        unsafe {
            req.write(BlkReq::default());
            resp.write(BlkResp::default());
        }

        if !(1..16).contains(&found.irq) || found.irq == 2 {
            return Err("the device has no usable legacy interrupt line");
        }
        let irq_port = ReceiveRight::allocate().map_err(|_| "no interrupt port")?;
        irq_register(host, found.irq, irq_port.name(), disposition::MAKE_SEND)
            .map_err(|_| "irq_register refused the device's line")?;
        let mut disk = Disk {
            blk,
            host,
            irq: found.irq,
            irq_port,
            irq_message: MessageBuffer::new(),
            data,
            req,
            resp,
            interrupts: 0,
            missed: 0,
            stuck: false,
        };
        disk.blk.enable_interrupts();
        Ok(disk)
    }

    pub fn sectors(&self) -> u64 {
        self.blk.capacity()
    }

    pub fn read_only(&self) -> bool {
        self.blk.readonly()
    }

    pub fn irq(&self) -> u8 {
        self.irq
    }

    /// The DMA buffer's address (page aligned), to send read data out of line from.
    pub fn buffer_address(&self) -> u64 {
        self.data as u64
    }

    /// The first `len` bytes of the DMA buffer (`len` at most `MAX_TRANSFER`).
    pub fn buffer(&self, len: usize) -> &[u8] {
        // SAFETY: the buffer is MAX_TRANSFER bytes of our DMA memory; no request is in flight
        // outside `transfer`, which holds `&mut self`.
        unsafe { core::slice::from_raw_parts(self.data, len.min(MAX_TRANSFER)) }
    }

    /// The first `len` bytes of the DMA buffer, to fill before a write.
    pub fn buffer_mut(&mut self, len: usize) -> &mut [u8] {
        // SAFETY: as in `buffer`, and `&mut self` makes this the only reference.
        unsafe { core::slice::from_raw_parts_mut(self.data, len.min(MAX_TRANSFER)) }
    }

    /// Read `count` sectors from `sector` into the buffer (the caller checked the range).
    pub fn read(&mut self, sector: u64, count: u32) -> Result<(), Error> {
        self.transfer(Direction::Read, sector, count as usize * SECTOR_SIZE)
    }

    /// Write the buffer's first `len` bytes (whole sectors) at `sector`.
    pub fn write(&mut self, sector: u64, len: usize) -> Result<(), Error> {
        if self.read_only() {
            return Err(Error::ReadOnly);
        }
        self.transfer(Direction::Write, sector, len)
    }

    /// The device's flush. virtio-drivers offers it only as a blocking request, which polls
    /// the used ring; its header and status byte bounce through the Hal's pool.
    pub fn flush(&mut self) -> Result<(), Error> {
        self.blk.flush().map_err(|_| Error::Io)
    }

    fn transfer(&mut self, direction: Direction, sector: u64, len: usize) -> Result<(), Error> {
        if self.stuck {
            return Err(Error::Io);
        }
        if len == 0 || len > MAX_TRANSFER || !len.is_multiple_of(SECTOR_SIZE) {
            return Err(Error::InvalidArgument);
        }
        let block = usize::try_from(sector).map_err(|_| Error::InvalidArgument)?;
        // SAFETY: `data`, `req` and `resp` point into our DMA memory (see `new`); `&mut self`
        // keeps every other use of them away until the request is completed or the disk is
        // marked stuck (after which they are never used again).
        let (buf, req, resp) =
            unsafe { (core::slice::from_raw_parts_mut(self.data, len), &mut *self.req, &mut *self.resp) };
        // SAFETY: the buffers stay valid and untouched until complete_* below (or forever, when
        // the request times out and the disk is stuck).
        let token = unsafe {
            match direction {
                Direction::Read => self.blk.read_blocks_nb(block, req, buf, resp),
                Direction::Write => self.blk.write_blocks_nb(block, req, buf, resp),
            }
        }
        .map_err(|_| Error::Io)?;
        if !self.wait(token) {
            self.stuck = true;
            return Err(Error::Io);
        }
        // SAFETY: the same buffers as were given to the *_nb call, and the device is done.
        let status = unsafe {
            match direction {
                Direction::Read => self.blk.complete_read_blocks(token, req, buf, resp),
                Direction::Write => self.blk.complete_write_blocks(token, req, buf, resp),
            }
        };
        status.map_err(|_| Error::Io)
    }

    /// Wait for the request `token` to complete; false when the deadline passed first.
    fn wait(&mut self, token: u16) -> bool {
        let deadline = libmach::uptime_ns().saturating_add(DEADLINE_NS);
        loop {
            if self.blk.peek_used() == Some(token) {
                return true;
            }
            match self.irq_message.receive_timeout(self.irq_port.name(), SLICE_MS) {
                Ok(()) => {
                    if self.irq_message.header.id == IRQ_MESSAGE {
                        self.interrupts += 1;
                        // The device first (reading the ISR lowers INTx), then the line.
                        let _ = self.blk.ack_interrupt();
                        let _ = irq_ack(self.host, self.irq);
                    } else if self.irq_message.header.remote != 0 {
                        // Only the kernel holds a send right to this port; drop anything else.
                        let _ = port_deallocate(self.irq_message.header.remote);
                    }
                }
                Err(KernelError::TimedOut) => {
                    if self.blk.peek_used() == Some(token) {
                        self.missed += 1;
                        return true;
                    }
                    if libmach::uptime_ns() > deadline {
                        return false;
                    }
                }
                Err(_) => {
                    if libmach::uptime_ns() > deadline {
                        return false;
                    }
                    libmach::ipc::sleep_ms(1);
                }
            }
        }
    }
}

//! The `virtio_drivers::Hal` of the block server: DMA memory from the kernel's
//! `host_dma_allocate`, device memory (the PCI BARs) mapped with `host_map_physical`, and
//! `share`/`unshare` without a virtual-to-physical trap.
//!
//! The kernel tells a physical address only when it hands out DMA memory, so every address the
//! device is given must lie in memory this module allocated:
//! - a buffer inside one of our DMA regions (the virtqueue, the server's I/O buffer with its
//!   request header and status byte) is translated, no copy: that is the data path;
//! - anything else (the indirect descriptor lists virtio-drivers keeps on the heap, the
//!   request header of a flush on the stack) is bounced through a slot of a small DMA pool, or
//!   through a DMA allocation of its own when it is bigger than a slot: copied to the device's
//!   copy on `share`, copied back on `unshare` when the device wrote it.
//!
//! The `Hal` functions take no `self`, so the state is a static behind a spin lock; the server
//! is single-threaded and no function here calls another while holding it.
//!
//! This module must never hand the device an address it did not get from the kernel, and never
//! panic: what it cannot do (no DMA memory left, a BAR it cannot map) ends the task with a line
//! on the kernel log, as a driver that cannot reach its device must (bootstrap restarts it).

use core::ptr::NonNull;
use libmach::device::{dma_allocate, map_physical};
use libmach::ipc::PortName;
use libmach::println;
use libmach::task::vm_deallocate;
use spin::Mutex;
use virtio_drivers::{BufferDirection, Hal, PhysAddr};

const PAGE: u64 = 4096;
/// Where device memory (BARs) is mapped: far from programs, the heap (0x3000_0000_0000),
/// stacks and the kernel's "anywhere" placements.
pub const MMIO_WINDOW: u64 = 0x6000_0000_0000;
/// Bounce slots: small buffers (descriptor lists, request headers, status bytes).
const SLOT: u64 = 256;
const SLOTS: u64 = 64;
const POOL_BYTES: u64 = SLOT * SLOTS;

/// A run of memory: its address in this task, its physical address, its size in bytes.
#[derive(Clone, Copy)]
struct Region {
    virt: u64,
    phys: u64,
    size: u64,
}

impl Region {
    fn holds_virt(&self, virt: u64, len: u64) -> bool {
        virt >= self.virt && virt.checked_add(len).is_some_and(|end| end <= self.virt + self.size)
    }
    fn holds_phys(&self, phys: u64, len: u64) -> bool {
        phys >= self.phys && phys.checked_add(len).is_some_and(|end| end <= self.phys + self.size)
    }
}

struct State {
    host: PortName,
    task: PortName,
    /// DMA memory this task owns (virtqueues, the I/O buffer), translated without copying.
    dma: [Option<Region>; 16],
    /// Device memory mapped for the BARs.
    mmio: [Option<Region>; 8],
    /// Next free address in the MMIO window.
    mmio_next: u64,
    /// The bounce pool (allocated at `init`) and which of its slots are taken.
    pool: Option<Region>,
    pool_used: u64,
    /// Bounces too big for a slot: a DMA allocation each, freed on unshare.
    big: [Option<Region>; 4],
}

static STATE: Mutex<State> = Mutex::new(State {
    host: 0,
    task: 0,
    dma: [None; 16],
    mmio: [None; 8],
    mmio_next: MMIO_WINDOW,
    pool: None,
    pool_used: 0,
    big: [None; 4],
});

/// End the task: the device cannot be driven safely any more.
pub fn fatal(why: &str) -> ! {
    println!("fatal: {why}");
    libmach::task_exit(3)
}

/// Remember the host and task ports and allocate the bounce pool.
pub fn init(host: PortName, task: PortName) -> Result<(), &'static str> {
    let mut s = STATE.lock();
    s.host = host;
    s.task = task;
    let (virt, phys) =
        dma_allocate(host, task, POOL_BYTES).map_err(|_| "no DMA memory for the bounce pool")?;
    s.pool = Some(Region { virt, phys, size: POOL_BYTES });
    Ok(())
}

/// DMA memory of `size` bytes (page multiple) that the data path uses without copying:
/// (address in this task, physical address).
pub fn dma_region(size: u64) -> Option<(u64, u64)> {
    let mut s = STATE.lock();
    let (virt, phys) = dma_allocate(s.host, s.task, size).ok()?;
    let region = Region { virt, phys, size };
    match s.dma.iter_mut().find(|r| r.is_none()) {
        Some(slot) => *slot = Some(region),
        None => {
            let _ = vm_deallocate(s.task, virt, size);
            return None;
        }
    }
    Some((virt, phys))
}

/// Map the device memory `[phys, phys + size)` (a memory BAR) unless it is mapped already.
pub fn map_device_memory(phys: u64, size: u64) -> Result<(), &'static str> {
    let mut s = STATE.lock();
    map_locked(&mut s, phys, size).map(|_| ())
}

fn map_locked(s: &mut State, phys: u64, size: u64) -> Result<u64, &'static str> {
    let size = size.max(1);
    if let Some(r) = s.mmio.iter().flatten().find(|r| r.holds_phys(phys, size)) {
        return Ok(r.virt + (phys - r.phys));
    }
    let first = phys & !(PAGE - 1);
    let end = phys.checked_add(size).ok_or("device memory past the address space")?.next_multiple_of(PAGE);
    let pages = end - first;
    let slot = s.mmio.iter().position(|r| r.is_none()).ok_or("too many device memory ranges")?;
    let virt = s.mmio_next;
    map_physical(s.host, s.task, first, virt, pages).map_err(|_| "map_physical refused a BAR")?;
    s.mmio_next = virt + pages + PAGE; // a guard page between ranges
    s.mmio[slot] = Some(Region { virt, phys: first, size: pages });
    Ok(virt + (phys - first))
}

/// The physical address of `virt..virt + len` if it lies in our DMA memory.
fn translate(s: &State, virt: u64, len: u64) -> Option<u64> {
    s.dma.iter().flatten().find(|r| r.holds_virt(virt, len)).map(|r| r.phys + (virt - r.virt))
}

/// The server's `Hal` (all state in [`STATE`]).
pub struct MachHal;

// SAFETY: dma_alloc returns zeroed, page-aligned, physically contiguous memory that this task
// alone maps (the kernel's `host_dma_allocate`), recorded until dma_dealloc; mmio_phys_to_virt
// returns addresses of device memory mapped for exactly the asked range; share returns a
// physical address of memory the device may use for the buffer's length (ours, translated or
// bounced), and unshare copies bounced data back and releases the bounce.
unsafe impl Hal for MachHal {
    fn dma_alloc(pages: usize, _direction: BufferDirection) -> (PhysAddr, NonNull<u8>) {
        let size = pages as u64 * PAGE;
        match dma_region(size) {
            Some((virt, phys)) => match NonNull::new(virt as *mut u8) {
                Some(p) => (phys, p),
                None => (0, NonNull::dangling()),
            },
            // virtio-drivers turns a zero physical address into `Error::DmaError`.
            None => (0, NonNull::dangling()),
        }
    }

    unsafe fn dma_dealloc(paddr: PhysAddr, vaddr: NonNull<u8>, pages: usize) -> i32 {
        let mut s = STATE.lock();
        let virt = vaddr.as_ptr() as u64;
        if let Some(slot) = s.dma.iter_mut().find(|r| r.is_some_and(|r| r.virt == virt && r.phys == paddr)) {
            *slot = None;
        }
        // The pages go back to the kernel; a failure only leaks them (virtio-drivers asserts 0).
        let _ = vm_deallocate(s.task, virt, pages as u64 * PAGE);
        0
    }

    unsafe fn mmio_phys_to_virt(paddr: PhysAddr, size: usize) -> NonNull<u8> {
        let mut s = STATE.lock();
        match map_locked(&mut s, paddr, size as u64) {
            Ok(virt) => NonNull::new(virt as *mut u8).unwrap_or_else(|| fatal("device memory at 0")),
            Err(why) => {
                drop(s);
                fatal(why)
            }
        }
    }

    unsafe fn share(buffer: NonNull<[u8]>, direction: BufferDirection) -> PhysAddr {
        let virt = buffer.as_ptr() as *mut u8 as u64;
        let len = buffer.len() as u64;
        let mut s = STATE.lock();
        if let Some(phys) = translate(&s, virt, len) {
            return phys;
        }
        // Bounce: a pool slot when it fits, else a DMA allocation of its own.
        let bounce = match (s.pool, len <= SLOT) {
            (Some(pool), true) if s.pool_used != u64::MAX => {
                let i = (!s.pool_used).trailing_zeros() as u64;
                s.pool_used |= 1 << i;
                Region { virt: pool.virt + i * SLOT, phys: pool.phys + i * SLOT, size: SLOT }
            }
            _ => {
                let size = len.next_multiple_of(PAGE);
                let Some(slot) = s.big.iter().position(|r| r.is_none()) else {
                    drop(s);
                    fatal("too many bounce buffers")
                };
                let Ok((virt, phys)) = dma_allocate(s.host, s.task, size) else {
                    drop(s);
                    fatal("no DMA memory for a bounce buffer")
                };
                let region = Region { virt, phys, size };
                s.big[slot] = Some(region);
                region
            }
        };
        if direction != BufferDirection::DeviceToDriver {
            // SAFETY: the caller's buffer is valid for `len` bytes (share's contract) and the
            // bounce region is ours, at least `len` bytes, and no one else uses it.
            unsafe {
                core::ptr::copy_nonoverlapping(virt as *const u8, bounce.virt as *mut u8, len as usize)
            };
        }
        bounce.phys
    }

    unsafe fn unshare(paddr: PhysAddr, buffer: NonNull<[u8]>, direction: BufferDirection) {
        let virt = buffer.as_ptr() as *mut u8 as u64;
        let len = buffer.len() as u64;
        let mut s = STATE.lock();
        if translate(&s, virt, len) == Some(paddr) {
            return; // our own DMA memory: nothing was copied
        }
        // (the bounce, whether it is a DMA allocation of its own)
        let bounce = if let Some(pool) = s.pool.filter(|p| p.holds_phys(paddr, 1)) {
            let i = (paddr - pool.phys) / SLOT;
            s.pool_used &= !(1 << i);
            Some((Region { virt: pool.virt + i * SLOT, phys: pool.phys + i * SLOT, size: SLOT }, false))
        } else if let Some(slot) = s.big.iter_mut().find(|r| r.is_some_and(|r| r.phys == paddr)) {
            slot.take().map(|r| (r, true))
        } else {
            None
        };
        let Some((bounce, own)) = bounce else { return };
        if direction != BufferDirection::DriverToDevice {
            // SAFETY: the bounce region holds the device's copy of the buffer (at least `len`
            // bytes, ours) and the caller's buffer is valid for `len` bytes (unshare's contract).
            unsafe {
                core::ptr::copy_nonoverlapping(
                    bounce.virt as *const u8,
                    virt as *mut u8,
                    len.min(bounce.size) as usize,
                )
            };
        }
        if own {
            let _ = vm_deallocate(s.task, bounce.virt, bounce.size);
        }
    }
}

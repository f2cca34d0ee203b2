//! Physical and virtual memory: the frame allocator, page tables (kernel and per task), and
//! the kernel heap. Physical memory is reached through the higher-half direct map (HHDM).

pub mod frames;
pub mod heap;
pub mod paging;
pub mod user;

use core::sync::atomic::{AtomicU64, Ordering};

pub const PAGE_SIZE: u64 = 4096;

static HHDM_OFFSET: AtomicU64 = AtomicU64::new(0);
/// The end of the physical range the direct map covers (RAM and the low 4 GiB).
static HHDM_END: AtomicU64 = AtomicU64::new(0);

/// Where the direct map is, and the physical end it covers (set once at boot).
pub fn set_hhdm(offset: u64, end: u64) {
    HHDM_OFFSET.store(offset, Ordering::Relaxed);
    HHDM_END.store(end, Ordering::Relaxed);
}

/// The kernel virtual address of physical address `physical`, which must be memory the
/// kernel manages (a frame it allocated, a boot module): always inside the direct map.
pub fn phys_to_virt(physical: u64) -> u64 {
    debug_assert!(physical < HHDM_END.load(Ordering::Relaxed));
    physical + HHDM_OFFSET.load(Ordering::Relaxed)
}

/// The kernel virtual address of `[physical, physical + len)` if the direct map covers all
/// of it; None otherwise (device memory far up, or a range crossing the map's end).
pub fn direct_map(physical: u64, len: u64) -> Option<u64> {
    let end = physical.checked_add(len)?;
    (end <= HHDM_END.load(Ordering::Relaxed)).then(|| physical + HHDM_OFFSET.load(Ordering::Relaxed))
}

//! Physical and virtual memory: the frame allocator, page tables (kernel and per task), and
//! the kernel heap. Physical memory is reached through the higher-half direct map (HHDM).

pub mod frames;
pub mod heap;
pub mod paging;

use core::sync::atomic::{AtomicU64, Ordering};

pub const PAGE_SIZE: u64 = 4096;

static HHDM_OFFSET: AtomicU64 = AtomicU64::new(0);

pub fn set_hhdm_offset(offset: u64) {
    HHDM_OFFSET.store(offset, Ordering::Relaxed);
}

/// The kernel virtual address of physical address `physical`.
pub fn phys_to_virt(physical: u64) -> u64 {
    physical + HHDM_OFFSET.load(Ordering::Relaxed)
}

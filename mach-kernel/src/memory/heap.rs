//! The kernel heap: a fixed run of contiguous frames handed to a linked-list allocator.
//! Hot paths (messages, traps) must not depend on it; it holds long-lived kernel objects.

use linked_list_allocator::LockedHeap;

const HEAP_FRAMES: usize = 1024; // 4 MiB

#[global_allocator]
static HEAP: LockedHeap = LockedHeap::empty();

pub fn init() {
    let base = super::frames::alloc_contiguous_zeroed(HEAP_FRAMES).expect("no memory for the kernel heap");
    let size = HEAP_FRAMES * super::PAGE_SIZE as usize;
    // SAFETY: the frames are ours for the kernel's life and mapped by the HHDM.
    unsafe { HEAP.lock().init(super::phys_to_virt(base) as *mut u8, size) };
}

//! The user heap: `alloc` (Box, Vec, BTreeMap) for servers and programs built on libmach.
//!
//! The heap is one growing run of pages at [`HEAP_BASE`] in the task's own space: it starts
//! empty and grows by `vm_allocate` at its end, in steps of at least [`GROWTH`], whenever an
//! allocation does not fit. It never gives memory back (a server's heap is as big as its
//! busiest moment). It must never allocate itself: growth is a trap, not an allocation.

use core::alloc::{GlobalAlloc, Layout};
use core::ptr::NonNull;
use linked_list_allocator::Heap;
use spin::Mutex;

/// Where the heap starts (far from programs, stacks, module windows and "anywhere" mappings).
pub const HEAP_BASE: u64 = 0x3000_0000_0000;
/// The most the heap grows to (1 GiB).
pub const HEAP_LIMIT: u64 = 1 << 30;
/// The smallest step the heap grows by.
pub const GROWTH: u64 = 256 * 1024;

pub struct UserHeap {
    heap: Mutex<Option<Heap>>,
}

impl UserHeap {
    pub const fn new() -> Self {
        UserHeap { heap: Mutex::new(None) }
    }
}

impl Default for UserHeap {
    fn default() -> Self {
        Self::new()
    }
}

/// Map `size` more bytes at `at` in this task.
fn grow_at(at: u64, size: u64) -> bool {
    let Ok(me) = crate::ipc::task_self() else { return false };
    let done = crate::task::vm_allocate(me, at, size, mach_abi::protection::WRITE).is_ok();
    let _ = crate::ipc::port_deallocate(me);
    done
}

// SAFETY: every heap operation runs under the mutex; memory handed out comes from the
// linked-list heap over pages this task mapped for it and never unmaps.
unsafe impl GlobalAlloc for UserHeap {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let mut guard = self.heap.lock();
        if let Some(heap) = guard.as_mut()
            && let Ok(p) = heap.allocate_first_fit(layout)
        {
            return p.as_ptr();
        }
        let step = (layout.size() as u64 + layout.align() as u64 + 4096).next_multiple_of(GROWTH);
        let (start, size) = match guard.as_ref() {
            None => (HEAP_BASE, 0),
            Some(heap) => (heap.bottom() as u64, heap.size() as u64),
        };
        if size + step > HEAP_LIMIT || !grow_at(start + size, step) {
            return core::ptr::null_mut();
        }
        match guard.as_mut() {
            // SAFETY: `step` bytes right after the heap's end were just mapped for it alone.
            Some(heap) => unsafe { heap.extend(step as usize) },
            // SAFETY: as above, at the heap's start.
            None => *guard = Some(unsafe { Heap::new(HEAP_BASE as *mut u8, step as usize) }),
        }
        guard
            .as_mut()
            .and_then(|heap| heap.allocate_first_fit(layout).ok())
            .map_or(core::ptr::null_mut(), |p| p.as_ptr())
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        if let (Some(heap), Some(p)) = (self.heap.lock().as_mut(), NonNull::new(ptr)) {
            // SAFETY: `ptr` came from `alloc` of this heap with this layout (GlobalAlloc's contract).
            unsafe { heap.deallocate(p, layout) };
        }
    }
}

#[cfg(all(not(test), target_os = "none"))]
#[global_allocator]
static HEAP: UserHeap = UserHeap::new();

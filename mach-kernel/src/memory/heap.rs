//! The kernel heap: arenas, each a linked-list allocator over its own GiB of kernel address
//! space (the heap region every address space shares), backed by frames mapped one by one,
//! so growing never needs physically contiguous memory. It starts with one arena and adds
//! another when an allocation fits in none (the frame allocator keeps a reserve only the heap
//! may take); an arena that becomes empty goes back, frames and page tables, except the first.
//!
//! What user space makes the kernel keep (ports, names, queued messages, tasks, threads)
//! lives here, and an allocation that fails stops the kernel. So every trap that makes such
//! objects asks [`room_for_user_objects`] first and answers `NoMemory` when the heap could no
//! longer at least double what it holds now: the kernel's own allocations after the check
//! (a table growing, an event list) always find room. Hot paths (the IPC fast path) must not
//! allocate at all.

use super::paging::{HEAP_BASE, HEAP_SLOT_SIZE, free_heap_slot, map_heap_page};
use super::{PAGE_SIZE, frames};
use core::alloc::{GlobalAlloc, Layout};
use core::ptr::NonNull;
use linked_list_allocator::Heap;
use mach_abi::KernelError;
use spin::Mutex;

/// Frames of the first arena and the least a new arena takes (4 MiB).
const ARENA_FRAMES: usize = 1024;
/// One arena per GiB slot of the heap region.
const MAX_ARENAS: usize = 512;
/// Heap room a user-made object must leave besides doubling what is in use.
const MARGIN: usize = 4 << 20;

struct Arena {
    heap: Heap,
    /// Bytes mapped from the slot's start.
    bytes: usize,
}

fn slot_start(slot: usize) -> u64 {
    HEAP_BASE + slot as u64 * HEAP_SLOT_SIZE
}

struct Arenas {
    arenas: [Option<Arena>; MAX_ARENAS],
    /// Bytes of all arenas, and bytes handed out.
    size: usize,
    used: usize,
}

struct GrowingHeap(Mutex<Arenas>);

#[global_allocator]
static HEAP: GrowingHeap =
    GrowingHeap(Mutex::new(Arenas { arenas: [const { None }; MAX_ARENAS], size: 0, used: 0 }));

impl Arenas {
    fn allocate(&mut self, layout: Layout) -> Option<NonNull<u8>> {
        self.arenas.iter_mut().flatten().find_map(|a| a.heap.allocate_first_fit(layout).ok())
    }

    /// Map a new arena big enough for `layout` (at least 4 MiB) in a free slot, with frames
    /// from the reserve if need be. False when there is no slot or not enough memory.
    fn grow(&mut self, layout: Layout) -> bool {
        let needed = (layout.size() + layout.align() + 64).div_ceil(PAGE_SIZE as usize);
        let pages = needed.max(ARENA_FRAMES);
        let Some((slot, free)) = self.arenas.iter_mut().enumerate().find(|(_, a)| a.is_none()) else {
            return false;
        };
        let start = slot_start(slot);
        let bytes = pages * PAGE_SIZE as usize;
        if bytes as u64 > HEAP_SLOT_SIZE {
            return false;
        }
        for page in 0..pages as u64 {
            let mapped = frames::alloc_for_heap()
                .map(|frame| map_heap_page(start + page * PAGE_SIZE, frame).map_err(|_| frames::free(frame)));
            if !matches!(mapped, Some(Ok(()))) {
                free_heap_slot(start);
                return false;
            }
        }
        // SAFETY: the slot's pages were just mapped for this arena alone, until it is freed.
        let heap = unsafe { Heap::new(start as *mut u8, bytes) };
        *free = Some(Arena { heap, bytes });
        self.size += bytes;
        true
    }
}

// SAFETY: allocations come from arenas the heap owns, each handed out once by its
// linked-list allocator and given back to the arena that contains it.
unsafe impl GlobalAlloc for GrowingHeap {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let mut arenas = self.0.lock();
        let pointer = match arenas.allocate(layout) {
            Some(p) => Some(p),
            None if arenas.grow(layout) => arenas.allocate(layout),
            None => None,
        };
        match pointer {
            Some(p) => {
                arenas.used += layout.size();
                p.as_ptr()
            }
            None => core::ptr::null_mut(),
        }
    }

    unsafe fn dealloc(&self, pointer: *mut u8, layout: Layout) {
        let Some(pointer) = NonNull::new(pointer) else { return };
        let address = pointer.as_ptr() as u64;
        let slot = (address.wrapping_sub(HEAP_BASE) / HEAP_SLOT_SIZE) as usize;
        let mut arenas = self.0.lock();
        arenas.used -= layout.size();
        let Some(Some(arena)) = arenas.arenas.get_mut(slot) else {
            panic!("kernel heap: freeing {address:#x}, which no arena holds");
        };
        // SAFETY: `pointer` came from this arena's allocator with this layout (the caller's
        // contract; the slot is the one whose range holds it).
        unsafe { arena.heap.deallocate(pointer, layout) };
        // An empty arena other than the first goes back: its frames and page tables.
        if slot > 0 && arena.heap.used() == 0 {
            let bytes = arena.bytes;
            if let Some(entry) = arenas.arenas.get_mut(slot) {
                *entry = None;
            }
            arenas.size -= bytes;
            free_heap_slot(slot_start(slot));
        }
    }
}

pub fn init() {
    let first = Layout::from_size_align(PAGE_SIZE as usize, 8).expect("a page layout");
    assert!(HEAP.0.lock().grow(first), "no memory for the kernel heap");
}

/// Whether a trap may make more kernel objects for user space: the heap must be able to at
/// least double what it holds now and keep [`MARGIN`] besides, counting the frames it may
/// still take (half the reserve included). `NoMemory` otherwise.
pub fn room_for_user_objects() -> Result<(), KernelError> {
    let (size, used) = {
        let arenas = HEAP.0.lock();
        (arenas.size, arenas.used)
    };
    // Half the frames' reserve counts: user memory running out leaves IPC working.
    let growable = frames::free_count().saturating_sub(frames::RESERVED_FOR_HEAP / 2) * PAGE_SIZE as usize;
    let room = size.saturating_sub(used) + growable;
    if room >= used.saturating_mul(2).saturating_add(MARGIN) { Ok(()) } else { Err(KernelError::NoMemory) }
}

/// Bytes in the heap's arenas and bytes handed out (for the kernel log).
pub fn usage() -> (usize, usize) {
    let arenas = HEAP.0.lock();
    (arenas.size, arenas.used)
}

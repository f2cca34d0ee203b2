//! The kernel heap: arenas of contiguous frames, each a linked-list allocator. It starts with
//! one arena and takes another from the frame allocator when an allocation fits in none (the
//! frame allocator keeps a reserve that only the heap may take); an arena that becomes empty
//! goes back, except the first.
//!
//! What user space makes the kernel keep (ports, names, queued messages, tasks, threads)
//! lives here, and an allocation that fails stops the kernel. So every trap that makes such
//! objects asks [`room_for_user_objects`] first and answers `NoMemory` when the heap could no
//! longer at least double what it holds now: the kernel's own allocations after the check
//! (a table growing, an event list) always find room. Hot paths (the IPC fast path) must not
//! allocate at all.

use super::{PAGE_SIZE, frames, phys_to_virt};
use core::alloc::{GlobalAlloc, Layout};
use core::ptr::NonNull;
use linked_list_allocator::Heap;
use mach_abi::KernelError;
use spin::Mutex;

/// Frames of the first arena and the least a new arena takes (4 MiB).
const ARENA_FRAMES: usize = 1024;
const MAX_ARENAS: usize = 64;
/// Heap room a user-made object must leave besides doubling what is in use.
const MARGIN: usize = 4 << 20;

struct Arena {
    heap: Heap,
    /// Physical address of the first frame and how many frames.
    base: u64,
    frames: usize,
}

impl Arena {
    fn contains(&self, address: usize) -> bool {
        let start = phys_to_virt(self.base) as usize;
        (start..start + self.frames * PAGE_SIZE as usize).contains(&address)
    }
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
    /// Put `frames` frames at physical `base` in a free arena slot; false if none is free.
    fn add(&mut self, base: u64, frames: usize) -> bool {
        let Some(slot) = self.arenas.iter_mut().find(|a| a.is_none()) else { return false };
        let bytes = frames * PAGE_SIZE as usize;
        // SAFETY: the frames are the heap's from now until the arena is removed, and mapped
        // by the HHDM.
        let heap = unsafe { Heap::new(phys_to_virt(base) as *mut u8, bytes) };
        *slot = Some(Arena { heap, base, frames });
        self.size += bytes;
        true
    }

    fn allocate(&mut self, layout: Layout) -> Option<NonNull<u8>> {
        self.arenas.iter_mut().flatten().find_map(|a| a.heap.allocate_first_fit(layout).ok())
    }

    /// Take a new arena big enough for `layout` (from the frames' reserve if need be).
    fn grow(&mut self, layout: Layout) -> bool {
        let needed = (layout.size() + layout.align() + 64).div_ceil(PAGE_SIZE as usize);
        let frames = needed.max(ARENA_FRAMES);
        let Some(base) = frames::alloc_contiguous_for_heap(frames) else { return false };
        if !self.add(base, frames) {
            (0..frames as u64).for_each(|i| frames::free(base + i * PAGE_SIZE));
            return false;
        }
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
        let address = pointer.as_ptr() as usize;
        let mut arenas = self.0.lock();
        arenas.used -= layout.size();
        let Some((index, slot)) = arenas
            .arenas
            .iter_mut()
            .enumerate()
            .find(|(_, a)| a.as_ref().is_some_and(|a| a.contains(address)))
        else {
            panic!("kernel heap: freeing {address:#x}, which no arena holds");
        };
        let Some(arena) = slot.as_mut() else { return };
        // SAFETY: `pointer` came from this arena's allocator with this layout (the caller's
        // contract; the arena is the one whose range holds it).
        unsafe { arena.heap.deallocate(pointer, layout) };
        // An empty arena other than the first goes back to the frame allocator.
        if index > 0 && arena.heap.used() == 0 {
            let (base, count) = (arena.base, arena.frames);
            *slot = None;
            arenas.size -= count * PAGE_SIZE as usize;
            (0..count as u64).for_each(|i| frames::free(base + i * PAGE_SIZE));
        }
    }
}

pub fn init() {
    let base = frames::alloc_contiguous_for_heap(ARENA_FRAMES).expect("no memory for the kernel heap");
    assert!(HEAP.0.lock().add(base, ARENA_FRAMES), "kernel heap: no arena slot");
}

/// Whether a trap may make more kernel objects for user space: the heap must be able to at
/// least double what it holds now and keep [`MARGIN`] besides, counting the frames it may
/// still take (not the reserve). `NoMemory` otherwise.
pub fn room_for_user_objects() -> Result<(), KernelError> {
    let (size, used) = {
        let arenas = HEAP.0.lock();
        (arenas.size, arenas.used)
    };
    let growable = frames::free_count().saturating_sub(frames::RESERVED_FOR_HEAP) * PAGE_SIZE as usize;
    let room = size.saturating_sub(used) + growable;
    if room >= used.saturating_mul(2).saturating_add(MARGIN) { Ok(()) } else { Err(KernelError::NoMemory) }
}

/// Bytes in the heap's arenas and bytes handed out (for the kernel log).
pub fn usage() -> (usize, usize) {
    let arenas = HEAP.0.lock();
    (arenas.size, arenas.used)
}

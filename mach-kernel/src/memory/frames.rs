//! The physical frame allocator: a [`FrameBitmap`] over all memory up to the highest usable
//! byte, filled from the boot memory map. Only `Usable` memory is ever handed out;
//! bootloader-reclaimable memory stays reserved because boot structures live there.

use super::{PAGE_SIZE, phys_to_virt};
use limine::memory_map::{Entry, EntryType};
use mach_kernel::frame_bitmap::FrameBitmap;
use spin::Mutex;

static FRAMES: Mutex<Option<FrameBitmap<'static>>> = Mutex::new(None);

/// Build the allocator from the memory map. The bitmap itself takes the first frames of the
/// first usable region big enough to hold it.
pub fn init(memory_map: &[&Entry]) {
    let usable = || memory_map.iter().filter(|e| e.entry_type == EntryType::USABLE);
    let top = usable().map(|e| e.base + e.length).max().expect("no usable memory in the memory map");
    let frame_count = top.div_ceil(PAGE_SIZE) as usize;
    let words = frame_count.div_ceil(64);
    let bitmap_bytes = (words * 8) as u64;
    let home = usable()
        .find(|e| e.length >= bitmap_bytes.next_multiple_of(PAGE_SIZE))
        .expect("no usable region can hold the frame bitmap");
    // SAFETY: `home` is usable RAM nobody else uses yet, reached through the HHDM, and big
    // enough for `words` u64s; it stays reserved in the bitmap below for the kernel's life.
    let storage = unsafe { core::slice::from_raw_parts_mut(phys_to_virt(home.base) as *mut u64, words) };
    let mut bitmap = FrameBitmap::new(storage);
    for entry in usable() {
        bitmap.add_free_range((entry.base / PAGE_SIZE) as usize, (entry.length / PAGE_SIZE) as usize);
    }
    bitmap.reserve_range((home.base / PAGE_SIZE) as usize, bitmap_bytes.div_ceil(PAGE_SIZE) as usize);
    *FRAMES.lock() = Some(bitmap);
}

fn with<T>(f: impl FnOnce(&mut FrameBitmap<'static>) -> T) -> T {
    f(FRAMES.lock().as_mut().expect("frame allocator used before init"))
}

/// Frames that only the kernel heap may take: user memory, page tables and kernel stacks
/// run out (`NoMemory`) while the heap can still grow by this much (16 MiB).
pub const RESERVED_FOR_HEAP: usize = 4096;

/// Whether `count` frames may be taken for anything but the heap (the reserve stays).
fn leaves_reserve(b: &FrameBitmap<'static>, count: usize) -> bool {
    b.free_count() >= RESERVED_FOR_HEAP + count
}

/// A frame for anything but the heap: None when only the reserve is left.
fn alloc_outside_reserve() -> Option<u64> {
    with(|b| if leaves_reserve(b, 1) { b.alloc() } else { None }).map(|f| f as u64 * PAGE_SIZE)
}

/// Fill `count` frames from `frame` with zeros; returns `frame`.
fn zeroed(frame: u64, count: usize) -> u64 {
    // SAFETY: the caller just took the frames; the HHDM maps them.
    unsafe { core::ptr::write_bytes(phys_to_virt(frame) as *mut u8, 0, count * PAGE_SIZE as usize) };
    frame
}

/// One zeroed frame's physical address, or None when memory is exhausted.
pub fn alloc_zeroed() -> Option<u64> {
    alloc_outside_reserve().map(|frame| zeroed(frame, 1))
}

/// One frame whose contents are left as they were (the caller overwrites all of it).
pub fn alloc_uninitialised() -> Option<u64> {
    alloc_outside_reserve()
}

/// `count` physically contiguous zeroed frames, first address returned.
pub fn alloc_contiguous_zeroed(count: usize) -> Option<u64> {
    let frame = with(|b| if leaves_reserve(b, count) { b.alloc_contiguous(count, 1) } else { None })?;
    Some(zeroed(frame as u64 * PAGE_SIZE, count))
}

/// A frame for the kernel heap, from the reserve if need be (left as it was: the heap does
/// not need it zeroed).
pub fn alloc_for_heap() -> Option<u64> {
    with(|b| b.alloc()).map(|f| f as u64 * PAGE_SIZE)
}

/// A zeroed frame for a page table of the heap's region, from the reserve if need be.
pub fn alloc_zeroed_for_heap() -> Option<u64> {
    alloc_for_heap().map(|frame| zeroed(frame, 1))
}

/// Extra references to frames shared copy-on-write between address spaces: a frame listed
/// here with n has n mappings; one not listed has one.
static SHARED: Mutex<alloc::collections::BTreeMap<u64, u32>> =
    Mutex::new(alloc::collections::BTreeMap::new());

/// One more mapping of `physical` (a copy-on-write share, or shared memory).
pub fn share(physical: u64) {
    *SHARED.lock().entry(physical).or_insert(1) += 1;
}

/// Whether more than one mapping refers to `physical`.
pub fn is_shared(physical: u64) -> bool {
    SHARED.lock().contains_key(&physical)
}

/// Drop one mapping of a user frame: freed with its last mapping.
pub fn release(physical: u64) {
    let mut shared = SHARED.lock();
    match shared.get_mut(&physical) {
        Some(count) if *count > 2 => *count -= 1,
        Some(_) => {
            shared.remove(&physical);
        }
        None => {
            drop(shared);
            free(physical);
        }
    }
}

/// Return a frame. Freeing a frame that is not in use (twice, or one never handed out) is a
/// kernel bug: it is reported on the kernel log ("kernel bug:", which every system test
/// looks for) and ignored, so that it can never become a way for a user to stop the kernel.
pub fn free(physical: u64) {
    if let Err(e) = with(|b| b.free((physical / PAGE_SIZE) as usize)) {
        crate::kprintln!("kernel bug: freeing frame {physical:#x}: {e:?}; ignored");
    }
}

pub fn free_count() -> usize {
    with(|b| b.free_count())
}

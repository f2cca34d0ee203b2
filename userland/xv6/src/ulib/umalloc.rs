//! Memory allocator: xv6's `umalloc.c`, which is the one of Kernighan and Ritchie's "The C
//! Programming Language" (section 8.7), on `sbrk`; and [`Umalloc`], the global allocator of
//! every program, over it.
//!
//! Free blocks form a circular list sorted by address. Each block starts with a [`Header`]:
//! the next free block and the block's size in header units (16 bytes), header included.
//! `malloc` takes the first block that is big enough (first fit), cutting the tail off a
//! larger one; `free` puts a block back in address order and merges it with free neighbours.
//! When no block fits, `morecore` asks `sbrk` for at least 64 KiB more.
//!
//! xv6 processes have a single thread, so the list needs no lock.

use crate::ulib::sys::sbrk;
use core::alloc::{GlobalAlloc, Layout};
use core::cell::{Cell, UnsafeCell};
use core::ptr;

/// The header of every block, free or in use; its size and alignment (16) is the unit in
/// which blocks are measured, so every block that `malloc` returns is 16-byte aligned.
#[repr(C, align(16))]
struct Header {
    /// The next block of the free list (meaningful only while the block is free).
    next: *mut Header,
    /// The size of the block in units, header included.
    units: usize,
}

const UNIT: usize = size_of::<Header>();

/// The fewest units `morecore` asks `sbrk` for (64 KiB), so that `sbrk` is rare.
const MIN_MORECORE_UNITS: usize = 4096;

/// The state of the allocator: `base`, an empty block that starts the list, and `freep`,
/// where the next search starts (null until the first `malloc`).
struct FreeList {
    base: UnsafeCell<Header>,
    freep: Cell<*mut Header>,
}

// SAFETY: a process of the xv6 personality has one thread, so the list is never used from two
// threads at once.
unsafe impl Sync for FreeList {}

static FREE_LIST: FreeList = FreeList {
    base: UnsafeCell::new(Header { next: ptr::null_mut(), units: 0 }),
    freep: Cell::new(ptr::null_mut()),
};

/// Give back a block that `malloc` returned (a null pointer is ignored).
///
/// # Safety
/// `ap` must come from [`malloc`] and not have been freed yet; nothing may use it afterwards.
pub unsafe fn free(ap: *mut u8) {
    if ap.is_null() {
        return;
    }
    // SAFETY: the block's header is right before `ap`; every pointer followed below is a
    // block of the free list, which only this module changes.
    unsafe {
        let bp = ap.cast::<Header>().sub(1);
        // Find the free block `p` after which `bp` goes: p < bp < p.next, or, at the wrap of
        // the circular list (p >= p.next), bp beyond either end.
        let mut p = FREE_LIST.freep.get();
        while !(bp > p && bp < (*p).next) {
            if p >= (*p).next && (bp > p || bp < (*p).next) {
                break;
            }
            p = (*p).next;
        }
        // Merge with the upper neighbour if they touch, else link to it.
        if bp.add((*bp).units) == (*p).next {
            (*bp).units += (*(*p).next).units;
            (*bp).next = (*(*p).next).next;
        } else {
            (*bp).next = (*p).next;
        }
        // Merge with the lower neighbour if they touch, else link from it.
        if p.add((*p).units) == bp {
            (*p).units += (*bp).units;
            (*p).next = (*bp).next;
        } else {
            (*p).next = bp;
        }
        FREE_LIST.freep.set(p);
    }
}

/// Get at least `units` more units from `sbrk` and put them on the free list. Returns the
/// list's search start, or null if `sbrk` refused.
fn morecore(units: usize) -> *mut Header {
    let units = units.max(MIN_MORECORE_UNITS);
    // Ask for one unit more, to align the block if the break is not 16-byte aligned.
    let Some(bytes) = units.checked_add(1).and_then(|n| n.checked_mul(UNIT)) else {
        return ptr::null_mut();
    };
    let Ok(increment) = i32::try_from(bytes) else { return ptr::null_mut() };
    // SAFETY: growing the break frees nothing.
    let Some(old_break) = (unsafe { sbrk(increment) }) else { return ptr::null_mut() };
    let block = old_break.wrapping_add(old_break.align_offset(UNIT)).cast::<Header>();
    // SAFETY: `block` is aligned and lies with `units` units in the memory just obtained;
    // giving it to `free` as a used block puts it on the list.
    unsafe {
        block.write(Header { next: ptr::null_mut(), units });
        free(block.add(1).cast());
    }
    FREE_LIST.freep.get()
}

/// Allocate `nbytes` bytes, 16-byte aligned: the block, or null when memory is exhausted.
pub fn malloc(nbytes: usize) -> *mut u8 {
    // The block's units: the bytes rounded up, plus one for the header.
    let Some(units) = nbytes.checked_add(UNIT - 1).map(|n| n / UNIT + 1) else {
        return ptr::null_mut();
    };
    // SAFETY: as in `free`: the list is made only of headers this module wrote.
    unsafe {
        let mut prevp = FREE_LIST.freep.get();
        if prevp.is_null() {
            // The first call: a list of one empty block, `base`.
            let base = FREE_LIST.base.get();
            (*base).next = base;
            (*base).units = 0;
            FREE_LIST.freep.set(base);
            prevp = base;
        }
        let mut p = (*prevp).next;
        loop {
            if (*p).units >= units {
                if (*p).units == units {
                    // Exactly right: unlink it.
                    (*prevp).next = (*p).next;
                } else {
                    // Too big: hand out its tail.
                    (*p).units -= units;
                    p = p.add((*p).units);
                    (*p).units = units;
                }
                FREE_LIST.freep.set(prevp);
                return p.add(1).cast();
            }
            if p == FREE_LIST.freep.get() {
                // Went round the whole list: get more memory.
                p = morecore(units);
                if p.is_null() {
                    return ptr::null_mut();
                }
            }
            prevp = p;
            p = (*p).next;
        }
    }
}

/// The global allocator of xv6 programs: `malloc` and `free`. Alignments above 16 are served
/// by allocating more and keeping, just before the aligned block, the address `malloc` gave.
pub struct Umalloc;

// SAFETY: blocks come from `malloc`, are aligned as the layout asks and big enough for it, and
// are never handed out twice until `dealloc` gives them back.
unsafe impl GlobalAlloc for Umalloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if layout.align() <= UNIT {
            return malloc(layout.size());
        }
        let Some(size) = layout.size().checked_add(layout.align()) else { return ptr::null_mut() };
        let block = malloc(size);
        if block.is_null() {
            return block;
        }
        // `block` is 16-aligned and the alignment is at least 32, so the aligned address is at
        // least 16 bytes in: room for the original address right before it.
        let aligned = block.wrapping_add(layout.align() - (block as usize % layout.align()));
        // SAFETY: `aligned - 8` and `aligned + size` lie within the `size + align` bytes.
        unsafe { aligned.cast::<*mut u8>().sub(1).write(block) };
        aligned
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` came from `alloc` with the same layout, so for large alignments the
        // block's address is stored just before it.
        unsafe {
            if layout.align() <= UNIT {
                free(ptr);
            } else {
                free(ptr.cast::<*mut u8>().sub(1).read());
            }
        }
    }
}

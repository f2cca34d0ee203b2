//! Four-level page tables. The kernel builds its own at boot (HHDM over all memory, the
//! kernel image mapped W^X) and every task's address space shares the kernel half (PML4
//! entries 256..511) by copying those entries when it is made. The kernel therefore never
//! adds a PML4 entry in the upper half after boot.
//!
//! User memory is touched only through `memory::user` (`UserPtr`, `UserSlice`), which uses
//! the checked page walks here (`read_user`, `write_user`, `check_user`: each page's user and
//! write permissions in the task's tables, copied through the HHDM) for other tasks' memory.

use super::{PAGE_SIZE, frames, phys_to_virt};
use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use mach_abi::KernelError;
use mach_abi::layout::USER_END;

pub const PRESENT: u64 = 1;
pub const WRITABLE: u64 = 1 << 1;
pub const USER: u64 = 1 << 2;
const HUGE: u64 = 1 << 7;
/// Page-level cache disable and write-through: device memory.
pub const UNCACHED: u64 = (1 << 4) | (1 << 3);
/// Software bit: a read-only view of a frame shared copy-on-write; the first write copies.
pub const COPY_ON_WRITE: u64 = 1 << 10;
/// Software bit: the frame belongs to this mapping and is freed with the address space.
pub const OWNED: u64 = 1 << 9;
/// Software bit: an owned frame shared on purpose (`vm_map`): every mapping of it sees the
/// others' writes. It never becomes copy-on-write, not even in a task copy.
const SHARED_MEMORY: u64 = 1 << 11;
/// Software bit (ignored by the MMU): a page the task does not own that was mapped writable
/// and was made read-only by `vm_protect`, so it may be made writable again.
const MAY_WRITE: u64 = 1 << 52;
const NO_EXECUTE_BIT: u64 = 1 << 63;
const ADDRESS_MASK: u64 = 0x000f_ffff_ffff_f000;

/// Whether a page with leaf `entry` may be made `writable`: memory the task does not own
/// never gets more access than it was mapped with.
fn may_protect(entry: u64, writable: bool) -> Result<(), KernelError> {
    if writable && entry & OWNED == 0 && entry & (WRITABLE | MAY_WRITE) == 0 {
        return Err(KernelError::InvalidArgument);
    }
    Ok(())
}

/// The `(frame, flags)` that map the frame of `entry` (from `share_user_page`) once more,
/// with the reference it took: readable, maybe writable and executable; its caching and
/// ownership stay, and memory not owned keeps its right to be made writable again.
pub fn shared_entry(entry: u64, writable: bool, executable: bool) -> (u64, u64) {
    let keep = entry & (OWNED | SHARED_MEMORY | UNCACHED);
    let may_write = if entry & OWNED == 0 && entry & (WRITABLE | MAY_WRITE) != 0 { MAY_WRITE } else { 0 };
    let access = if writable { WRITABLE } else { 0 };
    (entry & ADDRESS_MASK, keep | USER | may_write | access | if executable { 0 } else { no_execute() })
}

static NX_SUPPORTED: AtomicBool = AtomicBool::new(false);
static KERNEL_PML4: AtomicU64 = AtomicU64::new(0);

/// The no-execute bit when the CPU has one, else 0.
pub fn no_execute() -> u64 {
    if NX_SUPPORTED.load(Ordering::Relaxed) { NO_EXECUTE_BIT } else { 0 }
}

fn table(physical: u64) -> &'static mut [u64; 512] {
    // SAFETY: page-table pages are frames owned by an address space and reached through the
    // HHDM; the kernel runs on one CPU with interrupts off while editing them.
    unsafe { &mut *(phys_to_virt(physical) as *mut [u64; 512]) }
}

fn index(virt: u64, level: u32) -> usize {
    ((virt >> (12 + 9 * level)) & 511) as usize
}

/// A set of page tables: the kernel's, or a task's (which shares the kernel half).
pub struct AddressSpace {
    pml4: u64,
}

impl AddressSpace {
    /// The entry for `virt` at the lowest level, making intermediate tables as needed.
    fn leaf_entry(&mut self, virt: u64, huge: bool) -> Result<&'static mut u64, KernelError> {
        self.leaf_entry_with(virt, huge, frames::alloc_zeroed)
    }

    /// `leaf_entry`, taking the frames of new tables from `new_table`.
    fn leaf_entry_with(
        &mut self,
        virt: u64,
        huge: bool,
        new_table: fn() -> Option<u64>,
    ) -> Result<&'static mut u64, KernelError> {
        let mut physical = self.pml4;
        let last = if huge { 1 } else { 0 };
        for level in (last + 1..=3).rev() {
            let entry = &mut table(physical)[index(virt, level)];
            if *entry & PRESENT == 0 {
                let new = new_table().ok_or(KernelError::NoMemory)?;
                // Intermediate entries are permissive; the leaf decides.
                *entry = new | PRESENT | WRITABLE | if virt < USER_END { USER } else { 0 };
            }
            physical = *entry & ADDRESS_MASK;
        }
        Ok(&mut table(physical)[index(virt, last)])
    }

    /// Map the 4 KiB page at `virt` to `physical` with `flags` (PRESENT is added). A page
    /// that is already mapped is refused (`InvalidAddress`): unmap first. Replacing an entry
    /// here would leak its frame and leave a stale translation in the TLB.
    pub fn map(&mut self, virt: u64, physical: u64, flags: u64) -> Result<(), KernelError> {
        let entry = self.leaf_entry(virt, false)?;
        if *entry & PRESENT != 0 {
            return Err(KernelError::InvalidAddress);
        }
        *entry = physical | flags | PRESENT;
        Ok(())
    }

    /// The kernel's own address space (whose upper half every task shares).
    fn kernel() -> AddressSpace {
        AddressSpace { pml4: KERNEL_PML4.load(Ordering::Relaxed) }
    }

    fn map_huge(&mut self, virt: u64, physical: u64, flags: u64) -> Result<(), KernelError> {
        *self.leaf_entry(virt, true)? = physical | flags | PRESENT | HUGE;
        Ok(())
    }

    /// The physical address and flags of the 4 KiB page holding `virt`, if mapped.
    pub fn translate(&self, virt: u64) -> Option<(u64, u64)> {
        let mut physical = self.pml4;
        for level in (0..=3).rev() {
            let entry = table(physical)[index(virt, level)];
            if entry & PRESENT == 0 {
                return None;
            }
            if level == 0 || entry & HUGE != 0 {
                let page_mask = (1u64 << (12 + 9 * level)) - 1;
                let base = (entry & ADDRESS_MASK & !page_mask) + (virt & page_mask & !(PAGE_SIZE - 1));
                return Some((base, entry));
            }
            physical = entry & ADDRESS_MASK;
        }
        None
    }

    /// The address space the CPU is running on (for the page-fault path, which must not take
    /// the kernel lock). It must not be destroyed through this handle.
    pub fn running() -> AddressSpace {
        AddressSpace { pml4: crate::arch::cpu::read_cr3() & ADDRESS_MASK }
    }

    /// A new task address space sharing the kernel half.
    pub fn new_user() -> Result<Self, KernelError> {
        let pml4 = frames::alloc_zeroed().ok_or(KernelError::NoMemory)?;
        let kernel = table(KERNEL_PML4.load(Ordering::Relaxed));
        table(pml4)[256..].copy_from_slice(&kernel[256..]);
        Ok(AddressSpace { pml4 })
    }

    /// Whether no page of `[start, end)` is mapped.
    pub fn is_unmapped(&self, start: u64, end: u64) -> bool {
        self.last_mapped_page(start, end).is_none()
    }

    /// The highest mapped page in `[start, end)` (page aligned), if any. Tables that are
    /// absent are skipped whole, so a search over a sparse gigabyte costs a few steps.
    pub fn last_mapped_page(&self, start: u64, end: u64) -> Option<u64> {
        let mut page = end.min(USER_END);
        while page > start {
            let probe = page - PAGE_SIZE;
            // The lowest level whose entry for `probe` is absent: the whole span it covers
            // is unmapped.
            match self.absent_span(probe) {
                None => return Some(probe),
                Some(span) => page = probe & !(span - 1),
            }
        }
        None
    }

    /// If `virt` is not mapped, the size of the aligned span around it known unmapped (the
    /// span of the first absent entry on the walk); None when it is mapped.
    fn absent_span(&self, virt: u64) -> Option<u64> {
        let mut physical = self.pml4;
        for level in (0..=3).rev() {
            let entry = table(physical)[index(virt, level)];
            if entry & PRESENT == 0 {
                return Some(1u64 << (12 + 9 * level));
            }
            if level == 0 || entry & HUGE != 0 {
                return None;
            }
            physical = entry & ADDRESS_MASK;
        }
        None
    }

    /// Allocate, zero and map a user page at `virt`; returns its physical address.
    pub fn map_new_user_page(
        &mut self,
        virt: u64,
        writable: bool,
        executable: bool,
    ) -> Result<u64, KernelError> {
        if virt >= USER_END {
            return Err(KernelError::InvalidAddress);
        }
        let frame = frames::alloc_zeroed().ok_or(KernelError::NoMemory)?;
        let flags =
            USER | OWNED | if writable { WRITABLE } else { 0 } | if executable { 0 } else { no_execute() };
        if let Err(e) = self.map(virt, frame, flags) {
            frames::free(frame);
            return Err(e);
        }
        Ok(frame)
    }

    /// Map consecutive user pages from `start`, one per `(physical, flags)` item (PRESENT is
    /// added). All or nothing: on an error the pages mapped so far are unmapped again (their
    /// frames freed if owned, as by `unmap_user_page`) and the error comes back with that
    /// count; the frames of the items after it are still the caller's.
    pub fn map_user_pages(
        &mut self,
        start: u64,
        pages: impl IntoIterator<Item = (u64, u64)>,
    ) -> Result<(), (KernelError, u64)> {
        let mut virt = start;
        for (physical, flags) in pages {
            let mapped = if virt >= USER_END {
                Err(KernelError::InvalidAddress)
            } else {
                self.map(virt, physical, flags)
            };
            if let Err(e) = mapped {
                (start..virt).step_by(PAGE_SIZE as usize).for_each(|page| self.unmap_user_page(page));
                return Err((e, (virt - start) / PAGE_SIZE));
            }
            virt += PAGE_SIZE;
        }
        Ok(())
    }

    /// Unmap the user page at `virt`, freeing its frame if owned. Unmapped pages are skipped.
    pub fn unmap_user_page(&mut self, virt: u64) {
        if virt >= USER_END {
            return;
        }
        if let Ok(entry) = self.leaf_entry_if_present(virt) {
            let old = *entry;
            *entry = 0;
            if old & OWNED != 0 {
                frames::release(old & ADDRESS_MASK);
            }
            invalidate(virt);
        }
    }

    /// Whether `protect_user_page(virt, writable, ..)` would succeed, changing nothing (to
    /// check a whole range before changing any of it).
    pub fn may_protect_user_page(&self, virt: u64, writable: bool) -> Result<(), KernelError> {
        may_protect(*self.user_leaf(virt)?, writable)
    }

    /// Change the permissions of the user page at `virt`. The frame, its ownership and its
    /// caching stay. Memory the task does not own (a boot module, a device range) never gets
    /// more access than it was mapped with (`InvalidArgument`). A writable owned page whose
    /// frame another space shares stays read-only and copy-on-write: the first write gives
    /// this space its own copy, so no write ever reaches the other space.
    pub fn protect_user_page(
        &mut self,
        virt: u64,
        writable: bool,
        executable: bool,
    ) -> Result<(), KernelError> {
        let entry = self.user_leaf(virt)?;
        may_protect(*entry, writable)?;
        let old = *entry;
        let keep = old & (ADDRESS_MASK | OWNED | USER | PRESENT | UNCACHED | MAY_WRITE | SHARED_MEMORY);
        let access = if !writable {
            0
        } else if old & OWNED == 0 {
            // A device range mapped writable: remember that it may be writable again.
            WRITABLE | MAY_WRITE
        } else if old & SHARED_MEMORY != 0 {
            WRITABLE
        } else if old & COPY_ON_WRITE != 0 || frames::is_shared(old & ADDRESS_MASK) {
            COPY_ON_WRITE
        } else {
            WRITABLE
        };
        *entry = keep | access | if executable { 0 } else { no_execute() };
        invalidate(virt);
        Ok(())
    }

    /// Make the user page at `virt` shareable with another mapping (`vm_map`) that may be
    /// `writable`; returns its entry, for [`AddressSpace::map_shared_entry`]. An owned page
    /// becomes shared memory and its frame gains a reference (a copy-on-write page first
    /// becomes this space's own); memory the task does not own is only checked: it is never
    /// shared with more access than it has here.
    pub fn share_user_page(&mut self, virt: u64, writable: bool) -> Result<u64, KernelError> {
        let entry = *self.user_leaf(virt)?;
        may_protect(entry, writable)?;
        if entry & OWNED == 0 {
            return Ok(entry);
        }
        self.break_copy_on_write(virt)?;
        let entry = self.user_leaf(virt)?;
        *entry |= SHARED_MEMORY;
        frames::share(*entry & ADDRESS_MASK);
        Ok(*entry)
    }

    /// Undo one [`AddressSpace::share_user_page`] whose entry was not mapped after all.
    pub fn unshare_entry(entry: u64) {
        if entry & OWNED != 0 {
            frames::release(entry & ADDRESS_MASK);
        }
    }

    /// The leaf entry of the present user page at `virt`.
    fn user_leaf(&self, virt: u64) -> Result<&'static mut u64, KernelError> {
        if virt >= USER_END {
            return Err(KernelError::InvalidAddress);
        }
        self.leaf_entry_if_present(virt)
    }

    /// If the page at `virt` is copy-on-write, make it this space's own and writable (a copy
    /// when other spaces still share the frame). Other pages are left alone.
    pub fn break_copy_on_write(&self, virt: u64) -> Result<bool, KernelError> {
        let Ok(entry) = self.leaf_entry_if_present(virt & !(PAGE_SIZE - 1)) else { return Ok(false) };
        if *entry & COPY_ON_WRITE == 0 {
            return Ok(false);
        }
        let old = *entry & ADDRESS_MASK;
        let flags = (*entry & !ADDRESS_MASK & !COPY_ON_WRITE) | WRITABLE;
        if frames::is_shared(old) {
            let new = frames::alloc_uninitialised().ok_or(KernelError::NoMemory)?;
            // SAFETY: both frames are mapped by the direct map; `new` is ours.
            unsafe {
                core::ptr::copy_nonoverlapping(
                    phys_to_virt(old) as *const u8,
                    phys_to_virt(new) as *mut u8,
                    PAGE_SIZE as usize,
                )
            };
            *entry = new | flags;
            frames::release(old);
        } else {
            *entry = old | flags;
        }
        invalidate(virt);
        Ok(true)
    }

    /// A new address space whose user half shares `self`'s pages copy-on-write (fork).
    /// Writable owned pages become read-only copy-on-write in both; read-only owned pages are
    /// shared read-only; shared memory (`vm_map`) stays shared, writes and all; device and
    /// module mappings are mapped as they are.
    pub fn copy_on_write(&mut self) -> Result<AddressSpace, KernelError> {
        let mut child = AddressSpace::new_user()?;
        let mut result = Ok(());
        self.for_each_user_leaf(&mut |virt, entry| {
            if result.is_err() {
                return;
            }
            let frame = *entry & ADDRESS_MASK;
            let mut flags = *entry & !ADDRESS_MASK;
            if flags & OWNED != 0 {
                if flags & SHARED_MEMORY == 0 && flags & (WRITABLE | COPY_ON_WRITE) != 0 {
                    flags = (flags & !WRITABLE) | COPY_ON_WRITE;
                    *entry = frame | flags;
                }
                frames::share(frame);
            }
            if let Err(e) = child.map(virt, frame, flags) {
                if flags & OWNED != 0 {
                    frames::release(frame);
                }
                result = Err(e);
            }
        });
        // The parent's pages just became read-only: drop stale writable translations.
        if crate::arch::cpu::read_cr3() == self.pml4 {
            // SAFETY: reloading the same CR3 only flushes the TLB.
            unsafe { crate::arch::cpu::write_cr3(self.pml4) };
        }
        match result {
            Ok(()) => Ok(child),
            Err(e) => {
                child.destroy();
                Err(e)
            }
        }
    }

    /// Call `f(virtual address, leaf entry)` for every present 4 KiB page of the user half.
    fn for_each_user_leaf(&mut self, f: &mut dyn FnMut(u64, &mut u64)) {
        for (i4, &e4) in table(self.pml4)[..256].iter().enumerate() {
            if e4 & PRESENT == 0 {
                continue;
            }
            for (i3, &e3) in table(e4 & ADDRESS_MASK).iter().enumerate() {
                if e3 & PRESENT == 0 || e3 & HUGE != 0 {
                    continue;
                }
                for (i2, &e2) in table(e3 & ADDRESS_MASK).iter().enumerate() {
                    if e2 & PRESENT == 0 || e2 & HUGE != 0 {
                        continue;
                    }
                    for (i1, e1) in table(e2 & ADDRESS_MASK).iter_mut().enumerate() {
                        if *e1 & PRESENT != 0 {
                            let virt = ((i4 as u64) << 39)
                                | ((i3 as u64) << 30)
                                | ((i2 as u64) << 21)
                                | ((i1 as u64) << 12);
                            f(virt, e1);
                        }
                    }
                }
            }
        }
    }

    /// The entry for `virt` in the table of `level` (3: PML4, 2: PDPT, 1: PD, 0: PT), when
    /// the tables above it are present.
    fn walk_to(&self, virt: u64, level: u32) -> Result<&'static mut u64, KernelError> {
        let mut physical = self.pml4;
        for upper in (level + 1..=3).rev() {
            let entry = table(physical)[index(virt, upper)];
            if entry & PRESENT == 0 || entry & HUGE != 0 {
                return Err(KernelError::InvalidAddress);
            }
            physical = entry & ADDRESS_MASK;
        }
        Ok(&mut table(physical)[index(virt, level)])
    }

    /// The 4 KiB leaf entry for `virt`, only if every level down to it is present.
    fn leaf_entry_if_present(&self, virt: u64) -> Result<&'static mut u64, KernelError> {
        let entry = self.walk_to(virt, 0)?;
        if *entry & PRESENT == 0 {
            return Err(KernelError::InvalidAddress);
        }
        Ok(entry)
    }

    /// Make this the running address space (nothing to do, and no TLB flush, when it is).
    pub fn activate(&self) {
        if crate::arch::cpu::read_cr3() & ADDRESS_MASK != self.pml4 {
            // SAFETY: every address space maps the kernel half identically.
            unsafe { crate::arch::cpu::write_cr3(self.pml4) };
        }
    }

    /// Walk `[addr, addr + len)` of user memory page by page, checking that each page is
    /// mapped for the user (and writable when `write`), calling `f(kernel_pointer, chunk)`.
    fn user_chunks(
        &self,
        addr: u64,
        len: usize,
        write: bool,
        mut f: impl FnMut(*mut u8, usize, usize),
    ) -> Result<(), KernelError> {
        let end = addr.checked_add(len as u64).ok_or(KernelError::InvalidAddress)?;
        if end > USER_END {
            return Err(KernelError::InvalidAddress);
        }
        // Check everything first so that a failing copy changes nothing; remember the first
        // pages' translations so that short copies walk the tables once.
        const REMEMBERED: usize = 4;
        let mut physical_of = [0u64; REMEMBERED];
        let first_page = addr & !(PAGE_SIZE - 1);
        let mut page = first_page;
        let mut index = 0;
        while page < end {
            let (mut physical, mut flags) = self.translate(page).ok_or(KernelError::InvalidAddress)?;
            // Writing through a copy-on-write page gives this space its own copy first.
            if write && flags & COPY_ON_WRITE != 0 && self.break_copy_on_write(page)? {
                (physical, flags) = self.translate(page).ok_or(KernelError::InvalidAddress)?;
            }
            if flags & USER == 0 || (write && flags & WRITABLE == 0) {
                return Err(KernelError::InvalidAddress);
            }
            // Device memory is the user's alone: the kernel never touches it (a cacheable
            // access through the direct map would be wrong, and it may lie past the map).
            if flags & UNCACHED != 0 || super::direct_map(physical, PAGE_SIZE).is_none() {
                return Err(KernelError::InvalidAddress);
            }
            if let Some(slot) = physical_of.get_mut(index) {
                *slot = physical;
            }
            page += PAGE_SIZE;
            index += 1;
        }
        let mut at = addr;
        let mut done = 0;
        while at < end {
            let chunk = ((PAGE_SIZE - at % PAGE_SIZE).min(end - at)) as usize;
            let index = ((at - first_page) / PAGE_SIZE) as usize;
            let physical = match physical_of.get(index) {
                Some(&physical) => physical,
                None => self.translate(at).ok_or(KernelError::InvalidAddress)?.0,
            };
            f((phys_to_virt(physical) + at % PAGE_SIZE) as *mut u8, done, chunk);
            at += chunk as u64;
            done += chunk;
        }
        Ok(())
    }

    /// Check that `[addr, addr + len)` is user memory the task may read (or write).
    pub(super) fn check_user(&self, addr: u64, len: usize, write: bool) -> Result<(), KernelError> {
        self.user_chunks(addr, len, write, |_, _, _| {})
    }

    /// Copy user memory at `addr` into `out`.
    pub(super) fn read_user(&self, addr: u64, out: &mut [u8]) -> Result<(), KernelError> {
        let len = out.len();
        self.user_chunks(addr, len, false, |src, offset, n| {
            // SAFETY: `src` points at `n` mapped bytes (checked above); `out` has room.
            unsafe { core::ptr::copy_nonoverlapping(src, out.as_mut_ptr().add(offset), n) };
        })
    }

    /// Copy `data` into user memory at `addr`.
    pub(super) fn write_user(&self, addr: u64, data: &[u8]) -> Result<(), KernelError> {
        self.user_chunks(addr, data.len(), true, |dst, offset, n| {
            // SAFETY: `dst` points at `n` mapped, writable bytes (checked above).
            unsafe { core::ptr::copy_nonoverlapping(data.as_ptr().add(offset), dst, n) };
        })
    }

    /// Free every page table and owned frame of the user half, then the PML4.
    pub fn destroy(self) {
        fn free_level(physical: u64, level: u32) {
            for &entry in table(physical).iter() {
                if entry & PRESENT == 0 {
                    continue;
                }
                let target = entry & ADDRESS_MASK;
                if level == 0 {
                    if entry & OWNED != 0 {
                        frames::release(target);
                    }
                } else {
                    free_level(target, level - 1);
                }
            }
            frames::free(physical);
        }
        for &entry in table(self.pml4)[..256].iter() {
            if entry & PRESENT != 0 {
                free_level(entry & ADDRESS_MASK, 2);
            }
        }
        frames::free(self.pml4);
    }
}

/// Where the kernel image is, in both address spaces.
pub struct KernelImage {
    pub physical_base: u64,
    pub virtual_base: u64,
}

/// Build the kernel's page tables and switch to them: the HHDM over `[0, top)` with 2 MiB
/// pages (read-write, no-execute), and the kernel image with text R+X, rodata R, data R+W.
pub fn init_kernel_space(image: &KernelImage, top: u64, hhdm: u64) {
    NX_SUPPORTED.store(crate::arch::cpu::has_nx(), Ordering::Relaxed);
    if crate::arch::cpu::has_nx() {
        // SAFETY: NXE is required before any mapping uses bit 63; the CPU supports it.
        unsafe {
            use crate::arch::cpu::{MSR_EFER, rdmsr, wrmsr};
            wrmsr(MSR_EFER, rdmsr(MSR_EFER) | (1 << 11));
        }
    }
    // CR0.WP: the kernel too faults on writes to read-only pages, so copies into user
    // memory cannot write through a read-only mapping.
    // SAFETY: setting WP only adds protection.
    unsafe {
        core::arch::asm!("mov {t}, cr0", "or {t}, {wp}", "mov cr0, {t}", t = out(reg) _, wp = const 1u64 << 16,
            options(nostack))
    };
    let pml4 = frames::alloc_zeroed().expect("no memory for the kernel page tables");
    let mut space = AddressSpace { pml4 };
    let huge = 2 << 20;
    let mut physical = 0;
    while physical < top.next_multiple_of(huge) {
        space.map_huge(hhdm + physical, physical, WRITABLE | no_execute()).expect("mapping the HHDM");
        physical += huge;
    }
    unsafe extern "C" {
        static __kernel_start: u8;
        static __text_end: u8;
        static __rodata_end: u8;
        static __kernel_end: u8;
    }
    let text = &raw const __kernel_start as u64;
    let rodata = &raw const __text_end as u64;
    let data = &raw const __rodata_end as u64;
    let end = &raw const __kernel_end as u64;
    for (start, stop, flags) in
        [(text, rodata, 0), (rodata, data, no_execute()), (data, end, WRITABLE | no_execute())]
    {
        let mut virt = start;
        while virt < stop {
            let physical = image.physical_base + (virt - image.virtual_base);
            space.map(virt, physical, flags).expect("mapping the kernel image");
            virt += PAGE_SIZE;
        }
    }
    // Every upper-half PML4 entry exists from now on, so task address spaces can share them.
    for entry in table(pml4)[256..].iter_mut() {
        if *entry & PRESENT == 0 {
            *entry = frames::alloc_zeroed().expect("no memory for kernel page tables") | PRESENT | WRITABLE;
        }
    }
    KERNEL_PML4.store(pml4, Ordering::Relaxed);
    space.activate();
}

/// Switch to the kernel's own tables (for the idle thread, which has no task).
/// Where the kernel heap's arenas live: PML4 entry 400 (512 GiB), whose tables every address
/// space shares, one GiB per arena.
pub const HEAP_BASE: u64 = 0xffff_c800_0000_0000;
pub const HEAP_SLOT_SIZE: u64 = 1 << 30;

/// Map the heap frame `physical` at `virt` (in the heap's region; read-write, not
/// executable). New page tables may come from the frames' reserve, as heap frames do.
pub fn map_heap_page(virt: u64, physical: u64) -> Result<(), KernelError> {
    debug_assert!((HEAP_BASE..HEAP_BASE + 512 * HEAP_SLOT_SIZE).contains(&virt));
    let entry = AddressSpace::kernel().leaf_entry_with(virt, false, frames::alloc_zeroed_for_heap)?;
    *entry = physical | WRITABLE | no_execute() | PRESENT;
    Ok(())
}

/// Unmap the heap slot (one GiB) at `slot_start`: free every frame mapped there and every
/// page table under it. Nothing may use the slot any more.
pub fn free_heap_slot(slot_start: u64) {
    let Ok(pdpt_entry) = AddressSpace::kernel().walk_to(slot_start, 2) else { return };
    let pd = *pdpt_entry & ADDRESS_MASK;
    if *pdpt_entry & PRESENT == 0 {
        return;
    }
    for &pd_entry in table(pd).iter().filter(|e| **e & PRESENT != 0) {
        let pt = pd_entry & ADDRESS_MASK;
        for &leaf in table(pt).iter().filter(|e| **e & PRESENT != 0) {
            frames::free(leaf & ADDRESS_MASK);
        }
        frames::free(pt);
    }
    frames::free(pd);
    *pdpt_entry = 0;
    // Kernel mappings are not global: reloading CR3 drops every stale translation.
    // SAFETY: the same CR3 again only flushes the TLB.
    unsafe { crate::arch::cpu::write_cr3(crate::arch::cpu::read_cr3()) };
}

pub fn activate_kernel_space() {
    // SAFETY: the kernel tables map everything the kernel uses.
    unsafe { crate::arch::cpu::write_cr3(KERNEL_PML4.load(Ordering::Relaxed)) };
}

/// Drop the TLB entry for `virt` (the page may belong to the running address space).
fn invalidate(virt: u64) {
    // SAFETY: invlpg only drops a cached translation.
    unsafe { core::arch::asm!("invlpg [{}]", in(reg) virt, options(nostack, preserves_flags)) };
}

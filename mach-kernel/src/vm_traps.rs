//! Traps on a task's memory: allocate, deallocate, protect, share (`vm_map`), and copy to
//! and from it (`vm_write`, `vm_read`).
//!
//! Every address and size is checked against user space and page alignment; a bad one is an
//! error code and changes nothing. Long ones work in steps and let the timer in between, so
//! no trap holds the CPU with interrupts off for long.

use crate::args::{Protection, UserRange};
use crate::memory::PAGE_SIZE;
use crate::memory::paging::{self, AddressSpace};
use crate::memory::user::UserSlice;
use crate::world::{self, TaskId, World};
use alloc::vec::Vec;
use mach_abi::{KernelError, VM_MAX_SIZE};

/// Pages a long trap handles between two preemption points (256 KiB of memory).
const PAGES_PER_STEP: u64 = 64;

/// `vm_allocate(task, address (0: anywhere), size, protection) -> address`: zeroed pages,
/// never over existing ones. Takes the lock itself, a step at a time.
pub fn vm_allocate(
    task: TaskId,
    address: u64,
    size: u64,
    protection: Protection,
) -> Result<u64, KernelError> {
    let Protection { writable, executable } = protection;
    let (start, end) = world::with(|w| {
        let t = w.tasks.get_mut(task).ok_or(KernelError::InvalidArgument)?;
        let anywhere = address == 0;
        let address = if anywhere { t.find_anywhere(size)? } else { address };
        let UserRange { start, end } = UserRange::new(address, size)?;
        if !t.space.is_unmapped(start, end) {
            return Err(KernelError::InvalidAddress);
        }
        // Placed now, so that other "anywhere" calls made while this one is preempted go
        // elsewhere (an error below unmaps what was mapped; the next search finds it free).
        if anywhere {
            t.placed_anywhere(start, size);
        }
        Ok((start, end))
    })?;
    // In steps, with the timer let in between: a gigabyte of zeroed pages takes a while.
    let mut page = start;
    while page < end {
        let step_end = (page + PAGES_PER_STEP * PAGE_SIZE).min(end);
        let mapped = world::with(|w| {
            let t = w.tasks.get_mut(task).ok_or(KernelError::InvalidArgument)?;
            while page < step_end {
                t.space.map_new_user_page(page, writable, executable)?;
                page += PAGE_SIZE;
            }
            Ok(())
        });
        if let Err(e) = mapped {
            // Unmap what this call mapped (the task may have ended: then nothing is left).
            world::with(|w| {
                if let Some(t) = w.tasks.get_mut(task) {
                    (start..page).step_by(PAGE_SIZE as usize).for_each(|p| t.space.unmap_user_page(p));
                }
            });
            return Err(e);
        }
        crate::arch::cpu::let_interrupts_in();
    }
    Ok(start)
}

/// `vm_deallocate(task, address, size)`: unmapped pages are skipped. Takes the lock itself,
/// a step at a time.
pub fn vm_deallocate(task: TaskId, range: UserRange) -> Result<u64, KernelError> {
    let UserRange { start, end } = range;
    let mut page = start;
    while page < end {
        let step_end = (page + PAGES_PER_STEP * PAGE_SIZE).min(end);
        world::with(|w| {
            let t = w.tasks.get_mut(task).ok_or(KernelError::InvalidArgument)?;
            (page..step_end).step_by(PAGE_SIZE as usize).for_each(|p| t.space.unmap_user_page(p));
            Ok::<_, KernelError>(())
        })?;
        page = step_end;
        crate::arch::cpu::let_interrupts_in();
    }
    Ok(0)
}

/// `vm_protect(task, address, size, protection)`: every page checked before any changes.
pub fn vm_protect(
    w: &mut World,
    task: TaskId,
    range: UserRange,
    protection: Protection,
) -> Result<u64, KernelError> {
    let Protection { writable, executable } = protection;
    let t = w.tasks.get_mut(task).ok_or(KernelError::InvalidArgument)?;
    // Every page is checked before any changes: an error changes nothing.
    range.pages().try_for_each(|page| t.space.may_protect_user_page(page, writable))?;
    range.pages().try_for_each(|page| t.space.protect_user_page(page, writable, executable))?;
    Ok(0)
}

/// `vm_map(task, address, size, source_task, source_address, protection) -> address`: map
/// the pages of `source_task` at `source_address` into `task` at `address` (0: anywhere),
/// shared: each side sees the other's writes. Every source page must be mapped; memory the
/// source does not own is never shared with more access than it has there. Nothing changes
/// when an error is returned (a copy-on-write source page may have become the source's own).
pub fn vm_map(
    w: &mut World,
    task: TaskId,
    address: u64,
    source: TaskId,
    source_range: UserRange,
    protection: Protection,
) -> Result<u64, KernelError> {
    let Protection { writable, executable } = protection;
    let size = source_range.size();
    crate::memory::heap::room_for_user_objects()?;
    let source_pages = source_range.pages();
    {
        let s = w.tasks.get(source).ok_or(KernelError::InvalidArgument)?;
        source_pages.clone().try_for_each(|page| s.space.may_protect_user_page(page, writable))?;
        let t = w.tasks.get_mut(task).ok_or(KernelError::InvalidArgument)?;
        let anywhere = address == 0;
        let address = if anywhere { t.find_anywhere(size)? } else { address };
        let UserRange { start, end } = UserRange::new(address, size)?;
        if !t.space.is_unmapped(start, end) {
            return Err(KernelError::InvalidAddress);
        }
        // Checked: now a reference to each source frame, then the mappings that hold them.
        let s = w.tasks.get_mut(source).ok_or(KernelError::InvalidArgument)?;
        let mut entries = Vec::with_capacity((size / PAGE_SIZE) as usize);
        for page in source_pages {
            match s.space.share_user_page(page, writable) {
                Ok(entry) => entries.push(entry),
                Err(e) => {
                    entries.into_iter().for_each(AddressSpace::unshare_entry);
                    return Err(e);
                }
            }
        }
        let t = w.tasks.get_mut(task).ok_or(KernelError::InvalidArgument)?;
        let pages = entries.iter().map(|&entry| paging::shared_entry(entry, writable, executable));
        if let Err((e, mapped)) = t.space.map_user_pages(start, pages) {
            // The mapped ones gave their references back when unmapped.
            entries.into_iter().skip(mapped as usize).for_each(AddressSpace::unshare_entry);
            return Err(e);
        }
        if anywhere {
            t.placed_anywhere(start, size);
        }
        Ok(start)
    }
}

/// Copy `len` bytes between the caller's memory and `task`'s, a page-sized chunk at a time.
fn vm_copy(
    task: TaskId,
    address: u64,
    caller_address: u64,
    len: u64,
    into_task: bool,
) -> Result<u64, KernelError> {
    if len > VM_MAX_SIZE {
        return Err(KernelError::InvalidArgument);
    }
    let mut chunk = [0u8; PAGE_SIZE as usize];
    let mut done = 0;
    while done < len {
        let n = (len - done).min(PAGE_SIZE);
        let buffer = chunk.get_mut(..n as usize).ok_or(KernelError::InvalidArgument)?;
        world::with(|w| {
            let caller = w.current_task_id().ok_or(KernelError::InvalidArgument)?;
            let (from_task, from, to_task, to) = if into_task {
                (caller, caller_address + done, task, address + done)
            } else {
                (task, address + done, caller, caller_address + done)
            };
            let space = |task| w.tasks.get(task).map(|t| &t.space).ok_or(KernelError::InvalidArgument);
            UserSlice::new(from, buffer.len())?.read_in(space(from_task)?, buffer)?;
            UserSlice::new(to, buffer.len())?.write_in(space(to_task)?, buffer)
        })?;
        done += n;
        if done.is_multiple_of(PAGES_PER_STEP * PAGE_SIZE) {
            crate::arch::cpu::let_interrupts_in();
        }
    }
    Ok(len)
}

/// `vm_write(task, address, source, length)`: copy from the caller into the task. Takes the
/// lock itself, a page at a time.
pub fn vm_write(task: TaskId, address: u64, source: u64, len: u64) -> Result<u64, KernelError> {
    vm_copy(task, address, source, len, true)
}

/// `vm_read(task, address, destination, length)`: copy from the task into the caller. Takes
/// the lock itself, a page at a time.
pub fn vm_read(task: TaskId, address: u64, destination: u64, len: u64) -> Result<u64, KernelError> {
    vm_copy(task, address, destination, len, false)
}

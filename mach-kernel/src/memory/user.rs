//! User memory, the one way the kernel touches it. A [`UserPtr<T>`] or [`UserSlice<T>`] is
//! an allegation made by user space (an address, a length) until it is checked against a
//! task's page tables, and values cross only as plain-bytes types: zerocopy's `FromBytes` to
//! read (any bytes are a value) and `IntoBytes + Immutable` to write (no padding, so no kernel
//! bytes leak). The layouts live in `mach-abi`, which derives those traits.
//!
//! Which task's memory it is decides how it is reached, not the caller:
//! - the running task's own (`read`, `write`): the copy runs on the user addresses directly,
//!   and a page fault inside it becomes `InvalidAddress` (the fault fixup of
//!   `arch::user_copy`), with no page-table walk; a write may have been partly done when it
//!   fails, so a caller that must not leave half a result checks first (`check_in`);
//! - another task's (`read_in`, `write_in`): every page is checked in that task's tables
//!   first (present, user, writable for a write, a copy-on-write page made the task's own,
//!   never device memory), then copied through the direct map: an error changes nothing.
//!
//! It must never touch a kernel address or device memory, and never trust a length.

use super::paging::AddressSpace;
use crate::arch::user_copy::{copy_from_user, copy_to_user};
use core::marker::PhantomData;
use core::mem::{MaybeUninit, size_of};
use mach_abi::KernelError;
use mach_abi::zerocopy::{FromBytes, Immutable, IntoBytes};

/// One `T` at a user address.
pub struct UserPtr<T> {
    address: u64,
    _type: PhantomData<fn() -> T>,
}

/// `len` consecutive `T`s at a user address.
pub struct UserSlice<T> {
    address: u64,
    len: usize,
    _type: PhantomData<fn() -> T>,
}

impl<T> Clone for UserPtr<T> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<T> Copy for UserPtr<T> {}

impl<T: FromBytes + IntoBytes + Immutable> UserPtr<T> {
    pub fn new(address: u64) -> Self {
        UserPtr { address, _type: PhantomData }
    }

    pub fn address(self) -> u64 {
        self.address
    }

    /// The value in the running task's memory.
    #[inline(always)]
    pub fn read(self) -> Result<T, KernelError> {
        let mut value = MaybeUninit::<T>::uninit();
        // SAFETY: `value` has room for a T; the copy checks the range is user space and
        // turns a fault into `false`.
        let copied = unsafe { copy_from_user(value.as_mut_ptr().cast(), self.address, size_of::<T>()) };
        if !copied {
            return Err(KernelError::InvalidAddress);
        }
        // SAFETY: fully written by the copy, and T: FromBytes, so any bytes are a T.
        Ok(unsafe { value.assume_init() })
    }

    /// Write `value` into the running task's memory.
    #[inline(always)]
    pub fn write(self, value: &T) -> Result<(), KernelError> {
        write_running(self.address, value.as_bytes())
    }
}

impl<T: FromBytes + IntoBytes + Immutable> UserSlice<T> {
    /// `len` values at `address`; `InvalidAddress` when their bytes cannot even be counted.
    #[inline(always)]
    pub fn new(address: u64, len: usize) -> Result<Self, KernelError> {
        len.checked_mul(size_of::<T>()).ok_or(KernelError::InvalidAddress)?;
        Ok(UserSlice { address, len, _type: PhantomData })
    }

    fn bytes(&self) -> usize {
        self.len * size_of::<T>()
    }

    /// Fill `out` (exactly `len` values) from the running task's memory.
    pub fn read(&self, out: &mut [T]) -> Result<(), KernelError> {
        let out = out.get_mut(..self.len).ok_or(KernelError::InvalidArgument)?;
        let bytes = out.as_mut_bytes();
        if bytes.is_empty() {
            return Ok(());
        }
        // SAFETY: `bytes` is kernel memory of the right length; T: FromBytes.
        let copied = unsafe { copy_from_user(bytes.as_mut_ptr(), self.address, bytes.len()) };
        if copied { Ok(()) } else { Err(KernelError::InvalidAddress) }
    }

    /// Write `values` (exactly `len`) into the running task's memory.
    #[inline(always)]
    pub fn write(&self, values: &[T]) -> Result<(), KernelError> {
        let values = values.get(..self.len).ok_or(KernelError::InvalidArgument)?;
        write_running(self.address, values.as_bytes())
    }

    /// Fill `out` from `space` (checked page by page first).
    pub fn read_in(&self, space: &AddressSpace, out: &mut [T]) -> Result<(), KernelError> {
        let out = out.get_mut(..self.len).ok_or(KernelError::InvalidArgument)?;
        space.read_user(self.address, out.as_mut_bytes())
    }

    /// Write `values` into `space`; nothing is written unless all of it can be.
    pub fn write_in(&self, space: &AddressSpace, values: &[T]) -> Result<(), KernelError> {
        let values = values.get(..self.len).ok_or(KernelError::InvalidArgument)?;
        space.write_user(self.address, values.as_bytes())
    }

    /// Whether the whole range is user memory of `space` that may be read (or written): to
    /// check before a change that could not be undone. A copy-on-write page in a range to
    /// write becomes the task's own here.
    pub fn check_in(&self, space: &AddressSpace, write: bool) -> Result<(), KernelError> {
        space.check_user(self.address, self.bytes(), write)
    }
}

impl UserSlice<u8> {
    /// Copy the bytes from the running task into `out` (at least `len` long) without
    /// initialising it first; the initialised bytes on success.
    #[inline(always)]
    pub fn read_uninit<'a>(&self, out: &'a mut [MaybeUninit<u8>]) -> Result<&'a mut [u8], KernelError> {
        let out = out.get_mut(..self.len).ok_or(KernelError::InvalidArgument)?;
        if !out.is_empty() {
            // SAFETY: `out` is kernel memory of `len` bytes; the copy checks the source.
            let copied = unsafe { copy_from_user(out.as_mut_ptr().cast(), self.address, out.len()) };
            if !copied {
                return Err(KernelError::InvalidAddress);
            }
        }
        // SAFETY: all `len` bytes were written by the copy.
        Ok(unsafe { &mut *(out as *mut [MaybeUninit<u8>] as *mut [u8]) })
    }
}

#[inline(always)]
fn write_running(address: u64, bytes: &[u8]) -> Result<(), KernelError> {
    if bytes.is_empty() {
        return Ok(());
    }
    // SAFETY: `bytes` is kernel memory of its length; the copy checks the destination is
    // user space and turns a fault into `false`.
    let copied = unsafe { copy_to_user(address, bytes.as_ptr(), bytes.len()) };
    if copied { Ok(()) } else { Err(KernelError::InvalidAddress) }
}

//! The kernel memory a task makes the kernel hold for it, and its limit
//! ([`mach_abi::TASK_HELD_LIMIT`]): the messages it sent that are still queued (inline data and
//! out-of-line copies) and the names of its name space ([`mach_abi::HELD_PER_NAME`] each).
//! Without a limit one task could make the kernel copy gigabytes for messages nobody
//! receives, or fill the kernel heap with ports, and leave nothing for the others.
//!
//! A queued message owns a [`HeldCharge`]; the charge goes back to the sender's account when
//! the message is dropped (received or destroyed), also after the sender has ended. This
//! module only counts: it never allocates after [`HeldAccount::new`] and never blocks.

use alloc::sync::Arc;
use core::sync::atomic::{AtomicU64, Ordering};
use mach_abi::{HELD_PER_NAME, KernelError, TASK_HELD_LIMIT};

/// A task's account of bytes held in queued messages.
pub struct HeldAccount(Arc<AtomicU64>);

/// Bytes charged to an account while a message is queued; given back when dropped.
pub struct HeldCharge {
    account: Arc<AtomicU64>,
    bytes: u64,
}

impl HeldAccount {
    pub fn new() -> Self {
        HeldAccount(Arc::new(AtomicU64::new(0)))
    }

    /// Bytes held now in queued messages.
    pub fn in_messages(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }

    /// Whether `names` names and `bytes` more in messages stay within the limit.
    fn fits(&self, bytes: u64, names: usize) -> bool {
        let for_names = (names as u64).saturating_mul(HELD_PER_NAME);
        self.in_messages().saturating_add(bytes).saturating_add(for_names) <= TASK_HELD_LIMIT
    }

    /// Charge a message of `bytes` sent by a task with `names` names; `NoMemory` past the
    /// limit (nothing charged).
    pub fn charge(&self, bytes: u64, names: usize) -> Result<HeldCharge, KernelError> {
        if !self.fits(bytes, names) {
            return Err(KernelError::NoMemory);
        }
        self.0.fetch_add(bytes, Ordering::Relaxed);
        Ok(HeldCharge { account: Arc::clone(&self.0), bytes })
    }

    /// Whether a task with `names` names may make one more.
    pub fn room_for_name(&self, names: usize) -> Result<(), KernelError> {
        if self.fits(0, names.saturating_add(1)) { Ok(()) } else { Err(KernelError::NoMemory) }
    }
}

impl Default for HeldAccount {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for HeldCharge {
    fn drop(&mut self) {
        self.account.fetch_sub(self.bytes, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn charges_come_back_when_dropped() {
        let account = HeldAccount::new();
        let a = account.charge(1000, 0).unwrap();
        let b = account.charge(24, 0).unwrap();
        assert_eq!(account.in_messages(), 1024);
        drop(a);
        assert_eq!(account.in_messages(), 24);
        drop(b);
        assert_eq!(account.in_messages(), 0);
    }

    #[test]
    fn the_limit_counts_messages_and_names() {
        let account = HeldAccount::new();
        let half = TASK_HELD_LIMIT / 2;
        let _a = account.charge(half, 0).unwrap();
        assert!(account.charge(half + 1, 0).is_err(), "past the limit");
        assert_eq!(account.in_messages(), half, "a refused charge changes nothing");
        let names = (half / HELD_PER_NAME) as usize;
        assert!(account.charge(1, names).is_err(), "names count too");
        assert!(account.room_for_name(names - 1).is_ok());
        assert!(account.room_for_name(names).is_err());
    }
}

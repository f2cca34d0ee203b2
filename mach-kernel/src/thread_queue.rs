//! A FIFO of thread ids waiting on a port: one waiter (the usual case: the server thread
//! of a port, the client waiting for its reply) sits in a slot of its own, more go to a ring
//! buffer behind it, so push and pop are a handful of instructions (the IPC fast path does
//! one of each per message). The ring grows by doubling, out of line, when full; it never
//! shrinks, never panics, and keeps every id it was given.

use alloc::vec::Vec;

#[derive(Default, Clone)]
pub struct ThreadQueue {
    /// The oldest waiter, when the ring holds nobody older than it.
    first: Option<u64>,
    /// The waiters after `first` (all of them while `first` is empty). Capacity is 0 or a
    /// power of two.
    ring: Vec<u64>,
    head: usize,
    len: usize,
}

impl ThreadQueue {
    pub const fn new() -> Self {
        ThreadQueue { first: None, ring: Vec::new(), head: 0, len: 0 }
    }

    #[inline]
    pub fn len(&self) -> usize {
        self.len + usize::from(self.first.is_some())
    }

    #[inline]
    pub fn is_empty(&self) -> bool {
        self.first.is_none() && self.len == 0
    }

    #[inline]
    pub fn push_back(&mut self, thread: u64) {
        if self.first.is_none() && self.len == 0 {
            self.first = Some(thread);
            return;
        }
        if self.len == self.ring.len() {
            self.grow();
        }
        let mask = self.ring.len() - 1;
        if let Some(slot) = self.ring.get_mut((self.head + self.len) & mask) {
            *slot = thread;
            self.len += 1;
        }
    }

    #[inline]
    pub fn front(&self) -> Option<u64> {
        self.first.or_else(|| self.ring_front())
    }

    #[inline]
    pub fn pop_front(&mut self) -> Option<u64> {
        if let Some(thread) = self.first.take() {
            return Some(thread);
        }
        self.ring_pop_front()
    }

    #[inline]
    fn ring_front(&self) -> Option<u64> {
        if self.len == 0 { None } else { self.ring.get(self.head).copied() }
    }

    #[inline]
    fn ring_pop_front(&mut self) -> Option<u64> {
        let thread = self.ring_front()?;
        self.head = (self.head + 1) & (self.ring.len() - 1);
        self.len -= 1;
        Some(thread)
    }

    /// Take every id out, oldest first.
    pub fn drain(&mut self) -> impl Iterator<Item = u64> + '_ {
        core::iter::from_fn(move || self.pop_front())
    }

    #[cold]
    fn grow(&mut self) {
        let capacity = (self.ring.len() * 2).max(4);
        let len = self.len;
        let mut ring = Vec::with_capacity(capacity);
        while let Some(thread) = self.ring_pop_front() {
            ring.push(thread);
        }
        ring.resize(capacity, 0);
        self.ring = ring;
        self.head = 0;
        self.len = len;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_in_first_out_across_growth_and_wrap_around() {
        let mut q = ThreadQueue::new();
        assert_eq!((q.front(), q.pop_front()), (None, None));
        let mut expected = std::collections::VecDeque::new();
        // Interleave pushes and pops so the ring wraps and grows several times.
        for round in 0..50u64 {
            for i in 0..(round % 7) {
                q.push_back(round * 100 + i);
                expected.push_back(round * 100 + i);
            }
            for _ in 0..(round % 5) {
                assert_eq!(q.pop_front(), expected.pop_front());
            }
            assert_eq!(q.len(), expected.len());
            assert_eq!(q.front(), expected.front().copied());
        }
        let rest: std::vec::Vec<u64> = q.drain().collect();
        assert_eq!(rest, expected.into_iter().collect::<std::vec::Vec<_>>());
        assert!(q.is_empty());
    }
}

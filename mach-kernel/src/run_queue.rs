//! Ready threads by priority: one FIFO per priority level and a bitmap of the non-empty
//! levels, so picking the next thread is a find-first-set and a pop. Higher numbers run
//! first; threads of equal priority take turns (round robin).

use alloc::collections::VecDeque;

pub const PRIORITY_LEVELS: usize = 32;

#[derive(Default)]
pub struct RunQueue {
    levels: [VecDeque<u64>; PRIORITY_LEVELS],
    non_empty: u32,
}

impl RunQueue {
    /// Queue `thread` at the back of its level. Priorities above the top are clamped.
    pub fn push(&mut self, thread: u64, priority: u8) {
        let level = (priority as usize).min(PRIORITY_LEVELS - 1);
        if let Some(queue) = self.levels.get_mut(level) {
            queue.push_back(thread);
            self.non_empty |= 1 << level;
        }
    }

    /// The first thread of the highest non-empty level.
    pub fn pop(&mut self) -> Option<u64> {
        let level = 31u32.checked_sub(self.non_empty.leading_zeros())? as usize;
        let queue = self.levels.get_mut(level)?;
        let thread = queue.pop_front();
        if queue.is_empty() {
            self.non_empty &= !(1 << level);
        }
        thread
    }

    /// Highest priority with a ready thread.
    pub fn highest(&self) -> Option<u8> {
        31u32.checked_sub(self.non_empty.leading_zeros()).map(|l| l as u8)
    }

    pub fn is_empty(&self) -> bool {
        self.non_empty == 0
    }

    /// Take `thread` out wherever it is queued (it was suspended or ended while ready).
    pub fn remove(&mut self, thread: u64) {
        for (level, queue) in self.levels.iter_mut().enumerate() {
            queue.retain(|&t| t != thread);
            if queue.is_empty() {
                self.non_empty &= !(1 << level);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn highest_priority_first_then_round_robin() {
        let mut q = RunQueue::default();
        assert_eq!(q.pop(), None);
        q.push(1, 10);
        q.push(2, 20);
        q.push(3, 10);
        q.push(4, 200); // clamped to the top level
        assert_eq!(q.highest(), Some(31));
        assert_eq!([q.pop(), q.pop(), q.pop(), q.pop(), q.pop()], [Some(4), Some(2), Some(1), Some(3), None]);
        assert!(q.is_empty());
    }

    #[test]
    fn remove_takes_a_thread_out() {
        let mut q = RunQueue::default();
        q.push(1, 5);
        q.push(2, 5);
        q.push(3, 7);
        q.remove(3);
        q.remove(1);
        assert_eq!(q.highest(), Some(5));
        assert_eq!(q.pop(), Some(2));
        assert!(q.is_empty());
    }
}

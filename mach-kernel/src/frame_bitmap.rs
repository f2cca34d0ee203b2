//! Which physical page frames are free: one bit per 4 KiB frame (1 = in use).
//!
//! Pure bookkeeping over a caller-provided word slice, so it can be tested on the host; the
//! kernel's `memory::frames` wraps it with a lock and the memory map. It must never hand out
//! a frame twice, and freeing a frame that is not in use is an error, not a silent no-op.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrameError {
    /// The frame number is beyond the bitmap.
    OutOfRange,
    /// The frame was already free.
    NotInUse,
}

pub struct FrameBitmap<'a> {
    words: &'a mut [u64],
    free: usize,
    /// Lowest word that may have a free bit: the search for a single frame starts here.
    hint: usize,
}

impl<'a> FrameBitmap<'a> {
    /// A bitmap covering `words.len() * 64` frames, all in use.
    pub fn new(words: &'a mut [u64]) -> Self {
        words.fill(u64::MAX);
        FrameBitmap { words, free: 0, hint: 0 }
    }

    pub fn frame_count(&self) -> usize {
        self.words.len() * 64
    }

    pub fn free_count(&self) -> usize {
        self.free
    }

    fn is_used(&self, frame: usize) -> bool {
        self.words.get(frame / 64).is_none_or(|w| w & (1 << (frame % 64)) != 0)
    }

    fn set(&mut self, frame: usize, used: bool) {
        if let Some(word) = self.words.get_mut(frame / 64) {
            let bit = 1u64 << (frame % 64);
            if used {
                *word |= bit;
            } else {
                *word &= !bit;
            }
        }
    }

    /// Mark `[first, first + count)` free (memory-map setup). Frames past the end are ignored.
    pub fn add_free_range(&mut self, first: usize, count: usize) {
        let end = first.saturating_add(count).min(self.frame_count());
        for frame in first..end {
            if self.is_used(frame) {
                self.set(frame, false);
                self.free += 1;
            }
        }
        self.hint = 0;
    }

    /// Mark `[first, first + count)` in use (memory-map setup). Frames past the end are ignored.
    pub fn reserve_range(&mut self, first: usize, count: usize) {
        let end = first.saturating_add(count).min(self.frame_count());
        for frame in first..end {
            if !self.is_used(frame) {
                self.set(frame, true);
                self.free -= 1;
            }
        }
    }

    /// Take one free frame.
    pub fn alloc(&mut self) -> Option<usize> {
        let (index, word) =
            self.words.iter_mut().enumerate().skip(self.hint).find(|(_, w)| **w != u64::MAX)?;
        let bit = (!*word).trailing_zeros() as usize;
        *word |= 1 << bit;
        self.free -= 1;
        self.hint = index;
        Some(index * 64 + bit)
    }

    /// Take `count` contiguous free frames whose first frame is a multiple of `align`.
    pub fn alloc_contiguous(&mut self, count: usize, align: usize) -> Option<usize> {
        if count == 0 || align == 0 {
            return None;
        }
        let mut start = 0;
        while start + count <= self.frame_count() {
            match (start..start + count).rev().find(|&f| self.is_used(f)) {
                None => {
                    for frame in start..start + count {
                        self.set(frame, true);
                    }
                    self.free -= count;
                    return Some(start);
                }
                Some(used) => start = (used + 1).next_multiple_of(align),
            }
        }
        None
    }

    /// Give a frame back.
    pub fn free(&mut self, frame: usize) -> Result<(), FrameError> {
        if frame >= self.frame_count() {
            return Err(FrameError::OutOfRange);
        }
        if !self.is_used(frame) {
            return Err(FrameError::NotInUse);
        }
        self.set(frame, false);
        self.free += 1;
        self.hint = self.hint.min(frame / 64);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn starts_full_and_hands_out_only_free_frames() {
        let mut words = [0u64; 4];
        let mut map = FrameBitmap::new(&mut words);
        assert_eq!(map.alloc(), None);
        map.add_free_range(10, 3);
        assert_eq!(map.free_count(), 3);
        assert_eq!(
            [map.alloc(), map.alloc(), map.alloc(), map.alloc()],
            [Some(10), Some(11), Some(12), None]
        );
        assert_eq!(map.free_count(), 0);
    }

    #[test]
    fn free_returns_frames_and_rejects_double_free() {
        let mut words = [0u64; 2];
        let mut map = FrameBitmap::new(&mut words);
        map.add_free_range(0, 128);
        let a = map.alloc().unwrap();
        let b = map.alloc().unwrap();
        assert_ne!(a, b);
        assert_eq!(map.free_count(), 126);
        assert_eq!(map.free(a), Ok(()));
        assert_eq!(map.free(a), Err(FrameError::NotInUse));
        assert_eq!(map.free(500), Err(FrameError::OutOfRange));
        assert_eq!(map.alloc(), Some(a));
        assert_eq!(map.free_count(), 126);
    }

    #[test]
    fn reserve_and_ranges_past_the_end() {
        let mut words = [0u64; 1];
        let mut map = FrameBitmap::new(&mut words);
        map.add_free_range(60, 100);
        assert_eq!(map.free_count(), 4);
        map.reserve_range(62, 1);
        map.reserve_range(62, 1);
        assert_eq!(map.free_count(), 3);
        let mut got = std::vec::Vec::new();
        while let Some(f) = map.alloc() {
            got.push(f);
        }
        assert_eq!(got, [60, 61, 63]);
    }

    #[test]
    fn contiguous_respects_alignment_and_holes() {
        let mut words = [0u64; 4];
        let mut map = FrameBitmap::new(&mut words);
        map.add_free_range(1, 200);
        map.reserve_range(20, 1);
        assert_eq!(map.alloc_contiguous(16, 16), Some(32));
        assert_eq!(map.alloc_contiguous(4, 1), Some(1));
        assert_eq!(map.alloc_contiguous(16, 1), Some(48));
        assert_eq!(map.alloc_contiguous(11, 1), Some(5));
        assert_eq!(map.alloc_contiguous(4, 1), Some(16));
        assert_eq!(map.alloc_contiguous(1, 1), Some(21));
        assert_eq!(map.free_count(), 200 - 1 - 52);
        assert_eq!(map.alloc_contiguous(300, 1), None);
        assert_eq!(map.alloc_contiguous(0, 1), None);
    }
}

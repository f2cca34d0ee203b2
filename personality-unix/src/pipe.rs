//! A pipe as the personality serves it: a bounded buffer between its write ends and read
//! ends, counted; with the readers and writers that wait on it. Pure: the waiters are
//! whatever the caller keeps to answer them later (a reply right and where the bytes go).
//!
//! Rules (POSIX): a read takes what is there (up to its count), waits when the pipe is empty
//! and a writer remains, and gets end of file when none does. A write puts what fits and
//! answers how much (a short write when the buffer fills: callers loop), waits when the
//! buffer is full, and fails with EPIPE when no reader remains. It must never lose a waiter:
//! every one is answered by a later write, read or close.

use alloc::collections::VecDeque;
use alloc::vec::Vec;

/// Bytes a pipe holds (Linux's default).
pub const CAPACITY: usize = 64 * 1024;

pub struct Pipe<W> {
    buffer: VecDeque<u8>,
    pub readers: usize,
    pub writers: usize,
    /// Reads waiting for data: (the waiter, how many bytes it wants).
    waiting_readers: VecDeque<(W, usize)>,
    /// Writes waiting for room: (the waiter, its bytes, how many already went in).
    waiting_writers: VecDeque<(W, Vec<u8>, usize)>,
}

/// How a read or a write turns out, now or for a waiter answered later.
#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    Data(Vec<u8>),
    EndOfFile,
    Wrote(usize),
    Broken,
    /// Not now: the caller's waiter was kept.
    Waiting,
}

impl<W> Default for Pipe<W> {
    fn default() -> Self {
        Pipe {
            buffer: VecDeque::new(),
            readers: 1,
            writers: 1,
            waiting_readers: VecDeque::new(),
            waiting_writers: VecDeque::new(),
        }
    }
}

impl<W> Pipe<W> {
    pub fn len(&self) -> usize {
        self.buffer.len()
    }

    pub fn is_empty(&self) -> bool {
        self.buffer.is_empty()
    }

    fn take(&mut self, count: usize) -> Vec<u8> {
        let n = count.min(self.buffer.len());
        self.buffer.drain(..n).collect()
    }

    /// Read up to `count` bytes, or keep `waiter` until there are some.
    pub fn read(&mut self, count: usize, waiter: W) -> Outcome {
        if count == 0 {
            return Outcome::Data(Vec::new());
        }
        if !self.buffer.is_empty() {
            return Outcome::Data(self.take(count));
        }
        if self.writers == 0 {
            return Outcome::EndOfFile;
        }
        self.waiting_readers.push_back((waiter, count));
        Outcome::Waiting
    }

    /// Write `bytes` (what fits), or keep `waiter` until there is room.
    pub fn write(&mut self, bytes: Vec<u8>, waiter: W) -> Outcome {
        if self.readers == 0 {
            return Outcome::Broken;
        }
        let room = CAPACITY - self.buffer.len();
        if room == 0 && !bytes.is_empty() {
            self.waiting_writers.push_back((waiter, bytes, 0));
            return Outcome::Waiting;
        }
        let n = room.min(bytes.len());
        self.buffer.extend(&bytes[..n]);
        Outcome::Wrote(n)
    }

    /// After a change, the waiters that can be answered now, and how.
    pub fn settle(&mut self) -> Vec<(W, Outcome)> {
        let mut answered = Vec::new();
        loop {
            let mut progress = false;
            if !self.buffer.is_empty()
                && let Some((waiter, count)) = self.waiting_readers.pop_front()
            {
                let data = self.take(count);
                answered.push((waiter, Outcome::Data(data)));
                progress = true;
            }
            if self.buffer.len() < CAPACITY
                && let Some((waiter, bytes, done)) = self.waiting_writers.pop_front()
            {
                let n = (CAPACITY - self.buffer.len()).min(bytes.len() - done);
                self.buffer.extend(&bytes[done..done + n]);
                // A waiting writer is answered with what went in (a short write), like one
                // that found room at once.
                answered.push((waiter, Outcome::Wrote(done + n)));
                progress = true;
            }
            if !progress {
                break;
            }
        }
        if self.writers == 0 {
            answered.extend(self.waiting_readers.drain(..).map(|(w, _)| (w, Outcome::EndOfFile)));
        }
        if self.readers == 0 {
            answered.extend(
                self.waiting_writers
                    .drain(..)
                    .map(|(w, _, done)| (w, if done > 0 { Outcome::Wrote(done) } else { Outcome::Broken })),
            );
        }
        answered
    }

    /// Take out the waiters `gone` says are gone (their process ended): they are not
    /// answered; the caller releases what it kept for them.
    pub fn forget(&mut self, gone: impl Fn(&W) -> bool) -> Vec<W> {
        let mut out = Vec::new();
        for (w, count) in core::mem::take(&mut self.waiting_readers) {
            if gone(&w) { out.push(w) } else { self.waiting_readers.push_back((w, count)) }
        }
        for (w, bytes, done) in core::mem::take(&mut self.waiting_writers) {
            if gone(&w) { out.push(w) } else { self.waiting_writers.push_back((w, bytes, done)) }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn data_flows_and_readers_wait_for_it() {
        let mut p: Pipe<u32> = Pipe::default();
        assert_eq!(p.read(10, 1), Outcome::Waiting);
        assert_eq!(p.write(b"hello".to_vec(), 2), Outcome::Wrote(5));
        assert_eq!(p.settle(), vec![(1, Outcome::Data(b"hello".to_vec()))]);
        assert_eq!(p.write(b"abc".to_vec(), 3), Outcome::Wrote(3));
        assert_eq!(p.read(2, 4), Outcome::Data(b"ab".to_vec()));
        assert_eq!(p.read(9, 5), Outcome::Data(b"c".to_vec()));
    }

    #[test]
    fn the_last_writer_gives_end_of_file_and_the_last_reader_breaks_the_pipe() {
        let mut p: Pipe<u32> = Pipe::default();
        assert_eq!(p.read(1, 1), Outcome::Waiting);
        p.writers = 0;
        assert_eq!(p.settle(), vec![(1, Outcome::EndOfFile)]);
        assert_eq!(p.read(1, 2), Outcome::EndOfFile);
        let mut p: Pipe<u32> = Pipe { readers: 0, ..Pipe::default() };
        assert_eq!(p.write(b"x".to_vec(), 3), Outcome::Broken);
    }

    #[test]
    fn a_full_pipe_keeps_the_writer_until_room() {
        let mut p: Pipe<u32> = Pipe::default();
        assert_eq!(p.write(vec![1; CAPACITY + 10], 1), Outcome::Wrote(CAPACITY), "a short write");
        assert_eq!(p.write(vec![2; 100], 2), Outcome::Waiting);
        assert_eq!(p.read(50, 3), Outcome::Data(vec![1; 50]));
        assert_eq!(p.settle(), vec![(2, Outcome::Wrote(50))], "what fitted");
        assert_eq!(p.len(), CAPACITY);
        assert!(p.forget(|&w| w == 9).is_empty());
        p.readers = 0;
        assert_eq!(p.write(vec![3], 4), Outcome::Broken);
    }
}

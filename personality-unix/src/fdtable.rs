//! A process's file descriptors: numbers mapped to the open objects the personality holds
//! (an `io` port of a server, or an object the personality serves itself: a pipe end,
//! /dev/null), with the close-on-exec flag; and the count of descriptors naming each object,
//! across every process, so that the personality releases a port (or closes a pipe end) when
//! the last one goes.
//!
//! Pure bookkeeping: it never talks to a server. It must never hand out a descriptor number
//! above [`MAX_FDS`], nor lose count of a port.

use alloc::collections::BTreeMap;
use alloc::vec::Vec;

/// The most descriptors a process may have open (RLIMIT_NOFILE).
pub const MAX_FDS: usize = 1024;

/// What a descriptor stands for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Object {
    /// A terminal port of the console server.
    Terminal(u32),
    /// A regular file (or other non-directory) port of fs-server.
    File(u32),
    /// A directory port of fs-server, and where `getdents64` goes on.
    Directory(u32),
    /// /dev/null: reads end at once, writes vanish.
    Null,
    /// /dev/zero: reads give zeros, writes vanish.
    Zero,
    /// /dev/urandom and /dev/random: reads give random bytes, writes vanish.
    Random,
    /// The read end of pipe N (served by the personality).
    PipeRead(u32),
    /// The write end of pipe N.
    PipeWrite(u32),
}

impl Object {
    /// The server port behind it, if any.
    pub fn port(&self) -> Option<u32> {
        match *self {
            Object::Terminal(p) | Object::File(p) | Object::Directory(p) => Some(p),
            Object::Null | Object::Zero | Object::Random | Object::PipeRead(_) | Object::PipeWrite(_) => None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Descriptor {
    pub object: Object,
    pub close_on_exec: bool,
    /// Directory read position (a `fs.readdir` cookie).
    pub cookie: u64,
    /// O_NONBLOCK: a read or write that would wait answers EAGAIN. Kept per descriptor (on
    /// Linux it belongs to the open file, shared by dup and fork's copies).
    pub nonblocking: bool,
}

/// A descriptor number that is not open (or out of range): EBADF.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BadDescriptor;

#[derive(Debug, Default, Clone)]
pub struct FdTable {
    slots: Vec<Option<Descriptor>>,
}

/// How many descriptors (in all processes) name each object.
#[derive(Debug, Default)]
pub struct Uses {
    uses: BTreeMap<Object, usize>,
}

impl Uses {
    pub fn add(&mut self, object: &Object) {
        *self.uses.entry(*object).or_insert(0) += 1;
    }

    /// One use fewer; the object when that was its last (the caller releases its port or
    /// closes its pipe end).
    pub fn remove(&mut self, object: &Object) -> Option<Object> {
        let count = self.uses.get_mut(object)?;
        *count -= 1;
        if *count == 0 {
            self.uses.remove(object);
            return Some(*object);
        }
        None
    }

    pub fn count(&self, object: &Object) -> usize {
        self.uses.get(object).copied().unwrap_or(0)
    }
}

impl FdTable {
    pub fn get(&self, fd: u64) -> Option<&Descriptor> {
        self.slots.get(usize::try_from(fd).ok()?)?.as_ref()
    }

    pub fn get_mut(&mut self, fd: u64) -> Option<&mut Descriptor> {
        self.slots.get_mut(usize::try_from(fd).ok()?)?.as_mut()
    }

    /// Put `d` in the lowest free slot at or above `at_least`; its number, or None when the
    /// table is full.
    pub fn insert(&mut self, d: Descriptor, uses: &mut Uses, at_least: usize) -> Option<u64> {
        let free = (at_least..MAX_FDS).find(|&i| self.slots.get(i).is_none_or(|s| s.is_none()))?;
        if free >= self.slots.len() {
            self.slots.resize(free + 1, None);
        }
        uses.add(&d.object);
        self.slots[free] = Some(d);
        Some(free as u64)
    }

    /// Put `d` at `fd` exactly (dup2), closing what was there; the port whose last use went.
    pub fn place(
        &mut self,
        fd: u64,
        d: Descriptor,
        uses: &mut Uses,
    ) -> Result<Option<Object>, BadDescriptor> {
        let index = usize::try_from(fd).ok().filter(|&i| i < MAX_FDS).ok_or(BadDescriptor)?;
        if index >= self.slots.len() {
            self.slots.resize(index + 1, None);
        }
        uses.add(&d.object);
        let old = self.slots[index].replace(d);
        Ok(old.and_then(|o| uses.remove(&o.object)))
    }

    /// Close `fd`: Err if it was not open; else the port whose last use went, if any.
    pub fn close(&mut self, fd: u64, uses: &mut Uses) -> Result<Option<Object>, BadDescriptor> {
        let slot = usize::try_from(fd).ok().and_then(|i| self.slots.get_mut(i)).ok_or(BadDescriptor)?;
        let old = slot.take().ok_or(BadDescriptor)?;
        Ok(uses.remove(&old.object))
    }

    /// The open descriptors.
    pub fn iter(&self) -> impl Iterator<Item = &Descriptor> {
        self.slots.iter().flatten()
    }

    /// The open descriptors with their numbers.
    pub fn iter_numbered(&self) -> impl Iterator<Item = (u64, &Descriptor)> {
        self.slots.iter().enumerate().filter_map(|(i, d)| d.as_ref().map(|d| (i as u64, d)))
    }

    /// Every open descriptor, for closing them all (exit).
    pub fn drain(&mut self) -> Vec<Descriptor> {
        self.slots.drain(..).flatten().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(port: u32) -> Descriptor {
        Descriptor { object: Object::File(port), close_on_exec: false, cookie: 0, nonblocking: false }
    }

    #[test]
    fn lowest_free_numbers_dup2_and_the_last_close_of_a_port() {
        let mut uses = Uses::default();
        let mut t = FdTable::default();
        for _ in 0..3 {
            t.insert(
                Descriptor {
                    object: Object::Terminal(9),
                    close_on_exec: false,
                    cookie: 0,
                    nonblocking: false,
                },
                &mut uses,
                0,
            );
        }
        assert_eq!(uses.count(&Object::Terminal(9)), 3);
        assert_eq!(t.insert(file(5), &mut uses, 0), Some(3));
        assert_eq!(t.close(1, &mut uses), Ok(None), "9 is still used by 0 and 2");
        assert_eq!(t.insert(file(6), &mut uses, 0), Some(1), "the lowest free number");
        assert_eq!(t.insert(file(6), &mut uses, 10), Some(10), "F_DUPFD's lower bound");
        assert_eq!(t.place(3, file(6), &mut uses), Ok(Some(Object::File(5))), "dup2 over the last use of 5");
        assert_eq!(uses.count(&Object::File(6)), 3);
        assert_eq!(t.close(3, &mut uses), Ok(None));
        assert_eq!(t.close(3, &mut uses), Err(BadDescriptor), "closed twice");
        assert_eq!(t.close(1, &mut uses), Ok(None));
        assert_eq!(t.close(10, &mut uses), Ok(Some(Object::File(6))), "the last use of 6");
        assert_eq!(t.close(99, &mut uses), Err(BadDescriptor));
        assert!(t.place(MAX_FDS as u64, file(1), &mut uses).is_err());
        let rest = t.drain();
        assert_eq!(rest.len(), 2);
        for d in rest {
            uses.remove(&d.object);
        }
        assert_eq!(uses.count(&Object::Terminal(9)), 0);
    }

    #[test]
    fn a_full_table_refuses() {
        let mut uses = Uses::default();
        let mut t = FdTable::default();
        for i in 0..MAX_FDS {
            assert_eq!(
                t.insert(
                    Descriptor { object: Object::Null, close_on_exec: false, cookie: 0, nonblocking: false },
                    &mut uses,
                    0
                ),
                Some(i as u64)
            );
        }
        assert_eq!(t.insert(file(1), &mut uses, 0), None);
        assert_eq!(uses.count(&Object::File(1)), 0, "nothing counted for a refused insert");
    }
}

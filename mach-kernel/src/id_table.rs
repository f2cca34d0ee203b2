//! A table of kernel objects (tasks, threads) named by 64-bit ids, where finding an object
//! by its id is an index and a compare: the IPC path looks up threads and tasks several
//! times per message, so this must stay a few instructions.
//!
//! An id is `slot | generation << 32` (generations wrap at 2^20, so ids stay below 2^52 and
//! leave the top bits free for the kernel's object tags). Freeing a slot bumps its generation, so an id kept
//! somewhere after its object ended (in a kernel port's tag, a wait queue, a user's
//! argument) finds nothing instead of the slot's next occupant. The table never panics on a
//! bad id: lookups return `None`.

use alloc::vec::Vec;

const SLOT_BITS: u32 = 32;
const SLOT_MASK: u64 = (1 << SLOT_BITS) - 1;
const GENERATION_MASK: u64 = (1 << 20) - 1;
/// Every id is below this.
pub const ID_LIMIT: u64 = 1 << (SLOT_BITS + 20);

struct Slot<T> {
    /// The id the slot's object has (or its next object will have).
    id: u64,
    value: Option<T>,
}

pub struct IdTable<T> {
    slots: Vec<Slot<T>>,
    /// Free slot indexes, reused last-freed first.
    free: Vec<u32>,
    /// Objects in the table.
    count: usize,
}

impl<T> IdTable<T> {
    /// An empty table whose first `reserved` slots are never handed out (so that small ids
    /// such as 0 can mean "none" or a fixed object).
    pub fn new(reserved: u32) -> Self {
        let slots = (0..reserved).map(|i| Slot { id: u64::from(i), value: None }).collect();
        IdTable { slots, free: Vec::new(), count: 0 }
    }

    /// Put `value` in a free slot; its id.
    pub fn insert(&mut self, value: T) -> u64 {
        let index = match self.free.pop() {
            Some(index) => index as usize,
            None => {
                let index = self.slots.len();
                self.slots.push(Slot { id: index as u64, value: None });
                index
            }
        };
        self.count += 1;
        match self.slots.get_mut(index) {
            Some(slot) => {
                slot.value = Some(value);
                slot.id
            }
            None => unreachable!("a free index is always inside the table"),
        }
    }

    /// The id the next `insert` will return.
    pub fn next_id(&self) -> u64 {
        match self.free.last() {
            Some(&index) => self.slots.get(index as usize).map_or(u64::from(index), |s| s.id),
            None => self.slots.len() as u64,
        }
    }

    /// Put `value` in the reserved slot `index` (e.g. the idle thread at 0). Returns its id,
    /// or None when the slot is not reserved-and-empty.
    pub fn insert_reserved(&mut self, index: u32, value: T) -> Option<u64> {
        let slot = self.slots.get_mut(index as usize)?;
        if slot.value.is_some() || self.free.contains(&index) {
            return None;
        }
        slot.value = Some(value);
        self.count += 1;
        Some(slot.id)
    }

    fn slot(&self, id: u64) -> Option<&Slot<T>> {
        self.slots.get((id & SLOT_MASK) as usize).filter(|s| s.id == id)
    }

    pub fn get(&self, id: u64) -> Option<&T> {
        self.slot(id)?.value.as_ref()
    }

    pub fn get_mut(&mut self, id: u64) -> Option<&mut T> {
        self.slots.get_mut((id & SLOT_MASK) as usize).filter(|s| s.id == id)?.value.as_mut()
    }

    pub fn contains(&self, id: u64) -> bool {
        self.get(id).is_some()
    }

    /// Take the object out; its id is never valid again.
    pub fn remove(&mut self, id: u64) -> Option<T> {
        let index = id & SLOT_MASK;
        let slot = self.slots.get_mut(index as usize).filter(|s| s.id == id)?;
        let value = slot.value.take()?;
        // Wrapping after 2^20 reuses of one slot is accepted.
        slot.id = index | (((id >> SLOT_BITS).wrapping_add(1) & GENERATION_MASK) << SLOT_BITS);
        self.free.push(index as u32);
        self.count -= 1;
        Some(value)
    }

    pub fn len(&self) -> usize {
        self.count
    }

    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Every object with its id, in slot order.
    pub fn iter(&self) -> impl Iterator<Item = (u64, &T)> {
        self.slots.iter().filter_map(|s| s.value.as_ref().map(|v| (s.id, v)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_start_after_the_reserved_slots_and_find_their_objects() {
        let mut t = IdTable::new(1);
        let a = t.insert("a");
        let b = t.insert("b");
        assert_eq!((a, b), (1, 2));
        assert_eq!(t.get(a), Some(&"a"));
        assert_eq!(t.get(b), Some(&"b"));
        assert_eq!(t.get(0), None);
        assert_eq!(t.get(99), None);
        assert_eq!(t.len(), 2);
        assert_eq!(t.iter().collect::<std::vec::Vec<_>>(), [(1, &"a"), (2, &"b")]);
    }

    #[test]
    fn a_stale_id_finds_nothing_after_its_slot_is_reused() {
        let mut t = IdTable::new(0);
        let a = t.insert(10);
        assert_eq!(t.remove(a), Some(10));
        assert_eq!(t.remove(a), None);
        let next = t.next_id();
        let b = t.insert(20);
        assert_eq!(next, b);
        assert_ne!(a, b, "the slot is reused under a new generation");
        assert_eq!(b & SLOT_MASK, a & SLOT_MASK);
        assert_eq!(t.get(a), None);
        assert_eq!(t.get_mut(a), None);
        assert!(!t.contains(a));
        assert_eq!(t.get(b), Some(&20));
        assert!(!t.is_empty() && t.len() == 1);
        assert!(b < ID_LIMIT);
    }

    #[test]
    fn reserved_slots_are_filled_explicitly() {
        let mut t = IdTable::new(1);
        assert_eq!(t.insert_reserved(0, 100u64), Some(0));
        assert_eq!(t.insert_reserved(0, 101), None, "already occupied");
        assert_eq!(t.insert_reserved(5, 102), None, "not a reserved slot");
        let id = t.insert(7);
        assert_eq!(t.get(id), Some(&7));
        assert_eq!(t.get(0), Some(&100));
        assert_eq!(t.len(), 2);
    }
}

//! Allocation of blocks and inode numbers from the groups' bitmaps, keeping the group
//! descriptors' free counts, used-directory counts and the superblock totals in step with
//! the bitmaps.
//!
//! Must never hand out a block outside the file system or in group 0's superblock and
//! descriptor area, never change a count without changing the bitmap bit with it, and never
//! trust a count over the bitmap (a count of zero with free bits, or the reverse, is
//! treated as corruption or skipped, never as an index).

use super::disk::ROOT_INO;
use super::error::Error;
use super::{BlockDevice, Ext2, Ino};

/// Whether bit `bit` of `bitmap` is set; None past its end.
fn bit_is_set(bitmap: &[u8], bit: usize) -> Option<bool> {
    bitmap.get(bit / 8).map(|byte| byte & (1 << (bit % 8)) != 0)
}

/// Sets or clears bit `bit` of `bitmap`; answers the bit's previous value.
fn set_bit(bitmap: &mut [u8], bit: usize, value: bool) -> Option<bool> {
    let byte = bitmap.get_mut(bit / 8)?;
    let mask = 1u8 << (bit % 8);
    let previous = *byte & mask != 0;
    if value {
        *byte |= mask;
    } else {
        *byte &= !mask;
    }
    Some(previous)
}

/// The first clear bit in `start..end` of `bitmap`, skipping full bytes quickly.
fn find_clear_bit(bitmap: &[u8], start: usize, end: usize) -> Option<usize> {
    let mut bit = start;
    while bit < end {
        if bit.is_multiple_of(8) && bitmap.get(bit / 8) == Some(&0xFF) {
            bit += 8;
            continue;
        }
        if bit_is_set(bitmap, bit)? {
            bit += 1;
        } else {
            return Some(bit);
        }
    }
    None
}

impl<D: BlockDevice> Ext2<D> {
    /// Allocates a free block, as close after `goal` as possible (first in goal's group
    /// from the goal on, then the following groups, wrapping around). The block comes back
    /// zero-filled in the cache. `NoSpace` when every group is full.
    pub(super) fn allocate_block(&mut self, goal: u32) -> Result<u32, Error> {
        let layout = self.layout;
        let goal = if layout.is_data_block(goal) { goal } else { layout.first_data_block };
        let goal_group = layout.group_of_block(goal);
        // The goal's group is searched twice: from the goal on first, its start last.
        for step in 0..=layout.group_count {
            let group = (goal_group + step) % layout.group_count;
            let descriptor = self.groups.get(group as usize).copied().ok_or(Error::Corrupt("group index"))?;
            if descriptor.free_blocks_count == 0 {
                continue;
            }
            let bits = layout.blocks_in_group(group) as usize;
            let start = if step == 0 { (goal - layout.group_first_block(group)) as usize } else { 0 };
            let bitmap = self.block(descriptor.block_bitmap)?;
            let Some(bit) = find_clear_bit(bitmap, start, bits) else { continue };
            let block = layout.group_first_block(group) + bit as u32;
            if !layout.is_data_block(block) {
                return Err(Error::Corrupt("block bitmap offers a reserved block"));
            }
            let bitmap = self.block_mut(descriptor.block_bitmap)?;
            set_bit(bitmap, bit, true);
            self.change_free_blocks(group, -1)?;
            self.block_zeroed(block)?;
            return Ok(block);
        }
        Err(Error::NoSpace)
    }

    /// Returns block `block` to its group's bitmap and drops it from the cache.
    pub(super) fn free_block(&mut self, block: u32) -> Result<(), Error> {
        self.check_data_block(block)?;
        let group = self.layout.group_of_block(block);
        let bitmap_block = self.groups.get(group as usize).ok_or(Error::Corrupt("group index"))?.block_bitmap;
        let bit = (block - self.layout.group_first_block(group)) as usize;
        let bitmap = self.block_mut(bitmap_block)?;
        match set_bit(bitmap, bit, false) {
            Some(true) => {}
            Some(false) => return Err(Error::Corrupt("freeing a block that is already free")),
            None => return Err(Error::Corrupt("block bit past the bitmap")),
        }
        self.change_free_blocks(group, 1)?;
        self.cache.discard(block);
        Ok(())
    }

    /// Allocates an inode number. A directory goes to the group with free inodes that has
    /// the fewest directories (spreading directories over the disk); anything else to its
    /// parent's group, or the next group with a free inode.
    pub(super) fn allocate_inode_number(&mut self, parent: Ino, is_dir: bool) -> Result<Ino, Error> {
        let layout = self.layout;
        let parent_group = layout.group_of_inode(parent);
        let first_group = if is_dir {
            let mut best = parent_group;
            let mut best_dirs = u16::MAX;
            for (group, descriptor) in self.groups.iter().enumerate() {
                if descriptor.free_inodes_count > 0 && descriptor.used_dirs_count < best_dirs {
                    best = group as u32;
                    best_dirs = descriptor.used_dirs_count;
                }
            }
            best
        } else {
            parent_group
        };
        for step in 0..layout.group_count {
            let group = (first_group + step) % layout.group_count;
            let descriptor = self.groups.get(group as usize).copied().ok_or(Error::Corrupt("group index"))?;
            if descriptor.free_inodes_count == 0 {
                continue;
            }
            let group_first_ino = group * layout.inodes_per_group + 1;
            // Inodes below s_first_ino are reserved (root, the resize inode, ...).
            let start = layout.first_ino.saturating_sub(group_first_ino) as usize;
            let end =
                layout.inodes_per_group.min(layout.inodes_count.saturating_sub(group_first_ino - 1)) as usize;
            let bitmap = self.block(descriptor.inode_bitmap)?;
            let Some(bit) = find_clear_bit(bitmap, start, end) else { continue };
            let bitmap = self.block_mut(descriptor.inode_bitmap)?;
            set_bit(bitmap, bit, true);
            self.change_free_inodes(group, -1, is_dir)?;
            return Ok(group_first_ino + bit as u32);
        }
        Err(Error::NoSpace)
    }

    /// Returns inode number `ino` to its group's bitmap.
    pub(super) fn free_inode_number(&mut self, ino: Ino, was_dir: bool) -> Result<(), Error> {
        if ino <= ROOT_INO || ino > self.layout.inodes_count {
            return Err(Error::Corrupt("freeing a reserved or out-of-range inode"));
        }
        let group = self.layout.group_of_inode(ino);
        let bitmap_block = self.groups.get(group as usize).ok_or(Error::Corrupt("group index"))?.inode_bitmap;
        let bit = ((ino - 1) % self.layout.inodes_per_group) as usize;
        let bitmap = self.block_mut(bitmap_block)?;
        match set_bit(bitmap, bit, false) {
            Some(true) => {}
            Some(false) => return Err(Error::Corrupt("freeing an inode that is already free")),
            None => return Err(Error::Corrupt("inode bit past the bitmap")),
        }
        self.change_free_inodes(group, 1, was_dir)
    }

    /// Adds `delta` (+1 or -1) to a group's free block count and the superblock's.
    fn change_free_blocks(&mut self, group: u32, delta: i32) -> Result<(), Error> {
        let descriptor = self.groups.get_mut(group as usize).ok_or(Error::Corrupt("group index"))?;
        descriptor.free_blocks_count = add_to_count(descriptor.free_blocks_count, delta)?;
        self.superblock.free_blocks_count = self.superblock.free_blocks_count.saturating_add_signed(delta);
        self.metadata_dirty = true;
        Ok(())
    }

    /// Adds `delta` (+1 or -1) to a group's free inode count and the superblock's; a
    /// directory also changes the group's used-directory count the other way.
    fn change_free_inodes(&mut self, group: u32, delta: i32, is_dir: bool) -> Result<(), Error> {
        let descriptor = self.groups.get_mut(group as usize).ok_or(Error::Corrupt("group index"))?;
        descriptor.free_inodes_count = add_to_count(descriptor.free_inodes_count, delta)?;
        if is_dir {
            descriptor.used_dirs_count = add_to_count(descriptor.used_dirs_count, -delta)?;
        }
        self.superblock.free_inodes_count = self.superblock.free_inodes_count.saturating_add_signed(delta);
        self.metadata_dirty = true;
        Ok(())
    }
}

/// `count + delta` for a 16-bit group count; under- or overflow means the counts did not
/// match the bitmaps.
fn add_to_count(count: u16, delta: i32) -> Result<u16, Error> {
    let sum = i32::from(count) + delta;
    u16::try_from(sum).map_err(|_| Error::Corrupt("group count disagrees with its bitmap"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_clear_bits_across_full_bytes() {
        let bitmap = [0xFF, 0xFF, 0b1110_1111, 0];
        assert_eq!(find_clear_bit(&bitmap, 0, 32), Some(20));
        assert_eq!(find_clear_bit(&bitmap, 21, 32), Some(24));
        assert_eq!(find_clear_bit(&bitmap, 0, 20), None);
        // Past the end of the bitmap: none, no panic.
        assert_eq!(find_clear_bit(&bitmap[..2], 0, 100), None);
    }

    #[test]
    fn set_bit_reports_previous_value() {
        let mut bitmap = [0u8; 2];
        assert_eq!(set_bit(&mut bitmap, 9, true), Some(false));
        assert_eq!(set_bit(&mut bitmap, 9, true), Some(true));
        assert_eq!(bitmap, [0, 2]);
        assert_eq!(set_bit(&mut bitmap, 16, true), None);
    }
}

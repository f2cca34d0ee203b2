//! The block map: which physical block holds each logical block of a file, through
//! `i_block`'s 12 direct pointers and its single, double and triple indirect trees.
//! Mapping, mapping with allocation of missing blocks, and freeing every block from a
//! logical block on (with the indirect blocks that become empty).
//!
//! Must never follow a pointer it did not check against the file system's bounds, never
//! change `i_block` or an indirect block without changing `i_blocks` with it, and never
//! recurse deeper than the three levels ext2 has.

use alloc::vec::Vec;

use super::disk::{self, DIRECT_BLOCKS, Inode};
use super::error::Error;
use super::{BlockDevice, Ext2, Ino};

/// `i_block` slot of the single indirect tree (double and triple follow).
const SINGLE_INDIRECT: usize = 12;

/// The way from an inode to one logical block: the `i_block` slot, then an index in each
/// of `depth` indirect blocks.
struct BlockPath {
    slot: usize,
    depth: usize,
    indexes: [usize; 3],
}

impl<D: BlockDevice> Ext2<D> {
    /// The path to logical block `logical`; `FileTooBig` past the triple indirect tree.
    fn block_path(&self, logical: u64) -> Result<BlockPath, Error> {
        let per_block = self.layout.pointers_per_block;
        if logical < DIRECT_BLOCKS as u64 {
            return Ok(BlockPath { slot: logical as usize, depth: 0, indexes: [0; 3] });
        }
        let mut rest = logical - DIRECT_BLOCKS as u64;
        let mut span = per_block; // blocks the tree at this depth covers
        for depth in 1..=3 {
            if rest < span {
                let mut indexes = [0usize; 3];
                let mut below = span / per_block; // blocks covered by one entry at this level
                for index in indexes.iter_mut().take(depth) {
                    *index = (rest / below % per_block) as usize;
                    below /= per_block;
                }
                return Ok(BlockPath { slot: SINGLE_INDIRECT + depth - 1, depth, indexes });
            }
            rest -= span;
            span *= per_block;
        }
        Err(Error::FileTooBig)
    }

    /// The physical block of logical block `logical`, or 0 for a hole.
    pub(super) fn map_block(&mut self, inode: &Inode, logical: u64) -> Result<u32, Error> {
        let path = self.block_path(logical)?;
        let mut block = inode.block.get(path.slot).copied().unwrap_or(0);
        for &index in path.indexes.iter().take(path.depth) {
            if block == 0 {
                return Ok(0);
            }
            block = disk::read_u32(self.block(block)?, index * 4).ok_or(Error::Corrupt("indirect index"))?;
        }
        if block != 0 {
            self.check_data_block(block)?;
        }
        Ok(block)
    }

    /// The physical block of logical block `logical`, allocating it and any missing
    /// indirect block if it is a hole. Answers the block and whether it is new (a new block
    /// is zero-filled in the cache). `inode` is changed (`i_block`, `i_blocks`) and the
    /// caller must store it, also when this fails part-way: blocks allocated before the
    /// failure stay attached to the inode, so nothing leaks.
    pub(super) fn map_or_allocate(
        &mut self,
        ino: Ino,
        inode: &mut Inode,
        logical: u64,
    ) -> Result<(u32, bool), Error> {
        let path = self.block_path(logical)?;
        let mut goal = self.allocation_goal(ino, inode, logical)?;
        let slot = inode.block.get_mut(path.slot).ok_or(Error::Corrupt("block slot"))?;
        let mut block = *slot;
        let mut is_new = false;
        if block == 0 {
            self.charge_block(inode)?;
            block = match self.allocate_block(goal) {
                Ok(block) => block,
                Err(error) => {
                    self.uncharge_block(inode)?;
                    return Err(error);
                }
            };
            if let Some(slot) = inode.block.get_mut(path.slot) {
                *slot = block;
            }
            goal = block + 1;
            is_new = true;
        }
        for &index in path.indexes.iter().take(path.depth) {
            let parent = block;
            block = disk::read_u32(self.block(parent)?, index * 4).ok_or(Error::Corrupt("indirect index"))?;
            if block == 0 {
                self.charge_block(inode)?;
                block = match self.allocate_block(goal) {
                    Ok(block) => block,
                    Err(error) => {
                        self.uncharge_block(inode)?;
                        return Err(error);
                    }
                };
                disk::write_u32(self.block_mut(parent)?, index * 4, block);
                goal = block + 1;
                is_new = true;
            } else {
                self.check_data_block(block)?;
                is_new = false;
            }
        }
        Ok((block, is_new))
    }

    /// Where to look for a free block for logical block `logical`: right after the block
    /// before it, else at the start of the inode's group.
    fn allocation_goal(&mut self, ino: Ino, inode: &Inode, logical: u64) -> Result<u32, Error> {
        if logical > 0 {
            let previous = self.map_block(inode, logical - 1)?;
            if previous != 0 {
                return Ok(previous + 1);
            }
        }
        let group = self.layout.group_of_inode(ino);
        Ok(self.layout.group_first_block(group))
    }

    /// Adds one block to `i_blocks` (in 512-byte units).
    fn charge_block(&self, inode: &mut Inode) -> Result<(), Error> {
        let sectors = self.layout.sectors_per_block as u32;
        inode.blocks = inode.blocks.checked_add(sectors).ok_or(Error::FileTooBig)?;
        Ok(())
    }

    /// Takes one block off `i_blocks`.
    fn uncharge_block(&self, inode: &mut Inode) -> Result<(), Error> {
        let sectors = self.layout.sectors_per_block as u32;
        inode.blocks = inode.blocks.checked_sub(sectors).ok_or(Error::Corrupt("i_blocks too small"))?;
        Ok(())
    }

    /// Frees every block holding logical block `first` or later, and every indirect
    /// block left pointing nowhere. `inode` is changed; the caller stores it.
    pub(super) fn free_blocks_from(&mut self, inode: &mut Inode, first: u64) -> Result<(), Error> {
        for slot in (first.min(DIRECT_BLOCKS as u64) as usize)..DIRECT_BLOCKS {
            let block = inode.block.get(slot).copied().unwrap_or(0);
            if block != 0 {
                self.free_block(block)?;
                self.uncharge_block(inode)?;
                if let Some(pointer) = inode.block.get_mut(slot) {
                    *pointer = 0;
                }
            }
        }
        let per_block = self.layout.pointers_per_block;
        let mut tree_start = DIRECT_BLOCKS as u64;
        let mut tree_span = per_block;
        for depth in 1..=3 {
            let slot = SINGLE_INDIRECT + depth - 1;
            let root = inode.block.get(slot).copied().unwrap_or(0);
            if root != 0 && first < tree_start + tree_span {
                let first_in_tree = first.saturating_sub(tree_start);
                if self.free_subtree(inode, root, depth, first_in_tree)? {
                    self.free_block(root)?;
                    self.uncharge_block(inode)?;
                    if let Some(pointer) = inode.block.get_mut(slot) {
                        *pointer = 0;
                    }
                }
            }
            tree_start += tree_span;
            tree_span *= per_block;
        }
        Ok(())
    }

    /// Frees, under the indirect block `block` of `depth` levels, every data block whose
    /// index inside this subtree is `first` or more, and the indirect blocks below that
    /// become empty. Answers whether `block` itself now points nowhere (the caller frees
    /// it then).
    fn free_subtree(
        &mut self,
        inode: &mut Inode,
        block: u32,
        depth: usize,
        first: u64,
    ) -> Result<bool, Error> {
        let per_block = self.layout.pointers_per_block;
        // Data blocks one entry of this block covers.
        let entry_span = per_block.pow(depth as u32 - 1);
        let mut pointers: Vec<u32> =
            self.block(block)?.chunks_exact(4).map(|entry| disk::read_u32(entry, 0).unwrap_or(0)).collect();
        let mut changed = false;
        let first_entry = (first / entry_span) as usize;
        for (index, pointer) in pointers.iter_mut().enumerate().skip(first_entry) {
            if *pointer == 0 {
                continue;
            }
            let entry_start = index as u64 * entry_span;
            let child_is_empty = if depth == 1 {
                true
            } else {
                self.free_subtree(inode, *pointer, depth - 1, first.saturating_sub(entry_start))?
            };
            if child_is_empty {
                self.free_block(*pointer)?;
                self.uncharge_block(inode)?;
                *pointer = 0;
                changed = true;
            }
        }
        let now_empty = pointers.iter().all(|&pointer| pointer == 0);
        if changed && !now_empty {
            let data = self.block_mut(block)?;
            for (entry, pointer) in data.chunks_exact_mut(4).zip(pointers.iter()) {
                entry.copy_from_slice(&pointer.to_le_bytes());
            }
        }
        Ok(now_empty)
    }
}

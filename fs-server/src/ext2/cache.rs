//! `BlockCache`: a fixed number of block-sized buffers in front of the block device,
//! write-back, with least-recently-used eviction. Metadata and file data both go through it.
//!
//! Must never lose a dirty block: a dirty block leaves the cache only after the device
//! accepted its write (on eviction or `flush_dirty`), or when the file system freed it
//! (`discard`). It never interprets block contents, and indexes its buffers only with slot
//! numbers it made itself (never with anything read from the device).

use alloc::collections::BTreeMap;
use alloc::vec;
use alloc::vec::Vec;

use super::BlockDevice;
use super::error::Error;

/// What the cache did, for benchmarks and `statfs`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CacheStats {
    /// Requests answered from the cache.
    pub hits: u64,
    /// Requests that needed a buffer for a block not in the cache.
    pub misses: u64,
    /// Blocks read from the device.
    pub device_reads: u64,
    /// Blocks written to the device (evictions and syncs).
    pub device_writes: u64,
    /// Blocks pushed out to make room.
    pub evictions: u64,
}

/// One buffer of the cache.
struct CachedBlock {
    /// The block held, or None for a buffer that holds nothing valid.
    block: Option<u32>,
    data: Vec<u8>,
    /// Changed since it was read or last written to the device.
    dirty: bool,
    /// Value of the cache's use counter when this block was last used.
    last_used: u64,
}

/// A write-back cache of `capacity` blocks.
pub struct BlockCache {
    block_size: usize,
    capacity: usize,
    buffers: Vec<CachedBlock>,
    /// Block number to index in `buffers`.
    index: BTreeMap<u32, usize>,
    use_counter: u64,
    stats: CacheStats,
}

impl BlockCache {
    /// A cache of `capacity` blocks of `block_size` bytes (at least 4 blocks, so that an
    /// operation that holds a few blocks in turn never thrashes).
    pub fn new(block_size: usize, capacity: usize) -> BlockCache {
        BlockCache {
            block_size,
            capacity: capacity.max(4),
            buffers: Vec::new(),
            index: BTreeMap::new(),
            use_counter: 0,
            stats: CacheStats::default(),
        }
    }

    pub fn stats(&self) -> CacheStats {
        self.stats
    }

    /// The first sector of `block`.
    fn sector_of(&self, block: u32) -> u64 {
        u64::from(block) * (self.block_size / 512) as u64
    }

    /// The contents of `block`, read from the device if not cached.
    pub fn read<D: BlockDevice>(&mut self, device: &mut D, block: u32) -> Result<&[u8], Error> {
        let slot = self.slot_for(device, block, true)?;
        Ok(&self.buffers[slot].data)
    }

    /// The contents of `block` for changing: read if not cached, and marked dirty.
    pub fn modify<D: BlockDevice>(&mut self, device: &mut D, block: u32) -> Result<&mut [u8], Error> {
        let slot = self.slot_for(device, block, true)?;
        let buffer = &mut self.buffers[slot];
        buffer.dirty = true;
        Ok(&mut buffer.data)
    }

    /// A buffer for `block` filled with zeros, marked dirty, without reading the device:
    /// for a block just allocated, whose old contents do not matter.
    pub fn zeroed<D: BlockDevice>(&mut self, device: &mut D, block: u32) -> Result<&mut [u8], Error> {
        let slot = self.slot_for(device, block, false)?;
        let buffer = &mut self.buffers[slot];
        buffer.data.fill(0);
        buffer.dirty = true;
        Ok(&mut buffer.data)
    }

    /// Forgets `block` without writing it: the file system freed it, so its contents no
    /// longer matter.
    pub fn discard(&mut self, block: u32) {
        if let Some(slot) = self.index.remove(&block) {
            let buffer = &mut self.buffers[slot];
            buffer.block = None;
            buffer.dirty = false;
        }
    }

    /// Whether `block` is in the cache with changes not yet on the device.
    pub fn is_dirty(&self, block: u32) -> bool {
        self.index.get(&block).is_some_and(|&slot| self.buffers[slot].dirty)
    }

    /// Writes every dirty block to the device, in ascending block order (one sweep across
    /// the disk). Blocks stay cached, clean.
    pub fn flush_dirty<D: BlockDevice>(&mut self, device: &mut D) -> Result<(), Error> {
        // The index is ordered by block number, so this walks the disk upwards.
        let dirty_slots: Vec<usize> =
            self.index.values().copied().filter(|&slot| self.buffers[slot].dirty).collect();
        for slot in dirty_slots {
            self.write_back(device, slot)?;
        }
        Ok(())
    }

    /// Writes the buffer in `slot` to its block and marks it clean.
    fn write_back<D: BlockDevice>(&mut self, device: &mut D, slot: usize) -> Result<(), Error> {
        let buffer = &self.buffers[slot];
        if let Some(block) = buffer.block {
            let sector = self.sector_of(block);
            device.write(sector, &self.buffers[slot].data)?;
            self.stats.device_writes += 1;
        }
        self.buffers[slot].dirty = false;
        Ok(())
    }

    /// The index of the buffer that holds `block`, making room and (if `load`) reading it
    /// on a miss.
    fn slot_for<D: BlockDevice>(&mut self, device: &mut D, block: u32, load: bool) -> Result<usize, Error> {
        self.use_counter += 1;
        if let Some(&slot) = self.index.get(&block) {
            self.stats.hits += 1;
            self.buffers[slot].last_used = self.use_counter;
            return Ok(slot);
        }
        self.stats.misses += 1;
        let slot = self.free_slot(device)?;
        if load {
            let sector = self.sector_of(block);
            // On a failed read the buffer stays empty (block None) and unindexed.
            device.read(sector, &mut self.buffers[slot].data)?;
            self.stats.device_reads += 1;
        }
        let buffer = &mut self.buffers[slot];
        buffer.block = Some(block);
        buffer.dirty = false;
        buffer.last_used = self.use_counter;
        self.index.insert(block, slot);
        Ok(slot)
    }

    /// A buffer holding nothing: a new one while under capacity, an empty one, or the
    /// least recently used one after writing it back if dirty.
    fn free_slot<D: BlockDevice>(&mut self, device: &mut D) -> Result<usize, Error> {
        if let Some(empty) = self.buffers.iter().position(|buffer| buffer.block.is_none()) {
            return Ok(empty);
        }
        if self.buffers.len() < self.capacity {
            self.buffers.push(CachedBlock {
                block: None,
                data: vec![0; self.block_size],
                dirty: false,
                last_used: 0,
            });
            return Ok(self.buffers.len() - 1);
        }
        let victim = self
            .buffers
            .iter()
            .enumerate()
            .min_by_key(|(_, buffer)| buffer.last_used)
            .map(|(slot, _)| slot)
            .unwrap_or(0);
        if self.buffers[victim].dirty {
            // If this write fails the victim stays cached and dirty: nothing is lost.
            self.write_back(device, victim)?;
        }
        if let Some(old_block) = self.buffers[victim].block.take() {
            self.index.remove(&old_block);
        }
        self.stats.evictions += 1;
        Ok(victim)
    }
}

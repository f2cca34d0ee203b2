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
    /// Used since the clock hand last passed (second chance before eviction).
    referenced: bool,
}

/// Most bytes one device request of the cache moves (read-ahead, clustered write-back).
const MAX_RUN_BYTES: usize = 64 * 1024;

/// A write-back cache of `capacity` blocks.
///
/// Finding a block is a look-up in an ordered index; a hit only sets the block's
/// `referenced` bit. Eviction is the CLOCK algorithm (a hand sweeps the buffers, giving each
/// referenced one a second chance), so neither a hit nor a miss scans the whole cache.
/// A miss reads ahead: the blocks after it on the device, up to [`MAX_RUN_BYTES`], come in
/// the same request (until the first one already cached, or the end of the device).
/// Write-back is clustered: a dirty block goes to the device together with the dirty
/// blocks that follow it on the device, in one request.
pub struct BlockCache {
    block_size: usize,
    capacity: usize,
    buffers: Vec<CachedBlock>,
    /// Block number to index in `buffers`.
    index: BTreeMap<u32, usize>,
    /// Buffers that hold nothing.
    free: Vec<usize>,
    /// The CLOCK hand: the next buffer to consider for eviction.
    hand: usize,
    /// Blocks on the device (read-ahead stops there); 0 until `set_device_blocks`.
    device_blocks: u32,
    /// Room for one run of blocks on its way to or from the device.
    run: Vec<u8>,
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
            free: Vec::new(),
            hand: 0,
            device_blocks: 0,
            run: Vec::new(),
            stats: CacheStats::default(),
        }
    }

    /// The device's size in blocks: read-ahead never goes past it (without it, a miss reads
    /// its block alone).
    pub fn set_device_blocks(&mut self, blocks: u32) {
        self.device_blocks = blocks;
    }

    pub fn stats(&self) -> CacheStats {
        self.stats
    }

    /// The first sector of `block`.
    fn sector_of(&self, block: u32) -> u64 {
        u64::from(block) * (self.block_size / 512) as u64
    }

    /// Blocks in the longest run one request may move.
    fn max_run(&self) -> u32 {
        (MAX_RUN_BYTES / self.block_size).clamp(1, self.capacity / 4) as u32
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
            self.free.push(slot);
        }
    }

    /// Whether `block` is in the cache with changes not yet on the device.
    pub fn is_dirty(&self, block: u32) -> bool {
        self.index.get(&block).is_some_and(|&slot| self.buffers[slot].dirty)
    }

    /// Writes every dirty block to the device, in ascending block order (one sweep across
    /// the disk), runs of consecutive blocks in one request each. Blocks stay cached, clean.
    pub fn flush_dirty<D: BlockDevice>(&mut self, device: &mut D) -> Result<(), Error> {
        // The index is ordered by block number, so this walks the disk upwards.
        let dirty: Vec<u32> = self
            .index
            .iter()
            .filter(|&(_, &slot)| self.buffers[slot].dirty)
            .map(|(&block, _)| block)
            .collect();
        for block in dirty {
            if self.is_dirty(block) {
                self.write_run(device, block)?;
            }
        }
        Ok(())
    }

    /// Writes dirty `first` and the dirty cached blocks right after it on the device (up to
    /// one run) in one request, and marks them clean. On an error nothing is marked clean.
    fn write_run<D: BlockDevice>(&mut self, device: &mut D, first: u32) -> Result<(), Error> {
        let mut slots = Vec::new();
        let mut block = first;
        while slots.len() < self.max_run() as usize
            && let Some(&slot) = self.index.get(&block)
            && self.buffers[slot].dirty
        {
            slots.push(slot);
            match block.checked_add(1) {
                Some(next) => block = next,
                None => break,
            }
        }
        if slots.is_empty() {
            return Ok(());
        }
        let sector = self.sector_of(first);
        if let [slot] = slots[..] {
            device.write(sector, &self.buffers[slot].data)?;
        } else {
            let mut run = core::mem::take(&mut self.run);
            run.clear();
            for &slot in &slots {
                run.extend_from_slice(&self.buffers[slot].data);
            }
            let written = device.write(sector, &run);
            self.run = run;
            written?;
        }
        for &slot in &slots {
            self.buffers[slot].dirty = false;
        }
        self.stats.device_writes += slots.len() as u64;
        Ok(())
    }

    /// The index of the buffer that holds `block`, making room and (if `load`) reading it
    /// on a miss, with the blocks after it (read-ahead).
    fn slot_for<D: BlockDevice>(&mut self, device: &mut D, block: u32, load: bool) -> Result<usize, Error> {
        if let Some(&slot) = self.index.get(&block) {
            self.stats.hits += 1;
            self.buffers[slot].referenced = true;
            return Ok(slot);
        }
        self.stats.misses += 1;
        if !load {
            return self.install(device, block, None, true);
        }
        // The run to read: this block and the uncached ones after it, inside the device.
        let mut count = 1u32;
        while count < self.max_run()
            && block
                .checked_add(count)
                .is_some_and(|next| next < self.device_blocks && !self.index.contains_key(&next))
        {
            count += 1;
        }
        let mut run = core::mem::take(&mut self.run);
        run.resize(count as usize * self.block_size, 0);
        // On a failed read nothing is cached and the error goes up.
        let read = device.read(self.sector_of(block), &mut run);
        if let Err(e) = read {
            self.run = run;
            return Err(e.into());
        }
        self.stats.device_reads += u64::from(count);
        // The blocks read ahead first, without the `referenced` bit (unused, they go first);
        // the wanted block last, so that no later eviction in this batch can take its buffer.
        for (i, data) in run.chunks(self.block_size).enumerate().skip(1) {
            if self.install(device, block + i as u32, Some(data), false).is_err() {
                break;
            }
        }
        let wanted = match run.get(..self.block_size) {
            Some(data) => self.install(device, block, Some(data), true),
            None => Err(Error::Io),
        };
        self.run = run;
        wanted
    }

    /// Put `block` in a free buffer (with `data`, if given) and index it.
    fn install<D: BlockDevice>(
        &mut self,
        device: &mut D,
        block: u32,
        data: Option<&[u8]>,
        referenced: bool,
    ) -> Result<usize, Error> {
        let slot = self.free_slot(device)?;
        let buffer = &mut self.buffers[slot];
        if let Some(data) = data {
            buffer.data.copy_from_slice(data);
        }
        buffer.block = Some(block);
        buffer.dirty = false;
        buffer.referenced = referenced;
        self.index.insert(block, slot);
        Ok(slot)
    }

    /// A buffer holding nothing: a free one, a new one while under capacity, or the one the
    /// CLOCK hand stops at, after writing it back (with the dirty run after it) if dirty.
    fn free_slot<D: BlockDevice>(&mut self, device: &mut D) -> Result<usize, Error> {
        if let Some(slot) = self.free.pop() {
            return Ok(slot);
        }
        if self.buffers.len() < self.capacity {
            self.buffers.push(CachedBlock {
                block: None,
                data: vec![0; self.block_size],
                dirty: false,
                referenced: false,
            });
            return Ok(self.buffers.len() - 1);
        }
        // Two sweeps at most: the first clears every referenced bit.
        let mut victim = self.hand % self.buffers.len();
        for _ in 0..2 * self.buffers.len() {
            victim = self.hand % self.buffers.len();
            self.hand = (victim + 1) % self.buffers.len();
            let buffer = &mut self.buffers[victim];
            if !buffer.referenced {
                break;
            }
            buffer.referenced = false;
        }
        if self.buffers[victim].dirty
            && let Some(block) = self.buffers[victim].block
        {
            // If this write fails the victim stays cached and dirty: nothing is lost.
            self.write_run(device, block)?;
        }
        if let Some(old_block) = self.buffers[victim].block.take() {
            self.index.remove(&old_block);
        }
        self.stats.evictions += 1;
        Ok(victim)
    }
}

//! Regular file contents: read, write (sparse: writing past the end leaves a hole
//! unallocated) and truncate (shrinking frees blocks, growing leaves a hole).
//!
//! Must never leave a block allocated past the end of a file (e2fsck's "i_size is too
//! small"), never return bytes past the end or bytes of another file (a new block is
//! zeroed before a partial write, and shrinking zeroes the rest of the last block), and
//! never panic on offsets near u64::MAX.

use super::disk::{self, Inode, feature};
use super::error::Error;
use super::{BlockDevice, Ext2, Ino};

/// Seconds after which a read updates atime again although it is newer than mtime and
/// ctime (Linux's relatime rule).
const RELATIME_INTERVAL: u32 = 24 * 60 * 60;

impl<D: BlockDevice> Ext2<D> {
    /// Reads up to `buf.len()` bytes at `offset`. Holes read as zeros; the count is short
    /// at the end of the file (0 at or past it).
    pub fn read(&mut self, ino: Ino, offset: u64, buf: &mut [u8]) -> Result<usize, Error> {
        let mut inode = self.load_live_inode(ino)?;
        require_regular(&inode)?;
        if offset >= inode.size || buf.is_empty() {
            return Ok(0);
        }
        let length = (inode.size - offset).min(buf.len() as u64) as usize;
        let block_size = self.layout.block_size as u64;
        let mut done = 0usize;
        while done < length {
            let position = offset + done as u64;
            let logical = position / block_size;
            let within = (position % block_size) as usize;
            let chunk = (block_size as usize - within).min(length - done);
            let target = buf.get_mut(done..done + chunk).ok_or(Error::InvalidArgument)?;
            let physical = self.map_block(&inode, logical)?;
            if physical == 0 {
                target.fill(0);
            } else {
                let data = self.block(physical)?;
                target.copy_from_slice(
                    data.get(within..within + chunk).ok_or(Error::Corrupt("block too short"))?,
                );
            }
            done += chunk;
        }
        if self.atime_is_stale(&inode) {
            self.begin_change()?;
            inode.atime = self.now;
            self.store_inode(ino, &inode)?;
        }
        Ok(done)
    }

    /// Writes `data` at `offset`, allocating blocks as needed. Answers the bytes written:
    /// fewer than asked only when the disk filled up part-way (`NoSpace` if nothing could
    /// be written) or at the largest file size (`FileTooBig` if nothing fits).
    pub fn write(&mut self, ino: Ino, offset: u64, data: &[u8]) -> Result<usize, Error> {
        let mut inode = self.load_live_inode(ino)?;
        require_regular(&inode)?;
        if data.is_empty() {
            return Ok(0);
        }
        let max_size = self.layout.max_file_size();
        if offset >= max_size {
            return Err(Error::FileTooBig);
        }
        let length = (max_size - offset).min(data.len() as u64) as usize;
        self.begin_change()?;
        let block_size = self.layout.block_size as u64;
        let mut done = 0usize;
        let mut failure = None;
        while done < length {
            let position = offset + done as u64;
            let logical = position / block_size;
            let within = (position % block_size) as usize;
            let chunk = (block_size as usize - within).min(length - done);
            let source = data.get(done..done + chunk).ok_or(Error::InvalidArgument)?;
            let physical = match self.map_or_allocate(ino, &mut inode, logical) {
                Ok((physical, _is_new)) => physical,
                Err(error) => {
                    failure = Some(error);
                    break;
                }
            };
            match self.block_mut(physical) {
                Ok(block) => match block.get_mut(within..within + chunk) {
                    Some(target) => target.copy_from_slice(source),
                    None => {
                        failure = Some(Error::Corrupt("block too short"));
                        break;
                    }
                },
                Err(error) => {
                    failure = Some(error);
                    break;
                }
            }
            done += chunk;
        }
        if done > 0 {
            inode.size = inode.size.max(offset + done as u64);
            inode.mtime = self.now;
            inode.ctime = self.now;
            self.note_file_size(inode.size);
        }
        if failure.is_some() {
            // Blocks allocated for the part that could not be written may lie past the end.
            let blocks_in_use = inode.size.div_ceil(block_size);
            self.free_blocks_from(&mut inode, blocks_in_use)?;
        }
        self.store_inode(ino, &inode)?;
        match failure {
            Some(error) if done == 0 => Err(error),
            _ => Ok(done),
        }
    }

    /// Sets the size of a regular file. Shrinking frees the blocks past the new end
    /// (indirect blocks included) and zeroes the rest of the new last block; growing
    /// leaves a hole.
    pub fn truncate(&mut self, ino: Ino, size: u64) -> Result<(), Error> {
        let mut inode = self.load_live_inode(ino)?;
        require_regular(&inode)?;
        if size > self.layout.max_file_size() {
            return Err(Error::FileTooBig);
        }
        self.begin_change()?;
        if size < inode.size {
            let block_size = self.layout.block_size as u64;
            let result = self.free_blocks_from(&mut inode, size.div_ceil(block_size));
            if let Err(error) = result {
                // Keep what was freed recorded in the inode.
                self.store_inode(ino, &inode)?;
                return Err(error);
            }
            let within = (size % block_size) as usize;
            if within != 0 {
                let last = self.map_block(&inode, size / block_size)?;
                if last != 0
                    && let Some(tail) = self.block_mut(last)?.get_mut(within..)
                {
                    tail.fill(0);
                }
            }
        }
        if size != inode.size {
            inode.size = size;
            inode.mtime = self.now;
            inode.ctime = self.now;
            self.note_file_size(size);
        }
        self.store_inode(ino, &inode)
    }

    /// A file over 2 GiB needs the large_file feature in the superblock.
    fn note_file_size(&mut self, size: u64) {
        let flags = &mut self.superblock.feature_ro_compat;
        if size > disk::LARGE_FILE_THRESHOLD && *flags & feature::RO_COMPAT_LARGE_FILE == 0 {
            *flags |= feature::RO_COMPAT_LARGE_FILE;
            self.metadata_dirty = true;
        }
    }

    /// Linux's relatime: a read updates atime if atime is not newer than mtime or ctime,
    /// or is a day old.
    fn atime_is_stale(&self, inode: &Inode) -> bool {
        if self.now == 0 || inode.atime == self.now {
            return false;
        }
        inode.atime <= inode.mtime
            || inode.atime <= inode.ctime
            || self.now.saturating_sub(inode.atime) >= RELATIME_INTERVAL
    }
}

/// read, write and truncate work on regular files only.
fn require_regular(inode: &Inode) -> Result<(), Error> {
    if inode.is_dir() {
        Err(Error::IsDir)
    } else if !inode.is_regular() {
        Err(Error::InvalidArgument)
    } else {
        Ok(())
    }
}

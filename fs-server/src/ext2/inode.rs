//! Inodes: finding an inode's record in its group's inode table, loading and storing it
//! through the cache, creating a new inode, and releasing one whose last link is gone.
//!
//! Must never trust an inode number it did not check against the inode count, never free
//! blocks of an inode whose `i_block` holds no block pointers (fast symlinks, devices,
//! fifos, sockets), and never leave the bitmap and the inode's dtime disagreeing.

use super::disk::{self, Inode, mode};
use super::error::Error;
use super::{BlockDevice, DeviceNumber, Ext2, Ino};

/// Magic number at the start of an extended-attribute block.
const XATTR_BLOCK_MAGIC: u32 = 0xEA02_0000;

impl<D: BlockDevice> Ext2<D> {
    /// The inode table block holding inode `ino`, and the record's offset in it.
    fn inode_location(&self, ino: Ino) -> Result<(u32, usize), Error> {
        if ino == 0 || ino > self.layout.inodes_count {
            return Err(Error::InvalidArgument);
        }
        let group = self.layout.group_of_inode(ino);
        let table = self.groups.get(group as usize).ok_or(Error::Corrupt("group index"))?.inode_table;
        let index_in_group = u64::from((ino - 1) % self.layout.inodes_per_group);
        let byte_offset = index_in_group * self.layout.inode_size as u64;
        let block_size = self.layout.block_size as u64;
        let block = table + (byte_offset / block_size) as u32;
        Ok((block, (byte_offset % block_size) as usize))
    }

    /// Reads inode `ino` (`InvalidArgument` for a number out of range).
    pub(super) fn load_inode(&mut self, ino: Ino) -> Result<Inode, Error> {
        let (block, offset) = self.inode_location(ino)?;
        let inode_size = self.layout.inode_size;
        let data = self.block(block)?;
        let record =
            data.get(offset..offset + inode_size).ok_or(Error::Corrupt("inode record outside block"))?;
        Inode::parse(record)
    }

    /// Reads inode `ino`, which must be in use: one with no links is a stale number
    /// (`NoEntry`), unless it is open (see `open_inode`).
    pub(super) fn load_live_inode(&mut self, ino: Ino) -> Result<Inode, Error> {
        let inode = self.load_inode(ino)?;
        if (inode.links_count == 0 && !self.orphans.contains(&ino)) || inode.mode == 0 {
            return Err(Error::NoEntry);
        }
        Ok(inode)
    }

    /// Writes `inode` into inode `ino`'s record (in the cache).
    pub(super) fn store_inode(&mut self, ino: Ino, inode: &Inode) -> Result<(), Error> {
        let (block, offset) = self.inode_location(ino)?;
        let inode_size = self.layout.inode_size;
        let data = self.block_mut(block)?;
        let record =
            data.get_mut(offset..offset + inode_size).ok_or(Error::Corrupt("inode record outside block"))?;
        inode.write_to(record);
        Ok(())
    }

    /// Allocates and initialises a new inode with `mode` (type and permission bits), one
    /// link (two for a directory) and every time set to now. Blocks and size are zero.
    pub(super) fn new_inode(
        &mut self,
        parent: Ino,
        mode: u16,
        uid: u32,
        gid: u32,
    ) -> Result<(Ino, Inode), Error> {
        let is_dir = mode & mode::TYPE_MASK == mode::DIRECTORY;
        let ino = self.allocate_inode_number(parent, is_dir)?;
        self.next_generation = self.next_generation.wrapping_add(1);
        let inode = Inode {
            mode,
            uid,
            gid,
            atime: self.now,
            ctime: self.now,
            mtime: self.now,
            links_count: if is_dir { 2 } else { 1 },
            generation: self.next_generation,
            ..Inode::default()
        };
        let (block, offset) = self.inode_location(ino)?;
        let inode_size = self.layout.inode_size;
        let data = self.block_mut(block)?;
        let record =
            data.get_mut(offset..offset + inode_size).ok_or(Error::Corrupt("inode record outside block"))?;
        Inode::init_record(record);
        inode.write_to(record);
        Ok((ino, inode))
    }

    /// Removes one link from inode `ino`; when none is left the inode and its blocks are
    /// freed, or, for a file still open, kept as an orphan until its last close. A
    /// directory loses both of its links here (its own "." goes with it).
    pub(super) fn drop_link(&mut self, ino: Ino, inode: &mut Inode) -> Result<(), Error> {
        inode.ctime = self.now;
        let remaining = if inode.is_dir() { 0 } else { inode.links_count.saturating_sub(1) };
        inode.links_count = remaining;
        if remaining > 0 {
            self.store_inode(ino, inode)
        } else if !inode.is_dir() && self.open_files.contains_key(&ino) {
            self.orphans.insert(ino);
            self.store_inode(ino, inode)
        } else {
            self.release_inode(ino, inode)
        }
    }

    /// Frees an inode that has no links left: its blocks, its extended-attribute block,
    /// then its number in the bitmap. The record keeps its mode with dtime set to now, as
    /// Linux leaves it.
    pub(super) fn release_inode(&mut self, ino: Ino, inode: &mut Inode) -> Result<(), Error> {
        if self.has_block_map(inode) {
            self.free_blocks_from(inode, 0)?;
        }
        if inode.file_acl != 0 {
            self.release_xattr_block(inode)?;
        }
        inode.links_count = 0;
        inode.size = 0;
        inode.block = [0; disk::BLOCK_POINTERS];
        inode.blocks = 0;
        inode.dtime = self.now;
        self.store_inode(ino, inode)?;
        self.free_inode_number(ino, inode.is_dir())
    }

    /// Drops the inode's reference to its extended-attribute block, freeing the block
    /// when no other inode shares it.
    fn release_xattr_block(&mut self, inode: &mut Inode) -> Result<(), Error> {
        let block = inode.file_acl;
        let header = self.block(block)?;
        if disk::read_u32(header, 0) != Some(XATTR_BLOCK_MAGIC) {
            return Err(Error::Corrupt("bad extended attribute block"));
        }
        let references = disk::read_u32(header, 4).unwrap_or(0);
        if references > 1 {
            let header = self.block_mut(block)?;
            disk::write_u32(header, 4, references - 1);
        } else {
            self.free_block(block)?;
        }
        inode.file_acl = 0;
        Ok(())
    }

    /// Whether `i_block` holds block pointers: regular files, directories and symlinks
    /// whose target did not fit in the inode.
    pub(super) fn has_block_map(&self, inode: &Inode) -> bool {
        match inode.file_type_bits() {
            mode::REGULAR | mode::DIRECTORY => true,
            mode::SYMLINK => !self.is_fast_symlink(inode),
            _ => false,
        }
    }

    /// A symlink whose target lives in `i_block`: it owns no block but, perhaps, an
    /// extended-attribute block (Linux's test).
    pub(super) fn is_fast_symlink(&self, inode: &Inode) -> bool {
        let xattr_sectors = if inode.file_acl != 0 { self.layout.sectors_per_block as u32 } else { 0 };
        inode.is_symlink() && inode.blocks.saturating_sub(xattr_sectors) == 0
    }
}

/// The device number of a device inode: Linux's old 16-bit encoding in `i_block[0]`, or
/// the new 32-bit one in `i_block[1]`.
pub(super) fn decode_device(inode: &Inode) -> DeviceNumber {
    let [old, new, ..] = inode.block;
    if old != 0 {
        DeviceNumber { major: (old >> 8) & 0xff, minor: old & 0xff }
    } else {
        DeviceNumber { major: (new & 0xfff00) >> 8, minor: (new & 0xff) | ((new >> 12) & 0xfff00) }
    }
}

/// Stores a device number in `i_block` as Linux does: the old encoding when major and
/// minor fit in a byte each, else the new one.
pub(super) fn encode_device(inode: &mut Inode, device: DeviceNumber) {
    inode.block = [0; disk::BLOCK_POINTERS];
    let DeviceNumber { major, minor } = device;
    if major < 256 && minor < 256 {
        inode.block[0] = (major << 8) | minor;
    } else {
        inode.block[1] = (minor & 0xff) | ((major & 0xfff) << 8) | ((minor & !0xff) << 12);
    }
}

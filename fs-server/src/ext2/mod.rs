//! ext2 revision 1, read-write, over a `BlockDevice` of 512-byte sectors, through a
//! write-back `BlockCache`. This file holds the public types, mounting, `sync`, `stat`,
//! `set_attr` and `statfs`; the other operations live in the file of their concern:
//!
//! - `disk`: on-disk structures and the checked geometry (`Layout`);
//! - `cache`: the block cache;
//! - `alloc`: block and inode bitmaps and free counts;
//! - `inode`: reading, writing, creating and releasing inodes;
//! - `blockmap`: logical-to-physical block mapping (direct, single, double, triple
//!   indirect), with allocation and freeing;
//! - `file`: read, write, truncate;
//! - `dir`: directory entries inside directory blocks;
//! - `namespace`: lookup, readdir, create, mkdir, unlink, rmdir, rename, link, symlinks.
//!
//! Must never panic on what the disk holds (corruption is `Error::Corrupt`), never write
//! outside the file system's blocks, and keep bitmaps, free counts and link counts exactly
//! right, so that `e2fsck -fn` finds the image clean after `sync`.

mod alloc;
mod blockmap;
mod cache;
mod dir;
mod disk;
mod error;
mod file;
mod inode;
mod namespace;
#[cfg(test)]
mod tests;

use ::alloc::collections::{BTreeMap, BTreeSet};
use ::alloc::vec;
use ::alloc::vec::Vec;

pub use cache::{BlockCache, CacheStats};
pub use disk::{LINK_MAX, MAX_NAME_LEN, ROOT_INO, mode};
pub use error::{Error, IoError};

use disk::{GroupDesc, Layout, Superblock};

/// A device of 512-byte sectors. The server implements it over its block-server
/// connection; tests over a `Vec<u8>`.
pub trait BlockDevice {
    /// Reads `buf.len()` bytes (a multiple of 512) starting at `sector`.
    fn read(&mut self, sector: u64, buf: &mut [u8]) -> Result<(), IoError>;
    /// Writes `buf` (a multiple of 512 bytes) starting at `sector`.
    fn write(&mut self, sector: u64, buf: &[u8]) -> Result<(), IoError>;
    /// Returns once everything written before is on stable storage.
    fn flush(&mut self) -> Result<(), IoError>;
}

/// An inode number. The root directory is 2.
pub type Ino = u32;

/// The kind of a file, from its mode's type bits or a directory entry's type byte.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FileType {
    Regular,
    Directory,
    Symlink,
    CharDevice,
    BlockDevice,
    Fifo,
    Socket,
    Unknown,
}

impl FileType {
    /// The type of an inode with mode `mode`.
    pub fn from_mode(mode: u16) -> FileType {
        use disk::mode;
        match mode & mode::TYPE_MASK {
            mode::REGULAR => FileType::Regular,
            mode::DIRECTORY => FileType::Directory,
            mode::SYMLINK => FileType::Symlink,
            mode::CHAR_DEVICE => FileType::CharDevice,
            mode::BLOCK_DEVICE => FileType::BlockDevice,
            mode::FIFO => FileType::Fifo,
            mode::SOCKET => FileType::Socket,
            _ => FileType::Unknown,
        }
    }

    /// The type byte of a directory entry (ext2's values, which are not Linux's d_type).
    pub fn to_dir_entry_code(self) -> u8 {
        match self {
            FileType::Unknown => 0,
            FileType::Regular => 1,
            FileType::Directory => 2,
            FileType::CharDevice => 3,
            FileType::BlockDevice => 4,
            FileType::Fifo => 5,
            FileType::Socket => 6,
            FileType::Symlink => 7,
        }
    }

    /// The type of a directory entry's type byte.
    pub fn from_dir_entry_code(code: u8) -> FileType {
        match code {
            1 => FileType::Regular,
            2 => FileType::Directory,
            3 => FileType::CharDevice,
            4 => FileType::BlockDevice,
            5 => FileType::Fifo,
            6 => FileType::Socket,
            7 => FileType::Symlink,
            _ => FileType::Unknown,
        }
    }

    /// Linux's `d_type` value for this type.
    pub fn linux_dirent_type(self) -> u8 {
        match self {
            FileType::Unknown => 0,
            FileType::Fifo => 1,
            FileType::CharDevice => 2,
            FileType::Directory => 4,
            FileType::BlockDevice => 6,
            FileType::Regular => 8,
            FileType::Symlink => 10,
            FileType::Socket => 12,
        }
    }
}

/// A device number (of a character or block device inode).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DeviceNumber {
    pub major: u32,
    pub minor: u32,
}

impl DeviceNumber {
    /// glibc's and musl's 64-bit `dev_t` encoding, as in Linux's `struct stat`.
    pub fn to_linux(self) -> u64 {
        let (major, minor) = (u64::from(self.major), u64::from(self.minor));
        ((major & 0xffff_f000) << 32)
            | ((major & 0xfff) << 8)
            | ((minor & 0xffff_ff00) << 12)
            | (minor & 0xff)
    }

    /// The inverse of `to_linux`.
    pub fn from_linux(dev: u64) -> DeviceNumber {
        DeviceNumber {
            major: (((dev >> 32) & 0xffff_f000) | ((dev >> 8) & 0xfff)) as u32,
            minor: (((dev >> 12) & 0xffff_ff00) | (dev & 0xff)) as u32,
        }
    }
}

/// What `stat` answers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Stat {
    pub ino: Ino,
    /// The full `i_mode`: type bits and permission bits.
    pub mode: u16,
    pub nlink: u16,
    pub uid: u32,
    pub gid: u32,
    pub size: u64,
    /// Seconds since 1970.
    pub atime: u32,
    pub mtime: u32,
    pub ctime: u32,
    /// Allocated space in 512-byte units (indirect blocks included).
    pub blocks: u64,
    /// The preferred I/O size: the block size.
    pub blksize: u32,
    /// `i_generation`: differs between two files that had the same inode number in turn,
    /// so a server can tell a stale inode number from a reused one.
    pub generation: u32,
    /// For character and block devices; zero otherwise.
    pub rdev: DeviceNumber,
}

impl Stat {
    pub fn file_type(&self) -> FileType {
        FileType::from_mode(self.mode)
    }
}

/// One entry of a directory, as `readdir` gives it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DirEntry {
    pub ino: Ino,
    /// From the entry's type byte (`Unknown` on a file system without the filetype
    /// feature).
    pub file_type: FileType,
    /// 1 to 255 bytes.
    pub name: Vec<u8>,
}

/// What `set_attr` changes: each `Some` field is set; ctime becomes now.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SetAttr {
    /// Permission bits (0o7777); the type bits are kept.
    pub mode: Option<u16>,
    pub uid: Option<u32>,
    pub gid: Option<u32>,
    pub atime: Option<u32>,
    pub mtime: Option<u32>,
}

/// What `statfs` answers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FsStats {
    pub block_size: u32,
    pub blocks: u64,
    pub free_blocks: u64,
    /// Free blocks minus those reserved for root.
    pub available_blocks: u64,
    pub inodes: u64,
    pub free_inodes: u64,
    pub max_name_len: u32,
    pub cache: CacheStats,
}

/// A mounted ext2 file system.
pub struct Ext2<D: BlockDevice> {
    device: D,
    cache: BlockCache,
    layout: Layout,
    /// The superblock as read at mount; its free counts and state are rewritten at sync.
    superblock: Superblock,
    /// Every group's descriptor, kept in memory and written at sync.
    groups: Vec<GroupDesc>,
    /// The group descriptor table's blocks as read at mount (the bytes of each descriptor
    /// this code does not know are kept from here).
    gdt_raw: Vec<u8>,
    /// `s_state` as found at mount. A sync writes it back: a file system that was not
    /// clean when mounted (a crash before) stays marked for checking, as Linux does.
    state_at_mount: u16,
    /// The time the server last gave (`set_time`), for timestamps.
    now: u32,
    /// The on-disk superblock says "not clean" (set before the first change after a
    /// mount or sync, cleared by sync).
    marked_unclean: bool,
    /// The superblock or group descriptors changed since the last sync.
    metadata_dirty: bool,
    /// For `i_generation` of new inodes.
    next_generation: u32,
    /// Inodes the server has open (`open_inode`), with how many times.
    open_files: BTreeMap<Ino, u32>,
    /// Open inodes whose last name is gone: freed by the last `close_inode`.
    orphans: BTreeSet<Ino>,
}

impl<D: BlockDevice> Ext2<D> {
    /// Mounts the file system on `device` with a cache of `cache_blocks` blocks. Checks the
    /// magic, revision 1, a 1, 2 or 4 KiB block size, and refuses features it cannot
    /// write (any INCOMPAT but filetype, any RO_COMPAT but sparse_super and large_file).
    pub fn mount(mut device: D, cache_blocks: usize) -> Result<Self, Error> {
        let mut superblock_bytes = [0u8; disk::SUPERBLOCK_SIZE];
        device.read(disk::SUPERBLOCK_OFFSET / 512, &mut superblock_bytes)?;
        let superblock = Superblock::parse(&superblock_bytes)?;
        let layout = Layout::new(&superblock)?;

        let mut gdt_raw = vec![0u8; layout.gdt_blocks as usize * layout.block_size];
        device.read(u64::from(layout.gdt_block) * layout.sectors_per_block, &mut gdt_raw)?;
        let mut groups = Vec::with_capacity(layout.group_count as usize);
        let table_blocks = layout.inode_table_blocks();
        for descriptor in gdt_raw.chunks_exact(disk::GROUP_DESC_SIZE).take(layout.group_count as usize) {
            let group = GroupDesc::parse(descriptor);
            let table_end = u64::from(group.inode_table) + u64::from(table_blocks);
            if !layout.is_data_block(group.block_bitmap)
                || !layout.is_data_block(group.inode_bitmap)
                || !layout.is_data_block(group.inode_table)
                || table_end > u64::from(layout.blocks_count)
            {
                return Err(Error::Corrupt("group descriptor points outside the file system"));
            }
            groups.push(group);
        }
        for (number, group) in groups.iter().enumerate() {
            if u32::from(group.free_blocks_count) > layout.blocks_in_group(number as u32)
                || u32::from(group.free_inodes_count) > layout.inodes_per_group
            {
                return Err(Error::Corrupt("group free count larger than the group"));
            }
        }
        let next_generation = superblock.write_time;
        let state_at_mount = superblock.state;
        let mut cache = BlockCache::new(layout.block_size, cache_blocks);
        cache.set_device_blocks(layout.blocks_count);
        let mut fs = Ext2 {
            device,
            cache,
            layout,
            superblock,
            groups,
            gdt_raw,
            state_at_mount,
            now: 0,
            marked_unclean: false,
            metadata_dirty: false,
            next_generation,
            open_files: BTreeMap::new(),
            orphans: BTreeSet::new(),
        };
        // The superblock's totals are the sums of the groups' (as Linux computes them).
        fs.update_superblock_counts();
        Ok(fs)
    }

    /// Sets the current time (seconds since 1970) used for timestamps from now on.
    pub fn set_time(&mut self, now: u32) {
        self.now = now;
    }

    /// The root directory's inode.
    pub fn root(&self) -> Ino {
        ROOT_INO
    }

    /// The block size in bytes.
    pub fn block_size(&self) -> usize {
        self.layout.block_size
    }

    /// What the block cache has done so far.
    pub fn cache_stats(&self) -> CacheStats {
        self.cache.stats()
    }

    /// The device, e.g. for the server to replace a dead connection inside it.
    pub fn device_mut(&mut self) -> &mut D {
        &mut self.device
    }

    /// Gives the device back. Changes not synced are lost: call `sync` first.
    pub fn into_device(self) -> D {
        self.device
    }

    /// Marks inode `ino` open (it may be opened many times). An open file that loses its
    /// last name keeps its inode and blocks, and stays readable and writable, until the
    /// last `close_inode` (POSIX's unlink-while-open). Directories are not kept this way.
    pub fn open_inode(&mut self, ino: Ino) -> Result<(), Error> {
        self.load_live_inode(ino)?;
        let count = self.open_files.entry(ino).or_insert(0);
        *count = count.saturating_add(1);
        Ok(())
    }

    /// Undoes one `open_inode`; the last close of an inode without names frees it.
    pub fn close_inode(&mut self, ino: Ino) -> Result<(), Error> {
        let count = self.open_files.get_mut(&ino).ok_or(Error::InvalidArgument)?;
        *count -= 1;
        if *count == 0 {
            self.open_files.remove(&ino);
            if self.orphans.remove(&ino) {
                self.begin_change()?;
                let mut inode = self.load_inode(ino)?;
                self.release_inode(ino, &mut inode)?;
            }
        }
        Ok(())
    }

    /// `stat` of inode `ino`.
    pub fn stat(&mut self, ino: Ino) -> Result<Stat, Error> {
        let inode = self.load_live_inode(ino)?;
        let is_device =
            matches!(FileType::from_mode(inode.mode), FileType::CharDevice | FileType::BlockDevice);
        Ok(Stat {
            ino,
            mode: inode.mode,
            nlink: inode.links_count,
            uid: inode.uid,
            gid: inode.gid,
            size: inode.size,
            atime: inode.atime,
            mtime: inode.mtime,
            ctime: inode.ctime,
            blocks: u64::from(inode.blocks),
            blksize: self.layout.block_size as u32,
            generation: inode.generation,
            rdev: if is_device { inode::decode_device(&inode) } else { DeviceNumber::default() },
        })
    }

    /// chmod, chown, utimes: sets each given attribute; ctime becomes now.
    pub fn set_attr(&mut self, ino: Ino, attr: &SetAttr) -> Result<(), Error> {
        let mut inode = self.load_live_inode(ino)?;
        self.begin_change()?;
        if let Some(permissions) = attr.mode {
            inode.mode = inode.file_type_bits() | (permissions & disk::mode::PERMISSION_MASK);
        }
        if let Some(uid) = attr.uid {
            inode.uid = uid;
        }
        if let Some(gid) = attr.gid {
            inode.gid = gid;
        }
        if let Some(atime) = attr.atime {
            inode.atime = atime;
        }
        if let Some(mtime) = attr.mtime {
            inode.mtime = mtime;
        }
        inode.ctime = self.now;
        self.store_inode(ino, &inode)
    }

    /// Sizes and free counts of the file system, and the cache's statistics.
    pub fn statfs(&mut self) -> Result<FsStats, Error> {
        let free_blocks = u64::from(self.superblock.free_blocks_count);
        Ok(FsStats {
            block_size: self.layout.block_size as u32,
            blocks: u64::from(self.layout.blocks_count),
            free_blocks,
            available_blocks: free_blocks.saturating_sub(u64::from(self.superblock.reserved_blocks_count)),
            inodes: u64::from(self.layout.inodes_count),
            free_inodes: u64::from(self.superblock.free_inodes_count),
            max_name_len: MAX_NAME_LEN as u32,
            cache: self.cache.stats(),
        })
    }

    /// Puts everything on the device: first every dirty cached block (file data,
    /// directories, inode tables, bitmaps, indirect blocks) in ascending block order, then
    /// the group descriptors, then the superblock (marked clean again if it was clean at
    /// mount), then a device flush. The superblock goes last so that "clean" is on disk
    /// only when what it describes is.
    pub fn sync(&mut self) -> Result<(), Error> {
        self.cache.flush_dirty(&mut self.device)?;
        if self.metadata_dirty || self.marked_unclean {
            self.update_superblock_counts();
            self.write_group_descriptors()?;
            self.superblock.state = self.state_at_mount;
            if self.now != 0 {
                self.superblock.write_time = self.now;
            }
            self.write_superblock()?;
            self.metadata_dirty = false;
            self.marked_unclean = false;
        }
        self.device.flush()?;
        Ok(())
    }

    /// Called before the first change after a mount or sync: marks the on-disk superblock
    /// "not clean", so that after a crash before the next sync a boot-time fsck checks the
    /// file system (evicted blocks may have reached the disk without the rest).
    fn begin_change(&mut self) -> Result<(), Error> {
        if !self.marked_unclean {
            self.superblock.state = self.state_at_mount & !disk::STATE_VALID;
            self.write_superblock()?;
            self.device.flush()?;
            self.marked_unclean = true;
        }
        Ok(())
    }

    /// Recomputes the superblock's free counts from the group descriptors.
    fn update_superblock_counts(&mut self) {
        let free_blocks: u64 = self.groups.iter().map(|group| u64::from(group.free_blocks_count)).sum();
        let free_inodes: u64 = self.groups.iter().map(|group| u64::from(group.free_inodes_count)).sum();
        self.superblock.free_blocks_count = free_blocks.min(u64::from(u32::MAX)) as u32;
        self.superblock.free_inodes_count = free_inodes.min(u64::from(u32::MAX)) as u32;
    }

    fn write_superblock(&mut self) -> Result<(), Error> {
        let bytes = self.superblock.to_bytes();
        self.device.write(disk::SUPERBLOCK_OFFSET / 512, &bytes)?;
        Ok(())
    }

    /// Writes the primary group descriptor table (the backups are left as mke2fs wrote
    /// them: their free counts are not used by e2fsck or Linux).
    fn write_group_descriptors(&mut self) -> Result<(), Error> {
        for (group, descriptor) in
            self.groups.iter().zip(self.gdt_raw.chunks_exact_mut(disk::GROUP_DESC_SIZE))
        {
            group.write_to(descriptor);
        }
        let sector = u64::from(self.layout.gdt_block) * self.layout.sectors_per_block;
        self.device.write(sector, &self.gdt_raw)?;
        Ok(())
    }

    /// The contents of block `block` (through the cache).
    fn block(&mut self, block: u32) -> Result<&[u8], Error> {
        self.check_data_block(block)?;
        self.cache.read(&mut self.device, block)
    }

    /// The contents of block `block` for changing (through the cache, marked dirty).
    fn block_mut(&mut self, block: u32) -> Result<&mut [u8], Error> {
        self.check_data_block(block)?;
        self.cache.modify(&mut self.device, block)
    }

    /// A zero-filled dirty buffer for a block just allocated (nothing is read).
    fn block_zeroed(&mut self, block: u32) -> Result<&mut [u8], Error> {
        self.check_data_block(block)?;
        self.cache.zeroed(&mut self.device, block)
    }

    /// A block number read from disk must lie inside the file system, past the superblock
    /// and group descriptor table.
    fn check_data_block(&self, block: u32) -> Result<(), Error> {
        if self.layout.is_data_block(block) {
            Ok(())
        } else {
            Err(Error::Corrupt("block number outside the file system"))
        }
    }
}

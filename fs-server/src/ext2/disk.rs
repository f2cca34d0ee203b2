//! The on-disk structures of ext2 revision 1: superblock, group descriptor, inode, and the
//! geometry (`Layout`) derived from a checked superblock. Each structure is parsed from and
//! written to little-endian bytes by hand, one field per line, at the offsets of the ext2
//! specification.
//!
//! Must never panic on what it reads: every read goes through `Fields`, which answers 0
//! past the end of a buffer whose length was checked up front, and `Layout::new` refuses a
//! superblock whose numbers would make later arithmetic overflow or divide by zero. It does
//! no I/O.

use super::error::Error;

/// Byte offset of the primary superblock on the device, whatever the block size.
pub const SUPERBLOCK_OFFSET: u64 = 1024;
/// Size of the superblock record.
pub const SUPERBLOCK_SIZE: usize = 1024;
pub const EXT2_MAGIC: u16 = 0xEF53;
/// The inode of the root directory.
pub const ROOT_INO: u32 = 2;
/// Size of one group descriptor (ext2 has no 64-bit descriptors).
pub const GROUP_DESC_SIZE: usize = 32;
/// The fields of an inode this code knows live in its first 128 bytes.
pub const GOOD_OLD_INODE_SIZE: usize = 128;
/// `i_extra_isize` given to new inodes when inodes are larger than 128 bytes (what mke2fs
/// and Linux use: room for the extra time fields).
pub const NEW_INODE_EXTRA_ISIZE: u16 = 32;
/// Direct block pointers in `i_block`.
pub const DIRECT_BLOCKS: usize = 12;
/// `i_block` slots: 12 direct, then single, double and triple indirect.
pub const BLOCK_POINTERS: usize = 15;
/// Bytes of `i_block`: a symlink target shorter than this lives there ("fast symlink").
pub const INLINE_SYMLINK_BYTES: usize = 60;
/// Longest name in a directory entry.
pub const MAX_NAME_LEN: usize = 255;
/// ext2's limit on an inode's link count.
pub const LINK_MAX: u16 = 32000;
/// The largest size a file may have before the large_file feature must be set.
pub const LARGE_FILE_THRESHOLD: u64 = 0x7FFF_FFFF;

/// The most block groups mounted (512 GiB with 1 KiB blocks, 8 TiB with 4 KiB), which
/// bounds the memory the group descriptors take.
pub const MAX_GROUPS: u32 = 65536;

/// Superblock `s_state` bit: the file system was cleanly unmounted (here: synced).
pub const STATE_VALID: u16 = 1;

/// Feature bits this code knows.
pub mod feature {
    /// INCOMPAT: directory entries carry the file type.
    pub const INCOMPAT_FILETYPE: u32 = 0x0002;
    /// RO_COMPAT: superblock backups only in groups 0, 1 and powers of 3, 5, 7.
    pub const RO_COMPAT_SPARSE_SUPER: u32 = 0x0001;
    /// RO_COMPAT: files may be larger than 2 GiB (`i_size_high` is used).
    pub const RO_COMPAT_LARGE_FILE: u32 = 0x0002;
    /// INCOMPAT bits this code can mount.
    pub const INCOMPAT_SUPPORTED: u32 = INCOMPAT_FILETYPE;
    /// RO_COMPAT bits this code can write.
    pub const RO_COMPAT_SUPPORTED: u32 = RO_COMPAT_SPARSE_SUPER | RO_COMPAT_LARGE_FILE;
}

/// `i_mode` type bits and helpers.
pub mod mode {
    pub const TYPE_MASK: u16 = 0xF000;
    pub const SOCKET: u16 = 0xC000;
    pub const SYMLINK: u16 = 0xA000;
    pub const REGULAR: u16 = 0x8000;
    pub const BLOCK_DEVICE: u16 = 0x6000;
    pub const DIRECTORY: u16 = 0x4000;
    pub const CHAR_DEVICE: u16 = 0x2000;
    pub const FIFO: u16 = 0x1000;
    /// Permission bits plus set-uid, set-gid and sticky.
    pub const PERMISSION_MASK: u16 = 0o7777;
}

/// `i_flags` bit: the directory is hash-indexed (dir_index). Cleared when this code
/// changes such a directory, since it only writes linear directories.
pub const INDEX_FL: u32 = 0x1000;

/// Reads little-endian fields from a byte buffer whose length the caller checked; a field
/// past the end reads as 0 rather than panicking.
struct Fields<'a>(&'a [u8]);

impl Fields<'_> {
    fn u16(&self, offset: usize) -> u16 {
        read_u16(self.0, offset).unwrap_or(0)
    }
    fn u32(&self, offset: usize) -> u32 {
        read_u32(self.0, offset).unwrap_or(0)
    }
}

/// Writes little-endian fields into a byte buffer; a field past the end is not written (the
/// callers size their buffers so that this never happens).
struct FieldsMut<'a>(&'a mut [u8]);

impl FieldsMut<'_> {
    fn u16(&mut self, offset: usize, value: u16) {
        write_u16(self.0, offset, value);
    }
    fn u32(&mut self, offset: usize, value: u32) {
        write_u32(self.0, offset, value);
    }
}

/// A little-endian u16 at `offset`, or None if the buffer is too short.
pub fn read_u16(bytes: &[u8], offset: usize) -> Option<u16> {
    let field = bytes.get(offset..offset.checked_add(2)?)?;
    Some(u16::from_le_bytes(field.try_into().ok()?))
}

/// A little-endian u32 at `offset`, or None if the buffer is too short.
pub fn read_u32(bytes: &[u8], offset: usize) -> Option<u32> {
    let field = bytes.get(offset..offset.checked_add(4)?)?;
    Some(u32::from_le_bytes(field.try_into().ok()?))
}

/// Stores a little-endian u16 at `offset` if it fits in the buffer.
pub fn write_u16(bytes: &mut [u8], offset: usize, value: u16) {
    if let Some(field) = offset.checked_add(2).and_then(|end| bytes.get_mut(offset..end)) {
        field.copy_from_slice(&value.to_le_bytes());
    }
}

/// Stores a little-endian u32 at `offset` if it fits in the buffer.
pub fn write_u32(bytes: &mut [u8], offset: usize, value: u32) {
    if let Some(field) = offset.checked_add(4).and_then(|end| bytes.get_mut(offset..end)) {
        field.copy_from_slice(&value.to_le_bytes());
    }
}

/// The fields of the superblock this code reads or changes. Every other byte of the
/// record is kept in `raw` and written back unchanged.
#[derive(Clone)]
pub struct Superblock {
    pub inodes_count: u32,
    pub blocks_count: u32,
    pub reserved_blocks_count: u32,
    pub free_blocks_count: u32,
    pub free_inodes_count: u32,
    pub first_data_block: u32,
    pub log_block_size: u32,
    pub blocks_per_group: u32,
    pub inodes_per_group: u32,
    pub write_time: u32,
    pub magic: u16,
    pub state: u16,
    pub rev_level: u32,
    pub first_ino: u32,
    pub inode_size: u16,
    pub feature_compat: u32,
    pub feature_incompat: u32,
    pub feature_ro_compat: u32,
    raw: [u8; SUPERBLOCK_SIZE],
}

impl Superblock {
    pub fn parse(bytes: &[u8]) -> Result<Superblock, Error> {
        let raw: [u8; SUPERBLOCK_SIZE] = bytes
            .get(..SUPERBLOCK_SIZE)
            .and_then(|record| record.try_into().ok())
            .ok_or(Error::Corrupt("superblock record too short"))?;
        let f = Fields(&raw);
        Ok(Superblock {
            inodes_count: f.u32(0),
            blocks_count: f.u32(4),
            reserved_blocks_count: f.u32(8),
            free_blocks_count: f.u32(12),
            free_inodes_count: f.u32(16),
            first_data_block: f.u32(20),
            log_block_size: f.u32(24),
            blocks_per_group: f.u32(32),
            inodes_per_group: f.u32(40),
            write_time: f.u32(48),
            magic: f.u16(56),
            state: f.u16(58),
            rev_level: f.u32(76),
            first_ino: f.u32(84),
            inode_size: f.u16(88),
            feature_compat: f.u32(92),
            feature_incompat: f.u32(96),
            feature_ro_compat: f.u32(100),
            raw,
        })
    }

    /// The record as it goes to disk: the unknown bytes as read, the known fields as they
    /// are now.
    pub fn to_bytes(&self) -> [u8; SUPERBLOCK_SIZE] {
        let mut raw = self.raw;
        let mut f = FieldsMut(&mut raw);
        f.u32(0, self.inodes_count);
        f.u32(4, self.blocks_count);
        f.u32(8, self.reserved_blocks_count);
        f.u32(12, self.free_blocks_count);
        f.u32(16, self.free_inodes_count);
        f.u32(20, self.first_data_block);
        f.u32(24, self.log_block_size);
        f.u32(32, self.blocks_per_group);
        f.u32(40, self.inodes_per_group);
        f.u32(48, self.write_time);
        f.u16(56, self.magic);
        f.u16(58, self.state);
        f.u32(76, self.rev_level);
        f.u32(84, self.first_ino);
        f.u16(88, self.inode_size);
        f.u32(92, self.feature_compat);
        f.u32(96, self.feature_incompat);
        f.u32(100, self.feature_ro_compat);
        raw
    }
}

/// One block group's descriptor: where its bitmaps and inode table are, and its counts.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct GroupDesc {
    pub block_bitmap: u32,
    pub inode_bitmap: u32,
    pub inode_table: u32,
    pub free_blocks_count: u16,
    pub free_inodes_count: u16,
    pub used_dirs_count: u16,
}

impl GroupDesc {
    /// Parses a 32-byte descriptor (a shorter buffer reads as zeros past its end).
    pub fn parse(bytes: &[u8]) -> GroupDesc {
        let f = Fields(bytes);
        GroupDesc {
            block_bitmap: f.u32(0),
            inode_bitmap: f.u32(4),
            inode_table: f.u32(8),
            free_blocks_count: f.u16(12),
            free_inodes_count: f.u16(14),
            used_dirs_count: f.u16(16),
        }
    }

    /// Writes the known fields over a 32-byte descriptor, keeping its other bytes.
    pub fn write_to(&self, bytes: &mut [u8]) {
        let mut f = FieldsMut(bytes);
        f.u32(0, self.block_bitmap);
        f.u32(4, self.inode_bitmap);
        f.u32(8, self.inode_table);
        f.u16(12, self.free_blocks_count);
        f.u16(14, self.free_inodes_count);
        f.u16(16, self.used_dirs_count);
    }
}

/// An inode's first 128 bytes, parsed. Bytes past 128 in a larger inode record are kept as
/// they are on disk (see `write_to`), except for a new inode (`init_record`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Inode {
    /// Type and permission bits.
    pub mode: u16,
    pub uid: u32,
    /// Size in bytes. For regular files `i_size_high` holds the upper 32 bits; for other
    /// types that field is `i_dir_acl`, kept in `dir_acl`.
    pub size: u64,
    pub atime: u32,
    pub ctime: u32,
    pub mtime: u32,
    /// Deletion time; non-zero only for a freed inode.
    pub dtime: u32,
    pub gid: u32,
    pub links_count: u16,
    /// Allocated space in 512-byte units, indirect blocks and the xattr block included.
    pub blocks: u32,
    pub flags: u32,
    /// Block pointers, or a fast symlink's target, or a device number.
    pub block: [u32; BLOCK_POINTERS],
    pub generation: u32,
    /// The extended-attribute block (0 for none).
    pub file_acl: u32,
    /// `i_dir_acl` of a non-regular inode (0 in practice), written back as read.
    pub dir_acl: u32,
}

impl Inode {
    /// Parses an inode record; `bytes` must hold at least 128 bytes.
    pub fn parse(bytes: &[u8]) -> Result<Inode, Error> {
        if bytes.len() < GOOD_OLD_INODE_SIZE {
            return Err(Error::Corrupt("inode record too short"));
        }
        let f = Fields(bytes);
        let mode = f.u16(0);
        let size_low = u64::from(f.u32(4));
        let size_high = f.u32(108);
        let is_regular = mode & mode::TYPE_MASK == mode::REGULAR;
        let mut block = [0u32; BLOCK_POINTERS];
        for (index, pointer) in block.iter_mut().enumerate() {
            *pointer = f.u32(40 + 4 * index);
        }
        Ok(Inode {
            mode,
            uid: u32::from(f.u16(2)) | u32::from(f.u16(120)) << 16,
            size: if is_regular { size_low | u64::from(size_high) << 32 } else { size_low },
            atime: f.u32(8),
            ctime: f.u32(12),
            mtime: f.u32(16),
            dtime: f.u32(20),
            gid: u32::from(f.u16(24)) | u32::from(f.u16(122)) << 16,
            links_count: f.u16(26),
            blocks: f.u32(28),
            flags: f.u32(32),
            block,
            generation: f.u32(100),
            file_acl: f.u32(104),
            dir_acl: if is_regular { 0 } else { size_high },
        })
    }

    /// Writes the known fields over an inode record, keeping its other bytes (osd fields,
    /// fragment fields, the extra part of a large inode).
    pub fn write_to(&self, bytes: &mut [u8]) {
        let is_regular = self.file_type_bits() == mode::REGULAR;
        let size_high = if is_regular { (self.size >> 32) as u32 } else { self.dir_acl };
        let mut f = FieldsMut(bytes);
        f.u16(0, self.mode);
        f.u16(2, self.uid as u16);
        f.u32(4, self.size as u32);
        f.u32(8, self.atime);
        f.u32(12, self.ctime);
        f.u32(16, self.mtime);
        f.u32(20, self.dtime);
        f.u16(24, self.gid as u16);
        f.u16(26, self.links_count);
        f.u32(28, self.blocks);
        f.u32(32, self.flags);
        for (index, pointer) in self.block.iter().enumerate() {
            f.u32(40 + 4 * index, *pointer);
        }
        f.u32(100, self.generation);
        f.u32(104, self.file_acl);
        f.u32(108, size_high);
        f.u16(120, (self.uid >> 16) as u16);
        f.u16(122, (self.gid >> 16) as u16);
    }

    /// Clears a whole inode record for a new inode; a large record gets the
    /// `i_extra_isize` that mke2fs gives its inodes.
    pub fn init_record(bytes: &mut [u8]) {
        bytes.fill(0);
        if bytes.len() >= GOOD_OLD_INODE_SIZE + usize::from(NEW_INODE_EXTRA_ISIZE) {
            write_u16(bytes, GOOD_OLD_INODE_SIZE, NEW_INODE_EXTRA_ISIZE);
        }
    }

    /// The type bits of `mode` (`mode::REGULAR`, `mode::DIRECTORY`, ...).
    pub fn file_type_bits(&self) -> u16 {
        self.mode & mode::TYPE_MASK
    }

    pub fn is_dir(&self) -> bool {
        self.file_type_bits() == mode::DIRECTORY
    }

    pub fn is_regular(&self) -> bool {
        self.file_type_bits() == mode::REGULAR
    }

    pub fn is_symlink(&self) -> bool {
        self.file_type_bits() == mode::SYMLINK
    }

    /// The `i_block` array as the 60 bytes it is on disk (a fast symlink's target).
    pub fn block_bytes(&self) -> [u8; INLINE_SYMLINK_BYTES] {
        let mut bytes = [0u8; INLINE_SYMLINK_BYTES];
        for (chunk, pointer) in bytes.chunks_exact_mut(4).zip(self.block.iter()) {
            chunk.copy_from_slice(&pointer.to_le_bytes());
        }
        bytes
    }

    /// Stores up to 60 bytes into `i_block` (zero-padded).
    pub fn set_block_bytes(&mut self, data: &[u8]) {
        let mut bytes = [0u8; INLINE_SYMLINK_BYTES];
        let length = data.len().min(INLINE_SYMLINK_BYTES);
        if let (Some(dst), Some(src)) = (bytes.get_mut(..length), data.get(..length)) {
            dst.copy_from_slice(src);
        }
        for (pointer, chunk) in self.block.iter_mut().zip(bytes.chunks_exact(4)) {
            *pointer = read_u32(chunk, 0).unwrap_or(0);
        }
    }
}

/// The geometry of a mounted file system, derived once from a superblock that
/// `Layout::new` checked. All later arithmetic on block and inode numbers relies on these
/// checks (non-zero group sizes, block size 1-4 KiB, tables inside the device).
#[derive(Clone, Copy, Debug)]
pub struct Layout {
    pub block_size: usize,
    /// 512-byte sectors per block.
    pub sectors_per_block: u64,
    pub blocks_count: u32,
    pub first_data_block: u32,
    pub blocks_per_group: u32,
    pub inodes_per_group: u32,
    pub inodes_count: u32,
    pub inode_size: usize,
    /// First inode number ordinary files may use (11 on mke2fs images).
    pub first_ino: u32,
    pub group_count: u32,
    /// First block of the group descriptor table.
    pub gdt_block: u32,
    /// Blocks the group descriptor table takes.
    pub gdt_blocks: u32,
    /// Block pointers in one indirect block.
    pub pointers_per_block: u64,
    /// Directory entries carry a file type (INCOMPAT_FILETYPE).
    pub has_filetype: bool,
}

impl Layout {
    /// Checks a superblock and derives the geometry, refusing anything this code cannot
    /// mount read-write.
    pub fn new(sb: &Superblock) -> Result<Layout, Error> {
        if sb.magic != EXT2_MAGIC {
            return Err(Error::Corrupt("bad magic: not an ext2 file system"));
        }
        if sb.rev_level != 1 {
            return Err(Error::Unsupported("only ext2 revision 1 is supported"));
        }
        if sb.log_block_size > 2 {
            return Err(Error::Unsupported("block size other than 1, 2 or 4 KiB"));
        }
        if sb.feature_incompat & !feature::INCOMPAT_SUPPORTED != 0 {
            return Err(Error::Unsupported("unknown INCOMPAT feature"));
        }
        if sb.feature_ro_compat & !feature::RO_COMPAT_SUPPORTED != 0 {
            return Err(Error::Unsupported("unknown RO_COMPAT feature"));
        }
        let block_size = 1024usize << sb.log_block_size;
        let bits_per_block = (block_size * 8) as u32;
        let inode_size = usize::from(sb.inode_size);
        if inode_size < GOOD_OLD_INODE_SIZE || !inode_size.is_power_of_two() || inode_size > block_size {
            return Err(Error::Corrupt("bad inode size"));
        }
        let expected_first_data_block = if block_size == 1024 { 1 } else { 0 };
        if sb.first_data_block != expected_first_data_block {
            return Err(Error::Corrupt("bad first data block"));
        }
        if sb.blocks_per_group == 0 || sb.blocks_per_group > bits_per_block {
            return Err(Error::Corrupt("bad blocks per group"));
        }
        if sb.inodes_per_group == 0 || sb.inodes_per_group > bits_per_block {
            return Err(Error::Corrupt("bad inodes per group"));
        }
        if sb.blocks_count <= sb.first_data_block {
            return Err(Error::Corrupt("bad block count"));
        }
        let data_blocks = sb.blocks_count - sb.first_data_block;
        let group_count = data_blocks.div_ceil(sb.blocks_per_group);
        let gdt_bytes = u64::from(group_count) * GROUP_DESC_SIZE as u64;
        let gdt_blocks = gdt_bytes.div_ceil(block_size as u64) as u32;
        let gdt_block = sb.first_data_block + 1;
        if u64::from(gdt_block) + u64::from(gdt_blocks) > u64::from(sb.blocks_count) {
            return Err(Error::Corrupt("group descriptor table past the end"));
        }
        if group_count > MAX_GROUPS {
            return Err(Error::Unsupported("more block groups than this code handles"));
        }
        // mke2fs always makes every group's inode table the same size.
        let inode_capacity = u64::from(group_count) * u64::from(sb.inodes_per_group);
        if u64::from(sb.inodes_count) != inode_capacity {
            return Err(Error::Corrupt("inode count is not groups times inodes per group"));
        }
        if sb.first_ino <= ROOT_INO || sb.first_ino > sb.inodes_count {
            return Err(Error::Corrupt("bad first inode"));
        }
        Ok(Layout {
            block_size,
            sectors_per_block: (block_size / 512) as u64,
            blocks_count: sb.blocks_count,
            first_data_block: sb.first_data_block,
            blocks_per_group: sb.blocks_per_group,
            inodes_per_group: sb.inodes_per_group,
            inodes_count: sb.inodes_count,
            inode_size,
            first_ino: sb.first_ino,
            group_count,
            gdt_block,
            gdt_blocks,
            pointers_per_block: (block_size / 4) as u64,
            has_filetype: sb.feature_incompat & feature::INCOMPAT_FILETYPE != 0,
        })
    }

    /// Blocks of inode table each group has.
    pub fn inode_table_blocks(&self) -> u32 {
        let bytes = u64::from(self.inodes_per_group) * self.inode_size as u64;
        bytes.div_ceil(self.block_size as u64) as u32
    }

    /// The first block of group `group`.
    pub fn group_first_block(&self, group: u32) -> u32 {
        self.first_data_block + group * self.blocks_per_group
    }

    /// How many blocks group `group` has (the last one may be short).
    pub fn blocks_in_group(&self, group: u32) -> u32 {
        let first = self.group_first_block(group);
        (self.blocks_count - first).min(self.blocks_per_group)
    }

    /// The group that holds block `block` (which must be >= first_data_block).
    pub fn group_of_block(&self, block: u32) -> u32 {
        (block.saturating_sub(self.first_data_block) / self.blocks_per_group).min(self.group_count - 1)
    }

    /// The group that holds inode `ino` (which must be >= 1).
    pub fn group_of_inode(&self, ino: u32) -> u32 {
        (ino.saturating_sub(1) / self.inodes_per_group).min(self.group_count - 1)
    }

    /// Whether `block` may be pointed to by an inode: inside the device and past the
    /// superblock and group descriptor table of group 0.
    pub fn is_data_block(&self, block: u32) -> bool {
        block >= self.gdt_block + self.gdt_blocks && block < self.blocks_count
    }

    /// Data blocks one file can map: 12 direct, then single, double and triple indirect.
    pub fn max_file_blocks(&self) -> u64 {
        let p = self.pointers_per_block;
        DIRECT_BLOCKS as u64 + p + p * p + p * p * p
    }

    /// The largest file size the block map can describe.
    pub fn max_file_size(&self) -> u64 {
        self.max_file_blocks() * self.block_size as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inode_round_trips_through_bytes() {
        let mut inode = Inode {
            mode: mode::REGULAR | 0o644,
            uid: 0x1_0002,
            size: 0x1_2345_6789,
            atime: 1,
            ctime: 2,
            mtime: 3,
            dtime: 0,
            gid: 0x3_0004,
            links_count: 2,
            blocks: 88,
            flags: 0,
            block: [7; BLOCK_POINTERS],
            generation: 9,
            file_acl: 0,
            dir_acl: 0,
        };
        inode.block[14] = 0xdead_beef;
        let mut record = [0xAAu8; 256];
        inode.write_to(&mut record);
        assert_eq!(Inode::parse(&record), Ok(inode));
        // Bytes this code does not know stay as they were.
        assert_eq!(record[116], 0xAA);
        assert_eq!(record[200], 0xAA);
    }

    #[test]
    fn short_records_are_errors_not_panics() {
        assert!(Inode::parse(&[0u8; 50]).is_err());
        assert!(Superblock::parse(&[0u8; 100]).is_err());
        // Fields past the end of a short buffer read as zero.
        assert_eq!(GroupDesc::parse(&[1, 0, 0, 0, 2]), GroupDesc { block_bitmap: 1, ..GroupDesc::default() });
    }

    #[test]
    fn fast_symlink_bytes_round_trip() {
        let mut inode = Inode::default();
        inode.set_block_bytes(b"hello/world");
        assert_eq!(&inode.block_bytes()[..11], b"hello/world");
        assert!(inode.block_bytes()[11..].iter().all(|&b| b == 0));
    }

    #[test]
    fn layout_refuses_nonsense() {
        let mut raw = [0u8; SUPERBLOCK_SIZE];
        write_u16(&mut raw, 56, EXT2_MAGIC);
        write_u32(&mut raw, 76, 1);
        let sb = Superblock::parse(&raw).unwrap();
        // Zero groups sizes, zero inode size: an error, not a division by zero.
        assert!(Layout::new(&sb).is_err());
    }
}

//! Directory entries inside directory blocks: parse and check them, find a name, add an
//! entry (in a free entry, by splitting an entry's slack, or in a new block), remove one
//! (by merging it into the entry before it), repoint one, and list a directory from a byte
//! offset.
//!
//! An entry is: inode (u32), rec_len (u16), name_len (u8), file type (u8, or the high byte
//! of name_len without the filetype feature), then the name; rec_len reaches the next entry
//! and the entries of a block cover it exactly.
//!
//! Must never read past an entry's block (every rec_len and name_len is checked before
//! use, and a bad one is `Corrupt`), never loop without moving forward, and never write an
//! entry that crosses a block boundary. It writes linear directories only: an indexed
//! directory that it changes loses its index flag.

use alloc::vec::Vec;

use super::disk::{self, INDEX_FL, Inode};
use super::error::Error;
use super::{BlockDevice, DirEntry, Ext2, FileType, Ino};

/// Bytes of an entry before its name.
const ENTRY_HEADER_SIZE: usize = 8;

/// The bytes an entry with a name of `name_len` bytes needs (rounded up to 4).
pub(super) fn entry_size(name_len: usize) -> usize {
    (ENTRY_HEADER_SIZE + name_len + 3) & !3
}

/// One entry's header, checked to lie inside its block.
#[derive(Clone, Copy, Debug)]
struct RawEntry {
    /// Offset of the entry in its block.
    offset: usize,
    /// 0 for an unused entry.
    inode: u32,
    rec_len: usize,
    name_len: usize,
    type_code: u8,
}

impl RawEntry {
    fn name<'a>(&self, block: &'a [u8]) -> &'a [u8] {
        let start = self.offset + ENTRY_HEADER_SIZE;
        block.get(start..start + self.name_len).unwrap_or(&[])
    }

    /// The bytes this entry needs; the rest of rec_len is slack a new entry may use.
    fn used_size(&self) -> usize {
        if self.inode == 0 { 0 } else { entry_size(self.name_len) }
    }
}

/// Parses the entry at `offset` of a directory block and checks it.
fn parse_entry(block: &[u8], offset: usize, has_filetype: bool) -> Result<RawEntry, Error> {
    let bad = Error::Corrupt("bad directory entry");
    let inode = disk::read_u32(block, offset).ok_or(bad)?;
    let rec_len = usize::from(disk::read_u16(block, offset + 4).ok_or(bad)?);
    let name_len = usize::from(*block.get(offset + 6).ok_or(bad)?);
    let type_byte = *block.get(offset + 7).ok_or(bad)?;
    if !has_filetype && type_byte != 0 {
        return Err(Error::Corrupt("directory entry name longer than 255 bytes"));
    }
    if rec_len < ENTRY_HEADER_SIZE || rec_len % 4 != 0 || offset + rec_len > block.len() {
        return Err(Error::Corrupt("bad directory entry length"));
    }
    if ENTRY_HEADER_SIZE + name_len > rec_len || (inode != 0 && name_len == 0) {
        return Err(Error::Corrupt("bad directory entry name length"));
    }
    Ok(RawEntry { offset, inode, rec_len, name_len, type_code: if has_filetype { type_byte } else { 0 } })
}

/// The entries of one directory block, in order; stops after the first bad one.
struct BlockEntries<'a> {
    block: &'a [u8],
    offset: usize,
    has_filetype: bool,
    failed: bool,
}

impl<'a> BlockEntries<'a> {
    fn new(block: &'a [u8], has_filetype: bool) -> Self {
        BlockEntries { block, offset: 0, has_filetype, failed: false }
    }
}

impl Iterator for BlockEntries<'_> {
    type Item = Result<RawEntry, Error>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed || self.offset >= self.block.len() {
            return None;
        }
        let entry = parse_entry(self.block, self.offset, self.has_filetype);
        match entry {
            // rec_len >= 8 was checked, so this always moves forward.
            Ok(entry) => self.offset += entry.rec_len,
            Err(_) => self.failed = true,
        }
        Some(entry)
    }
}

/// Writes an entry header and name at `offset` of a directory block.
fn write_entry(block: &mut [u8], offset: usize, ino: Ino, rec_len: usize, name: &[u8], type_code: u8) {
    disk::write_u32(block, offset, ino);
    disk::write_u16(block, offset + 4, rec_len as u16);
    if let Some(header) = block.get_mut(offset + 6..offset + 8) {
        header.copy_from_slice(&[name.len() as u8, type_code]);
    }
    let start = offset + ENTRY_HEADER_SIZE;
    if let Some(target) = block.get_mut(start..start + name.len()) {
        target.copy_from_slice(name);
    }
}

/// Where a directory entry is.
#[derive(Clone, Copy, Debug)]
pub(super) struct EntryLocation {
    /// The physical block holding it.
    pub block: u32,
    /// Its offset in that block.
    pub offset: usize,
    /// The offset of the entry before it in the same block, if any.
    pub previous: Option<usize>,
    /// The inode it names.
    pub ino: Ino,
}

/// Where `add_entry` puts a new entry in a block.
enum FreeSpot {
    /// An unused entry big enough: take it whole.
    Unused { offset: usize, rec_len: usize },
    /// A used entry with enough slack: shorten it to `keep` and put the new one after.
    Split { offset: usize, keep: usize, rec_len: usize },
}

impl<D: BlockDevice> Ext2<D> {
    /// The physical block of a directory's logical block `logical` (a hole is corruption:
    /// ext2 directories have none).
    fn directory_block(&mut self, dir: &Inode, logical: u64) -> Result<u32, Error> {
        match self.map_block(dir, logical)? {
            0 => Err(Error::Corrupt("hole in a directory")),
            physical => Ok(physical),
        }
    }

    /// The number of blocks of a directory.
    fn directory_block_count(&self, dir: &Inode) -> u64 {
        dir.size.div_ceil(self.layout.block_size as u64)
    }

    /// Finds `name` in directory `dir`.
    pub(super) fn find_entry(&mut self, dir: &Inode, name: &[u8]) -> Result<Option<EntryLocation>, Error> {
        let has_filetype = self.layout.has_filetype;
        for logical in 0..self.directory_block_count(dir) {
            let physical = self.directory_block(dir, logical)?;
            let block = self.block(physical)?;
            let mut previous = None;
            for entry in BlockEntries::new(block, has_filetype) {
                let entry = entry?;
                if entry.inode != 0 && entry.name(block) == name {
                    return Ok(Some(EntryLocation {
                        block: physical,
                        offset: entry.offset,
                        previous,
                        ino: entry.inode,
                    }));
                }
                previous = Some(entry.offset);
            }
        }
        Ok(None)
    }

    /// Adds the entry `name` → `ino` to directory `dir_ino` (the caller checked that the
    /// name is free). May grow the directory by a block; `dir` is changed and the caller
    /// stores it, also on failure.
    pub(super) fn add_entry(
        &mut self,
        dir_ino: Ino,
        dir: &mut Inode,
        name: &[u8],
        ino: Ino,
        file_type: FileType,
    ) -> Result<(), Error> {
        let has_filetype = self.layout.has_filetype;
        let type_code = if has_filetype { file_type.to_dir_entry_code() } else { 0 };
        let needed = entry_size(name.len());
        dir.flags &= !INDEX_FL;
        let block_count = self.directory_block_count(dir);
        for logical in 0..block_count {
            let physical = self.directory_block(dir, logical)?;
            let block = self.block(physical)?;
            let mut spot = None;
            for entry in BlockEntries::new(block, has_filetype) {
                let entry = entry?;
                if entry.inode == 0 && entry.rec_len >= needed {
                    spot = Some(FreeSpot::Unused { offset: entry.offset, rec_len: entry.rec_len });
                    break;
                }
                if entry.inode != 0 && entry.rec_len >= entry.used_size() + needed {
                    let keep = entry.used_size();
                    spot =
                        Some(FreeSpot::Split { offset: entry.offset, keep, rec_len: entry.rec_len - keep });
                    break;
                }
            }
            let block = match spot {
                Some(_) => self.block_mut(physical)?,
                None => continue,
            };
            match spot {
                Some(FreeSpot::Unused { offset, rec_len }) => {
                    write_entry(block, offset, ino, rec_len, name, type_code);
                }
                Some(FreeSpot::Split { offset, keep, rec_len }) => {
                    disk::write_u16(block, offset + 4, keep as u16);
                    write_entry(block, offset + keep, ino, rec_len, name, type_code);
                }
                None => {}
            }
            return Ok(());
        }
        // No room: a new block holding just this entry.
        let (physical, _) = self.map_or_allocate(dir_ino, dir, block_count)?;
        dir.size = (block_count + 1) * self.layout.block_size as u64;
        let block_size = self.layout.block_size;
        let block = self.block_mut(physical)?;
        block.fill(0);
        write_entry(block, 0, ino, block_size, name, type_code);
        Ok(())
    }

    /// Removes the entry `name` from directory `dir`: merged into the entry before it, or
    /// marked unused when first in its block. Answers the inode it named.
    pub(super) fn remove_entry(&mut self, dir: &mut Inode, name: &[u8]) -> Result<Ino, Error> {
        let location = self.find_entry(dir, name)?.ok_or(Error::NoEntry)?;
        dir.flags &= !INDEX_FL;
        let has_filetype = self.layout.has_filetype;
        let block = self.block_mut(location.block)?;
        match location.previous {
            Some(previous) => {
                let removed = parse_entry(block, location.offset, has_filetype)?;
                let before = parse_entry(block, previous, has_filetype)?;
                disk::write_u16(block, previous + 4, (before.rec_len + removed.rec_len) as u16);
            }
            None => disk::write_u32(block, location.offset, 0),
        }
        Ok(location.ino)
    }

    /// Points the entry at `location` to `ino` of type `file_type` (rename over an
    /// existing name, and a moved directory's "..").
    pub(super) fn repoint_entry(
        &mut self,
        location: &EntryLocation,
        ino: Ino,
        file_type: FileType,
    ) -> Result<(), Error> {
        let type_code = if self.layout.has_filetype { file_type.to_dir_entry_code() } else { 0 };
        let block = self.block_mut(location.block)?;
        disk::write_u32(block, location.offset, ino);
        if let Some(byte) = block.get_mut(location.offset + 7) {
            *byte = type_code;
        }
        Ok(())
    }

    /// Whether directory `dir` holds nothing but "." and "..".
    pub(super) fn directory_is_empty(&mut self, dir: &Inode) -> Result<bool, Error> {
        let has_filetype = self.layout.has_filetype;
        for logical in 0..self.directory_block_count(dir) {
            let physical = self.directory_block(dir, logical)?;
            let block = self.block(physical)?;
            for entry in BlockEntries::new(block, has_filetype) {
                let entry = entry?;
                let name = entry.name(block);
                if entry.inode != 0 && name != b"." && name != b".." {
                    return Ok(false);
                }
            }
        }
        Ok(true)
    }

    /// The used entries of the directory block holding byte offset `cookie` that start
    /// at `cookie` or later, each with the offset of the entry after it. None past the end.
    pub(super) fn entries_from(
        &mut self,
        dir: &Inode,
        cookie: u64,
    ) -> Result<Option<Vec<(DirEntry, u64)>>, Error> {
        let block_size = self.layout.block_size as u64;
        let logical = cookie / block_size;
        if logical >= self.directory_block_count(dir) {
            return Ok(None);
        }
        let has_filetype = self.layout.has_filetype;
        let block_start = logical * block_size;
        let physical = self.directory_block(dir, logical)?;
        let block = self.block(physical)?;
        let mut found = Vec::new();
        for entry in BlockEntries::new(block, has_filetype) {
            let entry = entry?;
            let position = block_start + entry.offset as u64;
            // A cookie inside an entry (the directory changed since) resumes at the next.
            if entry.inode == 0 || position < cookie {
                continue;
            }
            let listed = DirEntry {
                ino: entry.inode,
                file_type: FileType::from_dir_entry_code(entry.type_code),
                name: entry.name(block).to_vec(),
            };
            found.push((listed, position + entry.rec_len as u64));
        }
        Ok(Some(found))
    }

    /// Writes the first block of a new directory: "." → itself and ".." → its parent.
    pub(super) fn write_new_directory_block(
        &mut self,
        physical: u32,
        ino: Ino,
        parent: Ino,
    ) -> Result<(), Error> {
        let type_code = if self.layout.has_filetype { FileType::Directory.to_dir_entry_code() } else { 0 };
        let block_size = self.layout.block_size;
        let block = self.block_mut(physical)?;
        block.fill(0);
        let dot_size = entry_size(1);
        write_entry(block, 0, ino, dot_size, b".", type_code);
        write_entry(block, dot_size, parent, block_size - dot_size, b"..", type_code);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_of_a_block_are_walked_and_checked() {
        let mut block = [0u8; 1024];
        write_entry(&mut block, 0, 2, 12, b".", 2);
        write_entry(&mut block, 12, 2, 1012, b"..", 2);
        let entries: Vec<_> = BlockEntries::new(&block, true).collect::<Result<_, _>>().unwrap();
        assert_eq!(entries.len(), 2);
        assert_eq!(entries[1].name(&block), b"..");
        assert_eq!(entries[1].used_size(), 12);
    }

    #[test]
    fn bad_rec_len_is_an_error_not_a_loop() {
        let mut block = [0u8; 1024];
        write_entry(&mut block, 0, 2, 0, b".", 2);
        let results: Vec<_> = BlockEntries::new(&block, true).collect();
        assert_eq!(results.len(), 1);
        assert!(results[0].is_err());
        // An entry that runs past the block.
        write_entry(&mut block, 0, 2, 2048, b".", 2);
        assert!(BlockEntries::new(&block, true).next().unwrap().is_err());
        // A name longer than its record.
        write_entry(&mut block, 0, 2, 12, b".", 2);
        block[6] = 200;
        assert!(BlockEntries::new(&block, true).next().unwrap().is_err());
    }

    #[test]
    fn entry_sizes_round_to_four() {
        assert_eq!(entry_size(1), 12);
        assert_eq!(entry_size(4), 12);
        assert_eq!(entry_size(5), 16);
        assert_eq!(entry_size(255), 264);
    }
}

//! The name space: lookup and readdir, and the operations that add, remove or move names
//! (create/mknod, mkdir, unlink, rmdir, rename, link, symlink) with readlink.
//!
//! Must never leave a name pointing at a freed inode or an inode whose link count does not
//! match the names and ".." entries that point at it: every operation checks everything
//! that can fail for a user reason before it changes anything, and undoes a new inode if
//! adding its name fails. It never lets a directory be moved under itself.

use super::disk::{self, INLINE_SYMLINK_BYTES, Inode, LINK_MAX, MAX_NAME_LEN, ROOT_INO, mode};
use super::error::Error;
use super::inode::encode_device;
use super::{BlockDevice, DeviceNumber, DirEntry, Ext2, FileType, Ino};

/// A name usable in a directory: 1 to 255 bytes, no '/' and no NUL.
fn check_name(name: &[u8]) -> Result<(), Error> {
    if name.len() > MAX_NAME_LEN {
        Err(Error::NameTooLong)
    } else if name.is_empty() || name.contains(&b'/') || name.contains(&0) {
        Err(Error::InvalidArgument)
    } else {
        Ok(())
    }
}

fn is_dot_or_dotdot(name: &[u8]) -> bool {
    name == b"." || name == b".."
}

impl<D: BlockDevice> Ext2<D> {
    /// Loads inode `ino`, which must be a directory (`NotDir` otherwise).
    fn load_directory(&mut self, ino: Ino) -> Result<Inode, Error> {
        let inode = self.load_live_inode(ino)?;
        if inode.is_dir() { Ok(inode) } else { Err(Error::NotDir) }
    }

    /// Checks that `name` can be added to `dir`: a valid name, not "." or "..", not taken.
    fn check_new_name(&mut self, dir: &Inode, name: &[u8]) -> Result<(), Error> {
        check_name(name)?;
        if is_dot_or_dotdot(name) || self.find_entry(dir, name)?.is_some() {
            return Err(Error::Exists);
        }
        Ok(())
    }

    /// An inode number read from a directory entry must be in range.
    fn check_entry_ino(&self, ino: Ino) -> Result<Ino, Error> {
        if ino == 0 || ino > self.layout.inodes_count {
            Err(Error::Corrupt("directory entry names an inode out of range"))
        } else {
            Ok(ino)
        }
    }

    /// The inode `name` names in directory `dir` ("." and ".." work: they are entries).
    pub fn lookup(&mut self, dir: Ino, name: &[u8]) -> Result<Ino, Error> {
        let directory = self.load_directory(dir)?;
        check_name(name)?;
        let location = self.find_entry(&directory, name)?.ok_or(Error::NoEntry)?;
        self.check_entry_ino(location.ino)
    }

    /// Lists directory `dir` from byte offset `cookie` (0 at the start): calls `f` with
    /// each entry and the cookie that resumes after it, until `f` answers false or the
    /// directory ends.
    pub fn readdir(
        &mut self,
        dir: Ino,
        cookie: u64,
        mut f: impl FnMut(&DirEntry, u64) -> bool,
    ) -> Result<(), Error> {
        let directory = self.load_directory(dir)?;
        let block_size = self.layout.block_size as u64;
        let mut cookie = cookie;
        while let Some(entries) = self.entries_from(&directory, cookie)? {
            for (entry, next) in &entries {
                if !f(entry, *next) {
                    return Ok(());
                }
            }
            cookie = (cookie / block_size + 1) * block_size;
        }
        Ok(())
    }

    /// Creates a regular file (or a fifo, socket or device inode if `mode`'s type bits say
    /// so; no type bits means regular) named `name` in `dir`.
    pub fn create(&mut self, dir: Ino, name: &[u8], mode: u16, uid: u32, gid: u32) -> Result<Ino, Error> {
        self.mknod(dir, name, mode, DeviceNumber::default(), uid, gid)
    }

    /// Like `create`, with the device number of a character or block device.
    pub fn mknod(
        &mut self,
        dir: Ino,
        name: &[u8],
        mode: u16,
        device: DeviceNumber,
        uid: u32,
        gid: u32,
    ) -> Result<Ino, Error> {
        let type_bits = match mode & mode::TYPE_MASK {
            0 => mode::REGULAR,
            bits @ (mode::REGULAR | mode::FIFO | mode::SOCKET | mode::CHAR_DEVICE | mode::BLOCK_DEVICE) => {
                bits
            }
            _ => return Err(Error::InvalidArgument),
        };
        let mut parent = self.load_directory(dir)?;
        self.check_new_name(&parent, name)?;
        self.begin_change()?;
        let (ino, mut inode) = self.new_inode(dir, type_bits | (mode & mode::PERMISSION_MASK), uid, gid)?;
        if matches!(type_bits, mode::CHAR_DEVICE | mode::BLOCK_DEVICE) {
            encode_device(&mut inode, device);
            self.store_inode(ino, &inode)?;
        }
        self.add_name(dir, &mut parent, name, ino, &mut inode)?;
        Ok(ino)
    }

    /// Adds `name` → `ino` (a new inode) to `dir`, or releases the new inode if that fails.
    fn add_name(
        &mut self,
        dir: Ino,
        parent: &mut Inode,
        name: &[u8],
        ino: Ino,
        inode: &mut Inode,
    ) -> Result<(), Error> {
        let result = self.add_entry(dir, parent, name, ino, FileType::from_mode(inode.mode));
        if result.is_ok() {
            parent.mtime = self.now;
            parent.ctime = self.now;
            if inode.is_dir() {
                parent.links_count += 1;
            }
        }
        self.store_inode(dir, parent)?;
        if let Err(error) = result {
            self.release_inode(ino, inode)?;
            return Err(error);
        }
        Ok(())
    }

    /// Creates directory `name` in `dir` with "." and "..".
    pub fn mkdir(&mut self, dir: Ino, name: &[u8], perm: u16, uid: u32, gid: u32) -> Result<Ino, Error> {
        let mut parent = self.load_directory(dir)?;
        self.check_new_name(&parent, name)?;
        if parent.links_count >= LINK_MAX {
            return Err(Error::TooManyLinks);
        }
        self.begin_change()?;
        let (ino, mut inode) =
            self.new_inode(dir, mode::DIRECTORY | (perm & mode::PERMISSION_MASK), uid, gid)?;
        let first_block = self.map_or_allocate(ino, &mut inode, 0);
        let result = match first_block {
            Ok((physical, _)) => self.write_new_directory_block(physical, ino, dir),
            Err(error) => Err(error),
        };
        if let Err(error) = result {
            self.store_inode(ino, &inode)?;
            self.release_inode(ino, &mut inode)?;
            return Err(error);
        }
        inode.size = self.layout.block_size as u64;
        self.store_inode(ino, &inode)?;
        self.add_name(dir, &mut parent, name, ino, &mut inode)?;
        Ok(ino)
    }

    /// Removes the name `name` (not a directory: `IsDir`) from `dir`; the inode is freed
    /// with its last link.
    pub fn unlink(&mut self, dir: Ino, name: &[u8]) -> Result<(), Error> {
        let mut parent = self.load_directory(dir)?;
        check_name(name)?;
        if is_dot_or_dotdot(name) {
            return Err(Error::IsDir);
        }
        let location = self.find_entry(&parent, name)?.ok_or(Error::NoEntry)?;
        let ino = self.check_entry_ino(location.ino)?;
        let mut inode = self.load_named_inode(ino)?;
        if inode.is_dir() {
            return Err(Error::IsDir);
        }
        self.begin_change()?;
        self.remove_entry(&mut parent, name)?;
        parent.mtime = self.now;
        parent.ctime = self.now;
        self.store_inode(dir, &parent)?;
        self.drop_link(ino, &mut inode)
    }

    /// Removes the empty directory `name` from `dir`.
    pub fn rmdir(&mut self, dir: Ino, name: &[u8]) -> Result<(), Error> {
        let mut parent = self.load_directory(dir)?;
        check_name(name)?;
        if name == b"." {
            return Err(Error::InvalidArgument);
        }
        if name == b".." {
            return Err(Error::NotEmpty);
        }
        let location = self.find_entry(&parent, name)?.ok_or(Error::NoEntry)?;
        let ino = self.check_entry_ino(location.ino)?;
        let mut child = self.load_named_inode(ino)?;
        if !child.is_dir() {
            return Err(Error::NotDir);
        }
        if !self.directory_is_empty(&child)? {
            return Err(Error::NotEmpty);
        }
        self.begin_change()?;
        self.remove_entry(&mut parent, name)?;
        parent.links_count = parent.links_count.saturating_sub(1);
        parent.mtime = self.now;
        parent.ctime = self.now;
        self.store_inode(dir, &parent)?;
        self.drop_link(ino, &mut child)
    }

    /// Adds the name `name` in `dir` for the existing inode `ino` (not a directory).
    pub fn link(&mut self, ino: Ino, dir: Ino, name: &[u8]) -> Result<(), Error> {
        let mut inode = self.load_live_inode(ino)?;
        if inode.is_dir() {
            return Err(Error::NotPermitted);
        }
        if inode.links_count == 0 {
            // An open file whose names are all gone cannot get one back.
            return Err(Error::NoEntry);
        }
        if inode.links_count >= LINK_MAX {
            return Err(Error::TooManyLinks);
        }
        let mut parent = self.load_directory(dir)?;
        self.check_new_name(&parent, name)?;
        self.begin_change()?;
        let result = self.add_entry(dir, &mut parent, name, ino, FileType::from_mode(inode.mode));
        if result.is_ok() {
            parent.mtime = self.now;
            parent.ctime = self.now;
        }
        self.store_inode(dir, &parent)?;
        result?;
        inode.links_count += 1;
        inode.ctime = self.now;
        self.store_inode(ino, &inode)
    }

    /// Creates symbolic link `name` in `dir` pointing to `target`: inside the inode when
    /// shorter than 60 bytes, else in a block. A target must be 1 byte to block size - 1
    /// long, without NUL.
    pub fn symlink(
        &mut self,
        dir: Ino,
        name: &[u8],
        target: &[u8],
        uid: u32,
        gid: u32,
    ) -> Result<Ino, Error> {
        if target.is_empty() {
            return Err(Error::NoEntry);
        }
        if target.contains(&0) {
            return Err(Error::InvalidArgument);
        }
        if target.len() >= self.layout.block_size {
            return Err(Error::NameTooLong);
        }
        let mut parent = self.load_directory(dir)?;
        self.check_new_name(&parent, name)?;
        self.begin_change()?;
        let (ino, mut inode) = self.new_inode(dir, mode::SYMLINK | 0o777, uid, gid)?;
        inode.size = target.len() as u64;
        if target.len() < INLINE_SYMLINK_BYTES {
            inode.set_block_bytes(target);
        } else {
            let result = self.map_or_allocate(ino, &mut inode, 0).and_then(|(physical, _)| {
                let block = self.block_mut(physical)?;
                let destination = block.get_mut(..target.len()).ok_or(Error::NameTooLong)?;
                destination.copy_from_slice(target);
                Ok(())
            });
            if let Err(error) = result {
                self.store_inode(ino, &inode)?;
                self.release_inode(ino, &mut inode)?;
                return Err(error);
            }
        }
        self.store_inode(ino, &inode)?;
        self.add_name(dir, &mut parent, name, ino, &mut inode)?;
        Ok(ino)
    }

    /// Copies the target of symbolic link `ino` into `buf`; answers the bytes copied (the
    /// target is cut if `buf` is shorter).
    pub fn readlink(&mut self, ino: Ino, buf: &mut [u8]) -> Result<usize, Error> {
        let inode = self.load_live_inode(ino)?;
        if !inode.is_symlink() {
            return Err(Error::NotSymlink);
        }
        let length = usize::try_from(inode.size).map_err(|_| Error::Corrupt("symlink too long"))?;
        let count = length.min(buf.len());
        let destination = buf.get_mut(..count).ok_or(Error::InvalidArgument)?;
        if self.is_fast_symlink(&inode) {
            let bytes = inode.block_bytes();
            let target = bytes.get(..length).ok_or(Error::Corrupt("fast symlink too long"))?;
            destination.copy_from_slice(target.get(..count).unwrap_or(&[]));
        } else {
            let physical = self.map_block(&inode, 0)?;
            if physical == 0 || length >= self.layout.block_size {
                return Err(Error::Corrupt("bad slow symlink"));
            }
            let block = self.block(physical)?;
            destination.copy_from_slice(block.get(..count).ok_or(Error::Corrupt("symlink block"))?);
        }
        Ok(count)
    }

    /// Renames `from` in `from_dir` to `to` in `to_dir`, replacing an existing `to` (a
    /// non-directory by a non-directory, an empty directory by a directory). Moving a
    /// directory to another parent repoints its ".." and moves one link between the
    /// parents. Renaming onto another name of the same inode does nothing.
    pub fn rename(&mut self, from_dir: Ino, from: &[u8], to_dir: Ino, to: &[u8]) -> Result<(), Error> {
        let source_parent = self.load_directory(from_dir)?;
        let mut target_parent = self.load_directory(to_dir)?;
        check_name(from)?;
        check_name(to)?;
        if is_dot_or_dotdot(from) || is_dot_or_dotdot(to) {
            return Err(Error::InvalidArgument);
        }
        let source_location = self.find_entry(&source_parent, from)?.ok_or(Error::NoEntry)?;
        let source_ino = self.check_entry_ino(source_location.ino)?;
        let mut source = self.load_named_inode(source_ino)?;
        let target_location = self.find_entry(&target_parent, to)?;
        let mut target = None;
        if let Some(location) = target_location {
            let target_ino = self.check_entry_ino(location.ino)?;
            if target_ino == source_ino {
                return Ok(());
            }
            target = Some((location, target_ino, self.load_named_inode(target_ino)?));
        }
        let source_is_dir = source.is_dir();
        let target_is_dir = target.as_ref().is_some_and(|(_, _, inode)| inode.is_dir());
        if let Some((_, _, target_inode)) = &target {
            match (source_is_dir, target_is_dir) {
                (true, false) => return Err(Error::NotDir),
                (false, true) => return Err(Error::IsDir),
                (true, true) if !self.directory_is_empty(target_inode)? => return Err(Error::NotEmpty),
                _ => {}
            }
        }
        let changes_parent = source_is_dir && from_dir != to_dir;
        if changes_parent {
            if self.is_in_subtree(to_dir, source_ino)? {
                return Err(Error::InvalidArgument);
            }
            if !target_is_dir && target_parent.links_count >= LINK_MAX {
                return Err(Error::TooManyLinks);
            }
        }

        self.begin_change()?;
        let file_type = FileType::from_mode(source.mode);
        // The new name first: if the directory cannot grow, nothing has changed yet.
        match &target {
            Some((location, _, _)) => self.repoint_entry(location, source_ino, file_type)?,
            None => {
                let result = self.add_entry(to_dir, &mut target_parent, to, source_ino, file_type);
                self.store_inode(to_dir, &target_parent)?;
                result?;
            }
        }
        // Then the old name (the parent is loaded again: it may be the same directory).
        let mut source_parent = self.load_inode(from_dir)?;
        self.remove_entry(&mut source_parent, from)?;
        self.store_inode(from_dir, &source_parent)?;
        if changes_parent {
            let dotdot = self.find_entry(&source, b"..")?.ok_or(Error::Corrupt("directory without .."))?;
            self.repoint_entry(&dotdot, to_dir, FileType::Directory)?;
            source.flags &= !disk::INDEX_FL;
        }
        source.ctime = self.now;
        self.store_inode(source_ino, &source)?;
        // Link counts of the parents: a moved directory's ".." leaves one for the other;
        // a replaced directory's ".." leaves the target parent.
        let from_delta = if changes_parent { -1 } else { 0 };
        let to_delta = i32::from(changes_parent) - i32::from(target_is_dir);
        if to_dir == from_dir {
            self.touch_directory(from_dir, from_delta + to_delta)?;
        } else {
            self.touch_directory(from_dir, from_delta)?;
            self.touch_directory(to_dir, to_delta)?;
        }
        if let Some((_, target_ino, mut target_inode)) = target {
            self.drop_link(target_ino, &mut target_inode)?;
        }
        Ok(())
    }

    /// Sets a directory's mtime and ctime to now and adds `link_delta` to its link count.
    fn touch_directory(&mut self, dir: Ino, link_delta: i32) -> Result<(), Error> {
        let mut inode = self.load_inode(dir)?;
        inode.links_count = u16::try_from(i32::from(inode.links_count) + link_delta)
            .map_err(|_| Error::Corrupt("directory link count"))?;
        inode.mtime = self.now;
        inode.ctime = self.now;
        self.store_inode(dir, &inode)
    }

    /// Whether directory `dir` is `ancestor` or lies below it (following ".." up to the
    /// root).
    fn is_in_subtree(&mut self, dir: Ino, ancestor: Ino) -> Result<bool, Error> {
        let mut current = dir;
        for _ in 0..self.layout.inodes_count {
            if current == ancestor {
                return Ok(true);
            }
            if current == ROOT_INO {
                return Ok(false);
            }
            let inode = self.load_directory(current)?;
            let parent = self.find_entry(&inode, b"..")?.ok_or(Error::Corrupt("directory without .."))?;
            current = self.check_entry_ino(parent.ino)?;
        }
        Err(Error::Corrupt("loop in the directory tree"))
    }

    /// Loads the inode a directory entry names; one with no links is corruption.
    fn load_named_inode(&mut self, ino: Ino) -> Result<Inode, Error> {
        let inode = self.load_inode(ino)?;
        if inode.links_count == 0 || inode.mode == 0 {
            return Err(Error::Corrupt("directory entry names a free inode"));
        }
        Ok(inode)
    }
}

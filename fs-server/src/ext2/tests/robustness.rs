//! Tests of the hard cases: a full disk, exhausted inodes, corrupt superblocks, inodes and
//! directories (an error, never a panic), random corruption, and device errors.

use super::*;
use crate::ext2::Error;

#[test]
fn full_disk_gives_enospc_and_damages_nothing() {
    let image = empty_image("enospc", "1M");
    let mut fs = image.mount(32);
    let root = fs.root();
    let mut written: Vec<(Ino, Vec<u8>)> = Vec::new();
    let mut pattern = Pattern::new(21);
    let mut hit_full = false;
    for index in 0..200 {
        let name = format!("fill{index}");
        let ino = match fs.create(root, name.as_bytes(), 0o644, 0, 0) {
            Ok(ino) => ino,
            Err(Error::NoSpace) => {
                hit_full = true;
                break;
            }
            Err(other) => panic!("create: {other:?}"),
        };
        let data = pattern.bytes(37 * 1024 + 11);
        match fs.write(ino, 0, &data) {
            Ok(count) if count == data.len() => written.push((ino, data)),
            Ok(count) => {
                // A short write: what was written is there, no more.
                assert_eq!(fs.stat(ino).unwrap().size, count as u64);
                written.push((ino, data[..count].to_vec()));
                assert_eq!(fs.write(ino, count as u64, &data[count..]), Err(Error::NoSpace));
                hit_full = true;
                break;
            }
            Err(Error::NoSpace) => {
                written.push((ino, Vec::new()));
                hit_full = true;
                break;
            }
            Err(other) => panic!("write: {other:?}"),
        }
    }
    assert!(hit_full, "the image never filled up");
    assert_eq!(fs.statfs().unwrap().free_blocks, 0);
    // Growing a directory or making one fails cleanly too.
    let mut refused = 0;
    for index in 0..100 {
        let name = format!("a-long-name-to-fill-the-directory-block-quickly-{index}");
        if fs.create(root, name.as_bytes(), 0o644, 0, 0).is_err() {
            refused += 1;
        }
    }
    assert!(refused > 0);
    assert_eq!(fs.mkdir(root, b"no-room-for-me", 0o755, 0, 0), Err(Error::NoSpace));
    assert_eq!(fs.symlink(root, b"slow", &[b's'; 100], 0, 0), Err(Error::NoSpace));
    for (ino, data) in &written {
        assert!(read_all(&mut fs, *ino) == *data);
    }
    checkpoint(&mut fs, &image);
    let view = image.ext4_view();
    for (index, (_, data)) in written.iter().enumerate() {
        assert!(view.read(format!("/fill{index}").as_str()).unwrap() == *data);
    }
    // Freeing one file makes room again.
    fs.unlink(root, b"fill0").unwrap();
    let ino = fs.create(root, b"after", 0o644, 0, 0).unwrap();
    assert_eq!(fs.write(ino, 0, &[3u8; 10 * 1024]).unwrap(), 10 * 1024);
    finish(fs, &image);
}

#[test]
fn running_out_of_inodes_gives_enospc() {
    let image = make_image("inodes", 1024, "2M", &["-N", "32"], |_| {});
    let mut fs = image.mount(32);
    let root = fs.root();
    let free_inodes = fs.statfs().unwrap().free_inodes;
    let mut created = 0;
    loop {
        match fs.create(root, format!("i{created}").as_bytes(), 0o644, 0, 0) {
            Ok(_) => created += 1,
            Err(Error::NoSpace) => break,
            Err(other) => panic!("{other:?}"),
        }
    }
    assert_eq!(created, free_inodes);
    assert_eq!(fs.statfs().unwrap().free_inodes, 0);
    assert_eq!(fs.mkdir(root, b"d", 0o755, 0, 0), Err(Error::NoSpace));
    checkpoint(&mut fs, &image);
    fs.unlink(root, b"i3").unwrap();
    fs.mkdir(root, b"d", 0o755, 0, 0).unwrap();
    finish(fs, &image);
}

/// A small image with a few files, and its bytes.
fn sample_image(label: &str) -> TestImage {
    make_image(label, 1024, "2M", &[], |root| {
        std::fs::write(root.join("file"), Pattern::new(2).bytes(70 * 1024)).unwrap();
        std::fs::create_dir(root.join("dir")).unwrap();
        std::fs::write(root.join("dir/inner"), b"inner").unwrap();
        std::os::unix::fs::symlink("x".repeat(80), root.join("dir/slow")).unwrap();
    })
}

fn mount_bytes(bytes: Vec<u8>) -> Result<Ext2<MemDevice>, Error> {
    Ext2::mount(MemDevice::new(bytes), 32)
}

fn corrupt_superblock(bytes: &[u8], offset: usize, value: &[u8]) -> Vec<u8> {
    let mut copy = bytes.to_vec();
    copy[1024 + offset..1024 + offset + value.len()].copy_from_slice(value);
    copy
}

#[test]
fn corrupt_superblocks_are_refused() {
    let image = sample_image("bad-super");
    let bytes = image.bytes();
    assert!(mount_bytes(bytes.clone()).is_ok());
    let cases: [(usize, &[u8], &str); 9] = [
        (56, &[0, 0], "magic"),
        (76, &[0, 0, 0, 0], "revision 0"),
        (24, &[9, 0, 0, 0], "block size"),
        (40, &[0, 0, 0, 0], "inodes per group"),
        (32, &[0, 0, 0, 0], "blocks per group"),
        (4, &[0, 0, 0, 0], "block count"),
        (0, &[0xff, 0xff, 0, 0], "inode count"),
        (96, &[0x40, 0, 0, 0], "extents feature"),
        (88, &[100, 0], "inode size"),
    ];
    for (offset, value, what) in cases {
        let result = mount_bytes(corrupt_superblock(&bytes, offset, value));
        assert!(
            matches!(result, Err(Error::Corrupt(_) | Error::Unsupported(_))),
            "{what}: {:?}",
            result.err()
        );
    }
    // A group descriptor pointing past the end of the file system.
    let mut copy = bytes.clone();
    copy[2048 + 8..2048 + 12].copy_from_slice(&0x00ff_ffffu32.to_le_bytes());
    assert!(matches!(mount_bytes(copy), Err(Error::Corrupt(_))));
    // A device shorter than its superblock says: reads fail with Io, not a panic.
    let short = bytes[..4096].to_vec();
    match mount_bytes(short) {
        Ok(mut fs) => {
            let root = fs.root();
            assert!(fs.lookup(root, b"file").is_err());
        }
        Err(error) => assert_eq!(error, Error::Io),
    }
    assert_eq!(mount_bytes(bytes[..1500].to_vec()).err(), Some(Error::Io));
}

#[test]
fn corrupt_inodes_and_directories_give_errors() {
    let image = sample_image("bad-inode");
    let pristine = image.bytes();
    let debugfs_write = |request: &str| {
        std::fs::write(&image.path, &pristine).unwrap();
        image.debugfs_write(request);
        image.bytes()
    };

    // A data block pointer outside the file system.
    let mut fs = mount_bytes(debugfs_write("sif /file block[2] 0xfffffff0")).unwrap();
    let file = resolve(&mut fs, "file").unwrap();
    let mut buf = vec![0u8; 70 * 1024];
    assert!(matches!(fs.read(file, 0, &mut buf), Err(Error::Corrupt(_))));
    assert!(matches!(fs.truncate(file, 0), Err(Error::Corrupt(_))));

    // An indirect block pointer outside the file system.
    let mut fs = mount_bytes(debugfs_write("sif /file block[IND] 0x7ffffff")).unwrap();
    let file = resolve(&mut fs, "file").unwrap();
    assert!(matches!(fs.read(file, 20 * 1024, &mut buf), Err(Error::Corrupt(_))));
    assert!(matches!(fs.write(file, 20 * 1024, b"x"), Err(Error::Corrupt(_))));

    // A directory whose size claims blocks it does not have.
    let mut fs = mount_bytes(debugfs_write("sif /dir size 0x100000")).unwrap();
    let dir = resolve(&mut fs, "dir").unwrap();
    assert!(matches!(fs.lookup(dir, b"missing"), Err(Error::Corrupt(_))));
    assert!(fs.readdir(dir, 0, |_, _| true).is_err());

    // A symlink whose size does not fit its inode.
    let mut fs = mount_bytes(debugfs_write("sif /dir/slow size 5000")).unwrap();
    let slow = resolve(&mut fs, "dir/slow").unwrap();
    assert!(fs.readlink(slow, &mut [0u8; 100]).is_err());

    // An entry naming an inode that was freed: an error, not a crash.
    let mut fs = mount_bytes(debugfs_write("sif /dir/inner links_count 0")).unwrap();
    let dir = resolve(&mut fs, "dir").unwrap();
    assert!(matches!(fs.unlink(dir, b"inner"), Err(Error::Corrupt(_))));

    // A directory entry with rec_len 0.
    let block_text = String::from_utf8(image.debugfs("bmap /dir 0")).unwrap();
    let block: usize = block_text.trim().parse().unwrap();
    let mut bytes = pristine.clone();
    bytes[block * 1024 + 4..block * 1024 + 6].copy_from_slice(&[0, 0]);
    let mut fs = mount_bytes(bytes).unwrap();
    let dir = resolve(&mut fs, "dir").unwrap();
    assert!(matches!(fs.lookup(dir, b"inner"), Err(Error::Corrupt(_))));
    assert!(matches!(fs.create(dir, b"new", 0o644, 0, 0), Err(Error::Corrupt(_))));
    // An entry whose name runs past its record.
    let mut bytes = pristine.clone();
    bytes[block * 1024 + 12 + 6] = 250;
    let mut fs = mount_bytes(bytes).unwrap();
    let dir = resolve(&mut fs, "dir").unwrap();
    assert!(matches!(fs.lookup(dir, b"inner"), Err(Error::Corrupt(_))));
}

/// Walks the tree (bounded), reading what it finds; any error is fine, a panic is not.
fn walk(fs: &mut Ext2<MemDevice>, dir: Ino, depth: u32, budget: &mut u32) {
    if depth > 4 {
        return;
    }
    let mut entries = Vec::new();
    let _ = fs.readdir(dir, 0, |entry, _| {
        entries.push(entry.clone());
        entries.len() < 100
    });
    for entry in entries {
        if *budget == 0 {
            return;
        }
        *budget -= 1;
        let _ = fs.lookup(dir, &entry.name);
        let Ok(stat) = fs.stat(entry.ino) else { continue };
        let mut buf = vec![0u8; 64 * 1024];
        let _ = fs.read(entry.ino, 0, &mut buf);
        let _ = fs.readlink(entry.ino, &mut buf);
        if stat.file_type() == crate::ext2::FileType::Directory && entry.name != b"." && entry.name != b".." {
            walk(fs, entry.ino, depth + 1, budget);
        }
    }
}

#[test]
fn random_corruption_never_panics() {
    let image = sample_image("fuzz");
    let pristine = image.bytes();
    let mut random = Pattern::new(99);
    let mut mounted = 0;
    for _ in 0..150 {
        let mut bytes = pristine.clone();
        // Corrupt bytes in the metadata and early data: superblock, group descriptors,
        // bitmaps, inode table, directory blocks, indirect blocks.
        for _ in 0..(1 + random.next_u64() % 40) {
            let offset = 1024 + (random.next_u64() % (400 * 1024)) as usize;
            bytes[offset] = random.next_u64() as u8;
        }
        let Ok(mut fs) = mount_bytes(bytes) else { continue };
        mounted += 1;
        let root = fs.root();
        let mut budget = 300;
        walk(&mut fs, root, 0, &mut budget);
        if let Ok(ino) = fs.create(root, b"new-file", 0o644, 0, 0) {
            let _ = fs.write(ino, 3000, &[1u8; 20000]);
            let _ = fs.truncate(ino, 100);
        }
        let _ = fs.mkdir(root, b"new-dir", 0o755, 0, 0);
        let _ = fs.rename(root, b"file", root, b"new-dir");
        let _ = fs.rename(root, b"dir", root, b"renamed");
        if let Ok(dir) = fs.lookup(root, b"renamed") {
            let _ = fs.unlink(dir, b"inner");
            let _ = fs.unlink(dir, b"slow");
            let _ = fs.symlink(dir, b"link", &[b'l'; 70], 0, 0);
        }
        let _ = fs.unlink(root, b"file");
        let _ = fs.rmdir(root, b"renamed");
        let _ = fs.statfs();
        let _ = fs.sync();
    }
    assert!(mounted > 10, "too few corrupted images mounted to exercise anything");
}

#[test]
fn device_errors_are_reported_and_dirty_data_kept() {
    let image = empty_image("ioerror", "2M");
    let mut fs = image.mount(64);
    let root = fs.root();
    let ino = fs.create(root, b"f", 0o644, 0, 0).unwrap();
    fs.write(ino, 0, &[9u8; 3000]).unwrap();
    fs.device_mut().fail_writes = true;
    assert_eq!(fs.sync(), Err(Error::Io));
    fs.device_mut().fail_writes = false;
    fs.sync().unwrap();
    checkpoint(&mut fs, &image);
    assert_eq!(image.debugfs("cat /f"), vec![9u8; 3000]);
    // Reads that fail: the cache holds the inode, the new block must be read.
    let fresh = image.mount(64);
    let mut fs = fresh;
    fs.device_mut().fail_reads_from = Some(0);
    assert_eq!(fs.lookup(root, b"f"), Err(Error::Io));
    fs.device_mut().fail_reads_from = None;
    assert_eq!(fs.lookup(root, b"f").unwrap(), ino);
    finish(fs, &image);
}

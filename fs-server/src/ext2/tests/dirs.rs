//! Tests of the name space: directories, renames, hard links, symlinks, device inodes, a
//! large directory listed with resumable cookies, and the POSIX errors.

use super::*;
use crate::ext2::{DeviceNumber, Error, FileType};

#[test]
fn mkdir_and_rmdir_keep_link_counts() {
    let image = empty_image("mkdir", "8M");
    let mut fs = image.mount(64);
    let root = fs.root();
    let root_links = fs.stat(root).unwrap().nlink;
    let a = fs.mkdir(root, b"a", 0o755, 10, 20).unwrap();
    let b = fs.mkdir(a, b"b", 0o700, 10, 20).unwrap();
    let stat = fs.stat(a).unwrap();
    assert_eq!(stat.file_type(), FileType::Directory);
    assert_eq!((stat.nlink, stat.size, stat.uid, stat.gid), (3, 1024, 10, 20));
    assert_eq!(fs.stat(b).unwrap().nlink, 2);
    assert_eq!(fs.stat(root).unwrap().nlink, root_links + 1);
    assert_eq!(fs.lookup(b, b"..").unwrap(), a);
    assert_eq!(list(&mut fs, b), [b".".to_vec(), b"..".to_vec()]);
    checkpoint(&mut fs, &image);
    assert!(image.ext4_view().metadata("/a/b").unwrap().is_dir());

    assert_eq!(fs.rmdir(root, b"a"), Err(Error::NotEmpty));
    let file = fs.create(a, b"file", 0o644, 0, 0).unwrap();
    assert_eq!(fs.rmdir(a, b"file"), Err(Error::NotDir));
    assert_eq!(fs.rmdir(a, b"."), Err(Error::InvalidArgument));
    assert_eq!(fs.rmdir(a, b".."), Err(Error::NotEmpty));
    fs.unlink(a, b"file").unwrap();
    assert_eq!(fs.stat(file), Err(Error::NoEntry));
    fs.rmdir(a, b"b").unwrap();
    assert_eq!(fs.stat(a).unwrap().nlink, 2);
    fs.rmdir(root, b"a").unwrap();
    assert_eq!(fs.stat(root).unwrap().nlink, root_links);
    assert_eq!(fs.lookup(root, b"a"), Err(Error::NoEntry));
    // Directories spread over groups and come back: many, then all removed.
    for index in 0..40 {
        fs.mkdir(root, format!("d{index}").as_bytes(), 0o755, 0, 0).unwrap();
    }
    checkpoint(&mut fs, &image);
    for index in 0..40 {
        fs.rmdir(root, format!("d{index}").as_bytes()).unwrap();
    }
    finish(fs, &image);
}

#[test]
fn rename_within_and_across_directories() {
    let image = empty_image("rename", "8M");
    let mut fs = image.mount(64);
    let root = fs.root();
    let free_before = fs.statfs().unwrap();
    let one = fs.mkdir(root, b"one", 0o755, 0, 0).unwrap();
    let two = fs.mkdir(root, b"two", 0o755, 0, 0).unwrap();
    let file = fs.create(one, b"f", 0o644, 0, 0).unwrap();
    fs.write(file, 0, b"contents of f").unwrap();

    // Within a directory, then across.
    fs.rename(one, b"f", one, b"g").unwrap();
    assert_eq!(fs.lookup(one, b"f"), Err(Error::NoEntry));
    assert_eq!(fs.lookup(one, b"g").unwrap(), file);
    fs.rename(one, b"g", two, b"h").unwrap();
    assert_eq!(fs.lookup(two, b"h").unwrap(), file);
    assert_eq!(list(&mut fs, one).len(), 2);

    // Replacing an existing file frees the old one.
    let victim = fs.create(two, b"victim", 0o644, 0, 0).unwrap();
    fs.write(victim, 0, &[7u8; 5000]).unwrap();
    fs.rename(two, b"h", two, b"victim").unwrap();
    assert_eq!(fs.lookup(two, b"victim").unwrap(), file);
    assert_eq!(fs.stat(victim), Err(Error::NoEntry));

    // Renaming onto another name of the same inode does nothing.
    fs.link(file, one, b"alias").unwrap();
    fs.rename(one, b"alias", two, b"victim").unwrap();
    assert_eq!(fs.lookup(one, b"alias").unwrap(), file);
    assert_eq!(fs.stat(file).unwrap().nlink, 2);
    fs.unlink(one, b"alias").unwrap();

    // Moving a directory fixes its ".." and both parents' link counts.
    let inner = fs.mkdir(one, b"inner", 0o755, 0, 0).unwrap();
    fs.create(inner, b"x", 0o644, 0, 0).unwrap();
    assert_eq!(fs.stat(one).unwrap().nlink, 3);
    fs.rename(one, b"inner", two, b"inner2").unwrap();
    assert_eq!(fs.lookup(inner, b"..").unwrap(), two);
    assert_eq!(fs.stat(one).unwrap().nlink, 2);
    assert_eq!(fs.stat(two).unwrap().nlink, 3);
    checkpoint(&mut fs, &image);

    // A directory cannot go under itself.
    assert_eq!(fs.rename(two, b"inner2", inner, b"loop"), Err(Error::InvalidArgument));
    assert_eq!(fs.rename(root, b"two", inner, b"loop"), Err(Error::InvalidArgument));
    // Type mismatches and non-empty targets.
    let empty = fs.mkdir(root, b"empty", 0o755, 0, 0).unwrap();
    assert_eq!(fs.rename(two, b"victim", root, b"empty"), Err(Error::IsDir));
    assert_eq!(fs.rename(root, b"empty", two, b"victim"), Err(Error::NotDir));
    assert_eq!(fs.rename(root, b"empty", two, b"inner2"), Err(Error::NotEmpty));
    assert_eq!(fs.rename(root, b"nothing", root, b"x"), Err(Error::NoEntry));
    assert_eq!(fs.rename(root, b".", root, b"x"), Err(Error::InvalidArgument));
    // A directory replaces an empty directory: in another parent, then in the same one.
    fs.rename(two, b"inner2", root, b"empty").unwrap();
    assert_eq!(fs.stat(empty), Err(Error::NoEntry));
    assert_eq!(fs.lookup(inner, b"..").unwrap(), root);
    assert_eq!(fs.stat(two).unwrap().nlink, 2);
    let spare = fs.mkdir(root, b"spare", 0o755, 0, 0).unwrap();
    let links = fs.stat(root).unwrap().nlink;
    fs.rename(root, b"empty", root, b"spare").unwrap();
    assert_eq!(fs.stat(spare), Err(Error::NoEntry));
    assert_eq!(fs.stat(root).unwrap().nlink, links - 1);
    assert_eq!(fs.lookup(root, b"spare").unwrap(), inner);
    checkpoint(&mut fs, &image);
    assert_eq!(image.ext4_view().read("/two/victim").unwrap(), b"contents of f");
    assert!(image.ext4_view().exists("/spare/x").unwrap());

    // Clean everything away: the free counts return.
    fs.unlink(inner, b"x").unwrap();
    fs.rmdir(root, b"spare").unwrap();
    fs.unlink(two, b"victim").unwrap();
    fs.rmdir(root, b"one").unwrap();
    fs.rmdir(root, b"two").unwrap();
    let free_after = fs.statfs().unwrap();
    assert_eq!(free_after.free_blocks, free_before.free_blocks);
    assert_eq!(free_after.free_inodes, free_before.free_inodes);
    finish(fs, &image);
}

#[test]
fn hard_links_count_and_free_with_the_last() {
    let image = empty_image("links", "4M");
    let mut fs = image.mount(64);
    let root = fs.root();
    let before = fs.statfs().unwrap();
    let dir = fs.mkdir(root, b"dir", 0o755, 0, 0).unwrap();
    let ino = fs.create(root, b"a", 0o644, 0, 0).unwrap();
    fs.write(ino, 0, &[1u8; 20000]).unwrap();
    fs.link(ino, dir, b"b").unwrap();
    fs.link(ino, root, b"c").unwrap();
    assert_eq!(fs.stat(ino).unwrap().nlink, 3);
    assert_eq!(fs.link(dir, root, b"dirlink"), Err(Error::NotPermitted));
    assert_eq!(fs.link(ino, root, b"c"), Err(Error::Exists));
    fs.unlink(root, b"a").unwrap();
    fs.unlink(root, b"c").unwrap();
    assert_eq!(fs.stat(ino).unwrap().nlink, 1);
    assert_eq!(read_all(&mut fs, ino), vec![1u8; 20000]);
    checkpoint(&mut fs, &image);
    assert_eq!(image.debugfs("cat /dir/b"), vec![1u8; 20000]);
    fs.unlink(dir, b"b").unwrap();
    assert_eq!(fs.stat(ino), Err(Error::NoEntry));
    fs.rmdir(root, b"dir").unwrap();
    let after = fs.statfs().unwrap();
    assert_eq!((after.free_blocks, after.free_inodes), (before.free_blocks, before.free_inodes));
    finish(fs, &image);
}

#[test]
fn symlinks_fast_and_slow() {
    let image = empty_image("symlinks", "4M");
    let mut fs = image.mount(64);
    let root = fs.root();
    let before = fs.statfs().unwrap().free_blocks;
    let targets: Vec<Vec<u8>> = [1usize, 59, 60, 61, 500, 1023]
        .iter()
        .map(|&n| (0..n).map(|i| if i % 20 == 19 { b'/' } else { b'a' + (i % 26) as u8 }).collect())
        .collect();
    for (index, target) in targets.iter().enumerate() {
        let name = format!("link{index}");
        let ino = fs.symlink(root, name.as_bytes(), target, 0, 0).unwrap();
        let stat = fs.stat(ino).unwrap();
        assert_eq!(stat.file_type(), FileType::Symlink);
        assert_eq!(stat.size, target.len() as u64);
        assert_eq!(stat.blocks, if target.len() < 60 { 0 } else { 2 });
        let mut buf = [0u8; 2048];
        let count = fs.readlink(ino, &mut buf).unwrap();
        assert_eq!(&buf[..count], &target[..]);
        // A short buffer gets the start.
        assert_eq!(fs.readlink(ino, &mut buf[..1]).unwrap(), 1);
        assert_eq!(fs.read(ino, 0, &mut buf), Err(Error::InvalidArgument));
    }
    assert_eq!(fs.symlink(root, b"too-long", &[b'x'; 1024], 0, 0), Err(Error::NameTooLong));
    assert_eq!(fs.symlink(root, b"empty", b"", 0, 0), Err(Error::NoEntry));
    assert_eq!(fs.readlink(root, &mut [0u8; 10]), Err(Error::NotSymlink));
    checkpoint(&mut fs, &image);
    let view = image.ext4_view();
    for (index, target) in targets.iter().enumerate() {
        let read = view.read_link(format!("/link{index}").as_str()).unwrap();
        assert_eq!(read.as_ref(), &target[..]);
    }
    for index in 0..targets.len() {
        fs.unlink(root, format!("link{index}").as_bytes()).unwrap();
    }
    assert_eq!(fs.statfs().unwrap().free_blocks, before);
    finish(fs, &image);
}

#[test]
fn device_fifo_and_socket_inodes() {
    let image = empty_image("mknod", "4M");
    let mut fs = image.mount(64);
    let root = fs.root();
    let fifo = fs.create(root, b"fifo", 0x1000 | 0o600, 0, 0).unwrap();
    let small = DeviceNumber { major: 4, minor: 64 };
    let big = DeviceNumber { major: 300, minor: 70000 };
    let tty = fs.mknod(root, b"tty", 0x2000 | 0o620, small, 0, 5).unwrap();
    let disk = fs.mknod(root, b"disk", 0x6000 | 0o660, big, 0, 6).unwrap();
    let socket = fs.create(root, b"sock", 0xC000 | 0o777, 0, 0).unwrap();
    assert_eq!(fs.stat(fifo).unwrap().file_type(), FileType::Fifo);
    assert_eq!(fs.stat(tty).unwrap().rdev, small);
    assert_eq!(fs.stat(disk).unwrap().rdev, big);
    assert_eq!(fs.stat(disk).unwrap().file_type(), FileType::BlockDevice);
    assert_eq!(fs.stat(socket).unwrap().file_type(), FileType::Socket);
    assert_eq!(DeviceNumber::from_linux(big.to_linux()), big);
    assert_eq!(small.to_linux(), 0x0440);
    assert_eq!(fs.create(root, b"d", 0x4000 | 0o755, 0, 0), Err(Error::InvalidArgument));
    let mut types = Vec::new();
    fs.readdir(root, 0, |entry, _| {
        types.push((entry.name.clone(), entry.file_type));
        true
    })
    .unwrap();
    assert!(types.contains(&(b"tty".to_vec(), FileType::CharDevice)));
    assert!(types.contains(&(b"fifo".to_vec(), FileType::Fifo)));
    checkpoint(&mut fs, &image);
    let stat = String::from_utf8_lossy(&image.debugfs("stat /disk")).into_owned();
    assert!(stat.contains("Device major/minor number: 300:70000"), "{stat}");
    fs.unlink(root, b"disk").unwrap();
    fs.unlink(root, b"fifo").unwrap();
    finish(fs, &image);
}

#[test]
fn a_thousand_entries_listed_with_resumable_cookies() {
    let image = empty_image("thousand", "8M");
    let mut fs = image.mount(64);
    let root = fs.root();
    let dir = fs.mkdir(root, b"big", 0o755, 0, 0).unwrap();
    let names: Vec<Vec<u8>> =
        (0..1000).map(|i| format!("file-{i}-{}", "n".repeat(i % 40)).into_bytes()).collect();
    for name in &names {
        fs.create(dir, name, 0o644, 0, 0).unwrap();
    }
    assert!(fs.stat(dir).unwrap().size > 20 * 1024);
    // List 37 entries per call, resuming from the last cookie each time.
    let mut seen: Vec<Vec<u8>> = Vec::new();
    let mut cookie = 0;
    loop {
        let mut batch = 0;
        let mut next_cookie = cookie;
        fs.readdir(dir, cookie, |entry, next| {
            if batch == 37 {
                return false;
            }
            batch += 1;
            seen.push(entry.name.clone());
            next_cookie = next;
            true
        })
        .unwrap();
        if batch == 0 {
            break;
        }
        cookie = next_cookie;
    }
    assert_eq!(seen.len(), 1002);
    let mut sorted_seen = seen.clone();
    sorted_seen.sort();
    let mut expected = names.clone();
    expected.push(b".".to_vec());
    expected.push(b"..".to_vec());
    expected.sort();
    assert_eq!(sorted_seen, expected);
    for name in names.iter().step_by(3) {
        fs.lookup(dir, name).unwrap();
    }
    checkpoint(&mut fs, &image);
    assert_eq!(image.ext4_view().read_dir("/big").unwrap().count(), 1002);

    // Remove every other one, list again, then remove the rest.
    for name in names.iter().step_by(2) {
        fs.unlink(dir, name).unwrap();
    }
    assert_eq!(list(&mut fs, dir).len(), 502);
    checkpoint(&mut fs, &image);
    for name in names.iter().skip(1).step_by(2) {
        fs.unlink(dir, name).unwrap();
    }
    assert_eq!(list(&mut fs, dir), [b".".to_vec(), b"..".to_vec()]);
    // Adding again reuses the emptied blocks: the directory does not grow.
    let size = fs.stat(dir).unwrap().size;
    for name in names.iter().take(100) {
        fs.create(dir, name, 0o644, 0, 0).unwrap();
    }
    assert_eq!(fs.stat(dir).unwrap().size, size);
    for name in names.iter().take(100) {
        fs.unlink(dir, name).unwrap();
    }
    fs.rmdir(root, b"big").unwrap();
    finish(fs, &image);
}

#[test]
fn posix_errors() {
    let image = empty_image("errors", "4M");
    let mut fs = image.mount(64);
    let root = fs.root();
    let file = fs.create(root, b"file", 0o644, 0, 0).unwrap();
    let dir = fs.mkdir(root, b"dir", 0o755, 0, 0).unwrap();
    fs.create(dir, b"inside", 0o644, 0, 0).unwrap();
    let long = [b'n'; 256];

    assert_eq!(fs.lookup(root, b"missing"), Err(Error::NoEntry));
    assert_eq!(fs.unlink(root, b"missing"), Err(Error::NoEntry));
    assert_eq!(fs.create(root, b"file", 0o644, 0, 0), Err(Error::Exists));
    assert_eq!(fs.mkdir(root, b"dir", 0o755, 0, 0), Err(Error::Exists));
    assert_eq!(fs.mkdir(root, b".", 0o755, 0, 0), Err(Error::Exists));
    assert_eq!(fs.symlink(root, b"file", b"x", 0, 0), Err(Error::Exists));
    assert_eq!(fs.lookup(file, b"x"), Err(Error::NotDir));
    assert_eq!(fs.create(file, b"x", 0o644, 0, 0), Err(Error::NotDir));
    assert_eq!(fs.readdir(file, 0, |_, _| true), Err(Error::NotDir));
    assert_eq!(fs.unlink(root, b"dir"), Err(Error::IsDir));
    assert_eq!(fs.read(dir, 0, &mut [0u8; 4]), Err(Error::IsDir));
    assert_eq!(fs.write(dir, 0, b"x"), Err(Error::IsDir));
    assert_eq!(fs.truncate(dir, 0), Err(Error::IsDir));
    assert_eq!(fs.rmdir(root, b"dir"), Err(Error::NotEmpty));
    assert_eq!(fs.rmdir(root, b"file"), Err(Error::NotDir));
    assert_eq!(fs.lookup(root, &long), Err(Error::NameTooLong));
    assert_eq!(fs.create(root, &long, 0o644, 0, 0), Err(Error::NameTooLong));
    assert_eq!(fs.create(root, b"a/b", 0o644, 0, 0), Err(Error::InvalidArgument));
    assert_eq!(fs.stat(0), Err(Error::InvalidArgument));
    assert_eq!(fs.stat(u32::MAX), Err(Error::InvalidArgument));
    // A name of exactly 255 bytes is fine.
    fs.create(root, &long[..255], 0o644, 0, 0).unwrap();
    assert!(fs.lookup(root, &long[..255]).unwrap() > 11);

    assert_eq!(Error::NoEntry.errno(), 2);
    assert_eq!(Error::Exists.errno(), 17);
    assert_eq!(Error::NotDir.errno(), 20);
    assert_eq!(Error::IsDir.errno(), 21);
    assert_eq!(Error::NotEmpty.errno(), 39);
    assert_eq!(Error::NameTooLong.errno(), 36);
    assert_eq!(Error::NoSpace.errno(), 28);
    finish(fs, &image);
}

#[test]
fn hash_indexed_directories_are_used_linearly_and_lose_their_index_when_changed() {
    let image = make_image("htree", 1024, "8M", &[], |root| {
        std::fs::create_dir(root.join("indexed")).unwrap();
        for index in 0..400 {
            std::fs::write(root.join(format!("indexed/entry-{index:04}")), b"").unwrap();
        }
    });
    // e2fsck -D rebuilds large directories with a hash index.
    let status =
        std::process::Command::new(super::tool("e2fsck")).arg("-fyD").arg(&image.path).output().unwrap();
    assert!(status.status.code().unwrap_or(8) < 4, "e2fsck -fyD failed");
    let stat = String::from_utf8_lossy(&image.debugfs("stat /indexed")).into_owned();
    assert!(stat.contains("Flags: 0x1000"), "no index was built: {stat}");
    let mut fs = image.mount(64);
    let dir = resolve(&mut fs, "indexed").unwrap();
    for index in (0..400).step_by(7) {
        fs.lookup(dir, format!("entry-{index:04}").as_bytes()).unwrap();
    }
    assert_eq!(list(&mut fs, dir).len(), 402);
    fs.create(dir, b"added", 0o644, 0, 0).unwrap();
    fs.unlink(dir, b"entry-0003").unwrap();
    checkpoint(&mut fs, &image);
    let stat = String::from_utf8_lossy(&image.debugfs("stat /indexed")).into_owned();
    assert!(stat.contains("Flags: 0x0"), "index flag kept: {stat}");
    for index in 0..400 {
        let _ = fs.unlink(dir, format!("entry-{index:04}").as_bytes());
    }
    fs.unlink(dir, b"added").unwrap();
    fs.rmdir(fs.root(), b"indexed").unwrap();
    finish(fs, &image);
}

#[test]
fn without_the_filetype_feature() {
    let image = make_image("nofiletype", 1024, "4M", &["-O", "^filetype"], |root| {
        std::fs::write(root.join("old"), b"old").unwrap();
    });
    let mut fs = image.mount(64);
    let root = fs.root();
    let dir = fs.mkdir(root, b"dir", 0o755, 0, 0).unwrap();
    fs.create(dir, b"file", 0o644, 0, 0).unwrap();
    fs.symlink(dir, b"link", b"file", 0, 0).unwrap();
    fs.rename(root, b"old", dir, b"moved").unwrap();
    let mut types = Vec::new();
    fs.readdir(dir, 0, |entry, _| {
        types.push(entry.file_type);
        true
    })
    .unwrap();
    assert!(types.iter().all(|&file_type| file_type == FileType::Unknown));
    assert_eq!(types.len(), 5);
    finish(fs, &image);
}

#[test]
fn a_tiny_cache_gives_the_same_results() {
    let image = empty_image("tinycache", "8M");
    let mut fs = image.mount(1); // rounded up to the minimum of 4 blocks
    let root = fs.root();
    let data = Pattern::new(8).bytes(300 * 1024);
    let mut files = Vec::new();
    for index in 0..30 {
        let dir = fs.mkdir(root, format!("d{index}").as_bytes(), 0o755, 0, 0).unwrap();
        let ino = fs.create(dir, b"f", 0o644, 0, 0).unwrap();
        fs.write(ino, (index * 1000) as u64, &data[..(index + 1) * 9000]).unwrap();
        files.push((ino, index));
    }
    for (ino, index) in &files {
        let mut expected = vec![0u8; index * 1000];
        expected.extend_from_slice(&data[..(index + 1) * 9000]);
        assert!(read_all(&mut fs, *ino) == expected);
    }
    for index in (0..30).step_by(2) {
        let dir = fs.lookup(root, format!("d{index}").as_bytes()).unwrap();
        fs.rename(dir, b"f", root, format!("f{index}").as_bytes()).unwrap();
        fs.rmdir(root, format!("d{index}").as_bytes()).unwrap();
    }
    let stats = fs.cache_stats();
    assert!(stats.evictions > 1000, "{stats:?}");
    finish(fs, &image);
}

#[test]
fn an_open_file_outlives_its_last_name() {
    let image = empty_image("orphan", "4M");
    let mut fs = image.mount(64);
    let root = fs.root();
    let before = fs.statfs().unwrap();
    let ino = fs.create(root, b"tmp", 0o600, 0, 0).unwrap();
    fs.open_inode(ino).unwrap();
    fs.open_inode(ino).unwrap();
    fs.write(ino, 0, &[5u8; 30000]).unwrap();
    fs.unlink(root, b"tmp").unwrap();
    assert_eq!(fs.lookup(root, b"tmp"), Err(Error::NoEntry));
    // Still readable, writable and stat-able, with no links; its number is not reused.
    assert_eq!(fs.stat(ino).unwrap().nlink, 0);
    fs.write(ino, 30000, b"more").unwrap();
    assert_eq!(read_all(&mut fs, ino).len(), 30004);
    assert_ne!(fs.create(root, b"other", 0o644, 0, 0).unwrap(), ino);
    assert_eq!(fs.link(ino, root, b"back"), Err(Error::NoEntry));
    fs.close_inode(ino).unwrap();
    assert_eq!(fs.stat(ino).unwrap().size, 30004);
    fs.close_inode(ino).unwrap();
    assert_eq!(fs.stat(ino), Err(Error::NoEntry));
    assert_eq!(fs.close_inode(ino), Err(Error::InvalidArgument));
    fs.unlink(root, b"other").unwrap();
    let after = fs.statfs().unwrap();
    assert_eq!((after.free_blocks, after.free_inodes), (before.free_blocks, before.free_inodes));
    // A generation number tells a reused inode number from the old file.
    let first = fs.create(root, b"g", 0o644, 0, 0).unwrap();
    let generation = fs.stat(first).unwrap().generation;
    fs.unlink(root, b"g").unwrap();
    let second = fs.create(root, b"g", 0o644, 0, 0).unwrap();
    assert_eq!(first, second);
    assert_ne!(fs.stat(second).unwrap().generation, generation);
    finish(fs, &image);
}

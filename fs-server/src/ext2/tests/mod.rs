//! Host tests of the ext2 code against images made by mke2fs, checked afterwards with
//! `e2fsck -fn` and read back with independent readers (debugfs, the ext4-view crate).
//!
//! Must never touch anything outside its own scratch directories under the system temp
//! directory, and never leave an image unchecked after changing it: every test that
//! mutates ends with `finish`, which syncs and runs e2fsck.

mod dirs;
mod files;
mod robustness;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};
use std::vec::Vec;
use std::{format, fs};

use super::{BlockDevice, Ext2, Ino, IoError};

/// A block device over a byte vector (a whole image in memory).
pub struct MemDevice {
    pub bytes: Vec<u8>,
    /// Reads of sectors at or past this fail (to test I/O errors).
    pub fail_reads_from: Option<u64>,
    /// Every write fails while set.
    pub fail_writes: bool,
}

impl MemDevice {
    pub fn new(bytes: Vec<u8>) -> MemDevice {
        MemDevice { bytes, fail_reads_from: None, fail_writes: false }
    }

    fn range(&self, sector: u64, length: usize) -> Result<std::ops::Range<usize>, IoError> {
        let start = usize::try_from(sector).map_err(|_| IoError)?.checked_mul(512).ok_or(IoError)?;
        let end = start.checked_add(length).ok_or(IoError)?;
        if !length.is_multiple_of(512) || end > self.bytes.len() {
            return Err(IoError);
        }
        Ok(start..end)
    }
}

impl BlockDevice for MemDevice {
    fn read(&mut self, sector: u64, buf: &mut [u8]) -> Result<(), IoError> {
        if self.fail_reads_from.is_some_and(|first| sector + (buf.len() / 512) as u64 > first) {
            return Err(IoError);
        }
        let range = self.range(sector, buf.len())?;
        buf.copy_from_slice(&self.bytes[range]);
        Ok(())
    }

    fn write(&mut self, sector: u64, buf: &[u8]) -> Result<(), IoError> {
        if self.fail_writes {
            return Err(IoError);
        }
        let range = self.range(sector, buf.len())?;
        self.bytes[range].copy_from_slice(buf);
        Ok(())
    }

    fn flush(&mut self) -> Result<(), IoError> {
        if self.fail_writes { Err(IoError) } else { Ok(()) }
    }
}

/// Finds an e2fsprogs tool in /sbin, /usr/sbin or PATH.
fn tool(name: &str) -> PathBuf {
    for dir in ["/sbin", "/usr/sbin", "/usr/bin", "/bin"] {
        let candidate = Path::new(dir).join(name);
        if candidate.exists() {
            return candidate;
        }
    }
    PathBuf::from(name)
}

/// A fresh scratch directory for one test.
fn scratch_dir(label: &str) -> PathBuf {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let dir = std::env::temp_dir().join(format!("machina-ext2-{}-{label}-{n}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).unwrap();
    dir
}

/// An image file made by mke2fs in a scratch directory (removed on drop).
pub struct TestImage {
    pub path: PathBuf,
    dir: PathBuf,
}

impl Drop for TestImage {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.dir);
    }
}

/// Makes an ext2 image: `mke2fs -q -t ext2 -b BLOCK_SIZE [extra] -d ROOT IMG SIZE`, where
/// `populate` fills ROOT first.
pub fn make_image(
    label: &str,
    block_size: u32,
    size: &str,
    extra: &[&str],
    populate: impl FnOnce(&Path),
) -> TestImage {
    let dir = scratch_dir(label);
    let root = dir.join("root");
    fs::create_dir_all(&root).unwrap();
    populate(&root);
    let path = dir.join("fs.img");
    let output = Command::new(tool("mke2fs"))
        .args(["-q", "-F", "-t", "ext2", "-b", &block_size.to_string()])
        .args(extra)
        .arg("-d")
        .arg(&root)
        .arg(&path)
        .arg(size)
        .env("MKE2FS_CONFIG", "/etc/mke2fs.conf")
        .output()
        .expect("mke2fs runs");
    assert!(output.status.success(), "mke2fs failed: {}", String::from_utf8_lossy(&output.stderr));
    TestImage { path, dir }
}

/// An empty image with 1 KiB blocks.
pub fn empty_image(label: &str, size: &str) -> TestImage {
    make_image(label, 1024, size, &[], |_| {})
}

impl TestImage {
    pub fn bytes(&self) -> Vec<u8> {
        fs::read(&self.path).unwrap()
    }

    /// Mounts (a copy in memory of) the image, with the clock set.
    pub fn mount(&self, cache_blocks: usize) -> Ext2<MemDevice> {
        let mut fs = Ext2::mount(MemDevice::new(self.bytes()), cache_blocks).expect("mount");
        fs.set_time(now());
        fs
    }

    /// `e2fsck -fn` on the image file; panics with its report unless it exits 0 and
    /// asked no question (it exits 0 after declining to fix a wrong superblock free count,
    /// so its "Fix? no" answers are checked too).
    pub fn fsck(&self) {
        let output = Command::new(tool("e2fsck")).arg("-fn").arg(&self.path).output().expect("e2fsck runs");
        let report = String::from_utf8_lossy(&output.stdout);
        assert!(
            output.status.success() && !report.contains("? no"),
            "e2fsck -fn found problems (exit {:?}):\n{}\n{}",
            output.status.code(),
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }

    /// Runs one debugfs request on the image file and answers its standard output.
    pub fn debugfs(&self, request: &str) -> Vec<u8> {
        let output = Command::new(tool("debugfs"))
            .arg("-R")
            .arg(request)
            .arg(&self.path)
            .output()
            .expect("debugfs runs");
        assert!(output.status.success(), "debugfs {request} failed");
        output.stdout
    }

    /// Runs one debugfs request that changes the image file (`debugfs -w`).
    pub fn debugfs_write(&self, request: &str) {
        let output = Command::new(tool("debugfs"))
            .args(["-w", "-R", request])
            .arg(&self.path)
            .output()
            .expect("debugfs runs");
        assert!(output.status.success(), "debugfs -w {request} failed");
    }

    /// Loads the image file with the ext4-view crate.
    pub fn ext4_view(&self) -> ext4_view::Ext4 {
        ext4_view::Ext4::load(Box::new(self.bytes())).expect("ext4-view loads the image")
    }
}

/// Seconds since 1970 now.
pub fn now() -> u32 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as u32)
        .unwrap_or(1)
}

/// Syncs `fs`, writes its device back to the image file and checks it with e2fsck.
pub fn finish(mut fs: Ext2<MemDevice>, image: &TestImage) {
    fs.sync().expect("sync");
    let device = fs.into_device();
    fs::write(&image.path, &device.bytes).unwrap();
    image.fsck();
}

/// Syncs and checks like `finish`, but keeps the file system mounted.
pub fn checkpoint(fs: &mut Ext2<MemDevice>, image: &TestImage) {
    fs.sync().expect("sync");
    fs::write(&image.path, &fs.device_mut().bytes).unwrap();
    image.fsck();
}

/// Follows a slash-separated path from the root.
pub fn resolve(fs: &mut Ext2<MemDevice>, path: &str) -> Result<Ino, super::Error> {
    let mut ino = fs.root();
    for name in path.split('/').filter(|name| !name.is_empty()) {
        ino = fs.lookup(ino, name.as_bytes())?;
    }
    Ok(ino)
}

/// Reads a whole file.
pub fn read_all(fs: &mut Ext2<MemDevice>, ino: Ino) -> Vec<u8> {
    let size = fs.stat(ino).unwrap().size as usize;
    let mut data = vec![0u8; size];
    let mut done = 0;
    while done < size {
        let count = fs.read(ino, done as u64, &mut data[done..]).unwrap();
        assert!(count > 0, "short read at {done} of {size}");
        done += count;
    }
    data
}

/// Every name in a directory, in order, with readdir.
pub fn list(fs: &mut Ext2<MemDevice>, dir: Ino) -> Vec<Vec<u8>> {
    let mut names = Vec::new();
    fs.readdir(dir, 0, |entry, _| {
        names.push(entry.name.clone());
        true
    })
    .unwrap();
    names
}

/// Deterministic pseudo-random bytes (a xorshift generator) for file contents.
pub struct Pattern(u64);

impl Pattern {
    pub fn new(seed: u64) -> Pattern {
        Pattern(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }

    pub fn bytes(&mut self, length: usize) -> Vec<u8> {
        (0..length).map(|_| self.next_u64() as u8).collect()
    }
}

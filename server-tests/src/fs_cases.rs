//! The file-system cases: everything through fs-server's ports, as a personality will use
//! them, checked against what was written.

use crate::client::{CHECKSUM_START, Client, Pattern, checksum};
use crate::{Outcome, check, expect};
use alloc::format;
use alloc::vec;
use alloc::vec::Vec;
use interfaces::Error;
use interfaces::fs::open;
use interfaces::io::mode;
use libmach::ipc::{Message, PortName, SendRight, disposition};
use libmach::name_service::{self, NameError};
use libmach::{println, rpc};

const RW: u32 = open::READ | open::WRITE;
const NEW: u32 = open::READ | open::WRITE | open::CREATE;

fn fs_root() -> Result<SendRight, alloc::string::String> {
    name_service::look_up("fs").map_err(|e| format!("look up fs: {e:?}"))
}

pub fn policy() -> Outcome {
    use name_service::Error as E;
    expect(name_service::look_up("host").err(), Some(E::Name(NameError::NotFound)), "host")?;
    let me = libmach::ipc::ReceiveRight::allocate().map_err(|_| "port")?;
    let send = me.make_send().map_err(|_| "send")?;
    for taken in ["blk", "fs", "console", "host"] {
        expect(name_service::register(taken, send.name()).err(), Some(E::Name(NameError::NoRight)), taken)?;
    }
    check(name_service::look_up("fs").is_ok(), "fs is handed to the tests")?;
    check(name_service::look_up("blk").is_ok(), "blk is handed to the tests")?;
    check(name_service::look_up("blk.control").is_ok(), "blk.control is handed to the tests")
}

pub fn files() -> Outcome {
    let root = fs_root()?;
    let r = root.name();
    let mut c = Client::new();
    c.mkdir(r, "/t").map_err(|e| format!("mkdir /t: {e:?}"))?;
    expect(c.mkdir(r, "/t"), Err(Error::Exists), "mkdir twice")?;

    // Create, write, read back, stat.
    let (file, stat) =
        c.open(r, "/t/a", NEW | open::EXCLUSIVE, 0o640).map_err(|e| format!("create: {e:?}"))?;
    expect(stat.mode, mode::REGULAR | 0o640, "mode of a new file")?;
    expect(c.write_at(file.name(), None, b"hello, "), Ok(7), "write")?;
    expect(c.write_at(file.name(), None, b"world"), Ok(5), "second write at the position")?;
    expect(c.read_at(file.name(), Some(0), 100).as_deref(), Ok(&b"hello, world"[..]), "read back")?;
    expect(c.stat(file.name()).map(|s| s.size), Ok(12), "size")?;
    expect(c.open(r, "/t/a", NEW | open::EXCLUSIVE, 0o600).err(), Some(Error::Exists), "O_EXCL")?;

    // The errors a personality will pass on.
    expect(c.open(r, "/t/missing", RW, 0).err(), Some(Error::NoEntry), "ENOENT")?;
    expect(c.open(r, "/t/a/x", RW, 0).err(), Some(Error::NotDir), "ENOTDIR")?;
    expect(c.open(r, "/t", RW, 0).err(), Some(Error::IsDir), "EISDIR on open for writing")?;
    expect(c.unlink(r, "/t"), Err(Error::IsDir), "unlink of a directory")?;
    expect(c.rmdir(r, "/"), Err(Error::Busy), "rmdir /")?;
    let long = "x".repeat(256);
    expect(c.open(r, &format!("/t/{long}"), NEW, 0o600).err(), Some(Error::NameTooLong), "ENAMETOOLONG")?;
    expect(c.rmdir(r, "/t"), Err(Error::NotEmpty), "ENOTEMPTY")?;
    expect(c.rmdir(r, "/t/a"), Err(Error::NotDir), "rmdir of a file")?;

    // Rename within and across directories, replacing the target.
    c.mkdir(r, "/t/d").map_err(|e| format!("mkdir: {e:?}"))?;
    let (b, _) = c.open(r, "/t/b", NEW, 0o600).map_err(|e| format!("create b: {e:?}"))?;
    c.write_at(b.name(), None, b"bee").map_err(|e| format!("write b: {e:?}"))?;
    c.rename(r, "/t/a", "/t/d/a2").map_err(|e| format!("rename across: {e:?}"))?;
    expect(c.stat_path(r, "/t/a", true).err(), Some(Error::NoEntry), "old name gone")?;
    c.rename(r, "/t/b", "/t/d/a2").map_err(|e| format!("rename over: {e:?}"))?;
    expect(
        c.read_at(file.name(), Some(0), 100).as_deref(),
        Ok(&b"hello, world"[..]),
        "open file outlives its name",
    )?;
    let (a2, _) = c.open(r, "/t/d/a2", open::READ, 0).map_err(|e| format!("open a2: {e:?}"))?;
    expect(c.read_at(a2.name(), None, 100).as_deref(), Ok(&b"bee"[..]), "the replacing file")?;
    c.mkdir(r, "/t/e").map_err(|e| format!("mkdir e: {e:?}"))?;
    c.rename(r, "/t/d", "/t/e/d").map_err(|e| format!("move a directory: {e:?}"))?;
    expect(
        c.stat_path(r, "/t/e/d/..", true).map(|s| s.ino),
        c.stat_path(r, "/t/e", true).map(|s| s.ino),
        "..",
    )?;
    expect(c.rename(r, "/t/e", "/t/e/d/x"), Err(Error::InvalidArgument), "a directory into itself")?;

    // Hard links and symbolic links.
    c.link(r, "/t/e/d/a2", "/t/hard").map_err(|e| format!("link: {e:?}"))?;
    expect(c.stat_path(r, "/t/hard", true).map(|s| s.nlink), Ok(2), "nlink after link")?;
    c.unlink(r, "/t/e/d/a2").map_err(|e| format!("unlink: {e:?}"))?;
    expect(c.stat_path(r, "/t/hard", true).map(|s| s.nlink), Ok(1), "nlink after unlink")?;
    expect(c.link(r, "/t/e", "/t/dirlink"), Err(Error::NotPermitted), "hard link to a directory")?;
    c.symlink(r, "hard", "/t/soft").map_err(|e| format!("symlink: {e:?}"))?;
    expect(c.readlink(r, "/t/soft").as_deref(), Ok(&b"hard"[..]), "readlink")?;
    let (via, _) = c.open(r, "/t/soft", open::READ, 0).map_err(|e| format!("open via symlink: {e:?}"))?;
    expect(c.read_at(via.name(), None, 10).as_deref(), Ok(&b"bee"[..]), "read through a symlink")?;
    expect(c.stat_path(r, "/t/soft", false).map(|s| s.mode & mode::TYPE_MASK), Ok(mode::SYMLINK), "lstat")?;
    let far = "/t/e/".repeat(30);
    c.symlink(r, &far, "/t/slow").map_err(|e| format!("slow symlink: {e:?}"))?;
    expect(c.readlink(r, "/t/slow").map(|l| l.len()), Ok(far.len()), "a symlink kept in a block")?;
    c.symlink(r, "loop", "/t/loop").map_err(|e| format!("symlink loop: {e:?}"))?;
    expect(c.open(r, "/t/loop", open::READ, 0).err(), Some(Error::Loop), "ELOOP")?;

    // Sparse files and truncate.
    let (sparse, _) = c.open(r, "/t/sparse", NEW, 0o600).map_err(|e| format!("create sparse: {e:?}"))?;
    let far_offset = 10 << 20;
    c.write_at(sparse.name(), Some(far_offset), b"end").map_err(|e| format!("sparse write: {e:?}"))?;
    let s = c.stat(sparse.name()).map_err(|e| format!("stat: {e:?}"))?;
    expect(s.size, far_offset + 3, "sparse size")?;
    // The data block and the indirect blocks above it: at most three file-system blocks.
    let most = 3 * (s.blksize as u64 / 512);
    check(
        s.blocks <= most,
        &format!("a sparse file holds few blocks: {} sectors, not over {most}", s.blocks),
    )?;
    expect(c.read_at(sparse.name(), Some(4096 * 100), 4096), Ok(vec![0u8; 4096]), "a hole reads as zeros")?;
    c.truncate(sparse.name(), 5).map_err(|e| format!("truncate: {e:?}"))?;
    expect(c.stat(sparse.name()).map(|s| (s.size, s.blocks)), Ok((5, 0)), "truncated to 5 bytes in a hole")?;
    c.sync(r).map_err(|e| format!("sync: {e:?}"))
}

/// A file at `path` of `size` bytes from pattern `seed`, written at `offset` in 4 KiB steps.
fn write_pattern(
    c: &mut Client,
    file: PortName,
    offset: u64,
    size: u64,
    seed: u64,
) -> Result<u64, alloc::string::String> {
    let mut pattern = Pattern::new(seed);
    let mut block = vec![0u8; 4096];
    let mut sum = CHECKSUM_START;
    let mut done = 0;
    while done < size {
        let n = (size - done).min(4096) as usize;
        pattern.fill(&mut block[..n]);
        sum = checksum(sum, &block[..n]);
        let written = c
            .write_at(file, Some(offset + done), &block[..n])
            .map_err(|e| format!("write at {done}: {e:?}"))?;
        expect(written as usize, n, "a whole write")?;
        done += n as u64;
    }
    Ok(sum)
}

fn read_checksum(
    c: &mut Client,
    file: PortName,
    offset: u64,
    size: u64,
) -> Result<u64, alloc::string::String> {
    let mut block = vec![0u8; 4096];
    let mut sum = CHECKSUM_START;
    let mut done = 0;
    while done < size {
        let want = (size - done).min(4096) as usize;
        let n = c
            .read_into(file, offset + done, &mut block[..want])
            .map_err(|e| format!("read at {done}: {e:?}"))?;
        expect(n, want, "a whole read")?;
        sum = checksum(sum, &block[..n]);
        done += n as u64;
    }
    Ok(sum)
}

pub fn big() -> Outcome {
    let root = fs_root()?;
    let r = root.name();
    let mut c = Client::new();
    // On a 1 KiB-block disk the triple-indirect region starts at (12 + 256 + 65536) KiB,
    // about 64.3 MiB: 20 MiB from 50 MiB on crosses into it.
    let (offset, size) = (50u64 << 20, 20u64 << 20);
    let (file, _) = c.open(r, "/big", NEW, 0o644).map_err(|e| format!("create: {e:?}"))?;
    let started = libmach::uptime_ns();
    let written = write_pattern(&mut c, file.name(), offset, size, 7)?;
    c.sync(r).map_err(|e| format!("sync: {e:?}"))?;
    let middle = libmach::uptime_ns();
    let read = read_checksum(&mut c, file.name(), offset, size)?;
    let ended = libmach::uptime_ns();
    expect(read, written, "checksum of 20 MiB read back")?;
    expect(c.read_at(file.name(), Some(offset - 4096), 4096), Ok(vec![0u8; 4096]), "the hole before")?;
    let ms = |ns: u64| ns / 1_000_000;
    println!("fs-big: 20 MiB written in {} ms, read in {} ms", ms(middle - started), ms(ended - middle));
    let stats = c.statistics(r).map_err(|e| format!("statfs: {e:?}"))?;
    println!(
        "fs-big: cache {} hits, {} misses, {} blocks written",
        stats.cache_hits, stats.cache_misses, stats.cache_writes
    );
    Ok(())
}

pub fn directory() -> Outcome {
    let root = fs_root()?;
    let r = root.name();
    let mut c = Client::new();
    c.mkdir(r, "/many").map_err(|e| format!("mkdir: {e:?}"))?;
    let (dir, _) = c.open(r, "/many", open::READ | open::DIRECTORY, 0).map_err(|e| format!("open: {e:?}"))?;
    for i in 0..1000 {
        let (f, _) = c
            .open(dir.name(), &format!("entry-{i:04}"), NEW, 0o600)
            .map_err(|e| format!("create {i}: {e:?}"))?;
        drop(f);
    }
    let listed = c.list(dir.name(), 1024).map_err(|e| format!("readdir: {e:?}"))?;
    expect(listed.len(), 1002, "entries listed (with . and ..)")?;
    for i in 0..1000 {
        let name = format!("entry-{i:04}");
        check(listed.iter().any(|(n, _, _)| n == name.as_bytes()), &format!("{name} listed"))?;
    }
    for i in 0..1000 {
        c.unlink(dir.name(), &format!("entry-{i:04}")).map_err(|e| format!("unlink {i}: {e:?}"))?;
    }
    expect(c.list(dir.name(), 4096).map(|l| l.len()), Ok(2), "emptied")?;
    c.rmdir(r, "/many").map_err(|e| format!("rmdir: {e:?}"))?;
    c.sync(r).map_err(|e| format!("sync: {e:?}"))
}

pub fn full() -> Outcome {
    let root = fs_root()?;
    let r = root.name();
    let mut c = Client::new();
    let (keep, _) = c.open(r, "/keep", NEW, 0o644).map_err(|e| format!("create: {e:?}"))?;
    let kept = write_pattern(&mut c, keep.name(), 0, 1 << 20, 11)?;
    c.sync(r).map_err(|e| format!("sync: {e:?}"))?;
    let (filler, _) = c.open(r, "/filler", NEW, 0o644).map_err(|e| format!("create filler: {e:?}"))?;
    let block = vec![0x5au8; 4096];
    let mut at = 0u64;
    let error = loop {
        match c.write_at(filler.name(), Some(at), &block) {
            Ok(0) => break None,
            Ok(n) => at += n as u64,
            Err(e) => break Some(e),
        }
        if at > 1 << 32 {
            return Err("the disk never filled".into());
        }
    };
    expect(error, Some(Error::NoSpace), "a full disk")?;
    let stats = c.statistics(r).map_err(|e| format!("statfs: {e:?}"))?;
    println!("fs-full: filled after {} KiB; {} blocks free", at / 1024, stats.free_blocks);
    expect(read_checksum(&mut c, keep.name(), 0, 1 << 20), Ok(kept), "the file written before")?;
    expect(c.open(r, "/one-more", NEW, 0o644).map(|_| ()).err(), None::<Error>, "an empty file still fits")
        .or_else(|_| expect(c.open(r, "/one-more", NEW, 0o644).err(), Some(Error::NoSpace), "or ENOSPC"))?;
    drop(filler);
    c.unlink(r, "/filler").map_err(|e| format!("unlink filler: {e:?}"))?;
    // The sync closes what the client let go of first, so the filler's blocks are free.
    c.sync(r).map_err(|e| format!("sync: {e:?}"))?;
    let after = c.statistics(r).map_err(|e| format!("statfs: {e:?}"))?;
    let filler_blocks = at / after.block_size as u64;
    check(
        after.free_blocks >= stats.free_blocks + filler_blocks,
        &format!(
            "the filler's {filler_blocks} blocks came back: {} free before, {} after",
            stats.free_blocks, after.free_blocks
        ),
    )?;
    expect(read_checksum(&mut c, keep.name(), 0, 1 << 20), Ok(kept), "the file written before, after")?;
    c.sync(r).map_err(|e| format!("sync: {e:?}"))
}

/// The crasher thread's stack and what it reports.
static CRASHES: core::sync::atomic::AtomicU32 = core::sync::atomic::AtomicU32::new(0);
const CRASH_COUNT: u32 = 3;

/// The crasher thread: kills the block server through its control port every 400 ms,
/// waiting for the restarted one (a new control port) in between, [`CRASH_COUNT`] times.
extern "C" fn crasher(control: u64) -> ! {
    NEXT_CONTROL.store(control as PortName, core::sync::atomic::Ordering::SeqCst);
    crasher_loop()
}

static NEXT_CONTROL: core::sync::atomic::AtomicU32 = core::sync::atomic::AtomicU32::new(0);

fn crasher_loop() -> ! {
    let mut m = Message::new();
    while CRASHES.load(core::sync::atomic::Ordering::SeqCst) < CRASH_COUNT {
        let control = NEXT_CONTROL.load(core::sync::atomic::Ordering::SeqCst);
        libmach::ipc::sleep_ms(400);
        if rpc::send::<interfaces::blk::Crash>(&mut m, control, disposition::COPY_SEND, &(), &[], 5000)
            .is_ok()
        {
            CRASHES.fetch_add(1, core::sync::atomic::Ordering::SeqCst);
        }
        let mut found = false;
        for _ in 0..3000 {
            libmach::ipc::sleep_ms(10);
            if let Ok(c) = name_service::look_up("blk.control")
                && c.name() != control
            {
                NEXT_CONTROL.store(c.into_name(), core::sync::atomic::Ordering::SeqCst);
                found = true;
                break;
            }
        }
        if !found {
            break;
        }
    }
    CRASHES.fetch_add(100, core::sync::atomic::Ordering::SeqCst);
    libmach::ipc::thread_exit()
}

pub fn restart() -> Outcome {
    let root = fs_root()?;
    let r = root.name();
    let mut c = Client::new();
    // Larger than fs-server's cache (4 MiB of 1 KiB blocks), so every pass reaches the disk.
    let size = 6u64 << 20;
    let (file, _) = c.open(r, "/restart", NEW, 0o644).map_err(|e| format!("create: {e:?}"))?;
    let want = write_pattern(&mut c, file.name(), 0, size, 3)?;
    c.sync(r).map_err(|e| format!("sync: {e:?}"))?;
    let control = name_service::look_up("blk.control").map_err(|e| format!("blk.control: {e:?}"))?;

    let me = libmach::ipc::task_self().map_err(|_| "task_self")?;
    let stack =
        libmach::task::vm_allocate(me, 0, 64 * 1024, mach_abi::protection::WRITE).map_err(|_| "stack")?;
    let _ = libmach::ipc::port_deallocate(me);
    let me = libmach::ipc::task_self().map_err(|_| "task_self")?;
    libmach::ipc::thread_create(me, crasher, stack + 64 * 1024 - 8, control.into_name() as u64)
        .map_err(|_| "crasher thread")?;

    let mut passes = 0;
    let mut block = vec![0u8; 4096];
    let mut slowest: Vec<u64> = Vec::new();
    let mut slowest_read_ns = 0;
    loop {
        // The last pass starts after the last restart: a whole pass on the new driver.
        let crasher_done = CRASHES.load(core::sync::atomic::Ordering::SeqCst) >= 100;
        let mut sum = CHECKSUM_START;
        let mut done = 0;
        while done < size {
            let started = libmach::uptime_ns();
            let n = c
                .read_into(file.name(), done, &mut block)
                .map_err(|e| format!("pass {passes} read at {done}: {e:?}"))?;
            let waited = libmach::uptime_ns() - started;
            slowest_read_ns = slowest_read_ns.max(waited);
            if waited > 50_000_000 {
                slowest.push(waited / 1_000_000);
            }
            expect(n, 4096, "a whole block")?;
            sum = checksum(sum, &block);
            done += 4096;
        }
        expect(sum, want, &format!("checksum of pass {passes}"))?;
        passes += 1;
        if crasher_done {
            expect(CRASHES.load(core::sync::atomic::Ordering::SeqCst) - 100, CRASH_COUNT, "crashes made")?;
            break;
        }
        if passes > 200 {
            return Err("the crasher never finished".into());
        }
    }
    println!(
        "restart: {passes} passes of 6 MiB, every checksum right; the slowest 4 KiB read took {} ms; reads over 50 ms: {slowest:?} ms",
        slowest_read_ns / 1_000_000
    );
    Ok(())
}

/// Instruction counts of fs reads and of sequential transfers, for `make bench`. Under
/// `-icount shift=0` rdtsc counts guest instructions (plus, where the guest waits for the
/// disk, the idle time QEMU lets pass); without icount the millisecond figures are the wall
/// clock's pace under TCG.
pub fn bench() -> Outcome {
    let root = fs_root()?;
    let r = root.name();
    let mut c = Client::new();
    let (file, _) = c.open(r, "/bench", NEW, 0o644).map_err(|e| format!("create: {e:?}"))?;
    let mib = 20u64;
    let size = mib << 20;

    // Sequential write of 20 MiB in 4 KiB requests, then sync (every block reaches the disk).
    let (t0, wall) = (libmach::rdtsc(), libmach::uptime_ns());
    write_pattern(&mut c, file.name(), 0, size, 5)?;
    c.sync(r).map_err(|e| format!("sync: {e:?}"))?;
    let (write_instructions, write_ms) = (libmach::rdtsc() - t0, (libmach::uptime_ns() - wall) / 1_000_000);

    // Sequential read of the same 20 MiB: five times the cache, so nearly all of it misses.
    let (t0, wall) = (libmach::rdtsc(), libmach::uptime_ns());
    read_checksum(&mut c, file.name(), 0, size)?;
    let (read_instructions, read_ms) = (libmach::rdtsc() - t0, (libmach::uptime_ns() - wall) / 1_000_000);

    // One 4 KiB fs.read RPC served from the cache: the same block again and again (the RPC
    // alone: the answer is decoded in the message buffer, not copied out).
    let request = interfaces::io::ReadRequest { count: 4096, at: Some(0), nonblocking: false };
    let reply = libmach::ipc::ReceiveRight::allocate().map_err(|_| "port")?;
    let mut m = Message::new();
    let cached_rpc = |m: &mut Message| -> Outcome {
        match rpc::call::<interfaces::io::Read>(file.name(), &request, &[], reply.name(), m) {
            Ok(Ok(data)) if data.len() == 4096 => Ok(()),
            other => Err(format!("cached read: {other:?}")),
        }
    };
    cached_rpc(&mut m)?;
    let rounds = 200;
    let t0 = libmach::rdtsc();
    for _ in 0..rounds {
        cached_rpc(&mut m)?;
    }
    let cached = (libmach::rdtsc() - t0) / rounds;
    // The same RPC's fixed part: a 1-byte read, and a readiness question (no file system).
    let small = interfaces::io::ReadRequest { count: 1, at: Some(0), nonblocking: false };
    let t0 = libmach::rdtsc();
    for _ in 0..rounds {
        rpc::call::<interfaces::io::Read>(file.name(), &small, &[], reply.name(), &mut m)
            .map_err(|e| format!("small read: {e:?}"))?
            .map_err(|e| format!("small read: {e:?}"))?;
    }
    let one_byte = (libmach::rdtsc() - t0) / rounds;
    let question = interfaces::io::ReadinessRequest { interest: 1, wait: false };
    let t0 = libmach::rdtsc();
    for _ in 0..rounds {
        rpc::call::<interfaces::io::Readiness>(file.name(), &question, &[], reply.name(), &mut m)
            .map_err(|e| format!("readiness: {e:?}"))?
            .map_err(|e| format!("readiness: {e:?}"))?;
    }
    let readiness = (libmach::rdtsc() - t0) / rounds;
    println!(
        "bench-fs: fs RPC with no file-system work (io.readiness): {readiness} instructions; 1-byte cached fs.read: {one_byte}"
    );

    // A 4 KiB read that misses: first another 20 MiB file pushes the first one out of the
    // cache (4,096 blocks: 4 or 16 MiB), then blocks 256 KiB apart (further than a
    // read-ahead run) of the first one.
    let (other, _) = c.open(r, "/bench-evict", NEW, 0o644).map_err(|e| format!("create: {e:?}"))?;
    write_pattern(&mut c, other.name(), 0, size, 6)?;
    c.sync(r).map_err(|e| format!("sync: {e:?}"))?;
    let mut block = vec![0u8; 4096];
    let misses = 32;
    let before = c.statistics(r).map_err(|e| format!("statfs: {e:?}"))?;
    let t0 = libmach::rdtsc();
    for i in 0..misses {
        c.read_into(file.name(), i * (256 << 10), &mut block).map_err(|e| format!("read: {e:?}"))?;
    }
    let missed = (libmach::rdtsc() - t0) / misses;
    let after = c.statistics(r).map_err(|e| format!("statfs: {e:?}"))?;
    println!("bench-fs: cached 4 KiB fs.read RPC: {cached} instructions");
    println!(
        "bench-fs: uncached 4 KiB fs.read (fs-server, block server, device, IRQ and back; {} cache misses in {misses} reads): {missed} instructions",
        after.cache_misses - before.cache_misses
    );
    println!(
        "bench-fs: sequential write of {mib} MiB + sync: {} instructions per MiB, {write_ms} ms",
        write_instructions / mib
    );
    println!(
        "bench-fs: sequential read of {mib} MiB: {} instructions per MiB, {read_ms} ms",
        read_instructions / mib
    );
    Ok(())
}

/// What a hostile client sends: unknown ids, garbage, the largest message there is, rights
/// and memory the server did not ask for, no reply port. Every server answers an error (or
/// drops a message nobody waits for), releases what came with it, and serves on.
pub fn hostile() -> Outcome {
    use interfaces::Error as E;
    use libmach::ipc::{LargestMessage, ReceiveRight, options, port_type, right_type};
    use libmach::rpc::REPLY_BIT;
    let root = fs_root()?;
    let console = name_service::look_up("console").map_err(|e| format!("console: {e:?}"))?;
    let bootstrap = name_service::service().map_err(|e| format!("bootstrap port: {e:?}"))?;
    let reply = ReceiveRight::allocate().map_err(|_| "port")?;
    let mut m = alloc::boxed::Box::new(LargestMessage::new());
    // Send `m` to `to` asking for an answer; the answer's id and decoded error.
    let ask = |m: &mut LargestMessage, to: PortName| -> Result<(u32, Option<E>), alloc::string::String> {
        m.header.remote = to;
        m.header.remote_disposition = disposition::COPY_SEND;
        m.reply_to(reply.name(), disposition::MAKE_SEND_ONCE);
        let opts = options::SEND | options::RECEIVE | options::SEND_TIMEOUT | options::RECEIVE_TIMEOUT;
        m.mach_msg(opts, reply.name(), 10_000).map_err(|e| format!("no answer: {e:?}"))?;
        let error = postcard::from_bytes::<Result<(), E>>(m.data()).ok().and_then(|r| r.err());
        Ok((m.header.id, error))
    };
    for (what, to) in [("fs", root.name()), ("console", console.name())] {
        // An id nobody defined.
        m.start(0, 0, 0x2ff).set_data(b"");
        expect(ask(&mut m, to)?, (0x2ff | REPLY_BIT, Some(E::NotSupported)), &format!("{what}: unknown id"))?;
    }
    // Garbage where an open request should be.
    m.start(0, 0, <interfaces::fs::Open as rpc::Rpc>::ID).set_data(&[0xff; 40]);
    let (id, error) = ask(&mut m, root.name())?;
    expect(
        (id & !REPLY_BIT, error),
        (<interfaces::fs::Open as rpc::Rpc>::ID, Some(E::InvalidArgument)),
        "garbage",
    )?;
    // The largest message there is (16 KiB inline), to fs-server and to bootstrap.
    let big = vec![0xff; mach_abi::ipc::MAX_INLINE_DATA];
    m.start(0, 0, <interfaces::fs::Open as rpc::Rpc>::ID).set_data(&big);
    let (id, error) = ask(&mut m, root.name())?;
    expect(
        (id & !REPLY_BIT, error),
        (<interfaces::fs::Open as rpc::Rpc>::ID, Some(E::InvalidArgument)),
        "16 KiB",
    )?;
    m.start(0, 0, 1).set_data(&big);
    ask(&mut m, bootstrap.name())?;
    check(name_service::look_up("fs").is_ok(), "bootstrap serves on after a 16 KiB message")?;
    // Rights and memory it did not ask for: a receive right (destroyed: our send right to it
    // becomes a dead name), and an out-of-line page (unmapped by the server).
    let given = ReceiveRight::allocate().map_err(|_| "port")?;
    let kept = given.make_send().map_err(|_| "send")?;
    let me = libmach::ipc::task_self().map_err(|_| "task_self")?;
    let page = libmach::task::vm_allocate(me, 0, 4096, mach_abi::protection::WRITE).map_err(|_| "page")?;
    m.start(0, 0, 0x2fe);
    m.push_port(given.into_name(), disposition::MOVE_RECEIVE);
    m.push_ool(page, 4096, 0);
    m.set_data(b"");
    expect(ask(&mut m, root.name())?.1, Some(E::NotSupported), "a request with rights and memory")?;
    expect(port_type(kept.name()), Ok(right_type::DEAD_NAME), "the receive right sent was destroyed")?;
    // No reply port: nothing to answer; the server goes on.
    m.start(root.name(), disposition::COPY_SEND, 0x2fd).set_data(b"x");
    m.send().map_err(|e| format!("one-way send: {e:?}"))?;
    // After all that, an ordinary request still works.
    let mut c = Client::new();
    expect(c.stat_path(root.name(), "/", true).map(|s| s.ino), Ok(2), "fs-server serves on")?;
    Ok(())
}

/// The block server's protocol straight (as fs-server uses it): its geometry, reads of one
/// sector, of a page and of 128 KiB (out of line), a write read back, and the error answers
/// for what is out of range or malformed.
pub fn block() -> Outcome {
    use interfaces::Error as E;
    use interfaces::blk::{self, Data, MAX_TRANSFER, SECTOR_SIZE};
    let server = name_service::look_up("blk").map_err(|e| format!("look up blk: {e:?}"))?;
    let reply = libmach::ipc::ReceiveRight::allocate().map_err(|_| "port")?;
    let mut m = Message::new();
    let s = server.name();
    let geometry = rpc::call::<blk::Info>(s, &(), &[], reply.name(), &mut m)
        .map_err(|e| format!("info: {e:?}"))?
        .map_err(|e| format!("info: {e:?}"))?;
    check(geometry.sectors >= 8192 && !geometry.read_only, "a writable disk of 4 MiB or more")?;
    // The superblock's magic, 0xef53 at byte 1080: sector 2, offset 56.
    let read = |m: &mut Message, sector: u64, count: u32| -> Result<Vec<u8>, E> {
        let answer = rpc::call::<blk::Read>(s, &blk::ReadRequest { sector, count }, &[], reply.name(), m)
            .map_err(|_| E::Io)??;
        match answer {
            Data::Inline(bytes) => Ok(bytes.to_vec()),
            Data::OutOfLine(size) => {
                let region = m.ool(0).ok_or(E::Io)?;
                // SAFETY: the kernel mapped the region's bytes here for this message.
                let bytes =
                    unsafe { core::slice::from_raw_parts(region.address as *const u8, size as usize) }
                        .to_vec();
                let me = libmach::ipc::task_self().map_err(|_| E::Io)?;
                let _ = libmach::task::vm_deallocate(
                    me,
                    region.address,
                    (region.size as u64).next_multiple_of(4096),
                );
                Ok(bytes)
            }
        }
    };
    let sector2 = read(&mut m, 2, 1).map_err(|e| format!("read sector 2: {e:?}"))?;
    expect(sector2.get(56..58), Some(&[0x53u8, 0xef][..]), "the ext2 magic")?;
    let big =
        read(&mut m, 0, (MAX_TRANSFER / SECTOR_SIZE) as u32).map_err(|e| format!("128 KiB read: {e:?}"))?;
    expect(big.len(), MAX_TRANSFER, "a 128 KiB read (out of line)")?;
    expect(big.get(1024 + 56..1024 + 58), Some(&[0x53u8, 0xef][..]), "the magic inside the 128 KiB")?;
    let last = geometry.sectors - 1;
    check(read(&mut m, last, 1).is_ok(), "the last sector")?;
    for (sector, count, what) in [
        (last, 2, "past the end"),
        (geometry.sectors, 1, "at the end"),
        (0, 0, "no sectors"),
        (0, 257, "over 128 KiB"),
        (u64::MAX, 1, "an overflowing sector"),
    ] {
        expect(read(&mut m, sector, count).err(), Some(E::InvalidArgument), what)?;
    }
    // A write of the last sector, read back; then its old contents again.
    let old = read(&mut m, last, 1).map_err(|e| format!("read: {e:?}"))?;
    let new = [0xa5u8; SECTOR_SIZE];
    let write = |m: &mut Message, sector: u64, data: &[u8]| -> Result<(), E> {
        rpc::call::<blk::Write>(
            s,
            &blk::WriteRequest { sector, data: Data::Inline(interfaces::Bytes(data)) },
            &[],
            reply.name(),
            m,
        )
        .map_err(|_| E::Io)?
    };
    write(&mut m, last, &new).map_err(|e| format!("write: {e:?}"))?;
    expect(read(&mut m, last, 1).as_deref(), Ok(&new[..]), "the sector written")?;
    write(&mut m, last, &old).map_err(|e| format!("write back: {e:?}"))?;
    expect(write(&mut m, 0, &new[..100]).err(), Some(E::InvalidArgument), "a write of part of a sector")?;
    expect(write(&mut m, geometry.sectors, &new).err(), Some(E::InvalidArgument), "a write past the end")?;
    let flushed =
        rpc::call::<blk::Flush>(s, &(), &[], reply.name(), &mut m).map_err(|e| format!("flush: {e:?}"))?;
    expect(flushed, Ok(()), "flush")
}

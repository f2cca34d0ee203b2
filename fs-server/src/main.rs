//! fs-server: the file-system server. It finds the block server (the one right bootstrap
//! lets it look up), mounts the ext2 file system on it, registers its root directory port as
//! "fs" (a private name bootstrap hands to personalities and tests only), and serves.
//!
//! The ext2 code is in the library (`fs_server::ext2`, host-tested); the service, the path
//! walk, permissions and the block server connection are in `server/`.
//!
//! Built for the host (as `cargo clippy --all-targets` does), the binary is a stub that says
//! where the server runs; the server's modules exist on the target only.
#![cfg_attr(target_os = "none", no_std)]
#![cfg_attr(target_os = "none", no_main)]

#[cfg(target_os = "none")]
extern crate alloc;

#[cfg(target_os = "none")]
mod server;

#[cfg(not(target_os = "none"))]
fn main() {
    eprintln!("fs-server: the file-system server runs in Machina (build it for x86_64-unknown-none)");
    std::process::exit(1);
}

#[cfg(target_os = "none")]
use {fs_server::ext2::Ext2, libmach::println, server::FileServer, server::block_client::BlockClient};

#[cfg(target_os = "none")]
libmach::entry!(main);

/// The file system as the server holds it.
#[cfg(target_os = "none")]
pub type Fs = Ext2<BlockClient>;

#[cfg(target_os = "none")]
/// Blocks the cache holds (4 MiB of 1 KiB blocks, 16 MiB of 4 KiB ones).
const CACHE_BLOCKS: usize = 4096;

#[cfg(target_os = "none")]
fn main(_args: &str) -> u64 {
    let device = match BlockClient::connect() {
        Ok(d) => d,
        Err(why) => {
            println!("cannot reach the block server: {why}");
            return 1;
        }
    };
    let sectors = device.sectors;
    let mut fs = match Ext2::mount(device, CACHE_BLOCKS) {
        Ok(fs) => fs,
        Err(e) => {
            println!("cannot mount the disk: {e}");
            return 1;
        }
    };
    fs.set_time((libmach::realtime_ns() / 1_000_000_000) as u32);
    let stats = fs.statfs().ok();
    let (mut server, root) = match FileServer::new(fs) {
        Ok(s) => s,
        Err(e) => {
            println!("cannot make ports: {e:?}");
            return 1;
        }
    };
    if let Err(e) = libmach::name_service::register("fs", root.name()) {
        println!("cannot register \"fs\": {e:?}");
        return 1;
    }
    if let Some(s) = stats {
        println!(
            "ext2 on blk: {} MiB disk, {} KiB blocks, {} of {} blocks free, {} inodes free; serving \"fs\"",
            sectors / 2048,
            s.block_size / 1024,
            s.free_blocks,
            s.blocks,
            s.free_inodes
        );
    }
    server.run()
}

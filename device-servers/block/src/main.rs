//! The block server: drives the virtio-blk disk (PCI, through virtio-drivers 0.13) from user
//! space and serves it with the `blk` protocol (interfaces::blk).
//!
//! Start-up: the host port from bootstrap's name service (answered to drivers only), the PCI
//! configuration ports, the device found and initialised, its interrupt line registered to a
//! port of ours; then two ports in one port set, registered as "blk" (the device: fs-server
//! holds it) and "blk.control" (statistics and fault injection), and the message loop.
//!
//! Files: `pci.rs` (configuration space, the device, its BARs), `hal.rs` (virtio-drivers' Hal:
//! DMA, device memory, share/unshare), `disk.rs` (requests and their interrupts), `serve.rs`
//! (the protocol). The driver keeps no state a restart cannot rebuild: bootstrap restarts it
//! under the same names when it dies, and clients look it up again.
//!
//! This program must never panic on device or message input: what it cannot serve it answers
//! with an error, and a device it cannot drive safely ends the task (to be restarted).
#![no_std]
#![no_main]

extern crate alloc;

mod disk;
mod hal;
mod pci;
mod serve;

use libmach::ipc::{ReceiveRight, port_allocate_set, port_move_member, task_self};
use libmach::{name_service, println};

libmach::entry!(main);

fn main(_args: &str) -> u64 {
    match start() {
        Ok(mut server) => server.run(),
        Err(why) => {
            println!("cannot start: {why}");
            1
        }
    }
}

fn start() -> Result<serve::Server, &'static str> {
    let host = name_service::look_up("host").map_err(|_| "bootstrap gave no host port")?.into_name();
    let me = task_self().map_err(|_| "task_self")?;
    hal::init(host, me)?;
    let found = pci::open(host, me)?;
    let (vendor, device_id) = (found.info.vendor_id, found.info.device_id);
    let disk = disk::Disk::new(found, host)?;

    let device = ReceiveRight::allocate().map_err(|_| "no port")?;
    let control = ReceiveRight::allocate().map_err(|_| "no port")?;
    let set = port_allocate_set().map_err(|_| "no port set")?;
    port_move_member(device.name(), set).map_err(|_| "port set")?;
    port_move_member(control.name(), set).map_err(|_| "port set")?;

    let sectors = disk.sectors();
    println!(
        "virtio-blk {vendor:04x}:{device_id:04x} {sectors} sectors ({} MiB){}, IRQ {}, serving \"blk\"",
        sectors / 2048,
        if disk.read_only() { " read-only" } else { "" },
        disk.irq()
    );
    for (name, port) in [("blk.control", &control), ("blk", &device)] {
        let send = port.make_send().map_err(|_| "make_send")?;
        name_service::register(name, send.name()).map_err(|_| "bootstrap refused the name")?;
    }
    Ok(serve::Server::new(disk, device, control, set))
}

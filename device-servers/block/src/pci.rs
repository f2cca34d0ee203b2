//! PCI for the block server: configuration space through I/O ports 0xCF8/0xCFC (mechanism 1,
//! granted by `host_io_ports`), finding the virtio-blk function, turning on memory decoding and
//! bus mastering, mapping its memory BARs and reading its legacy interrupt line.
//!
//! This module must never touch an I/O port outside 0xCF8..0xD00 (the only ones granted), and
//! never write a configuration register other than the command register (virtio-drivers sizes
//! the BARs itself and puts them back).

use crate::hal;
use libmach::device::io_ports;
use libmach::ipc::PortName;
use virtio_drivers::transport::pci::bus::{
    BarInfo, Command, ConfigurationAccess, DeviceFunction, DeviceFunctionInfo, PciRoot,
};

const CONFIG_ADDRESS: u16 = 0xcf8;
const CONFIG_DATA: u16 = 0xcfc;
const VIRTIO_VENDOR: u16 = 0x1af4;
/// virtio-blk: the transitional id and the modern one (0x1040 + device type 2).
const BLOCK_DEVICES: [u16; 2] = [0x1001, 0x1042];
/// The interrupt line (byte 0) and pin (byte 1) register.
const INTERRUPT_REGISTER: u8 = 0x3c;

/// Configuration mechanism 1: an address written to 0xCF8 selects the dword 0xCFC reads or
/// writes.
pub struct PortCam;

fn address(df: DeviceFunction, offset: u8) -> u32 {
    0x8000_0000
        | (df.bus as u32) << 16
        | ((df.device & 0x1f) as u32) << 11
        | ((df.function & 0x7) as u32) << 8
        | (offset & 0xfc) as u32
}

/// # Safety
/// `port` must be granted to this task (0xCF8 or 0xCFC here).
unsafe fn outl(port: u16, value: u32) {
    // SAFETY: delegated to the caller; the kernel's I/O bitmap allows the port.
    unsafe { core::arch::asm!("out dx, eax", in("dx") port, in("eax") value, options(nomem, nostack)) };
}

/// # Safety
/// As [`outl`].
unsafe fn inl(port: u16) -> u32 {
    let value: u32;
    // SAFETY: delegated to the caller.
    unsafe { core::arch::asm!("in eax, dx", out("eax") value, in("dx") port, options(nomem, nostack)) };
    value
}

impl ConfigurationAccess for PortCam {
    fn read_word(&self, df: DeviceFunction, offset: u8) -> u32 {
        // SAFETY: 0xCF8..0xD00 were granted to this task in `open` before any PortCam exists;
        // the server is single-threaded, so the address/data pair is not interleaved.
        unsafe {
            outl(CONFIG_ADDRESS, address(df, offset));
            inl(CONFIG_DATA)
        }
    }

    fn write_word(&mut self, df: DeviceFunction, offset: u8, data: u32) {
        // SAFETY: as in read_word.
        unsafe {
            outl(CONFIG_ADDRESS, address(df, offset));
            outl(CONFIG_DATA, data);
        }
    }

    unsafe fn unsafe_clone(&self) -> Self {
        PortCam
    }
}

/// The virtio-blk function found on the bus.
pub struct Found {
    pub root: PciRoot<PortCam>,
    pub function: DeviceFunction,
    pub info: DeviceFunctionInfo,
    /// The legacy interrupt line the firmware routed pin A to (0xff: none).
    pub irq: u8,
}

/// Find the virtio-blk device on bus 0 (the `-machine pc` and q35 root bus; no bridges are
/// followed), enable it and map its memory BARs.
pub fn open(host: PortName, me: PortName) -> Result<Found, &'static str> {
    io_ports(host, me, CONFIG_ADDRESS, 8).map_err(|_| "no grant of the PCI configuration ports")?;
    let mut root = PciRoot::new(PortCam);
    let (function, info) = root
        .enumerate_bus(0)
        .find(|(_, info)| info.vendor_id == VIRTIO_VENDOR && BLOCK_DEVICES.contains(&info.device_id))
        .ok_or("no virtio-blk device on PCI bus 0")?;

    // Memory decoding and bus mastering on (DMA), INTx not disabled.
    let (_, command) = root.get_status_command(function);
    let command = (command | Command::MEMORY_SPACE | Command::BUS_MASTER) - Command::INTERRUPT_DISABLE;
    root.set_command(function, command);

    let bars = root.bars(function).map_err(|_| "unreadable BARs")?;
    for bar in bars.iter().flatten() {
        if let BarInfo::Memory { address, size, .. } = *bar
            && address != 0
            && size != 0
        {
            hal::map_device_memory(address, size)?;
        }
    }
    let irq = (PortCam.read_word(function, INTERRUPT_REGISTER) & 0xff) as u8;
    Ok(Found { root, function, info, irq })
}

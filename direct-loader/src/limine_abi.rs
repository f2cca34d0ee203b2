//! The Limine boot protocol as the loader writes it: request identifiers and the response
//! structures, laid out as in the protocol specification (and the `limine` crate 0.5 the
//! kernel reads them with). Only what the loader answers is here.

/// The two words every request identifier starts with.
pub const COMMON_MAGIC: [u64; 2] = [0xc7b1dd30df4c8b88, 0x0a82e883a194f07b];

/// The base-revision tag: `[BASE_REVISION_MAGIC_0, BASE_REVISION_MAGIC_1 (overwritten with
/// the revision loaded), requested revision (set to 0 when supported)]`.
pub const BASE_REVISION_MAGIC: [u64; 2] = [0xf9562b2d5c95a6c8, 0x6a7b384944536bdc];
/// Highest base revision this loader honours: the same as Limine 8.x.
pub const MAX_BASE_REVISION: u64 = 2;

pub const BOOTLOADER_INFO: [u64; 2] = [0xf55038d8e2a1202f, 0x279426fcf5f59740];
pub const HHDM: [u64; 2] = [0x48dcf1cb8ad2b852, 0x63984e959a98244b];
pub const MEMORY_MAP: [u64; 2] = [0x67cf3d9d378a806f, 0xe304acdfc50c3c62];
pub const EXECUTABLE_FILE: [u64; 2] = [0xad97e90e83f1ed67, 0x31eb5d1c5ff23b69];
pub const MODULES: [u64; 2] = [0x3e7e279702be32af, 0xca1c4f3bd1280cee];
pub const RSDP: [u64; 2] = [0xc5e77b6b397e7b43, 0x27637845accdcf3c];
pub const EXECUTABLE_ADDRESS: [u64; 2] = [0x71ba76863cc55f63, 0xb2644a48c516a487];
pub const EXECUTABLE_CMDLINE: [u64; 2] = [0x4b161536e598651e, 0xb390ad4a2f1f303a];

/// Offset of the response pointer inside every request (after id[4] and revision).
pub const RESPONSE_OFFSET: usize = 5 * 8;

/// Where the higher-half direct map starts (4-level paging), as Limine puts it.
pub const HHDM_OFFSET: u64 = 0xffff_8000_0000_0000;

#[repr(C)]
pub struct BootloaderInfoResponse {
    pub revision: u64,
    pub name: u64,
    pub version: u64,
}

#[repr(C)]
pub struct HhdmResponse {
    pub revision: u64,
    pub offset: u64,
}

#[repr(C)]
pub struct MemoryMapEntry {
    pub base: u64,
    pub length: u64,
    pub kind: u64,
}

#[repr(C)]
pub struct MemoryMapResponse {
    pub revision: u64,
    pub entry_count: u64,
    /// Pointer to an array of pointers to [`MemoryMapEntry`].
    pub entries: u64,
}

/// A file handed to the kernel (its own executable, or a module).
#[repr(C)]
pub struct File {
    pub revision: u64,
    pub address: u64,
    pub size: u64,
    pub path: u64,
    pub cmdline: u64,
    pub media_type: u32,
    pub unused: u32,
    pub tftp_ip: u32,
    pub tftp_port: u32,
    pub partition_index: u32,
    pub mbr_disk_id: u32,
    pub gpt_disk_uuid: [u8; 16],
    pub gpt_part_uuid: [u8; 16],
    pub part_uuid: [u8; 16],
}

#[repr(C)]
pub struct ExecutableFileResponse {
    pub revision: u64,
    pub file: u64,
}

#[repr(C)]
pub struct ModuleResponse {
    pub revision: u64,
    pub module_count: u64,
    /// Pointer to an array of pointers to [`File`].
    pub modules: u64,
}

#[repr(C)]
pub struct RsdpResponse {
    pub revision: u64,
    pub address: u64,
}

#[repr(C)]
pub struct ExecutableAddressResponse {
    pub revision: u64,
    pub physical_base: u64,
    pub virtual_base: u64,
}

#[repr(C)]
pub struct ExecutableCmdlineResponse {
    pub revision: u64,
    pub cmdline: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layouts_match_the_protocol() {
        assert_eq!(core::mem::size_of::<File>(), 8 * 5 + 4 * 6 + 16 * 3);
        assert_eq!(core::mem::size_of::<MemoryMapEntry>(), 24);
        assert_eq!(core::mem::size_of::<ModuleResponse>(), 24);
    }
}

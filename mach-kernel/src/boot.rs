//! What the boot loader tells the kernel, through the Limine protocol (crate `limine` 0.5).
//! Real Limine 8.x and the direct loader both answer these requests. Base revision 2 is the
//! highest both honour.

use limine::BaseRevision;
use limine::request::{
    BootloaderInfoRequest, ExecutableAddressRequest, ExecutableCmdlineRequest, HhdmRequest, MemoryMapRequest,
    ModuleRequest, RequestsEndMarker, RequestsStartMarker, RsdpRequest,
};

pub const REQUESTED_BASE_REVISION: u64 = 2;

#[used]
#[unsafe(link_section = ".requests_start")]
static REQUESTS_START: RequestsStartMarker = RequestsStartMarker::new();
#[used]
#[unsafe(link_section = ".requests")]
pub static BASE_REVISION: BaseRevision = BaseRevision::with_revision(REQUESTED_BASE_REVISION);
#[used]
#[unsafe(link_section = ".requests")]
pub static BOOTLOADER_INFO: BootloaderInfoRequest = BootloaderInfoRequest::new();
#[used]
#[unsafe(link_section = ".requests")]
pub static MEMORY_MAP: MemoryMapRequest = MemoryMapRequest::new();
#[used]
#[unsafe(link_section = ".requests")]
pub static HHDM: HhdmRequest = HhdmRequest::new();
#[used]
#[unsafe(link_section = ".requests")]
pub static MODULES: ModuleRequest = ModuleRequest::new();
#[used]
#[unsafe(link_section = ".requests")]
pub static EXECUTABLE_ADDRESS: ExecutableAddressRequest = ExecutableAddressRequest::new();
#[used]
#[unsafe(link_section = ".requests")]
pub static EXECUTABLE_CMDLINE: ExecutableCmdlineRequest = ExecutableCmdlineRequest::new();
#[used]
#[unsafe(link_section = ".requests")]
pub static RSDP: RsdpRequest = RsdpRequest::new();
#[used]
#[unsafe(link_section = ".requests_end")]
static REQUESTS_END: RequestsEndMarker = RequestsEndMarker::new();

/// A boot module: its path in the boot volume, command line and bytes.
pub struct BootModule {
    pub path: &'static str,
    pub cmdline: &'static str,
    pub bytes: &'static [u8],
}

pub fn module(index: usize) -> Option<BootModule> {
    let file = MODULES.get_response()?.modules().get(index)?;
    // SAFETY: the loader placed the module at `addr` with `size` bytes, in memory it marked
    // executable-and-modules, which the kernel never reuses.
    let bytes = unsafe { core::slice::from_raw_parts(file.addr(), file.size() as usize) };
    Some(BootModule {
        path: file.path().to_str().unwrap_or("?"),
        cmdline: file.string().to_str().unwrap_or(""),
        bytes,
    })
}

pub fn module_count() -> usize {
    MODULES.get_response().map_or(0, |r| r.modules().len())
}

pub fn cmdline() -> &'static str {
    EXECUTABLE_CMDLINE.get_response().and_then(|r| r.cmdline().to_str().ok()).unwrap_or("")
}

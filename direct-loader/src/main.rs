//! The direct loader: QEMU starts it with `-kernel` (multiboot 1), and it boots mach-kernel
//! exactly as Limine would, so the kernel speaks one boot protocol only.
//!
//! QEMU gives it the files as multiboot modules (`-initrd "limine.conf,kernel,module,..."`).
//! It reads `limine.conf`, picks the entry (`-append entry=N`, else the file's default), loads
//! the kernel's PT_LOAD segments at their higher-half addresses, builds page tables (identity
//! map of the low 4 GiB, HHDM, kernel), answers every Limine request it finds in the kernel
//! image, and jumps to the kernel's entry with a 64 KiB stack.
//!
//! Errors are printed on QEMU's debugcon (port 0xE9, the kernel log) and end QEMU through
//! isa-debug-exit with the failure code. It never returns to its caller.
#![no_std]
#![no_main]

mod entry;

use core::fmt::Write;
use direct_loader::config::{self, BootEntry};
use direct_loader::limine_abi as abi;
use direct_loader::memory_map::{self, Region, RegionKind};

const PAGE: u64 = 4096;
const MAX_FILES: usize = 24;
const MAX_REGIONS: usize = 128;
const KERNEL_STACK_SIZE: u64 = 64 * 1024;
/// isa-debug-exit value for "boot failed" (QEMU exits with 35), the kernel's panic code too.
const EXIT_FAILURE: u8 = mach_abi::qemu_exit::FAILURE;

/// The kernel log channel: QEMU's debugcon.
struct DebugCon;

impl Write for DebugCon {
    fn write_str(&mut self, s: &str) -> core::fmt::Result {
        for byte in s.bytes() {
            // SAFETY: port 0xE9 is QEMU's debugcon; writing it has no other effect.
            unsafe { core::arch::asm!("out 0xe9, al", in("al") byte, options(nomem, nostack)) };
        }
        Ok(())
    }
}

macro_rules! log {
    ($($arg:tt)*) => {{ let _ = writeln!(DebugCon, $($arg)*); }};
}

fn fail(args: core::fmt::Arguments) -> ! {
    let _ = writeln!(DebugCon, "direct-loader: error: {args}");
    // SAFETY: isa-debug-exit at 0xf4 ends QEMU; without the device the write is ignored.
    unsafe { core::arch::asm!("out 0xf4, al", in("al") EXIT_FAILURE, options(nomem, nostack)) };
    loop {
        // SAFETY: halting with interrupts off stops this CPU for good.
        unsafe { core::arch::asm!("cli; hlt", options(nomem, nostack)) };
    }
}

macro_rules! bail {
    ($($arg:tt)*) => { fail(format_args!($($arg)*)) };
}

#[panic_handler]
fn panic(info: &core::panic::PanicInfo) -> ! {
    bail!("panic: {info}")
}

/// A file QEMU loaded: its name as given to `-initrd`, its arguments, and its bytes.
#[derive(Clone, Copy)]
struct BootFile {
    name: &'static str,
    bytes: &'static [u8],
    start: u64,
}

impl BootFile {
    fn file_name(&self) -> &'static str {
        self.name.rsplit('/').next().unwrap_or(self.name)
    }
}

/// Read a NUL-terminated string at a physical address (identity mapped).
///
/// # Safety
/// `address` must point at a NUL-terminated string in identity-mapped memory.
unsafe fn c_str(address: u32) -> &'static str {
    if address == 0 {
        return "";
    }
    let start = address as usize as *const u8;
    let mut len = 0;
    // SAFETY: the caller promises a terminated string.
    while unsafe { *start.add(len) } != 0 {
        len += 1;
    }
    // SAFETY: the bytes were just scanned and stay in place for the loader's life.
    let bytes = unsafe { core::slice::from_raw_parts(start, len) };
    core::str::from_utf8(bytes).unwrap_or("")
}

/// The multiboot 1 information structure, as QEMU fills it.
#[repr(C)]
struct MultibootInfo {
    flags: u32,
    mem_lower: u32,
    mem_upper: u32,
    boot_device: u32,
    cmdline: u32,
    mods_count: u32,
    mods_addr: u32,
    syms: [u32; 4],
    mmap_length: u32,
    mmap_addr: u32,
}

#[repr(C)]
struct MultibootModule {
    start: u32,
    end: u32,
    string: u32,
    reserved: u32,
}

/// Hands out zeroed, page-aligned physical memory from one usable region, upwards.
struct BumpAllocator {
    next: u64,
    limit: u64,
    start: u64,
}

impl BumpAllocator {
    fn alloc(&mut self, bytes: u64) -> u64 {
        let size = bytes.next_multiple_of(PAGE);
        let base = self.next;
        if base + size > self.limit {
            bail!("out of memory below 4 GiB for the boot structures");
        }
        self.next += size;
        // SAFETY: [base, base+size) is usable RAM below 4 GiB, identity mapped, owned by us.
        unsafe { core::ptr::write_bytes(base as *mut u8, 0, size as usize) };
        base
    }

    /// Place a value (or bytes) in loader memory and return its physical address.
    fn store<T>(&mut self, value: T) -> u64 {
        let at = self.alloc(core::mem::size_of::<T>() as u64);
        // SAFETY: freshly allocated, aligned to a page, large enough.
        unsafe { (at as *mut T).write(value) };
        at
    }

    fn store_str(&mut self, s: &str) -> u64 {
        let at = self.alloc(s.len() as u64 + 1);
        // SAFETY: freshly allocated with room for the terminator (already zero).
        unsafe { core::ptr::copy_nonoverlapping(s.as_ptr(), at as *mut u8, s.len()) };
        at
    }
}

fn hhdm(physical: u64) -> u64 {
    physical + abi::HHDM_OFFSET
}

/// Four-level page tables built in loader memory.
struct PageTables<'a> {
    pml4: u64,
    memory: &'a mut BumpAllocator,
    nx: u64,
}

const PRESENT: u64 = 1;
const WRITABLE: u64 = 1 << 1;
const HUGE: u64 = 1 << 7;
const NO_EXECUTE: u64 = 1 << 63;
const ADDRESS_MASK: u64 = 0x000f_ffff_ffff_f000;

impl PageTables<'_> {
    /// The table the entry at `table[index]` points to, made if absent.
    fn next_table(&mut self, table: u64, index: u64) -> u64 {
        let entry = (table + index * 8) as *mut u64;
        // SAFETY: `table` is a page-table page this loader allocated (identity mapped).
        unsafe {
            if *entry & PRESENT == 0 {
                *entry = self.memory.alloc(PAGE) | PRESENT | WRITABLE;
            }
            *entry & ADDRESS_MASK
        }
    }

    fn map(&mut self, virt: u64, phys: u64, flags: u64, huge: bool) {
        let index = |level: u32| (virt >> (12 + 9 * level)) & 511;
        let pdpt = self.next_table(self.pml4, index(3));
        let pd = self.next_table(pdpt, index(2));
        let (table, level_flags) = if huge { (pd, HUGE) } else { (self.next_table(pd, index(1)), 0) };
        let slot = if huge { index(1) } else { index(0) };
        // SAFETY: `table` is one of our page-table pages; `slot` < 512.
        unsafe { *((table + slot * 8) as *mut u64) = phys | flags | level_flags | PRESENT };
    }

    fn map_range_2m(&mut self, virt: u64, phys: u64, bytes: u64) {
        let mut offset = 0;
        while offset < bytes {
            self.map(virt + offset, phys + offset, WRITABLE | self.nx, true);
            offset += 2 << 20;
        }
    }
}

#[unsafe(no_mangle)]
extern "C" fn loader_main(magic: u32, info_address: u32) -> ! {
    if magic != 0x2BAD_B002 {
        bail!("not started by a multiboot loader (eax={magic:#x})");
    }
    // SAFETY: QEMU passes a valid multiboot information structure in low memory.
    let info = unsafe { &*(info_address as usize as *const MultibootInfo) };
    if info.flags & (1 << 6) == 0 || info.flags & (1 << 3) == 0 {
        bail!("QEMU gave no memory map or no modules; start with -initrd \"limine.conf,...\"");
    }

    // The files QEMU loaded.
    let mut files = [BootFile { name: "", bytes: &[], start: 0 }; MAX_FILES];
    let count = info.mods_count as usize;
    if count > MAX_FILES {
        bail!("{count} modules given; at most {MAX_FILES}");
    }
    let mut highest_module_end = 0u64;
    for (i, file) in files.iter_mut().enumerate().take(count) {
        // SAFETY: mods_addr points at mods_count module entries.
        let m = unsafe { &*((info.mods_addr as usize + i * 16) as *const MultibootModule) };
        // SAFETY: module strings are terminated strings from QEMU.
        let whole = unsafe { c_str(m.string) };
        let name = whole.split(' ').next().unwrap_or("");
        let len = m.end.saturating_sub(m.start) as usize;
        // SAFETY: QEMU loaded the module at [start, end).
        let bytes = unsafe { core::slice::from_raw_parts(m.start as usize as *const u8, len) };
        *file = BootFile { name, bytes, start: m.start as u64 };
        highest_module_end = highest_module_end.max(m.end as u64);
    }
    let files = &files[..count];

    // The configuration and the entry to boot.
    let conf_file = files
        .iter()
        .find(|f| f.file_name() == "limine.conf")
        .unwrap_or_else(|| bail!("no limine.conf among the -initrd files"));
    let conf_text =
        core::str::from_utf8(conf_file.bytes).unwrap_or_else(|_| bail!("limine.conf is not UTF-8"));
    // SAFETY: the command line is a terminated string when flag bit 2 is set.
    let loader_cmdline = if info.flags & (1 << 2) != 0 { unsafe { c_str(info.cmdline) } } else { "" };
    let choice = loader_cmdline
        .split(' ')
        .find_map(|word| word.strip_prefix("entry="))
        .map(|n| n.parse().unwrap_or_else(|_| bail!("entry={n}: not a number")));
    let entry = config::select_entry(conf_text, choice).unwrap_or_else(|e| bail!("{e}"));
    let find = |path: &str| -> BootFile {
        let wanted = path.rsplit('/').next().unwrap_or(path);
        *files
            .iter()
            .find(|f| f.file_name() == wanted)
            .unwrap_or_else(|| bail!("{path} (named by limine.conf) was not given to QEMU's -initrd"))
    };
    let kernel_file = find(entry.kernel_path);

    // Memory for everything the loader builds: the usable region above the modules.
    let mut firmware_regions = [Region::new(0, 0, RegionKind::Reserved); MAX_REGIONS];
    let mut firmware_count = 0;
    for (slot, region) in firmware_regions.iter_mut().zip(firmware_memory_map(info)) {
        *slot = region;
        firmware_count += 1;
    }
    let firmware_regions = &firmware_regions[..firmware_count];
    unsafe extern "C" {
        static __loader_start: u8;
        static __loader_bss_end: u8;
    }
    let loader_start = &raw const __loader_start as u64;
    let loader_end = &raw const __loader_bss_end as u64;
    let free_start = loader_end.max(highest_module_end).next_multiple_of(PAGE);
    let region = firmware_regions
        .iter()
        .find(|r| r.kind == RegionKind::Usable && r.base <= free_start && free_start < r.base + r.length)
        .unwrap_or_else(|| bail!("no usable memory after the modules at {free_start:#x}"));
    let mut memory = BumpAllocator {
        next: free_start,
        limit: (region.base + region.length).min(1 << 32),
        start: free_start,
    };

    // The kernel's segments, placed contiguously.
    let kernel = load_kernel(kernel_file.bytes, &mut memory);
    let kernel_block_end = memory.next;
    let boot_data_start = memory.next;

    // Page tables: identity of the low 4 GiB (this code keeps running after the switch),
    // the HHDM over all memory, and the kernel at its link addresses.
    let nx = if cpu_has_nx() { NO_EXECUTE } else { 0 };
    let pml4 = memory.alloc(PAGE);
    // RAM and the low 4 GiB; not reserved ranges far above (QEMU reports one below 1 TiB).
    let top_of_memory = firmware_regions
        .iter()
        .filter(|r| r.kind != RegionKind::Reserved)
        .map(|r| r.base + r.length)
        .max()
        .unwrap_or(0)
        .max(1 << 32)
        .next_multiple_of(2 << 20);
    let mut tables = PageTables { pml4, memory: &mut memory, nx };
    let mut address = 0;
    while address < (1 << 32) {
        tables.map(address, address, WRITABLE, true);
        address += 2 << 20;
    }
    tables.map_range_2m(abi::HHDM_OFFSET, 0, top_of_memory);
    for segment in kernel.segments.iter().take(kernel.segment_count) {
        let mut page = 0;
        while page < segment.size {
            let flags = if segment.writable { WRITABLE } else { 0 } | if segment.executable { 0 } else { nx };
            tables.map(segment.virt + page, segment.phys + page, flags, false);
            page += PAGE;
        }
    }

    let stack_base = memory.alloc(KERNEL_STACK_SIZE);
    let stack_top = hhdm(stack_base + KERNEL_STACK_SIZE);

    // Responses. The memory map goes last: it describes the memory the others use.
    let mut answers = Answers::default();
    let name = hhdm(memory.store_str("machina-direct-loader"));
    let version = hhdm(memory.store_str(env!("CARGO_PKG_VERSION")));
    answers.bootloader_info = memory.store(abi::BootloaderInfoResponse { revision: 0, name, version });
    answers.hhdm = memory.store(abi::HhdmResponse { revision: 0, offset: abi::HHDM_OFFSET });
    answers.executable_address = memory.store(abi::ExecutableAddressResponse {
        revision: 0,
        physical_base: kernel.physical_base,
        virtual_base: kernel.virtual_base,
    });
    let cmdline = hhdm(memory.store_str(entry.cmdline));
    answers.executable_cmdline = memory.store(abi::ExecutableCmdlineResponse { revision: 0, cmdline });
    let kernel_as_file = make_file(&mut memory, kernel_file, entry.kernel_path, entry.cmdline);
    answers.executable_file =
        memory.store(abi::ExecutableFileResponse { revision: 0, file: hhdm(kernel_as_file) });
    answers.modules = module_response(&mut memory, &entry, &find);
    if let Some(rsdp) = find_rsdp() {
        answers.rsdp = memory.store(abi::RsdpResponse { revision: 0, address: hhdm(rsdp) });
    }
    let map_pointers = memory.alloc((MAX_REGIONS * 8) as u64);
    let map_entries = memory.alloc((MAX_REGIONS * core::mem::size_of::<abi::MemoryMapEntry>()) as u64);
    let map_response = memory.alloc(core::mem::size_of::<abi::MemoryMapResponse>() as u64);
    answers.memory_map = map_response;

    let mut claims = [Region::new(0, 0, RegionKind::Reserved); MAX_FILES + 3];
    claims[0] = Region::new(loader_start, loader_end - loader_start, RegionKind::BootloaderReclaimable);
    claims[1] = Region::new(memory.start, kernel_block_end - memory.start, RegionKind::ExecutableAndModules);
    claims[2] =
        Region::new(boot_data_start, memory.next - boot_data_start, RegionKind::BootloaderReclaimable);
    for (claim, file) in claims[3..].iter_mut().zip(files) {
        let kind = if file.start == conf_file.start {
            RegionKind::BootloaderReclaimable
        } else {
            RegionKind::ExecutableAndModules
        };
        *claim = Region::new(file.start, (file.bytes.len() as u64).next_multiple_of(PAGE), kind);
    }
    let mut converted = [Region::new(0, 0, RegionKind::Reserved); MAX_REGIONS];
    let region_count = memory_map::convert(firmware_regions, &claims[..3 + files.len()], &mut converted)
        .unwrap_or_else(|e| bail!("memory map: {e:?}"));
    for (i, region) in converted[..region_count].iter().enumerate() {
        let entry_at = map_entries + (i * core::mem::size_of::<abi::MemoryMapEntry>()) as u64;
        // SAFETY: both arrays were allocated with MAX_REGIONS slots.
        unsafe {
            (entry_at as *mut abi::MemoryMapEntry).write(abi::MemoryMapEntry {
                base: region.base,
                length: region.length,
                kind: region.kind as u64,
            });
            ((map_pointers + i as u64 * 8) as *mut u64).write(hhdm(entry_at));
        }
    }
    // SAFETY: allocated above with the right size.
    unsafe {
        (map_response as *mut abi::MemoryMapResponse).write(abi::MemoryMapResponse {
            revision: 0,
            entry_count: region_count as u64,
            entries: hhdm(map_pointers),
        })
    };

    answer_requests(&kernel, &answers);
    log!("direct-loader: booting \"{}\" ({})", entry.name, entry.kernel_path);

    // SAFETY: the new tables map this code (identity), the stack (HHDM) and the kernel; the
    // kernel entry never returns. Interrupts are off, as the Limine protocol requires.
    unsafe {
        core::arch::asm!(
            "mov cr3, {pml4}",
            "mov rsp, {stack}",
            "push 0",
            "xor ebp, ebp",
            "jmp {entry}",
            pml4 = in(reg) pml4,
            stack = in(reg) stack_top,
            entry = in(reg) kernel.entry,
            options(noreturn)
        )
    }
}

fn cpu_has_nx() -> bool {
    let edx = core::arch::x86_64::__cpuid(0x8000_0001).edx;
    edx & (1 << 20) != 0
}

fn firmware_memory_map(info: &MultibootInfo) -> impl Iterator<Item = Region> + '_ {
    let mut at = info.mmap_addr as u64;
    let end = at + info.mmap_length as u64;
    core::iter::from_fn(move || {
        if at + 24 > end {
            return None;
        }
        // SAFETY: within the multiboot memory map QEMU wrote; fields are unaligned.
        let (size, base, length, kind) = unsafe {
            let p = at as *const u8;
            (
                (p as *const u32).read_unaligned(),
                (p.add(4) as *const u64).read_unaligned(),
                (p.add(12) as *const u64).read_unaligned(),
                (p.add(20) as *const u32).read_unaligned(),
            )
        };
        at += size as u64 + 4;
        Some(Region::new(base, length, RegionKind::from_multiboot(kind)))
    })
}

#[derive(Clone, Copy, Default)]
struct Segment {
    virt: u64,
    phys: u64,
    size: u64,
    writable: bool,
    executable: bool,
}

struct LoadedKernel {
    entry: u64,
    physical_base: u64,
    virtual_base: u64,
    segments: [Segment; 8],
    segment_count: usize,
}

fn load_kernel(image: &[u8], memory: &mut BumpAllocator) -> LoadedKernel {
    use elf::{ElfBytes, abi::PT_LOAD, endian::LittleEndian};
    let file = ElfBytes::<LittleEndian>::minimal_parse(image).unwrap_or_else(|e| bail!("kernel ELF: {e}"));
    let segments = file.segments().unwrap_or_else(|| bail!("kernel ELF has no program headers"));
    let loads = || segments.iter().filter(|p| p.p_type == PT_LOAD && p.p_memsz > 0);
    let low =
        loads().map(|p| p.p_vaddr).min().unwrap_or_else(|| bail!("kernel has no PT_LOAD")) & !(PAGE - 1);
    let high = loads().map(|p| p.p_vaddr + p.p_memsz).max().unwrap_or(low).next_multiple_of(PAGE);
    if low < abi::HHDM_OFFSET {
        bail!("the kernel must be linked in the higher half (lowest address {low:#x})");
    }
    let physical_base = memory.alloc(high - low);
    let mut kernel = LoadedKernel {
        entry: file.ehdr.e_entry,
        physical_base,
        virtual_base: low,
        segments: [Segment::default(); 8],
        segment_count: 0,
    };
    for p in loads() {
        let file_bytes = usize::try_from(p.p_offset)
            .ok()
            .zip(usize::try_from(p.p_filesz).ok())
            .and_then(|(o, n)| image.get(o..o.checked_add(n)?))
            .unwrap_or_else(|| bail!("kernel segment at {:#x} lies outside the file", p.p_vaddr));
        let phys = physical_base + (p.p_vaddr - low);
        // SAFETY: inside the block allocated above for the whole kernel (zeroed, so bss is 0).
        unsafe { core::ptr::copy_nonoverlapping(file_bytes.as_ptr(), phys as *mut u8, file_bytes.len()) };
        let page_start = p.p_vaddr & !(PAGE - 1);
        let slot = kernel
            .segments
            .get_mut(kernel.segment_count)
            .unwrap_or_else(|| bail!("kernel has more than 8 PT_LOAD segments"));
        *slot = Segment {
            virt: page_start,
            phys: physical_base + (page_start - low),
            size: (p.p_vaddr + p.p_memsz).next_multiple_of(PAGE) - page_start,
            writable: p.p_flags & elf::abi::PF_W != 0,
            executable: p.p_flags & elf::abi::PF_X != 0,
        };
        kernel.segment_count += 1;
    }
    kernel
}

fn make_file(memory: &mut BumpAllocator, file: BootFile, path: &str, cmdline: &str) -> u64 {
    let path = hhdm(memory.store_str(path));
    let cmdline = hhdm(memory.store_str(cmdline));
    memory.store(abi::File {
        revision: 0,
        address: hhdm(file.start),
        size: file.bytes.len() as u64,
        path,
        cmdline,
        media_type: 0,
        unused: 0,
        tftp_ip: 0,
        tftp_port: 0,
        partition_index: 0,
        mbr_disk_id: 0,
        gpt_disk_uuid: [0; 16],
        gpt_part_uuid: [0; 16],
        part_uuid: [0; 16],
    })
}

fn module_response(memory: &mut BumpAllocator, entry: &BootEntry, find: &dyn Fn(&str) -> BootFile) -> u64 {
    let modules = entry.modules();
    let pointers = memory.alloc((modules.len().max(1) * 8) as u64);
    for (i, module) in modules.iter().enumerate() {
        let file = make_file(memory, find(module.path), module.path, module.cmdline);
        // SAFETY: `pointers` has a slot per module.
        unsafe { ((pointers + i as u64 * 8) as *mut u64).write(hhdm(file)) };
    }
    memory.store(abi::ModuleResponse {
        revision: 0,
        module_count: modules.len() as u64,
        modules: hhdm(pointers),
    })
}

/// The physical address of the ACPI RSDP, from the BIOS area (0xE0000..0x100000) or the EBDA.
fn find_rsdp() -> Option<u64> {
    // SAFETY: the BDA word at 0x40E holds the EBDA segment; low memory is identity mapped.
    let ebda = unsafe { ((0x40e as *const u16).read_unaligned() as u64) << 4 };
    let areas = [(ebda, ebda + 1024), (0xE0000, 0x100000)];
    areas.into_iter().filter(|(start, _)| *start != 0).find_map(|(start, end)| {
        (start..end).step_by(16).find(|&at| {
            // SAFETY: BIOS memory below 1 MiB is identity mapped and readable.
            let candidate = unsafe { core::slice::from_raw_parts(at as *const u8, 20) };
            candidate.starts_with(b"RSD PTR ") && candidate.iter().fold(0u8, |s, b| s.wrapping_add(*b)) == 0
        })
    })
}

/// Physical addresses of the responses built (0 = not answered).
#[derive(Default)]
struct Answers {
    bootloader_info: u64,
    hhdm: u64,
    memory_map: u64,
    executable_file: u64,
    modules: u64,
    rsdp: u64,
    executable_address: u64,
    executable_cmdline: u64,
}

/// Find every request in the loaded kernel and point it at its response.
fn answer_requests(kernel: &LoadedKernel, answers: &Answers) {
    for segment in kernel.segments.iter().take(kernel.segment_count).filter(|s| s.writable) {
        let words = segment.size as usize / 8;
        let base = segment.phys as *mut u64;
        // SAFETY: the segment lies in the kernel block this loader filled; 8-byte aligned.
        let word = |i: usize| unsafe { base.add(i).read() };
        for i in 0..words.saturating_sub(3) {
            if word(i) == abi::BASE_REVISION_MAGIC[0] && word(i + 1) == abi::BASE_REVISION_MAGIC[1] {
                let requested = word(i + 2);
                // SAFETY: as above; the tag is three words.
                unsafe {
                    base.add(i + 1).write(requested.min(abi::MAX_BASE_REVISION));
                    if requested <= abi::MAX_BASE_REVISION {
                        base.add(i + 2).write(0);
                    }
                }
                continue;
            }
            if word(i) != abi::COMMON_MAGIC[0] || word(i + 1) != abi::COMMON_MAGIC[1] || i + 6 > words {
                continue;
            }
            let id = [word(i + 2), word(i + 3)];
            let response = match id {
                abi::BOOTLOADER_INFO => answers.bootloader_info,
                abi::HHDM => answers.hhdm,
                abi::MEMORY_MAP => answers.memory_map,
                abi::EXECUTABLE_FILE => answers.executable_file,
                abi::MODULES => answers.modules,
                abi::RSDP => answers.rsdp,
                abi::EXECUTABLE_ADDRESS => answers.executable_address,
                abi::EXECUTABLE_CMDLINE => answers.executable_cmdline,
                _ => 0,
            };
            if response != 0 {
                // SAFETY: the response pointer is the sixth word of every request.
                unsafe { base.add(i + abi::RESPONSE_OFFSET / 8).write(hhdm(response)) };
            }
        }
    }
}

//! Loading an ELF executable into another task through its task port: the user-space ELF
//! loader that bootstrap uses for servers (and the Unix personality will use for exec).
//!
//! Segments may share pages (as in ordinary Linux executables): the pages of all PT_LOAD
//! segments are allocated once, writable, filled, then given the union of the permissions
//! of the segments that touch them. The planning is pure and has host unit tests.

use crate::ipc::PortName;
use crate::task::{vm_allocate, vm_protect, vm_write};
use elf::ElfBytes;
use elf::abi::{PF_W, PF_X, PT_LOAD};
use elf::endian::LittleEndian;
use mach_abi::{KernelError, layout, protection};

const PAGE: u64 = 4096;
const MAX_SEGMENTS: usize = 16;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoadError {
    NotElf,
    NoSegments,
    TooManySegments,
    /// A segment outside user space, or with more file bytes than memory.
    BadSegment,
    Kernel(KernelError),
}

impl From<KernelError> for LoadError {
    fn from(e: KernelError) -> Self {
        LoadError::Kernel(e)
    }
}

/// A PT_LOAD segment, as the plan needs it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Segment {
    pub vaddr: u64,
    pub mem_size: u64,
    pub protection: u64,
}

impl Segment {
    fn pages(&self) -> (u64, u64) {
        (self.vaddr & !(PAGE - 1), (self.vaddr + self.mem_size).next_multiple_of(PAGE))
    }
}

/// Merge the segments' page ranges into disjoint sorted ranges; returns how many.
pub fn merged_ranges(segments: &[Segment], out: &mut [(u64, u64)]) -> usize {
    let mut count = 0;
    for segment in segments {
        let (mut start, mut end) = segment.pages();
        // Absorb every range this one touches, then insert in order.
        let mut i = 0;
        while i < count {
            let (s, e) = out[i];
            if s <= end && start <= e {
                start = start.min(s);
                end = end.max(e);
                out.copy_within(i + 1..count, i);
                count -= 1;
            } else {
                i += 1;
            }
        }
        let at = out[..count].iter().position(|&(s, _)| s > start).unwrap_or(count);
        if count < out.len() {
            out.copy_within(at..count, at + 1);
            out[at] = (start, end);
            count += 1;
        }
    }
    count
}

/// The protection of `page`: the union over the segments that touch it.
pub fn page_protection(segments: &[Segment], page: u64) -> u64 {
    segments
        .iter()
        .filter(|s| {
            let (start, end) = s.pages();
            start <= page && page < end
        })
        .fold(0, |p, s| p | s.protection)
}

/// What was loaded: where it starts and where its program headers are (for a Linux
/// process's auxiliary vector), and the end of its highest segment (where `brk` starts).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Loaded {
    pub entry: u64,
    /// The address of the program headers in the task (AT_PHDR), 0 if no segment holds them.
    pub program_headers: u64,
    pub program_header_count: u64,
    pub program_header_size: u64,
    /// What was added to every address: 0 for a fixed-address executable (ET_EXEC).
    pub bias: u64,
    /// The first page after the highest segment.
    pub end: u64,
}

/// Where a position-independent executable (ET_DYN: static-pie) is loaded.
pub const PIE_BASE: u64 = 0x0000_5555_5555_4000;

/// Load `image` into `task`; returns the entry point.
pub fn load_elf(task: PortName, image: &[u8]) -> Result<u64, LoadError> {
    load_elf_image(task, image).map(|loaded| loaded.entry)
}

/// Load `image` into `task`: a fixed-address executable where it says, a position-independent
/// one at [`PIE_BASE`] (it relocates itself: static-pie).
pub fn load_elf_image(task: PortName, image: &[u8]) -> Result<Loaded, LoadError> {
    let file = ElfBytes::<LittleEndian>::minimal_parse(image).map_err(|_| LoadError::NotElf)?;
    let bias = if file.ehdr.e_type == elf::abi::ET_DYN { PIE_BASE } else { 0 };
    let headers = file.segments().ok_or(LoadError::NoSegments)?;
    let mut program_headers = 0;
    for p in headers.iter() {
        if p.p_type == elf::abi::PT_PHDR {
            program_headers = p.p_vaddr.wrapping_add(bias);
        } else if program_headers == 0
            && p.p_type == PT_LOAD
            && p.p_offset <= file.ehdr.e_phoff
            && file.ehdr.e_phoff < p.p_offset.saturating_add(p.p_filesz)
        {
            program_headers = (file.ehdr.e_phoff - p.p_offset).wrapping_add(p.p_vaddr).wrapping_add(bias);
        }
    }
    let mut segments = [Segment::default(); MAX_SEGMENTS];
    let mut files = [(0u64, 0usize, 0usize); MAX_SEGMENTS];
    let mut count = 0;
    for p in headers.iter().filter(|p| p.p_type == PT_LOAD && p.p_memsz > 0) {
        let vaddr = p.p_vaddr.checked_add(bias).ok_or(LoadError::BadSegment)?;
        let end = vaddr.checked_add(p.p_memsz).ok_or(LoadError::BadSegment)?;
        if vaddr < PAGE || end > layout::USER_END || p.p_filesz > p.p_memsz {
            return Err(LoadError::BadSegment);
        }
        let offset = usize::try_from(p.p_offset).map_err(|_| LoadError::BadSegment)?;
        let len = usize::try_from(p.p_filesz).map_err(|_| LoadError::BadSegment)?;
        if image.get(offset..offset.checked_add(len).ok_or(LoadError::BadSegment)?).is_none() {
            return Err(LoadError::BadSegment);
        }
        let slot = segments.get_mut(count).ok_or(LoadError::TooManySegments)?;
        let prot = if p.p_flags & PF_W != 0 { protection::WRITE } else { 0 }
            | if p.p_flags & PF_X != 0 { protection::EXECUTE } else { 0 };
        *slot = Segment { vaddr, mem_size: p.p_memsz, protection: prot };
        files[count] = (vaddr, offset, len);
        count += 1;
    }
    if count == 0 {
        return Err(LoadError::NoSegments);
    }
    let segments = &segments[..count];
    let mut ranges = [(0u64, 0u64); MAX_SEGMENTS];
    let range_count = merged_ranges(segments, &mut ranges);
    let ranges = &ranges[..range_count];
    for &(start, end) in ranges {
        vm_allocate(task, start, end - start, protection::WRITE)?;
    }
    for &(vaddr, offset, len) in &files[..count] {
        if len > 0 {
            vm_write(task, vaddr, &image[offset..offset + len])?;
        }
    }
    for &(start, end) in ranges {
        let mut run = start;
        while run < end {
            let prot = page_protection(segments, run);
            let mut next = run + PAGE;
            while next < end && page_protection(segments, next) == prot {
                next += PAGE;
            }
            vm_protect(task, run, next - run, prot)?;
            run = next;
        }
    }
    Ok(Loaded {
        entry: file.ehdr.e_entry.wrapping_add(bias),
        program_headers,
        program_header_count: u64::from(file.ehdr.e_phnum),
        program_header_size: u64::from(file.ehdr.e_phentsize),
        bias,
        end: ranges.last().map_or(0, |&(_, end)| end),
    })
}

/// Give `task` a stack ending at `layout::USER_STACK_TOP` with `args` copied to its top.
/// Returns (stack pointer, address of the arguments) for `thread_create_at`.
pub fn make_stack(task: PortName, args: &str) -> Result<(u64, u64), LoadError> {
    let size = layout::USER_STACK_SIZE;
    let top = layout::USER_STACK_TOP;
    vm_allocate(task, top - size, size, protection::WRITE)?;
    let at = top - args.len() as u64;
    vm_write(task, at, args.as_bytes())?;
    Ok(((at & !15) - 8, at))
}

/// The owner name of Machina's ELF notes.
pub const NOTE_OWNER: &[u8] = b"Machina";
/// The note type that names the personality an executable is for (its text: "xv6").
pub const NT_PERSONALITY: u32 = 1;

/// The personality an executable asks for: the text of its `Machina` note of type
/// [`NT_PERSONALITY`] in a PT_NOTE segment, without trailing NULs ("xv6"). None when it has
/// none (an ordinary Linux program) or the headers do not hold together.
pub fn personality_note(image: &[u8]) -> Option<&[u8]> {
    let u16_at = |at: usize| image.get(at..at + 2).and_then(|b| b.try_into().ok()).map(u16::from_le_bytes);
    let u32_at = |at: usize| image.get(at..at + 4).and_then(|b| b.try_into().ok()).map(u32::from_le_bytes);
    let u64_at = |at: usize| image.get(at..at + 8).and_then(|b| b.try_into().ok()).map(u64::from_le_bytes);
    if image.get(..4) != Some(b"\x7fELF") {
        return None;
    }
    let table = usize::try_from(u64_at(0x20)?).ok()?;
    let (size, count) = (usize::from(u16_at(0x36)?), usize::from(u16_at(0x38)?));
    (0..count.min(64)).find_map(|i| {
        let header = table.checked_add(i.checked_mul(size)?)?;
        if u32_at(header)? != elf::abi::PT_NOTE {
            return None;
        }
        let offset = usize::try_from(u64_at(header + 8)?).ok()?;
        let length = usize::try_from(u64_at(header + 32)?).ok()?;
        find_note(image.get(offset..offset.checked_add(length)?)?)
    })
}

/// The personality note among the notes in `notes` (namesz, descsz, type, then the name and
/// the description, each padded to 4 bytes).
fn find_note(mut notes: &[u8]) -> Option<&[u8]> {
    while notes.len() >= 12 {
        let word = |i: usize| notes.get(i..i + 4).and_then(|b| b.try_into().ok()).map(u32::from_le_bytes);
        let (name_size, desc_size, kind) = (word(0)? as usize, word(4)? as usize, word(8)?);
        let desc_at = 12 + name_size.next_multiple_of(4);
        let name = notes.get(12..12 + name_size)?;
        let desc = notes.get(desc_at..desc_at + desc_size)?;
        if kind == NT_PERSONALITY && name.strip_suffix(b"\0").unwrap_or(name) == NOTE_OWNER {
            let end = desc.iter().position(|&b| b == 0).unwrap_or(desc.len());
            return desc.get(..end);
        }
        notes = notes.get(desc_at + desc_size.next_multiple_of(4)..)?;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    const R: u64 = 0;
    const W: u64 = protection::WRITE;
    const X: u64 = protection::EXECUTE;

    #[test]
    fn separate_segments_stay_separate() {
        let s = [
            Segment { vaddr: 0x400000, mem_size: 0x1800, protection: X },
            Segment { vaddr: 0x403000, mem_size: 0x100, protection: R },
        ];
        let mut out = [(0, 0); 4];
        let n = merged_ranges(&s, &mut out);
        assert_eq!(&out[..n], &[(0x400000, 0x402000), (0x403000, 0x404000)]);
        assert_eq!(page_protection(&s, 0x401000), X);
        assert_eq!(page_protection(&s, 0x403000), R);
    }

    #[test]
    fn segments_sharing_a_page_merge_and_unite_permissions() {
        // Like a Linux static executable: rodata and data share a page.
        let s = [
            Segment { vaddr: 0x200000, mem_size: 0x1234, protection: R },
            Segment { vaddr: 0x201234, mem_size: 0x2000, protection: W },
            Segment { vaddr: 0x100000, mem_size: 0x10, protection: X },
        ];
        let mut out = [(0, 0); 4];
        let n = merged_ranges(&s, &mut out);
        assert_eq!(&out[..n], &[(0x100000, 0x101000), (0x200000, 0x204000)]);
        assert_eq!(page_protection(&s, 0x200000), R);
        assert_eq!(page_protection(&s, 0x201000), W, "the shared page takes the union");
        assert_eq!(page_protection(&s, 0x203000), W);
    }

    #[test]
    fn a_segment_bridging_two_ranges_joins_them() {
        let s = [
            Segment { vaddr: 0x1000, mem_size: 0x1000, protection: R },
            Segment { vaddr: 0x5000, mem_size: 0x1000, protection: R },
            Segment { vaddr: 0x1800, mem_size: 0x4000, protection: W },
        ];
        let mut out = [(0, 0); 4];
        let n = merged_ranges(&s, &mut out);
        assert_eq!(&out[..n], &[(0x1000, 0x6000)]);
    }

    #[test]
    fn the_personality_note_is_found_in_a_note_segment() {
        // An ELF header with one program header (PT_NOTE) whose segment holds two notes: a
        // GNU one, then Machina's.
        let mut notes = alloc::vec::Vec::new();
        for (name, desc, kind) in [(&b"GNU\0"[..], &[1u8, 2, 3, 4][..], 3u32), (b"Machina\0", b"xv6\0", 1)] {
            notes.extend_from_slice(&(name.len() as u32).to_le_bytes());
            notes.extend_from_slice(&(desc.len() as u32).to_le_bytes());
            notes.extend_from_slice(&kind.to_le_bytes());
            notes.extend_from_slice(name);
            notes.resize(notes.len().next_multiple_of(4), 0);
            notes.extend_from_slice(desc);
            notes.resize(notes.len().next_multiple_of(4), 0);
        }
        let mut image = alloc::vec![0u8; 0x40 + 0x38];
        image[..4].copy_from_slice(b"\x7fELF");
        image[0x20..0x28].copy_from_slice(&0x40u64.to_le_bytes());
        image[0x36..0x38].copy_from_slice(&0x38u16.to_le_bytes());
        image[0x38..0x3a].copy_from_slice(&1u16.to_le_bytes());
        image[0x40..0x44].copy_from_slice(&elf::abi::PT_NOTE.to_le_bytes());
        image[0x48..0x50].copy_from_slice(&(0x78u64).to_le_bytes());
        image[0x60..0x68].copy_from_slice(&(notes.len() as u64).to_le_bytes());
        image.extend_from_slice(&notes);
        assert_eq!(personality_note(&image), Some(&b"xv6"[..]));
        // Cut short, or not ELF: nothing, and no panic.
        for cut in [0, 4, 0x40, 0x79, image.len() - 3] {
            assert_eq!(personality_note(&image[..cut]), None);
        }
        image[0x40] = 1; // PT_LOAD
        assert_eq!(personality_note(&image), None);
    }
}

//! Conversion of the firmware's memory map (multiboot 1, from the BIOS E820 table) into the
//! Limine memory map the kernel expects.
//!
//! The loader knows what it placed in usable memory (kernel segments, modules, page tables,
//! the stack, the responses) and "claims" those ranges; the result is a sorted list of
//! non-overlapping regions, with usable regions page aligned and nothing below 4 KiB usable,
//! as the Limine protocol promises. It must never allocate.

/// Region types, numbered as in the Limine protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
#[repr(u64)]
pub enum RegionKind {
    Usable = 0,
    Reserved = 1,
    AcpiReclaimable = 2,
    AcpiNvs = 3,
    BadMemory = 4,
    BootloaderReclaimable = 5,
    ExecutableAndModules = 6,
    Framebuffer = 7,
}

impl RegionKind {
    /// The type of a multiboot 1 / E820 memory-map entry.
    pub fn from_multiboot(kind: u32) -> Self {
        match kind {
            1 => RegionKind::Usable,
            3 => RegionKind::AcpiReclaimable,
            4 => RegionKind::AcpiNvs,
            5 => RegionKind::BadMemory,
            _ => RegionKind::Reserved,
        }
    }

    /// When firmware entries overlap, the more restrictive type wins.
    fn firmware_rank(self) -> u8 {
        match self {
            RegionKind::Usable => 0,
            RegionKind::AcpiReclaimable => 1,
            RegionKind::AcpiNvs => 2,
            RegionKind::Reserved => 3,
            RegionKind::BadMemory => 4,
            _ => 3,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Region {
    pub base: u64,
    pub length: u64,
    pub kind: RegionKind,
}

impl Region {
    pub const fn new(base: u64, length: u64, kind: RegionKind) -> Self {
        Region { base, length, kind }
    }
    fn end(&self) -> u64 {
        self.base.saturating_add(self.length)
    }
}

const PAGE: u64 = 4096;
/// Limine never reports the first page as usable; neither do we.
const LOWEST_USABLE: u64 = PAGE;
/// Boundary points the conversion can track: two per input region.
const MAX_POINTS: usize = 512;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MapError {
    /// More input regions than the conversion can track.
    TooManyInputs,
    /// The output buffer is too small.
    OutputFull,
}

/// Convert `firmware` (as reported, possibly unsorted and overlapping) plus the loader's
/// `claims` (ranges inside usable memory it gave a purpose) into `out`. Returns how many
/// regions were written.
pub fn convert(firmware: &[Region], claims: &[Region], out: &mut [Region]) -> Result<usize, MapError> {
    let mut points = [0u64; MAX_POINTS];
    let mut count = 0;
    for r in firmware.iter().chain(claims.iter()).filter(|r| r.length > 0) {
        for p in [r.base, r.end()] {
            *points.get_mut(count).ok_or(MapError::TooManyInputs)? = p;
            count += 1;
        }
    }
    let points = &mut points[..count];
    points.sort_unstable();

    let mut written: usize = 0;
    let mut push = |region: Region| -> Result<(), MapError> {
        let region = if region.kind == RegionKind::Usable {
            let base = region.base.max(LOWEST_USABLE).next_multiple_of(PAGE);
            let end = region.end() & !(PAGE - 1);
            if end <= base {
                return Ok(());
            }
            Region::new(base, end - base, RegionKind::Usable)
        } else {
            region
        };
        if let Some(last) = written.checked_sub(1).and_then(|i: usize| out.get_mut(i))
            && last.kind == region.kind
            && last.end() == region.base
        {
            last.length += region.length;
            return Ok(());
        }
        *out.get_mut(written).ok_or(MapError::OutputFull)? = region;
        written += 1;
        Ok(())
    };

    for pair in points.windows(2) {
        let (start, end) = (pair[0], pair[1]);
        if start == end {
            continue;
        }
        let covers = |r: &&Region| r.base <= start && end <= r.end();
        let Some(firmware_kind) =
            firmware.iter().filter(covers).map(|r| r.kind).max_by_key(|k| k.firmware_rank())
        else {
            continue; // a hole in the firmware map stays a hole
        };
        // A claim only changes memory the firmware called usable.
        let kind = match claims.iter().filter(covers).map(|r| r.kind).max() {
            Some(claimed) if firmware_kind == RegionKind::Usable => claimed,
            _ => firmware_kind,
        };
        push(Region::new(start, end - start, kind))?;
    }
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::RegionKind::*;
    use super::*;
    use std::{vec, vec::Vec};

    fn run(firmware: &[Region], claims: &[Region]) -> Vec<Region> {
        let mut out = [Region::new(0, 0, Reserved); 64];
        let n = convert(firmware, claims, &mut out).unwrap();
        out[..n].to_vec()
    }

    /// What QEMU's SeaBIOS reports for `-m 512M` on the pc machine.
    fn qemu_512m() -> Vec<Region> {
        vec![
            Region::new(0, 0x9fc00, Usable),
            Region::new(0x9fc00, 0x400, Reserved),
            Region::new(0xf0000, 0x10000, Reserved),
            Region::new(0x100000, 0x1fee0000, Usable),
            Region::new(0x1ffe0000, 0x20000, Reserved),
            Region::new(0xfffc0000, 0x40000, Reserved),
        ]
    }

    #[test]
    fn plain_map_is_sorted_aligned_and_skips_page_zero() {
        let out = run(&qemu_512m(), &[]);
        assert_eq!(out[0], Region::new(0x1000, 0x9e000, Usable));
        assert_eq!(out[1], Region::new(0x9fc00, 0x400, Reserved));
        assert_eq!(out[2], Region::new(0xf0000, 0x10000, Reserved));
        assert_eq!(out[3], Region::new(0x100000, 0x1fee0000, Usable));
        assert_eq!(out.len(), 6);
        assert!(out.windows(2).all(|w| w[0].base + w[0].length <= w[1].base));
    }

    #[test]
    fn claims_split_usable_memory() {
        let claims = [
            Region::new(0x100000, 0x10000, BootloaderReclaimable), // the loader itself
            Region::new(0x200000, 0x30000, ExecutableAndModules),  // kernel
            Region::new(0x230000, 0x8000, ExecutableAndModules),   // a module, adjacent
            Region::new(0x300000, 0x4000, BootloaderReclaimable),  // page tables
        ];
        let out = run(&qemu_512m(), &claims);
        let expect = [
            Region::new(0x100000, 0x10000, BootloaderReclaimable),
            Region::new(0x110000, 0xf0000, Usable),
            Region::new(0x200000, 0x38000, ExecutableAndModules),
            Region::new(0x238000, 0xc8000, Usable),
            Region::new(0x300000, 0x4000, BootloaderReclaimable),
            Region::new(0x304000, 0x1fee0000 - 0x204000, Usable),
        ];
        assert_eq!(&out[3..9], &expect);
    }

    #[test]
    fn claims_never_turn_reserved_memory_usable_or_claimed() {
        let out = run(&qemu_512m(), &[Region::new(0xf0000, 0x1000, ExecutableAndModules)]);
        assert_eq!(out[2], Region::new(0xf0000, 0x10000, Reserved));
    }

    #[test]
    fn overlapping_firmware_entries_take_the_stricter_type() {
        let fw = [Region::new(0x100000, 0x100000, Usable), Region::new(0x180000, 0x1000, AcpiNvs)];
        let out = run(&fw, &[]);
        assert_eq!(
            out,
            vec![
                Region::new(0x100000, 0x80000, Usable),
                Region::new(0x180000, 0x1000, AcpiNvs),
                Region::new(0x181000, 0x7f000, Usable),
            ]
        );
    }

    #[test]
    fn unaligned_usable_edges_shrink_inwards() {
        let out = run(&[Region::new(0x1234, 0x3000, Usable)], &[]);
        assert_eq!(out, vec![Region::new(0x2000, 0x2000, Usable)]);
        assert!(run(&[Region::new(0x1001, 0x100, Usable)], &[]).is_empty());
    }

    #[test]
    fn multiboot_types() {
        assert_eq!(RegionKind::from_multiboot(1), Usable);
        assert_eq!(RegionKind::from_multiboot(2), Reserved);
        assert_eq!(RegionKind::from_multiboot(3), AcpiReclaimable);
        assert_eq!(RegionKind::from_multiboot(4), AcpiNvs);
        assert_eq!(RegionKind::from_multiboot(5), BadMemory);
        assert_eq!(RegionKind::from_multiboot(77), Reserved);
    }

    #[test]
    fn output_too_small_is_an_error() {
        let mut out = [Region::new(0, 0, Reserved); 2];
        assert_eq!(convert(&qemu_512m(), &[], &mut out), Err(MapError::OutputFull));
    }
}

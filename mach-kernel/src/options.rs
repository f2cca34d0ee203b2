//! The kernel command line (`cmdline:` in limine.conf): space-separated `key=value` words.
//!
//! Known keys:
//! - `selftest=panic|pagefault|timer|hang`: exercise a kernel failure path or the timer at boot
//!   (used by the system tests).
//! - `trace_ring=N`: keep N trace records (64 to 1,048,576) instead of the default 4,096.
//!
//! Unknown words are reported, never fatal.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SelfTest {
    /// `panic!` during boot: the panic path must stop QEMU with the failure status.
    Panic,
    /// Touch an unmapped kernel address: the exception report path.
    PageFault,
    /// Wait for timer ticks with interrupts on, then continue.
    Timer,
    /// Never finish booting (idle forever): a hung guest, for the harness's timeouts.
    Hang,
}

/// The trace ring sizes `trace_ring=` accepts (records of 88 bytes: up to 88 MiB).
pub const TRACE_RING_RANGE: core::ops::RangeInclusive<usize> = 64..=1 << 20;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct KernelOptions<'a> {
    pub selftest: Option<SelfTest>,
    /// `trace_ring=N`: how many trace records the ring keeps.
    pub trace_ring: Option<usize>,
    /// The first word the kernel did not understand, to report.
    pub unknown: Option<&'a str>,
}

impl<'a> KernelOptions<'a> {
    pub fn parse(cmdline: &'a str) -> Self {
        let mut options = KernelOptions::default();
        for word in cmdline.split_ascii_whitespace() {
            let test = match word.split_once('=') {
                Some(("selftest", "panic")) => Some(SelfTest::Panic),
                Some(("selftest", "pagefault")) => Some(SelfTest::PageFault),
                Some(("selftest", "timer")) => Some(SelfTest::Timer),
                Some(("selftest", "hang")) => Some(SelfTest::Hang),
                _ => None,
            };
            let ring = match word.split_once('=') {
                Some(("trace_ring", n)) => n.parse().ok().filter(|n| TRACE_RING_RANGE.contains(n)),
                _ => None,
            };
            match (test, ring) {
                (Some(test), _) => options.selftest = Some(test),
                (_, Some(n)) => options.trace_ring = Some(n),
                _ if options.unknown.is_none() => options.unknown = Some(word),
                _ => {}
            }
        }
        options
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_selftests_and_reports_unknown_words() {
        assert_eq!(KernelOptions::parse(""), KernelOptions::default());
        assert_eq!(KernelOptions::parse("selftest=panic").selftest, Some(SelfTest::Panic));
        let o = KernelOptions::parse("  quiet selftest=timer selftest=bogus ");
        assert_eq!(o.selftest, Some(SelfTest::Timer));
        assert_eq!(o.unknown, Some("quiet"));
        assert_eq!(KernelOptions::parse("trace_ring=100000").trace_ring, Some(100_000));
        // Out of range or not a number: reported, the default kept.
        for bad in ["trace_ring=8", "trace_ring=x", "trace_ring=99999999"] {
            let o = KernelOptions::parse(bad);
            assert_eq!((o.trace_ring, o.unknown), (None, Some(bad)));
        }
    }
}

//! The kernel command line (`cmdline:` in limine.conf): space-separated `key=value` words.
//!
//! Known keys:
//! - `selftest=panic|pagefault|timer|hang`: exercise a kernel failure path or the timer at boot
//!   (used by the system tests).
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

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct KernelOptions<'a> {
    pub selftest: Option<SelfTest>,
    /// The first word the kernel did not understand, to report.
    pub unknown: Option<&'a str>,
}

impl<'a> KernelOptions<'a> {
    pub fn parse(cmdline: &'a str) -> Self {
        let mut options = KernelOptions::default();
        for word in cmdline.split_ascii_whitespace() {
            let known = match word.split_once('=') {
                Some(("selftest", "panic")) => Some(SelfTest::Panic),
                Some(("selftest", "pagefault")) => Some(SelfTest::PageFault),
                Some(("selftest", "timer")) => Some(SelfTest::Timer),
                Some(("selftest", "hang")) => Some(SelfTest::Hang),
                _ => None,
            };
            match known {
                Some(test) => options.selftest = Some(test),
                None if options.unknown.is_none() => options.unknown = Some(word),
                None => {}
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
    }
}

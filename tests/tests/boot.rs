//! Boot-foundation system tests: the direct loader, kernel bring-up, the first user task,
//! user faults, kernel failures. Each boots its own QEMU (see the harness in src/lib.rs).

use std::time::{Duration, Instant};
use system_tests::{BootConfig, FAILURE_STATUS, HALTED_STATUS, Machine, WaitError};

#[test]
fn default_boot_shows_banner_and_first_user_output() {
    let mut m = Machine::boot(&BootConfig::default_boot());
    m.expect_log("Machina mach-kernel");
    let log = m.expect_log("bootstrap: hello from user mode (args \"bootstrap\")");
    assert!(log.contains("started task 1 (bootstrap) from /boot/bootstrap"), "{log}");
    // `make run` ends at our shell's prompt; `exit` shuts the system down in order.
    m.expect_console("/ $ ");
    m.type_text(b"exit\r");
    m.expect_exit(HALTED_STATUS);
    // The kernel log goes to debugcon only: nothing of it may appear on COM1.
    let console = m.console();
    assert!(
        !console.contains("mach-kernel") && !console.contains("bootstrap:"),
        "kernel log leaked onto COM1: {console:?}"
    );
}

#[test]
fn loader_answers_the_limine_requests() {
    let config = BootConfig::custom(
        "selftest=timer extra-word",
        &[("bootstrap", "bootstrap one"), ("kernel-tests", "kt two")],
    );
    let mut m = Machine::boot(&config);
    let log = m.expect_log("mach-kernel: no tasks left");
    for expected in [
        "boot: machina-direct-loader",
        "base revision 2",
        "hhdm at 0xffff800000000000; kernel at 0xffffffff80000000",
        "cmdline: \"selftest=timer extra-word\"",
        "cmdline: ignoring unknown option \"extra-word\"",
        "module 0: /boot/bootstrap",
        "\"bootstrap one\"",
        "module 1: /boot/kernel-tests",
        "\"kt two\"",
        "bootstrap: hello from user mode (args \"bootstrap one\")",
    ] {
        assert!(log.contains(expected), "missing {expected:?} in:\n{log}");
    }
    let usable: u64 = field(&log, "memory: ", " MiB usable");
    assert!((400..=512).contains(&usable), "usable memory {usable} MiB for -m 512M\n{log}");
    m.expect_exit(HALTED_STATUS);
}

#[test]
fn timer_interrupts_arrive() {
    let mut m = Machine::boot(&BootConfig::custom("selftest=timer", &[]));
    m.expect_log("selftest: timer delivered 10 ticks");
    m.expect_exit(HALTED_STATUS);
}

#[test]
fn traps_check_their_arguments() {
    let mut m = Machine::boot(&BootConfig::kernel_tests("traps foreign clock"));
    let log = m.expect_log("kernel-tests: 0 failed");
    assert!(
        log.contains("case traps: ok") && log.contains("case foreign: ok") && log.contains("case clock: ok"),
        "{log}"
    );
    assert!(log.contains("made system call 39 but has no syscall port"), "{log}");
    m.expect_exit(HALTED_STATUS);
}

/// A user page fault is reported with its address, the task ends, its memory comes back, and
/// the kernel carries on to a clean halt.
#[test]
fn user_page_fault_ends_the_task_not_the_kernel() {
    let mut m = Machine::boot(&BootConfig::kernel_tests("fault-write traps"));
    let log = m.expect_log("mach-kernel: no tasks left");
    assert!(log.contains("user fault: kernel-tests (task 1): page fault (vector 14)"), "{log}");
    assert!(log.contains("cr2 0xdead0000 (write, not present)"), "{log}");
    assert!(log.contains("rip=0x00000000004"), "register dump missing:\n{log}");
    assert!(log.contains("task 1 (kernel-tests) ended"), "{log}");
    assert!(!log.contains("case traps"), "the task ran on after its fault:\n{log}");
    let free_after: u64 = field(&log, "halting (", " frames free");
    let free_before: u64 = field(&log, "frames free, ", " before the first task");
    assert_eq!(free_after, free_before, "ending the task did not free all its frames\n{log}");
    m.expect_exit(HALTED_STATUS);
}

/// A task that makes the kernel keep ports and messages until memory runs out gets
/// `NoMemory`, never a kernel panic; everything it took comes back.
#[test]
fn kernel_memory_runs_out_as_an_error() {
    let mut m = Machine::boot(&BootConfig::kernel_tests("exhaustion"));
    let log = m.expect_log("mach-kernel: no tasks left");
    assert!(log.contains("case exhaustion: ok"), "{log}");
    assert!(!log.contains("KERNEL PANIC"), "{log}");
    system_tests::assert_frames_balanced(&log);
    m.expect_exit(HALTED_STATUS);
}

#[test]
fn user_invalid_opcode_is_reported() {
    let mut m = Machine::boot(&BootConfig::kernel_tests("fault-ud"));
    let log = m.expect_log("mach-kernel: no tasks left");
    assert!(log.contains("user fault: kernel-tests (task 1): invalid opcode (vector 6)"), "{log}");
    m.expect_exit(HALTED_STATUS);
}

#[test]
fn kernel_panic_stops_qemu_with_failure() {
    let mut m = Machine::boot(&BootConfig::custom("selftest=panic", &[]));
    let log = m.expect_log("mach-kernel: stopped (panic)");
    assert!(log.contains("KERNEL PANIC: panicked at"), "{log}");
    // The flight recorder: the last trace records, here the one selftest=panic made.
    assert!(log.contains("flight recorder: the last 1 trace records"), "{log}");
    assert!(log.contains("kind 1 task 0 thread 0 port 0 id 0x5e1f"), "{log}");
    assert!(log.contains("selftest=panic requested"), "{log}");
    m.expect_exit(FAILURE_STATUS);
}

#[test]
fn kernel_exception_prints_a_full_report() {
    let mut m = Machine::boot(&BootConfig::custom("selftest=pagefault", &[]));
    let log = m.expect_log("mach-kernel: stopped (exception)");
    for expected in [
        "KERNEL EXCEPTION: page fault (vector 14) error 0x0",
        "cr2 0xffffffff7ffff000",
        "rip 0xffffffff8",
        "rax=",
        "r15=",
        "rflags=",
    ] {
        assert!(log.contains(expected), "missing {expected:?} in:\n{log}");
    }
    m.expect_exit(FAILURE_STATUS);
}

#[test]
fn loader_reports_a_missing_module() {
    let mut config = BootConfig::default_boot();
    config.omit = vec!["/boot/bootstrap".into()];
    let mut m = Machine::boot(&config);
    let log = m.expect_log("direct-loader: error");
    assert!(log.contains("/boot/bootstrap (named by limine.conf) was not given to QEMU's -initrd"), "{log}");
    m.expect_exit(FAILURE_STATUS);
}

#[test]
fn loader_reports_a_bad_limine_conf() {
    let config = BootConfig {
        conf: "/Machina\n    protocol: limine\n    oops\n".into(),
        entry: None,
        omit: vec![],
        qemu_args: vec![],
        disk: system_tests::DEFAULT_DISK.into(),
    };
    let mut m = Machine::boot_unchecked(&config);
    let log = m.expect_log("direct-loader: error");
    assert!(log.contains("limine.conf line 3: expected `key: value`"), "{log}");
    m.expect_exit(FAILURE_STATUS);
}

/// The harness itself: waiting for text that never comes fails at the deadline.
#[test]
fn a_wait_that_never_ends_times_out() {
    let mut m = Machine::boot(&BootConfig::custom("selftest=hang", &[]));
    m.expect_log("selftest: Hang");
    let start = Instant::now();
    let result = m.wait_for_log("text the kernel never prints", Duration::from_millis(500));
    assert!(matches!(result, Err(WaitError::Timeout { .. })), "{result:?}");
    assert!(start.elapsed() < Duration::from_secs(10));
    assert!(matches!(m.wait_exit(Duration::from_millis(200)), Err(WaitError::Timeout { .. })));
}

/// The number between `before` and `after` in `log`.
fn field(log: &str, before: &str, after: &str) -> u64 {
    let start = log.find(before).unwrap_or_else(|| panic!("{before:?} not in log:\n{log}")) + before.len();
    let rest = &log[start..];
    let end = rest.find(after).unwrap_or_else(|| panic!("{after:?} not after {before:?}:\n{log}"));
    rest[..end].trim().parse().unwrap_or_else(|e| panic!("{:?}: {e}", &rest[..end]))
}

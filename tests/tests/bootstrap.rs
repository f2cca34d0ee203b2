//! bootstrap system tests: it starts the other boot modules as tasks (ELF loading in user
//! space), serves names to them, and exits when they have all ended; two of them find each
//! other by name and talk by RPC across tasks.

use system_tests::{BootConfig, HALTED_STATUS, Machine};

#[test]
fn bootstrap_starts_modules_serves_names_and_waits_for_them() {
    let config = BootConfig::custom(
        "",
        &[
            ("bootstrap", "bootstrap"),
            ("kernel-tests", "kernel-tests names echo-server"),
            ("kernel-tests", "kernel-tests echo-client"),
        ],
    );
    let mut m = Machine::boot(&config);
    let log = m.expect_log("mach-kernel: no tasks left");
    for expected in [
        "bootstrap: started /boot/kernel-tests \"kernel-tests names echo-server\"",
        "bootstrap: started 2 task(s); serving names",
        "kernel-tests: case names: ok",
        "kernel-tests: case echo-server: ok",
        "kernel-tests: case echo-client: ok",
        "bootstrap: all tasks ended; exiting",
    ] {
        assert!(log.contains(expected), "missing {expected:?}:\n{log}");
    }
    assert!(!log.contains("FAILED"), "{log}");
    system_tests::assert_frames_balanced(&log);
    m.expect_exit(HALTED_STATUS);
}

#[test]
fn bootstrap_reports_a_module_it_cannot_start() {
    // limine.conf itself is not an ELF executable.
    let config = BootConfig::custom("", &[("bootstrap", "bootstrap"), ("limine/limine.conf", "not-elf")]);
    let mut m = Machine::boot(&config);
    let log = m.expect_log("mach-kernel: no tasks left");
    assert!(
        log.contains(
            "bootstrap: cannot start module 1 (/boot/limine/limine.conf): not a loadable ELF executable"
        ),
        "{log}"
    );
    assert!(log.contains("bootstrap: started 0 task(s); serving names"), "{log}");
    assert!(log.contains("bootstrap: all tasks ended; exiting"), "{log}");
    m.expect_exit(HALTED_STATUS);
}

//! The Unix personality (issue 11, first step): a static Linux program (Rust std, musl,
//! static-pie) read from the ext2 disk, loaded into a task, its system calls served as
//! messages by personality-unix, its output on the console through the console server.

use std::time::Duration;
use system_tests::{BootConfig, HALTED_STATUS, Machine};

#[test]
fn a_rust_std_program_runs_on_the_unix_personality() {
    let config = BootConfig::custom(
        "",
        &[
            ("bootstrap", "bootstrap"),
            ("block", "block"),
            ("fs-server", "fs-server"),
            ("console", "console"),
            ("personality-unix", "personality-unix /bin/hello 7 two"),
        ],
    );
    let mut m = Machine::boot(&config);
    let log = m
        .wait_for_log("mach-kernel: no tasks left", Duration::from_secs(60))
        .unwrap_or_else(|e| panic!("{e}"));
    let console = m.console().replace('\r', "");
    for line in [
        "hello from a Linux program on Machina",
        "argv: [\"/bin/hello\", \"7\", \"two\"]",
        "PATH=/bin",
        "heap: the sum of 1..=10000 is 50005000",
    ] {
        assert!(console.lines().any(|l| l == line), "console lacks {line:?}:\n{console}\n--- log ---\n{log}");
    }
    assert!(log.contains("personality-unix: process 1 (hello) exited with status 7"), "{log}");
    system_tests::assert_frames_balanced(&log);
    m.expect_exit(HALTED_STATUS);
}

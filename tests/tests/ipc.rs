//! IPC system tests: the in-guest kernel-tests program exercises ports, rights, messages,
//! port sets, timeouts, queue limits, dead names and notifications, and reports each case on the kernel log.

use system_tests::{BootConfig, HALTED_STATUS, Machine};

const CASES: [&str; 9] =
    ["rpc", "rights", "sets", "timeouts", "dead-names", "bad-ipc", "notifications", "ool", "fast-path"];

#[test]
fn ipc_cases_pass_in_guest() {
    let mut m = Machine::boot(&BootConfig::kernel_tests(&CASES.join(" ")));
    let log = m.expect_log("mach-kernel: no tasks left");
    for case in CASES {
        assert!(log.contains(&format!("case {case}: ok")), "case {case} did not pass:\n{log}");
    }
    assert!(log.contains("kernel-tests: 0 failed"), "{log}");
    // Every port, thread and page of the task is released when it ends.
    system_tests::assert_frames_balanced(&log);
    m.expect_exit(HALTED_STATUS);
}

//! IPC system tests: the in-guest kernel-tests program exercises ports, rights, messages,
//! port sets, timeouts, queue limits, dead names and notifications, and reports each case on the kernel log.

use system_tests::{BootConfig, HALTED_STATUS, Machine};

const CASES: [&str; 8] =
    ["rpc", "rights", "sets", "timeouts", "dead-names", "bad-ipc", "notifications", "ool"];

#[test]
fn ipc_cases_pass_in_guest() {
    let mut m = Machine::boot(&BootConfig::kernel_tests(&CASES.join(" ")));
    let log = m.expect_log("mach-kernel: no tasks left");
    for case in CASES {
        assert!(log.contains(&format!("case {case}: ok")), "case {case} did not pass:\n{log}");
    }
    assert!(log.contains("kernel-tests: 0 failed"), "{log}");
    // Every port, thread and page of the task is released when it ends.
    let line = log.lines().find(|l| l.contains("no tasks left")).unwrap_or_default();
    let numbers: Vec<u64> =
        line.split(|c: char| !c.is_ascii_digit()).filter_map(|w| w.parse().ok()).collect();
    assert!(numbers.len() >= 2 && numbers[0] == numbers[1], "frames not all freed: {line}");
    m.expect_exit(HALTED_STATUS);
}

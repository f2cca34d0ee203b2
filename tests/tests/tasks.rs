//! Task system tests: kernel-tests creates tasks through task ports, fills their memory,
//! starts threads in them, waits for their end notifications, terminates one, lets one
//! fault, and gives every trap that takes a port name a bad one and every trap that takes a
//! pointer bad pointers; the host port gives it the boot modules. It also serves as the
//! syscall and exception port of small children and checks the replies,
//! drives devices through the host port (I/O ports, device memory, DMA, IRQ 8) and makes
//! copy-on-write task copies (fork), sets thread priorities and shares memory (vm_map).

use system_tests::{BootConfig, HALTED_STATUS, Machine};

const CASES: [&str; 11] = [
    "tasks",
    "bad-tasks",
    "host",
    "forward",
    "exceptions",
    "devices",
    "trace",
    "suspend",
    "fork",
    "priorities",
    "vm-map",
];

#[test]
fn task_cases_pass_in_guest() {
    let mut m = Machine::boot(&BootConfig::kernel_tests(&CASES.join(" ")));
    let log = m.expect_log("mach-kernel: no tasks left");
    for case in CASES {
        assert!(log.contains(&format!("case {case}: ok")), "case {case} did not pass:\n{log}");
    }
    // The child's own exit and the faulting child's report, with the parent living on.
    assert!(log.contains("(kernel-tests.child) exited with code 7"), "{log}");
    assert!(log.contains("user fault: kernel-tests.child"), "{log}");
    assert!(log.contains("kernel-tests: 0 failed"), "{log}");
    system_tests::assert_frames_balanced(&log);
    m.expect_exit(HALTED_STATUS);
}

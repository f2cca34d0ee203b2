//! The holes of issue 9, each its own boot (one that stops the kernel cannot hide another):
//! every case must pass, the kernel must halt cleanly, and every frame must come back.

use system_tests::{BootConfig, HALTED_STATUS, Machine};

fn hole_case_passes(case: &str) {
    let mut m = Machine::boot(&BootConfig::kernel_tests(case));
    let log = m.expect_log("mach-kernel: no tasks left");
    assert!(log.contains(&format!("case {case}: ok")), "case {case} did not pass:\n{log}");
    assert!(log.contains("kernel-tests: 0 failed"), "{log}");
    system_tests::assert_frames_balanced(&log);
    m.expect_exit(HALTED_STATUS);
}

#[test]
fn a_trap_with_nt_set_does_not_stop_the_kernel() {
    hole_case_passes("nt-flag");
}

#[test]
fn the_kernel_never_reads_device_memory() {
    hole_case_passes("physical");
}

#[test]
fn anywhere_placement_skips_present_pages() {
    hole_case_passes("anywhere");
}

#[test]
fn a_receive_right_is_never_queued_on_its_own_port() {
    hole_case_passes("self-receive");
}

#[test]
fn ended_tasks_are_reaped_while_threads_spin() {
    hole_case_passes("reap");
}

#[test]
fn a_malformed_forwarded_reply_is_refused_before_it_acts() {
    hole_case_passes("bad-reply");
}

#[test]
fn a_non_canonical_fs_base_is_refused() {
    hole_case_passes("fs-base");
}

#[test]
fn a_task_cannot_make_the_kernel_hold_more_than_its_limit() {
    hole_case_passes("held-limit");
}

#[test]
fn thread_get_state_of_the_calling_thread() {
    hole_case_passes("own-state");
}

#[test]
fn a_long_trap_lets_the_timer_in() {
    hole_case_passes("long-trap");
}

#[test]
fn a_task_port_is_never_a_right_the_kernel_keeps_for_a_task() {
    hole_case_passes("task-cycle");
}

#[test]
fn a_receive_right_that_leaves_wakes_its_waiters() {
    hole_case_passes("moved-receive");
}

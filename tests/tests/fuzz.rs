//! A short fuzz run: kernel-tests makes 20,000 random calls with a fixed seed (every trap with
//! good and bad names, pointers and sizes, malformed messages, foreign calls, children that
//! fault in every way; see kernel-tests/src/fuzz.rs). The kernel must not stop, every result
//! must be plausible, and every frame must come back at the halt. `make fuzz` runs long ones.

use std::time::Duration;
use system_tests::{BootConfig, HALTED_STATUS, Machine, fuzz};

const SEED: u64 = 20_240_601;
const CALLS: u64 = 20_000;
/// Every class of input that once found a hole (issue 9, all fixed): the run keeps them.
const OPTIONS: &str = "nt,selfrecv,physhigh,anywhere,badreply,fsbase,getself,longvm,taskcycle";

#[test]
fn a_short_fuzz_run_keeps_the_kernel_up_and_frees_everything() {
    let mut m = Machine::boot(&BootConfig::kernel_tests(&fuzz::case_word(SEED, CALLS, OPTIONS)));
    let (end, log) = fuzz::watch(&mut m, Duration::from_secs(900), |_| {});
    if let Err(why) = fuzz::judge(end, &log) {
        panic!("{}", fuzz::diagnosis(&log, SEED, CALLS, OPTIONS, &why));
    }
    assert_eq!(end, fuzz::End::Exited(HALTED_STATUS));
    assert!(
        log.contains("kernel-tests: 0 failed"),
        "{}",
        fuzz::diagnosis(&log, SEED, CALLS, OPTIONS, "failed")
    );
}

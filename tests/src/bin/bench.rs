//! `make bench`: boots kernel-tests' `bench` case under `-icount shift=0` (the guest's
//! time-stamp counter then counts guest instructions exactly, the same on every run) and
//! prints its measurements.

use std::time::Duration;
use system_tests::{BootConfig, HALTED_STATUS, Machine};

fn main() {
    let mut config = BootConfig::kernel_tests("bench");
    config.qemu_args = ["-icount", "shift=0,sleep=off", "-rtc", "base=2024-01-01T00:00:00,clock=vm"]
        .map(String::from)
        .to_vec();
    let mut m = Machine::boot(&config);
    let log = m.wait_for_log("case bench:", Duration::from_secs(300)).unwrap_or_else(|e| panic!("{e}"));
    println!("guest instructions (QEMU -icount shift=0), kernel-tests bench:");
    for line in log.lines().filter(|l| l.contains("bench:")) {
        println!("  {}", line.trim_start_matches("kernel-tests: "));
    }
    let status = m.wait_exit(Duration::from_secs(60)).unwrap_or_else(|e| panic!("{e}"));
    if !log.contains("case bench: ok") || status != HALTED_STATUS {
        eprintln!("bench failed (QEMU status {status}):\n{log}");
        std::process::exit(1);
    }
}

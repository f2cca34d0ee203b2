//! `make bench`: boots kernel-tests' `bench` case under `-icount shift=0` (the guest's
//! time-stamp counter then counts guest instructions exactly, the same on every run) and
//! prints its measurements; then the servers' `bench-fs` case twice: under icount for
//! instruction counts, and under plain TCG for the wall-clock pace of sequential transfers.

use std::time::Duration;
use system_tests::{BootConfig, HALTED_STATUS, Machine};

/// Boot `config`, wait for `done`, print the lines that contain `tag`; exit 1 on a failure.
fn run(config: &BootConfig, done: &str, tag: &str, prefix: &str) -> Vec<String> {
    let mut m = Machine::boot(config);
    let log = m.wait_for_log(done, Duration::from_secs(600)).unwrap_or_else(|e| panic!("{e}"));
    let lines: Vec<String> =
        log.lines().filter(|l| l.contains(tag)).map(|l| l.trim_start_matches(prefix).to_string()).collect();
    let status = m.wait_exit(Duration::from_secs(120)).unwrap_or_else(|e| panic!("{e}"));
    if !log.contains(&format!("{done} ok")) || status != HALTED_STATUS {
        eprintln!("bench failed (QEMU status {status}):\n{log}");
        std::process::exit(1);
    }
    lines
}

fn main() {
    let icount = |sleep: &str| {
        ["-icount", &format!("shift=0{sleep}"), "-rtc", "base=2024-01-01T00:00:00,clock=vm"]
            .map(String::from)
            .to_vec()
    };
    let mut config = BootConfig::kernel_tests("bench");
    config.qemu_args = icount(",sleep=off");
    println!("guest instructions (QEMU -icount shift=0), kernel-tests bench:");
    for line in run(&config, "case bench:", "bench:", "kernel-tests: ") {
        println!("  {line}");
    }

    // Disk waits are idle time: with sleep=off each would jump to the next timer tick, so
    // this run lets idle time pass as on the host (the uncached figures include it).
    let mut config = BootConfig::servers("bench-fs", "rootfs.img");
    config.qemu_args = icount("");
    println!("guest instructions (QEMU -icount shift=0), server-tests bench-fs (fs-server, block server;");
    println!("  where the disk works, the guest idles and the count includes the idle time):");
    for line in run(&config, "case bench-fs:", "bench-fs:", "server-tests: ") {
        println!(
            "  {}",
            line.split(", ").filter(|part| !part.ends_with(" ms")).collect::<Vec<_>>().join(", ")
        );
    }
    let mut config = BootConfig::servers("bench-fs", "rootfs-4k.img");
    config.qemu_args = icount("");
    println!("the same on 4 KiB blocks (rootfs-4k.img; a 4 KiB read is one block, not four):");
    for line in run(&config, "case bench-fs:", "4 KiB fs.read", "server-tests: ") {
        println!("  {line}");
    }
    let mut config = BootConfig::unix("/bin/bench");
    config.qemu_args = icount("");
    println!(
        "guest instructions (QEMU -icount shift=0), Linux system calls through personality-unix (/bin/bench):"
    );
    let mut m = Machine::boot(&config);
    m.wait_for_log("mach-kernel: no tasks left", Duration::from_secs(600)).unwrap_or_else(|e| panic!("{e}"));
    let console = m.console().replace('\r', "");
    for line in console.lines().filter(|l| l.starts_with("bench-unix:")) {
        println!("  {}", line.trim_start_matches("bench-unix: "));
    }
    if console.lines().filter(|l| l.starts_with("bench-unix:")).count() < 6 {
        eprintln!("bench failed:\n{console}\n{}", m.log());
        std::process::exit(1);
    }
    drop(m);
    // The same two calls by an xv6 program (`int $64` to the xv6 personality), started from
    // busybox's shell through the Unix personality's exec hand-over.
    let mut config = BootConfig::custom(
        "",
        &[
            ("bootstrap", "bootstrap"),
            ("block", "block"),
            ("fs-server", "fs-server"),
            ("console", "console"),
            ("personality-xv6", "personality-xv6"),
            ("personality-unix", "personality-unix /bin/busybox sh -c /xv6/bench"),
        ],
    );
    config.qemu_args = icount("");
    println!(
        "guest instructions (QEMU -icount shift=0), xv6 system calls through personality-xv6 (/xv6/bench):"
    );
    let mut m = Machine::boot(&config);
    m.wait_for_log("mach-kernel: no tasks left", Duration::from_secs(600)).unwrap_or_else(|e| panic!("{e}"));
    let console = m.console().replace('\r', "");
    for line in console.lines().filter(|l| l.starts_with("bench-xv6:")) {
        println!("  {}", line.trim_start_matches("bench-xv6: "));
    }
    if console.lines().filter(|l| l.starts_with("bench-xv6:")).count() < 2 {
        eprintln!("bench failed:\n{console}\n{}", m.log());
        std::process::exit(1);
    }
    drop(m);
    let config = BootConfig::servers("bench-fs", "rootfs.img");
    println!("wall clock under TCG (no icount), server-tests bench-fs:");
    for line in run(&config, "case bench-fs:", "bench-fs: sequential", "server-tests: ") {
        let ms: f64 =
            line.rsplit(", ").next().and_then(|t| t.trim_end_matches(" ms").parse().ok()).unwrap_or(0.0);
        let what = line.split(':').nth(1).unwrap_or("").trim();
        let what = what.split(':').next().unwrap_or(what);
        println!("  {what}: {ms} ms, {:.1} MiB/s", 20.0 / (ms / 1000.0));
    }
}

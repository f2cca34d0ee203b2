//! `make fuzz SEED=... CALLS=... FUZZ_OPTIONS=...`: a long run of kernel-tests' `fuzz` case
//! (kernel-tests/src/fuzz.rs). Prints the guest's progress lines as they come; at the end
//! compares the free frames at the halt with those before the first task. On a failure (a
//! kernel panic, an unexpected result, lost frames, a hang) it prints the seed, the last
//! progress line, how to rerun with every call printed, and the end of the kernel log, and
//! exits with status 1. A kernel that does not halt within 30 s of kernel-tests' end (a task
//! was never ended) is a failure too.
//!
//! Arguments: SEED (default: from the clock) CALLS (default 100,000) OPTIONS (default none)
//! TIMEOUT_SECONDS (default 300 + CALLS / 50). The whole kernel log goes to build/fuzz.log (or
//! to the file the environment variable FUZZ_LOG names).

use std::time::{Duration, Instant};
use system_tests::{BootConfig, Machine, fuzz};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let arg = |i: usize| args.get(i).map(String::as_str).filter(|s| !s.is_empty());
    let seed: u64 = arg(0).map(|s| parse(s, "SEED")).unwrap_or_else(|| {
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
        now.as_secs() ^ u64::from(now.subsec_nanos())
    });
    let calls: u64 = arg(1).map(|s| parse(s, "CALLS")).unwrap_or(100_000);
    let options = arg(2).unwrap_or("").to_string();
    let timeout = Duration::from_secs(arg(3).map(|s| parse(s, "TIMEOUT")).unwrap_or(300 + calls / 50));
    let word = fuzz::case_word(seed, calls, &options);
    println!("fuzz: booting kernel-tests {word} (timeout {} s)", timeout.as_secs());

    let started = Instant::now();
    let mut m = Machine::boot(&BootConfig::kernel_tests(&word));
    // The fuzzer's lines and any of the kernel's own failure, as they come.
    let (end, log) = fuzz::watch(&mut m, timeout, |line| {
        if line.contains("fuzz:") || line.contains("KERNEL") {
            println!("  [{:>6.1} s] {line}", started.elapsed().as_secs_f64());
        }
    });
    drop(m); // QEMU is killed if it still runs
    let saved = std::env::var_os("FUZZ_LOG")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| system_tests::repo_root().join("build").join("fuzz.log"));
    if std::fs::write(&saved, &log).is_ok() {
        println!("fuzz: the whole kernel log is in {}", saved.display());
    }
    let elapsed = started.elapsed().as_secs_f64();
    match fuzz::judge(end, &log) {
        Ok(()) => {
            let (after, before) = system_tests::frames_at_halt(&log).unwrap_or_default();
            println!(
                "fuzz: passed: seed {seed}, {calls} calls in {elapsed:.1} s; frames free {before} before, {after} after"
            );
        }
        Err(why) => {
            eprintln!("{}", fuzz::diagnosis(&log, seed, calls, &options, &why));
            eprintln!("fuzz: failed after {elapsed:.1} s");
            std::process::exit(1);
        }
    }
}

fn parse(text: &str, what: &str) -> u64 {
    let parsed = match text.strip_prefix("0x") {
        Some(hex) => u64::from_str_radix(hex, 16),
        None => text.parse(),
    };
    parsed.unwrap_or_else(|_| {
        eprintln!("fuzz: {what} {text:?} is not a number");
        std::process::exit(2)
    })
}

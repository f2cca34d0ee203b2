//! `make boot-time`: how long from launching QEMU to the kernel banner, to the first
//! user-mode output, and to our shell's prompt on the console, through the direct loader.
//! Boots five times and prints each run and the medians. Wall-clock time on this host under
//! TCG: a measurement, not a test.

use std::time::{Duration, Instant};
use system_tests::{BootConfig, Machine};

const RUNS: usize = 5;

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn main() {
    let config = BootConfig::default_boot();
    let (mut banner, mut user, mut prompt) = (Vec::new(), Vec::new(), Vec::new());
    for run in 1..=RUNS {
        let start = Instant::now();
        let mut m = Machine::boot(&config);
        let wait = |m: &mut Machine, text: &str| {
            m.wait_for_log(text, Duration::from_secs(30)).unwrap_or_else(|e| panic!("{e}"));
            start.elapsed()
        };
        let b = wait(&mut m, "Machina mach-kernel");
        let u = wait(&mut m, "bootstrap: hello from user mode");
        m.wait_for_console("/ $ ", Duration::from_secs(30)).unwrap_or_else(|e| panic!("{e}"));
        let p = start.elapsed();
        println!(
            "run {run}: banner {:.3} s, first user output {:.3} s, shell prompt {:.3} s",
            b.as_secs_f64(),
            u.as_secs_f64(),
            p.as_secs_f64()
        );
        banner.push(b);
        user.push(u);
        prompt.push(p);
    }
    println!(
        "median of {RUNS}: QEMU launch -> kernel banner {:.3} s; -> first user-mode output {:.3} s; -> shell prompt {:.3} s",
        median(banner).as_secs_f64(),
        median(user).as_secs_f64(),
        median(prompt).as_secs_f64()
    );
}

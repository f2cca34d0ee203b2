//! `trace` (issue 12, first part): every message hop of a traced program's system calls,
//! seen from our shell. An uncached read goes app, kernel, personality, fs-server, block
//! server, the device's interrupt, and back; a cached one stops at fs-server.

use std::time::Duration;
use system_tests::{BootConfig, HALTED_STATUS, Machine};

fn at_prompt(m: &mut Machine, n: usize, line: &str) {
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while m.console().matches(" $ ").count() < n {
        assert!(std::time::Instant::now() < deadline, "no prompt {n}:\n{}", m.console());
        std::thread::sleep(Duration::from_millis(10));
    }
    m.type_text(format!("{line}\r").as_bytes());
}

/// What the console showed between prompt `n` and prompt `n + 1`.
fn between_prompts(m: &mut Machine, n: usize) -> String {
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let console = m.console().replace('\r', "");
        let parts: Vec<&str> = console.split(" $ ").collect();
        if parts.len() > n + 1 {
            return parts[n].to_string();
        }
        assert!(std::time::Instant::now() < deadline, "no prompt {}:\n{console}", n + 1);
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// `lines` appear in `text` in this order (each after the one before).
fn in_order(text: &str, lines: &[&str]) {
    let mut at = 0;
    for line in lines {
        match text[at..].find(line) {
            Some(i) => at += i + line.len(),
            None => panic!("{line:?} missing (or out of order) after byte {at} of:\n{text}"),
        }
    }
}

#[test]
fn trace_shows_the_hops_of_an_uncached_and_a_cached_read() {
    let mut m = Machine::boot(&BootConfig::default_boot());
    // A block of /bin/hello far into the file (nothing has read it since the boot, and the
    // open's read-ahead does not reach it): the read goes all the way to the device.
    let dd = "trace -e read dd if=/bin/hello of=/dev/null bs=4096 skip=120 count=1";
    at_prompt(&mut m, 1, dd);
    let uncached = between_prompts(&mut m, 1);
    in_order(
        &uncached,
        &[
            "read(0) = 4096   [dd[",
            "trap     dd[",
            "send     dd[",
            "syscall",
            "receive  personality-unix <- port",
            "send     personality-unix -> port",
            "io.read",
            "receive  fs-server <- port",
            "send     fs-server -> port",
            "blk.read",
            "receive  block <- port",
            "irq      block <- the device's interrupt",
            "reply    block -> port",
            "blk.read.reply",
            "receive  fs-server <- port",
            "reply    fs-server -> port",
            "io.read.reply",
            "receive  personality-unix <- port",
            "reply    personality-unix -> port",
            "syscall.reply",
            "resume   dd[",
            "] = 4096",
        ],
    );
    assert!(uncached.contains(" 0 dropped; dd exited with status 0"), "{uncached}");
    // The second time the block is in fs-server's cache: the block server is not reached.
    at_prompt(&mut m, 2, dd);
    let cached = between_prompts(&mut m, 2);
    in_order(&cached, &["read(0) = 4096", "receive  fs-server <- port", "io.read.reply", "resume   dd["]);
    assert!(
        !cached.contains("blk.read") && !cached.contains("irq "),
        "a cached read reached the block server:\n{cached}"
    );
    // The summary names the servers and the processes.
    at_prompt(&mut m, 3, "trace -c cat /etc/motd");
    let summary = between_prompts(&mut m, 3);
    for line in ["call ", "sendfile ", "execve ", "fs-server ", "personality-unix ", "cat["] {
        assert!(summary.lines().any(|l| l.starts_with(line)), "{line:?} missing:\n{summary}");
    }
    at_prompt(&mut m, 4, "trace; echo status $?");
    m.wait_for_console("status 2", Duration::from_secs(30)).unwrap_or_else(|e| panic!("{e}"));
    at_prompt(&mut m, 5, "exit");
    m.wait_for_log("mach-kernel: no tasks left", Duration::from_secs(30)).unwrap_or_else(|e| panic!("{e}"));
    m.expect_exit(HALTED_STATUS);
}

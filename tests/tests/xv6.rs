//! The xv6 personality beside the Unix one (issue 13): xv6 programs run from our shell (exec
//! hands them over by their ELF note), usertests passes in full, the xv6 shell runs
//! pipelines of xv6 tools, descriptors cross both ways (files, the terminal, pipes), a Linux
//! and an xv6 process share a file, `ps` and `trace` show the personality, and ending the
//! xv6 personality ends its processes and nothing else.

use std::time::Duration;
use system_tests::{BootConfig, HALTED_STATUS, Machine};

/// Wait until the console shows `prompt` at least `n` times, then type `line`.
fn at_prompt(m: &mut Machine, prompt: &str, n: usize, line: &str) {
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while m.console().matches(prompt).count() < n {
        assert!(
            std::time::Instant::now() < deadline,
            "no prompt {n} ({prompt:?}):\n{}\n{}",
            m.console(),
            m.log()
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    m.type_text(format!("{line}\r").as_bytes());
}

/// Our shell's prompt in `/`; xv6's shell prints "$ " at the start of a line.
const OURS: &str = "/ $ ";
const XV6: &str = "\n$ ";

/// Type `exit` at our shell's prompt (`prompt`, the `n`th) and wait for the halt, every
/// frame back.
fn exit_and_halt(m: &mut Machine, prompt: &str, n: usize) {
    at_prompt(m, prompt, n, "exit");
    let log = m
        .wait_for_log("mach-kernel: no tasks left", Duration::from_secs(60))
        .unwrap_or_else(|e| panic!("{e}"));
    system_tests::assert_frames_balanced(&log);
    m.expect_exit(HALTED_STATUS);
}

/// What the console showed after our shell's prompt `n`, up to the next one.
fn after_prompt(m: &mut Machine, n: usize) -> String {
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let console = m.console().replace('\r', "");
        if let Some(text) = console.split(OURS).nth(n).filter(|_| console.matches(OURS).count() > n) {
            return text.to_string();
        }
        assert!(std::time::Instant::now() < deadline, "no prompt {}:\n{console}", n + 1);
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn wait_for(m: &mut Machine, text: &str, seconds: u64) -> String {
    m.wait_for_console(text, Duration::from_secs(seconds)).unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn usertests_passes_in_full_under_the_xv6_personality() {
    let mut m = Machine::boot(&BootConfig::default_boot());
    at_prompt(&mut m, OURS, 1, "mkdir /u && cd /u && /xv6/usertests; echo status $?");
    // Until the next prompt: the status line is whole then.
    let console = wait_for(&mut m, "\n/u $ ", 300);
    assert!(console.contains("ALL TESTS PASSED") && console.contains("status 0"), "{console}");
    assert!(!console.contains("FAILED"), "{console}");
    // Each test said OK (a test that never ran would not).
    for test in ["forkloop", "pipe", "sbrk", "manyfiles", "bigfile", "badpointers", "kill"] {
        assert!(console.contains(&format!("test {test}: OK")), "{test}:\n{console}");
    }
    exit_and_halt(&mut m, "/u $ ", 1);
}

#[test]
fn the_xv6_shell_runs_pipelines_of_xv6_tools_and_linux_programs() {
    let mut m = Machine::boot(&BootConfig::default_boot());
    at_prompt(&mut m, OURS, 1, "/xv6/sh");
    let lines = [
        ("echo hello xv6 | wc", "1 2 10"),
        ("ls /xv6 | grep usertests | wc", "1 4 "),
        ("(echo a; echo b; echo c) | grep b", "\nb\r\n"),
        ("mkdir /x; echo one two > /x/f; cat /x/f | wc", "1 2 8"),
        ("echo first ; echo second", "first\r\nsecond"),
        // A Linux program from the xv6 shell goes back to the Unix personality, with the
        // xv6 pipe as its output.
        ("/bin/busybox echo from linux | wc", "1 2 11"),
        // ps (a Linux program run from the xv6 shell) lists the xv6 personality's own
        // process too: the shell's child, running as the Unix personality's ps.
        ("/bin/ps", "\nxv6:"),
    ];
    for (i, (line, shown)) in lines.iter().enumerate() {
        at_prompt(&mut m, XV6, i + 1, line);
        wait_for(&mut m, shown, 30);
    }
    at_prompt(&mut m, XV6, lines.len() + 1, "ls /x");
    wait_for(&mut m, &format!("\nf{}2 ", " ".repeat(14)), 30);
    let lines = [lines.as_slice(), &[("", "")]].concat();
    // `exit` comes back to our shell.
    at_prompt(&mut m, XV6, lines.len() + 1, "exit");
    at_prompt(&mut m, OURS, 2, "echo back in our shell");
    wait_for(&mut m, "\nback in our shell", 30);
    exit_and_halt(&mut m, OURS, 3);
}

#[test]
fn descriptors_cross_between_personalities_and_both_share_files() {
    let mut m = Machine::boot(&BootConfig::default_boot());
    // A Linux program's pipe into an xv6 program: the same counts as busybox's wc gives.
    at_prompt(&mut m, OURS, 1, "ls / | /xv6/wc; ls / | busybox wc; echo counted");
    let console = wait_for(&mut m, "\ncounted", 30);
    let numbers =
        |line: &str| -> Vec<u64> { line.split_whitespace().filter_map(|w| w.parse().ok()).collect() };
    let counts: Vec<Vec<u64>> =
        console.lines().skip_while(|l| !l.contains("/xv6/wc;")).skip(1).take(2).map(numbers).collect();
    assert!(counts.len() == 2 && counts[0].len() == 3 && counts[0] == counts[1], "{counts:?}\n{console}");
    let lines = [
        ("", ""),
        // And back: an xv6 program's pipe into a Linux one.
        ("/xv6/cat /etc/motd | grep Machina", "\nWelcome to Machina."),
        // The same file written in turn, each reading the other's data.
        ("echo written by linux > /shared", ""),
        ("/xv6/sh", ""),
    ];
    for (i, (line, shown)) in lines.iter().enumerate().skip(1) {
        at_prompt(&mut m, OURS, i + 1, line);
        if !shown.is_empty() {
            wait_for(&mut m, shown, 30);
        }
    }
    at_prompt(&mut m, XV6, 1, "cat /shared");
    wait_for(&mut m, "cat /shared\r\nwritten by linux", 30);
    at_prompt(&mut m, XV6, 2, "echo and by xv6 >> /shared");
    at_prompt(&mut m, XV6, 3, "exit");
    at_prompt(&mut m, OURS, 5, "cat /shared");
    wait_for(&mut m, "written by linux\r\nand by xv6\r\n", 30);
    at_prompt(&mut m, OURS, 6, "echo linux again >> /shared; /xv6/wc /shared");
    // 17 + 11 + 12 bytes.
    wait_for(&mut m, "3 8 40 /shared", 30);
    exit_and_halt(&mut m, OURS, 7);
    // What both wrote is on the disk, and the disk is clean (checked by expect_exit).
}

#[test]
fn ps_and_trace_show_the_personality() {
    let mut m = Machine::boot(&BootConfig::default_boot());
    // An xv6 shell reading from a pipe that stays open a while: a running xv6 process.
    at_prompt(&mut m, OURS, 1, "busybox sh -c 'sleep 2; echo exit' | /xv6/sh & ps");
    let ps = after_prompt(&mut m, 1);
    assert!(ps.lines().any(|l| l.contains(" xv6 ") && l.trim_end().ends_with("sh")), "{ps}");
    assert!(ps.lines().any(|l| l.contains(" unix ") && l.trim_end().ends_with("ps")), "{ps}");
    at_prompt(&mut m, OURS, 2, "wait; trace -e open,read /xv6/cat /etc/motd");
    let traced = wait_for(&mut m, "exited with status 0", 60);
    // xv6's calls are named by xv6's numbers, go to the xv6 personality, and reach the same
    // fs-server as a Linux cat's.
    for line in [
        "open(",
        "[cat[",
        "-> personality-xv6 syscall",
        "personality-xv6 -> fs-server fs.open",
        "io.read.reply Ok(b\"Welcome to Machina.\\n\")",
    ] {
        assert!(traced.contains(line), "{line:?} missing:\n{traced}");
    }
    at_prompt(&mut m, OURS, 3, "trace -e openat cat /etc/motd");
    let linux = wait_for(&mut m, "; cat exited with status 0", 60);
    assert!(linux.contains("personality-unix -> fs-server fs.open"), "{linux}");
    exit_and_halt(&mut m, OURS, 4);
}

#[test]
fn ending_the_xv6_personality_ends_its_processes_and_leaves_unix_ones_running() {
    let mut m = Machine::boot(&BootConfig::default_boot());
    // An xv6 shell waiting for its input, and a Linux sleep beside it.
    at_prompt(&mut m, OURS, 1, "busybox sh -c 'sleep 8; echo echo late' | /xv6/sh & sleep 8 &");
    at_prompt(&mut m, OURS, 2, "servers --end xv6");
    wait_for(&mut m, "servers: xv6 ended", 30);
    m.wait_for_log("its syscall port is dead (its personality ended): ending it", Duration::from_secs(30))
        .unwrap_or_else(|e| panic!("{e}"));
    // The xv6 shell's process ended (as by SIGKILL); the Linux sleep still runs.
    at_prompt(&mut m, OURS, 3, "ps");
    let after = after_prompt(&mut m, 3);
    assert!(!after.contains(" xv6 "), "{after}");
    assert!(after.lines().any(|l| l.trim_end().ends_with("sleep") && l.contains(" unix ")), "{after}");
    at_prompt(&mut m, OURS, 4, "echo still here; /xv6/echo x; echo status $?");
    wait_for(&mut m, "status 126", 30);
    let console = m.console();
    assert!(console.contains("\nstill here"), "{console}");
    // Unix learnt of the end from the report port's no-senders: as by SIGKILL.
    m.wait_for_log("(sh) ended by signal 9", Duration::from_secs(10)).unwrap_or_else(|e| panic!("{e}"));
    at_prompt(&mut m, OURS, 5, "kill %1 %2; wait");
    exit_and_halt(&mut m, OURS, 6);
}

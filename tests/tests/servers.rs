//! The servers through their protocols (issue 10): bootstrap starts block, fs-server and
//! console in order under its policy; server-tests, the in-guest client, uses them. After
//! every boot that wrote to its disk, the harness runs `e2fsck -fn` on the disk
//! (`Machine::expect_exit`), so each test also proves the file system was left clean.

use std::time::Duration;
use system_tests::{BootConfig, HALTED_STATUS, Machine};

/// Boot the servers with server-tests running `cases` on `disk`; wait for its end and the
/// halt; return the kernel log.
fn run(cases: &str, disk: &str, timeout: Duration) -> (Machine, String) {
    run_config(BootConfig::servers(cases, disk), cases, timeout)
}

fn run_config(config: BootConfig, cases: &str, timeout: Duration) -> (Machine, String) {
    let mut m = Machine::boot(&config);
    let log = m.wait_for_log("mach-kernel: no tasks left", timeout).unwrap_or_else(|e| panic!("{e}"));
    for case in cases.split_whitespace() {
        assert!(log.contains(&format!("server-tests: case {case}: ok")), "case {case} did not pass:\n{log}");
    }
    assert!(log.contains("server-tests: server-tests: 0 failed"), "{log}");
    assert!(log.contains("bootstrap: Machina: file system synced"), "no orderly shutdown:\n{log}");
    assert!(!log.contains("panic"), "{log}");
    system_tests::assert_frames_balanced(&log);
    m.expect_exit(HALTED_STATUS);
    (m, log)
}

#[test]
fn servers_start_in_order_and_only_the_policy_hands_out_rights() {
    // Beside server-tests, a program the policy names nowhere (kernel-tests): nothing
    // private reaches it.
    let cases = "policy hostile block fs-files";
    let mut config = BootConfig::servers(cases, "rootfs.img");
    config.conf.push_str(
        "    module_path: boot():/boot/kernel-tests\n    module_cmdline: kernel-tests private-names\n",
    );
    let (m, log) = run_config(config, cases, Duration::from_secs(120));
    assert!(log.contains("kernel-tests: case private-names: ok"), "{log}");
    let at = |text: &str| log.find(text).unwrap_or_else(|| panic!("missing {text:?}:\n{log}"));
    // block, then fs-server on it, then console: each after the one before registered.
    assert!(at("Machina: block is up as \"blk\"") < at("started /boot/fs-server"), "{log}");
    assert!(at("Machina: fs-server is up as \"fs\"") < at("started /boot/console"), "{log}");
    assert!(log.contains("fs-server: ext2 on blk"), "{log}");
    // The summary reaches the console once it is up; the kernel log does not.
    let console = m.console();
    for line in
        ["Machina: block is up as \"blk\"", "Machina: console is up as \"console\"", "Machina: halting"]
    {
        assert!(console.contains(line), "console lacks {line:?}: {console:?}");
    }
    assert!(!console.contains("mach-kernel"), "kernel log on the console: {console:?}");
}

#[test]
fn a_20_mib_file_reaches_the_triple_indirect_blocks() {
    let (m, log) = run("fs-big", "rootfs.img", Duration::from_secs(300));
    println!("{}", log.lines().filter(|l| l.contains("fs-big:")).collect::<Vec<_>>().join("\n"));
    // An independent reader: debugfs says the file has a triple-indirect block.
    let out = std::process::Command::new("debugfs")
        .env("PATH", "/usr/sbin:/sbin:/usr/bin:/bin")
        .args(["-R", "stat /big"])
        .arg(m.disk())
        .output()
        .expect("debugfs");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("(TIND)"), "no triple-indirect block in /big:\n{text}");
    assert!(text.contains("Size: 73400320"), "size of /big:\n{text}");
}

#[test]
fn four_kib_blocks_and_a_directory_of_1000_entries() {
    run("fs-files fs-dir", "rootfs-4k.img", Duration::from_secs(240));
}

#[test]
fn a_full_disk_answers_enospc_and_loses_nothing() {
    let (_, log) = run("fs-full", "small.img", Duration::from_secs(240));
    println!("{}", log.lines().filter(|l| l.contains("fs-full:")).collect::<Vec<_>>().join("\n"));
}

#[test]
fn the_block_server_is_killed_three_times_and_the_reader_sees_no_error() {
    let (_, log) = run("restart", "rootfs.img", Duration::from_secs(400));
    let restarts = log.lines().filter(|l| l.contains("bootstrap: restarted block (restart")).count();
    assert_eq!(restarts, 3, "restarts logged:\n{log}");
    let reconnects: Vec<&str> =
        log.lines().filter(|l| l.contains("fs-server: block server back after")).collect();
    assert!(!reconnects.is_empty(), "fs-server never noticed:\n{log}");
    println!("{}", reconnects.join("\n"));
    println!("{}", log.lines().filter(|l| l.contains("restart:")).collect::<Vec<_>>().join("\n"));
}

#[test]
fn two_console_clients_writing_at_once_lose_nothing() {
    let (m, _) = run("console-two", "rootfs.img", Duration::from_secs(120));
    let console = m.console().replace('\r', "");
    for letter in ['A', 'B'] {
        for i in 0..40 {
            let head = format!("{letter}{i:02}:");
            let line = format!("{head}{}", letter.to_string().repeat(70 - head.len()));
            assert!(console.lines().any(|l| l == line), "line {head} missing or broken:\n{console}");
        }
    }
}

#[test]
fn console_echo_line_editing_and_events() {
    let mut m = Machine::boot(&BootConfig::servers("console-echo", "rootfs.img"));
    // Typed before anyone reads: kept in the console's input buffer.
    m.expect_log("Machina: console is up as \"console\"");
    m.type_text(b"early\r");
    m.expect_console("echo ready> ");
    m.expect_console("got [early]");
    // Backspace (DEL), ^W (word), ^U (line), then ^C (an event, and the line is dropped).
    for (typed, want) in [
        (&b"abc\x7fd\r"[..], "got [abd]"),
        (b"hello wor\x17there\r", "got [hello there]"),
        (b"junk\x15ok\r", "got [ok]"),
        (b"lost\x03kept\r", "got [kept]"),
        (b"\x04", "got end of file"),
    ] {
        m.type_text(typed);
        m.expect_console(want);
    }
    m.type_text(b"quit\r");
    let log = m.expect_log("console-echo: events");
    assert!(log.contains("console-echo: events [Some(Interrupt)]"), "{log}");
    let console = m.console();
    assert!(console.contains("abc\x08 \x08d"), "backspace echo: {console:?}");
    assert!(console.contains("^C"), "^C echoed: {console:?}");
    m.expect_log("mach-kernel: no tasks left");
    m.expect_exit(HALTED_STATUS);
}

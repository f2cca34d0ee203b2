//! The Unix personality (issue 11, first step): a static Linux program (Rust std, musl,
//! static-pie) read from the ext2 disk, loaded into a task, its system calls served as
//! messages by personality-unix, its output on the console through the console server.

use std::time::Duration;
use system_tests::{BootConfig, HALTED_STATUS, Machine};

#[test]
fn a_rust_std_program_runs_on_the_unix_personality() {
    let config = BootConfig::custom(
        "",
        &[
            ("bootstrap", "bootstrap"),
            ("block", "block"),
            ("fs-server", "fs-server"),
            ("console", "console"),
            ("personality-unix", "personality-unix /bin/hello 7 two"),
        ],
    );
    let mut m = Machine::boot(&config);
    let log = m
        .wait_for_log("mach-kernel: no tasks left", Duration::from_secs(60))
        .unwrap_or_else(|e| panic!("{e}"));
    let console = m.console().replace('\r', "");
    for line in [
        "hello from a Linux program on Machina",
        "argv: [\"/bin/hello\", \"7\", \"two\"]",
        "PATH=/bin",
        "heap: the sum of 1..=10000 is 50005000",
    ] {
        assert!(console.lines().any(|l| l == line), "console lacks {line:?}:\n{console}\n--- log ---\n{log}");
    }
    assert!(log.contains("personality-unix: process 1 (hello) exited with status 7"), "{log}");
    system_tests::assert_frames_balanced(&log);
    m.expect_exit(HALTED_STATUS);
}

/// Boot the servers and the personality running `hello` with `args`.
fn boot_hello(args: &str) -> Machine {
    let config = BootConfig::custom(
        "",
        &[
            ("bootstrap", "bootstrap"),
            ("block", "block"),
            ("fs-server", "fs-server"),
            ("console", "console"),
            ("personality-unix", &format!("personality-unix /bin/hello {args}")),
        ],
    );
    Machine::boot(&config)
}

#[test]
fn std_fs_reads_writes_and_lists_files_through_fs_server() {
    let mut m = boot_hello("files");
    let log = m
        .wait_for_log("mach-kernel: no tasks left", Duration::from_secs(60))
        .unwrap_or_else(|e| panic!("{e}"));
    let console = m.console().replace('\r', "");
    for line in [
        "motd: Welcome to Machina.",
        "motd size: Ok(20)",
        "write /hello.txt: Ok(())",
        "read back: Ok(\"written by hello\\n\")",
        "missing: Err(NotFound)",
        "/dev/null: Ok(())",
    ] {
        assert!(console.lines().any(|l| l == line), "console lacks {line:?}:\n{console}\n--- log ---\n{log}");
    }
    let listing = console.lines().find(|l| l.starts_with("ls /: ")).unwrap_or_default();
    for name in ["bin", "etc", "hello.txt", "lost+found"] {
        assert!(listing.split(' ').any(|n| n == name), "ls / lacks {name}: {listing:?}");
    }
    assert!(log.contains("process 1 (hello) exited with status 0"), "{log}");
    // The file it wrote is on the disk, and e2fsck finds the disk clean (expect_exit).
    m.expect_exit(HALTED_STATUS);
}

#[test]
fn a_terminal_read_waits_for_the_typed_line() {
    let mut m = boot_hello("read");
    m.expect_console("type a line> ");
    m.type_text(b"hello machina\r");
    m.expect_console("you typed 14 bytes: [hello machina]");
    m.wait_for_log("mach-kernel: no tasks left", Duration::from_secs(60)).unwrap_or_else(|e| panic!("{e}"));
    m.expect_exit(HALTED_STATUS);
}

#[test]
fn our_shell_forks_execs_and_waits() {
    let config = BootConfig::custom(
        "",
        &[
            ("bootstrap", "bootstrap"),
            ("block", "block"),
            ("fs-server", "fs-server"),
            ("console", "console"),
            (
                "personality-unix",
                "personality-unix /bin/sh -c '/bin/hello 3; /bin/hello status $? $$ && /bin/hello 5'",
            ),
        ],
    );
    let mut m = Machine::boot(&config);
    let log = m
        .wait_for_log("mach-kernel: no tasks left", Duration::from_secs(60))
        .unwrap_or_else(|e| panic!("{e}"));
    let console = m.console().replace('\r', "");
    assert!(console.contains("argv: [\"/bin/hello\", \"3\"]"), "{console}\n{log}");
    assert!(
        console.contains("argv: [\"/bin/hello\", \"status\", \"3\", \"1\"]"),
        "$? and $$:\n{console}\n{log}"
    );
    assert!(console.contains("argv: [\"/bin/hello\", \"5\"]"), "&& after a success:\n{console}\n{log}");
    assert!(log.contains("process 1 (sh) exited with status 5"), "{log}");
    m.expect_exit(HALTED_STATUS);
}

#[test]
fn a_pipeline_between_two_programs() {
    let config = BootConfig::custom(
        "",
        &[
            ("bootstrap", "bootstrap"),
            ("block", "block"),
            ("fs-server", "fs-server"),
            ("console", "console"),
            ("personality-unix", "personality-unix /bin/sh -c '/bin/hello 1 | /bin/hello read'"),
        ],
    );
    let mut m = Machine::boot(&config);
    let log = m
        .wait_for_log("mach-kernel: no tasks left", Duration::from_secs(60))
        .unwrap_or_else(|e| panic!("{e}"));
    let console = m.console().replace('\r', "");
    assert!(
        console.contains("you typed 38 bytes: [hello from a Linux program on Machina]"),
        "the second program read the first one's line through the pipe:\n{console}\n{log}"
    );
    assert!(
        !console.contains("argv: [\"/bin/hello\", \"1\"]"),
        "the first one's output went into the pipe:\n{console}"
    );
    assert!(log.contains("process 1 (sh) exited with status 0"), "{log}");
    m.expect_exit(HALTED_STATUS);
}

#[test]
fn make_run_ends_at_our_shell_prompt() {
    // What `make run` boots: the repository's limine.conf.
    let mut m = Machine::boot(&BootConfig::default_boot());
    m.expect_console("/ $ ");
    for (typed, shown) in [
        (&b"/bin/hello from the prompt\r"[..], "argv: [\"/bin/hello\", \"from\", \"the\", \"prompt\"]"),
        (b"cd /etc\r", "/etc $ "),
        (b"pwd\r", "pwd\r\n/etc\r\n/etc $ "),
        (b"/bin/hello files > /dev/null && /bin/hello ok\r", "argv: [\"/bin/hello\", \"ok\"]"),
        (b"/bin/hello 1 | /bin/hello read\r", "you typed 38 bytes: [hello from a Linux program on Machina]"),
        (b"nosuchcommand\r", "sh: nosuchcommand: command not found"),
    ] {
        m.type_text(typed);
        // The console turns each newline into CR LF (ONLCR).
        m.wait_for_console(shown, Duration::from_secs(30)).unwrap_or_else(|e| panic!("{e}"));
    }
    m.type_text(b"exit 3\r");
    let log = m
        .wait_for_log("mach-kernel: no tasks left", Duration::from_secs(30))
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(log.contains("process 1 (sh) exited with status 3"), "{log}");
    system_tests::assert_frames_balanced(&log);
    m.expect_exit(HALTED_STATUS);
}

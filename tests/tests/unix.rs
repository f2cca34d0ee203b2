//! The Unix personality (issue 11, first step): a static Linux program (Rust std, musl,
//! static-pie) read from the ext2 disk, loaded into a task, its system calls served as
//! messages by personality-unix, its output on the console through the console server.

use std::time::Duration;
use system_tests::{BootConfig, HALTED_STATUS, Machine};

#[test]
fn a_rust_std_program_runs_on_the_unix_personality() {
    let config = BootConfig::unix("/bin/hello 7 two");
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

/// Wait until the shell has printed its `n`-th prompt (`DIR $ `), then type `line` and Enter:
/// typing only at a prompt keeps the console's echo of the line apart from the output before.
fn at_prompt(m: &mut Machine, n: usize, line: &str) {
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while m.console().matches(" $ ").count() < n {
        assert!(std::time::Instant::now() < deadline, "no prompt {n}:\n{}\n{}", m.console(), m.log());
        std::thread::sleep(Duration::from_millis(10));
    }
    m.type_text(format!("{line}\r").as_bytes());
}

/// Type each line at the next prompt (from the first) and wait for what it shows (the
/// console turns each newline into CR LF, ONLCR).
fn type_lines(m: &mut Machine, lines: &[(&str, &str)]) {
    for (n, (typed, shown)) in lines.iter().enumerate() {
        at_prompt(m, n + 1, typed);
        m.wait_for_console(shown, Duration::from_secs(30)).unwrap_or_else(|e| panic!("{typed}: {e}"));
    }
}

/// Type each line at the next prompt and wait for what it shows; then `exit` the shell and
/// wait for the halt (every frame given back). Returns the kernel log.
fn type_lines_then_exit(m: &mut Machine, lines: &[(&str, &str)]) -> String {
    type_lines(m, lines);
    at_prompt(m, lines.len() + 1, "exit");
    let log = m
        .wait_for_log("mach-kernel: no tasks left", Duration::from_secs(30))
        .unwrap_or_else(|e| panic!("{e}"));
    system_tests::assert_frames_balanced(&log);
    log
}

/// Wait until `text` has appeared `n` times on the console.
fn wait_for_count(m: &mut Machine, text: &str, n: usize) {
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while m.console().matches(text).count() < n {
        assert!(std::time::Instant::now() < deadline, "{text:?} not {n} times:\n{}", m.console());
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Boot the servers and the personality running `hello` with `args`.
fn boot_hello(args: &str) -> Machine {
    let config = BootConfig::unix(&format!("/bin/hello {args}"));
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
        "mmap: private mapping holds the file true, file unchanged by a write true",
        "mremap: moved true, bytes kept true, new pages zero true",
        "urandom: Ok(32), not all zero true",
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
    let config = BootConfig::unix("/bin/sh -c '/bin/hello 3; /bin/hello status $? $$ && /bin/hello 5'");
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
    let config = BootConfig::unix("/bin/sh -c '/bin/hello 1 | /bin/hello read'");
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
    let lines = [
        ("/bin/hello from the prompt", "argv: [\"/bin/hello\", \"from\", \"the\", \"prompt\"]"),
        ("cd /etc", "/etc $ "),
        ("pwd", "pwd\r\n/etc\r\n/etc $ "),
        ("/bin/hello files > /dev/null && /bin/hello ok", "argv: [\"/bin/hello\", \"ok\"]"),
        ("/bin/hello 1 | /bin/hello read", "you typed 38 bytes: [hello from a Linux program on Machina]"),
        ("nosuchcommand", "sh: nosuchcommand: command not found"),
    ];
    type_lines(&mut m, &lines);
    at_prompt(&mut m, lines.len() + 1, "exit 3");
    let log = m
        .wait_for_log("mach-kernel: no tasks left", Duration::from_secs(30))
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(log.contains("process 1 (sh) exited with status 3"), "{log}");
    system_tests::assert_frames_balanced(&log);
    m.expect_exit(HALTED_STATUS);
}

#[test]
fn debian_busybox_runs_unmodified_from_our_shell() {
    let motd = std::fs::read(system_tests::repo_root().join("rootfs/etc/motd")).expect("rootfs/etc/motd");
    let host_md5 =
        std::process::Command::new("md5sum").arg(system_tests::repo_root().join("rootfs/etc/motd")).output();
    let host_md5 = String::from_utf8_lossy(&host_md5.expect("md5sum on the host").stdout)
        .split(' ')
        .next()
        .unwrap_or("")
        .to_string();
    let mut m = Machine::boot(&BootConfig::default_boot());
    let upper = String::from_utf8_lossy(&motd).trim_end().to_uppercase();
    let lines = [
        ("echo one two three | wc -w", "\r\n3\r\n".to_string()),
        ("cat /etc/motd | tr a-z A-Z", upper),
        ("md5sum /etc/motd", format!("{host_md5}  /etc/motd")),
        ("seq 1 5 | tail -2", "\r\n4\r\n5\r\n".to_string()),
        ("busybox sh -c 'echo $((6*7))'", "\r\n42\r\n".to_string()),
        ("mkdir /t && echo hi > /t/f && mv /t/f /t/g && ls /t && cat /t/g", "\r\ng\r\nhi\r\n".to_string()),
        ("ln -s g /t/l && readlink /t/l && rm /t/l /t/g && rmdir /t && ls /", "\r\ng\r\nbin".to_string()),
        ("uname -s", "\r\nLinux\r\n".to_string()),
    ];
    let lines: Vec<(&str, &str)> = lines.iter().map(|(typed, shown)| (*typed, shown.as_str())).collect();
    type_lines_then_exit(&mut m, &lines);
    // e2fsck finds the disk clean after the shell made, renamed and removed files.
    m.expect_exit(HALTED_STATUS);
}

#[test]
fn ctrl_c_ends_the_foreground_job_never_the_shell_and_sigpipe_ends_yes() {
    let mut m = Machine::boot(&BootConfig::default_boot());
    at_prompt(&mut m, 1, "sleep 100");
    // ^C while sleep runs: the console sends an Interrupt event, the personality signals the
    // terminal's foreground group (sleep's, which the shell set), and the shell goes on.
    std::thread::sleep(Duration::from_millis(500));
    m.type_text(b"\x03");
    at_prompt(&mut m, 2, "echo status $?");
    m.wait_for_console("status 130", Duration::from_secs(30)).unwrap_or_else(|e| panic!("{e}"));
    at_prompt(&mut m, 3, "yes | head -2; echo done");
    m.wait_for_console("y\r\ny\r\ndone", Duration::from_secs(30)).unwrap_or_else(|e| panic!("{e}"));
    at_prompt(&mut m, 4, "sleep 0.2 && echo slept");
    m.wait_for_console("\r\nslept\r\n", Duration::from_secs(30)).unwrap_or_else(|e| panic!("{e}"));
    at_prompt(&mut m, 5, "exit");
    let log = m
        .wait_for_log("mach-kernel: no tasks left", Duration::from_secs(30))
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(log.contains("(sleep) ended by signal 2"), "{log}");
    assert!(log.contains("(yes) ended by signal 13"), "{log}");
    system_tests::assert_frames_balanced(&log);
    m.expect_exit(HALTED_STATUS);
}

#[test]
fn poweroff_syncs_and_what_was_written_survives_a_reboot() {
    let mut m = Machine::boot(&BootConfig::default_boot());
    at_prompt(&mut m, 1, "echo written before the reboot > /kept; poweroff");
    m.wait_for_console("Machina: halting", Duration::from_secs(30)).unwrap_or_else(|e| panic!("{e}"));
    m.expect_exit(HALTED_STATUS);
    let disk = m.disk().to_path_buf();
    let saved = std::env::temp_dir().join(format!("machina-reboot-{}.img", std::process::id()));
    std::fs::copy(&disk, &saved).expect("keeping the disk");
    drop(m);
    // The same disk again: the file is there.
    let mut config = BootConfig::default_boot();
    config.disk = saved.to_string_lossy().into_owned();
    let mut m = Machine::boot(&config);
    at_prompt(&mut m, 1, "cat /kept; poweroff");
    m.wait_for_console("\r\nwritten before the reboot\r\n", Duration::from_secs(30))
        .unwrap_or_else(|e| panic!("{e}"));
    m.expect_exit(HALTED_STATUS);
    let _ = std::fs::remove_file(saved);
}

#[test]
fn many_processes_a_mebibyte_through_a_pipe_and_a_big_file() {
    let mut m = boot_hello("stress");
    let log = m
        .wait_for_log("mach-kernel: no tasks left", Duration::from_secs(300))
        .unwrap_or_else(|e| panic!("{e}"));
    let console = m.console().replace('\r', "");
    for line in [
        "stress: 200 fork + exec + wait, 0 wrong statuses",
        "stress: 1 MiB through a pipe: 1048576 bytes, checksum right",
        "stress: 20 MiB file: 20971520 bytes, checksum right",
    ] {
        assert!(console.lines().any(|l| l == line), "console lacks {line:?}:\n{console}\n--- log ---\n{log}");
    }
    // Every process's memory, page tables and ports came back.
    system_tests::assert_frames_balanced(&log);
    m.expect_exit(HALTED_STATUS);
}

#[test]
fn bad_pointers_to_30_calls_answer_efault_and_the_system_lives_on() {
    let mut m = boot_hello("efault");
    let log = m
        .wait_for_log("mach-kernel: no tasks left", Duration::from_secs(60))
        .unwrap_or_else(|e| panic!("{e}"));
    let console = m.console().replace('\r', "");
    assert!(console.contains("efault: 30 calls, not EFAULT: []"), "{console}\n--- log ---\n{log}");
    assert!(log.contains("process 1 (hello) exited with status 0"), "{log}");
    system_tests::assert_frames_balanced(&log);
    m.expect_exit(HALTED_STATUS);
}

#[test]
fn eight_threads_meet_on_a_mutex_and_signal_handlers_run() {
    let mut m = boot_hello("threads");
    m.wait_for_log("mach-kernel: no tasks left", Duration::from_secs(60)).unwrap_or_else(|e| panic!("{e}"));
    let console = m.console().replace('\r', "");
    for line in [
        "threads: 8 joined, counter 8000",
        "threads: 8 distinct thread ids, none the pid: true",
        "fpu: fork keeps the rounding mode true, a new thread too true",
    ] {
        assert!(console.lines().any(|l| l == line), "console lacks {line:?}:\n{console}\n{}", m.log());
    }
    system_tests::assert_frames_balanced(&m.log());
    m.expect_exit(HALTED_STATUS);

    let mut m = boot_hello("signals");
    m.wait_for_log("mach-kernel: no tasks left", Duration::from_secs(60)).unwrap_or_else(|e| panic!("{e}"));
    let console = m.console().replace('\r', "");
    for line in [
        "raise: handled 1 time(s), signal 10",
        "blocked: 1 while blocked, 2 after unblocking",
        "interrupted read: -1, EINTR true",
        "restarted read: 1 byte 'x', handler ran 1",
        "sigchld: handler ran 1, child exit status 3",
        "pause: -1 after 1 handler(s)",
        "stop: stopped true, then ended by signal 15",
        "altstack: handler ran on it true",
        "fpu in handlers: the handler started with the default mode true, saw its own true, ours kept true",
        "nanosleep: interrupted true, time left plausible true",
        "nonblocking: empty read EAGAIN true, full after 65536 bytes EAGAIN true, select on a reader-less pipe 1 true",
    ] {
        assert!(console.lines().any(|l| l == line), "console lacks {line:?}:\n{console}\n{}", m.log());
    }
    system_tests::assert_frames_balanced(&m.log());
    m.expect_exit(HALTED_STATUS);
}

#[test]
fn busybox_sh_runs_pipelines_functions_and_traps() {
    let mut m = Machine::boot(&BootConfig::default_boot());
    let lines = [
        ("busybox sh -c 'echo a | cat; for i in 1 2 3; do echo $i; done | wc -l'", "\r\na\r\n3\r\n"),
        ("busybox sh -c 'trap \"echo trapped\" USR1; kill -USR1 $$; echo after'", "\r\ntrapped\r\nafter\r\n"),
        ("busybox sh -c 'f() { echo f$1; }; f 1; x=$(echo sub); echo $x $((3+4))'", "\r\nf1\r\nsub 7\r\n"),
        ("busybox sh -c 'sleep 5 & kill $!; wait $!; echo waited $?'", "\r\nwaited 143\r\n"),
        // A `#!` script, run through its interpreter with its arguments; then not executable.
        (
            "printf '#!/bin/ash -e\\necho script $0 $1\\n' > /s.sh; chmod +x /s.sh; /s.sh one",
            "\r\nscript /s.sh one\r\n",
        ),
        ("chmod -x /s.sh; busybox sh -c '/s.sh; echo status $?'; rm /s.sh", "\r\nstatus 126\r\n"),
    ];
    type_lines_then_exit(&mut m, &lines);
    m.expect_exit(HALTED_STATUS);
}

/// The scripts of tests/busybox-scripts, run by Debian's busybox here (the staged disk has
/// them in /tests/busybox) and on the host (the same binary from the same .deb, its applets
/// first on PATH), give the same output, byte for byte.
#[test]
fn busybox_scripts_give_the_same_output_here_and_on_the_host() {
    let root = system_tests::repo_root();
    let busybox = root.join("build/busybox/bin/busybox");
    let mut scripts: Vec<String> = std::fs::read_dir(root.join("tests/busybox-scripts"))
        .expect("tests/busybox-scripts")
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter_map(|name| name.strip_suffix(".sh").map(String::from))
        .collect();
    scripts.sort();
    assert!(scripts.len() >= 3, "scripts: {scripts:?}");

    // On the host: a directory of applet links first on PATH, a working directory each.
    let host = std::env::temp_dir().join(format!("machina-busybox-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&host);
    std::fs::create_dir_all(host.join("bin")).expect("host bin");
    let list = std::process::Command::new(&busybox).arg("--list").output().expect("busybox --list");
    for applet in String::from_utf8_lossy(&list.stdout).lines() {
        let _ = std::os::unix::fs::symlink(&busybox, host.join("bin").join(applet));
    }
    let mut expected = Vec::new();
    for name in &scripts {
        let work = host.join("w").join(name);
        std::fs::create_dir_all(&work).expect("host work dir");
        let script = root.join(format!("tests/busybox-scripts/{name}.sh"));
        let out = host.join("w").join(format!("{name}.out"));
        let status = std::process::Command::new(&busybox)
            .args(["sh", "-c", &format!("busybox sh {} > {} 2>&1", script.display(), out.display())])
            .current_dir(&work)
            .env_clear()
            .env("PATH", host.join("bin"))
            .env("HOME", "/")
            .status()
            .expect("host busybox");
        assert!(status.success(), "{name} on the host: {status}");
        expected.push(std::fs::read_to_string(&out).expect("host output"));
    }
    let _ = std::fs::remove_dir_all(&host);

    // In Machina, from our shell; the outputs are read back from its disk.
    let mut m = Machine::boot(&BootConfig::default_boot());
    for (n, name) in scripts.iter().enumerate() {
        let line = format!(
            "mkdir -p /w/{name} && cd /w/{name} && busybox sh /tests/busybox/{name}.sh > /w/{name}.out 2>&1; cd /"
        );
        at_prompt(&mut m, n + 1, &line);
    }
    at_prompt(&mut m, scripts.len() + 1, "exit");
    let log = m
        .wait_for_log("mach-kernel: no tasks left", Duration::from_secs(60))
        .unwrap_or_else(|e| panic!("{e}"));
    system_tests::assert_frames_balanced(&log);
    m.expect_exit(HALTED_STATUS);
    for (name, expected) in scripts.iter().zip(&expected) {
        let got = std::process::Command::new("debugfs")
            .args(["-R", &format!("cat /w/{name}.out")])
            .arg(m.disk())
            .output()
            .expect("debugfs");
        let got = String::from_utf8_lossy(&got.stdout);
        assert_eq!(&got, expected, "{name}.sh: Machina's output (left) differs from the host's (right)");
    }
}

/// Our shell edits lines in raw mode (TCSETS reaches the console): left, backspace, ^U and
/// ^W, and history with up and down.
#[test]
fn our_shell_edits_lines_and_recalls_history_in_raw_mode() {
    let mut m = Machine::boot(&BootConfig::default_boot());
    // "echo ad", left, "c": "echo acd".
    at_prompt(&mut m, 1, "echo ad\x1b[Dc");
    wait_for_count(&mut m, "\r\nacd\r\n", 1);
    // ^U drops "junk words"; ^W drops "two"; two DELs drop "ee" of "three", then "ee" again.
    at_prompt(&mut m, 2, "junk words\x15echo one two\x17three\x7f\x7fee");
    wait_for_count(&mut m, "\r\none three\r\n", 1);
    // Up twice recalls "echo acd"; down once goes back to the newer "echo one three".
    at_prompt(&mut m, 3, "\x1b[A\x1b[A\x1b[B");
    wait_for_count(&mut m, "\r\none three\r\n", 2);
    // Up four times stops at the oldest line.
    at_prompt(&mut m, 4, "\x1b[A\x1b[A\x1b[A\x1b[A");
    wait_for_count(&mut m, "\r\nacd\r\n", 2);
    at_prompt(&mut m, 5, "exit");
    m.wait_for_log("mach-kernel: no tasks left", Duration::from_secs(30)).unwrap_or_else(|e| panic!("{e}"));
    m.expect_exit(HALTED_STATUS);
}

/// `ps` shows each process with its Machina task; `servers` lists bootstrap's names.
#[test]
fn ps_shows_processes_with_tasks_and_servers_lists_the_servers() {
    let mut m = Machine::boot(&BootConfig::default_boot());
    at_prompt(&mut m, 1, "sleep 3 &");
    at_prompt(&mut m, 2, "ps");
    m.wait_for_console(" unix        ps\r\n", Duration::from_secs(30)).unwrap_or_else(|e| panic!("{e}"));
    let console = m.console().replace('\r', "");
    let row = |name: &str| {
        console
            .lines()
            .find(|l| l.ends_with(&format!(" unix        {name}")))
            .unwrap_or_else(|| panic!("no {name} row:\n{console}"))
            .split_whitespace()
            .map(String::from)
            .collect::<Vec<_>>()
    };
    let (sh, sleep) = (row("sh"), row("sleep"));
    assert_eq!((sh[0].as_str(), sh[3].as_str()), ("1", "S"), "sh waits in a call: {sh:?}");
    assert_eq!(sleep[1], "1", "sleep's parent is the shell: {sleep:?}");
    assert!(sleep[4].parse::<u64>().is_ok_and(|t| t > 0), "a task id: {sleep:?}");
    at_prompt(&mut m, 3, "servers");
    for line in ["fs           fs-server", "blk          block", "console      console"] {
        m.wait_for_console(line, Duration::from_secs(30)).unwrap_or_else(|e| panic!("{e}"));
    }
    at_prompt(&mut m, 4, "exit");
    let log = m
        .wait_for_log("mach-kernel: no tasks left", Duration::from_secs(30))
        .unwrap_or_else(|e| panic!("{e}"));
    // The task ps named is the one the kernel reports for sleep.
    assert!(log.contains(&format!("task {} (sleep) ended", sleep[4])), "{sleep:?}\n{log}");
    m.expect_exit(HALTED_STATUS);
}

/// 20 processes blocked in reads never hold the personality up: the others' calls go on.
#[test]
fn twenty_processes_blocked_in_reads_while_others_work() {
    let mut m = boot_hello("blocked");
    m.wait_for_log("mach-kernel: no tasks left", Duration::from_secs(60)).unwrap_or_else(|e| panic!("{e}"));
    let console = m.console().replace('\r', "");
    for line in [
        "blocked: 20 readers waiting, 20 programs run and a file written true and read true meanwhile, 0 ended early",
        "blocked: 20 of 20 readers got their byte",
    ] {
        assert!(console.lines().any(|l| l == line), "console lacks {line:?}:\n{console}\n{}", m.log());
    }
    system_tests::assert_frames_balanced(&m.log());
    m.expect_exit(HALTED_STATUS);
}

/// A pipe's ends as `io` ports, as another personality gets them: server-tests' `unix-pipes`
/// case, beside the personality (running a program that waits for a line meanwhile).
#[test]
fn pipe_ends_are_io_ports_for_other_personalities() {
    let config = BootConfig::custom(
        "",
        &[
            ("bootstrap", "bootstrap"),
            ("block", "block"),
            ("fs-server", "fs-server"),
            ("console", "console"),
            ("personality-unix", "personality-unix /bin/hello read"),
            ("server-tests", "server-tests unix-pipes"),
        ],
    );
    let mut m = Machine::boot(&config);
    let log = m.wait_for_log("case unix-pipes:", Duration::from_secs(60)).unwrap_or_else(|e| panic!("{e}"));
    assert!(log.contains("case unix-pipes: ok"), "{log}");
    m.expect_console("type a line> ");
    m.type_text(b"done\r");
    m.wait_for_log("mach-kernel: no tasks left", Duration::from_secs(60)).unwrap_or_else(|e| panic!("{e}"));
    m.expect_exit(HALTED_STATUS);
}

/// Every builtin of our shell: cd, pwd, export, unset, source, jobs, wait, ^Z then fg (the
/// job stops and continues), exit with a status.
#[test]
fn every_builtin_of_our_shell() {
    let mut m = Machine::boot(&BootConfig::default_boot());
    let lines = [
        ("cd /etc; pwd", "\r\n/etc\r\n"),
        ("export GREETING=hi; busybox sh -c 'echo [$GREETING]'", "\r\n[hi]\r\n"),
        ("unset GREETING; busybox sh -c 'echo [$GREETING]'", "\r\n[]\r\n"),
        (
            "echo 'echo sourced; X=from-source' > /src.sh; source /src.sh; echo $X; rm /src.sh",
            "\r\nsourced\r\nfrom-source\r\n",
        ),
        ("sleep 1 & jobs", "Running  sleep 1\r\n"),
        ("wait; echo waited $?", "\r\nwaited 0\r\n"),
    ];
    type_lines(&mut m, &lines);
    // ^Z stops the foreground job (SIGTSTP from the console's Suspend event); fg continues it.
    at_prompt(&mut m, lines.len() + 1, "sleep 2; echo after-sleep");
    std::thread::sleep(Duration::from_millis(500));
    m.type_text(b"\x1a");
    m.wait_for_console("Stopped  sleep 2", Duration::from_secs(30)).unwrap_or_else(|e| panic!("{e}"));
    at_prompt(&mut m, lines.len() + 2, "fg");
    at_prompt(&mut m, lines.len() + 3, "exit 3");
    let log = m
        .wait_for_log("mach-kernel: no tasks left", Duration::from_secs(30))
        .unwrap_or_else(|e| panic!("{e}"));
    // Both sleeps ran to their end: the stopped one was continued, not ended.
    assert_eq!(log.matches("(sleep) exited with status 0").count(), 2, "{log}");
    assert!(log.contains("process 1 (sh) exited with status 3"), "{log}");
    system_tests::assert_frames_balanced(&log);
    m.expect_exit(HALTED_STATUS);
}

/// File permissions are checked against the caller's ids: a process that made itself user
/// 1000 reads what everyone may read and is refused the rest.
#[test]
fn permissions_are_checked_against_the_callers_ids() {
    let mut m = Machine::boot(&BootConfig::default_boot());
    at_prompt(&mut m, 1, "hello user; ls -ln /home1000; rm -r /home1000");
    m.wait_for_console("user: setuid 0 again", Duration::from_secs(30)).unwrap_or_else(|e| panic!("{e}"));
    at_prompt(&mut m, 2, "exit");
    m.wait_for_log("mach-kernel: no tasks left", Duration::from_secs(30)).unwrap_or_else(|e| panic!("{e}"));
    let console = m.console().replace('\r', "");
    for line in [
        "user: setgid 0 setuid 0, ids (1000, 1000, 1000, 1000)",
        "user: read /etc/motd ok",
        "user: write /etc/motd PermissionDenied",
        "user: create /u.txt PermissionDenied",
        "user: create /home1000/u.txt ok",
        "user: setuid 0 again -1 (PermissionDenied)",
    ] {
        assert!(console.lines().any(|l| l == line), "console lacks {line:?}:\n{console}");
    }
    // The file the user made is the user's.
    assert!(console.lines().any(|l| l.contains(" 1000     1000 ") && l.ends_with(" u.txt")), "{console}");
    m.expect_exit(HALTED_STATUS);
}

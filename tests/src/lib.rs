//! The system-test harness: boots Machina in QEMU through the direct loader and watches what
//! it prints, always with a deadline.
//!
//! Each [`Machine`] gets its own temporary directory with its own copy of the disk image and
//! its own kernel log file (QEMU's debugcon); COM1, the console, is read from QEMU's stdout
//! by a thread. Every wait has a timeout, and dropping a `Machine` kills its QEMU, so a hung
//! guest fails its test in bounded time and never hangs CI.
//!
//! Artifacts come from `make build` (build/volume, build/direct-loader, build/rootfs.img).

pub mod trace_check;
pub mod trace_files;

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub use mach_abi::qemu_exit::{FAILURE_STATUS, HALTED_STATUS};

/// How long a boot step may take before the test fails. TCG on a loaded CI machine is slow;
/// a healthy boot takes well under a second.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

/// The repository root (this crate lives in `tests/`).
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("tests/ has a parent").to_path_buf()
}

fn build_dir() -> PathBuf {
    repo_root().join("build")
}

/// What to boot: the text of a `limine.conf` (the repository's, or one a test writes) and the
/// entry to pick.
#[derive(Clone, Debug)]
pub struct BootConfig {
    pub conf: String,
    pub entry: Option<usize>,
    /// Files the entry names that QEMU must not be given (to test the loader's errors).
    pub omit: Vec<String>,
    /// Extra QEMU arguments (for example `-icount shift=0` for benchmarks).
    pub qemu_args: Vec<String>,
    /// The disk image the machine gets a copy of: a file in build/ (`rootfs.img` unless set)
    /// or an absolute path (another machine's disk, kept).
    pub disk: String,
}

impl BootConfig {
    /// The repository's own limine.conf, default entry: what `make run` boots.
    pub fn default_boot() -> Self {
        let conf = std::fs::read_to_string(repo_root().join("limine.conf")).expect("reading limine.conf");
        BootConfig { conf, entry: None, omit: Vec::new(), qemu_args: Vec::new(), disk: DEFAULT_DISK.into() }
    }

    /// One entry: the kernel with `kernel_cmdline`, and `modules` as (file in /boot, cmdline).
    pub fn custom(kernel_cmdline: &str, modules: &[(&str, &str)]) -> Self {
        let mut conf = format!(
            "timeout: 0\n/Test\n    protocol: limine\n    kernel_path: boot():/boot/mach-kernel\n    kernel_cmdline: {kernel_cmdline}\n"
        );
        for (file, cmdline) in modules {
            conf.push_str(&format!("    module_path: boot():/boot/{file}\n    module_cmdline: {cmdline}\n"));
        }
        BootConfig { conf, entry: None, omit: Vec::new(), qemu_args: Vec::new(), disk: DEFAULT_DISK.into() }
    }

    /// The servers as limine.conf starts them (bootstrap, block, fs-server, console), then
    /// the module `program` with command line `cmdline`.
    pub fn servers_and(program: &str, cmdline: &str) -> Self {
        Self::custom(
            "",
            &[
                ("bootstrap", "bootstrap"),
                ("block", "block"),
                ("fs-server", "fs-server"),
                ("console", "console"),
                (program, cmdline),
            ],
        )
    }

    /// The servers, then server-tests running `cases`, on a copy of `disk` (a file in build/).
    pub fn servers(cases: &str, disk: &str) -> Self {
        let mut config = Self::servers_and("server-tests", &format!("server-tests {cases}"));
        config.disk = disk.into();
        config
    }

    /// The servers, then the Unix personality running `command` (a program and its
    /// arguments, `'quoted'` where one holds blanks).
    pub fn unix(command: &str) -> Self {
        Self::servers_and("personality-unix", &format!("personality-unix {command}"))
    }

    /// The kernel-tests program as the first task, running `cases`.
    pub fn kernel_tests(cases: &str) -> Self {
        Self::custom("", &[("kernel-tests", &format!("kernel-tests {cases}"))])
    }
}

#[derive(Debug)]
pub enum WaitError {
    /// The deadline passed first. Carries what the guest printed.
    Timeout { waited_for: String, log: String, console: String },
    /// QEMU exited first.
    Exited { status: Option<i32>, waited_for: String, log: String, console: String },
}

impl std::fmt::Display for WaitError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (what, waited_for, log, console) = match self {
            WaitError::Timeout { waited_for, log, console } => {
                ("timed out".to_string(), waited_for, log, console)
            }
            WaitError::Exited { status, waited_for, log, console } => {
                (format!("QEMU exited ({status:?})"), waited_for, log, console)
            }
        };
        write!(f, "{what} waiting for {waited_for:?}\n--- kernel log ---\n{log}\n--- console ---\n{console}")
    }
}

/// The disk image tests boot with unless they say otherwise.
pub const DEFAULT_DISK: &str = "rootfs.img";

pub struct Machine {
    qemu: Child,
    dir: PathBuf,
    /// The machine's copy of its disk, and that copy's bytes before the boot were its
    /// modification time (to know whether the guest wrote to it).
    disk: PathBuf,
    disk_written_check: Option<std::time::SystemTime>,
    console: Arc<Mutex<Vec<u8>>>,
    exit_status: Option<i32>,
    /// COM1's input (QEMU's stdin).
    stdin: Option<std::process::ChildStdin>,
}

static MACHINES: AtomicUsize = AtomicUsize::new(0);

impl Machine {
    /// Boot `config` with the direct loader.
    pub fn boot(config: &BootConfig) -> Machine {
        if let Err(e) = direct_loader::config::select_entry(&config.conf, config.entry) {
            panic!("test limine.conf: {e}");
        }
        Self::boot_unchecked(config)
    }

    /// Boot even a configuration the loader will refuse (the kernel alone is given then).
    pub fn boot_unchecked(config: &BootConfig) -> Machine {
        let build = build_dir();
        let volume = build.join("volume");
        let loader = build.join("direct-loader");
        assert!(loader.exists() && volume.exists(), "no build/ artifacts: run `make build` first");
        let entry = direct_loader::config::select_entry(&config.conf, config.entry).ok();

        let dir = std::env::temp_dir().join(format!(
            "machina-test-{}-{}",
            std::process::id(),
            MACHINES.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).expect("creating the machine's directory");
        let conf_path = dir.join("limine.conf");
        std::fs::write(&conf_path, &config.conf).expect("writing limine.conf");
        let disk = dir.join("disk.img");
        std::fs::copy(build.join(&config.disk), &disk)
            .unwrap_or_else(|e| panic!("copying build/{}: {e} (run `make build`)", config.disk));
        let disk_written_check = std::fs::metadata(&disk).and_then(|m| m.modified()).ok();

        let mut paths = vec!["/boot/mach-kernel"];
        if let Some(entry) = &entry {
            paths =
                core::iter::once(entry.kernel_path).chain(entry.modules().iter().map(|m| m.path)).collect();
        }
        let mut files = vec![conf_path];
        for path in paths.into_iter().filter(|p| !config.omit.iter().any(|o| o == p)) {
            files.push(volume.join(path.trim_start_matches('/')));
        }
        let initrd =
            files.iter().map(|p| p.to_string_lossy().replace(',', ",,")).collect::<Vec<_>>().join(",");
        let mut command = Command::new("qemu-system-x86_64");
        command
            .args(["-machine", "pc", "-accel", "tcg", "-m", "512M", "-display", "none", "-no-reboot"])
            .args(["-device", "isa-debug-exit,iobase=0xf4,iosize=0x04"])
            .args(["-serial", "stdio", "-monitor", "none"])
            .arg("-debugcon")
            .arg(format!("file:{}", dir.join("kernel.log").display()))
            .arg("-drive")
            .arg(format!("file={},format=raw,if=none,id=disk0", disk.display()))
            .args(["-device", "virtio-blk-pci,drive=disk0"])
            .arg("-kernel")
            .arg(&loader)
            .arg("-initrd")
            .arg(initrd);
        command.args(&config.qemu_args);
        if let Some(n) = config.entry {
            command.arg("-append").arg(format!("entry={n}"));
        }
        let mut qemu = command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("starting qemu-system-x86_64 (run scripts/setup.sh)");
        let console = Arc::new(Mutex::new(Vec::new()));
        let mut stdout = qemu.stdout.take().expect("piped stdout");
        let sink = Arc::clone(&console);
        std::thread::spawn(move || {
            let mut buffer = [0u8; 4096];
            while let Ok(n) = stdout.read(&mut buffer) {
                if n == 0 {
                    break;
                }
                sink.lock().expect("console lock").extend_from_slice(&buffer[..n]);
            }
        });
        let stdin = qemu.stdin.take();
        Machine { qemu, dir, disk, disk_written_check, console, exit_status: None, stdin }
    }

    /// Everything on the kernel log so far.
    pub fn log(&self) -> String {
        std::fs::read(self.dir.join("kernel.log"))
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_default()
    }

    /// Everything on COM1 so far.
    pub fn console(&self) -> String {
        String::from_utf8_lossy(&self.console.lock().expect("console lock")).into_owned()
    }

    fn poll_exit(&mut self) -> Option<i32> {
        if self.exit_status.is_none()
            && let Ok(Some(status)) = self.qemu.try_wait()
        {
            self.exit_status = Some(status.code().unwrap_or(-1));
        }
        self.exit_status
    }

    /// Wait until a complete line of the kernel log contains `text`; returns the log's
    /// complete lines (the guest may be in the middle of writing the next one).
    pub fn wait_for_log(&mut self, text: &str, timeout: Duration) -> Result<String, WaitError> {
        let deadline = Instant::now() + timeout;
        loop {
            let exited = self.poll_exit();
            let mut log = self.log();
            log.truncate(log.rfind('\n').map_or(0, |end| end + 1));
            if log.contains(text) {
                return Ok(log);
            }
            if let Some(status) = exited {
                return Err(WaitError::Exited {
                    status: Some(status),
                    waited_for: text.into(),
                    log,
                    console: self.console(),
                });
            }
            if Instant::now() >= deadline {
                return Err(WaitError::Timeout { waited_for: text.into(), log, console: self.console() });
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// `wait_for_log` that fails the test with everything printed.
    pub fn expect_log(&mut self, text: &str) -> String {
        self.wait_for_log(text, DEFAULT_TIMEOUT).unwrap_or_else(|e| panic!("{e}"))
    }

    /// Wait for QEMU to exit; its status (33 = kernel halted cleanly, 35 = failure).
    pub fn wait_exit(&mut self, timeout: Duration) -> Result<i32, WaitError> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.poll_exit() {
                return Ok(status);
            }
            if Instant::now() >= deadline {
                return Err(WaitError::Timeout {
                    waited_for: "QEMU to exit".into(),
                    log: self.log(),
                    console: self.console(),
                });
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// Wait for the exit and check its status, failing the test with everything printed.
    /// When the guest wrote to its disk, `e2fsck -fn` must find it clean too.
    pub fn expect_exit(&mut self, status: i32) {
        self.expect_exit_within(status, DEFAULT_TIMEOUT)
    }

    /// `expect_exit` with a deadline of its own.
    pub fn expect_exit_within(&mut self, status: i32, timeout: Duration) {
        let got = self.wait_exit(timeout).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            got,
            status,
            "QEMU exit status\n--- kernel log ---\n{}\n--- console ---\n{}",
            self.log(),
            self.console()
        );
        if let Err(report) = self.check_disk() {
            panic!("{report}\n--- kernel log ---\n{}", self.log());
        }
    }

    /// After QEMU exited: if the guest wrote to its disk, run `e2fsck -fn` on it.
    pub fn check_disk(&self) -> Result<(), String> {
        let modified = std::fs::metadata(&self.disk).and_then(|m| m.modified()).ok();
        if modified == self.disk_written_check {
            return Ok(());
        }
        fsck(&self.disk)
    }

    /// The machine's disk copy (for host-side checks after it exited).
    pub fn disk(&self) -> &Path {
        &self.disk
    }

    /// Type `bytes` at COM1 (QEMU's stdin).
    pub fn type_text(&mut self, bytes: &[u8]) {
        use std::io::Write;
        let stdin = self.stdin.as_mut().expect("QEMU's stdin");
        stdin.write_all(bytes).expect("writing to QEMU's stdin");
        stdin.flush().expect("flushing QEMU's stdin");
    }

    /// Wait until COM1's output contains `text`; returns all of it.
    pub fn wait_for_console(&mut self, text: &str, timeout: Duration) -> Result<String, WaitError> {
        let deadline = Instant::now() + timeout;
        loop {
            let exited = self.poll_exit();
            let console = self.console();
            if console.contains(text) {
                return Ok(console);
            }
            if exited.is_some() || Instant::now() >= deadline {
                let log = self.log();
                return Err(match exited {
                    Some(status) => {
                        WaitError::Exited { status: Some(status), waited_for: text.into(), log, console }
                    }
                    None => WaitError::Timeout { waited_for: text.into(), log, console },
                });
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// `wait_for_console` that fails the test with everything printed.
    pub fn expect_console(&mut self, text: &str) -> String {
        self.wait_for_console(text, DEFAULT_TIMEOUT).unwrap_or_else(|e| panic!("{e}"))
    }
}

impl Drop for Machine {
    fn drop(&mut self) {
        if self.poll_exit().is_none() {
            let _ = self.qemu.kill();
            let _ = self.qemu.wait();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// `e2fsck -fn IMAGE` (check everything, change nothing): Ok when it finds the file system
/// clean, else its report.
pub fn fsck(image: &Path) -> Result<(), String> {
    let output = Command::new("e2fsck")
        .arg("-fn")
        .arg(image)
        .env("PATH", format!("{}:/sbin:/usr/sbin", std::env::var("PATH").unwrap_or_default()))
        .output()
        .map_err(|e| format!("running e2fsck: {e}"))?;
    // e2fsck -n exits 0 even when it would fix free counts: it only prints "Fix? no".
    let said = String::from_utf8_lossy(&output.stdout);
    if output.status.success() && !said.contains("? no") {
        Ok(())
    } else {
        Err(format!(
            "e2fsck -fn {} found the disk not clean ({}):\n{}{}",
            image.display(),
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        ))
    }
}

/// Check the kernel's halt line: the free-frame count at halt must equal the count before the
/// first task started (every task's memory, page tables, stacks and ports were freed).
pub fn assert_frames_balanced(log: &str) {
    let line = log.lines().find(|l| l.contains("no tasks left")).unwrap_or_default();
    let numbers: Vec<u64> =
        line.split(|c: char| !c.is_ascii_digit()).filter_map(|w| w.parse().ok()).collect();
    assert!(numbers.len() >= 2 && numbers[0] == numbers[1], "frames not all freed: {line:?}\n{log}");
    assert!(!log.contains("kernel bug:"), "the kernel found a bug in itself:\n{log}");
}

/// The free-frame counts of the kernel's halt line: (at the halt, before the first task).
pub fn frames_at_halt(log: &str) -> Option<(u64, u64)> {
    let line = log.lines().find(|l| l.contains("no tasks left"))?;
    let numbers: Vec<u64> =
        line.split(|c: char| !c.is_ascii_digit()).filter_map(|w| w.parse().ok()).collect();
    Some((*numbers.first()?, *numbers.get(1)?))
}

/// The kernel-tests `fuzz` case (kernel-tests/src/fuzz.rs) as the system test and `make fuzz`
/// run it: the command-line word, and what to print when a run fails.
pub mod fuzz {
    /// `fuzz:SEED:CALLS[:OPTIONS]`.
    pub fn case_word(seed: u64, calls: u64, options: &str) -> String {
        if options.is_empty() {
            format!("fuzz:{seed}:{calls}")
        } else {
            format!("fuzz:{seed}:{calls}:{options}")
        }
    }

    use super::Machine;
    use std::time::{Duration, Instant};

    /// How a run ended.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub enum End {
        /// QEMU exited with this status.
        Exited(i32),
        /// The first task (kernel-tests) ended but the kernel did not halt within
        /// [`OUTLIVED_AFTER`]: a task was never ended.
        Outlived,
        /// The deadline passed.
        TimedOut,
    }

    /// How long the kernel may take to halt after the first task ended.
    pub const OUTLIVED_AFTER: Duration = Duration::from_secs(30);

    /// Watch a booted fuzz run until QEMU exits, the deadline passes, or the kernel outlives
    /// the first task; `line` sees each complete new kernel-log line as it comes (the log is
    /// read twice a second). Returns how it ended and the whole log.
    pub fn watch(m: &mut Machine, timeout: Duration, mut line: impl FnMut(&str)) -> (End, String) {
        let started = Instant::now();
        let mut seen = 0;
        let mut first_task_ended: Option<Instant> = None;
        loop {
            let exited = m.wait_exit(Duration::from_millis(500)).ok();
            let log = m.log();
            let complete = log.rfind('\n').map_or(0, |end| end + 1);
            if complete > seen {
                for l in log[seen..complete].lines() {
                    if l.starts_with("task 1 (") && l.ends_with(") ended") {
                        first_task_ended.get_or_insert_with(Instant::now);
                    }
                    line(l);
                }
                seen = complete;
            }
            if let Some(status) = exited {
                return (End::Exited(status), log);
            }
            if first_task_ended.is_some_and(|t| t.elapsed() > OUTLIVED_AFTER) {
                return (End::Outlived, log);
            }
            if started.elapsed() > timeout {
                return (End::TimedOut, log);
            }
        }
    }

    /// Whether a run that ended so passed (see [`verdict`]).
    pub fn judge(end: End, log: &str) -> Result<(), String> {
        match end {
            End::Exited(super::HALTED_STATUS) => verdict(log),
            End::Exited(status) => {
                verdict(log)?;
                Err(format!("QEMU exited with status {status}"))
            }
            End::Outlived => Err(format!(
                "kernel-tests ended but the kernel did not halt within {} s: a task was never ended",
                OUTLIVED_AFTER.as_secs()
            )),
            End::TimedOut => Err("no halt before the deadline (a hang?)".into()),
        }
    }

    /// The last progress line (`fuzz: N calls ...`), if any.
    pub fn last_progress(log: &str) -> Option<&str> {
        log.lines().rev().find(|l| l.contains("fuzz: ") && l.contains(" calls (seed "))
    }

    /// Whether a finished run passed: the case's ok line, no kernel failure, every frame back.
    pub fn verdict(log: &str) -> Result<(), String> {
        if log.contains("KERNEL PANIC") || log.contains("KERNEL EXCEPTION") {
            return Err("the kernel stopped (panic or exception)".into());
        }
        if log.contains("fuzz: UNEXPECTED") {
            return Err("unexpected results (the UNEXPECTED lines say which call)".into());
        }
        if !log.contains("case fuzz: ok") {
            return Err("no `case fuzz: ok` line".into());
        }
        match super::frames_at_halt(log) {
            Some((after, before)) if after == before => Ok(()),
            Some((after, before)) => {
                Err(format!("frames not all freed: {after} free at the halt, {before} before the first task"))
            }
            None => Err("no halt line (the kernel did not halt)".into()),
        }
    }

    /// The children (named `cN.LABEL` by the fuzzer, N from 1) that never printed an `ended`
    /// line, when the fuzzer got as far as saying how many it made.
    pub fn children_never_ended(log: &str) -> Option<Vec<u64>> {
        let made: u64 =
            log.lines().find_map(|l| l.split("fuzz: children named c1 ..= c").nth(1)?.trim().parse().ok())?;
        let mut ended = vec![false; made as usize + 1];
        for line in log.lines().filter(|l| l.starts_with("task ") && l.ends_with(") ended")) {
            let name = line.split(" (").nth(1).unwrap_or("");
            let number = name
                .strip_prefix('c')
                .and_then(|rest| rest.split('.').next())
                .and_then(|n| n.parse::<usize>().ok());
            if let Some(slot) = number.and_then(|n| ended.get_mut(n)) {
                *slot = true;
            }
        }
        Some((1..=made).filter(|&n| !ended[n as usize]).collect())
    }

    /// What to print about a failed run: seed, last progress, how to rerun it with every call
    /// traced from there, the UNEXPECTED lines and the end of the kernel log (where a panic is).
    pub fn diagnosis(log: &str, seed: u64, calls: u64, options: &str, why: &str) -> String {
        let progress = last_progress(log).unwrap_or("(no progress line yet)");
        let from: u64 = progress
            .split("fuzz: ")
            .nth(1)
            .and_then(|rest| rest.split(' ').next())
            .and_then(|n| n.parse().ok())
            .unwrap_or(0);
        let traced =
            if options.is_empty() { format!("trace={from}") } else { format!("{options},trace={from}") };
        let mut out = format!(
            "fuzz FAILED: {why}\n  seed {seed}, {calls} calls, options {options:?}\n  last progress: {progress}\n  \
             rerun with each call printed from there: make fuzz SEED={seed} CALLS={calls} FUZZ_OPTIONS={traced}\n"
        );
        if let Some(missing) = children_never_ended(log).filter(|m| !m.is_empty()) {
            let names: Vec<String> = missing.iter().take(20).map(|n| format!("c{n}")).collect();
            out.push_str(&format!(
                "  children that never ended: {} (their names say how they were made: fuzz.rs, `adopt`)\n",
                names.join(" ")
            ));
        } else if matches!(children_never_ended(log), Some(ref m) if m.is_empty()) {
            out.push_str("  every child the fuzzer made ended: the task left is another (one a copy made, or the `taskcycle` one)\n");
        }
        for line in log.lines().filter(|l| l.contains("fuzz: UNEXPECTED")).take(20) {
            out.push_str(&format!("  {line}\n"));
        }
        let lines: Vec<&str> = log.lines().collect();
        let start = lines
            .iter()
            .position(|l| l.contains("KERNEL PANIC") || l.contains("KERNEL EXCEPTION"))
            .map(|i| i.saturating_sub(30))
            .unwrap_or(lines.len().saturating_sub(60));
        out.push_str("--- kernel log (end) ---\n");
        for line in &lines[start..] {
            out.push_str(line);
            out.push('\n');
        }
        out
    }
}

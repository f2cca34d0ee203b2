//! The template personality (personality-template/README.md): its hello program runs on it;
//! and, following the guide, a throwaway copy of it with one more call (getpid), built on its
//! own outside the workspace and booted as a module, runs the same program with that call
//! answered.
//!
//! It must never leave anything in the repository but its build cache: the copy lives in a
//! temporary directory, its build in target/template-copy (kept, so that a second run is
//! quick), and the boot module it adds under build/volume goes at the end, also on failure.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use system_tests::{BootConfig, HALTED_STATUS, Machine, repo_root};

/// The example call at the template's "Add your calls here" mark, and what the copy makes of
/// it: a real getpid that answers 42.
const EXAMPLE: &str = "// 39 => 1,";
const ADDED: &str = "39 => 42,";

/// How long building the copy may take (the first build compiles libmach and its
/// dependencies for the copy's own target directory).
const BUILD_TIMEOUT: Duration = Duration::from_secs(15 * 60);

/// The servers the template uses (the disk's file system and the console), then `last`.
fn servers_and(last: &[(&str, &str)]) -> BootConfig {
    let mut modules = vec![
        ("bootstrap", "bootstrap"),
        ("block", "block"),
        ("fs-server", "fs-server"),
        ("console", "console"),
    ];
    modules.extend_from_slice(last);
    BootConfig::custom("", &modules)
}

/// Boot `config`, whose last module is a template personality running /template/hello; check
/// what the program printed (`getpid` the line it prints for getpid), its exit and the halt.
/// Returns the kernel log.
fn boot_hello(config: &BootConfig, getpid: &str) -> String {
    let mut m = Machine::boot(config);
    let log = m
        .wait_for_log("mach-kernel: no tasks left", Duration::from_secs(60))
        .unwrap_or_else(|e| panic!("{e}"));
    let console = m.console().replace('\r', "");
    for line in ["hello from the template personality", getpid] {
        assert!(console.lines().any(|l| l == line), "console lacks {line:?}:\n{console}\n--- log ---\n{log}");
    }
    assert!(log.contains("personality-template: the program exited with status 0"), "{log}");
    system_tests::assert_frames_balanced(&log);
    m.expect_exit(HALTED_STATUS);
    log
}

#[test]
fn the_template_personality_runs_its_hello_program() {
    let config = servers_and(&[("personality-template", "personality-template /template/hello")]);
    let log = boot_hello(&config, "getpid: -38");
    assert!(log.contains("personality-template: call 39 is not served: -ENOSYS"), "{log}");
}

#[test]
fn a_copy_of_the_template_with_one_more_call_runs() {
    let root = repo_root();
    let work = std::env::temp_dir().join(format!("machina-template-copy-{}", std::process::id()));
    let _work = RemoveOnDrop(work.clone());
    let copy = work.join("personality-template");

    // The guide's steps: copy the folder, add a call at the mark.
    copy_dir(&root.join("personality-template"), &copy);
    let main_rs = copy.join("src/main.rs");
    let source = fs::read_to_string(&main_rs).expect("reading the copy's main.rs");
    assert_eq!(
        source.matches(EXAMPLE).count(),
        1,
        "the template's example call {EXAMPLE:?} is not there once"
    );
    fs::write(&main_rs, source.replace(EXAMPLE, ADDED)).expect("writing the copy's main.rs");
    make_standalone(&copy, &root);

    let started = Instant::now();
    let binary = build(&copy, &root);
    eprintln!("the copy of the template built in {:.1} s", started.elapsed().as_secs_f64());

    // Its module: bootstrap's policy is keyed by the module's file name, so the copy keeps
    // the template's name, in a directory of its own in the boot volume.
    let directory = format!("template-copy-{}", std::process::id());
    let module = root.join("build/volume").join(&directory);
    let _module = RemoveOnDrop(module.clone());
    fs::create_dir_all(&module).expect("creating the copy's directory in build/volume");
    fs::copy(&binary, module.join("personality-template")).expect("copying the copy into build/volume");

    let mut config = servers_and(&[]);
    config.conf.push_str(&format!(
        "    module_path: boot():/{directory}/personality-template\n    module_cmdline: personality-template /template/hello\n"
    ));
    let log = boot_hello(&config, "getpid: 42");
    assert!(log.contains(&format!("bootstrap: started /{directory}/personality-template")), "{log}");
    assert!(!log.contains("is not served"), "{log}");
}

/// Removes a directory when dropped: at the end of a test, passed or failed.
struct RemoveOnDrop(PathBuf);

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// Copy the directory `from` to `to`, without build output (`target`).
fn copy_dir(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap_or_else(|e| panic!("creating {}: {e}", to.display()));
    for entry in fs::read_dir(from).unwrap_or_else(|e| panic!("reading {}: {e}", from.display())) {
        let entry = entry.expect("reading a directory entry");
        let (path, name) = (entry.path(), entry.file_name());
        if path.is_dir() {
            if name != "target" {
                copy_dir(&path, &to.join(&name));
            }
        } else {
            fs::copy(&path, to.join(&name)).unwrap_or_else(|e| panic!("copying {}: {e}", path.display()));
        }
    }
}

/// Make the copy build on its own, outside the workspace: what it inherited from the
/// workspace (`KEY.workspace = true`) written out, paths into the repository made absolute,
/// a `[workspace]` table of its own, the workspace's profiles (panic = "abort" above all),
/// and the workspace's Cargo.lock beside it, so that it gets the same versions.
fn make_standalone(copy: &Path, root: &Path) {
    let workspace = fs::read_to_string(root.join("Cargo.toml")).expect("reading the workspace's Cargo.toml");
    let manifest = fs::read_to_string(copy.join("Cargo.toml")).expect("reading the copy's Cargo.toml");
    let repository = root.display().to_string();
    let mut standalone = String::new();
    for line in manifest.lines() {
        let line = match line.split_once(".workspace = true") {
            Some((key, "")) => {
                let inherited = workspace_value(&workspace, key)
                    .unwrap_or_else(|| panic!("the workspace's Cargo.toml has no {key:?}"));
                format!("{key} = {inherited}")
            }
            _ => line.replace("path = \"../", &format!("path = \"{repository}/")),
        };
        assert!(
            line.starts_with('#') || !line.contains("workspace"),
            "the copy's manifest still uses the workspace: {line}"
        );
        standalone.push_str(&line);
        standalone.push('\n');
    }
    standalone.push_str("\n# Built on its own, outside Machina's workspace.\n[workspace]\n");
    for profile in ["[profile.dev]", "[profile.release]"] {
        standalone.push('\n');
        standalone.push_str(
            &section(&workspace, profile).unwrap_or_else(|| panic!("no {profile} in the workspace")),
        );
    }
    fs::write(copy.join("Cargo.toml"), standalone).expect("writing the copy's Cargo.toml");
    // The build script finds libmach's linker script beside the template's folder too.
    let build_rs = fs::read_to_string(copy.join("build.rs")).expect("reading the copy's build.rs");
    assert!(build_rs.contains("\"../libmach\""), "the template's build.rs no longer names \"../libmach\"");
    fs::write(copy.join("build.rs"), build_rs.replace("\"../", &format!("\"{repository}/")))
        .expect("writing the copy's build.rs");
    fs::copy(root.join("Cargo.lock"), copy.join("Cargo.lock")).expect("copying Cargo.lock");
}

/// The value of `key` in the workspace's `[workspace.package]` or `[workspace.dependencies]`.
fn workspace_value(workspace: &str, key: &str) -> Option<String> {
    ["[workspace.package]", "[workspace.dependencies]"].iter().find_map(|table| {
        section(workspace, table)?
            .lines()
            .find_map(|l| l.strip_prefix(key)?.trim_start().strip_prefix('=').map(|v| v.trim().to_string()))
    })
}

/// The table `header` of a TOML file as written: its header line and the lines up to the next.
fn section(toml: &str, header: &str) -> Option<String> {
    let mut lines = toml.lines().skip_while(|l| l.trim() != header);
    let first = lines.next()?;
    let mut out = format!("{first}\n");
    for line in lines.take_while(|l| !l.starts_with('[')) {
        out.push_str(line);
        out.push('\n');
    }
    Some(out)
}

/// Build the copy's personality for the bare-metal target, from the repository's root (so that
/// its .cargo/config.toml and rust-toolchain.toml apply) into target/template-copy. Returns the
/// executable.
fn build(copy: &Path, root: &Path) -> PathBuf {
    let target = root.join("target/template-copy");
    fs::create_dir_all(&target).expect("creating target/template-copy");
    let log_path = target.join("build.log");
    let log = fs::File::create(&log_path).expect("creating the build log");
    let mut cargo = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .args(["build", "--release", "--offline", "--target", "x86_64-unknown-none"])
        .args(["--bin", "personality-template", "--manifest-path"])
        .arg(copy.join("Cargo.toml"))
        .current_dir(root)
        .env("CARGO_TARGET_DIR", &target)
        .stdin(Stdio::null())
        .stdout(log.try_clone().expect("the build log"))
        .stderr(log)
        .spawn()
        .expect("running cargo");
    let deadline = Instant::now() + BUILD_TIMEOUT;
    let status = loop {
        if let Some(status) = cargo.try_wait().expect("waiting for cargo") {
            break status;
        }
        if Instant::now() > deadline {
            let _ = cargo.kill();
            let _ = cargo.wait();
            panic!("building the copy took more than {} s", BUILD_TIMEOUT.as_secs());
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let said = fs::read_to_string(&log_path).unwrap_or_default();
    assert!(status.success(), "building the copy failed ({status}):\n{said}");
    target.join("x86_64-unknown-none/release/personality-template")
}

//! `make trace CMD="..."`: boot, run `trace -O /trace CMD` at our shell, leave it, and copy
//! the files trace wrote (text, NDJSON, Chrome trace-event JSON, SVG) out of the machine's
//! disk into a host directory (build/trace/). The guest writes them after CMD ended, so
//! writing them is not in the trace.
//!
//! It must never leave a half-written directory looking complete: the old files are removed
//! first, and a missing file is an error.

use crate::{HALTED_STATUS, Machine};
use std::path::Path;
use std::time::Duration;

/// The files `trace -O` writes.
pub const FILES: [&str; 4] = ["trace.txt", "trace.ndjson", "trace.json", "trace.svg"];

/// Boot `config`, trace `command` at the shell, power off, and put the files into `out`.
/// Returns the console's text (CMD's own output and trace's last line).
pub fn run(config: &crate::BootConfig, command: &str, out: &Path) -> Result<String, String> {
    let mut m = Machine::boot(config);
    m.wait_for_console(" $ ", Duration::from_secs(60)).map_err(|e| e.to_string())?;
    m.type_text(format!("trace -O /trace {command}; exit\r").as_bytes());
    m.wait_for_log("mach-kernel: no tasks left", Duration::from_secs(300)).map_err(|e| e.to_string())?;
    let status = m.wait_exit(Duration::from_secs(30)).map_err(|e| e.to_string())?;
    if status != HALTED_STATUS {
        return Err(format!("QEMU ended with status {status}:\n{}", m.console()));
    }
    m.check_disk()?;
    let _ = std::fs::remove_dir_all(out);
    std::fs::create_dir_all(out).map_err(|e| format!("creating {}: {e}", out.display()))?;
    for file in FILES {
        let to = out.join(file);
        let dumped = std::process::Command::new("debugfs")
            .arg("-R")
            .arg(format!("dump /trace/{file} {}", to.display()))
            .arg(m.disk())
            .output()
            .map_err(|e| format!("running debugfs (e2fsprogs): {e}"))?;
        if !to.exists() {
            return Err(format!(
                "/trace/{file} is not on the disk ({}):\n{}",
                String::from_utf8_lossy(&dumped.stderr).trim(),
                m.console()
            ));
        }
    }
    Ok(m.console())
}

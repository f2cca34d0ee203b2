//! `make trace CMD="cat /etc/motd"`: boot, run `trace -O` on CMD at our shell, power off, and
//! write build/trace/ with the text tree (trace.txt), one record a line (trace.ndjson),
//! Chrome trace-event JSON with flow arrows (trace.json: open it in Perfetto) and an SVG
//! sequence diagram (trace.svg). Prints the text tree.

use system_tests::{BootConfig, repo_root, trace_files};

fn main() {
    // The arguments, or (from make) the environment's CMD.
    let mut command = std::env::args().skip(1).collect::<Vec<_>>().join(" ");
    if command.is_empty() {
        command = std::env::var("CMD").unwrap_or_default();
    }
    if command.trim().is_empty() || command == "-h" || command == "--help" {
        eprintln!(
            "usage: make trace CMD=\"COMMAND [ARGS...]\"\n\
             Boots Machina, traces COMMAND at its shell and writes build/trace/: trace.txt (the hop\n\
             tree), trace.ndjson (a record a line), trace.json (Chrome trace events: Perfetto) and\n\
             trace.svg (a sequence diagram)."
        );
        std::process::exit(2);
    }
    let out = repo_root().join("build/trace");
    match trace_files::run(&BootConfig::default_boot(), &command, &out) {
        Ok(_) => {
            let text = std::fs::read_to_string(out.join("trace.txt")).unwrap_or_default();
            print!("{text}");
            println!("\nwritten: {}", trace_files::FILES.map(|f| format!("build/trace/{f}")).join(" "));
        }
        Err(e) => {
            eprintln!("make trace: {e}");
            std::process::exit(1);
        }
    }
}

//! `sh`, Machina's login shell: arguments, then the interactive loop, a script or `-c`.
//!
//! An ordinary static Linux program (Rust std, musl); it uses only POSIX/Linux calls so the
//! Unix personality can run it. This file only picks what to run; it must never parse or
//! execute commands itself (see parse.rs and exec.rs).

mod exec;
mod expand;
mod lex;
mod line;
mod parse;

use exec::Shell;

const USAGE: &str = "\
usage: sh [-i]                  interactive shell (reads stdin)
       sh -c COMMAND [NAME [ARG...]]  run COMMAND ($0 = NAME, $1... = ARGs)
       sh FILE [ARG...]          run the script FILE with arguments
       sh --help                 this text

Supports pipelines, < > >> 2> 2>&1, quotes, $VAR $? $$ $! $# $@, ; && || &,
and the builtins cd pwd exit export unset source wait jobs fg bg.
";

fn main() {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let mut force_interactive = false;
    while let Some(first) = args.first() {
        match first.as_str() {
            "--help" | "-h" => {
                print!("{USAGE}");
                return;
            }
            "-i" => {
                force_interactive = true;
                args.remove(0);
            }
            "-c" => {
                let Some(cmd) = args.get(1).cloned() else {
                    exec::error("-c: option requires an argument");
                    std::process::exit(2);
                };
                let name = args.get(2).cloned().unwrap_or_else(|| "sh".into());
                let rest = args.get(3..).unwrap_or_default().to_vec();
                let mut sh = Shell::new(name, rest, false);
                let status = sh.run_text(&cmd);
                std::process::exit(status);
            }
            "--" => {
                args.remove(0);
                break;
            }
            s if s.starts_with('-') && s.len() > 1 => {
                exec::error(&format!("{s}: unknown option (try --help)"));
                std::process::exit(2);
            }
            _ => break,
        }
    }
    if let Some(file) = args.first().cloned() {
        let text = match std::fs::read(&file) {
            Ok(b) => String::from_utf8_lossy(&b).into_owned(),
            Err(e) => {
                let code = if e.kind() == std::io::ErrorKind::NotFound { 127 } else { 126 };
                exec::error(&format!("{file}: {}", e.to_string().split(" (os error").next().unwrap_or("")));
                std::process::exit(code);
            }
        };
        let mut sh = Shell::new(file, args[1..].to_vec(), false);
        std::process::exit(sh.run_text(&text));
    }
    // SAFETY: isatty only inspects descriptor 0.
    let interactive = force_interactive || unsafe { libc::isatty(0) } == 1;
    let mut sh = Shell::new("sh".into(), Vec::new(), interactive);
    let status = sh.run_stdin();
    std::process::exit(status);
}

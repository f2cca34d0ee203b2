//! hello: an ordinary static Linux program (Rust std, `x86_64-unknown-linux-musl`) that
//! Machina runs through personality-unix. With no mode it prints a greeting, its arguments
//! and `PATH`, touches the heap, and exits with the status its first argument names. With
//! `files` it reads, writes and lists files through std::fs; with `read` it reads a line
//! from its terminal. The system tests (tests/tests/unix.rs) check each line it prints.
use std::io::{BufRead, Write};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    match args.get(1).map(String::as_str) {
        Some("files") => files(),
        Some("read") => read_line(),
        _ => greet(&args),
    }
}

fn greet(args: &[String]) {
    println!("hello from a Linux program on Machina");
    println!("argv: {args:?}");
    println!("PATH={}", std::env::var("PATH").unwrap_or_default());
    let numbers: Vec<u64> = (1..=10_000).collect();
    println!("heap: the sum of 1..=10000 is {}", numbers.iter().sum::<u64>());
    let _ = std::io::stdout().flush();
    let status = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(0);
    std::process::exit(status);
}

/// std::fs through the personality and fs-server.
fn files() {
    match std::fs::read_to_string("/etc/motd") {
        Ok(text) => println!("motd: {}", text.trim_end()),
        Err(e) => println!("motd: error {e}"),
    }
    let size = std::fs::metadata("/etc/motd").map(|m| m.len());
    println!("motd size: {size:?}");
    let written = std::fs::write("/hello.txt", b"written by hello\n");
    println!("write /hello.txt: {written:?}");
    println!("read back: {:?}", std::fs::read_to_string("/hello.txt"));
    let mut names: Vec<String> = match std::fs::read_dir("/") {
        Ok(entries) => {
            entries.filter_map(|e| e.ok()).map(|e| e.file_name().to_string_lossy().into_owned()).collect()
        }
        Err(e) => vec![format!("error {e}")],
    };
    names.sort();
    println!("ls /: {}", names.join(" "));
    println!("missing: {:?}", std::fs::read("/no/such/file").map_err(|e| e.kind()));
    println!("/dev/null: {:?}", std::fs::write("/dev/null", b"gone"));
}

/// A line from the terminal.
fn read_line() {
    print!("type a line> ");
    let _ = std::io::stdout().flush();
    let mut line = String::new();
    match std::io::stdin().lock().read_line(&mut line) {
        Ok(n) => println!("you typed {n} bytes: [{}]", line.trim_end()),
        Err(e) => println!("read error: {e}"),
    }
}

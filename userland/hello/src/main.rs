//! hello: an ordinary static Linux program (Rust std, `x86_64-unknown-linux-musl`) that
//! Machina runs through personality-unix: it prints a greeting, its arguments and one
//! environment variable, touches the heap, and exits with the status its first argument
//! names (0 without one). The system test checks each line.
use std::io::Write;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    println!("hello from a Linux program on Machina");
    println!("argv: {args:?}");
    println!("PATH={}", std::env::var("PATH").unwrap_or_default());
    let numbers: Vec<u64> = (1..=10_000).collect();
    println!("heap: the sum of 1..=10000 is {}", numbers.iter().sum::<u64>());
    let _ = std::io::stdout().flush();
    let status = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(0);
    std::process::exit(status);
}

//! servers: the servers bootstrap started and the names they serve under, with each one's
//! program, Machina task id and how often bootstrap restarted it. The list comes from
//! bootstrap's name service through the personality (`machina::INFO`, `SERVERS`).
//! It must never guess: a field missing from the list is shown as `?`.

use personality_unix::machina;

fn main() {
    if std::env::args().nth(1).is_some_and(|a| a == "--help" || a == "-h") {
        println!(
            "usage: servers\nList the names registered with bootstrap: the name, the program serving it,\nits Machina task id and how many times bootstrap restarted it."
        );
        return;
    }
    let mut buffer = vec![0u8; 16 * 1024];
    // SAFETY: the buffer is valid for its length; the personality writes at most that.
    let n = unsafe {
        libc::syscall(machina::INFO as libc::c_long, machina::SERVERS, buffer.as_mut_ptr(), buffer.len())
    };
    if n < 0 {
        eprintln!("servers: no list from the personality: {}", std::io::Error::last_os_error());
        std::process::exit(1);
    }
    buffer.truncate((n as usize).min(buffer.len()));
    let text = String::from_utf8_lossy(&buffer);
    println!("{:<12} {:<16} {:>11} {:>8}", "NAME", "PROGRAM", "TASK", "RESTARTS");
    for line in text.lines() {
        let f: Vec<&str> = line.split('\t').collect();
        let get = |i: usize| f.get(i).copied().unwrap_or("?");
        println!("{:<12} {:<16} {:>11} {:>8}", get(0), get(1), get(2), get(3));
    }
}

//! servers: the servers bootstrap started and the names they serve under, with each one's
//! program, Machina task id and how often bootstrap restarted it. The list comes from
//! bootstrap's name service through the personality (`machina::INFO`, `SERVERS`).
//! It must never guess: a field missing from the list is shown as `?`.

use personality_unix::machina;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.iter().map(String::as_str).collect::<Vec<_>>().as_slice() {
        [] => {}
        ["--end", name] => end(name),
        _ => {
            println!(
                "usage: servers            list the names registered with bootstrap: the name, the program\n\
                 \x20                        serving it, its Machina task id and how many times it was restarted\n\
                 \x20      servers --end NAME  end the server registered as NAME (bootstrap's policy says which\n\
                 \x20                        may be ended from here: the xv6 personality)"
            );
            std::process::exit(if args.first().is_some_and(|a| a == "--help" || a == "-h") { 0 } else { 2 });
        }
    }
    list();
}

/// Ask bootstrap (through the personality) to end the server registered as `name`.
fn end(name: &str) -> ! {
    // SAFETY: the name's bytes are valid for their length.
    let n = unsafe {
        libc::syscall(machina::INFO as libc::c_long, machina::END_SERVER, name.as_ptr(), name.len())
    };
    if n < 0 {
        eprintln!("servers: cannot end {name}: {}", std::io::Error::last_os_error());
        std::process::exit(1);
    }
    println!("servers: {name} ended");
    std::process::exit(0);
}

fn list() {
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

//! ps: the processes of the Unix personality, each with the Machina task it is made of
//! (the task id the kernel log and `trace` use), its threads and its personality. The table
//! comes from the personality (`machina::INFO`, `PROCESSES`); this program only lays it out.
//! It must never guess: a field the personality did not send is shown as `?`.

use personality_unix::machina;

/// Ask the personality for `what`: its text.
pub fn info(what: u64) -> std::io::Result<String> {
    let mut buffer = vec![0u8; 64 * 1024];
    // SAFETY: the buffer is valid for its length; the personality writes at most that.
    let n = unsafe { libc::syscall(machina::INFO as libc::c_long, what, buffer.as_mut_ptr(), buffer.len()) };
    if n < 0 {
        return Err(std::io::Error::last_os_error());
    }
    buffer.truncate((n as usize).min(buffer.len()));
    Ok(String::from_utf8_lossy(&buffer).into_owned())
}

/// The table: a header, then one line per process, in pid order.
fn table(text: &str) -> String {
    let mut rows: Vec<Vec<&str>> = text.lines().map(|l| l.split('\t').collect()).collect();
    rows.sort_by_key(|r| r.first().and_then(|p| p.parse::<u64>().ok()).unwrap_or(u64::MAX));
    let mut out = format!(
        "{:>5} {:>5} {:>5} {} {:>11} {:>3} {:<11} {}\n",
        "PID", "PPID", "PGID", "S", "TASK", "THR", "PERSONALITY", "COMMAND"
    );
    for r in rows {
        let f = |i: usize| r.get(i).copied().unwrap_or("?");
        out.push_str(&format!(
            "{:>5} {:>5} {:>5} {} {:>11} {:>3} {:<11} {}\n",
            f(0),
            f(1),
            f(2),
            f(3),
            f(4),
            f(5),
            f(6),
            f(7)
        ));
    }
    out
}

fn main() {
    if std::env::args().nth(1).is_some_and(|a| a == "--help" || a == "-h") {
        println!(
            "usage: ps\nList the processes with their pid, parent, group, state (R running, S waiting\nin a call, T stopped, Z ended), Machina task id, threads, personality and name."
        );
        return;
    }
    match info(machina::PROCESSES) {
        Ok(text) => print!("{}", table(&text)),
        Err(e) => {
            eprintln!("ps: the personality gave no process table: {e}");
            std::process::exit(1);
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn rows_in_pid_order_with_missing_fields_shown() {
        let t = super::table("12\t1\t12\tR\t9\t1\tunix\tps\n1\t0\t1\tS\t6\t1\tunix\tsh\n3\t1\n");
        let lines: Vec<&str> = t.lines().collect();
        assert!(lines[0].starts_with("  PID  PPID"));
        assert!(lines[1].starts_with("    1     0     1 S           6   1 unix        sh"), "{t}");
        assert!(lines[2].starts_with("    3     1     ? ?"), "{t}");
        assert!(lines[3].ends_with("ps"));
    }
}

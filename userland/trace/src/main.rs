//! trace: run a program and print every message hop of every system call it and its
//! children make: the call as strace shows it (its first argument and result), then the
//! hops as an indented tree (trap, send, receive, irq, reply, resume) with the task, the
//! port, the operation (`io.read`, `blk.read`), the bytes carried, the time since the trap,
//! and each server's time waiting in its queue and serving. `-c` prints a summary per call,
//! per server and per process instead; `--ndjson` one JSON record a line; `-O DIR` writes
//! the text, NDJSON, Chrome trace-event JSON and an SVG sequence diagram into DIR.
//!
//! The personality traces the program (and what it forks and execs) through its trace port
//! and hands out the kernel's records (`machina::TRACE_*`). It must never lose a record
//! silently: a gap in the sequence numbers (the ring overwrote records before they were
//! read) is reported as records dropped.

mod export;
mod tree;

use mach_abi::trace::TraceRecord;
use personality_unix::machina;
use std::io::Write;

struct Options {
    summary: bool,
    /// `--ndjson`: one JSON object per record instead of the text.
    ndjson: bool,
    /// `-O DIR`: every format, as files in DIR.
    export: Option<String>,
    /// `-p PID`: attach to a running process instead of starting one.
    attach: Option<i32>,
    output: Option<String>,
    only: Option<Vec<String>>,
    command: Vec<String>,
}

fn usage() -> ! {
    eprintln!(
        "usage: trace [-c | --ndjson] [-o FILE] [-O DIR] [-e CALL,CALL...] COMMAND [ARGS...]\n\
         \x20      trace [-c | --ndjson] [-o FILE] [-O DIR] [-e CALL,CALL...] -p PID\n\
         Run COMMAND and print each system call it (and every process it starts) makes, with\n\
         the message hops it caused: which task sent what to which port, the operation, bytes,\n\
         and time (guest cycles) since the trap.\n\
         \x20 -c       a summary per call, per server and per process instead\n\
         \x20 --ndjson one JSON object per hop record instead (names and decoded data)\n\
         \x20 -o FILE  write to FILE instead of standard output\n\
         \x20 -O DIR   also write DIR/trace.txt, trace.ndjson, trace.json (Chrome trace\n\
         \x20          events with flow arrows: Perfetto) and trace.svg (sequence diagram)\n\
         \x20 -e LIST  only these calls (names, comma-separated)\n\
         \x20 -p PID   attach to running process PID (and what it starts) until it ends"
    );
    std::process::exit(2);
}

fn options() -> Options {
    let mut args = std::env::args().skip(1);
    let mut o = Options {
        summary: false,
        ndjson: false,
        export: None,
        attach: None,
        output: None,
        only: None,
        command: Vec::new(),
    };
    while let Some(a) = args.next() {
        match a.as_str() {
            "-h" | "--help" => usage(),
            "-c" => o.summary = true,
            "--ndjson" => o.ndjson = true,
            "-O" => o.export = Some(args.next().unwrap_or_else(|| usage())),
            "-p" => o.attach = Some(args.next().and_then(|p| p.parse().ok()).unwrap_or_else(|| usage())),
            "-o" => o.output = Some(args.next().unwrap_or_else(|| usage())),
            "-e" => {
                let list = args.next().unwrap_or_else(|| usage());
                o.only = Some(list.split(',').map(str::to_string).collect());
            }
            _ => {
                o.command.push(a);
                o.command.extend(args.by_ref());
            }
        }
    }
    if o.command.is_empty() == o.attach.is_none() || (o.summary && o.ndjson) {
        usage();
    }
    o
}

fn info(call: u64, a: u64, b: u64, c: u64) -> i64 {
    // SAFETY: Machina's own call; the pointers passed are live buffers of the given sizes.
    unsafe { libc::syscall(machina::INFO as libc::c_long, call, a, b, c) as i64 }
}

/// Every record from sequence `from` on, and the next sequence number to read.
fn read_records(from: u64) -> (Vec<TraceRecord>, u64) {
    let mut all = Vec::new();
    let mut next = from;
    let mut buffer = vec![TraceRecord::default(); 64];
    loop {
        let n = info(machina::TRACE_READ, next, buffer.as_mut_ptr() as u64, buffer.len() as u64);
        if n <= 0 {
            return (all, next);
        }
        let got = &buffer[..n as usize];
        next = got.last().map_or(next, |r| r.sequence + 1);
        all.extend_from_slice(got);
    }
}

/// "name pid" of a task, asked once.
fn namer() -> impl FnMut(u64) -> String {
    let mut known = std::collections::BTreeMap::new();
    move |task| {
        known
            .entry(task)
            .or_insert_with(|| {
                let mut buffer = [0u8; 96];
                let n = info(machina::TRACE_NAME, task, buffer.as_mut_ptr() as u64, buffer.len() as u64);
                let text =
                    String::from_utf8_lossy(&buffer[..(n.max(0) as usize).min(buffer.len())]).into_owned();
                match text.rsplit_once(' ') {
                    Some((name, "0")) => name.to_string(),
                    Some((name, pid)) => format!("{name}[{pid}]"),
                    None => format!("task {task}"),
                }
            })
            .clone()
    }
}

/// Read the ring from `next` every 5 ms until `done` says the traced process ended (so that
/// little is overwritten before it is read; what is is counted as dropped).
fn collect(mut next: u64, mut done: impl FnMut() -> bool) -> Vec<TraceRecord> {
    let mut records = Vec::new();
    loop {
        let finished = done();
        let (more, after) = read_records(next);
        records.extend(more);
        next = after;
        if finished {
            return records;
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
}

fn main() {
    let o = options();
    // Where the ring is now: only what comes after belongs to this run.
    let (_, start) = read_records(1);
    if let Some(pid) = o.attach {
        let traced = info(machina::TRACE_START, pid as u64, 0, 0);
        if traced < 0 {
            eprintln!("trace: cannot trace process {pid} (error {})", -traced);
            std::process::exit(1);
        }
        // SAFETY: kill with signal 0 only asks whether the process is there.
        let records = collect(start, || unsafe { libc::kill(pid, 0) } != 0);
        report(&o, &records, start, &format!("process {pid} ended"));
        return;
    }
    // The child waits until it is traced, then runs the command.
    let mut fds = [0; 2];
    // SAFETY: fds has room for two descriptors.
    if unsafe { libc::pipe(fds.as_mut_ptr()) } != 0 {
        eprintln!("trace: pipe: {}", std::io::Error::last_os_error());
        std::process::exit(1);
    }
    // SAFETY: the child only reads a byte, then execs or exits.
    let child = unsafe { libc::fork() };
    if child == 0 {
        use std::os::unix::process::CommandExt;
        let mut byte = [0u8; 1];
        // SAFETY: reading one byte into a local.
        unsafe {
            libc::close(fds[1]);
            libc::read(fds[0], byte.as_mut_ptr().cast(), 1);
            libc::close(fds[0]);
        }
        let e = std::process::Command::new(&o.command[0]).args(&o.command[1..]).exec();
        eprintln!("trace: {}: {e}", o.command[0]);
        std::process::exit(127);
    }
    let traced = info(machina::TRACE_START, child as u64, 0, 0);
    // SAFETY: letting the child go.
    unsafe {
        libc::close(fds[0]);
        libc::write(fds[1], [1u8].as_ptr().cast(), 1);
        libc::close(fds[1]);
    }
    let mut status = 0;
    // SAFETY: waiting for our child without blocking, into a local.
    let records = collect(start, || unsafe { libc::waitpid(child, &mut status, libc::WNOHANG) } == child);
    if traced < 0 {
        eprintln!("trace: the personality does not trace here (error {})", -traced);
        std::process::exit(1);
    }
    let code = if libc::WIFEXITED(status) { libc::WEXITSTATUS(status) } else { 128 + libc::WTERMSIG(status) };
    report(&o, &records, start, &format!("{} exited with status {code}", o.command[0]));
}

/// Print (or write to -o's file) the calls, the summary or the records, and the last line;
/// with -O, every format into its directory.
fn report(o: &Options, records: &[TraceRecord], start: u64, ending: &str) {
    let dropped = records.windows(2).map(|w| w[1].sequence.saturating_sub(w[0].sequence + 1)).sum::<u64>()
        + records.first().map_or(0, |r| r.sequence.saturating_sub(start));
    let mut name = namer();
    let all = tree::calls(records);
    // The calls -e keeps (a call's hops are references into the records).
    let chosen: Vec<tree::Call> = all
        .iter()
        .filter(|call| {
            o.only.as_ref().is_none_or(|only| call.trap().is_some() && only.iter().any(|w| *w == call.name()))
        })
        .map(|c| tree::Call { hops: c.hops.clone() })
        .collect();
    let last =
        format!("trace: {} calls, {} records, {} dropped; {ending}\n", all.len(), records.len(), dropped);
    // The text, rendered once when it is printed or exported.
    let text = if !(o.summary || o.ndjson) || o.export.is_some() {
        let mut out = String::new();
        for call in &chosen {
            out.push_str(&tree::render_call(call, &mut name));
        }
        out + &last
    } else {
        String::new()
    };
    let out = if o.summary {
        tree::summary(&all, &mut name) + &last
    } else if o.ndjson {
        // The records alone on the output; how many and what was dropped to the terminal.
        eprint!("{last}");
        export::ndjson(&chosen, &mut name)
    } else {
        text.clone()
    };
    let written = match &o.output {
        Some(path) => std::fs::write(path, out.as_bytes()),
        None => std::io::stdout().write_all(out.as_bytes()),
    };
    if let Err(e) = written {
        eprintln!("trace: writing the trace: {e}");
        std::process::exit(1);
    }
    if let Some(dir) = &o.export {
        let files = [
            ("trace.txt", text),
            ("trace.ndjson", export::ndjson(&chosen, &mut name)),
            ("trace.json", export::chrome(&chosen, &mut name)),
            ("trace.svg", export::svg(&chosen, &mut name)),
        ];
        let written = std::fs::create_dir_all(dir).and_then(|()| {
            files.iter().try_for_each(|(file, body)| std::fs::write(format!("{dir}/{file}"), body.as_bytes()))
        });
        if let Err(e) = written {
            eprintln!("trace: writing {dir}: {e}");
            std::process::exit(1);
        }
    }
}

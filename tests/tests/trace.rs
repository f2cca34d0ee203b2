//! `trace` (issue 12, first part): every message hop of a traced program's system calls,
//! seen from our shell. An uncached read goes app, kernel, personality, fs-server, block
//! server (and the device's interrupt, when the driver waits for it), and back; a cached one
//! stops at fs-server.

use std::time::Duration;
use system_tests::trace_check::{self, TracedCall};
use system_tests::{BootConfig, HALTED_STATUS, Machine, trace_files};

fn at_prompt(m: &mut Machine, n: usize, line: &str) {
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while m.console().matches(" $ ").count() < n {
        assert!(std::time::Instant::now() < deadline, "no prompt {n}:\n{}", m.console());
        std::thread::sleep(Duration::from_millis(10));
    }
    m.type_text(format!("{line}\r").as_bytes());
}

/// What the console showed between prompt `n` and prompt `n + 1`.
fn between_prompts(m: &mut Machine, n: usize) -> String {
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let console = m.console().replace('\r', "");
        let parts: Vec<&str> = console.split(" $ ").collect();
        if parts.len() > n + 1 {
            return parts[n].to_string();
        }
        assert!(std::time::Instant::now() < deadline, "no prompt {}:\n{console}", n + 1);
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// `lines` appear in `text` in this order (each after the one before).
fn in_order(text: &str, lines: &[&str]) {
    let mut at = 0;
    for line in lines {
        match text[at..].find(line) {
            Some(i) => at += i + line.len(),
            None => panic!("{line:?} missing (or out of order) after byte {at} of:\n{text}"),
        }
    }
}

#[test]
fn trace_shows_the_hops_of_an_uncached_and_a_cached_read() {
    let mut m = Machine::boot(&BootConfig::default_boot());
    // A block of /bin/hello far into the file (nothing has read it since the boot, and the
    // open's read-ahead does not reach it): the read goes all the way to the device.
    let dd = "trace -e read dd if=/bin/hello of=/dev/null bs=4096 skip=120 count=1";
    at_prompt(&mut m, 1, dd);
    let uncached = between_prompts(&mut m, 1);
    in_order(
        &uncached,
        &[
            "read(0) = 4096   [dd[",
            "trap     dd[",
            "send     dd[",
            "-> personality-unix syscall",
            "receive  personality-unix syscall",
            "send     personality-unix -> fs-server io.read",
            "receive  fs-server io.read",
            "send     fs-server -> block blk.read",
            "receive  block blk.read",
            "reply    block -> fs-server blk.read.reply",
            "receive  fs-server blk.read.reply",
            "reply    fs-server -> personality-unix io.read.reply",
            "receive  personality-unix io.read.reply",
            // The answer to the trap goes to the kernel's reply port: no task receives it.
            "reply    personality-unix -> port",
            "syscall.reply",
            "resume   dd[",
            "] = 4096",
        ],
    );
    // Messages are decoded from the protocol definitions: the requests' fields.
    assert!(
        uncached.contains("io.read ReadRequest { count: 4096, at: None, nonblocking: false }"),
        "{uncached}"
    );
    assert!(uncached.contains("blk.read ReadRequest { sector: "), "{uncached}");
    // (Records dropped would be counted on the last line; the read call above is whole.)
    assert!(uncached.contains(" dropped; dd exited with status 0"), "{uncached}");
    // The device's interrupt, when the block server had to wait for it (QEMU may have the
    // request done before the driver looks), comes while the block server serves a read:
    // between its receive of a blk.read and its reply.
    let mut serving = false;
    for line in uncached.lines() {
        if line.contains("receive  block blk.read") {
            serving = true;
        } else if line.contains("reply    block -> fs-server") {
            serving = false;
        } else if line.contains("irq      block") {
            assert!(serving, "an irq outside a block read: {line}\n{uncached}");
        }
    }
    // The second time the block is in fs-server's cache: the block server is not reached.
    at_prompt(&mut m, 2, dd);
    let cached = between_prompts(&mut m, 2);
    in_order(
        &cached,
        &[
            "read(0) = 4096",
            "receive  fs-server io.read",
            "reply    fs-server -> personality-unix io.read.reply",
            "resume   dd[",
        ],
    );
    assert!(
        !cached.contains("blk.read") && !cached.contains("irq "),
        "a cached read reached the block server:\n{cached}"
    );
    // The summary names the servers and the processes.
    at_prompt(&mut m, 3, "trace -c cat /etc/motd");
    let summary = between_prompts(&mut m, 3);
    for line in ["call ", "sendfile ", "execve ", "fs-server ", "personality-unix ", "cat["] {
        assert!(summary.lines().any(|l| l.starts_with(line)), "{line:?} missing:\n{summary}");
    }
    at_prompt(&mut m, 4, "trace; echo status $?");
    m.wait_for_console("status 2", Duration::from_secs(30)).unwrap_or_else(|e| panic!("{e}"));
    at_prompt(&mut m, 5, "exit");
    m.wait_for_log("mach-kernel: no tasks left", Duration::from_secs(30)).unwrap_or_else(|e| panic!("{e}"));
    m.expect_exit(HALTED_STATUS);
}

/// `trace cat FILE` twice, as records (`--ndjson`) checked with the trace-assertion helper:
/// the first time, the reads that fs-server's cache does not have go app, kernel, unix, fs,
/// blk (IRQ, blk: as often as the driver waited), fs, unix, kernel, app, exactly; the second time no read reaches the block
/// server. (/tests/trace/numbers.txt is 169 KiB that nothing reads before; fs-server reads
/// ahead 64 KiB, so some of the first run's reads are cached already.)
#[test]
fn trace_cat_hops_are_exact_for_uncached_and_cached_reads() {
    let mut m = Machine::boot(&BootConfig::default_boot());
    let traced = |n: usize| {
        format!("trace --ndjson -o /t{n} -e sendfile cat /tests/trace/numbers.txt > /dev/null && cat /t{n}")
    };
    let cached: Vec<String> =
        ["cat", "kernel", "personality-unix", "fs-server", "personality-unix", "kernel", "cat"]
            .map(String::from)
            .into();
    // The driver waits for the device's interrupt none, one or more times (QEMU may have the
    // request done before the driver looks; an interrupt may find it not done yet).
    let uncached = |irqs: usize| -> Vec<String> {
        let mut path: Vec<String> =
            ["cat", "kernel", "personality-unix", "fs-server", "block"].map(String::from).into();
        for _ in 0..irqs {
            path.extend(["IRQ", "block"].map(String::from));
        }
        path.extend(["fs-server", "personality-unix", "kernel", "cat"].map(String::from));
        path
    };
    let calls_of = |text: &str| -> Vec<TracedCall> {
        let calls = trace_check::parse(text).unwrap_or_else(|e| panic!("{e}\n{text}"));
        // 168,894 bytes in 4 KiB calls, and the one that finds the end.
        assert_eq!(calls.len(), 43, "{text}");
        assert!(calls.iter().all(|c| c.syscall == "sendfile" && c.process.starts_with("cat[")), "{text}");
        calls
    };
    at_prompt(&mut m, 1, &traced(1));
    let first = calls_of(&between_prompts(&mut m, 1));
    let from_disk: Vec<&TracedCall> = first.iter().filter(|c| c.reaches("block")).collect();
    assert!(!from_disk.is_empty(), "no read of the first run reached the block server: {first:#?}");
    for call in &first {
        if call.reaches("block") {
            let irqs = call.path().iter().filter(|s| *s == "IRQ").count();
            assert_eq!(call.path(), uncached(irqs), "{:#?}", call.hop_words());
        } else {
            assert_eq!(call.path(), cached, "{:#?}", call.hop_words());
        }
    }
    at_prompt(&mut m, 2, &traced(2));
    let second = calls_of(&between_prompts(&mut m, 2));
    for call in &second {
        assert!(!call.reaches("block"), "a cached read reached the block server: {:#?}", call.hop_words());
        assert_eq!(call.path(), cached, "{:#?}", call.hop_words());
    }
    at_prompt(&mut m, 3, "rm /t1 /t2; exit");
    m.wait_for_log("mach-kernel: no tasks left", Duration::from_secs(30)).unwrap_or_else(|e| panic!("{e}"));
    m.expect_exit(HALTED_STATUS);
}

/// The ring sized at boot (`trace_ring=64`, the smallest): a traced `ls -l` of /bin fills it
/// between trace's reads; what was overwritten is counted and reported, and nothing waits.
#[test]
fn a_small_ring_drops_records_and_says_how_many() {
    let mut config = BootConfig::default_boot();
    config.conf = config.conf.replace("kernel_cmdline:\n", "kernel_cmdline: trace_ring=64\n");
    let mut m = Machine::boot(&config);
    m.wait_for_log("trace: the ring keeps 64 records", Duration::from_secs(30))
        .unwrap_or_else(|e| panic!("{e}"));
    at_prompt(&mut m, 1, "trace -o /t.txt ls -l /bin > /dev/null; tail -1 /t.txt; echo done $?");
    let out = between_prompts(&mut m, 1);
    let last =
        out.lines().find(|l| l.starts_with("trace: ")).unwrap_or_else(|| panic!("no last line:\n{out}"));
    let dropped: u64 = last
        .split(", ")
        .find_map(|w| w.strip_suffix(" dropped; ls exited with status 0").and_then(|n| n.parse().ok()))
        .unwrap_or_else(|| panic!("{last}"));
    assert!(dropped > 0, "a 64-record ring kept everything of ls -l /bin? {last}");
    assert!(out.contains("done 0"), "{out}");
    at_prompt(&mut m, 2, "rm /t.txt; exit");
    m.wait_for_log("mach-kernel: no tasks left", Duration::from_secs(30)).unwrap_or_else(|e| panic!("{e}"));
    m.expect_exit(HALTED_STATUS);
}

/// What `make trace` does: the four files, each parsed, with one arrow per recorded hop.
#[test]
fn make_trace_files_parse_with_an_arrow_per_hop() {
    let out = std::env::temp_dir().join(format!("machina-trace-{}", std::process::id()));
    let console = trace_files::run(&BootConfig::default_boot(), "cat /etc/motd", &out)
        .unwrap_or_else(|e| panic!("make trace: {e}"));
    assert!(console.contains("Welcome to Machina."), "{console}");
    let read = |file: &str| std::fs::read_to_string(out.join(file)).unwrap_or_else(|e| panic!("{file}: {e}"));
    // NDJSON: one parsed object a record.
    let ndjson = read("trace.ndjson");
    let records: Vec<serde_json::Value> =
        ndjson.lines().map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}"))).collect();
    let hops = records.len();
    assert!(hops > 100, "{hops} records");
    // The text says how many records it read: the same number, none dropped here.
    let text = read("trace.txt");
    let last = text.lines().last().unwrap_or("");
    assert!(last.contains(&format!(" {hops} records, 0 dropped; cat exited with status 0")), "{last}");
    assert_eq!(text.lines().filter(|l| l.trim_start().starts_with('+')).count(), hops);
    // Chrome trace events: a flow arrow (start and finish) per hop, on tracks that are named.
    let chrome: serde_json::Value = serde_json::from_str(&read("trace.json")).expect("trace.json parses");
    let events = chrome["traceEvents"].as_array().expect("traceEvents");
    let count = |ph: &str| events.iter().filter(|e| e["ph"] == ph).count();
    assert_eq!((count("s"), count("f")), (hops, hops));
    let tracks: Vec<&str> = events
        .iter()
        .filter(|e| e["name"] == "thread_name")
        .filter_map(|e| e["args"]["name"].as_str())
        .collect();
    for name in ["kernel", "personality-unix", "fs-server", "console"] {
        assert!(tracks.contains(&name), "no {name} track: {tracks:?}");
    }
    // The SVG: XML, an arrow per hop, a lifeline per track.
    let svg = read("trace.svg");
    let doc = roxmltree::Document::parse(&svg).unwrap_or_else(|e| panic!("trace.svg: {e}"));
    let class = |n: &roxmltree::Node| n.attribute("class").unwrap_or("").to_string();
    let arrows = doc.descendants().filter(|n| n.has_tag_name("line") && class(n).starts_with("hop ")).count();
    assert_eq!(arrows, hops);
    let lifelines = doc.descendants().filter(|n| n.has_tag_name("line") && class(n) == "lifeline").count();
    assert_eq!(lifelines, tracks.len());
    let _ = std::fs::remove_dir_all(&out);
}

/// A traced two-process pipeline: each call is attributed to the process that made it; and
/// `trace -p` attached to a running process.
#[test]
fn a_traced_pipeline_attributes_each_call_to_its_process() {
    let mut m = Machine::boot(&BootConfig::default_boot());
    at_prompt(&mut m, 1, "trace -e write,read busybox sh -c 'echo hi | cat'");
    let out = between_prompts(&mut m, 1);
    // The echo (busybox's shell, forked for the pipeline) writes to the pipe; cat reads it
    // and writes it out.
    assert!(out.contains("write(1) = 3   [busybox["), "{out}");
    assert!(out.contains("read(0) = 3   [cat["), "{out}");
    assert!(out.contains("write(1) = 3   [cat["), "{out}");
    let pid_of = |who: &str| -> Vec<String> {
        out.lines()
            .filter_map(|l| {
                l.split_once(&format!("[{who}[")).map(|(_, r)| r.split(']').next().unwrap_or("").to_string())
            })
            .collect()
    };
    let (sh, cat) = (pid_of("busybox"), pid_of("cat"));
    assert!(
        !sh.is_empty() && !cat.is_empty() && sh.iter().all(|p| !cat.contains(p)),
        "sh {sh:?} cat {cat:?}:\n{out}"
    );
    // cat's write went to the console: its hops end at the console server.
    in_order(
        &out,
        &["write(1) = 3   [cat[", "send     personality-unix -> console io.write", "resume   cat["],
    );
    // -p attaches to a running process: here a sleep, whose last call is traced.
    at_prompt(&mut m, 2, "busybox sh -c 'sleep 1 & trace -p $!'");
    let attached = between_prompts(&mut m, 2);
    in_order(&attached, &["exit_group(0) = ?   [sleep[", "trace: ", " ended"]);
    at_prompt(&mut m, 3, "exit");
    m.wait_for_log("mach-kernel: no tasks left", Duration::from_secs(30)).unwrap_or_else(|e| panic!("{e}"));
    m.expect_exit(HALTED_STATUS);
}

/// `ls -l` of a directory of 1,000 entries: every record is there (a call per entry), or
/// the trace says how many were dropped.
#[test]
fn tracing_ls_of_a_thousand_entries_loses_nothing_or_says_so() {
    let mut m = Machine::boot(&BootConfig::default_boot());
    at_prompt(&mut m, 1, "mkdir /d && cd /d && seq 1 1000 | xargs touch && cd / && ls /d | wc -l");
    m.wait_for_console("\r\n1000\r\n", Duration::from_secs(120)).unwrap_or_else(|e| panic!("{e}"));
    at_prompt(&mut m, 2, "trace -c -o /t.txt ls -l /d > /dev/null; tail -1 /t.txt; grep -c . /t.txt");
    let out = between_prompts(&mut m, 2);
    let last =
        out.lines().find(|l| l.starts_with("trace: ")).unwrap_or_else(|| panic!("no summary line:\n{out}"));
    let number_before = |word: &str| -> u64 {
        let words: Vec<&str> = last.split([' ', ',', ';']).filter(|w| !w.is_empty()).collect();
        words.windows(2).find(|w| w[1] == word).and_then(|w| w[0].parse().ok()).unwrap_or(u64::MAX)
    };
    let (calls, dropped) = (number_before("calls"), number_before("dropped"));
    assert!(calls != u64::MAX && dropped != u64::MAX, "{last}");
    if dropped == 0 {
        // One lstat (or statx) per entry at least.
        assert!(calls >= 1000, "no record dropped, yet only {calls} calls: {last}");
    }
    at_prompt(&mut m, 3, "rm -r /d /t.txt; exit");
    m.wait_for_log("mach-kernel: no tasks left", Duration::from_secs(60)).unwrap_or_else(|e| panic!("{e}"));
    m.expect_exit(HALTED_STATUS);
}

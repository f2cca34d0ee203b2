//! From the kernel's trace records to what `trace` prints: the records grouped by request
//! (trace context: one per system call of a traced process), each call as a line like
//! strace's, then its hops as an indented tree (a request one level deeper, its reply one
//! back), with the time since the trap, and for a server's part the time its request waited
//! in the queue and the time it served. And the summary of `trace -c`.
//!
//! Pure: the caller supplies the records and a way to name a task. It must never panic on
//! records that are cut short (a ring that dropped the start of a request).

use mach_abi::trace::{IRQ, RECEIVE, REPLY, RESUME, SEND, TRAP, TraceRecord};
use std::collections::BTreeMap;
use std::fmt::Write;

/// Message id of a forwarded system call, and the bit replies carry.
const SYSCALL_MESSAGE: u32 = 0x4d_0002;
const REPLY_BIT: u32 = 0x8000_0000;

/// A system call and its hops, in sequence order.
pub struct Call<'a> {
    pub hops: Vec<&'a TraceRecord>,
}

impl Call<'_> {
    /// The trap that started it (None: the ring lost it).
    pub fn trap(&self) -> Option<&TraceRecord> {
        self.hops.iter().copied().find(|r| r.kind == TRAP)
    }

    /// The call's name: Linux's for a `syscall`, xv6's for an `int $64` (the trap record
    /// keeps the entry in `port`); "?" when the ring lost the trap.
    pub fn name(&self) -> String {
        self.trap().map_or_else(|| String::from("?"), trap_name)
    }

    pub fn result(&self) -> Option<i64> {
        self.hops.iter().find(|r| r.kind == RESUME).map(|r| r.size as i64)
    }

    /// Address-space crossings: how many times the running task changed (the caller, each
    /// task that received a message or an interrupt, the caller again at the resume). A
    /// cached read: caller, personality, fs-server, personality, caller: 4.
    pub fn crossings(&self) -> u64 {
        let running =
            self.hops.iter().filter(|r| matches!(r.kind, TRAP | RECEIVE | IRQ | RESUME)).map(|r| r.task);
        let mut last = None;
        let mut changes = 0;
        for task in running {
            if last.is_some_and(|l| l != task) {
                changes += 1;
            }
            last = Some(task);
        }
        changes
    }

    /// Port rights the call's messages carried.
    pub fn rights(&self) -> u64 {
        self.hops.iter().filter(|r| matches!(r.kind, SEND | REPLY)).map(|r| u64::from(r.rights)).sum()
    }

    /// Guest time from the trap to the resume.
    pub fn duration(&self) -> u64 {
        match (self.hops.first(), self.hops.last()) {
            (Some(a), Some(b)) => b.tsc.saturating_sub(a.tsc),
            _ => 0,
        }
    }
}

/// The records grouped by trace context, each group in sequence order, groups in the order
/// their first record came.
pub fn calls(records: &[TraceRecord]) -> Vec<Call<'_>> {
    let mut by_trace: BTreeMap<u32, Vec<&TraceRecord>> = BTreeMap::new();
    for r in records {
        by_trace.entry(r.trace).or_default().push(r);
    }
    let mut calls: Vec<Call> = by_trace
        .into_values()
        .map(|mut hops| {
            hops.sort_by_key(|r| r.sequence);
            Call { hops }
        })
        .collect();
    calls.sort_by_key(|c| c.hops.first().map_or(0, |r| r.sequence));
    calls
}

/// A message id as a name: `fs.read`, `syscall`, with `.reply` for replies.
pub fn operation(id: u32) -> String {
    let reply = id & REPLY_BIT != 0;
    let base = id & !REPLY_BIT;
    let name = match base {
        SYSCALL_MESSAGE => "syscall".to_string(),
        mach_abi::IRQ_MESSAGE => "irq".to_string(),
        _ => interfaces::operation_name(base).map_or_else(|| format!("{base:#x}"), str::to_string),
    };
    if reply { format!("{name}.reply") } else { name }
}

/// What a message carried, decoded from the start of its data that the record keeps (the
/// protocol's request or reply type), or nothing.
pub fn carried(r: &TraceRecord) -> String {
    let data = r.data.get(..r.data_len as usize).unwrap_or(&[]);
    interfaces::describe(r.msg_id, data).map_or_else(String::new, |d| format!(" {d}"))
}

/// The name of the call a trap record made.
pub fn trap_name(trap: &TraceRecord) -> String {
    if u64::from(trap.port) == mach_abi::forward::entry::INT_0X40 {
        let number = u64::from(trap.msg_id);
        return personality_xv6::abi::call_name(number)
            .map_or_else(|| format!("xv6_{number}"), str::to_string);
    }
    syscall(trap.msg_id)
}

/// A Linux system call's name.
pub fn syscall(number: u32) -> String {
    personality_unix::linux::syscall_name(number as u64)
        .map_or_else(|| format!("syscall_{number}"), str::to_string)
}

/// One hop of a call with what the records around it tell.
pub struct Hop<'a> {
    pub record: &'a TraceRecord,
    /// SEND and REPLY: the task that received the message (the next receive of the same
    /// message id on the same port); None when no task did in this call (the answer to a
    /// trap goes to the kernel's reply port).
    pub receiver: Option<u64>,
    /// RECEIVE: the index (in the call's hops) of the send it took, when the call has it.
    pub sent_at: Option<usize>,
    /// RECEIVE: cycles the message waited in the port's queue (from its send).
    pub waited: Option<u64>,
    /// REPLY: cycles the replying task served the request (from its receive).
    pub served: Option<u64>,
    /// REPLY: the index (in the call's hops) of the receive that started the serving.
    pub serving_from: Option<usize>,
    /// Depth in the tree: 1 for the caller's own hops, one more inside each request.
    pub depth: usize,
}

/// The hops of a call, each with where its message went, its queue wait or serving time
/// and its depth.
pub fn hops<'a>(call: &Call<'a>) -> Vec<Hop<'a>> {
    let records = &call.hops;
    // Sends not yet received: (index, port, message id).
    let mut in_queue: Vec<(usize, u32, u32)> = Vec::new();
    // Per task, the receives it has not replied to yet (a stack: nested requests).
    let mut serving: BTreeMap<u64, Vec<usize>> = BTreeMap::new();
    let mut depth = 1usize;
    let mut out = Vec::with_capacity(records.len());
    for (i, &r) in records.iter().enumerate() {
        let mut hop = Hop {
            record: r,
            receiver: None,
            sent_at: None,
            waited: None,
            served: None,
            serving_from: None,
            depth,
        };
        match r.kind {
            SEND | REPLY => {
                hop.receiver = records
                    .iter()
                    .skip(i + 1)
                    .find(|q| q.kind == RECEIVE && q.port == r.port && q.msg_id == r.msg_id)
                    .map(|q| q.task);
                in_queue.push((i, r.port, r.msg_id));
                if r.kind == REPLY {
                    hop.serving_from = serving.get_mut(&r.task).and_then(|s| s.pop());
                    hop.served =
                        hop.serving_from.and_then(|at| records.get(at)).map(|q| r.tsc.saturating_sub(q.tsc));
                    depth = depth.saturating_sub(1).max(1);
                    hop.depth = depth;
                }
            }
            RECEIVE => {
                if let Some(q) = in_queue.iter().position(|&(_, port, id)| port == r.port && id == r.msg_id) {
                    let (at, _, _) = in_queue.remove(q);
                    hop.sent_at = Some(at);
                    hop.waited = records.get(at).map(|s| r.tsc.saturating_sub(s.tsc));
                }
                // A request (not a reply to one of its own) starts the task's serving.
                if r.msg_id & REPLY_BIT == 0 {
                    serving.entry(r.task).or_default().push(i);
                }
            }
            _ => {}
        }
        out.push(hop);
        if r.kind == SEND && r.msg_id & REPLY_BIT == 0 {
            depth += 1;
        }
    }
    out
}

/// A call's first argument as a number: an `int` passed in 32 bits (AT_FDCWD, -100, comes
/// as 0xffffff9c) is shown negative.
pub fn first_argument(value: u64) -> i64 {
    match u32::try_from(value) {
        Ok(low) if low >= 0x8000_0000 => i64::from(low as i32),
        _ => value as i64,
    }
}

/// The head line of a call: `read(3) = 20   [cat 3] 1300 cycles`.
pub fn call_line(call: &Call, name: &mut dyn FnMut(u64) -> String) -> String {
    let (who, head) = match call.trap() {
        Some(t) => (name(t.task), format!("{}({})", trap_name(t), first_argument(t.size))),
        None => (String::from("?"), String::from("(the start of this request was dropped)")),
    };
    let result = call.result().map_or_else(|| String::from("?"), |r| r.to_string());
    format!("{head} = {result}   [{who}] {} cycles", call.duration())
}

/// The rights and out-of-line regions a message carried: `, 1 right`, or nothing.
pub fn rights_and_regions(r: &TraceRecord) -> String {
    let plural = |n: u8, one: &str| match n {
        0 => String::new(),
        1 => format!(", 1 {one}"),
        n => format!(", {n} {one}s"),
    };
    plural(r.rights, "right") + &plural(r.regions, "region")
}

/// What one hop says, without its time: `send     cat 3 -> fs-server io.read ... 40 bytes`.
pub fn hop_text(hop: &Hop, name: &mut dyn FnMut(u64) -> String) -> String {
    let r = hop.record;
    let target =
        |name: &mut dyn FnMut(u64) -> String| hop.receiver.map_or_else(|| format!("port {}", r.port), name);
    match r.kind {
        TRAP => format!("trap     {}", name(r.task)),
        SEND => {
            let target = target(name);
            format!(
                "send     {} -> {target} {}{} {} bytes{}",
                name(r.task),
                operation(r.msg_id),
                carried(r),
                r.size,
                rights_and_regions(r)
            )
        }
        RECEIVE => {
            let waited = hop.waited.map_or(String::new(), |w| format!(", waited {w} in the queue"));
            format!("receive  {} {} {} bytes{waited}", name(r.task), operation(r.msg_id), r.size)
        }
        REPLY => {
            let target = target(name);
            let served = hop.served.map_or(String::new(), |s| format!(", served in {s}"));
            format!(
                "reply    {} -> {target} {}{} {} bytes{}{served}",
                name(r.task),
                operation(r.msg_id),
                carried(r),
                r.size,
                rights_and_regions(r)
            )
        }
        RESUME => format!("resume   {} = {}", name(r.task), r.size as i64),
        IRQ => format!("irq      {} <- the device's interrupt", name(r.task)),
        k => format!("kind {k} {}", name(r.task)),
    }
}

/// One call: its head line, then its hops, each indented by its depth with the time since
/// the trap.
pub fn render_call(call: &Call, name: &mut dyn FnMut(u64) -> String) -> String {
    let mut out = String::new();
    let start = call.hops.first().map_or(0, |r| r.tsc);
    let _ = writeln!(out, "{}", call_line(call, name));
    for hop in hops(call) {
        let at = hop.record.tsc.saturating_sub(start);
        let _ = writeln!(out, "{:indent$}+{at:<9} {}", "", hop_text(&hop, name), indent = hop.depth * 2);
    }
    out
}

/// A system call's totals, for `trace -c`.
#[derive(Default)]
struct CallShare {
    calls: u64,
    messages: u64,
    crossings: u64,
    bytes: u64,
    rights: u64,
    cycles: u64,
}

/// A task's part in the traced calls, for `trace -c`.
#[derive(Default)]
struct TaskShare {
    messages: u64,
    bytes: u64,
    /// Cycles its messages waited in its queues.
    waited: u64,
    /// Cycles from its receives to its replies.
    served: u64,
}

/// `trace -c`: per call (counts, messages, address-space crossings, bytes and rights carried,
/// time), per server task (messages, bytes, and its time split into its requests' waiting in
/// the queue and its serving) and per process.
pub fn summary(calls: &[Call], name: &mut dyn FnMut(u64) -> String) -> String {
    let mut per_call: BTreeMap<String, CallShare> = BTreeMap::new();
    let mut per_task: BTreeMap<String, TaskShare> = BTreeMap::new();
    let mut per_process: BTreeMap<String, (u64, u64)> = BTreeMap::new();
    for c in calls {
        let call_name = c.name();
        let messages = c.hops.iter().filter(|r| r.kind == SEND || r.kind == REPLY).count() as u64;
        let bytes: u64 = c.hops.iter().filter(|r| r.kind == SEND || r.kind == REPLY).map(|r| r.size).sum();
        let e = per_call.entry(call_name).or_default();
        e.calls += 1;
        e.messages += messages;
        e.crossings += c.crossings();
        e.bytes += bytes;
        e.rights += c.rights();
        e.cycles += c.duration();
        for hop in hops(c) {
            let r = hop.record;
            if !matches!(r.kind, RECEIVE | IRQ | REPLY) {
                continue;
            }
            let t = per_task.entry(name(r.task)).or_default();
            if r.kind != REPLY {
                t.messages += 1;
                t.bytes += r.size;
            }
            t.waited += hop.waited.unwrap_or(0);
            t.served += hop.served.unwrap_or(0);
        }
        if let Some(t) = c.trap() {
            let p = per_process.entry(name(t.task)).or_default();
            *p = (p.0 + 1, p.1 + c.duration());
        }
    }
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:<20} {:>7} {:>9} {:>9} {:>11} {:>7} {:>13}",
        "call", "calls", "messages", "crossings", "bytes", "rights", "cycles"
    );
    for (name, c) in &per_call {
        let _ = writeln!(
            out,
            "{name:<20} {:>7} {:>9} {:>9} {:>11} {:>7} {:>13}",
            c.calls, c.messages, c.crossings, c.bytes, c.rights, c.cycles
        );
    }
    let _ = writeln!(
        out,
        "\n{:<28} {:>9} {:>11} {:>13} {:>13}",
        "task (received)", "messages", "bytes", "queue wait", "serving"
    );
    for (name, t) in &per_task {
        let _ =
            writeln!(out, "{name:<28} {:>9} {:>11} {:>13} {:>13}", t.messages, t.bytes, t.waited, t.served);
    }
    let _ = writeln!(out, "\n{:<28} {:>7} {:>13}", "process", "calls", "cycles");
    for (name, (calls, time)) in &per_process {
        let _ = writeln!(out, "{name:<28} {calls:>7} {time:>13}");
    }
    out
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    fn hop(sequence: u64, trace: u32, kind: u8, task: u64, port: u32, msg_id: u32, size: u64) -> TraceRecord {
        TraceRecord {
            sequence,
            tsc: sequence * 100,
            trace,
            kind,
            task,
            port,
            msg_id,
            size,
            ..TraceRecord::default()
        }
    }

    /// A read: the app traps, the personality asks fs-server, which asks the block server,
    /// which takes an interrupt; then replies back and the app resumes.
    pub(crate) fn read_path() -> Vec<TraceRecord> {
        let fs_read = 0x101; // io.read
        vec![
            hop(1, 7, TRAP, 10, 0, 0, 3),
            hop(2, 7, SEND, 10, 1, SYSCALL_MESSAGE, 300),
            hop(3, 7, RECEIVE, 5, 1, SYSCALL_MESSAGE, 300),
            hop(4, 7, SEND, 5, 2, fs_read, 40),
            hop(5, 7, RECEIVE, 3, 2, fs_read, 40),
            hop(6, 7, SEND, 3, 4, 0x302, 40),
            hop(7, 7, RECEIVE, 2, 4, 0x302, 40),
            hop(8, 7, IRQ, 2, 9, mach_abi::IRQ_MESSAGE, 33),
            hop(9, 7, REPLY, 2, 5, 0x302 | REPLY_BIT, 1100),
            hop(10, 7, RECEIVE, 3, 5, 0x302 | REPLY_BIT, 1100),
            TraceRecord { rights: 1, ..hop(11, 7, REPLY, 3, 6, fs_read | REPLY_BIT, 60) },
            hop(12, 7, RECEIVE, 5, 6, fs_read | REPLY_BIT, 60),
            hop(13, 7, REPLY, 5, 7, SYSCALL_MESSAGE | REPLY_BIT, 200),
            hop(14, 7, RESUME, 10, 0, 0, 20),
            hop(15, 8, TRAP, 10, 0, 60, 0),
        ]
    }

    pub(crate) fn names(task: u64) -> String {
        match task {
            10 => "cat 3".into(),
            5 => "personality-unix 0".into(),
            3 => "fs-server 0".into(),
            2 => "block 0".into(),
            _ => "?".into(),
        }
    }

    #[test]
    fn one_call_per_context_in_order() {
        let records = read_path();
        let calls = calls(&records);
        assert_eq!(calls.len(), 2);
        assert_eq!(calls[0].name(), "read");
        assert_eq!(calls[0].result(), Some(20));
        assert_eq!(calls[0].duration(), 1300);
        // cat, personality, fs-server, block (receive, irq), fs-server, personality, cat.
        assert_eq!(calls[0].crossings(), 6);
        assert_eq!(calls[0].rights(), 1);
        assert_eq!(calls[1].name(), "exit");
        assert_eq!(calls[1].result(), None);
    }

    #[test]
    fn the_read_path_as_a_tree() {
        let records = read_path();
        let calls = calls(&records);
        let text = render_call(&calls[0], &mut names);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "read(3) = 20   [cat 3] 1300 cycles");
        assert!(lines[2].contains("send     cat 3 -> personality-unix 0 syscall 300 bytes"), "{text}");
        assert!(lines[3].starts_with("    +200"), "one level deeper: {text}");
        assert!(
            lines[3].contains("receive  personality-unix 0 syscall 300 bytes, waited 100 in the queue"),
            "{text}"
        );
        assert!(lines[4].contains("io.read"), "{text}");
        assert!(lines[8].contains("irq      block 0"), "{text}");
        assert!(lines[9].contains("reply    block 0 -> fs-server 0 blk.read.reply"), "{text}");
        assert!(lines[9].contains("served in 200"), "{text}");
        assert!(lines[11].contains("60 bytes, 1 right, served in 600"), "{text}");
        // The app's resume has no receive: a reply to the kernel's reply port names its port.
        assert!(lines[13].contains("reply    personality-unix 0 -> port 7 syscall.reply"), "{text}");
        assert!(lines[14].contains("resume   cat 3 = 20"), "{text}");
        // A call whose start the ring dropped is still shown.
        let cut = super::calls(&records[3..]);
        assert!(render_call(&cut[0], &mut names).starts_with("(the start of this request was dropped)"));
    }

    #[test]
    fn summary_per_call_task_and_process() {
        let records = read_path();
        let calls = calls(&records);
        let text = summary(&calls, &mut names);
        assert!(
            text.lines().any(|l| l.starts_with("read") && l.contains(" 1 ") && l.ends_with("1300")),
            "{text}"
        );
        assert!(text.lines().any(|l| l.starts_with("block 0") && l.contains(" 2 ")), "{text}");
        // fs-server's request waited 100 in its queue (send 4, receive 5) and it served
        // from 5 to 11; its blk.read.reply waited 100 too.
        let fs = text.lines().find(|l| l.starts_with("fs-server 0")).unwrap_or_default();
        assert!(fs.ends_with(" 200           600"), "{fs:?}\n{text}");
        assert!(text.lines().any(|l| l.starts_with("cat 3") && l.ends_with("1300")), "{text}");
        assert_eq!(operation(0x4d_0002 | REPLY_BIT), "syscall.reply");
        assert_eq!(syscall(0), "read");
        let xv6_read = TraceRecord { port: 0x40, msg_id: 5, ..hop(1, 1, TRAP, 1, 0x40, 5, 0) };
        assert_eq!(trap_name(&xv6_read), "read");
        assert_eq!(trap_name(&TraceRecord { msg_id: 11, ..xv6_read }), "getpid");
        assert_eq!(trap_name(&TraceRecord { port: 0, msg_id: 11, ..xv6_read }), "munmap");
        assert_eq!((first_argument(0xffff_ff9c), first_argument(3), first_argument(u64::MAX)), (-100, 3, -1));
        assert_eq!(syscall(9999), "syscall_9999");
    }
}

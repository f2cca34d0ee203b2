//! Trace assertions for system tests: `trace --ndjson` output (one hop record a line, as
//! userland/trace's export writes it) read back into calls, so a test can say "this call's
//! hops are exactly ..." (`TracedCall::path`) or "a cached read never reaches the block
//! server" (`TracedCall::reaches`).
//!
//! Lines that are not JSON objects (the traced program's own output) are skipped; a JSON
//! line without the fields is an error, never a silent skip.

use serde_json::Value;

/// One hop record.
#[derive(Debug, Clone)]
pub struct TracedHop {
    pub sequence: u64,
    /// trap, send, receive, reply, irq or resume.
    pub kind: String,
    /// The task the hop is of: `dd[7]`, `fs-server`.
    pub task: String,
    /// `io.read`, `blk.read.reply`, `syscall`.
    pub operation: String,
    /// The decoded start of the message, when there was one.
    pub data: Option<String>,
}

/// The hops of one system call, in order.
#[derive(Debug, Clone)]
pub struct TracedCall {
    /// `read`, `write`; `?` when the ring dropped its trap.
    pub syscall: String,
    /// The process that made it: `dd[7]`.
    pub process: String,
    pub hops: Vec<TracedHop>,
}

/// A task's name without its pid: `dd[7]` is `dd`.
pub fn program(task: &str) -> &str {
    task.split('[').next().unwrap_or(task)
}

impl TracedCall {
    /// Where control went, repeats merged, pids dropped: the caller, `kernel` for its trap,
    /// each task that received a message, `IRQ` for an interrupt, then `kernel` and the caller
    /// again for the resume. An uncached read: dd, kernel, personality-unix, fs-server, block,
    /// IRQ, block, fs-server, personality-unix, kernel, dd.
    pub fn path(&self) -> Vec<String> {
        let mut path: Vec<String> = Vec::new();
        for hop in &self.hops {
            let task = program(&hop.task).to_string();
            let steps = match hop.kind.as_str() {
                "trap" => vec![task, "kernel".to_string()],
                "receive" => vec![task],
                "irq" => vec!["IRQ".to_string(), task],
                "resume" => vec!["kernel".to_string(), task],
                _ => vec![],
            };
            for step in steps {
                if path.last() != Some(&step) {
                    path.push(step);
                }
            }
        }
        path
    }

    /// Whether any hop of the call is a task named `program` (pid dropped).
    pub fn reaches(&self, name: &str) -> bool {
        self.hops.iter().any(|h| program(&h.task) == name)
    }

    /// The hops as `kind task operation` words (pids dropped): `send dd syscall`.
    pub fn hop_words(&self) -> Vec<String> {
        self.hops.iter().map(|h| format!("{} {} {}", h.kind, program(&h.task), h.operation)).collect()
    }
}

/// The calls in `text` (NDJSON records among other lines), in the order their first record
/// came.
pub fn parse(text: &str) -> Result<Vec<TracedCall>, String> {
    let mut calls: Vec<(u64, TracedCall)> = Vec::new();
    for line in text.lines().map(str::trim).filter(|l| l.starts_with('{')) {
        let v: Value = serde_json::from_str(line).map_err(|e| format!("{e}: {line}"))?;
        let text_field = |key: &str| -> Result<String, String> {
            v[key].as_str().map(str::to_string).ok_or_else(|| format!("no {key:?} in {line}"))
        };
        let number = |key: &str| -> Result<u64, String> {
            v[key].as_u64().ok_or_else(|| format!("no number {key:?} in {line}"))
        };
        let context = number("call")?;
        let hop = TracedHop {
            sequence: number("sequence")?,
            kind: text_field("kind")?,
            task: text_field("task")?,
            operation: text_field("operation")?,
            data: v["data"].as_str().map(str::to_string),
        };
        match calls.iter_mut().find(|(c, _)| *c == context) {
            Some((_, call)) => call.hops.push(hop),
            None => calls.push((
                context,
                TracedCall {
                    syscall: text_field("syscall")?,
                    process: text_field("process")?,
                    hops: vec![hop],
                },
            )),
        }
    }
    Ok(calls.into_iter().map(|(_, c)| c).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(seq: u64, call: u64, kind: &str, task: &str, op: &str) -> String {
        format!(
            "{{\"sequence\":{seq},\"call\":{call},\"syscall\":\"read\",\"process\":\"dd[7]\",\"kind\":\"{kind}\",\
             \"task\":\"{task}\",\"operation\":\"{op}\"}}"
        )
    }

    #[test]
    fn a_read_path_and_what_it_reaches() {
        let text = [
            "dd: some output".to_string(),
            line(1, 4, "trap", "dd[7]", "0x0"),
            line(2, 4, "send", "dd[7]", "syscall"),
            line(3, 4, "receive", "personality-unix", "syscall"),
            line(4, 4, "send", "personality-unix", "io.read"),
            line(5, 4, "receive", "fs-server", "io.read"),
            line(6, 4, "send", "fs-server", "blk.read"),
            line(7, 4, "receive", "block", "blk.read"),
            line(8, 4, "irq", "block", "irq"),
            line(9, 5, "trap", "dd[7]", "0x0"),
            line(10, 4, "reply", "block", "blk.read.reply"),
            line(11, 4, "receive", "fs-server", "blk.read.reply"),
            line(12, 4, "reply", "fs-server", "io.read.reply"),
            line(13, 4, "receive", "personality-unix", "io.read.reply"),
            line(14, 4, "reply", "personality-unix", "syscall.reply"),
            line(15, 4, "resume", "dd[7]", "0x0"),
        ]
        .join("\n");
        let calls = parse(&text).expect("parses");
        assert_eq!(calls.len(), 2);
        assert_eq!(
            calls[0].path(),
            [
                "dd",
                "kernel",
                "personality-unix",
                "fs-server",
                "block",
                "IRQ",
                "block",
                "fs-server",
                "personality-unix",
                "kernel",
                "dd"
            ]
        );
        assert!(calls[0].reaches("block") && !calls[1].reaches("block"));
        assert_eq!(calls[0].hop_words()[1], "send dd syscall");
        assert!(parse("{\"sequence\":1}").is_err(), "a record without its fields is an error");
    }
}

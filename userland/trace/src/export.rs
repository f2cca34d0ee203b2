//! `trace -O DIR`: the same calls as files for other tools: NDJSON (one record a line, with
//! names and decoded messages), Chrome trace-event JSON (opens in Perfetto: a track per
//! task and one for the kernel, a flow arrow per hop, each server's serving as a slice) and
//! a self-contained SVG sequence diagram (a lifeline per task and the kernel's, an arrow per
//! hop, time running down).
//!
//! Every record is one hop and one arrow, between the lifeline it leaves and the one it
//! reaches: a trap, a send and a reply go from a task into the kernel; a receive, an
//! interrupt and a resume come from the kernel to a task. So the kernel is crossed twice by
//! each message, as it is in a Mach system.
//!
//! Pure (strings in, strings out) and host-tested; it must never panic on a cut-short call.

use crate::tree::{self, Call, Hop};
use mach_abi::trace::{IRQ, RECEIVE, REPLY, RESUME, SEND, TRAP};
use std::fmt::Write;

/// The lifeline every hop crosses.
pub const KERNEL: &str = "kernel";

/// A JSON string literal.
fn json_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Text for XML content and attributes.
fn xml_text(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

fn kind_name(kind: u8) -> &'static str {
    match kind {
        TRAP => "trap",
        SEND => "send",
        RECEIVE => "receive",
        REPLY => "reply",
        RESUME => "resume",
        IRQ => "irq",
        _ => "unknown",
    }
}

/// The lifelines an arrow for this hop joins: (from, to).
fn ends(hop: &Hop, name: &mut dyn FnMut(u64) -> String) -> (String, String) {
    let task = name(hop.record.task);
    match hop.record.kind {
        TRAP | SEND | REPLY => (task, KERNEL.to_string()),
        _ => (KERNEL.to_string(), task),
    }
}

/// A hop's short label: `send io.read 40 B`.
fn label(hop: &Hop) -> String {
    let r = hop.record;
    match r.kind {
        TRAP => format!("trap {}", tree::trap_name(r)),
        SEND | REPLY => format!(
            "{} {} {} B{}",
            kind_name(r.kind),
            tree::operation(r.msg_id),
            r.size,
            tree::rights_and_regions(r)
        ),
        RECEIVE => format!("receive {} {} B", tree::operation(r.msg_id), r.size),
        RESUME => format!("resume = {}", r.size as i64),
        IRQ => "irq".to_string(),
        k => format!("kind {k}"),
    }
}

/// One JSON object per record, in call order then sequence order.
pub fn ndjson(calls: &[Call], name: &mut dyn FnMut(u64) -> String) -> String {
    let mut out = String::new();
    for call in calls {
        let syscall = call.name();
        let process = call.trap().map_or_else(|| "?".to_string(), |t| name(t.task));
        for hop in tree::hops(call) {
            let r = hop.record;
            let (from, to) = ends(&hop, name);
            // A trap's and a resume's "operation" is the call itself.
            let operation = match r.kind {
                TRAP | RESUME => syscall.clone(),
                _ => tree::operation(r.msg_id),
            };
            let _ = write!(
                out,
                "{{\"sequence\":{},\"tsc\":{},\"call\":{},\"syscall\":{},\"process\":{},\"kind\":\"{}\",\
                 \"task\":{},\"task_id\":{},\"thread\":{},\"port\":{},\"msg_id\":{},\"operation\":{},\
                 \"size\":{},\"from\":{},\"to\":{}",
                r.sequence,
                r.tsc,
                r.trace,
                json_string(&syscall),
                json_string(&process),
                kind_name(r.kind),
                json_string(&name(r.task)),
                r.task,
                r.thread,
                r.port,
                r.msg_id,
                json_string(&operation),
                r.size,
                json_string(&from),
                json_string(&to),
            );
            if matches!(r.kind, SEND | REPLY) {
                let _ = write!(out, ",\"rights\":{},\"regions\":{}", r.rights, r.regions);
            }
            if let Some(task) = hop.receiver {
                let _ = write!(out, ",\"receiver\":{}", json_string(&name(task)));
            }
            if let Some(w) = hop.waited {
                let _ = write!(out, ",\"waited\":{w}");
            }
            if let Some(s) = hop.served {
                let _ = write!(out, ",\"served\":{s}");
            }
            let carried = tree::carried(r);
            if !carried.is_empty() {
                let _ = write!(out, ",\"data\":{}", json_string(carried.trim_start()));
            }
            out.push_str("}\n");
        }
    }
    out
}

/// The lifelines in the order they first appear, the kernel's second (after the first
/// caller's).
fn lifelines(calls: &[Call], name: &mut dyn FnMut(u64) -> String) -> Vec<String> {
    let mut order: Vec<String> = Vec::new();
    for call in calls {
        for r in &call.hops {
            let n = name(r.task);
            if !order.contains(&n) {
                order.push(n);
            }
        }
    }
    order.insert(order.len().min(1), KERNEL.to_string());
    order
}

/// Time stamps as Chrome's microseconds: thousands of cycles since the first record.
fn micros(tsc: u64, origin: u64) -> String {
    let c = tsc.saturating_sub(origin);
    format!("{}.{:03}", c / 1000, c % 1000)
}

/// Chrome trace-event JSON: a track per lifeline, each hop a one-cycle slice at both ends
/// joined by a flow arrow, each call a slice on its caller's track, each server's serving
/// (receive to reply) a slice on its track.
pub fn chrome(calls: &[Call], name: &mut dyn FnMut(u64) -> String) -> String {
    let lines = lifelines(calls, name);
    let track = |n: &str| lines.iter().position(|l| l == n).unwrap_or(0) + 1;
    let origin = calls.iter().filter_map(|c| c.hops.first()).map(|r| r.tsc).min().unwrap_or(0);
    // (tsc, longer first, event) so that enclosing slices come before what they enclose.
    let mut events: Vec<(u64, std::cmp::Reverse<u64>, String)> = Vec::new();
    let mut meta = vec![
        "{\"ph\":\"M\",\"pid\":1,\"name\":\"process_name\",\"args\":{\"name\":\"Machina\"}}".to_string(),
    ];
    for (i, l) in lines.iter().enumerate() {
        meta.push(format!(
            "{{\"ph\":\"M\",\"pid\":1,\"tid\":{},\"name\":\"thread_name\",\"args\":{{\"name\":{}}}}}",
            i + 1,
            json_string(l)
        ));
    }
    let slice = |cat: &str, label: &str, tid: usize, from: u64, cycles: u64| {
        format!(
            "{{\"ph\":\"X\",\"cat\":\"{cat}\",\"name\":{},\"pid\":1,\"tid\":{tid},\"ts\":{},\"dur\":{}}}",
            json_string(label),
            micros(from, origin),
            micros(origin + cycles, origin)
        )
    };
    for call in calls {
        let hops = tree::hops(call);
        if let (Some(first), Some(t)) = (call.hops.first(), call.trap()) {
            let caller = name(t.task);
            let cycles = call.duration() + 1;
            events.push((
                first.tsc,
                std::cmp::Reverse(cycles),
                slice("call", &tree::call_line(call, name), track(&caller), first.tsc, cycles),
            ));
        }
        // Serving: from a request's receive to the same task's reply.
        for hop in &hops {
            let r = hop.record;
            if let Some(start) = hop.serving_from.and_then(|i| call.hops.get(i)) {
                let cycles = r.tsc.saturating_sub(start.tsc) + 1;
                let task = name(r.task);
                let op = format!("serving {}", tree::operation(start.msg_id));
                events.push((
                    start.tsc,
                    std::cmp::Reverse(cycles),
                    slice("serving", &op, track(&task), start.tsc, cycles),
                ));
            }
        }
        for hop in &hops {
            let r = hop.record;
            let (from, to) = ends(hop, name);
            let text = label(hop);
            let (a, b) = (track(&from), track(&to));
            events.push((r.tsc, std::cmp::Reverse(1), slice("hop", &text, a, r.tsc, 1)));
            events.push((r.tsc, std::cmp::Reverse(1), slice("hop", &text, b, r.tsc, 1)));
            let ts = micros(r.tsc, origin);
            events.push((
                r.tsc,
                std::cmp::Reverse(0),
                format!(
                    "{{\"ph\":\"s\",\"cat\":\"hop\",\"name\":{},\"id\":{},\"pid\":1,\"tid\":{a},\"ts\":{ts}}}",
                    json_string(&text),
                    r.sequence
                ),
            ));
            events.push((
                r.tsc,
                std::cmp::Reverse(0),
                format!(
                    "{{\"ph\":\"f\",\"bp\":\"e\",\"cat\":\"hop\",\"name\":{},\"id\":{},\"pid\":1,\"tid\":{b},\"ts\":{ts}}}",
                    json_string(&text),
                    r.sequence
                ),
            ));
        }
    }
    events.sort_by_key(|e| (e.0, e.1));
    let all: Vec<String> = meta.into_iter().chain(events.into_iter().map(|e| e.2)).collect();
    format!("{{\"displayTimeUnit\":\"ns\",\"traceEvents\":[\n{}\n]}}\n", all.join(",\n"))
}

const COLUMN: usize = 190;
const ROW: usize = 20;
const LEFT: usize = 110;
const TOP: usize = 50;

/// The SVG sequence diagram: lifelines across the top, a row per hop (and one per call's
/// head line) running down, the time since the call's trap on the left.
pub fn svg(calls: &[Call], name: &mut dyn FnMut(u64) -> String) -> String {
    let lines = lifelines(calls, name);
    let x = |n: &str| LEFT + COLUMN / 2 + lines.iter().position(|l| l == n).unwrap_or(0) * COLUMN;
    let rows: usize = calls.iter().map(|c| c.hops.len() + 1).sum();
    let width = LEFT + lines.len() * COLUMN + 20;
    let height = TOP + rows * ROW + 30;
    let mut body = String::new();
    for (i, l) in lines.iter().enumerate() {
        let cx = LEFT + COLUMN / 2 + i * COLUMN;
        let _ = writeln!(
            body,
            "<text class=\"lifeline\" x=\"{cx}\" y=\"30\" text-anchor=\"middle\">{}</text>\n\
             <line class=\"lifeline\" x1=\"{cx}\" y1=\"38\" x2=\"{cx}\" y2=\"{}\"/>",
            xml_text(l),
            height - 10
        );
    }
    let mut row = 0usize;
    let y = |row: usize| TOP + row * ROW + ROW / 2;
    for call in calls {
        let _ = writeln!(
            body,
            "<text class=\"call\" x=\"8\" y=\"{}\">{}</text>",
            y(row) + 4,
            xml_text(&tree::call_line(call, name))
        );
        row += 1;
        let start = call.hops.first().map_or(0, |r| r.tsc);
        let hops = tree::hops(call);
        let first_row = row;
        for hop in &hops {
            let r = hop.record;
            if let Some(from) = hop.serving_from {
                let _ = writeln!(
                    body,
                    "<rect class=\"serving\" x=\"{}\" y=\"{}\" width=\"10\" height=\"{}\"/>",
                    x(&name(r.task)) - 5,
                    y(first_row + from),
                    (row - first_row - from) * ROW
                );
            }
            let (from, to) = ends(hop, name);
            let (x1, x2) = (x(&from), x(&to));
            let _ = writeln!(
                body,
                "<text class=\"time\" x=\"{}\" y=\"{}\" text-anchor=\"end\">+{}</text>\n\
                 <line class=\"hop {}\" x1=\"{x1}\" y1=\"{}\" x2=\"{x2}\" y2=\"{}\" marker-end=\"url(#head)\"/>\n\
                 <text class=\"label\" x=\"{}\" y=\"{}\" text-anchor=\"middle\">{}</text>",
                LEFT - 8,
                y(row) + 4,
                r.tsc.saturating_sub(start),
                kind_name(r.kind),
                y(row),
                y(row),
                x1.min(x2) + x1.abs_diff(x2) / 2,
                y(row) - 3,
                xml_text(&label(hop))
            );
            row += 1;
        }
    }
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n\
         <svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{width}\" height=\"{height}\" \
         viewBox=\"0 0 {width} {height}\" font-family=\"monospace\" font-size=\"11\">\n\
         <title>Machina trace: {} calls</title>\n\
         <defs><marker id=\"head\" viewBox=\"0 0 10 10\" refX=\"10\" refY=\"5\" markerWidth=\"7\" \
         markerHeight=\"7\" orient=\"auto\"><path d=\"M0,0 L10,5 L0,10 z\"/></marker></defs>\n\
         <style>line.lifeline{{stroke:#bbb;stroke-dasharray:4 3}} text.lifeline{{font-weight:bold}} \
         line.hop{{stroke:#222}} line.irq{{stroke:#c00}} line.trap,line.resume{{stroke:#06c}} \
         rect.serving{{fill:#fd8;stroke:#a80}} text.call{{font-weight:bold;fill:#06c}} \
         text.time{{fill:#777}}</style>\n\
         <rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n{body}</svg>\n",
        calls.len()
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tree::tests::{names, read_path};

    #[test]
    fn ndjson_has_a_parsed_line_per_record() {
        let records = read_path();
        let calls = tree::calls(&records);
        let text = ndjson(&calls, &mut names);
        let lines: Vec<serde_json::Value> =
            text.lines().map(|l| serde_json::from_str(l).expect("a JSON line")).collect();
        assert_eq!(lines.len(), records.len());
        assert_eq!(lines[0]["kind"], "trap");
        assert_eq!(lines[0]["syscall"], "read");
        assert_eq!(lines[3]["operation"], "io.read");
        assert_eq!((&lines[13]["operation"], &lines[13]["kind"]), (&"read".into(), &"resume".into()));
        assert_eq!(lines[3]["receiver"], "fs-server 0");
        assert_eq!(lines[4]["waited"], 100);
        assert_eq!((&lines[10]["rights"], &lines[10]["regions"]), (&1.into(), &0.into()));
        assert_eq!(lines[7]["from"], "kernel");
        assert_eq!(lines[7]["to"], "block 0");
        assert_eq!(lines[8]["from"], "block 0");
        assert_eq!(lines[14]["syscall"], "exit");
        assert_eq!(json_string("a\"b\\\n\u{1}"), "\"a\\\"b\\\\\\n\\u0001\"");
    }

    #[test]
    fn chrome_json_has_a_flow_arrow_per_hop() {
        let records = read_path();
        let calls = tree::calls(&records);
        let text = chrome(&calls, &mut names);
        let v: serde_json::Value = serde_json::from_str(&text).expect("JSON");
        let events = v["traceEvents"].as_array().expect("events");
        let count = |ph: &str, cat: &str| {
            events.iter().filter(|e| e["ph"] == ph && (cat.is_empty() || e["cat"] == cat)).count()
        };
        assert_eq!(count("s", ""), records.len());
        assert_eq!(count("f", ""), records.len());
        assert_eq!(count("X", "hop"), 2 * records.len());
        // Three servers served: personality, fs-server, block.
        assert_eq!(count("X", "serving"), 3);
        assert_eq!(count("X", "call"), 2);
        // Every flow's start and end are on tracks that exist.
        let tracks = count("M", "") - 1;
        assert_eq!(tracks, 5, "cat, kernel, personality, fs, block");
        assert!(events.iter().filter(|e| e["ph"] == "s" || e["ph"] == "f").all(|e| {
            let tid = e["tid"].as_u64().unwrap_or(0) as usize;
            (1..=tracks).contains(&tid)
        }));
    }

    #[test]
    fn svg_parses_with_an_arrow_per_hop() {
        let records = read_path();
        let calls = tree::calls(&records);
        let text = svg(&calls, &mut names);
        let doc = roxmltree::Document::parse(&text).expect("SVG is XML");
        let class = |n: &roxmltree::Node| n.attribute("class").unwrap_or("").to_string();
        let arrows =
            doc.descendants().filter(|n| n.has_tag_name("line") && class(n).starts_with("hop ")).count();
        assert_eq!(arrows, records.len());
        let lifelines: Vec<String> = doc
            .descendants()
            .filter(|n| n.has_tag_name("text") && class(n) == "lifeline")
            .map(|n| n.text().unwrap_or("").to_string())
            .collect();
        assert_eq!(lifelines, ["cat 3", "kernel", "personality-unix 0", "fs-server 0", "block 0"]);
        assert_eq!(doc.descendants().filter(|n| n.has_tag_name("rect") && class(n) == "serving").count(), 3);
        // The irq arrow goes from the kernel to the block server's lifeline.
        let irq = doc.descendants().find(|n| class(n) == "hop irq").expect("an irq arrow");
        let at = |i: usize| (LEFT + COLUMN / 2 + i * COLUMN).to_string();
        assert_eq!((irq.attribute("x1"), irq.attribute("x2")), (Some(at(1).as_str()), Some(at(4).as_str())));
    }
}

//! Tracing for the `trace` tool: the personality holds the trace port (bootstrap's "trace",
//! the right to trace without the host's other privileges), turns tracing on for a process
//! and every process it makes (fork, exec), and hands the kernel's trace records and task
//! names to its processes through Machina's own calls (`machina::TRACE_*`).
//!
//! It must never trace a process the caller could not signal (the same user-id rule as
//! kill), and never block: records are read as the kernel has them (a reader that falls
//! behind sees a gap in the sequence numbers, which `trace` reports as dropped).

use crate::process::Personality;
use crate::syscalls::{Answer, error};
use alloc::string::String;
use alloc::vec::Vec;
use libmach::ipc::PortName;
use libmach::task::{host_trace_read, host_trace_task, task_id, trace_task_name};
use mach_abi::trace::TraceRecord;
use mach_abi::zerocopy::IntoBytes;
use personality_unix::linux::errno::*;
use personality_unix::machina;

/// Serve one of the trace calls (`call` is machina's sub-call, a0 of the INFO call).
pub fn dispatch(unix: &mut Personality, port: PortName, call: u64, args: [u64; 4]) -> Option<Answer> {
    let [a1, a2, a3, _] = args;
    let answer = match call {
        machina::TRACE_START | machina::TRACE_STOP => {
            let on = call == machina::TRACE_START;
            let caller = unix.processes.get(&port)?.pid;
            let target = if a1 == 0 { caller } else { a1 };
            match unix.processes.iter().find(|(_, p)| p.pid == target).map(|(&k, _)| k) {
                None => error(ESRCH),
                Some(target) if !crate::signals::may_signal(unix, port, target) => error(EPERM),
                Some(target) => match set_traced(unix, target, on) {
                    Ok(()) => Answer::Value(0),
                    Err(e) => error(e),
                },
            }
        }
        // Records from sequence a1 on, at most a3 (and 64: what one answer holds) into a2:
        // the count.
        machina::TRACE_READ => {
            let Some(trace) = unix.trace.as_ref().map(|t| t.name()) else { return Some(error(ENOSYS)) };
            let mut records = alloc::vec![TraceRecord::default(); a3.min(64) as usize];
            match host_trace_read(trace, a1, &mut records) {
                Ok(n) => Answer::CopyOut { value: n as i64, to: a2, bytes: records[..n].as_bytes().to_vec() },
                Err(_) => error(EIO),
            }
        }
        // The name of task a1 as "name pid" (pid 0: not a process), at most a3 bytes into a2.
        machina::TRACE_NAME => {
            let text = name_of(unix, a1).into_bytes();
            let total = text.len() as i64;
            let mut bytes = text;
            bytes.truncate(a3 as usize);
            Answer::CopyOut { value: total, to: a2, bytes }
        }
        _ => return None,
    };
    Some(answer)
}

/// Turn tracing on or off for process `port`'s task, remembering its task id's name.
pub fn set_traced(unix: &mut Personality, port: PortName, on: bool) -> Result<(), i64> {
    let trace = unix.trace.as_ref().map(|t| t.name()).ok_or(ENOSYS)?;
    let p = unix.processes.get_mut(&port).ok_or(ESRCH)?;
    host_trace_task(trace, p.task, on).map_err(|_| EIO)?;
    p.traced = on;
    if let Ok(id) = task_id(p.task) {
        unix.traced_tasks.insert(id, (p.pid, p.name.clone()));
    }
    Ok(())
}

/// A traced process got a new task (fork's child, exec's program): trace it too.
pub fn follow(unix: &mut Personality, port: PortName) {
    if unix.processes.get(&port).is_some_and(|p| p.traced) {
        let _ = set_traced(unix, port, true);
    }
}

/// "name pid" for a task id: a traced process's (even after it ended), else the kernel's
/// name of a live task with pid 0.
fn name_of(unix: &Personality, id: u64) -> String {
    if let Some((pid, name)) = unix.traced_tasks.get(&id) {
        return alloc::format!("{name} {pid}");
    }
    let mut buffer: Vec<u8> = alloc::vec![0; 64];
    let name = unix
        .trace
        .as_ref()
        .and_then(|t| trace_task_name(t.name(), id, &mut buffer).ok())
        .map(|n| String::from_utf8_lossy(&buffer[..n.min(64)]).into_owned())
        .unwrap_or_else(|| String::from("?"));
    alloc::format!("{name} 0")
}

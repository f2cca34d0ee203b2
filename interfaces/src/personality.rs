//! The `personality` protocol: what personalities ask each other when a process crosses from
//! one to another at exec (a Linux program that execs an xv6 one, an xv6 shell that runs a
//! Linux program). The service ports are bootstrap's names "unix" and "xv6". Ids
//! 0x600..0x6ff.
//!
//! The origin keeps its process (its pid, its parent's wait) and hands over only what the
//! program needs: its path, arguments, working directory, user ids and open files, which are
//! `io` ports (DESIGN.md: an open file is a port), so they cross as they are. The adopting
//! personality runs the program as a process of its own and, when it ends, sends
//! [`Exited`] to the origin's report port.

use crate::{Bytes, Error};
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq)]
pub struct AdoptRequest<'a> {
    /// The executable (absolute).
    pub path: &'a str,
    /// argv, each argument ended by a NUL.
    pub args: Bytes<'a>,
    /// The working directory (absolute).
    pub cwd: &'a str,
    pub uid: u32,
    pub gid: u32,
    /// The descriptor numbers of the `io` ports carried after the report port, in order.
    pub fds: Bytes<'a>,
}

#[derive(Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq)]
pub struct Adopted {
    /// The process's pid in the adopting personality.
    pub pid: u64,
}

#[derive(Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExitReport {
    /// A wait status as Linux encodes it: the exit code << 8, or the signal that ended it.
    pub status: u32,
}

/// One process of a personality, as `list` answers it (for `ps`).
#[derive(Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProcessInfo<'a> {
    pub pid: u64,
    /// The parent's pid in that personality, 0 for none.
    pub parent: u64,
    /// Its task's id (`task_id`), 0 while it runs as another personality's.
    pub task: u64,
    /// 'R' running, 'S' waiting in a call, 'E' running as another personality's program.
    pub state: u8,
    /// Handed over by another personality (which lists it itself).
    pub adopted: bool,
    pub name: &'a str,
}

crate::protocol!(OPERATIONS = "personality";
    /// Run `path` as a process of this personality. Carried: port descriptor 0, a send
    /// right to the report port (where [`Exited`] goes); then one `io` port per entry of
    /// `fds`. The answer carries a send right to the new task (so that the origin can end
    /// or stop it: a signal, ^C). The task is suspended once: the origin resumes it when it
    /// is ready (after tracing it, if its process is traced), so that nothing the program
    /// does comes before.
    Adopt "adopt" = 0x601, AdoptRequest<'a> => Result<Adopted, Error>;
    /// One way, to a report port: the adopted process ended.
    Exited "exited" = 0x602, ExitReport => ();
    /// One way, to a report port: the adopted process exec'd, and its task is now the one
    /// carried (port descriptor 0), for the origin to end or stop.
    NewTask "task" = 0x603, () => ();
    /// The personality's processes.
    List "list" = 0x604, () => Result<alloc::vec::Vec<ProcessInfo<'a>>, Error>;
);

/// How an `adopt` request ended, for [`answer_adopt`]: the new pid and task, or an error and
/// whether the rights the request carried were released already.
pub type AdoptOutcome = Result<(u64, libmach::ipc::PortName), (Error, bool)>;

/// Answer the `adopt` request in `request` (both personalities serve it the same way): the
/// pid with a copy of the task right, or the error. A refused request's rights are released
/// here unless the outcome says they went already.
pub fn answer_adopt(request: &libmach::ipc::LargestMessage, outcome: AdoptOutcome, timeout_ms: u64) {
    use libmach::ipc::{Message, disposition};
    let incoming = libmach::rpc::Incoming::new(request);
    let answer = outcome.map_err(|(error, released)| {
        if !released {
            request.release_carried();
        }
        error
    });
    let reply_to = incoming.reply_to();
    if reply_to == 0 {
        return;
    }
    let mut m = Message::new();
    let task = answer.as_ref().ok().map(|(_, task)| *task);
    let value = answer.map(|(pid, _)| Adopted { pid });
    if libmach::rpc::prepare_answer(&mut m, reply_to, incoming.id(), &value).is_ok() {
        if let Some(task) = task {
            m.push_port(task, disposition::COPY_SEND);
        }
        let _ = m.send_timeout(timeout_ms);
    }
}

/// Tell a report port that its process ended with wait status `status`.
pub fn report_exit(report: libmach::ipc::PortName, status: u32) {
    let mut m = libmach::ipc::Message::new();
    let how = libmach::ipc::disposition::COPY_SEND;
    let _ = libmach::rpc::send::<Exited>(&mut m, report, how, &ExitReport { status }, &[], 1000);
}

/// Tell a report port that its process runs in `task` now (it exec'd).
pub fn report_task(report: libmach::ipc::PortName, task: libmach::ipc::PortName) {
    let mut m = libmach::ipc::Message::new();
    let how = libmach::ipc::disposition::COPY_SEND;
    let _ = libmach::rpc::send::<NewTask>(&mut m, report, how, &(), &[(task, how)], 1000);
}

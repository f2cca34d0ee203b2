//! The system calls served, in Linux x86-64's numbering and meaning: decode the call's
//! arguments once, act on typed values through the process's task port, answer with
//! `SyscallReply` (rax, and bytes to copy into the caller or a new FS base).
//!
//! It must never trust an argument: a pointer is read or written through `vm_read` /
//! `vm_write` or the reply's copy-out, which the kernel checks (a bad one is -EFAULT); sizes
//! are bounded before anything is allocated.

use crate::process::Personality;
use alloc::vec;
use alloc::vec::Vec;
use libmach::ipc::{Message, MessageBuffer, PortName, disposition};
use libmach::println;
use libmach::task::{vm_allocate, vm_deallocate, vm_protect, vm_write};
use mach_abi::forward::{Registers, SyscallReply, SyscallRequest, reply_flags};
use mach_abi::protection;
use mach_abi::zerocopy::IntoBytes;
use personality_unix::linux::{ARCH_GET_FS, ARCH_SET_FS, errno::*, mmap, nr};

const PAGE: u64 = 4096;

/// What a call answers.
pub enum Answer {
    Value(i64),
    /// rax = the value; `bytes` go to `to` in the caller.
    CopyOut {
        value: i64,
        to: u64,
        bytes: Vec<u8>,
    },
    SetFsBase(u64),
    /// Replace every register (rt_sigreturn, a signal handler's start); rax is theirs.
    SetRegisters(Registers),
    /// A call that waited was interrupted by a signal with a handler: -EINTR, or started
    /// again after the handler (SA_RESTART; signals.rs decides).
    Interrupted,
    /// The process (or the calling thread) is gone: nothing to answer.
    None,
    /// Answered later (a read that waits): the reply right was kept.
    Later,
}

pub fn error(e: i64) -> Answer {
    Answer::Value(-e)
}

/// Serve `call` from the process whose syscall port is `port` (`reply_to` answers it, for
/// the calls that wait): what to answer.
pub fn serve(unix: &mut Personality, port: PortName, call: &SyscallRequest, reply_to: PortName) -> Answer {
    if let Some(answer) = crate::files::dispatch(unix, port, call, reply_to) {
        return answer;
    }
    if let Some(answer) = crate::poll::dispatch(unix, port, call, reply_to) {
        return answer;
    }
    if let Some(answer) = crate::threads::dispatch(unix, port, call, reply_to) {
        return answer;
    }
    if let Some(answer) = crate::signals::dispatch(unix, port, call) {
        return answer;
    }
    if let Some(answer) = crate::procs::dispatch(unix, port, call, reply_to) {
        return answer;
    }
    dispatch(unix, port, call, reply_to)
}

/// Answer a system call through its reply right.
pub fn send_answer<const N: usize>(answer: Answer, reply_to: PortName, m: &mut MessageBuffer<N>) {
    if build_answer(answer, reply_to, m) && m.send_timeout(1000).is_err() {
        // Refused (the thread is gone): the right is still ours; release it.
        let _ = libmach::ipc::port_deallocate(reply_to);
    }
}

/// Put the answer to a system call into `m`, addressed to its reply right; false when there
/// is nothing to send.
pub fn build_answer<const N: usize>(answer: Answer, reply_to: PortName, m: &mut MessageBuffer<N>) -> bool {
    let mut reply = SyscallReply::default();
    let mut extra: &[u8] = &[];
    match &answer {
        Answer::None | Answer::Later => return false,
        Answer::Value(v) => reply.result = *v,
        Answer::Interrupted => reply.result = -EINTR,
        Answer::SetRegisters(r) => {
            reply.flags = reply_flags::SET_REGISTERS;
            reply.registers = *r;
            reply.result = r.rax as i64;
        }
        Answer::CopyOut { value, to, bytes } => {
            reply.result = *value;
            reply.flags = reply_flags::COPY_OUT;
            reply.copy_to = *to;
            extra = bytes;
        }
        Answer::SetFsBase(base) => {
            reply.flags = reply_flags::SET_FS_BASE;
            reply.registers = Registers { fs_base: *base, ..Registers::default() };
        }
    }
    m.start(
        reply_to,
        disposition::MOVE_SEND_ONCE,
        mach_abi::forward::SYSCALL_MESSAGE | libmach::rpc::REPLY_BIT,
    );
    let filled = m.fill_data(|room| -> Result<usize, ()> {
        let head = reply.as_bytes();
        let total = head.len() + extra.len();
        let out = room.get_mut(..total).ok_or(())?;
        out[..head.len()].copy_from_slice(head);
        out[head.len()..].copy_from_slice(extra);
        Ok(total)
    });
    if filled.is_err() {
        // More bytes than one answer holds (a call must cap what it copies out): the call
        // fails rather than the thread never being answered.
        let refused = SyscallReply { result: -EINVAL, ..SyscallReply::default() };
        let _ = m.fill_data(|room| -> Result<usize, ()> {
            let head = refused.as_bytes();
            room.get_mut(..head.len()).ok_or(())?.copy_from_slice(head);
            Ok(head.len())
        });
    }
    true
}

fn dispatch(unix: &mut Personality, port: PortName, call: &SyscallRequest, reply_to: PortName) -> Answer {
    let Some(process) = unix.processes.get(&port) else { return Answer::None };
    let (task, pid) = (process.task, process.pid);
    if call.entry != mach_abi::forward::entry::SYSCALL {
        // Another ABI's trap (xv6's `int $64`): on Linux a general-protection fault, SIGSEGV.
        let segv = personality_unix::linux::signal::SIGSEGV;
        unix.signal(
            port,
            segv,
            personality_unix::signal::SignalInfo { signal: segv, code: 0x80, pid: 0, status: 0 },
        );
        return if unix.processes.contains_key(&port) { error(ENOSYS) } else { Answer::None };
    }
    let [a0, a1, a2, a3, a4, a5] = call.args;
    match call.number {
        nr::ARCH_PRCTL => match a0 {
            ARCH_SET_FS if a1 < mach_abi::layout::USER_END => Answer::SetFsBase(a1),
            ARCH_SET_FS => error(EPERM),
            ARCH_GET_FS => {
                let base = call.registers.fs_base;
                Answer::CopyOut { value: 0, to: a1, bytes: base.to_le_bytes().to_vec() }
            }
            _ => error(EINVAL),
        },
        nr::GETPID => Answer::Value(pid as i64),
        nr::GETPPID => Answer::Value(unix.processes.get(&port).map_or(0, |p| p.parent) as i64),
        nr::GETUID
        | nr::GETEUID
        | nr::GETGID
        | nr::GETEGID
        | nr::SETUID
        | nr::SETGID
        | nr::SETREUID
        | nr::SETREGID
        | nr::SETRESUID
        | nr::SETRESGID
        | nr::GETRESUID
        | nr::GETRESGID
        | nr::GETGROUPS
        | nr::SETGROUPS => ids(unix, port, call.number, [a0, a1, a2]),
        nr::UMASK => match unix.processes.get_mut(&port) {
            Some(p) => Answer::Value(core::mem::replace(&mut p.umask, (a0 & 0o777) as u32) as i64),
            None => Answer::None,
        },
        nr::SCHED_YIELD => Answer::Value(0),
        // One CPU is what a process may run on (a mask of 8 bytes, CPU 0).
        nr::SCHED_GETAFFINITY if a1 >= 8 => {
            Answer::CopyOut { value: 8, to: a2, bytes: 1u64.to_le_bytes().to_vec() }
        }
        nr::SCHED_GETAFFINITY => error(EINVAL),
        // Limits: none is enforced; each is reported as unlimited, except 1,024 descriptors
        // and an 8 MiB stack, what programs size their tables and threads by.
        nr::GETRLIMIT => Answer::CopyOut { value: 0, to: a1, bytes: limit(a0) },
        nr::PRLIMIT64 if a0 != 0 && a0 != pid => error(ESRCH),
        nr::PRLIMIT64 if a3 != 0 => Answer::CopyOut { value: 0, to: a3, bytes: limit(a1) },
        nr::PRLIMIT64 | nr::SETRLIMIT => Answer::Value(0),
        // prctl: PR_SET_NAME names the task; PR_GET_NAME answers it; the rest are refused.
        nr::PRCTL => match a0 {
            15 => match crate::files::read_string(task, a1) {
                Ok(name) => {
                    let _ = libmach::task::task_set_name(task, &name);
                    Answer::Value(0)
                }
                Err(e) => error(e),
            },
            16 => {
                let mut name = vec![0u8; 16];
                let own = unix.processes.get(&port).map(|p| p.name.as_bytes().to_vec()).unwrap_or_default();
                let n = own.len().min(15);
                name[..n].copy_from_slice(&own[..n]);
                Answer::CopyOut { value: 0, to: a1, bytes: name }
            }
            _ => error(EINVAL),
        },
        nr::GETTIMEOFDAY if a0 == 0 => Answer::Value(0),
        nr::GETTIMEOFDAY => {
            let ns = libmach::realtime_ns();
            let tv = [ns / 1_000_000_000, ns % 1_000_000_000 / 1000];
            Answer::CopyOut { value: 0, to: a0, bytes: tv.as_bytes().to_vec() }
        }
        // No accounting of CPU time yet: a zeroed struct rusage (144 bytes).
        nr::GETRUSAGE => Answer::CopyOut { value: 0, to: a1, bytes: vec![0; 144] },
        nr::SYSINFO => Answer::CopyOut { value: 0, to: a0, bytes: sysinfo() },
        // Restartable sequences are a glibc optimization; without them it falls back.
        nr::RSEQ => error(ENOSYS),
        personality_unix::machina::INFO => {
            if let Some(answer) = crate::tracing::dispatch(unix, port, a0, [a1, a2, a3, a4]) {
                return answer;
            }
            if a0 == personality_unix::machina::END_SERVER {
                // Only root may end a server.
                if unix.processes.get(&port).is_none_or(|p| p.ids.euid != 0) {
                    return error(EPERM);
                }
                if a2 == 0 || a2 > 64 {
                    return error(EINVAL);
                }
                let mut bytes = vec![0u8; a2 as usize];
                if libmach::task::vm_read(task, a1, &mut bytes).is_err() {
                    return error(EFAULT);
                }
                let Ok(name) = alloc::string::String::from_utf8(bytes) else { return error(EINVAL) };
                return match libmach::name_service::end(&name) {
                    Ok(()) => Answer::Value(0),
                    Err(libmach::name_service::Error::Name(libmach::name_service::NameError::NotFound)) => {
                        error(ESRCH)
                    }
                    Err(_) => error(EPERM),
                };
            }
            let text = match a0 {
                personality_unix::machina::PROCESSES => processes_text(unix),
                personality_unix::machina::SERVERS => match servers_text() {
                    Ok(text) => text,
                    Err(e) => return error(e),
                },
                _ => return error(EINVAL),
            };
            let total = text.len() as i64;
            let mut bytes = text.into_bytes();
            bytes.truncate(a2 as usize);
            Answer::CopyOut { value: total, to: a1, bytes }
        }
        nr::GETPGRP => Answer::Value(unix.processes.get(&port).map_or(0, |p| p.pgid) as i64),
        nr::GETPGID | nr::GETSID => {
            let target = if a0 == 0 { pid } else { a0 };
            match unix.processes.values().find(|p| p.pid == target) {
                Some(p) => Answer::Value(if call.number == nr::GETSID { p.sid } else { p.pgid } as i64),
                None => error(ESRCH),
            }
        }
        nr::SETPGID => {
            // A process may move itself or a child into a group of its session.
            let target = if a0 == 0 { pid } else { a0 };
            let group = if a1 == 0 { target } else { a1 };
            match unix.processes.values_mut().find(|p| p.pid == target && (p.pid == pid || p.parent == pid)) {
                Some(p) => {
                    p.pgid = group;
                    Answer::Value(0)
                }
                None => error(ESRCH),
            }
        }
        nr::SETSID => match unix.processes.get_mut(&port) {
            Some(p) if p.pgid != p.pid => {
                p.sid = p.pid;
                p.pgid = p.pid;
                Answer::Value(p.pid as i64)
            }
            Some(_) => error(EPERM),
            None => Answer::None,
        },
        nr::BRK => brk(unix, port, a0),
        nr::MMAP => map(unix, port, task, a0, a1, a2, a3, [a4, a5]),
        nr::MUNMAP => {
            let size = a1.next_multiple_of(PAGE);
            if !a0.is_multiple_of(PAGE) || size == 0 {
                return error(EINVAL);
            }
            let _ = vm_deallocate(task, a0, size);
            Answer::Value(0)
        }
        nr::MPROTECT => {
            // Pages are always readable here: PROT_NONE (a guard page) cannot be expressed,
            // so it leaves the page as it is.
            let size = a1.next_multiple_of(PAGE);
            if a2 == 0 {
                return Answer::Value(0);
            }
            match vm_protect(task, a0, size, protection_of(a2)) {
                Ok(()) => Answer::Value(0),
                Err(_) => error(ENOMEM),
            }
        }
        // madvise's advice is a hint; none changes what a program sees here (MADV_DONTNEED
        // on private anonymous memory would zero it on Linux: such pages are left as they are).
        nr::MADVISE => Answer::Value(0),
        nr::MREMAP => remap(task, a0, a1, a2, a3),
        // reboot(2) with its magic numbers: power off, whatever the command.
        nr::REBOOT
            if a0 == 0xfee1_dead
                && (a1 == 672_274_793 || a1 == 85_072_278 || a1 == 369_367_448 || a1 == 537_993_216) =>
        {
            unix.power_off();
            Answer::Value(0)
        }
        nr::REBOOT => error(EINVAL),
        nr::NANOSLEEP => sleep(unix, task, [a0, a1], false, reply_to, 0),
        nr::CLOCK_NANOSLEEP => sleep(unix, task, [a2, a3], a1 & 1 != 0, reply_to, a0),
        nr::TIME => {
            let seconds = libmach::realtime_ns() / 1_000_000_000;
            if a0 == 0 {
                Answer::Value(seconds as i64)
            } else {
                Answer::CopyOut { value: seconds as i64, to: a0, bytes: seconds.to_le_bytes().to_vec() }
            }
        }
        nr::CLOCK_GETTIME => {
            let ns = if a0 == 0 { libmach::realtime_ns() } else { libmach::uptime_ns() };
            let ts = [ns / 1_000_000_000, ns % 1_000_000_000];
            Answer::CopyOut { value: 0, to: a1, bytes: ts.as_bytes().to_vec() }
        }
        nr::GETRANDOM => {
            let len = a1.min(256) as usize;
            Answer::CopyOut { value: len as i64, to: a0, bytes: crate::process::random(len) }
        }
        nr::UNAME => {
            let mut uts = vec![0u8; 6 * 65];
            for (i, field) in [&b"Linux"[..], b"machina", b"6.1.0-machina", b"Machina", b"x86_64", b"(none)"]
                .iter()
                .enumerate()
            {
                uts[i * 65..i * 65 + field.len()].copy_from_slice(field);
            }
            Answer::CopyOut { value: 0, to: a0, bytes: uts }
        }
        number => {
            if unix.logged.insert(number) {
                let name = unix.processes.get(&port).map_or("?", |p| p.name.as_str());
                println!("{name} (pid {pid}) made system call {number}, not served: -ENOSYS");
            }
            error(ENOSYS)
        }
    }
}

/// The process table as `ps` shows it (see `personality_unix::machina`).
fn processes_text(unix: &mut Personality) -> alloc::string::String {
    use core::fmt::Write;
    let mut out = alloc::string::String::new();
    for p in unix.processes.values() {
        let waiting =
            unix.held.values().any(|c| unix.processes.get(&c.process).is_some_and(|q| q.pid == p.pid));
        let state = if p.stopped.is_some() {
            'T'
        } else if waiting {
            'S'
        } else {
            'R'
        };
        let task = libmach::task::task_id(p.task).unwrap_or(0);
        // A process handed to another personality: its threads are that one's to know.
        let (threads, personality) = match &p.elsewhere {
            Some(other) => (1, other.as_str()),
            None => (p.threads.len(), "unix"),
        };
        let _ = writeln!(
            out,
            "{}\t{}\t{}\t{state}\t{task}\t{threads}\t{personality}\t{}",
            p.pid, p.parent, p.pgid, p.name
        );
    }
    for z in &unix.zombies {
        let _ = writeln!(out, "{}\t{}\t{}\tZ\t-\t0\tunix\t<ended>", z.pid, z.parent, z.pgid);
    }
    out.push_str(&crate::handoff::other_processes(unix));
    out
}

/// bootstrap's registered names, their programs and tasks.
fn servers_text() -> Result<alloc::string::String, i64> {
    use core::fmt::Write;
    let mut m = alloc::boxed::Box::new(Message::new());
    let services = libmach::name_service::list(&mut m).map_err(|_| EIO)?;
    let mut out = alloc::string::String::new();
    for s in services {
        let _ = writeln!(out, "{}\t{}\t{}\t{}", s.name, s.program, s.task, s.restarts);
    }
    Ok(out)
}

/// `struct rlimit` (current, maximum) for resource `resource`.
fn limit(resource: u64) -> Vec<u8> {
    const RLIMIT_STACK: u64 = 3;
    const RLIMIT_NOFILE: u64 = 7;
    let value = match resource {
        RLIMIT_STACK => 8 << 20,
        RLIMIT_NOFILE => 1024,
        _ => u64::MAX,
    };
    [value, value].as_bytes().to_vec()
}

/// `struct sysinfo`: uptime, loads (0), memory (unknown here: 0), and 1 process at least.
fn sysinfo() -> Vec<u8> {
    let mut info = vec![0u8; 112];
    let uptime = libmach::uptime_ns() / 1_000_000_000;
    info[0..8].copy_from_slice(&uptime.to_le_bytes());
    info[80..82].copy_from_slice(&1u16.to_le_bytes()); // procs
    info[104..108].copy_from_slice(&1u32.to_le_bytes()); // mem_unit
    info
}

/// The id calls: get and set the real, effective and saved user and group ids.
fn ids(unix: &mut Personality, port: PortName, number: u64, args: [u64; 3]) -> Answer {
    let Some(p) = unix.processes.get_mut(&port) else { return Answer::None };
    let [a, b, c] = args.map(|x| x as u32);
    let ids = &mut p.ids;
    let done = |r: Result<(), personality_unix::ids::NotPermitted>| match r {
        Ok(()) => Answer::Value(0),
        Err(_) => error(EPERM),
    };
    match number {
        nr::GETUID => Answer::Value(ids.uid as i64),
        nr::GETEUID => Answer::Value(ids.euid as i64),
        nr::GETGID => Answer::Value(ids.gid as i64),
        nr::GETEGID => Answer::Value(ids.egid as i64),
        nr::SETUID => done(ids.setuid(a)),
        nr::SETGID => done(ids.setgid(a)),
        nr::SETREUID => done(ids.setreuid(a, b)),
        nr::SETREGID => done(ids.setregid(a, b)),
        nr::SETRESUID => done(ids.setresuid(a, b, c)),
        nr::SETRESGID => done(ids.setresgid(a, b, c)),
        nr::GETRESUID | nr::GETRESGID => {
            let values = if number == nr::GETRESUID {
                [ids.uid, ids.euid, ids.suid]
            } else {
                [ids.gid, ids.egid, ids.sgid]
            };
            let task = p.task;
            for (at, value) in [args[0], args[1]].iter().zip(values) {
                if libmach::task::vm_write(task, *at, &value.to_le_bytes()).is_err() {
                    return error(EFAULT);
                }
            }
            Answer::CopyOut { value: 0, to: args[2], bytes: values[2].to_le_bytes().to_vec() }
        }
        // No supplementary groups.
        nr::GETGROUPS => Answer::Value(0),
        nr::SETGROUPS if ids.euid == 0 => Answer::Value(0),
        _ => error(EPERM),
    }
}

fn protection_of(prot: u64) -> u64 {
    (if prot & mmap::PROT_WRITE != 0 { protection::WRITE } else { 0 })
        | (if prot & mmap::PROT_EXEC != 0 { protection::EXECUTE } else { 0 })
}

/// mmap: anonymous memory, or a private mapping of a file (a copy of its bytes from the
/// offset, zeros past its end: the process's writes stay its own). A shared mapping of a
/// file answers ENODEV (fs-server pages cannot be mapped yet); shared anonymous memory is
/// private to the process after a fork.
#[allow(clippy::too_many_arguments)]
fn map(
    unix: &mut Personality,
    port: PortName,
    task: PortName,
    address: u64,
    len: u64,
    prot: u64,
    flags: u64,
    [fd, offset]: [u64; 2],
) -> Answer {
    let size = len.next_multiple_of(PAGE);
    if size == 0
        || !address.is_multiple_of(PAGE)
        || !offset.is_multiple_of(PAGE)
        || size > mach_abi::VM_MAX_SIZE
    {
        return error(EINVAL);
    }
    let file = if flags & mmap::MAP_ANONYMOUS == 0 {
        match crate::files::descriptor(unix, port, fd) {
            Ok(d) => match d.object {
                personality_unix::fdtable::Object::File(file) if flags & mmap::MAP_SHARED == 0 => Some(file),
                personality_unix::fdtable::Object::File(_) => return error(ENODEV),
                _ => return error(EACCES),
            },
            Err(e) => return error(e),
        }
    } else {
        None
    };
    let at = if flags & mmap::MAP_FIXED != 0 {
        let _ = vm_deallocate(task, address, size);
        address
    } else {
        0
    };
    let address = match vm_allocate(task, at, size, protection::WRITE) {
        Ok(address) => address,
        Err(_) => return error(ENOMEM),
    };
    if let Some(file) = file {
        let mut done = 0u64;
        while done < size {
            let count = (size - done).min(interfaces::io::MAX_TRANSFER as u64) as u32;
            let request = interfaces::io::ReadRequest { count, at: Some(offset + done), nonblocking: false };
            let chunk = match crate::files::ask::<interfaces::io::Read, _>(
                file,
                &request,
                unix.reply.name(),
                &mut unix.scratch,
            ) {
                Ok(chunk) => chunk.to_vec(),
                Err(e) => {
                    let _ = vm_deallocate(task, address, size);
                    return error(e);
                }
            };
            if chunk.is_empty() || vm_write(task, address + done, &chunk).is_err() {
                break;
            }
            done += chunk.len() as u64;
        }
    }
    let wanted = protection_of(prot);
    if wanted != protection::WRITE {
        let _ = vm_protect(task, address, size, wanted);
    }
    Answer::Value(address as i64)
}

/// mremap: shrink in place; grow in place when the pages after are free, else (with
/// MREMAP_MAYMOVE) move: a new region, the old bytes copied through the personality, the old
/// region freed.
fn remap(task: PortName, old: u64, old_size: u64, new_size: u64, flags: u64) -> Answer {
    const MREMAP_MAYMOVE: u64 = 1;
    let (old_size, new_size) = (old_size.next_multiple_of(PAGE), new_size.next_multiple_of(PAGE));
    if !old.is_multiple_of(PAGE)
        || new_size == 0
        || flags & !MREMAP_MAYMOVE != 0
        || new_size > mach_abi::VM_MAX_SIZE
    {
        return error(EINVAL);
    }
    if new_size <= old_size {
        if new_size < old_size {
            let _ = vm_deallocate(task, old + new_size, old_size - new_size);
        }
        return Answer::Value(old as i64);
    }
    if vm_allocate(task, old + old_size, new_size - old_size, protection::WRITE).is_ok() {
        return Answer::Value(old as i64);
    }
    if flags & MREMAP_MAYMOVE == 0 {
        return error(ENOMEM);
    }
    let Ok(new) = vm_allocate(task, 0, new_size, protection::WRITE) else { return error(ENOMEM) };
    let mut chunk = vec![0u8; 64 * 1024];
    let mut done = 0;
    while done < old_size {
        let n = (old_size - done).min(chunk.len() as u64) as usize;
        if libmach::task::vm_read(task, old + done, &mut chunk[..n]).is_err()
            || vm_write(task, new + done, &chunk[..n]).is_err()
        {
            let _ = vm_deallocate(task, new, new_size);
            return error(EFAULT);
        }
        done += n as u64;
    }
    let _ = vm_deallocate(task, old, old_size);
    Answer::Value(new as i64)
}

/// brk: the break moves within [start, ...); pages are mapped as it grows.
fn brk(unix: &mut Personality, port: PortName, wanted: u64) -> Answer {
    let Some(p) = unix.processes.get_mut(&port) else { return Answer::None };
    if wanted < p.brk_start {
        return Answer::Value(p.brk as i64);
    }
    let (old_end, new_end) = (p.brk.next_multiple_of(PAGE), wanted.next_multiple_of(PAGE));
    if new_end > old_end && vm_allocate(p.task, old_end, new_end - old_end, protection::WRITE).is_err() {
        return Answer::Value(p.brk as i64);
    }
    if new_end < old_end {
        let _ = vm_deallocate(p.task, new_end, old_end - new_end);
    }
    p.brk = wanted;
    Answer::Value(wanted as i64)
}

/// A `struct timespec` in the process, as nanoseconds (EFAULT; EINVAL when out of range).
pub fn read_timespec(task: PortName, at: u64) -> Result<u64, i64> {
    let mut ts = [0u8; 16];
    libmach::task::vm_read(task, at, &mut ts).map_err(|_| EFAULT)?;
    let seconds = u64::from_le_bytes(ts[..8].try_into().unwrap_or([0; 8]));
    let nanos = u64::from_le_bytes(ts[8..].try_into().unwrap_or([0; 8]));
    if nanos >= 1_000_000_000 || (seconds as i64) < 0 {
        return Err(EINVAL);
    }
    // A time past what 64 bits of nanoseconds hold (584 years) is "for ever".
    Ok(seconds.saturating_mul(1_000_000_000).saturating_add(nanos))
}

/// When a wait of `length` ends, in nanoseconds since boot: `length` from now (`absolute`
/// None), or `length` as a time on the real-time (`Some(true)`) or monotonic clock.
pub fn deadline(length: u64, absolute: Option<bool>) -> u64 {
    let now = libmach::uptime_ns();
    match absolute {
        None => now.saturating_add(length),
        Some(true) => now.saturating_add(length.saturating_sub(libmach::realtime_ns())),
        Some(false) => length,
    }
}

/// nanosleep / clock_nanosleep: the call is answered when its time has come (the loop
/// receives with a timeout until the nearest one).
#[allow(clippy::too_many_arguments)]
fn sleep(
    unix: &mut Personality,
    task: PortName,
    [request, remaining_to]: [u64; 2],
    absolute: bool,
    reply_to: PortName,
    clock: u64,
) -> Answer {
    let length = match read_timespec(task, request) {
        Ok(length) => length,
        Err(e) => return error(e),
    };
    let deadline = deadline(length, absolute.then_some(clock == 0));
    // An absolute sleep has no time left to report.
    let remaining_to = if absolute { 0 } else { remaining_to };
    unix.sleeps.push(crate::process::PendingSleep { reply_to, deadline, remaining_to, task });
    Answer::Later
}

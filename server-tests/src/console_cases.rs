//! The console cases: terminal ports of the console server, through `io` and `console`.

use crate::{Outcome, check};
use alloc::format;
use alloc::vec::Vec;
use interfaces::{console, io};
use libmach::ipc::{Message, PortName, ReceiveRight, SendRight, received};
use libmach::{name_service, rpc};

fn open_terminal() -> Result<SendRight, alloc::string::String> {
    let console = name_service::look_up("console").map_err(|e| format!("look up console: {e:?}"))?;
    let reply = ReceiveRight::allocate().map_err(|_| "port")?;
    let mut m = Message::new();
    rpc::call_timeout::<console::OpenTerminal>(console.name(), &(), &[], reply.name(), &mut m, 10_000)
        .map_err(|e| format!("open terminal: {e:?}"))?
        .map_err(|e| format!("open terminal: {e:?}"))?;
    match m.port(0) {
        Some(d) if d.disposition == received::SEND => Ok(SendRight::from_name(d.name)),
        _ => Err("no terminal port in the answer".into()),
    }
}

fn write(terminal: PortName, reply: &ReceiveRight, m: &mut Message, data: &[u8]) -> Outcome {
    let request = io::WriteRequest { data: interfaces::Bytes(data), at: None };
    match rpc::call_timeout::<io::Write>(terminal, &request, &[], reply.name(), m, 10_000) {
        Ok(Ok(n)) if n as usize == data.len() => Ok(()),
        other => Err(format!("write: {other:?}")),
    }
}

const LINES: usize = 40;

/// Two threads, each with its own terminal port, write numbered lines at once.
extern "C" fn writer(which: u64) -> ! {
    let letter = if which == 0 { b'A' } else { b'B' };
    let done = (|| -> Outcome {
        let terminal = open_terminal()?;
        let reply = ReceiveRight::allocate().map_err(|_| "port")?;
        let mut m = Message::new();
        for i in 0..LINES {
            let mut line = Vec::from(format!("{}{i:02}:", letter as char).as_bytes());
            line.resize(70, letter);
            line.push(b'\n');
            write(terminal.name(), &reply, &mut m, &line)?;
        }
        Ok(())
    })();
    let bit = if done.is_ok() { 1 } else { 0x100 };
    WRITERS.fetch_add(bit, core::sync::atomic::Ordering::SeqCst);
    libmach::ipc::thread_exit()
}

static WRITERS: core::sync::atomic::AtomicU32 = core::sync::atomic::AtomicU32::new(0);

pub fn two_writers() -> Outcome {
    let me = libmach::ipc::task_self().map_err(|_| "task_self")?;
    for which in 0..2u64 {
        let stack =
            libmach::task::vm_allocate(me, 0, 64 * 1024, mach_abi::protection::WRITE).map_err(|_| "stack")?;
        libmach::ipc::thread_create(me, writer, stack + 64 * 1024 - 8, which).map_err(|_| "thread")?;
    }
    for _ in 0..3000 {
        let state = WRITERS.load(core::sync::atomic::Ordering::SeqCst);
        if state == 2 {
            return Ok(());
        }
        check(state < 0x100, "a writer failed")?;
        libmach::ipc::sleep_ms(10);
    }
    Err("the writers did not finish".into())
}

/// Read lines from the terminal and print each back as `got [LINE]`, until `quit`.
/// Events (^C, ^\\, ^Z) arrive on a port registered with the terminal; the case prints the
/// ones it got when it ends.
pub fn echo() -> Outcome {
    let terminal = open_terminal()?;
    let reply = ReceiveRight::allocate().map_err(|_| "port")?;
    let events = ReceiveRight::allocate().map_err(|_| "port")?;
    let mut m = Message::new();
    let registered = rpc::call_timeout::<console::SetEventPort>(
        terminal.name(),
        &(),
        &[(events.name(), libmach::ipc::disposition::MAKE_SEND)],
        reply.name(),
        &mut m,
        10_000,
    );
    check(matches!(registered, Ok(Ok(()))), "register an event port")?;
    // Give the host time to type ahead: input typed before anyone reads is kept.
    libmach::ipc::sleep_ms(1000);
    write(terminal.name(), &reply, &mut m, b"echo ready> ")?;
    for _ in 0..20 {
        let request = io::ReadRequest { count: 256, at: None, nonblocking: false };
        let line: Vec<u8> =
            match rpc::call_timeout::<io::Read>(terminal.name(), &request, &[], reply.name(), &mut m, 60_000)
            {
                Ok(Ok(data)) => data.to_vec(),
                other => return Err(format!("read: {other:?}")),
            };
        if line.is_empty() {
            write(terminal.name(), &reply, &mut m, b"got end of file\n")?;
            continue;
        }
        let text = line.strip_suffix(b"\n").unwrap_or(&line);
        if text == b"quit" {
            let mut got = Vec::new();
            while m.receive_timeout(events.name(), 0).is_ok() {
                got.push(rpc::Incoming::new(&m).decode::<console::Notify>().ok());
            }
            libmach::println!("console-echo: events {got:?}");
            return Ok(());
        }
        let mut out = Vec::from(&b"got ["[..]);
        out.extend_from_slice(text);
        out.extend_from_slice(b"]\necho ready> ");
        write(terminal.name(), &reply, &mut m, &out)?;
    }
    Err("no quit".into())
}

//! Programs: reading an executable through fs-server, checking that it is an xv6 program
//! (its `Machina` ELF note says "xv6"), loading it into a new task with its arguments on the
//! stack (rdi = argc, rsi = argv at the entry, as docs/personality.md says), and fork's copy
//! of a task.
//!
//! It must never start a program it could not load whole: a task is only handed back once
//! every part of it is in place.

use crate::server::{CALL_TIMEOUT_MS, Xv6};
use alloc::vec::Vec;
use interfaces::fs::{Credentials, OpenRequest, open};
use interfaces::io;
use libmach::ipc::*;
use libmach::loader;
use libmach::rpc;
use libmach::task::{task_create, task_set_name, task_terminate, vm_allocate, vm_write};
use mach_abi::protection;
use personality_xv6::abi::{MAXARG, initial_stack};

/// Where a program's stack ends, and its size.
const STACK_TOP: u64 = mach_abi::layout::USER_STACK_TOP;
const STACK_SIZE: u64 = 256 * 1024;
/// The largest executable read (xv6's programs are a few hundred KiB at most).
const MAX_IMAGE: u64 = 64 * 1024 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExecError {
    NotFound,
    /// An executable of another personality (or none): hand it over.
    NotXv6,
    BadImage,
    NoMemory,
}

/// A program loaded into a new task, not started yet.
pub struct Loaded {
    pub task: PortName,
    entry: u64,
    rsp: u64,
    argc: u64,
    argv: u64,
    /// Where the break starts (the page after the program's last segment).
    pub brk: u64,
}

impl Loaded {
    /// Start the task's thread at the entry; its thread port.
    pub fn start(&self) -> Option<PortName> {
        thread_create_at(self.task, self.entry, self.rsp, self.argc, self.argv).ok().map(|t| t as PortName)
    }
}

/// The whole file at `path` (absolute) through fs-server.
pub fn read_file(xv6: &mut Xv6, path: &str) -> Result<Vec<u8>, ExecError> {
    let request = OpenRequest { path, flags: open::READ, mode: 0, credentials: Credentials::ROOT };
    let stat = rpc::call_timeout::<interfaces::fs::Open>(
        xv6.fs.name(),
        &request,
        &[],
        xv6.reply.name(),
        &mut xv6.scratch,
        CALL_TIMEOUT_MS,
    )
    .map_err(|_| ExecError::NotFound)?
    .map_err(|_| ExecError::NotFound)?;
    let file = match xv6.scratch.port(0) {
        Some(d) if d.disposition == received::SEND => SendRight::from_name(d.name),
        _ => return Err(ExecError::NotFound),
    };
    if stat.mode & 0o170000 != 0o100000 || stat.size > MAX_IMAGE {
        return Err(ExecError::BadImage);
    }
    let mut data = Vec::with_capacity(stat.size as usize);
    loop {
        let request =
            io::ReadRequest { count: io::MAX_TRANSFER, at: Some(data.len() as u64), nonblocking: false };
        let chunk = rpc::call_timeout::<io::Read>(
            file.name(),
            &request,
            &[],
            xv6.reply.name(),
            &mut xv6.scratch,
            CALL_TIMEOUT_MS,
        )
        .map_err(|_| ExecError::BadImage)?
        .map_err(|_| ExecError::BadImage)?;
        if chunk.is_empty() {
            return Ok(data);
        }
        data.extend_from_slice(&chunk);
    }
}

/// Is `image` an xv6 program?
pub fn is_xv6(image: &[u8]) -> bool {
    loader::personality_note(image) == Some(b"xv6")
}

/// Load the xv6 program at `path` into a new task with `args`.
pub fn load(xv6: &mut Xv6, path: &str, args: &[Vec<u8>]) -> Result<Loaded, ExecError> {
    if args.len() > MAXARG {
        return Err(ExecError::BadImage);
    }
    let image = read_file(xv6, path)?;
    if !is_xv6(&image) {
        return Err(ExecError::NotXv6);
    }
    let task = task_create().map_err(|_| ExecError::NoMemory)?;
    let loaded = (|| {
        let name = path.rsplit('/').next().unwrap_or(path);
        let _ = task_set_name(task, name);
        let image = loader::load_elf_image(task, &image).map_err(|_| ExecError::BadImage)?;
        vm_allocate(task, STACK_TOP - STACK_SIZE, STACK_SIZE, protection::WRITE)
            .map_err(|_| ExecError::NoMemory)?;
        let args: Vec<&[u8]> = args.iter().map(|a| a.as_slice()).collect();
        let (bytes, rsp, argv) = initial_stack(STACK_TOP, &args);
        if bytes.len() as u64 > STACK_SIZE / 2 {
            return Err(ExecError::BadImage);
        }
        vm_write(task, rsp, &bytes).map_err(|_| ExecError::NoMemory)?;
        Ok(Loaded {
            task,
            entry: image.entry,
            rsp,
            argc: args.len() as u64,
            argv,
            brk: image.end.next_multiple_of(4096),
        })
    })();
    if loaded.is_err() {
        let _ = task_terminate(task);
        let _ = port_deallocate(task);
    }
    loaded
}

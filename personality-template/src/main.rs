//! personality-template: the smallest complete personality, to copy and grow (README.md).
//!
//! A personality gives programs the system calls of an operating system. This one runs ONE
//! program, named on its command line (`personality-template /template/hello`): it reads the
//! ELF file through fs-server, loads it into a new task and becomes the task's **syscall
//! port**. The kernel turns each `syscall` instruction of the program into a message to that
//! port (docs/kernel.md, "Foreign system calls"), and this server answers it. It serves two
//! Linux calls, `write` to the terminal and `exit`; every other call answers -ENOSYS (-38).
//! New calls go in ONE place: `system_call`, at "Add your calls here". When the program ends,
//! so does the personality (and bootstrap shuts the system down when no program is left).
//!
//! It must never trust the program: a call is decoded once and checked, the program's memory
//! is reached only through its task port (a bad pointer is -EFAULT), and nothing the program
//! does can make this server panic or wait for ever.
#![no_std]
#![no_main]

extern crate alloc;

use alloc::boxed::Box;
use alloc::vec::Vec;
use interfaces::{Bytes, console, fs, io};
use libmach::ipc::*;
use libmach::task::{task_create, task_notify_ended, task_set_name, task_set_special_port, task_terminate};
use libmach::{loader, name_service, println, rpc};
use mach_abi::forward::{SYSCALL_MESSAGE, SyscallReply, SyscallRequest, entry};
use mach_abi::zerocopy::{FromBytes, IntoBytes};
use mach_abi::{TASK_ENDED_MESSAGE, special_port};

// Linux x86-64 call numbers (the program puts one in rax) and errors (minus Linux's errno).
const SYS_WRITE: u64 = 1;
const SYS_EXIT: u64 = 60;
const SYS_EXIT_GROUP: u64 = 231;
const EIO: i64 = -5;
const EBADF: i64 = -9;
const EFAULT: i64 = -14;
const ENOSYS: i64 = -38;

/// How long a call to another server may take: a server never waits for ever.
const TIMEOUT_MS: u64 = 10_000;
/// The most bytes one `write` takes (a smaller answer tells the program to write the rest).
const MAX_WRITE: u64 = 4096;
/// The largest program read.
const MAX_IMAGE: usize = 16 * 1024 * 1024;

libmach::entry!(main);

/// `args` is the module's command line: `personality-template PROGRAM`. The exit code.
fn main(args: &str) -> u64 {
    let Some(path) = args.split_ascii_whitespace().nth(1) else {
        println!("usage: personality-template PROGRAM (a path on the disk: /template/hello)");
        return 2;
    };
    match Personality::start(path) {
        Ok(mut personality) => personality.serve(),
        Err(why) => {
            println!("cannot run {path}: {why}");
            1
        }
    }
}

struct Personality {
    /// The program's task: its address space, reached through this port.
    task: PortName,
    /// The task's syscall port: its system calls arrive here.
    calls: ReceiveRight,
    /// The kernel says here when the task has ended (a fault ends it, for example).
    ended: ReceiveRight,
    /// A port set holding both: one receive waits for either.
    set: PortName,
    /// The console's terminal (an `io` port): what descriptors 1 and 2 write to.
    terminal: SendRight,
    /// Where other servers answer us, and the buffer their answers arrive in.
    reply: ReceiveRight,
    scratch: Box<Message>,
}

impl Personality {
    /// Open the terminal, read `path`, load it into a new task and start it.
    fn start(path: &str) -> Result<Personality, &'static str> {
        let reply = ReceiveRight::allocate().map_err(|_| "no ports")?;
        let mut scratch = Box::new(Message::new());
        let terminal = open_terminal(&reply, &mut scratch)?;
        let image = read_file(path, &reply, &mut scratch)?;
        let calls = ReceiveRight::allocate().map_err(|_| "no ports")?;
        let ended = ReceiveRight::allocate().map_err(|_| "no ports")?;
        let set = port_allocate_set().map_err(|_| "no ports")?;
        port_move_member(calls.name(), set).map_err(|_| "no ports")?;
        port_move_member(ended.name(), set).map_err(|_| "no ports")?;
        let task = task_create().map_err(|_| "no task")?;
        let _ = task_set_name(task, path.rsplit('/').next().unwrap_or(path));
        // From here on, dropping `personality` (an error below) ends the task.
        let personality = Personality { task, calls, ended, set, terminal, reply, scratch };
        personality.load(path, &image)?;
        Ok(personality)
    }

    /// Load the ELF `image` into the task, give it a stack, attach our ports, start it.
    fn load(&self, path: &str, image: &[u8]) -> Result<(), &'static str> {
        let elf = loader::load_elf_image(self.task, image).map_err(|_| "not an ELF executable")?;
        // A 64 KiB stack (vm_allocate) with the path written at its top (vm_write): the
        // program starts with rdi = the path's address and rsi = its length.
        let (rsp, text) = loader::make_stack(self.task, path).map_err(|_| "no memory for the stack")?;
        // The kernel sends the task's system calls to its SYSCALL special port (it keeps its
        // own copy of the send right we give), and its end to `ended`.
        let send = port_make_send(self.calls.name()).map_err(|_| "no ports")?;
        let attached = task_set_special_port(self.task, special_port::SYSCALL, send);
        let _ = port_deallocate(send);
        attached.map_err(|_| "cannot set the syscall port")?;
        task_notify_ended(self.task, self.ended.name(), disposition::MAKE_SEND)
            .map_err(|_| "cannot watch the task")?;
        let thread = thread_create_at(self.task, elf.entry, rsp, text, path.len() as u64)
            .map_err(|_| "cannot start a thread")?;
        // Nothing here needs the thread's port.
        let _ = port_deallocate(thread as PortName);
        Ok(())
    }

    /// Answer the program's calls until it ends; the personality's exit code.
    fn serve(&mut self) -> u64 {
        let mut message = Box::new(LargestMessage::new());
        loop {
            if message.receive(self.set).is_err() {
                println!("cannot receive; ending");
                return 1;
            }
            let (local, remote, id) = (message.header.local, message.header.remote, message.header.id);
            if local == self.ended.name() && id == TASK_ENDED_MESSAGE {
                println!("the program ended without calling exit");
                return 1;
            }
            let call = SyscallRequest::read_from_prefix(message.data()).ok().map(|(call, _)| call);
            let Some(call) = call.filter(|_| local == self.calls.name() && id == SYSCALL_MESSAGE) else {
                // Not a system call: give back what it carried, answer nothing.
                message.release_carried();
                if remote != PORT_NULL {
                    let _ = port_deallocate(remote);
                }
                continue;
            };
            if call.entry == entry::SYSCALL && (call.number == SYS_EXIT || call.number == SYS_EXIT_GROUP) {
                // Nobody waits for the answer: the task goes, and the reply right with it.
                let _ = task_terminate(self.task);
                let _ = port_deallocate(remote);
                println!("the program exited with status {}", call.args[0] & 0xff);
                return 0;
            }
            let result = self.system_call(&call);
            self.answer(remote, result);
        }
    }

    /// One system call: its answer, the program's rax. THE place to add a call.
    fn system_call(&mut self, call: &SyscallRequest) -> i64 {
        if call.entry != entry::SYSCALL {
            // `int $64` is another ABI (xv6's): not one this personality speaks.
            return ENOSYS;
        }
        // The arguments: rdi, rsi, rdx, r10, r8, r9.
        let [a0, a1, a2, _a3, _a4, _a5] = call.args;
        match call.number {
            SYS_WRITE => self.write(a0, a1, a2),
            // Add your calls here: `NUMBER => answer,` (Linux's numbers; a result < 0 is an
            // error, minus its errno). For example getpid (39):
            // 39 => 1, // getpid: the only process is process 1
            number => {
                println!("call {number} is not served: -ENOSYS (add it in main.rs, system_call)");
                ENOSYS
            }
        }
    }

    /// `write(fd, buf, count)`: descriptors 1 and 2 are the terminal. Answers how many bytes
    /// were written (at most MAX_WRITE: a C or Rust library writes the rest in a next call).
    fn write(&mut self, fd: u64, buf: u64, count: u64) -> i64 {
        if fd != 1 && fd != 2 {
            return EBADF;
        }
        if count == 0 {
            return 0;
        }
        // The program's memory is not ours: it is read through its task port.
        let mut bytes = alloc::vec![0u8; count.min(MAX_WRITE) as usize];
        if libmach::task::vm_read(self.task, buf, &mut bytes).is_err() {
            return EFAULT;
        }
        let request = io::WriteRequest { data: Bytes(&bytes), at: None };
        let (terminal, reply) = (self.terminal.name(), self.reply.name());
        match rpc::call_timeout::<io::Write>(terminal, &request, &[], reply, &mut self.scratch, TIMEOUT_MS) {
            Ok(Ok(written)) => i64::from(written),
            _ => EIO,
        }
    }

    /// Send `result` to the caller's reply right: the kernel puts it in rax and the program
    /// runs on.
    fn answer(&mut self, reply: PortName, result: i64) {
        let answer = SyscallReply { result, ..SyscallReply::default() };
        self.scratch
            .start(reply, disposition::MOVE_SEND_ONCE, SYSCALL_MESSAGE | rpc::REPLY_BIT)
            .set_data(answer.as_bytes());
        if self.scratch.send_timeout(TIMEOUT_MS).is_err() {
            let _ = port_deallocate(reply);
        }
    }
}

impl Drop for Personality {
    /// The personality ending ends its program (nobody could answer its calls any more).
    fn drop(&mut self) {
        let _ = task_terminate(self.task);
        let _ = port_deallocate(self.task);
    }
}

/// A terminal port of the console server (`console.open`).
fn open_terminal(reply: &ReceiveRight, scratch: &mut Message) -> Result<SendRight, &'static str> {
    let console = name_service::look_up("console").map_err(|_| "no console")?;
    rpc::call_timeout::<console::OpenTerminal>(console.name(), &(), &[], reply.name(), scratch, TIMEOUT_MS)
        .map_err(|_| "the console does not answer")?
        .map_err(|_| "the console gave no terminal")?;
    send_right_carried(scratch).ok_or("the console gave no terminal")
}

/// The whole file at `path` through fs-server: `fs.open` answers with an `io` port for the
/// file, then `io.read` until the end of the file.
fn read_file(path: &str, reply: &ReceiveRight, scratch: &mut Message) -> Result<Vec<u8>, &'static str> {
    // "fs" is private: bootstrap answers only the programs its policy lets look it up.
    let fs = name_service::look_up("fs").map_err(|_| "no file system (\"fs\", see bootstrap's policy)")?;
    let open = fs::OpenRequest { path, flags: fs::open::READ, mode: 0, credentials: fs::Credentials::ROOT };
    rpc::call_timeout::<fs::Open>(fs.name(), &open, &[], reply.name(), scratch, TIMEOUT_MS)
        .map_err(|_| "fs-server does not answer")?
        .map_err(|_| "no such file")?;
    // Dropping `file` at the end closes it (fs-server learns it has no sender left).
    let file = send_right_carried(scratch).ok_or("no such file")?;
    let mut data = Vec::new();
    loop {
        let read =
            io::ReadRequest { count: io::MAX_TRANSFER, at: Some(data.len() as u64), nonblocking: false };
        let chunk = rpc::call_timeout::<io::Read>(file.name(), &read, &[], reply.name(), scratch, TIMEOUT_MS)
            .map_err(|_| "fs-server does not answer")?
            .map_err(|_| "cannot read it")?;
        if chunk.is_empty() {
            return Ok(data);
        }
        if data.len() + chunk.len() > MAX_IMAGE {
            return Err("too large");
        }
        data.extend_from_slice(&chunk);
    }
}

/// The send right an answer carried as its port descriptor 0.
fn send_right_carried(answer: &Message) -> Option<SendRight> {
    let carried = answer.port(0).filter(|d| d.disposition == received::SEND)?;
    Some(SendRight::from_name(carried.name))
}

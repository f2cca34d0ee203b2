//! Ports, rights and messages from user space.
//!
//! Rights are owned values: dropping a [`SendRight`] or [`SendOnceRight`] gives the reference
//! back to the kernel, dropping a [`ReceiveRight`] destroys the port. `into_name` hands the
//! name over without dropping (for example when the right was moved into a message).
//! [`MessageBuffer`] lays a message out as the kernel reads it: header, port descriptors,
//! inline data.

use crate::{into_result, raw_syscall, trap_call as call};
use mach_abi::KernelError;
pub use mach_abi::ipc::{
    HEADER_SIZE, MAX_INLINE_DATA, MAX_PORT_DESCRIPTORS, MessageHeader, OolDescriptor, PORT_DEAD, PORT_NULL,
    PortDescriptor, PortName, disposition, ool_flags, options, received, right_type,
};
use mach_abi::trap;

fn call1(number: i64, a: u64) -> Result<u64, KernelError> {
    call(number, [a, 0, 0, 0, 0, 0])
}

/// The raw traps, by name.
pub fn port_allocate() -> Result<PortName, KernelError> {
    call1(trap::PORT_ALLOCATE, 0).map(|n| n as PortName)
}
pub fn port_allocate_set() -> Result<PortName, KernelError> {
    call1(trap::PORT_ALLOCATE_SET, 0).map(|n| n as PortName)
}
pub fn port_deallocate(name: PortName) -> Result<(), KernelError> {
    call1(trap::PORT_DEALLOCATE, name as u64).map(|_| ())
}
pub fn port_destroy(name: PortName) -> Result<(), KernelError> {
    call1(trap::PORT_DESTROY, name as u64).map(|_| ())
}
pub fn port_type(name: PortName) -> Result<u64, KernelError> {
    call1(trap::PORT_TYPE, name as u64)
}
pub fn port_move_member(member: PortName, set: PortName) -> Result<(), KernelError> {
    call(trap::PORT_MOVE_MEMBER, [member as u64, set as u64, 0, 0, 0, 0]).map(|_| ())
}
pub fn port_make_send(name: PortName) -> Result<PortName, KernelError> {
    call1(trap::PORT_MAKE_SEND, name as u64).map(|n| n as PortName)
}
pub fn port_set_queue_limit(name: PortName, limit: usize) -> Result<(), KernelError> {
    call(trap::PORT_SET_QUEUE_LIMIT, [name as u64, limit as u64, 0, 0, 0, 0]).map(|_| ())
}
/// Ask for a notification (`mach_abi::notify::*`) about `name` on `notify_port` (a right
/// carried as `how`, usually MAKE_SEND_ONCE).
pub fn port_request_notification(
    name: PortName,
    kind: u64,
    notify_port: PortName,
    how: u8,
) -> Result<(), KernelError> {
    call(trap::PORT_REQUEST_NOTIFICATION, [name as u64, kind, notify_port as u64, how as u64, 0, 0])
        .map(|_| ())
}
pub fn task_self() -> Result<PortName, KernelError> {
    call1(trap::TASK_SELF, 0).map(|n| n as PortName)
}
/// Start a thread in the task named by `task` at `entry` with stack `stack_top`; `arg` in rdi.
pub fn thread_create(
    task: PortName,
    entry: extern "C" fn(u64) -> !,
    stack_top: u64,
    arg: u64,
) -> Result<u64, KernelError> {
    thread_create_at(task, entry as *const () as u64, stack_top, arg, 0)
}
/// Start a thread in the task named by `task` at address `rip` (in that task) with `rsp`,
/// and `rdi`, `rsi` as its first two argument registers.
pub fn thread_create_at(task: PortName, rip: u64, rsp: u64, rdi: u64, rsi: u64) -> Result<u64, KernelError> {
    call(trap::THREAD_CREATE, [task as u64, rip, rsp, rdi, rsi, 0])
}
pub fn thread_exit() -> ! {
    let _ = call1(trap::THREAD_EXIT, 0);
    unreachable!("thread_exit returned")
}
pub fn sleep_ms(ms: u64) {
    let _ = call1(trap::SLEEP, ms);
}

/// A receive right: the port's messages come to its holder. Dropping it destroys the port.
#[derive(Debug)]
pub struct ReceiveRight(PortName);

/// A send right (one user reference). Dropping it gives the reference back.
#[derive(Debug)]
pub struct SendRight(PortName);

/// A send-once right: one message (typically a reply) may be sent with it.
#[derive(Debug)]
pub struct SendOnceRight(PortName);

macro_rules! right {
    ($t:ident, $drop:expr) => {
        impl $t {
            /// Take ownership of a right the task holds under `name`.
            pub const fn from_name(name: PortName) -> Self {
                $t(name)
            }
            pub fn name(&self) -> PortName {
                self.0
            }
            /// Give up ownership without releasing the right.
            pub fn into_name(self) -> PortName {
                let name = self.0;
                core::mem::forget(self);
                name
            }
        }
        impl Drop for $t {
            fn drop(&mut self) {
                let _ = $drop(self.0);
            }
        }
    };
}
right!(ReceiveRight, port_destroy);
right!(SendRight, port_deallocate);
right!(SendOnceRight, port_deallocate);

impl ReceiveRight {
    pub fn allocate() -> Result<Self, KernelError> {
        port_allocate().map(ReceiveRight)
    }
    /// A send right to this port (one more reference under the same name).
    pub fn make_send(&self) -> Result<SendRight, KernelError> {
        port_make_send(self.0).map(SendRight)
    }
}

/// A message laid out for the kernel: header, then descriptors, then inline data.
#[repr(C, align(8))]
pub struct MessageBuffer<const N: usize> {
    pub header: MessageHeader,
    body: [u8; N],
}

/// Body bytes of a [`Message`].
pub const MESSAGE_BODY: usize = 8 * 8 + 8 * 1024;

/// Room for a message with up to 8 port descriptors and 8 KiB of inline data.
pub type Message = MessageBuffer<MESSAGE_BODY>;

/// Room for the largest message the kernel delivers (every descriptor, 16 KiB of data): what
/// a server receives into, so that no request is too large to take off its queue.
pub type LargestMessage = MessageBuffer<LARGEST_MESSAGE_BODY>;

/// Body bytes of a [`LargestMessage`].
pub const LARGEST_MESSAGE_BODY: usize = mach_abi::ipc::MAX_PORT_DESCRIPTORS
    * mach_abi::ipc::PORT_DESCRIPTOR_SIZE
    + mach_abi::ipc::MAX_OOL_DESCRIPTORS * mach_abi::ipc::OOL_DESCRIPTOR_SIZE
    + MAX_INLINE_DATA;

impl<const N: usize> Default for MessageBuffer<N> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const N: usize> MessageBuffer<N> {
    pub const fn new() -> Self {
        MessageBuffer {
            header: MessageHeader {
                remote: 0,
                local: 0,
                remote_disposition: 0,
                local_disposition: 0,
                port_count: 0,
                ool_count: 0,
                id: 0,
                data_size: 0,
                trace: 0,
            },
            body: [0; N],
        }
    }

    /// Bytes the buffer holds, header included: the receive size to give the kernel.
    pub const fn capacity(&self) -> usize {
        HEADER_SIZE + N
    }

    /// Start a new outgoing message to `remote` (carried as `how`) with id `id`.
    pub fn start(&mut self, remote: PortName, how: u8, id: u32) -> &mut Self {
        self.header = MessageHeader { remote, remote_disposition: how, id, ..MessageHeader::default() };
        self
    }

    /// Attach a reply right (`local`, carried as `how`, usually MAKE_SEND_ONCE).
    pub fn reply_to(&mut self, local: PortName, how: u8) -> &mut Self {
        self.header.local = local;
        self.header.local_disposition = how;
        self
    }

    fn ports_len(&self) -> usize {
        self.header.port_count as usize * 8
    }

    /// Where the inline data starts in the body (after port and out-of-line descriptors).
    fn data_start(&self) -> usize {
        self.ports_len() + self.header.ool_count as usize * 16
    }

    /// Make room for `size` bytes at body offset `at`, moving what follows.
    fn open_gap(&mut self, at: usize, size: usize) {
        let end = self.data_start() + self.header.data_size as usize;
        assert!(end + size <= N, "message buffer full");
        self.body.copy_within(at..end, at + size);
    }

    /// Carry a right in the body. Panics if the buffer is full (a program bug).
    pub fn push_port(&mut self, name: PortName, how: u8) -> &mut Self {
        let at = self.ports_len();
        self.open_gap(at, 8);
        self.body[at..at + 4].copy_from_slice(&name.to_ne_bytes());
        self.body[at + 4] = how;
        self.body[at + 5..at + 8].fill(0);
        self.header.port_count += 1;
        self
    }

    /// Carry the pages at `address` (page aligned, `size` bytes) out of line: the receiver
    /// gets a copy mapped in its own space. With `ool_flags::DEALLOCATE` they leave this task.
    pub fn push_ool(&mut self, address: u64, size: u32, flags: u32) -> &mut Self {
        let at = self.data_start();
        self.open_gap(at, 16);
        self.body[at..at + 8].copy_from_slice(&address.to_ne_bytes());
        self.body[at + 8..at + 12].copy_from_slice(&size.to_ne_bytes());
        self.body[at + 12..at + 16].copy_from_slice(&flags.to_ne_bytes());
        self.header.ool_count += 1;
        self
    }

    /// Set the inline data. Panics if it does not fit (a program bug).
    pub fn set_data(&mut self, data: &[u8]) -> &mut Self {
        let at = self.data_start();
        assert!(at + data.len() <= N, "message buffer full");
        self.body[at..at + data.len()].copy_from_slice(data);
        self.header.data_size = data.len() as u32;
        self
    }

    /// The port descriptors (after a receive: names in this task and `received::*` kinds).
    pub fn port(&self, index: usize) -> Option<PortDescriptor> {
        if index >= self.header.port_count as usize {
            return None;
        }
        let at = index * 8;
        let bytes = self.body.get(at..at + 8)?;
        Some(PortDescriptor {
            name: PortName::from_ne_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]),
            disposition: bytes[4],
            reserved: [0; 3],
        })
    }

    /// The out-of-line regions (after a receive: where the copies are mapped, and sizes).
    pub fn ool(&self, index: usize) -> Option<OolDescriptor> {
        if index >= self.header.ool_count as usize {
            return None;
        }
        let at = self.ports_len() + index * 16;
        let bytes = self.body.get(at..at + 16)?;
        let word = |r: core::ops::Range<usize>| bytes.get(r).unwrap_or(&[]);
        Some(OolDescriptor {
            address: u64::from_ne_bytes(word(0..8).try_into().ok()?),
            size: u32::from_ne_bytes(word(8..12).try_into().ok()?),
            flags: u32::from_ne_bytes(word(12..16).try_into().ok()?),
        })
    }

    /// Fill the inline data in place: `fill` gets the free room after the descriptors and
    /// returns how many bytes it used (no copy through a scratch buffer).
    pub fn fill_data<E>(&mut self, fill: impl FnOnce(&mut [u8]) -> Result<usize, E>) -> Result<(), E> {
        let at = self.data_start();
        let room = self.body.get_mut(at..).unwrap_or(&mut []);
        let used = fill(room)?;
        self.header.data_size = used.min(N - at) as u32;
        Ok(())
    }

    /// Give back everything a received message carried: its rights (a receive right is
    /// destroyed, the others released) and its out-of-line regions (unmapped). For a request
    /// a server refuses, or one whose rights it does not keep. The reply right (`header.remote`)
    /// is not touched.
    pub fn release_carried(&self) {
        for i in 0..self.header.port_count as usize {
            if let Some(d) = self.port(i) {
                let _ = if d.disposition == received::RECEIVE {
                    port_destroy(d.name)
                } else {
                    port_deallocate(d.name)
                };
            }
        }
        if self.header.ool_count > 0
            && let Ok(me) = task_self()
        {
            for i in 0..self.header.ool_count as usize {
                if let Some(region) = self.ool(i).filter(|r| r.address != 0) {
                    let size = (region.size as u64).next_multiple_of(4096);
                    let _ = crate::task::vm_deallocate(me, region.address, size);
                }
            }
            let _ = port_deallocate(me);
        }
    }

    pub fn data(&self) -> &[u8] {
        let at = self.data_start();
        self.body.get(at..at + self.header.data_size as usize).unwrap_or(&[])
    }

    /// The raw trap on this buffer.
    pub fn mach_msg(
        &mut self,
        opts: u64,
        receive_name: PortName,
        timeout_ms: u64,
    ) -> Result<(), KernelError> {
        let args =
            [self as *mut Self as u64, opts, self.capacity() as u64, receive_name as u64, timeout_ms, 0];
        // SAFETY: the kernel reads the message from, and writes the received one into, this
        // buffer, within `capacity` bytes.
        into_result(unsafe { raw_syscall(trap::MACH_MSG, args) }).map(|_| ())
    }

    pub fn send(&mut self) -> Result<(), KernelError> {
        self.mach_msg(options::SEND, PORT_NULL, 0)
    }

    pub fn send_timeout(&mut self, ms: u64) -> Result<(), KernelError> {
        self.mach_msg(options::SEND | options::SEND_TIMEOUT, PORT_NULL, ms)
    }

    pub fn receive(&mut self, port: PortName) -> Result<(), KernelError> {
        self.mach_msg(options::RECEIVE, port, 0)
    }

    pub fn receive_timeout(&mut self, port: PortName, ms: u64) -> Result<(), KernelError> {
        self.mach_msg(options::RECEIVE | options::RECEIVE_TIMEOUT, port, ms)
    }

    /// A server loop's one trap: send the answer built in this buffer (when `answer`), then
    /// receive the next message on `port` into the same buffer, waiting until `deadline`
    /// (uptime in ns; at most an hour at a time) or for ever. If the answer cannot go (its
    /// caller is gone), or went and the receive failed, the receive is tried alone. Nothing
    /// carried is released: after a send the names in the message are no longer ours.
    pub fn answer_and_receive(
        &mut self,
        answer: bool,
        port: PortName,
        deadline: Option<u64>,
    ) -> Result<(), KernelError> {
        let (timeout, ms) = match deadline {
            Some(at) => (
                options::RECEIVE_TIMEOUT,
                at.saturating_sub(crate::uptime_ns()).div_ceil(1_000_000).clamp(1, 3_600_000),
            ),
            None => (0, 0),
        };
        if !answer {
            return self.mach_msg(options::RECEIVE | timeout, port, ms);
        }
        match self.mach_msg(options::SEND | options::RECEIVE | timeout, port, ms) {
            // Sent, and nothing came in time.
            Err(KernelError::TimedOut) => Err(KernelError::TimedOut),
            Err(_) => self.mach_msg(options::RECEIVE | timeout, port, ms),
            Ok(()) => Ok(()),
        }
    }

    /// Send, then receive the answer on `reply_port`, in one trap.
    pub fn call(&mut self, reply_port: PortName) -> Result<(), KernelError> {
        self.mach_msg(options::SEND | options::RECEIVE, reply_port, 0)
    }
}

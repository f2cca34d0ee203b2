//! Ports, rights and messages as user space sees them.
//!
//! A port is named in a task by a [`PortName`]. A message in user memory is a
//! [`MessageHeader`], then `port_count` [`PortDescriptor`]s, then `ool_count`
//! [`OolDescriptor`]s, then `data_size` bytes of inline data. Names follow Mach's convention: on send, `remote` is the destination and `local` the
//! reply port; on receive, `remote` is the reply right the sender attached (or 0) and `local`
//! the port the message arrived on, so that a server replies by sending the buffer back.

use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

/// A name in a task's port name space. 0 is no port; [`PORT_DEAD`] stands for a right whose
/// port died in transit.
pub type PortName = u32;
pub const PORT_NULL: PortName = 0;
pub const PORT_DEAD: PortName = u32::MAX;

/// How a right named in a message is carried (the send side). The values are Mach's.
pub mod disposition {
    /// Move the receive right (the sender loses it).
    pub const MOVE_RECEIVE: u8 = 16;
    /// Move one send reference.
    pub const MOVE_SEND: u8 = 17;
    /// Move the send-once right.
    pub const MOVE_SEND_ONCE: u8 = 18;
    /// Copy a send right the sender holds.
    pub const COPY_SEND: u8 = 19;
    /// Make a send right from the receive right the sender holds.
    pub const MAKE_SEND: u8 = 20;
    /// Make a send-once right from the receive right the sender holds.
    pub const MAKE_SEND_ONCE: u8 = 21;
}

/// The kind of right a received name carries (the receive side). Same numbers as the
/// dispositions that produce them.
pub mod received {
    pub const RECEIVE: u8 = 16;
    pub const SEND: u8 = 17;
    pub const SEND_ONCE: u8 = 18;
}

/// `mach_msg` options.
pub mod options {
    pub const SEND: u64 = 1;
    pub const RECEIVE: u64 = 2;
    /// Give up sending after the timeout (0 = do not wait for queue space).
    pub const SEND_TIMEOUT: u64 = 4;
    /// Give up receiving after the timeout (0 = poll).
    pub const RECEIVE_TIMEOUT: u64 = 8;
    /// Every option bit `mach_msg` accepts.
    pub const KNOWN: u64 = SEND | RECEIVE | SEND_TIMEOUT | RECEIVE_TIMEOUT;
}

/// Most inline data bytes one message carries.
pub const MAX_INLINE_DATA: usize = 16 * 1024;
/// Most port descriptors in one message.
pub const MAX_PORT_DESCRIPTORS: usize = 64;
/// Messages a port queues before senders wait (the default queue limit).
pub const DEFAULT_QUEUE_LIMIT: usize = 16;

#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout)]
pub struct MessageHeader {
    /// Send: the destination. Receive: the reply right attached by the sender, or 0.
    pub remote: PortName,
    /// Send: the reply port, or 0. Receive: the port (or set member) the message came from.
    pub local: PortName,
    /// Send: how `remote` is carried (COPY_SEND, MOVE_SEND, MOVE_SEND_ONCE, MAKE_SEND,
    /// MAKE_SEND_ONCE). Receive: the kind of right now named by `remote` (`received::*`).
    pub remote_disposition: u8,
    /// Send: how `local` is carried (MAKE_SEND_ONCE is the usual reply right). Receive: 0.
    pub local_disposition: u8,
    /// Number of [`PortDescriptor`]s after the header.
    pub port_count: u8,
    /// Number of [`OolDescriptor`]s after the port descriptors.
    pub ool_count: u8,
    /// The message id: what the message means to the receiver's protocol.
    pub id: u32,
    /// Inline data bytes after the descriptors.
    pub data_size: u32,
    /// Trace context (0 = not traced).
    pub trace: u32,
}

/// A right carried in the body of a message.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout)]
pub struct PortDescriptor {
    pub name: PortName,
    /// Send: a `disposition::*`. Receive: a `received::*`.
    pub disposition: u8,
    pub reserved: [u8; 3],
}

/// An out-of-line memory region carried by a message: whole pages, copied into the receiver.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout)]
pub struct OolDescriptor {
    /// Send: page-aligned start in the sender. Receive: where the copy was mapped (0 if the
    /// receiver ran out of memory for it).
    pub address: u64,
    /// Bytes (rounded up to whole pages when sent).
    pub size: u32,
    /// Send: [`ool_flags`]. Receive: 0.
    pub flags: u32,
}

pub mod ool_flags {
    /// Unmap the region from the sender once the message is queued (a move).
    pub const DEALLOCATE: u32 = 1;
}

/// Most out-of-line regions in one message, and most bytes in one region.
pub const MAX_OOL_DESCRIPTORS: usize = 16;
pub const MAX_OOL_SIZE: u32 = 64 << 20;
pub const OOL_DESCRIPTOR_SIZE: usize = core::mem::size_of::<OolDescriptor>();
const _: () = assert!(OOL_DESCRIPTOR_SIZE == 16);

pub const HEADER_SIZE: usize = core::mem::size_of::<MessageHeader>();
pub const PORT_DESCRIPTOR_SIZE: usize = core::mem::size_of::<PortDescriptor>();
const _: () = assert!(HEADER_SIZE == 24 && PORT_DESCRIPTOR_SIZE == 8);

/// The kind of right a name denotes (`port_type` trap).
pub mod right_type {
    pub const RECEIVE: u64 = 1;
    pub const SEND: u64 = 2;
    pub const SEND_ONCE: u64 = 4;
    pub const DEAD_NAME: u64 = 8;
    pub const PORT_SET: u64 = 16;
}

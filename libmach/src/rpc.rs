//! Typed RPC, Machina's MIG: a server's protocol is defined once, as Rust types.
//!
//! Each operation is a type implementing [`Rpc`]: its message id, its request type and its
//! reply type, all `serde` types encoded with `postcard` into the message's inline data.
//! Rights travel beside the data as port descriptors (a request or reply says in its docs
//! which rights it carries). Clients use [`call`]; servers read requests with
//! [`Incoming::decode`] and answer with [`reply`]. Both sides come from the same definition,
//! so they cannot disagree about ids or layouts.
//!
//! Nothing here allocates: requests and replies may borrow from the message buffer.
//! Errors never panic: a malformed message is an [`RpcError`].

use crate::ipc::{Message, MessageBuffer, PortDescriptor, PortName, disposition};
use mach_abi::KernelError;
use serde::{Deserialize, Serialize};

/// Replies carry the request's id with this bit set.
pub const REPLY_BIT: u32 = 0x8000_0000;

/// One operation of a protocol.
pub trait Rpc {
    /// The request's message id (unique within the protocol, below [`REPLY_BIT`]).
    const ID: u32;
    type Request<'a>: Serialize + Deserialize<'a>;
    type Reply<'a>: Serialize + Deserialize<'a>;
}

/// Define an operation: `rpc!(Name = id, Request<'a> => Reply<'a>);`.
#[macro_export]
macro_rules! rpc {
    ($(#[$doc:meta])* $name:ident = $id:expr, $request:ty => $reply:ty) => {
        $(#[$doc])*
        pub struct $name;
        impl $crate::rpc::Rpc for $name {
            const ID: u32 = $id;
            type Request<'a> = $request;
            type Reply<'a> = $reply;
        }
    };
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RpcError {
    /// The kernel refused the message (bad name, dead port, timeout, ...).
    Kernel(KernelError),
    /// The data did not decode as the expected type, or did not fit the buffer.
    Encoding,
    /// The answer's id is not the reply to the request made.
    UnexpectedReply(u32),
}

impl From<KernelError> for RpcError {
    fn from(e: KernelError) -> Self {
        RpcError::Kernel(e)
    }
}

/// Encode `value` as the inline data of `m`.
pub fn encode<T: Serialize, const N: usize>(
    m: &mut crate::ipc::MessageBuffer<N>,
    value: &T,
) -> Result<(), RpcError> {
    m.fill_data(|room| postcard::to_slice(value, room).map(|used| used.len()).map_err(|_| RpcError::Encoding))
}

/// Call operation `R` on `server` (a send right, copied): send the request with `rights`
/// (name, disposition) and a send-once reply right made from `reply_port`, wait for the
/// answer in `buffer` and decode it. The reply's rights are `buffer.port(i)`.
pub fn call<'b, R: Rpc>(
    server: PortName,
    request: &R::Request<'_>,
    rights: &[(PortName, u8)],
    reply_port: PortName,
    buffer: &'b mut Message,
) -> Result<R::Reply<'b>, RpcError> {
    prepare_request::<R>(server, request, rights, reply_port, buffer)?;
    buffer.call(reply_port)?;
    decode_reply::<R>(buffer)
}

/// Lay out the request of operation `R` to `server` with `rights` and a reply right made
/// from `reply_port`.
fn prepare_request<R: Rpc>(
    server: PortName,
    request: &R::Request<'_>,
    rights: &[(PortName, u8)],
    reply_port: PortName,
    buffer: &mut Message,
) -> Result<(), RpcError> {
    buffer.start(server, disposition::COPY_SEND, R::ID).reply_to(reply_port, disposition::MAKE_SEND_ONCE);
    for &(name, how) in rights {
        buffer.push_port(name, how);
    }
    encode(buffer, request)
}

/// As [`call`], but give up with `Kernel(TimedOut)` when no answer came within
/// `timeout_ms` (a server must never wait forever on another one).
pub fn call_timeout<'b, R: Rpc>(
    server: PortName,
    request: &R::Request<'_>,
    rights: &[(PortName, u8)],
    reply_port: PortName,
    buffer: &'b mut Message,
    timeout_ms: u64,
) -> Result<R::Reply<'b>, RpcError> {
    prepare_request::<R>(server, request, rights, reply_port, buffer)?;
    let opts = crate::ipc::options::SEND
        | crate::ipc::options::RECEIVE
        | crate::ipc::options::SEND_TIMEOUT
        | crate::ipc::options::RECEIVE_TIMEOUT;
    buffer.mach_msg(opts, reply_port, timeout_ms)?;
    decode_reply::<R>(buffer)
}

/// Send operation `R` one way to `to` (carried as `how`): no reply right, no answer; wait at
/// most `timeout_ms` for room in the port's queue.
pub fn send<R: Rpc>(
    buffer: &mut Message,
    to: PortName,
    how: u8,
    value: &R::Request<'_>,
    rights: &[(PortName, u8)],
    timeout_ms: u64,
) -> Result<(), RpcError> {
    buffer.start(to, how, R::ID);
    for &(name, how) in rights {
        buffer.push_port(name, how);
    }
    encode(buffer, value)?;
    buffer.send_timeout(timeout_ms).map_err(RpcError::Kernel)
}

/// Check and decode the answer to operation `R` in `buffer`.
pub fn decode_reply<R: Rpc>(buffer: &Message) -> Result<R::Reply<'_>, RpcError> {
    if buffer.header.id != R::ID | REPLY_BIT {
        return Err(RpcError::UnexpectedReply(buffer.header.id));
    }
    postcard::from_bytes(buffer.data()).map_err(|_| RpcError::Encoding)
}

/// A received request, for a server's dispatch (in a buffer of any size: a server receives
/// into a [`crate::ipc::LargestMessage`], so no request can be too large for it).
pub struct Incoming<'m, const N: usize = { crate::ipc::MESSAGE_BODY }> {
    message: &'m MessageBuffer<N>,
}

impl<'m, const N: usize> Incoming<'m, N> {
    pub fn new(message: &'m MessageBuffer<N>) -> Self {
        Incoming { message }
    }

    /// The operation's id: compare with `SomeOperation::ID`.
    pub fn id(&self) -> u32 {
        self.message.header.id
    }

    /// The send-once right to answer with (0 if the client attached none).
    pub fn reply_to(&self) -> PortName {
        self.message.header.remote
    }

    /// The `i`-th right carried by the request.
    pub fn port(&self, i: usize) -> Option<PortDescriptor> {
        self.message.port(i)
    }

    /// Decode the request as operation `R` (check `id()` first).
    pub fn decode<R: Rpc>(&self) -> Result<R::Request<'m>, RpcError> {
        if self.id() != R::ID {
            return Err(RpcError::UnexpectedReply(self.id()));
        }
        postcard::from_bytes(self.message.data()).map_err(|_| RpcError::Encoding)
    }
}

/// Answer operation `R` through `reply_to` (a send-once right from [`Incoming::reply_to`])
/// with `value` and `rights`, using `buffer`.
pub fn reply<R: Rpc>(
    buffer: &mut Message,
    reply_to: PortName,
    value: &R::Reply<'_>,
    rights: &[(PortName, u8)],
) -> Result<(), RpcError> {
    prepare_reply::<R, { crate::ipc::MESSAGE_BODY }>(buffer, reply_to, value, rights)?;
    buffer.send().map_err(RpcError::Kernel)
}

/// Lay out an answer to request `id` (one the server does not decode as an operation: an
/// unknown id, or one this port does not take) holding `value`, usually `Err::<(), _>(e)`:
/// a `Result`'s error decodes the same whatever the operation's `Ok` type.
pub fn prepare_answer<T: Serialize, const N: usize>(
    buffer: &mut MessageBuffer<N>,
    reply_to: PortName,
    id: u32,
    value: &T,
) -> Result<(), RpcError> {
    buffer.start(reply_to, disposition::MOVE_SEND_ONCE, id | REPLY_BIT);
    encode(buffer, value)
}

/// Lay out the answer to operation `R` in `buffer` without sending it: a server then sends
/// it and waits for its next request in one trap (`buffer.call(port_set)`), which the
/// kernel's fast path turns into a hand-off to the waiting client.
pub fn prepare_reply<R: Rpc, const N: usize>(
    buffer: &mut MessageBuffer<N>,
    reply_to: PortName,
    value: &R::Reply<'_>,
    rights: &[(PortName, u8)],
) -> Result<(), RpcError> {
    buffer.start(reply_to, disposition::MOVE_SEND_ONCE, R::ID | REPLY_BIT);
    for &(name, how) in rights {
        buffer.push_port(name, how);
    }
    encode(buffer, value)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::{Deserialize, Serialize};

    #[derive(Serialize, Deserialize, Debug, PartialEq)]
    pub struct Greet<'a> {
        pub name: &'a str,
        pub times: u32,
    }

    crate::rpc!(
        /// A test operation.
        SayHello = 7, Greet<'a> => Result<u64, &'a str>
    );

    #[test]
    fn requests_round_trip_through_a_message_buffer() {
        let mut m = Message::new();
        m.start(1, disposition::COPY_SEND, SayHello::ID);
        encode(&mut m, &Greet { name: "machina", times: 3 }).unwrap();
        let incoming = Incoming::new(&m);
        assert_eq!(incoming.id(), 7);
        let request = incoming.decode::<SayHello>().unwrap();
        assert_eq!(request, Greet { name: "machina", times: 3 });
    }

    #[test]
    fn malformed_data_is_an_error_not_a_panic() {
        let mut m = Message::new();
        m.start(1, disposition::COPY_SEND, SayHello::ID).set_data(&[0xff, 0xff, 0xff]);
        assert_eq!(Incoming::new(&m).decode::<SayHello>().unwrap_err(), RpcError::Encoding);
        m.start(1, disposition::COPY_SEND, 99);
        assert!(matches!(Incoming::new(&m).decode::<SayHello>(), Err(RpcError::UnexpectedReply(99))));
    }

    #[test]
    fn replies_decode_with_their_own_type() {
        let mut m = Message::new();
        let reply: Result<u64, &str> = Err("nope");
        encode(&mut m, &reply).unwrap();
        let back: Result<u64, &str> = postcard::from_bytes(m.data()).unwrap();
        assert_eq!(back, Err("nope"));
    }
}

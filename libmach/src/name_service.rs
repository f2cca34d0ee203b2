//! The name service protocol bootstrap offers on every task's bootstrap port: register a
//! send right under a name, look one up. Defined once here (see [`crate::rpc`]); bootstrap
//! serves it, everyone else calls it through [`register`] and [`look_up`].

use crate::ipc::{Message, PortName, ReceiveRight, SendRight, disposition, received, task_self};
use crate::rpc::{self, RpcError};
use mach_abi::special_port;
use serde::{Deserialize, Serialize};

/// Longest name the service keeps.
pub const MAX_NAME: usize = 48;

#[derive(Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq)]
pub enum NameError {
    NotFound,
    /// The name is taken.
    Exists,
    /// The service keeps no more names.
    TableFull,
    /// Empty, too long, or not a name.
    BadName,
    /// A register request without exactly one send right.
    NoRight,
}

#[derive(Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq)]
pub struct Name<'a> {
    pub name: &'a str,
}

crate::rpc!(
    /// Register the request's one send right (port descriptor 0) under `name`.
    Register = 1, Name<'a> => Result<(), NameError>
);
crate::rpc!(
    /// Look `name` up; on success the reply carries a send right (port descriptor 0).
    LookUp = 2, Name<'a> => Result<(), NameError>
);

/// One registered name, as `List` reports it: who provides it and in which task.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct Service<'a> {
    pub name: &'a str,
    /// The program (boot module) that registered it.
    pub program: &'a str,
    /// Its task's id (`task_id`), as the kernel log shows it.
    pub task: u64,
    /// How many times bootstrap restarted that program.
    pub restarts: u32,
}

crate::rpc!(
    /// Every registered name with its provider (no rights travel: anyone may ask).
    List = 3, () => Result<alloc::vec::Vec<Service<'a>>, NameError>
);

crate::rpc!(
    /// End the server that registered `name` (bootstrap terminates its task), if the
    /// caller's policy lets it end that one.
    End = 4, Name<'a> => Result<(), NameError>
);

/// Ask bootstrap to end the server registered under `name`.
pub fn end(name: &str) -> Result<(), Error> {
    let server = service()?;
    let reply = ReceiveRight::allocate().map_err(|e| Error::Rpc(e.into()))?;
    let mut m = Message::new();
    rpc::call::<End>(server.name(), &Name { name }, &[], reply.name(), &mut m)?.map_err(Error::Name)
}

/// The registered names, their programs and tasks.
pub fn list(buffer: &mut Message) -> Result<alloc::vec::Vec<Service<'_>>, Error> {
    let service = service()?;
    let reply = ReceiveRight::allocate().map_err(|e| Error::Rpc(RpcError::Kernel(e)))?;
    rpc::call::<List>(service.name(), &(), &[], reply.name(), buffer)?.map_err(Error::Name)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Error {
    Rpc(RpcError),
    Name(NameError),
    /// The task has no bootstrap port.
    NoService,
}

impl From<RpcError> for Error {
    fn from(e: RpcError) -> Self {
        Error::Rpc(e)
    }
}

/// A send right to this task's name service.
pub fn service() -> Result<SendRight, Error> {
    let me = task_self().map_err(|e| Error::Rpc(e.into()))?;
    match crate::task::task_get_special_port(me, special_port::BOOTSTRAP) {
        Ok(0) | Err(_) => Err(Error::NoService),
        Ok(name) => Ok(SendRight::from_name(name)),
    }
}

/// Register a copy of the send right `port` under `name`.
pub fn register(name: &str, port: PortName) -> Result<(), Error> {
    let server = service()?;
    let reply = ReceiveRight::allocate().map_err(|e| Error::Rpc(e.into()))?;
    let mut m = Message::new();
    let answer = rpc::call::<Register>(
        server.name(),
        &Name { name },
        &[(port, disposition::COPY_SEND)],
        reply.name(),
        &mut m,
    )?;
    answer.map_err(Error::Name)
}

/// A new service port in port set `set`, registered under `name`: what a server offers
/// others. Registering may be refused (bootstrap's policy): the port is kept and the reason
/// given, so that the server can go on without offering it.
pub fn offer(name: &str, set: PortName) -> Result<(ReceiveRight, Result<(), Error>), crate::KernelError> {
    let service = ReceiveRight::allocate()?;
    crate::ipc::port_move_member(service.name(), set)?;
    let send = crate::ipc::port_make_send(service.name())?;
    let registered = register(name, send);
    let _ = crate::ipc::port_deallocate(send);
    Ok((service, registered))
}

/// Look up the send right registered under `name`.
pub fn look_up(name: &str) -> Result<SendRight, Error> {
    let server = service()?;
    let reply = ReceiveRight::allocate().map_err(|e| Error::Rpc(e.into()))?;
    let mut m = Message::new();
    rpc::call::<LookUp>(server.name(), &Name { name }, &[], reply.name(), &mut m)?.map_err(Error::Name)?;
    match m.port(0) {
        Some(d) if d.disposition == received::SEND => Ok(SendRight::from_name(d.name)),
        _ => Err(Error::Rpc(RpcError::Encoding)),
    }
}

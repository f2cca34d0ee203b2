//! Cases for tasks started by bootstrap: its name service, and RPC between two tasks that
//! find each other through it (`echo-server` in one task, `echo-client` in another).

use crate::check;
use crate::ipc_cases::{ECHO, QUIT, echo_call, echo_server_loop};
use libmach::ipc::*;
use libmach::name_service::{self, Error, NameError};

pub fn names() -> Result<(), &'static str> {
    let port = ReceiveRight::allocate().map_err(|_| "allocate")?;
    let send = port.make_send().map_err(|_| "make_send")?;
    name_service::register("test.names", send.name()).map_err(|_| "register")?;
    let found = name_service::look_up("test.names").map_err(|_| "look_up")?;
    check(found.name() == port.name(), "the looked-up right names our port")?;
    check(
        name_service::register("test.names", send.name()) == Err(Error::Name(NameError::Exists)),
        "name taken",
    )?;
    check(
        name_service::look_up("no.such.name").err() == Some(Error::Name(NameError::NotFound)),
        "unknown name",
    )?;
    check(name_service::register("", send.name()) == Err(Error::Name(NameError::BadName)), "empty name")?;
    let long = "a-name-that-is-much-longer-than-the-name-service-allows-to-keep";
    check(
        name_service::register(long, send.name()) == Err(Error::Name(NameError::BadName)),
        "name too long",
    )?;
    Ok(())
}

/// Register "test.echo" and serve it until a QUIT request.
pub fn echo_server() -> Result<(), &'static str> {
    let port = ReceiveRight::allocate().map_err(|_| "allocate")?;
    let send = port.make_send().map_err(|_| "make_send")?;
    name_service::register("test.echo", send.name()).map_err(|_| "register test.echo")?;
    echo_server_loop(port.name());
    Ok(())
}

/// Find "test.echo" (waiting up to 5 s for it to appear), call it from this task, stop it.
pub fn echo_client() -> Result<(), &'static str> {
    let mut server = None;
    for _ in 0..500 {
        match name_service::look_up("test.echo") {
            Ok(right) => {
                server = Some(right);
                break;
            }
            Err(Error::Name(NameError::NotFound)) => sleep_ms(10),
            Err(_) => return Err("look_up failed"),
        }
    }
    let server = server.ok_or("test.echo never registered")?;
    let reply = ReceiveRight::allocate().map_err(|_| "allocate")?;
    let m = echo_call(server.name(), reply.name(), ECHO, b"across tasks")?;
    check(m.data() == b"sksat ssorca", "echo between two tasks")?;
    let m = echo_call(server.name(), reply.name(), QUIT, b"")?;
    check(m.header.id == QUIT + 1, "server stopped")
}

/// Started beside the servers as a program bootstrap's policy grants nothing: every private
/// name is `NotFound` to it, no provided name can be registered by it, and the public
/// `console` is there (once the console server is up).
pub fn private_names() -> Result<(), &'static str> {
    for private in ["host", "blk", "blk.control", "fs"] {
        check(
            name_service::look_up(private).err() == Some(Error::Name(NameError::NotFound)),
            "a private name is not handed to an unprivileged program",
        )?;
    }
    let port = ReceiveRight::allocate().map_err(|_| "allocate")?;
    let send = port.make_send().map_err(|_| "make_send")?;
    for provided in ["blk", "blk.control", "fs", "console", "host"] {
        check(
            name_service::register(provided, send.name()) == Err(Error::Name(NameError::NoRight)),
            "a server's name cannot be taken by another program",
        )?;
    }
    let mut console = None;
    for _ in 0..2000 {
        if let Ok(right) = name_service::look_up("console") {
            console = Some(right);
            break;
        }
        sleep_ms(10);
    }
    check(console.is_some(), "the console is public")
}

//! The Unix personality's `unix` service: a pipe whose ends are `io` ports, as another
//! personality gets them. A write is read back; a read of an empty pipe waits (its answer
//! comes with the next write); a nonblocking one answers WouldBlock; the wrong request on an
//! end is refused; the end of the last writer gives end of file, and of the last reader
//! BrokenPipe.

use crate::client::Client;
use crate::{Outcome, check};
use alloc::format;
use interfaces::{Bytes, Error, io, unix};
use libmach::ipc::{Message, ReceiveRight, SendRight, disposition, received};
use libmach::{name_service, rpc};

pub fn pipes() -> Outcome {
    let service = name_service::look_up("unix").map_err(|e| format!("look up unix: {e:?}"))?;
    let reply = ReceiveRight::allocate().map_err(|_| "port")?;
    let mut m = Message::new();
    rpc::call_timeout::<unix::MakePipe>(service.name(), &(), &[], reply.name(), &mut m, 10_000)
        .map_err(|e| format!("unix.pipe: {e:?}"))?
        .map_err(|e| format!("unix.pipe: {e:?}"))?;
    let (read_end, write_end) = match (m.port(0), m.port(1)) {
        (Some(r), Some(w)) if r.disposition == received::SEND && w.disposition == received::SEND => {
            (SendRight::from_name(r.name), SendRight::from_name(w.name))
        }
        _ => return Err("no pipe ends in the answer".into()),
    };
    let mut c = Client::new();
    check(c.write_at(write_end.name(), None, b"through a pipe") == Ok(14), "write 14 bytes")?;
    check(c.read_at(read_end.name(), None, 64).as_deref() == Ok(&b"through a pipe"[..]), "read them back")?;
    check(c.read_at(write_end.name(), None, 1) == Err(Error::BadFile), "no read on the write end")?;
    check(c.write_at(read_end.name(), None, b"x") == Err(Error::BadFile), "no write on the read end")?;
    check(c.write_at(write_end.name(), Some(0), b"x") == Err(Error::IllegalSeek), "no offsets")?;
    check(c.stat(read_end.name()).is_ok_and(|s| s.mode & io::mode::TYPE_MASK == io::mode::FIFO), "a FIFO")?;
    let nonblocking = io::ReadRequest { count: 1, at: None, nonblocking: true };
    let answer =
        rpc::call_timeout::<io::Read>(read_end.name(), &nonblocking, &[], reply.name(), &mut m, 10_000)
            .map_err(|e| format!("nonblocking read: {e:?}"))?
            .map(|b| b.len());
    check(answer == Err(Error::WouldBlock), "an empty pipe answers a nonblocking read WouldBlock")?;

    // A read that waits: sent now, answered by the write that follows.
    let waiting = ReceiveRight::allocate().map_err(|_| "port")?;
    let mut r = Message::new();
    r.start(read_end.name(), disposition::COPY_SEND, <io::Read as rpc::Rpc>::ID)
        .reply_to(waiting.name(), disposition::MAKE_SEND_ONCE);
    rpc::encode(&mut r, &io::ReadRequest { count: 16, at: None, nonblocking: false })
        .map_err(|_| "encode")?;
    r.send_timeout(1000).map_err(|_| "send the waiting read")?;
    check(r.receive_timeout(waiting.name(), 50).is_err(), "the read waits while the pipe is empty")?;
    check(c.write_at(write_end.name(), None, b"late") == Ok(4), "the late write")?;
    r.receive_timeout(waiting.name(), 10_000).map_err(|_| "the waiting read was never answered")?;
    let got = rpc::decode_reply::<io::Read>(&r).map_err(|e| format!("decode: {e:?}"))?;
    check(got == Ok(Bytes(b"late")), "the waiting read got the late write")?;

    // The last writer goes: end of file. A new pipe: the last reader goes: BrokenPipe.
    drop(write_end);
    check(
        c.read_at(read_end.name(), None, 8) == Ok(alloc::vec::Vec::new()),
        "end of file once no writer is left",
    )?;
    rpc::call_timeout::<unix::MakePipe>(service.name(), &(), &[], reply.name(), &mut m, 10_000)
        .map_err(|e| format!("unix.pipe: {e:?}"))?
        .map_err(|e| format!("unix.pipe: {e:?}"))?;
    let (read_end, write_end) = match (m.port(0), m.port(1)) {
        (Some(r), Some(w)) => (SendRight::from_name(r.name), SendRight::from_name(w.name)),
        _ => return Err("no pipe ends in the second answer".into()),
    };
    drop(read_end);
    check(
        c.write_at(write_end.name(), None, b"nobody") == Err(Error::BrokenPipe),
        "BrokenPipe with no reader",
    )?;
    Ok(())
}

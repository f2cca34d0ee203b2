//! fs-server's connection to the block server: the ext2 code's `BlockDevice`, spoken over the
//! `blk` protocol.
//!
//! It survives a driver restart: a call that fails because the driver's port died (or gave
//! no answer in time) makes it look the block server up again by name, waiting until the
//! restarted driver has registered, and retry the same request, so the file system above
//! sees no error. A request the driver answered with an error is not retried.
//!
//! It must never wait forever: every call has a timeout, and the look-up gives up after
//! [`RECONNECT_LIMIT_MS`].

use fs_server::ext2::{BlockDevice, IoError};
use interfaces::blk::{self, Data, INLINE_LIMIT, MAX_TRANSFER, SECTOR_SIZE};
use libmach::ipc::{Message, PortName, ReceiveRight, SendRight, port_deallocate};
use libmach::rpc::{self, RpcError};
use libmach::task::vm_deallocate;
use libmach::{KernelError, println};

/// How long one request may take before the driver is taken for dead.
const CALL_TIMEOUT_MS: u64 = 10_000;
/// How long to wait for a restarted driver to register again.
const RECONNECT_LIMIT_MS: u64 = 30_000;

pub struct BlockClient {
    server: SendRight,
    reply: ReceiveRight,
    buffer: alloc::boxed::Box<Message>,
    /// Page-aligned room for out-of-line writes.
    bounce: u64,
    pub sectors: u64,
    /// Times the driver was found dead and looked up again.
    pub reconnects: u64,
}

/// Why a call failed: the driver is gone (look it up again and retry), or it said no.
enum Failure {
    DriverGone,
    Refused,
}

fn classify(e: RpcError) -> Failure {
    match e {
        RpcError::Kernel(
            KernelError::InvalidName
            | KernelError::InvalidRight
            | KernelError::PortDead
            | KernelError::TimedOut,
        ) => Failure::DriverGone,
        // The driver died holding the request: the kernel's send-once notification came
        // instead of the answer.
        RpcError::UnexpectedReply(mach_abi::notify::SEND_ONCE_MESSAGE) => Failure::DriverGone,
        _ => Failure::Refused,
    }
}

fn look_up_driver() -> Option<SendRight> {
    let mut waited = 0;
    loop {
        if let Ok(right) = libmach::name_service::look_up("blk") {
            return Some(right);
        }
        if waited >= RECONNECT_LIMIT_MS {
            return None;
        }
        libmach::ipc::sleep_ms(10);
        waited += 10;
    }
}

impl BlockClient {
    /// Find the block server (waiting for it to register) and ask the disk's size.
    pub fn connect() -> Result<BlockClient, &'static str> {
        let server = look_up_driver().ok_or("no block server registered")?;
        let reply = ReceiveRight::allocate().map_err(|_| "no ports")?;
        let me = libmach::ipc::task_self().map_err(|_| "task_self")?;
        let bounce = libmach::task::vm_allocate(me, 0, MAX_TRANSFER as u64, mach_abi::protection::WRITE)
            .map_err(|_| "no memory for transfers")?;
        let _ = port_deallocate(me);
        let mut client = BlockClient {
            server,
            reply,
            buffer: alloc::boxed::Box::new(Message::new()),
            bounce,
            sectors: 0,
            reconnects: 0,
        };
        let geometry = client.with_retry(|c| c.call::<blk::Info>(&()));
        client.sectors = geometry.map_err(|_| "the block server gave no geometry")?.sectors;
        Ok(client)
    }

    /// One call of operation `R` (whose answer is a `Result`) to the driver, with the
    /// timeout; the answer's value, or why there was none.
    fn call<R>(&mut self, request: &R::Request<'_>) -> Result<<R as OwnedAnswer>::Value, Failure>
    where
        R: rpc::Rpc + OwnedAnswer,
    {
        let answer = rpc::call_timeout::<R>(
            self.server.name(),
            request,
            &[],
            self.reply.name(),
            &mut self.buffer,
            CALL_TIMEOUT_MS,
        )
        .map_err(classify)?;
        R::value(answer).ok_or(Failure::Refused)
    }

    /// Run `call`; when the driver is gone, look it up again and run it again.
    fn with_retry<T>(&mut self, mut call: impl FnMut(&mut Self) -> Result<T, Failure>) -> Result<T, IoError> {
        loop {
            match call(self) {
                Ok(value) => return Ok(value),
                Err(Failure::Refused) => return Err(IoError),
                Err(Failure::DriverGone) => {
                    println!("block server gone; looking it up again");
                    let started = libmach::uptime_ns();
                    let Some(server) = look_up_driver() else {
                        println!("no block server came back");
                        return Err(IoError);
                    };
                    // A new reply port: an answer the dead driver may have left is not ours.
                    self.reply = ReceiveRight::allocate().map_err(|_| IoError)?;
                    self.server = server;
                    self.reconnects += 1;
                    let waited_ms = (libmach::uptime_ns() - started) / 1_000_000;
                    println!(
                        "block server back after {waited_ms} ms; retrying (reconnect {})",
                        self.reconnects
                    );
                }
            }
        }
    }

    fn read_chunk(&mut self, sector: u64, out: &mut [u8]) -> Result<(), Failure> {
        let request = blk::ReadRequest { sector, count: (out.len() / SECTOR_SIZE) as u32 };
        let server = self.server.name();
        let reply = self.reply.name();
        let data =
            rpc::call_timeout::<blk::Read>(server, &request, &[], reply, &mut self.buffer, CALL_TIMEOUT_MS)
                .map_err(classify)?
                .map_err(|_| Failure::Refused)?;
        match data {
            Data::Inline(bytes) if bytes.len() == out.len() => {
                out.copy_from_slice(bytes.0);
                Ok(())
            }
            Data::OutOfLine(size) if size as usize == out.len() => {
                let region = self.buffer.ool(0).ok_or(Failure::Refused)?;
                if region.address == 0 || (region.size as usize) < out.len() {
                    return Err(Failure::Refused);
                }
                // SAFETY: the kernel mapped the region's `size` bytes at `address` in this
                // task for this message; it is unmapped right after the copy.
                let bytes = unsafe { core::slice::from_raw_parts(region.address as *const u8, out.len()) };
                out.copy_from_slice(bytes);
                let _ = unmap(region.address, region.size as u64);
                Ok(())
            }
            _ => Err(Failure::Refused),
        }
    }

    fn write_chunk(&mut self, sector: u64, data: &[u8]) -> Result<(), Failure> {
        let server = self.server.name();
        let reply = self.reply.name();
        let buffer = &mut self.buffer;
        let rights: &[(PortName, u8)] = &[];
        let answer = if data.len() <= INLINE_LIMIT {
            let request = blk::WriteRequest { sector, data: Data::Inline(interfaces::Bytes(data)) };
            rpc::call_timeout::<blk::Write>(server, &request, rights, reply, buffer, CALL_TIMEOUT_MS)
        } else {
            // SAFETY: `bounce` is MAX_TRANSFER bytes this client mapped for itself, and
            // `data` is at most that long (callers split larger writes).
            let room = unsafe { core::slice::from_raw_parts_mut(self.bounce as *mut u8, data.len()) };
            room.copy_from_slice(data);
            let request = blk::WriteRequest { sector, data: Data::OutOfLine(data.len() as u32) };
            buffer.start(server, libmach::ipc::disposition::COPY_SEND, <blk::Write as rpc::Rpc>::ID);
            buffer.reply_to(reply, libmach::ipc::disposition::MAKE_SEND_ONCE);
            buffer.push_ool(self.bounce, data.len() as u32, 0);
            rpc::encode(&mut **buffer, &request).map_err(|_| Failure::Refused)?;
            let opts = libmach::ipc::options::SEND
                | libmach::ipc::options::RECEIVE
                | libmach::ipc::options::SEND_TIMEOUT
                | libmach::ipc::options::RECEIVE_TIMEOUT;
            buffer
                .mach_msg(opts, reply, CALL_TIMEOUT_MS)
                .map_err(RpcError::Kernel)
                .and_then(|()| rpc::decode_reply::<blk::Write>(buffer))
        };
        answer.map_err(classify)?.map_err(|_| Failure::Refused)
    }
}

/// Operations whose answer is a `Result` owning its value (no borrowed bytes): Info, Flush.
trait OwnedAnswer: rpc::Rpc {
    type Value;
    fn value(answer: Self::Reply<'_>) -> Option<Self::Value>;
}

impl OwnedAnswer for blk::Info {
    type Value = blk::Geometry;
    fn value(answer: Result<blk::Geometry, interfaces::Error>) -> Option<blk::Geometry> {
        answer.ok()
    }
}

impl OwnedAnswer for blk::Flush {
    type Value = ();
    fn value(answer: Result<(), interfaces::Error>) -> Option<()> {
        answer.ok()
    }
}

fn unmap(address: u64, size: u64) -> Result<(), KernelError> {
    let me = libmach::ipc::task_self()?;
    let result = vm_deallocate(me, address, size.next_multiple_of(4096));
    let _ = port_deallocate(me);
    result
}

impl BlockDevice for BlockClient {
    fn read(&mut self, sector: u64, buf: &mut [u8]) -> Result<(), IoError> {
        let mut sector = sector;
        for chunk in buf.chunks_mut(MAX_TRANSFER) {
            self.with_retry(|c| c.read_chunk(sector, chunk))?;
            sector += (chunk.len() / SECTOR_SIZE) as u64;
        }
        Ok(())
    }

    fn write(&mut self, sector: u64, buf: &[u8]) -> Result<(), IoError> {
        let mut sector = sector;
        for chunk in buf.chunks(MAX_TRANSFER) {
            self.with_retry(|c| c.write_chunk(sector, chunk))?;
            sector += (chunk.len() / SECTOR_SIZE) as u64;
        }
        Ok(())
    }

    fn flush(&mut self) -> Result<(), IoError> {
        self.with_retry(|c| c.call::<blk::Flush>(&()))
    }
}

//! In-guest IPC cases: RPC between threads, every right transfer, port sets, timeouts,
//! queue limits, dead names, port death waking a receiver, bad arguments to every IPC trap.

use crate::check;
use core::sync::atomic::{AtomicI64, AtomicU32, Ordering};
use libmach::KernelError;
use libmach::ipc::*;

const STACK_SIZE: usize = 64 * 1024;
#[repr(C, align(16))]
struct Stacks([[u8; STACK_SIZE]; 4]);
static mut STACKS: Stacks = Stacks([[0; STACK_SIZE]; 4]);

/// Top of helper-thread stack `i` (each case uses its own slot).
pub(crate) fn stack_top(i: usize) -> u64 {
    // SAFETY: only the address is taken; each slot is used by at most one live thread.
    let base = unsafe { core::ptr::addr_of!(STACKS.0[i]) } as u64;
    base + STACK_SIZE as u64 - 8
}

pub(crate) fn spawn(entry: extern "C" fn(u64) -> !, slot: usize, arg: u64) -> Result<(), &'static str> {
    let task = task_self().map_err(|_| "task_self failed")?;
    thread_create(task, entry, stack_top(slot), arg).map_err(|_| "thread_create failed")?;
    Ok(())
}

/// Message ids of the echo protocol.
pub(crate) const ECHO: u32 = 100;
pub(crate) const QUIT: u32 = 101;

/// Echo server thread: see [`echo_server_loop`].
extern "C" fn echo_server(port: u64) -> ! {
    echo_server_loop(port as PortName);
    thread_exit()
}

/// Turn the request in `m` into its echo (data reversed, id + 1, to its reply right);
/// returns the request's id.
fn make_echo(m: &mut Message) -> u32 {
    let id = m.header.id;
    let mut data = [0u8; 8192];
    let n = m.data().len();
    data[..n].copy_from_slice(m.data());
    data[..n].reverse();
    let reply = m.header.remote;
    m.start(reply, disposition::MOVE_SEND_ONCE, id + 1).set_data(&data[..n]);
    id
}

/// Answer each request with its echo; return after QUIT.
pub(crate) fn echo_server_loop(port: PortName) {
    let mut m = Message::new();
    while m.receive(port).is_ok() {
        let id = make_echo(&mut m);
        let _ = m.send();
        if id == QUIT {
            return;
        }
    }
}

/// The echo server as servers run: waiting on a port set, each answer sent and the next
/// request received in one trap (the fast path's hand-off both ways).
extern "C" fn set_echo_server(set: u64) -> ! {
    let set = set as PortName;
    let mut m = Message::new();
    let mut received = m.receive(set).is_ok();
    while received {
        if make_echo(&mut m) == QUIT {
            let _ = m.send();
            break;
        }
        received = m.mach_msg(options::SEND | options::RECEIVE, set, 0).is_ok();
    }
    thread_exit()
}

pub(crate) fn echo_call(
    server: PortName,
    reply: PortName,
    id: u32,
    data: &[u8],
) -> Result<Message, &'static str> {
    let mut m = Message::new();
    m.start(server, disposition::COPY_SEND, id).reply_to(reply, disposition::MAKE_SEND_ONCE).set_data(data);
    m.call(reply).map_err(|_| "rpc call failed")?;
    Ok(m)
}

pub fn rpc() -> Result<(), &'static str> {
    let server = ReceiveRight::allocate().map_err(|_| "port_allocate failed")?;
    let send = server.make_send().map_err(|_| "make_send failed")?;
    let reply = ReceiveRight::allocate().map_err(|_| "port_allocate failed")?;
    spawn(echo_server, 0, server.name() as u64)?;
    let m = echo_call(send.name(), reply.name(), ECHO, b"hello")?;
    check(m.header.id == ECHO + 1, "reply id")?;
    check(m.data() == b"olleh", "reply data")?;
    check(m.header.local == reply.name(), "reply arrived on the reply port")?;
    check(port_type(reply.name()) == Ok(right_type::RECEIVE), "the send-once reply right was used up")?;
    // 8 KiB inline each way.
    let mut big = [0u8; 8192];
    for (i, b) in big.iter_mut().enumerate() {
        *b = (i * 7 % 251) as u8;
    }
    let m = echo_call(send.name(), reply.name(), ECHO, &big)?;
    big.reverse();
    check(m.data() == &big[..], "8 KiB echo")?;
    let m = echo_call(send.name(), reply.name(), QUIT, b"")?;
    check(m.header.id == QUIT + 1, "quit acknowledged")
}

/// Send a message to ourselves carrying `(name, how)` and return what arrived.
fn carry(port: &ReceiveRight, name: PortName, how: u8) -> Result<PortDescriptor, KernelError> {
    let mut m = Message::new();
    m.start(port.name(), disposition::MAKE_SEND, 1).push_port(name, how);
    m.send()?;
    m.receive(port.name())?;
    m.port(0).ok_or(KernelError::InvalidArgument)
}

pub fn rights() -> Result<(), &'static str> {
    let inbox = ReceiveRight::allocate().map_err(|_| "allocate")?;
    let p = ReceiveRight::allocate().map_err(|_| "allocate")?;

    // make-send: a send right appears under the receive right's name.
    let d = carry(&inbox, p.name(), disposition::MAKE_SEND).map_err(|_| "make-send carry")?;
    check(
        d.disposition == received::SEND && d.name == p.name(),
        "make-send arrives as send under the same name",
    )?;
    check(port_type(p.name()) == Ok(right_type::RECEIVE | right_type::SEND), "receive+send")?;
    // copy-send: the sender keeps its reference; the received one adds another.
    let d = carry(&inbox, p.name(), disposition::COPY_SEND).map_err(|_| "copy-send carry")?;
    check(d.disposition == received::SEND, "copy-send arrives as send")?;
    // move-send: one reference moves out and comes back.
    let d = carry(&inbox, p.name(), disposition::MOVE_SEND).map_err(|_| "move-send carry")?;
    check(d.disposition == received::SEND, "move-send arrives as send")?;
    // Two references now: dropping both leaves the receive right only.
    port_deallocate(p.name()).map_err(|_| "deallocate 1")?;
    port_deallocate(p.name()).map_err(|_| "deallocate 2")?;
    check(port_type(p.name()) == Ok(right_type::RECEIVE), "send references released")?;
    check(port_deallocate(p.name()) == Err(KernelError::InvalidRight), "no send reference left")?;

    // make-send-once: a new name each time; move-send-once moves it.
    let once = carry(&inbox, p.name(), disposition::MAKE_SEND_ONCE).map_err(|_| "make-send-once carry")?;
    check(once.disposition == received::SEND_ONCE && once.name != p.name(), "send-once has its own name")?;
    let moved = carry(&inbox, once.name, disposition::MOVE_SEND_ONCE).map_err(|_| "move-send-once carry")?;
    check(moved.disposition == received::SEND_ONCE, "move-send-once arrives as send-once")?;
    check(port_type(moved.name) == Ok(right_type::SEND_ONCE), "send-once type")?;
    check(port_type(once.name).is_err() || once.name == moved.name, "the old send-once name is gone")?;
    port_deallocate(moved.name).map_err(|_| "deallocate send-once")?;

    // move-receive: the receive right travels; the port keeps working under the new name.
    let name = p.into_name();
    let d = carry(&inbox, name, disposition::MOVE_RECEIVE).map_err(|_| "move-receive carry")?;
    check(d.disposition == received::RECEIVE, "move-receive arrives as receive")?;
    check(port_type(d.name) == Ok(right_type::RECEIVE), "receive right under the new name")?;
    port_destroy(d.name).map_err(|_| "destroy moved port")?;
    // Wrong dispositions and missing rights.
    check(
        carry(&inbox, inbox.name(), 77) == Err(KernelError::InvalidDisposition),
        "bad disposition refused",
    )?;
    check(
        carry(&inbox, inbox.name(), disposition::COPY_SEND) == Err(KernelError::InvalidRight),
        "copy-send without a send right",
    )?;
    Ok(())
}

pub fn port_sets() -> Result<(), &'static str> {
    let set = port_allocate_set().map_err(|_| "allocate set")?;
    let a = ReceiveRight::allocate().map_err(|_| "allocate")?;
    let b = ReceiveRight::allocate().map_err(|_| "allocate")?;
    port_move_member(a.name(), set).map_err(|_| "add a")?;
    port_move_member(b.name(), set).map_err(|_| "add b")?;
    check(port_type(set) == Ok(right_type::PORT_SET), "set type")?;
    let mut m = Message::new();
    m.start(b.name(), disposition::MAKE_SEND, 7).set_data(b"via b");
    m.send().map_err(|_| "send to b")?;
    let mut r = Message::new();
    r.receive_timeout(set, 0).map_err(|_| "receive on the set")?;
    check(r.header.local == b.name() && r.data() == b"via b", "message names its member port")?;
    check(r.receive_timeout(set, 0) == Err(KernelError::TimedOut), "set empty again")?;
    port_move_member(b.name(), PORT_NULL).map_err(|_| "remove b")?;
    m.start(b.name(), disposition::MAKE_SEND, 8);
    m.send().map_err(|_| "send to b again")?;
    check(r.receive_timeout(set, 0) == Err(KernelError::TimedOut), "b left the set")?;
    check(port_move_member(set, set) == Err(KernelError::InvalidRight), "a set is not a member")?;
    port_destroy(set).map_err(|_| "destroy set")
}

pub fn timeouts() -> Result<(), &'static str> {
    let p = ReceiveRight::allocate().map_err(|_| "allocate")?;
    let mut m = Message::new();
    check(m.receive_timeout(p.name(), 0) == Err(KernelError::TimedOut), "poll on an empty port")?;
    check(m.receive_timeout(p.name(), 30) == Err(KernelError::TimedOut), "30 ms receive timeout")?;
    // The queue limit: two messages fit, the third waits or times out.
    port_set_queue_limit(p.name(), 2).map_err(|_| "set queue limit")?;
    check(port_set_queue_limit(p.name(), 0) == Err(KernelError::InvalidArgument), "limit 0 refused")?;
    for i in 0..2 {
        m.start(p.name(), disposition::MAKE_SEND, i);
        m.send_timeout(0).map_err(|_| "send within the limit")?;
    }
    m.start(p.name(), disposition::MAKE_SEND, 2);
    check(m.send_timeout(0) == Err(KernelError::TimedOut), "full queue, no wait")?;
    check(m.send_timeout(20) == Err(KernelError::TimedOut), "full queue, 20 ms wait")?;
    let mut r = Message::new();
    r.receive(p.name()).map_err(|_| "receive 0")?;
    check(r.header.id == 0, "FIFO order")?;
    m.start(p.name(), disposition::MAKE_SEND, 2);
    m.send_timeout(0).map_err(|_| "room again after a receive")?;
    // Full again; a message sent with a send-once right is never held back.
    m.start(p.name(), disposition::MAKE_SEND, 3);
    check(m.send_timeout(0) == Err(KernelError::TimedOut), "full again")?;
    m.start(p.name(), disposition::MAKE_SEND_ONCE, 4);
    m.send_timeout(0).map_err(|_| "a send-once message passes the limit")?;
    for id in [1, 2, 4] {
        r.receive_timeout(p.name(), 0).map_err(|_| "drain")?;
        check(r.header.id == id, "the send-once message queued last")?;
    }
    // A sender blocked on a full queue goes on when a receive makes room.
    port_set_queue_limit(p.name(), 1).map_err(|_| "limit 1")?;
    m.start(p.name(), disposition::MAKE_SEND, 5);
    m.send_timeout(0).map_err(|_| "fill the queue")?;
    ROOM_MAKER_DONE.store(0, Ordering::SeqCst);
    spawn(delayed_receiver, 3, p.name() as u64)?;
    m.start(p.name(), disposition::MAKE_SEND, 6);
    m.send().map_err(|_| "a blocked send after room was made")?;
    check(ROOM_MAKER_DONE.load(Ordering::SeqCst) == 5, "the send waited for the receive that made room")?;
    r.receive_timeout(p.name(), 0).map_err(|_| "the message that waited")?;
    check(r.header.id == 6, "the waiting message was queued")?;
    // Raising the limit lets a blocked sender go on too.
    m.start(p.name(), disposition::MAKE_SEND, 7);
    m.send_timeout(0).map_err(|_| "fill the queue again")?;
    spawn(limit_raiser, 3, p.name() as u64)?;
    m.start(p.name(), disposition::MAKE_SEND, 8);
    m.send_timeout(2000).map_err(|_| "a blocked send after the limit was raised")?;
    for id in [7, 8] {
        r.receive_timeout(p.name(), 0).map_err(|_| "drain after the raise")?;
        check(r.header.id == id, "both messages queued after the raise")?;
    }
    sleep_ms(1);
    Ok(())
}

/// Sleep 30 ms, then raise `port`'s queue limit to 4.
extern "C" fn limit_raiser(port: u64) -> ! {
    sleep_ms(30);
    let _ = port_set_queue_limit(port as PortName, 4);
    thread_exit()
}

/// The id the delayed receiver got (0 until it received).
static ROOM_MAKER_DONE: AtomicU32 = AtomicU32::new(0);

/// Sleep 30 ms, then receive one message from `port` (making room in its queue).
extern "C" fn delayed_receiver(port: u64) -> ! {
    sleep_ms(30);
    let mut m = Message::new();
    if m.receive_timeout(port as PortName, 1000).is_ok() {
        ROOM_MAKER_DONE.store(m.header.id, Ordering::SeqCst);
    }
    thread_exit()
}

static WAITER_RESULT: AtomicI64 = AtomicI64::new(1);
static WAITER_PORT: AtomicU32 = AtomicU32::new(0);

extern "C" fn blocked_receiver(port: u64) -> ! {
    let mut m = Message::new();
    let result = match m.receive(port as PortName) {
        Ok(()) => 0,
        Err(e) => e as i64,
    };
    WAITER_RESULT.store(result, Ordering::SeqCst);
    thread_exit()
}

pub fn dead_names() -> Result<(), &'static str> {
    // A send-once right to a port that dies becomes a dead name.
    let inbox = ReceiveRight::allocate().map_err(|_| "allocate")?;
    let q = ReceiveRight::allocate().map_err(|_| "allocate")?;
    let once = carry(&inbox, q.name(), disposition::MAKE_SEND_ONCE).map_err(|_| "carry")?;
    drop(q);
    check(port_type(once.name) == Ok(right_type::DEAD_NAME), "send-once became a dead name")?;
    let mut m = Message::new();
    m.start(once.name, disposition::MOVE_SEND_ONCE, 1);
    check(m.send() == Err(KernelError::PortDead), "sending to a dead name")?;
    port_deallocate(once.name).map_err(|_| "deallocate dead name")?;
    check(port_type(once.name) == Err(KernelError::InvalidName), "dead name released")?;

    // A thread blocked receiving on a port wakes with PortDead when the port is destroyed.
    let p = port_allocate().map_err(|_| "allocate")?;
    WAITER_PORT.store(p, Ordering::SeqCst);
    spawn(blocked_receiver, 1, p as u64)?;
    sleep_ms(30);
    check(WAITER_RESULT.load(Ordering::SeqCst) == 1, "receiver should still be blocked")?;
    port_destroy(p).map_err(|_| "destroy")?;
    sleep_ms(30);
    check(
        WAITER_RESULT.load(Ordering::SeqCst) == KernelError::PortDead as i64,
        "blocked receiver woke with PortDead",
    )
}

pub fn bad_arguments() -> Result<(), &'static str> {
    let p = ReceiveRight::allocate().map_err(|_| "allocate")?;
    let raw = |buffer: u64, opts: u64, size: u64, name: u64| {
        // SAFETY: deliberately bad arguments; the kernel must refuse them.
        let r = unsafe { libmach::raw_syscall(mach_abi::trap::MACH_MSG, [buffer, opts, size, name, 0, 0]) };
        KernelError::from_return(r)
    };
    check(raw(0, options::SEND, 0, 0) == Some(KernelError::InvalidAddress), "null buffer")?;
    check(
        raw(0xffff_ffff_8000_0000, options::SEND, 0, 0) == Some(KernelError::InvalidAddress),
        "kernel buffer",
    )?;
    check(raw(0, 0, 0, 0) == Some(KernelError::InvalidArgument), "no send or receive option")?;
    check(raw(0, 1 << 20, 0, 0) == Some(KernelError::InvalidArgument), "unknown option")?;
    check(raw(0, options::RECEIVE, 0, 0xdead) == Some(KernelError::InvalidName), "receive on a bad name")?;
    check(raw(0, options::RECEIVE, 0, 1 << 40) == Some(KernelError::InvalidName), "name beyond 32 bits")?;

    let mut m = Message::new();
    m.start(0x4242, disposition::COPY_SEND, 1);
    check(m.send() == Err(KernelError::InvalidName), "send to a bad name")?;
    m.start(p.name(), disposition::MOVE_RECEIVE, 1);
    check(m.send() == Err(KernelError::InvalidDisposition), "move-receive as destination")?;
    m.start(p.name(), disposition::COPY_SEND, 1);
    check(m.send() == Err(KernelError::InvalidRight), "copy-send without a send right")?;
    m.start(p.name(), disposition::MAKE_SEND, 1).reply_to(0x999, disposition::MAKE_SEND_ONCE);
    check(m.send() == Err(KernelError::InvalidName), "bad reply name")?;
    m.start(p.name(), disposition::MAKE_SEND, 1).push_port(0x777, disposition::COPY_SEND);
    check(m.send() == Err(KernelError::InvalidName), "bad descriptor name")?;
    check(m.receive_timeout(p.name(), 0) == Err(KernelError::TimedOut), "failed sends queued nothing")?;

    // A header that lies about its sizes.
    m.start(p.name(), disposition::MAKE_SEND, 1);
    m.header.data_size = u32::MAX;
    check(m.send() == Err(KernelError::InvalidArgument), "oversized data_size")?;
    m.start(p.name(), disposition::MAKE_SEND, 1);
    m.header.port_count = 200;
    check(m.send() == Err(KernelError::InvalidArgument), "too many descriptors")?;

    // A receive buffer too small leaves the message queued.
    m.start(p.name(), disposition::MAKE_SEND, 5).set_data(&[1; 100]);
    m.send().map_err(|_| "send 100 bytes")?;
    let mut small = MessageBuffer::<32>::new();
    check(small.receive_timeout(p.name(), 0) == Err(KernelError::TooLarge), "too small a buffer")?;
    m.receive_timeout(p.name(), 0).map_err(|_| "message still queued")?;
    check(m.header.id == 5 && m.data().len() == 100, "the queued message intact")?;

    // A receive into unmapped memory fails and keeps the message.
    m.start(p.name(), disposition::MAKE_SEND, 6);
    m.send().map_err(|_| "send")?;
    check(
        raw(0xdead_0000, options::RECEIVE, 4096, p.name() as u64) == Some(KernelError::InvalidAddress),
        "receive into unmapped memory",
    )?;
    m.receive_timeout(p.name(), 0).map_err(|_| "message kept after a bad receive buffer")?;

    // Port traps with bad names.
    for bad in [0u32, 0xdead, u32::MAX] {
        check(port_deallocate(bad) == Err(KernelError::InvalidName), "deallocate bad name")?;
        check(port_destroy(bad) == Err(KernelError::InvalidName), "destroy bad name")?;
        check(port_type(bad) == Err(KernelError::InvalidName), "type of bad name")?;
        check(port_make_send(bad) == Err(KernelError::InvalidName), "make_send of bad name")?;
        check(port_move_member(bad, PORT_NULL) == Err(KernelError::InvalidName), "move_member bad name")?;
    }
    // thread_create needs a task port.
    extern "C" fn never(_: u64) -> ! {
        thread_exit()
    }
    check(
        thread_create(p.name(), never, stack_top(2), 0) == Err(KernelError::InvalidRight),
        "thread_create on a plain port",
    )?;
    check(
        thread_create(0x1234, never, stack_top(2), 0) == Err(KernelError::InvalidName),
        "thread_create on a bad name",
    )?;
    let task = task_self().map_err(|_| "task_self")?;
    // SAFETY: deliberately bad entry address; the kernel must refuse it.
    let r = unsafe {
        libmach::raw_syscall(
            mach_abi::trap::THREAD_CREATE,
            [task as u64, 0xffff_ffff_8000_0000, 0x1000, 0, 0, 0],
        )
    };
    check(KernelError::from_return(r) == Some(KernelError::InvalidAddress), "thread_create into the kernel")?;
    // Messages to kernel object ports are refused (they take traps).
    m.start(task, disposition::COPY_SEND, 1);
    check(m.send() == Err(KernelError::InvalidRight), "message to a task port")?;
    Ok(())
}

/// Receive one notification on `inbox`: (id, the name it is about, the right it carries).
fn notification(inbox: &ReceiveRight) -> Result<(u32, PortName, Option<PortDescriptor>), &'static str> {
    let mut m = Message::new();
    m.receive_timeout(inbox.name(), 1000).map_err(|_| "no notification")?;
    let name: [u8; 4] = m.data().try_into().map_err(|_| "notification data")?;
    Ok((m.header.id, PortName::from_le_bytes(name), m.port(0)))
}

pub fn notifications() -> Result<(), &'static str> {
    use mach_abi::notify;
    let inbox = ReceiveRight::allocate().map_err(|_| "allocate")?;
    let once = disposition::MAKE_SEND_ONCE;

    // No more senders: the last send reference goes away.
    let p = ReceiveRight::allocate().map_err(|_| "allocate")?;
    port_request_notification(p.name(), notify::NO_SENDERS, inbox.name(), once)
        .map_err(|_| "request no-senders")?;
    let s = p.make_send().map_err(|_| "make_send")?;
    check(inbox_is_empty(&inbox), "no notification while a sender exists")?;
    drop(s);
    let (id, name, _) = notification(&inbox)?;
    check(id == notify::NO_SENDERS_MESSAGE && name == p.name(), "no-senders notification")?;

    // Dead name: a send-once right whose port dies.
    let q = ReceiveRight::allocate().map_err(|_| "allocate")?;
    let right = carry(&inbox, q.name(), once).map_err(|_| "carry")?;
    port_request_notification(right.name, notify::DEAD_NAME, inbox.name(), once)
        .map_err(|_| "request dead-name")?;
    drop(q);
    let (id, name, _) = notification(&inbox)?;
    check(id == notify::DEAD_NAME_MESSAGE && name == right.name, "dead-name notification")?;
    port_deallocate(right.name).map_err(|_| "release dead name")?;

    // Port destroyed: the receive right comes back in the notification; the port lives on.
    let r = port_allocate().map_err(|_| "allocate")?;
    port_request_notification(r, notify::PORT_DESTROYED, inbox.name(), once)
        .map_err(|_| "request destroyed")?;
    let mut m = Message::new();
    m.start(r, disposition::MAKE_SEND, 42);
    m.send().map_err(|_| "queue a message")?;
    port_destroy(r).map_err(|_| "destroy")?;
    let (id, name, right) = notification(&inbox)?;
    check(id == notify::PORT_DESTROYED_MESSAGE && name == r, "port-destroyed notification")?;
    let right = right.ok_or("the receive right is carried")?;
    check(right.disposition == received::RECEIVE, "it is a receive right")?;
    m.receive_timeout(right.name, 0).map_err(|_| "the queued message survived")?;
    check(m.header.id == 42, "the queued message")?;
    port_destroy(right.name).map_err(|_| "destroy for good")?;

    // Bad requests.
    check(
        port_request_notification(inbox.name(), 99, inbox.name(), once) == Err(KernelError::InvalidArgument),
        "unknown kind",
    )?;
    check(
        port_request_notification(0x777, notify::DEAD_NAME, inbox.name(), once)
            == Err(KernelError::InvalidName),
        "bad name",
    )?;
    check(
        port_request_notification(inbox.name(), notify::DEAD_NAME, inbox.name(), once)
            == Err(KernelError::InvalidRight),
        "dead-name needs a send right",
    )?;
    // The last two were refused after the send-once right to the inbox was made, so each
    // destroyed right delivers a send-once notification (the first, an unknown kind, was
    // refused before any right was made).
    let mut m = Message::new();
    for _ in 0..2 {
        m.receive_timeout(inbox.name(), 1000).map_err(|_| "no send-once notification")?;
        check(
            m.header.id == notify::SEND_ONCE_MESSAGE && m.data().is_empty(),
            "a send-once notification for each refused right",
        )?;
    }
    check(inbox_is_empty(&inbox), "no stray notifications")
}

fn inbox_is_empty(inbox: &ReceiveRight) -> bool {
    let mut m = Message::new();
    m.receive_timeout(inbox.name(), 0) == Err(KernelError::TimedOut)
}

/// Out-of-line memory: a 64 KiB region copied into the receiver, the DEALLOCATE move, and
/// the mistakes that are refused.
pub fn out_of_line() -> Result<(), &'static str> {
    use libmach::task::{vm_allocate, vm_deallocate, vm_protect};
    let me = task_self().map_err(|_| "task_self")?;
    let port = ReceiveRight::allocate().map_err(|_| "allocate")?;
    let size = 64 * 1024;
    let region = vm_allocate(me, 0, size, mach_abi::protection::WRITE).map_err(|_| "vm_allocate")?;
    // SAFETY: the region is mapped read-write, `size` bytes.
    let source = unsafe { core::slice::from_raw_parts_mut(region as *mut u8, size as usize) };
    for (i, b) in source.iter_mut().enumerate() {
        *b = (i % 251) as u8;
    }
    let mut m = Message::new();
    m.start(port.name(), disposition::MAKE_SEND, 9).push_ool(region, size as u32, 0).set_data(b"after");
    m.send().map_err(|_| "send with an out-of-line region")?;
    source[0] = 0xee; // the copy was taken at send time
    let mut r = Message::new();
    r.receive_timeout(port.name(), 0).map_err(|_| "receive")?;
    let d = r.ool(0).ok_or("no out-of-line descriptor")?;
    check(r.data() == b"after" && r.header.ool_count == 1, "descriptor and data layout")?;
    check(d.size == size as u32 && d.address != 0 && d.address != region, "a copy at a new address")?;
    // SAFETY: the kernel mapped the copy read-write at `d.address`.
    let copy = unsafe { core::slice::from_raw_parts(d.address as *const u8, size as usize) };
    check(
        copy[0] == 0 && copy.iter().enumerate().all(|(i, b)| i == 0 || *b == (i % 251) as u8),
        "the copied bytes",
    )?;
    vm_deallocate(me, d.address, size).map_err(|_| "free the copy")?;

    // DEALLOCATE: the pages leave the sender.
    m.start(port.name(), disposition::MAKE_SEND, 10).push_ool(region, 4096, ool_flags::DEALLOCATE);
    m.send().map_err(|_| "send with deallocate")?;
    check(vm_protect(me, region, 4096, 0) == Err(KernelError::InvalidAddress), "the page left the sender")?;
    r.receive_timeout(port.name(), 0).map_err(|_| "receive the moved page")?;
    let d = r.ool(0).ok_or("descriptor")?;
    // SAFETY: mapped by the kernel.
    check(unsafe { core::ptr::read_volatile((d.address + 1) as *const u8) } == 1, "moved page contents")?;
    vm_deallocate(me, d.address, 4096).map_err(|_| "free")?;
    vm_deallocate(me, region + 4096, size - 4096).map_err(|_| "free the rest")?;

    // Mistakes: unaligned, unmapped, empty, unknown flags, too many regions.
    for (address, size, flags) in
        [(region + 8, 4096, 0), (0xdead_0000, 4096, 0), (region, 0, 0), (region, 4096, 8)]
    {
        m.start(port.name(), disposition::MAKE_SEND, 11).push_ool(address, size, flags);
        check(m.send().is_err(), "a bad out-of-line region is refused")?;
    }
    m.start(port.name(), disposition::MAKE_SEND, 12);
    m.header.ool_count = 17;
    check(m.send() == Err(KernelError::InvalidArgument), "too many regions")?;
    check(r.receive_timeout(port.name(), 0) == Err(KernelError::TimedOut), "nothing was queued")
}

/// What a `fast_path_receiver` does with the one message it receives.
const RECEIVE_SMALL: u64 = 1;
const RECEIVE_BAD_BUFFER: u64 = 2;
const RECEIVE_AND_REPLY: u64 = 3;
const RECEIVE_SILENTLY: u64 = 4;

static FAST_RESULT: AtomicI64 = AtomicI64::new(1);
static FAST_LOCAL: AtomicU32 = AtomicU32::new(0);

/// Receive once on the port or set in the low 32 bits of `arg`, as its upper bits say;
/// record the result (0 or the error) and the `local` name the message arrived under.
extern "C" fn fast_path_receiver(arg: u64) -> ! {
    let (port, mode) = (arg as PortName, arg >> 32);
    let result = match mode {
        RECEIVE_SMALL => MessageBuffer::<64>::new().receive(port),
        RECEIVE_BAD_BUFFER => {
            // SAFETY: the kernel must refuse the unmapped buffer, not write there.
            let r = unsafe {
                libmach::raw_syscall(
                    mach_abi::trap::MACH_MSG,
                    [0x1000, options::RECEIVE, 4096, port as u64, 0, 0],
                )
            };
            KernelError::from_return(r).map_or(Ok(()), Err)
        }
        _ => {
            let mut m = Message::new();
            let r = m.receive(port);
            FAST_LOCAL.store(m.header.local, Ordering::SeqCst);
            if r.is_ok() && mode == RECEIVE_AND_REPLY {
                let reply = m.header.remote;
                m.start(reply, disposition::MOVE_SEND_ONCE, m.header.id + 1).set_data(b"from the set");
                let _ = m.send();
            }
            r
        }
    };
    FAST_RESULT.store(result.map_or_else(|e| e as i64, |()| 0), Ordering::SeqCst);
    thread_exit()
}

/// Start a `fast_path_receiver` in stack slot `slot` and let it block in its receive.
fn start_receiver(slot: usize, port: PortName, mode: u64) -> Result<(), &'static str> {
    FAST_RESULT.store(1, Ordering::SeqCst);
    spawn(fast_path_receiver, slot, u64::from(port) | mode << 32)?;
    sleep_ms(5);
    check(FAST_RESULT.load(Ordering::SeqCst) == 1, "the receiver is waiting")
}

/// A request with a reply right whose answer may never come: `mach_msg(SEND | RECEIVE)`
/// with a receive timeout.
fn call_with_timeout(to: PortName, reply: PortName, data: &[u8], ms: u64) -> Result<Message, KernelError> {
    let mut m = Message::new();
    m.start(to, disposition::COPY_SEND, 9).reply_to(reply, disposition::MAKE_SEND_ONCE).set_data(data);
    m.mach_msg(options::SEND | options::RECEIVE | options::RECEIVE_TIMEOUT, reply, ms)?;
    Ok(m)
}

/// `fast-path`: a message handed straight to a waiting receiver (the IPC fast path) gives
/// the receiver exactly what the general path gives, and every case the fast path does not
/// take (too big, a receive buffer too small or unmapped) behaves as before.
pub fn fast_path() -> Result<(), &'static str> {
    let reply = ReceiveRight::allocate().map_err(|_| "allocate")?;
    let mut pattern = [0u8; 5000];
    for (i, b) in pattern.iter_mut().enumerate() {
        *b = (i * 13 % 253) as u8;
    }

    // Around the fast path's data limit (4,160 bytes): every echo comes back exact, on the
    // reply port, with the reply right used up.
    let server = ReceiveRight::allocate().map_err(|_| "allocate")?;
    let send = server.make_send().map_err(|_| "make_send")?;
    spawn(echo_server, 0, server.name() as u64)?;
    for n in [0usize, 1, 24, 256, 1000, 4096, 4159, 4160, 4161, 5000] {
        let m = echo_call(send.name(), reply.name(), ECHO, &pattern[..n])?;
        let mut expected = [0u8; 5000];
        expected[..n].copy_from_slice(&pattern[..n]);
        expected[..n].reverse();
        check(m.header.id == ECHO + 1 && m.header.local == reply.name(), "echo header")?;
        check(m.data() == &expected[..n], "echo data")?;
        check(port_type(reply.name()) == Ok(right_type::RECEIVE), "reply right used up")?;
    }
    echo_call(send.name(), reply.name(), QUIT, b"")?;

    // The same against a server that answers and waits for the next request on a port set
    // in one trap.
    let member = ReceiveRight::allocate().map_err(|_| "allocate")?;
    let to_member = member.make_send().map_err(|_| "make_send")?;
    let set = port_allocate_set().map_err(|_| "allocate set")?;
    port_move_member(member.name(), set).map_err(|_| "add to set")?;
    spawn(set_echo_server, 0, set as u64)?;
    for n in [0usize, 24, 4096, 4160, 5000, 1] {
        let m = echo_call(to_member.name(), reply.name(), ECHO, &pattern[..n])?;
        let mut expected = [0u8; 5000];
        expected[..n].copy_from_slice(&pattern[..n]);
        expected[..n].reverse();
        check(m.header.id == ECHO + 1 && m.data() == &expected[..n], "echo through a set")?;
        check(port_type(reply.name()) == Ok(right_type::RECEIVE), "reply right used up (set)")?;
    }
    echo_call(to_member.name(), reply.name(), QUIT, b"")?;
    sleep_ms(5); // the set's server has finished
    port_move_member(member.name(), PORT_NULL).map_err(|_| "leave the set")?;
    port_destroy(set).map_err(|_| "destroy set")?;

    // A waiting receiver whose buffer is too small: it gets TooLarge and the message stays
    // queued, whole, with its reply right.
    let port = ReceiveRight::allocate().map_err(|_| "allocate")?;
    let to_port = port.make_send().map_err(|_| "make_send")?;
    start_receiver(1, port.name(), RECEIVE_SMALL)?;
    let timed_out = call_with_timeout(to_port.name(), reply.name(), &pattern[..200], 30);
    check(timed_out.is_err_and(|e| e == KernelError::TimedOut), "no answer: the call times out")?;
    check(FAST_RESULT.load(Ordering::SeqCst) == KernelError::TooLarge as i64, "too small a buffer")?;
    let mut m = Message::new();
    m.receive_timeout(port.name(), 0).map_err(|_| "the message stayed queued")?;
    check(m.data() == &pattern[..200] && m.header.id == 9, "queued message intact")?;
    check(port_type(m.header.remote) == Ok(right_type::SEND_ONCE), "with its reply right")?;
    port_deallocate(m.header.remote).map_err(|_| "drop the reply right")?;
    // The reply right went unused: its port gets the kernel's send-once notification.
    m.receive_timeout(reply.name(), 0).map_err(|_| "a send-once notification for the dropped reply right")?;
    check(
        m.header.id == mach_abi::notify::SEND_ONCE_MESSAGE && m.data().is_empty(),
        "a send-once notification",
    )?;

    // A waiting receiver whose buffer is not mapped: an error for it, the message kept.
    start_receiver(2, port.name(), RECEIVE_BAD_BUFFER)?;
    let timed_out = call_with_timeout(to_port.name(), reply.name(), &pattern[..8], 30);
    check(timed_out.is_err_and(|e| e == KernelError::TimedOut), "no answer: the call times out (2)")?;
    check(FAST_RESULT.load(Ordering::SeqCst) == KernelError::InvalidAddress as i64, "unmapped buffer")?;
    m.receive_timeout(port.name(), 0).map_err(|_| "the message stayed queued (2)")?;
    check(m.data() == &pattern[..8], "queued message intact (2)")?;
    port_deallocate(m.header.remote).map_err(|_| "drop the reply right (2)")?;
    m.receive_timeout(reply.name(), 0).map_err(|_| "a send-once notification (2)")?;
    check(m.header.id == mach_abi::notify::SEND_ONCE_MESSAGE, "a send-once notification (2)")?;

    // A receiver waiting on a set gets the message under the member port's name.
    let set = port_allocate_set().map_err(|_| "allocate set")?;
    port_move_member(port.name(), set).map_err(|_| "add to set")?;
    start_receiver(3, set, RECEIVE_AND_REPLY)?;
    let answer =
        call_with_timeout(to_port.name(), reply.name(), b"to a set", 1000).map_err(|_| "set call")?;
    check(answer.header.id == 10 && answer.data() == b"from the set", "answer through the set")?;
    check(FAST_LOCAL.load(Ordering::SeqCst) == port.name(), "local names the member port")?;
    port_move_member(port.name(), PORT_NULL).map_err(|_| "leave the set")?;
    port_destroy(set).map_err(|_| "destroy set")?;

    // A sender handed off to the receiver still times out waiting for its answer.
    sleep_ms(5); // slot 0's echo server has finished
    start_receiver(0, port.name(), RECEIVE_SILENTLY)?;
    let silent = call_with_timeout(to_port.name(), reply.name(), b"", 20);
    check(silent.is_err_and(|e| e == KernelError::TimedOut), "handed-off sender times out")?;
    check(FAST_RESULT.load(Ordering::SeqCst) == 0, "the silent receiver got the request")?;
    check(m.receive_timeout(reply.name(), 0) == Err(KernelError::TimedOut), "nothing stray on the reply port")
}

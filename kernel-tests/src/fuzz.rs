//! `fuzz`: seeded random calls to every way into the kernel, from one task, its helper thread
//! and the children it starts. The kernel must answer each with a result or an error code and
//! never stop; the system test then checks that every frame came back at the halt.
//!
//! # Command line
//!
//! `fuzz:SEED:CALLS:OPTIONS` as one kernel-tests word, e.g. `fuzz:7:20000` or
//! `fuzz:0x1234:100000:nt,trace=5000`. SEED (decimal or 0x hex, default 1) seeds the generator
//! (splitmix64 to seed, xorshift64* to draw); CALLS (default 10,000) is the number of
//! iterations, each one randomly chosen action (one trap, or a composite such as starting a
//! child, which makes a few). OPTIONS, comma separated:
//!
//! - `trace=N`: print every trap with its arguments from iteration N on (to find the call that
//!   stopped the kernel: rerun the seed with N = the last progress count);
//! - `progress=N`: a progress line every N iterations (default 5,000);
//! - `check=N`: check the harness's own names and memory every N iterations (default 1,024;
//!   `check=1` finds the call that broke them);
//! - `copytrace`: copies print each trap they make (`fuzz: copy trap ...`);
//! - `stub=N`: every child runs stub kind N (0 ..= 33, see `Fuzz::stub`), for a directed run;
//! - the known-bug classes below, which are off by default.
//!
//! Output: `fuzz: N calls (seed S): T traps, ...` every `progress` iterations, a summary per
//! trap at the end, and `fuzz: UNEXPECTED seed S call I trap T args [...] -> R: why` for a
//! result it can tell is wrong (a value that is no error code, a success with a bad pointer,
//! anything but `InvalidTrap` for an unknown trap number, anything but -ENOSYS for a foreign
//! call, a success value out of range, the harness's own state changed). Any of those fails
//! the case. A kernel panic ends QEMU; the host side prints the seed and the last progress
//! line.
//!
//! # What it calls
//!
//! - Every Mach trap (-1 ..= -52) with arguments from pools: the names it holds (its ports,
//!   port sets, send and send-once rights, the host port, its task and thread ports, children's
//!   task and thread ports, names it received), stale names (destroyed ones), forged names (0,
//!   `0xffffffff`, random, generation flipped, above 32 bits); pointers into its scratch region,
//!   straddling the scratch region's end into an unmapped page, null, unmapped, the kernel's
//!   image and direct map, non-canonical; sizes 0, 1, 4096, unaligned, 1 GiB + 1 page, 2^40,
//!   `u64::MAX`, random. Unknown negative numbers (-53, -100, `i64::MIN`, ...).
//! - `mach_msg` with built messages: any destination and reply names and dispositions (also
//!   no disposition at all), port counts up to 255, out-of-line descriptors with bad addresses,
//!   sizes and flags, data sizes up to `u32::MAX`, buffers straddling the end of the scratch
//!   region, any options (always with both timeout bits, timeouts 0 or a few ms), receive
//!   sizes and names; RPCs to a helper thread of this task that echoes (the IPC fast path).
//! - Foreign system calls (numbers >= 0) from this task, which has no syscall port: each must
//!   answer -ENOSYS.
//! - Children that fault in every way (see [`Stub`]): ud2, int3, int N, icebp, divide errors,
//!   hlt, cli, MSRs, control and debug registers, in/out without a grant, jumps into the
//!   kernel, to non-canonical and not-executable addresses, kernel and non-canonical stack
//!   pointers (also across a syscall), iretq/retfq/sysret/sysexit/sysenter in user mode, a
//!   syscall on the last bytes of user space (the SYSRET return address is non-canonical),
//!   TF, DF and AC set, null and bad segment selectors, FS/GS base writes, writes to their
//!   own code, stack overflow, string copies from the kernel, foreign calls, Mach traps, a
//!   spin, and a sender (messages to its bootstrap port without a timeout, for as long as they
//!   are taken: it waits on full queues). Raw children are built through their task port (`task_create`, `vm_allocate`,
//!   `vm_write`, `vm_protect`, `thread_create`); copies of this task (`task_create_copy`)
//!   first make up to a dozen random traps of their own in `copy_child_main`. Children get an
//!   end notification, and some an exception, syscall or bootstrap port (mostly this task's
//!   inbox), whose
//!   requests the harness answers (resume, resume elsewhere, terminate, results, copy-out,
//!   FS base, registers) or drops. Children are terminated and their names destroyed when a
//!   new one needs the slot, at random, and every epoch (4,096 iterations), when the harness
//!   also destroys every name it made and unmaps its regions.
//!
//! # Exclusions (what it never does, and why)
//!
//! The harness must stay alive to keep calling, so these inputs are never made:
//!
//! - `task_exit` (-2) and `thread_exit` (-14) from the fuzzing thread: they end the harness
//!   (children and copies make them).
//! - `task_terminate` and `task_suspend` of its own task: it would end, or stop for good.
//! - `task_set_special_port` of its own syscall or exception port: its own foreign calls and
//!   faults would then wait for an answer only it could give.
//! - `thread_set_state` on a thread of its own task (other than the calling one, which the
//!   kernel refuses: that call is made): it would send the harness's code anywhere.
//!   `thread_get_state` on the calling thread: a hole class (option `getself`).
//! - `thread_set_priority`: its own threads keep 16; children's threads get at most 15, so a
//!   spinning child never outranks the harness (which would then never run again).
//! - `thread_create` in its own task only at a stub that calls `thread_exit`.
//! - `sleep` and `mach_msg` timeouts of at most 20 ms, and `mach_msg` always with both timeout
//!   options: nothing else would wake the only fuzzing thread.
//! - Its own memory: `vm_deallocate`, `vm_protect`, `vm_map` and `vm_allocate` targets in its
//!   own task, `vm_write` destinations there, out-of-line regions sent with `DEALLOCATE`, and
//!   every pointer the kernel writes through, are only in its playground
//!   (`0x6000_0000_0000`, 4 MiB of addresses), the "anywhere" zone (regions it allocated or
//!   received) or its scratch region (`0x7000_0000_0000`, 64 KiB, never unmapped or
//!   protected), or bad on purpose; never its code, data or stack. `vm_map` with this task as
//!   the source shares only those regions (a writable share of its data would let a later
//!   `vm_write` to the child write the harness). Traps that map pages in its own task
//!   (`vm_allocate`, `vm_map`, `host_module_map`, `host_map_physical`) use the playground or
//!   "anywhere", never its regions: a region with a larger size runs past the kernel's
//!   "anywhere" placement pointer, and DMA or out-of-line memory placed there later maps over
//!   those pages (known bug, option `anywhere`).
//! - Copies' own random traps leave out `mach_msg` and `port_request_notification` (their
//!   memory holds the harness's messages: known bugs `selfrecv` and `anywhere`),
//!   `task_set_special_port` (a task holding a right to its own port: `taskcycle`) and
//!   `thread_get_state` (their small names often denote their own thread: `getself`), and
//!   everything slow (`task_create_copy`, `thread_create`).
//! - Names and dispositions written into messages are filtered as the kernel reads them (32
//!   bits, one byte): a forged `0x1_0000_0004` is name 4 in a message.
//! - Names it needs are never destroyed, deallocated, moved or put into a set: the host port,
//!   its task and thread ports, its inbox, the helper's port and thread, and the task port of
//!   every live child (a child with a spinning thread and no send right to its port would
//!   never end, and the kernel would never halt). They are still used where that is harmless
//!   (`COPY_SEND`, `MAKE_SEND`, `port_type`, receives).
//! - Receive rights travel in messages (`MOVE_RECEIVE`, also as the reply right) only to the
//!   inbox or the helper's port, which are drained; port-destroyed notifications go only to
//!   the inbox: a port whose queue holds its own receive right was a hole (`selfrecv`).
//! - Physical ranges for `host_map_physical` are RAM (refused), the VGA window and ROM areas
//!   below 1 MiB, the VGA frame buffer (0xfd00_0000) and the BIOS ROM: never the local APIC,
//!   I/O APIC, HPET or PCI device registers, where random writes could reset the machine or
//!   start DMA over kernel memory. Children use I/O port 0x80 only (never 0xf4, QEMU's exit
//!   port), even when granted more.
//! - Task names are printable ASCII or invalid UTF-8 (never newlines that could fake a
//!   kernel log line); its own name is restored at the end.
//! - `debug_write` of valid memory only in the scratch region, with text it wrote there:
//!   short, or starting with 0xff (printed as `<not UTF-8>`), to keep the log small and
//!   free of raw bytes.
//! - Forwarded requests (syscalls and faults of children) get well-formed answers: full size,
//!   user rip and rsp, canonical FS base (option `badreply` sends anything).
//!
//! # Hole classes (options)
//!
//! The inputs that reached the holes of issue 9, all fixed now. Each is off in the
//! harness's defaults; `make test`'s run and `make fuzz` turn them all on.
//!
//! - `nt`: a child sets NT in rflags and makes a syscall (it crashed the kernel).
//! - `selfrecv`: receive rights moved to any port, port-destroyed notifications to any port
//!   (a port holding its own receive right was never freed).
//! - `physhigh`: `host_map_physical` above the direct map (then `vm_read` of it).
//! - `anywhere`: "anywhere" placement of DMA and out-of-line memory maps over present pages
//!   (their frames were lost): `host_dma_allocate` into task copies, messages received by
//!   copies (also `selfrecv`), and fixed mappings ahead of the placement pointer
//!   (`0x1000_0000_0000` on) in this task and children.
//! - `badreply`: malformed answers to forwarded calls and faults.
//! - `fsbase`: non-canonical FS base through `thread_set_state` and replies.
//! - `getself`: `thread_get_state` on the calling thread.
//! - `longvm`: `vm_allocate`/`vm_map`/`vm_read`/`vm_write` sizes up to 1 GiB (long stretches
//!   with interrupts off, before); without it at most 1 MiB is allocated at once.
//! - `taskcycle`: copies may set special ports of the tasks they make; and at the start the
//!   harness makes a task without threads whose bootstrap port is a send right to its own
//!   task port, and drops its own right: such a task was never ended (no-senders never
//!   came), so the kernel never halted (found by this fuzzer; the kernel now refuses it).

use crate::check;
use core::sync::atomic::{AtomicU64, Ordering};
use libmach::{println, raw_syscall};
use mach_abi::forward::{
    EXCEPTION_MESSAGE, ExceptionReply, ExceptionRequest, Registers, SYSCALL_MESSAGE, SyscallReply,
    SyscallRequest, action, reply_flags,
};
use mach_abi::ipc::{MessageHeader, PORT_DEAD, disposition, ool_flags, options, received, right_type};
use mach_abi::layout::USER_END;
use mach_abi::{KernelError, notify, protection, special_port, trap};

const PAGE: u64 = 4096;
/// The harness's scratch region: every pointer the kernel may write through points here. It
/// is never unmapped or protected; the pages before and after it stay unmapped.
const SCRATCH: u64 = 0x7000_0000_0000;
const SCRATCH_SIZE: u64 = 16 * PAGE;
const SCRATCH_END: u64 = SCRATCH + SCRATCH_SIZE;
/// Where replies to forwarded requests are built.
const REPLY_BUF: u64 = SCRATCH + 0x9000;
/// Where the harness's own receives land (room for the largest message, 17,176 bytes).
const RECV_BUF: u64 = SCRATCH + 0xa000;
const RECV_SIZE: u64 = SCRATCH_END - RECV_BUF;
/// Addresses for its own memory traps: 1,024 pages, unmapped at each epoch.
const PLAY: u64 = 0x6000_0000_0000;
const PLAY_PAGES: u64 = 1024;
/// Where the kernel places "anywhere" allocations.
const ANYWHERE: u64 = 0x1000_0000_0000;
/// In children (raw ones and copies): the stub's code page, a data page, the stack.
const STUB_AT: u64 = 0x5000_0000;
const DATA_AT: u64 = 0x5000_1000;
const STACK_AT: u64 = 0x5000_4000;
const STACK_SIZE: u64 = 4 * PAGE;
/// The last page of user space (the sysret stub ends on its last byte).
const TOP_PAGE: u64 = USER_END - PAGE;

const KERNEL_IMAGE: u64 = 0xffff_ffff_8000_0000;
const DIRECT_MAP: u64 = 0xffff_8000_0000_0000;
const NON_CANONICAL: u64 = 0x0000_8000_0000_0000;
const NON_CANONICAL_HIGH: u64 = 0x8000_0000_0000_0000;
const UNMAPPED: u64 = 0xdead_0000;
/// Pointers that are never user memory this task has mapped.
const BAD_POINTERS: [u64; 9] = [
    0,
    UNMAPPED,
    KERNEL_IMAGE,
    DIRECT_MAP,
    NON_CANONICAL,
    NON_CANONICAL_HIGH,
    USER_END - 8,
    u64::MAX - 7,
    0x1000,
];

const PRIORITY: u64 = mach_abi::DEFAULT_PRIORITY;
const EPOCH: u64 = 4096;
const POOL: usize = 48;
const CHILDREN: usize = 6;
const RING: usize = 16;
const ENOSYS: i64 = -38;
const REGISTERS_SIZE: u64 = core::mem::size_of::<Registers>() as u64;

/// One page of this task's data: copies get writes to it through `vm_write`, which must never
/// show here (checked with the other invariants).
static mut CANARY: [u64; 512] = [0x5a5a_1234_a5a5_4321; 512];

#[derive(Clone, Copy)]
struct Options {
    nt: bool,
    selfrecv: bool,
    physhigh: bool,
    anywhere: bool,
    badreply: bool,
    fsbase: bool,
    getself: bool,
    longvm: bool,
    taskcycle: bool,
    /// Copies print each trap they make (`copytrace`).
    copytrace: bool,
    trace_from: u64,
    progress: u64,
    /// Every child runs this stub kind (`stub=N`), for a directed run.
    stub: Option<u64>,
    /// Check the harness's own names and memory every N iterations (`check=N`).
    check: u64,
}

fn parse_number(text: &str) -> Option<u64> {
    match text.strip_prefix("0x") {
        Some(hex) => u64::from_str_radix(hex, 16).ok(),
        None => text.parse().ok(),
    }
}

fn parse(params: &str) -> Result<(u64, u64, Options), &'static str> {
    let mut parts = params.split(':');
    let mut number = |default: u64, why: &'static str| match parts.next() {
        None | Some("") => Ok(default),
        Some(text) => parse_number(text).ok_or(why),
    };
    let seed = number(1, "fuzz: bad seed")?;
    let calls = number(10_000, "fuzz: bad call count")?;
    let mut o = Options {
        nt: false,
        selfrecv: false,
        physhigh: false,
        anywhere: false,
        badreply: false,
        fsbase: false,
        getself: false,
        longvm: false,
        taskcycle: false,
        copytrace: false,
        trace_from: u64::MAX,
        progress: 5_000,
        stub: None,
        check: 1024,
    };
    for option in parts.flat_map(|p| p.split(',')) {
        match option {
            "" => {}
            "nt" => o.nt = true,
            "selfrecv" => o.selfrecv = true,
            "physhigh" => o.physhigh = true,
            "anywhere" => o.anywhere = true,
            "badreply" => o.badreply = true,
            "fsbase" => o.fsbase = true,
            "getself" => o.getself = true,
            "longvm" => o.longvm = true,
            "taskcycle" => o.taskcycle = true,
            "copytrace" => o.copytrace = true,
            _ => {
                if let Some(n) = option.strip_prefix("trace=") {
                    o.trace_from = parse_number(n).ok_or("fuzz: bad trace=")?;
                } else if let Some(n) = option.strip_prefix("stub=") {
                    o.stub = Some(parse_number(n).filter(|&n| n < STUB_KINDS).ok_or("fuzz: bad stub=")?);
                } else if let Some(n) = option.strip_prefix("check=") {
                    o.check = parse_number(n).filter(|&n| n > 0).ok_or("fuzz: bad check=")?;
                } else if let Some(n) = option.strip_prefix("progress=") {
                    o.progress = parse_number(n).filter(|&n| n > 0).ok_or("fuzz: bad progress=")?;
                } else {
                    println!("fuzz: unknown option {option:?}");
                    return Err("fuzz: unknown option");
                }
            }
        }
    }
    Ok((seed, calls, o))
}

/// splitmix64 to seed, xorshift64* to draw.
#[derive(Clone, Copy)]
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Self {
        let mut z = seed.wrapping_add(0x9e37_79b9_7f4a_7c15);
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^= z >> 31;
        Rng(if z == 0 { 1 } else { z })
    }
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    /// 0 ..< n (0 for n = 0).
    fn below(&mut self, n: u64) -> u64 {
        ((u128::from(self.next()) * u128::from(n)) >> 64) as u64
    }
    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
    fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[self.below(items.len() as u64) as usize]
    }
    /// One of `items`, or (as often as each of them) a random value.
    fn choose(&mut self, items: &[u64]) -> u64 {
        let i = self.below(items.len() as u64 + 1) as usize;
        items.get(i).copied().unwrap_or_else(|| self.next())
    }
}

/// What a successful result must look like.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Expect {
    Any,
    Zero,
    /// A new name: 1 ..= u32::MAX - 1.
    Name,
    /// 0, a name, or `PORT_DEAD`.
    NameOrNone,
    Exactly(u64),
    AtMost(u64),
    /// A page-aligned user address.
    Page,
    /// `port_type` bits.
    Bits,
    /// The arguments are bad in a way the kernel must refuse (a bad pointer it must access).
    Fail,
}

fn implausible(nr: i64, r: i64, expect: Expect) -> Option<&'static str> {
    if nr >= 0 {
        return (r != ENOSYS).then_some("a foreign call without a syscall port did not answer -ENOSYS");
    }
    if nr < LAST_TRAP {
        return (r != KernelError::InvalidTrap.as_return()).then_some("an unknown trap was not InvalidTrap");
    }
    if r < 0 {
        return match KernelError::from_return(r) {
            None => Some("a result that is no error code"),
            Some(KernelError::InvalidTrap) => Some("a known trap answered InvalidTrap"),
            Some(KernelError::NoSyscallPort) => Some("the reserved NoSyscallPort error"),
            Some(_) => None,
        };
    }
    let r = r as u64;
    let ok = match expect {
        Expect::Any => true,
        Expect::Zero => r == 0,
        Expect::Name => r != 0 && r < u64::from(u32::MAX),
        Expect::NameOrNone => r <= u64::from(u32::MAX),
        Expect::Exactly(v) => r == v,
        Expect::AtMost(v) => r <= v,
        Expect::Page => r.is_multiple_of(PAGE) && (PAGE..USER_END).contains(&r),
        Expect::Bits => r != 0 && r < 32,
        Expect::Fail => false,
    };
    (!ok).then_some(match expect {
        Expect::Fail => "succeeded with arguments it must refuse",
        _ => "a success value out of range",
    })
}

/// A bad pointer the kernel must refuse when it accesses `len > 0` bytes there.
fn definitely_bad(ptr: u64, len: u64) -> bool {
    if len == 0 {
        return false;
    }
    BAD_POINTERS.contains(&ptr)
        || ptr >= USER_END
        || (ptr < SCRATCH_END && ptr.saturating_add(len) > SCRATCH_END)
}

fn in_scratch(address: u64, len: u64) -> bool {
    address >= SCRATCH && address.checked_add(len).is_some_and(|end| end <= SCRATCH_END)
}

/// Copy bytes into the scratch region (the part that fits). Returns how many were written.
fn put(address: u64, bytes: &[u8]) -> usize {
    if !(SCRATCH..SCRATCH_END).contains(&address) {
        return 0;
    }
    let n = bytes.len().min((SCRATCH_END - address) as usize);
    // SAFETY: [address, address + n) lies in the scratch region, mapped writable for the whole
    // run and used by nothing else while this thread writes.
    unsafe { core::ptr::copy_nonoverlapping(bytes.as_ptr(), address as *mut u8, n) };
    n
}

/// Read a plain value from the scratch region, if it lies wholly inside.
fn get<T: Copy>(address: u64) -> Option<T> {
    if !in_scratch(address, core::mem::size_of::<T>() as u64) {
        return None;
    }
    // SAFETY: inside the mapped scratch region; T is plain integers (any bytes are a value).
    Some(unsafe { core::ptr::read_unaligned(address as *const T) })
}

fn as_bytes<T: Copy>(value: &T) -> &[u8] {
    // SAFETY: T is a repr(C) struct of integers.
    unsafe { core::slice::from_raw_parts(value as *const T as *const u8, core::mem::size_of::<T>()) }
}

/// A child's code: a few instructions that fault, then `ud2`, then `task_exit(7)` (for a
/// handler that resumes past the ud2).
struct Stub {
    code: [u8; 128],
    len: usize,
    /// Placed so that it ends on the last byte of user space.
    at_top: bool,
    /// Runs a while without faulting: its thread gets a priority below the harness's.
    spins: bool,
}

impl Stub {
    fn new() -> Self {
        Stub { code: [0; 128], len: 0, at_top: false, spins: false }
    }
    fn b(&mut self, bytes: &[u8]) -> &mut Self {
        let end = (self.len + bytes.len()).min(self.code.len());
        let n = end - self.len;
        self.code[self.len..end].copy_from_slice(&bytes[..n]);
        self.len = end;
        self
    }
    /// `mov r64, imm64` (REX.W B8+r: 0 rax, 1 rcx, 4 rsp, 6 rsi, 7 rdi).
    fn mov(&mut self, register: u8, value: u64) -> &mut Self {
        self.b(&[0x48, 0xb8 + register]).b(&value.to_le_bytes())
    }
    /// `mov rax, trap (sign-extended); xor edi, edi; syscall`.
    fn trap0(&mut self, number: i64) -> &mut Self {
        self.b(&[0x48, 0xc7, 0xc0]).b(&(number as i32).to_le_bytes()).b(&[0x31, 0xff, 0x0f, 0x05])
    }
    /// `push imm32; popfq`.
    fn flags(&mut self, value: u32) -> &mut Self {
        self.b(&[0x68]).b(&value.to_le_bytes()).b(&[0x9d])
    }
    /// `mov ecx, n; loop $`.
    fn spin(&mut self, n: u32) -> &mut Self {
        self.spins = true;
        self.b(&[0xb9]).b(&n.to_le_bytes()).b(&[0xe2, 0xfe])
    }
    /// The common end: ud2, then task_exit(7).
    fn end(&mut self) -> &mut Self {
        self.b(&[0x0f, 0x0b]).b(&[0x48, 0xc7, 0xc0, 0xfe, 0xff, 0xff, 0xff, 0xbf, 7, 0, 0, 0, 0x0f, 0x05])
    }
}

/// Stub kinds (one per way of faulting); `Fuzz::stub` builds them.
const STUB_KINDS: u64 = 34;
const STUB_NT: u64 = 31;

#[derive(Clone, Copy, Default)]
struct Entry {
    name: u64,
    kind: u64,
}

#[derive(Clone, Copy, Default)]
struct Child {
    task: u64,
    copy: bool,
    live: bool,
}

/// A ring of names or regions; the oldest goes when a new one comes.
#[derive(Clone, Copy)]
struct Ring<T: Copy + Default> {
    items: [T; RING],
    next: usize,
}

impl<T: Copy + Default> Ring<T> {
    fn new() -> Self {
        Ring { items: [T::default(); RING], next: 0 }
    }
    /// Put `item` in, returning the one it replaced.
    fn push(&mut self, item: T) -> T {
        let old = core::mem::replace(&mut self.items[self.next % RING], item);
        self.next = (self.next + 1) % RING;
        old
    }
}

struct Fuzz {
    rng: Rng,
    seed: u64,
    o: Options,
    iteration: u64,
    traps: u64,
    unexpected: u64,
    ok: [u32; 54],
    failed: [u32; 54],
    children_started: u64,
    forwarded: u64,
    received: u64,
    // The names the harness relies on.
    host: u64,
    self_task: u64,
    self_thread: u64,
    inbox: u64,
    server: u64,
    server_thread: u64,
    pool: [Entry; POOL],
    pool_len: usize,
    stale: Ring<u64>,
    children: [Child; CHILDREN],
    child_threads: Ring<u64>,
    own_threads: Ring<u64>,
    /// Regions of its own "anywhere" zone it may free: (address, size).
    regions: Ring<(u64, u64)>,
    /// The last traps (iteration, number, arguments, result), printed when the harness finds
    /// its own names or memory changed: the call that did it is among them.
    recent: [(u64, i64, [u64; 6], i64); RECENT],
    recent_next: usize,
    dumped: bool,
}

const RECENT: usize = 64;

/// The last Mach trap's number (they run from -1 down to it).
const LAST_TRAP: i64 = trap::TRACE_TASK_NAME;

/// Statistics slot of a trap number: 1..=52 the traps, 0 foreign calls, 53 unknown traps.
fn slot(nr: i64) -> usize {
    if nr >= 0 {
        0
    } else if nr >= LAST_TRAP {
        (-nr) as usize
    } else {
        53
    }
}

const DISPOSITIONS: [u8; 6] = [
    disposition::MOVE_RECEIVE,
    disposition::MOVE_SEND,
    disposition::MOVE_SEND_ONCE,
    disposition::COPY_SEND,
    disposition::MAKE_SEND,
    disposition::MAKE_SEND_ONCE,
];

impl Fuzz {
    // ---------------------------------------------------------------- calls and checks

    /// Make one trap and check its result.
    fn call(&mut self, nr: i64, args: [u64; 6], expect: Expect) -> i64 {
        self.traps += 1;
        if self.iteration >= self.o.trace_from {
            println!(
                "fuzz: #{} trap {} [{:#x}, {:#x}, {:#x}, {:#x}, {:#x}, {:#x}]",
                self.iteration, nr, args[0], args[1], args[2], args[3], args[4], args[5]
            );
        }
        // SAFETY: the arguments went through the harness's rules (module documentation): the
        // kernel writes only to the scratch region and to memory the harness never relies on,
        // and nothing the harness needs is destroyed.
        let r = unsafe { raw_syscall(nr, args) };
        self.recent[self.recent_next % RECENT] = (self.iteration, nr, args, r);
        self.recent_next = (self.recent_next + 1) % RECENT;
        let s = slot(nr);
        if r >= 0 {
            self.ok[s] = self.ok[s].wrapping_add(1);
        } else {
            self.failed[s] = self.failed[s].wrapping_add(1);
        }
        if let Some(why) = implausible(nr, r, expect) {
            self.report(nr, args, r, why);
        }
        r
    }

    fn report(&mut self, nr: i64, args: [u64; 6], r: i64, why: &str) {
        self.unexpected += 1;
        if self.unexpected <= 20 {
            println!(
                "fuzz: UNEXPECTED seed {} call {} trap {} args [{:#x}, {:#x}, {:#x}, {:#x}, {:#x}, {:#x}] -> {}: {}",
                self.seed, self.iteration, nr, args[0], args[1], args[2], args[3], args[4], args[5], r, why
            );
        }
    }

    fn is_protected(&self, name: u64) -> bool {
        name == self.host
            || name == self.self_task
            || name == self.self_thread
            || name == self.inbox
            || name == self.server
            || name == self.server_thread
            || self.children.iter().any(|c| c.live && c.task == name)
    }

    fn is_copy(&self, name: u64) -> bool {
        self.children.iter().any(|c| c.live && c.copy && c.task == name)
    }

    /// Destroy a name the harness made (not a protected one) and remember it as stale.
    fn release(&mut self, name: u64) {
        if name == 0 || name >= u64::from(PORT_DEAD) || self.is_protected(name) {
            return;
        }
        self.call(trap::PORT_DESTROY, [name, 0, 0, 0, 0, 0], Expect::Zero);
        self.stale.push(name);
    }

    /// Keep a name for later calls (`kind`: `right_type` bits, a hint).
    fn remember(&mut self, name: u64, kind: u64) {
        if name == 0 || name >= u64::from(PORT_DEAD) || self.is_protected(name) {
            return;
        }
        if let Some(e) = self.pool[..self.pool_len].iter_mut().find(|e| e.name == name) {
            e.kind |= kind;
            return;
        }
        let entry = Entry { name, kind };
        if self.pool_len < POOL {
            self.pool[self.pool_len] = entry;
            self.pool_len += 1;
        } else {
            let i = self.rng.below(POOL as u64) as usize;
            let old = core::mem::replace(&mut self.pool[i], entry);
            self.release(old.name);
        }
    }

    fn forget(&mut self, name: u64) {
        if let Some(i) = self.pool[..self.pool_len].iter().position(|e| e.name == name) {
            self.pool_len -= 1;
            self.pool[i] = self.pool[self.pool_len];
        }
        self.stale.push(name);
    }

    fn add_region(&mut self, address: u64, size: u64) {
        let (old, old_size) = self.regions.push((address, size));
        if old != 0 {
            self.call(trap::VM_DEALLOCATE, [self.self_task, old, old_size, 0, 0, 0], Expect::Any);
        }
    }

    // ---------------------------------------------------------------- argument pools

    /// A name that is no right: stale, forged or out of range.
    fn bad_name(&mut self) -> u64 {
        let some = self.pool_name();
        match self.rng.below(9) {
            0 => 0,
            1 => u64::from(PORT_DEAD),
            2 => self.stale.items[self.rng.below(RING as u64) as usize],
            3 => self.stale.items[self.rng.below(RING as u64) as usize],
            4 => some ^ (1 << 24), // another generation of a live slot
            5 => some | (1 << 32),
            6 => u64::MAX,
            7 => self.rng.next() & 0xffff_ffff,
            _ => self.rng.below(1 << 12) + 1,
        }
    }

    fn pool_name(&mut self) -> u64 {
        if self.pool_len == 0 {
            return self.inbox;
        }
        self.pool[self.rng.below(self.pool_len as u64) as usize].name
    }

    /// A pool entry with one of `kinds` bits, if any.
    fn pool_kind(&mut self, kinds: u64) -> Option<u64> {
        let n = self.pool[..self.pool_len].iter().filter(|e| e.kind & kinds != 0).count();
        if n == 0 {
            return None;
        }
        let k = self.rng.below(n as u64) as usize;
        self.pool[..self.pool_len].iter().filter(|e| e.kind & kinds != 0).nth(k).map(|e| e.name)
    }

    fn live_child(&mut self) -> Option<u64> {
        let n = self.children.iter().filter(|c| c.live).count();
        if n == 0 {
            return None;
        }
        let k = self.rng.below(n as u64) as usize;
        self.children.iter().filter(|c| c.live).nth(k).map(|c| c.task)
    }

    fn any_name(&mut self) -> u64 {
        match self.rng.below(10) {
            0..=4 => self.pool_name(),
            5 => self.rng.pick(&[self.host, self.self_task, self.self_thread, self.inbox, self.server]),
            6 => self.live_child().unwrap_or(self.self_task),
            _ => self.bad_name(),
        }
    }

    /// A receive right (to receive on, to make rights from).
    fn port_name(&mut self) -> u64 {
        match self.rng.below(10) {
            0..=5 => self.pool_kind(right_type::RECEIVE).unwrap_or(self.inbox),
            6 => self.rng.pick(&[self.inbox, self.server]),
            7 => self.pool_kind(right_type::PORT_SET).unwrap_or(self.inbox),
            _ => self.any_name(),
        }
    }

    /// A name to send to.
    fn send_name(&mut self) -> u64 {
        match self.rng.below(10) {
            0..=4 => self
                .pool_kind(right_type::SEND | right_type::SEND_ONCE | right_type::RECEIVE)
                .unwrap_or(self.inbox),
            5 => self.rng.pick(&[self.inbox, self.server, self.host, self.self_task]),
            _ => self.any_name(),
        }
    }

    fn task_name(&mut self) -> u64 {
        match self.rng.below(10) {
            0..=5 => self.live_child().unwrap_or(self.self_task),
            6..=7 => self.self_task,
            8 => self.any_name(),
            _ => self.bad_name(),
        }
    }

    fn host_name(&mut self) -> u64 {
        if self.rng.chance(85) { self.host } else { self.any_name() }
    }

    fn thread_name(&mut self) -> u64 {
        match self.rng.below(10) {
            0..=4 => self.child_threads.items[self.rng.below(RING as u64) as usize],
            5 => self.own_threads.items[self.rng.below(RING as u64) as usize],
            6 => self.rng.pick(&[self.self_thread, self.server_thread]),
            7 => self.any_name(),
            _ => self.bad_name(),
        }
    }

    fn disposition(&mut self) -> u64 {
        match self.rng.below(10) {
            0..=7 => u64::from(self.rng.pick(&DISPOSITIONS)),
            8 => self.rng.below(256),
            _ => self.rng.next(),
        }
    }

    /// A right carried with a disposition, made safe for the harness: its own names are only
    /// copied or made from, never moved.
    fn carried(&self, name: u64, how: u64) -> u64 {
        let moves = [disposition::MOVE_RECEIVE, disposition::MOVE_SEND, disposition::MOVE_SEND_ONCE];
        if self.is_protected(name) && moves.iter().any(|&m| u64::from(m) == how) {
            return u64::from(if name == self.inbox || name == self.server {
                disposition::MAKE_SEND
            } else {
                disposition::COPY_SEND
            });
        }
        how
    }

    /// A pointer the kernel reads `len` bytes from.
    fn read_ptr(&mut self, len: u64) -> u64 {
        match self.rng.below(20) {
            0..=12 => self.scratch_ptr(len),
            13 => SCRATCH_END - (self.rng.below(len.clamp(1, 64)) + 1), // straddles the end
            14 => copy_child_main as *const () as u64,                  // this task's code
            15 => PLAY + self.rng.below(PLAY_PAGES) * PAGE,
            _ => self.rng.pick(&BAD_POINTERS),
        }
    }

    /// A pointer the kernel writes `len` bytes to: only the scratch region, or bad.
    fn write_ptr(&mut self, len: u64) -> u64 {
        match self.rng.below(20) {
            0..=13 => self.scratch_ptr(len),
            14 => SCRATCH_END - (self.rng.below(len.clamp(1, 64)) + 1),
            _ => self.rng.pick(&BAD_POINTERS),
        }
    }

    fn scratch_ptr(&mut self, len: u64) -> u64 {
        let room = SCRATCH_SIZE.saturating_sub(len.min(SCRATCH_SIZE));
        let offset = self.rng.below(room + 1);
        SCRATCH + if self.rng.chance(80) { offset & !7 } else { offset }
    }

    /// A byte count for a copy.
    fn length(&mut self, typical: u64) -> u64 {
        match self.rng.below(12) {
            0 => 0,
            1 => 1,
            2..=5 => self.rng.below(typical) + 1,
            6 => PAGE,
            7 => typical,
            8 => 1 << 40,
            9 => u64::MAX,
            10 => (1 << 30) + 1,
            _ => self.rng.below(SCRATCH_SIZE * 2),
        }
    }

    /// A size for the vm traps.
    fn vm_size(&mut self) -> u64 {
        match self.rng.below(16) {
            0 => 0,
            1 => self.rng.below(PAGE - 1) + 1, // unaligned
            2..=9 => (self.rng.below(8) + 1) * PAGE,
            10 => (self.rng.below(256) + 1) * PAGE,
            11 => (1 << 30) + PAGE,
            12 => 1 << 40,
            13 => !(PAGE - 1), // the last page of the address space
            14 if self.o.longvm => (self.rng.below(1 << 18) + 1) * PAGE,
            14 => (self.rng.below(64) + 1) * PAGE,
            _ => self.rng.next(),
        }
    }

    fn protection(&mut self) -> u64 {
        match self.rng.below(8) {
            0..=5 => self.rng.below(4),
            6 => self.rng.below(256),
            _ => self.rng.next(),
        }
    }

    /// An address in `task` for a vm trap. In this task only the playground, its "anywhere"
    /// zone and (when `scratch_ok`) the scratch region, or bad ones.
    ///
    /// `maps`: the trap maps pages there. In this task those never go at its regions: a
    /// region with a larger size runs past where "anywhere" placement is, and out-of-line
    /// memory or DMA placed there later would map over them (a known bug, option `anywhere`).
    fn vm_address(&mut self, task: u64, anywhere_ok: bool, scratch_ok: bool, maps: bool) -> u64 {
        let bad = [0x1001, KERNEL_IMAGE, DIRECT_MAP, NON_CANONICAL, !(PAGE - 1), 0];
        if task == self.self_task {
            return match self.rng.below(12) {
                0..=1 if anywhere_ok => 0,
                0..=5 => PLAY + self.rng.below(PLAY_PAGES) * PAGE,
                6..=7 => {
                    let (a, _) = self.regions.items[self.rng.below(RING as u64) as usize];
                    let ahead = ANYWHERE + self.rng.below(256) * PAGE;
                    if self.o.anywhere {
                        if a != 0 { a } else { ahead }
                    } else if a != 0 && !maps {
                        a
                    } else {
                        PLAY
                    }
                }
                8 if scratch_ok => SCRATCH + self.rng.below(SCRATCH_SIZE / PAGE) * PAGE,
                9 => PLAY + self.rng.below(PAGE * 4), // unaligned mostly
                _ => self.rng.pick(&bad),
            };
        }
        match self.rng.below(12) {
            0..=1 if anywhere_ok => 0,
            0..=4 => self.rng.pick(&[STUB_AT, DATA_AT, STACK_AT, STACK_AT + PAGE, DATA_AT + PAGE]),
            // Ahead of where "anywhere" placement is, only with `anywhere` (module doc).
            5 if self.o.anywhere => ANYWHERE + self.rng.below(64) * PAGE,
            5 => DATA_AT,
            6 => TOP_PAGE,
            // USER_END - 8 (one of BAD_POINTERS) stays unmapped in this task: TOP_PAGE is
            // only ever mapped in children.
            // A copy of this task has its data at the same addresses.
            7 => self.rng.pick(&[&raw const CANARY as u64, SCRATCH, PLAY]),
            8 => (self.rng.next() & (USER_END - 1)) & !(PAGE - 1),
            9 => STUB_AT + self.rng.below(PAGE),
            _ => self.rng.pick(&bad),
        }
    }

    /// An instruction pointer for a thread in another task.
    fn child_rip(&mut self) -> u64 {
        match self.rng.below(8) {
            0..=3 => STUB_AT + self.rng.below(64),
            4 => USER_END - 1 - self.rng.below(16),
            5 => DATA_AT,
            6 => self.rng.next() & (USER_END - 1),
            _ => self.rng.pick(&BAD_POINTERS),
        }
    }

    fn child_rsp(&mut self) -> u64 {
        match self.rng.below(6) {
            0..=3 => STACK_AT + STACK_SIZE - 8 * (self.rng.below(8) + 1),
            4 => self.rng.next() & (USER_END - 1),
            _ => self.rng.pick(&BAD_POINTERS),
        }
    }

    /// An FS base: canonical unless `fsbase`.
    fn fs_base(&mut self) -> u64 {
        let v = match self.rng.below(6) {
            0 => 0,
            1 => DATA_AT,
            2 => KERNEL_IMAGE,
            3 => USER_END - 8,
            4 => NON_CANONICAL,
            _ if self.o.fsbase => NON_CANONICAL_HIGH - self.rng.below(1 << 20) * PAGE,
            _ => self.rng.next(),
        };
        let canonical = !(USER_END..DIRECT_MAP).contains(&v);
        if canonical || self.o.fsbase { v } else { v & (USER_END - 1) }
    }

    fn registers(&mut self) -> Registers {
        let mut r = Registers::default();
        for v in [
            &mut r.rax, &mut r.rbx, &mut r.rcx, &mut r.rdx, &mut r.rsi, &mut r.rdi, &mut r.rbp, &mut r.r8,
            &mut r.r9, &mut r.r10, &mut r.r11, &mut r.r12, &mut r.r13, &mut r.r14, &mut r.r15,
        ] {
            *v = if self.rng.chance(50) { self.rng.below(64) } else { self.rng.next() };
        }
        r.rip = self.child_rip();
        r.rsp = self.child_rsp();
        r.rflags = if self.rng.chance(50) { 0x202 } else { self.rng.next() };
        r.fs_base = self.fs_base();
        r
    }

    // ---------------------------------------------------------------- one iteration

    fn step(&mut self) {
        match self.rng.below(1000) {
            0..=579 => self.random_trap(),
            580..=739 => self.message(),
            740..=789 => self.rpc(),
            790..=839 => self.foreign(),
            840..=869 => self.unknown_trap(),
            870..=884 => self.spawn(false),
            885..=889 => self.spawn(true),
            890..=899 => {
                let i = self.rng.below(CHILDREN as u64) as usize;
                self.end_child(i);
            }
            900..=949 => {
                let name = self.port_name();
                self.drain(name, 2);
            }
            _ => {
                let inbox = self.inbox;
                self.drain(inbox, 4);
            }
        }
    }

    fn unknown_trap(&mut self) {
        let nr = match self.rng.below(8) {
            0 => LAST_TRAP - 1,
            1 => LAST_TRAP - 2,
            2 => -100,
            3 => -1000,
            4 => i64::MIN,
            5 => -(1 << 31),
            6 => -(1 << 32),
            _ => LAST_TRAP - 1 - (self.rng.below(1 << 40) as i64),
        };
        let args = core::array::from_fn(|_| self.rng.next());
        self.call(nr, args, Expect::Any);
    }

    fn foreign(&mut self) {
        let nr = match self.rng.below(8) {
            0..=4 => self.rng.below(512) as i64,
            5 => (1 << 31) + self.rng.below(4) as i64,
            6 => i64::MAX,
            _ => (self.rng.next() >> 1) as i64,
        };
        let args =
            core::array::from_fn(|_| if self.rng.chance(50) { self.rng.below(64) } else { self.rng.next() });
        self.call(nr, args, Expect::Any);
    }

    fn random_trap(&mut self) {
        let nr = -(self.rng.below(-LAST_TRAP as u64) as i64 + 1);
        match nr {
            trap::DEBUG_WRITE => {
                let len = match self.rng.below(8) {
                    0 => 0,
                    1..=5 => self.rng.below(40) + 1,
                    6 => self.rng.pick(&[4096, 4097]),
                    _ => self.length(64),
                };
                // Only text the fuzzer wrote (other memory would put raw bytes into the log):
                // printable and short, or not UTF-8 at all (the kernel then prints a marker).
                let ptr = self.write_ptr(len);
                let mut text = *b"fuzz debug_write ........................";
                if len > 40 {
                    text[0] = 0xff;
                }
                put(ptr, &text[..(len as usize).min(text.len())]);
                let expect =
                    if len > 4096 || definitely_bad(ptr, len) { Expect::Fail } else { Expect::Exactly(len) };
                self.call(nr, [ptr, len, 0, 0, 0, 0], expect);
            }
            trap::MACH_MSG => self.message(),
            trap::PORT_ALLOCATE => {
                let r = self.call(nr, [0; 6], Expect::Name);
                if r > 0 {
                    self.remember(r as u64, right_type::RECEIVE);
                }
            }
            trap::PORT_ALLOCATE_SET => {
                let r = self.call(nr, [0; 6], Expect::Name);
                if r > 0 {
                    self.remember(r as u64, right_type::PORT_SET);
                }
            }
            trap::PORT_DEALLOCATE | trap::PORT_DESTROY => {
                let name = self.any_name();
                if self.is_protected(name) {
                    return;
                }
                if self.call(nr, [name, 0, 0, 0, 0, 0], Expect::Zero) == 0 && nr == trap::PORT_DESTROY {
                    self.forget(name);
                }
            }
            trap::PORT_TYPE => {
                let name = self.any_name();
                self.call(nr, [name, 0, 0, 0, 0, 0], Expect::Bits);
            }
            trap::PORT_MOVE_MEMBER => {
                let member = self.port_name();
                let set = match self.rng.below(4) {
                    0 => 0,
                    1..=2 => self.pool_kind(right_type::PORT_SET).unwrap_or(0),
                    _ => self.any_name(),
                };
                if self.is_protected(member) {
                    return;
                }
                self.call(nr, [member, set, 0, 0, 0, 0], Expect::Zero);
            }
            trap::PORT_MAKE_SEND => {
                let name = self.port_name();
                let r = self.call(nr, [name, 0, 0, 0, 0, 0], Expect::Exactly(name));
                if r > 0 {
                    self.remember(name, right_type::SEND);
                }
            }
            trap::PORT_SET_QUEUE_LIMIT => {
                let name = self.port_name();
                let limit = self.rng.choose(&[0, 1, 2, 16, 1024, 1025]);
                if !self.is_protected(name) {
                    self.call(nr, [name, limit, 0, 0, 0, 0], Expect::Zero);
                }
            }
            trap::TASK_SELF => {
                self.call(nr, [0; 6], Expect::Exactly(self.self_task));
            }
            trap::THREAD_SELF => {
                self.call(nr, [0; 6], Expect::Exactly(self.self_thread));
            }
            trap::THREAD_CREATE => {
                let task = self.task_name();
                let own = task == self.self_task;
                let (rip, rsp) = if own {
                    // Its own task: only a thread that ends at once.
                    (fuzz_thread_exit as *const () as u64, self.rng.next() & (USER_END - 1))
                } else {
                    (self.child_rip(), self.child_rsp())
                };
                let args = [task, rip, rsp, self.rng.next(), self.rng.next(), 0];
                let r = self.call(nr, args, Expect::Name);
                if r > 0 {
                    let old =
                        if own { self.own_threads.push(r as u64) } else { self.child_threads.push(r as u64) };
                    self.release(old);
                    if !own {
                        // Never above the harness: a spinning thread would starve it.
                        self.call(
                            trap::THREAD_SET_PRIORITY,
                            [r as u64, PRIORITY - 1, 0, 0, 0, 0],
                            Expect::Any,
                        );
                    }
                }
            }
            trap::TASK_CREATE => {
                let i = self.child_slot();
                let r = self.call(nr, [0; 6], Expect::Name);
                if r > 0 {
                    self.adopt(i, r as u64, false, b"t");
                }
            }
            trap::TASK_CREATE_COPY => {
                let parent = self.task_name();
                let i = self.child_slot();
                let r = self.call(nr, [parent, 0, 0, 0, 0, 0], Expect::Name);
                if r > 0 {
                    self.adopt(i, r as u64, true, b"y");
                }
            }
            trap::TASK_TERMINATE | trap::TASK_SUSPEND => {
                let task = self.task_name();
                if task == self.self_task {
                    return;
                }
                self.call(nr, [task, 0, 0, 0, 0, 0], Expect::Zero);
            }
            trap::TASK_RESUME => {
                let task = self.task_name();
                self.call(nr, [task, 0, 0, 0, 0, 0], Expect::Zero);
            }
            trap::VM_ALLOCATE => {
                let task = self.task_name();
                let address = self.vm_address(task, true, false, true);
                let size = self.vm_size();
                let prot = self.protection();
                let expect = if address == 0 { Expect::Page } else { Expect::Exactly(address) };
                let r = self.call(nr, [task, address, size, prot, 0, 0], expect);
                if r > 0 && task == self.self_task && address == 0 {
                    self.add_region(r as u64, size);
                }
            }
            trap::VM_DEALLOCATE => {
                let task = self.task_name();
                let address = self.vm_address(task, false, false, false);
                let size = self.vm_size();
                self.call(nr, [task, address, size, 0, 0, 0], Expect::Zero);
            }
            trap::VM_PROTECT => {
                let task = self.task_name();
                let address = self.vm_address(task, false, false, false);
                let size = self.vm_size();
                let prot = self.protection();
                self.call(nr, [task, address, size, prot, 0, 0], Expect::Zero);
            }
            trap::VM_WRITE | trap::VM_READ => {
                let task = self.task_name();
                let len = self.vm_length();
                let (address, pointer) = if nr == trap::VM_WRITE {
                    (self.vm_address(task, false, true, false), self.read_ptr(len))
                } else {
                    let address = if task == self.self_task && self.rng.chance(30) {
                        self.read_ptr(len) // reading its own memory anywhere is harmless
                    } else {
                        self.vm_address(task, false, true, false)
                    };
                    (address, self.write_ptr(len))
                };
                let expect = if definitely_bad(pointer, len) && len <= 1 << 30 {
                    Expect::Fail
                } else {
                    Expect::Exactly(len)
                };
                self.call(nr, [task, address, pointer, len, 0, 0], expect);
            }
            trap::TASK_SET_SPECIAL_PORT => {
                let task = self.task_name();
                let mut which = self.rng.choose(&[0, 1, 2, 2, 3]);
                let name = if self.rng.chance(20) { 0 } else { self.send_name() };
                if task == self.self_task && which < 2 && name != 0 {
                    which = special_port::BOOTSTRAP;
                }
                self.call(nr, [task, which, name, 0, 0, 0], Expect::Zero);
            }
            trap::TASK_GET_SPECIAL_PORT => {
                let task = self.task_name();
                let which = self.rng.choose(&[0, 1, 2, 3]);
                let r = self.call(nr, [task, which, 0, 0, 0, 0], Expect::NameOrNone);
                if r > 0 {
                    self.remember(r as u64, right_type::SEND);
                }
            }
            trap::HOST_MODULE_INFO => {
                let host = self.host_name();
                let index = self.rng.choose(&[0, 0, 1, 2, 64]);
                let size = core::mem::size_of::<mach_abi::ModuleInfo>() as u64;
                let out = self.write_ptr(size);
                let expect = if definitely_bad(out, size) { Expect::Fail } else { Expect::Zero };
                self.call(nr, [host, index, out, 0, 0, 0], expect);
            }
            trap::HOST_MODULE_MAP => {
                let host = self.host_name();
                let index = self.rng.choose(&[0, 0, 1, 2]);
                let address = self.vm_address(self.self_task, false, false, true);
                self.call(nr, [host, index, address, 0, 0, 0], Expect::Any);
            }
            trap::TASK_NOTIFY_ENDED => {
                let task = self.task_name();
                let port = if self.rng.chance(50) { self.inbox } else { self.port_name() };
                let how = self.disposition();
                let how = self.carried(port, how);
                self.call(nr, [task, port, how, 0, 0, 0], Expect::Zero);
            }
            trap::TASK_SET_NAME => {
                // Children keep the names the harness gave them (see `adopt`).
                let task = self.task_name();
                let task = if self.is_protected(task) { self.self_task } else { task };
                let some = self.rng.below(40);
                let len = self.rng.choose(&[0, 1, 5, 12, 32, 33, some]);
                let text = self.write_ptr(len.min(64)); // a name the fuzzer wrote: no control bytes
                let mut name = [0u8; 40];
                for b in name.iter_mut() {
                    *b = if self.rng.chance(3) { 0xff } else { b'a' + self.rng.below(26) as u8 };
                }
                put(text, &name[..(len.min(40)) as usize]);
                let expect = if (1..=32).contains(&len) && definitely_bad(text, len) {
                    Expect::Fail
                } else {
                    Expect::Zero
                };
                self.call(nr, [task, text, len, 0, 0, 0], expect);
            }
            trap::PORT_REQUEST_NOTIFICATION => {
                let name = self.any_name();
                let kind = self.rng.choose(&[0, 1, 2, 3, 3, 4]);
                let mut port = if self.rng.chance(40) { self.inbox } else { self.port_name() };
                let mut how = self.disposition();
                // The receive right travels to the notify port: never for a port the harness
                // needs (its destruction must end the helper), and only to the drained inbox.
                if kind == notify::PORT_DESTROYED && self.is_protected(name) {
                    return;
                }
                if kind == notify::PORT_DESTROYED && !self.o.selfrecv {
                    port = self.inbox;
                    how = u64::from(disposition::MAKE_SEND_ONCE);
                }
                let how = self.carried(port, how);
                self.call(nr, [name, kind, port, how, 0, 0], Expect::Zero);
            }
            trap::HOST_IO_PORTS => {
                let host = self.host_name();
                let task = self.task_name();
                let some = self.rng.below(65536);
                let first = self.rng.choose(&[0, 0x80, 0x3f8, 0xf4, 0xffff, 65536, some]);
                let some = self.rng.below(1024);
                let count = self.rng.choose(&[0, 1, 8, 65536, some]);
                self.call(nr, [host, task, first, count, 0, 0], Expect::Zero);
            }
            trap::HOST_MAP_PHYSICAL => self.map_physical(),
            trap::HOST_DMA_ALLOCATE => {
                let host = self.host_name();
                let task = self.task_name();
                if self.is_copy(task) && !self.o.anywhere {
                    return;
                }
                let size = match self.rng.below(8) {
                    0 => 0,
                    1..=4 => (self.rng.below(4) + 1) * PAGE,
                    5 => self.rng.pick(&[16 << 20, (16 << 20) + PAGE, 100]),
                    6 => (self.rng.below(64) + 1) * PAGE,
                    _ => self.rng.next(),
                };
                let out = self.write_ptr(16);
                let expect = if definitely_bad(out, 16) { Expect::Fail } else { Expect::Zero };
                let r = self.call(nr, [host, task, size, out, 0, 0], expect);
                if r == 0
                    && task == self.self_task
                    && let Some(address) = get::<u64>(out)
                {
                    self.add_region(address, size);
                }
            }
            trap::HOST_IRQ_REGISTER => {
                let host = self.host_name();
                let irq = self.rng.choose(&[0, 1, 2, 3, 4, 5, 7, 8, 9, 10, 11, 12, 14, 15, 16]);
                let port = if self.rng.chance(30) { 0 } else { self.port_name() };
                let any = self.disposition();
                let how = self.rng.pick(&[
                    u64::from(disposition::MAKE_SEND),
                    u64::from(disposition::COPY_SEND),
                    u64::from(disposition::MOVE_SEND),
                    any,
                ]);
                let how = self.carried(port, how);
                self.call(nr, [host, irq, port, how, 0, 0], Expect::Zero);
            }
            trap::HOST_IRQ_ACK => {
                let host = self.host_name();
                let irq = self.rng.choose(&[0, 1, 2, 3, 4, 8, 14, 15, 16]);
                self.call(nr, [host, irq, 0, 0, 0, 0], Expect::Zero);
            }
            trap::HOST_TRACE_TASK => {
                let host = self.host_name();
                let task = self.task_name();
                let on = self.rng.choose(&[0, 1, 2]);
                self.call(nr, [host, task, on, 0, 0, 0], Expect::Zero);
            }
            trap::HOST_TRACE_READ => {
                let host = self.host_name();
                let some = self.rng.below(1 << 16);
                let from = self.rng.pick(&[0, 1, some, u64::MAX]);
                let max = self.rng.choose(&[0, 1, 4, 64, 256, 257]);
                let bytes = max.min(256) * core::mem::size_of::<mach_abi::trace::TraceRecord>() as u64;
                let buffer = self.write_ptr(bytes);
                let expect =
                    if definitely_bad(buffer, bytes) { Expect::Fail } else { Expect::AtMost(max.min(256)) };
                self.call(nr, [host, from, buffer, max, 0, 0], expect);
            }
            trap::THREAD_GET_STATE => {
                let mut thread = self.thread_name();
                if thread == self.self_thread && !self.o.getself {
                    thread = self.server_thread;
                }
                let out = self.write_ptr(REGISTERS_SIZE);
                let expect = if definitely_bad(out, REGISTERS_SIZE) { Expect::Fail } else { Expect::Zero };
                let r = self.call(nr, [thread, out, 0, 0, 0, 0], expect);
                // This thread's own registers are those of this trap: its code and its stack.
                if r == 0
                    && thread == self.self_thread
                    && let Some(registers) = get::<Registers>(out)
                {
                    let stack = mach_abi::layout::USER_STACK_TOP - mach_abi::layout::USER_STACK_SIZE;
                    let code = (0x40_0000..0x1000_0000).contains(&registers.rip);
                    if !code || !(stack..mach_abi::layout::USER_STACK_TOP).contains(&registers.rsp) {
                        self.report(
                            nr,
                            [thread, out, 0, 0, 0, 0],
                            r,
                            "the caller's own registers are not its own",
                        );
                    }
                }
            }
            trap::THREAD_SET_STATE => {
                // Only children's threads, dead or made-up names, or the caller itself (which
                // the kernel refuses): never another thread of this task.
                let thread = match self.rng.below(10) {
                    0..=6 => self.child_threads.items[self.rng.below(RING as u64) as usize],
                    7 => self.self_thread,
                    8 => self.stale.items[self.rng.below(RING as u64) as usize],
                    _ => {
                        let forged = (self.rng.next() & 0xffff_ffff) | (1 << 31);
                        self.rng.pick(&[0, u64::from(PORT_DEAD), u64::MAX, forged])
                    }
                };
                let own = self.own_threads.items.contains(&thread) || thread == self.server_thread;
                if own || (self.is_protected(thread) && thread != self.self_thread) {
                    return;
                }
                let registers = self.registers();
                let input = self.read_ptr(REGISTERS_SIZE);
                put(input, as_bytes(&registers));
                let expect = if definitely_bad(input, REGISTERS_SIZE) || thread == self.self_thread {
                    Expect::Fail
                } else {
                    Expect::Zero
                };
                self.call(nr, [thread, input, 0, 0, 0, 0], expect);
            }
            trap::THREAD_SET_PRIORITY => {
                let thread = self.thread_name();
                let mut priority = self.rng.choose(&[0, 1, 8, 15, 16, 31, 32]);
                if thread == self.self_thread || thread == self.server_thread {
                    priority = PRIORITY;
                } else if (PRIORITY..=mach_abi::MAX_PRIORITY).contains(&priority) {
                    priority = PRIORITY - 1;
                }
                self.call(nr, [thread, priority, 0, 0, 0, 0], Expect::AtMost(mach_abi::MAX_PRIORITY));
            }
            trap::VM_MAP => {
                let task = self.task_name();
                let address = self.vm_address(task, true, false, true);
                let size = match self.rng.below(8) {
                    0..=3 => PAGE,
                    4..=5 => (self.rng.below(4) + 1) * PAGE,
                    _ => self.vm_size(),
                };
                let source = self.task_name();
                let source_address = if source == self.self_task {
                    // Only memory the harness never relies on (see the module documentation).
                    match self.rng.below(4) {
                        0 => SCRATCH + self.rng.below(SCRATCH_SIZE / PAGE) * PAGE,
                        _ => self.vm_address(source, false, false, false),
                    }
                } else {
                    self.vm_address(source, false, false, false)
                };
                let prot = self.protection();
                let expect = if address == 0 { Expect::Page } else { Expect::Exactly(address) };
                let r = self.call(nr, [task, address, size, source, source_address, prot], expect);
                if r > 0 && task == self.self_task && address == 0 {
                    self.add_region(r as u64, size);
                }
            }
            trap::THREAD_ID => {
                let thread = self.thread_name();
                self.call(nr, [thread, 0, 0, 0, 0, 0], Expect::Any);
            }
            trap::TASK_ID => {
                let task = self.task_name();
                self.call(nr, [task, 0, 0, 0, 0, 0], Expect::Any);
            }
            trap::HOST_TRACE_PORT => {
                let host = self.host_name();
                self.call(nr, [host, 0, 0, 0, 0, 0], Expect::Any);
            }
            trap::TRACE_TASK_NAME => {
                let host = self.host_name();
                let any = self.rng.next();
                let task = self.rng.pick(&[0, 1, 2, any]);
                let size = self.rng.choose(&[0, 1, 16, 64, 4096]);
                let out = self.write_ptr(size.max(1));
                self.call(nr, [host, task, out, size, 0, 0], Expect::Any);
            }
            trap::THREAD_GET_FPU_STATE => {
                let thread = self.thread_name();
                let out = self.write_ptr(512);
                self.call(nr, [thread, out, 0, 0, 0, 0], Expect::Any);
            }
            // Random state: MXCSR is often invalid (refused); the children's threads only,
            // so the harness's own x87/SSE registers stay sane.
            trap::THREAD_SET_FPU_STATE => {
                let thread = self.child_threads.items[self.rng.below(RING as u64) as usize];
                let ours = thread == self.self_thread
                    || thread == self.server_thread
                    || self.own_threads.items.contains(&thread);
                let thread = if ours { self.bad_name() } else { thread };
                let state = self.write_ptr(512);
                self.call(nr, [thread, state, 0, 0, 0, 0], Expect::Any);
            }
            // Only the children's threads (or names that are no thread): the harness's own
            // threads must live.
            trap::THREAD_TERMINATE => {
                let thread = match self.rng.below(10) {
                    0..=5 => self.child_threads.items[self.rng.below(RING as u64) as usize],
                    6..=7 => self.live_child().unwrap_or(self.host),
                    _ => self.bad_name(),
                };
                let ours = thread == self.self_thread
                    || thread == self.server_thread
                    || self.own_threads.items.contains(&thread);
                let thread = if ours { self.bad_name() } else { thread };
                self.call(nr, [thread, 0, 0, 0, 0, 0], Expect::Any);
            }
            trap::CLOCK_READ => {
                let clock = if self.rng.chance(80) { self.rng.below(3) } else { self.rng.next() };
                let other = self.rng.next();
                self.call(nr, [clock, other, 0, 0, 0, 0], Expect::Any);
            }
            trap::SLEEP => {
                let ms = match self.rng.below(10) {
                    0..=7 => 0,
                    8 => self.rng.below(3) + 1,
                    _ => self.rng.pick(&[5, 10, 20]),
                };
                self.call(nr, [ms, 0, 0, 0, 0, 0], Expect::Zero);
            }
            // task_exit and thread_exit would end the harness: an unknown trap instead.
            _ => self.unknown_trap(),
        }
    }

    fn vm_length(&mut self) -> u64 {
        if self.o.longvm { self.length(SCRATCH_SIZE) } else { self.length(SCRATCH_SIZE).min((1 << 20) + 1) }
    }

    fn map_physical(&mut self) {
        let host = self.host_name();
        let task = self.task_name();
        // Harmless device ranges, RAM (refused), unaligned, past 2^52; above 4 GiB (beyond the
        // direct map) only with `physhigh`.
        let (physical, ram) = match self.rng.below(10) {
            0 => (0xa0000 + self.rng.below(32) * PAGE, false),
            1 => (0xb8000, false),
            2 => (0xc0000 + self.rng.below(16) * PAGE, false),
            3 => (0xfd00_0000 + self.rng.below(256) * PAGE, false),
            4 => (0xfffc_0000, false),
            // Usable RAM (page 0 is not: the loaders never report it usable).
            5 => (self.rng.pick(&[0x1000, 0x10_0000, 0x100_0000, 0x400_0000]), true),
            6 => (0xa0000 + 1 + self.rng.below(PAGE - 1), false),
            7 => ((1 << 52) - PAGE + self.rng.pick(&[0, PAGE]), false),
            7..=9 if self.o.physhigh => ((1 << 32) + self.rng.below(1 << 20) * PAGE, false),
            _ => (self.rng.next(), false),
        };
        if !self.o.physhigh && (1 << 32..1 << 52).contains(&physical) {
            return;
        }
        let address = self.vm_address(task, false, false, true);
        let size = match self.rng.below(4) {
            0..=2 => (self.rng.below(8) + 1) * PAGE,
            _ => self.vm_size(),
        };
        if !self.o.physhigh && physical < 1 << 32 && physical.saturating_add(size) > 1 << 32 {
            return;
        }
        let valid = address != 0 && size != 0 && size.is_multiple_of(PAGE) && size <= 1 << 30;
        let expect = if ram && valid { Expect::Fail } else { Expect::Zero };
        let r = self.call(trap::HOST_MAP_PHYSICAL, [host, task, physical, address, size, 0], expect);
        if r == 0 && self.o.physhigh && physical >= 1 << 32 {
            // Read it back through the kernel (a known bug above the direct map).
            let out = self.scratch_ptr(PAGE);
            self.call(trap::VM_READ, [task, address, out, PAGE, 0, 0], Expect::Any);
        }
    }

    // ---------------------------------------------------------------- messages

    /// Build a message (often malformed) somewhere and `mach_msg` it, with any options but
    /// always both timeouts.
    fn message(&mut self) {
        let buffer = match self.rng.below(10) {
            0..=7 => SCRATCH + (self.rng.below(0x8000) & !7),
            8 => SCRATCH_END - self.rng.below(256) - 1, // straddles the unmapped page after
            _ => self.rng.pick(&BAD_POINTERS),
        };
        let mut header = MessageHeader::default();
        // A message carries names as 32 bits and dispositions as bytes: the filters below
        // look at what the kernel will see (a forged 0x1_0000_0004 is name 4 here).
        let remote = self.send_name() & 0xffff_ffff;
        let remote_how = self.disposition();
        let (local, local_how) = match self.rng.below(10) {
            0..=3 => (0, 0),
            4..=7 => (self.port_name(), u64::from(disposition::MAKE_SEND_ONCE)),
            _ => (self.any_name(), self.disposition()),
        };
        let local = local & 0xffff_ffff;
        let ports = match self.rng.below(10) {
            0..=5 => 0,
            6..=8 => self.rng.below(4) + 1,
            _ => self.rng.choose(&[64, 65, 255]) & 0xff,
        };
        let ools = match self.rng.below(10) {
            0..=7 => 0,
            8 => self.rng.below(2) + 1,
            _ => self.rng.choose(&[16, 17, 255]) & 0xff,
        };
        let data_size = match self.rng.below(10) {
            0..=6 => self.rng.below(65),
            7 => self.rng.below(16385),
            8 => self.rng.pick(&[16384, 16385, 0xffff_ffff]),
            _ => self.rng.next() & 0xffff_ffff,
        };
        header.id = self.rng.next() as u32;
        header.trace = if self.rng.chance(10) { self.rng.next() as u32 } else { 0 };
        header.port_count = ports as u8;
        header.ool_count = ools as u8;
        header.data_size = data_size as u32;
        header.remote = remote as u32;
        header.local = local as u32;
        // Its own receive rights travel only to the drained ports (no port in its own queue).
        let to_drained = remote == self.inbox || remote == self.server || self.o.selfrecv;
        // A message carries dispositions as bytes: filter the byte the kernel will see.
        let safe_how = |f: &Self, name: u64, how: u64| {
            let how = f.carried(name, how & 0xff);
            if how == u64::from(disposition::MOVE_RECEIVE) && !to_drained {
                u64::from(disposition::MAKE_SEND)
            } else {
                how
            }
        };
        header.remote_disposition = self.carried(remote, remote_how & 0xff) as u8;
        header.local_disposition = safe_how(self, local, local_how) as u8;
        if header.remote_disposition == disposition::MOVE_RECEIVE {
            header.remote_disposition = disposition::MAKE_SEND; // a port as its own destination
        }
        // `selfrecv`: now and then a port's receive right in a message to that very port.
        let own = if self.o.selfrecv && ports > 0 && self.rng.chance(20) {
            self.pool_kind(right_type::RECEIVE)
        } else {
            None
        };
        let own_queue = own.is_some();
        if let Some(port) = own {
            header.remote = port as u32;
            header.remote_disposition = disposition::MAKE_SEND;
        }
        let mut at = buffer + put(buffer, as_bytes(&header)) as u64;
        if own_queue {
            let mut descriptor = [0u8; 8];
            descriptor[..4].copy_from_slice(&header.remote.to_le_bytes());
            descriptor[4] = disposition::MOVE_RECEIVE;
            at += put(at, &descriptor) as u64;
        }
        for _ in u64::from(own_queue)..ports.min(70) {
            let name = if self.rng.chance(80) { self.any_name() } else { self.port_name() } & 0xffff_ffff;
            let how = self.disposition();
            let how = safe_how(self, name, how);
            let mut descriptor = [0u8; 8];
            descriptor[..4].copy_from_slice(&(name as u32).to_le_bytes());
            descriptor[4] = how as u8;
            if self.rng.chance(5) {
                descriptor[5] = self.rng.next() as u8;
            }
            at += put(at, &descriptor) as u64;
        }
        for _ in 0..ools.min(20) {
            let descriptor = self.ool_descriptor();
            at += put(at, &descriptor) as u64;
        }
        let mut filler = [0u8; 64];
        filler.iter_mut().for_each(|b| *b = self.rng.next() as u8);
        put(at, &filler[..(data_size.min(64)) as usize]);

        let mut opts = self.rng.pick(&[
            options::SEND,
            options::SEND,
            options::RECEIVE,
            options::SEND | options::RECEIVE,
        ]);
        if self.rng.chance(5) {
            opts = self.rng.next() & 0xff;
        }
        opts |= options::SEND_TIMEOUT | options::RECEIVE_TIMEOUT;
        let receive_size = self.rng.choose(&[0, 24, 100, 0x1000, 0x4400, 0x8000]);
        let receive_name =
            if opts & options::RECEIVE != 0 && self.rng.chance(30) { local } else { self.port_name() };
        let timeout = if self.rng.chance(95) { 0 } else { self.rng.below(5) + 1 };
        let send_bad = opts & options::SEND != 0 && opts & !options::KNOWN == 0 && definitely_bad(buffer, 24);
        let expect = if send_bad { Expect::Fail } else { Expect::Zero };
        let r = self.call(trap::MACH_MSG, [buffer, opts, receive_size, receive_name, timeout, 0], expect);
        if r == 0 && opts & options::RECEIVE != 0 {
            self.absorb(buffer);
        }
        if r < 0 && opts & options::SEND != 0 {
            // A refused message changes nothing: the inbox keeps its receive right (it is in
            // the message only as a right made from it).
            let t = self.call(trap::PORT_TYPE, [self.inbox, 0, 0, 0, 0, 0], Expect::Bits);
            if t < 0 || t as u64 & right_type::RECEIVE == 0 {
                self.report(
                    trap::MACH_MSG,
                    [buffer, opts, receive_size, receive_name, timeout, 0],
                    r,
                    "a refused message took the inbox's receive right",
                );
                self.dump_message(buffer);
                self.dump_recent();
            }
        }
    }

    /// Print a message's header and descriptors as built in the scratch region.
    fn dump_message(&self, buffer: u64) {
        let Some(h) = get::<MessageHeader>(buffer) else { return };
        println!(
            "fuzz: message at {buffer:#x}: remote {:#x}/{} local {:#x}/{} ports {} ools {} id {:#x} data {} trace {:#x}",
            h.remote,
            h.remote_disposition,
            h.local,
            h.local_disposition,
            h.port_count,
            h.ool_count,
            h.id,
            h.data_size,
            h.trace
        );
        for i in 0..u64::from(h.port_count) {
            let Some(d) = get::<[u8; 8]>(buffer + 24 + i * 8) else { return };
            println!(
                "fuzz:   port {i}: name {:#x} disposition {} reserved {:?}",
                u32::from_le_bytes([d[0], d[1], d[2], d[3]]),
                d[4],
                &d[5..]
            );
        }
        for i in 0..u64::from(h.ool_count) {
            let Some(d) = get::<[u64; 2]>(buffer + 24 + u64::from(h.port_count) * 8 + i * 16) else { return };
            println!(
                "fuzz:   ool {i}: address {:#x} size {:#x} flags {:#x}",
                d[0],
                d[1] & 0xffff_ffff,
                d[1] >> 32
            );
        }
    }

    fn ool_descriptor(&mut self) -> [u8; 16] {
        let address = match self.rng.below(10) {
            0..=3 => PLAY + self.rng.below(PLAY_PAGES) * PAGE,
            4 => SCRATCH + self.rng.below(SCRATCH_SIZE / PAGE) * PAGE,
            5 => {
                let (a, _) = self.regions.items[self.rng.below(RING as u64) as usize];
                a
            }
            6 => SCRATCH_END - PAGE, // with size > 1 page: runs into the unmapped page
            7 => PLAY + 1 + self.rng.below(PAGE - 1),
            _ => self.rng.pick(&BAD_POINTERS),
        };
        let size: u32 = match self.rng.below(8) {
            0 => 0,
            1 => 1,
            2..=4 => ((self.rng.below(4) + 1) * PAGE) as u32,
            5 => mach_abi::ipc::MAX_OOL_SIZE,
            6 => mach_abi::ipc::MAX_OOL_SIZE + 1,
            _ => self.rng.next() as u32,
        };
        let mut flags: u32 = match self.rng.below(8) {
            0..=4 => 0,
            5..=6 => ool_flags::DEALLOCATE,
            _ => self.rng.next() as u32,
        };
        // Pages leave the sender only from its playground and "anywhere" zone.
        let own_memory = (SCRATCH - PAGE..SCRATCH_END + PAGE).contains(&address) || address < ANYWHERE;
        if flags & ool_flags::DEALLOCATE != 0 && own_memory {
            flags &= !ool_flags::DEALLOCATE;
        }
        let mut d = [0u8; 16];
        d[..8].copy_from_slice(&address.to_le_bytes());
        d[8..12].copy_from_slice(&size.to_le_bytes());
        d[12..].copy_from_slice(&flags.to_le_bytes());
        d
    }

    /// An RPC to the helper thread: the IPC fast path when the message is plain.
    fn rpc(&mut self) {
        let reply = match self.pool_kind(right_type::RECEIVE) {
            Some(name) if self.rng.chance(90) => name,
            _ => {
                let r = self.call(trap::PORT_ALLOCATE, [0; 6], Expect::Name);
                if r <= 0 {
                    return;
                }
                self.remember(r as u64, right_type::RECEIVE);
                r as u64
            }
        };
        let data_size = self.rng.choose(&[0, 8, 64, 256, 257]) % 300;
        let header = MessageHeader {
            remote: self.server as u32,
            local: reply as u32,
            remote_disposition: if self.rng.chance(90) {
                disposition::COPY_SEND
            } else {
                disposition::MAKE_SEND
            },
            local_disposition: disposition::MAKE_SEND_ONCE,
            port_count: 0,
            ool_count: 0,
            id: self.rng.below(1000) as u32,
            data_size: data_size as u32,
            trace: 0,
        };
        let buffer = SCRATCH + (self.rng.below(0x8000) & !7);
        put(buffer, as_bytes(&header));
        let opts = options::SEND | options::RECEIVE | options::SEND_TIMEOUT | options::RECEIVE_TIMEOUT;
        let r = self.call(trap::MACH_MSG, [buffer, opts, 0x1000, reply, 20, 0], Expect::Zero);
        if r == 0 {
            self.absorb(buffer);
        }
    }

    /// Receive up to `budget` messages on `name` (polling) and take what they carry.
    fn drain(&mut self, name: u64, budget: usize) {
        for _ in 0..budget {
            let opts = options::RECEIVE | options::RECEIVE_TIMEOUT;
            if self.call(trap::MACH_MSG, [RECV_BUF, opts, RECV_SIZE, name, 0, 0], Expect::Zero) != 0 {
                break;
            }
            self.absorb(RECV_BUF);
        }
    }

    /// Take what a received message at `buffer` carries: rights into the pool, out-of-line
    /// regions into the region ring, forwarded requests answered.
    fn absorb(&mut self, buffer: u64) {
        let Some(header) = get::<MessageHeader>(buffer) else { return };
        self.received += 1;
        let ports = u64::from(header.port_count);
        let ools = u64::from(header.ool_count);
        let data_at = buffer + 24 + ports * 8 + ools * 16;
        if !in_scratch(buffer, data_at - buffer + u64::from(header.data_size)) {
            self.report(
                trap::MACH_MSG,
                [buffer, 0, 0, 0, 0, 0],
                0,
                "a received message larger than its buffer",
            );
            return;
        }
        for i in 0..ports {
            let Some(d) = get::<[u8; 8]>(buffer + 24 + i * 8) else { return };
            let name = u64::from(u32::from_le_bytes([d[0], d[1], d[2], d[3]]));
            let kind = match d[4] {
                received::RECEIVE => right_type::RECEIVE,
                received::SEND => right_type::SEND,
                received::SEND_ONCE => right_type::SEND_ONCE,
                _ => 0,
            };
            self.remember(name, kind);
        }
        for i in 0..ools {
            let Some(d) = get::<[u8; 16]>(buffer + 24 + ports * 8 + i * 16) else { return };
            let address = u64::from_le_bytes(d[..8].try_into().unwrap_or([0; 8]));
            let size = u64::from(u32::from_le_bytes(d[8..12].try_into().unwrap_or([0; 4])));
            if address != 0 {
                self.add_region(address, size.next_multiple_of(PAGE).max(PAGE));
            }
        }
        let remote = u64::from(header.remote);
        if remote == 0 || remote == u64::from(PORT_DEAD) {
            return;
        }
        let forwarded = (header.id == SYSCALL_MESSAGE || header.id == EXCEPTION_MESSAGE)
            && header.remote_disposition == received::SEND_ONCE;
        if forwarded && !self.o.badreply {
            self.answer(header.id, remote, data_at, u64::from(header.data_size));
        } else {
            let kind = match header.remote_disposition {
                received::RECEIVE => right_type::RECEIVE,
                received::SEND => right_type::SEND,
                _ => right_type::SEND_ONCE,
            };
            self.remember(remote, kind);
            if forwarded {
                self.answer(header.id, remote, data_at, u64::from(header.data_size));
            }
        }
    }

    /// Answer a forwarded system call or fault (well formed unless `badreply`), or drop it.
    fn answer(&mut self, id: u32, reply: u64, data_at: u64, data_size: u64) {
        self.forwarded += 1;
        if self.rng.chance(15) {
            self.call(trap::PORT_DEALLOCATE, [reply, 0, 0, 0, 0, 0], Expect::Any);
            return;
        }
        let mut body = [0u8; 320];
        let mut len;
        if id == SYSCALL_MESSAGE {
            let size = core::mem::size_of::<SyscallRequest>() as u64;
            let Some(request) = get::<SyscallRequest>(data_at).filter(|_| data_size >= size) else {
                self.call(trap::PORT_DEALLOCATE, [reply, 0, 0, 0, 0, 0], Expect::Any);
                return;
            };
            let mut answer = SyscallReply {
                result: self.rng.choose(&[0, u64::MAX, ENOSYS as u64, 7]) as i64,
                flags: 0,
                copy_to: 0,
                registers: request.registers,
            };
            let mut extra = 0;
            if self.rng.chance(25) {
                answer.flags |= reply_flags::COPY_OUT;
                answer.copy_to = match self.rng.below(4) {
                    0..=1 => DATA_AT + self.rng.below(PAGE),
                    2 => STACK_AT + self.rng.below(STACK_SIZE),
                    _ => self.rng.pick(&BAD_POINTERS), // the call then answers -EFAULT
                };
                extra = self.rng.below(64) as usize;
            }
            if self.rng.chance(20) {
                answer.flags |= reply_flags::SET_FS_BASE;
                answer.registers.fs_base = self.fs_base();
            }
            if self.rng.chance(20) {
                answer.flags |= reply_flags::SET_REGISTERS;
                let elsewhere = STUB_AT + self.rng.below(64);
                answer.registers.rip = self.rng.pick(&[request.registers.rip, elsewhere]);
                let rsp = self.child_rsp() & (USER_END - 1);
                answer.registers.rsp = self.rng.pick(&[request.registers.rsp, rsp]);
                answer.registers.rflags = self.rng.next();
                answer.registers.fs_base = self.fs_base();
            }
            len = put_into(&mut body, as_bytes(&answer));
            for b in body[len..len + extra].iter_mut() {
                *b = self.rng.next() as u8;
            }
            len += extra;
        } else {
            let size = core::mem::size_of::<ExceptionRequest>() as u64;
            let Some(request) = get::<ExceptionRequest>(data_at).filter(|_| data_size >= size) else {
                self.call(trap::PORT_DEALLOCATE, [reply, 0, 0, 0, 0, 0], Expect::Any);
                return;
            };
            let mut answer = ExceptionReply {
                action: if self.rng.chance(50) { action::RESUME } else { action::TERMINATE },
                flags: 0,
                registers: request.registers,
            };
            if answer.action == action::RESUME && self.rng.chance(70) {
                answer.flags = reply_flags::SET_REGISTERS;
                answer.registers.rip = match self.rng.below(4) {
                    0..=1 => request.registers.rip.wrapping_add(self.rng.below(4) + 1) & (USER_END - 1),
                    2 => STUB_AT + self.rng.below(64),
                    _ => self.rng.next() & (USER_END - 1),
                };
                answer.registers.rsp &= USER_END - 1;
                answer.registers.rflags = self.rng.next();
                answer.registers.fs_base = self.fs_base();
            }
            len = put_into(&mut body, as_bytes(&answer));
        }
        if self.o.badreply && self.rng.chance(50) {
            // Anything: short, long, any flags and registers.
            len = self.rng.below(body.len() as u64) as usize;
            for b in body[..len].iter_mut() {
                if self.rng.chance(20) {
                    *b = self.rng.next() as u8;
                }
            }
        }
        let header = MessageHeader {
            remote: reply as u32,
            remote_disposition: disposition::MOVE_SEND_ONCE,
            data_size: len as u32,
            ..MessageHeader::default()
        };
        put(REPLY_BUF, as_bytes(&header));
        put(REPLY_BUF + 24, &body[..len]);
        let opts = options::SEND | options::SEND_TIMEOUT;
        if self.call(trap::MACH_MSG, [REPLY_BUF, opts, 0, 0, 0, 0], Expect::Zero) != 0 {
            self.call(trap::PORT_DEALLOCATE, [reply, 0, 0, 0, 0, 0], Expect::Any);
        }
    }

    // ---------------------------------------------------------------- children

    /// A free child slot, ending a child to make one if needed.
    fn child_slot(&mut self) -> usize {
        if let Some(i) = self.children.iter().position(|c| !c.live) {
            return i;
        }
        let i = self.rng.below(CHILDREN as u64) as usize;
        self.end_child(i);
        i
    }

    fn end_child(&mut self, i: usize) {
        let child = self.children[i];
        if !child.live {
            return;
        }
        let r = self.call(trap::TASK_TERMINATE, [child.task, 0, 0, 0, 0, 0], Expect::Zero);
        if r < 0 && r != KernelError::PortDead.as_return() {
            self.report(
                trap::TASK_TERMINATE,
                [child.task, 0, 0, 0, 0, 0],
                r,
                "a child could not be terminated",
            );
        }
        self.children[i].live = false;
        self.release(child.task);
    }

    /// Track a new child in slot `i` and name it `cN.LABEL` (N counts children from 1): the
    /// kernel's `task ... (cN...) ended` lines then tell the host side which child never ended.
    fn adopt(&mut self, i: usize, task: u64, copy: bool, label: &[u8]) {
        self.children[i] = Child { task, copy, live: true };
        self.children_started += 1;
        let mut name = [0u8; 32];
        let mut n = 0;
        let mut push = |b: u8| {
            if let Some(slot) = name.get_mut(n) {
                *slot = b;
                n += 1;
            }
        };
        push(b'c');
        let mut digits = [0u8; 20];
        let mut count = self.children_started;
        let mut d = 0;
        while count > 0 || d == 0 {
            digits[d] = b'0' + (count % 10) as u8;
            count /= 10;
            d += 1;
        }
        digits[..d].iter().rev().for_each(|&b| push(b));
        push(b'.');
        label.iter().for_each(|&b| push(b));
        let text = SCRATCH + 0x8e00;
        put(text, &name[..n]);
        self.call(trap::TASK_SET_NAME, [task, text, n as u64, 0, 0, 0], Expect::Zero);
    }

    /// Start a child that faults: a new task, or a copy of this task (which first makes a few
    /// random traps of its own) or of a child.
    fn spawn(&mut self, copy: bool) {
        let i = self.child_slot();
        let parent = if copy && self.rng.chance(30) { self.live_child() } else { None };
        let r = if copy {
            self.call(trap::TASK_CREATE_COPY, [parent.unwrap_or(self.self_task), 0, 0, 0, 0, 0], Expect::Name)
        } else {
            self.call(trap::TASK_CREATE, [0; 6], Expect::Name)
        };
        if r <= 0 {
            return;
        }
        let task = r as u64;
        let kind = self.o.stub.unwrap_or_else(|| self.rng.below(STUB_KINDS));
        let kind = if kind == STUB_NT && !self.o.nt { 0 } else { kind };
        // Label: stub kind, then r (raw), c (copy of this task) or d (copy of a child).
        let label = [
            b'0' + (kind / 10) as u8,
            b'0' + (kind % 10) as u8,
            if !copy {
                b'r'
            } else if parent.is_none() {
                b'c'
            } else {
                b'd'
            },
        ];
        self.adopt(i, task, copy, &label);
        if self.rng.chance(60) {
            let args = [task, self.inbox, u64::from(disposition::MAKE_SEND_ONCE), 0, 0, 0];
            self.call(trap::TASK_NOTIFY_ENDED, args, Expect::Zero);
        }
        for which in [special_port::EXCEPTION, special_port::SYSCALL, special_port::BOOTSTRAP] {
            if self.rng.chance(35) {
                let port = match self.rng.below(10) {
                    0..=6 => self.inbox,
                    7 => self.server,
                    _ => self.send_name(),
                };
                self.call(trap::TASK_SET_SPECIAL_PORT, [task, which, port, 0, 0, 0], Expect::Any);
            }
        }
        let stub = self.stub(kind);
        let code = &stub.code[..stub.len];
        let (page, at) =
            if stub.at_top { (TOP_PAGE, USER_END - code.len() as u64) } else { (STUB_AT, STUB_AT) };
        let w = protection::WRITE;
        self.call(trap::VM_ALLOCATE, [task, page, PAGE, w, 0, 0], Expect::Any);
        self.call(trap::VM_WRITE, [task, at, code.as_ptr() as u64, code.len() as u64, 0, 0], Expect::Any);
        self.call(trap::VM_PROTECT, [task, page, PAGE, protection::EXECUTE, 0, 0], Expect::Any);
        self.call(trap::VM_ALLOCATE, [task, DATA_AT, PAGE, w, 0, 0], Expect::Any);
        self.call(trap::VM_ALLOCATE, [task, STACK_AT, STACK_SIZE, w, 0, 0], Expect::Any);
        let (rip, rdi) =
            if copy && parent.is_none() { (copy_child_main as *const () as u64, at) } else { (at, 0) };
        // The copy's own seed; bit 0 allows it messages, bit 1 special ports (copy_child_main).
        let flags = u64::from(self.o.selfrecv && self.o.anywhere)
            | u64::from(self.o.taskcycle) << 1
            | u64::from(self.o.copytrace) << 2
            | u64::from(self.o.getself) << 3;
        let args = [task, rip, STACK_AT + STACK_SIZE - 8, rdi, (self.rng.next() & !15) | flags, 0];
        let thread = self.call(trap::THREAD_CREATE, args, Expect::Name);
        if thread > 0 {
            let old = self.child_threads.push(thread as u64);
            self.release(old);
            if stub.spins {
                self.call(trap::THREAD_SET_PRIORITY, [thread as u64, 8, 0, 0, 0, 0], Expect::Any);
            }
        }
    }

    /// The code of child kind `kind` (see the module documentation).
    fn stub(&mut self, kind: u64) -> Stub {
        let mut s = Stub::new();
        match kind {
            0 => s.b(&[0x0f, 0x0b]),             // ud2
            1 => s.b(&[0xcc]),                   // int3
            2 => s.b(&[0x31, 0xc9, 0xf7, 0xf1]), // xor ecx, ecx; div ecx
            3 => s.mov(0, 1 << 63).b(&[
                0x48, 0xc7, 0xc2, 0xff, 0xff, 0xff, 0xff, 0x48, 0xc7, 0xc1, 0xff, 0xff, 0xff, 0xff, 0x48,
                0xf7, 0xf9,
            ]), // idiv overflow
            4 => s.b(&[0xf4]),                   // hlt
            5 => s.b(&[0xfa]),                   // cli
            6 => s.b(self.rng.pick(&[&[0x0f, 0x30][..], &[0x0f, 0x32], &[0x0f, 0x33]])), // wrmsr, rdmsr, rdpmc
            7 => s.b(self.rng.pick(&[
                &[0x0f, 0x22, 0xd8][..], // mov cr3, rax
                &[0x0f, 0x20, 0xc0],     // mov rax, cr0
                &[0x0f, 0x23, 0xf8],     // mov dr7, rax
                &[0x0f, 0x01, 0x10],     // lgdt [rax]
                &[0x0f, 0x01, 0xf8],     // swapgs
                &[0x0f, 0x00, 0xd8],     // ltr ax
                &[0x0f, 0x09],           // wbinvd
            ])),
            8 => s.b(self.rng.pick(&[&[0xe4, 0x80][..], &[0xe6, 0x80], &[0x66, 0xba, 0x80, 0x00, 0xec]])), // in/out port 0x80
            9 => {
                let target = self.rng.pick(&[KERNEL_IMAGE, DIRECT_MAP, NON_CANONICAL, UNMAPPED, DATA_AT, 0]);
                s.mov(0, target).b(&[0xff, 0xe0]) // jmp rax
            }
            10 => {
                let sp = self.rng.pick(&[DIRECT_MAP + 0x10000, KERNEL_IMAGE + 0x10000, NON_CANONICAL, 0]);
                s.mov(4, sp).b(&[0x50]) // mov rsp, sp; push rax
            }
            11 => {
                let sp =
                    self.rng.pick(&[DIRECT_MAP + 0x10000, KERNEL_IMAGE + 0x10000, NON_CANONICAL, USER_END]);
                let number = self.rng.pick(&[trap::SLEEP, 39, trap::TASK_SELF]);
                s.mov(4, sp).trap0(number).b(&[0x50])
            }
            12 => {
                if self.rng.chance(50) {
                    // iretq to the kernel's code selector
                    s.b(&[0x6a, 0x00, 0x6a, 0x00, 0x6a, 0x02, 0x6a, 0x08, 0x6a, 0x00, 0x48, 0xcf])
                } else {
                    // iretq to a user selector with a non-canonical rip
                    s.b(&[0x6a, 0x1b, 0x54, 0x68, 0x02, 0x02, 0x00, 0x00, 0x6a, 0x23])
                        .mov(0, NON_CANONICAL)
                        .b(&[0x50, 0x48, 0xcf])
                }
            }
            13 => s.b(self.rng.pick(&[&[0x48, 0x0f, 0x07][..], &[0x48, 0x0f, 0x35], &[0x0f, 0x34]])), // sysretq, sysexit, sysenter
            14 => s.b(&[0xcd, self.rng.next() as u8]),                                                // int N
            15 => s.b(self.rng.pick(&[
                &[0xf1][..],         // icebp
                &[0xce],             // into (#UD in 64-bit mode)
                &[0xf0, 0x90],       // lock nop
                &[0x0f, 0xb9, 0xc0], // ud1
                &[
                    0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66,
                    0x90,
                ], // 16 bytes
            ])),
            16 => s.flags(0x302).b(&[0x90, 0x90]), // TF: a debug trap in user mode
            17 => s.b(&[0x48, 0xc7, 0xc0, 0xf1, 0xff, 0xff, 0xff, 0x31, 0xff]).flags(0x302).b(&[0x0f, 0x05]), // TF set across a syscall
            18 => match self.rng.below(3) {
                // DF set: a trap that copies from user memory, a fault, a spin under the timer
                0 => s
                    .b(&[
                        0xfd, 0x48, 0xc7, 0xc0, 0xff, 0xff, 0xff, 0xff, 0x48, 0x8d, 0x3d, 0x09, 0, 0, 0,
                        0xbe, 8, 0, 0, 0, 0x0f, 0x05, 0x0f, 0x0b,
                    ])
                    .b(b"dfdfdfdf"),
                1 => s.b(&[0xfd]),
                _ => s.b(&[0xfd]).spin(1 << 22),
            },
            19 => s.flags(0x40202).b(&[0x48, 0x8b, 0x44, 0x24, 0x01]), // AC: an unaligned load
            20 => {
                // A syscall on the last bytes of user space: SYSRET would return to a
                // non-canonical rip.
                s.at_top = true;
                if self.rng.chance(50) {
                    s.trap0(trap::SLEEP)
                } else {
                    s.b(&[0xb8, 39, 0, 0, 0, 0x0f, 0x05])
                };
                return s;
            }
            21 => s
                .b(&[0x31, 0xc0, 0x8e, 0xe8, 0x8e, 0xe0, 0x8e, 0xd8, 0x8e, 0xc0])
                .trap0(trap::SLEEP)
                .spin(1 << 16), // null selectors
            22 => {
                let selector = self.rng.choose(&[0x08, 0x10, 0x28, 0x30, 0x2b, 0xffff]) as u16;
                let register = self.rng.pick(&[0xd8u8, 0xd0, 0xe8, 0xe0, 0xc0]); // ds ss gs fs es
                s.b(&[0x66, 0xb8]).b(&selector.to_le_bytes()).b(&[0x8e, register])
            }
            23 => {
                let base = self.rng.pick(&[KERNEL_IMAGE, DIRECT_MAP, 0]);
                let which = self.rng.pick(&[0xd8u8, 0xd0]); // wrgsbase, wrfsbase
                s.mov(0, base).b(&[0xf3, 0x48, 0x0f, 0xae, which]).trap0(trap::SLEEP)
            }
            24 => s.b(&[0xc6, 0x05, 0xf9, 0xff, 0xff, 0xff, 0x01]), // write its own code page
            25 => s.b(&[0xe8, 0xfb, 0xff, 0xff, 0xff]),             // call $: the stack overflows
            26 => {
                let from = self.rng.pick(&[KERNEL_IMAGE, DIRECT_MAP, NON_CANONICAL]);
                s.mov(6, from).mov(7, DATA_AT).b(&[0xb9, 0, 1, 0, 0, 0xf3, 0xa4]) // rep movsb
            }
            27 => {
                // Foreign calls (forwarded when the child has a syscall port).
                for _ in 0..3 {
                    let number = (self.rng.choose(&[0, 1, 39, 60, 158, 231]) % 1024) as u32;
                    s.b(&[0xb8]).b(&number.to_le_bytes()).b(&[0x0f, 0x05]);
                }
                &mut s
            }
            28 => match self.rng.below(3) {
                // Mach traps: allocate a port, suspend itself; exit; end its thread.
                0 => s
                    .trap0(trap::PORT_ALLOCATE)
                    .trap0(trap::TASK_SELF)
                    .b(&[0x48, 0x89, 0xc7, 0x48, 0xc7, 0xc0, 0xd9, 0xff, 0xff, 0xff, 0x0f, 0x05]),
                1 => s.b(&[0x48, 0xc7, 0xc0, 0xfe, 0xff, 0xff, 0xff, 0xbf, 7, 0, 0, 0, 0x0f, 0x05]),
                _ => s.trap0(trap::THREAD_EXIT),
            },
            29 => s.spin(1 << 22),
            30 => {
                let selector = self.rng.pick(&[0x08u8, 0x10, 0x1b, 0x2b, 0x33, 0xff]);
                s.b(&[0x6a, selector, 0x6a, 0x00, 0x48, 0xcb]) // retfq
            }
            // The NT flag across a syscall: option `nt` only (STUB_NT).
            31 => {
                s.flags(0x4202).b(&[0x48, 0xc7, 0xc0, 0xf1, 0xff, 0xff, 0xff, 0xbf, 20, 0, 0, 0, 0x0f, 0x05])
            }
            32 => s.b(&[0x0f, 0x01, 0x04, 0x25]).b(&(DATA_AT as u32).to_le_bytes()), // sgdt [DATA_AT]
            _ => {
                // A sender: messages to its bootstrap port, without a timeout, for as long as
                // they are taken (it waits on a full queue; the harness drains, ends, or
                // destroys the port under it).
                s.trap0(trap::TASK_SELF)
                    .b(&[0x48, 0x89, 0xc7, 0xbe, 2, 0, 0, 0]) // mov rdi, rax; mov esi, 2
                    .b(&[0x48, 0xc7, 0xc0, 0xe8, 0xff, 0xff, 0xff, 0x0f, 0x05]) // task_get_special_port
                    .b(&[0x48, 0x83, 0xec, 0x40, 0x89, 0x04, 0x24]) // sub rsp, 64; mov [rsp], eax
                    .b(&[0xc7, 0x44, 0x24, 0x04, 0, 0, 0, 0]) // local 0
                    .b(&[0xc7, 0x44, 0x24, 0x08, disposition::COPY_SEND, 0, 0, 0]) // dispositions, counts
                    .b(&[0xc7, 0x44, 0x24, 0x0c, 0x34, 0x12, 0, 0]) // id
                    .b(&[0xc7, 0x44, 0x24, 0x10, 8, 0, 0, 0]) // data size
                    .b(&[0xc7, 0x44, 0x24, 0x14, 0, 0, 0, 0]) // trace
                    // loop: mach_msg(rsp, SEND, 0, 0, 0) while it succeeds
                    .b(&[0x48, 0x89, 0xe7, 0xbe, 1, 0, 0, 0, 0x31, 0xd2, 0x45, 0x31, 0xd2, 0x45, 0x31, 0xc0])
                    .b(&[0x48, 0xc7, 0xc0, 0xfd, 0xff, 0xff, 0xff, 0x0f, 0x05, 0x48, 0x85, 0xc0, 0x74, 0xe2])
            }
        };
        s.end();
        s
    }

    // ---------------------------------------------------------------- invariants, cleanup

    /// Print the last traps (once per run).
    fn dump_recent(&mut self) {
        if core::mem::replace(&mut self.dumped, true) {
            return;
        }
        println!("fuzz: the last {RECENT} traps, oldest first (iteration: trap [arguments] -> result):");
        for i in 0..RECENT {
            let (iteration, nr, a, r) = self.recent[(self.recent_next + i) % RECENT];
            if nr != 0 {
                println!(
                    "fuzz:   {iteration}: {nr} [{:#x}, {:#x}, {:#x}, {:#x}, {:#x}, {:#x}] -> {r}",
                    a[0], a[1], a[2], a[3], a[4], a[5]
                );
            }
        }
    }

    /// The harness's own names and memory are as it left them.
    fn check_invariants(&mut self) {
        let before = self.unexpected;
        self.check_names_and_memory();
        if self.unexpected > before {
            self.dump_recent();
        }
    }

    fn check_names_and_memory(&mut self) {
        let expect = [
            (self.inbox, right_type::RECEIVE),
            (self.server, right_type::RECEIVE),
            (self.host, right_type::SEND),
            (self.self_task, right_type::SEND),
            (self.self_thread, right_type::SEND),
            (self.server_thread, right_type::SEND), // a dead thread's port is a dead name
        ];
        for (name, bit) in expect {
            let r = self.call(trap::PORT_TYPE, [name, 0, 0, 0, 0, 0], Expect::Bits);
            if r < 0 || r as u64 & bit == 0 {
                self.report(
                    trap::PORT_TYPE,
                    [name, 0, 0, 0, 0, 0],
                    r,
                    "a name the harness keeps lost its right",
                );
            }
        }
        // SAFETY: reading this task's own static.
        let canary = unsafe { core::ptr::read_volatile(&raw const CANARY) };
        if canary.iter().any(|&v| v != 0x5a5a_1234_a5a5_4321) {
            self.report(trap::VM_WRITE, [0; 6], 0, "a write to a task copy changed this task's memory");
        }
        put(SCRATCH, b"scratch");
        if get::<[u8; 7]>(SCRATCH) != Some(*b"scratch") {
            self.report(trap::VM_WRITE, [0; 6], 0, "the scratch region changed under the harness");
        }
    }

    /// End every child, destroy every name the harness made, unmap its regions.
    fn cleanup(&mut self) {
        for i in 0..CHILDREN {
            self.end_child(i);
        }
        for _ in 0..4 {
            while self.pool_len > 0 {
                let name = self.pool[self.pool_len - 1].name;
                self.pool_len -= 1;
                self.release(name);
            }
            // Port-destroyed notifications bring receive rights back to the inbox.
            let inbox = self.inbox;
            self.drain(inbox, 64);
            if self.pool_len == 0 {
                break;
            }
        }
        for i in 0..RING {
            let (a, size) = core::mem::take(&mut self.regions.items[i]);
            if a != 0 {
                self.call(trap::VM_DEALLOCATE, [self.self_task, a, size, 0, 0, 0], Expect::Any);
            }
            let t = core::mem::take(&mut self.child_threads.items[i]);
            self.release(t);
            let t = core::mem::take(&mut self.own_threads.items[i]);
            self.release(t);
        }
        self.call(trap::VM_DEALLOCATE, [self.self_task, PLAY, PLAY_PAGES * PAGE, 0, 0, 0], Expect::Zero);
    }

    fn progress(&self) {
        println!(
            "fuzz: {} calls (seed {}): {} traps, {} messages received, {} children, {} forwarded answered, {} unexpected",
            self.iteration,
            self.seed,
            self.traps,
            self.received,
            self.children_started,
            self.forwarded,
            self.unexpected
        );
    }
}

fn put_into(body: &mut [u8], bytes: &[u8]) -> usize {
    let n = bytes.len().min(body.len());
    body[..n].copy_from_slice(&bytes[..n]);
    n
}

// A thread of the harness's own task made by the fuzzer: it ends at once (no stack needed).
core::arch::global_asm!(".global fuzz_thread_exit", "fuzz_thread_exit:", "mov rax, -14", "syscall", "ud2",);

unsafe extern "C" {
    fn fuzz_thread_exit() -> !;
}

/// Runs in a copy of this task: a few random traps of its own, then the stub at `entry`. The
/// copy is disposable: whatever it does, the harness terminates it. Its memory holds the
/// harness's messages with their names and out-of-line regions; sent in the copy's own name
/// space they can move a port's receive right into its own queue, and received they place
/// out-of-line memory "anywhere" over the copied pages: both known bugs, so `mach_msg` and
/// `port_request_notification` only with bit 0 of `seed` (options `selfrecv` and `anywhere`).
/// A task it makes whose special port it sets to that task's own port is never ended (a bug,
/// option `taskcycle`): `task_set_special_port` only with bit 1. Bit 2 prints each trap
/// (`copytrace`); bit 3 allows `thread_get_state`, often on its own thread (`getself`).
extern "C" fn copy_child_main(entry: u64, seed: u64) -> ! {
    let messages = seed & 1 != 0;
    let special_ports = seed & 2 != 0;
    let trace = seed & 4 != 0;
    let get_self = seed & 8 != 0;
    let mut rng = Rng::new(seed);
    let cheap = [
        trap::MACH_MSG,
        trap::PORT_ALLOCATE,
        trap::PORT_ALLOCATE_SET,
        trap::PORT_DEALLOCATE,
        trap::PORT_DESTROY,
        trap::PORT_TYPE,
        trap::PORT_MOVE_MEMBER,
        trap::PORT_MAKE_SEND,
        trap::TASK_SELF,
        trap::THREAD_SELF,
        trap::TASK_CREATE,
        trap::SLEEP,
        trap::VM_ALLOCATE,
        trap::VM_DEALLOCATE,
        trap::VM_PROTECT,
        trap::VM_WRITE,
        trap::VM_READ,
        trap::TASK_GET_SPECIAL_PORT,
        trap::TASK_SET_SPECIAL_PORT,
        trap::TASK_SUSPEND,
        trap::THREAD_GET_STATE,
        trap::THREAD_SET_PRIORITY,
        trap::PORT_REQUEST_NOTIFICATION,
        -77,
        39,
    ];
    for _ in 0..rng.below(13) {
        let nr = rng.pick(&cheap);
        if !messages && (nr == trap::MACH_MSG || nr == trap::PORT_REQUEST_NOTIFICATION) {
            continue;
        }
        if !special_ports && nr == trap::TASK_SET_SPECIAL_PORT {
            continue;
        }
        // Its names are small: thread_get_state would often be on its own thread (`getself`).
        if !get_self && nr == trap::THREAD_GET_STATE {
            continue;
        }
        let mut args: [u64; 6] = core::array::from_fn(|_| match rng.below(6) {
            0 => rng.below(8),
            1 => SCRATCH + (rng.below(SCRATCH_SIZE) & !7),
            2 => (rng.below(4) + 1) * PAGE,
            3 => DATA_AT,
            4 => rng.pick(&BAD_POINTERS),
            _ => rng.next(),
        });
        match nr {
            trap::MACH_MSG => {
                args[1] |= options::SEND_TIMEOUT | options::RECEIVE_TIMEOUT;
                args[4] = 0;
            }
            trap::SLEEP => args[0] &= 3,
            trap::THREAD_SET_PRIORITY => args[1] &= 15,
            trap::VM_ALLOCATE => args[2] &= 0xffff,
            _ => {}
        }
        if trace {
            let a = args;
            println!(
                "fuzz: copy trap {nr} [{:#x}, {:#x}, {:#x}, {:#x}, {:#x}, {:#x}]",
                a[0], a[1], a[2], a[3], a[4], a[5]
            );
        }
        // SAFETY: this is a disposable copy; any result is fine, including its own end.
        let r = unsafe { raw_syscall(nr, args) };
        if trace {
            println!("fuzz: copy trap {nr} -> {r}");
        }
    }
    // SAFETY: the harness loaded a stub at `entry` in this copy; it never returns.
    unsafe { core::arch::asm!("jmp {}", in(reg) entry, options(noreturn)) }
}

// ---------------------------------------------------------------- the helper thread

const SERVER_BUF_SIZE: usize = 20 * 1024;
#[repr(C, align(16))]
struct ServerMemory {
    stack: [u8; 32 * 1024],
    buffer: [u8; SERVER_BUF_SIZE],
}
static mut SERVER: ServerMemory = ServerMemory { stack: [0; 32 * 1024], buffer: [0; SERVER_BUF_SIZE] };
/// Messages the helper answered (for the summary).
static SERVED: AtomicU64 = AtomicU64::new(0);

/// The helper: receives on `port`, drops what the message carries, and echoes the first
/// bytes of the data to the reply right. Ends when the port dies.
extern "C" fn server_main(port: u64, me: u64) -> ! {
    // SAFETY: only the address is taken.
    let buffer = unsafe { &raw mut SERVER.buffer } as u64;
    let syscall = |nr: i64, args: [u64; 6]| {
        // SAFETY: names from the received message and this thread's own buffer.
        unsafe { raw_syscall(nr, args) }
    };
    loop {
        let r = syscall(trap::MACH_MSG, [buffer, options::RECEIVE, SERVER_BUF_SIZE as u64, port, 0, 0]);
        if r == KernelError::PortDead.as_return()
            || r == KernelError::InvalidName.as_return()
            || r == KernelError::InvalidRight.as_return()
        {
            break;
        }
        if r != 0 {
            continue;
        }
        // SAFETY: the kernel wrote a whole message (at most 17,176 bytes) into the buffer.
        let header = unsafe { core::ptr::read_unaligned(buffer as *const MessageHeader) };
        let ports = u64::from(header.port_count);
        let ools = u64::from(header.ool_count);
        for i in 0..ports {
            // SAFETY: inside the message just received.
            let d = unsafe { core::ptr::read_unaligned((buffer + 24 + i * 8) as *const [u8; 8]) };
            let name = u64::from(u32::from_le_bytes([d[0], d[1], d[2], d[3]]));
            if name != 0 && name != u64::from(PORT_DEAD) {
                // Receiving added the right (or a reference): give exactly that back.
                let nr = if d[4] == received::RECEIVE { trap::PORT_DESTROY } else { trap::PORT_DEALLOCATE };
                syscall(nr, [name, 0, 0, 0, 0, 0]);
            }
        }
        for i in 0..ools {
            // SAFETY: inside the message just received.
            let d =
                unsafe { core::ptr::read_unaligned((buffer + 24 + ports * 8 + i * 16) as *const [u64; 2]) };
            if d[0] != 0 {
                let size = (d[1] & 0xffff_ffff).next_multiple_of(PAGE).max(PAGE);
                syscall(trap::VM_DEALLOCATE, [me, d[0], size, 0, 0, 0]);
            }
        }
        let remote = u64::from(header.remote);
        if remote == 0 || remote == u64::from(PORT_DEAD) {
            continue;
        }
        let forwarded = header.id == SYSCALL_MESSAGE || header.id == EXCEPTION_MESSAGE;
        if header.remote_disposition == received::RECEIVE {
            syscall(trap::PORT_DESTROY, [remote, 0, 0, 0, 0, 0]);
            continue;
        }
        if forwarded {
            // A child's request: dropped unanswered (the call fails, the faulting task ends).
            syscall(trap::PORT_DEALLOCATE, [remote, 0, 0, 0, 0, 0]);
            continue;
        }
        let data_at = buffer + 24 + ports * 8 + ools * 16;
        let n = u64::from(header.data_size).min(64);
        // SAFETY: moving at most 64 data bytes of the message to just after the header.
        unsafe { core::ptr::copy((data_at) as *const u8, (buffer + 24) as *mut u8, n as usize) };
        let answer = MessageHeader {
            remote: header.remote,
            remote_disposition: if header.remote_disposition == received::SEND_ONCE {
                disposition::MOVE_SEND_ONCE
            } else {
                disposition::MOVE_SEND
            },
            id: header.id.wrapping_add(1),
            data_size: n as u32,
            ..MessageHeader::default()
        };
        // SAFETY: the buffer is this thread's own.
        unsafe { core::ptr::write_unaligned(buffer as *mut MessageHeader, answer) };
        if syscall(trap::MACH_MSG, [buffer, options::SEND | options::SEND_TIMEOUT, 0, 0, 0, 0]) != 0 {
            syscall(trap::PORT_DEALLOCATE, [remote, 0, 0, 0, 0, 0]);
        }
        SERVED.fetch_add(1, Ordering::Relaxed);
    }
    // SAFETY: ends this thread only.
    unsafe { raw_syscall(trap::THREAD_EXIT, [0; 6]) };
    unreachable!("thread_exit returned")
}

// ---------------------------------------------------------------- the case

fn trap_ok(r: i64, why: &'static str) -> Result<u64, &'static str> {
    if r >= 0 { Ok(r as u64) } else { Err(why) }
}

fn raw(nr: i64, args: [u64; 6]) -> i64 {
    // SAFETY: the setup and teardown calls below pass only the harness's own names and regions.
    unsafe { raw_syscall(nr, args) }
}

pub fn run(params: &str) -> Result<(), &'static str> {
    let (seed, calls, o) = parse(params)?;
    println!("fuzz: seed {seed} calls {calls}");
    let w = protection::WRITE;
    let self_task = trap_ok(raw(trap::TASK_SELF, [0; 6]), "task_self")?;
    let self_thread = trap_ok(raw(trap::THREAD_SELF, [0; 6]), "thread_self")?;
    trap_ok(raw(trap::VM_ALLOCATE, [self_task, SCRATCH, SCRATCH_SIZE, w, 0, 0]), "scratch region")?;
    let inbox = trap_ok(raw(trap::PORT_ALLOCATE, [0; 6]), "inbox")?;
    trap_ok(raw(trap::PORT_MAKE_SEND, [inbox, 0, 0, 0, 0, 0]), "inbox send right")?;
    let server = trap_ok(raw(trap::PORT_ALLOCATE, [0; 6]), "helper port")?;
    trap_ok(raw(trap::PORT_MAKE_SEND, [server, 0, 0, 0, 0, 0]), "helper send right")?;
    // SAFETY: only the address is taken.
    let stack_top = unsafe { &raw const SERVER.stack } as u64 + 32 * 1024 - 8;
    let server_thread = trap_ok(
        raw(
            trap::THREAD_CREATE,
            [self_task, server_main as *const () as u64, stack_top, server, self_task, 0],
        ),
        "helper thread",
    )?;
    if o.taskcycle {
        let t = trap_ok(raw(trap::TASK_CREATE, [0; 6]), "task_create")?;
        let r = raw(trap::TASK_SET_SPECIAL_PORT, [t, special_port::BOOTSTRAP, t, 0, 0, 0]);
        raw(trap::PORT_DEALLOCATE, [t, 0, 0, 0, 0, 0]);
        println!(
            "fuzz: taskcycle: a task whose bootstrap port is its own task port ({r}), no other right to it"
        );
    }
    let mut f = Fuzz {
        rng: Rng::new(seed),
        seed,
        o,
        iteration: 0,
        traps: 0,
        unexpected: 0,
        ok: [0; 54],
        failed: [0; 54],
        children_started: 0,
        forwarded: 0,
        received: 0,
        host: u64::from(libmach::startup_port()),
        self_task,
        self_thread,
        inbox,
        server,
        server_thread,
        pool: [Entry::default(); POOL],
        pool_len: 0,
        stale: Ring::new(),
        children: [Child::default(); CHILDREN],
        child_threads: Ring::new(),
        own_threads: Ring::new(),
        regions: Ring::new(),
        recent: [(0, 0, [0; 6], 0); RECENT],
        recent_next: 0,
        dumped: false,
    };
    while f.iteration < calls {
        f.step();
        f.iteration += 1;
        if f.iteration.is_multiple_of(64) {
            let inbox = f.inbox;
            f.drain(inbox, 16);
        }
        if f.iteration.is_multiple_of(o.check) {
            f.check_invariants();
        }
        if f.iteration.is_multiple_of(EPOCH) {
            f.cleanup();
            f.check_invariants();
        }
        if f.iteration.is_multiple_of(o.progress) {
            f.progress();
        }
    }
    f.cleanup();
    f.check_invariants();
    f.progress();
    println!("fuzz: children named c1 ..= c{}", f.children_started);
    // The per-trap summary, 12 to a line: number: successes/calls.
    for first in (0..54).step_by(12) {
        use core::fmt::Write as _;
        let mut line = libmach::DebugLine::new();
        let _ = write!(line, "fuzz: per trap (ok/all):");
        for s in first..(first + 12).min(54) {
            let all = f.ok[s] + f.failed[s];
            match s {
                0 => write!(line, " foreign:{}/{all}", f.ok[s]),
                53 => write!(line, " unknown:{}/{all}", f.ok[s]),
                _ => write!(line, " -{s}:{}/{all}", f.ok[s]),
            }
            .ok();
        }
        line.flush();
    }
    println!("fuzz: the helper answered {} messages", SERVED.load(Ordering::Relaxed));

    // Teardown: the helper ends when its port dies; every IRQ line is released; the task's
    // name, tracing and memory as they were.
    raw(trap::PORT_DESTROY, [server, 0, 0, 0, 0, 0]);
    let mut waited = 0;
    while raw(trap::PORT_TYPE, [server_thread, 0, 0, 0, 0, 0]) != right_type::DEAD_NAME as i64 && waited < 200
    {
        raw(trap::SLEEP, [10, 0, 0, 0, 0, 0]);
        waited += 1;
    }
    check(waited < 200, "the helper thread did not end")?;
    raw(trap::PORT_DEALLOCATE, [server_thread, 0, 0, 0, 0, 0]);
    for irq in 1..16 {
        raw(trap::HOST_IRQ_REGISTER, [f.host, irq, 0, 0, 0, 0]);
    }
    raw(trap::HOST_TRACE_TASK, [f.host, self_task, 0, 0, 0, 0]);
    let name = b"kernel-tests";
    raw(trap::TASK_SET_NAME, [self_task, name.as_ptr() as u64, name.len() as u64, 0, 0, 0]);
    raw(trap::PORT_DESTROY, [inbox, 0, 0, 0, 0, 0]);
    raw(trap::VM_DEALLOCATE, [self_task, SCRATCH, SCRATCH_SIZE, 0, 0, 0]);
    raw(trap::PORT_DEALLOCATE, [self_task, 0, 0, 0, 0, 0]);
    raw(trap::PORT_DEALLOCATE, [self_thread, 0, 0, 0, 0, 0]);
    if f.unexpected > 0 {
        println!("fuzz: {} unexpected results (seed {seed}); the first ones are above", f.unexpected);
        return Err("unexpected results");
    }
    Ok(())
}

//! The trace ring: one record per hop (trap, send, receive, reply, resume) of a traced
//! request, with the time stamp counter, task, thread, port, message id and size. A request
//! is traced when its context is not 0: a message carries its context, a thread that
//! receives a traced message carries it into what it sends until it replies, and a traced
//! task's foreign system calls start new contexts.
//!
//! With tracing off (context 0) `record` is one comparison: it must stay that cheap.
//!
//! The ring keeps `RING_SIZE` records unless the command line's `trace_ring=N` asks for
//! another size at boot (`resize`, before any task runs); it never grows or waits later.

use crate::arch::cpu;
use mach_abi::trace::{RING_SIZE, TraceRecord};
use spin::Mutex;

struct Ring {
    /// The default ring, used unless the boot asked for another size.
    records: [TraceRecord; RING_SIZE],
    /// The ring of the size the boot asked for (frames of its own, kept for ever).
    sized: Option<&'static mut [TraceRecord]>,
    /// Sequence number of the next record.
    next: u64,
    /// The last trace context handed out.
    last_context: u32,
}

static RING: Mutex<Ring> = Mutex::new(Ring {
    records: [TraceRecord {
        sequence: 0,
        tsc: 0,
        task: 0,
        size: 0,
        trace: 0,
        thread: 0,
        port: 0,
        msg_id: 0,
        kind: 0,
        data_len: 0,
        rights: 0,
        regions: 0,
        reserved: [0; 4],
        data: [0; mach_abi::trace::TRACE_DATA],
    }; RING_SIZE],
    sized: None,
    next: 1,
    last_context: 0,
});

impl Ring {
    fn slots(&self) -> &[TraceRecord] {
        self.sized.as_deref().unwrap_or(&self.records)
    }

    fn slots_mut(&mut self) -> &mut [TraceRecord] {
        match &mut self.sized {
            Some(sized) => sized,
            None => &mut self.records,
        }
    }

    /// How many records the ring keeps.
    fn capacity(&self) -> u64 {
        self.slots().len() as u64
    }

    /// The oldest sequence number still in the ring.
    fn oldest(&self) -> u64 {
        self.next.saturating_sub(self.capacity()).max(1)
    }

    fn get(&self, sequence: u64) -> Option<&TraceRecord> {
        self.slots().get((sequence % self.capacity()) as usize)
    }
}

/// Why the ring could not be given the size asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResizeError {
    /// Not enough contiguous free frames.
    NoMemory,
    /// Records were kept already (sizes are set at boot, before anything is traced).
    InUse,
}

/// Keep `records` trace records from now on, in frames of their own. At boot only.
pub fn resize(records: usize) -> Result<(), ResizeError> {
    let mut ring = RING.lock();
    if ring.next != 1 {
        return Err(ResizeError::InUse);
    }
    let bytes = records.checked_mul(core::mem::size_of::<TraceRecord>()).ok_or(ResizeError::NoMemory)?;
    let frames = bytes.div_ceil(crate::memory::PAGE_SIZE as usize);
    let physical = crate::memory::frames::alloc_contiguous_zeroed(frames).ok_or(ResizeError::NoMemory)?;
    let virt = crate::memory::phys_to_virt(physical);
    // SAFETY: `frames` contiguous frames were just allocated (zeroed: every record all-zero,
    // a valid TraceRecord) and are never freed, so the slice is valid for 'static; only the
    // ring, under its lock, uses it. The direct map is aligned to pages, more than a
    // TraceRecord needs.
    let slots = unsafe { core::slice::from_raw_parts_mut(virt as *mut TraceRecord, records) };
    ring.sized = Some(slots);
    Ok(())
}

/// How many records the ring keeps.
pub fn capacity() -> usize {
    RING.lock().capacity() as usize
}

/// What a message hop carried, for its record.
#[derive(Clone, Copy, Default)]
pub struct Carried<'a> {
    /// The message's inline data (its start is kept).
    pub data: &'a [u8],
    /// Port rights carried.
    pub rights: usize,
    /// Out-of-line memory regions carried.
    pub regions: usize,
}

/// Record one hop of request `trace` (nothing when 0).
#[allow(clippy::too_many_arguments)]
#[inline]
pub fn record(trace: u32, kind: u8, task: u64, thread: u64, port: u32, msg_id: u32, size: u64) {
    record_message(trace, kind, task, thread, port, msg_id, size, Carried::default());
}

/// Record one message hop with what it carried (nothing when `trace` is 0).
#[allow(clippy::too_many_arguments)]
#[inline]
pub fn record_message(
    trace: u32,
    kind: u8,
    task: u64,
    thread: u64,
    port: u32,
    msg_id: u32,
    size: u64,
    carried: Carried,
) {
    if trace == 0 {
        return;
    }
    let mut kept = [0u8; mach_abi::trace::TRACE_DATA];
    let data = carried.data;
    let data_len = data.len().min(kept.len());
    if let (Some(to), Some(from)) = (kept.get_mut(..data_len), data.get(..data_len)) {
        to.copy_from_slice(from);
    }
    let tsc = cpu::rdtsc();
    let mut ring = RING.lock();
    let sequence = ring.next;
    ring.next += 1;
    let slot = (sequence % ring.capacity()) as usize;
    if let Some(r) = ring.slots_mut().get_mut(slot) {
        *r = TraceRecord {
            sequence,
            tsc,
            task,
            size,
            trace,
            thread: thread as u32,
            port,
            msg_id,
            kind,
            data_len: data_len as u8,
            rights: carried.rights.min(255) as u8,
            regions: carried.regions.min(255) as u8,
            reserved: [0; 4],
            data: kept,
        };
    }
}

/// A new trace context for a request starting now.
pub fn new_context() -> u32 {
    let mut ring = RING.lock();
    ring.last_context = ring.last_context.wrapping_add(1).max(1);
    ring.last_context
}

/// Copy records with sequence >= `from` into `out`, oldest first; returns how many.
pub fn read(from: u64, out: &mut [TraceRecord]) -> usize {
    let ring = RING.lock();
    let mut sequence = from.max(ring.oldest());
    let mut count = 0;
    while sequence < ring.next && count < out.len() {
        if let (Some(slot), Some(record)) = (out.get_mut(count), ring.get(sequence)) {
            *slot = *record;
        }
        sequence += 1;
        count += 1;
    }
    count
}

/// The flight recorder: the last `n` records, for a kernel panic report. Never waits: if the
/// ring is held (the panic came from inside `record`), says so instead.
pub fn print_last(out: &mut dyn core::fmt::Write, n: usize) {
    let Some(ring) = RING.try_lock() else {
        let _ = writeln!(out, "flight recorder: the trace ring is held (a panic while recording)");
        return;
    };
    let first = ring.next.saturating_sub(n as u64).max(ring.oldest());
    if first >= ring.next {
        let _ = writeln!(out, "flight recorder: no trace records (nothing was traced)");
        return;
    }
    let _ = writeln!(out, "flight recorder: the last {} trace records (oldest first):", ring.next - first);
    for sequence in first..ring.next {
        if let Some(r) = ring.get(sequence) {
            let _ = writeln!(
                out,
                "  #{} tsc {} trace {} kind {} task {} thread {} port {} id {:#x} size {}",
                r.sequence, r.tsc, r.trace, r.kind, r.task, r.thread, r.port, r.msg_id, r.size
            );
        }
    }
}

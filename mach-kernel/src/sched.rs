//! The scheduler: which thread runs. Threads are scheduled by priority (round robin within a
//! level) and preempted by the timer; the boot context is the idle thread, which runs when
//! nothing else is ready. A thread that blocks inside a trap calls [`block_current`], which
//! switches away and returns, with why it was woken, when another thread (or the timer)
//! wakes it. Every switch, the general one and the IPC fast path's hand-off, goes through
//! [`switch`].
//!
//! It must never hold the world lock across a switch, and never switch to a thread that is
//! not ready.

use crate::arch::context;
use crate::world::{
    IDLE, TaskId, Thread, ThreadId, ThreadState, World, kill_task_threads, kill_thread, reap, with,
};
use alloc::vec::Vec;
use mach_kernel::ipc::PortId;

/// Why a blocked thread was woken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wake {
    /// What it waited for may have happened: look again.
    Retry,
    TimedOut,
    /// The port it waited on died.
    PortDied,
    /// A message was written straight into its receive buffer (the IPC fast path): the
    /// receive is complete.
    Delivered,
}

/// Where a thread blocked in a receive wants its message: what the IPC fast path writes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReceiveBuffer {
    pub address: u64,
    pub capacity: u64,
}

/// Switch to the best ready thread. A running thread keeps the CPU unless a thread of at
/// least its priority is ready (then it goes to the back of its level); a blocked or dead
/// one gives it to the next ready thread, or to the idle thread.
pub fn schedule() {
    let switch = with(|w| {
        let current = w.current;
        let (mut still_running, priority) =
            w.threads.get(current).map_or((false, 0), |t| (t.state == ThreadState::Running, t.priority));
        // A thread of a suspended task stops here and waits, parked, for the resume.
        if still_running && current != IDLE && w.is_suspended(current) {
            if let Some(t) = w.threads.get_mut(current) {
                t.state = ThreadState::Ready;
            }
            w.parked.push(current);
            still_running = false;
        }
        if still_running && current != IDLE && w.ready.highest().is_none_or(|h| h < priority) {
            return None;
        }
        let next = match next_ready(w) {
            Some(next) => next,
            None if still_running => return None,
            None => IDLE,
        };
        if next == current {
            return None;
        }
        if still_running && current != IDLE {
            if let Some(t) = w.threads.get_mut(current) {
                t.state = ThreadState::Ready;
            }
            w.ready.push(current, priority);
        }
        Some(switch_to(w, next))
    });
    if let Some(switch) = switch {
        switch.run();
    }
}

/// A switch prepared under the lock, run after it is released.
#[must_use]
pub struct Switch {
    save: *mut u64,
    load: u64,
    /// Why the incoming thread was woken: it reads this when its own switch returns.
    wake: Wake,
}

/// The wake reason of the thread the last switch went to (one CPU): a thread whose
/// `Switch::run` returns reads its own here, without taking the lock.
static mut RESUMED_BECAUSE: Wake = Wake::Retry;

impl Switch {
    /// Leave the current thread here; returns, with why it was woken, when it is switched
    /// back to.
    pub fn run(self) -> Wake {
        // SAFETY: one CPU with interrupts off in the kernel: no other access is concurrent.
        unsafe { RESUMED_BECAUSE = self.wake };
        // SAFETY: `save` points into the current thread's slot of the thread table, which
        // nothing changes between the unlock and this switch (one CPU, interrupts off; dead
        // threads are reaped only while another thread runs, never while they are current); `load`
        // was saved by `switch_context` or made by `prepare_user_entry`.
        unsafe { context::switch_context(self.save, self.load) };
        // SAFETY: as above; the switch back to this thread stored our reason.
        unsafe { RESUMED_BECAUSE }
    }
}

/// The one switch, under the lock: `next` (out of every queue) becomes the running thread.
/// `enter` prepares it and says what trace context it carries from now on and why it was
/// woken; `leave` records how the outgoing thread waits. Loads `next`'s kernel stack and FS
/// base (the caller has made its address space and I/O bitmap the running ones), moves the
/// trace contexts, and returns the [`Switch`] to run once the lock is released.
#[inline(always)]
fn switch(
    w: &mut World,
    next: ThreadId,
    enter: impl FnOnce(&mut Thread) -> (u32, Wake),
    leave: impl FnOnce(&mut Thread),
) -> Switch {
    let current = w.current;
    // The outgoing thread's x87/SSE registers first: loading the next one's overwrites them.
    if let Some(fpu) = w.threads.get_mut(current).and_then(|t| t.fpu.as_deref_mut()) {
        fpu.save();
    }
    let Some(incoming) = w.threads.get_mut(next) else { unreachable!("the next thread exists") };
    incoming.state = ThreadState::Running;
    let (carried, wake) = enter(incoming);
    let load = incoming.saved_rsp;
    let task = incoming.task;
    incoming.load_cpu_state();
    w.current = next;
    w.current_task = task;
    let outgoing_trace = core::mem::replace(&mut w.current_trace, carried);
    let Some(outgoing) = w.threads.get_mut(current) else { unreachable!("the current thread exists") };
    outgoing.trace = outgoing_trace;
    leave(outgoing);
    Switch { save: &mut outgoing.saved_rsp as *mut u64, load, wake }
}

/// Switch to `next` (already out of every queue) with its own address space, I/O bitmap and
/// trace context. The outgoing thread's state was set by the caller.
#[inline(always)]
fn switch_to(w: &mut World, next: ThreadId) -> Switch {
    match w.threads.get(next).and_then(|t| t.task).and_then(|t| w.tasks.get(t)) {
        Some(task) => {
            task.space.activate();
            crate::arch::gdt::load_io_bitmap(task.id, task.io_bitmap.as_deref());
        }
        None => crate::memory::paging::activate_kernel_space(),
    }
    switch(w, next, |incoming| (incoming.trace, incoming.wake), |_| {})
}

/// The IPC fast path's switch: the current thread blocks receiving on `waits_on` (into
/// `buffer`, until tick `deadline`) and `receiver`, whose receive the caller has just
/// completed, runs at once in its place without passing through the run queue. The
/// receiver's address space is already the running one; `io_bitmap` is its task's id and
/// I/O bitmap.
#[inline(always)]
pub fn hand_off(
    w: &mut World,
    receiver: ThreadId,
    io_bitmap: (TaskId, Option<*const [u8; crate::arch::gdt::IO_BITMAP_BYTES]>),
    waits_on: PortId,
    buffer: ReceiveBuffer,
    deadline: Option<u64>,
) -> Switch {
    let current = w.current;
    if deadline.is_some() {
        w.timed.push(current);
    }
    if let Some(p) = w.ports.get_mut(waits_on) {
        p.waiting_receivers.push_back(current);
    }
    if Some(io_bitmap.0) != w.current_task {
        // SAFETY: the bitmap lives in the receiver's task, which is not freed while its
        // thread runs.
        crate::arch::gdt::load_io_bitmap(io_bitmap.0, io_bitmap.1.map(|b| unsafe { &*b }));
    }
    let enter = |incoming: &mut Thread| {
        incoming.deadline = None;
        incoming.waiting_on = None;
        incoming.receive_buffer = None;
        // The receiver now carries the message's trace context: none on the fast path.
        (0, Wake::Delivered)
    };
    let leave = |outgoing: &mut Thread| {
        outgoing.state = ThreadState::Blocked;
        outgoing.deadline = deadline;
        outgoing.waiting_on = Some(waits_on);
        outgoing.wake = Wake::Retry;
        outgoing.receive_buffer = Some(buffer);
    };
    switch(w, receiver, enter, leave)
}

/// Block the current thread (already registered with whatever will wake it, under
/// `waiting_on`) until woken or until tick `deadline`. Returns why it woke.
pub fn block_current(waiting_on: Option<PortId>, deadline: Option<u64>) -> Wake {
    let switch = with(|w| {
        let current = w.current;
        if let Some(t) = w.threads.get_mut(current) {
            t.state = ThreadState::Blocked;
            t.deadline = deadline;
            t.waiting_on = waiting_on;
            t.wake = Wake::Retry;
        }
        if deadline.is_some() {
            w.timed.push(current);
        }
        let next = next_ready(w).unwrap_or(IDLE);
        switch_to(w, next)
    });
    switch.run()
}

/// The first ready thread not parked by a suspension (those met on the way are parked).
fn next_ready(w: &mut World) -> Option<ThreadId> {
    loop {
        match w.ready.pop() {
            Some(next) if w.is_suspended(next) => w.parked.push(next),
            other => return other,
        }
    }
}

/// End the current thread (and its task with its last thread). Never returns.
pub fn exit_current_thread() -> ! {
    with(|w| {
        let current = w.current;
        kill_thread(w, current);
    });
    schedule();
    unreachable!("a dead thread was scheduled");
}

/// End every thread of the current task. Never returns.
pub fn exit_current_task() -> ! {
    with(|w| {
        if let Some(task) = w.current_task_id() {
            kill_task_threads(w, task);
        }
    });
    schedule();
    unreachable!("a dead thread was scheduled");
}

/// Timer tick: time out blocked threads whose deadline passed, reap what ended, then
/// preempt the running thread if another of at least its priority is ready.
pub fn tick() {
    let ended = with(|w| {
        w.ticks += 1;
        let now = w.ticks;
        let expired: Vec<ThreadId> = w
            .timed
            .iter()
            .copied()
            .filter(|t| {
                w.threads
                    .get(*t)
                    .is_some_and(|t| t.state == ThreadState::Blocked && t.deadline.is_some_and(|d| d <= now))
            })
            .collect();
        for thread in expired {
            w.wake(thread, Wake::TimedOut);
        }
        w.timed.retain(|t| {
            w.threads.get(*t).is_some_and(|t| t.state == ThreadState::Blocked && t.deadline.is_some())
        });
        if w.irq_pending != 0 {
            crate::host_traps::retry_pending_irqs(w);
        }
        !w.dead.is_empty() || !w.unreachable_tasks.is_empty()
    });
    if ended {
        reap();
    }
    schedule();
}

/// The tick a timeout of `ms` milliseconds from now ends at (rounded up to whole ticks).
pub fn deadline_after_ms(ms: u64) -> u64 {
    let ticks = ms.saturating_mul(crate::arch::pic::TIMER_HZ).div_ceil(1000);
    with(|w| w.ticks.saturating_add(ticks.max(1)))
}

//! The kernel's whole mutable state, in one [`World`] behind one lock: tasks (an address
//! space plus a port name space), threads (a kernel stack holding the saved user registers),
//! ports, and their lifecycle: made, ended, reaped.
//!
//! Switching between threads (the run queue, blocking, the timer) is `sched.rs`. Nothing
//! here switches threads, and the world lock is never held across a switch. Ended threads
//! and tasks are reaped by the idle thread and on every timer tick, never on a stack being
//! freed.

use crate::arch::{context, syscall, trap_frame::TrapFrame};
use crate::memory::{PAGE_SIZE, frames, paging::AddressSpace, phys_to_virt};
use crate::message::Message;
use crate::sched::{ReceiveBuffer, Wake};
use alloc::string::String;
use alloc::vec::Vec;
use mach_abi::KernelError;
use mach_kernel::held::HeldAccount;
use mach_kernel::id_table::IdTable;
use mach_kernel::ipc::{CarriedRight, Event, NameSpace, PortId, PortTable};
use mach_kernel::run_queue::RunQueue;
use spin::Mutex;

pub(crate) const KERNEL_STACK_FRAMES: usize = 4;

/// Priority of every new thread (`thread_set_priority` changes it).
pub const DEFAULT_PRIORITY: u8 = mach_abi::DEFAULT_PRIORITY as u8;

pub type TaskId = u64;

pub type ThreadId = u64;

/// The idle thread: the boot context.
pub(crate) const IDLE: ThreadId = 0;

/// Tag of a task's kernel port: `TASK_OBJECT | task id` in `Port::kernel_object`.
pub const TASK_OBJECT: u64 = 1 << 56;

/// Tag of the host port (privileged operations).
pub const HOST_OBJECT: u64 = 1 << 57;

/// Tag of a thread's kernel port: `THREAD_OBJECT | thread id`.
pub const THREAD_OBJECT: u64 = 1 << 59;

/// Tag of a thread's kernel reply port: `REPLY_OBJECT | thread id`.
pub const REPLY_OBJECT: u64 = 1 << 58;

/// Tag of the trace port: the right to trace tasks and read the trace ring (and nothing
/// else of the host port's privileges).
pub const TRACE_OBJECT: u64 = 1 << 60;

/// Where `vm_allocate` with address 0 starts placing regions in a task.
const ANYWHERE_START: u64 = 0x0000_1000_0000_0000;

pub struct Task {
    pub id: TaskId,
    pub name: String,
    pub space: AddressSpace,
    pub names: NameSpace,
    /// The receive right of the task's kernel port, held by the kernel.
    pub self_port: CarriedRight,
    /// Send rights the kernel holds for the task: syscall, exception and bootstrap ports
    /// (indexed by `mach_abi::special_port`).
    pub special_ports: [Option<CarriedRight>; 3],
    /// Where `vm_allocate` "anywhere" places the next region.
    pub next_free_address: u64,
    /// Rights to send task-ended notifications through.
    pub ended_notifications: Vec<CarriedRight>,
    /// Whether each foreign system call of the task starts a traced request.
    pub traced: bool,
    /// Suspensions not yet resumed; while above 0 its threads do not run.
    pub suspended: u32,
    /// I/O ports granted to the task (a set bit denies), or None for no port at all.
    pub io_bitmap: Option<alloc::boxed::Box<[u8; crate::arch::gdt::IO_BITMAP_BYTES]>>,
    pub threads: usize,
    /// Whether this task was already told it has no syscall port (logged once).
    pub warned_no_syscall_port: bool,
    /// The kernel memory the task makes the kernel hold for it (queued messages, names).
    pub held: HeldAccount,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ThreadState {
    Ready,
    Running,
    Blocked,
    Dead,
}

/// A thread blocked receiving on a port that the IPC fast path may hand a message to.
#[derive(Debug, Clone, Copy)]
pub struct DirectReceiver {
    pub thread: ThreadId,
    /// The port or set it waits on (whose queue of waiting receivers it heads).
    pub waited: PortId,
    pub task: TaskId,
    pub buffer: ReceiveBuffer,
}

pub(crate) struct Thread {
    pub(crate) task: Option<TaskId>,
    /// Physical address of the kernel stack (None for the idle thread's boot stack).
    pub(crate) kernel_stack: Option<u64>,
    pub(crate) saved_rsp: u64,
    pub(crate) state: ThreadState,
    pub(crate) priority: u8,
    /// Tick at which a blocked thread times out.
    pub(crate) deadline: Option<u64>,
    /// The port a blocked thread waits on (receive, or queue space to send).
    pub(crate) waiting_on: Option<PortId>,
    pub(crate) wake: Wake,
    /// The thread's FS base (thread-local storage), loaded when it runs.
    pub(crate) fs_base: u64,
    /// Receive right of the kernel port that replies to this thread's forwarded system
    /// calls and faults arrive on (made on first use).
    pub(crate) reply_port: Option<CarriedRight>,
    /// What the thread waits for an answer to.
    pub pending: Pending,
    /// The trace context the thread carries (0: none).
    pub(crate) trace: u32,
    /// The receive right of the thread's kernel port (held by the kernel).
    pub(crate) self_port: Option<CarriedRight>,
    /// Set while the thread is blocked in a receive (cleared when woken).
    pub(crate) receive_buffer: Option<ReceiveBuffer>,
    /// Its x87/SSE registers while another thread runs (user threads only).
    pub(crate) fpu: Option<alloc::boxed::Box<crate::arch::fpu::FpuState>>,
}

/// A forwarded request a thread waits on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pending {
    None,
    Syscall,
    Exception,
}

impl Thread {
    pub(crate) fn new(
        task: Option<TaskId>,
        kernel_stack: Option<u64>,
        saved_rsp: u64,
        state: ThreadState,
        priority: u8,
    ) -> Self {
        Thread {
            task,
            kernel_stack,
            saved_rsp,
            state,
            priority,
            deadline: None,
            waiting_on: None,
            wake: Wake::Retry,
            fs_base: 0,
            reply_port: None,
            pending: Pending::None,
            trace: 0,
            self_port: None,
            receive_buffer: None,
            fpu: task.map(|_| crate::arch::fpu::FpuState::initial()),
        }
    }

    pub(crate) fn stack_top(&self) -> Option<u64> {
        self.kernel_stack.map(|base| phys_to_virt(base) + KERNEL_STACK_FRAMES as u64 * PAGE_SIZE)
    }

    /// Load what the CPU needs to run this user thread: its FS base and, for traps and
    /// interrupts, its kernel stack.
    #[inline(always)]
    pub(crate) fn load_cpu_state(&self) {
        // SAFETY: FS base is only the user's thread-local pointer; the kernel uses GS.
        unsafe { crate::arch::cpu::wrmsr(crate::arch::cpu::MSR_FS_BASE, self.fs_base) };
        if let Some(fpu) = &self.fpu {
            fpu.load();
        }
        if let Some(top) = self.stack_top() {
            syscall::set_kernel_stack(top);
        }
    }
}

impl Task {
    /// A free range of `size` bytes (1 ..= `VM_MAX_SIZE`) for "anywhere" placement, with an
    /// unmapped guard page after it: the first one at or after the placement hint whose pages
    /// are all absent from the page tables, wrapping round once. Nothing is reserved: the
    /// caller maps it and then calls [`Task::placed_anywhere`], so a refused call uses up no
    /// address space. `NoMemory` when no such range is left.
    pub fn find_anywhere(&self, size: u64) -> Result<u64, KernelError> {
        if size == 0 || size > mach_abi::VM_MAX_SIZE {
            return Err(KernelError::InvalidArgument);
        }
        // The range and its guard page; no overflow: size <= 1 GiB.
        let span = size.next_multiple_of(PAGE_SIZE) + PAGE_SIZE;
        let top = mach_abi::layout::USER_END;
        let mut at = self.next_free_address;
        let mut wrapped = false;
        loop {
            if at + span > top {
                if wrapped {
                    return Err(KernelError::NoMemory);
                }
                wrapped = true;
                at = ANYWHERE_START;
            }
            if wrapped && at >= self.next_free_address {
                return Err(KernelError::NoMemory);
            }
            match self.space.last_mapped_page(at, at + span) {
                None => return Ok(at),
                Some(mapped) => at = mapped + PAGE_SIZE,
            }
        }
    }

    /// `[address, address + size)` was mapped "anywhere": the next search starts after it.
    pub fn placed_anywhere(&mut self, address: u64, size: u64) {
        self.next_free_address = address + size.next_multiple_of(PAGE_SIZE) + PAGE_SIZE;
    }
}

pub struct World {
    pub tasks: IdTable<Task>,
    pub(crate) threads: IdTable<Thread>,
    pub(crate) ready: RunQueue,
    pub(crate) dead: Vec<ThreadId>,
    pub(crate) current: ThreadId,
    /// The running thread's task (None for the idle thread), kept for the IPC path.
    pub(crate) current_task: Option<TaskId>,
    pub ports: PortTable<Message>,
    /// The host port's receive right (held by the kernel), made with the first task.
    pub host_port: Option<CarriedRight>,
    /// The trace port, made on first use (`host_trace_port`).
    pub trace_port: Option<CarriedRight>,
    /// Where each legacy interrupt line's messages go (a send right), if registered.
    pub irq_ports: [Option<CarriedRight>; 16],
    /// Lines whose interrupt is waiting for heap room to be delivered (bit per line).
    pub irq_pending: u16,
    /// Blocked threads with a deadline.
    pub(crate) timed: Vec<ThreadId>,
    /// Tasks without threads whose last task-port send right went away: the next reap
    /// finishes them.
    pub(crate) unreachable_tasks: Vec<TaskId>,
    pub ticks: u64,
    /// The running thread's trace context (saved into its `Thread` when it stops running).
    pub(crate) current_trace: u32,
    /// Ready threads of suspended tasks, waiting for the resume.
    pub(crate) parked: Vec<ThreadId>,
    /// How many tasks are suspended now.
    pub(crate) suspended_tasks: u32,
}

static WORLD: Mutex<Option<World>> = Mutex::new(None);

/// Run `f` with the kernel state locked. `f` must not switch threads.
#[inline(always)]
pub fn with<T>(f: impl FnOnce(&mut World) -> T) -> T {
    f(WORLD.lock().as_mut().expect("scheduler used before init"))
}

pub fn init() {
    // Slot 0 of the threads is the idle thread's; task ids start at 1.
    let mut threads = IdTable::new(1);
    threads.insert_reserved(0, Thread::new(None, None, 0, ThreadState::Running, 0));
    *WORLD.lock() = Some(World {
        tasks: IdTable::new(1),
        threads,
        ready: RunQueue::default(),
        dead: Vec::new(),
        current: IDLE,
        current_task: None,
        ports: PortTable::default(),
        host_port: None,
        trace_port: None,
        irq_ports: [None; 16],
        irq_pending: 0,
        timed: Vec::new(),
        unreachable_tasks: Vec::new(),
        current_trace: 0,
        parked: Vec::new(),
        suspended_tasks: 0,
        ticks: 0,
    });
}

impl World {
    pub fn current_thread(&self) -> ThreadId {
        self.current
    }

    /// The current thread's task id (None for the idle thread).
    pub fn current_task_id(&self) -> Option<TaskId> {
        self.current_task
    }

    /// The current task and the port table, borrowed together.
    #[inline(always)]
    pub fn current_task_and_ports(&mut self) -> Option<(&mut Task, &mut PortTable<Message>)> {
        let task = self.tasks.get_mut(self.current_task?)?;
        Some((task, &mut self.ports))
    }

    /// Make a blocked thread ready with `why`. Returns false if it was not blocked.
    pub fn wake(&mut self, thread: ThreadId, why: Wake) -> bool {
        let Some(t) = self.threads.get_mut(thread) else {
            return false;
        };
        if t.state != ThreadState::Blocked {
            return false;
        }
        t.state = ThreadState::Ready;
        t.wake = why;
        t.deadline = None;
        t.waiting_on = None;
        t.receive_buffer = None;
        let priority = t.priority;
        self.ready.push(thread, priority);
        true
    }

    /// Wake the first thread in `queue` still blocked on `port`.
    pub fn wake_one_waiting_on(&mut self, port: PortId, senders: bool) -> bool {
        loop {
            let Some(p) = self.ports.get_mut(port) else {
                return false;
            };
            let queue = if senders { &mut p.waiting_senders } else { &mut p.waiting_receivers };
            let Some(thread) = queue.pop_front() else {
                return false;
            };
            let waits_here = self
                .threads
                .get(thread)
                .is_some_and(|t| t.state == ThreadState::Blocked && t.waiting_on == Some(port));
            if waits_here && self.wake(thread, Wake::Retry) {
                return true;
            }
        }
    }

    /// Remember where the current thread, about to block receiving, wants its message.
    pub fn set_receive_buffer(&mut self, buffer: ReceiveBuffer) {
        if let Some(t) = self.threads.get_mut(self.current) {
            t.receive_buffer = Some(buffer);
        }
    }

    /// The thread first in line to receive on `port` (or on the set `port` is in), if it is
    /// blocked there with a receive buffer and may run at once: no task is suspended and no
    /// ready thread has a higher priority. Changes nothing.
    #[inline(always)]
    pub fn direct_receiver(&self, port: PortId) -> Option<DirectReceiver> {
        if self.suspended_tasks > 0 {
            return None;
        }
        let p = self.ports.get(port)?;
        let from_port = p.waiting_receivers.front().map(|t| (t, port));
        let from_set = || {
            let set = p.set?;
            self.ports.get(set)?.waiting_receivers.front().map(|t| (t, set))
        };
        let (thread, waited) = from_port.or_else(from_set)?;
        let t = self.threads.get(thread)?;
        if t.state != ThreadState::Blocked || t.waiting_on != Some(waited) {
            return None;
        }
        if self.ready.highest().is_some_and(|h| h > t.priority) {
            return None;
        }
        Some(DirectReceiver { thread, waited, task: t.task?, buffer: t.receive_buffer? })
    }

    /// The current thread's trace context.
    #[inline(always)]
    pub fn current_trace(&self) -> u32 {
        self.current_trace
    }

    /// Act on the events of rights operations: wake everyone waiting on ports that died,
    /// then destroy the messages that were queued on them (which may kill more ports).
    pub fn handle_events(&mut self, events: &mut Vec<Event>) {
        if events.is_empty() && !self.ports.has_dead_leftovers() {
            return;
        }
        loop {
            // What the kernel itself acts on: a task nobody can reach any more (no thread, no
            // send right to its port) ends; a kernel reply right destroyed unanswered wakes
            // the thread waiting on it. Notifications the tasks asked for come below.
            let mut unanswered = Vec::new();
            for event in events.drain(..) {
                if let Event::NoSenders(port) = event
                    && let Some(object) = self.ports.get(port).map(|p| p.kernel_object)
                    && object & TASK_OBJECT != 0
                {
                    let task = object & !TASK_OBJECT;
                    if self.tasks.get(task).is_some_and(|t| t.threads == 0) {
                        self.unreachable_tasks.push(task);
                    }
                }
                if let Event::SendOnceDestroyed(port) = event {
                    match self.thread_of_reply_port(port) {
                        Some(thread) => {
                            if self.threads.get(thread).is_some_and(|t| t.waiting_on == Some(port)) {
                                self.wake(thread, Wake::PortDied);
                            }
                        }
                        None => unanswered.push(port),
                    }
                }
            }
            // A send-once right destroyed unused (its holder died, or dropped the request it
            // came with) still delivers one message: a send-once notification, so a caller
            // waiting for the reply learns that none will come (Mach's MACH_NOTIFY_SEND_ONCE).
            for port in unanswered {
                if self.ports.get(port).is_some_and(|p| !p.is_dead() && p.kernel_object == 0)
                    && let Some(right) = self.ports.make_send_once(port)
                {
                    let message = crate::message::Message::from_kernel(
                        mach_abi::notify::SEND_ONCE_MESSAGE,
                        Vec::new(),
                        None,
                        Vec::new(),
                    );
                    crate::message::enqueue_from_kernel(self, right, message, events);
                }
            }
            for (port, thread) in self.ports.take_dead_waiters() {
                if self.threads.get(thread).is_some_and(|t| t.waiting_on == Some(port)) {
                    self.wake(thread, Wake::PortDied);
                }
            }
            // A receive right left its task: its waiters look again (and find it gone).
            for (port, thread) in self.ports.take_moved_waiters() {
                if self.threads.get(thread).is_some_and(|t| t.waiting_on == Some(port)) {
                    self.wake(thread, Wake::Retry);
                }
            }
            for notification in self.ports.take_notifications() {
                crate::message::send_notification(self, notification, events);
            }
            let dead = self.ports.take_dead_messages();
            if dead.is_empty() && !self.ports.has_dead_leftovers() && events.is_empty() {
                break;
            }
            for message in dead {
                message.destroy(&mut self.ports, events);
            }
        }
    }

    /// The thread whose kernel reply port is `port`, if it is one.
    pub fn thread_of_reply_port(&self, port: PortId) -> Option<ThreadId> {
        let object = self.ports.get(port)?.kernel_object;
        (object & REPLY_OBJECT != 0).then_some(object & !REPLY_OBJECT)
    }

    /// A send-once right to `thread`'s kernel reply port (made on first use) and the port.
    pub fn reply_right_for(&mut self, thread: ThreadId) -> Option<CarriedRight> {
        let existing = self.threads.get(thread)?.reply_port;
        let port = match existing {
            Some(right) => right.port,
            None => {
                let right = self.ports.create_in_transit();
                if let Some(p) = self.ports.get_mut(right.port) {
                    p.kernel_object = REPLY_OBJECT | thread;
                }
                self.threads.get_mut(thread)?.reply_port = Some(right);
                right.port
            }
        };
        self.ports.make_send_once(port)
    }

    /// Where the saved user registers of `thread` are: the top of its kernel stack, where
    /// every entry into the kernel saves them. Entries never hold a reference to them while
    /// the thread is in the kernel (see `trap::syscall`), so these are reached only here.
    fn user_frame_at(&self, thread: ThreadId) -> Option<*mut TrapFrame> {
        let top = self.threads.get(thread)?.stack_top()?;
        Some((top - core::mem::size_of::<TrapFrame>() as u64) as *mut TrapFrame)
    }

    /// Look at `thread`'s saved user registers (the caller's own: as at its trap) with `f`.
    pub fn with_user_frame<T>(&self, thread: ThreadId, f: impl FnOnce(&TrapFrame) -> T) -> Option<T> {
        let frame = self.user_frame_at(thread)?;
        // SAFETY: every user thread's kernel stack holds its user frame at the top; no other
        // reference to it is alive (one CPU, the world lock held, entries hold none).
        Some(f(unsafe { &*frame }))
    }

    /// Change `thread`'s saved user registers with `f` (for a thread that is not running
    /// user code: blocked, ready, or the caller between its trap entry and return).
    pub fn update_user_frame<T>(
        &mut self,
        thread: ThreadId,
        f: impl FnOnce(&mut TrapFrame) -> T,
    ) -> Option<T> {
        let frame = self.user_frame_at(thread)?;
        // SAFETY: as in `user_frame`; this is the only reference for the duration of `f`.
        Some(f(unsafe { &mut *frame }))
    }

    /// A new send right to `thread`'s kernel port.
    pub fn thread_port_right(&mut self, thread: ThreadId) -> Option<CarriedRight> {
        let port = self.threads.get(thread)?.self_port?;
        self.ports.make_send(port.port)
    }

    pub fn thread_task(&self, thread: ThreadId) -> Option<TaskId> {
        self.threads.get(thread)?.task
    }

    /// What `thread` waits for an answer to.
    pub fn thread_pending(&self, thread: ThreadId) -> Option<Pending> {
        self.threads.get(thread).map(|t| t.pending)
    }

    pub fn set_thread_pending(&mut self, thread: ThreadId, pending: Pending) {
        if let Some(t) = self.threads.get_mut(thread) {
            t.pending = pending;
        }
    }

    pub(crate) fn is_suspended(&self, thread: ThreadId) -> bool {
        // Nothing is suspended almost always: then there is nothing to look up.
        self.suspended_tasks > 0
            && self
                .threads
                .get(thread)
                .and_then(|t| t.task)
                .and_then(|t| self.tasks.get(t))
                .is_some_and(|t| t.suspended > 0)
    }

    /// Suspend `task` once more.
    pub fn suspend_task(&mut self, task: TaskId) -> Result<(), KernelError> {
        let t = self.tasks.get_mut(task).ok_or(KernelError::InvalidArgument)?;
        t.suspended = t.suspended.checked_add(1).ok_or(KernelError::InvalidArgument)?;
        if t.suspended == 1 {
            self.suspended_tasks += 1;
        }
        Ok(())
    }

    /// Undo one suspension; at zero the task's parked threads are ready again.
    pub fn resume_task(&mut self, task: TaskId) -> Result<(), KernelError> {
        let t = self.tasks.get_mut(task).ok_or(KernelError::InvalidArgument)?;
        t.suspended = t.suspended.checked_sub(1).ok_or(KernelError::InvalidArgument)?;
        if t.suspended == 0 {
            self.suspended_tasks -= 1;
            let parked = core::mem::take(&mut self.parked);
            for thread in parked {
                match self.threads.get(thread) {
                    Some(th) if th.task == Some(task) => {
                        let priority = th.priority;
                        self.ready.push(thread, priority);
                    }
                    Some(_) => self.parked.push(thread),
                    None => {}
                }
            }
        }
        Ok(())
    }

    /// Give `thread` a new priority; returns the old one. A ready thread moves to the back
    /// of its new level (a parked one is queued with its new priority when resumed).
    pub fn set_priority(&mut self, thread: ThreadId, priority: u8) -> Result<u8, KernelError> {
        let t = self.threads.get_mut(thread).ok_or(KernelError::InvalidArgument)?;
        if t.state == ThreadState::Dead {
            return Err(KernelError::InvalidArgument);
        }
        let old = core::mem::replace(&mut t.priority, priority);
        if t.state == ThreadState::Ready && !self.parked.contains(&thread) {
            self.ready.remove(thread);
            self.ready.push(thread, priority);
        }
        Ok(old)
    }

    /// Whether a ready thread outranks the running one (which should then give way).
    pub fn is_outranked(&self) -> bool {
        let priority = self.threads.get(self.current).map_or(0, |t| t.priority);
        self.ready.highest().is_some_and(|h| h > priority)
    }

    /// The trace context `thread` carries. The running thread's lives in `current_trace`
    /// (no lookup on the IPC path); others' in their `Thread`.
    pub fn thread_trace(&self, thread: ThreadId) -> u32 {
        if thread == self.current {
            self.current_trace
        } else {
            self.threads.get(thread).map_or(0, |t| t.trace)
        }
    }

    pub fn set_thread_trace(&mut self, thread: ThreadId, trace: u32) {
        if thread == self.current {
            self.current_trace = trace;
        } else if let Some(t) = self.threads.get_mut(thread) {
            t.trace = trace;
        }
    }

    pub fn fs_base(&self, thread: ThreadId) -> u64 {
        self.threads.get(thread).map_or(0, |t| t.fs_base)
    }

    pub fn set_fs_base(&mut self, thread: ThreadId, value: u64) {
        if let Some(t) = self.threads.get_mut(thread) {
            t.fs_base = value;
        }
    }
}

/// Make a task around `space`, with its kernel port. `anywhere_hint`: where "anywhere"
/// placement starts (a task copy keeps its parent's; None: the start of the region).
pub fn create_task(w: &mut World, name: &str, space: AddressSpace, anywhere_hint: Option<u64>) -> TaskId {
    {
        let id = w.tasks.next_id();
        let self_port = w.ports.create_in_transit();
        if let Some(p) = w.ports.get_mut(self_port.port) {
            p.kernel_object = TASK_OBJECT | id;
        }
        let task = Task {
            id,
            name: String::from(name),
            space,
            names: NameSpace::new(id),
            self_port,
            special_ports: [None; 3],
            next_free_address: anywhere_hint.unwrap_or(ANYWHERE_START),
            ended_notifications: Vec::new(),
            io_bitmap: None,
            traced: false,
            suspended: 0,
            threads: 0,
            warned_no_syscall_port: false,
            held: HeldAccount::new(),
        };
        w.tasks.insert(task);
        id
    }
}

/// Start a thread in `task` that enters user mode with `frame`.
pub fn spawn_thread(
    w: &mut World,
    task: TaskId,
    frame: &TrapFrame,
    priority: u8,
) -> Result<ThreadId, KernelError> {
    let stack = frames::alloc_contiguous_zeroed(KERNEL_STACK_FRAMES).ok_or(KernelError::NoMemory)?;
    let top = phys_to_virt(stack) + KERNEL_STACK_FRAMES as u64 * PAGE_SIZE;
    // SAFETY: the stack was just allocated for this thread.
    let saved_rsp = unsafe { context::prepare_user_entry(top, frame) };
    {
        let Some(owner) = w.tasks.get_mut(task) else {
            free_run(stack, KERNEL_STACK_FRAMES);
            return Err(KernelError::InvalidArgument);
        };
        owner.threads += 1;
        let id = w.threads.next_id();
        let mut thread = Thread::new(Some(task), Some(stack), saved_rsp, ThreadState::Ready, priority);
        let port = w.ports.create_in_transit();
        if let Some(p) = w.ports.get_mut(port.port) {
            p.kernel_object = THREAD_OBJECT | id;
        }
        thread.self_port = Some(port);
        w.threads.insert(thread);
        w.ready.push(id, priority);
        Ok(id)
    }
}

fn free_run(base: u64, count: usize) {
    for i in 0..count as u64 {
        frames::free(base + i * PAGE_SIZE);
    }
}

/// Run `f` on the current thread's task (None for the idle thread).
pub fn with_current_task<T>(f: impl FnOnce(&mut Task) -> T) -> Option<T> {
    with(|w| {
        let task = w.threads.get(w.current)?.task?;
        w.tasks.get_mut(task).map(f)
    })
}

/// Mark `thread` dead and out of every queue.
pub(crate) fn kill_thread(w: &mut World, thread: ThreadId) {
    if let Some(t) = w.threads.get_mut(thread)
        && t.state != ThreadState::Dead
    {
        t.state = ThreadState::Dead;
        w.ready.remove(thread);
        w.parked.retain(|&p| p != thread);
        w.dead.push(thread);
    }
}

/// Mark every thread of `task` dead (the task is finished when they are reaped).
pub fn kill_task_threads(w: &mut World, task: TaskId) {
    let threads: Vec<ThreadId> =
        w.threads.iter().filter(|(_, t)| t.task == Some(task)).map(|(id, _)| id).collect();
    for thread in threads {
        kill_thread(w, thread);
    }
}

/// End every thread of `task` (from any thread). Returns true if the calling thread was
/// one of them: it must then call `schedule` and will not come back. A task without threads
/// is finished at once.
pub fn terminate_task(task: TaskId) -> Result<bool, KernelError> {
    let finished = with(|w| {
        if !w.tasks.contains(task) {
            return Err(KernelError::InvalidArgument);
        }
        if w.tasks.get(task).is_some_and(|t| t.threads == 0) {
            return Ok(w.tasks.remove(task).map(|t| finish_task(w, t)));
        }
        kill_task_threads(w, task);
        Ok(None)
    })?;
    if let Some(task) = finished {
        crate::kprintln!("task {} ({}) ended", task.id, task.name);
        task.space.destroy();
    }
    Ok(with(|w| w.threads.get(w.current).is_some_and(|t| t.state == ThreadState::Dead)))
}

/// Release a finished task's rights and kernel port (its memory is freed by the caller,
/// outside the lock).
fn finish_task(w: &mut World, mut task: Task) -> Task {
    let mut events = Vec::new();
    let notifications = core::mem::take(&mut task.ended_notifications);
    crate::message::notify_task_ended(w, task.id, notifications, &mut events);
    task.names.destroy_all(&mut w.ports, &mut events);
    for right in task.special_ports.iter_mut().filter_map(|p| p.take()) {
        w.ports.release(right, &mut events);
    }
    w.ports.release(task.self_port, &mut events);
    w.handle_events(&mut events);
    crate::arch::gdt::forget_io_bitmap(task.id);
    if task.suspended > 0 {
        w.suspended_tasks -= 1;
    }
    task
}

/// Free ended threads' kernel stacks, and the rights, ports and memory of tasks with no
/// thread left (their end notifications go out then). Runs on the idle thread and on every
/// timer tick, whatever thread is running, so a thread that never blocks cannot hold it
/// back; never on a stack it frees (the running thread is left for a later round).
pub fn reap() {
    let unreachable: Vec<TaskId> = with(|w| core::mem::take(&mut w.unreachable_tasks));
    for task in unreachable {
        let _ = terminate_task(task);
    }
    let dead: Vec<ThreadId> = with(|w| {
        let current = w.current;
        let mut dead = core::mem::take(&mut w.dead);
        if let Some(at) = dead.iter().position(|&t| t == current) {
            w.dead.push(dead.swap_remove(at));
        }
        dead
    });
    for id in dead {
        let (thread, finished_task) = with(|w| {
            let thread = w.threads.remove(id)?;
            w.timed.retain(|&t| t != id);
            let task_id = thread.task?;
            let task = w.tasks.get_mut(task_id)?;
            task.threads -= 1;
            let finished = if task.threads == 0 { w.tasks.remove(task_id) } else { None };
            Some((thread, finished.map(|t| finish_task(w, t))))
        })
        .map_or((None, None), |(t, f)| (Some(t), f));
        for right in thread.iter().flat_map(|t| t.reply_port.into_iter().chain(t.self_port)) {
            with(|w| {
                let mut events = Vec::new();
                w.ports.release(right, &mut events);
                w.handle_events(&mut events);
            });
        }
        if let Some(stack) = thread.and_then(|t| t.kernel_stack) {
            free_run(stack, KERNEL_STACK_FRAMES);
        }
        if let Some(task) = finished_task {
            crate::kprintln!("task {} ({}) ended", task.id, task.name);
            task.space.destroy();
        }
    }
}

pub fn has_tasks() -> bool {
    with(|w| !w.tasks.is_empty())
}

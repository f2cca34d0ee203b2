//! Tasks, threads and the scheduler.
//!
//! A task is an address space (plus, later, a port name space); a thread is a kernel stack
//! holding its saved user registers, scheduled round-robin and preempted by the timer. The
//! boot context becomes the idle thread: it runs when nothing else is ready, reaps ended
//! threads, and halts the machine when no task is left.
//!
//! The kernel runs with interrupts disabled; it is entered by traps and leaves by returning
//! to a thread. A thread blocked or ended inside the kernel switches away with
//! `switch_context` and never holds the scheduler lock across the switch.

use crate::arch::{context, syscall, trap_frame::TrapFrame};
use crate::memory::{PAGE_SIZE, frames, paging::AddressSpace, phys_to_virt};
use alloc::collections::{BTreeMap, VecDeque};
use alloc::string::String;
use alloc::vec::Vec;
use mach_abi::KernelError;
use spin::Mutex;

const KERNEL_STACK_FRAMES: usize = 4;

pub type TaskId = u64;
pub type ThreadId = u64;

/// The idle thread: the boot context.
const IDLE: ThreadId = 0;

pub struct Task {
    pub id: TaskId,
    pub name: String,
    pub space: AddressSpace,
    pub threads: usize,
    /// Whether this task was already told it has no syscall port (logged once).
    pub warned_no_syscall_port: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ThreadState {
    Ready,
    Running,
    Dead,
}

struct Thread {
    task: Option<TaskId>,
    /// Physical address of the kernel stack (None for the idle thread's boot stack).
    kernel_stack: Option<u64>,
    saved_rsp: u64,
    state: ThreadState,
}

impl Thread {
    fn stack_top(&self) -> Option<u64> {
        self.kernel_stack
            .map(|base| phys_to_virt(base) + KERNEL_STACK_FRAMES as u64 * PAGE_SIZE)
    }
}

pub struct Scheduler {
    tasks: BTreeMap<TaskId, Task>,
    threads: BTreeMap<ThreadId, Thread>,
    ready: VecDeque<ThreadId>,
    dead: Vec<ThreadId>,
    current: ThreadId,
    next_id: u64,
}

static SCHED: Mutex<Option<Scheduler>> = Mutex::new(None);

fn with<T>(f: impl FnOnce(&mut Scheduler) -> T) -> T {
    f(SCHED.lock().as_mut().expect("scheduler used before init"))
}

pub fn init() {
    let mut threads = BTreeMap::new();
    threads.insert(
        IDLE,
        Thread {
            task: None,
            kernel_stack: None,
            saved_rsp: 0,
            state: ThreadState::Running,
        },
    );
    *SCHED.lock() = Some(Scheduler {
        tasks: BTreeMap::new(),
        threads,
        ready: VecDeque::new(),
        dead: Vec::new(),
        current: IDLE,
        next_id: 1,
    });
}

/// Make a task around `space`.
pub fn create_task(name: &str, space: AddressSpace) -> TaskId {
    with(|s| {
        let id = s.next_id;
        s.next_id += 1;
        s.tasks.insert(
            id,
            Task {
                id,
                name: String::from(name),
                space,
                threads: 0,
                warned_no_syscall_port: false,
            },
        );
        id
    })
}

/// Start a thread in `task` that enters user mode with `frame`.
pub fn spawn_thread(task: TaskId, frame: &TrapFrame) -> Result<ThreadId, KernelError> {
    let stack =
        frames::alloc_contiguous_zeroed(KERNEL_STACK_FRAMES).ok_or(KernelError::NoMemory)?;
    let top = phys_to_virt(stack) + KERNEL_STACK_FRAMES as u64 * PAGE_SIZE;
    // SAFETY: the stack was just allocated for this thread.
    let saved_rsp = unsafe { context::prepare_user_entry(top, frame) };
    with(|s| {
        let Some(owner) = s.tasks.get_mut(&task) else {
            frames_free_run(stack, KERNEL_STACK_FRAMES);
            return Err(KernelError::InvalidArgument);
        };
        owner.threads += 1;
        let id = s.next_id;
        s.next_id += 1;
        s.threads.insert(
            id,
            Thread {
                task: Some(task),
                kernel_stack: Some(stack),
                saved_rsp,
                state: ThreadState::Ready,
            },
        );
        s.ready.push_back(id);
        Ok(id)
    })
}

fn frames_free_run(base: u64, count: usize) {
    for i in 0..count as u64 {
        frames::free(base + i * PAGE_SIZE);
    }
}

/// Run `f` on the current thread's task (None for the idle thread).
pub fn with_current_task<T>(f: impl FnOnce(&mut Task) -> T) -> Option<T> {
    with(|s| {
        let task = s.threads.get(&s.current)?.task?;
        s.tasks.get_mut(&task).map(f)
    })
}

/// Switch to the next ready thread, if any; the current one, if still running, goes to the
/// back of the queue. With nothing ready, a running thread keeps the CPU and a blocked or
/// dead one gives it to the idle thread.
pub fn schedule() {
    let switch = with(|s| {
        let current = s.current;
        let still_running = s
            .threads
            .get(&current)
            .is_some_and(|t| t.state == ThreadState::Running);
        let next = match s.ready.pop_front() {
            Some(next) => next,
            None if still_running => return None,
            None => IDLE,
        };
        if next == current {
            return None;
        }
        if still_running && current != IDLE {
            if let Some(t) = s.threads.get_mut(&current) {
                t.state = ThreadState::Ready;
            }
            s.ready.push_back(current);
        }
        let target = s.threads.get_mut(&next).expect("ready thread exists");
        target.state = ThreadState::Running;
        let load = target.saved_rsp;
        let top = target.stack_top();
        match target.task.and_then(|t| s.tasks.get(&t)) {
            Some(task) => task.space.activate(),
            None => crate::memory::paging::activate_kernel_space(),
        }
        if let Some(top) = top {
            syscall::set_kernel_stack(top);
        }
        s.current = next;
        let save = &mut s
            .threads
            .get_mut(&current)
            .expect("current thread exists")
            .saved_rsp as *mut u64;
        Some((save, load))
    });
    if let Some((save, load)) = switch {
        // SAFETY: `save` points into the BTreeMap node of the current thread, which is not
        // removed while it runs (dead threads are reaped only by another thread); `load` is
        // a stack pointer saved by `switch_context` or `prepare_user_entry`.
        unsafe { context::switch_context(save, load) };
    }
}

/// End the current thread (and its task with its last thread). Never returns.
pub fn exit_current() -> ! {
    with(|s| {
        let current = s.current;
        if let Some(t) = s.threads.get_mut(&current) {
            t.state = ThreadState::Dead;
        }
        s.dead.push(current);
    });
    schedule();
    unreachable!("a dead thread was scheduled");
}

/// Free ended threads' kernel stacks and the address spaces of tasks with no thread left.
/// Runs on the idle thread, never on a stack it frees. Returns the names of ended tasks.
pub fn reap(mut ended: impl FnMut(&Task)) {
    let dead: Vec<ThreadId> = with(|s| core::mem::take(&mut s.dead));
    for id in dead {
        let (thread, finished_task) = with(|s| {
            let thread = s.threads.remove(&id)?;
            let task_id = thread.task?;
            let task = s.tasks.get_mut(&task_id)?;
            task.threads -= 1;
            let finished = if task.threads == 0 {
                s.tasks.remove(&task_id)
            } else {
                None
            };
            Some((thread, finished))
        })
        .map_or((None, None), |(t, f)| (Some(t), f));
        if let Some(stack) = thread.and_then(|t| t.kernel_stack) {
            frames_free_run(stack, KERNEL_STACK_FRAMES);
        }
        if let Some(task) = finished_task {
            ended(&task);
            task.space.destroy();
        }
    }
}

pub fn has_tasks() -> bool {
    with(|s| !s.tasks.is_empty())
}

/// Timer tick: preempt the running thread if another is ready.
pub fn tick() {
    if with(|s| !s.ready.is_empty()) {
        schedule();
    }
}

//! kernel-tests: the in-guest test program for mach-kernel, started as the first task by
//! the system tests with a command line naming the cases to run, in order:
//!
//! - `traps`: bad trap numbers and bad pointers give error codes, not faults;
//! - `foreign`: a foreign system call without a syscall port returns -ENOSYS;
//! - `clock`: the monotonic clock follows sleeps, the wall clock is a date after 2023;
//! - `fault-write`: write to an unmapped address (the task must be ended, the kernel live);
//! - `fault-ud`: execute an invalid instruction;
//! - `bench`: instruction counts under icount (bench.rs, `make bench`);
//! - `rpc`, `rights`, `sets`, `timeouts`, `dead-names`, `bad-ipc`, `notifications`, `ool`: IPC (see ipc_cases.rs);
//! - `tasks`, `bad-tasks`, `host`, `fork`, `priorities`, `vm-map`, `exhaustion`: task ports, memory,
//!   modules, copy-on-write task copies, thread priorities, shared memory (task_cases.rs);
//! - `devices`: I/O ports, device memory, DMA memory, IRQs as messages (device_cases.rs);
//! - `forward`, `exceptions`, `trace`, `suspend`: syscall and exception ports, traces,
//!   suspend/resume and thread state (forward_cases.rs);
//! - `nt-flag`, `physical`, `anywhere`, `self-receive`, `reap`, `bad-reply`, `fs-base`,
//!   `held-limit`, `own-state`, `long-trap`, `task-cycle`, `moved-receive`: the holes of issue 9, one each (hole_cases.rs);
//! - `names`, `echo-server`, `echo-client`: when started by bootstrap, its name service and
//!   RPC between two tasks (see name_cases.rs); `private-names`: beside the servers, nothing
//!   private reaches a program bootstrap's policy does not name;
//! - `fuzz:SEED:CALLS:OPTIONS`: seeded random calls to every trap (fuzz.rs; `make fuzz`).
//!
//! A case word may carry parameters after a colon (`fuzz:7:20000`); the case's name is the
//! part before the first colon, and that is what its `case NAME:` line shows.
//! Each case prints `case NAME: ok` or `case NAME: FAILED ...` on the kernel log; the system
//! test checks those lines.
#![no_std]
#![no_main]

use libmach::{KernelError, println, raw_syscall, trap};

mod bench;
mod device_cases;
mod forward_cases;
mod fuzz;
mod hole_cases;
mod ipc_cases;
mod name_cases;
mod task_cases;

libmach::entry!(main);

/// The address `fault-write` writes to; the system test looks for it in the fault report.
const UNMAPPED: u64 = 0xdead_0000;

fn main(args: &str) -> u64 {
    let mut failures = 0;
    for word in args.split_ascii_whitespace().skip(1) {
        let (case, params) = word.split_once(':').unwrap_or((word, ""));
        let result = match case {
            "traps" => traps(),
            "foreign" => foreign(),
            "clock" => clock(),
            "bench" => bench::run(),
            "profile-null" => bench::profile_null(),
            "rpc" => ipc_cases::rpc(),
            "rights" => ipc_cases::rights(),
            "sets" => ipc_cases::port_sets(),
            "timeouts" => ipc_cases::timeouts(),
            "dead-names" => ipc_cases::dead_names(),
            "bad-ipc" => ipc_cases::bad_arguments(),
            "notifications" => ipc_cases::notifications(),
            "ool" => ipc_cases::out_of_line(),
            "fast-path" => ipc_cases::fast_path(),
            "tasks" => task_cases::tasks(),
            "names" => name_cases::names(),
            "echo-server" => name_cases::echo_server(),
            "echo-client" => name_cases::echo_client(),
            "private-names" => name_cases::private_names(),
            "forward" => forward_cases::forwarding(),
            "exceptions" => forward_cases::exceptions(),
            "trace" => forward_cases::tracing(),
            "suspend" => forward_cases::suspend_and_state(),
            "bad-tasks" => task_cases::bad_task_arguments(),
            "host" => task_cases::host(),
            "fork" => task_cases::fork(),
            "priorities" => task_cases::priorities(),
            "vm-map" => task_cases::shared_memory(),
            "exhaustion" => task_cases::exhaustion(),
            "devices" => device_cases::devices(),
            "nt-flag" => hole_cases::nt_flag(),
            "physical" => hole_cases::physical(),
            "anywhere" => hole_cases::anywhere(),
            "self-receive" => hole_cases::self_receive(),
            "reap" => hole_cases::reap(),
            "bad-reply" => hole_cases::bad_reply(),
            "fs-base" => hole_cases::fs_base(),
            "held-limit" => hole_cases::held_limit(),
            "own-state" => hole_cases::own_state(),
            "long-trap" => hole_cases::long_trap(),
            "task-cycle" => hole_cases::task_cycle(),
            "moved-receive" => hole_cases::moved_receive(),
            "fuzz" => fuzz::run(params),
            "fault-write" => {
                println!("case fault-write: writing {UNMAPPED:#x}");
                // SAFETY: deliberately unsafe: the kernel must end this task.
                unsafe { core::ptr::write_volatile(UNMAPPED as *mut u64, 1) };
                Err("the write to an unmapped address succeeded")
            }
            "fault-ud" => {
                println!("case fault-ud: executing ud2");
                // SAFETY: deliberately raises #UD; the kernel must end this task.
                unsafe { core::arch::asm!("ud2") };
                Err("ud2 returned")
            }
            other => {
                println!("unknown case {other}");
                Err("unknown case")
            }
        };
        match result {
            Ok(()) => println!("case {case}: ok"),
            Err(why) => {
                failures += 1;
                println!("case {case}: FAILED: {why}");
            }
        }
    }
    println!("kernel-tests: {failures} failed");
    failures
}

pub(crate) fn check(ok: bool, why: &'static str) -> Result<(), &'static str> {
    if ok { Ok(()) } else { Err(why) }
}

fn traps() -> Result<(), &'static str> {
    // SAFETY: unknown trap numbers must be refused without effect.
    let unknown = unsafe { raw_syscall(-999, [0; 6]) };
    check(KernelError::from_return(unknown) == Some(KernelError::InvalidTrap), "unknown trap not refused")?;
    let bad_pointers: [(u64, u64); 4] = [
        (0, 1),                        // null
        (UNMAPPED, 16),                // unmapped user memory
        (0xffff_ffff_8000_0000, 16),   // the kernel's image
        (0x0000_7fff_ffff_fff0, 0x20), // runs off the end of user space
    ];
    for (ptr, len) in bad_pointers {
        // SAFETY: the kernel must check the pointer and refuse it.
        let r = unsafe { raw_syscall(trap::DEBUG_WRITE, [ptr, len, 0, 0, 0, 0]) };
        check(KernelError::from_return(r) == Some(KernelError::InvalidAddress), "bad pointer not refused")?;
    }
    let huge = libmach::debug_write(&[b'x'; mach_abi::DEBUG_WRITE_MAX + 1]);
    check(huge == Err(KernelError::InvalidArgument), "oversized debug_write not refused")?;
    check(libmach::debug_write(b"traps: a good write still works") == Ok(31), "good write failed")
}

fn foreign() -> Result<(), &'static str> {
    // SAFETY: 39 is Linux getpid; with no syscall port the kernel answers -ENOSYS.
    let r = unsafe { raw_syscall(39, [0; 6]) };
    check(r == -38, "foreign syscall did not return -ENOSYS")
}

fn clock() -> Result<(), &'static str> {
    let before = libmach::uptime_ns();
    libmach::ipc::sleep_ms(50);
    let slept = libmach::uptime_ns() - before;
    check((50_000_000..5_000_000_000).contains(&slept), "a 50 ms sleep on the monotonic clock")?;
    let seconds = libmach::realtime_ns() / 1_000_000_000;
    check(seconds > 1_700_000_000, "the wall clock is after 2023")?;
    // SAFETY: a clock that does not exist must be refused.
    let r = unsafe { raw_syscall(trap::CLOCK_READ, [2, 0, 0, 0, 0, 0]) };
    check(KernelError::from_return(r) == Some(KernelError::InvalidArgument), "an unknown clock")
}

//! mach-kernel: the Machina microkernel.
//!
//! Design principles (numbered so that code and reviews can cite them):
//! 1. Mechanisms, not policy. If a server could do it, a server does it: the kernel has
//!    tasks, threads, ports, messages, memory and traps, and nothing that decides for users.
//! 2. No user action can stop the kernel. Every trap decodes its arguments into typed values
//!    first (`args.rs`), checks them, and returns `Result<_, KernelError>`; a faulting user
//!    thread becomes a message to its exception port or the end of its task. Panics are for
//!    broken kernel invariants only.
//! 3. User memory is an allegation until checked: it is touched only through `UserPtr` /
//!    `UserSlice` (`memory/user.rs`), as plain-bytes types, never device memory.
//! 4. Check first, then act: a trap that fails has changed nothing it would have to undo.
//! 5. No user can make the kernel hold unbounded memory or time for it: a per-task limit of
//!    held kernel memory, a heap-room check before every allocation made for users, and long
//!    traps that let the timer in between steps.
//! 6. A kernel bug stops the machine loudly: exceptions in the kernel and panics print
//!    everything known on the kernel log and end QEMU with a failure status.
//! 7. The kernel log goes to QEMU's debugcon, never to COM1, which belongs to the console
//!    server.
//! 8. One boot protocol: Limine. The direct loader speaks it too.
//! 9. Readable first: one file per kernel object (docs/kernel.md has the map), each saying
//!    what it is for and what it must not do; every `unsafe` block says why it is sound.
#![no_std]
#![no_main]
#![deny(unsafe_op_in_unsafe_fn, clippy::undocumented_unsafe_blocks)]

extern crate alloc;

mod arch;
mod args;
mod boot;
mod clock;
mod forward;
mod host_traps;
mod log;
mod memory;
mod message;
mod msg;
mod msg_fast;
mod panic;
mod port_traps;
mod sched;
mod task_traps;
mod thread_traps;
mod trace;
mod trap;
mod user_image;
mod vm_traps;
mod world;

use arch::cpu;
use core::sync::atomic::Ordering;
use mach_abi::qemu_exit;
use mach_kernel::options::{KernelOptions, SelfTest};
use memory::paging::{self, KernelImage};

/// The ELF entry point: the loader (Limine or the direct loader) jumps here on its stack,
/// with interrupts off and its own page tables.
#[unsafe(no_mangle)]
extern "C" fn kernel_entry() -> ! {
    kprintln!("Machina mach-kernel {} starting", env!("CARGO_PKG_VERSION"));
    if !boot::BASE_REVISION.is_supported() {
        panic!("the boot loader does not support Limine base revision {}", boot::REQUESTED_BASE_REVISION);
    }
    let loader = boot::BOOTLOADER_INFO.get_response();
    kprintln!(
        "boot: {} {} (Limine protocol, base revision {})",
        loader.map_or("unknown loader", |l| l.name()),
        loader.map_or("", |l| l.version()),
        boot::BASE_REVISION.loaded_revision().unwrap_or(boot::REQUESTED_BASE_REVISION)
    );

    let hhdm = boot::HHDM.get_response().expect("no HHDM response").offset();
    let memory_map = boot::MEMORY_MAP.get_response().expect("no memory map response").entries();
    // The HHDM covers RAM and the low 4 GiB (firmware, ACPI, device memory), not reserved
    // ranges far above (QEMU reports one just below 1 TiB): mapping those would cost
    // megabytes of page tables for nothing.
    let top = memory_map
        .iter()
        .filter(|e| e.entry_type != limine::memory_map::EntryType::RESERVED)
        .map(|e| e.base + e.length)
        .max()
        .unwrap_or(0)
        .max(1 << 32);
    let top = top.next_multiple_of(2 << 20);
    memory::set_hhdm(hhdm, top);
    memory::frames::init(memory_map);
    let image = boot::EXECUTABLE_ADDRESS.get_response().expect("no executable address response");
    let image = KernelImage { physical_base: image.physical_base(), virtual_base: image.virtual_base() };
    paging::init_kernel_space(&image, top, hhdm);
    memory::heap::init();
    let usable: u64 = memory_map
        .iter()
        .filter(|e| e.entry_type == limine::memory_map::EntryType::USABLE)
        .map(|e| e.length)
        .sum();
    kprintln!(
        "memory: {} MiB usable, {} frames free; hhdm at {hhdm:#x}; kernel at {:#x} (physical {:#x})",
        usable >> 20,
        memory::frames::free_count(),
        image.virtual_base,
        image.physical_base
    );

    arch::gdt::init();
    arch::fpu::init();
    arch::idt::init();
    arch::syscall::init();
    arch::pic::init();
    clock::init();
    world::init();
    kprintln!("cpu: gdt, tss, idt, syscall ready; timer at {} Hz", arch::pic::TIMER_HZ);

    let cmdline = boot::cmdline();
    let options = KernelOptions::parse(cmdline);
    kprintln!("cmdline: \"{cmdline}\"");
    if let Some(word) = options.unknown {
        kprintln!("cmdline: ignoring unknown option \"{word}\"");
    }
    if let Some(records) = options.trace_ring {
        match crate::trace::resize(records) {
            Ok(()) => kprintln!("trace: the ring keeps {records} records"),
            Err(e) => {
                kprintln!("trace: cannot keep {records} records ({e:?}); {} kept", crate::trace::capacity())
            }
        }
    }
    if let Some(test) = options.selftest {
        selftest(test);
    }

    for index in 0..boot::module_count() {
        if let Some(m) = boot::module(index) {
            kprintln!("module {index}: {} ({} bytes) \"{}\"", m.path, m.bytes.len(), m.cmdline);
        }
    }
    let frames_before_tasks = memory::frames::free_count();
    match boot::module(0) {
        None => kprintln!("no boot modules: nothing to run"),
        Some(first) => {
            let name = first.path.rsplit('/').next().unwrap_or(first.path);
            match user_image::start_task(name, first.bytes, first.cmdline) {
                Ok(task) => kprintln!("started task {task} ({name}) from {}", first.path),
                Err(e) => kprintln!("cannot start {}: {e:?}", first.path),
            }
        }
    }
    idle(frames_before_tasks)
}

/// The idle thread: run whatever is ready, reap what ended, halt when no task is left.
fn idle(frames_before_tasks: usize) -> ! {
    loop {
        world::reap();
        if !world::has_tasks() {
            let (heap_size, heap_used) = memory::heap::usage();
            kprintln!(
                "mach-kernel: no tasks left; halting ({} frames free, {} before the first task; kernel \
                 heap {} KiB used of {} KiB)",
                memory::frames::free_count(),
                frames_before_tasks,
                heap_used / 1024,
                heap_size / 1024
            );
            cpu::exit_qemu(qemu_exit::HALTED);
        }
        sched::schedule();
        cpu::wait_for_interrupt();
    }
}

fn selftest(test: SelfTest) {
    kprintln!("selftest: {test:?}");
    match test {
        SelfTest::Panic => {
            // One traced hop first, so the flight recorder has something to show.
            let context = crate::trace::new_context();
            crate::trace::record(context, mach_abi::trace::TRAP, 0, 0, 0, 0x5e1f, 0);
            panic!("selftest=panic requested")
        }
        SelfTest::PageFault => {
            // SAFETY: deliberately not safe: this address is unmapped, to exercise the kernel
            // exception report. It never returns.
            unsafe { core::ptr::read_volatile(0xffff_ffff_7fff_f000 as *const u64) };
        }
        SelfTest::Timer => {
            let start = trap::TICKS.load(Ordering::Relaxed);
            let tsc = cpu::rdtsc();
            while trap::TICKS.load(Ordering::Relaxed) < start + 10 {
                cpu::wait_for_interrupt();
            }
            kprintln!("selftest: timer delivered 10 ticks ({} TSC cycles)", cpu::rdtsc() - tsc);
        }
        SelfTest::Hang => loop {
            cpu::wait_for_interrupt();
        },
    }
}

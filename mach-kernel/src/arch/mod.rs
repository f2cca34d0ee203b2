//! x86-64 specifics: CPU registers and ports, the user's floating-point state, the GDT/TSS, the IDT with its entry stubs,
//! SYSCALL/SYSRET, the legacy interrupt controller and the timer.
//! Nothing here decides policy: it turns hardware events into calls of `trap`, `syscall`
//! and `sched` functions.

pub mod context;
pub mod cpu;
pub mod fpu;
pub mod gdt;
pub mod idt;
pub mod pic;
pub mod syscall;
pub mod trap_frame;
pub mod user_copy;

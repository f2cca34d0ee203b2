//! The register frame every entry into the kernel saves: interrupts, exceptions and
//! SYSCALL all build this one layout on the thread's kernel stack, so a thread's user state
//! is always one `TrapFrame`, whatever way it entered.

/// Vector number recorded in frames built by the SYSCALL entry.
pub const SYSCALL_VECTOR: u64 = 0x100;

pub const KERNEL_CODE: u64 = 0x08;
pub const KERNEL_DATA: u64 = 0x10;
pub const USER_DATA: u64 = 0x18 | 3;
pub const USER_CODE: u64 = 0x20 | 3;

/// RFLAGS.IF: interrupts enabled. User threads always run with it set.
pub const RFLAGS_IF: u64 = 1 << 9;

#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
pub struct TrapFrame {
    pub r15: u64,
    pub r14: u64,
    pub r13: u64,
    pub r12: u64,
    pub r11: u64,
    pub r10: u64,
    pub r9: u64,
    pub r8: u64,
    pub rbp: u64,
    pub rdi: u64,
    pub rsi: u64,
    pub rdx: u64,
    pub rcx: u64,
    pub rbx: u64,
    pub rax: u64,
    /// Interrupt vector, or [`SYSCALL_VECTOR`].
    pub vector: u64,
    /// The CPU's error code for the exceptions that push one, else 0.
    pub error_code: u64,
    pub rip: u64,
    pub cs: u64,
    pub rflags: u64,
    pub rsp: u64,
    pub ss: u64,
}

/// Byte offset of `cs` in the frame; the assembly stubs test its low bits.
pub const CS_OFFSET: usize = 18 * 8;
const _: () = assert!(core::mem::offset_of!(TrapFrame, cs) == CS_OFFSET);
const _: () = assert!(core::mem::size_of::<TrapFrame>() == 22 * 8);

impl TrapFrame {
    pub fn came_from_user(&self) -> bool {
        self.cs & 3 == 3
    }

    /// A frame that enters user mode at `rip` with stack `rsp`.
    pub fn new_user(rip: u64, rsp: u64) -> Self {
        TrapFrame { rip, rsp, cs: USER_CODE, ss: USER_DATA, rflags: RFLAGS_IF | 0x2, ..Default::default() }
    }

    /// Print every register, four to a line.
    pub fn dump(&self, out: &mut dyn core::fmt::Write) -> core::fmt::Result {
        let regs = [
            ("rax", self.rax),
            ("rbx", self.rbx),
            ("rcx", self.rcx),
            ("rdx", self.rdx),
            ("rsi", self.rsi),
            ("rdi", self.rdi),
            ("rbp", self.rbp),
            ("rsp", self.rsp),
            ("r8", self.r8),
            ("r9", self.r9),
            ("r10", self.r10),
            ("r11", self.r11),
            ("r12", self.r12),
            ("r13", self.r13),
            ("r14", self.r14),
            ("r15", self.r15),
            ("rip", self.rip),
            ("rflags", self.rflags),
            ("cs", self.cs),
            ("ss", self.ss),
        ];
        for row in regs.chunks(4) {
            write!(out, " ")?;
            for (name, value) in row {
                write!(out, " {name:>6}={value:#018x}")?;
            }
            writeln!(out)?;
        }
        Ok(())
    }
}

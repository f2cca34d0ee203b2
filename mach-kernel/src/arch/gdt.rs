//! The GDT (kernel and user segments in the order SYSCALL/SYSRET need) and the TSS, whose
//! `rsp0` is the kernel stack for interrupts from user mode and whose IST stacks catch double
//! faults, NMIs and machine checks even when the kernel stack is unusable.
//!
//! One CPU for now: the tables are statics loaded once by `init`.

use super::trap_frame::{KERNEL_CODE, KERNEL_DATA};
use core::arch::asm;
use core::ptr::addr_of;

/// IST slots (1-based, as the IDT encodes them).
pub const IST_DOUBLE_FAULT: u8 = 1;
pub const IST_NMI: u8 = 2;
pub const IST_MACHINE_CHECK: u8 = 3;

const IST_STACK_SIZE: usize = 16 * 1024;
const TSS_SELECTOR: u16 = 0x28;

#[repr(C, packed(4))]
pub struct TaskStateSegment {
    reserved0: u32,
    rsp: [u64; 3],
    reserved1: u64,
    ist: [u64; 7],
    reserved2: u64,
    reserved3: u16,
    iomap_base: u16,
    /// The I/O permission bitmap of the running task (a set bit denies the port), and the
    /// terminating all-ones byte the CPU reads past its end.
    io_bitmap: [u8; IO_BITMAP_BYTES],
    io_bitmap_end: u8,
}

/// One bit per I/O port.
pub const IO_BITMAP_BYTES: usize = 65536 / 8;

/// Whose bitmap the TSS holds (0: nobody's, all ports denied).
static mut LOADED_IO_BITMAP: u64 = 0;

/// Put `bitmap` (owned by `owner`, a task id) into the TSS, or deny every port with None.
/// Copies only when the owner changes.
pub fn load_io_bitmap(owner: u64, bitmap: Option<&[u8; IO_BITMAP_BYTES]>) {
    let owner = if bitmap.is_some() { owner } else { 0 };
    // `&mut TSS.io_bitmap` directly is refused for a static mut.
    #[allow(clippy::deref_addrof)]
    // SAFETY: one CPU; the CPU reads the bitmap only when user code executes in/out.
    unsafe {
        if LOADED_IO_BITMAP == owner {
            return;
        }
        let io_bitmap = &mut *(&raw mut TSS.io_bitmap);
        match bitmap {
            Some(b) => io_bitmap.copy_from_slice(b),
            None => io_bitmap.fill(0xff),
        }
        LOADED_IO_BITMAP = owner;
    }
}

/// Forget which bitmap is loaded (its task ended): the next load copies again.
pub fn forget_io_bitmap(owner: u64) {
    // SAFETY: one CPU.
    unsafe {
        if LOADED_IO_BITMAP == owner {
            LOADED_IO_BITMAP = u64::MAX;
        }
    }
}

#[repr(C, align(16))]
struct IstStacks([[u8; IST_STACK_SIZE]; 3]);

static mut IST_STACKS: IstStacks = IstStacks([[0; IST_STACK_SIZE]; 3]);

static mut TSS: TaskStateSegment = TaskStateSegment {
    reserved0: 0,
    rsp: [0; 3],
    reserved1: 0,
    ist: [0; 7],
    reserved2: 0,
    reserved3: 0,
    iomap_base: core::mem::offset_of!(TaskStateSegment, io_bitmap) as u16,
    // Every port denied until a task with a grant runs.
    io_bitmap: [0xff; IO_BITMAP_BYTES],
    io_bitmap_end: 0xff,
};

/// null, kernel code, kernel data, user data, user code, TSS (two slots).
static mut GDT: [u64; 7] = [
    0,
    0x00AF_9A00_0000_FFFF, // 0x08 kernel code, 64-bit
    0x00CF_9200_0000_FFFF, // 0x10 kernel data
    0x00CF_F200_0000_FFFF, // 0x18 user data (DPL 3)
    0x00AF_FA00_0000_FFFF, // 0x20 user code, 64-bit (DPL 3)
    0,
    0,
];

#[repr(C, packed)]
struct DescriptorPointer {
    limit: u16,
    base: u64,
}

/// Set the stack the CPU switches to on an interrupt or exception from user mode.
pub fn set_kernel_stack(top: u64) {
    // SAFETY: one CPU; the TSS field is only read by the CPU on the next privilege change.
    unsafe { TSS.rsp[0] = top };
}

pub fn init() {
    // SAFETY: runs once at boot on the only CPU, before any interrupt is enabled.
    unsafe {
        let stacks = &raw mut IST_STACKS;
        for (i, slot) in [IST_DOUBLE_FAULT, IST_NMI, IST_MACHINE_CHECK].into_iter().enumerate() {
            let top = addr_of!((*stacks).0[i]) as u64 + IST_STACK_SIZE as u64;
            TSS.ist[slot as usize - 1] = top;
        }
        let base = &raw const TSS as u64;
        let limit = core::mem::size_of::<TaskStateSegment>() as u64 - 1;
        let low = (limit & 0xffff)
            | ((base & 0xff_ffff) << 16)
            | (0x89 << 40) // present, 64-bit available TSS
            | (((limit >> 16) & 0xf) << 48)
            | (((base >> 24) & 0xff) << 56);
        let gdt = &raw mut GDT;
        (*gdt)[5] = low;
        (*gdt)[6] = base >> 32;

        let pointer =
            DescriptorPointer { limit: (core::mem::size_of::<[u64; 7]>() - 1) as u16, base: gdt as u64 };
        asm!(
            "lgdt [{pointer}]",
            "push {code}",
            "lea {tmp}, [rip + 2f]",
            "push {tmp}",
            "retfq",
            "2:",
            "mov ds, {data:x}",
            "mov es, {data:x}",
            "mov ss, {data:x}",
            "xor {tmp:e}, {tmp:e}",
            "mov fs, {tmp:x}",
            "mov gs, {tmp:x}",
            "ltr {tss:x}",
            pointer = in(reg) &pointer,
            code = in(reg) KERNEL_CODE,
            data = in(reg) KERNEL_DATA,
            tss = in(reg) TSS_SELECTOR,
            tmp = out(reg) _,
        );
    }
}

//! In-guest device cases (the first task holds the host port): I/O-port grants, device
//! memory, DMA memory, and an interrupt line delivered as messages (the CMOS clock's
//! periodic interrupt, IRQ 8).

use crate::check;
use libmach::KernelError;
use libmach::device::*;
use libmach::ipc::*;
use libmach::task::*;
use mach_abi::{IRQ_MESSAGE, protection, special_port};

/// COM1's scratch register: any value written reads back, and nothing else happens.
const COM1_SCRATCH: u16 = 0x3f8 + 7;
const CMOS_INDEX: u16 = 0x70;
const CMOS_DATA: u16 = 0x71;

pub fn devices() -> Result<(), &'static str> {
    let host = libmach::startup_port();
    let me = task_self().map_err(|_| "task_self")?;

    // I/O ports: granted, they work; other tasks still get #GP (checked in a child).
    io_ports(host, me, COM1_SCRATCH, 1).map_err(|_| "io_ports")?;
    for value in [0x5a, 0xa5] {
        // SAFETY: the scratch register was granted to this task and has no effect.
        let back = unsafe {
            outb(COM1_SCRATCH, value);
            inb(COM1_SCRATCH)
        };
        check(back == value, "the scratch register reads back")?;
    }
    check(io_ports(host, me, 65535, 2) == Err(KernelError::InvalidArgument), "ports past 65535")?;
    check(io_ports(me, me, 0x80, 1) == Err(KernelError::InvalidRight), "io_ports needs the host port")?;
    ungranted_port_faults_in_a_child()?;

    // Device memory: the local APIC's version register (never zero, never all ones).
    let window = 0x5000_0000_0000;
    map_physical(host, me, 0xfee0_0000, window, 4096).map_err(|_| "map the local APIC")?;
    // SAFETY: the APIC page is mapped uncached at `window`; offset 0x30 is its version.
    let version = unsafe { core::ptr::read_volatile((window + 0x30) as *const u32) };
    check(version != 0 && version != u32::MAX && version & 0xff >= 0x10, "a local APIC version register")?;
    vm_deallocate(me, window, 4096).map_err(|_| "unmap")?;
    check(
        map_physical(host, me, 0x100000, window, 4096) == Err(KernelError::InvalidArgument),
        "RAM is refused",
    )?;
    check(
        map_physical(host, me, 0xfee0_0001, window, 4096) == Err(KernelError::InvalidArgument),
        "unaligned",
    )?;

    // DMA memory: contiguous, its physical address real (seen through a second mapping
    // would need RAM mapping, which is refused; so check contents and alignment).
    let (address, physical) = dma_allocate(host, me, 16384).map_err(|_| "dma_allocate")?;
    check(physical % 4096 == 0 && physical != 0 && address % 4096 == 0, "aligned DMA memory")?;
    // SAFETY: 16 KiB of DMA memory is mapped at `address`.
    unsafe {
        let words = address as *mut u64;
        for i in 0..2048 {
            check(core::ptr::read_volatile(words.add(i)) == 0, "DMA memory is zeroed")?;
            core::ptr::write_volatile(words.add(i), i as u64);
        }
    }
    check(dma_allocate(host, me, 100) == Err(KernelError::InvalidArgument), "unaligned DMA size")?;
    // A bad place for the answer changes nothing: no memory is reserved or mapped, so the
    // next allocation lands right after the first one (16 KiB and a guard page on).
    for out in [0xdead_0000u64, 0xffff_8000_0000_0000] {
        // SAFETY: deliberately bad answer pointer; the kernel must refuse it.
        let r = unsafe {
            libmach::raw_syscall(mach_abi::trap::HOST_DMA_ALLOCATE, [host as u64, me as u64, 4096, out, 0, 0])
        };
        check(KernelError::from_return(r) == Some(KernelError::InvalidAddress), "bad DMA answer pointer")?;
    }
    let (next, _) = dma_allocate(host, me, 4096).map_err(|_| "dma_allocate after the bad ones")?;
    check(next == address + 16384 + 4096, "a refused DMA allocation reserved nothing")?;
    vm_deallocate(me, next, 4096).map_err(|_| "free the second DMA memory")?;
    vm_deallocate(me, address, 16384).map_err(|_| "free DMA memory")?;

    // IRQ 8: the CMOS clock's periodic interrupt, as messages.
    io_ports(host, me, CMOS_INDEX, 2).map_err(|_| "cmos ports")?;
    let irqs = ReceiveRight::allocate().map_err(|_| "allocate")?;
    check(
        irq_register(host, 0, irqs.name(), disposition::MAKE_SEND) == Err(KernelError::InvalidArgument),
        "IRQ 0 is the kernel's",
    )?;
    irq_register(host, 8, irqs.name(), disposition::MAKE_SEND).map_err(|_| "irq_register")?;
    // SAFETY: CMOS registers A/B/C, granted above: rate 15 (2 Hz), periodic interrupts on.
    unsafe {
        outb(CMOS_INDEX, 0x8a);
        let a = inb(CMOS_DATA);
        outb(CMOS_INDEX, 0x8a);
        outb(CMOS_DATA, (a & 0xf0) | 0x0f);
        outb(CMOS_INDEX, 0x8b);
        let b = inb(CMOS_DATA);
        outb(CMOS_INDEX, 0x8b);
        outb(CMOS_DATA, b | 0x40);
    }
    let mut m = Message::new();
    // Carry a trace context (as a driver serving a traced request does): the interrupts it
    // then receives are hops of that request (kind IRQ), and it keeps the context.
    const CONTEXT: u32 = 0x7a11;
    let own = ReceiveRight::allocate().map_err(|_| "allocate")?;
    m.start(own.name(), disposition::MAKE_SEND, 0x1234);
    m.header.trace = CONTEXT;
    m.send().map_err(|_| "traced send")?;
    m.receive_timeout(own.name(), 1000).map_err(|_| "traced receive")?;
    for _ in 0..2 {
        m.receive_timeout(irqs.name(), 3000).map_err(|_| "no IRQ 8 message")?;
        check(m.header.id == IRQ_MESSAGE && m.data() == [8], "an IRQ 8 message")?;
        // SAFETY: reading CMOS register C acknowledges the interrupt at the device.
        unsafe {
            outb(CMOS_INDEX, 0x0c);
            inb(CMOS_DATA);
        }
        irq_ack(host, 8).map_err(|_| "irq_ack")?;
    }
    // SAFETY: periodic interrupts off again.
    unsafe {
        outb(CMOS_INDEX, 0x8b);
        let b = inb(CMOS_DATA);
        outb(CMOS_INDEX, 0x8b);
        outb(CMOS_DATA, b & !0x40);
    }
    irq_register(host, 8, PORT_NULL, 0).map_err(|_| "irq unregister")?;
    check(irq_ack(host, 8) == Err(KernelError::InvalidArgument), "ack of an unregistered line")?;
    // An untraced message received ends the context here.
    m.start(own.name(), disposition::MAKE_SEND, 0x1235);
    m.send().map_err(|_| "untraced send")?;
    m.receive_timeout(own.name(), 1000).map_err(|_| "untraced receive")?;
    let mut records = [mach_abi::trace::TraceRecord::default(); 256];
    let mut irq_hops = 0;
    let mut next = 1;
    loop {
        let n = libmach::task::host_trace_read(host, next, &mut records).map_err(|_| "host_trace_read")?;
        let Some(last) = records.get(..n).and_then(|r| r.last()) else { break };
        next = last.sequence + 1;
        irq_hops += records[..n]
            .iter()
            .filter(|r| r.trace == CONTEXT && r.kind == mach_abi::trace::IRQ && r.msg_id == IRQ_MESSAGE)
            .count();
    }
    check(irq_hops == 2, "both interrupts recorded as IRQ hops of the carried request")?;
    Ok(())
}

/// A child that touches the scratch register without a grant faults with #GP (vector 13).
fn ungranted_port_faults_in_a_child() -> Result<(), &'static str> {
    let handler = ReceiveRight::allocate().map_err(|_| "allocate")?;
    let send = handler.make_send().map_err(|_| "make_send")?;
    let task = task_create().map_err(|_| "task_create")?;
    task_set_special_port(task, special_port::EXCEPTION, send.name()).map_err(|_| "exception port")?;
    vm_allocate(task, 0x400000, 4096, protection::WRITE).map_err(|_| "vm_allocate")?;
    vm_write(task, 0x400000, &[0x66, 0xba, 0xff, 0x03, 0xec]).map_err(|_| "vm_write")?; // mov dx, 0x3ff; in al, dx
    vm_protect(task, 0x400000, 4096, protection::EXECUTE).map_err(|_| "vm_protect")?;
    let stack = vm_allocate(task, 0, 16384, protection::WRITE).map_err(|_| "stack")?;
    thread_create_at(task, 0x400000, stack + 16384 - 8, 0, 0).map_err(|_| "thread")?;
    let mut m = Message::new();
    m.receive_timeout(handler.name(), 3000).map_err(|_| "no exception from the child")?;
    let vector = m.data().get(..8).and_then(|b| b.try_into().ok()).map(u64::from_le_bytes);
    check(vector == Some(13), "in without a grant is a general protection fault")?;
    task_terminate(task).map_err(|_| "terminate")?;
    port_deallocate(m.header.remote).map_err(|_| "drop reply right")?;
    port_deallocate(task).map_err(|_| "deallocate")?;
    Ok(())
}

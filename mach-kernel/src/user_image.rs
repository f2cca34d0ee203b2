//! Starting the first task from a boot module: the kernel's only ELF loader. Later tasks are
//! loaded by bootstrap in user space through task ports; this one has nobody to do it.
//!
//! It checks every segment against user space and the file's bounds, so a malformed module
//! is an error, not a kernel fault.

use crate::arch::trap_frame::TrapFrame;
use crate::memory::user::UserSlice;
use crate::memory::{PAGE_SIZE, paging::AddressSpace, phys_to_virt};
use crate::world;
use crate::world::TaskId;
use elf::ElfBytes;
use elf::abi::{PF_W, PF_X, PT_LOAD};
use elf::endian::LittleEndian;
use mach_abi::layout::{USER_END, USER_STACK_SIZE, USER_STACK_TOP};

/// Why a boot module could not be started (printed with `{:?}` on the kernel log).
#[derive(Debug)]
#[allow(dead_code)] // the fields are read through Debug
pub enum LoadError {
    NotElf(elf::ParseError),
    NoSegments,
    SegmentOutsideUserSpace(u64),
    SegmentOutsideFile(u64),
    ArgumentsTooLong,
    Kernel(mach_abi::KernelError),
}

impl From<mach_abi::KernelError> for LoadError {
    fn from(e: mach_abi::KernelError) -> Self {
        LoadError::Kernel(e)
    }
}

/// Load `image` into a new task named `name` and start its first thread with `args` (the
/// module command line) on its stack: rdi = pointer, rsi = length, rdx = the name of a send
/// right to the host port (the first task is the privileged one).
pub fn start_task(name: &str, image: &[u8], args: &str) -> Result<TaskId, LoadError> {
    let file = ElfBytes::<LittleEndian>::minimal_parse(image).map_err(LoadError::NotElf)?;
    let segments = file.segments().ok_or(LoadError::NoSegments)?;
    let mut space = AddressSpace::new_user()?;
    let result = (|| {
        for segment in segments.iter().filter(|p| p.p_type == PT_LOAD && p.p_memsz > 0) {
            load_segment(&mut space, image, &segment)?;
        }
        // The stack, with the arguments copied to its top.
        let mut page = USER_STACK_TOP - USER_STACK_SIZE;
        while page < USER_STACK_TOP {
            space.map_new_user_page(page, true, false)?;
            page += PAGE_SIZE;
        }
        if args.len() > 1024 {
            return Err(LoadError::ArgumentsTooLong);
        }
        let args_at = USER_STACK_TOP - args.len() as u64;
        UserSlice::new(args_at, args.len())?.write_in(&space, args.as_bytes())?;
        // 16-byte aligned, minus 8: the stack as a called function sees it.
        let rsp = (args_at & !15) - 8;
        let mut frame = TrapFrame::new_user(file.ehdr.e_entry, rsp);
        frame.rdi = args_at;
        frame.rsi = args.len() as u64;
        Ok(frame)
    })();
    let frame = match result {
        Ok(frame) => frame,
        Err(e) => {
            space.destroy();
            return Err(e);
        }
    };
    let mut frame = frame;
    let task = world::with(|w| world::create_task(w, name, space, None));
    frame.rdx = u64::from(give_host_port(task)?);
    world::with(|w| world::spawn_thread(w, task, &frame, world::DEFAULT_PRIORITY))?;
    Ok(task)
}

fn load_segment(
    space: &mut AddressSpace,
    image: &[u8],
    p: &elf::segment::ProgramHeader,
) -> Result<(), LoadError> {
    let end = p.p_vaddr.checked_add(p.p_memsz).filter(|&e| e <= USER_END && p.p_vaddr >= PAGE_SIZE);
    let end = end.ok_or(LoadError::SegmentOutsideUserSpace(p.p_vaddr))?;
    let bytes = usize::try_from(p.p_offset)
        .ok()
        .zip(usize::try_from(p.p_filesz).ok())
        .filter(|_| p.p_filesz <= p.p_memsz)
        .and_then(|(offset, len)| image.get(offset..offset.checked_add(len)?))
        .ok_or(LoadError::SegmentOutsideFile(p.p_vaddr))?;
    let writable = p.p_flags & PF_W != 0;
    let executable = p.p_flags & PF_X != 0;
    let mut page = p.p_vaddr & !(PAGE_SIZE - 1);
    while page < end {
        let physical = match space.translate(page) {
            Some((physical, _)) => physical, // shared with the previous segment
            None => space.map_new_user_page(page, writable, executable)?,
        };
        // Copy the part of the file that falls in this page.
        let page_end = page + PAGE_SIZE;
        let copy_start = p.p_vaddr.max(page);
        let copy_end = (p.p_vaddr + bytes.len() as u64).min(page_end);
        if copy_start < copy_end {
            let from = (copy_start - p.p_vaddr) as usize;
            let len = (copy_end - copy_start) as usize;
            if let Some(src) = bytes.get(from..from + len) {
                let dst = phys_to_virt(physical) + (copy_start - page);
                // SAFETY: `dst..dst+len` lies inside the page just mapped (HHDM view).
                unsafe { core::ptr::copy_nonoverlapping(src.as_ptr(), dst as *mut u8, len) };
            }
        }
        page = page_end;
    }
    Ok(())
}

/// Make the host port (once) and put a send right to it into `task`'s name space.
fn give_host_port(task: TaskId) -> Result<mach_abi::ipc::PortName, LoadError> {
    world::with(|w| {
        let host = match w.host_port {
            Some(right) => right,
            None => {
                let right = w.ports.create_in_transit();
                if let Some(p) = w.ports.get_mut(right.port) {
                    p.kernel_object = world::HOST_OBJECT;
                }
                w.host_port = Some(right);
                right
            }
        };
        let send = w.ports.make_send(host.port).ok_or(mach_abi::KernelError::PortDead)?;
        let mut events = alloc::vec::Vec::new();
        let t = w.tasks.get_mut(task).ok_or(mach_abi::KernelError::InvalidArgument)?;
        let name = t.names.copyout(send, &mut w.ports, &mut events)?;
        w.handle_events(&mut events);
        Ok(name)
    })
    .map_err(LoadError::Kernel)
}

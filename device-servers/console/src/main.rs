//! console: the console server. It drives COM1 (a 16550 UART) from user space with
//! interrupt-driven input, runs the line discipline (`console::line`) on what is typed, and
//! serves the terminal to its clients: the service port "console" hands each client a
//! terminal port of its own, which speaks `io` and the `console` terminal requests
//! (`interfaces::console`).
//!
//! Start-up, in this order: the host port from bootstrap's name service ("host", answered to
//! drivers only), the I/O-port grant for COM1's eight registers, the UART set up, the ports
//! made (one port set for all), IRQ 4 registered as messages, the UART's receive interrupt on,
//! and last the name "console" registered, so no client finds the server before it can serve.
//! The files beside this one: `uart.rs` (the 16550's registers), `server.rs` (the ports and
//! every request).
//!
//! Built for the host (as `cargo clippy --all-targets` and `cargo test` do), the binary is
//! a stub that says where the server runs; the server's modules exist on the target only.
//!
//! It must never print to COM1 except what clients write and the echo (its own messages go to
//! the kernel log), and never exit while it can serve.
#![cfg_attr(target_os = "none", no_std)]
#![cfg_attr(target_os = "none", no_main)]

#[cfg(target_os = "none")]
extern crate alloc;

#[cfg(target_os = "none")]
mod server;
#[cfg(target_os = "none")]
mod uart;

#[cfg(not(target_os = "none"))]
fn main() {
    eprintln!("console: the console server runs in Machina (build it for x86_64-unknown-none)");
    std::process::exit(1);
}

#[cfg(target_os = "none")]
use {
    libmach::ipc::*,
    libmach::{device, name_service, println},
    server::{Ports, Server},
    uart::{COM1, COM1_IRQ, REGISTERS, Uart},
};

#[cfg(target_os = "none")]
libmach::entry!(serve);

#[cfg(target_os = "none")]
fn serve(_args: &str) -> u64 {
    match start() {
        Ok(mut server) => server.run(),
        Err(why) => {
            println!("cannot start: {why}");
            1
        }
    }
}

#[cfg(target_os = "none")]
fn start() -> Result<Server, &'static str> {
    let host =
        name_service::look_up("host").map_err(|_| "no host port (bootstrap gives it to drivers only)")?;
    let me = task_self().map_err(|_| "task_self")?;
    device::io_ports(host.name(), me, COM1, REGISTERS).map_err(|_| "the I/O ports of COM1 were refused")?;
    // SAFETY: the eight registers at COM1 were granted just above, and this task has one
    // UART driver: this one.
    let mut uart = unsafe { Uart::new(COM1) };
    if !uart.present() {
        return Err("no UART at 0x3f8");
    }
    uart.init();

    let set = port_allocate_set().map_err(|_| "no ports")?;
    let make_member = || -> Result<PortName, &'static str> {
        let port = port_allocate().map_err(|_| "no ports")?;
        port_move_member(port, set).map_err(|_| "port set")?;
        Ok(port)
    };
    let ports = Ports { set, service: make_member()?, irq: make_member()?, notify: make_member()? };
    device::irq_register(host.name(), COM1_IRQ, ports.irq, disposition::MAKE_SEND)
        .map_err(|_| "IRQ 4 was refused")?;
    uart.enable_receive_interrupt();

    let service = ports.service;
    let server = Server::new(host.into_name(), me, uart, ports);
    let send = port_make_send(service).map_err(|_| "no send right")?;
    name_service::register("console", send).map_err(|_| "cannot register \"console\"")?;
    let _ = port_deallocate(send);
    println!("COM1 at {COM1:#x}, IRQ {COM1_IRQ}, interrupt-driven input; serving \"console\"");
    Ok(server)
}

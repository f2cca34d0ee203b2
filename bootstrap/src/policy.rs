//! Who may talk to whom: the one table of bootstrap's policy (docs/servers.md explains it).
//!
//! A server is reached only through a send right someone handed out. bootstrap hands out the
//! rights it was given through its name service, and it knows who asks by the port a request
//! arrives on (each task it starts gets a service port of its own). So the policy is a table
//! keyed by program (the boot module's file name):
//! - what a program **provides**: only it may register those names (no one can pose as the
//!   block server), and bootstrap waits for the first of them before starting the next module;
//! - which **private** names it may look up: a private name is answered only to the programs
//!   that list it. Every other name is public (anyone may register it once and look it up);
//! - whether it is a **server** (it runs until the orderly shutdown, which comes when the
//!   last program that is not a server has ended) and whether it is **restarted** when it
//!   dies (drivers, as MINIX 3's reincarnation server does).
//!
//! This module must never grant by default: a program missing from the table gets public
//! names only.

/// The host port: device access and every other privilege. Served by bootstrap itself.
pub const HOST: &str = "host";

/// The trace port: tracing tasks and reading the trace ring. Served by bootstrap itself
/// (made from the host port).
pub const TRACE: &str = "trace";

/// Names answered only to the programs whose `may_look_up` lists them.
pub const PRIVATE: &[&str] = &[HOST, TRACE, "blk", "blk.control", "fs", "unix", "xv6"];

pub struct Program {
    /// The boot module's file name.
    pub name: &'static str,
    pub provides: &'static [&'static str],
    pub may_look_up: &'static [&'static str],
    /// The servers (by a name they provide) it may end through the name service's `End`.
    pub may_end: &'static [&'static str],
    pub server: bool,
    pub restart: bool,
}

pub const PROGRAMS: &[Program] = &[
    // Drivers need the host port for their device (I/O ports, device memory, DMA, the IRQ).
    Program {
        name: "block",
        provides: &["blk", "blk.control"],
        may_end: &[],
        may_look_up: &[HOST],
        server: true,
        restart: true,
    },
    Program {
        name: "console",
        provides: &["console"],
        may_end: &[],
        may_look_up: &[HOST],
        server: true,
        restart: true,
    },
    // fs-server alone reaches the disk. It is not restarted: its cache may hold writes.
    Program {
        name: "fs-server",
        provides: &["fs"],
        may_end: &[],
        may_look_up: &["blk"],
        server: true,
        restart: false,
    },
    // The Unix personality: the file system for its processes (the console is public); it
    // offers pipes to other personalities ("unix"). Not a server: while it runs one
    // program, the system shuts down when it ends.
    Program {
        name: "personality-unix",
        provides: &["unix"],
        // It traces its processes for `trace`: the trace port, not the host port. It hands
        // xv6 programs to the xv6 personality at exec.
        // `servers --end xv6`: the xv6 personality may be ended from our shell.
        may_end: &["xv6"],
        may_look_up: &["fs", TRACE, "xv6"],
        server: false,
        restart: false,
    },
    // The xv6 personality: the file system for its processes; pipes and Linux programs
    // from the Unix personality. A server: it runs until the shutdown, and is not
    // restarted (its processes end with it: their syscall port is dead).
    Program {
        name: "personality-xv6",
        provides: &["xv6"],
        may_end: &[],
        may_look_up: &["fs", "unix"],
        server: true,
        restart: false,
    },
    // The template personality (personality-template/README.md): it reads its one program
    // from the file system. Not a server: the system shuts down when its program has ended.
    Program {
        name: "personality-template",
        provides: &[],
        may_end: &[],
        may_look_up: &["fs"],
        server: false,
        restart: false,
    },
    // The in-guest test client of the servers: the file system, the block server's protocol
    // (its error answers), the driver's fault injection for the restart test, and the Unix
    // personality's pipes.
    Program {
        name: "server-tests",
        provides: &[],
        may_end: &[],
        may_look_up: &["fs", "blk", "blk.control", "unix"],
        server: false,
        restart: false,
    },
];

/// The table's entry for `program`, if it has one.
pub fn program(name: &str) -> Option<&'static Program> {
    PROGRAMS.iter().find(|p| p.name == name)
}

/// May `program` look up `name`?
pub fn may_look_up(program: &str, name: &str) -> bool {
    !PRIVATE.contains(&name) || self::program(program).is_some_and(|p| p.may_look_up.contains(&name))
}

/// May `program` end the server that provides `name`?
pub fn may_end(program: &str, name: &str) -> bool {
    self::program(program).is_some_and(|p| p.may_end.contains(&name))
}

/// May `program` register `name`?
pub fn may_register(program: &str, name: &str) -> bool {
    match PROGRAMS.iter().find(|p| p.provides.contains(&name)) {
        Some(provider) => provider.name == program,
        None => name != HOST && name != TRACE,
    }
}

//! The `console` protocol: the console server's service port (where a client asks for a
//! terminal port of its own) and its terminal ports, which speak `io` too.
//!
//! Terminal settings are Linux's `struct termios` flags and control characters (values and
//! indices alike), so a personality answers TCGETS and takes TCSETS without translating.
//! Signals: the terminal's owner registers an event port ([`SetEventPort`]); ^C, ^\ and ^Z
//! (when ISIG is on) become one-way [`Event`] messages there. The console knows nothing of
//! processes: turning an event into signals for the foreground process group is the owner's.
//!
//! Ids 0x400..0x4ff.

use crate::Error;
use serde::{Deserialize, Serialize};

/// Number of control characters (Linux's NCCS for the kernel termios).
pub const NCCS: usize = 19;

/// Indices into [`Termios::cc`].
pub mod cc {
    pub const VINTR: usize = 0;
    pub const VQUIT: usize = 1;
    pub const VERASE: usize = 2;
    pub const VKILL: usize = 3;
    pub const VEOF: usize = 4;
    pub const VTIME: usize = 5;
    pub const VMIN: usize = 6;
    pub const VSTART: usize = 8;
    pub const VSTOP: usize = 9;
    pub const VSUSP: usize = 10;
    pub const VEOL: usize = 11;
    pub const VREPRINT: usize = 12;
    pub const VWERASE: usize = 14;
    pub const VLNEXT: usize = 15;
}

/// `Termios::iflag` bits.
pub mod iflag {
    pub const ICRNL: u32 = 0o400;
    pub const INLCR: u32 = 0o100;
    pub const IGNCR: u32 = 0o200;
    pub const IXON: u32 = 0o2000;
}

/// `Termios::oflag` bits.
pub mod oflag {
    pub const OPOST: u32 = 0o1;
    pub const ONLCR: u32 = 0o4;
}

/// `Termios::lflag` bits.
pub mod lflag {
    pub const ISIG: u32 = 0o1;
    pub const ICANON: u32 = 0o2;
    pub const ECHO: u32 = 0o10;
    pub const ECHOE: u32 = 0o20;
    pub const ECHOK: u32 = 0o40;
    pub const ECHONL: u32 = 0o100;
    pub const NOFLSH: u32 = 0o200;
    pub const ECHOCTL: u32 = 0o1000;
    pub const ECHOKE: u32 = 0o4000;
    pub const IEXTEN: u32 = 0o100000;
}

/// A terminal's settings, Linux's layout of fields and bits.
#[derive(Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq)]
pub struct Termios {
    pub iflag: u32,
    pub oflag: u32,
    pub cflag: u32,
    pub lflag: u32,
    pub line: u8,
    pub cc: [u8; NCCS],
}

impl Termios {
    /// What a Linux terminal starts with (`stty sane`): canonical, echo, signals, CR to NL
    /// on input, NL to CR NL on output.
    pub const fn sane() -> Termios {
        let mut cc = [0u8; NCCS];
        cc[cc::VINTR] = 0x03;
        cc[cc::VQUIT] = 0x1c;
        cc[cc::VERASE] = 0x7f;
        cc[cc::VKILL] = 0x15;
        cc[cc::VEOF] = 0x04;
        cc[cc::VMIN] = 1;
        cc[cc::VSTART] = 0x11;
        cc[cc::VSTOP] = 0x13;
        cc[cc::VSUSP] = 0x1a;
        cc[cc::VREPRINT] = 0x12;
        cc[cc::VWERASE] = 0x17;
        cc[cc::VLNEXT] = 0x16;
        Termios {
            iflag: iflag::ICRNL | iflag::IXON,
            oflag: oflag::OPOST | oflag::ONLCR,
            cflag: 0o277, // B38400 | CS8 | CREAD
            lflag: lflag::ISIG
                | lflag::ICANON
                | lflag::ECHO
                | lflag::ECHOE
                | lflag::ECHOK
                | lflag::ECHOCTL
                | lflag::ECHOKE
                | lflag::IEXTEN,
            line: 0,
            cc,
        }
    }
}

impl Default for Termios {
    fn default() -> Self {
        Termios::sane()
    }
}

#[derive(Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq)]
pub struct WindowSize {
    pub rows: u16,
    pub columns: u16,
}

impl Default for WindowSize {
    fn default() -> Self {
        WindowSize { rows: 24, columns: 80 }
    }
}

/// When new settings take effect (TCSETS, TCSETSW, TCSETSF).
#[derive(Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq)]
pub enum When {
    Now,
    /// After pending output is written (the console writes synchronously: the same as Now).
    Drain,
    /// After pending output, and throwing pending input away.
    Flush,
}

#[derive(Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq)]
pub struct SetTermiosRequest {
    pub termios: Termios,
    pub when: When,
}

/// A terminal event for its owner (sent to the registered event port, no reply).
#[derive(Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    /// The VINTR character (^C): SIGINT for the foreground group.
    Interrupt,
    /// VQUIT (^\): SIGQUIT.
    Quit,
    /// VSUSP (^Z): SIGTSTP.
    Suspend,
    /// The window size changed: SIGWINCH.
    WindowChanged,
}

#[derive(Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ConsoleStatistics {
    /// Bytes received from the line.
    pub received: u64,
    /// Bytes written to the line.
    pub sent: u64,
    /// Input bytes thrown away because the input buffer was full.
    pub overflowed: u64,
    pub interrupts: u64,
}

crate::protocol!(OPERATIONS = "console";
    /// Service port: a new terminal port for the caller (port descriptor 0 of the answer),
    /// speaking `io` and the terminal requests below. Every terminal port is the same
    /// terminal; each client's own port keeps its writes whole.
    OpenTerminal "open" = 0x401, () => Result<(), Error>;
    GetTermios "tcgets" = 0x402, () => Result<Termios, Error>;
    SetTermios "tcsets" = 0x403, SetTermiosRequest => Result<(), Error>;
    GetWindowSize "getwinsize" = 0x404, () => Result<WindowSize, Error>;
    SetWindowSize "setwinsize" = 0x405, WindowSize => Result<(), Error>;
    /// Where events go: the send right carried as port descriptor 0 (none: no events).
    SetEventPort "seteventport" = 0x406, () => Result<(), Error>;
    /// Bytes typed and not yet read (FIONREAD).
    Pending "pending" = 0x407, () => Result<u32, Error>;
    Statistics "stats" = 0x408, () => Result<ConsoleStatistics, Error>;
    /// One-way, console to the event port: an [`Event`].
    Notify "event" = 0x4f0, Event => ();
);

//! The line discipline: what typed bytes become (line editing, signals, echo) and what
//! written bytes become on the wire (output processing), as pure logic over Linux's
//! `struct termios` (`interfaces::console::Termios`). It follows Linux's `n_tty` rule by rule
//! where it implements a rule at all, so programs see the terminal they expect.
//!
//! [`Terminal::input`] takes one byte from the line and says what follows: the bytes to
//! echo (written to a sink the caller gives, already through output processing), an
//! [`Event`] for the terminal's owner (^C, ^\ and ^Z with ISIG), and whether readers may now
//! be answered. [`Terminal::read`] takes what a reader may have: in canonical mode (ICANON)
//! one completed line at most, in raw mode whatever is there. [`Terminal::write_output`]
//! turns a client's bytes into what goes to the UART (OPOST | ONLCR: "\n" becomes "\r\n").
//!
//! The input buffer is bounded ([`INPUT_CAPACITY`] cells, completed lines and the line being
//! edited together). When it is full, new bytes are dropped and counted (the oldest data is
//! kept, input never waits); in canonical mode the last cell is kept for a line's end, so a
//! full line can still be finished with Enter (or ^D) and erased.
//!
//! Read timing (VMIN/VTIME) in raw mode: VMIN = 0 answers at once with what is there (maybe
//! nothing: `Data(0)`); any VMIN >= 1 answers as soon as one byte is there (as VMIN = 1).
//! VTIME is not supported (no timers here): it is treated as 0. Output flow control (IXON's
//! ^S/^Q) is not supported either: the START and STOP characters are taken out of the input
//! as Linux does, but output never stops. Only OPOST and ONLCR of the output flags are
//! applied. Columns are counted as Linux does (one per printable byte, no UTF-8 widths), for
//! erasing tabs.
//!
//! This module must never do I/O, allocate, block or panic: it is plain state, tested on the
//! host (`cargo test -p console --lib`).

use interfaces::console::{Event, Termios, When, WindowSize, cc, iflag, lflag, oflag};

/// Cells of input the terminal holds (completed lines and the line being edited).
pub const INPUT_CAPACITY: usize = 4096;

/// A cell: the byte in the low 8 bits, and these flags.
const BYTE: u16 = 0x00ff;
/// The byte ends a line (NL or VEOL): a canonical read stops after it.
const LINE_END: u16 = 0x0100;
/// No byte: the line was ended by VEOF. At the start of a line, a read returns end of file.
const EOF_MARK: u16 = 0x0200;

/// What one input byte brought about, besides the echo.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Effects {
    /// Tell the terminal's owner (a signal for the foreground process group).
    pub event: Option<Event>,
    /// Something became readable: waiting readers may now be answered.
    pub wake: bool,
}

/// What [`Terminal::read`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadResult {
    /// This many bytes were copied out (0 only for an empty buffer or a VMIN = 0 read).
    Data(usize),
    /// A VEOF at the start of a line: the read returns no bytes (end of file).
    EndOfFile,
    /// Nothing to read yet: the reader waits (or gets `WouldBlock`).
    Empty,
}

/// Which erase an erasing character asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Erase {
    Char,
    Word,
    Line,
}

/// One terminal: its settings, window size, input buffer and the line being edited.
pub struct Terminal {
    termios: Termios,
    window: WindowSize,
    /// A ring of cells: `len` of them from `head`; the first `committed` are readable, the
    /// rest is the line being edited (canonical mode only).
    cells: [u16; INPUT_CAPACITY],
    head: usize,
    len: usize,
    committed: usize,
    /// The previous byte was VLNEXT: take this one literally.
    literal_next: bool,
    /// The output column (as Linux counts it) and where the line being edited started.
    column: usize,
    canon_column: usize,
    received: u64,
    overflowed: u64,
}

impl Default for Terminal {
    fn default() -> Self {
        Self::new()
    }
}

fn is_control(c: u8) -> bool {
    c < 0x20 || c == 0x7f
}

impl Terminal {
    /// A terminal with Linux's sane settings and a 24 x 80 window.
    pub const fn new() -> Terminal {
        Terminal {
            termios: Termios::sane(),
            window: WindowSize { rows: 24, columns: 80 },
            cells: [0; INPUT_CAPACITY],
            head: 0,
            len: 0,
            committed: 0,
            literal_next: false,
            column: 0,
            canon_column: 0,
            received: 0,
            overflowed: 0,
        }
    }

    pub fn termios(&self) -> Termios {
        self.termios
    }

    pub fn window_size(&self) -> WindowSize {
        self.window
    }

    /// Bytes taken from the line (all of them, dropped ones included).
    pub fn received(&self) -> u64 {
        self.received
    }

    /// Bytes dropped because the input buffer was full.
    pub fn overflowed(&self) -> u64 {
        self.overflowed
    }

    /// New settings (TCSETS, TCSETSW, TCSETSF). `When::Flush` throws pending input away
    /// first. Leaving canonical mode makes the line being edited readable; entering it makes
    /// what is buffered one completed line (as Linux does).
    pub fn set_termios(&mut self, termios: Termios, when: When) -> Effects {
        let was_canon = self.canonical();
        self.termios = termios;
        if when == When::Flush {
            self.flush_input();
        }
        let canon = self.canonical();
        if was_canon != canon {
            self.literal_next = false;
            if canon && self.len > 0 {
                let last = self.index(self.len - 1);
                if let Some(cell) = self.cells.get_mut(last)
                    && *cell & EOF_MARK == 0
                {
                    *cell |= LINE_END;
                }
            }
            self.committed = self.len;
        }
        Effects { event: None, wake: self.readable() || self.reads_never_wait() }
    }

    /// A new window size; `Some(WindowChanged)` when it differs from the old one (Linux sends
    /// SIGWINCH only then).
    pub fn set_window_size(&mut self, window: WindowSize) -> Option<Event> {
        if window == self.window {
            return None;
        }
        self.window = window;
        Some(Event::WindowChanged)
    }

    /// Throw away all pending input: completed lines and the line being edited.
    pub fn flush_input(&mut self) {
        self.head = 0;
        self.len = 0;
        self.committed = 0;
        self.literal_next = false;
    }

    /// Would a read be answered now (data, an end of file)?
    pub fn readable(&self) -> bool {
        if self.canonical() { self.committed > 0 } else { self.pending() > 0 }
    }

    /// Raw mode with VMIN = 0: a read never waits, it answers with what is there.
    pub fn reads_never_wait(&self) -> bool {
        !self.canonical() && self.termios.cc[cc::VMIN] == 0
    }

    /// Bytes a reader may take now (FIONREAD): completed lines in canonical mode, everything
    /// in raw mode; end-of-file marks are not bytes.
    pub fn pending(&self) -> u32 {
        (0..self.committed).filter(|&i| self.cell(i) & EOF_MARK == 0).count() as u32
    }

    /// Take one byte from the line. Echo (already through output processing) goes to
    /// `echo`; the result says what else follows.
    pub fn input(&mut self, byte: u8, echo: &mut impl FnMut(u8)) -> Effects {
        self.received += 1;
        let (i, l) = (self.termios.iflag, self.termios.lflag);
        let mut c = byte;
        if self.literal_next {
            self.literal_next = false;
            return self.store(c, echo);
        }
        if i & iflag::IXON != 0 && (self.is(cc::VSTART, c) || self.is(cc::VSTOP, c)) {
            return Effects::default();
        }
        if l & lflag::ISIG != 0 {
            let event = if self.is(cc::VINTR, c) {
                Some(Event::Interrupt)
            } else if self.is(cc::VQUIT, c) {
                Some(Event::Quit)
            } else if self.is(cc::VSUSP, c) {
                Some(Event::Suspend)
            } else {
                None
            };
            if let Some(event) = event {
                if l & lflag::NOFLSH == 0 {
                    self.flush_input();
                }
                if l & lflag::ECHO != 0 {
                    self.echo_char(c, echo);
                }
                return Effects { event: Some(event), wake: false };
            }
        }
        if c == b'\r' {
            if i & iflag::IGNCR != 0 {
                return Effects::default();
            }
            if i & iflag::ICRNL != 0 {
                c = b'\n';
            }
        } else if c == b'\n' && i & iflag::INLCR != 0 {
            c = b'\r';
        }
        if !self.canonical() {
            return self.store(c, echo);
        }
        if self.is(cc::VERASE, c) || c == 0x08 {
            self.erase(Erase::Char, c, echo);
            return Effects::default();
        }
        if self.is(cc::VKILL, c) {
            self.erase(Erase::Line, c, echo);
            return Effects::default();
        }
        if l & lflag::IEXTEN != 0 {
            if self.is(cc::VWERASE, c) {
                self.erase(Erase::Word, c, echo);
                return Effects::default();
            }
            if self.is(cc::VREPRINT, c) && l & lflag::ECHO != 0 {
                self.reprint(c, echo);
                return Effects::default();
            }
            if self.is(cc::VLNEXT, c) {
                self.literal_next = true;
                if l & lflag::ECHO != 0 && l & lflag::ECHOCTL != 0 {
                    self.out(b'^', echo);
                    self.out(0x08, echo);
                }
                return Effects::default();
            }
        }
        if c == b'\n' || self.is(cc::VEOL, c) {
            if self.len >= INPUT_CAPACITY {
                self.overflowed += 1;
                return Effects::default();
            }
            if c == b'\n' {
                if l & (lflag::ECHO | lflag::ECHONL) != 0 {
                    self.out(b'\n', echo);
                }
            } else if l & lflag::ECHO != 0 {
                self.start_line_echo();
                self.echo_char(c, echo);
            }
            return self.end_line(c as u16 | LINE_END);
        }
        if self.is(cc::VEOF, c) {
            if self.len >= INPUT_CAPACITY {
                self.overflowed += 1;
                return Effects::default();
            }
            return self.end_line(EOF_MARK);
        }
        self.store(c, echo)
    }

    /// Copy what a reader may have into `out`: one line at most in canonical mode (the rest
    /// of a longer line stays for the next read), everything up to `out`'s size in raw mode.
    pub fn read(&mut self, out: &mut [u8]) -> ReadResult {
        if self.committed == 0 {
            return if self.reads_never_wait() { ReadResult::Data(0) } else { ReadResult::Empty };
        }
        let mut n = 0;
        if self.canonical() {
            if self.cell(0) & EOF_MARK != 0 {
                self.pop_front();
                return ReadResult::EndOfFile;
            }
            while n < out.len() && self.committed > 0 {
                let cell = self.cell(0);
                if cell & EOF_MARK != 0 {
                    break;
                }
                self.pop_front();
                if let Some(slot) = out.get_mut(n) {
                    *slot = (cell & BYTE) as u8;
                    n += 1;
                }
                if cell & LINE_END != 0 {
                    return ReadResult::Data(n);
                }
            }
            // The VEOF that ended this line goes with its last bytes.
            if n > 0 && self.committed > 0 && self.cell(0) & EOF_MARK != 0 {
                self.pop_front();
            }
            return ReadResult::Data(n);
        }
        while n < out.len() && self.committed > 0 {
            let cell = self.pop_front();
            if cell & EOF_MARK != 0 {
                continue; // left from canonical mode: no byte
            }
            if let Some(slot) = out.get_mut(n) {
                *slot = (cell & BYTE) as u8;
                n += 1;
            }
        }
        if n == 0 && !out.is_empty() && !self.reads_never_wait() {
            return ReadResult::Empty;
        }
        ReadResult::Data(n)
    }

    /// Output processing of `data` for the line (OPOST: ONLCR turns "\n" into "\r\n"),
    /// into `sink`.
    pub fn write_output(&mut self, data: &[u8], sink: &mut impl FnMut(u8)) {
        for &b in data {
            self.out(b, sink);
        }
    }

    // ---- input helpers ----

    fn canonical(&self) -> bool {
        self.termios.lflag & lflag::ICANON != 0
    }

    /// Is `c` the control character at `index` (0 disables one, as on Linux)?
    fn is(&self, index: usize, c: u8) -> bool {
        self.termios.cc.get(index).is_some_and(|&v| v != 0 && v == c)
    }

    fn index(&self, i: usize) -> usize {
        (self.head + i) % INPUT_CAPACITY
    }

    fn cell(&self, i: usize) -> u16 {
        self.cells.get(self.index(i)).copied().unwrap_or(0)
    }

    fn push(&mut self, cell: u16) {
        let at = self.index(self.len);
        if let Some(slot) = self.cells.get_mut(at) {
            *slot = cell;
            self.len += 1;
        }
    }

    fn pop_front(&mut self) -> u16 {
        let cell = self.cell(0);
        self.head = (self.head + 1) % INPUT_CAPACITY;
        self.len -= 1;
        self.committed -= 1;
        cell
    }

    /// A plain byte: into the line being edited (canonical) or readable at once (raw).
    fn store(&mut self, c: u8, echo: &mut impl FnMut(u8)) -> Effects {
        let canon = self.canonical();
        // Canonical mode keeps the last cell for the line's end.
        let room = if canon { INPUT_CAPACITY - 1 } else { INPUT_CAPACITY };
        if self.len >= room {
            self.overflowed += 1;
            return Effects::default();
        }
        if self.termios.lflag & lflag::ECHO != 0 {
            if c == b'\n' {
                self.out(b'\n', echo);
            } else {
                self.start_line_echo();
                self.echo_char(c, echo);
            }
        }
        self.push(c as u16);
        if canon {
            return Effects::default();
        }
        self.committed = self.len;
        Effects { event: None, wake: true }
    }

    /// Complete the line being edited with `cell` (a byte with LINE_END, or EOF_MARK).
    fn end_line(&mut self, cell: u16) -> Effects {
        self.push(cell);
        self.committed = self.len;
        Effects { event: None, wake: true }
    }

    /// Echo of the first byte of a line: remember its column (for erasing tabs).
    fn start_line_echo(&mut self) {
        if self.len == self.committed {
            self.canon_column = self.column;
        }
    }

    /// Echo `c` as it is, or as ^X for a control character with ECHOCTL (not TAB).
    fn echo_char(&mut self, c: u8, echo: &mut impl FnMut(u8)) {
        if self.termios.lflag & lflag::ECHOCTL != 0 && is_control(c) && c != b'\t' {
            self.out(b'^', echo);
            self.out(c ^ 0x40, echo);
        } else {
            self.out(c, echo);
        }
    }

    fn rub_out(&mut self, echo: &mut impl FnMut(u8)) {
        for b in *b"\x08 \x08" {
            self.out(b, echo);
        }
    }

    /// VERASE, VWERASE, VKILL on the line being edited (Linux's `eraser`).
    fn erase(&mut self, kind: Erase, typed: u8, echo: &mut impl FnMut(u8)) {
        if self.len == self.committed {
            return;
        }
        let l = self.termios.lflag;
        if kind == Erase::Line {
            if l & lflag::ECHO == 0 {
                self.len = self.committed;
                return;
            }
            if l & lflag::ECHOK == 0 || l & lflag::ECHOKE == 0 || l & lflag::ECHOE == 0 {
                self.len = self.committed;
                self.echo_char(typed, echo);
                if l & lflag::ECHOK != 0 {
                    self.out(b'\n', echo);
                }
                return;
            }
        }
        let mut seen_word = false;
        while self.len > self.committed {
            let c = (self.cell(self.len - 1) & BYTE) as u8;
            if kind == Erase::Word {
                if c.is_ascii_alphanumeric() || c == b'_' {
                    seen_word = true;
                } else if seen_word {
                    break;
                }
            }
            self.len -= 1;
            if l & lflag::ECHO != 0 {
                if kind == Erase::Char && l & lflag::ECHOE == 0 {
                    self.echo_char(typed, echo);
                } else if c == b'\t' {
                    self.erase_tab(echo);
                } else {
                    let ctl = l & lflag::ECHOCTL != 0;
                    if is_control(c) && ctl {
                        self.rub_out(echo);
                    }
                    if !is_control(c) || ctl {
                        self.rub_out(echo);
                    }
                }
            }
            if kind == Erase::Char {
                break;
            }
        }
    }

    /// Back up over a tab just taken off the line: to the column where it started.
    fn erase_tab(&mut self, echo: &mut impl FnMut(u8)) {
        let ctl = self.termios.lflag & lflag::ECHOCTL != 0;
        let mut columns = 0;
        let mut after_tab = false;
        for i in (self.committed..self.len).rev() {
            let c = (self.cell(i) & BYTE) as u8;
            if c == b'\t' {
                after_tab = true;
                break;
            } else if is_control(c) {
                if ctl {
                    columns += 2;
                }
            } else {
                columns += 1;
            }
        }
        if !after_tab {
            columns += self.canon_column;
        }
        let back = (8 - (columns & 7)).min(self.column);
        for _ in 0..back {
            self.out(0x08, echo);
        }
    }

    /// VREPRINT: echo it, a new line, and the line being edited again.
    fn reprint(&mut self, typed: u8, echo: &mut impl FnMut(u8)) {
        self.echo_char(typed, echo);
        self.out(b'\n', echo);
        self.canon_column = self.column;
        for i in self.committed..self.len {
            let c = (self.cell(i) & BYTE) as u8;
            self.echo_char(c, echo);
        }
    }

    /// One byte to the line through output processing, counting columns as Linux does.
    fn out(&mut self, b: u8, sink: &mut impl FnMut(u8)) {
        let o = self.termios.oflag;
        if o & oflag::OPOST == 0 {
            sink(b);
            return;
        }
        match b {
            b'\n' if o & oflag::ONLCR != 0 => {
                self.column = 0;
                self.canon_column = 0;
                sink(b'\r');
            }
            b'\n' => self.canon_column = self.column,
            b'\r' => {
                self.column = 0;
                self.canon_column = 0;
            }
            b'\t' => self.column = (self.column | 7) + 1,
            0x08 => self.column = self.column.saturating_sub(1),
            c if !is_control(c) => self.column += 1,
            _ => {}
        }
        sink(b);
    }
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use std::vec::Vec;

    /// Type `bytes`; returns the echo and the effects of the last byte, all events seen.
    fn typed(t: &mut Terminal, bytes: &[u8]) -> (Vec<u8>, Vec<Event>, bool) {
        let mut echo = Vec::new();
        let mut events = Vec::new();
        let mut wake = false;
        for &b in bytes {
            let e = t.input(b, &mut |c| echo.push(c));
            events.extend(e.event);
            wake |= e.wake;
        }
        (echo, events, wake)
    }

    fn echo_of(t: &mut Terminal, bytes: &[u8]) -> Vec<u8> {
        typed(t, bytes).0
    }

    fn read(t: &mut Terminal, size: usize) -> (ReadResult, Vec<u8>) {
        let mut buf = std::vec![0u8; size];
        let r = t.read(&mut buf);
        let n = if let ReadResult::Data(n) = r { n } else { 0 };
        buf.truncate(n);
        (r, buf)
    }

    fn with(t: &mut Terminal, change: impl FnOnce(&mut Termios)) {
        let mut termios = t.termios();
        change(&mut termios);
        t.set_termios(termios, When::Now);
    }

    fn raw(t: &mut Terminal) {
        with(t, |s| s.lflag &= !(lflag::ICANON | lflag::ECHO | lflag::ISIG));
    }

    #[test]
    fn starts_sane() {
        let t = Terminal::new();
        assert_eq!(t.termios(), Termios::sane());
        assert_eq!(t.window_size(), WindowSize { rows: 24, columns: 80 });
        assert!(!t.readable());
        assert_eq!(t.pending(), 0);
    }

    #[test]
    fn printable_bytes_are_echoed() {
        let mut t = Terminal::new();
        assert_eq!(echo_of(&mut t, b"ls -l"), b"ls -l");
    }

    #[test]
    fn canonical_lines_are_readable_only_when_complete() {
        let mut t = Terminal::new();
        let (_, _, wake) = typed(&mut t, b"abc");
        assert!(!wake);
        assert!(!t.readable());
        assert_eq!(read(&mut t, 100).0, ReadResult::Empty);
        let (echo, _, wake) = typed(&mut t, b"\n");
        assert!(wake);
        assert_eq!(echo, b"\r\n", "NL echoed through ONLCR");
        assert_eq!(read(&mut t, 100), (ReadResult::Data(4), b"abc\n".to_vec()));
        assert_eq!(read(&mut t, 100).0, ReadResult::Empty);
    }

    #[test]
    fn a_read_returns_one_line_at_most_and_long_lines_in_pieces() {
        let mut t = Terminal::new();
        typed(&mut t, b"hello world\nsecond\n");
        assert_eq!(read(&mut t, 5).1, b"hello");
        assert_eq!(read(&mut t, 100).1, b" world\n");
        assert_eq!(read(&mut t, 100).1, b"second\n");
    }

    #[test]
    fn icrnl_turns_cr_into_nl() {
        let mut t = Terminal::new();
        let (echo, _, wake) = typed(&mut t, b"hi\r");
        assert!(wake);
        assert_eq!(echo, b"hi\r\n");
        assert_eq!(read(&mut t, 10).1, b"hi\n");
    }

    #[test]
    fn without_icrnl_cr_is_a_plain_byte() {
        let mut t = Terminal::new();
        with(&mut t, |s| s.iflag &= !iflag::ICRNL);
        let (echo, _, wake) = typed(&mut t, b"a\r");
        assert!(!wake);
        assert_eq!(echo, b"a^M");
        typed(&mut t, b"\n");
        assert_eq!(read(&mut t, 10).1, b"a\r\n");
    }

    #[test]
    fn igncr_drops_cr_and_inlcr_turns_nl_into_cr() {
        let mut t = Terminal::new();
        with(&mut t, |s| s.iflag |= iflag::IGNCR);
        assert_eq!(echo_of(&mut t, b"a\rb"), b"ab");
        with(&mut t, |s| {
            s.iflag = iflag::INLCR;
            s.lflag &= !lflag::ICANON;
        });
        typed(&mut t, b"\n");
        assert_eq!(read(&mut t, 10).1, b"ab\r");
    }

    #[test]
    fn erase_removes_one_char_with_backspace_space_backspace() {
        let mut t = Terminal::new();
        typed(&mut t, b"abc");
        assert_eq!(echo_of(&mut t, &[0x7f]), b"\x08 \x08");
        assert_eq!(echo_of(&mut t, &[0x08]), b"\x08 \x08", "backspace erases too");
        typed(&mut t, b"x\n");
        assert_eq!(read(&mut t, 10).1, b"ax\n");
    }

    #[test]
    fn erasing_a_control_char_rubs_out_both_columns() {
        let mut t = Terminal::new();
        assert_eq!(echo_of(&mut t, &[b'a', 0x01]), b"a^A");
        assert_eq!(echo_of(&mut t, &[0x7f]), b"\x08 \x08\x08 \x08");
    }

    #[test]
    fn erase_at_line_start_does_nothing() {
        let mut t = Terminal::new();
        typed(&mut t, b"done\n");
        assert_eq!(echo_of(&mut t, &[0x7f, 0x7f]), b"");
        assert_eq!(read(&mut t, 10).1, b"done\n", "completed lines cannot be erased");
    }

    #[test]
    fn without_echoe_the_erase_char_is_echoed() {
        let mut t = Terminal::new();
        with(&mut t, |s| s.lflag &= !lflag::ECHOE);
        typed(&mut t, b"ab");
        assert_eq!(echo_of(&mut t, &[0x7f]), b"^?");
    }

    #[test]
    fn erasing_a_tab_backs_up_to_its_column() {
        let mut t = Terminal::new();
        t.write_output(b"$ ", &mut |_| ()); // a prompt: the line starts at column 2
        assert_eq!(echo_of(&mut t, b"ab\t"), b"ab\t"); // columns 2..4, tab to 8
        assert_eq!(echo_of(&mut t, &[0x7f]), b"\x08\x08\x08\x08");
        assert_eq!(echo_of(&mut t, b"\tx\t"), b"\tx\t"); // tab to 8, x at 8, tab to 16
        assert_eq!(echo_of(&mut t, &[0x7f]), b"\x08\x08\x08\x08\x08\x08\x08");
    }

    #[test]
    fn kill_erases_the_line_visibly_with_echoke() {
        let mut t = Terminal::new();
        typed(&mut t, b"old\n");
        typed(&mut t, b"abc");
        assert_eq!(echo_of(&mut t, &[0x15]), b"\x08 \x08\x08 \x08\x08 \x08");
        typed(&mut t, b"new\n");
        assert_eq!(read(&mut t, 10).1, b"old\n");
        assert_eq!(read(&mut t, 10).1, b"new\n");
    }

    #[test]
    fn kill_without_echoke_echoes_the_kill_char_and_a_newline() {
        let mut t = Terminal::new();
        with(&mut t, |s| s.lflag &= !lflag::ECHOKE);
        typed(&mut t, b"abc");
        assert_eq!(echo_of(&mut t, &[0x15]), b"^U\r\n");
        typed(&mut t, b"z\n");
        assert_eq!(read(&mut t, 10).1, b"z\n");
    }

    #[test]
    fn werase_erases_a_word_and_the_blanks_after_it() {
        let mut t = Terminal::new();
        typed(&mut t, b"echo hello_1  ");
        assert_eq!(echo_of(&mut t, &[0x17]), b"\x08 \x08".repeat(9));
        typed(&mut t, b"x\n");
        assert_eq!(read(&mut t, 20).1, b"echo x\n");
    }

    #[test]
    fn werase_needs_iexten() {
        let mut t = Terminal::new();
        with(&mut t, |s| s.lflag &= !lflag::IEXTEN);
        typed(&mut t, &[b'a', 0x17, b'\n']);
        assert_eq!(read(&mut t, 10).1, b"a\x17\n");
    }

    #[test]
    fn eof_mid_line_ends_the_line_without_the_eof_char() {
        let mut t = Terminal::new();
        let (echo, _, wake) = typed(&mut t, &[b'a', b'b', 0x04]);
        assert!(wake);
        assert_eq!(echo, b"ab", "VEOF is not echoed");
        assert_eq!(t.pending(), 2);
        assert_eq!(read(&mut t, 10), (ReadResult::Data(2), b"ab".to_vec()));
        assert_eq!(read(&mut t, 10).0, ReadResult::Empty, "the VEOF went with its line");
    }

    #[test]
    fn eof_after_a_partial_read_goes_with_the_last_bytes() {
        let mut t = Terminal::new();
        typed(&mut t, &[b'a', b'b', b'c', 0x04]);
        assert_eq!(read(&mut t, 2).1, b"ab");
        assert_eq!(read(&mut t, 2), (ReadResult::Data(1), b"c".to_vec()));
        assert_eq!(read(&mut t, 2).0, ReadResult::Empty);
    }

    #[test]
    fn eof_at_line_start_is_end_of_file() {
        let mut t = Terminal::new();
        let (_, _, wake) = typed(&mut t, &[0x04]);
        assert!(wake);
        assert!(t.readable());
        assert_eq!(t.pending(), 0);
        assert_eq!(read(&mut t, 10).0, ReadResult::EndOfFile);
        typed(&mut t, b"more\n");
        assert_eq!(read(&mut t, 10).1, b"more\n");
    }

    #[test]
    fn veol_is_a_second_line_end() {
        let mut t = Terminal::new();
        with(&mut t, |s| s.cc[cc::VEOL] = b';');
        let (echo, _, wake) = typed(&mut t, b"a;");
        assert!(wake);
        assert_eq!(echo, b"a;");
        assert_eq!(read(&mut t, 10).1, b"a;");
    }

    #[test]
    fn control_chars_echo_as_caret_with_echoctl_and_raw_without() {
        let mut t = Terminal::new();
        assert_eq!(echo_of(&mut t, &[0x01, 0x1b, b'\t']), b"^A^[\t");
        with(&mut t, |s| s.lflag &= !lflag::ECHOCTL);
        assert_eq!(echo_of(&mut t, &[0x01]), [0x01]);
    }

    #[test]
    fn without_echo_nothing_is_echoed_but_echonl_echoes_newlines() {
        let mut t = Terminal::new();
        with(&mut t, |s| s.lflag &= !lflag::ECHO);
        assert_eq!(echo_of(&mut t, b"secret\n"), b"");
        with(&mut t, |s| s.lflag |= lflag::ECHONL);
        assert_eq!(echo_of(&mut t, b"pw\n"), b"\r\n");
        assert_eq!(read(&mut t, 10).1, b"secret\n");
        assert_eq!(read(&mut t, 10).1, b"pw\n");
    }

    #[test]
    fn isig_chars_become_events_and_discard_pending_input() {
        let mut t = Terminal::new();
        typed(&mut t, b"line\npartial");
        let (echo, events, wake) = typed(&mut t, &[0x03]);
        assert_eq!(events, [Event::Interrupt]);
        assert!(!wake);
        assert_eq!(echo, b"^C");
        assert!(!t.readable());
        assert_eq!(t.pending(), 0);
        typed(&mut t, b"x\n");
        assert_eq!(read(&mut t, 10).1, b"x\n");
        assert_eq!(typed(&mut t, &[0x1c]).1, [Event::Quit]);
        assert_eq!(typed(&mut t, &[0x1a]).1, [Event::Suspend]);
    }

    #[test]
    fn noflsh_keeps_pending_input_on_a_signal() {
        let mut t = Terminal::new();
        with(&mut t, |s| s.lflag |= lflag::NOFLSH);
        typed(&mut t, b"kept\n");
        assert_eq!(typed(&mut t, &[0x03]).1, [Event::Interrupt]);
        assert_eq!(read(&mut t, 10).1, b"kept\n");
    }

    #[test]
    fn without_isig_the_signal_chars_are_data() {
        let mut t = Terminal::new();
        with(&mut t, |s| s.lflag &= !lflag::ISIG);
        let (_, events, _) = typed(&mut t, &[0x03, b'\n']);
        assert!(events.is_empty());
        assert_eq!(read(&mut t, 10).1, b"\x03\n");
    }

    #[test]
    fn a_disabled_control_char_is_data() {
        let mut t = Terminal::new();
        with(&mut t, |s| s.cc[cc::VINTR] = 0);
        let (_, events, _) = typed(&mut t, &[0x03, 0x00, b'\n']);
        assert!(events.is_empty());
        assert_eq!(read(&mut t, 10).1, b"\x03\x00\n");
    }

    #[test]
    fn lnext_takes_the_next_char_literally() {
        let mut t = Terminal::new();
        let (echo, events, _) = typed(&mut t, &[0x16, 0x03, 0x16, 0x7f, b'\n']);
        assert!(events.is_empty());
        assert_eq!(echo, b"^\x08^C^\x08^?\r\n");
        assert_eq!(read(&mut t, 10).1, b"\x03\x7f\n");
    }

    #[test]
    fn reprint_echoes_the_line_again() {
        let mut t = Terminal::new();
        typed(&mut t, b"ab");
        assert_eq!(echo_of(&mut t, &[0x12]), b"^R\r\nab");
        typed(&mut t, b"\n");
        assert_eq!(read(&mut t, 10).1, b"ab\n");
    }

    #[test]
    fn ixon_takes_start_and_stop_out_of_the_input() {
        let mut t = Terminal::new();
        assert_eq!(echo_of(&mut t, &[0x13, b'a', 0x11, b'\n']), b"a\r\n");
        assert_eq!(read(&mut t, 10).1, b"a\n");
    }

    #[test]
    fn raw_mode_bytes_are_readable_at_once() {
        let mut t = Terminal::new();
        raw(&mut t);
        assert_eq!(read(&mut t, 10).0, ReadResult::Empty, "VMIN = 1 waits");
        let (echo, events, wake) = typed(&mut t, &[b'q', 0x03, 0x7f, b'\r']);
        assert!(wake);
        assert!(events.is_empty());
        assert_eq!(echo, b"");
        assert_eq!(t.pending(), 4);
        assert_eq!(read(&mut t, 2).1, b"q\x03");
        assert_eq!(read(&mut t, 10).1, b"\x7f\n");
    }

    #[test]
    fn raw_mode_echo_keeps_echoctl() {
        let mut t = Terminal::new();
        with(&mut t, |s| s.lflag &= !lflag::ICANON);
        assert_eq!(echo_of(&mut t, &[b'a', 0x01, b'\n']), b"a^A\r\n");
    }

    #[test]
    fn vmin_zero_reads_return_what_is_there() {
        let mut t = Terminal::new();
        raw(&mut t);
        with(&mut t, |s| s.cc[cc::VMIN] = 0);
        assert!(t.reads_never_wait());
        assert_eq!(read(&mut t, 10).0, ReadResult::Data(0));
        typed(&mut t, b"xy");
        assert_eq!(read(&mut t, 10).1, b"xy");
        assert_eq!(read(&mut t, 10).0, ReadResult::Data(0));
    }

    #[test]
    fn the_input_buffer_is_bounded_and_counts_what_it_drops() {
        let mut t = Terminal::new();
        raw(&mut t);
        let bytes: Vec<u8> = (0..INPUT_CAPACITY + 10).map(|i| b'a' + (i % 26) as u8).collect();
        typed(&mut t, &bytes);
        assert_eq!(t.overflowed(), 10);
        assert_eq!(t.received(), bytes.len() as u64);
        assert_eq!(t.pending() as usize, INPUT_CAPACITY);
        let (_, got) = read(&mut t, INPUT_CAPACITY * 2);
        assert_eq!(got, bytes[..INPUT_CAPACITY], "the oldest bytes were kept");
        typed(&mut t, b"z");
        assert_eq!(read(&mut t, 10).1, b"z", "room again after reading, across the ring's end");
    }

    #[test]
    fn a_full_canonical_line_can_still_be_ended() {
        let mut t = Terminal::new();
        let line = std::vec![b'x'; INPUT_CAPACITY + 5];
        typed(&mut t, &line);
        assert_eq!(t.overflowed(), 6);
        assert!(!t.readable());
        assert_eq!(echo_of(&mut t, &[0x7f]), b"\x08 \x08", "still erasable");
        typed(&mut t, b"yz");
        assert_eq!(t.overflowed(), 7);
        let (_, _, wake) = typed(&mut t, b"\n");
        assert!(wake);
        let (_, got) = read(&mut t, INPUT_CAPACITY * 2);
        assert_eq!(got.len(), INPUT_CAPACITY);
        assert_eq!(got.last(), Some(&b'\n'));
        assert_eq!(got[INPUT_CAPACITY - 2], b'y');
    }

    #[test]
    fn output_processing_turns_nl_into_cr_nl() {
        let mut t = Terminal::new();
        let mut out = Vec::new();
        t.write_output(b"one\ntwo\r\n", &mut |c| out.push(c));
        assert_eq!(out, b"one\r\ntwo\r\r\n");
        with(&mut t, |s| s.oflag &= !oflag::ONLCR);
        out.clear();
        t.write_output(b"a\n", &mut |c| out.push(c));
        assert_eq!(out, b"a\n");
        with(&mut t, |s| s.oflag = oflag::ONLCR);
        out.clear();
        t.write_output(b"a\n", &mut |c| out.push(c));
        assert_eq!(out, b"a\n", "ONLCR needs OPOST");
    }

    #[test]
    fn set_termios_with_flush_discards_pending_input() {
        let mut t = Terminal::new();
        typed(&mut t, b"gone\nalso");
        t.set_termios(Termios::sane(), When::Now);
        assert_eq!(t.pending(), 5);
        t.set_termios(Termios::sane(), When::Flush);
        assert_eq!(t.pending(), 0);
        typed(&mut t, b"new\n");
        assert_eq!(read(&mut t, 10).1, b"new\n");
    }

    #[test]
    fn leaving_canonical_mode_makes_the_edited_line_readable() {
        let mut t = Terminal::new();
        typed(&mut t, b"part");
        let mut s = t.termios();
        s.lflag &= !lflag::ICANON;
        assert!(t.set_termios(s, When::Now).wake);
        assert_eq!(read(&mut t, 10).1, b"part");
    }

    #[test]
    fn entering_canonical_mode_makes_buffered_bytes_one_line() {
        let mut t = Terminal::new();
        raw(&mut t);
        typed(&mut t, b"ab");
        assert!(t.set_termios(Termios::sane(), When::Now).wake);
        typed(&mut t, b"cd\n");
        assert_eq!(read(&mut t, 10).1, b"ab");
        assert_eq!(read(&mut t, 10).1, b"cd\n");
    }

    #[test]
    fn window_changes_are_events_only_when_the_size_changes() {
        let mut t = Terminal::new();
        assert_eq!(t.set_window_size(WindowSize { rows: 24, columns: 80 }), None);
        assert_eq!(t.set_window_size(WindowSize { rows: 50, columns: 132 }), Some(Event::WindowChanged));
        assert_eq!(t.window_size(), WindowSize { rows: 50, columns: 132 });
    }

    #[test]
    fn pending_counts_completed_lines_in_canonical_mode() {
        let mut t = Terminal::new();
        typed(&mut t, b"abc\nde");
        assert_eq!(t.pending(), 4);
        assert_eq!(read(&mut t, 1).1, b"a");
        assert_eq!(t.pending(), 3);
    }

    #[test]
    fn every_byte_value_is_taken_without_panicking_in_every_mode() {
        for lflags in [Termios::sane().lflag, 0, lflag::ICANON, lflag::ISIG | lflag::ECHO | lflag::ECHOCTL] {
            let mut t = Terminal::new();
            with(&mut t, |s| s.lflag = lflags);
            for round in 0..40u32 {
                for b in 0..=255u8 {
                    t.input(b.wrapping_add(round as u8), &mut |_| ());
                }
                let mut buf = [0u8; 97];
                let _ = t.read(&mut buf);
            }
            assert!(t.pending() as usize <= INPUT_CAPACITY);
        }
    }
}

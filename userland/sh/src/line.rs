//! Reading command lines: a small line editor for terminals, plain lines otherwise.
//!
//! `Decoder` (bytes to keys) and `Editor` (keys to a line plus the bytes that redraw it) are
//! pure and unit-tested. `Terminal` is the thin part: raw mode through termios, read, write.
//! Redrawing uses only backspace, spaces and plain text (no escape sequences), so it works on
//! any serial terminal; long lines that wrap are not redrawn well.
//! It must never leave the terminal in raw mode once a line is read, and never read past the
//! end of the line from a non-terminal stdin (a command run next may read the rest).

use std::io;

/// What the reader hands the shell.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input {
    Line(String),
    /// ^C: drop what was typed.
    Cancel,
    /// End of input (^D on an empty line).
    Eof,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Key {
    Char(char),
    Enter,
    Backspace,
    Delete,
    Left,
    Right,
    Up,
    Down,
    Home,
    End,
    /// ^U: delete from the start of the line to the cursor.
    KillStart,
    /// ^K: delete from the cursor to the end.
    KillEnd,
    /// ^W: delete the word before the cursor.
    KillWord,
    /// ^D
    EndOfFile,
    /// ^C
    Interrupt,
    /// Anything else: ignored.
    Other,
}

/// Turns the bytes a terminal sends into keys (control characters, ANSI arrows, UTF-8).
#[derive(Default)]
pub struct Decoder {
    pending: Vec<u8>,
}

impl Decoder {
    pub fn feed(&mut self, b: u8) -> Option<Key> {
        if self.pending.is_empty() {
            return match b {
                0x1b | 0xc0..=0xf7 => {
                    self.pending.push(b);
                    None
                }
                b'\r' | b'\n' => Some(Key::Enter),
                0x7f | 0x08 => Some(Key::Backspace),
                0x01 => Some(Key::Home),
                0x05 => Some(Key::End),
                0x02 => Some(Key::Left),
                0x06 => Some(Key::Right),
                0x10 => Some(Key::Up),
                0x0e => Some(Key::Down),
                0x15 => Some(Key::KillStart),
                0x0b => Some(Key::KillEnd),
                0x17 => Some(Key::KillWord),
                0x04 => Some(Key::EndOfFile),
                0x03 => Some(Key::Interrupt),
                0x20..=0x7e => Some(Key::Char(b as char)),
                _ => Some(Key::Other),
            };
        }
        self.pending.push(b);
        if self.pending[0] == 0x1b { self.escape() } else { self.utf8() }
    }

    /// ESC [ ... final, or ESC O final.
    fn escape(&mut self) -> Option<Key> {
        let p = &self.pending;
        if p.len() == 2 {
            if p[1] == b'[' || p[1] == b'O' {
                return None;
            }
            return self.done(Key::Other); // Alt+key: ignored
        }
        let last = p[p.len() - 1];
        if (last.is_ascii_digit() || last == b';') && p.len() < 8 {
            return None;
        }
        let params = &p[2..p.len() - 1];
        let key = match (last, params) {
            (b'A', _) => Key::Up,
            (b'B', _) => Key::Down,
            (b'C', _) => Key::Right,
            (b'D', _) => Key::Left,
            (b'H', _) | (b'~', b"1" | b"7") => Key::Home,
            (b'F', _) | (b'~', b"4" | b"8") => Key::End,
            (b'~', b"3") => Key::Delete,
            _ => Key::Other,
        };
        self.done(key)
    }

    fn utf8(&mut self) -> Option<Key> {
        let want = match self.pending[0] {
            0xc0..=0xdf => 2,
            0xe0..=0xef => 3,
            0xf0..=0xf7 => 4,
            _ => return self.done(Key::Other),
        };
        if self.pending.len() < want {
            return None;
        }
        let key = match std::str::from_utf8(&self.pending).ok().and_then(|s| s.chars().next()) {
            Some(c) => Key::Char(c),
            None => Key::Other,
        };
        self.done(key)
    }

    fn done(&mut self, key: Key) -> Option<Key> {
        self.pending.clear();
        Some(key)
    }
}

/// What a key did to the line being edited.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Editing,
    Done(Input),
}

const HISTORY_MAX: usize = 500;

/// The line being edited, its cursor and the history.
#[derive(Default)]
pub struct Editor {
    buf: Vec<char>,
    cur: usize,
    history: Vec<String>,
    /// Index into `history` while browsing; `history.len()` means the new line.
    hpos: usize,
    /// The new line, kept while browsing the history.
    draft: Vec<char>,
}

impl Editor {
    /// Starts a new, empty line.
    pub fn start(&mut self) {
        self.buf.clear();
        self.cur = 0;
        self.hpos = self.history.len();
        self.draft.clear();
    }

    pub fn line(&self) -> String {
        self.buf.iter().collect()
    }

    #[cfg(test)]
    pub fn cursor(&self) -> usize {
        self.cur
    }

    #[cfg(test)]
    pub fn history(&self) -> &[String] {
        &self.history
    }

    /// Applies one key; appends to `out` the bytes that update the screen.
    pub fn key(&mut self, key: Key, out: &mut Vec<u8>) -> Outcome {
        let (old_cur, old_len) = (self.cur, self.buf.len());
        match key {
            Key::Char(c) => {
                self.buf.insert(self.cur, c);
                self.cur += 1;
                self.redraw(old_cur, old_cur, old_len, out);
            }
            Key::Backspace if self.cur > 0 => {
                self.cur -= 1;
                self.buf.remove(self.cur);
                self.redraw(old_cur, self.cur, old_len, out);
            }
            Key::Delete if self.cur < self.buf.len() => {
                self.buf.remove(self.cur);
                self.redraw(old_cur, self.cur, old_len, out);
            }
            Key::EndOfFile if self.buf.is_empty() => {
                out.extend_from_slice(b"\n");
                return Outcome::Done(Input::Eof);
            }
            Key::EndOfFile if self.cur < self.buf.len() => return self.key(Key::Delete, out),
            Key::Left if self.cur > 0 => {
                self.cur -= 1;
                out.push(0x08);
            }
            Key::Right if self.cur < self.buf.len() => {
                self.cur += 1;
                self.redraw(old_cur, old_cur, old_len, out);
            }
            Key::Home => {
                self.cur = 0;
                self.redraw(old_cur, 0, old_len, out);
            }
            Key::End => {
                self.cur = self.buf.len();
                self.redraw(old_cur, old_cur, old_len, out);
            }
            Key::KillStart => {
                self.buf.drain(..self.cur);
                self.cur = 0;
                self.redraw(old_cur, 0, old_len, out);
            }
            Key::KillEnd => {
                self.buf.truncate(self.cur);
                self.redraw(old_cur, self.cur, old_len, out);
            }
            Key::KillWord => {
                let mut start = self.cur;
                while start > 0 && self.buf[start - 1] == ' ' {
                    start -= 1;
                }
                while start > 0 && self.buf[start - 1] != ' ' {
                    start -= 1;
                }
                self.buf.drain(start..self.cur);
                self.cur = start;
                self.redraw(old_cur, start, old_len, out);
            }
            Key::Up if self.hpos > 0 => {
                if self.hpos == self.history.len() {
                    self.draft = self.buf.clone();
                }
                self.hpos -= 1;
                self.replace(self.history[self.hpos].chars().collect(), out);
            }
            Key::Down if self.hpos < self.history.len() => {
                self.hpos += 1;
                let next = match self.history.get(self.hpos) {
                    Some(h) => h.chars().collect(),
                    None => self.draft.clone(),
                };
                self.replace(next, out);
            }
            Key::Enter => {
                out.extend_from_slice(b"\n");
                let line = self.line();
                if !line.trim().is_empty() && self.history.last() != Some(&line) {
                    if self.history.len() == HISTORY_MAX {
                        self.history.remove(0);
                    }
                    self.history.push(line.clone());
                }
                return Outcome::Done(Input::Line(line));
            }
            Key::Interrupt => {
                out.extend_from_slice(b"^C\n");
                return Outcome::Done(Input::Cancel);
            }
            _ => {}
        }
        Outcome::Editing
    }

    fn replace(&mut self, new: Vec<char>, out: &mut Vec<u8>) {
        let (old_cur, old_len) = (self.cur, self.buf.len());
        self.buf = new;
        self.cur = self.buf.len();
        self.redraw(old_cur, 0, old_len, out);
    }

    /// The screen shows the old line with the cursor at `old_cur`; everything from `from` on
    /// may have changed. Back up to `from`, print the rest of the line, blank what is left of
    /// the old one, and back up to the new cursor.
    fn redraw(&self, old_cur: usize, from: usize, old_len: usize, out: &mut Vec<u8>) {
        let from = from.min(old_cur);
        out.extend(std::iter::repeat_n(0x08, old_cur - from));
        let tail: String = self.buf[from..].iter().collect();
        out.extend_from_slice(tail.as_bytes());
        let blanks = old_len.saturating_sub(self.buf.len());
        out.extend(std::iter::repeat_n(b' ', blanks));
        let end = self.buf.len() + blanks;
        out.extend(std::iter::repeat_n(0x08, end - self.cur));
    }
}

/// Reads one line from `fd` a byte at a time (never past the newline). No editing.
pub fn read_plain(fd: i32) -> Input {
    let mut bytes = Vec::new();
    loop {
        let mut b = 0u8;
        // SAFETY: reads one byte into a local.
        let n = unsafe { libc::read(fd, (&raw mut b).cast(), 1) };
        if n < 0 && io::Error::last_os_error().kind() == io::ErrorKind::Interrupted {
            continue;
        }
        if n <= 0 {
            if bytes.is_empty() {
                return Input::Eof;
            }
            break;
        }
        if b == b'\n' {
            break;
        }
        bytes.push(b);
    }
    Input::Line(String::from_utf8_lossy(&bytes).into_owned())
}

fn write_all(fd: i32, mut bytes: &[u8]) {
    while !bytes.is_empty() {
        // SAFETY: writes from a live slice.
        let n = unsafe { libc::write(fd, bytes.as_ptr().cast(), bytes.len()) };
        if n < 0 && io::Error::last_os_error().kind() == io::ErrorKind::Interrupted {
            continue;
        }
        if n <= 0 {
            return;
        }
        bytes = &bytes[n as usize..];
    }
}

/// The terminal the shell reads from: input on `fd`, prompt and echo on stderr.
pub struct Terminal {
    fd: i32,
    cooked: libc::termios,
    decoder: Decoder,
    editor: Editor,
}

const ECHO_FD: i32 = 2;

impl Terminal {
    /// `None` if `fd` is not a terminal.
    pub fn new(fd: i32) -> Option<Terminal> {
        // SAFETY: termios is plain data; tcgetattr fills it.
        let mut cooked: libc::termios = unsafe { std::mem::zeroed() };
        if unsafe { libc::isatty(fd) } != 1 || unsafe { libc::tcgetattr(fd, &mut cooked) } != 0 {
            return None;
        }
        Some(Terminal { fd, cooked, decoder: Decoder::default(), editor: Editor::default() })
    }

    /// Puts the terminal back the way the shell found it.
    fn restore(&self) {
        // SAFETY: sets attributes read by tcgetattr.
        unsafe { libc::tcsetattr(self.fd, libc::TCSADRAIN, &self.cooked) };
    }

    /// Shows `prompt` and reads a line with editing; without raw mode, a plain line.
    /// The prompt appears only once raw mode is on, so whoever waits for it may type.
    pub fn read_line(&mut self, prompt: &str) -> Input {
        let mut raw = self.cooked;
        raw.c_lflag &= !(libc::ICANON | libc::ECHO | libc::ISIG | libc::IEXTEN);
        raw.c_cc[libc::VMIN] = 1;
        raw.c_cc[libc::VTIME] = 0;
        // SAFETY: sets attributes on our terminal.
        if unsafe { libc::tcsetattr(self.fd, libc::TCSADRAIN, &raw) } != 0 {
            write_all(ECHO_FD, prompt.as_bytes());
            return read_plain(self.fd);
        }
        write_all(ECHO_FD, prompt.as_bytes());
        self.editor.start();
        self.decoder = Decoder::default();
        let input = loop {
            let mut b = 0u8;
            // SAFETY: reads one byte into a local.
            let n = unsafe { libc::read(self.fd, (&raw mut b).cast(), 1) };
            if n < 0 && io::Error::last_os_error().kind() == io::ErrorKind::Interrupted {
                continue;
            }
            if n <= 0 {
                break Input::Eof;
            }
            let Some(key) = self.decoder.feed(b) else { continue };
            let mut out = Vec::new();
            let outcome = self.editor.key(key, &mut out);
            write_all(ECHO_FD, &out);
            if let Outcome::Done(input) = outcome {
                break input;
            }
        };
        self.restore();
        input
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(bytes: &[u8]) -> Vec<Key> {
        let mut d = Decoder::default();
        bytes.iter().filter_map(|&b| d.feed(b)).collect()
    }

    /// Types `input` into `ed`; returns the screen output and the outcome of the last key.
    fn type_into(ed: &mut Editor, input: &[u8]) -> (String, Outcome) {
        let mut out = Vec::new();
        let mut last = Outcome::Editing;
        for k in keys(input) {
            last = ed.key(k, &mut out);
        }
        (String::from_utf8_lossy(&out).into_owned(), last)
    }

    fn edit(input: &[u8]) -> (Editor, String, Outcome) {
        let mut ed = Editor::default();
        ed.start();
        let (out, o) = type_into(&mut ed, input);
        (ed, out, o)
    }

    fn line(s: &str) -> Outcome {
        Outcome::Done(Input::Line(s.into()))
    }

    #[test]
    fn decodes_keys() {
        use Key::*;
        assert_eq!(
            keys(b"a\r\n\x7f\x08\x15\x17\x04\x03\x01\x05\x0b\x07"),
            vec![
                Char('a'),
                Enter,
                Enter,
                Backspace,
                Backspace,
                KillStart,
                KillWord,
                EndOfFile,
                Interrupt,
                Home,
                End,
                KillEnd,
                Other
            ]
        );
        assert_eq!(
            keys(b"\x1b[A\x1b[B\x1b[C\x1b[D\x1bOA\x1b[H\x1b[F\x1b[3~\x1b[1~\x1b[4~"),
            vec![Up, Down, Right, Left, Up, Home, End, Delete, Home, End]
        );
        assert_eq!(keys(b"\x1b[1;5C\x1bxa"), vec![Right, Other, Char('a')]);
        assert_eq!(keys("é€".as_bytes()), vec![Char('é'), Char('€')]);
        assert_eq!(keys(b"\xff\x80a"), vec![Other, Other, Char('a')]);
        assert_eq!(keys(b"\x1b[99999999x"), vec![Other, Char('9'), Char('9'), Char('x')]);
    }

    #[test]
    fn typing_echoes_plainly() {
        let (_, out, o) = edit(b"ls -l\r");
        assert_eq!(out, "ls -l\n");
        assert_eq!(o, line("ls -l"));
    }

    #[test]
    fn backspace() {
        let (_, out, o) = edit(b"lx\x7fs\r");
        assert_eq!(out, "lx\x08 \x08s\n");
        assert_eq!(o, line("ls"));
        let (_, out, o) = edit(b"\x7f\x7fa\r");
        assert_eq!(out, "a\n");
        assert_eq!(o, line("a"));
    }

    #[test]
    fn cursor_movement_and_insertion() {
        // Type "ac", go left, insert "b": screen rewrites "bc" and backs up over "c".
        let (ed, out, _) = edit(b"ac\x1b[Db");
        assert_eq!(ed.line(), "abc");
        assert_eq!(ed.cursor(), 2);
        assert_eq!(out, "ac\x08bc\x08");
        let (ed, _, o) = edit(b"abc\x1b[D\x1b[D\x1b[D\x1b[DX\x1b[C\x1b[C\x1b[C\x1b[CY\r");
        assert_eq!(o, line("XabcY"));
        assert_eq!(ed.cursor(), 5);
        let (_, _, o) = edit(b"bc\x01a\x05d\r");
        assert_eq!(o, line("abcd"));
    }

    #[test]
    fn delete_in_the_middle() {
        let (ed, out, _) = edit(b"abc\x1b[D\x1b[D\x7f");
        assert_eq!(ed.line(), "bc");
        assert_eq!(ed.cursor(), 0);
        // Back over "bc" and one more, print "bc", blank the old last column, back up 3.
        assert_eq!(out, "abc\x08\x08\x08bc \x08\x08\x08");
        let (ed, _, _) = edit(b"abc\x01\x1b[3~");
        assert_eq!(ed.line(), "bc");
        let (ed, _, _) = edit(b"abc\x01\x04");
        assert_eq!(ed.line(), "bc");
    }

    #[test]
    fn kill_line_and_word() {
        let (ed, _, _) = edit(b"echo hello\x15");
        assert_eq!(ed.line(), "");
        let (ed, _, _) = edit(b"echo hello\x1b[D\x1b[D\x15");
        assert_eq!((ed.line().as_str(), ed.cursor()), ("lo", 0));
        let (ed, _, _) = edit(b"echo hello  \x17");
        assert_eq!(ed.line(), "echo ");
        let (ed, _, _) = edit(b"echo hello\x17\x17\x17");
        assert_eq!(ed.line(), "");
        let (ed, _, _) = edit(b"one two\x01\x1b[C\x1b[C\x1b[C\x0b");
        assert_eq!(ed.line(), "one");
        let (_, out, _) = edit(b"ab\x15");
        assert_eq!(out, "ab\x08\x08  \x08\x08");
    }

    #[test]
    fn control_d_and_c() {
        assert_eq!(edit(b"\x04").2, Outcome::Done(Input::Eof));
        assert_eq!(edit(b"ab\x04").2, Outcome::Editing);
        let (_, out, o) = edit(b"ab\x03");
        assert_eq!(o, Outcome::Done(Input::Cancel));
        assert!(out.ends_with("^C\n"));
    }

    #[test]
    fn history_up_and_down() {
        let mut ed = Editor::default();
        for l in ["first", "second", "second", "  ", "third"] {
            ed.start();
            let _ = type_into(&mut ed, format!("{l}\r").as_bytes());
        }
        assert_eq!(ed.history(), ["first", "second", "third"]);
        ed.start();
        let _ = type_into(&mut ed, b"dra");
        let _ = type_into(&mut ed, b"\x1b[A");
        assert_eq!(ed.line(), "third");
        let _ = type_into(&mut ed, b"\x1b[A\x1b[A\x1b[A\x1b[A");
        assert_eq!(ed.line(), "first");
        let _ = type_into(&mut ed, b"\x1b[B");
        assert_eq!(ed.line(), "second");
        let _ = type_into(&mut ed, b"\x1b[B\x1b[B\x1b[B");
        assert_eq!(ed.line(), "dra");
        // Recalling a line and editing it submits the edited text.
        let (_, o) = type_into(&mut ed, b"\x15\x1b[A!\r");
        assert_eq!(o, line("third!"));
        assert_eq!(ed.history().last().map(String::as_str), Some("third!"));
    }

    #[test]
    fn history_redraw_blanks_longer_lines() {
        let mut ed = Editor::default();
        ed.start();
        let _ = type_into(&mut ed, b"ab\r");
        ed.start();
        let (out, _) = type_into(&mut ed, b"wxyz\x1b[A");
        assert_eq!(out, "wxyz\x08\x08\x08\x08ab  \x08\x08");
    }

    #[test]
    fn history_is_bounded() {
        let mut ed = Editor::default();
        for i in 0..HISTORY_MAX + 10 {
            ed.start();
            let _ = type_into(&mut ed, format!("cmd{i}\r").as_bytes());
        }
        assert_eq!(ed.history().len(), HISTORY_MAX);
        assert_eq!(ed.history()[0], "cmd10");
    }
}

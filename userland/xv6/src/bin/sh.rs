//! sh: the shell of the xv6 personality; xv6's `sh.c`.
//!
//! A line is parsed into a tree of commands, then run by a child process, which the shell
//! waits for. The grammar (xv6's, plus `>>`):
//!
//! ```text
//! line  = pipe { "&" } [ ";" line ]        "a &" runs a in the background
//! pipe  = exec [ "|" pipe ]
//! exec  = "(" line ")" redirs  |  redirs { word redirs }
//! redirs = { ("<" | ">" | ">>") word }
//! ```
//!
//! Words are separated by blanks; there are no quotes. Builtins: `cd DIR` (a child cannot
//! change the shell's directory) and `exit`. A program named without a '/' is looked for as
//! given, then in `/xv6/`. xv6 has no O_APPEND: `>>` opens the file for reading and writing
//! and reads to its end before the command writes.
#![no_std]
#![no_main]

extern crate alloc;

use alloc::boxed::Box;
use alloc::format;
use alloc::vec::Vec;
use xv6::{
    O_CREATE, O_RDONLY, O_RDWR, O_WRONLY, Stat, T_FILE, chdir, close, dup, exec, exit, fork, fstat, gets,
    open, pipe, printf, read, wait,
};

xv6::entry!(main);

/// The blanks between words.
const WHITESPACE: &[u8] = b" \t\r\n\x0b";
/// The bytes that end a word and are tokens of their own.
const SYMBOLS: &[u8] = b"<|>&;()";
/// Where programs named without a '/' are looked for when they are not in the current
/// directory.
const PROGRAM_DIR: &str = "/xv6/";

/// A command: xv6's execcmd, redircmd, pipecmd, listcmd and backcmd. Words borrow from the
/// line.
enum Cmd<'a> {
    /// Run a program with these arguments (none: do nothing).
    Exec(Vec<&'a str>),
    /// Run `cmd` with a file descriptor redirected.
    Redir { cmd: Box<Cmd<'a>>, redirection: Redirection<'a> },
    /// Run both, the output of the left one going to the input of the right one.
    Pipe(Box<Cmd<'a>>, Box<Cmd<'a>>),
    /// Run the left one, then the right one.
    List(Box<Cmd<'a>>, Box<Cmd<'a>>),
    /// Run it without waiting for it.
    Back(Box<Cmd<'a>>),
}

/// `< file`, `> file` or `>> file`.
struct Redirection<'a> {
    kind: Token<'a>,
    file: &'a str,
}

/// The tokens of a line.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Token<'a> {
    Word(&'a str),
    /// One of SYMBOLS.
    Symbol(u8),
    /// `>>`.
    Append,
    /// The end of the line.
    End,
}

/// A recursive-descent parser over one line (xv6's `parsecmd` and friends).
struct Parser<'a> {
    line: &'a str,
    pos: usize,
}

impl<'a> Parser<'a> {
    /// Parse a whole line.
    fn parse(line: &'a str) -> Result<Cmd<'a>, &'static str> {
        let mut parser = Parser { line, pos: 0 };
        let cmd = parser.parse_line()?;
        if parser.next_token() != Token::End {
            return Err("syntax error: unexpected text");
        }
        Ok(cmd)
    }

    fn skip_whitespace(&mut self) {
        let bytes = self.line.as_bytes();
        while bytes.get(self.pos).is_some_and(|b| WHITESPACE.contains(b)) {
            self.pos += 1;
        }
    }

    /// Is the next token one of the symbols `symbols`? (Consumes the blanks before it.)
    fn peek(&mut self, symbols: &[u8]) -> bool {
        self.skip_whitespace();
        self.line.as_bytes().get(self.pos).is_some_and(|b| symbols.contains(b))
    }

    fn next_token(&mut self) -> Token<'a> {
        self.skip_whitespace();
        let bytes = self.line.as_bytes();
        let Some(&first) = bytes.get(self.pos) else { return Token::End };
        if first == b'>' && bytes.get(self.pos + 1) == Some(&b'>') {
            self.pos += 2;
            return Token::Append;
        }
        if SYMBOLS.contains(&first) {
            self.pos += 1;
            return Token::Symbol(first);
        }
        let start = self.pos;
        while bytes.get(self.pos).is_some_and(|b| !WHITESPACE.contains(b) && !SYMBOLS.contains(b)) {
            self.pos += 1;
        }
        // Words end at ASCII bytes, so the slice is on character boundaries.
        Token::Word(self.line.get(start..self.pos).unwrap_or(""))
    }

    fn parse_line(&mut self) -> Result<Cmd<'a>, &'static str> {
        let mut cmd = self.parse_pipe()?;
        let mut background = false;
        while self.peek(b"&") {
            self.next_token();
            cmd = Cmd::Back(Box::new(cmd));
            background = true;
        }
        // "a ; b", and also "a & b" (xv6 rejects that one).
        let more = if self.peek(b";") {
            self.next_token();
            true
        } else {
            background && !self.peek(b")") && !self.at_end()
        };
        if more {
            cmd = Cmd::List(Box::new(cmd), Box::new(self.parse_line()?));
        }
        Ok(cmd)
    }

    fn at_end(&mut self) -> bool {
        self.skip_whitespace();
        self.pos >= self.line.len()
    }

    fn parse_pipe(&mut self) -> Result<Cmd<'a>, &'static str> {
        let cmd = self.parse_exec()?;
        if self.peek(b"|") {
            self.next_token();
            return Ok(Cmd::Pipe(Box::new(cmd), Box::new(self.parse_pipe()?)));
        }
        Ok(cmd)
    }

    fn parse_exec(&mut self) -> Result<Cmd<'a>, &'static str> {
        if self.peek(b"(") {
            return self.parse_block();
        }
        let mut argv = Vec::new();
        let mut redirections = Vec::new();
        self.parse_redirections(&mut redirections)?;
        while !self.peek(b"|)&;") {
            match self.next_token() {
                Token::End => break,
                Token::Word(word) => argv.push(word),
                _ => return Err("syntax error"),
            }
            self.parse_redirections(&mut redirections)?;
        }
        Ok(with_redirections(Cmd::Exec(argv), redirections))
    }

    fn parse_block(&mut self) -> Result<Cmd<'a>, &'static str> {
        self.next_token(); // "("
        let cmd = self.parse_line()?;
        if !self.peek(b")") {
            return Err("syntax error: missing )");
        }
        self.next_token();
        let mut redirections = Vec::new();
        self.parse_redirections(&mut redirections)?;
        Ok(with_redirections(cmd, redirections))
    }

    fn parse_redirections(&mut self, into: &mut Vec<Redirection<'a>>) -> Result<(), &'static str> {
        while self.peek(b"<>") {
            let kind = self.next_token();
            let Token::Word(file) = self.next_token() else {
                return Err("missing file for redirection");
            };
            into.push(Redirection { kind, file });
        }
        Ok(())
    }
}

/// Wrap `cmd` in its redirections, the first one outermost: they are applied in the order
/// written, so the last one of a descriptor wins ("a >x >y" writes to y).
fn with_redirections<'a>(cmd: Cmd<'a>, redirections: Vec<Redirection<'a>>) -> Cmd<'a> {
    redirections
        .into_iter()
        .rev()
        .fold(cmd, |cmd, redirection| Cmd::Redir { cmd: Box::new(cmd), redirection })
}

/// fork, or end the process if it fails (xv6's `fork1`).
fn fork1() -> i32 {
    let pid = fork();
    if pid < 0 {
        printf!(2, "sh: fork failed\n");
        exit()
    }
    pid
}

/// Open the redirection's file on the lowest free descriptor (the one just closed).
fn open_redirection(redirection: &Redirection) -> i32 {
    match redirection.kind {
        Token::Symbol(b'<') => open(redirection.file, O_RDONLY),
        Token::Append => {
            let fd = open(redirection.file, O_RDWR | O_CREATE);
            // Move the offset to the end of a regular file by reading it.
            let mut st = Stat::default();
            if fd >= 0 && fstat(fd, &mut st) == 0 && st.typ == T_FILE {
                let mut buf = [0u8; 512];
                while read(fd, &mut buf) > 0 {}
            }
            fd
        }
        _ => open(redirection.file, O_WRONLY | O_CREATE),
    }
}

/// Run `cmd` in this (child) process; never returns (xv6's `runcmd`).
fn run_cmd(cmd: &Cmd) -> ! {
    match cmd {
        Cmd::Exec(argv) => {
            let Some(&name) = argv.first() else { exit() };
            exec(name, argv);
            if !name.contains('/') {
                exec(&format!("{PROGRAM_DIR}{name}"), argv);
            }
            printf!(2, "exec {} failed\n", name);
        }
        Cmd::Redir { cmd, redirection } => {
            let fd = if redirection.kind == Token::Symbol(b'<') { 0 } else { 1 };
            close(fd);
            if open_redirection(redirection) < 0 {
                printf!(2, "open {} failed\n", redirection.file);
                exit()
            }
            run_cmd(cmd)
        }
        Cmd::List(first, second) => {
            if fork1() == 0 {
                run_cmd(first)
            }
            wait();
            run_cmd(second)
        }
        Cmd::Pipe(left, right) => {
            let mut fds = [0; 2];
            if pipe(&mut fds) < 0 {
                printf!(2, "sh: pipe failed\n");
                exit()
            }
            let [read_end, write_end] = fds;
            if fork1() == 0 {
                // The left command writes into the pipe.
                close(1);
                dup(write_end);
                close(read_end);
                close(write_end);
                run_cmd(left)
            }
            if fork1() == 0 {
                // The right command reads from it.
                close(0);
                dup(read_end);
                close(read_end);
                close(write_end);
                run_cmd(right)
            }
            close(read_end);
            close(write_end);
            wait();
            wait();
        }
        Cmd::Back(cmd) => {
            // The child runs it and this process exits at once, so the shell need not wait.
            if fork1() == 0 {
                run_cmd(cmd)
            }
        }
    }
    exit()
}

/// Print the prompt and read a line: `None` at end of file.
fn get_command(buf: &mut [u8]) -> Option<&[u8]> {
    printf!(2, "$ ");
    let len = gets(buf);
    (len > 0).then_some(&buf[..len])
}

fn main(_args: &[&str]) {
    // Make sure fds 0, 1 and 2 are open (on the console), as xv6's sh does.
    loop {
        let fd = open("console", O_RDWR);
        if fd < 0 {
            break;
        }
        if fd >= 3 {
            close(fd);
            break;
        }
    }

    let mut buf = [0u8; 512];
    while let Some(line) = get_command(&mut buf) {
        let Ok(line) = core::str::from_utf8(line) else {
            printf!(2, "sh: the line is not UTF-8\n");
            continue;
        };
        let command = line.trim();
        if command == "exit" {
            exit()
        }
        if let Some(dir) = command.strip_prefix("cd ") {
            let dir = dir.trim();
            if chdir(dir) < 0 {
                printf!(2, "cannot cd {}\n", dir);
            }
            continue;
        }
        match Parser::parse(line) {
            Ok(Cmd::Exec(argv)) if argv.is_empty() => {}
            Ok(cmd) => {
                if fork1() == 0 {
                    run_cmd(&cmd)
                }
                wait();
            }
            Err(message) => printf!(2, "sh: {}\n", message),
        }
    }
    exit()
}

//! personality-unix's logic that compiles for the host too: Linux's numbers (system calls,
//! errno values, flags), the layout of a new process's stack, file descriptor tables. Host unit tests live beside
//! the code; the server itself is `main.rs` and the modules it declares.
#![cfg_attr(not(test), no_std)]
extern crate alloc;

pub mod fdtable;
pub mod ids;
pub mod linux;
pub mod pipe;
pub mod script;
pub mod signal;
pub mod stack;

/// Machina's own calls for the tools that show the system (`ps`, `servers`): numbers far
/// above Linux's, answered by the personality with text, one record a line, fields split
/// by tabs. `info(what, buffer, size)` copies at most `size` bytes and answers the full length.
pub mod machina {
    pub const INFO: u64 = 0x4d41;
    /// pid, parent, group, state (R running, S waiting in a call, T stopped, Z ended, E
    /// running as another personality's program), task id, threads, personality, name. A
    /// process another personality started on its own has that personality's pid: "xv6:2".
    pub const PROCESSES: u64 = 1;
    /// name, program, task id, restarts: bootstrap's registered names.
    pub const SERVERS: u64 = 2;
    /// `info(TRACE_START, pid)`: trace process `pid` (0: the caller), and every process it
    /// makes from then on. `TRACE_STOP` ends it.
    pub const TRACE_START: u64 = 3;
    pub const TRACE_STOP: u64 = 6;
    /// `info(TRACE_READ, from, buffer, max)`: the kernel's trace records with sequence
    /// numbers from `from` on (`mach_abi::trace::TraceRecord`, at most 64): their count.
    pub const TRACE_READ: u64 = 4;
    /// `info(TRACE_NAME, task_id, buffer, size)`: "name pid" of a task (pid 0: no process).
    pub const TRACE_NAME: u64 = 5;
    /// `info(END_SERVER, name, length)`: ask bootstrap to end the server registered under
    /// that name (its policy says which the personality may end: "xv6").
    pub const END_SERVER: u64 = 7;
}

/// The words of a command line: split at blanks, except inside single quotes (which go).
pub fn words(line: &str) -> alloc::vec::Vec<alloc::string::String> {
    let mut words = alloc::vec::Vec::new();
    let mut word = alloc::string::String::new();
    let (mut quoted, mut any) = (false, false);
    for c in line.chars() {
        match c {
            '\'' => {
                quoted = !quoted;
                any = true;
            }
            c if c.is_ascii_whitespace() && !quoted => {
                if any {
                    words.push(core::mem::take(&mut word));
                    any = false;
                }
            }
            c => {
                word.push(c);
                any = true;
            }
        }
    }
    if any {
        words.push(word);
    }
    words
}

#[cfg(test)]
mod tests {
    #[test]
    fn command_line_words_with_quotes() {
        assert_eq!(super::words("p /bin/sh -c 'a b; c'  ''"), ["p", "/bin/sh", "-c", "a b; c", ""]);
        assert_eq!(super::words("  one  "), ["one"]);
    }
}

//! Drives the interactive `sh` through a pseudo-terminal the test creates (no real terminal
//! needed): the prompt, line editing, history, ^C ending the foreground job but not the shell,
//! ^Z stopping a job and `fg` resuming it, ^D ending the shell.

use std::os::fd::{FromRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

struct Pty {
    master: OwnedFd,
    child: Child,
    seen: String,
}

impl Pty {
    fn start(cwd: &str) -> Pty {
        // SAFETY: standard pseudo-terminal calls; every result is checked.
        unsafe {
            let m = libc::posix_openpt(libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC);
            assert!(m >= 0, "posix_openpt");
            assert_eq!(libc::grantpt(m), 0);
            assert_eq!(libc::unlockpt(m), 0);
            let name = libc::ptsname(m);
            assert!(!name.is_null());
            let s = libc::open(name, libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC);
            assert!(s >= 0, "open slave");
            let stdio = || Stdio::from(OwnedFd::from_raw_fd(libc::fcntl(s, libc::F_DUPFD_CLOEXEC, 3)));
            let child = Command::new(env!("CARGO_BIN_EXE_sh"))
                .current_dir(cwd)
                .stdin(stdio())
                .stdout(stdio())
                .stderr(stdio())
                .pre_exec(|| {
                    // A new session with the pty as its controlling terminal, like a login.
                    libc::setsid();
                    libc::ioctl(0, libc::TIOCSCTTY, 0);
                    Ok(())
                })
                .spawn()
                .expect("spawn sh");
            libc::close(s);
            Pty { master: OwnedFd::from_raw_fd(m), child, seen: String::new() }
        }
    }

    fn send(&mut self, bytes: &[u8]) {
        use std::os::fd::AsRawFd;
        // SAFETY: writes a live slice to the master side.
        let n = unsafe { libc::write(self.master.as_raw_fd(), bytes.as_ptr().cast(), bytes.len()) };
        assert_eq!(n, bytes.len() as isize);
    }

    /// Reads until the output seen since the last call contains `needle`; returns it.
    fn expect(&mut self, needle: &str) -> String {
        use std::os::fd::AsRawFd;
        let deadline = Instant::now() + Duration::from_secs(5);
        while !self.seen.contains(needle) {
            assert!(Instant::now() < deadline, "timed out waiting for {needle:?}; saw {:?}", self.seen);
            let mut pfd = libc::pollfd { fd: self.master.as_raw_fd(), events: libc::POLLIN, revents: 0 };
            // SAFETY: polls one descriptor, then reads into a local buffer.
            unsafe {
                if libc::poll(&mut pfd, 1, 100) == 1 {
                    let mut buf = [0u8; 1024];
                    let n = libc::read(self.master.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len());
                    if n > 0 {
                        self.seen.push_str(&String::from_utf8_lossy(&buf[..n as usize]));
                    }
                }
            }
        }
        let at = self.seen.find(needle).unwrap_or(0) + needle.len();
        let before = self.seen[..at].to_string();
        self.seen.drain(..at);
        before
    }
}

impl Drop for Pty {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn interactive_session() {
    let mut t = Pty::start("/");
    // Nothing but the prompt on start.
    assert_eq!(t.expect("/ $ "), "/ $ ");

    t.send(b"echo hi | tr a-z A-Z\r");
    assert!(t.expect("/ $ ").contains("HI\r\n"));

    // Editing: backspace, left + insert, ^W, ^U.
    t.send(b"echo abd\x7fc\x1b[D\x1b[DX\r");
    assert!(t.expect("/ $ ").contains("aXbc\r\n"));
    t.send(b"rm -rf nothing\x17\x15echo kept\r");
    assert!(t.expect("/ $ ").contains("kept\r\n"));
    // History: up recalls the last line.
    t.send(b"\x1b[A\r");
    assert!(t.expect("/ $ ").contains("kept\r\n"));

    // ^C ends the foreground job, not the shell.
    t.send(b"sleep 30\r");
    t.expect("sleep 30\r\n");
    std::thread::sleep(Duration::from_millis(200));
    t.send(b"\x03");
    t.expect("/ $ ");
    t.send(b"echo status $?\r");
    assert!(t.expect("/ $ ").contains("status 130"));
    // ^C at the prompt drops the line.
    t.send(b"echo never\x03");
    t.expect("/ $ ");

    // ^Z stops a job; jobs lists it; fg resumes it with the terminal.
    t.send(b"cat\r");
    t.expect("cat\r\n");
    std::thread::sleep(Duration::from_millis(200));
    t.send(b"\x1a");
    assert!(t.expect("/ $ ").contains("[1]+ Stopped  cat"));
    t.send(b"jobs\r");
    assert!(t.expect("/ $ ").contains("[1]+ Stopped  cat"));
    t.send(b"fg\r");
    t.expect("cat\r\n");
    t.send(b"meow\r");
    t.expect("meow\r\nmeow\r\n");
    t.send(b"\x04");
    t.expect("/ $ ");

    // A continuation line for an open quote.
    t.send(b"echo 'a\r");
    t.expect("> ");
    t.send(b"b'\r");
    assert!(t.expect("/ $ ").contains("a\r\nb\r\n"));

    // cd changes the prompt; ^D on an empty line ends the shell.
    t.send(b"cd /tmp\r");
    t.expect("/tmp $ ");
    t.send(b"\x04");
    let status = t.child.wait().expect("wait");
    assert_eq!(status.code(), Some(0));
}

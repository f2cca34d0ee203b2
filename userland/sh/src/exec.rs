//! The executor: runs parsed lists with fork, exec, pipes and wait; builtins; the job table.
//!
//! Job control (interactive shells on a terminal): every pipeline gets its own process group,
//! the foreground group owns the terminal (`tcsetpgrp`) until it ends or stops, and the shell
//! ignores SIGINT, SIGQUIT and SIGTSTP so ^C and ^Z reach the job, never the shell.
//! Children get default signal dispositions back before exec.
//! This module must never let a child return into the shell's loop (children end in exec or
//! `_exit`), and never panic on anything a user typed.

use crate::expand::{self, Lookup};
use crate::lex::is_name;
use crate::line::{Input, Terminal, read_plain};
use crate::parse::{AndOr, Command, Connector, List, Pipeline, Redir, Target, parse};
use std::collections::{BTreeMap, BTreeSet};
use std::ffi::CString;
use std::io::{self, Write};
use std::os::fd::IntoRawFd;

const BUILTINS: &[&str] =
    &["cd", "pwd", "exit", "export", "unset", "source", ".", "wait", "jobs", "fg", "bg"];
const DEFAULT_PATH: &str = "/usr/local/bin:/usr/bin:/bin";

/// Prints `sh: msg` on stderr.
pub fn error(msg: &str) {
    let _ = writeln!(io::stderr(), "sh: {msg}");
}

/// The text of an errno, without Rust's "(os error N)" suffix.
fn strerror(e: &io::Error) -> String {
    let s = e.to_string();
    match s.find(" (os error") {
        Some(i) => s[..i].to_string(),
        None => s,
    }
}

fn last_error() -> io::Error {
    io::Error::last_os_error()
}

fn flush() {
    let _ = io::stdout().flush();
    let _ = io::stderr().flush();
}

/// The exit status a wait status stands for: the code, or 128 + the signal.
fn exit_code(status: i32) -> i32 {
    if libc::WIFSIGNALED(status) { 128 + libc::WTERMSIG(status) } else { libc::WEXITSTATUS(status) }
}

fn set_signals(handler: libc::sighandler_t, sigs: &[i32]) {
    for &s in sigs {
        // SAFETY: installs SIG_IGN or SIG_DFL, no handler code runs.
        unsafe { libc::signal(s, handler) };
    }
}

const JOB_SIGNALS: &[i32] = &[libc::SIGINT, libc::SIGQUIT, libc::SIGTSTP, libc::SIGTTIN, libc::SIGTTOU];

/// A command after expansion.
struct Simple {
    argv: Vec<String>,
    assigns: Vec<(String, String)>,
    redirs: Vec<(u32, Target, Vec<String>)>,
}

struct Proc {
    pid: libc::pid_t,
    /// The exit code once it ended.
    code: Option<i32>,
    stopped: bool,
}

struct Job {
    id: usize,
    pgid: libc::pid_t,
    procs: Vec<Proc>,
    text: String,
}

impl Job {
    fn done(&self) -> bool {
        self.procs.iter().all(|p| p.code.is_some())
    }
    fn stopped(&self) -> bool {
        !self.done() && self.procs.iter().all(|p| p.code.is_some() || p.stopped)
    }
    /// The status of a pipeline is its last command's.
    fn code(&self) -> i32 {
        self.procs.last().and_then(|p| p.code).unwrap_or(0)
    }
    fn state(&self) -> String {
        if self.stopped() {
            "Stopped".into()
        } else if !self.done() {
            "Running".into()
        } else if self.code() == 0 {
            "Done".into()
        } else {
            format!("Exit {}", self.code())
        }
    }
}

pub struct Shell {
    vars: BTreeMap<String, String>,
    exported: BTreeSet<String>,
    /// `$?`
    pub status: i32,
    /// `$$`
    pid: libc::pid_t,
    /// `$!`
    last_bg: Option<libc::pid_t>,
    /// `$0` and `$1`...
    pub name: String,
    pub args: Vec<String>,
    jobs: Vec<Job>,
    /// Reading commands from a user: prompts, job messages, ignored signals.
    interactive: bool,
    /// Process groups and the terminal handed to the foreground job.
    job_control: bool,
    shell_pgid: libc::pid_t,
    /// This process is a forked child running part of a command line.
    in_child: bool,
    term: Option<Terminal>,
}

impl Lookup for Shell {
    fn get(&self, name: &str) -> Option<String> {
        match name {
            "?" => Some(self.status.to_string()),
            "$" => Some(self.pid.to_string()),
            "!" => self.last_bg.map(|p| p.to_string()),
            "#" => Some(self.args.len().to_string()),
            "0" => Some(self.name.clone()),
            _ => match name.parse::<usize>() {
                Ok(n) => self.args.get(n.wrapping_sub(1)).cloned(),
                Err(_) => self.vars.get(name).cloned(),
            },
        }
    }
    fn positional(&self) -> Vec<String> {
        self.args.clone()
    }
}

impl Shell {
    /// A shell with the process environment as exported variables.
    pub fn new(name: String, args: Vec<String>, interactive: bool) -> Shell {
        let mut sh = Shell {
            vars: BTreeMap::new(),
            exported: BTreeSet::new(),
            status: 0,
            // SAFETY: getpid has no preconditions.
            pid: unsafe { libc::getpid() },
            last_bg: None,
            name,
            args,
            jobs: Vec::new(),
            interactive,
            job_control: false,
            shell_pgid: 0,
            in_child: false,
            term: None,
        };
        for (k, v) in std::env::vars_os() {
            if let (Ok(k), Ok(v)) = (k.into_string(), v.into_string()) {
                sh.exported.insert(k.clone());
                sh.vars.insert(k, v);
            }
        }
        if let Ok(cwd) = std::env::current_dir() {
            sh.set_var("PWD", &cwd.to_string_lossy());
            sh.exported.insert("PWD".into());
        }
        if interactive {
            sh.init_interactive();
        }
        sh
    }

    /// Takes the terminal: wait to be in the foreground, ignore job signals, own a group.
    fn init_interactive(&mut self) {
        set_signals(libc::SIG_IGN, &[libc::SIGINT, libc::SIGQUIT, libc::SIGTSTP]);
        self.term = Terminal::new(0);
        if self.term.is_none() {
            return;
        }
        // SAFETY: plain process-group and terminal calls on our own process and stdin.
        unsafe {
            loop {
                let fg = libc::tcgetpgrp(0);
                if fg < 0 || fg == libc::getpgrp() {
                    break;
                }
                libc::kill(-libc::getpgrp(), libc::SIGTTIN);
            }
            set_signals(libc::SIG_IGN, &[libc::SIGTTIN, libc::SIGTTOU]);
            libc::setpgid(0, 0); // fails harmlessly for a session leader
            self.shell_pgid = libc::getpgrp();
            self.job_control = libc::tcsetpgrp(0, self.shell_pgid) == 0;
        }
    }

    fn set_var(&mut self, name: &str, value: &str) {
        self.vars.insert(name.to_string(), value.to_string());
    }

    // ---- reading and running text ----

    /// Runs the interactive loop (or a non-terminal stdin) until end of input.
    pub fn run_stdin(&mut self) -> i32 {
        let mut term = self.term.take();
        let status = self.run_lines(&mut |prompt: Option<&str>| match (&mut term, prompt) {
            (Some(t), Some(p)) => t.read_line(p),
            (Some(t), None) => t.read_line("> "),
            (None, Some(p)) => {
                let _ = write!(io::stderr(), "{p}");
                read_plain(0)
            }
            (None, None) => read_plain(0),
        });
        self.term = term;
        status
    }

    /// Runs a whole text (a script, `-c`, `source`), a line at a time.
    pub fn run_text(&mut self, text: &str) -> i32 {
        let mut lines = text.lines();
        self.run_lines(&mut |_| match lines.next() {
            Some(l) => Input::Line(l.to_string()),
            None => Input::Eof,
        })
    }

    /// The read-parse-run loop. `read` gets the prompt for a first line (interactive) or
    /// `None` for a continuation line. Lines are joined until they parse completely.
    fn run_lines(&mut self, read: &mut dyn FnMut(Option<&str>) -> Input) -> i32 {
        let mut buf = String::new();
        loop {
            let prompt = if buf.is_empty() && self.interactive {
                self.notify_jobs();
                Some(self.prompt())
            } else {
                None
            };
            let line = match read(prompt.as_deref()) {
                Input::Line(l) => l,
                Input::Cancel => {
                    buf.clear();
                    self.status = 130;
                    continue;
                }
                Input::Eof if buf.is_empty() => return self.status,
                Input::Eof => {
                    match parse(&buf) {
                        Err(e) => error(&e.to_string()),
                        Ok(_) => error("syntax error: unexpected end of input"),
                    }
                    return 2;
                }
            };
            buf.push_str(&line);
            buf.push('\n');
            match parse(&buf) {
                Ok(list) => {
                    buf.clear();
                    self.run_list(&list);
                }
                Err(e) if e.incomplete => {}
                Err(e) => {
                    error(&e.to_string());
                    buf.clear();
                    self.status = 2;
                    if !self.interactive {
                        return 2;
                    }
                }
            }
        }
    }

    fn prompt(&self) -> String {
        match std::env::current_dir() {
            Ok(d) => format!("{} $ ", d.display()),
            Err(_) => "$ ".into(),
        }
    }

    // ---- running the tree ----

    pub fn run_list(&mut self, list: &List) {
        for item in &list.0 {
            if item.background {
                self.run_background(&item.and_or, &item.text);
            } else {
                self.status = self.run_and_or(&item.and_or, &item.text);
            }
        }
    }

    fn run_and_or(&mut self, ao: &AndOr, text: &str) -> i32 {
        let mut status = self.run_pipeline(&ao.first, false, text);
        for (conn, p) in &ao.rest {
            self.status = status;
            let run = match conn {
                Connector::And => status == 0,
                Connector::Or => status != 0,
            };
            if run {
                status = self.run_pipeline(p, false, text);
            }
        }
        status
    }

    /// `a | b &` runs as one job; `a && b &` forks a copy of the shell to run the chain.
    fn run_background(&mut self, ao: &AndOr, text: &str) {
        if ao.rest.is_empty() {
            self.status = self.run_pipeline(&ao.first, true, text);
            return;
        }
        flush();
        // SAFETY: fork; the shell is single-threaded.
        let pid = unsafe { libc::fork() };
        if pid < 0 {
            error(&format!("fork: {}", strerror(&last_error())));
            self.status = 1;
            return;
        }
        if pid == 0 {
            self.child_setup(0, true);
            self.job_control = false;
            self.interactive = false;
            self.in_child = true;
            let status = self.run_and_or(ao, text);
            self.exit(status);
        }
        if self.job_control {
            // SAFETY: the child does the same; whichever runs first wins the race.
            unsafe { libc::setpgid(pid, pid) };
        }
        self.add_job(pid, vec![pid], text, true);
        self.status = 0;
    }

    fn expand(&self, cmd: &Command) -> Simple {
        Simple {
            argv: expand::expand_words(&cmd.words, self),
            assigns: cmd
                .assigns
                .iter()
                .map(|a| (a.name.clone(), expand::expand_string(&a.value, self)))
                .collect(),
            redirs: cmd.redirs.iter().map(|r| (r.fd, r.target.clone(), self.redir_words(r))).collect(),
        }
    }

    fn redir_words(&self, r: &Redir) -> Vec<String> {
        match &r.target {
            Target::Read(w) | Target::Write(w) | Target::Append(w) => expand::expand_word(w, self),
            Target::Dup(_) => Vec::new(),
        }
    }

    fn run_pipeline(&mut self, p: &Pipeline, background: bool, text: &str) -> i32 {
        let cmds: Vec<Simple> = p.0.iter().map(|c| self.expand(c)).collect();
        // A lone builtin (or bare assignment) in the foreground runs in the shell itself.
        if let [cmd] = cmds.as_slice()
            && !background
            && cmd.argv.first().is_none_or(|n| BUILTINS.contains(&n.as_str()))
        {
            return self.run_in_shell(cmd);
        }
        flush();
        let mut pgid = 0;
        let mut pids = Vec::new();
        let mut prev_read: Option<i32> = None;
        for (i, cmd) in cmds.iter().enumerate() {
            let mut pipe = [-1; 2];
            // SAFETY: pipe fills a two-element array.
            if i + 1 < cmds.len() && unsafe { libc::pipe(pipe.as_mut_ptr()) } != 0 {
                error(&format!("pipe: {}", strerror(&last_error())));
                break;
            }
            // SAFETY: fork; the shell is single-threaded.
            let pid = unsafe { libc::fork() };
            if pid == 0 {
                self.child_setup(pgid, background);
                // SAFETY: moves descriptors this child owns onto 0 and 1.
                unsafe {
                    if let Some(r) = prev_read {
                        libc::dup2(r, 0);
                        libc::close(r);
                    }
                    if pipe[1] >= 0 {
                        libc::dup2(pipe[1], 1);
                        libc::close(pipe[1]);
                        libc::close(pipe[0]);
                    }
                }
                self.exec_simple(cmd, background);
            }
            // SAFETY: the parent closes its copies of the pipe ends the children now hold.
            unsafe {
                if let Some(r) = prev_read.take() {
                    libc::close(r);
                }
                if pipe[1] >= 0 {
                    libc::close(pipe[1]);
                    prev_read = Some(pipe[0]);
                }
            }
            if pid < 0 {
                error(&format!("fork: {}", strerror(&last_error())));
                break;
            }
            if pgid == 0 {
                pgid = pid;
            }
            if self.job_control {
                // SAFETY: the child does the same; whichever runs first wins the race.
                unsafe { libc::setpgid(pid, pgid) };
            }
            pids.push(pid);
        }
        if let Some(r) = prev_read {
            // SAFETY: closing our own descriptor after a failed pipeline.
            unsafe { libc::close(r) };
        }
        if pids.is_empty() {
            return 1;
        }
        let id = self.add_job(pgid, pids, text, background);
        if background { 0 } else { self.wait_foreground(id) }
    }

    /// In a new child: its process group, the terminal if foreground, default signals.
    fn child_setup(&mut self, pgid: libc::pid_t, background: bool) {
        self.in_child = true;
        self.jobs.clear();
        // SAFETY: process-group, terminal and signal calls on this new process.
        unsafe {
            if self.job_control {
                libc::setpgid(0, pgid);
                if !background {
                    libc::tcsetpgrp(0, libc::getpgrp());
                }
            }
            if self.interactive {
                set_signals(libc::SIG_DFL, JOB_SIGNALS);
            }
            if background && !self.job_control {
                set_signals(libc::SIG_IGN, &[libc::SIGINT, libc::SIGQUIT]);
            }
            set_signals(libc::SIG_DFL, &[libc::SIGPIPE]);
        }
    }

    /// In a child: redirections, then a builtin or exec. Never returns.
    fn exec_simple(&mut self, cmd: &Simple, background: bool) -> ! {
        if background && !self.job_control && !cmd.redirs.iter().any(|r| r.0 == 0) {
            // As POSIX asks, a background job without job control reads /dev/null.
            let _ = redirect(0, &Target::Read(Default::default()), &["/dev/null".into()]);
        }
        if let Err(e) = apply_redirs(&cmd.redirs) {
            error(&e);
            self.exit(1);
        }
        let Some(name) = cmd.argv.first() else { self.exit(0) };
        if BUILTINS.contains(&name.as_str()) {
            let status = self.builtin(&cmd.argv);
            self.exit(status);
        }
        let mut env: BTreeMap<&str, &str> =
            self.exported.iter().filter_map(|k| Some((k.as_str(), self.vars.get(k)?.as_str()))).collect();
        for (k, v) in &cmd.assigns {
            env.insert(k, v);
        }
        let path = env.get("PATH").copied().unwrap_or(DEFAULT_PATH);
        let (code, msg) = exec_path(&cmd.argv, &env, path);
        error(&msg);
        self.exit(code);
    }

    fn exit(&self, status: i32) -> ! {
        flush();
        if self.in_child {
            // SAFETY: ends this forked child without running the parent's exit handlers.
            unsafe { libc::_exit(status) }
        }
        std::process::exit(status)
    }

    /// A builtin or a command with no words (`X=1`, `> file`), in the shell itself.
    fn run_in_shell(&mut self, cmd: &Simple) -> i32 {
        let saved = match save_and_redirect(&cmd.redirs) {
            Ok(s) => s,
            Err((e, saved)) => {
                error(&e);
                restore_fds(saved);
                return 1;
            }
        };
        let status = if cmd.argv.is_empty() {
            for (k, v) in &cmd.assigns {
                self.set_var(k, v);
            }
            0
        } else {
            self.builtin(&cmd.argv)
        };
        flush();
        restore_fds(saved);
        status
    }

    // ---- jobs ----

    fn add_job(&mut self, pgid: libc::pid_t, pids: Vec<libc::pid_t>, text: &str, background: bool) -> usize {
        let id = self.jobs.iter().map(|j| j.id).max().unwrap_or(0) + 1;
        let procs = pids.iter().map(|&pid| Proc { pid, code: None, stopped: false }).collect();
        if background {
            self.last_bg = pids.last().copied();
            if self.interactive {
                let _ = writeln!(io::stderr(), "[{id}] {}", pids.last().copied().unwrap_or(0));
            }
        }
        self.jobs.push(Job { id, pgid, procs, text: text.to_string() });
        id
    }

    /// Records one wait status for whichever job owns `pid`.
    fn record(&mut self, pid: libc::pid_t, status: i32) {
        for p in self.jobs.iter_mut().flat_map(|j| j.procs.iter_mut()).filter(|p| p.pid == pid) {
            if libc::WIFSTOPPED(status) {
                p.stopped = true;
            } else if libc::WIFCONTINUED(status) {
                p.stopped = false;
            } else {
                p.code = Some(exit_code(status));
                p.stopped = false;
            }
        }
    }

    /// Waits until job `id` ends or stops (recording other children on the way).
    fn wait_for(&mut self, id: usize) {
        loop {
            let Some(job) = self.jobs.iter_mut().find(|j| j.id == id) else { return };
            if job.done() || job.stopped() {
                return;
            }
            let mut status = 0;
            // SAFETY: waits for any child, writing into a local.
            let pid = unsafe { libc::waitpid(-1, &mut status, libc::WUNTRACED) };
            if pid > 0 {
                self.record(pid, status);
            } else if last_error().kind() != io::ErrorKind::Interrupted {
                // No children left: nothing more will be reported for this job.
                for p in job.procs.iter_mut().filter(|p| p.code.is_none()) {
                    p.code = Some(0);
                }
            }
        }
    }

    /// Gives the terminal to job `id`, waits, takes the terminal back; returns the status.
    fn wait_foreground(&mut self, id: usize) -> i32 {
        let Some(pgid) = self.jobs.iter().find(|j| j.id == id).map(|j| j.pgid) else { return 0 };
        if self.job_control {
            // SAFETY: terminal hand-over between process groups of our session.
            unsafe { libc::tcsetpgrp(0, pgid) };
        }
        self.wait_for(id);
        if self.job_control {
            // SAFETY: as above, back to the shell.
            unsafe { libc::tcsetpgrp(0, self.shell_pgid) };
        }
        let Some(i) = self.jobs.iter().position(|j| j.id == id) else { return 0 };
        if self.jobs[i].stopped() {
            let j = &self.jobs[i];
            let _ = writeln!(io::stderr(), "\n[{}]+ Stopped  {}", j.id, j.text);
            return 128 + libc::SIGTSTP;
        }
        let job = self.jobs.remove(i);
        let code = job.code();
        if self.interactive && code == 128 + libc::SIGINT {
            let _ = writeln!(io::stderr());
        }
        code
    }

    /// Collects ended children without blocking.
    fn reap(&mut self) {
        loop {
            let mut status = 0;
            // SAFETY: non-blocking wait into a local.
            let pid = unsafe { libc::waitpid(-1, &mut status, libc::WNOHANG | libc::WUNTRACED) };
            if pid <= 0 {
                return;
            }
            self.record(pid, status);
        }
    }

    /// Before a prompt: report and forget background jobs that ended.
    fn notify_jobs(&mut self) {
        self.reap();
        for j in self.jobs.iter().filter(|j| j.done()) {
            let _ = writeln!(io::stderr(), "[{}]+ {}  {}", j.id, j.state(), j.text);
        }
        self.jobs.retain(|j| !j.done());
    }

    /// `%N`, a pid, or (for `None`) the most recent job.
    fn find_job(&self, spec: Option<&str>) -> Result<usize, String> {
        let found = match spec {
            None => self.jobs.last(),
            Some(s) => match s.strip_prefix('%') {
                Some(n) => n.parse().ok().and_then(|n: usize| self.jobs.iter().find(|j| j.id == n)),
                None => {
                    s.parse().ok().and_then(|p| self.jobs.iter().find(|j| j.procs.iter().any(|x| x.pid == p)))
                }
            },
        };
        match (found, spec) {
            (Some(j), _) => Ok(j.id),
            (None, None) => Err("no current job".into()),
            (None, Some(s)) => Err(format!("{s}: no such job")),
        }
    }

    /// Sends SIGCONT to job `id` and marks it running.
    fn continue_job(&mut self, id: usize) {
        let jc = self.job_control;
        let Some(job) = self.jobs.iter_mut().find(|j| j.id == id) else { return };
        // SAFETY: signals our own child processes.
        unsafe {
            if jc {
                libc::kill(-job.pgid, libc::SIGCONT);
            } else {
                for p in &job.procs {
                    libc::kill(p.pid, libc::SIGCONT);
                }
            }
        }
        for p in &mut job.procs {
            p.stopped = false;
        }
    }

    // ---- builtins ----

    fn builtin(&mut self, argv: &[String]) -> i32 {
        let args: Vec<&str> = argv.iter().skip(1).map(String::as_str).collect();
        let name = argv.first().map(String::as_str).unwrap_or("");
        let result = match name {
            "cd" => self.cd(&args),
            "pwd" => std::env::current_dir()
                .map_err(|e| format!("pwd: {}", strerror(&e)))
                .and_then(|d| out(&format!("{}\n", d.display()))),
            "exit" => {
                let code = match args.first() {
                    None => self.status,
                    Some(a) => match a.parse::<i32>() {
                        Ok(n) => n & 0xff,
                        Err(_) => {
                            error(&format!("exit: {a}: numeric argument required"));
                            2
                        }
                    },
                };
                self.exit(code)
            }
            "export" => self.export(&args),
            "unset" => {
                for a in &args {
                    self.vars.remove(*a);
                    self.exported.remove(*a);
                }
                Ok(())
            }
            "source" | "." => return self.source(&args),
            "wait" => return self.wait_builtin(&args),
            "jobs" => {
                self.reap();
                let mut text = String::new();
                for j in &self.jobs {
                    text.push_str(&format!("[{}]+ {}  {}\n", j.id, j.state(), j.text));
                }
                self.jobs.retain(|j| !j.done());
                out(&text)
            }
            "fg" | "bg" => return self.fg_bg(name == "fg", args.first().copied()),
            _ => Err(format!("{name}: not a builtin")),
        };
        match result {
            Ok(()) => 0,
            Err(msg) => {
                error(&msg);
                1
            }
        }
    }

    fn cd(&mut self, args: &[&str]) -> Result<(), String> {
        let dir = match args.first() {
            None => self.vars.get("HOME").cloned().ok_or("cd: HOME not set")?,
            Some(&"-") => {
                let old = self.vars.get("OLDPWD").cloned().ok_or("cd: OLDPWD not set")?;
                out(&format!("{old}\n"))?;
                old
            }
            Some(d) => d.to_string(),
        };
        std::env::set_current_dir(&dir).map_err(|e| format!("cd: {dir}: {}", strerror(&e)))?;
        let old = self.vars.get("PWD").cloned().unwrap_or_default();
        self.set_var("OLDPWD", &old);
        let new = std::env::current_dir().map(|d| d.display().to_string()).unwrap_or(dir);
        self.set_var("PWD", &new);
        Ok(())
    }

    fn export(&mut self, args: &[&str]) -> Result<(), String> {
        if args.is_empty() {
            let mut text = String::new();
            for k in &self.exported {
                if let Some(v) = self.vars.get(k) {
                    text.push_str(&format!(
                        "export {k}=\"{}\"\n",
                        v.replace('\\', "\\\\").replace('"', "\\\"")
                    ));
                }
            }
            return out(&text);
        }
        let mut bad = None;
        for a in args {
            let (name, value) = match a.split_once('=') {
                Some((n, v)) => (n, Some(v)),
                None => (*a, None),
            };
            if !is_name(name) {
                bad = Some(format!("export: `{a}': not a valid identifier"));
                continue;
            }
            if let Some(v) = value {
                self.set_var(name, v);
            }
            self.exported.insert(name.to_string());
        }
        bad.map_or(Ok(()), Err)
    }

    fn source(&mut self, args: &[&str]) -> i32 {
        let Some(file) = args.first() else {
            error("source: a file name is required");
            return 2;
        };
        let text = match std::fs::read(file) {
            Ok(b) => String::from_utf8_lossy(&b).into_owned(),
            Err(e) => {
                error(&format!("source: {file}: {}", strerror(&e)));
                return 1;
            }
        };
        let saved = (args.len() > 1)
            .then(|| std::mem::replace(&mut self.args, args[1..].iter().map(|s| s.to_string()).collect()));
        let interactive = std::mem::replace(&mut self.interactive, false);
        let status = self.run_text(&text);
        self.interactive = interactive;
        if let Some(a) = saved {
            self.args = a;
        }
        status
    }

    fn wait_builtin(&mut self, args: &[&str]) -> i32 {
        if args.is_empty() {
            let ids: Vec<usize> = self.jobs.iter().filter(|j| !j.stopped()).map(|j| j.id).collect();
            for id in ids {
                self.wait_for(id);
            }
            self.jobs.retain(|j| !j.done());
            return 0;
        }
        let mut status = 0;
        for a in args {
            match self.find_job(Some(a)) {
                Ok(id) => {
                    self.wait_for(id);
                    if let Some(i) = self.jobs.iter().position(|j| j.id == id && j.done()) {
                        status = self.jobs.remove(i).code();
                    }
                }
                Err(e) => {
                    error(&format!("wait: {e}"));
                    status = 127;
                }
            }
        }
        status
    }

    /// `fg`: continue a job in the foreground and wait for it; `bg`: continue it in the background.
    fn fg_bg(&mut self, fg: bool, spec: Option<&str>) -> i32 {
        let which = if fg { "fg" } else { "bg" };
        let id = match self.find_job(spec) {
            Ok(id) => id,
            Err(e) => {
                error(&format!("{which}: {e}"));
                return 1;
            }
        };
        let text = self.jobs.iter().find(|j| j.id == id).map(|j| j.text.clone()).unwrap_or_default();
        if !fg {
            self.continue_job(id);
            return if out(&format!("[{id}]+ {text} &\n")).is_ok() { 0 } else { 1 };
        }
        let _ = out(&format!("{text}\n"));
        // wait_foreground hands over the terminal; the job must own it before it wakes.
        if self.job_control {
            let pgid = self.jobs.iter().find(|j| j.id == id).map_or(0, |j| j.pgid);
            // SAFETY: hands the terminal to our own job.
            unsafe { libc::tcsetpgrp(0, pgid) };
        }
        self.continue_job(id);
        self.wait_foreground(id)
    }
}

/// Writes builtin output to stdout.
fn out(s: &str) -> Result<(), String> {
    let mut o = io::stdout();
    o.write_all(s.as_bytes()).and_then(|_| o.flush()).map_err(|e| format!("write error: {}", strerror(&e)))
}

/// Opens and installs each redirection in order.
fn apply_redirs(redirs: &[(u32, Target, Vec<String>)]) -> Result<(), String> {
    for (fd, target, words) in redirs {
        redirect(*fd as i32, target, words)?;
    }
    Ok(())
}

fn redirect(fd: i32, target: &Target, words: &[String]) -> Result<(), String> {
    let src = if let Target::Dup(n) = target {
        *n as i32
    } else {
        let [path] = words else { return Err("ambiguous redirect".into()) };
        let mut o = std::fs::OpenOptions::new();
        match target {
            Target::Read(_) => o.read(true),
            Target::Write(_) => o.write(true).create(true).truncate(true),
            _ => o.append(true).create(true),
        };
        o.open(path).map_err(|e| format!("{path}: {}", strerror(&e)))?.into_raw_fd()
    };
    if src == fd {
        // SAFETY: clears close-on-exec on a descriptor we hold (a new file landed on `fd`).
        unsafe { libc::fcntl(fd, libc::F_SETFD, 0) };
        return Ok(());
    }
    // SAFETY: duplicates onto the target descriptor.
    if unsafe { libc::dup2(src, fd) } < 0 {
        return Err(format!("{src}: {}", strerror(&last_error())));
    }
    if !matches!(target, Target::Dup(_)) {
        // SAFETY: closes the file we just opened; `fd` holds the copy.
        unsafe { libc::close(src) };
    }
    Ok(())
}

/// For a builtin in the shell: saves each redirected descriptor, then redirects.
type Saved = Vec<(i32, i32)>;

fn save_and_redirect(redirs: &[(u32, Target, Vec<String>)]) -> Result<Saved, (String, Saved)> {
    let _ = io::stdout().flush();
    let mut saved = Vec::new();
    for (fd, target, words) in redirs {
        let fd = *fd as i32;
        // SAFETY: duplicates the descriptor (or fails with -1 if it was closed).
        let copy = unsafe { libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, 10) };
        saved.push((fd, copy));
        if let Err(e) = redirect(fd, target, words) {
            return Err((e, saved));
        }
    }
    Ok(saved)
}

fn restore_fds(saved: Saved) {
    for (fd, copy) in saved.into_iter().rev() {
        // SAFETY: puts back descriptors saved by save_and_redirect.
        unsafe {
            if copy >= 0 {
                libc::dup2(copy, fd);
                libc::close(copy);
            } else {
                libc::close(fd);
            }
        }
    }
}

/// Execs `argv[0]`, searching `path` when it has no `/`. Returns only on failure, with the
/// exit status and the message to show.
fn exec_path(argv: &[String], env: &BTreeMap<&str, &str>, path: &str) -> (i32, String) {
    let name = argv.first().map(String::as_str).unwrap_or("");
    let Ok(c_argv) = argv.iter().map(|a| CString::new(a.as_bytes())).collect::<Result<Vec<_>, _>>() else {
        return (126, format!("{name}: argument contains a NUL byte"));
    };
    let c_env: Vec<CString> = env.iter().filter_map(|(k, v)| CString::new(format!("{k}={v}")).ok()).collect();
    let mut argv_p: Vec<*const libc::c_char> = c_argv.iter().map(|c| c.as_ptr()).collect();
    argv_p.push(std::ptr::null());
    let mut env_p: Vec<*const libc::c_char> = c_env.iter().map(|c| c.as_ptr()).collect();
    env_p.push(std::ptr::null());
    let try_exec = |file: &str| -> io::Error {
        if let Ok(f) = CString::new(file) {
            // SAFETY: NUL-terminated arrays of pointers to live CStrings.
            unsafe { libc::execve(f.as_ptr(), argv_p.as_ptr(), env_p.as_ptr()) };
        }
        last_error()
    };
    if name.contains('/') {
        let e = try_exec(name);
        let code = if e.kind() == io::ErrorKind::NotFound { 127 } else { 126 };
        return (code, format!("{name}: {}", strerror(&e)));
    }
    let mut denied = None;
    if !name.is_empty() {
        for dir in path.split(':') {
            let dir = if dir.is_empty() { "." } else { dir };
            let e = try_exec(&format!("{dir}/{name}"));
            match e.raw_os_error() {
                Some(libc::ENOENT | libc::ENOTDIR) => {}
                _ => denied = denied.or(Some(e)),
            }
        }
    }
    match denied {
        Some(e) => (126, format!("{name}: {}", strerror(&e))),
        None => (127, format!("{name}: command not found")),
    }
}

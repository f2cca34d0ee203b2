//! Runs the built `sh` on the host with `-c`, scripts and piped stdin; no terminal needed.
//! Uses ordinary host tools (tr, env, cat, sleep, kill) as the commands it runs.

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

struct Out {
    stdout: String,
    stderr: String,
    code: i32,
}

fn sh(args: &[&str], stdin: &str) -> Out {
    let mut child = Command::new(env!("CARGO_BIN_EXE_sh"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn sh");
    child.stdin.take().expect("stdin").write_all(stdin.as_bytes()).expect("write stdin");
    let o = child.wait_with_output().expect("wait sh");
    Out {
        stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
        code: o.status.code().unwrap_or(-1),
    }
}

fn c(cmd: &str) -> Out {
    sh(&["-c", cmd], "")
}

/// stdout of `sh -c cmd`, which must succeed with nothing on stderr.
fn ok(cmd: &str) -> String {
    let o = c(cmd);
    assert_eq!((o.code, o.stderr.as_str()), (0, ""), "{cmd}");
    o.stdout
}

/// A fresh directory for one test.
fn tmp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("machina-sh-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).expect("mkdir");
    d
}

#[test]
fn pipelines() {
    assert_eq!(ok("echo a b | tr a-z A-Z"), "A B\n");
    assert_eq!(ok("printf 'b\\na\\nc\\n' | sort | tr -d '\\n'; echo"), "abc\n");
    // The status of a pipeline is its last command's.
    assert_eq!(ok("false | true; echo $?; true | false; echo $?"), "0\n1\n");
    // Builtins run in a pipeline too.
    assert_eq!(ok("cd / && pwd | tr / R"), "R\n");
}

#[test]
fn redirections() {
    let d = tmp("redir");
    let d = d.display();
    let out = ok(&format!(
        "cd {d}; echo one > f; echo two >> f; tr a-z A-Z < f; \
         ls /does-not-exist 2> err; echo $?; \
         ls /does-not-exist > both 2>&1; \
         pwd > p; > empty; echo done"
    ));
    assert_eq!(out, "ONE\nTWO\n2\ndone\n");
    let read = |f: &str| std::fs::read_to_string(format!("{d}/{f}")).expect("read");
    assert_eq!(read("f"), "one\ntwo\n");
    assert!(read("err").contains("does-not-exist"));
    assert!(read("both").contains("does-not-exist"));
    assert_eq!(read("p"), format!("{d}\n"));
    assert_eq!(read("empty"), "");
    // A builtin's redirection does not stick to the shell.
    assert_eq!(ok(&format!("pwd > {d}/q; echo after")), "after\n");
    // 2>&1 after a pipe sends errors down the pipe.
    assert_eq!(ok("ls /does-not-exist 2>&1 | grep -c does-not-exist"), "1\n");
    let o = c("echo x > /no/such/dir/f; echo $?");
    assert_eq!(
        (o.stdout.as_str(), o.stderr.as_str()),
        ("1\n", "sh: /no/such/dir/f: No such file or directory\n")
    );
    let o = c("cat < /no/such/file; echo $?");
    assert_eq!(o.stdout, "1\n");
    assert_eq!(o.stderr, "sh: /no/such/file: No such file or directory\n");
}

#[test]
fn and_or_and_status() {
    assert_eq!(ok("true && echo a; false && echo b; false || echo c; true || echo d"), "a\nc\n");
    assert_eq!(ok("false || false || echo x && echo y"), "x\ny\n");
    assert_eq!(ok("false; echo $?; true; echo $?"), "1\n0\n");
    assert_eq!(ok("false || echo $?"), "1\n");
    assert_eq!(c("exit 7").code, 7);
    assert_eq!(c("false").code, 1);
    assert_eq!(c("echo x; exit; echo y").stdout, "x\n");
}

#[test]
fn signalled_job_is_128_plus_signal() {
    assert_eq!(ok("sleep 5 & kill -9 $!; wait $!; echo $?"), "137\n");
}

#[test]
fn quotes_and_variables() {
    assert_eq!(ok(r#"X='a  b'; echo 'q  $X' "d  $X" \$X a\ b"#), "q  $X d  a  b $X a b\n");
    assert_eq!(ok(r#"X='1  2'; printf '[%s]' $X "$X" "" ${X}x; echo"#), "[1][2][1  2][][1][2x]\n");
    assert_eq!(ok("echo \"it's\" 'say \"hi\"'"), "it's say \"hi\"\n");
    assert_eq!(ok("echo $UNSET_VAR_XYZ. a#b # comment"), ". a#b\n");
    let o = sh(&["-c", "echo $$"], "");
    assert!(o.stdout.trim().parse::<u32>().is_ok(), "$$ is a pid: {}", o.stdout);
}

#[test]
fn cd_and_pwd() {
    let d = tmp("cd");
    std::fs::create_dir_all(d.join("sub")).expect("mkdir");
    let d = d.display();
    assert_eq!(ok(&format!("cd {d}/sub; pwd; cd ..; pwd; cd -")), format!("{d}/sub\n{d}\n{d}/sub\n"));
    assert_eq!(ok("HOME=/; cd; pwd; echo $PWD"), "/\n/\n");
    let o = c("cd /no/such/dir; echo $?");
    assert_eq!(o.stdout, "1\n");
    assert_eq!(o.stderr, "sh: cd: /no/such/dir: No such file or directory\n");
}

#[test]
fn export_and_unset_reach_children() {
    assert_eq!(ok("export SH_T1=one; env | grep '^SH_T1='"), "SH_T1=one\n");
    assert_eq!(
        ok("SH_T2=two; env | grep -c '^SH_T2='; export SH_T2; env | grep '^SH_T2='"),
        "0\nSH_T2=two\n"
    );
    assert_eq!(ok("export SH_T3=x; unset SH_T3; env | grep -c '^SH_T3='; echo \"[$SH_T3]\""), "0\n[]\n");
    // A prefix assignment is for that command only.
    assert_eq!(ok("SH_T4=four env | grep '^SH_T4='; echo \"[$SH_T4]\""), "SH_T4=four\n[]\n");
    let o = c("export 1bad=x");
    assert_eq!((o.code, o.stderr.as_str()), (1, "sh: export: `1bad=x': not a valid identifier\n"));
}

#[test]
fn source_runs_in_this_shell() {
    let d = tmp("source");
    let f = d.join("lib.sh");
    std::fs::write(&f, "LIBVAR=from_lib\ncd /\nlibfn_args=\"$#:$1\"\n").expect("write");
    let f = f.display();
    assert_eq!(ok(&format!("source {f}; echo $LIBVAR; pwd; echo $libfn_args")), "from_lib\n/\n0:\n");
    assert_eq!(ok(&format!(". {f} a b; echo $libfn_args")), "2:a\n");
    let o = c("source /no/such.sh; echo $?");
    assert_eq!(o.stdout, "1\n");
    assert_eq!(o.stderr, "sh: source: /no/such.sh: No such file or directory\n");
}

#[test]
fn background_and_wait() {
    let start = Instant::now();
    assert_eq!(ok("sleep 0.3 & echo started; wait; echo waited"), "started\nwaited\n");
    assert!(start.elapsed() >= Duration::from_millis(300));
    let d = tmp("bg");
    let d = d.display();
    assert_eq!(ok(&format!("sleep 0.1 && echo late > {d}/x & wait; cat {d}/x")), "late\n");
}

#[test]
fn background_and_or_and_jobs() {
    let d = tmp("jobs");
    let d = d.display();
    let out = ok(&format!("sleep 0.2 && echo chained > {d}/y & jobs; wait %1; echo $?; cat {d}/y"));
    assert_eq!(out, format!("[1]+ Running  sleep 0.2 && echo chained > {d}/y\n0\nchained\n"));
    let o = c("fg");
    assert_eq!((o.code, o.stderr.as_str()), (1, "sh: fg: no current job\n"));
    assert_eq!(ok("sleep 0.1 & fg"), "sleep 0.1\n");
}

#[test]
fn command_not_found() {
    let o = c("no_such_command_xyz arg; echo status $?");
    assert_eq!(o.stdout, "status 127\n");
    assert_eq!(o.stderr, "sh: no_such_command_xyz: command not found\n");
    assert_eq!(c("no_such_command_xyz").code, 127);
    let o = c("/etc/passwd");
    assert_eq!((o.code, o.stderr.as_str()), (126, "sh: /etc/passwd: Permission denied\n"));
    let o = c("./no/such/prog");
    assert_eq!((o.code, o.stderr.as_str()), (127, "sh: ./no/such/prog: No such file or directory\n"));
}

#[test]
fn script_file_with_arguments() {
    let d = tmp("script");
    let f = d.join("s.sh");
    std::fs::write(&f, "# a script\necho \"$# [$1] [$2]\"\nfor_each() { :; }\necho never\n").expect("write");
    // A syntax error stops a script with status 2 after the lines before it ran.
    let o = sh(&[&f.display().to_string(), "a b", "c"], "");
    assert_eq!(o.stdout, "2 [a b] [c]\n");
    assert_eq!(o.code, 2);
    assert!(o.stderr.starts_with("sh: syntax error:"), "{}", o.stderr);

    let g = d.join("t.sh");
    std::fs::write(&g, "echo \"$0\" \"$@\"\necho a &&\n  echo b\necho 'two\nlines'\nexit 5\necho no\n")
        .expect("write");
    let o = sh(&[&g.display().to_string(), "x", "y z"], "");
    assert_eq!(o.stdout, format!("{} x y z\na\nb\ntwo\nlines\n", g.display()));
    assert_eq!(o.code, 5);
    let o = sh(&["/no/such/script.sh"], "");
    assert_eq!((o.code, o.stderr.as_str()), (127, "sh: /no/such/script.sh: No such file or directory\n"));
}

#[test]
fn syntax_errors_are_clear() {
    let o = c("echo >");
    assert_eq!(
        (o.code, o.stderr.as_str()),
        (2, "sh: syntax error: expected a file name after `>', found newline\n")
    );
    let o = c("echo 'abc");
    assert_eq!((o.code, o.stderr.as_str()), (2, "sh: syntax error: unterminated single quote\n"));
    let o = c("ls | | wc");
    assert_eq!((o.code, o.stderr.as_str()), (2, "sh: syntax error: unexpected `|'\n"));
    let o = c("echo a &&");
    assert_eq!((o.code, o.stderr.as_str()), (2, "sh: syntax error: expected a command after `&&'\n"));
}

#[test]
fn reads_commands_from_stdin() {
    // Lines are read one at a time, so `cat` gets the rest of stdin.
    let o = sh(&[], "echo first\ncat\nfor cat\n");
    assert_eq!((o.stdout.as_str(), o.code), ("first\nfor cat\n", 0));
    // A background job without job control reads /dev/null, not the script.
    let o = sh(&[], "cat &\nwait\necho end\n");
    assert_eq!(o.stdout, "end\n");
    // No prompt without a terminal unless -i.
    let o = sh(&["-i"], "cd /\necho x\n");
    assert_eq!(o.stdout, "x\n");
    let cwd = std::env::current_dir().expect("cwd");
    assert_eq!(o.stderr, format!("{} $ / $ / $ ", cwd.display()));
}

#[test]
fn options() {
    let o = sh(&["--help"], "");
    assert_eq!(o.code, 0);
    assert!(o.stdout.starts_with("usage: sh"));
    let o = sh(&["-z"], "");
    assert_eq!((o.code, o.stderr.as_str()), (2, "sh: -z: unknown option (try --help)\n"));
    assert_eq!(sh(&["-c", "echo $0 $1", "name", "one"], "").stdout, "name one\n");
}

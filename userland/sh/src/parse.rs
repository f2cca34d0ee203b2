//! Parser: tokens to the command tree the executor runs.
//!
//! Grammar (a small subset of POSIX sh):
//!   list     = and_or { (';' | '&' | newline) [and_or] }
//!   and_or   = pipeline { ('&&' | '||') {newline} pipeline }
//!   pipeline = command { '|' {newline} command }
//!   command  = { NAME=value } { word | redirection }      (at least one item)
//!
//! Pure: it never expands words or touches the system, and never panics on any input;
//! every problem is a `SyntaxError` with a message a user can act on.

use crate::lex::{Op, RedirOp, SyntaxError, Tok, Token, Word, is_name, lex};

/// What a line (or a whole script) is: and-or lists, each in the foreground or background.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct List(pub Vec<Item>);

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Item {
    pub and_or: AndOr,
    /// Ended with `&`.
    pub background: bool,
    /// The source text, shown by `jobs`.
    pub text: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AndOr {
    pub first: Pipeline,
    pub rest: Vec<(Connector, Pipeline)>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Connector {
    /// `&&`: run the next pipeline if the last one succeeded.
    And,
    /// `||`: run the next pipeline if the last one failed.
    Or,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pipeline(pub Vec<Command>);

/// A simple command: assignments, words and redirections in source order.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Command {
    pub assigns: Vec<Assign>,
    pub words: Vec<Word>,
    pub redirs: Vec<Redir>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Assign {
    pub name: String,
    pub value: Word,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Redir {
    /// The descriptor redirected: 0 for `<`, 1 for `>`, or the number written before it.
    pub fd: u32,
    pub target: Target,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// `< file`
    Read(Word),
    /// `> file`
    Write(Word),
    /// `>> file`
    Append(Word),
    /// `>&N` or `<&N`: make `fd` a copy of descriptor N.
    Dup(u32),
}

/// Parses `input` (one or more lines).
pub fn parse(input: &str) -> Result<List, SyntaxError> {
    let toks = lex(input)?;
    let mut p = Parser { input, toks: &toks, i: 0 };
    p.list()
}

struct Parser<'a> {
    input: &'a str,
    toks: &'a [Token],
    i: usize,
}

/// How a token is named in an error message.
fn describe(t: Option<&Tok>) -> String {
    match t {
        None => "end of input".into(),
        Some(Tok::Op(Op::Newline)) => "newline".into(),
        Some(Tok::Op(op)) => format!("`{op}'"),
        Some(Tok::Redir { op, .. }) => format!("`{op}'"),
        Some(Tok::Word(_)) => "a word".into(),
    }
}

impl Parser<'_> {
    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.i).map(|t| &t.tok)
    }

    fn at_op(&self, op: Op) -> bool {
        self.peek() == Some(&Tok::Op(op))
    }

    fn skip_newlines(&mut self) {
        while self.at_op(Op::Newline) {
            self.i += 1;
        }
    }

    fn list(&mut self) -> Result<List, SyntaxError> {
        let mut items = Vec::new();
        loop {
            self.skip_newlines();
            let Some(first) = self.toks.get(self.i) else { break };
            let start = first.start;
            let and_or = self.and_or()?;
            let end = self.toks[self.i - 1].end;
            let background = match self.peek() {
                None => false,
                Some(Tok::Op(Op::Amp)) => true,
                Some(Tok::Op(Op::Semi | Op::Newline)) => false,
                t => return Err(SyntaxError::new(format!("unexpected {}", describe(t)))),
            };
            if self.peek().is_some() {
                self.i += 1;
            }
            let text = self.input[start..end].to_string();
            items.push(Item { and_or, background, text });
        }
        Ok(List(items))
    }

    fn and_or(&mut self) -> Result<AndOr, SyntaxError> {
        let first = self.pipeline()?;
        let mut rest = Vec::new();
        loop {
            let conn = match self.peek() {
                Some(Tok::Op(Op::AndIf)) => Connector::And,
                Some(Tok::Op(Op::OrIf)) => Connector::Or,
                _ => break,
            };
            self.i += 1;
            self.skip_newlines();
            self.expect_more(if conn == Connector::And { "&&" } else { "||" })?;
            rest.push((conn, self.pipeline()?));
        }
        Ok(AndOr { first, rest })
    }

    fn pipeline(&mut self) -> Result<Pipeline, SyntaxError> {
        let mut cmds = vec![self.command()?];
        while self.at_op(Op::Pipe) {
            self.i += 1;
            self.skip_newlines();
            self.expect_more("|")?;
            cmds.push(self.command()?);
        }
        Ok(Pipeline(cmds))
    }

    /// After an operator that needs a command: end of input means "type more".
    fn expect_more(&self, after: &str) -> Result<(), SyntaxError> {
        if self.peek().is_none() {
            return Err(SyntaxError::incomplete(format!("expected a command after `{after}'")));
        }
        Ok(())
    }

    fn command(&mut self) -> Result<Command, SyntaxError> {
        let mut cmd = Command::default();
        loop {
            match self.peek() {
                Some(Tok::Word(w)) => {
                    let w = w.clone();
                    self.i += 1;
                    match assignment(&w) {
                        Some(a) if cmd.words.is_empty() => cmd.assigns.push(a),
                        _ => cmd.words.push(w),
                    }
                }
                Some(&Tok::Redir { fd, op }) => {
                    self.i += 1;
                    cmd.redirs.push(self.redirection(fd, op)?);
                }
                _ => break,
            }
        }
        if cmd.assigns.is_empty() && cmd.words.is_empty() && cmd.redirs.is_empty() {
            return Err(SyntaxError::new(format!("unexpected {}", describe(self.peek()))));
        }
        Ok(cmd)
    }

    fn redirection(&mut self, fd: Option<u32>, op: RedirOp) -> Result<Redir, SyntaxError> {
        let Some(Tok::Word(w)) = self.peek() else {
            let what = if matches!(op, RedirOp::DupIn | RedirOp::DupOut) {
                "a file descriptor number"
            } else {
                "a file name"
            };
            return Err(SyntaxError::new(format!(
                "expected {what} after `{op}', found {}",
                describe(self.peek())
            )));
        };
        let w = w.clone();
        self.i += 1;
        let default_fd = if matches!(op, RedirOp::In | RedirOp::DupIn) { 0 } else { 1 };
        let target = match op {
            RedirOp::In => Target::Read(w),
            RedirOp::Out => Target::Write(w),
            RedirOp::Append => Target::Append(w),
            RedirOp::DupOut | RedirOp::DupIn => match fd_number(&w) {
                Some(n) => Target::Dup(n),
                None => {
                    return Err(SyntaxError::new(format!("expected a file descriptor number after `{op}'")));
                }
            },
        };
        Ok(Redir { fd: fd.unwrap_or(default_fd), target })
    }
}

/// `NAME=value` with an unquoted NAME: the assignment it is.
fn assignment(w: &Word) -> Option<Assign> {
    use crate::lex::Part;
    let (Part::Lit { text, quoted: false }, rest) = w.0.split_first()? else { return None };
    let (name, value) = text.split_once('=')?;
    if !is_name(name) {
        return None;
    }
    let mut parts = Vec::new();
    if !value.is_empty() {
        parts.push(Part::Lit { text: value.to_string(), quoted: false });
    }
    parts.extend(rest.iter().cloned());
    Some(Assign { name: name.to_string(), value: Word(parts) })
}

/// A word that is only unquoted digits: a descriptor number.
fn fd_number(w: &Word) -> Option<u32> {
    match w.0.as_slice() {
        [crate::lex::Part::Lit { text, quoted: false }] if text.bytes().all(|b| b.is_ascii_digit()) => {
            text.parse().ok()
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lex::Part;

    fn w(s: &str) -> Word {
        Word(vec![Part::Lit { text: s.into(), quoted: false }])
    }

    fn cmd(words: &[&str]) -> Command {
        Command { words: words.iter().map(|s| w(s)).collect(), ..Command::default() }
    }

    fn one(input: &str) -> AndOr {
        let list = parse(input).expect("parses");
        assert_eq!(list.0.len(), 1, "one item in {input:?}");
        list.0.into_iter().next().map(|i| i.and_or).expect("item")
    }

    fn simple(input: &str) -> Command {
        let ao = one(input);
        assert!(ao.rest.is_empty());
        assert_eq!(ao.first.0.len(), 1);
        ao.first.0.into_iter().next().expect("command")
    }

    fn err(input: &str) -> SyntaxError {
        parse(input).expect_err("should fail")
    }

    #[test]
    fn empty_inputs() {
        assert_eq!(parse("").expect("parses"), List(vec![]));
        assert_eq!(parse("\n\n  # comment\n").expect("parses"), List(vec![]));
    }

    #[test]
    fn simple_command() {
        assert_eq!(simple("ls -l /tmp"), cmd(&["ls", "-l", "/tmp"]));
    }

    #[test]
    fn pipeline() {
        let ao = one("a 1 | b | c 3");
        assert_eq!(ao.first, Pipeline(vec![cmd(&["a", "1"]), cmd(&["b"]), cmd(&["c", "3"])]));
    }

    #[test]
    fn and_or_chain() {
        let ao = one("a && b || c");
        assert_eq!(ao.first, Pipeline(vec![cmd(&["a"])]));
        assert_eq!(
            ao.rest,
            vec![(Connector::And, Pipeline(vec![cmd(&["b"])])), (Connector::Or, Pipeline(vec![cmd(&["c"])])),]
        );
    }

    #[test]
    fn operators_continue_over_newlines() {
        let ao = one("a &&\n\n b |\n c");
        assert_eq!(ao.rest.len(), 1);
        assert_eq!(ao.rest[0].1.0.len(), 2);
    }

    #[test]
    fn lists_and_background() {
        let list = parse("a; b & c\nd &").expect("parses");
        let bg: Vec<bool> = list.0.iter().map(|i| i.background).collect();
        assert_eq!(bg, vec![false, true, false, true]);
        let texts: Vec<&str> = list.0.iter().map(|i| i.text.as_str()).collect();
        assert_eq!(texts, vec!["a", "b", "c", "d"]);
        assert_eq!(parse("a;").expect("parses").0.len(), 1);
    }

    #[test]
    fn item_text_is_the_source() {
        let list = parse("sleep 1 | cat  &&  echo 'x y' &").expect("parses");
        assert_eq!(list.0[0].text, "sleep 1 | cat  &&  echo 'x y'");
    }

    #[test]
    fn redirections() {
        let c = simple("sort < in > out 2> err");
        assert_eq!(c.words, vec![w("sort")]);
        assert_eq!(
            c.redirs,
            vec![
                Redir { fd: 0, target: Target::Read(w("in")) },
                Redir { fd: 1, target: Target::Write(w("out")) },
                Redir { fd: 2, target: Target::Write(w("err")) },
            ]
        );
        let c = simple("cmd >> log 2>&1");
        assert_eq!(
            c.redirs,
            vec![Redir { fd: 1, target: Target::Append(w("log")) }, Redir { fd: 2, target: Target::Dup(1) },]
        );
        let c = simple("cat <&3 >&2");
        assert_eq!(
            c.redirs,
            vec![Redir { fd: 0, target: Target::Dup(3) }, Redir { fd: 1, target: Target::Dup(2) }]
        );
        // Redirections may come anywhere, even first, or alone.
        let c = simple("> f echo hi");
        assert_eq!(c.words, vec![w("echo"), w("hi")]);
        assert_eq!(c.redirs.len(), 1);
        assert_eq!(simple("> f").words, vec![]);
    }

    #[test]
    fn assignments() {
        let c = simple("A=1 B= C=x=y cmd D=2");
        assert_eq!(
            c.assigns,
            vec![
                Assign { name: "A".into(), value: w("1") },
                Assign { name: "B".into(), value: Word(vec![]) },
                Assign { name: "C".into(), value: w("x=y") },
            ]
        );
        assert_eq!(c.words, vec![w("cmd"), w("D=2")]);
        let c = simple("X=\"a b\"$Y");
        assert_eq!(
            c.assigns[0].value.0,
            vec![
                Part::Lit { text: "a b".into(), quoted: true },
                Part::Param { name: "Y".into(), quoted: false },
            ]
        );
        // Not assignments: quoted name, bad name, no name.
        assert_eq!(simple("'A'=1").assigns, vec![]);
        assert_eq!(simple("1A=1").assigns, vec![]);
        assert_eq!(simple("=1").assigns, vec![]);
    }

    #[test]
    fn missing_redirection_target() {
        assert_eq!(
            err("echo >").to_string(),
            "syntax error: expected a file name after `>', found end of input"
        );
        assert_eq!(err("echo > | x").msg, "expected a file name after `>', found `|'");
        assert_eq!(err("cat <\n").msg, "expected a file name after `<', found newline");
        assert_eq!(err("x 2>>").msg, "expected a file name after `>>', found end of input");
        assert_eq!(err("x 2>&").msg, "expected a file descriptor number after `>&', found end of input");
        assert_eq!(err("x 2>&y").msg, "expected a file descriptor number after `>&'");
        assert!(!err("echo >").incomplete);
    }

    #[test]
    fn misplaced_operators() {
        assert_eq!(err("| a").msg, "unexpected `|'");
        assert_eq!(err("a | | b").msg, "unexpected `|'");
        assert_eq!(err("&& a").msg, "unexpected `&&'");
        assert_eq!(err("a ;; b").msg, "unexpected `;'");
        assert_eq!(err("; a").msg, "unexpected `;'");
        assert_eq!(err("a & & b").msg, "unexpected `&'");
        assert_eq!(err("a && ; b").msg, "unexpected `;'");
        assert!(!err("a ;; b").incomplete);
    }

    #[test]
    fn incomplete_input_asks_for_more() {
        for s in ["a |", "a &&", "a ||", "a |\n", "echo 'x", "echo \"x", "echo x\\"] {
            assert!(err(s).incomplete, "{s:?} should be incomplete");
        }
        assert_eq!(err("a &&").msg, "expected a command after `&&'");
        // ... and the next line completes it.
        assert_eq!(
            one("echo 'a\nb'").first.0[0].words[1].0,
            vec![Part::Lit { text: "a\nb".into(), quoted: true }]
        );
    }

    #[test]
    fn lexer_errors_come_through() {
        assert_eq!(err("echo ${x").msg, "missing } after ${");
    }
}

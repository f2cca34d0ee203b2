//! Lexer: shell text to tokens (words that remember their quoting, operators, redirections).
//!
//! Pure: it never looks at variables, files or processes. Expansion comes later (expand.rs),
//! so a word keeps `$NAME` as a `Part::Param` and remembers which text was quoted.
//! It must never panic on any input; every problem is a `SyntaxError`.

use std::fmt;

/// One piece of a word.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Part {
    /// Literal text. `quoted` if it came from quotes or a backslash.
    Lit { text: String, quoted: bool },
    /// `$NAME`, `${NAME}`, `$?`, `$$`, `$!`, `$#`, `$@`, `$*`, `$0`..`$9`.
    Param { name: String, quoted: bool },
    /// An unquoted `~` alone or before `/` at the start of a word: `$HOME`.
    Tilde,
}

/// A word before expansion.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Word(pub Vec<Part>);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Pipe,
    AndIf,
    OrIf,
    Semi,
    Amp,
    Newline,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RedirOp {
    /// `<`
    In,
    /// `>`
    Out,
    /// `>>`
    Append,
    /// `>&` (duplicate an output descriptor, as in `2>&1`)
    DupOut,
    /// `<&`
    DupIn,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Tok {
    Word(Word),
    Op(Op),
    /// A redirection operator with its optional descriptor number (`2>`).
    Redir {
        fd: Option<u32>,
        op: RedirOp,
    },
}

/// A token and where it sits in the input (byte offsets), for job texts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Token {
    pub tok: Tok,
    pub start: usize,
    pub end: usize,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyntaxError {
    pub msg: String,
    /// The input ended too early (open quote, trailing `|`...): more lines may complete it.
    pub incomplete: bool,
}

impl SyntaxError {
    pub fn new(msg: impl Into<String>) -> Self {
        SyntaxError { msg: msg.into(), incomplete: false }
    }
    pub fn incomplete(msg: impl Into<String>) -> Self {
        SyntaxError { msg: msg.into(), incomplete: true }
    }
}

impl fmt::Display for SyntaxError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "syntax error: {}", self.msg)
    }
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = match self {
            Op::Pipe => "|",
            Op::AndIf => "&&",
            Op::OrIf => "||",
            Op::Semi => ";",
            Op::Amp => "&",
            Op::Newline => "newline",
        };
        f.write_str(s)
    }
}

impl fmt::Display for RedirOp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = match self {
            RedirOp::In => "<",
            RedirOp::Out => ">",
            RedirOp::Append => ">>",
            RedirOp::DupOut => ">&",
            RedirOp::DupIn => "<&",
        };
        f.write_str(s)
    }
}

/// Characters that end an unquoted word.
fn is_meta(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\n' | '|' | '&' | ';' | '<' | '>' | '(' | ')')
}

pub fn is_name_start(c: char) -> bool {
    c == '_' || c.is_ascii_alphabetic()
}

pub fn is_name_char(c: char) -> bool {
    c == '_' || c.is_ascii_alphanumeric()
}

/// A valid variable name: `[A-Za-z_][A-Za-z0-9_]*`.
pub fn is_name(s: &str) -> bool {
    let mut cs = s.chars();
    matches!(cs.next(), Some(c) if is_name_start(c)) && cs.all(is_name_char)
}

/// Splits `input` into tokens.
pub fn lex(input: &str) -> Result<Vec<Token>, SyntaxError> {
    let mut lx = Lexer { s: input, pos: 0, toks: Vec::new() };
    lx.run()?;
    Ok(lx.toks)
}

struct Lexer<'a> {
    s: &'a str,
    pos: usize,
    toks: Vec<Token>,
}

impl Lexer<'_> {
    fn peek(&self) -> Option<char> {
        self.s[self.pos..].chars().next()
    }

    fn peek2(&self) -> Option<char> {
        self.s[self.pos..].chars().nth(1)
    }

    fn bump(&mut self) -> Option<char> {
        let c = self.peek()?;
        self.pos += c.len_utf8();
        Some(c)
    }

    fn push(&mut self, tok: Tok, start: usize) {
        self.toks.push(Token { tok, start, end: self.pos });
    }

    fn run(&mut self) -> Result<(), SyntaxError> {
        while let Some(c) = self.peek() {
            let start = self.pos;
            match c {
                ' ' | '\t' => {
                    self.bump();
                }
                '#' => {
                    while self.peek().is_some_and(|c| c != '\n') {
                        self.bump();
                    }
                }
                '\\' if self.peek2() == Some('\n') => {
                    self.pos += 2; // line continuation between words
                }
                '\n' => {
                    self.bump();
                    self.push(Tok::Op(Op::Newline), start);
                }
                ';' => {
                    self.bump();
                    self.push(Tok::Op(Op::Semi), start);
                }
                '|' | '&' => {
                    self.bump();
                    let op = match (c, self.peek()) {
                        ('|', Some('|')) => Op::OrIf,
                        ('&', Some('&')) => Op::AndIf,
                        ('|', _) => Op::Pipe,
                        _ => Op::Amp,
                    };
                    if matches!(op, Op::OrIf | Op::AndIf) {
                        self.bump();
                    }
                    self.push(Tok::Op(op), start);
                }
                '<' | '>' => self.redir(None, start),
                '(' | ')' => return Err(SyntaxError::new(format!("`{c}' is not supported (no subshells)"))),
                _ => {
                    // `2>`: a run of digits directly before `<` or `>` is a descriptor number.
                    let digits: String =
                        self.s[self.pos..].chars().take_while(char::is_ascii_digit).collect();
                    let after = self.s[self.pos + digits.len()..].chars().next();
                    if !digits.is_empty() && matches!(after, Some('<' | '>')) {
                        let fd =
                            digits.parse::<u32>().map_err(|_| SyntaxError::new("bad file descriptor"))?;
                        self.pos += digits.len();
                        self.redir(Some(fd), start);
                    } else {
                        self.word(start)?;
                    }
                }
            }
        }
        Ok(())
    }

    fn redir(&mut self, fd: Option<u32>, start: usize) {
        let first = self.bump();
        let op = match (first, self.peek()) {
            (Some('>'), Some('>')) => RedirOp::Append,
            (Some('>'), Some('&')) => RedirOp::DupOut,
            (Some('<'), Some('&')) => RedirOp::DupIn,
            (Some('>'), _) => RedirOp::Out,
            _ => RedirOp::In,
        };
        if !matches!(op, RedirOp::In | RedirOp::Out) {
            self.bump();
        }
        self.push(Tok::Redir { fd, op }, start);
    }

    fn word(&mut self, start: usize) -> Result<(), SyntaxError> {
        let mut parts = Vec::new();
        while let Some(c) = self.peek() {
            if is_meta(c) {
                break;
            }
            self.bump();
            match c {
                '\\' => match self.bump() {
                    None => return Err(SyntaxError::incomplete("unexpected end of input after \\")),
                    Some('\n') => {}
                    Some(c) => push_lit(&mut parts, c, true),
                },
                '\'' => {
                    let mut text = String::new();
                    loop {
                        match self.bump() {
                            None => return Err(SyntaxError::incomplete("unterminated single quote")),
                            Some('\'') => break,
                            Some(c) => text.push(c),
                        }
                    }
                    parts.push(Part::Lit { text, quoted: true });
                }
                '"' => self.double_quoted(&mut parts)?,
                '$' => self.param(&mut parts, false)?,
                '~' if parts.is_empty() && self.peek().is_none_or(|c| c == '/' || is_meta(c)) => {
                    parts.push(Part::Tilde)
                }
                c => push_lit(&mut parts, c, false),
            }
        }
        self.push(Tok::Word(Word(merge(parts))), start);
        Ok(())
    }

    /// After the opening `"`: text up to the closing `"`, with `$` and a few backslash escapes.
    fn double_quoted(&mut self, parts: &mut Vec<Part>) -> Result<(), SyntaxError> {
        let before = parts.len();
        loop {
            match self.bump() {
                None => return Err(SyntaxError::incomplete("unterminated double quote")),
                Some('"') => break,
                Some('\\') => match self.peek() {
                    Some('\n') => {
                        self.bump();
                    }
                    Some(c @ ('$' | '"' | '\\' | '`')) => {
                        self.bump();
                        push_lit(parts, c, true);
                    }
                    _ => push_lit(parts, '\\', true),
                },
                Some('$') => self.param(parts, true)?,
                Some(c) => push_lit(parts, c, true),
            }
        }
        if parts.len() == before {
            // `""` is an empty word, not nothing.
            parts.push(Part::Lit { text: String::new(), quoted: true });
        }
        Ok(())
    }

    /// After a `$`: a parameter name, or a literal `$` if none follows.
    fn param(&mut self, parts: &mut Vec<Part>, quoted: bool) -> Result<(), SyntaxError> {
        let name = match self.peek() {
            Some('{') => {
                self.bump();
                let mut name = String::new();
                loop {
                    match self.bump() {
                        None | Some('\n') => return Err(SyntaxError::new("missing } after ${")),
                        Some('}') => break,
                        Some(c) => name.push(c),
                    }
                }
                let digits = !name.is_empty() && name.chars().all(|c| c.is_ascii_digit());
                if !(is_name(&name) || is_special(&name) || digits) {
                    return Err(SyntaxError::new(format!("bad substitution: ${{{name}}}")));
                }
                name
            }
            Some(c) if is_special(c.encode_utf8(&mut [0; 4])) => {
                self.bump();
                c.to_string()
            }
            Some(c) if is_name_start(c) => {
                let mut name = String::new();
                while let Some(c) = self.peek().filter(|&c| is_name_char(c)) {
                    self.bump();
                    name.push(c);
                }
                name
            }
            _ => {
                push_lit(parts, '$', quoted);
                return Ok(());
            }
        };
        parts.push(Part::Param { name, quoted });
        Ok(())
    }
}

/// Names of the special parameters a single character long.
fn is_special(s: &str) -> bool {
    matches!(s, "?" | "$" | "!" | "#" | "@" | "*") || (s.len() == 1 && s.as_bytes()[0].is_ascii_digit())
}

fn push_lit(parts: &mut Vec<Part>, c: char, quoted: bool) {
    parts.push(Part::Lit { text: c.to_string(), quoted });
}

/// Joins neighbouring literals of the same quoting, keeping `""` as its own part.
fn merge(parts: Vec<Part>) -> Vec<Part> {
    let mut out: Vec<Part> = Vec::new();
    for p in parts {
        if let (Some(Part::Lit { text, quoted }), Part::Lit { text: t, quoted: q }) = (out.last_mut(), &p)
            && *quoted == *q
            && !t.is_empty()
            && !text.is_empty()
        {
            text.push_str(t);
            continue;
        }
        out.push(p);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn toks(s: &str) -> Vec<Tok> {
        lex(s).expect("lexes").into_iter().map(|t| t.tok).collect()
    }

    fn lit(s: &str, quoted: bool) -> Part {
        Part::Lit { text: s.into(), quoted }
    }

    fn word(parts: Vec<Part>) -> Tok {
        Tok::Word(Word(parts))
    }

    fn err(s: &str) -> SyntaxError {
        lex(s).expect_err("should fail")
    }

    #[test]
    fn plain_words() {
        assert_eq!(
            toks("  echo  hello\tworld "),
            vec![
                word(vec![lit("echo", false)]),
                word(vec![lit("hello", false)]),
                word(vec![lit("world", false)]),
            ]
        );
        assert_eq!(toks(""), vec![]);
        assert_eq!(toks("   \t "), vec![]);
    }

    #[test]
    fn operators() {
        assert_eq!(
            toks("a|b||c&&d&e;f\n"),
            vec![
                word(vec![lit("a", false)]),
                Tok::Op(Op::Pipe),
                word(vec![lit("b", false)]),
                Tok::Op(Op::OrIf),
                word(vec![lit("c", false)]),
                Tok::Op(Op::AndIf),
                word(vec![lit("d", false)]),
                Tok::Op(Op::Amp),
                word(vec![lit("e", false)]),
                Tok::Op(Op::Semi),
                word(vec![lit("f", false)]),
                Tok::Op(Op::Newline),
            ]
        );
    }

    #[test]
    fn redirections() {
        let r = |fd, op| Tok::Redir { fd, op };
        assert_eq!(
            toks("<a >b >>c 2>d 2>&1 1<&0"),
            vec![
                r(None, RedirOp::In),
                word(vec![lit("a", false)]),
                r(None, RedirOp::Out),
                word(vec![lit("b", false)]),
                r(None, RedirOp::Append),
                word(vec![lit("c", false)]),
                r(Some(2), RedirOp::Out),
                word(vec![lit("d", false)]),
                r(Some(2), RedirOp::DupOut),
                word(vec![lit("1", false)]),
                r(Some(1), RedirOp::DupIn),
                word(vec![lit("0", false)]),
            ]
        );
        // Digits not directly before `>` are an ordinary word.
        assert_eq!(
            toks("echo 2 >x"),
            vec![
                word(vec![lit("echo", false)]),
                word(vec![lit("2", false)]),
                r(None, RedirOp::Out),
                word(vec![lit("x", false)]),
            ]
        );
        // ... and so is a word that merely starts with digits.
        assert_eq!(toks("a2>x")[0], word(vec![lit("a2", false)]));
    }

    #[test]
    fn single_quotes_keep_everything() {
        assert_eq!(toks(r#"'a $b "c" \d'"#), vec![word(vec![lit(r#"a $b "c" \d"#, true)])]);
        assert_eq!(toks("''"), vec![word(vec![lit("", true)])]);
        assert_eq!(toks("'a|b;c'"), vec![word(vec![lit("a|b;c", true)])]);
    }

    #[test]
    fn double_quotes_expand_params() {
        assert_eq!(
            toks(r#""x $HOME y""#),
            vec![word(vec![
                lit("x ", true),
                Part::Param { name: "HOME".into(), quoted: true },
                lit(" y", true),
            ])]
        );
        assert_eq!(toks(r#""a\$b\"c\\d\e""#), vec![word(vec![lit(r#"a$b"c\d\e"#, true)])]);
        assert_eq!(toks(r#""""#), vec![word(vec![lit("", true)])]);
        assert_eq!(toks(r#""it's""#), vec![word(vec![lit("it's", true)])]);
    }

    #[test]
    fn backslash_and_mixed_quoting() {
        assert_eq!(
            toks(r"a\ b\|c"),
            vec![word(vec![
                lit("a", false),
                lit(" ", true),
                lit("b", false),
                lit("|", true),
                lit("c", false)
            ])]
        );
        assert_eq!(toks(r"\$A\\"), vec![word(vec![lit("$", true), lit("A", false), lit("\\", true)])]);
        assert_eq!(toks(r#"pre'mid'"post""#), vec![word(vec![lit("pre", false), lit("midpost", true)])]);
        // Backslash-newline joins lines, inside and between words.
        assert_eq!(
            toks("ec\\\nho a \\\n b"),
            vec![word(vec![lit("echo", false)]), word(vec![lit("a", false)]), word(vec![lit("b", false)]),]
        );
    }

    #[test]
    fn parameters() {
        let p = |n: &str| Part::Param { name: n.into(), quoted: false };
        assert_eq!(
            toks("$A$b_1 ${C}x $? $$ $! $# $@ $* $0 $12"),
            vec![
                word(vec![p("A"), p("b_1")]),
                word(vec![p("C"), lit("x", false)]),
                word(vec![p("?")]),
                word(vec![p("$")]),
                word(vec![p("!")]),
                word(vec![p("#")]),
                word(vec![p("@")]),
                word(vec![p("*")]),
                word(vec![p("0")]),
                word(vec![p("1"), lit("2", false)]),
            ]
        );
        // A `$` with no name after it is literal.
        assert_eq!(
            toks("$ a$ $/"),
            vec![word(vec![lit("$", false)]), word(vec![lit("a$", false)]), word(vec![lit("$/", false)]),]
        );
        assert_eq!(toks("'$A'"), vec![word(vec![lit("$A", true)])]);
    }

    #[test]
    fn tilde_only_at_word_start() {
        assert_eq!(
            toks("~ ~/x a~ '~' ~b"),
            vec![
                word(vec![Part::Tilde]),
                word(vec![Part::Tilde, lit("/x", false)]),
                word(vec![lit("a~", false)]),
                word(vec![lit("~", true)]),
                word(vec![lit("~b", false)]),
            ]
        );
    }

    #[test]
    fn comments() {
        assert_eq!(
            toks("echo a # not b\nc"),
            vec![
                word(vec![lit("echo", false)]),
                word(vec![lit("a", false)]),
                Tok::Op(Op::Newline),
                word(vec![lit("c", false)]),
            ]
        );
        assert_eq!(toks("a#b")[0], word(vec![lit("a#b", false)]));
    }

    #[test]
    fn positions() {
        let t = lex("ab  | cd").expect("lexes");
        assert_eq!((t[0].start, t[0].end), (0, 2));
        assert_eq!((t[1].start, t[1].end), (4, 5));
        assert_eq!((t[2].start, t[2].end), (6, 8));
    }

    #[test]
    fn unicode_is_fine() {
        assert_eq!(
            toks("écho 'ü' \"ß\""),
            vec![word(vec![lit("écho", false)]), word(vec![lit("ü", true)]), word(vec![lit("ß", true)]),]
        );
    }

    #[test]
    fn errors() {
        let e = err("echo 'abc");
        assert!(e.incomplete);
        assert_eq!(e.to_string(), "syntax error: unterminated single quote");
        let e = err("echo \"abc");
        assert!(e.incomplete);
        assert_eq!(e.msg, "unterminated double quote");
        assert!(err("echo abc\\").incomplete);
        let e = err("echo ${A");
        assert!(!e.incomplete);
        assert_eq!(e.msg, "missing } after ${");
        assert_eq!(err("echo ${A-b}").msg, "bad substitution: ${A-b}");
        assert_eq!(err("echo ${}").msg, "bad substitution: ${}");
        assert_eq!(err("99999999999>x").msg, "bad file descriptor");
        assert_eq!(err("(cd /; ls)").msg, "`(' is not supported (no subshells)");
        assert_eq!(err("echo a)").msg, "`)' is not supported (no subshells)");
        assert_eq!(toks("echo '(a)' \\(")[1], word(vec![lit("(a)", true)]));
    }

    #[test]
    fn names() {
        assert!(is_name("A_1"));
        assert!(is_name("_"));
        assert!(!is_name("1A"));
        assert!(!is_name(""));
        assert!(!is_name("a-b"));
    }
}

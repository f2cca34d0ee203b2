//! Expansion: words from the parser to the argument strings a command receives.
//!
//! Does `~`, `$NAME`, `${NAME}`, `$?`, `$$`, `$!`, `$#`, `$0`..`$9`, `$@`, `$*`, removes quotes,
//! and splits the result of an unquoted expansion on blanks (so `$FLAGS` may give several
//! arguments, `"$FLAGS"` always one). No globbing, no command substitution.
//! Pure: values come from a `Lookup`; it never reads the environment or runs anything.

use crate::lex::{Part, Word};

/// Where expansion finds values.
pub trait Lookup {
    /// A variable or special parameter (`?`, `$`, `!`, `#`, `0`..`9`); `None` if unset.
    fn get(&self, name: &str) -> Option<String>;
    /// The positional parameters `$1`, `$2`..., for `$@` and `$*`.
    fn positional(&self) -> Vec<String>;
}

/// Expands a word into zero or more fields.
pub fn expand_word(word: &Word, env: &dyn Lookup) -> Vec<String> {
    let mut f = Fields::default();
    for part in &word.0 {
        match part {
            Part::Lit { text, .. } => f.push(text),
            Part::Tilde => f.push(&env.get("HOME").unwrap_or_else(|| "~".into())),
            Part::Param { name, quoted: true } if name == "@" => {
                // "$@": one field per parameter, glued to the text around it.
                let args = env.positional();
                for (i, a) in args.iter().enumerate() {
                    if i > 0 {
                        f.end();
                    }
                    f.push(a);
                }
            }
            Part::Param { name, quoted } => {
                let value = param(name, env);
                if *quoted {
                    f.push(&value);
                } else {
                    f.push_split(&value);
                }
            }
        }
    }
    f.finish()
}

/// Expands a list of words (the arguments of a command).
pub fn expand_words(words: &[Word], env: &dyn Lookup) -> Vec<String> {
    words.iter().flat_map(|w| expand_word(w, env)).collect()
}

/// Expands a word into exactly one string, without splitting (the value of `NAME=value`).
pub fn expand_string(word: &Word, env: &dyn Lookup) -> String {
    let mut s = String::new();
    for part in &word.0 {
        match part {
            Part::Lit { text, .. } => s.push_str(text),
            Part::Tilde => s.push_str(&env.get("HOME").unwrap_or_else(|| "~".into())),
            Part::Param { name, .. } => s.push_str(&param(name, env)),
        }
    }
    s
}

fn param(name: &str, env: &dyn Lookup) -> String {
    match name {
        "@" | "*" => env.positional().join(" "),
        _ => env.get(name).unwrap_or_default(),
    }
}

/// Fields being built. A field exists once anything (even `""`) was pushed into it.
#[derive(Default)]
struct Fields {
    done: Vec<String>,
    cur: String,
    started: bool,
}

impl Fields {
    fn push(&mut self, s: &str) {
        self.cur.push_str(s);
        self.started = true;
    }

    /// An unquoted expansion: blanks separate fields and vanish.
    fn push_split(&mut self, s: &str) {
        let blank = |c: char| matches!(c, ' ' | '\t' | '\n');
        if s.starts_with(blank) {
            self.end();
        }
        let mut words = s.split(blank).filter(|w| !w.is_empty()).peekable();
        while let Some(w) = words.next() {
            self.push(w);
            if words.peek().is_some() {
                self.end();
            }
        }
        if s.ends_with(blank) {
            self.end();
        }
    }

    fn end(&mut self) {
        if self.started {
            self.done.push(std::mem::take(&mut self.cur));
            self.started = false;
        }
    }

    fn finish(mut self) -> Vec<String> {
        self.end();
        self.done
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lex::Tok;
    use std::collections::HashMap;

    struct Env {
        vars: HashMap<&'static str, &'static str>,
        args: Vec<String>,
    }

    impl Lookup for Env {
        fn get(&self, name: &str) -> Option<String> {
            self.vars.get(name).map(|s| s.to_string())
        }
        fn positional(&self) -> Vec<String> {
            self.args.clone()
        }
    }

    fn env() -> Env {
        let vars = HashMap::from([
            ("HOME", "/home/u"),
            ("A", "apple"),
            ("SP", "  two  words "),
            ("EMPTY", ""),
            ("?", "1"),
            ("$", "42"),
            ("#", "2"),
            ("0", "sh"),
            ("1", "x y"),
        ]);
        Env { vars, args: vec!["x y".into(), "z".into()] }
    }

    /// Lexes `line` and expands every word in it.
    fn ex(line: &str) -> Vec<String> {
        let words: Vec<Word> = crate::lex::lex(line)
            .expect("lexes")
            .into_iter()
            .filter_map(|t| if let Tok::Word(w) = t.tok { Some(w) } else { None })
            .collect();
        expand_words(&words, &env())
    }

    #[test]
    fn literals_and_quotes() {
        assert_eq!(ex(r#"a 'b c' "d e" f\ g"#), ["a", "b c", "d e", "f g"]);
        assert_eq!(ex(r#"'' "" x"#), ["", "", "x"]);
        assert_eq!(ex(r#"a'b'"c"d"#), ["abcd"]);
    }

    #[test]
    fn variables() {
        assert_eq!(ex("$A ${A}s pre$A"), ["apple", "apples", "preapple"]);
        assert_eq!(ex("\"$A pie\""), ["apple pie"]);
        assert_eq!(ex("'$A'"), ["$A"]);
        assert_eq!(ex("\\$A"), ["$A"]);
    }

    #[test]
    fn unset_and_empty() {
        assert_eq!(ex("$NOPE"), Vec::<String>::new());
        assert_eq!(ex("a $EMPTY b"), ["a", "b"]);
        assert_eq!(ex("\"$NOPE\""), [""]);
        assert_eq!(ex("x$NOPE"), ["x"]);
    }

    #[test]
    fn specials() {
        assert_eq!(ex("$? $$ $# $0 \"$1\""), ["1", "42", "2", "sh", "x y"]);
        assert_eq!(ex("$!"), Vec::<String>::new());
    }

    #[test]
    fn splitting_of_unquoted_values() {
        assert_eq!(ex("$SP"), ["two", "words"]);
        assert_eq!(ex("\"$SP\""), ["  two  words "]);
        assert_eq!(ex("a${SP}b"), ["a", "two", "words", "b"]);
        assert_eq!(ex("a$A$SP"), ["aapple", "two", "words"]);
    }

    #[test]
    fn positional_lists() {
        assert_eq!(ex("\"$@\""), ["x y", "z"]);
        assert_eq!(ex("\"<$@>\""), ["<x y", "z>"]);
        assert_eq!(ex("$@"), ["x", "y", "z"]);
        assert_eq!(ex("\"$*\""), ["x y z"]);
        let none = Env { vars: HashMap::new(), args: vec![] };
        let w = crate::lex::lex("\"$@\"").expect("lexes");
        let Tok::Word(word) = &w[0].tok else { panic!("a word") };
        assert_eq!(expand_word(word, &none), Vec::<String>::new());
    }

    #[test]
    fn tilde() {
        assert_eq!(ex("~ ~/bin '~' a~"), ["/home/u", "/home/u/bin", "~", "a~"]);
    }

    #[test]
    fn strings_do_not_split() {
        let w = crate::lex::lex("$SP-\"$A\"~").expect("lexes");
        let Tok::Word(word) = &w[0].tok else { panic!("a word") };
        assert_eq!(expand_string(word, &env()), "  two  words -apple~");
    }
}

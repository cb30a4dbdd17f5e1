//! A minimal Rust lexer: identifiers, `::` and single punctuation, each with its line; comments,
//! strings, chars and lifetimes dropped.

pub(crate) struct Tok {
    pub(crate) text: String,
    pub(crate) line: usize,
}

pub(crate) fn is_ident(s: &str) -> bool {
    s.chars()
        .next()
        .is_some_and(|c| c.is_alphabetic() || c == '_')
}

pub(crate) fn is_ident_char(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

/// The index of the bracket closing the one at `open` (or `end` if none).
pub(crate) fn matching(t: &[Tok], open: usize, end: usize) -> usize {
    let (o, c) = match t[open].text.as_str() {
        "(" => ("(", ")"),
        "[" => ("[", "]"),
        _ => ("{", "}"),
    };
    let mut depth = 0;
    for (j, tok) in t.iter().enumerate().take(end).skip(open) {
        if tok.text == o {
            depth += 1;
        } else if tok.text == c {
            depth -= 1;
            if depth == 0 {
                return j;
            }
        }
    }
    end
}

pub(crate) fn lex(src: &str) -> Vec<Tok> {
    let c: Vec<char> = src.chars().collect();
    let n = c.len();
    let at = |i: usize| c.get(i).copied().unwrap_or('\0');
    let mut tokens = Vec::new();
    let mut line = 1;
    let mut i = 0;
    while i < n {
        let ch = c[i];
        if ch == '\n' {
            line += 1;
            i += 1;
        } else if ch.is_whitespace() {
            i += 1;
        } else if ch == '/' && at(i + 1) == '/' {
            while i < n && c[i] != '\n' {
                i += 1;
            }
        } else if ch == '/' && at(i + 1) == '*' {
            let mut depth = 0;
            while i < n {
                if c[i] == '/' && at(i + 1) == '*' {
                    depth += 1;
                    i += 2;
                } else if c[i] == '*' && at(i + 1) == '/' {
                    depth -= 1;
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    if c[i] == '\n' {
                        line += 1;
                    }
                    i += 1;
                }
            }
        } else if let Some(start) = raw_string_start(&c, i) {
            // r"…", r#"…"#, br"…", cr"…"
            let mut j = start;
            let mut hashes = 0;
            while at(j) == '#' {
                hashes += 1;
                j += 1;
            }
            j += 1; // the opening quote
            loop {
                if j >= n {
                    break;
                }
                if c[j] == '"' && (1..=hashes).all(|k| at(j + k) == '#') {
                    j += 1 + hashes;
                    break;
                }
                if c[j] == '\n' {
                    line += 1;
                }
                j += 1;
            }
            i = j;
        } else if ch == 'r' && at(i + 1) == '#' && (at(i + 2).is_alphabetic() || at(i + 2) == '_') {
            // A raw identifier.
            i += 2;
        } else if ch == '"' || ((ch == 'b' || ch == 'c') && at(i + 1) == '"') {
            i += if ch == '"' { 1 } else { 2 };
            while i < n && c[i] != '"' {
                if c[i] == '\\' {
                    if at(i + 1) == '\n' {
                        line += 1;
                    }
                    i += 2;
                } else {
                    if c[i] == '\n' {
                        line += 1;
                    }
                    i += 1;
                }
            }
            i += 1;
        } else if ch == '\'' || (ch == 'b' && at(i + 1) == '\'') {
            let q = if ch == '\'' { i } else { i + 1 };
            if at(q + 1) == '\\' {
                // '\n', '\'', '\u{…}'
                let mut j = q + 3;
                while j < n && c[j] != '\'' {
                    j += 1;
                }
                i = j + 1;
            } else if at(q + 2) == '\'' {
                i = q + 3;
            } else {
                // A lifetime or label: drop it.
                let mut j = q + 1;
                while j < n && is_ident_char(c[j]) {
                    j += 1;
                }
                i = j;
            }
        } else if is_ident_char(ch) {
            let start = i;
            while i < n && is_ident_char(c[i]) {
                i += 1;
            }
            tokens.push(Tok {
                text: c[start..i].iter().collect(),
                line,
            });
        } else if ch == ':' && at(i + 1) == ':' {
            tokens.push(Tok {
                text: "::".to_owned(),
                line,
            });
            i += 2;
        } else {
            tokens.push(Tok {
                text: ch.to_string(),
                line,
            });
            i += 1;
        }
    }
    tokens
}

/// If a raw string starts at `i`, the index just after its `r` prefix.
pub(crate) fn raw_string_start(c: &[char], i: usize) -> Option<usize> {
    let at = |k: usize| c.get(k).copied().unwrap_or('\0');
    let after_r = match (at(i), at(i + 1)) {
        ('r', _) if i == 0 || !is_ident_char(at(i - 1)) => i + 1,
        ('b' | 'c', 'r') if i == 0 || !is_ident_char(at(i - 1)) => i + 2,
        _ => return None,
    };
    let mut j = after_r;
    while at(j) == '#' {
        j += 1;
    }
    (at(j) == '"').then_some(after_r)
}

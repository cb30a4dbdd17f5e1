//! A minimal TOML reader: enough for Cargo.toml files (tables, dotted keys, inline tables and
//! arrays over several lines, comments).

/// One `key = value` of a TOML file: the table it is in and its dotted key, each split into
/// unquoted parts, and the raw value text (comments removed, lines joined).
pub(crate) struct Entry {
    pub(crate) table: Vec<String>,
    pub(crate) key: Vec<String>,
    pub(crate) value: String,
}

pub(crate) fn toml_entries(text: &str) -> Vec<Entry> {
    let mut entries = Vec::new();
    let mut table = Vec::new();
    let mut statement = String::new();
    let mut depth = 0i32;
    for line in text.lines() {
        let line = strip_toml_comment(line);
        for c in quoted_aware(&line) {
            match c {
                Some('[' | '{') => depth += 1,
                Some(']' | '}') => depth -= 1,
                _ => {}
            }
        }
        statement.push_str(&line);
        statement.push('\n');
        if depth > 0 {
            continue;
        }
        depth = 0;
        let s = std::mem::take(&mut statement);
        let s = s.trim();
        if s.is_empty() {
            continue;
        }
        if let Some(header) = s.strip_prefix('[') {
            let header = header.trim_start_matches('[');
            let header = header.trim_end().trim_end_matches(']');
            table = split_dotted(header);
        } else if let Some(eq) = find_unquoted(s, '=') {
            entries.push(Entry {
                table: table.clone(),
                key: split_dotted(&s[..eq]),
                value: s[eq + 1..].trim().to_owned(),
            });
        }
    }
    entries
}

/// For each char of `s`: `Some(c)` outside quotes, `None` inside a `"…"` or `'…'` string.
pub(crate) fn quoted_aware(s: &str) -> Vec<Option<char>> {
    let mut out = Vec::new();
    let mut quote: Option<char> = None;
    let mut escaped = false;
    for c in s.chars() {
        match quote {
            Some(q) => {
                if escaped {
                    escaped = false;
                } else if c == '\\' && q == '"' {
                    escaped = true;
                } else if c == q {
                    quote = None;
                }
                out.push(None);
            }
            None => {
                if c == '"' || c == '\'' {
                    quote = Some(c);
                    out.push(None);
                } else {
                    out.push(Some(c));
                }
            }
        }
    }
    out
}

pub(crate) fn strip_toml_comment(line: &str) -> String {
    let marks = quoted_aware(line);
    line.chars()
        .zip(marks)
        .take_while(|(_, m)| *m != Some('#'))
        .map(|(c, _)| c)
        .collect()
}

/// Byte index of the first `c` outside quotes.
pub(crate) fn find_unquoted(s: &str, c: char) -> Option<usize> {
    s.char_indices()
        .zip(quoted_aware(s))
        .find(|(_, m)| *m == Some(c))
        .map(|((i, _), _)| i)
}

/// `a.'b.c'."d"` → `[a, b.c, d]`.
pub(crate) fn split_dotted(s: &str) -> Vec<String> {
    let mut parts = Vec::new();
    let mut part = String::new();
    for (c, m) in s.chars().zip(quoted_aware(s)) {
        if m == Some('.') {
            parts.push(unquote(&part));
            part.clear();
        } else {
            part.push(c);
        }
    }
    parts.push(unquote(&part));
    parts
}

pub(crate) fn unquote(s: &str) -> String {
    let s = s.trim();
    for q in ['"', '\''] {
        if let Some(inner) = s.strip_prefix(q).and_then(|s| s.strip_suffix(q)) {
            return inner.to_owned();
        }
    }
    s.to_owned()
}

/// The strings of a `["a", "b"]` value.
pub(crate) fn string_array(value: &str) -> Vec<String> {
    let inner = value.trim().trim_start_matches('[').trim_end_matches(']');
    inner
        .split(',')
        .map(unquote)
        .filter(|s| !s.is_empty())
        .collect()
}

/// The `field = "x"` of an inline table `{ …, field = "x", … }`.
pub(crate) fn inline_field(value: &str, field: &str) -> Option<String> {
    inline_table(value)
        .into_iter()
        .find(|(k, _)| k == field)
        .map(|(_, v)| unquote(&v))
}

/// Whether an inline table has `field = true`.
pub(crate) fn inline_flag(value: &str, field: &str) -> bool {
    inline_field(value, field).is_some_and(|v| v == "true")
}

/// The top-level `key = value` pairs of an inline table.
pub(crate) fn inline_table(value: &str) -> Vec<(String, String)> {
    let value = value.trim();
    let Some(inner) = value.strip_prefix('{').and_then(|v| v.strip_suffix('}')) else {
        return Vec::new();
    };
    let mut pairs = Vec::new();
    let mut depth = 0;
    let mut start = 0;
    let marks = quoted_aware(inner);
    let mut items = Vec::new();
    for ((i, _), m) in inner.char_indices().zip(marks) {
        match m {
            Some('[' | '{') => depth += 1,
            Some(']' | '}') => depth -= 1,
            Some(',') if depth == 0 => {
                items.push(&inner[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    items.push(&inner[start..]);
    for item in items {
        if let Some(eq) = find_unquoted(item, '=') {
            pairs.push((unquote(&item[..eq]), item[eq + 1..].trim().to_owned()));
        }
    }
    pairs
}

#[test]
fn toml_reader_reads_target_tables_inline_tables_and_dotted_keys() {
    let entries = toml_entries(
        "[package]\nname = \"x\" # the name\n\
         [target.'cfg(not(target_arch = \"wasm32\"))'.dev-dependencies]\n\
         y.workspace = true\n\
         z = { path = \"../z\", features = [\n    \"a\", # a comment ]\n] }\n\
         [dependencies.w]\npackage = \"real_w\"\n[[bin]]\npath = \"src/main.rs\"\n",
    );
    let seen: Vec<(Vec<String>, Vec<String>)> = entries
        .iter()
        .map(|e| (e.table.clone(), e.key.clone()))
        .collect();
    let target = vec![
        "target".to_owned(),
        "cfg(not(target_arch = \"wasm32\"))".to_owned(),
        "dev-dependencies".to_owned(),
    ];
    assert_eq!(
        seen,
        vec![
            (vec!["package".to_owned()], vec!["name".to_owned()]),
            (target.clone(), vec!["y".to_owned(), "workspace".to_owned()]),
            (target.clone(), vec!["z".to_owned()]),
            (
                vec!["dependencies".to_owned(), "w".to_owned()],
                vec!["package".to_owned()]
            ),
            (vec!["bin".to_owned()], vec!["path".to_owned()]),
        ]
    );
    assert_eq!(unquote(&entries[0].value), "x");
    assert_eq!(
        inline_field(&entries[2].value, "path").as_deref(),
        Some("../z")
    );
}

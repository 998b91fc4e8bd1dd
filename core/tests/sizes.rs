//! Size limits of the core's sources (issue #14): no file in `core/src`
//! over 500 lines, and no function outside test code over 60 lines. A
//! newcomer reads one concern per file and one decision per function.

use std::path::Path;

/// Most lines in one source file of `core/src`.
const MAX_FILE_LINES: usize = 500;
/// Most lines in one function (signature to closing brace), test code aside.
const MAX_FN_LINES: usize = 60;

/// Each line's code with comments, string and char literals blanked out,
/// so braces in them are not counted.
fn code_lines(source: &str) -> Vec<String> {
    let chars: Vec<char> = source.chars().collect();
    let mut out = String::with_capacity(source.len());
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let next = chars.get(i + 1).copied();
        if c == '/' && next == Some('/') {
            while i < chars.len() && chars[i] != '\n' {
                i += 1;
            }
        } else if c == '/' && next == Some('*') {
            let mut depth = 0;
            while i < chars.len() {
                if chars[i] == '/' && chars.get(i + 1) == Some(&'*') {
                    depth += 1;
                    i += 2;
                } else if chars[i] == '*' && chars.get(i + 1) == Some(&'/') {
                    depth -= 1;
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    if chars[i] == '\n' {
                        out.push('\n');
                    }
                    i += 1;
                }
            }
        } else if c == 'r' && (next == Some('"') || next == Some('#')) && is_raw_start(&chars, i) {
            i = skip_raw_string(&chars, i, &mut out);
        } else if c == '"' {
            i += 1;
            while i < chars.len() && chars[i] != '"' {
                if chars[i] == '\\' {
                    i += 1;
                }
                if chars.get(i) == Some(&'\n') {
                    out.push('\n');
                }
                i += 1;
            }
            i += 1;
            out.push_str("\"\"");
        } else if c == '\'' && is_char_literal(&chars, i) {
            i += 1;
            while i < chars.len() && chars[i] != '\'' {
                if chars[i] == '\\' {
                    i += 1;
                }
                i += 1;
            }
            i += 1;
            out.push_str("' '");
        } else {
            out.push(c);
            i += 1;
        }
    }
    out.lines().map(str::to_string).collect()
}

/// Whether `r` at `i` starts a raw string (`r"`, `r#"`), not an identifier's end.
fn is_raw_start(chars: &[char], i: usize) -> bool {
    let ident_before = i > 0 && (chars[i - 1].is_alphanumeric() || chars[i - 1] == '_');
    let mut j = i + 1;
    while chars.get(j) == Some(&'#') {
        j += 1;
    }
    !ident_before && chars.get(j) == Some(&'"')
}

/// Skips a raw string starting at `i`; returns the index after it.
fn skip_raw_string(chars: &[char], mut i: usize, out: &mut String) -> usize {
    i += 1;
    let mut hashes = 0;
    while chars.get(i) == Some(&'#') {
        hashes += 1;
        i += 1;
    }
    i += 1;
    while i < chars.len() {
        if chars[i] == '"' && (1..=hashes).all(|k| chars.get(i + k) == Some(&'#')) {
            out.push_str("\"\"");
            return i + 1 + hashes;
        }
        if chars[i] == '\n' {
            out.push('\n');
        }
        i += 1;
    }
    i
}

/// Whether the quote at `i` opens a char literal rather than a lifetime.
fn is_char_literal(chars: &[char], i: usize) -> bool {
    match chars.get(i + 1) {
        Some('\\') => true,
        Some(_) => chars.get(i + 2) == Some(&'\''),
        None => false,
    }
}

/// The line where the item starting at `start` ends: its matching closing
/// brace, or its `;` when it has no body.
fn item_end(lines: &[String], start: usize) -> usize {
    let mut depth = 0i32;
    let mut opened = false;
    for (n, line) in lines.iter().enumerate().skip(start) {
        for c in line.chars() {
            match c {
                '{' => {
                    depth += 1;
                    opened = true;
                }
                '}' => depth -= 1,
                ';' if !opened && depth == 0 => return n,
                _ => {}
            }
            if opened && depth == 0 {
                return n;
            }
        }
    }
    lines.len().saturating_sub(1)
}

/// Whether a line of code declares a function.
fn declares_fn(line: &str) -> bool {
    let mut words = line.split_whitespace().peekable();
    while let Some(w) = words.next() {
        if w == "fn" {
            return words.peek().is_some();
        }
        let qualifier =
            w.starts_with("pub") || matches!(w, "const" | "async" | "unsafe" | "extern" | "\"\"" | "default");
        if !qualifier {
            return false;
        }
    }
    false
}

/// `(name line, length)` of every function outside `#[cfg(test)]` items.
fn functions(lines: &[String]) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    let mut n = 0;
    while n < lines.len() {
        let line = lines[n].trim();
        if line.starts_with("#[cfg(test)]") {
            n = item_end(lines, n + 1) + 1;
            continue;
        }
        if declares_fn(line) {
            out.push((n + 1, item_end(lines, n) - n + 1));
        }
        n += 1;
    }
    out
}

/// Every `.rs` file under `dir`.
fn rust_files(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("read core/src").flatten() {
        let path = entry.path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

#[test]
fn core_files_and_functions_stay_small() {
    let mut files = Vec::new();
    rust_files(&Path::new(env!("CARGO_MANIFEST_DIR")).join("src"), &mut files);
    files.sort();
    let mut wrong = Vec::new();
    for path in &files {
        let text = std::fs::read_to_string(path).expect("read a source file");
        let total = text.lines().count();
        if total > MAX_FILE_LINES {
            wrong.push(format!(
                "{}: {total} lines (most {MAX_FILE_LINES})",
                path.display()
            ));
        }
        for (line, len) in functions(&code_lines(&text)) {
            if len > MAX_FN_LINES {
                wrong.push(format!(
                    "{}:{line}: function of {len} lines (most {MAX_FN_LINES})",
                    path.display()
                ));
            }
        }
    }
    assert!(files.len() > 10, "core/src was not read");
    assert!(wrong.is_empty(), "too large:\n{}", wrong.join("\n"));
}

#[test]
fn the_scanner_measures_functions_and_skips_literals_and_tests() {
    let src = "pub(crate) async fn a() {\n    let s = \"}\";\n    let c = '{';\n    let r = r#\"}\"#;\n}\n\
               fn b<'x>(v: &'x str) -> &'x str {\n    // }\n    v\n}\n\
               trait T { fn decl(&self); }\n\
               #[cfg(test)]\nmod tests {\n    fn long() {\n    }\n}\n";
    let lines = code_lines(src);
    assert_eq!(functions(&lines), [(1, 5), (6, 4)]);
}

//! ARCHITECTURE.md's rules about the code itself, checked over every crate's `src`:
//! - the domain's vocabulary (action statuses, entry kinds, action types) is spelt only in the domain crate:
//!   everywhere else it is named through `domain`'s enums, so a misspelt status is a compile error;
//! - functions fit on a screen (at most 100 lines) and files hold one idea (at most 600 lines);
//! - every library crate documents its public items (`#![warn(missing_docs)]`, an error under CI's clippy);
//! - the request path (gateway, server, MCP) writes ledger entries only as typed payloads
//!   (`domain::payload::Payload`): a kind string and a hand-built JSON object (`NewEvent::new`) appear only in
//!   the one place that turns a payload into an entry of an action.
//!
//! Test code (a file's `#[cfg(test)]` module and the files such a module includes) is exempt: tests spell the
//! wire format on purpose. SQL migrations are not Rust and not read.

use std::path::{Path, PathBuf};

use domain::{ActionStatus, ActionType, EntryKind};

const MAX_FUNCTION_LINES: usize = 100;
const MAX_FILE_LINES: usize = 600;

/// HTTP method names that are also action types: the rule cannot tell them apart, so it leaves them out.
const ALSO_HTTP_METHODS: [&str; 3] = ["GET", "PATCH", "DELETE"];

/// A library source file: its path from the repository root and its non-test code.
struct Source {
    path: String,
    code: String,
}

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The files `#[cfg(test)] mod name;` lines in `file` include.
fn test_modules(file: &Path, text: &str) -> Vec<PathBuf> {
    let stem = file.file_stem().unwrap().to_string_lossy();
    let dir = if matches!(stem.as_ref(), "lib" | "main" | "mod") {
        file.parent().unwrap().to_path_buf()
    } else {
        file.with_extension("")
    };
    let lines: Vec<&str> = text.lines().map(str::trim).collect();
    lines
        .windows(2)
        .filter(|pair| pair[0] == "#[cfg(test)]")
        .filter_map(|pair| pair[1].strip_prefix("mod ")?.strip_suffix(';'))
        .flat_map(|name| [dir.join(format!("{name}.rs")), dir.join(name).join("mod.rs")])
        .collect()
}

/// Every crate's `src` files, test modules cut off (a file's code ends at its top-level `#[cfg(test)]`).
fn sources() -> Vec<Source> {
    let mut files = Vec::new();
    for krate in std::fs::read_dir(root().join("crates")).unwrap().flatten() {
        let src = krate.path().join("src");
        if src.is_dir() {
            rust_files(&src, &mut files);
        }
    }
    let texts: Vec<(PathBuf, String)> = files
        .into_iter()
        .map(|f| {
            let text = std::fs::read_to_string(&f).unwrap();
            (f, text)
        })
        .collect();
    let tests: Vec<PathBuf> = texts.iter().flat_map(|(f, t)| test_modules(f, t)).collect();
    texts
        .into_iter()
        .filter(|(f, _)| !tests.contains(f))
        .map(|(f, text)| {
            let code = match text.find("\n#[cfg(test)]") {
                Some(at) => text[..at].to_string(),
                None => text,
            };
            let path = f
                .strip_prefix(root())
                .unwrap_or(&f)
                .to_string_lossy()
                .replace("/../..", "");
            Source { path, code }
        })
        .collect()
}

/// Code with comments removed and each string literal's content taken out: the code with every literal
/// as `""` (lines kept), and the literals with their line numbers.
fn lex(source: &str) -> (String, Vec<(usize, String)>) {
    let chars: Vec<char> = source.chars().collect();
    let (mut code, mut literals, mut line, mut i) = (String::new(), Vec::new(), 1, 0);
    let newline = |c: char, line: &mut usize, code: &mut String| {
        if c == '\n' {
            *line += 1;
            code.push('\n');
        }
    };
    while i < chars.len() {
        let c = chars[i];
        let next = chars.get(i + 1).copied();
        if c == '/' && next == Some('/') {
            while i < chars.len() && chars[i] != '\n' {
                i += 1;
            }
        } else if c == '/' && next == Some('*') {
            i += 2;
            while i + 1 < chars.len() && !(chars[i] == '*' && chars[i + 1] == '/') {
                newline(chars[i], &mut line, &mut code);
                i += 1;
            }
            i += 2;
        } else if c == '"' || (c == 'r' && raw_string_at(&chars, i)) {
            let start_line = line;
            let hashes = if c == 'r' {
                i += 1;
                let n = chars[i..].iter().take_while(|&&h| h == '#').count();
                i += n;
                Some(n)
            } else {
                None
            };
            i += 1; // the opening quote
            let mut text = String::new();
            while let Some(&ch) = chars.get(i) {
                if hashes.is_none() && ch == '\\' {
                    text.push(ch);
                    text.extend(chars.get(i + 1));
                    newline(chars.get(i + 1).copied().unwrap_or(' '), &mut line, &mut code);
                    i += 2;
                    continue;
                }
                let closing =
                    ch == '"' && chars[i + 1..].iter().take_while(|&&h| h == '#').count() >= hashes.unwrap_or(0);
                if closing {
                    i += 1 + hashes.unwrap_or(0);
                    break;
                }
                newline(ch, &mut line, &mut code);
                text.push(ch);
                i += 1;
            }
            literals.push((start_line, text));
            code.push_str("\"\"");
        } else if c == '\'' {
            // A char literal ('x', '\n', '"') is skipped whole; a lifetime ('a) is only its quote.
            let len = match (next, chars.get(i + 2)) {
                (Some('\\'), _) => chars[i + 2..].iter().position(|&q| q == '\'').map_or(1, |p| p + 3),
                (Some(_), Some('\'')) => 3,
                _ => 1,
            };
            code.push_str("' '");
            i += len;
        } else {
            newline(c, &mut line, &mut code);
            if c != '\n' {
                code.push(c);
            }
            i += 1;
        }
    }
    (code, literals)
}

/// Whether a raw string (`r"…"`, `r#"…"#`) starts at `at`, not an identifier (`for`, `r#type`).
fn raw_string_at(chars: &[char], at: usize) -> bool {
    let ident_before = at > 0 && (chars[at - 1].is_alphanumeric() || chars[at - 1] == '_');
    let hashes = chars[at + 1..].iter().take_while(|&&h| h == '#').count();
    !ident_before && chars.get(at + 1 + hashes) == Some(&'"')
}

/// The vocabulary the domain crate owns.
fn vocabulary() -> Vec<&'static str> {
    let statuses = ActionStatus::ALL.map(ActionStatus::as_str);
    let kinds = EntryKind::ALL.map(EntryKind::as_str);
    let types = ActionType::ALL.map(ActionType::as_str);
    statuses
        .into_iter()
        .chain(kinds)
        .chain(types.into_iter().filter(|t| !ALSO_HTTP_METHODS.contains(t)))
        .collect()
}

/// `path:line: "literal"` for each vocabulary word spelt as a string literal in `code`.
fn spelt_vocabulary(path: &str, code: &str, words: &[&str]) -> Vec<String> {
    let (_, literals) = lex(code);
    literals
        .into_iter()
        .filter(|(_, text)| words.contains(&text.as_str()))
        .map(|(line, text)| format!("{path}:{line}: \"{text}\""))
        .collect()
}

/// `(name, first line, lines)` of every function in `code` with a body.
fn functions(code: &str) -> Vec<(String, usize, usize)> {
    let (code, _) = lex(code);
    let lines: Vec<&str> = code.lines().collect();
    let mut found = Vec::new();
    for (start, line) in lines.iter().enumerate() {
        let Some(at) = line
            .find("fn ")
            .filter(|&at| at == 0 || !line.as_bytes()[at - 1].is_ascii_alphanumeric())
        else {
            continue;
        };
        let name: String = line[at + 3..]
            .chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_')
            .collect();
        if name.is_empty() {
            continue;
        }
        let (mut depth, mut opened) = (0i64, false);
        for (end, text) in lines.iter().enumerate().skip(start) {
            for c in text.chars().skip(if end == start { at } else { 0 }) {
                match c {
                    '{' => (depth, opened) = (depth + 1, true),
                    '}' => depth -= 1,
                    _ => {}
                }
            }
            // A declaration without a body (a trait method) ends at its `;`.
            if !opened && text.trim_end().ends_with(';') {
                break;
            }
            if opened && depth <= 0 {
                found.push((name.clone(), start + 1, end - start + 1));
                break;
            }
        }
    }
    found
}

#[test]
fn the_vocabulary_is_spelt_only_in_the_domain_crate() {
    let words = vocabulary();
    let spelt: Vec<String> = sources()
        .iter()
        .filter(|s| !s.path.starts_with("crates/domain/"))
        .flat_map(|s| spelt_vocabulary(&s.path, &s.code, &words))
        .collect();
    assert!(
        spelt.is_empty(),
        "statuses, entry kinds and action types spelt outside the domain crate (name them through \
         domain::ActionStatus, EntryKind, ActionType):\n{}",
        spelt.join("\n")
    );
}

#[test]
fn functions_fit_on_a_screen_and_files_hold_one_idea() {
    let mut too_long = Vec::new();
    for source in sources() {
        let lines = source.code.lines().count();
        if lines > MAX_FILE_LINES {
            too_long.push(format!(
                "{}: {lines} lines (split it: at most {MAX_FILE_LINES})",
                source.path
            ));
        }
        for (name, line, length) in functions(&source.code) {
            if length > MAX_FUNCTION_LINES {
                too_long.push(format!(
                    "{}:{line}: fn {name} has {length} lines (at most {MAX_FUNCTION_LINES})",
                    source.path
                ));
            }
        }
    }
    assert!(too_long.is_empty(), "too long:\n{}", too_long.join("\n"));
}

/// Where an entry may still be built from a kind and a JSON value: the pipeline's `Trail::event`, which every
/// typed payload of an action goes through.
const UNTYPED_ENTRY_ALLOWED_IN: &str = "crates/gateway/src/pipeline/mod.rs";

#[test]
fn the_request_path_writes_entries_as_typed_payloads() {
    let untyped: Vec<String> = sources()
        .iter()
        .filter(|s| {
            ["crates/gateway/", "crates/server/", "crates/mcp/"]
                .iter()
                .any(|c| s.path.starts_with(c))
        })
        .filter(|s| s.path != UNTYPED_ENTRY_ALLOWED_IN)
        .flat_map(|s| {
            s.code
                .lines()
                .enumerate()
                .filter(|(_, l)| l.contains("NewEvent::new("))
                .map(|(n, _)| format!("{}:{}", s.path, n + 1))
                .collect::<Vec<_>>()
        })
        .collect();
    assert!(
        untyped.is_empty(),
        "entries built from a kind and a JSON value (write a domain::payload::Payload with NewEvent::of):\n{}",
        untyped.join("\n")
    );
}

#[test]
fn every_library_crate_documents_its_public_items() {
    let mut undocumented = Vec::new();
    for krate in std::fs::read_dir(root().join("crates")).unwrap().flatten() {
        let lib = krate.path().join("src/lib.rs");
        let Ok(text) = std::fs::read_to_string(&lib) else {
            continue;
        };
        if !text.lines().any(|l| l.trim() == "#![warn(missing_docs)]") {
            undocumented.push(krate.file_name().to_string_lossy().into_owned());
        }
    }
    assert!(
        undocumented.is_empty(),
        "library crates without #![warn(missing_docs)] in lib.rs: {undocumented:?}"
    );
}

#[test]
fn the_checks_find_what_they_look_for() {
    let code = r##"
/// "COMPLETED" in a comment is fine
fn short() -> &'static str {
    let c = '"'; // "FAILED" in a comment
    let raw = r#"not "PENDING_APPROVAL" alone"#;
    "COMPLETED"
}
trait T { fn declared(&self); }
"##;
    let words = vocabulary();
    assert_eq!(spelt_vocabulary("x.rs", code, &words), ["x.rs:6: \"COMPLETED\""]);
    assert!(spelt_vocabulary("x.rs", "let m = \"GET\";", &words).is_empty());
    assert_eq!(spelt_vocabulary("x.rs", "kind: \"policy.decided\",", &words).len(), 1);
    let long = format!("fn long() {{\n{}}}\n", "    let x = 1;\n".repeat(120));
    assert_eq!(
        functions(code),
        [("short".to_string(), 3, 5)],
        "a trait's declaration has no body"
    );
    assert_eq!(functions(&long), [("long".to_string(), 1, 122)]);
}

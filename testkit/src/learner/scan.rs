//! A text check of the learner's test file for ways to ask which
//! implementation is compiled instead of testing its behaviour.

use std::fs;
use std::path::Path;

/// Fragments that a test about the broker's behaviour never needs, each with
/// what it would reveal. The check ignores case, comments and whitespace.
const FORBIDDEN: [(&str, &str); 11] = [
    ("feature=", "a cargo feature (`feature = …`)"),
    (
        "workbook",
        "the grader's own state or variables (`WORKBOOK_…`, `.workbook`)",
    ),
    ("out_dir", "the build script's output (`OUT_DIR`)"),
    ("current_exe", "the path of the test executable"),
    ("env::args", "the path of the test executable"),
    ("/proc", "the process's own files under /proc"),
    ("mutants", "the buggy versions' files"),
    ("fingerprint", "cargo's build records"),
    ("deps/", "cargo's build folder"),
    ("env!(", "a variable set when the tests were compiled"),
    ("concat!(", "a name assembled to slip past this check"),
];

/// Returns why the learner's test file is rejected, if it is.
///
/// A test that fails whenever a mutant's feature is on catches nothing real,
/// so the file may not mention what would tell the builds apart. This is a
/// text check: it stops the plain ways to ask, not a determined attempt.
pub(crate) fn inspects_implementation(path: &Path) -> Option<String> {
    let source = fs::read_to_string(path).ok()?;
    let code: String = without_comments(&source)
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect::<String>()
        .to_lowercase();
    FORBIDDEN
        .iter()
        .find(|(fragment, _)| code.contains(fragment))
        .map(|(fragment, what)| format!("it mentions `{fragment}`, which would reveal {what}"))
}

/// Returns `source` with its comments removed; string literals are kept, and
/// a `//` inside one is not taken for a comment.
fn without_comments(source: &str) -> String {
    let chars: Vec<char> = source.chars().collect();
    let mut kept = String::with_capacity(source.len());
    let mut index = 0;
    let mut depth = 0usize;
    let mut in_string = false;
    while index < chars.len() {
        let current = chars[index];
        let next = chars.get(index + 1).copied();
        if depth > 0 {
            // Block comments nest in Rust.
            match (current, next) {
                ('/', Some('*')) => (depth, index) = (depth + 1, index + 2),
                ('*', Some('/')) => (depth, index) = (depth - 1, index + 2),
                _ => index += 1,
            }
            continue;
        }
        if in_string {
            kept.push(current);
            if current == '\\' {
                if let Some(escaped) = next {
                    kept.push(escaped);
                }
                index += 2;
                continue;
            }
            in_string = current != '"';
            index += 1;
            continue;
        }
        match (current, next) {
            ('/', Some('/')) => {
                while index < chars.len() && chars[index] != '\n' {
                    index += 1;
                }
            }
            ('/', Some('*')) => (depth, index) = (1, index + 2),
            ('"', _) => {
                in_string = true;
                kept.push(current);
                index += 1;
            }
            _ => {
                kept.push(current);
                index += 1;
            }
        }
    }
    kept
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rejected(source: &str) -> bool {
        // Tests run in parallel, so each call writes a file of its own.
        static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let index = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let name = format!("scan-{}-{index}.rs", std::process::id());
        let path = std::env::temp_dir().join(name);
        fs::write(&path, source).expect("the temporary folder is writable");
        let verdict = inspects_implementation(&path).is_some();
        let _ = fs::remove_file(&path);
        verdict
    }

    #[test]
    fn plain_behaviour_test_passes() {
        let source =
            "// tests the feature = x of close\n#[test]\nfn t() { let url = \"http://x\"; }";
        assert!(!rejected(source));
    }

    #[test]
    fn feature_check_is_rejected() {
        assert!(rejected(
            "fn t() { assert!(!cfg!(feature = \"mutant-a\")); }"
        ));
    }

    #[test]
    fn block_comment_inside_feature_check_is_rejected() {
        assert!(rejected("fn t() { cfg!(feature /**/ = \"mutant-a\"); }"));
    }

    #[test]
    fn comment_marker_in_string_does_not_hide_code() {
        assert!(rejected(
            "fn t() { let u = \"http://x\"; let m = cfg!(feature = \"a\"); }"
        ));
    }

    #[test]
    fn split_variable_name_is_rejected() {
        assert!(rejected(
            "fn t() { env!(concat!(\"WORKBOOK\", \"_IMPL\")); }"
        ));
        assert!(rejected("fn t() { std::env::current_exe(); }"));
    }
}

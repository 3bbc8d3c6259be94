//! Every relative link and image in the repository's Markdown (README.md, BENCHMARKS.md
//! and everything under docs/) points at a file or folder that exists, and a `#anchor`
//! names a heading of the file it points into. A newcomer follows these links first, and
//! they break silently when a file moves.
//!
//! Web links (`http:`, `https:`, `mailto:`) are not fetched. Links inside code spans and
//! fenced code blocks are not links and are skipped.

use std::collections::HashSet;
use std::fs;
use std::path::{Path, PathBuf};

/// The repository root (this crate lives in `cli/`).
fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("cli/ has a parent").to_owned()
}

/// The Markdown files whose links are checked.
fn checked_files(root: &Path) -> Vec<PathBuf> {
    let mut files = vec![root.join("README.md"), root.join("BENCHMARKS.md")];
    let mut dirs = vec![root.join("docs")];
    while let Some(dir) = dirs.pop() {
        let Ok(entries) = fs::read_dir(&dir) else { continue };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.extension().is_some_and(|e| e == "md") {
                files.push(path);
            }
        }
    }
    files.sort();
    files
}

/// A link as written: its line (1-based) and its target.
#[derive(Debug, PartialEq)]
struct Link {
    line: usize,
    target: String,
}

/// The targets of inline links and images (`[text](target)`, `![alt](target "title")`,
/// `[text](<target>)`) and of reference definitions (`[label]: target`), outside code.
fn links(markdown: &str) -> Vec<Link> {
    let mut out = Vec::new();
    let mut fence: Option<&str> = None;
    for (i, line) in markdown.lines().enumerate() {
        let trimmed = line.trim_start();
        if let Some(f) = fence {
            if trimmed.starts_with(f) {
                fence = None;
            }
            continue;
        }
        if trimmed.starts_with("```") || trimmed.starts_with("~~~") {
            fence = Some(&trimmed[..3]);
            continue;
        }
        let text = strip_code_spans(line);
        // Reference definition: `[label]: target`.
        if let Some(rest) = text.trim_start().strip_prefix('[') {
            if let Some(close) = rest.find("]:") {
                if !rest[..close].is_empty() && !rest[..close].starts_with('^') {
                    let target = rest[close + 2..].split_whitespace().next().unwrap_or("");
                    out.push(Link { line: i + 1, target: target.trim_matches(['<', '>']).to_owned() });
                    continue;
                }
            }
        }
        let bytes = text.as_bytes();
        let mut k = 0;
        while let Some(pos) = text[k..].find("](") {
            let start = k + pos + 2;
            let mut depth = 0usize;
            let mut end = start;
            while end < bytes.len() {
                match bytes[end] {
                    b'(' => depth += 1,
                    b')' if depth == 0 => break,
                    b')' => depth -= 1,
                    _ => {}
                }
                end += 1;
            }
            let inner = text[start..end].trim();
            let target = if let Some(rest) = inner.strip_prefix('<') {
                rest.split('>').next().unwrap_or("")
            } else {
                inner.split_whitespace().next().unwrap_or("")
            };
            out.push(Link { line: i + 1, target: target.to_owned() });
            k = end.min(bytes.len());
        }
    }
    out
}

/// The line with every `code span` blanked out.
fn strip_code_spans(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut in_code = false;
    for c in line.chars() {
        if c == '`' {
            in_code = !in_code;
            out.push(' ');
        } else {
            out.push(if in_code { ' ' } else { c });
        }
    }
    out
}

/// GitHub's anchors of a Markdown file's headings: lower case, punctuation other than
/// `-` and `_` dropped, spaces as `-`, and `-1`, `-2`, ... on repeats.
fn anchors(markdown: &str) -> HashSet<String> {
    let mut seen = HashSet::new();
    let mut fence = false;
    for line in markdown.lines() {
        let trimmed = line.trim_start();
        if trimmed.starts_with("```") || trimmed.starts_with("~~~") {
            fence = !fence;
            continue;
        }
        if fence || !trimmed.starts_with('#') {
            continue;
        }
        let title = trimmed.trim_start_matches('#');
        if !title.starts_with(' ') {
            continue;
        }
        let slug: String = title
            .trim()
            .to_lowercase()
            .chars()
            .filter_map(|c| match c {
                ' ' => Some('-'),
                c if c.is_alphanumeric() || c == '-' || c == '_' => Some(c),
                _ => None,
            })
            .collect();
        let mut candidate = slug.clone();
        let mut n = 0;
        while seen.contains(&candidate) {
            n += 1;
            candidate = format!("{slug}-{n}");
        }
        seen.insert(candidate);
    }
    seen
}

/// Every broken link of `file`, as `file:line: target (why)`.
fn broken_links(root: &Path, file: &Path) -> Vec<String> {
    let text = fs::read_to_string(file).unwrap_or_else(|e| panic!("reading {}: {e}", file.display()));
    let shown = file.strip_prefix(root).unwrap_or(file).display().to_string();
    let mut broken = Vec::new();
    for Link { line, target } in links(&text) {
        if target.is_empty() {
            broken.push(format!("{shown}:{line}: empty link target"));
            continue;
        }
        if target.contains("://") || target.starts_with("mailto:") {
            continue;
        }
        let (path_part, anchor) = match target.split_once('#') {
            Some((p, a)) => (p, Some(a)),
            None => (target.as_str(), None),
        };
        let dest = if path_part.is_empty() {
            file.to_owned()
        } else if let Some(abs) = path_part.strip_prefix('/') {
            root.join(abs)
        } else {
            file.parent().unwrap_or(root).join(path_part)
        };
        if !dest.exists() {
            broken.push(format!("{shown}:{line}: {target} (no such file: {})", dest.strip_prefix(root).unwrap_or(&dest).display()));
            continue;
        }
        if let Some(anchor) = anchor {
            if dest.extension().is_some_and(|e| e == "md") {
                let dest_text = fs::read_to_string(&dest).unwrap_or_default();
                if !anchors(&dest_text).contains(&anchor.to_lowercase()) {
                    broken.push(format!("{shown}:{line}: {target} (no heading #{anchor} in {})", dest.strip_prefix(root).unwrap_or(&dest).display()));
                }
            }
        }
    }
    broken
}

#[test]
fn every_relative_link_in_the_docs_resolves() {
    let root = repo_root();
    let files = checked_files(&root);
    assert!(files.len() > 2, "no docs/ found under {}", root.display());
    let broken: Vec<String> = files.iter().flat_map(|f| broken_links(&root, f)).collect();
    assert!(broken.is_empty(), "{} broken link(s):\n{}", broken.len(), broken.join("\n"));
}

#[test]
fn a_broken_link_or_anchor_is_reported_with_its_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    fs::create_dir(root.join("docs")).unwrap();
    fs::write(root.join("docs/there.md"), "# A heading, with punctuation\n\n## Twice\n\n## Twice\n").unwrap();
    fs::write(
        root.join("README.md"),
        "# Title\n\
         [ok](docs/there.md) [ok anchor](docs/there.md#a-heading-with-punctuation) [repeat](docs/there.md#twice-1)\n\
         ![picture](docs/missing.png)\n\
         [gone](docs/gone.md) [bad anchor](docs/there.md#nowhere) [self](#title) [web](https://example.org/x)\n\
         `[in code](docs/nothing.md)`\n\
         ```\n[in a fence](docs/nothing.md)\n```\n\
         [ref]: docs/also-gone.md\n",
    )
    .unwrap();
    let broken = broken_links(root, &root.join("README.md"));
    assert_eq!(
        broken,
        vec![
            "README.md:3: docs/missing.png (no such file: docs/missing.png)",
            "README.md:4: docs/gone.md (no such file: docs/gone.md)",
            "README.md:4: docs/there.md#nowhere (no heading #nowhere in docs/there.md)",
            "README.md:9: docs/also-gone.md (no such file: docs/also-gone.md)",
        ]
    );
}

#[test]
fn link_targets_are_read_as_written() {
    let found = links("see [a](x.md \"title\"), [b](<y z.md>), [c](f(1).md) and ![d](img.png)\n");
    let targets: Vec<&str> = found.iter().map(|l| l.target.as_str()).collect();
    assert_eq!(targets, ["x.md", "y z.md", "f(1).md", "img.png"]);
}

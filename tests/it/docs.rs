//! The documentation is checked, not just written: every relative link in README.md and
//! docs/*.md resolves (the file, and the heading a `#fragment` names), and every `NIGHTSHIFT_*`
//! variable the platform's source reads is on docs/configuration.md. Plain file reads: no
//! service is needed.
use std::{
    collections::BTreeSet,
    fs,
    path::{Path, PathBuf},
};

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

/// Where the platform's code is: the crates and the binary.
const SOURCE_DIRS: &[&str] = &[
    "common/src",
    "api/src",
    "queue/src",
    "workers/src",
    "scheduler/src",
    "catalog/src",
    "src",
    "tools/src",
];

/// `NIGHTSHIFT_*` names in the source that are not the platform's configuration, each with why.
const NOT_CONFIGURATION: &[(&str, &str)] = &[
    // A unit test in workers/src/jobs/webhook/public.rs re-runs its own test binary as a child
    // with these set; nothing else sets or reads them.
    ("NIGHTSHIFT_TEST_PROXY_CHILD", "a unit test's child-process switch"),
    (
        "NIGHTSHIFT_TEST_PROXY_TARGET",
        "the address that unit test hands its child",
    ),
];

/// README.md and every page in docs/.
fn markdown_files() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = fs::read_dir(Path::new(ROOT).join("docs"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "md"))
        .collect();
    files.sort();
    files.insert(0, Path::new(ROOT).join("README.md"));
    files
}

fn shown(path: &Path) -> String {
    path.strip_prefix(ROOT).unwrap_or(path).display().to_string()
}

/// The text outside fenced code blocks, line by line.
fn outside_fences(text: &str) -> Vec<&str> {
    let mut fenced = false;
    let mut lines = Vec::new();
    for line in text.lines() {
        let trimmed = line.trim_start();
        if trimmed.starts_with("```") || trimmed.starts_with("~~~") {
            fenced = !fenced;
        } else if !fenced {
            lines.push(line);
        }
    }
    lines
}

/// Prose without its code: fenced blocks and inline `code` spans removed (a span may cross lines,
/// not paragraphs).
fn prose(text: &str) -> String {
    let mut out = String::new();
    for paragraph in outside_fences(text).join("\n").split("\n\n") {
        let mut rest = paragraph;
        while let Some(start) = rest.find('`') {
            out.push_str(&rest[..start]);
            let ticks = rest[start..].len() - rest[start..].trim_start_matches('`').len();
            let delimiter = &rest[start..start + ticks];
            rest = match rest[start + ticks..].find(delimiter) {
                Some(end) => &rest[start + ticks + end + ticks..],
                None => &rest[start + ticks..],
            };
        }
        out.push_str(rest);
        out.push_str("\n\n");
    }
    out
}

/// The targets of the markdown links `[text](target)` in `prose`.
fn link_targets(prose: &str) -> Vec<String> {
    prose
        .match_indices("](")
        .filter_map(|(i, _)| {
            let after = &prose[i + 2..];
            let target = &after[..after.find(')')?];
            target.split_whitespace().next().map(str::to_string)
        })
        .collect()
}

/// GitHub's anchor for a heading: lowercase, spaces to `-`, punctuation other than `-` and `_`
/// dropped.
fn slug(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter_map(|c| match c {
            ' ' => Some('-'),
            c if c.is_alphanumeric() || c == '-' || c == '_' => Some(c),
            _ => None,
        })
        .collect()
}

/// The anchors of a markdown file's headings; a repeated heading's anchor gets `-1`, `-2`, ...
fn anchors(text: &str) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    for line in outside_fences(text) {
        let hashes = line.len() - line.trim_start_matches('#').len();
        if !(1..=6).contains(&hashes) || !line[hashes..].starts_with(' ') {
            continue;
        }
        let base = slug(line[hashes..].trim_end_matches('#'));
        let mut anchor = base.clone();
        let mut n = 0;
        while !found.insert(anchor.clone()) {
            n += 1;
            anchor = format!("{base}-{n}");
        }
    }
    found
}

#[test]
fn every_relative_link_in_the_readme_and_the_docs_resolves() {
    let (mut broken, mut checked) = (Vec::new(), 0);
    for file in markdown_files() {
        let text = fs::read_to_string(&file).unwrap();
        for target in link_targets(&prose(&text)) {
            if ["http://", "https://", "mailto:"].iter().any(|s| target.starts_with(s)) {
                continue;
            }
            checked += 1;
            let (path, fragment) = match target.split_once('#') {
                Some((path, fragment)) => (path, Some(fragment)),
                None => (target.as_str(), None),
            };
            let dest = if path.is_empty() {
                file.clone()
            } else {
                file.parent().unwrap().join(path)
            };
            if !dest.exists() {
                broken.push(format!("{}: ({target}): no such file", shown(&file)));
            } else if let Some(fragment) = fragment
                && dest.extension().is_some_and(|e| e == "md")
                && !anchors(&fs::read_to_string(&dest).unwrap()).contains(fragment)
            {
                broken.push(format!("{}: ({target}): no such heading", shown(&file)));
            }
        }
    }
    assert!(broken.is_empty(), "broken links:\n{}", broken.join("\n"));
    // A scanner that finds nothing passes everything: the README alone links every page.
    assert!(
        checked > 50,
        "only {checked} relative links found: is the scanner broken?"
    );
    let readme = fs::read_to_string(Path::new(ROOT).join("README.md")).unwrap();
    let unlisted: Vec<String> = markdown_files()[1..]
        .iter()
        .map(|p| format!("(docs/{})", p.file_name().unwrap().to_string_lossy()))
        .filter(|link| !readme.contains(link.as_str()))
        .collect();
    assert!(unlisted.is_empty(), "docs pages the README does not link: {unlisted:?}");
}

/// Every `NIGHTSHIFT_[A-Z0-9_]+` name in `text`; with `quoted`, only those that are a whole
/// string literal (`"NIGHTSHIFT_LEASE_SECS"`), which is how the code reads and sets them.
fn variables(text: &str, quoted: bool) -> BTreeSet<String> {
    text.match_indices("NIGHTSHIFT_")
        .filter_map(|(i, prefix)| {
            let rest = &text[i + prefix.len()..];
            let len = rest
                .find(|c: char| !(c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_'))
                .unwrap_or(rest.len());
            let name = &text[i..i + prefix.len() + len];
            let literal = text[..i].ends_with('"') && rest[len..].starts_with('"');
            (len > 0 && !name.ends_with('_') && (literal || !quoted)).then(|| name.to_string())
        })
        .collect()
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// Every Rust file of the platform's crates and binary (the tests apart).
pub(crate) fn platform_rust_files() -> Vec<PathBuf> {
    let mut files = Vec::new();
    for dir in SOURCE_DIRS {
        rust_files(&Path::new(ROOT).join(dir), &mut files);
    }
    files
}

#[test]
fn every_variable_the_platform_reads_is_on_the_configuration_page() {
    let files = platform_rust_files();
    let mut read = BTreeSet::new();
    for file in &files {
        read.extend(variables(&fs::read_to_string(file).unwrap(), true));
    }
    assert!(
        read.len() > 30,
        "only {} variables found: is the scanner broken?",
        read.len()
    );
    let page = fs::read_to_string(Path::new(ROOT).join("docs/configuration.md")).unwrap();
    let documented = variables(&page, false);
    let exempt: BTreeSet<&str> = NOT_CONFIGURATION.iter().map(|(name, _)| *name).collect();
    let missing: Vec<&String> = read
        .iter()
        .filter(|v| !documented.contains(*v) && !exempt.contains(v.as_str()))
        .collect();
    assert!(
        missing.is_empty(),
        "read by the platform but not on docs/configuration.md (add each with its default and meaning): {missing:?}"
    );
    let stale: Vec<&&str> = exempt.iter().filter(|v| !read.contains(**v)).collect();
    assert!(stale.is_empty(), "exempted but no longer in the source: {stale:?}");
}

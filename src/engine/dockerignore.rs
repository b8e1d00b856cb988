//! `.dockerignore` with Docker's own rules, so a build context holds exactly the files
//! `docker build` would send.
//!
//! Docker reads the file with `ignorefile.ReadAll` (comments, trimming, `!`, `filepath.Clean`,
//! a leading `/` dropped), compiles each pattern with moby's `patternmatcher` (the syntax
//! `filepath.Match` accepts, turned into a regular expression: `*` and `?` never cross `/`,
//! `**` crosses any number of folders, `[...]` classes, `\` escapes), decides with
//! `MatchesUsingParentResults` (the last matching pattern wins, `!` re-includes, a pattern
//! matching a folder matches everything below it) and walks the context as `TarWithOptions`
//! does: an excluded folder is not entered unless an exception pattern starts with its path.
//! The CLI first re-includes `.dockerignore` and the Dockerfile (`TrimBuildFilesFromExcludes`)
//! and the engine removes them again after reading them when they were excluded.
//!
//! Matching goes through the `regex` crate, whose matching time is linear in the path: no
//! pattern can make it backtrack (the hand-written matcher this replaces recursed on every `*`).
//! The translation is Go's, character for character; where Go's and Rust's regular expression
//! syntaxes differ inside `[...]` (Rust nests classes and has `&&`, `--`, `~~`), those
//! characters are escaped so they stay literal as in Go.

use regex::Regex;

/// How one pattern is matched (patternmatcher's `matchType`).
#[derive(Debug, Clone)]
enum Matcher {
    /// The whole path equals the pattern.
    Exact,
    /// `foo**`: the path starts with `foo`.
    Prefix(String),
    /// `**foo`: the path ends with `foo` (or is `foo` without its leading `/`).
    Suffix(String),
    /// Anything else.
    Regex(Regex),
}

/// One compiled pattern.
#[derive(Debug, Clone)]
struct Pattern {
    /// The pattern after cleaning, without its `!`.
    cleaned: String,
    exclusion: bool,
    matcher: Matcher,
}

impl Pattern {
    fn matches(&self, path: &str) -> bool {
        match &self.matcher {
            Matcher::Exact => path == self.cleaned,
            Matcher::Prefix(prefix) => path.starts_with(prefix.as_str()),
            Matcher::Suffix(suffix) => {
                path.ends_with(suffix.as_str())
                    || suffix.strip_prefix('/').is_some_and(|bare| path == bare)
            }
            Matcher::Regex(re) => re.is_match(path),
        }
    }
}

/// Per-pattern results for a folder, handed to its entries (patternmatcher's `MatchInfo`).
#[derive(Debug, Clone, Default)]
pub struct ParentMatches(Vec<bool>);

/// The rules of one `.dockerignore`.
#[derive(Debug, Clone, Default)]
pub struct IgnoreRules {
    patterns: Vec<Pattern>,
    exclusions: bool,
}

impl IgnoreRules {
    /// Parse the text of a `.dockerignore`; an error (naming the pattern) for one Docker
    /// refuses too.
    pub fn parse(text: &str) -> Result<IgnoreRules, String> {
        let mut rules = IgnoreRules::default();
        for line in read_all(text) {
            rules.push(&line)?;
        }
        Ok(rules)
    }

    /// Add one pattern as `patternmatcher.New` does.
    fn push(&mut self, raw: &str) -> Result<(), String> {
        let trimmed = raw.trim();
        if trimmed.is_empty() {
            return Ok(());
        }
        let cleaned = clean(trimmed);
        let (exclusion, pattern) = match cleaned.strip_prefix('!') {
            Some("") => return Err("illegal exclusion pattern: \"!\"".into()),
            Some(rest) => (true, rest.to_string()),
            None => (false, cleaned),
        };
        check_match_syntax(&pattern)
            .map_err(|e| format!("pattern {raw:?}: {e} (the syntax of Go's filepath.Match)"))?;
        let matcher = compile(&pattern).map_err(|e| format!("pattern {raw:?}: {e}"))?;
        self.exclusions |= exclusion;
        self.patterns.push(Pattern {
            cleaned: pattern,
            exclusion,
            matcher,
        });
        Ok(())
    }

    /// What the docker CLI does before packing: `.dockerignore` and the Dockerfile (a
    /// context-relative, `/`-separated path) are sent even when excluded, through exception
    /// patterns appended at the end.
    pub fn keep_build_files(&mut self, dockerfile: &str) {
        for file in [".dockerignore", dockerfile] {
            if self.is_ignored(file) {
                // Cannot fail: the file name was a valid path and `!` + it a valid pattern.
                let _ = self.push(&format!("!{file}"));
            }
        }
    }

    /// `MatchesOrParentMatches`: whether a context-relative path is excluded, looking at the
    /// path and each of its parent folders.
    pub fn is_ignored(&self, path: &str) -> bool {
        self.matches(path, None).0
    }

    /// `MatchesUsingParentResults`: whether `path` is excluded, given its folder's results
    /// (`None` for an entry at the top of the context, or to check every parent folder).
    pub fn matches(&self, path: &str, parent: Option<&ParentMatches>) -> (bool, ParentMatches) {
        let mut matched = false;
        let mut info = vec![false; self.patterns.len()];
        for (i, pattern) in self.patterns.iter().enumerate() {
            let mut hit = parent.is_some_and(|p| p.0[i]);
            if !hit {
                // An inclusion is not evaluated once the path is excluded, nor an exception
                // before it is (and then the folder's result for it stays false).
                if pattern.exclusion != matched {
                    continue;
                }
                hit = pattern.matches(path);
                if !hit && parent.is_none() {
                    hit = parents(path).any(|dir| pattern.matches(dir));
                }
            }
            info[i] = hit;
            if hit {
                matched = !pattern.exclusion;
            }
        }
        (matched, ParentMatches(info))
    }

    /// Whether an excluded folder can be left out with all its contents: no exception pattern
    /// starts with its path (`TarWithOptions` does not look further than that).
    pub fn can_skip_dir(&self, dir: &str) -> bool {
        if !self.exclusions {
            return true;
        }
        let dir_slash = format!("{dir}/");
        !self
            .patterns
            .iter()
            .filter(|p| p.exclusion)
            .any(|p| format!("{}/", p.cleaned).starts_with(&dir_slash))
    }
}

/// `a`, `a/b` for `a/b/c`: the parent folders of a path, shortest first.
fn parents(path: &str) -> impl Iterator<Item = &str> {
    let parent_len = path.rfind('/').unwrap_or(0);
    path[..parent_len]
        .match_indices('/')
        .map(|(i, _)| i)
        .chain(std::iter::once(parent_len))
        .filter(move |&end| end > 0)
        .map(move |end| &path[..end])
}

/// `ignorefile.ReadAll`: the patterns of a `.dockerignore`, `!` kept in front.
fn read_all(text: &str) -> Vec<String> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut out = Vec::new();
    for line in text.split('\n') {
        let line = line.strip_suffix('\r').unwrap_or(line);
        // A comment only when `#` is the very first character (before trimming).
        if line.starts_with('#') {
            continue;
        }
        let mut pattern = line.trim();
        if pattern.is_empty() {
            continue;
        }
        let invert = pattern.starts_with('!');
        if invert {
            pattern = pattern[1..].trim();
        }
        let mut pattern = pattern.to_string();
        if !pattern.is_empty() {
            pattern = clean(&pattern);
            if pattern.len() > 1 && pattern.starts_with('/') {
                pattern.remove(0);
            }
        }
        out.push(if invert {
            format!("!{pattern}")
        } else {
            pattern
        });
    }
    out
}

/// Go's `filepath.Clean` on Unix: no empty or `.` elements, `..` resolved lexically, no
/// trailing `/`; `.` for an empty result.
fn clean(path: &str) -> String {
    let rooted = path.starts_with('/');
    let mut parts: Vec<&str> = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => match parts.last() {
                Some(&last) if last != ".." => {
                    parts.pop();
                }
                _ if rooted => {}
                _ => parts.push(".."),
            },
            other => parts.push(other),
        }
    }
    let joined = parts.join("/");
    match (rooted, joined.is_empty()) {
        (true, _) => format!("/{joined}"),
        (false, true) => ".".into(),
        (false, false) => joined,
    }
}

/// The syntax check `patternmatcher.New` makes by calling `filepath.Match(pattern, ".")`:
/// `\` at the end, an empty or unclosed `[...]`, a range bound that is `-` or `]`.
fn check_match_syntax(pattern: &str) -> Result<(), &'static str> {
    let bytes = pattern.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'\\' => {
                if i + 1 >= bytes.len() {
                    return Err("`\\` at the end escapes nothing");
                }
                i += 2;
            }
            b'[' => {
                i += 1;
                if bytes.get(i) == Some(&b'^') {
                    i += 1;
                }
                let mut ranges = 0;
                loop {
                    if bytes.get(i) == Some(&b']') && ranges > 0 {
                        i += 1;
                        break;
                    }
                    i = class_char(bytes, i)?;
                    if bytes[i] == b'-' {
                        i = class_char(bytes, i + 1)?;
                    }
                    ranges += 1;
                }
            }
            _ => i += 1,
        }
    }
    Ok(())
}

/// Go's `getEsc`: one (possibly escaped) character of a class at `i`; the index after it,
/// which must not be the end of the pattern.
fn class_char(bytes: &[u8], mut i: usize) -> Result<usize, &'static str> {
    let bad = "malformed `[...]` class";
    match bytes.get(i) {
        None | Some(b'-') | Some(b']') => return Err(bad),
        Some(b'\\') => {
            i += 1;
            if i >= bytes.len() {
                return Err(bad);
            }
        }
        _ => {}
    }
    let width = utf8_width(bytes[i]);
    i += width;
    if i >= bytes.len() {
        return Err(bad);
    }
    Ok(i)
}

fn utf8_width(first: u8) -> usize {
    match first {
        0xF0..=0xF7 => 4,
        0xE0..=0xEF => 3,
        0xC0..=0xDF => 2,
        _ => 1,
    }
}

// Long on purpose: it follows Docker's patternmatcher `compile` statement for statement, so
// the two can be compared side by side.
/// patternmatcher's `compile`, character for character.
fn compile(pattern: &str) -> Result<Matcher, String> {
    #[derive(PartialEq)]
    enum Kind {
        Exact,
        Prefix,
        Suffix,
        Regex,
    }
    let mut re = String::from("^");
    let mut kind = Kind::Exact;
    let mut in_class = false;
    let mut chars = pattern.chars().peekable();
    let mut i = 0;
    while let Some(ch) = chars.next() {
        match ch {
            '*' if chars.peek() == Some(&'*') => {
                chars.next();
                if chars.peek() == Some(&'/') {
                    chars.next();
                }
                if chars.peek().is_none() {
                    if kind == Kind::Exact {
                        kind = Kind::Prefix;
                    } else {
                        re.push_str(".*");
                        kind = Kind::Regex;
                    }
                } else {
                    re.push_str("(.*/)?");
                    kind = Kind::Regex;
                }
                if i == 0 {
                    kind = Kind::Suffix;
                }
            }
            '*' => {
                re.push_str("[^/]*");
                kind = Kind::Regex;
            }
            '?' => {
                re.push_str("[^/]");
                kind = Kind::Regex;
            }
            '.' | '+' | '(' | ')' | '|' | '{' | '}' | '$' => {
                re.push('\\');
                re.push(ch);
            }
            '\\' => match chars.next() {
                Some(next) => {
                    re.push('\\');
                    re.push(next);
                    kind = Kind::Regex;
                }
                None => re.push_str("\\\\"),
            },
            '[' if in_class && chars.peek() == Some(&':') => {
                // A POSIX class (`[:alpha:]`) inside a class: the same in both syntaxes.
                re.push('[');
                for c in chars.by_ref() {
                    re.push(c);
                    i += 1;
                    if c == ']' {
                        break;
                    }
                }
            }
            '[' if in_class => re.push_str("\\["), // literal in Go, a nested class in Rust
            '[' | ']' => {
                in_class = ch == '[';
                re.push(ch);
                kind = Kind::Regex;
            }
            '&' | '~' if in_class => {
                re.push('\\');
                re.push(ch);
            }
            '-' if in_class && chars.peek() == Some(&'-') => re.push_str("\\-"),
            other => re.push(other),
        }
        i += 1;
    }
    Ok(match kind {
        Kind::Exact => Matcher::Exact,
        Kind::Prefix => Matcher::Prefix(pattern[..pattern.len() - 2].to_string()),
        Kind::Suffix => Matcher::Suffix(pattern[2..].to_string()),
        Kind::Regex => {
            re.push('$');
            Matcher::Regex(Regex::new(&re).map_err(|e| e.to_string())?)
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules(text: &str) -> IgnoreRules {
        IgnoreRules::parse(text).unwrap()
    }

    #[test]
    fn last_match_wins_and_folders_cover_their_contents() {
        let r = rules(
            "# comment\n.git\n*.pyc\n**/__pycache__\nnode_modules/\ndocs/*.md\n!docs/README.md\n",
        );
        assert!(r.is_ignored(".git/HEAD"));
        assert!(r.is_ignored("a.pyc"));
        assert!(
            !r.is_ignored("pkg/a.pyc"),
            "`*.pyc` is anchored at the root"
        );
        assert!(r.is_ignored("pkg/sub/__pycache__/x.cpython-311.pyc"));
        assert!(r.is_ignored("node_modules/x/y.js"));
        assert!(r.is_ignored("docs/guide.md"));
        assert!(!r.is_ignored("docs/README.md"));
        assert!(!r.is_ignored("app/main.py"));
    }

    #[test]
    fn classes_question_marks_escapes_and_leading_slash() {
        let r = rules("/build\nfile[0-9].txt\nx?.log\nlit\\*eral\n[^a]b\n");
        assert!(r.is_ignored("build/out"));
        assert!(r.is_ignored("file7.txt") && !r.is_ignored("filex.txt"));
        assert!(r.is_ignored("x1.log") && !r.is_ignored("x12.log"));
        assert!(r.is_ignored("lit*eral") && !r.is_ignored("litxeral"));
        assert!(r.is_ignored("cb") && !r.is_ignored("ab"));
    }

    #[test]
    fn comments_only_at_the_start_and_whitespace_trimmed() {
        let r = rules("  # not a comment\n\t spaced \n");
        assert!(r.is_ignored("# not a comment"));
        assert!(r.is_ignored("spaced"));
    }

    #[test]
    fn double_star_forms() {
        let r = rules("**/tmp\nlogs/**\na/**/z\n");
        assert!(r.is_ignored("tmp") && r.is_ignored("x/y/tmp"));
        assert!(r.is_ignored("logs/today/x") && !r.is_ignored("logsx"));
        assert!(r.is_ignored("a/z") && r.is_ignored("a/b/c/z"));
        assert!(rules("**").is_ignored("anything/at/all"));
    }

    #[test]
    fn excluded_folder_is_entered_only_for_an_exception_under_it() {
        let r = rules("dir\n!dir/keep\n");
        assert!(!r.can_skip_dir("dir"));
        let r = rules("*\n!**/keep\n");
        assert!(
            r.can_skip_dir("dir"),
            "Docker does not look for `keep` below dir"
        );
    }

    #[test]
    fn bad_patterns_are_errors_naming_them() {
        for bad in ["[]", "a[", "x\\", "[a-]", "!"] {
            assert!(IgnoreRules::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn go_clean_semantics() {
        assert_eq!(clean("a//b/./c/"), "a/b/c");
        assert_eq!(clean("a/../../b"), "../b");
        assert_eq!(clean("/../a"), "/a");
        assert_eq!(clean("./"), ".");
    }

    #[test]
    fn long_stars_match_in_linear_time() {
        let r = rules(&format!("{}b\n", "*a".repeat(200)));
        let path = "a".repeat(10_000);
        assert!(!r.is_ignored(&path));
    }
}

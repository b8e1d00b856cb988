//! Writing the merged Cobertura report in `coverage xml`'s layout (minidom's pretty printing:
//! tab indentation, attributes in coverage.py's order, its rate formatting and sort order),
//! with every count and rate recomputed from the lines.

use std::io::Write;

use super::coverage_model::{Line, MergedCoverage, SourceFile, EXIT};
use super::error::ReportError;
use super::py_format::{human_cmp, rate};
use super::xml_input::{escape_text, push_attr};

/// Totals of the merged coverage report.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CoverageTotals {
    /// Source files.
    pub files: usize,
    /// Statements.
    pub lines_valid: u64,
    /// Statements executed.
    pub lines_covered: u64,
    /// Branch destinations (0 without branch coverage).
    pub branches_valid: u64,
    /// Branch destinations taken.
    pub branches_covered: u64,
    /// `lines-covered / lines-valid` as coverage.py formats it.
    pub line_rate: String,
    /// `branches-covered / branches-valid` as coverage.py formats it (`"0"` without branches).
    pub branch_rate: String,
}

#[derive(Default, Clone, Copy)]
struct Counts {
    lines: u64,
    hits: u64,
    branches: u64,
    branch_hits: u64,
}

impl Counts {
    fn add(&mut self, other: Counts) {
        self.lines += other.lines;
        self.hits += other.hits;
        self.branches += other.branches;
        self.branch_hits += other.branch_hits;
    }

    fn of(lines: &[Line]) -> Counts {
        let mut c = Counts::default();
        for line in lines {
            c.lines += 1;
            c.hits += u64::from(line.hits > 0);
            if let Some(b) = &line.branches {
                c.branches += u64::from(b.total);
                c.branch_hits += u64::from(b.total).saturating_sub(b.missing.len() as u64);
            }
        }
        c
    }
}

/// Write the document and return its totals.
pub(crate) fn write_coverage(
    merged: &MergedCoverage,
    timestamp_ms: u128,
    out: &mut dyn Write,
) -> Result<CoverageTotals, ReportError> {
    let io = |source| ReportError::Output {
        what: "coverage XML",
        source,
    };
    let arcs = merged.has_branches;
    let files = files_in_order(merged);
    let (packages, total) = packages(&files);
    let totals = CoverageTotals {
        files: files.len(),
        lines_valid: total.lines,
        lines_covered: total.hits,
        branches_valid: if arcs { total.branches } else { 0 },
        branches_covered: if arcs { total.branch_hits } else { 0 },
        line_rate: rate(total.hits, total.lines),
        branch_rate: branch_rate(total, arcs),
    };
    out.write_all(head(merged, timestamp_ms, &totals).as_bytes())
        .map_err(io)?;
    if packages.is_empty() {
        out.write_all(b"\t<packages/>\n").map_err(io)?;
    } else {
        out.write_all(b"\t<packages>\n").map_err(io)?;
    }
    // One package at a time: the output document is never held whole in memory.
    let mut chunk = String::new();
    for package in &packages {
        chunk.clear();
        write_package(
            &mut chunk,
            &files[package.files.clone()],
            package.counts,
            arcs,
        );
        out.write_all(chunk.as_bytes()).map_err(io)?;
    }
    if !packages.is_empty() {
        out.write_all(b"\t</packages>\n").map_err(io)?;
    }
    out.write_all(b"</coverage>\n").map_err(io)?;
    out.flush().map_err(io)?;
    Ok(totals)
}

/// `branch-rate` as coverage.py writes it: `"0"` without branch coverage.
fn branch_rate(c: Counts, arcs: bool) -> String {
    if arcs {
        rate(c.branch_hits, c.branches)
    } else {
        "0".to_string()
    }
}

/// The files by package in human order, each package's files in human order.
fn files_in_order(merged: &MergedCoverage) -> Vec<(&String, &SourceFile)> {
    let mut files: Vec<(&String, &SourceFile)> = merged.files.iter().collect();
    files.sort_by(|a, b| human_cmp(&a.1.package, &b.1.package).then_with(|| human_cmp(a.0, b.0)));
    files
}

/// One package: a run of consecutive files in [`files_in_order`].
struct PackageRun {
    files: std::ops::Range<usize>,
    counts: Counts,
}

/// The packages of the ordered `files` and the whole report's counts; computed before
/// anything is written, since the totals head the document.
fn packages(files: &[(&String, &SourceFile)]) -> (Vec<PackageRun>, Counts) {
    let mut packages = Vec::new();
    let mut total = Counts::default();
    let mut i = 0;
    while i < files.len() {
        let package = &files[i].1.package;
        let end = files[i..]
            .iter()
            .position(|(_, f)| &f.package != package)
            .map_or(files.len(), |n| i + n);
        let mut counts = Counts::default();
        for (_, file) in &files[i..end] {
            counts.add(Counts::of(&file.lines));
        }
        total.add(counts);
        packages.push(PackageRun {
            files: i..end,
            counts,
        });
        i = end;
    }
    (packages, total)
}

/// The XML declaration, the `<coverage>` start tag with the totals, the comments and the
/// `<sources>`.
fn head(merged: &MergedCoverage, timestamp_ms: u128, totals: &CoverageTotals) -> String {
    let mut head = String::from("<?xml version=\"1.0\" ?>\n<coverage");
    if let Some(version) = &merged.version {
        push_attr(&mut head, "version", version);
    }
    push_attr(&mut head, "timestamp", &timestamp_ms.to_string());
    push_attr(&mut head, "lines-valid", &totals.lines_valid.to_string());
    push_attr(
        &mut head,
        "lines-covered",
        &totals.lines_covered.to_string(),
    );
    push_attr(&mut head, "line-rate", &totals.line_rate);
    if merged.has_branches {
        push_attr(
            &mut head,
            "branches-valid",
            &totals.branches_valid.to_string(),
        );
        push_attr(
            &mut head,
            "branches-covered",
            &totals.branches_covered.to_string(),
        );
    } else {
        push_attr(&mut head, "branches-covered", "0");
        push_attr(&mut head, "branches-valid", "0");
    }
    push_attr(&mut head, "branch-rate", &totals.branch_rate);
    push_attr(&mut head, "complexity", "0");
    head.push_str(">\n");
    for comment in &merged.comments {
        head.push_str("\t<!--");
        head.push_str(comment);
        head.push_str("-->\n");
    }
    if merged.sources.is_empty() {
        head.push_str("\t<sources/>\n");
    } else {
        head.push_str("\t<sources>\n");
        for source in &merged.sources {
            head.push_str("\t\t<source>");
            escape_text(source, &mut head);
            head.push_str("</source>\n");
        }
        head.push_str("\t</sources>\n");
    }
    head
}

/// One `<package>` with its classes; `files` are the package's files.
fn write_package(out: &mut String, files: &[(&String, &SourceFile)], counts: Counts, arcs: bool) {
    out.push_str("\t\t<package");
    push_attr(out, "name", &files[0].1.package);
    push_attr(out, "line-rate", &rate(counts.hits, counts.lines));
    push_attr(out, "branch-rate", &branch_rate(counts, arcs));
    push_attr(out, "complexity", "0");
    out.push_str(">\n\t\t\t<classes>\n");
    for (filename, file) in files {
        let counts = Counts::of(&file.lines);
        write_class(
            out,
            filename,
            file,
            counts,
            arcs,
            &branch_rate(counts, arcs),
        );
    }
    out.push_str("\t\t\t</classes>\n\t\t</package>\n");
}

fn write_class(
    out: &mut String,
    filename: &str,
    file: &SourceFile,
    counts: Counts,
    arcs: bool,
    branch_rate: &str,
) {
    out.push_str("\t\t\t\t<class");
    push_attr(out, "name", &file.name);
    push_attr(out, "filename", filename);
    push_attr(out, "complexity", "0");
    push_attr(out, "line-rate", &rate(counts.hits, counts.lines));
    push_attr(out, "branch-rate", branch_rate);
    out.push_str(">\n\t\t\t\t\t<methods/>\n");
    if file.lines.is_empty() {
        out.push_str("\t\t\t\t\t<lines/>\n");
    } else {
        out.push_str("\t\t\t\t\t<lines>\n");
        for line in &file.lines {
            write_line(out, line, arcs);
        }
        out.push_str("\t\t\t\t\t</lines>\n");
    }
    out.push_str("\t\t\t\t</class>\n");
}

fn write_line(out: &mut String, line: &Line, arcs: bool) {
    use std::fmt::Write as _;
    let _ = write!(
        out,
        "\t\t\t\t\t\t<line number=\"{}\" hits=\"{}\"",
        line.number, line.hits
    );
    if let (true, Some(b)) = (arcs, &line.branches) {
        let taken = b.total.saturating_sub(b.missing.len() as u32);
        let percent = (100 * taken).checked_div(b.total).unwrap_or(100);
        let _ = write!(
            out,
            " branch=\"true\" condition-coverage=\"{percent}% ({taken}/{})\"",
            b.total
        );
        if !b.missing.is_empty() {
            out.push_str(" missing-branches=\"");
            for (i, d) in b.missing.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                if *d == EXIT {
                    out.push_str("exit");
                } else {
                    let _ = write!(out, "{d}");
                }
            }
            out.push('"');
        }
    }
    out.push_str("/>\n");
}

//! The merged coverage data: per source file (keyed by its path relative to the source root,
//! the `filename` attribute), its statements with hit and branch data. One report's worth of
//! data, however many reports are merged, which is what bounds memory.

use std::collections::HashMap;

/// Exit destinations (`exit` in `missing-branches`) are stored as 0: no line is numbered 0.
pub(crate) const EXIT: u32 = 0;

/// Branch data of one line.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Branches {
    /// Possible destinations (the `/total` of `condition-coverage`).
    pub total: u32,
    /// Destinations never taken, in report order.
    pub missing: Vec<u32>,
}

/// One statement.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Line {
    pub number: u32,
    pub hits: u64,
    pub branches: Option<Branches>,
}

/// One source file (a Cobertura `<class>`).
#[derive(Debug, Clone)]
pub(crate) struct SourceFile {
    pub package: String,
    pub name: String,
    /// Sorted by line number.
    pub lines: Vec<Line>,
}

/// The merge so far.
#[derive(Debug, Default)]
pub(crate) struct MergedCoverage {
    pub version: Option<String>,
    pub comments: Vec<String>,
    pub sources: Vec<String>,
    pub has_branches: bool,
    pub files: HashMap<String, SourceFile>,
}

impl MergedCoverage {
    /// Merge one file's lines in (`lines` sorted by number).
    pub(crate) fn add_file(&mut self, filename: String, file: SourceFile) {
        match self.files.get_mut(&filename) {
            None => {
                self.files.insert(filename, file);
            }
            Some(existing) => {
                let merged = merge_lines(std::mem::take(&mut existing.lines), file.lines);
                existing.lines = merged;
            }
        }
    }
}

/// Union of statements; per statement, covered if covered anywhere, and missing branch
/// destinations are those missing everywhere.
fn merge_lines(a: Vec<Line>, b: Vec<Line>) -> Vec<Line> {
    let mut out = Vec::with_capacity(a.len().max(b.len()));
    let mut a = a.into_iter().peekable();
    let mut b = b.into_iter().peekable();
    loop {
        let next = match (a.peek(), b.peek()) {
            (None, None) => break,
            (Some(_), None) => a.next(),
            (None, Some(_)) => b.next(),
            (Some(x), Some(y)) => match x.number.cmp(&y.number) {
                std::cmp::Ordering::Less => a.next(),
                std::cmp::Ordering::Greater => b.next(),
                std::cmp::Ordering::Equal => {
                    let (x, y) = (a.next().expect("peeked"), b.next().expect("peeked"));
                    Some(merge_line(x, y))
                }
            },
        };
        out.extend(next);
    }
    out
}

fn merge_line(x: Line, y: Line) -> Line {
    // coverage.py's hits are 0/1 flags and combine to "covered anywhere"; other producers
    // write execution counts, which add up.
    let hits = if x.hits <= 1 && y.hits <= 1 {
        x.hits.max(y.hits)
    } else {
        x.hits + y.hits
    };
    let branches = match (x.branches, y.branches) {
        (Some(p), Some(q)) => Some(Branches {
            total: p.total.max(q.total),
            missing: intersect(&p.missing, &q.missing),
        }),
        (p, q) => p.or(q),
    };
    Line {
        number: x.number,
        hits,
        branches,
    }
}

/// Multiset intersection keeping `a`'s order (several distinct exits all read `exit`).
fn intersect(a: &[u32], b: &[u32]) -> Vec<u32> {
    let mut remaining: Vec<u32> = b.to_vec();
    let mut out = Vec::new();
    for d in a {
        if let Some(pos) = remaining.iter().position(|x| x == d) {
            remaining.swap_remove(pos);
            out.push(*d);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(number: u32, hits: u64, branches: Option<(u32, Vec<u32>)>) -> Line {
        Line {
            number,
            hits,
            branches: branches.map(|(total, missing)| Branches { total, missing }),
        }
    }

    #[test]
    fn covered_anywhere_and_branches_missing_everywhere() {
        let a = vec![
            line(1, 1, None),
            line(2, 0, Some((2, vec![3, EXIT]))),
            line(5, 0, None),
        ];
        let b = vec![
            line(1, 0, None),
            line(2, 1, Some((2, vec![EXIT]))),
            line(4, 1, None),
        ];
        let merged = merge_lines(a, b);
        assert_eq!(
            merged,
            vec![
                line(1, 1, None),
                line(2, 1, Some((2, vec![EXIT]))),
                line(4, 1, None),
                line(5, 0, None)
            ]
        );
    }

    #[test]
    fn multiset_intersection_of_exits() {
        assert_eq!(intersect(&[EXIT, EXIT, 7], &[EXIT, 7, 9]), vec![EXIT, 7]);
    }
}

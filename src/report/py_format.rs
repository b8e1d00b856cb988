//! Number formatting and ordering exactly as coverage.py does it, so merged Cobertura XML is
//! byte-comparable with `coverage xml`.

use std::cmp::Ordering;

/// coverage.py's `rate()`: `"1"` for an empty denominator, else Python's `"%.4g" % (hit/num)`.
pub fn rate(hit: u64, num: u64) -> String {
    if num == 0 {
        return "1".into();
    }
    format_g4(hit as f64 / num as f64)
}

/// Python's `%.4g`: 4 significant digits, trailing zeros removed, exponent form below 1e-4.
fn format_g4(x: f64) -> String {
    const PRECISION: i32 = 4;
    if x == 0.0 {
        return "0".into();
    }
    // Rounding to 4 significant digits first decides the exponent (0.99995 -> "1").
    let sci = format!("{:.*e}", (PRECISION - 1) as usize, x);
    let (mantissa, exp) = sci.split_once('e').expect("{:e} always has an exponent");
    let exp: i32 = exp.parse().expect("exponent is an integer");
    if (-4..PRECISION).contains(&exp) {
        let decimals = (PRECISION - 1 - exp).max(0) as usize;
        strip_zeros(format!("{x:.decimals$}"))
    } else {
        let mantissa = strip_zeros(mantissa.to_string());
        let sign = if exp < 0 { '-' } else { '+' };
        format!("{mantissa}e{sign}{:02}", exp.abs())
    }
}

fn strip_zeros(s: String) -> String {
    if !s.contains('.') {
        return s;
    }
    s.trim_end_matches('0').trim_end_matches('.').to_string()
}

/// coverage.py's `human_sorted` order: split into runs of digits and non-digits, compare
/// digit runs as numbers, then the whole string as a tie-break.
pub fn human_cmp(a: &str, b: &str) -> Ordering {
    let mut ca = chunks(a);
    let mut cb = chunks(b);
    loop {
        match (ca.next(), cb.next()) {
            (None, None) => return a.cmp(b),
            (None, Some(_)) => return Ordering::Less,
            (Some(_), None) => return Ordering::Greater,
            (Some(x), Some(y)) => {
                let ord = match (x, y) {
                    (Chunk::Num(x), Chunk::Num(y)) => cmp_numbers(x, y),
                    (Chunk::Text(x), Chunk::Text(y)) => x.cmp(y),
                    // Python's split always alternates text, number, text..., so a text chunk
                    // never meets a number chunk at the same index.
                    (Chunk::Text(_), Chunk::Num(_)) => Ordering::Less,
                    (Chunk::Num(_), Chunk::Text(_)) => Ordering::Greater,
                };
                if ord != Ordering::Equal {
                    return ord;
                }
            }
        }
    }
}

enum Chunk<'a> {
    Text(&'a str),
    Num(&'a str),
}

/// Chunks as `re.split(r"(\d+)", s)` gives them: text, number, text, ..., text (possibly empty).
fn chunks(s: &str) -> impl Iterator<Item = Chunk<'_>> {
    let mut rest = s;
    let mut want_text = true;
    let mut done = false;
    std::iter::from_fn(move || {
        if done {
            return None;
        }
        if want_text {
            let end = rest
                .find(|c: char| c.is_ascii_digit())
                .unwrap_or(rest.len());
            let (text, tail) = rest.split_at(end);
            rest = tail;
            want_text = false;
            if tail.is_empty() {
                done = true;
            }
            Some(Chunk::Text(text))
        } else {
            let end = rest
                .find(|c: char| !c.is_ascii_digit())
                .unwrap_or(rest.len());
            let (num, tail) = rest.split_at(end);
            rest = tail;
            want_text = true;
            Some(Chunk::Num(num))
        }
    })
}

fn cmp_numbers(a: &str, b: &str) -> Ordering {
    let a = a.trim_start_matches('0');
    let b = b.trim_start_matches('0');
    a.len().cmp(&b.len()).then_with(|| a.cmp(b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rate_matches_python_percent_g() {
        // Values checked against CPython's "%.4g".
        assert_eq!(rate(0, 0), "1");
        assert_eq!(rate(0, 5), "0");
        assert_eq!(rate(5, 5), "1");
        assert_eq!(rate(1, 3), "0.3333");
        assert_eq!(rate(2, 3), "0.6667");
        assert_eq!(rate(1, 2), "0.5");
        assert_eq!(rate(99999, 100000), "1");
        assert_eq!(rate(1, 20000), "5e-05");
        assert_eq!(rate(1, 1000), "0.001");
        assert_eq!(rate(123, 1000), "0.123");
    }

    #[test]
    fn human_order() {
        let mut v = vec![
            "a10.py", "a2.py", "a1b.py", "b.py", "a01b.py", "A.py", "10.py", "9.py",
        ];
        v.sort_by(|a, b| human_cmp(a, b));
        assert_eq!(
            v,
            vec!["9.py", "10.py", "A.py", "a01b.py", "a1b.py", "a2.py", "a10.py", "b.py"]
        );
    }
}

//! Durations written the way Compose and Go write them: `1m30s`, `500ms`, `2h`, `1.5s`, `90`.
//!
//! Used for healthcheck fields in compose files and for the duration flags (`--timeout`,
//! `--ready-timeout`, `--exit-grace`, `--test-timeout`). A bare number means seconds (what
//! users type on a command line); Compose itself always has a unit.

use std::time::Duration;

/// The longest duration a single test is believed to have: 1,000,000 s (11.6 days). Larger
/// values (`1e308` from a corrupted file) are not measurements, and accepting them would
/// saturate every total and estimate built on them.
pub const MAX_TEST_SECONDS: f64 = 1e6;

/// Whether `seconds` is a plausible measured duration: finite, non-negative, at most
/// [`MAX_TEST_SECONDS`].
pub fn is_plausible_seconds(seconds: f64) -> bool {
    seconds.is_finite() && (0.0..=MAX_TEST_SECONDS).contains(&seconds)
}

/// Parse a Go-style duration. Units: `ns`, `us`/`µs`, `ms`, `s`, `m`, `h`; several may follow
/// each other (`1h2m3s`). A bare number is seconds.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let s = text.trim();
    if s.is_empty() {
        return Err("empty duration".into());
    }
    if let Ok(secs) = s.parse::<f64>() {
        return seconds(secs, text);
    }
    let mut total = 0f64;
    let mut rest = s;
    while !rest.is_empty() {
        let num_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        if num_len == 0 {
            return Err(format!(
                "invalid duration {text:?}: expected a number before {rest:?}"
            ));
        }
        let value: f64 = rest[..num_len].parse().map_err(|_| {
            format!(
                "invalid duration {text:?}: bad number {:?}",
                &rest[..num_len]
            )
        })?;
        rest = &rest[num_len..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let unit = &rest[..unit_len];
        let factor = match unit {
            "ns" => 1e-9,
            "us" | "µs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            "" => {
                return Err(format!(
                    "invalid duration {text:?}: missing unit after {value}"
                ))
            }
            other => {
                return Err(format!(
                "invalid duration {text:?}: unknown unit {other:?} (use ms, s, m or h, e.g. 1m30s)"
            ))
            }
        };
        total += value * factor;
        rest = &rest[unit_len..];
    }
    seconds(total, text)
}

/// A duration the way [`parse_duration`] reads it back: whole seconds as `90s`, anything finer
/// in milliseconds (`1500ms`), or nanoseconds below a millisecond.
pub fn format_duration(duration: Duration) -> String {
    if duration.subsec_nanos() == 0 {
        format!("{}s", duration.as_secs())
    } else if duration.subsec_nanos() % 1_000_000 == 0 {
        format!("{}ms", duration.as_millis())
    } else {
        format!("{}ns", duration.as_nanos())
    }
}

fn seconds(secs: f64, text: &str) -> Result<Duration, String> {
    if !secs.is_finite() || secs < 0.0 {
        return Err(format!(
            "invalid duration {text:?}: must be a non-negative time"
        ));
    }
    Ok(Duration::from_secs_f64(secs))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_compose_forms() {
        assert_eq!(parse_duration("1m30s").unwrap(), Duration::from_secs(90));
        assert_eq!(parse_duration("500ms").unwrap(), Duration::from_millis(500));
        assert_eq!(parse_duration("2h").unwrap(), Duration::from_secs(7200));
        assert_eq!(parse_duration("1.5s").unwrap(), Duration::from_millis(1500));
        assert_eq!(parse_duration("10us").unwrap(), Duration::from_micros(10));
        assert_eq!(parse_duration("1h2m3s").unwrap(), Duration::from_secs(3723));
    }

    #[test]
    fn formatted_durations_parse_back_to_the_same_value() {
        for d in [
            Duration::from_secs(30),
            Duration::ZERO,
            Duration::from_millis(1500),
            Duration::from_nanos(500),
        ] {
            assert_eq!(parse_duration(&format_duration(d)).unwrap(), d, "{d:?}");
        }
        assert_eq!(format_duration(Duration::from_secs(90)), "90s");
        assert_eq!(format_duration(Duration::from_millis(250)), "250ms");
    }

    #[test]
    fn bare_number_is_seconds() {
        assert_eq!(parse_duration("90").unwrap(), Duration::from_secs(90));
        assert_eq!(parse_duration("0").unwrap(), Duration::ZERO);
    }

    #[test]
    fn rejects_garbage_with_a_hint() {
        assert!(parse_duration("").is_err());
        assert!(parse_duration("5 minutes")
            .unwrap_err()
            .contains("unknown unit"));
        assert!(parse_duration("s")
            .unwrap_err()
            .contains("expected a number"));
        assert!(parse_duration("-3").is_err());
        assert!(parse_duration("3x").unwrap_err().contains("unknown unit"));
    }
}

//! Names the way Compose forms them: project names, byte sizes (`64m`, `1gb`).

/// Lowercase and keep only `[a-z0-9_-]`, without a leading `_`/`-` (Compose's rule).
/// Returns `None` when nothing valid is left.
pub fn normalize_project_name(raw: &str) -> Option<String> {
    let kept: String = raw
        .to_lowercase()
        .chars()
        .filter(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '_' || *c == '-')
        .collect();
    let trimmed = kept.trim_start_matches(['_', '-']);
    (!trimmed.is_empty()).then(|| trimmed.to_string())
}

/// A name given with `-p` or `COMPOSE_PROJECT_NAME`: Compose refuses it unless it is already
/// valid (`[a-z0-9][a-z0-9_-]*`), with this message.
pub(crate) fn check_project_name(name: &str) -> Result<&str, String> {
    let mut chars = name.chars();
    let first_ok = chars
        .next()
        .is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
    let rest_ok =
        chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-');
    if first_ok && rest_ok {
        Ok(name)
    } else {
        Err(format!(
            "invalid project name {name:?}: it must consist only of lowercase letters, digits, `-` and `_`, and start with a letter or digit"
        ))
    }
}

/// Service names Compose accepts (`^[a-zA-Z0-9._-]+$` in the Compose schema): they become
/// parts of container names and DNS names.
pub(crate) fn check_service_name(name: &str) -> Result<(), String> {
    if !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
    {
        Ok(())
    } else {
        Err(format!(
            "invalid service name {name:?}: Docker Compose allows only letters, digits, `.`, `_` and `-` (rename the service)"
        ))
    }
}

/// Parse a byte size: a number of bytes, or a number with `b`, `k`, `m`, `g` (optionally
/// followed by `b`: `64m`, `1gb`, `512kb`), powers of 1024 as in Docker.
pub fn parse_byte_size(text: &str) -> Result<u64, String> {
    let s = text.trim().to_lowercase();
    let digits = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    let (num, unit) = s.split_at(digits);
    let value: f64 = num
        .parse()
        .map_err(|_| format!("expected a size like 64m or 1gb, got {text:?}"))?;
    let factor: u64 = match unit.trim_end_matches('b') {
        "" => 1,
        "k" => 1 << 10,
        "m" => 1 << 20,
        "g" => 1 << 30,
        _ => return Err(format!("expected a size like 64m or 1gb, got {text:?}")),
    };
    Ok((value * factor as f64) as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn project_names() {
        assert_eq!(
            normalize_project_name("My App.v2").as_deref(),
            Some("myappv2")
        );
        assert_eq!(normalize_project_name("_-x_y-").as_deref(), Some("x_y-"));
        assert_eq!(normalize_project_name("..."), None);
    }

    #[test]
    fn names_compose_refuses() {
        assert!(check_project_name("my-app_2").is_ok());
        for bad in ["My Proj", "_x", "-x", "", "a.b"] {
            assert!(check_project_name(bad).is_err(), "{bad}");
        }
        assert!(check_service_name("Web.1_x-2").is_ok());
        let e = check_service_name("my web").unwrap_err();
        assert!(e.contains("\"my web\"") && e.contains("rename"), "{e}");
        assert!(check_service_name("a/b").is_err());
    }

    #[test]
    fn byte_sizes() {
        assert_eq!(parse_byte_size("64m").unwrap(), 64 << 20);
        assert_eq!(parse_byte_size("1gb").unwrap(), 1 << 30);
        assert_eq!(parse_byte_size("2048").unwrap(), 2048);
        assert_eq!(parse_byte_size("512kb").unwrap(), 512 << 10);
        assert!(parse_byte_size("lots").is_err());
    }
}

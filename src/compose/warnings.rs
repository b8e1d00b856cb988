//! Keeping warnings and name lists readable for projects of any size.
//!
//! A generated project with 250,000 services gave 250,000 identical warnings ("service "svcN":
//! `deploy` is not supported...") and one 2.6 MB line listing every service name. Warnings
//! that differ only in the service (network, volume) they name are folded into one line, and
//! lists of names are cut after a few with a count of the rest.

use std::collections::HashMap;

/// How many names a list shows before "and N more".
pub(crate) const NAMES_SHOWN: usize = 5;

/// Up to [`NAMES_SHOWN`] names, then "and N more": `a, b, c, d, e and 249995 more`.
pub(crate) fn name_list<S: AsRef<str>>(names: &[S]) -> String {
    let shown: Vec<&str> = names.iter().take(NAMES_SHOWN).map(AsRef::as_ref).collect();
    let mut out = shown.join(", ");
    if names.len() > NAMES_SHOWN {
        out.push_str(&format!(" and {} more", names.len() - NAMES_SHOWN));
    }
    out
}

/// The kind (service, network, volume) and the names that share one warning.
type NamesSharing = (String, Vec<String>);

/// Fold warnings of the form `KIND "NAME": MESSAGE` (KIND being service, network or volume)
/// that share KIND and MESSAGE into one `N KINDs: MESSAGE (a, b, c and N-3 more)` line when
/// more than [`NAMES_SHOWN`] names share them; drop exact repeats. Order: first occurrence.
pub(crate) fn aggregate_warnings(warnings: Vec<String>) -> Vec<String> {
    // (kind, message) -> index into `slots`.
    let mut groups: HashMap<(String, String), usize> = HashMap::new();
    let mut seen: std::collections::HashSet<String> = std::collections::HashSet::new();
    // A slot is a plain warning or a group of names sharing one message.
    let mut slots: Vec<(String, Option<NamesSharing>)> = Vec::new();
    for warning in warnings {
        if !seen.insert(warning.clone()) {
            continue;
        }
        let subject = split_subject(&warning)
            .map(|(kind, name, message)| (kind.to_string(), name.to_string(), message.to_string()));
        match subject {
            Some((kind, name, message)) => match groups.get(&(kind.clone(), message.clone())) {
                Some(&slot) => {
                    if let Some((_, names)) = &mut slots[slot].1 {
                        names.push(name);
                    }
                }
                None => {
                    groups.insert((kind.clone(), message), slots.len());
                    slots.push((warning, Some((kind, vec![name]))));
                }
            },
            None => slots.push((warning, None)),
        }
    }
    slots
        .into_iter()
        .map(|(first, group)| match group {
            Some((kind, names)) if names.len() > NAMES_SHOWN => {
                let message = split_subject(&first).map_or("", |(_, _, m)| m);
                format!("{} {kind}s: {message} ({})", names.len(), name_list(&names))
            }
            Some((kind, names)) if names.len() > 1 => {
                let message = split_subject(&first).map_or("", |(_, _, m)| m);
                names
                    .iter()
                    .map(|n| format!("{kind} {n}: {message}"))
                    .collect::<Vec<_>>()
                    .join("\n")
            }
            _ => first,
        })
        .flat_map(|w| w.split('\n').map(str::to_string).collect::<Vec<_>>())
        .collect()
}

/// `service "web": message` -> ("service", "\"web\"", "message"); the name keeps its quotes
/// (it is printed as it was). `None` for any other form.
fn split_subject(warning: &str) -> Option<(&str, &str, &str)> {
    let (kind, rest) = warning.split_once(' ')?;
    if !matches!(kind, "service" | "network" | "volume") || !rest.starts_with('"') {
        return None;
    }
    // The closing quote of a Debug-quoted name: skip escaped characters.
    let bytes = rest.as_bytes();
    let mut i = 1;
    while i < bytes.len() {
        match bytes[i] {
            b'\\' => i += 2,
            b'"' => break,
            _ => i += 1,
        }
    }
    let name = rest.get(..=i)?;
    let message = rest.get(i + 1..)?.strip_prefix(": ")?;
    Some((kind, name, message))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn twenty_thousand_identical_warnings_become_one_short_line() {
        let warnings: Vec<String> = (0..20_000)
            .map(|i| {
                format!(
                    "service \"svc{i}\": `deploy` is not supported by compose-shard and is ignored"
                )
            })
            .chain(["the \"B\" variable is not set".to_string()])
            .collect();
        let out = aggregate_warnings(warnings);
        assert_eq!(
            out,
            vec![
                "20000 services: `deploy` is not supported by compose-shard and is ignored (\"svc0\", \"svc1\", \"svc2\", \"svc3\", \"svc4\" and 19995 more)".to_string(),
                "the \"B\" variable is not set".to_string(),
            ]
        );
    }

    #[test]
    fn few_or_different_warnings_stay_as_they_are_and_repeats_go() {
        let warnings = vec![
            "service \"a\": `deploy` is not supported".to_string(),
            "service \"b \\\" q\": `deploy` is not supported".to_string(),
            "service \"a\": unknown key `x` is ignored".to_string(),
            "service \"a\": `deploy` is not supported".to_string(),
            "top-level key `x` is ignored".to_string(),
        ];
        let out = aggregate_warnings(warnings);
        assert_eq!(
            out,
            vec![
                "service \"a\": `deploy` is not supported",
                "service \"b \\\" q\": `deploy` is not supported",
                "service \"a\": unknown key `x` is ignored",
                "top-level key `x` is ignored",
            ]
        );
    }

    #[test]
    fn name_lists_are_cut_with_a_count() {
        let names: Vec<String> = (0..8).map(|i| format!("s{i}")).collect();
        assert_eq!(name_list(&names), "s0, s1, s2, s3, s4 and 3 more");
        assert_eq!(name_list(&["a", "b"]), "a, b");
    }
}

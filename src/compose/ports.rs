//! `ports` and `expose` in short and long syntax, canonicalised to [`PortMapping`]s.
//!
//! Short syntax: `[[HOST_IP:]HOST:]CONTAINER[/PROTO]`, where HOST and CONTAINER may be ranges;
//! equal-length ranges map port by port, a host range for one container port stays a range
//! (the engine picks one), a container range alone expands to one ephemeral mapping per port.

use serde_yaml::Value;

use super::model::PortMapping;

/// Parse one `ports` entry (string, number or long-syntax mapping).
pub(crate) fn parse_port(value: &Value) -> Result<Vec<PortMapping>, String> {
    match value {
        Value::Number(n) => Ok(vec![PortMapping {
            target: port_number(&n.to_string())?,
            published: None,
            host_ip: None,
            protocol: "tcp".into(),
        }]),
        Value::String(s) => parse_short(s),
        Value::Mapping(m) => {
            let target = m
                .get("target")
                .map(scalar)
                .ok_or("long syntax needs `target`")?;
            let published = m.get("published").map(scalar).filter(|s| !s.is_empty());
            let host_ip = m.get("host_ip").map(scalar);
            // Compose v2 refuses what is not an IP address, an empty one included.
            if let Some(ip) = &host_ip {
                if ip.parse::<std::net::IpAddr>().is_err() {
                    return Err(format!("invalid host_ip {ip:?}: expected an IP address"));
                }
            }
            Ok(vec![PortMapping {
                target: port_number(&target)?,
                published,
                host_ip,
                protocol: m
                    .get("protocol")
                    .and_then(Value::as_str)
                    .unwrap_or("tcp")
                    .to_string(),
            }])
        }
        _ => Err("expected \"HOST:CONTAINER\", a port number or a mapping with `target`".into()),
    }
}

fn scalar(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        _ => String::new(),
    }
}

fn port_number(s: &str) -> Result<u16, String> {
    s.trim()
        .parse::<u16>()
        .map_err(|_| format!("expected a port number (1-65535), got {s:?}"))
}

/// `"8000"` or `"2003-2004"` -> (first, last).
fn range(s: &str) -> Result<(u16, u16), String> {
    match s.split_once('-') {
        Some((a, b)) => {
            let (a, b) = (port_number(a)?, port_number(b)?);
            if b < a {
                return Err(format!("port range {s:?} ends before it starts"));
            }
            Ok((a, b))
        }
        None => {
            let p = port_number(s)?;
            Ok((p, p))
        }
    }
}

fn parse_short(text: &str) -> Result<Vec<PortMapping>, String> {
    let (spec, protocol) = match text.rsplit_once('/') {
        Some((s, p)) => (s, p.to_string()),
        None => (text, "tcp".to_string()),
    };
    // An IPv6 host address is written in brackets: `[::1]:8000:80`.
    let (host_ip, rest) = if let Some(stripped) = spec.strip_prefix('[') {
        let (ip, rest) = stripped
            .split_once("]:")
            .ok_or_else(|| format!("invalid port {text:?}: unclosed `[` in the host address"))?;
        (Some(ip.to_string()), rest)
    } else {
        let parts: Vec<&str> = spec.split(':').collect();
        if parts.len() == 3 {
            (Some(parts[0].to_string()), &spec[parts[0].len() + 1..])
        } else {
            (None, spec)
        }
    };
    let (host, container) = match rest.split_once(':') {
        Some((h, c)) => (Some(h), c),
        None => (None, rest),
    };
    let (c_lo, c_hi) = range(container).map_err(|e| format!("invalid port {text:?}: {e}"))?;
    let host = host.filter(|h| !h.is_empty());
    let mut out = Vec::new();
    match host {
        None => {
            for p in c_lo..=c_hi {
                out.push(mapping(p, None, &host_ip, &protocol));
            }
        }
        Some(h) => {
            let (h_lo, h_hi) = range(h).map_err(|e| format!("invalid port {text:?}: {e}"))?;
            if c_lo == c_hi {
                out.push(mapping(c_lo, Some(h.to_string()), &host_ip, &protocol));
            } else if h_hi - h_lo == c_hi - c_lo {
                for (i, p) in (c_lo..=c_hi).enumerate() {
                    let published = (h_lo + i as u16).to_string();
                    out.push(mapping(p, Some(published), &host_ip, &protocol));
                }
            } else {
                return Err(format!(
                    "invalid port {text:?}: host and container ranges have different lengths"
                ));
            }
        }
    }
    Ok(out)
}

fn mapping(
    target: u16,
    published: Option<String>,
    host_ip: &Option<String>,
    protocol: &str,
) -> PortMapping {
    PortMapping {
        target,
        published,
        host_ip: host_ip.clone(),
        protocol: protocol.to_string(),
    }
}

/// Parse one `expose` entry into container ports (`"5432"`, `"8125/udp"`), ranges expanded.
pub(crate) fn parse_expose(value: &Value) -> Result<Vec<String>, String> {
    let text = scalar(value);
    if text.is_empty() && value.is_string() {
        // `expose: ["${PORT}"]` with PORT unset: Compose v2 accepts it and exposes nothing.
        return Ok(Vec::new());
    }
    if text.is_empty() {
        return Err("expected a port number or \"PORT/PROTO\"".into());
    }
    let (spec, proto) = match text.split_once('/') {
        Some((s, p)) => (s, Some(p)),
        None => (text.as_str(), None),
    };
    let (lo, hi) = range(spec).map_err(|e| format!("invalid expose {text:?}: {e}"))?;
    Ok((lo..=hi)
        .map(|p| match proto {
            Some(pr) => format!("{p}/{pr}"),
            None => p.to_string(),
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pm(target: u16, published: Option<&str>, ip: Option<&str>, proto: &str) -> PortMapping {
        PortMapping {
            target,
            published: published.map(str::to_string),
            host_ip: ip.map(str::to_string),
            protocol: proto.into(),
        }
    }

    fn short(s: &str) -> Vec<PortMapping> {
        parse_port(&Value::from(s)).unwrap()
    }

    #[test]
    fn short_syntax_forms() {
        assert_eq!(
            short("8000:8000"),
            vec![pm(8000, Some("8000"), None, "tcp")]
        );
        assert_eq!(short("3000"), vec![pm(3000, None, None, "tcp")]);
        assert_eq!(
            short("127.0.0.1:5432:5432"),
            vec![pm(5432, Some("5432"), Some("127.0.0.1"), "tcp")]
        );
        assert_eq!(
            short("8125:8125/udp"),
            vec![pm(8125, Some("8125"), None, "udp")]
        );
        assert_eq!(
            short("2003-2004:2003-2004"),
            vec![
                pm(2003, Some("2003"), None, "tcp"),
                pm(2004, Some("2004"), None, "tcp")
            ]
        );
        assert_eq!(
            short("9000-9001"),
            vec![pm(9000, None, None, "tcp"), pm(9001, None, None, "tcp")]
        );
        assert_eq!(
            short("8000-8010:80"),
            vec![pm(80, Some("8000-8010"), None, "tcp")]
        );
        assert_eq!(
            short("[::1]:80:8080"),
            vec![pm(8080, Some("80"), Some("::1"), "tcp")]
        );
        assert_eq!(
            short("127.0.0.1::80"),
            vec![pm(80, None, Some("127.0.0.1"), "tcp")]
        );
    }

    #[test]
    fn numbers_and_long_syntax() {
        assert_eq!(
            parse_port(&Value::from(80)).unwrap(),
            vec![pm(80, None, None, "tcp")]
        );
        let long: Value = serde_yaml::from_str(
            "{target: 80, published: 8080, protocol: udp, host_ip: 0.0.0.0, mode: host}",
        )
        .unwrap();
        assert_eq!(
            parse_port(&long).unwrap(),
            vec![pm(80, Some("8080"), Some("0.0.0.0"), "udp")]
        );
    }

    #[test]
    fn bad_ports_are_errors() {
        assert!(parse_port(&Value::from("abc")).is_err());
        assert!(parse_port(&Value::from("1-3:1-2")).is_err());
        assert!(parse_port(&Value::from("70000")).is_err());
    }

    #[test]
    fn expose_forms() {
        assert_eq!(parse_expose(&Value::from(5432)).unwrap(), vec!["5432"]);
        assert_eq!(
            parse_expose(&Value::from("8125/udp")).unwrap(),
            vec!["8125/udp"]
        );
        assert_eq!(
            parse_expose(&Value::from("1-3")).unwrap(),
            vec!["1", "2", "3"]
        );
    }
}

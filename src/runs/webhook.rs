//! Which webhook targets a run may name (checked when the run is created; the address the
//! name resolves to is checked again, and pinned, when the webhook is sent: `runner.py`).
//!
//! Like the reference, loopback targets — a path on this server, `localhost`, `127.0.0.1` —
//! are refused by default, and so are private, link-local and other non-global addresses
//! (a webhook must not be a way into the server's own network). URLs with credentials
//! (`user@host`) are refused: they are a classic way to make two URL parsers disagree on the
//! host. `GRAPHWARD_WEBHOOK_ALLOW_PRIVATE=1` lifts the address rules (local development with
//! a receiver on this machine).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::config::env_vars;

/// Whether the address rules are lifted (`GRAPHWARD_WEBHOOK_ALLOW_PRIVATE=1`).
pub fn private_targets_allowed() -> bool {
    std::env::var(env_vars::GRAPHWARD_WEBHOOK_ALLOW_PRIVATE).is_ok_and(|value| value == "1")
}

/// Checks a run's `webhook`; the error is the 422 detail.
pub fn check_target(url: &str, allow_private: bool) -> Result<(), String> {
    let refused = |why: &str| Err(format!("Invalid webhook '{url}': {why}"));
    if url.starts_with('/') {
        if allow_private {
            return Ok(());
        }
        return refused("a path on this server is a loopback target, which is not allowed");
    }
    let Some((scheme, rest)) = url.split_once("://") else {
        return refused("expected an http:// or https:// URL");
    };
    if !scheme.eq_ignore_ascii_case("http") && !scheme.eq_ignore_ascii_case("https") {
        return refused("expected an http:// or https:// URL");
    }
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    if authority.contains('@') {
        return refused("credentials in the URL are not allowed");
    }
    if authority.chars().any(|c| c.is_whitespace() || c.is_control() || c == '\\') {
        return refused("the host is not valid");
    }
    let host = match authority.strip_prefix('[') {
        Some(bracketed) => match bracketed.split_once(']') {
            Some((inside, _)) => inside,
            None => return refused("the host is not valid"),
        },
        None => authority.rsplit_once(':').map_or(authority, |(host, _)| host),
    };
    if host.is_empty() {
        return refused("the URL has no host");
    }
    if allow_private {
        return Ok(());
    }
    let lower = host.trim_end_matches('.').to_ascii_lowercase();
    if lower == "localhost" || lower.ends_with(".localhost") {
        return refused("loopback targets are not allowed");
    }
    match host.parse::<IpAddr>().ok().or_else(|| legacy_ipv4(&lower).map(IpAddr::V4)) {
        Some(address) if !is_global(address) => refused("loopback, private and other non-global addresses are not allowed"),
        _ => Ok(()),
    }
}

/// The IPv4 spellings resolvers accept besides dotted quads (`inet_aton`): `127.1`,
/// `2130706433`, `0x7f.0.0.1`, `0177.0.0.1` — so `http://127.1/` is loopback here too.
fn legacy_ipv4(host: &str) -> Option<Ipv4Addr> {
    let parts: Vec<&str> = host.split('.').collect();
    if parts.is_empty() || parts.len() > 4 {
        return None;
    }
    let numbers: Vec<u64> = parts
        .iter()
        .map(|part| {
            if let Some(hex) = part.strip_prefix("0x") {
                u64::from_str_radix(hex, 16).ok()
            } else if part.len() > 1 && part.starts_with('0') {
                u64::from_str_radix(&part[1..], 8).ok()
            } else {
                part.parse::<u64>().ok()
            }
        })
        .collect::<Option<_>>()?;
    let (last, leading) = numbers.split_last()?;
    if leading.iter().any(|&number| number > 255) || *last >= 1 << (8 * (5 - numbers.len())) {
        return None;
    }
    let value = leading.iter().enumerate().fold(*last, |value, (index, &number)| value | (number << (24 - 8 * index)));
    u32::try_from(value).ok().map(Ipv4Addr::from)
}

/// Whether an address is globally routable (the rule `runner.py` applies to resolved
/// addresses too).
pub fn is_global(address: IpAddr) -> bool {
    match address {
        IpAddr::V4(v4) => is_global_v4(v4),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => is_global_v4(v4),
            None => is_global_v6(v6),
        },
    }
}

fn is_global_v4(address: Ipv4Addr) -> bool {
    let [a, b, c, _] = address.octets();
    !(address.is_unspecified()
        || address.is_loopback()
        || address.is_private()
        || address.is_link_local()
        || address.is_broadcast()
        || address.is_documentation()
        || address.is_multicast()
        || a == 0
        || (a == 100 && (64..128).contains(&b)) // shared address space (CGNAT)
        || (a == 192 && b == 0 && c == 0) // IETF protocol assignments
        || (a == 198 && (18..20).contains(&b)) // benchmarking
        || a >= 240) // reserved
}

fn is_global_v6(address: Ipv6Addr) -> bool {
    let segments = address.segments();
    let embedded = |high: u16, low: u16| Ipv4Addr::from((u32::from(high) << 16) | u32::from(low));
    if segments[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
        return is_global_v4(embedded(segments[6], segments[7])); // NAT64
    }
    if segments[0] == 0x2002 {
        return is_global_v4(embedded(segments[1], segments[2])); // 6to4
    }
    !(address.is_unspecified()
        || address.is_loopback()
        || address.is_multicast()
        || (segments[0] & 0xfe00) == 0xfc00 // unique local
        || (segments[0] & 0xffc0) == 0xfe80 // link-local
        || (segments[0] & 0xffc0) == 0xfec0 // site-local (deprecated)
        || (segments[0] == 0x2001 && segments[1] == 0x0db8) // documentation
        || (segments[0] == 0x2001 && segments[1] == 0) // Teredo: an IPv4 address behind it
        || segments[0] == 0x0100 && segments[1..4] == [0, 0, 0] // discard-only
        || address.to_ipv4().is_some_and(|v4| !is_global_v4(v4))) // IPv4-compatible, mapped
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_private_and_path_targets_are_refused() {
        for url in [
            "/threads/x/runs",
            "http://localhost:8000/hook",
            "http://LOCALHOST./hook",
            "http://api.localhost/hook",
            "http://127.0.0.1:9/hook",
            "http://127.1.2.3/",
            "http://127.1:8000/",
            "http://2130706433/",
            "http://0x7f.0.0.1/",
            "http://0177.0.0.1/",
            "http://10.1/",
            "http://10.0.0.1/",
            "http://192.168.1.1/",
            "http://172.16.0.1/",
            "http://169.254.169.254/latest/meta-data",
            "http://0.0.0.0/",
            "http://100.64.0.1/",
            "http://[::1]/",
            "http://[::ffff:127.0.0.1]/",
            "http://[fd00::1]/",
            "http://[fe80::1]/",
            "http://[::7f00:1]/",
            "http://[64:ff9b::a00:1]/",
            "http://[2002:c0a8:101::1]/",
            "http://[2001:0:4136:e378::1]/",
            "http://user@example.com/",
            "http://example.com@127.0.0.1/",
            "ftp://example.com/",
            "example.com/hook",
            "http:///hook",
        ] {
            assert!(check_target(url, false).is_err(), "{url} was allowed");
        }
    }

    #[test]
    fn public_targets_are_allowed() {
        for url in ["https://hooks.example.com/run", "http://example.com:8080/x?y=1", "https://93.184.216.34/", "http://[2606:4700::1]/"] {
            assert_eq!(check_target(url, false), Ok(()), "{url}");
        }
        assert_eq!(check_target("http://127.0.0.1:9/hook", true), Ok(()));
        assert!(check_target("http://user@127.0.0.1/", true).is_err());
    }
}

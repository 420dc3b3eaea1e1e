//! Which webhook targets a run may name (checked when the run is created; the address the
//! name resolves to is checked again, and pinned, when the webhook is sent: `runner.py`).
//!
//! Like the reference, loopback targets — a path on this server, `localhost`, `127.0.0.1` —
//! are refused by default, and so are private, link-local and other non-global addresses
//! (a webhook must not be a way into the server's own network). URLs with credentials
//! (`user@host`) are refused: they are a classic way to make two URL parsers disagree on the
//! host. `GRAPHWARD_WEBHOOK_ALLOW_PRIVATE=1` lifts the address rules (local development with
//! a receiver on this machine).
//!
//! The `webhooks.url` policy of `langgraph.json` ([`UrlPolicy`]) applies on top of these
//! rules, never instead of them: [`check`] is both, at run (and cron) creation and again when
//! the webhook is sent (a run stored before the policy changed is held to the new one).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::config::{UrlPolicy, env_vars};

/// Whether the address rules are lifted (`GRAPHWARD_WEBHOOK_ALLOW_PRIVATE=1`).
pub fn private_targets_allowed() -> bool {
    std::env::var(env_vars::GRAPHWARD_WEBHOOK_ALLOW_PRIVATE).is_ok_and(|value| value == "1")
}

/// Checks a run's `webhook` against graphward's rules and `policy`; the error is the 422
/// detail.
pub fn check(url: &str, policy: &UrlPolicy) -> Result<(), String> {
    check_target(url, private_targets_allowed())?;
    check_policy(url, policy)
}

/// Checks a URL graphward's own rules let through ([`check_target`]) against `policy`.
fn check_policy(url: &str, policy: &UrlPolicy) -> Result<(), String> {
    let refused = |why: String| Err(format!("Invalid webhook '{url}': {why}"));
    if let Some(limit) = policy.max_url_length
        && url.chars().count() > limit
    {
        return refused(format!("longer than the {limit} characters allowed"));
    }
    if url.starts_with('/') {
        if policy.disable_loopback {
            return refused("a path on this server is a loopback target, which webhooks.url.disable_loopback refuses".to_string());
        }
        return Ok(());
    }
    let Some((scheme, rest)) = url.split_once("://") else {
        return refused("expected an http:// or https:// URL".to_string());
    };
    let https = scheme.eq_ignore_ascii_case("https");
    if policy.require_https && !https {
        return refused("only https:// URLs are allowed".to_string());
    }
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let (host, port) = match authority.strip_prefix('[') {
        Some(bracketed) => bracketed.split_once(']').map_or((bracketed, ""), |(host, after)| (host, after.strip_prefix(':').unwrap_or(after))),
        None => authority.rsplit_once(':').unwrap_or((authority, "")),
    };
    let host = host.trim_end_matches('.').to_ascii_lowercase();
    if !policy.allowed_domains.is_empty() && !policy.allowed_domains.iter().any(|pattern| domain_matches(pattern, &host)) {
        return refused(format!("the host {host} is not in webhooks.url.allowed_domains"));
    }
    if !policy.allowed_ports.is_empty() {
        let port = if port.is_empty() { Some(if https { 443 } else { 80 }) } else { port.parse::<u16>().ok() };
        if !port.is_some_and(|port| policy.allowed_ports.contains(&port)) {
            return refused("the port is not in webhooks.url.allowed_ports".to_string());
        }
    }
    Ok(())
}

/// `*.example.com` matches its subdomains (not `example.com`); anything else, itself.
fn domain_matches(pattern: &str, host: &str) -> bool {
    match pattern.strip_prefix("*.") {
        Some(apex) => host.strip_suffix(apex).is_some_and(|sub| sub.len() > 1 && sub.ends_with('.')),
        None => pattern == host,
    }
}

/// Checks a run's `webhook` against graphward's own rules; the error is the 422 detail.
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
    fn the_policy_narrows_what_is_allowed() {
        let policy = UrlPolicy {
            require_https: true,
            allowed_domains: vec!["hooks.example.com".into(), "*.corp.dev".into()],
            allowed_ports: vec![443, 8443],
            max_url_length: Some(60),
            disable_loopback: true,
        };
        for url in ["https://hooks.example.com/run", "https://HOOKS.example.com./run", "https://a.corp.dev:8443/x", "https://a.b.corp.dev/"] {
            assert_eq!(check_policy(url, &policy), Ok(()), "{url}");
        }
        for url in [
            "http://hooks.example.com/run",
            "https://other.example.com/",
            "https://corp.dev/",
            "https://evilcorp.dev/",
            "https://a.corp.dev.evil.com/",
            "https://hooks.example.com:444/",
            "https://hooks.example.com:x/",
            "/threads/x/runs",
            "https://hooks.example.com/a-path-that-is-far-too-long-for-the-limit",
        ] {
            assert!(check_policy(url, &policy).is_err(), "{url} was allowed");
        }
        let ports = UrlPolicy { allowed_ports: vec![80], ..UrlPolicy::default() };
        assert_eq!(check_policy("http://example.com/", &ports), Ok(()));
        assert!(check_policy("https://example.com/", &ports).is_err(), "https defaults to 443");
        assert_eq!(check_policy("http://[2606:4700::1]:80/", &ports), Ok(()));
        assert_eq!(check_policy("/threads/x/runs", &UrlPolicy::default()), Ok(()), "paths are graphward's rules' affair");
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

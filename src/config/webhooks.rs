//! The `webhooks` block of `langgraph.json`: which webhook URLs runs may name (`url`) and the
//! headers every webhook POST carries (`headers`, with `${{ env.VAR }}` resolved at startup).

use std::fmt;

use serde_json::{Map, Value};

use super::{Checker, ConfigError, json_type};

/// `webhooks.url`: rules a run's `webhook` must pass, on top of graphward's own (no loopback,
/// private or credential-carrying targets: `runs/webhook.rs`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UrlPolicy {
    /// `require_https`: absolute URLs must be `https://`.
    pub require_https: bool,
    /// `allowed_domains`: exact hosts, or `*.example.com` for its subdomains (not the apex),
    /// lowercased. Empty: any host.
    pub allowed_domains: Vec<String>,
    /// `allowed_ports`: the URL's port (443/80 when it names none) must be one of these.
    /// Empty: any port.
    pub allowed_ports: Vec<u16>,
    /// `max_url_length`: longer URLs are refused.
    pub max_url_length: Option<usize>,
    /// `disable_loopback`: paths on this server (relative URLs) are refused even where
    /// graphward would allow them (`GRAPHWARD_WEBHOOK_ALLOW_PRIVATE=1`).
    pub disable_loopback: bool,
}

/// A header value resolved from the environment; kept out of `Debug` output (it is often a
/// secret).
#[derive(Clone, PartialEq, Eq)]
pub struct HeaderValue(pub String);

impl fmt::Debug for HeaderValue {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str("\"<redacted>\"")
    }
}

/// The `webhooks` block.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WebhooksConfig {
    pub url: UrlPolicy,
    /// `headers`, templates resolved, in file order.
    pub headers: Vec<(String, HeaderValue)>,
    /// `http.disable_webhooks`: no webhook is called, also of runs queued before it was set.
    pub disabled: bool,
}

/// `env_prefix` when absent (the reference's default).
const DEFAULT_ENV_PREFIX: &str = "LG_WEBHOOK_";

/// Headers graphward writes itself on every webhook POST.
const RESERVED_HEADERS: &[&str] = &["host", "content-type", "content-length", "transfer-encoding", "connection"];

impl Checker<'_> {
    /// Parses `webhooks`; header templates read `env` (the config's) first, then the process
    /// environment. Sub-keys graphward does not act on are appended to `ignored`.
    pub(super) fn webhooks(&self, value: Option<&Value>, env: &[(String, String)], ignored: &mut Vec<String>) -> Result<WebhooksConfig, ConfigError> {
        let object = match value {
            None | Some(Value::Null) => return Ok(WebhooksConfig::default()),
            Some(Value::Object(object)) => object,
            Some(other) => {
                return Err(self.invalid("webhooks", format!("must be an object like {{\"url\": {{\"require_https\": true}}}}, not {}", json_type(other))));
            }
        };
        let known = ["url", "headers", "env_prefix"];
        ignored.extend(object.keys().filter(|key| !known.contains(&key.as_str())).map(|key| format!("webhooks.{key}")));
        let env_prefix = match object.get("env_prefix") {
            None | Some(Value::Null) => DEFAULT_ENV_PREFIX,
            Some(Value::String(prefix)) => prefix.as_str(),
            Some(other) => return Err(self.invalid("webhooks.env_prefix", format!("must be a string like \"LG_WEBHOOK_\", not {}", json_type(other)))),
        };
        Ok(WebhooksConfig { url: self.url_policy(object.get("url"), ignored)?, headers: self.webhook_headers(object.get("headers"), env_prefix, env)?, disabled: false })
    }

    fn url_policy(&self, value: Option<&Value>, ignored: &mut Vec<String>) -> Result<UrlPolicy, ConfigError> {
        let object = match value {
            None | Some(Value::Null) => return Ok(UrlPolicy::default()),
            Some(Value::Object(object)) => object,
            Some(other) => return Err(self.invalid("webhooks.url", format!("must be an object like {{\"allowed_domains\": [\"hooks.example.com\"]}}, not {}", json_type(other)))),
        };
        let known = ["require_https", "allowed_domains", "allowed_ports", "max_url_length", "disable_loopback"];
        ignored.extend(object.keys().filter(|key| !known.contains(&key.as_str())).map(|key| format!("webhooks.url.{key}")));
        let flag = |name: &str| match object.get(name) {
            None | Some(Value::Null) => Ok(false),
            Some(Value::Bool(flag)) => Ok(*flag),
            Some(other) => Err(self.invalid(&format!("webhooks.url.{name}"), format!("must be true or false, not {}", json_type(other)))),
        };
        let list = |name: &str| match object.get(name) {
            None | Some(Value::Null) => Ok(&[][..]),
            Some(Value::Array(items)) => Ok(items.as_slice()),
            Some(other) => Err(self.invalid(&format!("webhooks.url.{name}"), format!("must be a list, not {}", json_type(other)))),
        };
        let mut allowed_domains = Vec::new();
        for (index, item) in list("allowed_domains")?.iter().enumerate() {
            let domain = item.as_str().map(|text| text.trim().trim_end_matches('.').to_ascii_lowercase()).filter(|domain| is_domain_pattern(domain));
            let domain = domain.ok_or_else(|| {
                self.invalid(&format!("webhooks.url.allowed_domains[{index}]"), format!("must be a host like \"hooks.example.com\" or \"*.example.com\", not {item}"))
            })?;
            allowed_domains.push(domain);
        }
        let mut allowed_ports = Vec::new();
        for (index, item) in list("allowed_ports")?.iter().enumerate() {
            let port = item.as_u64().and_then(|port| u16::try_from(port).ok()).filter(|port| *port > 0);
            allowed_ports.push(port.ok_or_else(|| self.invalid(&format!("webhooks.url.allowed_ports[{index}]"), format!("must be a port number from 1 to 65535, not {item}")))?);
        }
        let max_url_length = match object.get("max_url_length") {
            None | Some(Value::Null) => None,
            Some(value) => Some(value.as_u64().and_then(|length| usize::try_from(length).ok()).filter(|length| *length > 0).ok_or_else(|| {
                self.invalid("webhooks.url.max_url_length", format!("must be a whole number of characters above 0, not {value}"))
            })?),
        };
        Ok(UrlPolicy { require_https: flag("require_https")?, allowed_domains, allowed_ports, max_url_length, disable_loopback: flag("disable_loopback")? })
    }

    fn webhook_headers(&self, value: Option<&Value>, env_prefix: &str, env: &[(String, String)]) -> Result<Vec<(String, HeaderValue)>, ConfigError> {
        let object: &Map<String, Value> = match value {
            None | Some(Value::Null) => return Ok(Vec::new()),
            Some(Value::Object(object)) => object,
            Some(other) => return Err(self.invalid("webhooks.headers", format!("must be an object of header name → value, not {}", json_type(other)))),
        };
        let mut headers = Vec::with_capacity(object.len());
        for (name, value) in object {
            let key = format!("webhooks.headers.{name}");
            if name.is_empty() || !name.bytes().all(is_token_byte) {
                return Err(self.invalid(&key, "is not a valid header name (letters, digits and !#$%&'*+-.^_`|~ only)"));
            }
            if RESERVED_HEADERS.contains(&name.to_ascii_lowercase().as_str()) {
                return Err(self.invalid(&key, "is set by graphward itself; remove it"));
            }
            let Some(template) = value.as_str() else {
                return Err(self.invalid(&key, format!("must be a string, not {}", json_type(value))));
            };
            let resolved = resolve_template(template, env_prefix, env).map_err(|message| self.invalid(&key, message))?;
            if resolved.chars().any(|c| c.is_control() && c != '\t') {
                return Err(self.invalid(&key, "must not contain line breaks or other control characters"));
            }
            headers.push((name.clone(), HeaderValue(resolved)));
        }
        Ok(headers)
    }
}

/// `hooks.example.com` or `*.example.com`: labels of letters, digits, `-` and `_`.
fn is_domain_pattern(pattern: &str) -> bool {
    let host = pattern.strip_prefix("*.").unwrap_or(pattern);
    !host.is_empty() && host.split('.').all(|label| !label.is_empty() && label.bytes().all(|byte| byte.is_ascii_alphanumeric() || byte == b'-' || byte == b'_'))
}

/// An HTTP token character (RFC 9110 `tchar`).
fn is_token_byte(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&byte)
}

/// Replaces every `${{ env.VAR }}` of `template` by the variable's value; `VAR` must start
/// with `env_prefix` (so a header cannot leak an arbitrary variable) and be set.
fn resolve_template(template: &str, env_prefix: &str, env: &[(String, String)]) -> Result<String, String> {
    let mut out = String::with_capacity(template.len());
    let mut rest = template;
    while let Some(start) = rest.find("${{") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 3..];
        let Some(end) = after.find("}}") else {
            return Err("has a `${{` without its `}}`; write templates as `${{ env.LG_WEBHOOK_TOKEN }}`".to_string());
        };
        let expression = after[..end].trim();
        let Some(name) = expression.strip_prefix("env.").filter(|name| !name.is_empty() && name.bytes().all(|byte| byte.is_ascii_alphanumeric() || byte == b'_')) else {
            return Err(format!("`${{{{ {expression} }}}}` is not of the form `${{{{ env.VAR }}}}`"));
        };
        if !name.starts_with(env_prefix) {
            return Err(format!("`{name}` does not start with `{env_prefix}`; rename the variable or set `webhooks.env_prefix`"));
        }
        let value = env.iter().rev().find(|(key, _)| key == name).map(|(_, value)| value.clone()).or_else(|| std::env::var(name).ok());
        let Some(value) = value else {
            return Err(format!("environment variable `{name}` is not set"));
        };
        out.push_str(&value);
        rest = &after[end + 2..];
    }
    out.push_str(rest);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::super::AppConfig;
    use super::*;

    fn webhooks(block: &str) -> Result<(WebhooksConfig, Vec<String>), String> {
        let dir = std::env::temp_dir().join(format!("graphward-webhooks-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        std::fs::write(dir.join("agent.py"), "graph = None\n").expect("write");
        let text = format!(r#"{{"graphs": {{"a": "./agent.py:graph"}}, "env": {{"LG_WEBHOOK_TOKEN": "t0k"}}, "webhooks": {block}}}"#);
        AppConfig::parse(&dir.join("langgraph.json"), &text).map(|config| (config.webhooks, config.ignored_keys)).map_err(|error| error.to_string())
    }

    #[test]
    fn policy_and_headers_parse() {
        let (config, ignored) = webhooks(
            r#"{"url": {"require_https": true, "allowed_domains": ["Hooks.Example.com.", "*.corp.dev"], "allowed_ports": [443, 8443], "max_url_length": 200, "disable_loopback": true},
                "headers": {"Authorization": "Bearer ${{ env.LG_WEBHOOK_TOKEN }}", "X-Env": "prod-${{env.LG_WEBHOOK_TOKEN}}-${{ env.LG_WEBHOOK_TOKEN }}"}, "signing": {}}"#,
        )
        .expect("valid");
        assert_eq!(
            config.url,
            UrlPolicy { require_https: true, allowed_domains: vec!["hooks.example.com".into(), "*.corp.dev".into()], allowed_ports: vec![443, 8443], max_url_length: Some(200), disable_loopback: true }
        );
        assert_eq!(config.headers, vec![("Authorization".into(), HeaderValue("Bearer t0k".into())), ("X-Env".into(), HeaderValue("prod-t0k-t0k".into()))]);
        assert!(!format!("{config:?}").contains("t0k"), "header values stay out of Debug");
        assert_eq!(ignored, vec!["webhooks.signing".to_string()]);
    }

    #[test]
    fn env_prefix_bounds_the_templates() {
        let (config, _) = webhooks(r#"{"env_prefix": "LG_", "headers": {"X": "${{ env.LG_WEBHOOK_TOKEN }}"}}"#).expect("valid");
        assert_eq!(config.headers[0].1, HeaderValue("t0k".into()));
        let message = webhooks(r#"{"headers": {"X": "${{ env.HOME }}"}}"#).expect_err("outside the prefix");
        assert!(message.contains("`webhooks.headers.X`: `HOME` does not start with `LG_WEBHOOK_`"), "{message}");
    }

    #[test]
    fn bad_values_are_one_line_naming_the_key() {
        let cases = [
            ("[]", "`webhooks`: must be an object"),
            (r#"{"url": 1}"#, "`webhooks.url`: must be an object"),
            (r#"{"url": {"require_https": "yes"}}"#, "`webhooks.url.require_https`: must be true or false"),
            (r#"{"url": {"allowed_domains": "example.com"}}"#, "`webhooks.url.allowed_domains`: must be a list"),
            (r#"{"url": {"allowed_domains": ["https://example.com"]}}"#, "`webhooks.url.allowed_domains[0]`: must be a host"),
            (r#"{"url": {"allowed_ports": [0]}}"#, "`webhooks.url.allowed_ports[0]`: must be a port number"),
            (r#"{"url": {"allowed_ports": [70000]}}"#, "`webhooks.url.allowed_ports[0]`: must be a port number"),
            (r#"{"url": {"max_url_length": -3}}"#, "`webhooks.url.max_url_length`: must be a whole number"),
            (r#"{"headers": []}"#, "`webhooks.headers`: must be an object"),
            (r#"{"headers": {"Bad Name": "x"}}"#, "`webhooks.headers.Bad Name`: is not a valid header name"),
            (r#"{"headers": {"Host": "x"}}"#, "`webhooks.headers.Host`: is set by graphward itself"),
            (r#"{"headers": {"X": 1}}"#, "`webhooks.headers.X`: must be a string"),
            (r#"{"headers": {"X": "a\nb"}}"#, "`webhooks.headers.X`: must not contain line breaks"),
            (r#"{"headers": {"X": "${{ env.LG_WEBHOOK_MISSING_VAR }}"}}"#, "environment variable `LG_WEBHOOK_MISSING_VAR` is not set"),
            (r#"{"headers": {"X": "${{ env.LG_WEBHOOK_TOKEN"}}"#, "without its `}}`"),
            (r#"{"headers": {"X": "${{ secrets.LG_WEBHOOK_TOKEN }}"}}"#, "is not of the form `${{ env.VAR }}`"),
            (r#"{"env_prefix": 3}"#, "`webhooks.env_prefix`: must be a string"),
        ];
        for (block, expected) in cases {
            let message = webhooks(block).expect_err(block);
            assert!(message.contains(expected) && message.contains("langgraph.json") && !message.contains('\n'), "{block}: {message}");
        }
    }
}

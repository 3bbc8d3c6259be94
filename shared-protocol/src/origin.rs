//! Which web pages may open a WebSocket to a service.
//!
//! Browsers send an `Origin` header with every WebSocket upgrade and let any page connect
//! anywhere, so the services check it: a page from another site must not drive a local
//! simulation or watch its reconstructions. Clients that are not browsers (the
//! simulation-service, tests, the load generator) send no `Origin` and are let through;
//! they are authenticated by the shared secret or session tokens instead.
//!
//! The default policy admits loopback origins (`localhost`, `127.0.0.0/8`, `[::1]`, any
//! port and scheme), which covers the relay's own origin on its default address, plus an
//! explicit list. The `Host` header is deliberately not trusted (DNS rebinding would let
//! any site claim to be same-origin).

/// An origin allow-list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OriginPolicy {
    /// Admit `http(s)://localhost|127.x.y.z|[::1][:port]`.
    pub allow_loopback: bool,
    /// Exact origins (`scheme://host[:port]`, lowercase, no trailing slash); `*` admits all.
    pub allowed: Vec<String>,
}

impl Default for OriginPolicy {
    fn default() -> Self {
        Self { allow_loopback: true, allowed: Vec::new() }
    }
}

/// A configured origin that is not of the form `scheme://host[:port]`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("allowed origin {got:?} is not of the form http(s)://host[:port] (no path, no trailing slash), or `*`")]
pub struct BadOrigin {
    pub got: String,
}

impl OriginPolicy {
    /// The default policy plus the comma-separated origins in `list`.
    pub fn with_list(list: &str) -> Result<Self, BadOrigin> {
        let mut policy = Self::default();
        for item in list.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            policy.allow(item)?;
        }
        Ok(policy)
    }

    /// Adds one origin to the allow-list.
    pub fn allow(&mut self, origin: &str) -> Result<(), BadOrigin> {
        if origin == "*" {
            self.allowed.push("*".into());
            return Ok(());
        }
        let normal = normalise(origin).ok_or_else(|| BadOrigin { got: origin.to_owned() })?;
        if !self.allowed.contains(&normal) {
            self.allowed.push(normal);
        }
        Ok(())
    }

    /// Whether an upgrade with this `Origin` header (absent for non-browser clients)
    /// may proceed.
    pub fn admits(&self, origin: Option<&str>) -> bool {
        let Some(origin) = origin else { return true };
        if self.allowed.iter().any(|a| a == "*") {
            return true;
        }
        let Some(normal) = normalise(origin) else { return false };
        if self.allow_loopback && is_loopback_origin(&normal) {
            return true;
        }
        self.allowed.contains(&normal)
    }
}

/// `scheme://host[:port]` in lowercase, or None when `origin` is not of that form
/// (including the opaque origin `null`).
fn normalise(origin: &str) -> Option<String> {
    let lower = origin.trim().to_ascii_lowercase();
    let (scheme, rest) = lower.split_once("://")?;
    if !matches!(scheme, "http" | "https") || rest.is_empty() {
        return None;
    }
    if rest.contains(['/', '?', '#', '@', ' ']) {
        return None;
    }
    Some(lower)
}

fn host_of(normal: &str) -> &str {
    let rest = normal.split_once("://").map(|(_, r)| r).unwrap_or(normal);
    if let Some(v6) = rest.strip_prefix('[') {
        return v6.split(']').next().unwrap_or("");
    }
    rest.split(':').next().unwrap_or("")
}

fn is_loopback_origin(normal: &str) -> bool {
    let host = host_of(normal);
    if host == "localhost" || host == "::1" {
        return true;
    }
    match host.parse::<std::net::Ipv4Addr>() {
        Ok(ip) => ip.is_loopback(),
        Err(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_admits_loopback_and_non_browsers_only() {
        let p = OriginPolicy::default();
        assert!(p.admits(None));
        for ok in ["http://localhost:5173", "http://127.0.0.1:8080", "https://127.1.2.3", "http://[::1]:8080", "HTTP://LOCALHOST"] {
            assert!(p.admits(Some(ok)), "{ok}");
        }
        for bad in [
            "http://evil.example",
            "http://localhost.evil.example",
            "http://127.0.0.1.evil.example",
            "null",
            "file://",
            "ws://localhost",
            "http://user@localhost",
        ] {
            assert!(!p.admits(Some(bad)), "{bad}");
        }
    }

    #[test]
    fn explicit_list_and_wildcard() {
        let p = OriginPolicy::with_list("https://v1.example:8443, http://10.0.0.5:8080").unwrap();
        assert!(p.admits(Some("https://v1.example:8443")));
        assert!(p.admits(Some("http://10.0.0.5:8080")));
        assert!(!p.admits(Some("https://v1.example")));
        let all = OriginPolicy::with_list("*").unwrap();
        assert!(all.admits(Some("http://anything.example")));
        assert_eq!(OriginPolicy::with_list("https://x/").unwrap_err(), BadOrigin { got: "https://x/".into() });
        let mut closed = OriginPolicy { allow_loopback: false, allowed: vec![] };
        assert!(!closed.admits(Some("http://localhost:8080")));
        closed.allow("http://localhost:8080").unwrap();
        assert!(closed.admits(Some("http://localhost:8080")));
    }
}

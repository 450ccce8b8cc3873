//! The names the console answers to. A browser tricked by DNS rebinding
//! sends the attacker's host name in `Host` (evil.example resolving to
//! 127.0.0.1), so a request is served only when its `Host` is one of the
//! console's own: an IP address (rebinding needs a name), `localhost`, or a
//! name given with `--public-host` (the names a reverse proxy or DNS gives the
//! console). Forwarded headers (`X-Forwarded-Host`, `-Proto`) are believed
//! only with `--trust-proxy`, since any client can send them.

/// The console's own names, from the configuration.
#[derive(Clone, Debug, Default)]
pub struct AllowedHosts {
    /// Extra names, lower-case, without port (`console.example.org`).
    names: Vec<String>,
}

impl AllowedHosts {
    pub fn new(names: impl IntoIterator<Item = String>) -> Self {
        AllowedHosts { names: names.into_iter().map(|n| n.trim().trim_end_matches('.').to_ascii_lowercase()).filter(|n| !n.is_empty()).collect() }
    }

    /// Whether a `Host` header value names this console.
    pub fn allows(&self, host: &str) -> bool {
        let Some(name) = host_name(host) else { return false };
        name.parse::<std::net::IpAddr>().is_ok() || name == "localhost" || self.names.iter().any(|n| *n == name)
    }

    pub fn describe(&self) -> String {
        let mut all = vec!["its IP addresses".to_string(), "localhost".to_string()];
        all.extend(self.names.iter().cloned());
        all.join(", ")
    }
}

/// The name part of a `Host` value, lower-case: `Example.org:3000` →
/// `example.org`, `[::1]:3000` → `::1`. `None` when it is not a plain
/// host[:port] (empty, a user part, a path, spaces, a bad port).
pub fn host_name(host: &str) -> Option<String> {
    let host = host.trim();
    if host.is_empty() || host.contains(['/', '@', ' ', '\\']) || host.chars().any(|c| c.is_control()) {
        return None;
    }
    let (name, port) = if let Some(rest) = host.strip_prefix('[') {
        let (inside, after) = rest.split_once(']')?;
        (inside, after.strip_prefix(':'))
    } else {
        match host.rsplit_once(':') {
            Some((n, p)) if !n.contains(':') => (n, Some(p)),
            Some(_) => return None,
            None => (host, None),
        }
    };
    if port.is_some_and(|p| p.is_empty() || p.parse::<u16>().is_err()) {
        return None;
    }
    let name = name.trim_end_matches('.').to_ascii_lowercase();
    (!name.is_empty()).then_some(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ip_addresses_localhost_and_configured_names_are_the_consoles() {
        let hosts = AllowedHosts::new(["Console.Example.org".to_string()]);
        for ok in ["127.0.0.1:3000", "127.0.0.1", "[::1]:3000", "10.0.0.5:80", "localhost:3000", "LOCALHOST", "console.example.org:443", "console.example.org."] {
            assert!(hosts.allows(ok), "{ok}");
        }
        for bad in [
            "evil.example:3000",
            "127.0.0.1.nip.io:3000",
            "localhost.evil.example",
            "console.example.org.evil.example",
            "",
            "user@127.0.0.1",
            "127.0.0.1:3000/x",
            "127.0.0.1:99999",
            "127.0.0.1:",
            "[::1",
            "a:b:c",
            "local\thost",
        ] {
            assert!(!hosts.allows(bad), "{bad:?}");
        }
        assert!(!AllowedHosts::default().allows("console.example.org"));
    }
}

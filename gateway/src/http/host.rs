//! `Host` values: parsing `name[:port]` / `[v6][:port]` and deciding whether a request's
//! `Host` names this gateway (the DNS-rebinding defence, `docs/security.md`).
//!
//! A browser sends, as `Host`, the host of the URL it loaded. A rebinding page is loaded
//! from the attacker's name (`evil.example`) that later resolves to the gateway, so its
//! requests carry `Host: evil.example`. Rebinding needs a name: a page loaded from an IP
//! literal carries that literal, and its origin is that address itself, not the attacker's.
//! So the gateway accepts any IP literal (the listen address, the address a port forward
//! or a load balancer exposes, loopback), the name `localhost`, and the names configured
//! in `server.allowed_hosts`; any other name is refused. A request without `Host`
//! (HTTP/1.0 tools) is not from a browser and passes.

use std::net::{IpAddr, Ipv6Addr};

/// A parsed `Host` value: the host (lowercase, IPv6 without brackets) and the port if given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostPort {
    /// Host name or IP literal, lowercase; an IPv6 literal without its brackets.
    pub host: String,
    /// The port, when the value names one.
    pub port: Option<u16>,
}

impl HostPort {
    /// Parses `name`, `name:port`, `1.2.3.4[:port]` or `[v6][:port]`; `None` for anything
    /// else (schemes, paths, user info, empty names, bad ports).
    pub fn parse(value: &str) -> Option<HostPort> {
        let (host, port) = if let Some(rest) = value.strip_prefix('[') {
            let (inside, after) = rest.split_once(']')?;
            inside.parse::<Ipv6Addr>().ok()?;
            let port = match after {
                "" => None,
                _ => Some(after.strip_prefix(':')?),
            };
            (inside, port)
        } else {
            match value.split_once(':') {
                Some((host, port)) => (host, Some(port)),
                None => (value, None),
            }
        };
        let port = match port {
            Some(p) if !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()) => {
                Some(p.parse::<u16>().ok()?)
            }
            Some(_) => return None,
            None => None,
        };
        let name_ok = !host.is_empty()
            && (value.starts_with('[')
                || host
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.' || b == b'_'));
        name_ok.then(|| HostPort {
            host: host.to_ascii_lowercase(),
            port,
        })
    }

    fn ip(&self) -> Option<IpAddr> {
        self.host.parse::<IpAddr>().ok().map(|ip| ip.to_canonical())
    }
}

/// Whether `host` (a request's `Host` value) may name this gateway: an IP literal,
/// `localhost`, or one of `allowed` (the `server.allowed_hosts` entries).
pub fn host_allowed(host: &str, allowed: &[String]) -> bool {
    let Some(host) = HostPort::parse(host) else {
        return false;
    };
    if host.host == "localhost" || host.ip().is_some() {
        return true;
    }
    allowed
        .iter()
        .filter_map(|entry| HostPort::parse(entry))
        .any(|entry| entry.host == host.host && entry.port.is_none_or(|p| host.port == Some(p)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_names_ips_and_ports() {
        let hp = |h: &str, p| {
            Some(HostPort {
                host: h.into(),
                port: p,
            })
        };
        assert_eq!(HostPort::parse("Cams.Example"), hp("cams.example", None));
        assert_eq!(HostPort::parse("cams:8443"), hp("cams", Some(8443)));
        assert_eq!(HostPort::parse("[::1]:80"), hp("::1", Some(80)));
        assert_eq!(HostPort::parse("[fd00::1]"), hp("fd00::1", None));
        for bad in [
            "", ":80", "a:", "a:b", "a:99999", "http://a", "a/b", "u@a", "[::1", "[zz]", "a b", "*",
        ] {
            assert_eq!(HostPort::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn accepts_ip_literals_localhost_and_configured_names_only() {
        let allowed = vec!["cams.example".to_owned(), "tv.example:8443".to_owned()];
        for ok in [
            "localhost",
            "localhost:1234",
            "127.0.0.1:8000",
            "[::1]:9",
            "192.168.1.5:8000",
            "192.168.1.5",
            "10.0.0.2:30080",
            "[fd00::5]:80",
            "CAMS.example:8000",
            "tv.example:8443",
        ] {
            assert!(host_allowed(ok, &allowed), "{ok}");
        }
        for bad in [
            "evil.example",
            "evil.example:8000",
            "192.168.1.5.nip.io:8000",
            "tv.example",
            "tv.example:80",
            "cams.example.evil.example",
            "localhost.evil.example",
            "",
        ] {
            assert!(!host_allowed(bad, &allowed), "{bad}");
        }
    }
}

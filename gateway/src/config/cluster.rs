//! The `cluster:` section: this gateway is one node of several that share one manifest.
//!
//! ```yaml
//! cluster:
//!   node: ${POD_NAME}                 # this node's name, unique in the cluster
//!   members:                          # a static list (this node included) ...
//!     - { name: a, url: http://10.0.0.1:8000 }
//!     - { name: b, url: http://10.0.0.2:8000 }
//!   # ... or a DNS name that lists the ready members (a Kubernetes headless Service):
//!   # members_dns: camgate-peers.cams.svc.cluster.local
//!   # port: 8000
//!   token: ${CAMGATE_CLUSTER_TOKEN}   # a configured viewer/admin token for every stream
//!   probe_interval: 1s                # how often members' /readyz is asked
//! ```
//!
//! Invariants: exactly one of `members` and `members_dns`; member names are unique and
//! name-like (they are HAProxy server names and rendezvous-hash inputs), `node` is one of a
//! static list; member URLs are `http://host:port` and nothing else (cluster traffic is
//! plain HTTP inside the cluster's network; TLS ends at the balancer, so `server.tls` and a
//! cluster do not mix); with `auth.tokens` configured, `token` is required and must be one
//! of them with access to every stream (nodes relay each other's streams with it). The
//! token is never echoed.

use std::time::Duration;

use super::auth::{AuthConfig, Role, Secret};
use super::error::{ConfigError, Location};
use super::node::{Node, Value};
use super::parse::{Ctx, Str};

/// The keys of `cluster:`.
pub(crate) const CLUSTER_KEYS: &[&str] = &[
    "node",
    "members",
    "members_dns",
    "port",
    "token",
    "probe_interval",
];
/// The keys of each `cluster.members` entry.
pub(crate) const MEMBER_KEYS: &[&str] = &["name", "url"];

/// Default of `probe_interval`.
pub const DEFAULT_PROBE_INTERVAL: Duration = Duration::from_secs(1);
/// Longest node name (a DNS label's length: pod names are node names).
pub const MAX_NODE_NAME: usize = 63;

/// A validated `cluster:` section.
#[derive(Debug, Clone, PartialEq)]
pub struct ClusterConfig {
    /// This node's name.
    pub node: String,
    /// Who the members are.
    pub membership: Membership,
    /// The token nodes relay each other's streams with (`None`: no authentication).
    pub token: Option<Secret>,
    /// How often every member's `/readyz` is asked.
    pub probe_interval: Duration,
}

impl ClusterConfig {
    /// This node's `host:port` in a static members list (`None` under DNS).
    pub fn own_authority(&self) -> Option<&str> {
        match &self.membership {
            Membership::Static(members) => members
                .iter()
                .find(|m| m.name == self.node)
                .map(|m| m.authority.as_str()),
            Membership::Dns { .. } => None,
        }
    }
}

/// Where the member list comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Membership {
    /// A fixed list, this node included.
    Static(Vec<Member>),
    /// Every address a DNS name resolves to, at `port` (a headless Service lists the
    /// ready pods); names come from the members' own `/readyz`.
    Dns {
        /// The DNS name.
        name: String,
        /// The gateways' port.
        port: u16,
    },
}

/// One member of a static list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    /// Its node name.
    pub name: String,
    /// `host:port` of its HTTP listener (from `http://host:port`).
    pub authority: String,
}

/// A `cluster.members` entry after the structural pass: name, URL, where it is.
type MemberDraft = (Option<Str>, Option<Str>, Location);

/// `cluster:` after the structural pass.
#[derive(Debug, Default)]
pub(crate) struct ClusterDraft {
    location: Option<Location>,
    node: Option<Str>,
    members: Option<(Vec<MemberDraft>, Location)>,
    members_dns: Option<Str>,
    port: Option<u16>,
    token: Option<Str>,
    probe_interval: Option<(Duration, Location)>,
}

impl Ctx<'_> {
    /// Reads `cluster:`.
    pub(super) fn cluster(&mut self, key_node: &Node, node: &Node) -> ClusterDraft {
        let mut draft = ClusterDraft {
            location: Some(self.loc(key_node)),
            ..ClusterDraft::default()
        };
        let Some(entries) = self.mapping(node, "`cluster`") else {
            return draft;
        };
        for (key, key_node, value) in self.keys(entries, "in `cluster`", CLUSTER_KEYS) {
            match key {
                "node" => draft.node = self.string(value, "node"),
                "members" => {
                    let items = self.list(value, "`cluster.members`");
                    let members = items.iter().filter_map(|item| self.member(item)).collect();
                    draft.members = Some((members, self.loc(key_node)));
                }
                "members_dns" => draft.members_dns = self.string(value, "members_dns"),
                "port" => {
                    draft.port = match value.value {
                        Value::Int(n) => self.within(value, "port", n, 1, 65535),
                        Value::UInt(n) => self.within(value, "port", n, 1, 65535).map(|n| n as i64),
                        ref other => {
                            self.error(
                                value,
                                format!(
                                    "`port` must be an integer from 1 to 65535, found {}",
                                    other.kind()
                                ),
                            );
                            None
                        }
                    }
                    .and_then(|n| u16::try_from(n).ok());
                }
                "token" => draft.token = self.string(value, "token"),
                "probe_interval" => draft.probe_interval = self.duration(value, "probe_interval"),
                _ => unreachable!("keys() only yields allowed keys"),
            }
        }
        draft
    }

    fn member(&mut self, node: &Node) -> Option<MemberDraft> {
        let entries = self.mapping(node, "each entry of `cluster.members`")?;
        let mut name = None;
        let mut url = None;
        for (key, _, value) in self.keys(entries, "in a cluster member", MEMBER_KEYS) {
            match key {
                "name" => name = self.string(value, "name"),
                "url" => url = self.string(value, "url"),
                _ => unreachable!("keys() only yields allowed keys"),
            }
        }
        Some((name, url, self.loc(node)))
    }
}

/// Checks the draft against the rest of the manifest and builds the section (`None` when
/// there is no `cluster:` or it has errors, which are recorded).
pub(crate) fn validate_cluster(
    draft: Option<ClusterDraft>,
    auth: &AuthConfig,
    tls: bool,
    errors: &mut Vec<ConfigError>,
) -> Option<ClusterConfig> {
    let draft = draft?;
    let location = draft.location.clone()?;
    let before = errors.len();
    let mut at = |location: &Location, message: String| {
        errors.push(ConfigError::at(location.clone(), message));
    };
    if tls {
        at(
            &location,
            "a cluster's nodes talk plain HTTP among themselves: terminate TLS at the balancer in front of them and remove `server.tls`".to_owned(),
        );
    }
    let node = match &draft.node {
        None => {
            at(
                &location,
                "`cluster` needs `node`: this node's name (e.g. `node: ${POD_NAME}`)".to_owned(),
            );
            None
        }
        Some(node) => match node_name_problem(&node.value) {
            Some(problem) => {
                at(&node.location, format!("`node` {problem}"));
                None
            }
            None => Some(node.value.clone()),
        },
    };
    let membership = match (draft.members, draft.members_dns) {
        (Some(_), Some(dns)) => {
            at(
                &dns.location,
                "`cluster` takes either `members` (a fixed list) or `members_dns` (a name that lists the ready members), not both".to_owned(),
            );
            None
        }
        (None, None) => {
            at(
                &location,
                "`cluster` needs `members` (a list of `{name, url}`) or `members_dns` with `port`"
                    .to_owned(),
            );
            None
        }
        (None, Some(dns)) => {
            if let Some(port) = draft.port {
                match host_problem(&dns.value) {
                    Some(problem) => {
                        at(&dns.location, format!("`members_dns` {problem}"));
                        None
                    }
                    None => Some(Membership::Dns {
                        name: dns.value,
                        port,
                    }),
                }
            } else {
                at(
                    &dns.location,
                    "`members_dns` needs `port`: the port every member listens on".to_owned(),
                );
                None
            }
        }
        (Some((entries, list_location)), None) => {
            let mut members: Vec<Member> = Vec::new();
            let mut seen: Vec<String> = Vec::new();
            for (name, url, entry) in entries {
                let (Some(name), Some(url)) = (name, url) else {
                    at(
                        &entry,
                        "each cluster member needs `name` and `url` (`http://host:port`)"
                            .to_owned(),
                    );
                    continue;
                };
                if let Some(problem) = node_name_problem(&name.value) {
                    at(&name.location, format!("member `name` {problem}"));
                    continue;
                }
                if seen.contains(&name.value) {
                    at(
                        &name.location,
                        format!("member `{}` is listed twice", name.value),
                    );
                    continue;
                }
                seen.push(name.value.clone());
                match member_authority(&url.value) {
                    Ok(authority) => members.push(Member {
                        name: name.value,
                        authority,
                    }),
                    Err(problem) => at(&url.location, format!("member `url` {problem}")),
                }
            }
            if let Some(node) = &node
                && !members.iter().any(|m| &m.name == node)
            {
                at(
                    &list_location,
                    format!(
                        "this node (`{node}`) is not among `cluster.members`: list every node, this one included"
                    ),
                );
            }
            Some(Membership::Static(members))
        }
    };
    if draft.port.is_some() && matches!(membership, Some(Membership::Static(_))) {
        at(
            &location,
            "`port` goes with `members_dns`; a static member gives its port in its `url`"
                .to_owned(),
        );
    }
    let token = check_token(draft.token, auth, &location, &mut at);
    let probe_interval = match draft.probe_interval {
        None => DEFAULT_PROBE_INTERVAL,
        Some((interval, at_interval)) => {
            if interval < Duration::from_millis(100) || interval > Duration::from_secs(60) {
                at(
                    &at_interval,
                    "`probe_interval` must be from 100ms to 60s".to_owned(),
                );
            }
            interval
        }
    };
    if errors.len() != before {
        return None;
    }
    Some(ClusterConfig {
        node: node?,
        membership: membership?,
        token,
        probe_interval,
    })
}

fn check_token(
    token: Option<Str>,
    auth: &AuthConfig,
    location: &Location,
    at: &mut impl FnMut(&Location, String),
) -> Option<Secret> {
    match token {
        None => {
            if auth.enabled() {
                at(
                    location,
                    "`cluster` needs `token` when `auth.tokens` is set: nodes relay each other's streams with it (a viewer token without `streams`, or an admin token)".to_owned(),
                );
            }
            None
        }
        Some(token) => {
            if !auth.enabled() {
                at(
                    &token.location,
                    "`token` is only used with `auth.tokens`; without authentication nodes need none".to_owned(),
                );
                return None;
            }
            let fits = auth.tokens.iter().any(|t| {
                t.secret.expose() == token.value
                    && (t.role == Role::Admin || (t.role == Role::Viewer && t.streams.is_none()))
            });
            if !fits {
                at(
                    &token.location,
                    "`token` must be one of `auth.tokens`: a viewer token without `streams`, or an admin token".to_owned(),
                );
            }
            Some(Secret::new(token.value))
        }
    }
}

/// Why `name` cannot name a node, if it cannot: 1–63 of `[A-Za-z0-9._-]`.
fn node_name_problem(name: &str) -> Option<String> {
    if name.is_empty() || name.len() > MAX_NODE_NAME {
        Some(format!("must be 1 to {MAX_NODE_NAME} characters long"))
    } else if !name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
    {
        Some("may only contain letters, digits, `.`, `_` and `-` (it is a server name in the balancer's configuration)".to_owned())
    } else {
        None
    }
}

/// Why `host` is not a host name or IP address, if it is not.
fn host_problem(host: &str) -> Option<String> {
    let ok = !host.is_empty()
        && host.len() <= 253
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b':' | b'[' | b']'));
    (!ok).then(|| "must be a host name or IP address".to_owned())
}

/// `host:port` of an `http://host:port[/]` member URL.
pub(crate) fn member_authority(url: &str) -> Result<String, String> {
    let rest = url.strip_prefix("http://").ok_or_else(|| {
        "must start with `http://` (nodes talk plain HTTP among themselves; TLS ends at the balancer)".to_owned()
    })?;
    let authority = rest.strip_suffix('/').unwrap_or(rest);
    let shape = "must be `http://host:port` with nothing after the port";
    let (host, port) = authority.rsplit_once(':').ok_or_else(|| shape.to_owned())?;
    if host_problem(host).is_some() || authority.contains(['/', '?', '#', '@']) {
        return Err(shape.to_owned());
    }
    match port.parse::<u16>() {
        Ok(p) if p > 0 => Ok(authority.to_owned()),
        _ => Err(shape.to_owned()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn member_urls_are_plain_http_host_and_port() {
        assert_eq!(
            member_authority("http://127.0.0.1:8000").unwrap(),
            "127.0.0.1:8000"
        );
        assert_eq!(
            member_authority("http://gw-0.peers:8000/").unwrap(),
            "gw-0.peers:8000"
        );
        assert_eq!(member_authority("http://[::1]:8000").unwrap(), "[::1]:8000");
        for bad in [
            "https://a:8000",
            "http://a",
            "http://a:0",
            "http://a:8000/x",
            "http://u:p@a:8000",
            "http://a:80000",
            "ws://a:1",
        ] {
            assert!(member_authority(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn node_names_are_server_names() {
        assert!(node_name_problem("camgate-0").is_none());
        assert!(node_name_problem("a.b_c").is_none());
        assert!(node_name_problem("").is_some());
        assert!(node_name_problem("a b").is_some());
        assert!(node_name_problem(&"x".repeat(64)).is_some());
    }
}

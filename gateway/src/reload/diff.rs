//! The per-stream difference between two configurations: what a reload must do.
//!
//! Pure and unit-tested; applying it is `app.rs`'s job. A stream whose `source` (plugin or
//! options) changed must restart its source; one where only the name, `on_demand` or
//! `idle_timeout` changed is updated in place without touching its source or viewers.
//!
//! Variants: a stream's `sub` hub follows its `sub:` and its main source. A changed `sub:`
//! (source unchanged) restarts the sub only ([`Diff::sub_changed`]; the main is at most
//! updated in place); a changed main source restarts both (a URL sub shares the main's
//! options, a derived one its pictures); a removed stream removes both.

use crate::config::{Manifest, StreamConfig};

/// What changed between two manifests.
#[derive(Debug, Default, PartialEq)]
pub struct Diff {
    /// New streams, to create.
    pub added: Vec<StreamConfig>,
    /// Ids of streams that disappeared: close their viewers, stop their source.
    pub removed: Vec<String>,
    /// Streams whose source changed: restart the source, keep the viewers.
    pub restarted: Vec<StreamConfig>,
    /// Streams where only presentation or lifecycle settings changed: update in place.
    pub updated: Vec<StreamConfig>,
    /// Streams whose `sub:` changed while their main source did not: restart (or add, or
    /// remove) the sub only. Such a stream is also in `updated` when other settings changed
    /// too, and never in `restarted` (which restarts the sub anyway).
    pub sub_changed: Vec<StreamConfig>,
    /// Ids of streams left exactly as they were.
    pub unchanged: Vec<String>,
    /// Settings that changed but only take effect after a restart of the gateway.
    pub restart_required: Vec<&'static str>,
}

impl Diff {
    /// Whether applying it changes any stream.
    pub fn touches_streams(&self) -> bool {
        !(self.added.is_empty()
            && self.removed.is_empty()
            && self.restarted.is_empty()
            && self.updated.is_empty()
            && self.sub_changed.is_empty())
    }

    /// A one-line summary for logs and the config status.
    pub fn summary(&self) -> String {
        format!(
            "{} added, {} removed, {} restarted, {} updated, {} unchanged",
            self.added.len(),
            self.removed.len(),
            self.restarted.len(),
            self.updated.len(),
            self.unchanged.len()
        )
    }
}

/// Compares `old` with `new`.
pub fn diff(old: &Manifest, new: &Manifest) -> Diff {
    let mut diff = Diff::default();
    for stream in &new.streams {
        match old.stream(&stream.id) {
            None => diff.added.push(stream.clone()),
            Some(previous) if previous == stream => diff.unchanged.push(stream.id.clone()),
            Some(previous) if previous.source != stream.source => {
                diff.restarted.push(stream.clone())
            }
            Some(previous) => {
                if previous.sub != stream.sub {
                    diff.sub_changed.push(stream.clone());
                }
                let mut same_sub = stream.clone();
                same_sub.sub.clone_from(&previous.sub);
                if same_sub != *previous {
                    diff.updated.push(stream.clone());
                }
            }
        }
    }
    diff.removed = old
        .streams
        .iter()
        .filter(|s| new.stream(&s.id).is_none())
        .map(|s| s.id.clone())
        .collect();
    if old.server.listen != new.server.listen {
        diff.restart_required.push("server.listen");
    }
    if old.server.tls.is_some() != new.server.tls.is_some() {
        // The listener speaks HTTPS or plain HTTP for its whole life; a new certificate
        // (or key) is used at once (`http/tls.rs`).
        diff.restart_required.push("server.tls");
    }
    if old.plugins != new.plugins {
        diff.restart_required.push("plugins.dir");
    }
    // Joining or leaving a cluster, or renaming this node, changes who owns every stream;
    // members, token and probe interval follow a reload (`cluster/`).
    if old.cluster.as_ref().map(|c| &c.node) != new.cluster.as_ref().map(|c| &c.node) {
        diff.restart_required.push("cluster.node");
    }
    diff
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{AnySource, parse};
    use std::path::Path;

    fn manifest(yaml: &str) -> Manifest {
        parse(yaml, Path::new("/m.yaml"), &|_| None, &AnySource).unwrap()
    }

    const BASE: &str = r#"
streams:
  - id: a
    source: { plugin: testsrc, fps: 10 }
  - id: b
    name: B
    source: { plugin: testsrc }
  - id: c
    source: { plugin: testsrc }
"#;

    #[test]
    fn classifies_every_stream() {
        let old = manifest(BASE);
        let new = manifest(
            r#"
server: { listen: 127.0.0.1:9000 }
streams:
  - id: c
    source: { plugin: testsrc }
  - id: a
    source: { plugin: testsrc, fps: 5 }
  - id: b
    name: Renamed
    idle_timeout: 5s
    source: { plugin: testsrc }
  - id: d
    source: { plugin: testsrc }
"#,
        );
        let d = diff(&old, &new);
        let ids = |v: &[StreamConfig]| v.iter().map(|s| s.id.clone()).collect::<Vec<_>>();
        assert_eq!(ids(&d.added), ["d"]);
        assert_eq!(ids(&d.restarted), ["a"]);
        assert_eq!(ids(&d.updated), ["b"]);
        // Moving a stream to another line is not a change.
        assert_eq!(d.unchanged, ["c"]);
        assert!(d.removed.is_empty());
        assert_eq!(d.restart_required, ["server.listen"]);
        assert!(d.touches_streams());
    }

    #[test]
    fn a_changed_sub_restarts_the_sub_only() {
        let old = manifest(
            "streams:\n  - id: a\n    source: { plugin: testsrc }\n    sub: { width: 320 }\n  - id: b\n    source: { plugin: testsrc }\n    sub: { width: 320 }\n  - id: c\n    source: { plugin: testsrc }\n    sub: { width: 320 }\n",
        );
        let new = manifest(
            "streams:\n  - id: a\n    source: { plugin: testsrc }\n    sub: { width: 640 }\n  - id: b\n    name: B\n    source: { plugin: testsrc }\n  - id: c\n    source: { plugin: testsrc, fps: 5 }\n    sub: { width: 640 }\n",
        );
        let d = diff(&old, &new);
        let ids = |v: &[StreamConfig]| v.iter().map(|s| s.id.clone()).collect::<Vec<_>>();
        assert_eq!(ids(&d.sub_changed), ["a", "b"]);
        // `a`'s main is not touched at all; `b` also got a new name (in place).
        assert_eq!(ids(&d.updated), ["b"]);
        // A new main source restarts both; it is not listed twice.
        assert_eq!(ids(&d.restarted), ["c"]);
        assert!(d.unchanged.is_empty());
        assert!(d.touches_streams());
    }

    #[test]
    fn removal_and_no_change() {
        let old = manifest(BASE);
        let same = diff(&old, &manifest(BASE));
        assert!(!same.touches_streams());
        assert_eq!(same.unchanged, ["a", "b", "c"]);
        let fewer = diff(
            &old,
            &manifest("streams:\n  - id: b\n    name: B\n    source: { plugin: testsrc }\n"),
        );
        assert_eq!(fewer.removed, ["a", "c"]);
        assert_eq!(
            fewer.summary(),
            "0 added, 2 removed, 0 restarted, 0 updated, 1 unchanged"
        );
    }
}

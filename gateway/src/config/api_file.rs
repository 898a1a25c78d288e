//! The API-managed streams file: streams created through the HTTP API live in a separate
//! file (by default next to the operator's manifest, `camgate.yaml` → `camgate.api.yaml`;
//! `server.api_streams_file` moves it, e.g. out of a read-only ConfigMap directory), so the
//! hand-written file is never rewritten.
//!
//! Invariants:
//! - The file is written atomically (`atomic.rs`: temp file in the same directory, fsync,
//!   rename, fsync of the directory), so a reader — the gateway's own watcher, an
//!   operator's `cat`, a crash — sees the old or the new content, never half of it. It is
//!   created with mode 0600: it may hold camera passwords.
//! - Its content is JSON, which is also YAML: the same strict parser reads it, with
//!   line:column errors, and only a `streams` list is allowed in it.
//! - It holds the RAW form: `${VAR}` references an operator wrote stay references, and API
//!   input is stored escaped (`${` → `$${`), so it is data and never reads the environment.
//!   Rewrites start from this raw form ([`read_stored_streams`]), never from the substituted
//!   running configuration, so no secret is written out in plain text by a rewrite.
//! - A stream id may be defined in the manifest or in the API file, not both.
//! - Loading records every file read (manifest, token files, API file) with the hash of the
//!   exact bytes parsed ([`SourceSet`]): what "unchanged" means for reloads.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::atomic::write_atomically;
use super::error::{ConfigError, ConfigErrors};
use super::model::{Manifest, SourceOptions, SourceValidator, StreamConfig};
use super::sources::{ReadLog, SourceSet};
use super::{EnvLookup, parse_recorded};

/// The default path of the API-managed streams file that belongs to `manifest`
/// (`<stem>.api.yaml` next to it); `server.api_streams_file` overrides it.
pub fn api_file_path(manifest: &Path) -> PathBuf {
    let stem = manifest
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "camgate".to_owned());
    manifest.with_file_name(format!("{stem}.api.yaml"))
}

/// A stream as the API file stores it, in its raw (unsubstituted) form and the manifest's
/// field names. Absent optional fields follow the manifest's defaults.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StoredStream {
    /// Stream id.
    pub id: String,
    /// Display name (absent: the id).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// On-demand or always-on (absent: on-demand).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_demand: Option<bool>,
    /// Idle timeout in the manifest's duration syntax (absent: `defaults.idle_timeout`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idle_timeout: Option<String>,
    /// Picture health thresholds, the manifest's `health_rules` (absent: the defaults).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health_rules: Option<SourceOptions>,
    /// The `source` mapping, with `plugin` first.
    pub source: SourceOptions,
    /// The `sub` mapping (`url`, or `width`/`height`/`quality`), if the stream has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sub: Option<SourceOptions>,
}

#[derive(Serialize)]
struct FileContent<'a> {
    streams: &'a [StoredStream],
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct StoredFile {
    #[serde(default)]
    streams: Option<Vec<StoredStream>>,
}

const HEADER: &str = "# Streams managed by camgate's HTTP API. Written atomically by the gateway;\n\
# edits by hand are applied like manifest edits but may be overwritten by the API.\n";

/// Why the API file could not be read or written. Messages name the file (operator
/// information) but never its content.
#[derive(Debug, thiserror::Error)]
pub enum ApiFileError {
    /// Reading failed.
    #[error("cannot read the API streams file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The file is not a `streams` list (edited by hand).
    #[error(
        "the API streams file {path} is not a valid `streams` list ({message}); fix or remove it"
    )]
    Format {
        /// The file.
        path: PathBuf,
        /// The parser's message.
        message: String,
    },
    /// Writing failed (e.g. a read-only directory).
    #[error(
        "cannot write the API streams file {path}: {source}. If this directory is read-only (a ConfigMap), set `server.api_streams_file` in the manifest to a writable path"
    )]
    Write {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
}

/// The content of an API file holding `streams` (a comment header, then pretty JSON with
/// one key per line, which error positions rely on).
pub fn api_file_text(streams: &[StoredStream]) -> String {
    let json = serde_json::to_string_pretty(&FileContent { streams })
        .unwrap_or_else(|_| "{\"streams\": []}".to_owned());
    format!("{HEADER}{json}\n")
}

/// The raw streams stored in the API file at `path` (none when it does not exist).
pub fn read_stored_streams(path: &Path) -> Result<Vec<StoredStream>, ApiFileError> {
    let bytes = match std::fs::read(path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(source) => {
            return Err(ApiFileError::Read {
                path: path.to_owned(),
                source,
            });
        }
    };
    let format = |message: String| ApiFileError::Format {
        path: path.to_owned(),
        message,
    };
    let text = String::from_utf8(bytes).map_err(|_| format("not UTF-8 text".to_owned()))?;
    if text.trim().is_empty() {
        return Ok(Vec::new());
    }
    let file: StoredFile = serde_saphyr::from_str(&text).map_err(|e| format(e.to_string()))?;
    Ok(file.streams.unwrap_or_default())
}

/// Writes `streams` to `path` atomically with mode 0600.
pub fn write_api_file(path: &Path, streams: &[StoredStream]) -> Result<(), ApiFileError> {
    write_atomically(path, api_file_text(streams).as_bytes()).map_err(|source| {
        ApiFileError::Write {
            path: path.to_owned(),
            source,
        }
    })
}

/// The API file's bytes before a write (`None`: it did not exist), to put back when what
/// follows the write fails, so nothing is left behind that would make later reloads fail.
#[derive(Debug)]
pub struct PreviousApiFile {
    path: PathBuf,
    bytes: Option<Vec<u8>>,
}

impl PreviousApiFile {
    /// Remembers the current content of `path`.
    pub fn capture(path: &Path) -> Result<Self, ApiFileError> {
        let bytes = match std::fs::read(path) {
            Ok(bytes) => Some(bytes),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(source) => {
                return Err(ApiFileError::Read {
                    path: path.to_owned(),
                    source,
                });
            }
        };
        Ok(PreviousApiFile {
            path: path.to_owned(),
            bytes,
        })
    }

    /// Puts the remembered content back (atomically), or removes the file if there was none.
    pub fn restore(self) -> Result<(), ApiFileError> {
        let result = match &self.bytes {
            Some(bytes) => write_atomically(&self.path, bytes),
            None => match std::fs::remove_file(&self.path) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
                _ => Ok(()),
            },
        };
        result.map_err(|source| ApiFileError::Write {
            path: self.path,
            source,
        })
    }
}

/// The manifest merged with its API-managed streams.
#[derive(Debug, Clone, PartialEq)]
pub struct LoadedConfig {
    /// The operator's manifest with the API streams appended.
    pub manifest: Manifest,
    /// Ids of the streams that came from the API file.
    pub api_streams: BTreeSet<String>,
    /// The API file's path (it may not exist yet).
    pub api_file: PathBuf,
    /// Every file read and the fingerprint of the bytes parsed.
    pub sources: SourceSet,
}

impl LoadedConfig {
    /// A configuration without API-managed streams (e.g. one built in memory; it has no
    /// source files, so every reload re-reads it).
    pub fn without_api_file(manifest: Manifest) -> Self {
        let api_file = api_file_of(&manifest.path, manifest.server.api_streams_file.as_deref());
        LoadedConfig {
            manifest,
            api_streams: BTreeSet::new(),
            api_file,
            sources: SourceSet::default(),
        }
    }

    /// Whether stream `id` was created through the API (and so may be changed by it).
    pub fn is_api_stream(&self, id: &str) -> bool {
        self.api_streams.contains(id)
    }
}

fn api_file_of(manifest: &Path, configured: Option<&Path>) -> PathBuf {
    configured
        .map(Path::to_path_buf)
        .unwrap_or_else(|| api_file_path(manifest))
}

fn whole_file_error(message: String) -> ConfigErrors {
    ConfigErrors(vec![ConfigError::whole_file(message)])
}

fn utf8(bytes: Vec<u8>, path: &Path) -> Result<String, ConfigErrors> {
    String::from_utf8(bytes)
        .map_err(|_| whole_file_error(format!("{} is not UTF-8 text", path.display())))
}

/// Reads the manifest at `path`, its token files and its API file, parses and merges them,
/// reporting every problem of both files. Returns the files read with the fingerprint of
/// the bytes parsed, also when they are invalid (so an unchanged bad edit can be told
/// apart from a new one).
pub fn read_and_parse(
    path: &Path,
    env: EnvLookup<'_>,
    plugins: &dyn SourceValidator,
) -> (SourceSet, Result<LoadedConfig, ConfigErrors>) {
    load_inner(path, None, env, plugins)
}

/// Like [`read_and_parse`], but with `candidate` as the API file's content instead of what
/// is on disk: the HTTP API validates exactly the bytes it is about to write.
pub fn load_with_api_candidate(
    path: &Path,
    candidate: &str,
    env: EnvLookup<'_>,
    plugins: &dyn SourceValidator,
) -> (SourceSet, Result<LoadedConfig, ConfigErrors>) {
    load_inner(path, Some(candidate.as_bytes()), env, plugins)
}

fn load_inner(
    manifest_path: &Path,
    api_candidate: Option<&[u8]>,
    env: EnvLookup<'_>,
    plugins: &dyn SourceValidator,
) -> (SourceSet, Result<LoadedConfig, ConfigErrors>) {
    let mut log = ReadLog::default();
    let main = match log.read(manifest_path) {
        Ok(bytes) => bytes,
        Err(e) => {
            let message = format!("cannot read manifest {}: {e}", manifest_path.display());
            return (log.finish(), Err(whole_file_error(message)));
        }
    };
    let (main_result, configured_api) = match utf8(main, manifest_path) {
        Ok(text) => {
            let parsed = parse_recorded(&text, manifest_path, env, plugins);
            log.extend(parsed.reads);
            (parsed.result, parsed.api_streams_file)
        }
        Err(e) => (Err(e), None),
    };
    let api_path = api_file_of(manifest_path, configured_api.as_deref());
    let mut errors = Vec::new();
    if api_path == manifest_path {
        errors.push(ConfigError::whole_file(format!(
            "`server.api_streams_file` must not be the manifest itself ({})",
            manifest_path.display()
        )));
    }
    let api_bytes = match api_candidate {
        Some(bytes) => {
            log.record(&api_path, Some(bytes));
            Some(bytes.to_vec())
        }
        None => match log.read(&api_path) {
            Ok(bytes) => Some(bytes),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => {
                errors.push(ConfigError::whole_file(format!(
                    "cannot read the API streams file {}: {e}",
                    api_path.display()
                )));
                None
            }
        },
    };
    let api_result = api_bytes.filter(|_| errors.is_empty()).map(|bytes| {
        utf8(bytes, &api_path).and_then(|text| {
            let parsed = parse_recorded(&text, &api_path, env, plugins);
            log.extend(parsed.reads);
            parsed.result.and_then(|m| only_streams(m, &api_path))
        })
    });
    let sources = log.finish();
    let manifest = match main_result {
        Ok(manifest) => Some(manifest),
        Err(e) => {
            errors.extend(e.0);
            None
        }
    };
    let api_streams = match api_result {
        None => Vec::new(),
        Some(Ok(streams)) => streams,
        Some(Err(e)) => {
            errors.extend(e.0);
            Vec::new()
        }
    };
    if let Some(manifest) = &manifest {
        // Each node would run its own file's streams, and nodes that disagree about the
        // streams disagree about owners: in a cluster the manifest is the one source.
        if manifest.cluster.is_some()
            && let Some(first) = api_streams.first()
        {
            errors.push(ConfigError::at(
                first.location.clone(),
                format!(
                    "a cluster node takes its streams from the manifest only, but the API streams file has {} stream(s): move them into the manifest every node shares, then remove the file",
                    api_streams.len()
                ),
            ));
        }
        for stream in &api_streams {
            if let Some(existing) = manifest.stream(&stream.id) {
                errors.push(ConfigError::at(
                    stream.location.clone(),
                    format!(
                        "stream id `{}` is already defined in the manifest at {}",
                        stream.id, existing.location
                    ),
                ));
            }
        }
    }
    let merged = match manifest {
        Some(mut merged) if errors.is_empty() => {
            let ids = api_streams.iter().map(|s| s.id.clone()).collect();
            merged.streams.extend(api_streams);
            Ok(LoadedConfig {
                manifest: merged,
                api_streams: ids,
                api_file: api_path,
                sources: sources.clone(),
            })
        }
        _ => Err(ConfigErrors(errors)),
    };
    (sources, merged)
}

/// Reads and merges the manifest at `path` and its API file from disk.
pub fn load_with_api_file(
    path: &Path,
    env: EnvLookup<'_>,
    plugins: &dyn SourceValidator,
) -> Result<LoadedConfig, ConfigErrors> {
    read_and_parse(path, env, plugins).1
}

/// The API file may only hold streams: anything else belongs in the operator's manifest.
fn only_streams(manifest: Manifest, path: &Path) -> Result<Vec<StreamConfig>, ConfigErrors> {
    let defaults = Manifest {
        server: Default::default(),
        auth: Default::default(),
        plugins: Default::default(),
        defaults: Default::default(),
        streams: Vec::new(),
        cluster: None,
        path: manifest.path.clone(),
    };
    if manifest.server != defaults.server
        || manifest.cluster != defaults.cluster
        || manifest.auth != defaults.auth
        || manifest.plugins != defaults.plugins
        || manifest.defaults != defaults.defaults
    {
        return Err(whole_file_error(format!(
            "{}: the API-managed file may only contain `streams`; put server, plugins and defaults in the manifest",
            path.display()
        )));
    }
    Ok(manifest.streams)
}

#[cfg(test)]
mod tests {
    use super::*;

    struct AnyPlugin;
    impl SourceValidator for AnyPlugin {
        fn validate_source(&self, plugin: &str, _: &SourceOptions) -> Result<(), String> {
            if plugin == "testsrc" {
                Ok(())
            } else {
                Err(format!("unknown plugin `{plugin}`"))
            }
        }
    }

    const MANIFEST: &str = "streams:\n  - id: hand\n    source: { plugin: testsrc }\n";

    fn setup() -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("camgate.yaml");
        std::fs::write(&path, MANIFEST).unwrap();
        (dir, path)
    }

    fn stored(id: &str) -> StoredStream {
        let mut source = SourceOptions::new();
        source.insert("plugin".into(), "testsrc".into());
        source.insert("password".into(), "s3cret".into());
        StoredStream {
            id: id.into(),
            name: Some(format!("API {id}")),
            on_demand: Some(false),
            idle_timeout: Some("5s".into()),
            health_rules: None,
            sub: None,
            source,
        }
    }

    #[test]
    fn path_sits_next_to_the_manifest() {
        assert_eq!(
            api_file_path(Path::new("/etc/camgate/camgate.yaml")),
            PathBuf::from("/etc/camgate/camgate.api.yaml")
        );
    }

    #[test]
    fn written_streams_merge_with_the_manifest_and_the_manifest_is_untouched() {
        let (_dir, path) = setup();
        write_api_file(&api_file_path(&path), &[stored("cam1"), stored("cam2")]).unwrap();
        let loaded = load_with_api_file(&path, &|_| None, &AnyPlugin).unwrap();
        let ids: Vec<&str> = loaded
            .manifest
            .streams
            .iter()
            .map(|s| s.id.as_str())
            .collect();
        assert_eq!(ids, ["hand", "cam1", "cam2"]);
        assert!(loaded.is_api_stream("cam1") && !loaded.is_api_stream("hand"));
        let cam1 = loaded.manifest.stream("cam1").unwrap();
        assert!(!cam1.on_demand);
        assert_eq!(cam1.idle_timeout, std::time::Duration::from_secs(5));
        assert_eq!(cam1.source.options["password"], "s3cret");
        // Round trip: the raw form reads back as written.
        assert_eq!(
            read_stored_streams(&api_file_path(&path)).unwrap(),
            [stored("cam1"), stored("cam2")]
        );
        assert_eq!(std::fs::read_to_string(&path).unwrap(), MANIFEST);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(api_file_path(&path))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }

    #[test]
    fn missing_api_file_means_no_api_streams() {
        let (_dir, path) = setup();
        let loaded = load_with_api_file(&path, &|_| None, &AnyPlugin).unwrap();
        assert!(loaded.api_streams.is_empty());
        assert_eq!(loaded.manifest.streams.len(), 1);
    }

    #[test]
    fn a_cluster_node_refuses_an_api_file_with_streams() {
        let (_dir, path) = setup();
        write_api_file(&api_file_path(&path), &[stored("cam1")]).unwrap();
        let clustered = format!("{MANIFEST}cluster: {{node: a, members_dns: peers, port: 8000}}\n");
        std::fs::write(&path, clustered).unwrap();
        let err = load_with_api_file(&path, &|_| None, &AnyPlugin)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("a cluster node takes its streams from the manifest only, but the API streams file has 1 stream(s)"),
            "{err}"
        );
        // An empty API file (all its streams deleted) is fine.
        write_api_file(&api_file_path(&path), &[]).unwrap();
        assert!(load_with_api_file(&path, &|_| None, &AnyPlugin).is_ok());
    }

    #[test]
    fn an_id_in_both_files_is_an_error_naming_both_places() {
        let (_dir, path) = setup();
        write_api_file(&api_file_path(&path), &[stored("hand")]).unwrap();
        let err = load_with_api_file(&path, &|_| None, &AnyPlugin)
            .unwrap_err()
            .to_string();
        assert!(err.contains("camgate.api.yaml:"), "{err}");
        assert!(
            err.contains("stream id `hand` is already defined in the manifest at"),
            "{err}"
        );
        assert!(err.contains("camgate.yaml:2:"), "{err}");
    }

    #[test]
    fn errors_in_the_api_file_have_positions_and_other_sections_are_refused() {
        let (_dir, path) = setup();
        let api = api_file_path(&path);
        std::fs::write(
            &api,
            "{\"streams\": [{\"id\": \"x\", \"source\": {\"plugin\": \"nope\"}}]}",
        )
        .unwrap();
        let err = load_with_api_file(&path, &|_| None, &AnyPlugin)
            .unwrap_err()
            .to_string();
        assert!(err.contains("camgate.api.yaml:1:"), "{err}");
        assert!(err.contains("unknown plugin `nope`"), "{err}");
        std::fs::write(&api, "server: { listen: 127.0.0.1:9 }\nstreams: []\n").unwrap();
        let err = load_with_api_file(&path, &|_| None, &AnyPlugin)
            .unwrap_err()
            .to_string();
        assert!(err.contains("may only contain `streams`"), "{err}");
    }

    #[test]
    fn a_failed_write_leaves_the_old_file_and_no_temp_file() {
        let (dir, path) = setup();
        let api = api_file_path(&path);
        write_api_file(&api, &[stored("cam1")]).unwrap();
        let before = std::fs::read(&api).unwrap();
        // Writing into a directory that does not exist fails before touching the real file.
        let bad = dir.path().join("missing").join("camgate.api.yaml");
        assert!(write_api_file(&bad, &[stored("cam2")]).is_err());
        assert_eq!(std::fs::read(&api).unwrap(), before);
        let leftovers: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .filter_map(|e| e.ok())
            .filter(|e| e.file_name().to_string_lossy().contains(".tmp-"))
            .collect();
        assert!(leftovers.is_empty());
    }

    #[test]
    fn the_raw_form_keeps_references_and_escapes_and_the_running_form_resolves_them() {
        let (_dir, path) = setup();
        let api = api_file_path(&path);
        // Hand-written YAML is read too (JSON is only what the gateway writes).
        std::fs::write(
            &api,
            "streams:\n  - id: cam1\n    name: \"$${literal}\"\n    source: { plugin: testsrc, password: \"${PW}\" }\n",
        )
        .unwrap();
        let raw = read_stored_streams(&api).unwrap();
        assert_eq!(raw[0].name.as_deref(), Some("$${literal}"));
        assert_eq!(raw[0].source["password"], "${PW}");
        assert_eq!(raw[0].on_demand, None);
        let env = |name: &str| (name == "PW").then(|| "s3cret".to_owned());
        let loaded = load_with_api_file(&path, &env, &AnyPlugin).unwrap();
        let cam1 = loaded.manifest.stream("cam1").unwrap();
        assert_eq!(cam1.name, "${literal}");
        assert_eq!(cam1.source.options["password"], "s3cret");
        // Writing the raw form back keeps the reference, not its value.
        write_api_file(&api, &raw).unwrap();
        let text = std::fs::read_to_string(&api).unwrap();
        assert!(text.contains("${PW}") && !text.contains("s3cret"), "{text}");
        assert!(
            read_stored_streams(&path.with_file_name("none.yaml"))
                .unwrap()
                .is_empty()
        );
        std::fs::write(&api, "streams: [{id: x, colour: red}]").unwrap();
        let err = read_stored_streams(&api).unwrap_err().to_string();
        assert!(err.contains("is not a valid `streams` list"), "{err}");
    }

    #[test]
    fn the_api_file_path_is_configurable_relative_to_the_manifest() {
        let (dir, path) = setup();
        std::fs::create_dir(dir.path().join("state")).unwrap();
        std::fs::write(
            &path,
            format!("server:\n  api_streams_file: state/api.json\n{MANIFEST}"),
        )
        .unwrap();
        let configured = dir.path().join("state").join("api.json");
        write_api_file(&configured, &[stored("cam1")]).unwrap();
        let loaded = load_with_api_file(&path, &|_| None, &AnyPlugin).unwrap();
        assert_eq!(loaded.api_file, configured);
        assert!(loaded.is_api_stream("cam1"));
        assert_eq!(loaded.sources.files(), [path.clone(), configured.clone()]);
        std::fs::write(
            &path,
            format!("server:\n  api_streams_file: camgate.yaml\n{MANIFEST}"),
        )
        .unwrap();
        let err = load_with_api_file(&path, &|_| None, &AnyPlugin).unwrap_err();
        assert!(
            err.to_string().contains("must not be the manifest itself"),
            "{err}"
        );
    }

    #[test]
    fn the_fingerprint_is_of_the_bytes_parsed_including_token_files() {
        let (dir, path) = setup();
        let token = dir.path().join("token");
        std::fs::write(&token, "a-token-of-sixteen-chars\n").unwrap();
        std::fs::write(
            &path,
            format!("auth:\n  tokens:\n    - {{ role: admin, token_file: token }}\n{MANIFEST}"),
        )
        .unwrap();
        let (sources, loaded) = read_and_parse(&path, &|_| None, &AnyPlugin);
        let loaded = loaded.unwrap();
        assert_eq!(loaded.sources, sources);
        assert_eq!(
            sources.files(),
            [path.clone(), token.clone(), api_file_path(&path)]
        );
        assert!(!sources.changed_on_disk());
        std::fs::write(&token, "another-token-of-sixteen\n").unwrap();
        assert!(
            sources.changed_on_disk(),
            "a rotated token file is a change"
        );
        // An invalid configuration still reports what it read.
        std::fs::write(&path, "streams: [").unwrap();
        let (bad, result) = read_and_parse(&path, &|_| None, &AnyPlugin);
        assert!(result.is_err());
        assert!(!bad.changed_on_disk());
        assert_ne!(bad.fingerprint(), sources.fingerprint());
    }

    #[test]
    fn a_previous_file_is_restored_byte_for_byte_or_removed() {
        let (_dir, path) = setup();
        let api = api_file_path(&path);
        let absent = PreviousApiFile::capture(&api).unwrap();
        write_api_file(&api, &[stored("cam1")]).unwrap();
        let before = std::fs::read(&api).unwrap();
        let previous = PreviousApiFile::capture(&api).unwrap();
        write_api_file(&api, &[stored("cam2")]).unwrap();
        previous.restore().unwrap();
        assert_eq!(std::fs::read(&api).unwrap(), before);
        absent.restore().unwrap();
        assert!(!api.exists());
    }
}

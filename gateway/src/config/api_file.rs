//! The API-managed streams file: streams created through the HTTP API live in a separate
//! file next to the operator's manifest (`camgate.yaml` → `camgate.api.yaml`), so the
//! hand-written file is never rewritten.
//!
//! Invariants:
//! - The file is written atomically (temp file in the same directory, fsync, rename, fsync
//!   of the directory), so a reader — the gateway's own watcher, an operator's `cat`, a crash
//!   — sees the old or the new content, never half of it. It is created with mode 0600:
//!   it may hold camera passwords.
//! - Its content is JSON, which is also YAML: the same strict parser reads it, with
//!   line:column errors, and only a `streams` list is allowed in it.
//! - A stream id may be defined in the manifest or in the API file, not both.

use std::collections::BTreeSet;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::Serialize;

use super::error::{ConfigError, ConfigErrors};
use super::model::{Manifest, SourceOptions, SourceValidator, StreamConfig};
use super::{EnvLookup, parse};

/// The path of the API-managed streams file that belongs to `manifest`.
pub fn api_file_path(manifest: &Path) -> PathBuf {
    let stem = manifest
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "camgate".to_owned());
    manifest.with_file_name(format!("{stem}.api.yaml"))
}

/// A stream as the API file stores it (the manifest's field names).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StoredStream {
    /// Stream id.
    pub id: String,
    /// Display name.
    pub name: String,
    /// On-demand or always-on.
    pub on_demand: bool,
    /// Idle timeout, in the manifest's duration syntax (`"30s"`).
    pub idle_timeout: String,
    /// The `source` mapping, with `plugin` first.
    pub source: SourceOptions,
}

impl StoredStream {
    /// The stored form of a validated stream.
    pub fn from_config(stream: &StreamConfig) -> Self {
        let mut source = SourceOptions::new();
        source.insert("plugin".into(), stream.source.plugin.clone().into());
        source.extend(stream.source.options.clone());
        StoredStream {
            id: stream.id.clone(),
            name: stream.name.clone(),
            on_demand: stream.on_demand,
            idle_timeout: format!("{}ms", stream.idle_timeout.as_millis()),
            source,
        }
    }
}

#[derive(Serialize)]
struct FileContent<'a> {
    streams: &'a [StoredStream],
}

const HEADER: &str = "# Streams managed by camgate's HTTP API. Written atomically by the gateway;\n\
# edits by hand are applied like manifest edits but may be overwritten by the API.\n";

/// The content of an API file holding `streams` (a comment header, then pretty JSON with
/// one key per line, which error positions rely on).
pub fn api_file_text(streams: &[StoredStream]) -> String {
    let json = serde_json::to_string_pretty(&FileContent { streams })
        .unwrap_or_else(|_| "{\"streams\": []}".to_owned());
    format!("{HEADER}{json}\n")
}

/// Writes `streams` to `path` atomically with mode 0600.
pub fn write_api_file(path: &Path, streams: &[StoredStream]) -> std::io::Result<()> {
    let text = api_file_text(streams);
    let dir = path.parent().unwrap_or(Path::new("."));
    let file_name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let temp = dir.join(format!(".{file_name}.tmp-{}", std::process::id()));
    let result = (|| {
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create(true).truncate(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let mut file = options.open(&temp)?;
        file.write_all(text.as_bytes())?;
        file.sync_all()?;
        std::fs::rename(&temp, path)?;
        // Make the rename itself durable.
        std::fs::File::open(dir)?.sync_all()
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&temp);
    }
    result
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
}

impl LoadedConfig {
    /// A configuration without API-managed streams (e.g. one built in memory).
    pub fn without_api_file(manifest: Manifest) -> Self {
        let api_file = api_file_path(&manifest.path);
        LoadedConfig {
            manifest,
            api_streams: BTreeSet::new(),
            api_file,
        }
    }

    /// Whether stream `id` was created through the API (and so may be changed by it).
    pub fn is_api_stream(&self, id: &str) -> bool {
        self.api_streams.contains(id)
    }
}

/// The raw bytes of the manifest and its API file: what "unchanged" is decided on.
pub fn read_sources(manifest: &Path) -> std::io::Result<(Vec<u8>, Option<Vec<u8>>)> {
    let main = std::fs::read(manifest)?;
    let api = match std::fs::read(api_file_path(manifest)) {
        Ok(bytes) => Some(bytes),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(e),
    };
    Ok((main, api))
}

/// Parses the manifest and its API file (given as bytes, see [`read_sources`]) and merges
/// them, reporting every problem of both.
pub fn parse_with_api_file(
    manifest_path: &Path,
    main: &[u8],
    api: Option<&[u8]>,
    env: EnvLookup<'_>,
    plugins: &dyn SourceValidator,
) -> Result<LoadedConfig, ConfigErrors> {
    let api_path = api_file_path(manifest_path);
    let text = |bytes: &[u8], path: &Path| {
        String::from_utf8(bytes.to_vec()).map_err(|_| {
            ConfigErrors(vec![ConfigError::whole_file(format!(
                "{} is not UTF-8 text",
                path.display()
            ))])
        })
    };
    let main_result =
        text(main, manifest_path).and_then(|t| parse(&t, manifest_path, env, plugins));
    let api_result = api.map(|bytes| {
        text(bytes, &api_path)
            .and_then(|t| parse(&t, &api_path, env, plugins))
            .and_then(|m| only_streams(m, &api_path))
    });
    let mut errors = Vec::new();
    let mut manifest = match main_result {
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
    if !errors.is_empty() {
        return Err(ConfigErrors(errors));
    }
    let Some(mut merged) = manifest.take() else {
        return Err(ConfigErrors(errors));
    };
    let ids = api_streams.iter().map(|s| s.id.clone()).collect();
    merged.streams.extend(api_streams);
    Ok(LoadedConfig {
        manifest: merged,
        api_streams: ids,
        api_file: api_path,
    })
}

/// Reads and merges the manifest at `path` and its API file from disk.
pub fn load_with_api_file(
    path: &Path,
    env: EnvLookup<'_>,
    plugins: &dyn SourceValidator,
) -> Result<LoadedConfig, ConfigErrors> {
    let (main, api) = read_sources(path).map_err(|e| {
        ConfigErrors(vec![ConfigError::whole_file(format!(
            "cannot read manifest {}: {e}",
            path.display()
        ))])
    })?;
    parse_with_api_file(path, &main, api.as_deref(), env, plugins)
}

/// The API file may only hold streams: anything else belongs in the operator's manifest.
fn only_streams(manifest: Manifest, path: &Path) -> Result<Vec<StreamConfig>, ConfigErrors> {
    let defaults = Manifest {
        server: Default::default(),
        auth: Default::default(),
        plugins: Default::default(),
        defaults: Default::default(),
        streams: Vec::new(),
        path: manifest.path.clone(),
    };
    if manifest.server != defaults.server
        || manifest.auth != defaults.auth
        || manifest.plugins != defaults.plugins
        || manifest.defaults != defaults.defaults
    {
        return Err(ConfigErrors(vec![ConfigError::whole_file(format!(
            "{}: the API-managed file may only contain `streams`; put server, plugins and defaults in the manifest",
            path.display()
        ))]));
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
            name: format!("API {id}"),
            on_demand: false,
            idle_timeout: "5s".into(),
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
        // Round trip: storing what was loaded gives the same content.
        assert_eq!(
            StoredStream::from_config(cam1).source,
            stored("cam1").source
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
}

//! Camera groups for the wall ("Lobby": front, back), saved through the API so every
//! browser sees the same ones.
//!
//! Storage: a small JSON file beside the API-managed streams file (`camgate.api.yaml` →
//! `camgate.groups.json` in the same directory; see [`groups_file_path`]), so it moves
//! with `server.api_streams_file` out of a read-only ConfigMap directory. Its content is
//! `{"groups": [{"id", "name", "streams"}]}` in saved order.
//!
//! Invariants:
//! - Written atomically with mode 0600 by the same code as the API streams file
//!   (`atomic.rs`), one write at a time (the store's lock), and only after the new content
//!   validated: a failed write changes nothing, on disk or in memory.
//! - Read when first needed and again whenever its path changes (a reload that moved the
//!   API file); otherwise the gateway's copy is what it last wrote. A hand edit while the
//!   gateway runs is picked up at the next start.
//! - Every group in memory is valid ([`validate`]): an id like a stream id, a name of
//!   1..=[`MAX_GROUP_NAME`] characters, at most [`MAX_GROUP_STREAMS`] distinct stream ids,
//!   at most [`MAX_GROUPS`] groups. A file that breaks these is refused whole (an error
//!   naming the file), never half-read. Whether a stream id exists is the API's check at
//!   write time; ids of streams removed later stay in the file (the API leaves them out).

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use tokio::sync::Mutex;

use super::atomic::write_atomically;
use super::validate::MAX_ID_LEN;

/// Longest group name, in characters.
pub const MAX_GROUP_NAME: usize = 64;
/// Most streams in one group.
pub const MAX_GROUP_STREAMS: usize = 256;
/// Most groups.
pub const MAX_GROUPS: usize = 256;

/// One group of cameras.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Group {
    /// Used in URLs: the rules of stream ids.
    pub id: String,
    /// Shown to people.
    pub name: String,
    /// Stream ids, in the order the wall shows them.
    pub streams: Vec<String>,
}

/// The file's content.
#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct GroupsFile {
    groups: Vec<Group>,
}

/// What is wrong with a group; [`GroupError::field`] names the field to blame.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GroupError {
    /// The id breaks the stream-id rules.
    #[error(
        "group id `{0}` must be 1 to {MAX_ID_LEN} characters of lowercase letters a-z, digits, `_` and `-` (it is used in URLs)"
    )]
    BadId(String),
    /// The name is blank or too long.
    #[error("group `name` must be 1 to {MAX_GROUP_NAME} characters and not blank")]
    BadName,
    /// Too many streams.
    #[error("a group holds at most {MAX_GROUP_STREAMS} streams; this one has {0}")]
    TooManyStreams(usize),
    /// A stream id twice.
    #[error("stream `{0}` is listed twice")]
    DuplicateStream(String),
    /// A stream id that is not a stream (checked by the API against the configuration).
    #[error("no stream with id `{0}`")]
    UnknownStream(String),
}

impl GroupError {
    /// The body field to blame.
    pub fn field(&self) -> &'static str {
        match self {
            GroupError::BadId(_) => "id",
            GroupError::BadName => "name",
            GroupError::TooManyStreams(_)
            | GroupError::DuplicateStream(_)
            | GroupError::UnknownStream(_) => "streams",
        }
    }
}

/// Why the groups file could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum GroupsFileError {
    /// Reading failed (other than "does not exist", which means no groups).
    #[error("cannot read the groups file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// Not a valid groups file.
    #[error("the groups file {path} is invalid: {message}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// What is wrong (serde's message with its line and column, or the rule broken).
        message: String,
    },
    /// Writing failed; nothing changed.
    #[error("cannot write the groups file {path}: {source}")]
    Write {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// Creating one more group would pass [`MAX_GROUPS`].
    #[error("there are already {MAX_GROUPS} groups; delete one first")]
    Full,
}

/// The groups file that belongs to the API streams file `api_file`: in its directory,
/// named after it with `.api.yaml` (or, for another name, its extension) replaced by
/// `.groups.json` (`camgate.api.yaml` → `camgate.groups.json`, `streams.yaml` →
/// `streams.groups.json`).
pub fn groups_file_path(api_file: &Path) -> PathBuf {
    let name = api_file
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let stem = match name.strip_suffix(".api.yaml") {
        Some(stem) if !stem.is_empty() => stem.to_owned(),
        _ => api_file
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| "camgate".to_owned()),
    };
    api_file.with_file_name(format!("{stem}.groups.json"))
}

/// Whether `id` follows the stream-id rules.
fn valid_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= MAX_ID_LEN
        && id
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
}

/// Checks a group's own rules (not whether its streams exist).
pub fn validate(group: &Group) -> Result<(), GroupError> {
    if !valid_id(&group.id) {
        return Err(GroupError::BadId(group.id.clone()));
    }
    let chars = group.name.chars().count();
    if group.name.trim().is_empty() || chars > MAX_GROUP_NAME {
        return Err(GroupError::BadName);
    }
    if group.streams.len() > MAX_GROUP_STREAMS {
        return Err(GroupError::TooManyStreams(group.streams.len()));
    }
    for (i, stream) in group.streams.iter().enumerate() {
        if group.streams[..i].contains(stream) {
            return Err(GroupError::DuplicateStream(stream.clone()));
        }
    }
    Ok(())
}

/// Reads the groups file (missing: no groups), refusing it whole if any group is invalid.
pub fn read_groups(path: &Path) -> Result<Vec<Group>, GroupsFileError> {
    let bytes = match std::fs::read(path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(source) => {
            return Err(GroupsFileError::Read {
                path: path.to_owned(),
                source,
            });
        }
    };
    let invalid = |message: String| GroupsFileError::Invalid {
        path: path.to_owned(),
        message,
    };
    let file: GroupsFile = serde_json::from_slice(&bytes).map_err(|e| invalid(e.to_string()))?;
    if file.groups.len() > MAX_GROUPS {
        return Err(invalid(format!("more than {MAX_GROUPS} groups")));
    }
    for (i, group) in file.groups.iter().enumerate() {
        validate(group).map_err(|e| invalid(format!("group {}: {e}", i + 1)))?;
        if file.groups[..i].iter().any(|g| g.id == group.id) {
            return Err(invalid(format!("group id `{}` appears twice", group.id)));
        }
    }
    Ok(file.groups)
}

/// Writes `groups` to `path` atomically (mode 0600).
fn write_groups(path: &Path, groups: &[Group]) -> Result<(), GroupsFileError> {
    let file = GroupsFile {
        groups: groups.to_vec(),
    };
    let mut text = serde_json::to_vec_pretty(&file).unwrap_or_default();
    text.push(b'\n');
    write_atomically(path, &text).map_err(|source| GroupsFileError::Write {
        path: path.to_owned(),
        source,
    })
}

/// The groups, cached, and the lock that serialises their writes.
#[derive(Debug, Default)]
pub struct GroupStore {
    loaded: Mutex<Option<(PathBuf, Vec<Group>)>>,
}

impl GroupStore {
    /// The saved groups at `path`, in saved order.
    pub async fn list(&self, path: &Path) -> Result<Vec<Group>, GroupsFileError> {
        let mut loaded = self.loaded.lock().await;
        Ok(Self::current(&mut loaded, path)?.clone())
    }

    /// Creates or replaces `group` (already validated, streams checked), keeping a
    /// replaced group's place. Returns whether it was created.
    pub async fn put(&self, path: &Path, group: Group) -> Result<bool, GroupsFileError> {
        let mut loaded = self.loaded.lock().await;
        let mut groups = Self::current(&mut loaded, path)?.clone();
        let created = match groups.iter().position(|g| g.id == group.id) {
            Some(index) => {
                groups[index] = group;
                false
            }
            None if groups.len() >= MAX_GROUPS => return Err(GroupsFileError::Full),
            None => {
                groups.push(group);
                true
            }
        };
        write_groups(path, &groups)?;
        *loaded = Some((path.to_owned(), groups));
        Ok(created)
    }

    /// Deletes group `id`. Returns whether it existed.
    pub async fn delete(&self, path: &Path, id: &str) -> Result<bool, GroupsFileError> {
        let mut loaded = self.loaded.lock().await;
        let mut groups = Self::current(&mut loaded, path)?.clone();
        let before = groups.len();
        groups.retain(|g| g.id != id);
        if groups.len() == before {
            return Ok(false);
        }
        write_groups(path, &groups)?;
        *loaded = Some((path.to_owned(), groups));
        Ok(true)
    }

    /// The cached groups of `path`, read first if not cached (or cached for another path).
    fn current<'a>(
        loaded: &'a mut Option<(PathBuf, Vec<Group>)>,
        path: &Path,
    ) -> Result<&'a Vec<Group>, GroupsFileError> {
        if loaded.as_ref().is_none_or(|(cached, _)| cached != path) {
            *loaded = Some((path.to_owned(), read_groups(path)?));
        }
        Ok(&loaded.as_ref().expect("just loaded").1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn group(id: &str, name: &str, streams: &[&str]) -> Group {
        Group {
            id: id.into(),
            name: name.into(),
            streams: streams.iter().map(|s| (*s).to_owned()).collect(),
        }
    }

    #[test]
    fn the_file_sits_beside_the_api_streams_file() {
        assert_eq!(
            groups_file_path(Path::new("/etc/camgate/camgate.api.yaml")),
            Path::new("/etc/camgate/camgate.groups.json")
        );
        assert_eq!(
            groups_file_path(Path::new("/var/lib/camgate/streams.yaml")),
            Path::new("/var/lib/camgate/streams.groups.json")
        );
    }

    #[test]
    fn rules_name_the_field_to_blame() {
        assert_eq!(validate(&group("lobby", "Lobby", &["a", "b"])), Ok(()));
        assert_eq!(validate(&group("lobby", "L", &[])), Ok(()));
        for id in ["", "Lobby", "a b", "a/b", &"x".repeat(MAX_ID_LEN + 1)] {
            let e = validate(&group(id, "L", &[])).unwrap_err();
            assert_eq!(e.field(), "id", "{id}");
        }
        assert!(validate(&group(&"x".repeat(MAX_ID_LEN), "L", &[])).is_ok());
        for name in ["", "   ", &"é".repeat(MAX_GROUP_NAME + 1)] {
            assert_eq!(validate(&group("g", name, &[])), Err(GroupError::BadName));
        }
        assert!(validate(&group("g", &"é".repeat(MAX_GROUP_NAME), &[])).is_ok());
        assert_eq!(
            validate(&group("g", "G", &["a", "b", "a"])),
            Err(GroupError::DuplicateStream("a".into()))
        );
        let many: Vec<String> = (0..=MAX_GROUP_STREAMS).map(|i| format!("s{i}")).collect();
        let many: Vec<&str> = many.iter().map(String::as_str).collect();
        let e = validate(&group("g", "G", &many)).unwrap_err();
        assert_eq!(e, GroupError::TooManyStreams(MAX_GROUP_STREAMS + 1));
        assert_eq!(e.field(), "streams");
        assert!(validate(&group("g", "G", &many[..MAX_GROUP_STREAMS])).is_ok());
    }

    #[tokio::test]
    async fn writes_keep_order_survive_a_reread_and_are_0600() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("camgate.groups.json");
        let store = GroupStore::default();
        assert_eq!(store.list(&path).await.unwrap(), vec![]);
        assert!(store.put(&path, group("b", "B", &["x"])).await.unwrap());
        assert!(store.put(&path, group("a", "A", &[])).await.unwrap());
        assert!(!store.put(&path, group("b", "B2", &["y"])).await.unwrap());
        let expected = vec![group("b", "B2", &["y"]), group("a", "A", &[])];
        assert_eq!(store.list(&path).await.unwrap(), expected);
        assert_eq!(
            read_groups(&path).unwrap(),
            expected,
            "what a restart reads"
        );
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        assert!(store.delete(&path, "b").await.unwrap());
        assert!(!store.delete(&path, "b").await.unwrap());
        assert_eq!(read_groups(&path).unwrap(), vec![group("a", "A", &[])]);
    }

    #[tokio::test]
    async fn a_bad_file_is_refused_whole_and_left_alone() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("camgate.groups.json");
        let bad = r#"{"groups": [{"id": "ok", "name": "Ok", "streams": []}, {"id": "Bad Id", "name": "x", "streams": []}]}"#;
        std::fs::write(&path, bad).unwrap();
        let store = GroupStore::default();
        let e = store.list(&path).await.unwrap_err().to_string();
        assert!(
            e.contains("camgate.groups.json") && e.contains("group 2"),
            "{e}"
        );
        assert!(store.put(&path, group("g", "G", &[])).await.is_err());
        assert_eq!(std::fs::read_to_string(&path).unwrap(), bad);
        std::fs::write(&path, r#"{"groups": [], "extra": 1}"#).unwrap();
        let e = read_groups(&path).unwrap_err().to_string();
        assert!(e.contains("unknown field `extra`"), "{e}");
        // Fixed on disk: read again on the next request (it was never cached).
        std::fs::write(&path, r#"{"groups": []}"#).unwrap();
        assert_eq!(store.list(&path).await.unwrap(), vec![]);
    }

    #[tokio::test]
    async fn the_number_of_groups_is_bounded() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("g.json");
        let groups: Vec<Group> = (0..MAX_GROUPS)
            .map(|i| group(&format!("g{i}"), "G", &[]))
            .collect();
        write_groups(&path, &groups).unwrap();
        let store = GroupStore::default();
        assert!(matches!(
            store.put(&path, group("one-more", "G", &[])).await,
            Err(GroupsFileError::Full)
        ));
        // Replacing one is still fine.
        assert!(!store.put(&path, group("g0", "G0", &[])).await.unwrap());
    }
}

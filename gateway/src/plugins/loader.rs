//! Loading plugin shared libraries from a folder with libloading.
//!
//! Each library is asked for its ABI version through the version-independent probe symbol
//! before anything else. Version 2 (current) and version 1 (JPEG only; its layouts are a
//! prefix of version 2's) load through their own entry symbols; any other version is
//! refused with both sides named instead of being called with the wrong layout. Loaded libraries are leaked on
//! purpose: plugins may hold pointers into them (static strings, code) for the life of the
//! process, so they are never unloaded.

#![allow(unsafe_code)]

use std::path::{Path, PathBuf};

use camgate_plugin_api::abi::{
    ABI_VERSION, ABI_VERSION_SYMBOL, ABI_VERSION_V1, AbiVersionFn, ENTRY_SYMBOL, ENTRY_SYMBOL_V1,
    EntryFn,
};
use libloading::Library;

use super::error::HandshakeError;
use super::ffi::{LoadedPlugin, PluginOrigin};

/// Why a library could not become a plugin.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The plugins folder could not be listed.
    #[error("cannot read plugins folder {}: {source}", path.display())]
    ReadDir {
        /// The folder.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// `dlopen` failed (missing file, wrong architecture, missing dependency...).
    #[error("cannot load plugin library {}: {message}", path.display())]
    Open {
        /// The library.
        path: PathBuf,
        /// The loader's message.
        message: String,
    },
    /// The library is not a camgate plugin.
    #[error(
        "{} is not a camgate plugin: it does not export `{}` (build it with camgate_plugin_api::export_plugin!)",
        path.display(), symbol
    )]
    MissingSymbol {
        /// The library.
        path: PathBuf,
        /// The symbol looked for.
        symbol: &'static str,
    },
    /// The library speaks an ABI version this gateway does not load.
    #[error(
        "plugin {} was built for camgate plugin ABI v{found}, but this gateway speaks v{expected} (and still loads v{ABI_VERSION_V1}); rebuild it against the camgate-plugin-api of this gateway",
        path.display()
    )]
    AbiMismatch {
        /// The library.
        path: PathBuf,
        /// Its ABI version.
        found: u32,
        /// Ours.
        expected: u32,
    },
    /// The handshake failed.
    #[error("plugin {} refused the handshake: {source}", path.display())]
    Handshake {
        /// The library.
        path: PathBuf,
        /// Why.
        source: HandshakeError,
    },
}

/// A symbol constant without its NUL, for messages.
fn symbol_name(symbol: &'static [u8]) -> &'static str {
    std::ffi::CStr::from_bytes_with_nul(symbol)
        .ok()
        .and_then(|name| name.to_str().ok())
        .unwrap_or("(unprintable symbol)")
}

/// `true` if users other than the owner may write `path` (group- or world-writable):
/// whoever can write the plugins folder or a library in it runs code in the gateway.
pub fn writable_by_others(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).is_ok_and(|m| m.permissions().mode() & 0o022 != 0)
}

/// Lists the shared libraries in `dir` (sorted, so load order and duplicate reports are
/// deterministic). Warns about a folder or library that others may write (see
/// docs/security.md: write access there is code execution).
pub fn libraries_in(dir: &Path) -> Result<Vec<PathBuf>, LoadError> {
    if writable_by_others(dir) {
        tracing::warn!(path = %dir.display(), "the plugins folder is writable by other users: anyone who can write there runs code inside the gateway (chmod go-w)");
    }
    let entries = std::fs::read_dir(dir).map_err(|source| LoadError::ReadDir {
        path: dir.to_owned(),
        source,
    })?;
    let mut paths: Vec<PathBuf> = entries
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|path| {
            path.is_file()
                && path
                    .extension()
                    .is_some_and(|ext| ext == std::env::consts::DLL_EXTENSION)
        })
        .collect();
    paths.sort();
    for path in paths.iter().filter(|path| writable_by_others(path)) {
        tracing::warn!(path = %path.display(), "a plugin library is writable by other users: anyone who can write it runs code inside the gateway (chmod go-w)");
    }
    Ok(paths)
}

/// Loads one plugin library and performs the handshake.
pub fn load_library(path: &Path) -> Result<LoadedPlugin, LoadError> {
    // SAFETY: loading a library runs its initialisers. Plugins are trusted code by design
    // (the operator put them in the plugins folder); what we guard against is the *wrong*
    // plugin: every symbol is checked before use.
    let library = unsafe { Library::new(path) }.map_err(|e| LoadError::Open {
        path: path.to_owned(),
        message: e.to_string(),
    })?;
    // Never unloaded: the plugin's code and static strings must outlive every use.
    let library: &'static Library = Box::leak(Box::new(library));

    // SAFETY: by the ABI, this symbol (if present) is `extern "C" fn() -> u32` in every
    // version; its signature never changes.
    let probe = unsafe { library.get::<AbiVersionFn>(ABI_VERSION_SYMBOL) }.map_err(|_| {
        LoadError::MissingSymbol {
            path: path.to_owned(),
            symbol: symbol_name(ABI_VERSION_SYMBOL),
        }
    })?;
    let found = probe();
    let symbol = match found {
        ABI_VERSION => ENTRY_SYMBOL,
        ABI_VERSION_V1 => ENTRY_SYMBOL_V1,
        _ => {
            return Err(LoadError::AbiMismatch {
                path: path.to_owned(),
                found,
                expected: ABI_VERSION,
            });
        }
    };
    // SAFETY: the library declared ABI v1 or v2, whose entry symbols both have type
    // `EntryFn` (and write the same `PluginVTable` layout).
    let entry =
        unsafe { library.get::<EntryFn>(symbol) }.map_err(|_| LoadError::MissingSymbol {
            path: path.to_owned(),
            symbol: symbol_name(symbol),
        })?;
    LoadedPlugin::handshake_at(
        *entry,
        found,
        PluginOrigin::Library {
            path: path.to_owned(),
        },
    )
    .map_err(|source| LoadError::Handshake {
        path: path.to_owned(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn symbol_names_come_from_the_constants() {
        assert_eq!(symbol_name(ENTRY_SYMBOL), "camgate_plugin_entry_v2");
        assert_eq!(symbol_name(ENTRY_SYMBOL_V1), "camgate_plugin_entry_v1");
        assert_eq!(
            symbol_name(ABI_VERSION_SYMBOL),
            "camgate_plugin_abi_version"
        );
    }

    #[test]
    fn group_or_world_writable_paths_are_flagged() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path();
        for (mode, flagged) in [(0o755, false), (0o700, false), (0o775, true), (0o777, true)] {
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
            assert_eq!(writable_by_others(path), flagged, "{mode:o}");
        }
        assert!(!writable_by_others(&path.join("missing")));
    }
}

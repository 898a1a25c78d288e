//! The plugin host: the catalog of source plugins (built-in and loaded from a folder) and
//! the hub source factory that runs a stream through a plugin.
//!
//! Built-in plugins register through exactly the same handshake as libraries (their entry
//! function instead of a `dlsym`ed one), so there is one code path for both.

mod error;
mod ffi;
mod loader;
mod source;

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use serde_json::{Map, Value};

pub use error::{CallError, FailureKind, HandshakeError, UnknownPlugin};
pub use ffi::{LoadedPlugin, PluginDescriptor, PluginOrigin, late_callbacks_metric};
pub use loader::LoadError;
pub use source::PluginSourceFactory;

use crate::config::SourceValidator;
use crate::hub::SourceFactory;

/// A problem registering a plugin.
#[derive(Debug, thiserror::Error)]
pub enum RegisterError {
    /// Loading or the handshake failed.
    #[error(transparent)]
    Load(#[from] LoadError),
    /// A built-in plugin failed its own handshake (a bug in the gateway build).
    #[error("built-in plugin failed the handshake: {0}")]
    Builtin(HandshakeError),
    /// Two plugins claim the same name; the first one stays.
    #[error("plugin `{name}` from {second} ignored: the name is already taken by {first}")]
    Duplicate {
        /// The contested name.
        name: String,
        /// The plugin that keeps the name.
        first: PluginOrigin,
        /// The one refused.
        second: PluginOrigin,
    },
}

/// Every plugin the gateway can run, by name.
#[derive(Default)]
pub struct PluginCatalog {
    plugins: BTreeMap<String, Arc<LoadedPlugin>>,
}

impl PluginCatalog {
    /// A catalog with the plugins compiled into the gateway.
    pub fn with_builtins() -> Self {
        let mut catalog = PluginCatalog::default();
        let builtins = [
            camgate_plugin_api::export::entry_fn::<camgate_testsrc::TestSrc>(),
            camgate_plugin_api::export::entry_fn::<camgate_ffmpeg_mjpeg::FfmpegMjpeg>(),
            camgate_plugin_api::export::entry_fn::<camgate_rtsp::Rtsp>(),
            camgate_plugin_api::export::entry_fn::<camgate_relay::Relay>(),
        ];
        for entry in builtins {
            if let Err(e) = LoadedPlugin::handshake(entry, PluginOrigin::Builtin)
                .map_err(RegisterError::Builtin)
                .and_then(|plugin| catalog.register(plugin))
            {
                tracing::error!(error = %e, "built-in plugin not registered");
            }
        }
        catalog
    }

    /// Adds a plugin that passed its handshake; refuses a duplicate name.
    pub fn register(&mut self, plugin: LoadedPlugin) -> Result<(), RegisterError> {
        let name = plugin.descriptor().name.clone();
        if let Some(existing) = self.plugins.get(&name) {
            return Err(RegisterError::Duplicate {
                name,
                first: existing.descriptor().origin.clone(),
                second: plugin.descriptor().origin.clone(),
            });
        }
        self.plugins.insert(name, Arc::new(plugin));
        Ok(())
    }

    /// Loads every shared library in `dir`. Each failure is returned (and the rest still
    /// load): one bad plugin never takes the others down.
    pub fn load_dir(&mut self, dir: &Path) -> Vec<RegisterError> {
        let paths = match loader::libraries_in(dir) {
            Ok(paths) => paths,
            Err(e) => return vec![e.into()],
        };
        let mut errors = Vec::new();
        for path in paths {
            match loader::load_library(&path) {
                Ok(plugin) => {
                    let descriptor = plugin.descriptor().clone();
                    match self.register(plugin) {
                        Ok(()) => tracing::info!(
                            plugin = %descriptor.name,
                            version = %descriptor.version,
                            path = %path.display(),
                            "plugin loaded"
                        ),
                        Err(e) => errors.push(e),
                    }
                }
                Err(e) => errors.push(e.into()),
            }
        }
        errors
    }

    /// The plugin called `name`.
    pub fn get(&self, name: &str) -> Option<Arc<LoadedPlugin>> {
        self.plugins.get(name).cloned()
    }

    /// Every plugin, sorted by name.
    pub fn descriptors(&self) -> Vec<PluginDescriptor> {
        self.plugins
            .values()
            .map(|p| p.descriptor().clone())
            .collect()
    }

    /// The plugin called `name`, or the error that names the ones there are.
    fn plugin(&self, name: &str) -> Result<Arc<LoadedPlugin>, UnknownPlugin> {
        self.get(name).ok_or_else(|| UnknownPlugin {
            name: name.to_owned(),
            known: self.plugins.keys().cloned().collect(),
        })
    }

    /// A hub source factory that runs `plugin` with `options`.
    pub fn factory(
        &self,
        plugin: &str,
        options: &Map<String, Value>,
    ) -> Result<Arc<dyn SourceFactory>, UnknownPlugin> {
        let loaded = self.plugin(plugin)?;
        Ok(Arc::new(PluginSourceFactory::new(loaded, options)))
    }
}

impl SourceValidator for PluginCatalog {
    fn validate_source(&self, plugin: &str, options: &Map<String, Value>) -> Result<(), String> {
        let loaded = self.plugin(plugin).map_err(|e| e.to_string())?;
        let json = Value::Object(options.clone()).to_string();
        loaded.validate(&json).map_err(|e| {
            e.scrubbed(&crate::redact::Redactor::from_options(options))
                .to_string()
        })
    }
}

//! The bridge from the hub to a plugin: a [`SourceFactory`] that creates and starts a plugin
//! instance publishing into the hub's sink.

use std::sync::Arc;

use serde_json::{Map, Value};

use super::ffi::{HostContext, LoadedPlugin, PluginInstance};
use crate::hub::{FrameSink, RunningSource, SourceFactory};
use crate::redact::Redactor;

/// Runs one stream's source through a plugin.
pub struct PluginSourceFactory {
    plugin: Arc<LoadedPlugin>,
    config_json: String,
    redactor: Redactor,
}

impl PluginSourceFactory {
    /// A factory for `plugin` with the stream's source options.
    pub fn new(plugin: Arc<LoadedPlugin>, options: &Map<String, Value>) -> Self {
        PluginSourceFactory {
            plugin,
            config_json: Value::Object(options.clone()).to_string(),
            redactor: Redactor::from_options(options),
        }
    }
}

impl SourceFactory for PluginSourceFactory {
    fn start(&self, sink: FrameSink) -> Result<Box<dyn RunningSource>, String> {
        let name = self.plugin.descriptor().name.clone();
        let host = HostContext::new(sink, &name, self.redactor.clone());
        let mut instance =
            PluginInstance::create(Arc::clone(&self.plugin), &self.config_json, host)
                .map_err(|e| format!("plugin `{name}` could not create the source: {e}"))?;
        instance
            .start()
            .map_err(|e| format!("plugin `{name}` could not start the source: {e}"))?;
        Ok(Box::new(PluginSource(instance)))
    }

    fn describe(&self) -> String {
        self.plugin.descriptor().name.clone()
    }
}

struct PluginSource(PluginInstance);

impl RunningSource for PluginSource {
    fn stop(self: Box<Self>) {
        let PluginSource(mut instance) = *self;
        if let Err(e) = instance.stop() {
            tracing::error!(error = %e, "plugin source did not stop cleanly");
        }
        // Dropping the instance destroys it.
    }
}

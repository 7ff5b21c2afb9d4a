//! The manifest: the registry as JSON (`app manifest`). The deploy program reads the same
//! data by linking the app; this is the form for people and other tools.

use serde::Serialize;

use crate::extract::Capabilities;
use crate::registry::{Registry, RouteKind, RouteOptions};

/// Everything the deploy step needs to know about a service's routes.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Manifest {
    /// The app's name.
    pub app: String,
    /// The route selection expression.
    pub route_selection_expression: String,
    /// Every route, in the registry's stable order.
    pub routes: Vec<RouteEntry>,
}

/// One route of the manifest.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RouteEntry {
    /// The route key.
    pub key: &'static str,
    /// Custom or reserved.
    pub kind: RouteKind,
    /// The handler function.
    #[serde(rename = "fn")]
    pub function: &'static str,
    /// Its module path.
    pub module: &'static str,
    /// Its file.
    pub file: &'static str,
    /// Its line.
    pub line: u32,
    /// Whether this is Switchboard's built-in behaviour.
    pub builtin: bool,
    /// Options from the attribute.
    pub options: RouteOptions,
    /// Whether the handler's return type carries a route response.
    pub returns_value: bool,
    /// What the handler needs from the platform.
    pub capabilities: Capabilities,
    /// The handler's doc comment.
    #[serde(skip_serializing_if = "str::is_empty")]
    pub doc: &'static str,
}

impl Manifest {
    /// The manifest of a validated registry.
    pub fn new(app: &str, selection: &str, registry: &Registry) -> Self {
        Self {
            app: app.to_owned(),
            route_selection_expression: selection.to_owned(),
            routes: registry
                .routes()
                .iter()
                .map(|r| RouteEntry {
                    key: r.def.key,
                    kind: r.def.kind,
                    function: r.def.function,
                    module: r.def.module,
                    file: r.def.location.file,
                    line: r.def.location.line,
                    builtin: r.builtin,
                    options: r.def.options,
                    returns_value: r.handler.returns_value(),
                    capabilities: {
                        let mut caps = r.handler.capabilities();
                        // The built-in bookkeeping of $connect/$disconnect writes the store.
                        caps.store |=
                            matches!(r.def.kind, RouteKind::Connect | RouteKind::Disconnect);
                        caps
                    },
                    doc: r.def.doc,
                })
                .collect(),
        }
    }

    /// Pretty JSON.
    pub fn to_json_pretty(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"))
    }
}

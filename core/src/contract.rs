//! The service's contract: what each route accepts and answers and what the server
//! pushes, with JSON Schemas from the Rust types — the input of the AsyncAPI document
//! (`switchboard_contract::asyncapi`, `app asyncapi`) and of the typed TypeScript
//! client (`switchboard_contract::typescript`, `app client-ts`).
//!
//! # How types are captured
//!
//! The attribute macros see a handler's signature. Beside the `RouteDef` they submit a
//! [`ContractDef`] whose function names the payload type (the `T` of a last `Json<T>`
//! argument), the reply type (the return type with `Result<_, E>`, `Option<_>` and
//! `Json<_>` unwrapped) and the types listed in `emits = [..]`. Each type goes through
//! [`Probe`]: by autoref specialisation a type that implements
//! [`JsonSchema`] yields its schema, any other type an *open*
//! schema (anything goes) that the document marks with `x-switchboard-open` and the
//! type's name. So handlers whose types do not derive `JsonSchema` compile unchanged.
//!
//! Server-pushed messages are declared with `emits = [Chat, Presence]` on
//! `#[ws_route]` / `#[queue_consumer]`, or app-wide with `App::emits`.
//! A message's `action` (what the client dispatches on) is read from its schema: a
//! property `action` with a `const` (or a one-value `enum`), e.g.
//! `#[schemars(extend("const" = "presence"))]` on the field.

use std::collections::BTreeMap;
use std::marker::PhantomData;

use schemars::generate::{Contract as SchemaContract, SchemaSettings};
use schemars::{JsonSchema, Schema, SchemaGenerator};
use serde_json::{Map, Value, json};

use crate::registry::{Registry, RouteKind};

/// Where components' schemas live in the AsyncAPI document; `$ref`s point there.
pub const SCHEMA_PATH: &str = "/components/schemas";

/// One Rust type as the contract sees it: its name and, when it implements
/// [`JsonSchema`], how to generate its schema.
#[derive(Clone, Copy)]
pub struct TypeSchema {
    /// `std::any::type_name` of the type.
    pub type_name: fn() -> &'static str,
    /// Its schema (a `$ref` into the generator's definitions for named types), `None`
    /// when the type does not implement `JsonSchema`, or when this build has no schema
    /// generators (feature `schemas` off: a Lambda artifact, which never renders the
    /// contract).
    pub schema: Option<fn(&mut SchemaGenerator) -> Schema>,
}

impl std::fmt::Debug for TypeSchema {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TypeSchema")
            .field("type_name", &(self.type_name)())
            .field("described", &self.schema.is_some())
            .finish()
    }
}

impl TypeSchema {
    /// The schema of a `JsonSchema` type.
    pub fn of<T: JsonSchema + ?Sized>() -> Self {
        Self {
            type_name: std::any::type_name::<T>,
            schema: schema_generator::<T>(),
        }
    }
}

/// The generator of `T`'s schema, when this build renders contracts.
#[cfg(feature = "schemas")]
fn schema_generator<T: JsonSchema + ?Sized>() -> Option<fn(&mut SchemaGenerator) -> Schema> {
    Some(subschema::<T>)
}

/// Without the `schemas` feature nothing references schemars' generators, so a Lambda
/// artifact leaves them out.
#[cfg(not(feature = "schemas"))]
#[allow(clippy::extra_unused_type_parameters)] // the signature of the `schemas` build
fn schema_generator<T: JsonSchema + ?Sized>() -> Option<fn(&mut SchemaGenerator) -> Schema> {
    None
}

#[cfg(feature = "schemas")]
fn subschema<T: JsonSchema + ?Sized>(generator: &mut SchemaGenerator) -> Schema {
    generator.subschema_for::<T>()
}

/// The autoref-specialisation probe the macros use: `(&Probe::<T>::new()).type_schema()`
/// picks [`ViaJsonSchema`] when `T: JsonSchema`, else [`Undescribed`].
pub struct Probe<T: ?Sized>(PhantomData<T>);

impl<T: ?Sized> Probe<T> {
    /// The probe of `T`.
    #[allow(clippy::new_without_default)]
    pub const fn new() -> Self {
        Self(PhantomData)
    }
}

/// The probe's first choice: types with a schema.
pub trait ViaJsonSchema {
    /// The type's schema.
    fn type_schema(&self) -> TypeSchema;
}

impl<T: JsonSchema + ?Sized> ViaJsonSchema for Probe<T> {
    fn type_schema(&self) -> TypeSchema {
        TypeSchema::of::<T>()
    }
}

/// The probe's fallback: types without a schema (an open one, marked as such).
pub trait Undescribed {
    /// The type's name, no schema.
    fn type_schema(&self) -> TypeSchema;
}

impl<T: ?Sized> Undescribed for &Probe<T> {
    fn type_schema(&self) -> TypeSchema {
        TypeSchema {
            type_name: std::any::type_name::<T>,
            schema: None,
        }
    }
}

/// What a handler answers (its route response), from its return type.
#[derive(Clone, Copy, Debug)]
pub enum ReplySchema {
    /// Nothing (`()`, `Result<(), E>`): no route response.
    None,
    /// A JSON value of this type (`Json<T>`, `serde_json::Value`, ...).
    Value(TypeSchema),
    /// Sometimes this type, sometimes nothing (`Option<Json<T>>`).
    Optional(TypeSchema),
    /// A frame whose shape the types do not tell (`Frame`, `String`, `impl ..`).
    Unknown,
}

/// What one handler's signature and attribute tell about its messages.
#[derive(Clone, Debug)]
pub struct Contract {
    /// The payload (`Json<T>`, the last argument); `None` when the handler reads none.
    pub payload: Option<TypeSchema>,
    /// The route response.
    pub reply: ReplySchema,
    /// What it pushes to connections (`emits = [..]`).
    pub emits: Vec<TypeSchema>,
}

/// Whose contract a [`ContractDef`] is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ContractOwner {
    /// A route, by key (`"$connect"` etc. for the reserved ones).
    Route(&'static str),
    /// A queue consumer, by queue.
    Consumer(&'static str),
}

/// A handler's contract, submitted by the attribute macros beside its `RouteDef` /
/// `ConsumerDef` (a separate item, so hand-built definitions stay as they are).
#[derive(Clone, Copy, Debug)]
pub struct ContractDef {
    /// The route or consumer.
    pub owner: ContractOwner,
    /// `module_path!()` of the handler.
    pub module: &'static str,
    /// The handler function's name.
    pub function: &'static str,
    /// Builds the contract (at run time: the probes are trait calls).
    pub contract: fn() -> Contract,
}

inventory::collect!(ContractDef);

/// The contract of the handler `module::function` registered for `owner`, if the macros
/// recorded one.
fn find(owner: ContractOwner, module: &str, function: &str) -> Option<Contract> {
    inventory::iter::<ContractDef>
        .into_iter()
        .find(|d| d.owner == owner && d.module == module && d.function == function)
        .map(|d| (d.contract)())
}

/// A schema in the contract: described, or open because the type has no `JsonSchema`.
#[derive(Clone, Debug, PartialEq)]
pub enum Shape {
    /// A schema (usually a `$ref` to `#/components/schemas/Name`).
    Schema(Value),
    /// Anything: the Rust type (named) does not describe itself.
    Open(String),
}

impl Shape {
    /// The JSON Schema: the schema, or `{}` marked `x-switchboard-open` with the type.
    pub fn to_schema(&self) -> Value {
        match self {
            Self::Schema(v) => v.clone(),
            Self::Open(type_name) => json!({
                "description": format!("Not described: `{type_name}` does not implement JsonSchema."),
                "x-switchboard-open": type_name,
            }),
        }
    }

    /// The component name a `$ref` points to, if the schema is one.
    pub fn ref_name(&self) -> Option<&str> {
        match self {
            Self::Schema(v) => v
                .get("$ref")
                .and_then(Value::as_str)
                .and_then(|r| r.strip_prefix("#/components/schemas/")),
            Self::Open(_) => None,
        }
    }
}

/// A route's part of the contract.
#[derive(Clone, Debug)]
pub struct RouteContract {
    /// The route key (the frame's `action`).
    pub key: &'static str,
    /// The handler's doc comment.
    pub doc: String,
    /// Whether this is Switchboard's built-in route.
    pub builtin: bool,
    /// The payload's fields besides `action`; `None`: the handler reads none.
    pub payload: Option<Shape>,
    /// The reply's message (an index into [`ServiceContract::messages`]).
    pub reply: Option<usize>,
    /// Whether the reply may be absent.
    pub reply_optional: bool,
}

/// A message the server sends: a route response or a pushed message.
#[derive(Clone, Debug)]
pub struct ServerMessage {
    /// Its name in the document (`components.messages`) and the TypeScript types.
    pub name: String,
    /// Its schema.
    pub shape: Shape,
    /// Its `action`, when the schema fixes one.
    pub action: Option<String>,
    /// Whether handlers push it (`emits`), besides answering with it.
    pub pushed: bool,
    /// Who sends it: route keys and `queue:<name>` consumers.
    pub senders: Vec<String>,
}

/// Everything the AsyncAPI document and the TypeScript client are made of.
#[derive(Clone, Debug)]
pub struct ServiceContract {
    /// The app's name.
    pub app: String,
    /// The app's version.
    pub version: String,
    /// The route selection expression.
    pub selection: String,
    /// Every route clients send to (custom routes and the built-in `ping`), in registry
    /// order.
    pub routes: Vec<RouteContract>,
    /// Every message the server sends, route responses and pushed messages.
    pub messages: Vec<ServerMessage>,
    /// Every named schema, by name (draft-07, `$ref`s into [`SCHEMA_PATH`]).
    pub schemas: BTreeMap<String, Value>,
}

/// The schema generator: draft-07, definitions under `#/components/schemas`.
fn generator(contract: SchemaContract) -> SchemaGenerator {
    SchemaSettings::draft07()
        .with(|s| {
            s.definitions_path = SCHEMA_PATH.into();
            s.contract = contract;
        })
        .into_generator()
}

/// Pong, the built-in reply to `ping`.
const PONG: &str = "Pong";

impl ServiceContract {
    /// The contract of a validated registry, plus app-wide pushed messages.
    pub fn new(
        app: &str,
        version: &str,
        selection: &str,
        registry: &Registry,
        app_emits: &[TypeSchema],
    ) -> Self {
        // Payloads are read (deserialize contract), messages written (serialize).
        let mut input = generator(SchemaContract::Deserialize);
        let mut output = generator(SchemaContract::Serialize);
        let mut out = Self {
            app: app.to_owned(),
            version: version.to_owned(),
            selection: selection.to_owned(),
            routes: Vec::new(),
            messages: Vec::new(),
            schemas: BTreeMap::new(),
        };
        let shape = |generator: &mut SchemaGenerator, t: &TypeSchema| shape_of(generator, t);
        for route in registry.routes() {
            if route.def.kind != RouteKind::Custom {
                continue;
            }
            let key = route.def.key;
            if route.builtin && key == crate::names::history::RESUME_ROUTE {
                // `resume`: its request and `resumed` answer (see `crate::rooms`).
                let payload = shape(&mut input, &TypeSchema::of::<crate::rooms::ResumeRequest>());
                let answer = shape(&mut output, &TypeSchema::of::<crate::rooms::Resumed>());
                let name = answer.ref_name().unwrap_or("Resumed").to_owned();
                let reply = out.add_message(&name, answer, false, key);
                out.routes.push(RouteContract {
                    key,
                    doc: route.def.doc.to_owned(),
                    builtin: true,
                    payload: Some(payload),
                    reply: Some(reply),
                    reply_optional: false,
                });
                continue;
            }
            if route.builtin {
                // `ping`: no payload, answers `{"action":"pong"}`.
                let reply = out.add_message(PONG, Shape::Schema(pong_ref()), false, key);
                out.routes.push(RouteContract {
                    key,
                    doc: "Keep-alive: answers `{\"action\":\"pong\"}`.".to_owned(),
                    builtin: true,
                    payload: None,
                    reply: Some(reply),
                    reply_optional: false,
                });
                continue;
            }
            let contract = find(
                ContractOwner::Route(key),
                route.def.module,
                route.def.function,
            );
            let (payload, reply, optional) = match &contract {
                // Hand-built definitions (tests): nothing is known.
                None => (
                    Some(Shape::Open("unknown".to_owned())),
                    Some(Shape::Open("unknown".to_owned())),
                    true,
                ),
                Some(c) => {
                    let payload = c.payload.as_ref().map(|t| shape(&mut input, t));
                    let (reply, optional) = match &c.reply {
                        ReplySchema::None => (None, false),
                        ReplySchema::Value(t) => (Some(shape(&mut output, t)), false),
                        ReplySchema::Optional(t) => (Some(shape(&mut output, t)), true),
                        ReplySchema::Unknown => (Some(Shape::Open("Frame".to_owned())), false),
                    };
                    (payload, reply, optional)
                }
            };
            let reply = reply.map(|shape| {
                let name = shape
                    .ref_name()
                    .map(str::to_owned)
                    .unwrap_or_else(|| format!("{}Reply", upper_first(key)));
                out.add_message(&name, shape, false, key)
            });
            out.routes.push(RouteContract {
                key,
                doc: route.def.doc.to_owned(),
                builtin: false,
                payload,
                reply,
                reply_optional: optional,
            });
            if let Some(c) = contract {
                out.add_emits(&mut output, &c.emits, key);
            }
        }
        for consumer in registry.consumers() {
            let def = &consumer.def;
            if let Some(c) = find(ContractOwner::Consumer(def.queue), def.module, def.function) {
                out.add_emits(&mut output, &c.emits, &format!("queue:{}", def.queue));
            }
        }
        out.add_emits(&mut output, app_emits, "app");
        out.schemas
            .insert(PONG.to_owned(), json!({"type": "object", "properties": {"action": {"const": "pong", "type": "string"}}, "required": ["action"], "title": PONG}));
        // Read schemas win over written ones of the same name (rare: one type used both
        // ways with serde attributes that differ by direction).
        for (name, schema) in output.take_definitions(true) {
            out.schemas.insert(name, schema);
        }
        for (name, schema) in input.take_definitions(true) {
            out.schemas.insert(name, schema);
        }
        let actions: Vec<Option<String>> = out
            .messages
            .iter()
            .map(|m| action_of(&m.shape, &out.schemas))
            .collect();
        for (m, action) in out.messages.iter_mut().zip(actions) {
            m.action = action;
        }
        out
    }

    fn add_emits(&mut self, generator: &mut SchemaGenerator, emits: &[TypeSchema], sender: &str) {
        for t in emits {
            let shape = shape_of(generator, t);
            let name = shape
                .ref_name()
                .map(str::to_owned)
                .unwrap_or_else(|| short_type_name((t.type_name)()));
            let i = self.add_message(&name, shape, true, sender);
            self.messages[i].pushed = true;
        }
    }

    /// Adds (or finds) a message by name; returns its index.
    fn add_message(&mut self, name: &str, shape: Shape, pushed: bool, sender: &str) -> usize {
        if let Some(i) = self.messages.iter().position(|m| m.name == name) {
            let m = &mut self.messages[i];
            if !m.senders.iter().any(|s| s == sender) {
                m.senders.push(sender.to_owned());
            }
            return i;
        }
        self.messages.push(ServerMessage {
            name: name.to_owned(),
            shape,
            action: None,
            pushed,
            senders: vec![sender.to_owned()],
        });
        self.messages.len() - 1
    }

    /// The messages the server may send, with a fixed action, by action (first wins).
    pub fn by_action(&self) -> Vec<(&str, &ServerMessage)> {
        let mut out: Vec<(&str, &ServerMessage)> = Vec::new();
        for m in &self.messages {
            if let Some(a) = &m.action
                && !out.iter().any(|(b, _)| b == a)
            {
                out.push((a, m));
            }
        }
        out
    }
}

fn pong_ref() -> Value {
    json!({"$ref": format!("#{SCHEMA_PATH}/{PONG}")})
}

/// The shape of a type: its schema; open without one, or when the schema is `true`
/// (`serde_json::Value`: anything goes, which the document should say).
fn shape_of(generator: &mut SchemaGenerator, t: &TypeSchema) -> Shape {
    match t.schema.map(|f| f(generator).to_value()) {
        Some(Value::Bool(true)) | None => Shape::Open((t.type_name)().to_owned()),
        Some(schema) => Shape::Schema(schema),
    }
}

/// `chat_app::Chat<'_>` -> `Chat`.
fn short_type_name(full: &str) -> String {
    let base = full.split('<').next().unwrap_or(full);
    base.rsplit("::").next().unwrap_or(base).to_owned()
}

/// `s` with its first character upper-cased.
pub fn upper_first(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_uppercase().chain(c).collect(),
        None => String::new(),
    }
}

/// Resolves a `$ref` into the schemas (one level: named schemas are never refs).
pub fn resolve<'a>(schema: &'a Value, schemas: &'a BTreeMap<String, Value>) -> &'a Value {
    match schema
        .get("$ref")
        .and_then(Value::as_str)
        .and_then(|r| r.strip_prefix("#/components/schemas/"))
    {
        Some(name) => schemas.get(name).unwrap_or(schema),
        None => schema,
    }
}

/// The fixed `action` of a message schema: `properties.action.const`, or a one-value
/// `enum`.
fn action_of(shape: &Shape, schemas: &BTreeMap<String, Value>) -> Option<String> {
    let Shape::Schema(schema) = shape else {
        return None;
    };
    let schema = resolve(schema, schemas);
    let action = schema.get("properties")?.get("action")?;
    if let Some(c) = action.get("const").and_then(Value::as_str) {
        return Some(c.to_owned());
    }
    match action
        .get("enum")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
    {
        Some([Value::String(s)]) => Some(s.clone()),
        _ => None,
    }
}

/// The error frame every route may answer with.
pub fn error_frame_schema() -> Value {
    json!({
        "title": "ErrorFrame",
        "description": "A handler's error (or the built-in `$default`'s `unknown_route`): `{\"error\":{\"code\",\"message\",\"route\"}}`.",
        "type": "object",
        "properties": {
            "error": {
                "type": "object",
                "properties": {
                    "code": {"type": "string", "description": "Machine-readable: `bad_payload`, `unknown_route`, `internal`, or the app's own."},
                    "message": {"type": "string", "description": "For people."},
                    "route": {"type": "string", "description": "The route key the failed frame was for."}
                },
                "required": ["code"]
            }
        },
        "required": ["error"]
    })
}

/// A JSON object (helper for the document builders).
pub fn object(pairs: impl IntoIterator<Item = (String, Value)>) -> Value {
    Value::Object(pairs.into_iter().collect::<Map<String, Value>>())
}

#[cfg(any(test, feature = "sample"))]
#[doc(hidden)]
pub mod sample {
    //! A sample contract for the generators' tests (feature `sample`).
    use super::*;

    /// A contract as the registry would give it: `join` (typed payload and reply, pushes
    /// `Presence`), `legacy` (a type without a schema, no reply) and the built-in `ping`.
    pub fn sample() -> ServiceContract {
        let mut schemas = BTreeMap::new();
        schemas.insert(
            "RoomRequest".to_owned(),
            json!({"type": "object", "properties": {"room": {"type": "string"}}, "required": ["room"]}),
        );
        schemas.insert(
            "Joined".to_owned(),
            json!({"type": "object", "properties": {"action": {"type": "string", "const": "joined"}, "room": {"type": "string"}}, "required": ["action", "room"]}),
        );
        schemas.insert(
            "Presence".to_owned(),
            json!({"type": "object", "properties": {"action": {"type": "string", "enum": ["presence"]}}, "required": ["action"]}),
        );
        schemas.insert(
            PONG.to_owned(),
            json!({"type": "object", "properties": {"action": {"const": "pong"}}}),
        );
        let r = |name: &str| Shape::Schema(json!({"$ref": format!("#/components/schemas/{name}")}));
        let mut c = ServiceContract {
            app: "chat".to_owned(),
            version: "1.2.3".to_owned(),
            selection: "$request.body.action".to_owned(),
            routes: Vec::new(),
            messages: Vec::new(),
            schemas,
        };
        let joined = c.add_message("Joined", r("Joined"), false, "join");
        let presence = c.add_message("Presence", r("Presence"), true, "join");
        c.add_message("Presence", r("Presence"), true, "queue:orders");
        let pong = c.add_message(PONG, r(PONG), false, "ping");
        c.routes = vec![
            RouteContract {
                key: "join",
                doc: "Joins a room.".to_owned(),
                builtin: false,
                payload: Some(r("RoomRequest")),
                reply: Some(joined),
                reply_optional: false,
            },
            RouteContract {
                key: "legacy",
                doc: String::new(),
                builtin: false,
                payload: Some(Shape::Open("app::Legacy".to_owned())),
                reply: None,
                reply_optional: false,
            },
            RouteContract {
                key: "ping",
                doc: String::new(),
                builtin: true,
                payload: None,
                reply: Some(pong),
                reply_optional: false,
            },
        ];
        let actions: Vec<_> = c
            .messages
            .iter()
            .map(|m| action_of(&m.shape, &c.schemas))
            .collect();
        for (m, a) in c.messages.iter_mut().zip(actions) {
            m.action = a;
        }
        assert_eq!(c.messages[presence].senders, ["join", "queue:orders"]);
        c
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::sample::sample;
    #[allow(unused_imports)] // used by the tests of the `schemas` build
    use super::*;

    #[test]
    fn actions_come_from_const_or_one_value_enums() {
        let c = sample();
        let actions: Vec<(&str, &str)> = c
            .by_action()
            .into_iter()
            .map(|(a, m)| (a, m.name.as_str()))
            .collect();
        assert_eq!(
            actions,
            [
                ("joined", "Joined"),
                ("presence", "Presence"),
                ("pong", "Pong")
            ]
        );
    }

    #[derive(schemars::JsonSchema)]
    #[allow(dead_code)]
    struct Described {
        /// A field.
        field: Option<u32>,
    }

    #[allow(dead_code)]
    struct NotDescribed;

    #[test]
    #[cfg(feature = "schemas")]
    #[allow(clippy::needless_borrow)] // the borrow is the specialisation
    fn the_probe_specialises_on_json_schema() {
        let described = (&Probe::<Described>::new()).type_schema();
        assert!(described.schema.is_some());
        assert!((described.type_name)().ends_with("Described"));
        let open = (&Probe::<NotDescribed>::new()).type_schema();
        assert!(open.schema.is_none());
        assert!((open.type_name)().ends_with("NotDescribed"));
        // A described type's schema is a $ref into the components.
        let mut g = generator(SchemaContract::Deserialize);
        let shape = shape_of(&mut g, &described);
        assert_eq!(shape.ref_name(), Some("Described"));
        let defs = g.take_definitions(true);
        assert_eq!(
            defs["Described"]["properties"]["field"]["type"],
            json!(["integer", "null"])
        );
        // serde_json::Value says nothing: open, named.
        let value = (&Probe::<serde_json::Value>::new()).type_schema();
        assert_eq!(
            shape_of(&mut g, &value),
            Shape::Open("serde_json::value::Value".to_owned())
        );
        assert_eq!(
            Shape::Open("X".to_owned()).to_schema()["x-switchboard-open"],
            "X"
        );
    }
}

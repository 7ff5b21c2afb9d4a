//! The typed TypeScript client of a service (`app client-ts`, [`App::client_ts`]): one
//! dependency-free ES module for the browser with
//!
//! - the message types, converted from the same JSON Schemas as the AsyncAPI document
//!   (objects, optional fields, arrays, maps, enums, `const`, nullable, unions, `$ref`s);
//! - `RoutePayloads` / `RouteReplies` (per route key) and `ServerMessages` (per `action`);
//! - `SwitchboardClient`: `connect`, `send(route, payload)` typed per route,
//!   `on(action, handler)` typed per message, error frames, a `ping` keep-alive, and
//!   reconnection with exponential backoff and jitter, observable through `hook(..)`.
//!
//! The runtime does not echo a request id, so replies are not correlated to requests:
//! a route response arrives through `on(<its action>)` like any other frame.
//!
//! [`App::client_ts`]: https://docs.rs/switchboard

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde_json::Value;

use switchboard_core::contract::{ServiceContract, Shape, error_frame_schema};

/// A TypeScript identifier from a schema name (`Foo_for_Bar` stays, `a.b` -> `a_b`).
pub fn ident(name: &str) -> String {
    let mut out: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == '$' {
                c
            } else {
                '_'
            }
        })
        .collect();
    if out.is_empty() || out.starts_with(|c: char| c.is_ascii_digit()) {
        out.insert(0, '_');
    }
    out
}

/// A property name: bare when it is an identifier, quoted otherwise.
fn prop_name(name: &str) -> String {
    let bare = !name.is_empty()
        && !name.starts_with(|c: char| c.is_ascii_digit())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '$');
    if bare {
        name.to_owned()
    } else {
        json_string(name)
    }
}

fn json_string(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| "\"\"".to_owned())
}

/// A doc comment (`/** .. */`) from a schema's `description`, indented.
fn doc_comment(schema: &Value, indent: &str) -> String {
    let Some(text) = schema.get("description").and_then(Value::as_str) else {
        return String::new();
    };
    let text = text.replace("*/", "* /");
    let lines: Vec<&str> = text.lines().collect();
    if lines.len() == 1 {
        return format!("{indent}/** {} */\n", lines[0].trim());
    }
    let mut out = format!("{indent}/**\n");
    for line in lines {
        let line = line.trim_end();
        if line.is_empty() {
            let _ = writeln!(out, "{indent} *");
        } else {
            let _ = writeln!(out, "{indent} * {line}");
        }
    }
    let _ = writeln!(out, "{indent} */");
    out
}

/// The TypeScript type of a JSON Schema. `indent` is the current line's indentation,
/// for object literals spanning lines.
pub fn ts_type(schema: &Value, indent: &str) -> String {
    let obj = match schema {
        Value::Bool(true) => return "unknown".to_owned(),
        Value::Bool(false) => return "never".to_owned(),
        Value::Object(obj) => obj,
        _ => return "unknown".to_owned(),
    };
    if let Some(r) = obj.get("$ref").and_then(Value::as_str) {
        return match r.rsplit_once('/') {
            Some((_, name)) => ident(name),
            None => "unknown".to_owned(),
        };
    }
    if let Some(c) = obj.get("const") {
        return literal(c);
    }
    if let Some(values) = obj.get("enum").and_then(Value::as_array) {
        return union(values.iter().map(literal).collect());
    }
    for key in ["anyOf", "oneOf"] {
        if let Some(items) = obj.get(key).and_then(Value::as_array) {
            let alternatives: Vec<String> = items.iter().map(|s| ts_type(s, indent)).collect();
            return with_rest(obj, key, union(alternatives), indent);
        }
    }
    if let Some(items) = obj.get("allOf").and_then(Value::as_array) {
        let parts: Vec<String> = items.iter().map(|s| wrap(ts_type(s, indent))).collect();
        return with_rest(obj, "allOf", intersection(parts), indent);
    }
    match obj.get("type") {
        Some(Value::String(t)) => single_type(t, obj, indent),
        Some(Value::Array(types)) => union(
            types
                .iter()
                .filter_map(Value::as_str)
                .map(|t| single_type(t, obj, indent))
                .collect(),
        ),
        _ if obj.contains_key("properties") => single_type("object", obj, indent),
        _ => "unknown".to_owned(),
    }
}

/// A combinator next to other keywords (`{"type":"object","properties":..,"anyOf":..}`):
/// the intersection of both.
fn with_rest(
    obj: &serde_json::Map<String, Value>,
    key: &str,
    combined: String,
    indent: &str,
) -> String {
    let mut rest = obj.clone();
    rest.remove(key);
    for k in [
        "description",
        "title",
        "default",
        "examples",
        "$schema",
        "definitions",
    ] {
        rest.remove(k);
    }
    if rest.is_empty() {
        return combined;
    }
    let rest = ts_type(&Value::Object(rest), indent);
    if rest == "unknown" {
        combined
    } else {
        intersection(vec![wrap(rest), wrap(combined)])
    }
}

fn single_type(t: &str, obj: &serde_json::Map<String, Value>, indent: &str) -> String {
    match t {
        "string" => "string".to_owned(),
        "integer" | "number" => "number".to_owned(),
        "boolean" => "boolean".to_owned(),
        "null" => "null".to_owned(),
        "array" => match obj.get("items") {
            Some(Value::Array(tuple)) => format!(
                "[{}]",
                tuple
                    .iter()
                    .map(|s| ts_type(s, indent))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            Some(items) => format!("{}[]", wrap_array(ts_type(items, indent))),
            None => "unknown[]".to_owned(),
        },
        "object" => object_type(obj, indent),
        _ => "unknown".to_owned(),
    }
}

fn object_type(obj: &serde_json::Map<String, Value>, indent: &str) -> String {
    let required: Vec<&str> = obj
        .get("required")
        .and_then(Value::as_array)
        .map(|r| r.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let extra = match obj.get("additionalProperties") {
        None | Some(Value::Bool(true)) => Some("unknown".to_owned()),
        Some(Value::Bool(false)) => None,
        Some(schema) => Some(ts_type(schema, indent)),
    };
    let properties = obj.get("properties").and_then(Value::as_object);
    let Some(properties) = properties.filter(|p| !p.is_empty()) else {
        return match extra {
            Some(t) => format!("Record<string, {t}>"),
            None => "Record<string, never>".to_owned(),
        };
    };
    let inner = format!("{indent}  ");
    let mut out = String::from("{\n");
    for (name, schema) in properties {
        out.push_str(&doc_comment(schema, &inner));
        let optional = if required.contains(&name.as_str()) {
            ""
        } else {
            "?"
        };
        let _ = writeln!(
            out,
            "{inner}{}{optional}: {};",
            prop_name(name),
            ts_type(schema, &inner)
        );
    }
    // Extra properties are not listed: a typed index signature would have to admit every
    // declared property's type too, and `unknown` ones add nothing a client can use.
    out.push_str(indent);
    out.push('}');
    out
}

fn literal(v: &Value) -> String {
    match v {
        Value::String(s) => json_string(s),
        Value::Number(_) | Value::Bool(_) | Value::Null => v.to_string(),
        _ => "unknown".to_owned(),
    }
}

fn union(mut parts: Vec<String>) -> String {
    let mut seen = Vec::new();
    parts.retain(|p| {
        if seen.contains(p) {
            false
        } else {
            seen.push(p.clone());
            true
        }
    });
    if parts.iter().any(|p| p == "unknown") {
        return "unknown".to_owned();
    }
    match parts.len() {
        0 => "never".to_owned(),
        1 => parts.remove(0),
        _ => parts
            .iter()
            .map(|p| wrap(p.clone()))
            .collect::<Vec<_>>()
            .join(" | "),
    }
}

fn intersection(parts: Vec<String>) -> String {
    let parts: Vec<String> = parts.into_iter().filter(|p| p != "unknown").collect();
    match parts.len() {
        0 => "unknown".to_owned(),
        1 => parts.into_iter().next().unwrap_or_default(),
        _ => parts.join(" & "),
    }
}

/// Parenthesises a union or intersection used inside another.
fn wrap(t: String) -> String {
    if (t.contains(" | ") || t.contains(" & ")) && !t.starts_with('{') {
        format!("({t})")
    } else {
        t
    }
}

fn wrap_array(t: String) -> String {
    if t.contains(' ') && !t.starts_with('{') && !t.starts_with('(') {
        format!("({t})")
    } else {
        t
    }
}

/// One named schema as a declaration: an `interface` for plain objects, a `type`
/// otherwise.
pub fn declaration(name: &str, schema: &Value) -> String {
    let mut out = doc_comment(schema, "");
    let name = ident(name);
    let is_plain_object = schema.get("type").and_then(Value::as_str) == Some("object")
        && schema
            .get("properties")
            .and_then(Value::as_object)
            .is_some_and(|p| !p.is_empty())
        && !["anyOf", "oneOf", "allOf", "enum", "const"]
            .iter()
            .any(|k| schema.get(k).is_some());
    if is_plain_object {
        let _ = writeln!(out, "export interface {name} {}", ts_type(schema, ""));
    } else {
        let _ = writeln!(out, "export type {name} = {};", ts_type(schema, ""));
    }
    out
}

fn shape_type(shape: &Shape) -> String {
    match shape {
        Shape::Schema(schema) => ts_type(schema, "  "),
        Shape::Open(_) => "Record<string, unknown>".to_owned(),
    }
}

/// The whole module.
pub fn module(contract: &ServiceContract, command: &str) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "// The `{}` service's TypeScript client. Generated by `{command}` from the route\n\
         // registry (the same schemas as its AsyncAPI document): do not edit by hand.\n\
         /* eslint-disable */\n",
        contract.app
    );
    out.push_str(
        "// ---- message types --------------------------------------------------------\n\n",
    );
    let mut schemas: BTreeMap<String, Value> = contract.schemas.clone();
    schemas.insert("ErrorFrame".to_owned(), error_frame_schema());
    for (name, schema) in &schemas {
        out.push_str(&declaration(name, schema));
        out.push('\n');
    }
    for m in &contract.messages {
        if let Shape::Open(type_name) = &m.shape {
            let _ = writeln!(
                out,
                "/** Not described: `{type_name}` does not implement JsonSchema. */\nexport type {} = Record<string, unknown>;\n",
                ident(&m.name)
            );
        }
    }

    out.push_str(
        "// ---- routes and messages ---------------------------------------------------\n\n",
    );
    out.push_str("/** What each route takes: the frame's fields besides `action`. */\nexport interface RoutePayloads {\n");
    for route in &contract.routes {
        if !route.doc.is_empty() {
            out.push_str(&doc_comment(
                &serde_json::json!({"description": route.doc}),
                "  ",
            ));
        }
        let payload = match &route.payload {
            None => "Record<string, never>".to_owned(),
            Some(shape) => shape_type(shape),
        };
        let _ = writeln!(out, "  {}: {payload};", prop_name(route.key));
    }
    out.push_str("}\n\n");
    out.push_str("/** What each route answers (its route response); `undefined`: nothing. */\nexport interface RouteReplies {\n");
    for route in &contract.routes {
        let reply = match route.reply {
            None => "undefined".to_owned(),
            Some(i) => {
                let t = ident(&contract.messages[i].name);
                if route.reply_optional {
                    format!("{t} | undefined")
                } else {
                    t
                }
            }
        };
        let _ = writeln!(out, "  {}: {reply};", prop_name(route.key));
    }
    out.push_str("}\n\n");
    out.push_str("/** Every message the server sends with a fixed `action`, by action. */\nexport interface ServerMessages {\n");
    for (action, m) in contract.by_action() {
        let _ = writeln!(out, "  {}: {};", prop_name(action), ident(&m.name));
    }
    out.push_str("}\n\n");
    out.push_str("/** The route keys. */\nexport type Route = keyof RoutePayloads;\n");
    out.push_str(
        "/** The actions of server messages. */\nexport type Action = keyof ServerMessages;\n",
    );
    out.push_str("/** Any frame the server may send. */\nexport type ServerFrame = ServerMessages[Action] | ErrorFrame;\n\n");
    let _ = writeln!(
        out,
        "/** Every route key, at run time. */\nexport const ROUTES: readonly Route[] = [{}];\n",
        contract
            .routes
            .iter()
            .map(|r| json_string(r.key))
            .collect::<Vec<_>>()
            .join(", ")
    );
    out.push_str(CLIENT);
    out
}

/// The client class: the same for every service; only the types above differ.
const CLIENT: &str = r#"// ---- the client -------------------------------------------------------------

/** Where the client is. */
export type ConnectionState = 'idle' | 'connecting' | 'open' | 'reconnecting' | 'closed';

/** What `hook(..)` reports. */
export interface ClientEvents {
  /** A connection attempt starts (`attempt` 0 is the first since the last open). */
  connecting: { attempt: number };
  /** The socket is open. */
  open: { attempt: number };
  /** The socket closed; `opened`: whether it had opened (else the upgrade failed). */
  close: { code: number; reason: string; opened: boolean; willReconnect: boolean };
  /** The next attempt is scheduled at `at` (epoch ms), after `delayMs`. */
  reconnecting: { attempt: number; delayMs: number; at: number };
  /** An error frame from the server. */
  error: ErrorFrame['error'];
  /** Preparing a connection failed (`url` or `protocols` threw). */
  failure: { error: unknown };
  /** Any frame, before the `on(action)` handlers. */
  frame: ServerFrame;
}

/** How to connect. */
export interface ClientOptions {
  /** The WebSocket URL, e.g. `wss://host/ws`, or a function asked on every attempt. */
  url: string | (() => string);
  /**
   * Subprotocols to offer, asked on every attempt: with the JWT authorizer,
   * `['switchboard', idToken]` (browsers cannot set an Authorization header).
   */
  protocols?: () => string[] | Promise<string[]>;
  /** `ping` every this many ms while open (default 40000: CloudFront drops idle sockets after 60 s); 0: never. */
  heartbeatMs?: number;
  /** Reconnect with exponential backoff and jitter (default 1 s doubling up to 30 s); `false`: never. */
  reconnect?: { minMs?: number; maxMs?: number } | false;
  /** The WebSocket constructor (default: the global one). */
  WebSocket?: typeof WebSocket;
}

type Handler<T> = (value: T) => void;

/** `send`'s payload argument: optional when the route takes no required field. */
export type PayloadArg<K extends Route> = {} extends RoutePayloads[K]
  ? [payload?: RoutePayloads[K]]
  : [payload: RoutePayloads[K]];

/** A small typed client: one socket, reconnected until `close()`. */
export class SwitchboardClient {
  private ws: WebSocket | null = null;
  private wanted = false;
  private attempt = 0;
  private retryTimer: ReturnType<typeof setTimeout> | undefined;
  private heartbeat: ReturnType<typeof setInterval> | undefined;
  private currentState: ConnectionState = 'idle';
  private readonly handlers = new Map<string, Set<Handler<never>>>();
  private readonly hooks = new Map<string, Set<Handler<never>>>();

  constructor(private readonly options: ClientOptions) {}

  /** Where the client is. */
  get state(): ConnectionState {
    return this.currentState;
  }

  /** Whether frames can be sent now. */
  get connected(): boolean {
    return this.ws !== null && this.ws.readyState === 1;
  }

  /** Connects, and keeps reconnecting after drops until `close()`. */
  connect(): void {
    this.wanted = true;
    if (this.ws || this.currentState === 'connecting') return;
    this.clearRetry();
    void this.open();
  }

  /** Skips the backoff wait (e.g. when the browser comes back online). */
  reconnectNow(): void {
    if (this.wanted && !this.ws && this.retryTimer !== undefined) {
      this.clearRetry();
      void this.open();
    }
  }

  /** Closes the socket and stops reconnecting. */
  close(code = 1000, reason = ''): void {
    this.wanted = false;
    this.clearRetry();
    this.stopHeartbeat();
    const ws = this.ws;
    this.ws = null;
    this.currentState = 'closed';
    if (ws) {
      try {
        ws.close(code, reason);
      } catch {
        // already closing
      }
    }
  }

  /** Sends a route's frame; `false` when not connected (nothing is queued). */
  send<K extends Route>(route: K, ...payload: PayloadArg<K>): boolean {
    if (!this.ws || this.ws.readyState !== 1) return false;
    this.ws.send(JSON.stringify({ ...(payload[0] ?? {}), action: route }));
    return true;
  }

  /** Calls `handler` with every server message of `action`; returns the unsubscriber. */
  on<A extends Action>(action: A, handler: Handler<ServerMessages[A]>): () => void {
    return add(this.handlers, action, handler);
  }

  /** Observes the connection (`open`, `close`, `reconnecting`, `error` frames, ...). */
  hook<E extends keyof ClientEvents>(event: E, handler: Handler<ClientEvents[E]>): () => void {
    return add(this.hooks, event, handler);
  }

  private emit<E extends keyof ClientEvents>(event: E, value: ClientEvents[E]): void {
    for (const h of this.hooks.get(event) ?? []) (h as Handler<ClientEvents[E]>)(value);
  }

  private async open(): Promise<void> {
    this.currentState = 'connecting';
    this.emit('connecting', { attempt: this.attempt });
    let ws: WebSocket;
    try {
      const url = typeof this.options.url === 'function' ? this.options.url() : this.options.url;
      const protocols = this.options.protocols ? await this.options.protocols() : undefined;
      if (!this.wanted) return;
      const Ctor = this.options.WebSocket ?? WebSocket;
      ws = protocols && protocols.length ? new Ctor(url, protocols) : new Ctor(url);
    } catch (error) {
      this.emit('failure', { error });
      this.scheduleReconnect();
      return;
    }
    this.ws = ws;
    let opened = false;
    ws.onopen = () => {
      if (this.ws !== ws) return;
      opened = true;
      const attempt = this.attempt;
      this.attempt = 0;
      this.currentState = 'open';
      this.startHeartbeat();
      this.emit('open', { attempt });
    };
    ws.onmessage = (ev: MessageEvent) => {
      if (this.ws === ws && typeof ev.data === 'string') this.dispatch(ev.data);
    };
    ws.onclose = (ev: CloseEvent) => {
      if (this.ws !== ws) return;
      this.ws = null;
      this.stopHeartbeat();
      const willReconnect = this.wanted && this.options.reconnect !== false;
      this.currentState = willReconnect ? 'reconnecting' : 'closed';
      this.emit('close', { code: ev.code, reason: ev.reason, opened, willReconnect });
      this.scheduleReconnect();
    };
  }

  private dispatch(data: string): void {
    let frame: unknown;
    try {
      frame = JSON.parse(data);
    } catch {
      return;
    }
    if (!frame || typeof frame !== 'object') return;
    const f = frame as { action?: unknown; error?: ErrorFrame['error'] };
    this.emit('frame', frame as ServerFrame);
    if (f.error && typeof f.error === 'object') {
      this.emit('error', f.error);
      return;
    }
    if (typeof f.action !== 'string') return;
    for (const h of this.handlers.get(f.action) ?? []) (h as Handler<unknown>)(frame);
  }

  private scheduleReconnect(): void {
    this.clearRetry();
    const policy = this.options.reconnect;
    if (!this.wanted || policy === false) {
      this.currentState = 'closed';
      return;
    }
    const min = policy?.minMs ?? 1000;
    const max = policy?.maxMs ?? 30000;
    const base = Math.min(max, min * Math.pow(2, Math.min(this.attempt, 10)));
    const delayMs = Math.min(max, Math.round(base * (0.75 + Math.random() * 0.5)));
    this.attempt++;
    this.currentState = 'reconnecting';
    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined;
      void this.open();
    }, delayMs);
    this.emit('reconnecting', { attempt: this.attempt, delayMs, at: Date.now() + delayMs });
  }

  private clearRetry(): void {
    if (this.retryTimer !== undefined) clearTimeout(this.retryTimer);
    this.retryTimer = undefined;
  }

  private startHeartbeat(): void {
    this.stopHeartbeat();
    const every = this.options.heartbeatMs ?? 40000;
    if (every > 0) {
      this.heartbeat = setInterval(() => {
        if (this.ws && this.ws.readyState === 1) this.ws.send('{"action":"ping"}');
      }, every);
    }
  }

  private stopHeartbeat(): void {
    if (this.heartbeat !== undefined) clearInterval(this.heartbeat);
    this.heartbeat = undefined;
  }
}

function add<T>(map: Map<string, Set<Handler<never>>>, key: string, handler: Handler<T>): () => void {
  let set = map.get(key);
  if (!set) {
    set = new Set();
    map.set(key, set);
  }
  const h = handler as Handler<never>;
  set.add(h);
  return () => {
    set.delete(h);
  };
}
"#;

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use serde_json::json;

    #[test]
    fn scalars_refs_consts_and_enums() {
        assert_eq!(ts_type(&json!({"type": "string"}), ""), "string");
        assert_eq!(
            ts_type(&json!({"type": "integer", "format": "uint32"}), ""),
            "number"
        );
        assert_eq!(ts_type(&json!({"type": "boolean"}), ""), "boolean");
        assert_eq!(ts_type(&json!(true), ""), "unknown");
        assert_eq!(ts_type(&json!({}), ""), "unknown");
        assert_eq!(
            ts_type(&json!({"$ref": "#/components/schemas/Member"}), ""),
            "Member"
        );
        assert_eq!(
            ts_type(&json!({"type": "string", "const": "pong"}), ""),
            "\"pong\""
        );
        assert_eq!(
            ts_type(&json!({"type": "string", "enum": ["join", "leave"]}), ""),
            "\"join\" | \"leave\""
        );
        assert_eq!(ts_type(&json!({"enum": [1, null]}), ""), "1 | null");
    }

    #[test]
    fn nullable_arrays_maps_and_unions() {
        // schemars' draft-07 Option<T>: a type list, or anyOf with null for refs.
        assert_eq!(
            ts_type(&json!({"type": ["string", "null"]}), ""),
            "string | null"
        );
        assert_eq!(
            ts_type(
                &json!({"anyOf": [{"$ref": "#/components/schemas/A"}, {"type": "null"}]}),
                ""
            ),
            "A | null"
        );
        assert_eq!(
            ts_type(&json!({"type": "array", "items": {"type": "string"}}), ""),
            "string[]"
        );
        assert_eq!(
            ts_type(
                &json!({"type": "array", "items": {"type": ["string", "null"]}}),
                ""
            ),
            "(string | null)[]"
        );
        assert_eq!(
            ts_type(
                &json!({"type": "array", "items": [{"type": "string"}, {"type": "number"}]}),
                ""
            ),
            "[string, number]"
        );
        assert_eq!(
            ts_type(
                &json!({"type": "object", "additionalProperties": {"type": "integer"}}),
                ""
            ),
            "Record<string, number>"
        );
        assert_eq!(
            ts_type(&json!({"type": "object"}), ""),
            "Record<string, unknown>"
        );
        assert_eq!(
            ts_type(
                &json!({"oneOf": [{"type": "string", "const": "a"}, {"$ref": "#/components/schemas/B"}]}),
                ""
            ),
            "\"a\" | B"
        );
        assert_eq!(
            ts_type(
                &json!({"allOf": [{"$ref": "#/components/schemas/A"}, {"$ref": "#/components/schemas/B"}]}),
                ""
            ),
            "A & B"
        );
        // A union with `unknown` in it is `unknown`.
        assert_eq!(
            ts_type(&json!({"anyOf": [true, {"type": "string"}]}), ""),
            "unknown"
        );
    }

    #[test]
    fn objects_with_optional_fields_and_docs() {
        let schema = json!({
            "title": "Order",
            "description": "An order.",
            "type": "object",
            "properties": {
                "item": {"type": "string", "description": "What."},
                "ref": {"type": ["string", "null"]},
                "content-type": {"type": "string"},
                "nested": {"type": "object", "properties": {"a": {"type": "number"}}, "required": ["a"]}
            },
            "required": ["item", "nested"]
        });
        assert_eq!(
            declaration("Order", &schema),
            "/** An order. */\n\
             export interface Order {\n  \
               \"content-type\"?: string;\n  \
               /** What. */\n  \
               item: string;\n  \
               nested: {\n    \
                 a: number;\n  \
               };\n  \
               ref?: string | null;\n\
             }\n"
        );
        // Not a plain object: a type alias.
        assert_eq!(
            declaration("Kind", &json!({"type": "string", "enum": ["a", "b"]})),
            "export type Kind = \"a\" | \"b\";\n"
        );
    }

    #[test]
    fn identifiers_and_property_names() {
        assert_eq!(ident("Page_for_Item"), "Page_for_Item");
        assert_eq!(ident("a.b-c"), "a_b_c");
        assert_eq!(ident("1x"), "_1x");
        assert_eq!(prop_name("sendMessage"), "sendMessage");
        assert_eq!(prop_name("chat.send"), "\"chat.send\"");
        assert_eq!(prop_name("$default"), "$default");
    }

    #[test]
    fn the_module_lists_routes_replies_and_messages() {
        let contract = switchboard_core::contract::sample::sample();
        let ts = module(&contract, "app client-ts");
        assert!(
            ts.contains("export interface RoomRequest {\n  room: string;\n}"),
            "{ts}"
        );
        assert!(ts.contains("export interface RoutePayloads {\n"), "{ts}");
        assert!(ts.contains("  join: RoomRequest;\n"), "{ts}");
        assert!(ts.contains("  ping: Record<string, never>;\n"), "{ts}");
        assert!(ts.contains("  legacy: Record<string, unknown>;\n"), "{ts}");
        assert!(ts.contains("  join: Joined;\n"), "{ts}");
        assert!(ts.contains("  legacy: undefined;\n"), "{ts}");
        assert!(
            ts.contains("  joined: Joined;\n  presence: Presence;\n  pong: Pong;\n"),
            "{ts}"
        );
        assert!(
            ts.contains(
                "export const ROUTES: readonly Route[] = [\"join\", \"legacy\", \"ping\"];"
            ),
            "{ts}"
        );
        assert!(ts.contains("export class SwitchboardClient"), "{ts}");
        assert!(ts.starts_with(
            "// The `chat` service's TypeScript client. Generated by `app client-ts`"
        ));
    }
}

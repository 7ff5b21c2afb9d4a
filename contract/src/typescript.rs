//! The typed TypeScript client of a service (`app client-ts`, [`App::client_ts`]): one
//! dependency-free ES module for the browser with
//!
//! - the message types, converted from the same JSON Schemas as the AsyncAPI document
//!   (objects, optional fields, arrays, maps, enums, `const`, nullable, unions, `$ref`s);
//! - `RoutePayloads` / `RouteReplies` (per route key) and `ServerMessages` (per `action`);
//! - `SwitchboardClient` (in `client.ts`): `connect`, `send(route, payload)` typed per
//!   route, `on(action, handler)` typed per message, error frames, a `ping` keep-alive,
//!   and reconnection with exponential backoff and jitter, observable through `hook(..)`;
//! - room history ([`protocol`]): `RoomOrder` hands the app each room frame (one with
//!   `seq` and `epoch`) exactly once and in `seq` order, holding frames behind a gap; the
//!   client sends `resume` for the rooms it follows after every reconnect and reports
//!   `recovered` / `reset` / `refused` per room;
//! - `request(route, payload, {timeoutMs})`: a promise of the answer carrying the same
//!   request `id` (rejected with a `RequestError` for an error frame, a timeout, or a
//!   close). Frames with no waiting request arrive through `on(<action>)` as before.
//!
//! [`App::client_ts`]: https://docs.rs/switchboard

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde_json::Value;

use switchboard_core::contract::{ServiceContract, Shape, error_frame_schema};

use crate::protocol;

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
    let contract = &protocol::complete(contract);
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
    out.push_str("/** What each route answers (its route response, with the request `id` if the frame had one); `undefined`: nothing. */\nexport interface RouteReplies {\n");
    for route in &contract.routes {
        let reply = match route.reply {
            None => "undefined".to_owned(),
            Some(i) => {
                let t = format!(
                    "{} & {}",
                    ident(&contract.messages[i].name),
                    protocol::CORRELATED
                );
                if route.reply_optional {
                    format!("({t}) | undefined")
                } else {
                    t
                }
            }
        };
        let _ = writeln!(out, "  {}: {reply};", prop_name(route.key));
    }
    out.push_str("}\n\n");
    out.push_str(
        "/**\n * Every message the server sends with a fixed `action`, by action. Pushed messages\n \
         * may carry `seq` and `epoch` (sent to a room with history), answers a request `id`.\n */\n\
         export interface ServerMessages {\n",
    );
    let replies = protocol::replies(contract);
    for (action, m) in contract.by_action() {
        let mut t = ident(&m.name);
        if m.pushed {
            let _ = write!(t, " & {}", protocol::ROOM_STAMP);
        }
        let index = contract.messages.iter().position(|x| std::ptr::eq(x, m));
        if index.is_some_and(|i| replies.contains(&i)) {
            let _ = write!(t, " & {}", protocol::CORRELATED);
        }
        let _ = writeln!(out, "  {}: {t};", prop_name(action));
    }
    out.push_str("}\n\n");
    out.push_str("/** The route keys. */\nexport type Route = keyof RoutePayloads;\n");
    out.push_str(
        "/** The actions of server messages. */\nexport type Action = keyof ServerMessages;\n",
    );
    let _ = writeln!(
        out,
        "/** Any frame the server may send. */\nexport type ServerFrame = ServerMessages[Action] | (ErrorFrame & {});\n",
        protocol::CORRELATED
    );
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

/// The client class: the same for every service; only the types above differ. It lives
/// in `client.ts` (appended verbatim after the types, which it refers to).
const CLIENT: &str = include_str!("client.ts");

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
        let contract = crate::protocol::sample_with_resume();
        let ts = module(&contract, "app client-ts");
        assert!(
            ts.contains("export interface RoomRequest {\n  room: string;\n}"),
            "{ts}"
        );
        assert!(ts.contains("export interface RoutePayloads {\n"), "{ts}");
        assert!(ts.contains("  join: RoomRequest;\n"), "{ts}");
        assert!(ts.contains("  ping: Record<string, never>;\n"), "{ts}");
        assert!(ts.contains("  legacy: Record<string, unknown>;\n"), "{ts}");
        assert!(ts.contains("  join: Joined & Correlated;\n"), "{ts}");
        assert!(ts.contains("  legacy: undefined;\n"), "{ts}");
        // Answers may carry the request id, pushed (room) frames `seq` and `epoch`.
        assert!(
            ts.contains(
                "  joined: Joined & Correlated;\n  presence: Presence & RoomStamp;\n  pong: Pong & Correlated;\n"
            ),
            "{ts}"
        );
        assert!(
            ts.contains(
                "export type ServerFrame = ServerMessages[Action] | (ErrorFrame & Correlated);"
            ),
            "{ts}"
        );
        // The built-in `resume` and its answer, whatever the registry says.
        assert!(
            ts.contains(
                "export const ROUTES: readonly Route[] = [\"join\", \"legacy\", \"ping\", \"resume\"];"
            ),
            "{ts}"
        );
        assert!(ts.contains("  resume: ResumeRequest;\n"), "{ts}");
        assert!(ts.contains("  resume: Resumed & Correlated;\n"), "{ts}");
        assert!(ts.contains("  resumed: Resumed & Correlated;\n"), "{ts}");
        assert!(ts.contains("export interface RoomStamp {\n"), "{ts}");
        assert!(ts.contains("  seq?: number;\n"), "{ts}");
        assert!(ts.contains("  epoch?: string;\n"), "{ts}");
        assert!(ts.contains("  id?: RequestId;\n"), "{ts}");
        assert!(ts.contains("export type RequestId = string;\n"), "{ts}");
        assert!(ts.contains("export class SwitchboardClient"), "{ts}");
        assert!(ts.contains("export class RoomOrder"), "{ts}");
        assert!(ts.contains("  request<K extends Route>("), "{ts}");
        assert!(ts.starts_with(
            "// The `chat` service's TypeScript client. Generated by `app client-ts`"
        ));
    }
}

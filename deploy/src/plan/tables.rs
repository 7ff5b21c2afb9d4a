//! DynamoDB: the connections and rooms tables, with the runtime's schema
//! (switchboard_core::names::table).

use super::{Handle, Plan, TableNames};
use crate::aws::DynamoTable;
use crate::concat_input;
use crate::input::Input;
use switchboard_core::names::table::attr;

/// The tables.
pub(super) struct Tables {
    /// The connections table.
    pub(super) connections: Handle,
    /// The rooms table.
    pub(super) rooms: Handle,
    /// The room history table and its name, when the app keeps history.
    pub(super) history: Option<(Handle, String)>,
}

impl Tables {
    /// The tables' and their indexes' ARNs, for IAM statements.
    pub(super) fn arns(&self) -> Vec<Input> {
        vec![
            self.connections.out("arn"),
            concat_input![self.connections.out("arn"), "/index/*"],
            self.rooms.out("arn"),
            concat_input![self.rooms.out("arn"), "/index/*"],
        ]
    }
}

/// The connections and rooms tables, and the history table when `history` is set.
pub(super) fn tables(p: &mut Plan, names: &TableNames, history: Option<String>) -> Tables {
    let connections = table(
        p,
        "connections",
        &names.connections,
        "username",
        "sessionKey",
        Input::object([
            ("name", Some(Input::str(names.connections_index()))),
            ("hashKey", Some(Input::str("connectionId"))),
            ("projectionType", Some(Input::str("ALL"))),
        ]),
    );
    let rooms = table(
        p,
        "rooms",
        &names.rooms,
        "room",
        "connectionId",
        Input::object([
            ("name", Some(Input::str(names.rooms_index()))),
            ("hashKey", Some(Input::str("connectionId"))),
            ("rangeKey", Some(Input::str("room"))),
            ("projectionType", Some(Input::str("ALL"))),
        ]),
    );
    let history = history.map(|name| (history_table(p, &name), name));
    Tables {
        connections,
        rooms,
        history,
    }
}

/// The room history table (`switchboard_aws::history`): `room` (S) and `seq` (N), TTL
/// on `expires`, no index.
fn history_table(p: &mut Plan, name: &str) -> Handle {
    p.add(
        "history",
        DynamoTable {
            name: name.to_owned(),
            billing_mode: "PAY_PER_REQUEST",
            hash_key: attr::ROOM,
            range_key: attr::SEQ,
            attributes: vec![attr_of(attr::ROOM, "S"), attr_of(attr::SEQ, "N")],
            global_secondary_indexes: Vec::new(),
            ttl: Input::object([
                ("attributeName", Some(Input::str(attr::EXPIRES))),
                ("enabled", Some(Input::Bool(true))),
            ]),
            server_side_encryption: Input::object([("enabled", Some(Input::Bool(true)))]),
            point_in_time_recovery: Input::object([("enabled", Some(Input::Bool(false)))]),
        },
    )
}

/// An attribute of type `kind`.
fn attr_of(name: &str, kind: &str) -> Input {
    Input::object([
        ("name", Some(Input::str(name))),
        ("type", Some(Input::str(kind))),
    ])
}

/// A string attribute.
fn attr(name: &str) -> Input {
    Input::object([
        ("name", Some(Input::str(name))),
        ("type", Some(Input::str("S"))),
    ])
}

/// A pay-per-request table with TTL and encryption, keyed by `hash` and `range`, with
/// one global secondary index on `connectionId`.
fn table(
    p: &mut Plan,
    logical: &str,
    name: &str,
    hash: &'static str,
    range: &'static str,
    gsi: Input,
) -> Handle {
    let attrs = [hash, range, "connectionId"]
        .into_iter()
        .fold(Vec::<&str>::new(), |mut v, a| {
            if !v.contains(&a) {
                v.push(a);
            }
            v
        });
    p.add(
        logical,
        DynamoTable {
            name: name.to_owned(),
            billing_mode: "PAY_PER_REQUEST",
            hash_key: hash,
            range_key: range,
            attributes: attrs.into_iter().map(attr).collect(),
            global_secondary_indexes: vec![gsi],
            ttl: Input::object([
                ("attributeName", Some(Input::str("expires"))),
                ("enabled", Some(Input::Bool(true))),
            ]),
            server_side_encryption: Input::object([("enabled", Some(Input::Bool(true)))]),
            point_in_time_recovery: Input::object([("enabled", Some(Input::Bool(false)))]),
        },
    )
}

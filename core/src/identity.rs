//! Who is on the other end of a connection, as the authorizer said.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// The caller's identity: the authorizer's `principalId` and its context map, as API
/// Gateway passes them in `requestContext.authorizer` on `$connect` and on every later
/// event of the connection.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Identity {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    principal_id: Option<String>,
    #[serde(default)]
    context: Map<String, Value>,
}

impl Identity {
    /// An identity with a principal and an authorizer context.
    pub fn new(principal_id: impl Into<String>, context: Map<String, Value>) -> Self {
        Self {
            principal_id: Some(principal_id.into()),
            context,
        }
    }

    /// No identity: the API has no authorizer.
    pub fn anonymous() -> Self {
        Self::default()
    }

    /// Reads `requestContext.authorizer` (principalId plus the context entries).
    pub fn from_authorizer(fields: &HashMap<String, Value>) -> Self {
        let mut context = Map::new();
        let mut principal_id = None;
        for (k, v) in fields {
            if k == "principalId" {
                principal_id = v.as_str().map(str::to_owned);
            } else if k != "integrationLatency" {
                context.insert(k.clone(), v.clone());
            }
        }
        Self {
            principal_id,
            context,
        }
    }

    /// The fields API Gateway puts in `requestContext.authorizer` for this identity.
    pub fn to_authorizer(&self) -> HashMap<String, Value> {
        let mut fields: HashMap<String, Value> = self
            .context
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        if let Some(p) = &self.principal_id {
            fields.insert("principalId".to_owned(), Value::String(p.clone()));
        }
        fields
    }

    /// The user name: the context's `username`, else the principal id, else `"anonymous"`.
    pub fn username(&self) -> &str {
        self.context
            .get("username")
            .and_then(Value::as_str)
            .or(self.principal_id.as_deref())
            .unwrap_or("anonymous")
    }

    /// The authorizer's `principalId`.
    pub fn principal_id(&self) -> Option<&str> {
        self.principal_id.as_deref()
    }

    /// Whether an authorizer vouched for this caller.
    pub fn is_authenticated(&self) -> bool {
        self.principal_id.is_some()
    }

    /// One entry of the authorizer context (strings, numbers or booleans).
    pub fn claim(&self, key: &str) -> Option<&Value> {
        self.context.get(key)
    }

    /// The whole authorizer context.
    pub fn context(&self) -> &Map<String, Value> {
        &self.context
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn reads_authorizer_fields() {
        let mut fields = HashMap::new();
        fields.insert("principalId".to_owned(), json!("u-1"));
        fields.insert("username".to_owned(), json!("alice"));
        fields.insert("admin".to_owned(), json!(true));
        fields.insert("integrationLatency".to_owned(), json!(12));
        let id = Identity::from_authorizer(&fields);
        assert_eq!(id.username(), "alice");
        assert_eq!(id.principal_id(), Some("u-1"));
        assert_eq!(id.claim("admin"), Some(&json!(true)));
        assert!(id.claim("integrationLatency").is_none());
        assert_eq!(Identity::from_authorizer(&id.to_authorizer()), id);
    }

    #[test]
    fn username_falls_back() {
        assert_eq!(Identity::new("bob", Map::new()).username(), "bob");
        assert_eq!(Identity::anonymous().username(), "anonymous");
        assert!(!Identity::anonymous().is_authenticated());
    }
}

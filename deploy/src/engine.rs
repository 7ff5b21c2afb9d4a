//! Registers a [`Plan`] with the Pulumi engine through Pulumi Gestalt's untyped
//! `Context::register_resource`.
//!
//! Gestalt registers a resource once all its inputs are resolved, so a reference to
//! another resource's output orders the two. [`Resource::depends_on`] adds the same
//! ordering without a data reference: the first input waits for those resources' URNs.
//! Gestalt sends no dependency lists to the engine (see the README's caveats).

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, PoisonError};

use pulumi_gestalt_model::{Output, PulumiValue, PulumiValueContent, ResolvedOutput};
use pulumi_gestalt_rust::{
    CompositeOutput, Context, CustomResourceOptions, RegisterResourceRequest,
    ResourceRequestObjectField,
};

use crate::aws::AWS_PROVIDER_VERSION;
use crate::input::{Field, Input, Ref, SECRET_SIG, SIG_KEY, follow_path};
use crate::plan::{Plan, Resource};

/// Pulumi's marker for a value not known yet (during preview).
pub const UNKNOWN: &str = "04da6b54-80e4-46f7-96ec-b56ff0331ba9";

/// Errors met while resolving outputs (reported after the engine finished).
pub type Problems = Arc<Mutex<Vec<String>>>;

/// Registers every resource and output of the plan. Returns the problems shared with
/// the output futures: read them after `Context::finish`.
pub fn register(ctx: &Context, plan: &Plan) -> Problems {
    let problems: Problems = Arc::default();
    let mut registered: Vec<Registered> = Vec::with_capacity(plan.resources.len());
    for resource in &plan.resources {
        let r = register_one(ctx, resource, &registered, &problems);
        registered.push(r);
    }
    for (key, value) in &plan.outputs {
        let output = build(value, &registered, &[], &problems, format!("output {key}"));
        ctx.add_export(key, &output);
    }
    problems
}

struct Registered {
    output: CompositeOutput,
    urn: Output<PulumiValue>,
    id: Output<PulumiValue>,
    fields: Mutex<HashMap<String, Output<PulumiValue>>>,
}

impl Registered {
    fn get(&self, field: &Field) -> Output<PulumiValue> {
        match field {
            Field::Id => self.id.clone(),
            Field::Urn => self.urn.clone(),
            Field::Output(path) => {
                let (top, rest) = match path.split_once('.') {
                    Some((t, r)) => (t, Some(r.to_owned())),
                    None => (path.as_str(), None),
                };
                let mut fields = self.fields.lock().unwrap_or_else(PoisonError::into_inner);
                let top = fields
                    .entry(top.to_owned())
                    .or_insert_with(|| self.output.get_field::<PulumiValue>(top))
                    .clone();
                match rest {
                    None => top,
                    Some(rest) => top.map(move |v| {
                        follow_path(&to_json(&v), &rest)
                            .map(from_json)
                            .unwrap_or_else(PulumiValue::nothing)
                    }),
                }
            }
        }
    }
}

fn register_one(
    ctx: &Context,
    resource: &Resource,
    registered: &[Registered],
    problems: &Problems,
) -> Registered {
    let waits: Vec<Output<PulumiValue>> = resource
        .depends_on
        .iter()
        .filter_map(|&i| registered.get(i).map(|r| r.urn.clone()))
        .collect();
    let what = format!("{} {}", resource.token, resource.name);
    let outputs: Vec<(String, Output<PulumiValue>)> = resource
        .inputs
        .iter()
        .enumerate()
        .map(|(n, (k, v))| {
            // The first input carries the creation dependencies.
            let waits: &[Output<PulumiValue>] = if n == 0 { &waits } else { &[] };
            let output = build(v, registered, waits, problems, format!("{what}.{k}"));
            (k.clone(), output)
        })
        .collect();
    let fields: Vec<ResourceRequestObjectField<'_>> = outputs
        .iter()
        .map(|(k, v)| ResourceRequestObjectField {
            name: k.clone(),
            value: v,
        })
        .collect();
    let options =
        resource
            .provider
            .and_then(|i| registered.get(i))
            .map(|p| CustomResourceOptions {
                provider: Some(p.output.get_provider_id()),
            });
    let output = ctx.register_resource(RegisterResourceRequest {
        type_: resource.token.to_owned(),
        name: resource.name.clone(),
        version: AWS_PROVIDER_VERSION.to_owned(),
        object: &fields,
        options,
    });
    let urn = output.get_urn().map(|s| str_value(&s));
    let id = output.get_id().map(|s| str_value(&s));
    Registered {
        output,
        urn,
        id,
        fields: Mutex::default(),
    }
}

/// An output for one input: immediate without references, else a future that waits for
/// the referenced outputs (and `waits`) and builds the value; unknown if any is.
fn build(
    input: &Input,
    registered: &[Registered],
    waits: &[Output<PulumiValue>],
    problems: &Problems,
    what: String,
) -> Output<PulumiValue> {
    let mut refs = Vec::new();
    input.refs(&mut refs);
    if refs.is_empty() && waits.is_empty() {
        return match input.resolve(&|_| None) {
            Some(v) => Output::new(from_json(&v)),
            None => Output::new(PulumiValue::nothing()),
        };
    }
    let mut sources: Vec<(Ref, Output<PulumiValue>)> = Vec::new();
    for r in refs {
        match registered.get(r.resource) {
            Some(reg) => {
                let out = reg.get(&r.field);
                sources.push((r, out));
            }
            None => push(
                problems,
                format!(
                    "{what}: refers to resource #{} not registered yet",
                    r.resource
                ),
            ),
        }
    }
    let waits = waits.to_vec();
    let input = input.clone();
    let problems = problems.clone();
    Output::from_resolved_future(async move {
        let mut known: BTreeMap<Ref, serde_json::Value> = BTreeMap::new();
        let mut unknown = false;
        for w in &waits {
            let _ = w.resolve().await;
        }
        for (r, out) in &sources {
            let resolved = out.resolve().await;
            match resolved.value.as_ref().map(|v| (&v.content, v)) {
                Some((PulumiValueContent::Nothing, _)) | None => unknown = true,
                Some((PulumiValueContent::String(s), _)) if s == UNKNOWN => unknown = true,
                Some((PulumiValueContent::None, _)) => {
                    push(
                        &problems,
                        format!("{what}: the engine returned no value for {:?}", r.field),
                    );
                    unknown = true;
                }
                Some((_, v)) => {
                    known.insert(r.clone(), to_json(v));
                }
            }
        }
        let value = if unknown {
            None
        } else {
            input.resolve(&|r| known.get(r).cloned())
        };
        ResolvedOutput {
            value: Some(value.map_or_else(PulumiValue::nothing, |v| from_json(&v))),
            secret: false,
            dependencies: Default::default(),
        }
    })
}

fn push(problems: &Problems, p: String) {
    problems
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .push(p);
}

fn str_value(s: &str) -> PulumiValue {
    PulumiValue {
        content: PulumiValueContent::String(s.to_owned()),
        secret: false,
        dependencies: Default::default(),
    }
}

/// JSON to a Pulumi value; a secret (`{SIG_KEY: SECRET_SIG, "value": v}`, as
/// [`Input::Secret`] resolves) becomes `v` marked secret, and so does everything that
/// contains one: Gestalt sends the property to the engine as a secret.
pub fn from_json(v: &serde_json::Value) -> PulumiValue {
    use serde_json::Value;
    if let Value::Object(map) = v
        && map.get(SIG_KEY).and_then(Value::as_str) == Some(SECRET_SIG)
    {
        let mut inner = from_json(map.get("value").unwrap_or(&Value::Null));
        inner.secret = true;
        return inner;
    }
    let content = match v {
        Value::Null => PulumiValueContent::None,
        Value::Bool(b) => PulumiValueContent::Boolean(*b),
        Value::Number(n) => match n.as_i64().and_then(|i| i32::try_from(i).ok()) {
            Some(i) => PulumiValueContent::Integer(i),
            None => PulumiValueContent::Number(n.as_f64().unwrap_or_default()),
        },
        Value::String(s) => PulumiValueContent::String(s.clone()),
        Value::Array(items) => PulumiValueContent::Array(items.iter().map(from_json).collect()),
        Value::Object(map) => {
            PulumiValueContent::Object(map.iter().map(|(k, v)| (k.clone(), from_json(v))).collect())
        }
    };
    // As in every Pulumi SDK, a value containing a secret is secret as a whole: Gestalt
    // sends a property's secret flag only at its top level.
    let secret = match &content {
        PulumiValueContent::Array(items) => items.iter().any(|i| i.secret),
        PulumiValueContent::Object(pairs) => pairs.iter().any(|(_, v)| v.secret),
        _ => false,
    };
    PulumiValue {
        content,
        secret,
        dependencies: Default::default(),
    }
}

/// A Pulumi value as JSON (unknowns as Pulumi's marker string).
pub fn to_json(v: &PulumiValue) -> serde_json::Value {
    use serde_json::Value;
    match &v.content {
        PulumiValueContent::String(s) => Value::String(s.clone()),
        PulumiValueContent::Integer(i) => Value::from(*i),
        PulumiValueContent::Number(n) => Value::from(*n),
        PulumiValueContent::Boolean(b) => Value::Bool(*b),
        PulumiValueContent::Array(items) => Value::Array(items.iter().map(to_json).collect()),
        PulumiValueContent::Object(pairs) => {
            Value::Object(pairs.iter().map(|(k, v)| (k.clone(), to_json(v))).collect())
        }
        PulumiValueContent::None => Value::Null,
        PulumiValueContent::Nothing => Value::String(UNKNOWN.to_owned()),
    }
}

//! A fake Pulumi engine: the ResourceMonitor and Engine gRPC services on 127.0.0.1,
//! which run the real deploy binary (as `pulumi up` / `pulumi preview` would, through
//! the same environment variables), record every RegisterResource, and answer like
//! Pulumi's mocks: the inputs, plus an id, a URN and computed outputs (update mode),
//! or nothing computed (preview, where unknown outputs stay unknown).

// Test support: failing loudly is the point.
#![allow(
    dead_code,
    unreachable_pub,
    missing_docs,
    clippy::unwrap_used,
    clippy::expect_used
)]

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use prost_types::value::Kind;
use pulumi_gestalt_proto::pulumi::pulumirpc as rpc;
use rpc::engine_server::{Engine, EngineServer};
use rpc::resource_monitor_server::{ResourceMonitor, ResourceMonitorServer};
use serde_json::{Value, json};
use tonic::{Request, Response, Status};

/// Pulumi's unknown marker.
pub const UNKNOWN: &str = "04da6b54-80e4-46f7-96ec-b56ff0331ba9";
pub const REGION: &str = "eu-west-1";
pub const ACCOUNT: &str = "123456789012";
pub const PROJECT: &str = "switchboard";
pub const STACK: &str = "dev";
/// The origin secret the tests configure.
pub const ORIGIN_SECRET: &str = "test-origin-secret-0123456789abcdef";
/// Pulumi's signature key and secret signature.
pub const SIG_KEY: &str = "4dabf18193072939515e22adb298388d";
pub const SECRET_SIG: &str = "1b47061264138c4ac30d75fd1eb44270";

/// The value inside a secret input, or `v` itself when it is not a secret.
pub fn plain(v: &Value) -> &Value {
    if v.get(SIG_KEY).and_then(Value::as_str) == Some(SECRET_SIG) {
        &v["value"]
    } else {
        v
    }
}

/// The value inside a secret input (panics if `v` is not one).
pub fn unsecret(v: &Value) -> &Value {
    assert_eq!(v[SIG_KEY], SECRET_SIG, "not a secret: {v}");
    &v["value"]
}

/// One RegisterResource the program sent.
#[derive(Clone, Debug)]
pub struct Registered {
    pub token: String,
    pub name: String,
    pub custom: bool,
    pub version: String,
    pub provider: String,
    /// The inputs as sent (nulls included, so tests can look for them).
    pub inputs: Value,
    /// The id the fake engine gave it (update mode).
    pub id: String,
}

/// Everything a run recorded.
#[derive(Clone, Debug, Default)]
pub struct Run {
    pub resources: Vec<Registered>,
    pub outputs: Value,
    pub logs: Vec<String>,
    pub stdout: String,
    pub stderr: String,
    pub success: bool,
}

impl Run {
    /// The custom resources (the stack itself left out).
    pub fn custom(&self) -> impl Iterator<Item = &Registered> {
        self.resources.iter().filter(|r| r.custom)
    }

    pub fn find(&self, token: &str, name: &str) -> &Registered {
        self.resources
            .iter()
            .find(|r| r.token == token && r.name == name)
            .unwrap_or_else(|| panic!("no {token} named {name}; have: {:#?}", self.names()))
    }

    pub fn all(&self, token: &str) -> Vec<&Registered> {
        self.resources.iter().filter(|r| r.token == token).collect()
    }

    pub fn names(&self) -> Vec<(String, String)> {
        let mut v: Vec<_> = self
            .custom()
            .map(|r| (r.token.clone(), r.name.clone()))
            .collect();
        v.sort();
        v
    }

    pub fn by_id(&self, token: &str, id: &str) -> Option<&Registered> {
        self.resources
            .iter()
            .find(|r| r.token == token && r.id == id)
    }
}

#[derive(Default)]
struct State {
    preview: bool,
    resources: Vec<Registered>,
    outputs: Option<Value>,
    logs: Vec<String>,
}

#[derive(Clone)]
struct Fake(Arc<Mutex<State>>);

fn to_json(v: &prost_types::Value) -> Value {
    match &v.kind {
        None | Some(Kind::NullValue(_)) => Value::Null,
        Some(Kind::NumberValue(n)) => {
            if n.fract() == 0.0 && n.abs() < 1e15 {
                json!(*n as i64)
            } else {
                json!(n)
            }
        }
        Some(Kind::StringValue(s)) => Value::String(s.clone()),
        Some(Kind::BoolValue(b)) => Value::Bool(*b),
        Some(Kind::StructValue(s)) => struct_to_json(s),
        Some(Kind::ListValue(l)) => Value::Array(l.values.iter().map(to_json).collect()),
    }
}

fn struct_to_json(s: &prost_types::Struct) -> Value {
    Value::Object(
        s.fields
            .iter()
            .map(|(k, v)| (k.clone(), to_json(v)))
            .collect(),
    )
}

fn from_json(v: &Value) -> prost_types::Value {
    let kind = match v {
        Value::Null => Kind::NullValue(0),
        Value::Bool(b) => Kind::BoolValue(*b),
        Value::Number(n) => Kind::NumberValue(n.as_f64().unwrap_or_default()),
        Value::String(s) => Kind::StringValue(s.clone()),
        Value::Array(a) => Kind::ListValue(prost_types::ListValue {
            values: a.iter().map(from_json).collect(),
        }),
        Value::Object(o) => Kind::StructValue(json_to_struct(o)),
    };
    prost_types::Value { kind: Some(kind) }
}

fn json_to_struct(o: &serde_json::Map<String, Value>) -> prost_types::Struct {
    prost_types::Struct {
        fields: o.iter().map(|(k, v)| (k.clone(), from_json(v))).collect(),
    }
}

fn drop_nulls(v: &Value) -> Value {
    match v {
        Value::Object(o) => Value::Object(
            o.iter()
                .filter(|(_, v)| !v.is_null())
                .map(|(k, v)| (k.clone(), drop_nulls(v)))
                .collect(),
        ),
        Value::Array(a) => Value::Array(a.iter().map(drop_nulls).collect()),
        other => other.clone(),
    }
}

/// What AWS would compute for a new resource (update mode).
fn computed(token: &str, name: &str, id: &str, inputs: &Value) -> serde_json::Map<String, Value> {
    let module = token.split(['/', ':']).nth(1).unwrap_or("x").to_owned();
    let mut out = serde_json::Map::new();
    out.insert(
        "arn".into(),
        json!(format!("arn:aws:{module}:{REGION}:{ACCOUNT}:{name}/{id}")),
    );
    let input = |k: &str| inputs.get(k).cloned().unwrap_or(Value::Null);
    match token {
        "aws:apigatewayv2/api:Api" => {
            out.insert(
                "executionArn".into(),
                json!(format!("arn:aws:execute-api:{REGION}:{ACCOUNT}:{id}")),
            );
            out.insert(
                "apiEndpoint".into(),
                json!(format!("wss://{id}.execute-api.{REGION}.amazonaws.com")),
            );
        }
        "aws:lambda/function:Function" => {
            let fn_arn = format!(
                "arn:aws:lambda:{REGION}:{ACCOUNT}:function:{}",
                input("name").as_str().unwrap_or(name)
            );
            out.insert("invokeArn".into(), json!(format!("arn:aws:apigateway:{REGION}:lambda:path/2015-03-31/functions/{fn_arn}/invocations")));
            out.insert("arn".into(), json!(fn_arn));
        }
        "aws:iam/role:Role" => {
            out.insert(
                "arn".into(),
                json!(format!(
                    "arn:aws:iam::{ACCOUNT}:role/{}",
                    input("name").as_str().unwrap_or(name)
                )),
            );
        }
        "aws:sqs/queue:Queue" => {
            let qn = input("name").as_str().unwrap_or(name).to_owned();
            out.insert(
                "url".into(),
                json!(format!("https://sqs.{REGION}.amazonaws.com/{ACCOUNT}/{qn}")),
            );
            out.insert(
                "arn".into(),
                json!(format!("arn:aws:sqs:{REGION}:{ACCOUNT}:{qn}")),
            );
        }
        "aws:dynamodb/table:Table" => {
            out.insert(
                "arn".into(),
                json!(format!(
                    "arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/{}",
                    input("name").as_str().unwrap_or(name)
                )),
            );
        }
        "aws:acm/certificate:Certificate" => {
            out.insert(
                "domainValidationOptions".into(),
                json!([{
                    "domainName": input("domainName"),
                    "resourceRecordName": "_abc.chat.example.com.",
                    "resourceRecordType": "CNAME",
                    "resourceRecordValue": "_xyz.acm-validations.aws."
                }]),
            );
        }
        "aws:acm/certificateValidation:CertificateValidation" => {
            out.insert("certificateArn".into(), input("certificateArn"));
        }
        "aws:route53/record:Record" => {
            out.insert("fqdn".into(), input("name"));
        }
        "aws:cloudfront/distribution:Distribution" => {
            out.insert("domainName".into(), json!("d1234abcd.cloudfront.net"));
            out.insert("hostedZoneId".into(), json!("Z2FDTNDATAQYW2"));
        }
        "aws:s3/bucket:Bucket" => {
            out.insert(
                "bucketRegionalDomainName".into(),
                json!(format!("{id}.s3.{REGION}.amazonaws.com")),
            );
            out.insert("arn".into(), json!(format!("arn:aws:s3:::{id}")));
        }
        _ => {}
    }
    out
}

#[tonic::async_trait]
impl ResourceMonitor for Fake {
    async fn supports_feature(
        &self,
        _r: Request<rpc::SupportsFeatureRequest>,
    ) -> Result<Response<rpc::SupportsFeatureResponse>, Status> {
        Ok(Response::new(rpc::SupportsFeatureResponse {
            has_support: false,
        }))
    }
    async fn invoke(
        &self,
        _r: Request<rpc::ResourceInvokeRequest>,
    ) -> Result<Response<rpc::InvokeResponse>, Status> {
        Err(Status::unimplemented("invoke"))
    }
    async fn call(
        &self,
        _r: Request<rpc::ResourceCallRequest>,
    ) -> Result<Response<rpc::CallResponse>, Status> {
        Err(Status::unimplemented("call"))
    }
    async fn read_resource(
        &self,
        _r: Request<rpc::ReadResourceRequest>,
    ) -> Result<Response<rpc::ReadResourceResponse>, Status> {
        Err(Status::unimplemented("read_resource"))
    }
    async fn register_resource(
        &self,
        r: Request<rpc::RegisterResourceRequest>,
    ) -> Result<Response<rpc::RegisterResourceResponse>, Status> {
        let r = r.into_inner();
        let inputs = r
            .object
            .as_ref()
            .map_or(Value::Object(Default::default()), struct_to_json);
        let mut state = self.0.lock().unwrap();
        let urn = format!("urn:pulumi:{STACK}::{PROJECT}::{}::{}", r.r#type, r.name);
        let n = state.resources.len();
        let id = if !r.custom || state.preview {
            String::new()
        } else if r.r#type == "aws:s3/bucket:Bucket" {
            format!("{}-bucket-{n:04}", r.name)
        } else {
            format!("{}-{n:04}", r.name.replace(['$', ':'], ""))
        };
        let mut object = match drop_nulls(&inputs) {
            Value::Object(o) => o,
            _ => Default::default(),
        };
        if r.custom && !state.preview {
            for (k, v) in computed(&r.r#type, &r.name, &id, &inputs) {
                object.entry(k).or_insert(v);
            }
        }
        state.resources.push(Registered {
            token: r.r#type.clone(),
            name: r.name.clone(),
            custom: r.custom,
            version: r.version.clone(),
            provider: r.provider.clone(),
            inputs,
            id: id.clone(),
        });
        Ok(Response::new(rpc::RegisterResourceResponse {
            urn,
            id,
            object: Some(json_to_struct(&object)),
            ..Default::default()
        }))
    }
    async fn register_resource_outputs(
        &self,
        r: Request<rpc::RegisterResourceOutputsRequest>,
    ) -> Result<Response<()>, Status> {
        let r = r.into_inner();
        self.0.lock().unwrap().outputs = r.outputs.as_ref().map(struct_to_json);
        Ok(Response::new(()))
    }
    async fn register_stack_transform(
        &self,
        _r: Request<rpc::Callback>,
    ) -> Result<Response<()>, Status> {
        Err(Status::unimplemented("transforms"))
    }
    async fn register_stack_invoke_transform(
        &self,
        _r: Request<rpc::Callback>,
    ) -> Result<Response<()>, Status> {
        Err(Status::unimplemented("transforms"))
    }
    async fn register_resource_hook(
        &self,
        _r: Request<rpc::RegisterResourceHookRequest>,
    ) -> Result<Response<()>, Status> {
        Err(Status::unimplemented("hooks"))
    }
    async fn register_error_hook(
        &self,
        _r: Request<rpc::RegisterErrorHookRequest>,
    ) -> Result<Response<()>, Status> {
        Err(Status::unimplemented("hooks"))
    }
    async fn register_package(
        &self,
        _r: Request<rpc::RegisterPackageRequest>,
    ) -> Result<Response<rpc::RegisterPackageResponse>, Status> {
        Err(Status::unimplemented("packages"))
    }
    async fn signal_and_wait_for_shutdown(&self, _r: Request<()>) -> Result<Response<()>, Status> {
        Ok(Response::new(()))
    }
}

#[tonic::async_trait]
impl Engine for Fake {
    async fn log(&self, r: Request<rpc::LogRequest>) -> Result<Response<()>, Status> {
        self.0.lock().unwrap().logs.push(r.into_inner().message);
        Ok(Response::new(()))
    }
    async fn get_root_resource(
        &self,
        _r: Request<rpc::GetRootResourceRequest>,
    ) -> Result<Response<rpc::GetRootResourceResponse>, Status> {
        Ok(Response::new(rpc::GetRootResourceResponse::default()))
    }
    async fn set_root_resource(
        &self,
        _r: Request<rpc::SetRootResourceRequest>,
    ) -> Result<Response<rpc::SetRootResourceResponse>, Status> {
        Ok(Response::new(rpc::SetRootResourceResponse::default()))
    }
    async fn start_debugging(
        &self,
        _r: Request<rpc::StartDebuggingRequest>,
    ) -> Result<Response<()>, Status> {
        Ok(Response::new(()))
    }
    async fn require_pulumi_version(
        &self,
        _r: Request<rpc::RequirePulumiVersionRequest>,
    ) -> Result<Response<rpc::RequirePulumiVersionResponse>, Status> {
        Ok(Response::new(rpc::RequirePulumiVersionResponse::default()))
    }
}

/// The stack configuration the tests deploy with (plus `artifact`).
pub fn base_config() -> BTreeMap<String, String> {
    [
        ("aws:region", REGION),
        ("switchboard:domain", "chat.example.com"),
        ("switchboard:hostedZoneId", "Z0123456789ABC"),
        ("switchboard:allowedCidrs", "203.0.113.0/24"),
        ("switchboard:blockedCidrs", "198.51.100.7/32"),
        ("switchboard:rateLimit", "1500"),
        ("switchboard:throttlingRateLimit", "200"),
        ("switchboard:throttlingBurstLimit", "100"),
        ("switchboard:originSecret", ORIGIN_SECRET),
        ("switchboard:alarmEmail", "ops@example.com"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect()
}

/// The first bytes of a 64-bit little-endian ELF executable for `machine`.
pub fn elf(machine: u16) -> Vec<u8> {
    let mut h = b"\x7fELF\x02\x01\x01\0\0\0\0\0\0\0\0\0\x02\0".to_vec();
    h.extend_from_slice(&machine.to_le_bytes());
    h.extend_from_slice(&[0; 44]);
    h
}

/// A zip (built in memory) with one stored, executable entry.
pub fn zip(name: &str, data: &[u8]) -> Vec<u8> {
    let mut z = Vec::new();
    let n = name.len() as u16;
    let len = (data.len() as u32).to_le_bytes();
    z.extend_from_slice(&0x0403_4b50u32.to_le_bytes());
    z.extend_from_slice(&[20, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
    z.extend_from_slice(&len);
    z.extend_from_slice(&len);
    z.extend_from_slice(&n.to_le_bytes());
    z.extend_from_slice(&[0, 0]);
    z.extend_from_slice(name.as_bytes());
    z.extend_from_slice(data);
    let cd = z.len() as u32;
    z.extend_from_slice(&0x0201_4b50u32.to_le_bytes());
    z.extend_from_slice(&[20, 3, 20, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
    z.extend_from_slice(&len);
    z.extend_from_slice(&len);
    z.extend_from_slice(&n.to_le_bytes());
    z.extend_from_slice(&[0; 8]);
    z.extend_from_slice(&(0o100755u32 << 16).to_le_bytes());
    z.extend_from_slice(&0u32.to_le_bytes());
    z.extend_from_slice(name.as_bytes());
    let cd_len = z.len() as u32 - cd;
    z.extend_from_slice(&0x0605_4b50u32.to_le_bytes());
    z.extend_from_slice(&[0, 0, 0, 0, 1, 0, 1, 0]);
    z.extend_from_slice(&cd_len.to_le_bytes());
    z.extend_from_slice(&cd.to_le_bytes());
    z.extend_from_slice(&[0, 0]);
    z
}

/// Writes `bytes` atomically (tests run in parallel and share artifacts).
fn write_atomic(path: &std::path::Path, bytes: &[u8]) {
    static N: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let tmp = path.with_extension(format!("tmp{}-{n}", std::process::id()));
    std::fs::write(&tmp, bytes).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

/// The manifest hash a deploy binary expects (`--manifest-sha256`).
pub fn manifest_hash(bin: &str) -> String {
    let out = std::process::Command::new(bin)
        .arg("--manifest-sha256")
        .output()
        .unwrap();
    assert!(out.status.success());
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

/// The Lambda artifact for `bin` in its own directory: a zip whose `bootstrap` is an
/// aarch64 ELF, with `content` after the header (a different build), and the
/// `manifest.sha256` of `bin`'s manifest beside it.
pub fn artifact_with(bin: &str, content: &str) -> PathBuf {
    let name = std::path::Path::new(bin)
        .file_name()
        .unwrap()
        .to_string_lossy()
        .into_owned();
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join("deploy-test")
        .join(format!("{name}-{content}"));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("bootstrap.zip");
    let mut body = elf(0xB7);
    body.extend_from_slice(content.as_bytes());
    write_atomic(&path, &zip("bootstrap", &body));
    write_atomic(&dir.join("manifest.sha256"), manifest_hash(bin).as_bytes());
    path
}

/// Runs `bin` (a deploy binary) under the fake engine.
pub async fn run(bin: &str, preview: bool, mut config: BTreeMap<String, String>) -> Run {
    if !config.contains_key("switchboard:artifact") {
        let path = artifact_with(bin, "v1").display().to_string();
        config.insert("switchboard:artifact".into(), path);
    }
    let secret_keys: Vec<&String> = config
        .keys()
        .filter(|k| k.ends_with("originSecret") || k.ends_with("originSecretPrevious"))
        .collect();
    let fake = Fake(Arc::new(Mutex::new(State {
        preview,
        ..Default::default()
    })));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr: SocketAddr = listener.local_addr().unwrap();
    let server = tonic::transport::Server::builder()
        .add_service(ResourceMonitorServer::new(fake.clone()))
        .add_service(EngineServer::new(fake.clone()))
        .serve_with_incoming(tokio_stream_from(listener));
    let server = tokio::spawn(server);
    let child = tokio::process::Command::new(bin)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("PULUMI_MONITOR", addr.to_string())
        .env("PULUMI_ENGINE", addr.to_string())
        .env("PULUMI_PROJECT", PROJECT)
        .env("PULUMI_STACK", STACK)
        .env("PULUMI_ORGANIZATION", "organization")
        .env("PULUMI_ROOT_DIRECTORY", env!("CARGO_MANIFEST_DIR"))
        .env("PULUMI_DRY_RUN", if preview { "true" } else { "false" })
        .env("PULUMI_CONFIG", serde_json::to_string(&config).unwrap())
        .env(
            "PULUMI_CONFIG_SECRET_KEYS",
            serde_json::to_string(&secret_keys).unwrap(),
        )
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(Duration::from_secs(60), child)
        .await
        .expect("the deploy program finished within 60 s")
        .expect("the deploy program ran");
    server.abort();
    let state = fake.0.lock().unwrap();
    Run {
        resources: state.resources.clone(),
        outputs: state.outputs.clone().unwrap_or(Value::Null),
        logs: state.logs.clone(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        success: out.status.success(),
    }
}

fn tokio_stream_from(
    listener: tokio::net::TcpListener,
) -> impl futures_core_stream::Stream<Item = std::io::Result<tokio::net::TcpStream>> {
    futures_core_stream::unfold(listener)
}

/// A minimal stream over accepted connections (no tokio-stream dependency).
mod futures_core_stream {
    pub use tonic::codegen::tokio_stream::Stream;

    pub fn unfold(
        listener: tokio::net::TcpListener,
    ) -> impl Stream<Item = std::io::Result<tokio::net::TcpStream>> {
        tonic::codegen::tokio_stream::wrappers::TcpListenerStream::new(listener)
    }
}

/// Runs the example app's deploy binary.
pub async fn run_example(preview: bool) -> Run {
    let run = run(
        env!("CARGO_BIN_EXE_switchboard-deploy"),
        preview,
        base_config(),
    )
    .await;
    assert!(
        run.success,
        "the deploy program failed:\nstdout: {}\nstderr: {}",
        run.stdout, run.stderr
    );
    run
}

/// Parses a JSON string input (policies).
pub fn json_str(v: &Value) -> Value {
    serde_json::from_str(v.as_str().unwrap_or_else(|| panic!("not a string: {v}"))).unwrap()
}

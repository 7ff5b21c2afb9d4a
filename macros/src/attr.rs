//! Parsing and validating the attribute's arguments: the route key and the options.
//!
//! Grammar (`,`-separated, a trailing `,` is allowed):
//!
//! ```text
//! ws_route-args    := KEY ( "," OPTION )* ","?
//! reserved-args    := ( OPTION ( "," OPTION )* ","? )?      // ws_connect, ws_disconnect, ws_default
//! KEY              := string literal: non-empty, at most 128 characters, not starting
//!                     with `$`, no whitespace or control characters
//! OPTION           := "memory" "=" INT      // Lambda memory in MB, 128..=10240
//!                   | "timeout" "=" INT     // Lambda timeout in seconds, 1..=900
//!                   | "forward" "=" QUEUE   // forward the message once the handler succeeds
//!                   | "queues" "=" "[" QUEUE ("," QUEUE)* ","? "]"  // queues ctx.forward may use
//!                   | "api_key" "=" BOOL            // the connection needs an API key
//!                   | "throttle_rate" "=" INT       // this route's requests/s, 1..=10000
//!                   | "throttle_burst" "=" INT      // this route's burst, 1..=5000
//! consumer-args    := QUEUE ( "," COPTION )* ","?                   // queue_consumer
//! COPTION          := "memory" "=" INT | "timeout" "=" INT
//!                   | "batch_size" "=" INT  // messages per invocation, 1..=10
//! QUEUE            := string literal: 1 to 40 ASCII letters, digits, `-`, `_`
//! ```

use proc_macro2::{Span, TokenStream};
use syn::ext::IdentExt;
use syn::parse::{ParseStream, Parser};
use syn::punctuated::Punctuated;
use syn::{Expr, ExprArray, ExprLit, ExprUnary, Ident, Lit, LitInt, LitStr, Token, UnOp};

use crate::errors::Errors;

/// Which attribute is being expanded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    /// `#[ws_route("key")]`: a custom route key.
    Route,
    /// `#[ws_connect]`: the `$connect` route.
    Connect,
    /// `#[ws_disconnect]`: the `$disconnect` route.
    Disconnect,
    /// `#[ws_default]`: the `$default` route.
    Default,
    /// `#[queue_consumer("queue")]`: a queue consumer.
    Consumer,
}

impl Kind {
    /// The attribute's name, as the user writes it.
    pub(crate) fn attr_name(self) -> &'static str {
        match self {
            Self::Route => "ws_route",
            Self::Connect => "ws_connect",
            Self::Disconnect => "ws_disconnect",
            Self::Default => "ws_default",
            Self::Consumer => "queue_consumer",
        }
    }

    /// The reserved route key this attribute handles, `None` for `ws_route`.
    pub(crate) fn reserved_key(self) -> Option<&'static str> {
        match self {
            Self::Route | Self::Consumer => None,
            Self::Connect => Some("$connect"),
            Self::Disconnect => Some("$disconnect"),
            Self::Default => Some("$default"),
        }
    }

    /// The name of the matching `switchboard::RouteKind` variant.
    pub(crate) fn variant(self) -> &'static str {
        match self {
            Self::Route | Self::Consumer => "Custom",
            Self::Connect => "Connect",
            Self::Disconnect => "Disconnect",
            Self::Default => "Default",
        }
    }
}

/// The validated arguments of an attribute.
#[derive(Clone, Debug)]
pub(crate) struct RouteArgs {
    /// The route key: the user's literal for `ws_route`, `"$connect"` etc. otherwise.
    pub(crate) key: LitStr,
    /// `memory = N`, in MB.
    pub(crate) memory_mb: Option<u32>,
    /// `timeout = N`, in seconds.
    pub(crate) timeout_secs: Option<u32>,
    /// `batch_size = N` (consumers).
    pub(crate) batch_size: Option<u32>,
    /// `forward = "queue"` (routes).
    pub(crate) forward: Option<LitStr>,
    /// `queues = ["a", "b"]` (routes).
    pub(crate) queues: Vec<LitStr>,
    /// `emits = [Chat, Presence]`: the messages the handler pushes to connections.
    pub(crate) emits: Vec<syn::Type>,
    /// `api_key = true` (routes).
    pub(crate) api_key: bool,
    /// `throttle_rate = N` (routes), requests per second.
    pub(crate) throttle_rate: Option<u32>,
    /// `throttle_burst = N` (routes).
    pub(crate) throttle_burst: Option<u32>,
}

/// The longest logical queue name, in characters (matches the runtime's).
pub(crate) const MAX_QUEUE_LEN: usize = 40;

/// Checks a queue name; the error is the message to show on the literal.
pub(crate) fn check_queue(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("the queue name must not be empty".to_owned());
    }
    if let Some(c) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || *c == '-' || *c == '_'))
    {
        return Err(format!(
            "invalid queue name `{name}`: only ASCII letters, digits, `-` and `_` are allowed (found {c:?}); the deploy program adds the `.fifo` suffix itself"
        ));
    }
    if name.len() > MAX_QUEUE_LEN {
        return Err(format!(
            "the queue name is {} characters long; at most {MAX_QUEUE_LEN} are allowed (the deployed SQS name adds the app, stage and `-dlq.fifo`)",
            name.len()
        ));
    }
    Ok(())
}

/// The longest route key API Gateway accepts, in characters.
pub(crate) const MAX_KEY_LEN: usize = 128;

/// An option the attributes accept.
struct OptionSpec {
    /// The option's name.
    name: &'static str,
    /// What it sets, for messages.
    what: &'static str,
    /// Its unit, for messages.
    unit: &'static str,
    /// The smallest allowed value.
    min: u32,
    /// The largest allowed value.
    max: u32,
    /// A typical value, for messages.
    example: u32,
}

/// Every integer option the attributes accept (`batch_size` only on consumers,
/// `throttle_*` only on routes).
const OPTIONS: [OptionSpec; 5] = [
    OptionSpec {
        name: "memory",
        what: "Lambda memory",
        unit: "MB",
        min: 128,
        max: 10240,
        example: 512,
    },
    OptionSpec {
        name: "timeout",
        what: "Lambda timeout",
        unit: "seconds",
        min: 1,
        max: 900,
        example: 10,
    },
    OptionSpec {
        name: "batch_size",
        what: "the batch size",
        unit: "messages",
        min: 1,
        max: 10,
        example: 10,
    },
    OptionSpec {
        name: "throttle_rate",
        what: "the route's throttle rate",
        unit: "requests per second",
        min: 1,
        max: 10_000,
        example: 50,
    },
    OptionSpec {
        name: "throttle_burst",
        what: "the route's throttle burst",
        unit: "requests",
        min: 1,
        max: 5_000,
        example: 20,
    },
];

/// Whether the integer option `name` applies to attributes of `kind`.
fn applies(name: &str, kind: Kind) -> bool {
    match name {
        "batch_size" => kind == Kind::Consumer,
        "throttle_rate" | "throttle_burst" => kind != Kind::Consumer,
        _ => true,
    }
}

/// The `unknown option` message listing what `kind` accepts.
fn known_options(kind: Kind) -> &'static str {
    match kind {
        Kind::Consumer => {
            "the known options are `memory = <MB>` (Lambda memory, 128..=10240), `timeout = <seconds>` (Lambda timeout, 1..=900), `batch_size = <messages>` (1..=10) and `emits = [MessageType, ...]`"
        }
        _ => {
            "the known options are `memory = <MB>` (Lambda memory, 128..=10240), `timeout = <seconds>` (Lambda timeout, 1..=900), `forward = \"<queue>\"`, `queues = [\"<queue>\", ...]`, `api_key = true`, `throttle_rate = <requests/s>` (1..=10000), `throttle_burst = <requests>` (1..=5000) and `emits = [MessageType, ...]`"
        }
    }
}

/// One argument as written, before validation.
enum RawArg {
    /// A literal: the route key (or a mistake).
    Lit(Lit),
    /// `name = value`, or a bare `name`.
    Option {
        /// The option's name.
        name: Ident,
        /// `= value`, if present.
        value: Option<Expr>,
    },
}

impl RawArg {
    /// Parses one argument; `kind` only tailors the syntax error message.
    fn parse(input: ParseStream<'_>, kind: Kind) -> syn::Result<Self> {
        if input.peek(Lit) {
            return Ok(Self::Lit(input.parse()?));
        }
        if input.peek(Ident::peek_any) {
            let name = input.call(Ident::parse_any)?;
            let value = if input.peek(Token![=]) {
                input.parse::<Token![=]>()?;
                Some(input.parse()?)
            } else {
                None
            };
            return Ok(Self::Option { name, value });
        }
        Err(input.error(match kind {
            Kind::Route => {
                "expected a route key string literal or an option (`memory = <MB>`, `timeout = <seconds>`)"
            }
            Kind::Consumer => {
                "expected a queue name string literal or an option (`batch_size = <n>`, `memory = <MB>`, `timeout = <seconds>`)"
            }
            _ => "expected an option (`memory = <MB>`, `timeout = <seconds>`)",
        }))
    }
}

/// Parses and validates the arguments of `#[<kind>(...)]`.
///
/// Every problem is reported (combined into one [`syn::Error`]), each with the span of
/// the offending token. A syntax error stops parsing and is reported alone.
pub(crate) fn parse_args(kind: Kind, tokens: TokenStream) -> syn::Result<RouteArgs> {
    // `parse_terminated_with` takes a `fn`, so no closure capturing `kind`.
    let parse_one: fn(ParseStream<'_>) -> syn::Result<RawArg> = match kind {
        Kind::Route => |input| RawArg::parse(input, Kind::Route),
        Kind::Consumer => |input| RawArg::parse(input, Kind::Consumer),
        _ => |input| RawArg::parse(input, Kind::Connect),
    };
    let parser = |input: ParseStream<'_>| {
        Punctuated::<RawArg, Token![,]>::parse_terminated_with(input, parse_one)
    };
    let args = parser.parse2(tokens)?;
    validate(kind, args)
}

/// Validates parsed arguments, collecting every error.
fn validate(kind: Kind, args: Punctuated<RawArg, Token![,]>) -> syn::Result<RouteArgs> {
    let mut state = Validation::new(kind);
    for (index, arg) in args.into_iter().enumerate() {
        match arg {
            RawArg::Lit(lit) => state.literal(index, lit),
            RawArg::Option { name, value } => state.option(&name, value),
        }
    }
    state.finish()
}

/// What [`validate`] has read so far, and the errors it found.
struct Validation {
    /// The attribute being validated.
    kind: Kind,
    /// Every problem found so far.
    errors: Errors,
    /// The route key (or queue name), once valid.
    key: Option<LitStr>,
    /// Whether a key literal was seen (valid or not).
    key_seen: bool,
    /// The integer options' values, indexed like [`OPTIONS`].
    values: [Option<u32>; OPTIONS.len()],
    /// Which integer options were given, indexed like [`OPTIONS`].
    seen: [bool; OPTIONS.len()],
    /// `forward = "queue"`.
    forward: Option<LitStr>,
    /// `queues = [...]`.
    queues: Option<Vec<LitStr>>,
    /// `emits = [...]`.
    emits: Option<Vec<syn::Type>>,
    /// `api_key = bool`.
    api_key: Option<bool>,
}

impl Validation {
    /// Nothing read yet.
    fn new(kind: Kind) -> Self {
        Self {
            kind,
            errors: Errors::default(),
            key: None,
            key_seen: false,
            values: [None; OPTIONS.len()],
            seen: [false; OPTIONS.len()],
            forward: None,
            queues: None,
            emits: None,
            api_key: None,
        }
    }

    /// Reports `name` given twice.
    fn duplicate(&mut self, name: &Ident, name_str: &str) {
        self.errors.spanned(
            name,
            format!("duplicate option `{name_str}`: it is already set earlier in this attribute"),
        );
    }

    /// A literal argument: the route key (or queue name) when first, a mistake otherwise.
    fn literal(&mut self, index: usize, lit: Lit) {
        let attr = self.kind.attr_name();
        if let Some(reserved) = self.kind.reserved_key() {
            self.errors.spanned(
                &lit,
                format!(
                    "`#[{attr}]` takes no route key: it always handles `{reserved}`; remove this literal"
                ),
            );
        } else if self.key_seen || index != 0 {
            self.errors.spanned(
                &lit,
                format!(
                    "unexpected literal: `#[{attr}]` takes one route key, first, then options, e.g. `#[{attr}(\"sendMessage\", memory = 512)]`"
                ),
            );
            self.key_seen = true;
        } else {
            self.key_seen = true;
            self.key_literal(lit);
        }
    }

    /// The first literal: checked as a route key or a queue name.
    fn key_literal(&mut self, lit: Lit) {
        let attr = self.kind.attr_name();
        match lit {
            Lit::Str(lit) => {
                let checked = match self.kind {
                    Kind::Consumer => check_queue(&lit.value()),
                    _ => check_key(&lit.value()),
                };
                match checked {
                    Ok(()) => self.key = Some(lit),
                    Err(message) => self.errors.spanned(&lit, message),
                }
            }
            other if self.kind == Kind::Consumer => self.errors.spanned(
                &other,
                format!("the queue name must be a string literal, e.g. `#[{attr}(\"orders\")]`"),
            ),
            other => self.errors.spanned(
                &other,
                format!(
                    "the route key must be a string literal, e.g. `#[{attr}(\"sendMessage\")]`"
                ),
            ),
        }
    }

    /// `name = value` (or a bare `name`).
    fn option(&mut self, name: &Ident, value: Option<Expr>) {
        let name_str = name.unraw().to_string();
        let route_like = self.kind != Kind::Consumer;
        match name_str.as_str() {
            "emits" => self.emits(name, value),
            "api_key" if route_like => self.api_key(name, value),
            "forward" | "queues" if route_like => self.queue_option(name, &name_str, value),
            _ => self.integer_option(name, &name_str, value),
        }
    }

    /// `emits = [Type, ...]`.
    fn emits(&mut self, name: &Ident, value: Option<Expr>) {
        if self.emits.is_some() {
            self.duplicate(name, "emits");
            return;
        }
        match value {
            Some(value) => match type_list(&value) {
                Ok(list) => self.emits = Some(list),
                Err(e) => {
                    self.errors.push(e);
                    self.emits = Some(Vec::new());
                }
            },
            None => self.errors.spanned(
                name,
                "option `emits` needs a list of message types, e.g. `emits = [Chat, Presence]`",
            ),
        }
    }

    /// `api_key = true|false`.
    fn api_key(&mut self, name: &Ident, value: Option<Expr>) {
        if self.api_key.is_some() {
            self.duplicate(name, "api_key");
            return;
        }
        self.api_key = Some(false);
        match value.as_ref().map(bool_value) {
            Some(Ok(b)) => self.api_key = Some(b),
            Some(Err(e)) => self.errors.push(e),
            None => self.errors.spanned(
                name,
                "option `api_key` needs a value: `api_key = true` (API Gateway then checks the `x-api-key` header on `$connect`)",
            ),
        }
    }

    /// `forward = "queue"` or `queues = ["queue", ...]`.
    fn queue_option(&mut self, name: &Ident, name_str: &str, value: Option<Expr>) {
        let forward = name_str == "forward";
        let slot_taken = if forward {
            self.forward.is_some()
        } else {
            self.queues.is_some()
        };
        if slot_taken {
            self.duplicate(name, name_str);
            return;
        }
        match (forward, value) {
            (true, Some(value)) => match queue_literal(&value) {
                Ok(lit) => self.forward = Some(lit),
                Err(e) => {
                    self.errors.push(e);
                    self.forward = Some(LitStr::new("", Span::call_site()));
                }
            },
            (false, Some(value)) => match queue_list(&value) {
                Ok(list) => self.queues = Some(list),
                Err(e) => {
                    self.errors.push(e);
                    self.queues = Some(Vec::new());
                }
            },
            (true, None) => self.errors.spanned(
                name,
                "option `forward` needs a queue name, e.g. `forward = \"orders\"`",
            ),
            (false, None) => self.errors.spanned(
                name,
                "option `queues` needs a list of queue names, e.g. `queues = [\"orders\"]`",
            ),
        }
    }

    /// One of the integer [`OPTIONS`] (or an unknown option).
    fn integer_option(&mut self, name: &Ident, name_str: &str, value: Option<Expr>) {
        // `batch_size` is for consumers only, `throttle_*` for routes only.
        let slot = OPTIONS
            .iter()
            .position(|o| o.name == name_str)
            .filter(|&i| applies(OPTIONS[i].name, self.kind));
        let Some(slot) = slot else {
            self.errors.spanned(
                name,
                format!("unknown option `{name_str}`: {}", known_options(self.kind)),
            );
            return;
        };
        let spec = &OPTIONS[slot];
        if self.seen[slot] {
            self.duplicate(name, name_str);
            return;
        }
        self.seen[slot] = true;
        let Some(value) = value else {
            self.errors.spanned(
                name,
                format!(
                    "option `{}` needs a value, e.g. `{} = {}`",
                    spec.name, spec.name, spec.example
                ),
            );
            return;
        };
        match option_value(spec, &value) {
            Ok(v) => self.values[slot] = Some(v),
            Err(error) => self.errors.push(error),
        }
    }

    /// The key: the reserved one, or the literal read (an error when none was given).
    fn final_key(&mut self) -> Option<LitStr> {
        let attr = self.kind.attr_name();
        if let Some(reserved) = self.kind.reserved_key() {
            return Some(LitStr::new(reserved, Span::call_site()));
        }
        if !self.key_seen {
            self.errors.at(
                Span::call_site(),
                if self.kind == Kind::Consumer {
                    format!(
                        "`#[{attr}]` needs a queue name as its first argument, e.g. `#[{attr}(\"orders\")]`"
                    )
                } else {
                    format!(
                        "`#[{attr}]` needs a route key as its first argument, e.g. `#[{attr}(\"sendMessage\")]`"
                    )
                },
            );
        }
        self.key.take()
    }

    /// A burst under a tenth of the rate: API Gateway refuses most of the steady rate.
    fn check_throttle(&mut self, rate: Option<u32>, burst: Option<u32>) {
        if let (Some(rate), Some(burst)) = (rate, burst)
            && burst < rate.div_ceil(10)
        {
            self.errors.at(
                Span::call_site(),
                format!(
                    "`throttle_burst = {burst}` is too small for `throttle_rate = {rate}`: API Gateway refuses most of a steady {rate} requests/s with a burst under a tenth of it; use at least {}",
                    rate.div_ceil(10)
                ),
            );
        }
    }

    /// The validated arguments, or every error found.
    fn finish(mut self) -> syn::Result<RouteArgs> {
        let key = self.final_key();
        let [
            memory_mb,
            timeout_secs,
            batch_size,
            throttle_rate,
            throttle_burst,
        ] = self.values;
        self.check_throttle(throttle_rate, throttle_burst);
        self.errors.finish(())?;
        match key {
            Some(key) => Ok(RouteArgs {
                key,
                memory_mb,
                timeout_secs,
                batch_size,
                forward: self.forward,
                queues: self.queues.unwrap_or_default(),
                emits: self.emits.unwrap_or_default(),
                api_key: self.api_key.unwrap_or(false),
                throttle_rate,
                throttle_burst,
            }),
            // Unreachable: a missing or invalid key always pushed an error above.
            None => Err(syn::Error::new(Span::call_site(), "missing route key")),
        }
    }
}

/// Checks a custom route key; the error is the message to show on the literal.
pub(crate) fn check_key(key: &str) -> Result<(), String> {
    if key.is_empty() {
        return Err("the route key must not be empty".to_owned());
    }
    if key.starts_with('$') {
        return Err(match key {
            "$connect" => "`$connect` is reserved: use #[ws_connect]".to_owned(),
            "$disconnect" => "`$disconnect` is reserved: use #[ws_disconnect]".to_owned(),
            "$default" => "`$default` is reserved: use #[ws_default]".to_owned(),
            other => format!(
                "invalid route key `{other}`: keys starting with `$` are reserved by API Gateway; use a key without `$` (and #[ws_connect], #[ws_disconnect] or #[ws_default] for the reserved routes)"
            ),
        });
    }
    if let Some(c) = key.chars().find(|c| c.is_whitespace() || c.is_control()) {
        return Err(format!(
            "the route key must not contain whitespace or control characters (found {c:?})"
        ));
    }
    let len = key.chars().count();
    if len > MAX_KEY_LEN {
        return Err(format!(
            "the route key is {len} characters long; API Gateway allows at most {MAX_KEY_LEN}"
        ));
    }
    Ok(())
}

/// Reads `api_key = true`: a boolean literal.
fn bool_value(value: &Expr) -> syn::Result<bool> {
    match value {
        Expr::Lit(ExprLit {
            lit: Lit::Bool(b), ..
        }) => Ok(b.value),
        other => Err(syn::Error::new_spanned(
            other,
            "`api_key` expects `true` or `false`, e.g. `api_key = true`",
        )),
    }
}

/// Reads `forward = "queue"`.
fn queue_literal(value: &Expr) -> syn::Result<LitStr> {
    match value {
        Expr::Lit(ExprLit {
            lit: Lit::Str(lit), ..
        }) => {
            check_queue(&lit.value()).map_err(|m| syn::Error::new_spanned(lit, m))?;
            Ok(lit.clone())
        }
        other => Err(syn::Error::new_spanned(
            other,
            "`forward` expects a queue name string literal, e.g. `forward = \"orders\"`",
        )),
    }
}

/// Reads `emits = [Chat, module::Presence, Page::<Item>]`: type paths (generic arguments
/// with a turbofish, since the list is parsed as an expression).
fn type_list(value: &Expr) -> syn::Result<Vec<syn::Type>> {
    const HINT: &str = "`emits` expects a list of message types, e.g. `emits = [Chat, Presence]` (generic types with a turbofish: `Page::<Item>`)";
    let Expr::Array(ExprArray { elems, .. }) = value else {
        return Err(syn::Error::new_spanned(value, HINT));
    };
    let mut errors = Errors::default();
    let mut out = Vec::new();
    for elem in elems {
        match elem {
            Expr::Path(p) if p.attrs.is_empty() => out.push(syn::Type::Path(syn::TypePath {
                qself: p.qself.clone(),
                path: p.path.clone(),
            })),
            other => errors.spanned(other, HINT),
        }
    }
    errors.finish(out)
}

/// Reads `queues = ["a", "b"]`: every problem reported, duplicates too.
fn queue_list(value: &Expr) -> syn::Result<Vec<LitStr>> {
    let Expr::Array(ExprArray { elems, .. }) = value else {
        return Err(syn::Error::new_spanned(
            value,
            "`queues` expects a list of queue name string literals, e.g. `queues = [\"orders\", \"audit\"]`",
        ));
    };
    let mut errors = Errors::default();
    let mut out: Vec<LitStr> = Vec::new();
    for elem in elems {
        match errors.take(queue_literal(elem).map_err(|e| {
            if matches!(
                elem,
                Expr::Lit(ExprLit {
                    lit: Lit::Str(_),
                    ..
                })
            ) {
                e
            } else {
                syn::Error::new_spanned(
                    elem,
                    "`queues` expects queue name string literals, e.g. `queues = [\"orders\"]`",
                )
            }
        })) {
            Some(lit) if out.iter().any(|o| o.value() == lit.value()) => {
                errors.spanned(&lit, format!("queue `{}` is listed twice", lit.value()))
            }
            Some(lit) => out.push(lit),
            None => {}
        }
    }
    errors.finish(out)
}

/// Reads an option's value: an unsuffixed integer literal within the option's range.
fn option_value(spec: &OptionSpec, value: &Expr) -> syn::Result<u32> {
    let OptionSpec {
        name,
        what,
        unit,
        min,
        max,
        example,
    } = *spec;
    let out_of_range = |shown: &str| {
        syn::Error::new_spanned(
            value,
            format!(
                "`{name} = {shown}` is out of range: {what} must be between {min} and {max} {unit}"
            ),
        )
    };
    let int = |expr: &Expr| match expr {
        Expr::Lit(ExprLit {
            lit: Lit::Int(int), ..
        }) => Some(int.clone()),
        _ => None,
    };
    let check_suffix = |int: &LitInt| {
        if int.suffix().is_empty() {
            Ok(())
        } else {
            Err(syn::Error::new_spanned(
                int,
                format!(
                    "`{name}` expects a plain integer, without the `{}` suffix, e.g. `{name} = {example}`",
                    int.suffix()
                ),
            ))
        }
    };
    if let Expr::Unary(ExprUnary {
        op: UnOp::Neg(_),
        expr,
        ..
    }) = value
        && let Some(int) = int(expr)
    {
        check_suffix(&int)?;
        return Err(out_of_range(&format!("-{}", int.base10_digits())));
    }
    match int(value) {
        Some(int) => {
            check_suffix(&int)?;
            match int.base10_parse::<u32>() {
                Ok(v) if (min..=max).contains(&v) => Ok(v),
                _ => Err(out_of_range(int.base10_digits())),
            }
        }
        None => Err(syn::Error::new_spanned(
            value,
            format!(
                "`{name}` expects an integer ({what} in {unit}, {min}..={max}), e.g. `{name} = {example}`"
            ),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use quote::quote;

    fn messages(result: syn::Result<RouteArgs>) -> Vec<String> {
        result
            .unwrap_err()
            .into_iter()
            .map(|e| e.to_string())
            .collect()
    }

    fn one_error(kind: Kind, tokens: TokenStream) -> String {
        let messages = messages(parse_args(kind, tokens));
        assert_eq!(messages.len(), 1, "{messages:#?}");
        messages.into_iter().next().unwrap()
    }

    #[test]
    fn key_only() {
        let args = parse_args(Kind::Route, quote!("sendMessage")).unwrap();
        assert_eq!(args.key.value(), "sendMessage");
        assert_eq!(args.memory_mb, None);
        assert_eq!(args.timeout_secs, None);
    }

    #[test]
    fn key_and_options() {
        let args = parse_args(
            Kind::Route,
            quote!("sendMessage", memory = 512, timeout = 10,),
        )
        .unwrap();
        assert_eq!(args.key.value(), "sendMessage");
        assert_eq!(args.memory_mb, Some(512));
        assert_eq!(args.timeout_secs, Some(10));
    }

    #[test]
    fn option_bounds_are_inclusive() {
        let args = parse_args(Kind::Route, quote!("k", memory = 128, timeout = 900)).unwrap();
        assert_eq!((args.memory_mb, args.timeout_secs), (Some(128), Some(900)));
        let args = parse_args(Kind::Route, quote!("k", memory = 10240, timeout = 1)).unwrap();
        assert_eq!((args.memory_mb, args.timeout_secs), (Some(10240), Some(1)));
    }

    #[test]
    fn reserved_kinds_take_no_key() {
        for (kind, key) in [
            (Kind::Connect, "$connect"),
            (Kind::Disconnect, "$disconnect"),
            (Kind::Default, "$default"),
        ] {
            let args = parse_args(kind, quote!()).unwrap();
            assert_eq!(args.key.value(), key);
            let args = parse_args(kind, quote!(timeout = 3)).unwrap();
            assert_eq!(args.timeout_secs, Some(3));
            assert_eq!(
                one_error(kind, quote!("hello")),
                format!(
                    "`#[{}]` takes no route key: it always handles `{key}`; remove this literal",
                    kind.attr_name()
                )
            );
        }
    }

    #[test]
    fn empty_key() {
        assert_eq!(
            one_error(Kind::Route, quote!("")),
            "the route key must not be empty"
        );
    }

    #[test]
    fn missing_key() {
        let expected = "`#[ws_route]` needs a route key as its first argument, e.g. `#[ws_route(\"sendMessage\")]`";
        assert_eq!(one_error(Kind::Route, quote!()), expected);
        assert_eq!(one_error(Kind::Route, quote!(memory = 512)), expected);
    }

    #[test]
    fn key_not_a_string() {
        assert_eq!(
            one_error(Kind::Route, quote!(42)),
            "the route key must be a string literal, e.g. `#[ws_route(\"sendMessage\")]`"
        );
    }

    #[test]
    fn key_not_first_or_twice() {
        let message = one_error(Kind::Route, quote!(memory = 512, "k"));
        assert!(message.starts_with("unexpected literal"), "{message}");
        let message = one_error(Kind::Route, quote!("k", "again"));
        assert!(message.starts_with("unexpected literal"), "{message}");
    }

    #[test]
    fn reserved_keys() {
        assert_eq!(
            one_error(Kind::Route, quote!("$connect")),
            "`$connect` is reserved: use #[ws_connect]"
        );
        assert_eq!(
            one_error(Kind::Route, quote!("$disconnect")),
            "`$disconnect` is reserved: use #[ws_disconnect]"
        );
        assert_eq!(
            one_error(Kind::Route, quote!("$default")),
            "`$default` is reserved: use #[ws_default]"
        );
        let message = one_error(Kind::Route, quote!("$foo"));
        assert!(
            message.starts_with("invalid route key `$foo`: keys starting with `$` are reserved"),
            "{message}"
        );
    }

    #[test]
    fn key_characters_and_length() {
        assert!(
            check_key("send message")
                .unwrap_err()
                .contains("whitespace")
        );
        assert!(check_key("send\tmessage").unwrap_err().contains("'\\t'"));
        assert!(check_key("a\u{7}b").unwrap_err().contains("control"));
        assert!(check_key(&"k".repeat(MAX_KEY_LEN)).is_ok());
        assert_eq!(
            check_key(&"é".repeat(MAX_KEY_LEN + 1)).unwrap_err(),
            "the route key is 129 characters long; API Gateway allows at most 128"
        );
        assert!(check_key("chat/send-message.v2").is_ok());
    }

    #[test]
    fn unknown_option() {
        assert_eq!(
            one_error(Kind::Route, quote!("k", memroy = 512)),
            "unknown option `memroy`: the known options are `memory = <MB>` (Lambda memory, 128..=10240), `timeout = <seconds>` (Lambda timeout, 1..=900), `forward = \"<queue>\"`, `queues = [\"<queue>\", ...]`, `api_key = true`, `throttle_rate = <requests/s>` (1..=10000), `throttle_burst = <requests>` (1..=5000) and `emits = [MessageType, ...]`"
        );
        // Keywords are option names too, as far as the error is concerned.
        let message = one_error(Kind::Connect, quote!(type = 1));
        assert!(message.starts_with("unknown option `type`"), "{message}");
    }

    #[test]
    fn wrong_option_type() {
        let expected =
            "`memory` expects an integer (Lambda memory in MB, 128..=10240), e.g. `memory = 512`";
        assert_eq!(
            one_error(Kind::Route, quote!("k", memory = "big")),
            expected
        );
        assert_eq!(one_error(Kind::Route, quote!("k", memory = 1.5)), expected);
        assert_eq!(one_error(Kind::Route, quote!("k", memory = BIG)), expected);
        assert_eq!(
            one_error(Kind::Route, quote!("k", timeout = true)),
            "`timeout` expects an integer (Lambda timeout in seconds, 1..=900), e.g. `timeout = 10`"
        );
    }

    #[test]
    fn suffixed_option() {
        assert_eq!(
            one_error(Kind::Route, quote!("k", memory = 512u32)),
            "`memory` expects a plain integer, without the `u32` suffix, e.g. `memory = 512`"
        );
    }

    #[test]
    fn out_of_range_options() {
        assert_eq!(
            one_error(Kind::Route, quote!("k", memory = 64)),
            "`memory = 64` is out of range: Lambda memory must be between 128 and 10240 MB"
        );
        assert_eq!(
            one_error(Kind::Route, quote!("k", memory = 99999999999999)),
            "`memory = 99999999999999` is out of range: Lambda memory must be between 128 and 10240 MB"
        );
        assert_eq!(
            one_error(Kind::Route, quote!("k", timeout = 0)),
            "`timeout = 0` is out of range: Lambda timeout must be between 1 and 900 seconds"
        );
        assert_eq!(
            one_error(Kind::Route, quote!("k", timeout = -5)),
            "`timeout = -5` is out of range: Lambda timeout must be between 1 and 900 seconds"
        );
    }

    #[test]
    fn option_without_value() {
        assert_eq!(
            one_error(Kind::Route, quote!("k", timeout)),
            "option `timeout` needs a value, e.g. `timeout = 10`"
        );
    }

    #[test]
    fn duplicate_option() {
        assert_eq!(
            one_error(Kind::Route, quote!("k", memory = 512, memory = 1024)),
            "duplicate option `memory`: it is already set earlier in this attribute"
        );
    }

    #[test]
    fn collects_every_error() {
        let messages = messages(parse_args(
            Kind::Route,
            quote!("$connect", colour = 1, memory = "x", timeout = 901),
        ));
        assert_eq!(messages.len(), 4, "{messages:#?}");
        assert!(messages[0].contains("`$connect` is reserved"));
        assert!(messages[1].contains("unknown option `colour`"));
        assert!(messages[2].contains("`memory` expects an integer"));
        assert!(messages[3].contains("`timeout = 901` is out of range"));
    }

    #[test]
    fn syntax_errors() {
        let message = one_error(Kind::Route, quote!("k", memory 512));
        assert_eq!(message, "expected `,`");
        let message = one_error(Kind::Connect, quote!(#[x]));
        assert_eq!(
            message,
            "expected an option (`memory = <MB>`, `timeout = <seconds>`)"
        );
        let message = one_error(Kind::Route, quote!(+));
        assert!(message.starts_with("expected a route key string literal"));
    }

    #[test]
    fn errors_point_at_the_offending_tokens() {
        // In unit tests spans carry no positions, but each error still has its own span,
        // so `into_compile_error` emits one `compile_error!` per problem.
        let error = parse_args(Kind::Route, quote!("", memory = 1, timeout = 0)).unwrap_err();
        let rendered = error.into_compile_error().to_string();
        assert_eq!(rendered.matches("compile_error").count(), 3, "{rendered}");
    }

    #[test]
    fn forward_and_queues() {
        let args = parse_args(
            Kind::Route,
            quote!(
                "placeOrder",
                forward = "orders",
                queues = ["audit", "mail_out"]
            ),
        )
        .unwrap();
        assert_eq!(args.forward.map(|l| l.value()).as_deref(), Some("orders"));
        let queues: Vec<String> = args.queues.iter().map(LitStr::value).collect();
        assert_eq!(queues, ["audit", "mail_out"]);
    }

    #[test]
    fn bad_queue_options() {
        assert!(
            one_error(Kind::Route, quote!("k", forward = "orders.fifo"))
                .starts_with("invalid queue name `orders.fifo`")
        );
        assert_eq!(
            one_error(Kind::Route, quote!("k", forward = 3)),
            "`forward` expects a queue name string literal, e.g. `forward = \"orders\"`"
        );
        assert!(
            one_error(Kind::Route, quote!("k", queues = "orders"))
                .starts_with("`queues` expects a list")
        );
        assert_eq!(
            one_error(Kind::Route, quote!("k", queues = ["a", "a"])),
            "queue `a` is listed twice"
        );
        assert_eq!(
            one_error(Kind::Route, quote!("k", forward = "a", forward = "b")),
            "duplicate option `forward`: it is already set earlier in this attribute"
        );
        assert!(one_error(Kind::Route, quote!("k", forward = "")).contains("must not be empty"));
        let long = "q".repeat(MAX_QUEUE_LEN + 1);
        assert!(one_error(Kind::Route, quote!("k", forward = #long)).contains("at most 40"));
        // `batch_size` is a consumer option.
        assert!(
            one_error(Kind::Route, quote!("k", batch_size = 5))
                .starts_with("unknown option `batch_size`")
        );
    }

    #[test]
    fn emits_takes_type_paths() {
        let args = parse_args(
            Kind::Route,
            quote!("k", emits = [Chat, m::Presence, Page::<Item>]),
        )
        .unwrap();
        let types: Vec<String> = args.emits.iter().map(|t| quote!(#t).to_string()).collect();
        assert_eq!(types, ["Chat", "m :: Presence", "Page :: < Item >"]);
        for kind in [Kind::Consumer, Kind::Disconnect] {
            let args = match kind {
                Kind::Consumer => parse_args(kind, quote!("orders", emits = [OrderPlaced])),
                _ => parse_args(kind, quote!(emits = [OrderPlaced])),
            };
            assert_eq!(args.unwrap().emits.len(), 1);
        }
        let hint = "`emits` expects a list of message types, e.g. `emits = [Chat, Presence]` (generic types with a turbofish: `Page::<Item>`)";
        assert_eq!(one_error(Kind::Route, quote!("k", emits = Chat)), hint);
        assert_eq!(one_error(Kind::Route, quote!("k", emits = ["Chat"])), hint);
        assert_eq!(
            one_error(Kind::Route, quote!("k", emits)),
            "option `emits` needs a list of message types, e.g. `emits = [Chat, Presence]`"
        );
        assert_eq!(
            one_error(Kind::Route, quote!("k", emits = [A], emits = [B])),
            "duplicate option `emits`: it is already set earlier in this attribute"
        );
    }

    #[test]
    fn consumer_args() {
        let args = parse_args(
            Kind::Consumer,
            quote!("orders", batch_size = 10, memory = 256),
        )
        .unwrap();
        assert_eq!(args.key.value(), "orders");
        assert_eq!((args.batch_size, args.memory_mb), (Some(10), Some(256)));
        assert_eq!(
            one_error(Kind::Consumer, quote!()),
            "`#[queue_consumer]` needs a queue name as its first argument, e.g. `#[queue_consumer(\"orders\")]`"
        );
        assert_eq!(
            one_error(Kind::Consumer, quote!("orders", batch_size = 11)),
            "`batch_size = 11` is out of range: the batch size must be between 1 and 10 messages"
        );
        assert!(
            one_error(Kind::Consumer, quote!("orders", forward = "x"))
                .starts_with("unknown option `forward`: the known options are `memory")
        );
        assert!(one_error(Kind::Consumer, quote!("my queue")).starts_with("invalid queue name"));
    }

    #[test]
    fn api_key_and_throttling() {
        let args = parse_args(
            Kind::Route,
            quote!(
                "admin",
                api_key = true,
                throttle_rate = 50,
                throttle_burst = 20
            ),
        )
        .unwrap();
        assert!(args.api_key);
        assert_eq!(
            (args.throttle_rate, args.throttle_burst),
            (Some(50), Some(20))
        );
        let args = parse_args(Kind::Connect, quote!(api_key = true)).unwrap();
        assert!(args.api_key);
        assert!(!parse_args(Kind::Route, quote!("k")).unwrap().api_key);
    }

    #[test]
    fn bad_api_key_and_throttling() {
        assert_eq!(
            one_error(Kind::Route, quote!("k", api_key = "yes")),
            "`api_key` expects `true` or `false`, e.g. `api_key = true`"
        );
        assert!(
            one_error(Kind::Route, quote!("k", api_key))
                .starts_with("option `api_key` needs a value")
        );
        assert_eq!(
            one_error(Kind::Route, quote!("k", api_key = true, api_key = false)),
            "duplicate option `api_key`: it is already set earlier in this attribute"
        );
        assert_eq!(
            one_error(Kind::Route, quote!("k", throttle_rate = 0)),
            "`throttle_rate = 0` is out of range: the route's throttle rate must be between 1 and 10000 requests per second"
        );
        assert_eq!(
            one_error(Kind::Route, quote!("k", throttle_burst = 5001)),
            "`throttle_burst = 5001` is out of range: the route's throttle burst must be between 1 and 5000 requests"
        );
        assert_eq!(
            one_error(Kind::Route, quote!("k", throttle_rate = 1.5)),
            "`throttle_rate` expects an integer (the route's throttle rate in requests per second, 1..=10000), e.g. `throttle_rate = 50`"
        );
        assert!(
            one_error(
                Kind::Route,
                quote!("k", throttle_rate = 1000, throttle_burst = 5)
            )
            .starts_with("`throttle_burst = 5` is too small for `throttle_rate = 1000`")
        );
        for option in [quote!(api_key = true), quote!(throttle_rate = 5)] {
            assert!(
                one_error(Kind::Consumer, quote!("orders", #option)).starts_with("unknown option")
            );
        }
    }
}

//! Putting it together: the function, unchanged, plus its registration, or the function
//! plus every error.

use proc_macro2::{Literal, Span, TokenStream};
use quote::{quote, quote_spanned};
use syn::ext::IdentExt;
use syn::{FnArg, GenericArgument, Ident, ItemFn, LitStr, PathArguments, ReturnType, Type};

use crate::attr::{self, Kind, RouteArgs};
use crate::errors::Errors;
use crate::func;

/// Expands `#[<kind>(<args>)] <item>`.
///
/// On success: the item unchanged, then a `const _: () = { ... };` block that submits a
/// `RouteDef` to the registry. On error: the item unchanged (so that its uses do not
/// fail too), then one `compile_error!` per problem found in the arguments and in the
/// function, each pointing at the offending token.
pub(crate) fn expand(kind: Kind, args: TokenStream, item: TokenStream) -> TokenStream {
    match check(kind, args, item.clone()) {
        Ok((args, function)) => {
            let registration = match kind {
                Kind::Consumer => consumer_registration(&args, &function),
                _ => registration(kind, &args, &function),
            };
            quote! {
                #item
                #registration
            }
        }
        Err(error) => {
            let errors = error.into_compile_error();
            quote! {
                #item
                #errors
            }
        }
    }
}

/// Parses and validates everything, collecting the errors of the arguments and of the
/// function, in source order.
fn check(kind: Kind, args: TokenStream, item: TokenStream) -> syn::Result<(RouteArgs, ItemFn)> {
    let mut errors = Errors::default();
    let args = errors.take(attr::parse_args(kind, args));
    let function = match syn::parse2::<ItemFn>(item.clone()) {
        Ok(function) => {
            errors.take(func::check_signature(kind, &function.sig));
            Some(function)
        }
        Err(_) => {
            errors.spanned(
                &item,
                format!(
                    "`#[{}]` can only be applied to an `async fn` (a free function)",
                    kind.attr_name()
                ),
            );
            None
        }
    };
    errors.finish(())?;
    match (args, function) {
        (Some(args), Some(function)) => Ok((args, function)),
        // Unreachable: a `None` above always came with an error.
        _ => Err(syn::Error::new(Span::call_site(), "invalid route handler")),
    }
}

/// The `const _: () = { ... };` block registering `function` under `args.key`.
///
/// Paths are absolute, into `::switchboard::__private`. The `erase(...)` call and
/// `line!()` carry the span of the function's name, so that type errors (an argument that
/// is not an extractor) point at the function rather than at the attribute, and the
/// recorded line is the line of the name.
pub(crate) fn registration(kind: Kind, args: &RouteArgs, function: &ItemFn) -> TokenStream {
    let ident = &function.sig.ident;
    let span = ident.span();
    let key = &args.key;
    let variant = Ident::new(kind.variant(), Span::call_site());
    let Site {
        name,
        doc,
        memory_mb,
        timeout_secs,
        file,
        line,
        cfgs,
    } = Site::of(args, function);
    let forward = match &args.forward {
        Some(queue) => quote!(::core::option::Option::Some(#queue)),
        None => quote!(::core::option::Option::None),
    };
    let queues = &args.queues;
    let api_key = args.api_key;
    let throttle_rate = optional_u32(args.throttle_rate);
    let throttle_burst = optional_u32(args.throttle_burst);
    let erase = quote_spanned!(span=> ::switchboard::__private::erase(#ident));
    let contract = contract_registration(
        quote!(::switchboard::__private::ContractOwner::Route(#key)),
        &name,
        payload_type(function).map(|t| probe(&t)),
        reply_tokens(&function.sig.output),
        &args.emits,
    );
    quote! {
        #(#cfgs)*
        const _: () = {
            #[allow(deprecated)]
            fn __switchboard_handler() -> ::switchboard::__private::BoxedHandler {
                #erase
            }
            ::switchboard::__private::inventory::submit! {
                ::switchboard::__private::RouteDef {
                    key: #key,
                    kind: ::switchboard::__private::RouteKind::#variant,
                    function: #name,
                    module: ::core::module_path!(),
                    location: ::switchboard::__private::SourceLocation {
                        file: #file,
                        line: #line,
                    },
                    options: ::switchboard::__private::RouteOptions {
                        memory_mb: #memory_mb,
                        timeout_secs: #timeout_secs,
                        forward: #forward,
                        queues: &[#(#queues),*],
                        api_key: #api_key,
                        throttle_rate: #throttle_rate,
                        throttle_burst: #throttle_burst,
                    },
                    doc: #doc,
                    handler: __switchboard_handler,
                }
            }
            #contract
        };
    }
}

/// The `const _: () = { ... };` block registering a `#[queue_consumer]`.
pub(crate) fn consumer_registration(args: &RouteArgs, function: &ItemFn) -> TokenStream {
    let ident = &function.sig.ident;
    let queue = &args.key;
    let Site {
        name,
        doc,
        memory_mb,
        timeout_secs,
        file,
        line,
        cfgs,
    } = Site::of(args, function);
    let batch_size = optional_u32(args.batch_size);
    let erase = quote_spanned!(ident.span()=> ::switchboard::__private::erase_consumer(#ident));
    let contract = contract_registration(
        quote!(::switchboard::__private::ContractOwner::Consumer(#queue)),
        &name,
        None,
        quote!(::switchboard::__private::ReplySchema::None),
        &args.emits,
    );
    quote! {
        #(#cfgs)*
        const _: () = {
            #[allow(deprecated)]
            fn __switchboard_consumer() -> ::switchboard::__private::BoxedConsumer {
                #erase
            }
            ::switchboard::__private::inventory::submit! {
                ::switchboard::__private::ConsumerDef {
                    queue: #queue,
                    function: #name,
                    module: ::core::module_path!(),
                    location: ::switchboard::__private::SourceLocation {
                        file: #file,
                        line: #line,
                    },
                    options: ::switchboard::__private::ConsumerOptions {
                        memory_mb: #memory_mb,
                        timeout_secs: #timeout_secs,
                        batch_size: #batch_size,
                    },
                    doc: #doc,
                    consumer: __switchboard_consumer,
                }
            }
            #contract
        };
    }
}

/// What a route's and a consumer's registrations share: the function's name and doc, the
/// Lambda options, and where it is declared.
struct Site<'f> {
    name: LitStr,
    doc: LitStr,
    memory_mb: TokenStream,
    timeout_secs: TokenStream,
    /// `file!()` and `line!()` with the span of the function's name.
    file: TokenStream,
    line: TokenStream,
    /// `#[cfg]`s written below the attribute may remove the function after this
    /// expansion: the registration goes with it.
    cfgs: Vec<&'f syn::Attribute>,
}

impl<'f> Site<'f> {
    fn of(args: &RouteArgs, function: &'f ItemFn) -> Self {
        let ident = &function.sig.ident;
        let span = ident.span();
        Self {
            name: LitStr::new(&ident.unraw().to_string(), span),
            doc: LitStr::new(&func::first_doc_paragraph(function), Span::call_site()),
            memory_mb: optional_u32(args.memory_mb),
            timeout_secs: optional_u32(args.timeout_secs),
            file: quote_spanned!(span=> ::core::file!()),
            line: quote_spanned!(span=> ::core::line!()),
            cfgs: function
                .attrs
                .iter()
                .filter(|attr| attr.path().is_ident("cfg"))
                .collect(),
        }
    }
}

/// The contract's function and its `ContractDef`: the payload, reply and emitted types,
/// each through the autoref-specialising `Probe` (a schema when the type implements
/// `JsonSchema`, an open one otherwise), so that no handler stops compiling.
fn contract_registration(
    owner: TokenStream,
    name: &LitStr,
    payload: Option<TokenStream>,
    reply: TokenStream,
    emits: &[Type],
) -> TokenStream {
    let payload = match payload {
        Some(probe) => quote!(::core::option::Option::Some(#probe)),
        None => quote!(::core::option::Option::None),
    };
    let emits = emits.iter().map(probe);
    quote! {
        #[allow(deprecated, elided_lifetimes_in_paths, unused_imports, unused_qualifications)]
        fn __switchboard_contract() -> ::switchboard::__private::Contract {
            use ::switchboard::__private::{Undescribed as _, ViaJsonSchema as _};
            ::switchboard::__private::Contract {
                payload: #payload,
                reply: #reply,
                emits: ::std::vec![#(#emits),*],
            }
        }
        ::switchboard::__private::inventory::submit! {
            ::switchboard::__private::ContractDef {
                owner: #owner,
                module: ::core::module_path!(),
                function: #name,
                contract: __switchboard_contract,
            }
        }
    }
}

/// `(&Probe::<T>::new()).type_schema()`.
fn probe(ty: &Type) -> TokenStream {
    quote!((&::switchboard::__private::Probe::<#ty>::new()).type_schema())
}

/// Parentheses and invisible groups removed.
fn bare(ty: &Type) -> &Type {
    match ty {
        Type::Paren(p) => bare(&p.elem),
        Type::Group(g) => bare(&g.elem),
        other => other,
    }
}

/// `Name<T, ..>` -> (`Name`, first type argument).
fn path_and_arg(ty: &Type) -> Option<(String, Option<&Type>)> {
    let Type::Path(p) = bare(ty) else {
        return None;
    };
    if p.qself.is_some() {
        return None;
    }
    let last = p.path.segments.last()?;
    let arg = match &last.arguments {
        PathArguments::AngleBracketed(a) => a.args.iter().find_map(|g| match g {
            GenericArgument::Type(t) => Some(t),
            _ => None,
        }),
        _ => None,
    };
    Some((last.ident.to_string(), arg))
}

/// The payload type: the `T` of a last argument `Json<T>`.
fn payload_type(function: &ItemFn) -> Option<Type> {
    let FnArg::Typed(last) = function.sig.inputs.last()? else {
        return None;
    };
    match path_and_arg(&last.ty)? {
        (name, Some(t)) if name == "Json" && !mentions_impl(t) => Some(t.clone()),
        _ => None,
    }
}

/// Whether a type has an `impl Trait` in it (it cannot be named elsewhere).
fn mentions_impl(ty: &Type) -> bool {
    quote!(#ty)
        .to_string()
        .split_whitespace()
        .any(|w| w == "impl")
}

/// What a handler's return type answers.
enum Reply<'a> {
    None,
    Value(&'a Type),
    Optional(&'a Type),
    Unknown,
}

fn reply_of(ty: &Type) -> Reply<'_> {
    let ty = bare(ty);
    if mentions_impl(ty) {
        return Reply::Unknown;
    }
    match ty {
        Type::Tuple(t) if t.elems.is_empty() => return Reply::None,
        Type::Never(_) => return Reply::None,
        Type::Reference(_) => return Reply::Unknown,
        _ => {}
    }
    match path_and_arg(ty) {
        Some((name, Some(inner))) if name == "Result" => reply_of(inner),
        Some((name, Some(inner))) if name == "Option" => match reply_of(inner) {
            Reply::Value(t) | Reply::Optional(t) => Reply::Optional(t),
            other => other,
        },
        Some((name, Some(inner))) if name == "Json" => Reply::Value(inner),
        Some((name, None)) if name == "WsError" => Reply::None,
        Some((name, None)) if matches!(name.as_str(), "Frame" | "String") => Reply::Unknown,
        _ => Reply::Value(ty),
    }
}

/// The `ReplySchema` expression of a return type.
fn reply_tokens(output: &ReturnType) -> TokenStream {
    let reply = match output {
        ReturnType::Default => Reply::None,
        ReturnType::Type(_, ty) => reply_of(ty),
    };
    match reply {
        Reply::None => quote!(::switchboard::__private::ReplySchema::None),
        Reply::Unknown => quote!(::switchboard::__private::ReplySchema::Unknown),
        Reply::Value(t) => {
            let p = probe(t);
            quote!(::switchboard::__private::ReplySchema::Value(#p))
        }
        Reply::Optional(t) => {
            let p = probe(t);
            quote!(::switchboard::__private::ReplySchema::Optional(#p))
        }
    }
}

/// `::core::option::Option::Some(N)` or `::core::option::Option::None`.
fn optional_u32(value: Option<u32>) -> TokenStream {
    match value {
        Some(value) => {
            let value = Literal::u32_unsuffixed(value);
            quote!(::core::option::Option::Some(#value))
        }
        None => quote!(::core::option::Option::None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Token streams compared as strings, whitespace-insensitively.
    fn normalize(tokens: &TokenStream) -> String {
        tokens
            .to_string()
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
    }

    fn item() -> TokenStream {
        quote! {
            /// Relays a chat line.
            ///
            /// Details.
            pub async fn send_message(ctx: Ctx, Json(msg): Json<Msg>) -> Result<(), WsError> {
                Ok(())
            }
        }
    }

    #[test]
    fn custom_route() {
        let output = expand(Kind::Route, quote!("sendMessage", memory = 512), item());
        let expected = quote! {
            /// Relays a chat line.
            ///
            /// Details.
            pub async fn send_message(ctx: Ctx, Json(msg): Json<Msg>) -> Result<(), WsError> {
                Ok(())
            }
            const _: () = {
                #[allow(deprecated)]
                fn __switchboard_handler() -> ::switchboard::__private::BoxedHandler {
                    ::switchboard::__private::erase(send_message)
                }
                ::switchboard::__private::inventory::submit! {
                    ::switchboard::__private::RouteDef {
                        key: "sendMessage",
                        kind: ::switchboard::__private::RouteKind::Custom,
                        function: "send_message",
                        module: ::core::module_path!(),
                        location: ::switchboard::__private::SourceLocation {
                            file: ::core::file!(),
                            line: ::core::line!(),
                        },
                        options: ::switchboard::__private::RouteOptions {
                            memory_mb: ::core::option::Option::Some(512),
                            timeout_secs: ::core::option::Option::None,
                            forward: ::core::option::Option::None,
                            queues: &[],
                            api_key: false,
                            throttle_rate: ::core::option::Option::None,
                            throttle_burst: ::core::option::Option::None,
                        },
                        doc: "Relays a chat line.",
                        handler: __switchboard_handler,
                    }
                }
                #[allow(deprecated, elided_lifetimes_in_paths, unused_imports, unused_qualifications)]
                fn __switchboard_contract() -> ::switchboard::__private::Contract {
                    use ::switchboard::__private::{Undescribed as _, ViaJsonSchema as _};
                    ::switchboard::__private::Contract {
                        payload: ::core::option::Option::Some(
                            (&::switchboard::__private::Probe::<Msg>::new()).type_schema()
                        ),
                        reply: ::switchboard::__private::ReplySchema::None,
                        emits: ::std::vec![],
                    }
                }
                ::switchboard::__private::inventory::submit! {
                    ::switchboard::__private::ContractDef {
                        owner: ::switchboard::__private::ContractOwner::Route("sendMessage"),
                        module: ::core::module_path!(),
                        function: "send_message",
                        contract: __switchboard_contract,
                    }
                }
            };
        };
        assert_eq!(normalize(&output), normalize(&expected));
    }

    /// The reply schema and payload a signature produces.
    fn contract_of(item: TokenStream) -> (String, String) {
        let output = normalize(&expand(
            Kind::Route,
            quote!("k", emits = [Chat, m::Presence]),
            item,
        ));
        let payload = output
            .split("payload : ")
            .nth(1)
            .and_then(|s| s.split(" , reply").next())
            .unwrap_or("")
            .to_owned();
        let reply = output
            .split("reply : ")
            .nth(1)
            .and_then(|s| s.split(" , emits").next())
            .unwrap_or("")
            .to_owned();
        assert!(
            output.contains("emits : :: std :: vec ! [(& :: switchboard :: __private :: Probe :: < Chat > :: new ()) . type_schema () , (& :: switchboard :: __private :: Probe :: < m :: Presence > :: new ()) . type_schema ()]"),
            "{output}"
        );
        (payload, reply)
    }

    #[test]
    fn payload_and_reply_types_are_captured() {
        let probe = |t: &str| {
            format!(
                "(& :: switchboard :: __private :: Probe :: < {t} > :: new ()) . type_schema ()"
            )
        };
        let cases: [(TokenStream, &str, String); 8] = [
            (
                quote!(
                    async fn f(ctx: Ctx, Json(r): Json<Req>) -> Result<Json<Joined>, WsError> {
                        Ok(Json(Joined::from(r)))
                    }
                ),
                "Some",
                format!(
                    ":: switchboard :: __private :: ReplySchema :: Value ({})",
                    probe("Joined")
                ),
            ),
            (
                quote!(
                    async fn f(ctx: Ctx) -> Result<serde_json::Value, WsError> {
                        Ok(serde_json::Value::Null)
                    }
                ),
                "None",
                format!(
                    ":: switchboard :: __private :: ReplySchema :: Value ({})",
                    probe("serde_json :: Value")
                ),
            ),
            (
                quote!(
                    async fn f(ctx: Ctx) {}
                ),
                "None",
                ":: switchboard :: __private :: ReplySchema :: None".to_owned(),
            ),
            (
                quote!(
                    async fn f() -> Result<(), WsError> {
                        Ok(())
                    }
                ),
                "None",
                ":: switchboard :: __private :: ReplySchema :: None".to_owned(),
            ),
            (
                quote!(
                    async fn f() -> Option<Json<A>> {
                        None
                    }
                ),
                "None",
                format!(
                    ":: switchboard :: __private :: ReplySchema :: Optional ({})",
                    probe("A")
                ),
            ),
            (
                quote!(
                    async fn f(j: switchboard::Json<In<'static>>) -> Frame {
                        Frame::text("in")
                    }
                ),
                "Some",
                ":: switchboard :: __private :: ReplySchema :: Unknown".to_owned(),
            ),
            (
                quote!(
                    async fn f() -> Json<impl Serialize> {
                        Json(1)
                    }
                ),
                "None",
                ":: switchboard :: __private :: ReplySchema :: Unknown".to_owned(),
            ),
            (
                quote!(
                    async fn f() -> WsError {
                        WsError::internal("f")
                    }
                ),
                "None",
                ":: switchboard :: __private :: ReplySchema :: None".to_owned(),
            ),
        ];
        for (item, payload, reply) in cases {
            let (p, r) = contract_of(item.clone());
            assert!(
                p.starts_with(&format!(":: core :: option :: Option :: {payload}")),
                "{item}: {p}"
            );
            assert_eq!(r, reply, "{item}");
        }
    }

    #[test]
    fn reserved_routes() {
        for (kind, key, variant) in [
            (Kind::Connect, "\"$connect\"", "Connect"),
            (Kind::Disconnect, "\"$disconnect\"", "Disconnect"),
            (Kind::Default, "\"$default\"", "Default"),
        ] {
            let output = normalize(&expand(kind, quote!(timeout = 3), item()));
            assert!(output.contains(&format!("key : {key} ,")), "{output}");
            assert!(
                output.contains(&format!(
                    "kind : :: switchboard :: __private :: RouteKind :: {variant} ,"
                )),
                "{output}"
            );
            assert!(
                output.contains("timeout_secs : :: core :: option :: Option :: Some (3)"),
                "{output}"
            );
            assert!(!output.contains("compile_error"), "{output}");
        }
    }

    #[test]
    fn cfg_attributes_apply_to_the_registration() {
        let output = normalize(&expand(
            Kind::Route,
            quote!("k"),
            quote!(
                #[cfg(feature = "chat")]
                #[inline]
                async fn chat() {}
            ),
        ));
        assert!(
            output.contains("# [cfg (feature = \"chat\")] const _ : () ="),
            "{output}"
        );
        assert_eq!(output.matches("inline").count(), 1, "{output}");
    }

    #[test]
    fn raw_identifiers() {
        let output = normalize(&expand(
            Kind::Route,
            quote!("k"),
            quote!(
                async fn r#match() {}
            ),
        ));
        assert!(output.contains("erase (r#match)"), "{output}");
        assert!(output.contains("function : \"match\""), "{output}");
        assert!(output.contains("doc : \"\""), "{output}");
    }

    #[test]
    fn errors_keep_the_function_unchanged() {
        let item = quote! {
            /// Docs.
            fn send_message<T>(&self, x: T) -> u32 { 1 }
        };
        let output = expand(
            Kind::Route,
            quote!("sendMessage", memory = "big"),
            item.clone(),
        );
        let output = normalize(&output);
        assert!(output.starts_with(&normalize(&item)), "{output}");
        assert!(!output.contains("inventory"), "{output}");
        assert!(!output.contains("erase"), "{output}");
        assert_eq!(output.matches("compile_error").count(), 4, "{output}");
    }

    #[test]
    fn three_errors_at_once() {
        let item = quote!(
            fn send() {}
        );
        let output = normalize(&expand(
            Kind::Route,
            quote!("send", colour = 1, timeout = 1000),
            item.clone(),
        ));
        assert!(output.starts_with(&normalize(&item)), "{output}");
        let errors: Vec<&str> = output.split("compile_error").skip(1).collect();
        assert_eq!(errors.len(), 3, "{output}");
        assert!(errors[0].contains("unknown option `colour`"), "{output}");
        assert!(
            errors[1].contains("`timeout = 1000` is out of range"),
            "{output}"
        );
        assert!(errors[2].contains("must be async"), "{output}");
    }

    #[test]
    fn syntax_error_in_arguments_still_checks_the_function() {
        let output = normalize(&expand(
            Kind::Route,
            quote!("send", memory 512),
            quote!(
                fn send() {}
            ),
        ));
        assert_eq!(output.matches("compile_error").count(), 2, "{output}");
        assert!(output.contains("expected `,`"), "{output}");
        assert!(output.contains("must be async"), "{output}");
    }

    #[test]
    fn not_a_function() {
        let item = quote!(
            struct Handler;
        );
        let output = normalize(&expand(Kind::Default, quote!(), item.clone()));
        assert!(output.starts_with(&normalize(&item)), "{output}");
        assert!(
            output.contains("`#[ws_default]` can only be applied to an `async fn`"),
            "{output}"
        );
    }

    #[test]
    fn forward_and_queues_options() {
        let output = normalize(&expand(
            Kind::Route,
            quote!("placeOrder", forward = "orders", queues = ["audit", "mail"]),
            item(),
        ));
        assert!(
            output.contains(
                "forward : :: core :: option :: Option :: Some (\"orders\") , queues : & [\"audit\" , \"mail\"] ,"
            ),
            "{output}"
        );
    }

    #[test]
    fn consumer_registration() {
        let output = normalize(&expand(
            Kind::Consumer,
            quote!("orders", batch_size = 5, timeout = 30),
            item(),
        ));
        assert!(
            output.contains(":: switchboard :: __private :: ConsumerDef { queue : \"orders\""),
            "{output}"
        );
        assert!(
            output.contains(":: switchboard :: __private :: erase_consumer (send_message)"),
            "{output}"
        );
        assert!(
            output.contains("batch_size : :: core :: option :: Option :: Some (5)"),
            "{output}"
        );
        assert!(!output.contains("RouteDef"), "{output}");
        assert!(
            output.contains(
                "owner : :: switchboard :: __private :: ContractOwner :: Consumer (\"orders\")"
            ),
            "{output}"
        );
    }
}

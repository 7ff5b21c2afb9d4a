//! Putting it together: the function, unchanged, plus its registration, or the function
//! plus every error.

use proc_macro2::{Literal, Span, TokenStream};
use quote::{quote, quote_spanned};
use syn::ext::IdentExt;
use syn::{Ident, ItemFn, LitStr};

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
    let name = LitStr::new(&ident.unraw().to_string(), span);
    let doc = LitStr::new(&func::first_doc_paragraph(function), Span::call_site());
    let memory_mb = optional_u32(args.memory_mb);
    let timeout_secs = optional_u32(args.timeout_secs);
    let forward = match &args.forward {
        Some(queue) => quote!(::core::option::Option::Some(#queue)),
        None => quote!(::core::option::Option::None),
    };
    let queues = &args.queues;
    let erase = quote_spanned!(span=> ::switchboard::__private::erase(#ident));
    let file = quote_spanned!(span=> ::core::file!());
    let line = quote_spanned!(span=> ::core::line!());
    // `#[cfg]`s written below the attribute may remove the function after this
    // expansion: the registration goes with it.
    let cfgs = function
        .attrs
        .iter()
        .filter(|attr| attr.path().is_ident("cfg"));
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
                    },
                    doc: #doc,
                    handler: __switchboard_handler,
                }
            }
        };
    }
}

/// The `const _: () = { ... };` block registering a `#[queue_consumer]`.
pub(crate) fn consumer_registration(args: &RouteArgs, function: &ItemFn) -> TokenStream {
    let ident = &function.sig.ident;
    let span = ident.span();
    let queue = &args.key;
    let name = LitStr::new(&ident.unraw().to_string(), span);
    let doc = LitStr::new(&func::first_doc_paragraph(function), Span::call_site());
    let memory_mb = optional_u32(args.memory_mb);
    let timeout_secs = optional_u32(args.timeout_secs);
    let batch_size = optional_u32(args.batch_size);
    let erase = quote_spanned!(span=> ::switchboard::__private::erase_consumer(#ident));
    let file = quote_spanned!(span=> ::core::file!());
    let line = quote_spanned!(span=> ::core::line!());
    let cfgs = function
        .attrs
        .iter()
        .filter(|attr| attr.path().is_ident("cfg"));
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
        };
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
                        },
                        doc: "Relays a chat line.",
                        handler: __switchboard_handler,
                    }
                }
            };
        };
        assert_eq!(normalize(&output), normalize(&expected));
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
    }
}

//! Checks on the annotated function, and reading its doc comment.

use syn::{Attribute, Expr, ExprLit, FnArg, ItemFn, Lit, Meta, MetaNameValue, Signature};

use crate::attr::Kind;
use crate::errors::Errors;

/// Checks that the function can be a route handler: a free, non-generic `async fn` that
/// is not `const`, `unsafe`, `extern` or variadic.
///
/// Every problem is reported, each on the offending token.
pub(crate) fn check_signature(kind: Kind, sig: &Signature) -> syn::Result<()> {
    let attr = kind.attr_name();
    let name = &sig.ident;
    let mut errors = Errors::default();
    if let Some(constness) = &sig.constness {
        errors.spanned(
            constness,
            format!("`#[{attr}]` handlers cannot be `const fn`: remove `const`"),
        );
    }
    if sig.asyncness.is_none() {
        errors.spanned(
            sig.fn_token,
            format!(
                "`#[{attr}]` handlers must be async: write `async fn {name}` instead of `fn {name}`"
            ),
        );
    }
    if let Some(unsafety) = &sig.unsafety {
        errors.spanned(
            unsafety,
            format!("`#[{attr}]` handlers cannot be `unsafe fn`: remove `unsafe`"),
        );
    }
    if let Some(abi) = &sig.abi {
        errors.spanned(
            abi,
            format!("`#[{attr}]` handlers cannot be `extern` functions: remove the ABI"),
        );
    }
    if !sig.generics.params.is_empty() {
        errors.spanned(
            &sig.generics,
            format!(
                "`#[{attr}]` handlers cannot be generic: the registry needs one concrete function per route; remove the generic parameters"
            ),
        );
    }
    if let Some(where_clause) = &sig.generics.where_clause {
        errors.spanned(
            where_clause,
            format!("`#[{attr}]` handlers cannot have a `where` clause: remove it"),
        );
    }
    for input in &sig.inputs {
        if let FnArg::Receiver(receiver) = input {
            errors.spanned(
                receiver,
                format!(
                    "`#[{attr}]` handlers must be free functions, not methods: remove the `self` receiver"
                ),
            );
        }
    }
    if let Some(variadic) = &sig.variadic {
        errors.spanned(
            variadic,
            format!("`#[{attr}]` handlers cannot be variadic: remove the `...`"),
        );
    }
    errors.finish(())
}

/// The first paragraph of the function's doc comment (`///` or `/** */`), each line
/// trimmed and the lines joined with single spaces; empty without a doc comment.
///
/// `#[doc = ...]` attributes whose value is not a string literal (e.g. `include_str!`)
/// are skipped.
pub(crate) fn first_doc_paragraph(item: &ItemFn) -> String {
    doc_paragraph(&item.attrs)
}

/// [`first_doc_paragraph`] over any list of attributes.
pub(crate) fn doc_paragraph(attrs: &[Attribute]) -> String {
    let mut lines: Vec<String> = Vec::new();
    for attr in attrs {
        if let Meta::NameValue(MetaNameValue {
            path,
            value: Expr::Lit(ExprLit {
                lit: Lit::Str(doc), ..
            }),
            ..
        }) = &attr.meta
            && path.is_ident("doc")
        {
            lines.extend(doc_lines(&doc.value()));
        }
    }
    let paragraph: Vec<&str> = lines
        .iter()
        .map(|line| line.trim())
        .skip_while(|line| line.is_empty())
        .take_while(|line| !line.is_empty())
        .collect();
    paragraph.join(" ")
}

/// The lines of one doc attribute. A block comment (`/** ... */`, several lines in one
/// attribute) has its ` * ` line prefixes removed when every line has one.
fn doc_lines(doc: &str) -> Vec<String> {
    // Not `str::lines`: an empty `///` line is an empty string, which must stay a
    // (blank) line to end the paragraph.
    let lines: Vec<&str> = doc
        .split('\n')
        .map(|line| line.strip_suffix('\r').unwrap_or(line))
        .collect();
    if lines.len() <= 1 {
        return lines.into_iter().map(str::to_owned).collect();
    }
    // The first line follows `/**` directly; only the others may carry a ` * ` prefix.
    let starred = lines[1..]
        .iter()
        .map(|line| line.trim_start())
        .filter(|line| !line.is_empty())
        .all(|line| line.starts_with('*'));
    lines
        .iter()
        .enumerate()
        .map(|(i, line)| {
            let trimmed = line.trim_start();
            if starred && i > 0 {
                trimmed.strip_prefix('*').unwrap_or(trimmed).to_owned()
            } else {
                (*line).to_owned()
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use syn::parse_quote;

    fn errors(item: ItemFn) -> Vec<String> {
        check_signature(Kind::Route, &item.sig)
            .unwrap_err()
            .into_iter()
            .map(|e| e.to_string())
            .collect()
    }

    #[test]
    fn accepts_async_fns() {
        let item: ItemFn = parse_quote! {
            pub async fn send(ctx: Ctx, Json(msg): Json<Msg>) -> Result<(), WsError> { Ok(()) }
        };
        check_signature(Kind::Route, &item.sig).unwrap();
        let item: ItemFn = parse_quote!(
            async fn bare() {}
        );
        check_signature(Kind::Connect, &item.sig).unwrap();
    }

    #[test]
    fn not_async() {
        assert_eq!(
            errors(parse_quote!(
                fn send() {}
            )),
            ["`#[ws_route]` handlers must be async: write `async fn send` instead of `fn send`"]
        );
    }

    #[test]
    fn generic() {
        assert_eq!(
            errors(parse_quote!(
                async fn send<T: Clone>(x: T) {}
            )),
            [
                "`#[ws_route]` handlers cannot be generic: the registry needs one concrete function per route; remove the generic parameters"
            ]
        );
        assert_eq!(
            errors(parse_quote!(
                async fn send()
                where
                    (): Sized,
                {
                }
            )),
            ["`#[ws_route]` handlers cannot have a `where` clause: remove it"]
        );
    }

    #[test]
    fn receiver() {
        assert_eq!(
            errors(parse_quote!(
                async fn send(&self, ctx: Ctx) {}
            )),
            [
                "`#[ws_route]` handlers must be free functions, not methods: remove the `self` receiver"
            ]
        );
    }

    #[test]
    fn const_unsafe_extern_variadic() {
        assert_eq!(
            errors(parse_quote!(
                const unsafe extern "C" fn send(x: u32, ...) {}
            )),
            [
                "`#[ws_route]` handlers cannot be `const fn`: remove `const`",
                "`#[ws_route]` handlers must be async: write `async fn send` instead of `fn send`",
                "`#[ws_route]` handlers cannot be `unsafe fn`: remove `unsafe`",
                "`#[ws_route]` handlers cannot be `extern` functions: remove the ABI",
                "`#[ws_route]` handlers cannot be variadic: remove the `...`",
            ]
        );
    }

    #[test]
    fn collects_three_errors() {
        let messages = errors(parse_quote!(
            fn send<T>(self) {}
        ));
        assert_eq!(messages.len(), 3, "{messages:#?}");
    }

    #[test]
    fn uses_the_attribute_name() {
        let item: ItemFn = parse_quote!(
            fn gone() {}
        );
        let error = check_signature(Kind::Disconnect, &item.sig).unwrap_err();
        assert!(
            error
                .to_string()
                .starts_with("`#[ws_disconnect]` handlers must be async")
        );
    }

    #[test]
    fn doc_first_paragraph() {
        let item: ItemFn = parse_quote! {
            ///
            ///   Relays a chat line
            /// to everyone in a room.
            ///
            /// Second paragraph.
            #[allow(unused)]
            async fn send() {}
        };
        assert_eq!(
            first_doc_paragraph(&item),
            "Relays a chat line to everyone in a room."
        );
    }

    #[test]
    fn doc_absent_or_not_literal() {
        let item: ItemFn = parse_quote! {
            #[inline]
            async fn send() {}
        };
        assert_eq!(first_doc_paragraph(&item), "");
        let item: ItemFn = parse_quote! {
            #[doc = include_str!("x.md")]
            /// Literal.
            async fn send() {}
        };
        assert_eq!(first_doc_paragraph(&item), "Literal.");
    }

    #[test]
    fn doc_block_comment() {
        let item: ItemFn = parse_quote! {
            /** Joins a room.
             * Everyone is told.
             *
             * Details.
             */
            async fn join() {}
        };
        assert_eq!(
            first_doc_paragraph(&item),
            "Joins a room. Everyone is told."
        );
        let item: ItemFn = parse_quote! {
            /**
               Leaves a room.

               Details.
            */
            async fn leave() {}
        };
        assert_eq!(first_doc_paragraph(&item), "Leaves a room.");
    }

    #[test]
    fn doc_keeps_markdown_lists_in_line_comments() {
        let item: ItemFn = parse_quote! {
            /// * first
            /// * second
            async fn list() {}
        };
        assert_eq!(first_doc_paragraph(&item), "* first * second");
    }
}

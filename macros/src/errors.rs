//! Collecting several compile errors so that all of them are reported at once.

use std::fmt::Display;

use proc_macro2::Span;
use quote::ToTokens;

/// An accumulator of [`syn::Error`]s, combined with [`syn::Error::combine`].
///
/// Validation code pushes every problem it finds instead of stopping at the first one,
/// so the user sees all of them in one compile.
#[derive(Default)]
pub(crate) struct Errors {
    inner: Option<syn::Error>,
}

impl Errors {
    /// Adds an error (which may itself already hold several).
    pub(crate) fn push(&mut self, error: syn::Error) {
        match &mut self.inner {
            Some(existing) => existing.combine(error),
            None => self.inner = Some(error),
        }
    }

    /// Adds an error pointing at `span`.
    pub(crate) fn at(&mut self, span: Span, message: impl Display) {
        self.push(syn::Error::new(span, message));
    }

    /// Adds an error pointing at the tokens of `tokens` (first to last token).
    pub(crate) fn spanned(&mut self, tokens: impl ToTokens, message: impl Display) {
        self.push(syn::Error::new_spanned(tokens, message));
    }

    /// Adds the error of `result`, if any, and returns its value otherwise.
    pub(crate) fn take<T>(&mut self, result: syn::Result<T>) -> Option<T> {
        match result {
            Ok(value) => Some(value),
            Err(error) => {
                self.push(error);
                None
            }
        }
    }

    /// `Ok(value)` if nothing was pushed, the combined error otherwise.
    pub(crate) fn finish<T>(self, value: T) -> syn::Result<T> {
        match self.inner {
            Some(error) => Err(error),
            None => Ok(value),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_is_ok() {
        assert_eq!(Errors::default().finish(3).unwrap(), 3);
    }

    #[test]
    fn combines_everything_in_order() {
        let mut errors = Errors::default();
        errors.at(Span::call_site(), "first");
        errors.push(syn::Error::new(Span::call_site(), "second"));
        assert_eq!(errors.take(Ok::<_, syn::Error>(1)), Some(1));
        assert_eq!(
            errors.take::<()>(Err(syn::Error::new(Span::call_site(), "third"))),
            None
        );
        let messages: Vec<String> = errors
            .finish(())
            .unwrap_err()
            .into_iter()
            .map(|e| e.to_string())
            .collect();
        assert_eq!(messages, ["first", "second", "third"]);
    }
}

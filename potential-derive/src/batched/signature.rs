//! The potential methods a `#[batched]` block may hold, and the checks of
//! their signatures.

use proc_macro2::TokenStream;
use quote::ToTokens;
use syn::{FnArg, ImplItemFn, ReturnType, Type};

use crate::errors::Errors;
use crate::types::{first_type, named};

/// What a potential method takes after `&self`.
#[derive(Clone, Copy)]
enum Arg {
    /// `&[Token]`
    Tokens,
    /// `&[Symbol<Token>]`
    Symbols,
    /// `&[Vec<Token>]`
    Batch,
    /// `&[Vec<Symbol<Token>>]`
    BatchSymbols,
}

/// What a potential method returns inside `Result<_, PotentialError>`.
#[derive(Clone, Copy)]
enum Ret {
    F64,
    VecF64,
    Weights,
    VecWeights,
}

/// A potential method: its name, argument and return type.
pub(super) struct Method {
    pub(super) name: &'static str,
    arg: Arg,
    ret: Ret,
}

/// The methods of `Potential` that a block may write, in the trait's order.
pub(super) const METHODS: [Method; 8] = [
    Method {
        name: "complete",
        arg: Arg::Tokens,
        ret: Ret::F64,
    },
    Method {
        name: "prefix",
        arg: Arg::Tokens,
        ret: Ret::F64,
    },
    Method {
        name: "score",
        arg: Arg::Symbols,
        ret: Ret::F64,
    },
    Method {
        name: "logw_next",
        arg: Arg::Tokens,
        ret: Ret::Weights,
    },
    Method {
        name: "batch_complete",
        arg: Arg::Batch,
        ret: Ret::VecF64,
    },
    Method {
        name: "batch_prefix",
        arg: Arg::Batch,
        ret: Ret::VecF64,
    },
    Method {
        name: "batch_score",
        arg: Arg::BatchSymbols,
        ret: Ret::VecF64,
    },
    Method {
        name: "batch_logw_next",
        arg: Arg::Batch,
        ret: Ret::VecWeights,
    },
];

/// Methods of the trait that a user may write by hand in the block.
pub(super) const PROVIDED: [&str; 2] = ["vocab", "native_batch"];

impl Arg {
    fn text(self) -> &'static str {
        match self {
            Arg::Tokens => "&[Token]",
            Arg::Symbols => "&[Symbol<Token>]",
            Arg::Batch => "&[Vec<Token>]",
            Arg::BatchSymbols => "&[Vec<Symbol<Token>>]",
        }
    }

    fn name(self) -> &'static str {
        match self {
            Arg::Tokens | Arg::Symbols => "context",
            Arg::Batch | Arg::BatchSymbols => "contexts",
        }
    }

    fn matches(self, ty: &Type) -> bool {
        let Type::Reference(r) = ty else { return false };
        let Type::Slice(slice) = &*r.elem else {
            return false;
        };
        if r.mutability.is_some() {
            return false;
        }
        let elem = &*slice.elem;
        match self {
            Arg::Tokens => true,
            Arg::Symbols => named(elem, "Symbol").is_some(),
            Arg::Batch => named(elem, "Vec").is_some(),
            Arg::BatchSymbols => named(elem, "Vec")
                .and_then(first_type)
                .is_some_and(|t| named(t, "Symbol").is_some()),
        }
    }
}

impl Ret {
    fn text(self) -> &'static str {
        match self {
            Ret::F64 => "Result<f64, PotentialError>",
            Ret::VecF64 => "Result<Vec<f64>, PotentialError>",
            Ret::Weights => "Result<LogWeights<Token>, PotentialError>",
            Ret::VecWeights => "Result<Vec<LogWeights<Token>>, PotentialError>",
        }
    }

    fn matches(self, ty: &Type) -> bool {
        let Some(inner) = named(ty, "Result").and_then(first_type) else {
            return false;
        };
        let vec_of = |name| {
            named(inner, "Vec")
                .and_then(first_type)
                .is_some_and(|t| named(t, name).is_some())
        };
        match self {
            Ret::F64 => named(inner, "f64").is_some(),
            Ret::VecF64 => vec_of("f64"),
            Ret::Weights => named(inner, "LogWeights").is_some(),
            Ret::VecWeights => vec_of("LogWeights"),
        }
    }
}

/// The signature a method must have, as the user writes it.
pub(super) fn expected(method: &Method) -> String {
    format!(
        "async fn {}(&self, {}: {}) -> {}",
        method.name,
        method.arg.name(),
        method.arg.text(),
        method.ret.text()
    )
}

/// Checks the signature of a potential method; every problem is pushed.
pub(super) fn check_signature(method: &Method, f: &ImplItemFn, errors: &mut Errors) {
    let sig = &f.sig;
    let name = method.name;
    if sig.asyncness.is_none() {
        errors.spanned(
            sig.fn_token,
            format!(
                "`{name}` must be an `async fn`: write `{}`",
                expected(method)
            ),
        );
    }
    if !sig.generics.params.is_empty() || sig.generics.where_clause.is_some() {
        errors.spanned(
            &sig.generics,
            format!("`{name}` cannot have generic parameters"),
        );
    }
    let receiver_ok = sig.receiver().is_some_and(|r| {
        matches!(r.kind, syn::ReceiverKind::Reference(_, _, None)) && r.mutability.is_none()
    });
    if !receiver_ok {
        let at: TokenStream = match sig.inputs.first() {
            Some(first) => first.to_token_stream(),
            None => sig.ident.to_token_stream(),
        };
        errors.spanned(
            at,
            format!("`{name}` takes `&self`: write `{}`", expected(method)),
        );
    }
    let args: Vec<_> = sig
        .inputs
        .iter()
        .filter(|a| matches!(a, FnArg::Typed(_)))
        .collect();
    match args.as_slice() {
        [FnArg::Typed(arg)] => {
            if !method.arg.matches(&arg.ty) {
                errors.spanned(
                    &arg.ty,
                    format!(
                        "wrong argument type for `{name}`: expected `{}`, where `Token` is the vocabulary's token type",
                        method.arg.text()
                    ),
                );
            }
        }
        _ => errors.spanned(
            &sig.inputs,
            format!(
                "`{name}` takes one argument after `&self`: `{}: {}`",
                method.arg.name(),
                method.arg.text()
            ),
        ),
    }
    match &sig.output {
        ReturnType::Type(_, ty) if method.ret.matches(ty) => {}
        ReturnType::Type(_, ty) => {
            // The macro sees tokens, not resolved types: a type written
            // through an alias (`-> Weight`) is not recognised.
            let alias = if named(ty, "Result").is_none() && matches!(**ty, Type::Path(_)) {
                "; `#[batched]` reads the type as written and does not follow type aliases, \
                 so write it out (an alias of `Result` itself, `Result<f64>`, is fine)"
            } else {
                ""
            };
            errors.spanned(
                ty,
                format!(
                    "wrong return type for `{name}`: expected `{}`{alias}",
                    method.ret.text()
                ),
            )
        }
        ReturnType::Default => errors.spanned(
            &sig.ident,
            format!("`{name}` must return `{}`", method.ret.text()),
        ),
    }
}

/// The Levenshtein distance between two short names.
fn distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut prev = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let here = row[j + 1];
            row[j + 1] = (prev + usize::from(ca != *cb))
                .min(row[j] + 1)
                .min(here + 1);
            prev = here;
        }
    }
    row[b.len()]
}

/// The potential method a name is probably a misspelling of.
pub(super) fn near_miss(name: &str) -> Option<&'static str> {
    METHODS
        .iter()
        .map(|m| (distance(name, m.name), m.name))
        .filter(|&(d, _)| d > 0 && d <= 2)
        .min()
        .map(|(_, m)| m)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn misspellings_find_the_nearest_method() {
        assert_eq!(near_miss("batch_complet"), Some("batch_complete"));
        assert_eq!(near_miss("logw_nxt"), Some("logw_next"));
        assert_eq!(near_miss("prefx"), Some("prefix"));
        assert_eq!(near_miss("complete"), None);
        assert_eq!(near_miss("tokenize"), None);
        assert_eq!(distance("kitten", "sitting"), 3);
        assert_eq!(distance("", "abc"), 3);
    }

    #[test]
    fn argument_shapes() {
        let ty = |s: &str| syn::parse_str::<Type>(s).unwrap();
        assert!(Arg::Tokens.matches(&ty("&[u8]")));
        assert!(Arg::Tokens.matches(&ty("&'a [Vec<u8>]")));
        assert!(!Arg::Tokens.matches(&ty("Vec<u8>")));
        assert!(!Arg::Tokens.matches(&ty("&mut [u8]")));
        assert!(Arg::Symbols.matches(&ty("&[potential_core::Symbol<u8>]")));
        assert!(!Arg::Symbols.matches(&ty("&[u8]")));
        assert!(Arg::Batch.matches(&ty("&[Vec<T>]")));
        assert!(!Arg::Batch.matches(&ty("&[T]")));
        assert!(Arg::BatchSymbols.matches(&ty("&[Vec<Symbol<T>>]")));
        assert!(!Arg::BatchSymbols.matches(&ty("&[Vec<T>]")));
    }

    #[test]
    fn return_shapes() {
        let ty = |s: &str| syn::parse_str::<Type>(s).unwrap();
        assert!(Ret::F64.matches(&ty("Result<f64, PotentialError>")));
        assert!(Ret::F64.matches(&ty("potential_core::Result<f64>")));
        assert!(!Ret::F64.matches(&ty("f64")));
        assert!(!Ret::F64.matches(&ty("Result<f32, PotentialError>")));
        assert!(Ret::VecF64.matches(&ty("Result<Vec<f64>, E>")));
        assert!(!Ret::VecF64.matches(&ty("Result<f64, E>")));
        assert!(Ret::Weights.matches(&ty("Result<LogWeights<u8>, E>")));
        assert!(Ret::VecWeights.matches(&ty("Result<Vec<LogWeights<u8>>, E>")));
        assert!(!Ret::VecWeights.matches(&ty("Result<Vec<f64>, E>")));
    }
}

//! `#[batched]`: turns the inherent impl block of a derived potential into
//! its `Potential` impl, checking every potential method's signature.

use proc_macro2::{Span, TokenStream};
use quote::{ToTokens, format_ident, quote};
use syn::{FnArg, ImplItem, ImplItemFn, ItemImpl, LitStr, ReturnType, Type, Visibility};

use crate::crate_path::core_path;
use crate::errors::Errors;

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

struct Method {
    name: &'static str,
    arg: Arg,
    ret: Ret,
}

const METHODS: [Method; 8] = [
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
const PROVIDED: [&str; 2] = ["vocab", "native_batch"];

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

/// The last path segment of `ty` when its name is `name`.
fn named<'a>(ty: &'a Type, name: &str) -> Option<&'a syn::PathSegment> {
    match ty {
        Type::Path(p) if p.qself.is_none() => p.path.segments.last().filter(|s| s.ident == name),
        Type::Group(g) => named(&g.elem, name),
        Type::Paren(p) => named(&p.elem, name),
        _ => None,
    }
}

/// The first type argument of a path segment: `T` in `Vec<T>`.
fn first_type(segment: &syn::PathSegment) -> Option<&Type> {
    match &segment.arguments {
        syn::PathArguments::AngleBracketed(args) => args.args.iter().find_map(|a| match a {
            syn::GenericArgument::Type(t) => Some(t),
            _ => None,
        }),
        _ => None,
    }
}

fn expected(method: &Method) -> String {
    format!(
        "async fn {}(&self, {}: {}) -> {}",
        method.name,
        method.arg.name(),
        method.arg.text(),
        method.ret.text()
    )
}

/// Checks the signature of a potential method; every problem is pushed.
fn check_signature(method: &Method, f: &ImplItemFn, errors: &mut Errors) {
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
        ReturnType::Type(_, ty) => errors.spanned(
            ty,
            format!(
                "wrong return type for `{name}`: expected `{}`",
                method.ret.text()
            ),
        ),
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
fn near_miss(name: &str) -> Option<&'static str> {
    METHODS
        .iter()
        .map(|m| (distance(name, m.name), m.name))
        .filter(|&(d, _)| d > 0 && d <= 2)
        .min()
        .map(|(_, m)| m)
}

fn parse_args(args: TokenStream, errors: &mut Errors) -> Option<syn::Path> {
    let mut krate = None;
    let parser = syn::meta::parser(|meta| {
        if meta.path.is_ident("crate") {
            let path: LitStr = meta.value()?.parse()?;
            krate = Some(path.parse()?);
            Ok(())
        } else {
            Err(meta.error("unknown `#[batched]` option; expected `crate = \"path\"` or nothing"))
        }
    });
    if let Err(e) = syn::parse::Parser::parse2(parser, args) {
        errors.push(e);
    }
    krate
}

/// Moves a user's batch form into the trait impl, rejecting empty batches
/// before the user's body runs.
fn guard_empty_batch(core: &TokenStream, name: &str, f: &mut ImplItemFn) {
    let Some(FnArg::Typed(arg)) = f
        .sig
        .inputs
        .iter_mut()
        .find(|a| matches!(a, FnArg::Typed(_)))
    else {
        return;
    };
    // Mixed-site hygiene: the user's body cannot see this name.
    let contexts = syn::Ident::new("__potential_contexts", Span::mixed_site());
    let pattern = std::mem::replace(&mut *arg.pat, syn::parse_quote!(#contexts));
    let stmts = &f.block.stmts;
    f.block = syn::parse_quote!({
        #core::non_empty(#name, #contexts)?;
        let #pattern = #contexts;
        #(#stmts)*
    });
}

pub(crate) fn expand(args: TokenStream, item: TokenStream) -> TokenStream {
    let mut errors = Errors::default();
    let krate = parse_args(args, &mut errors);
    let core = core_path(krate);
    let block: ItemImpl = match syn::parse2(item.clone()) {
        Ok(block) => block,
        Err(e) => {
            let e = syn::Error::new(
                e.span(),
                format!(
                    "{e}; `#[batched]` goes on the `impl` block that holds a potential's methods"
                ),
            )
            .into_compile_error();
            return quote!(#item #e);
        }
    };
    if let Some((path, _)) = &block.trait_ {
        errors.spanned(
            path,
            "`#[batched]` goes on the inherent impl block (`impl Name { ... }`) and writes the `Potential` impl itself",
        );
        let e = errors.finish().err().map(syn::Error::into_compile_error);
        return quote!(#item #e);
    }

    let mut written = [false; METHODS.len()];
    let mut potential_items = Vec::new();
    let mut inherent_items = Vec::new();
    let mut user_native_batch = false;
    let mut user_vocab = false;
    let mut misspelt = Vec::new();
    for impl_item in &block.items {
        let ImplItem::Fn(f) = impl_item else {
            inherent_items.push(impl_item.clone());
            continue;
        };
        let name = f.sig.ident.to_string();
        if let Some(i) = METHODS.iter().position(|m| m.name == name) {
            written[i] = true;
            check_signature(&METHODS[i], f, &mut errors);
            let mut f = f.clone();
            f.vis = Visibility::Inherited;
            if name.starts_with("batch_") {
                guard_empty_batch(&core, &name, &mut f);
            }
            potential_items.push(ImplItem::Fn(f));
        } else if PROVIDED.contains(&name.as_str()) {
            user_native_batch |= name == "native_batch";
            user_vocab |= name == "vocab";
            let mut f = f.clone();
            f.vis = Visibility::Inherited;
            potential_items.push(ImplItem::Fn(f));
        } else {
            if f.sig.asyncness.is_some()
                && let Some(hint) = near_miss(&name)
            {
                misspelt.push(hint);
                errors.spanned(
                    &f.sig.ident,
                    format!(
                        "`{name}` is not a potential method; did you mean `{hint}`? \
                         (rename it if it is a helper of your own)"
                    ),
                );
            }
            inherent_items.push(impl_item.clone());
        }
    }
    for required in ["complete", "prefix"] {
        let i = METHODS
            .iter()
            .position(|m| m.name == required)
            .unwrap_or_default();
        if !written[i] && !misspelt.contains(&required) {
            errors.spanned(
                &block.self_ty,
                format!(
                    "`#[batched]` impl is missing `{required}`, which every potential needs: `{}`",
                    expected(&METHODS[i])
                ),
            );
        }
    }

    let self_ty = &block.self_ty;
    let (impl_g, _, where_clause) = block.generics.split_for_impl();
    let predicates: Vec<_> = where_clause.iter().flat_map(|w| &w.predicates).collect();
    // A higher-ranked bound, never false at the definition: a potential
    // that is not `Send + Sync` gets one error, from the derive's check,
    // instead of the trait solver's.
    let where_tokens = quote! {
        where
            #(#predicates,)*
            for<'__potential> #self_ty: ::core::marker::Send + ::core::marker::Sync,
    };
    let header = quote! {
        #[automatically_derived]
        impl #impl_g #core::Potential for #self_ty #where_tokens
    };
    let token = quote! {
        type Token = <Self as #core::__private::Derived>::Token;
    };
    let vocab = (!user_vocab).then(|| {
        quote! {
            #[inline]
            fn vocab(&self) -> &#core::Vocab<Self::Token> {
                #core::__private::Derived::vocab(self)
            }
        }
    });

    if let Err(e) = errors.finish() {
        // tokio-macros style: keep the user's block as written (so IDEs
        // keep working), plus a stand-in `Potential` impl so that uses of
        // the type add no errors of their own.
        let e = e.into_compile_error();
        let stand_in = ["complete", "prefix"].map(|m| {
            let m = format_ident!("{m}");
            quote! {
                fn #m(&self, _: &[Self::Token])
                    -> impl ::core::future::Future<Output = #core::Result<f64>> + ::core::marker::Send {
                    ::core::future::pending()
                }
            }
        });
        return quote! {
            #item
            #e
            #header { #token #vocab #(#stand_in)* }
        };
    }

    let native = (!user_native_batch).then(|| {
        let [complete, prefix, score, logw_next] = [4, 5, 6, 7].map(|i| written[i]);
        quote! {
            #[inline]
            fn native_batch(&self) -> #core::NativeBatch {
                #core::NativeBatch { complete: #complete, prefix: #prefix, score: #score, logw_next: #logw_next }
            }
        }
    });
    let attrs = &block.attrs;
    let inherent = (!inherent_items.is_empty()).then(|| {
        quote! {
            #(#attrs)*
            impl #impl_g #self_ty #where_clause {
                #(#inherent_items)*
            }
        }
    });
    quote! {
        #inherent
        #header {
            #token
            #vocab
            #native
            #(#potential_items)*
        }
    }
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

    #[test]
    fn expansion_moves_potential_methods_and_keeps_helpers() {
        let item = quote! {
            impl Length {
                pub async fn complete(&self, c: &[u8]) -> Result<f64, E> { Ok(0.0) }
                async fn prefix(&self, c: &[u8]) -> Result<f64, E> { Ok(0.0) }
                async fn batch_prefix(&self, cs: &[Vec<u8>]) -> Result<Vec<f64>, E> { Ok(vec![]) }
                fn helper(&self) -> usize { 1 }
            }
        };
        let out = expand(TokenStream::new(), item);
        let file: syn::File = syn::parse2(out).unwrap();
        let [syn::Item::Impl(inherent), syn::Item::Impl(potential)] = &file.items[..] else {
            panic!("expected two impls, got {}", file.items.len());
        };
        assert!(inherent.trait_.is_none());
        assert_eq!(inherent.items.len(), 1);
        assert!(potential.trait_.is_some());
        let names: Vec<String> = potential
            .items
            .iter()
            .filter_map(|i| match i {
                ImplItem::Fn(f) => Some(f.sig.ident.to_string()),
                _ => None,
            })
            .collect();
        assert_eq!(
            names,
            [
                "vocab",
                "native_batch",
                "complete",
                "prefix",
                "batch_prefix"
            ]
        );
        let text = quote!(#potential).to_string();
        assert!(text.contains("prefix : true"), "{text}");
        assert!(text.contains("non_empty (\"batch_prefix\""), "{text}");
    }
}

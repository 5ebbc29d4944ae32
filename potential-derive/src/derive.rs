//! `#[derive(Potential)]`: the vocabulary wiring, the spawn registration
//! and the compile-time checks of a potential struct.

use proc_macro2::{TokenStream, TokenTree};
use quote::{ToTokens, quote, quote_spanned};
use syn::spanned::Spanned;
use syn::{Data, DeriveInput, Ident, LitStr, Type};

use crate::crate_path::core_path;
use crate::errors::Errors;

/// The options of `#[potential(...)]` on the struct.
#[derive(Default)]
struct StructOptions {
    token: Option<Type>,
    tag: Option<LitStr>,
    local: bool,
    krate: Option<syn::Path>,
}

const STRUCT_OPTIONS: &str =
    "expected `token = Type`, `tag = \"...\"`, `local` or `crate = \"path\"`";

fn struct_options(input: &DeriveInput, errors: &mut Errors) -> StructOptions {
    let mut options = StructOptions::default();
    for attr in input
        .attrs
        .iter()
        .filter(|a| a.path().is_ident("potential"))
    {
        let parsed = attr.parse_nested_meta(|meta| {
            if meta.path.is_ident("token") {
                options.token = Some(meta.value()?.parse()?);
            } else if meta.path.is_ident("tag") {
                let tag: LitStr = meta.value()?.parse()?;
                if tag.value().is_empty() {
                    return Err(syn::Error::new_spanned(
                        tag,
                        "a potential's tag cannot be empty",
                    ));
                }
                options.tag = Some(tag);
            } else if meta.path.is_ident("local") {
                options.local = true;
            } else if meta.path.is_ident("crate") {
                let path: LitStr = meta.value()?.parse()?;
                options.krate = Some(path.parse()?);
            } else if meta.path.is_ident("vocab") {
                return Err(meta.error(
                    "`vocab` marks a field: put `#[potential(vocab)]` on the vocabulary field",
                ));
            } else {
                let name = meta.path.to_token_stream().to_string().replace(' ', "");
                return Err(meta.error(format!(
                    "unknown `#[potential]` option `{name}`; {STRUCT_OPTIONS}"
                )));
            }
            Ok(())
        });
        if let Err(e) = parsed {
            errors.push(e);
        }
    }
    options
}

/// Whether a field carries `#[potential(vocab)]`; reports unknown options.
fn is_marked_vocab<'a>(field: &'a syn::Field, errors: &mut Errors) -> Option<&'a syn::Attribute> {
    let mut marked = None;
    for attr in field
        .attrs
        .iter()
        .filter(|a| a.path().is_ident("potential"))
    {
        let parsed = attr.parse_nested_meta(|meta| {
            if meta.path.is_ident("vocab") {
                marked = Some(attr);
                Ok(())
            } else {
                let name = meta.path.to_token_stream().to_string().replace(' ', "");
                Err(meta.error(format!(
                    "unknown `#[potential]` field option `{name}`; expected `vocab`"
                )))
            }
        });
        if let Err(e) = parsed {
            errors.push(e);
        }
    }
    marked
}

/// `T` when `ty` is written `Vocab<T>` (any path ending in `Vocab`).
fn vocab_token(ty: &Type) -> Option<Option<&Type>> {
    let Type::Path(path) = ty else { return None };
    let last = path.path.segments.last()?;
    if last.ident != "Vocab" {
        return None;
    }
    Some(match &last.arguments {
        syn::PathArguments::AngleBracketed(args) => args.args.iter().find_map(|a| match a {
            syn::GenericArgument::Type(t) => Some(t),
            _ => None,
        }),
        _ => None,
    })
}

/// Whether `tokens` mention one of `names` (the struct's type parameters).
fn mentions(tokens: TokenStream, names: &[&Ident]) -> bool {
    tokens.into_iter().any(|tt| match tt {
        TokenTree::Ident(i) => names.iter().any(|n| **n == i),
        TokenTree::Group(g) => mentions(g.stream(), names),
        _ => false,
    })
}

/// Whether serde leaves the field out of the struct's serde form
/// (`#[serde(skip)]`), so that it needs no serde impl of its own.
fn serde_skipped(field: &syn::Field) -> bool {
    field.attrs.iter().any(|attr| {
        attr.path().is_ident("serde")
            && matches!(&attr.meta, syn::Meta::List(list)
                if list.tokens.clone().into_iter().any(|t| matches!(t, TokenTree::Ident(i) if i == "skip")))
    })
}

pub(crate) fn expand(input: DeriveInput) -> TokenStream {
    let mut errors = Errors::default();
    let options = struct_options(&input, &mut errors);
    let core = core_path(options.krate.clone());
    let name = &input.ident;

    let fields = match &input.data {
        Data::Struct(s) => Some(&s.fields),
        Data::Enum(e) => {
            errors.spanned(
                e.enum_token,
                "`#[derive(Potential)]` works on structs only: a potential is a struct with a vocabulary field",
            );
            None
        }
        Data::Union(u) => {
            errors.spanned(
                u.union_token,
                "`#[derive(Potential)]` works on structs only: a potential is a struct with a vocabulary field",
            );
            None
        }
    };

    // The vocabulary field: the one marked `#[potential(vocab)]`, else the
    // one field of type `Vocab<_>`.
    let mut vocab: Option<(TokenStream, &Type)> = None;
    if let Some(fields) = fields {
        let member = |i: usize, f: &syn::Field| match &f.ident {
            Some(ident) => quote!(#ident),
            None => syn::Index::from(i).into_token_stream(),
        };
        let marked: Vec<_> = fields
            .iter()
            .enumerate()
            .filter_map(|(i, f)| is_marked_vocab(f, &mut errors).map(|span| (i, f, span)))
            .collect();
        if let Some(&(i, f, _)) = marked.first() {
            vocab = Some((member(i, f), &f.ty));
            for &(_, _, attr) in &marked[1..] {
                errors.spanned(
                    attr,
                    "a potential has one vocabulary: `#[potential(vocab)]` is already on another field",
                );
            }
        } else {
            let typed: Vec<_> = fields
                .iter()
                .enumerate()
                .filter(|(_, f)| vocab_token(&f.ty).is_some())
                .collect();
            match typed.as_slice() {
                [(i, f)] => vocab = Some((member(*i, f), &f.ty)),
                [] => errors.spanned(
                    name,
                    format!(
                        "`{name}` has no vocabulary field: add a field of type `Vocab<Token>`, \
                         or mark the field that holds it `#[potential(vocab)]`"
                    ),
                ),
                [_, rest @ ..] => {
                    for (_, f) in rest {
                        errors.spanned(
                            &f.ty,
                            "several fields have type `Vocab<_>`: mark the potential's vocabulary `#[potential(vocab)]`",
                        );
                    }
                }
            }
        }
    }

    let token = match (&options.token, &vocab) {
        (Some(token), _) => Some(token.clone()),
        (None, Some((_, ty))) => match vocab_token(ty) {
            Some(Some(t)) => Some(t.clone()),
            _ => {
                errors.spanned(
                    ty,
                    "cannot tell the token type from this field's type: add `#[potential(token = Type)]` to the struct",
                );
                None
            }
        },
        (None, None) => None,
    };

    let generic = input.generics.params.iter().next().is_some();
    if generic && let Some(tag) = &options.tag {
        errors.spanned(
            tag,
            "a tag names one type, and a generic potential is registered once per instantiation \
             (`potential_core::register!(Name<u8>)`) under its type name: remove the tag",
        );
    }
    if options.local
        && let Some(tag) = &options.tag
    {
        errors.spanned(
            tag,
            "a `local` potential is never sent to a worker, so it has no tag: remove one of the two",
        );
    }

    let (impl_g, ty_g, where_clause) = input.generics.split_for_impl();
    let predicates: Vec<_> = where_clause.iter().flat_map(|w| &w.predicates).collect();
    let predicates = quote!(#(#predicates,)*);
    let this = quote!(#name #ty_g);

    let derived = match (&token, vocab) {
        (Some(token), Some((member, _))) => quote! {
            #[automatically_derived]
            impl #impl_g #core::__private::Derived for #this
            where
                #predicates
                #token: #core::TokenType,
            {
                type Token = #token;
                #[inline]
                fn vocab(&self) -> &#core::Vocab<#token> {
                    &self.#member
                }
            }
        },
        _ => TokenStream::new(),
    };

    if let Err(e) = errors.finish() {
        let e = e.into_compile_error();
        // The `Derived` impl (when the vocabulary was found) keeps
        // `#[batched]` from adding errors of its own.
        return quote! { #e const _: () = { #derived }; };
    }

    let mut checks = Vec::new();
    if !generic {
        checks.push(quote_spanned! {name.span()=>
            #core::__private::assert_thread_safe::<#name>();
        });
    }
    let mut registration = TokenStream::new();
    if !options.local {
        // Fields whose type involves a type parameter are checked when the
        // instantiation is registered.
        let params: Vec<&Ident> = input.generics.type_params().map(|p| &p.ident).collect();
        for field in fields.into_iter().flatten() {
            let ty = &field.ty;
            if !mentions(ty.to_token_stream(), &params) && !serde_skipped(field) {
                checks.push(quote_spanned! {ty.span()=>
                    #core::__private::assert_recipe_field::<#ty>();
                });
            }
        }
        let tag = options.tag.as_ref().map(|tag| {
            quote! {
                fn tag() -> &'static str {
                    #tag
                }
            }
        });
        // The higher-ranked bound leaves the impl out, instead of failing,
        // when the struct misses a requirement; the checks above and the
        // registration below then report it once, in our words.
        registration.extend(quote! {
            #[automatically_derived]
            impl #impl_g #core::Registered for #this
            where
                #predicates
                for<'__potential> #this: #core::__private::RegistrationBounds,
            {
                #tag
            }
        });
        if !generic {
            registration.extend(quote_spanned! {name.span()=>
                #core::__private::inventory::submit! {
                    #core::__private::registration::<#name>()
                }
            });
        }
    }
    let check_fn = if checks.is_empty() {
        TokenStream::new()
    } else {
        quote! {
            #[allow(dead_code)]
            fn __potential_checks #impl_g () where #predicates {
                #(#checks)*
            }
        }
    };

    quote! {
        const _: () = {
            #derived
            #registration
            #check_fn
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proc_macro2::Span;

    #[test]
    fn the_token_type_is_read_from_vocab_fields() {
        let ty = |s: &str| syn::parse_str::<Type>(s).unwrap();
        let token = |s: &str| vocab_token(&ty(s)).map(|t| t.map(|t| quote!(#t).to_string()));
        assert_eq!(token("Vocab<u8>"), Some(Some("u8".into())));
        assert_eq!(
            token("potential_core::Vocab<String>"),
            Some(Some("String".into()))
        );
        assert_eq!(token("Vocab"), Some(None));
        assert_eq!(token("Vec<u8>"), None);
    }

    #[test]
    fn type_parameters_are_found_inside_types() {
        let (t, w) = (
            Ident::new("T", Span::call_site()),
            Ident::new("W", Span::call_site()),
        );
        assert!(mentions(quote!(Vec<Option<T>>), &[&t]));
        assert!(!mentions(quote!(Vec<Option<u8>>), &[&t, &w]));
    }

    #[test]
    fn serde_skip_is_seen() {
        let fields: syn::FieldsNamed =
            syn::parse_quote!({ #[serde(skip)] a: u8, #[serde(rename = "x")] b: u8 });
        let skipped: Vec<bool> = fields.named.iter().map(serde_skipped).collect();
        assert_eq!(skipped, [true, false]);
    }

    #[test]
    fn errors_are_all_reported_and_unit_structs_have_no_vocabulary() {
        let input: DeriveInput = syn::parse_quote! {
            #[potential(nonsense, token = u8)]
            struct Unit;
        };
        let out = expand(input).to_string();
        assert!(
            out.contains("unknown `#[potential]` option `nonsense`"),
            "{out}"
        );
        assert!(out.contains("has no vocabulary field"), "{out}");
    }
}

//! Code generation from a checked [`PotentialStruct`]: pure `quote!`.

use proc_macro2::TokenStream;
use quote::{ToTokens, quote, quote_spanned};
use syn::spanned::Spanned;

use super::parse::{PotentialStruct, mentions, serde_skipped};

/// The pieces of the struct's header that every generated impl repeats.
struct Header {
    impl_g: TokenStream,
    predicates: TokenStream,
    this: TokenStream,
}

impl Header {
    fn of(model: &PotentialStruct<'_>) -> Header {
        let (impl_g, ty_g, where_clause) = model.input.generics.split_for_impl();
        let predicates: Vec<_> = where_clause.iter().flat_map(|w| &w.predicates).collect();
        let name = &model.input.ident;
        Header {
            impl_g: impl_g.to_token_stream(),
            predicates: quote!(#(#predicates,)*),
            this: quote!(#name #ty_g),
        }
    }
}

/// The `Derived` impl (token type and vocabulary) that `#[batched]`
/// reads; empty when either is unknown.
pub(super) fn derived(model: &PotentialStruct<'_>, core: &TokenStream) -> TokenStream {
    let (Some(token), Some((member, _))) = (&model.token, &model.vocab) else {
        return TokenStream::new();
    };
    let Header {
        impl_g,
        predicates,
        this,
    } = Header::of(model);
    quote! {
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
    }
}

/// The output when the struct has errors: the errors, and the `Derived`
/// impl (when the vocabulary was found), which keeps `#[batched]` from
/// adding errors of its own.
pub(super) fn fallback(errors: syn::Error, derived: TokenStream) -> TokenStream {
    let e = errors.into_compile_error();
    quote! { #e const _: () = { #derived }; }
}

/// The output for a checked struct: `Derived`, the registration and the
/// compile-time checks.
pub(super) fn expand(
    model: &PotentialStruct<'_>,
    core: &TokenStream,
    derived: TokenStream,
) -> TokenStream {
    let header = Header::of(model);
    let mut checks = thread_safety_checks(model, core);
    let registration = if model.options.local {
        TokenStream::new()
    } else {
        checks.extend(recipe_field_checks(model, core));
        registration(model, core, &header)
    };
    let Header {
        impl_g, predicates, ..
    } = header;
    let check_fn = (!checks.is_empty()).then(|| {
        quote! {
            #[allow(dead_code)]
            fn __potential_checks #impl_g () where #predicates {
                #(#checks)*
            }
        }
    });
    quote! {
        const _: () = {
            #derived
            #registration
            #check_fn
        };
    }
}

/// A check per field that the potential's threads share, spanned at the
/// field so that the error points at it. Fields whose type involves a
/// type parameter are checked where the potential is used.
fn thread_safety_checks(model: &PotentialStruct<'_>, core: &TokenStream) -> Vec<TokenStream> {
    let params = model.type_params();
    model
        .fields
        .into_iter()
        .flatten()
        .filter(|field| !mentions(field.ty.to_token_stream(), &params))
        .map(|field| {
            let ty = &field.ty;
            quote_spanned! {field.span()=>
                #core::__private::assert_thread_safe_field::<#ty>();
            }
        })
        .collect()
}

/// A check per field that must travel in the recipe. Fields whose type
/// involves a type parameter are checked when the instantiation is
/// registered; `#[serde(skip)]` fields do not travel.
fn recipe_field_checks(model: &PotentialStruct<'_>, core: &TokenStream) -> Vec<TokenStream> {
    let params = model.type_params();
    model
        .fields
        .into_iter()
        .flatten()
        .filter(|field| !mentions(field.ty.to_token_stream(), &params) && !serde_skipped(field))
        .map(|field| {
            let ty = &field.ty;
            quote_spanned! {field.span()=>
                #core::__private::assert_recipe_field::<#ty>();
            }
        })
        .collect()
}

/// The `Registered` impl, and the registration of a non-generic struct.
fn registration(model: &PotentialStruct<'_>, core: &TokenStream, header: &Header) -> TokenStream {
    let Header {
        impl_g,
        predicates,
        this,
    } = header;
    let tag = model.options.tag.as_ref().map(|tag| {
        quote! {
            fn tag() -> &'static str {
                #tag
            }
        }
    });
    // The higher-ranked bound leaves the impl out, instead of failing,
    // when the struct misses a requirement; the checks and the
    // registration then report it once, in our words.
    let mut registration = quote! {
        #[automatically_derived]
        impl #impl_g #core::Registered for #this
        where
            #predicates
            for<'__potential> #this: #core::__private::RegistrationBounds,
        {
            #tag
        }
    };
    if !model.is_generic() {
        let name = &model.input.ident;
        registration.extend(quote_spanned! {name.span()=>
            #core::__private::inventory::submit! {
                #core::__private::registration::<#name>()
            }
        });
    }
    registration
}

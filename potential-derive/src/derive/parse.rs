//! Parsing and checking a potential struct into [`PotentialStruct`]: the
//! typed model that codegen reads. Every misuse is pushed to the errors,
//! in the order of the struct's text.

use proc_macro2::{TokenStream, TokenTree};
use quote::{ToTokens, quote};
use syn::{Data, DeriveInput, Fields, Ident, LitStr, Type};

use crate::errors::Errors;
use crate::types::vocab_token;

/// A `#[derive(Potential)]` struct, as far as it could be read.
pub(super) struct PotentialStruct<'a> {
    pub(super) input: &'a DeriveInput,
    pub(super) options: StructOptions,
    /// The fields; `None` for an enum or a union.
    pub(super) fields: Option<&'a Fields>,
    /// The vocabulary field: its member (`vocab`, or `0` in a tuple
    /// struct) and its type.
    pub(super) vocab: Option<(TokenStream, &'a Type)>,
    /// The token type: the `token` option, else the vocabulary's argument.
    pub(super) token: Option<Type>,
}

impl<'a> PotentialStruct<'a> {
    /// Reads the options, the fields, the vocabulary field and the token type.
    pub(super) fn from_syn(input: &'a DeriveInput, errors: &mut Errors) -> Self {
        let options = struct_options(input, errors);
        let fields = struct_fields(input, errors);
        let vocab = fields.and_then(|fields| vocab_field(&input.ident, fields, errors));
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
        PotentialStruct {
            input,
            options,
            fields,
            vocab,
            token,
        }
    }

    /// Checks the options against each other and against the struct.
    pub(super) fn validate(&self, errors: &mut Errors) {
        if self.is_generic()
            && let Some(tag) = &self.options.tag
        {
            errors.spanned(
                tag,
                "a tag names one type, and a generic potential is registered once per instantiation \
                 (`potential_core::register!(Name<u8>)`) under its type name: remove the tag",
            );
        }
        if self.options.local
            && let Some(tag) = &self.options.tag
        {
            errors.spanned(
                tag,
                "a `local` potential is never sent to a worker, so it has no tag: remove one of the two",
            );
        }
    }

    pub(super) fn is_generic(&self) -> bool {
        self.input.generics.params.iter().next().is_some()
    }

    /// The struct's type parameters.
    pub(super) fn type_params(&self) -> Vec<&'a Ident> {
        self.input
            .generics
            .type_params()
            .map(|p| &p.ident)
            .collect()
    }
}

/// The options of `#[potential(...)]` on the struct.
#[derive(Default)]
pub(super) struct StructOptions {
    pub(super) token: Option<Type>,
    pub(super) tag: Option<LitStr>,
    pub(super) local: bool,
    pub(super) krate: Option<syn::Path>,
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

/// The fields of a struct; an enum or a union is an error.
fn struct_fields<'a>(input: &'a DeriveInput, errors: &mut Errors) -> Option<&'a Fields> {
    let keyword = match &input.data {
        Data::Struct(s) => return Some(&s.fields),
        Data::Enum(e) => e.enum_token.to_token_stream(),
        Data::Union(u) => u.union_token.to_token_stream(),
    };
    errors.spanned(
        keyword,
        "`#[derive(Potential)]` works on structs only: a potential is a struct with a vocabulary field",
    );
    None
}

/// The vocabulary field: the one marked `#[potential(vocab)]`, else the
/// one field of type `Vocab<_>`.
fn vocab_field<'a>(
    name: &Ident,
    fields: &'a Fields,
    errors: &mut Errors,
) -> Option<(TokenStream, &'a Type)> {
    let member = |i: usize, f: &syn::Field| match &f.ident {
        Some(ident) => quote!(#ident),
        None => syn::Index::from(i).into_token_stream(),
    };
    let marked: Vec<_> = fields
        .iter()
        .enumerate()
        .filter_map(|(i, f)| is_marked_vocab(f, errors).map(|span| (i, f, span)))
        .collect();
    if let Some(&(i, f, _)) = marked.first() {
        for &(_, _, attr) in &marked[1..] {
            errors.spanned(
                attr,
                "a potential has one vocabulary: `#[potential(vocab)]` is already on another field",
            );
        }
        return Some((member(i, f), &f.ty));
    }
    let typed: Vec<_> = fields
        .iter()
        .enumerate()
        .filter(|(_, f)| vocab_token(&f.ty).is_some())
        .collect();
    match typed.as_slice() {
        [(i, f)] => return Some((member(*i, f), &f.ty)),
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
    None
}

/// Whether `tokens` mention one of `names` (the struct's type parameters).
pub(super) fn mentions(tokens: TokenStream, names: &[&Ident]) -> bool {
    tokens.into_iter().any(|tt| match tt {
        TokenTree::Ident(i) => names.iter().any(|n| **n == i),
        TokenTree::Group(g) => mentions(g.stream(), names),
        _ => false,
    })
}

/// Whether serde leaves the field out of the struct's serde form
/// (`#[serde(skip)]`), so that it needs no serde impl of its own.
pub(super) fn serde_skipped(field: &syn::Field) -> bool {
    field.attrs.iter().any(|attr| {
        attr.path().is_ident("serde")
            && matches!(&attr.meta, syn::Meta::List(list)
                if list.tokens.clone().into_iter().any(|t| matches!(t, TokenTree::Ident(i) if i == "skip")))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proc_macro2::Span;

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
    fn the_vocabulary_field_and_the_token_type_are_found() {
        let input: DeriveInput = syn::parse_quote! {
            struct Two(u32, #[potential(vocab)] potential_core::Vocab<char>);
        };
        let mut errors = Errors::default();
        let model = PotentialStruct::from_syn(&input, &mut errors);
        assert!(errors.finish().is_ok());
        let (member, _) = model.vocab.unwrap();
        assert_eq!(member.to_string(), "1");
        let token = model.token.unwrap();
        assert_eq!(quote!(#token).to_string(), "char");
    }
}

//! Reading the shape of a type as written: the macros see tokens, not
//! resolved types, so they go by the last path segment's name.

use syn::{PathSegment, Type};

/// The last path segment of `ty` when its name is `name`.
pub(crate) fn named<'a>(ty: &'a Type, name: &str) -> Option<&'a PathSegment> {
    match ty {
        Type::Path(p) if p.qself.is_none() => p.path.segments.last().filter(|s| s.ident == name),
        Type::Group(g) => named(&g.elem, name),
        Type::Paren(p) => named(&p.elem, name),
        _ => None,
    }
}

/// The first type argument of a path segment: `T` in `Vec<T>`.
pub(crate) fn first_type(segment: &PathSegment) -> Option<&Type> {
    match &segment.arguments {
        syn::PathArguments::AngleBracketed(args) => args.args.iter().find_map(|a| match a {
            syn::GenericArgument::Type(t) => Some(t),
            _ => None,
        }),
        _ => None,
    }
}

/// `Some(T)` when `ty` is written `Vocab<T>` (any path ending in `Vocab`),
/// `Some(None)` when it is written `Vocab` without an argument.
pub(crate) fn vocab_token(ty: &Type) -> Option<Option<&Type>> {
    named(ty, "Vocab").map(first_type)
}

#[cfg(test)]
mod tests {
    use super::*;
    use quote::quote;

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
}

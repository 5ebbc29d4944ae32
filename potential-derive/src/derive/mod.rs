//! `#[derive(Potential)]`: the vocabulary wiring, the spawn registration
//! and the compile-time checks of a potential struct.
//!
//! As in thiserror: [`parse`] reads the struct into a typed model and
//! checks it, accumulating every error; [`expand`] writes code from the
//! model, or the fallback when there were errors.

mod expand;
mod parse;

use proc_macro2::TokenStream;
use syn::DeriveInput;

use self::parse::PotentialStruct;
use crate::crate_path::core_path;
use crate::errors::Errors;

pub(crate) fn expand(input: DeriveInput) -> TokenStream {
    let mut errors = Errors::default();
    let model = PotentialStruct::from_syn(&input, &mut errors);
    model.validate(&mut errors);
    let core = core_path(model.options.krate.clone());
    let derived = expand::derived(&model, &core);
    match errors.finish() {
        Err(e) => expand::fallback(e, derived),
        Ok(()) => expand::expand(&model, &core, derived),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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

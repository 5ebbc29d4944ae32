//! Proc macros of potential-rs: `#[derive(Potential)]` and `#[batched]`.
//! Use them through `potential_core` (or `potential_runtime`), which
//! re-exports them; the user guide, with a compiling example, is on
//! `potential_core::Potential`'s derive re-export.
#![warn(missing_docs, unreachable_pub)]

mod batched;
mod crate_path;
mod derive;
mod errors;

use proc_macro::TokenStream;

/// Derives what a potential struct needs besides its methods. See the
/// re-export in `potential_core` for the guide.
#[proc_macro_derive(Potential, attributes(potential))]
pub fn derive_potential(input: TokenStream) -> TokenStream {
    match syn::parse::<syn::DeriveInput>(input) {
        Ok(input) => derive::expand(input).into(),
        Err(e) => e.into_compile_error().into(),
    }
}

/// Turns the inherent impl block of a derived potential into its
/// `Potential` impl. See the re-export in `potential_core` for the guide.
#[proc_macro_attribute]
pub fn batched(args: TokenStream, item: TokenStream) -> TokenStream {
    batched::expand(args.into(), item.into()).into()
}

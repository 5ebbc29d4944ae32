//! The path under which generated code reaches potential-core.

use proc_macro_crate::{FoundCrate, crate_name};
use proc_macro2::{Span, TokenStream};
use quote::{format_ident, quote};

/// The path of potential-core as the calling crate sees it: a
/// `crate = "…"` override when given, else potential-core's name in the
/// caller's Cargo.toml (renames included), else potential-runtime's
/// re-export of it, else `::potential_core`.
pub(crate) fn core_path(explicit: Option<syn::Path>) -> TokenStream {
    if let Some(path) = explicit {
        return quote!(#path);
    }
    let ident = |name: &str| format_ident!("{}", name, span = Span::call_site());
    match crate_name("potential-core") {
        // potential-core itself declares `extern crate self as potential_core`.
        Ok(FoundCrate::Itself) => return quote!(::potential_core),
        Ok(FoundCrate::Name(name)) => {
            let name = ident(&name);
            return quote!(::#name);
        }
        Err(_) => {}
    }
    match crate_name("potential-runtime") {
        Ok(FoundCrate::Name(name)) => {
            let name = ident(&name);
            quote!(::#name::potential_core)
        }
        Ok(FoundCrate::Itself) => quote!(::potential_runtime::potential_core),
        Err(_) => quote!(::potential_core),
    }
}

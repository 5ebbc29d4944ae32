//! Proc macros of potential-rs: `#[derive(Potential)]` and `#[batched]`.
//!
//! Use them through `potential_core` (or `potential_runtime`), which
//! re-exports them: `use potential_core::{Potential, batched};` imports
//! the trait and the derive (one name, two namespaces, as with serde's
//! `Serialize`). The guide with a compiling example is on the re-export,
//! `potential_core::Potential` (derive macro); this crate cannot run it,
//! as a proc-macro crate's doctests cannot depend on the crate that
//! re-exports it.
//!
//! # The shape
//!
//! ```text
//! #[derive(Potential, Serialize, Deserialize)]
//! #[potential(token = u8)]            // optional: taken from `Vocab<u8>` otherwise
//! struct Length {
//!     #[potential(vocab)]              // optional: the one `Vocab<_>` field otherwise
//!     vocab: Vocab<u8>,
//!     length: usize,
//! }
//!
//! #[batched]
//! impl Length {
//!     async fn complete(&self, context: &[u8]) -> Result<f64, PotentialError> { .. }
//!     async fn prefix(&self, context: &[u8]) -> Result<f64, PotentialError> { .. }
//!     // optional: score, logw_next, batch_complete, batch_prefix, batch_score, batch_logw_next
//!     fn helper(&self) -> usize { .. } // stays an inherent method
//! }
//! ```
//!
//! # Attribute grammar
//!
//! On the struct, `#[potential(option, ...)]` with these options:
//!
//! | option | meaning |
//! |---|---|
//! | `token = Type` | the token type; needed only when the vocabulary field's type is not written `Vocab<T>` (an alias, say) |
//! | `tag = "name"` | the tag workers find the type by (default: its type name, `std::any::type_name`); non-generic structs only |
//! | `local` | never sent to a worker: no `Registered` impl, no registration, no serde needed; `Spawnable` bounds then fail with a message naming the opt-out |
//! | `crate = "path"` | where potential-core is, for code that reaches it under another path |
//!
//! On a field, `#[potential(vocab)]` marks the vocabulary; without it, the
//! vocabulary is the one field whose type is written `Vocab<_>` (an error
//! when there is none, or several).
//!
//! `#[batched]` takes no option but `crate = "path"`.
//!
//! # Generated items
//!
//! `#[derive(Potential)]` on `S` emits, inside a `const _: () = { .. };`:
//!
//! - `impl potential_core::__private::Derived for S`: the token type and
//!   the vocabulary field, which `#[batched]` reads;
//! - unless `local`: `impl potential_core::Registered for S` (bounded by a
//!   higher-ranked `RegistrationBounds` so that a struct missing serde or
//!   `Send + Sync` is reported once, below), whose blanket impl gives
//!   `Spawnable`; `fn tag()` when `tag` is given;
//! - unless `local` or generic: `inventory::submit!` of the type's
//!   registration (through `potential_core::__private::registration`, whose
//!   bound gives one error in our words when the type is not spawnable);
//! - a never-called function of checks: `S: Send + Sync` (non-generic
//!   structs), and unless `local`, each field type is
//!   `Serialize + Deserialize` (fields with `#[serde(skip)]` and fields
//!   whose type involves a type parameter excepted), each spanned at what
//!   it checks.
//!
//! A generic struct is registered once per instantiation that workers
//! must rebuild, by a line at module level:
//! `potential_core::register!(Ngram<u32>, Ngram<String>);`. Serde's derive
//! cannot guess that `Vocab<T>` needs `T: TokenType`; say it with
//! `#[serde(bound = "T: TokenType")]`.
//!
//! `#[batched]` on `impl S { .. }` emits:
//!
//! - `impl S { .. }` with the items that are not potential methods;
//! - `impl potential_core::Potential for S`, under a higher-ranked
//!   `S: Send + Sync` bound (so a struct that is not gets the derive's one
//!   error, not the trait solver's): `type Token` and `fn vocab` from the
//!   derive, `fn native_batch` reporting which `batch_*` forms the block
//!   holds, and the block's potential methods, moved in as written; a
//!   `batch_*` form first rejects an empty batch with
//!   `PotentialError::EmptyBatch`, as the defaults do. `vocab` and
//!   `native_batch` written in the block replace the generated ones.
//!
//! Every misuse is a `syn::Error` at the offending tokens, all reported
//! together: a missing `async`, a receiver other than `&self`, a wrong
//! argument or return type, a missing `complete` or `prefix`, a misspelt
//! method name (`batch_complet`, with the right name as a hint). On error
//! the block is emitted as written, plus a stand-in `Potential` impl, so
//! that IDEs keep working and uses of the type add no errors of their own.
//!
//! # Finding potential-core
//!
//! Generated code names potential-core by the path the calling crate knows
//! it under: the `crate = "path"` option when given; else the name of the
//! `potential-core` dependency in the caller's Cargo.toml (renames
//! included, found with `proc-macro-crate`); else, for a crate that
//! depends on `potential-runtime` only, its re-export
//! `potential_runtime::potential_core`; else `::potential_core`.
#![forbid(unsafe_code)]

mod batched;
mod crate_path;
mod derive;
mod errors;
mod types;

use proc_macro::TokenStream;

/// Derives what a potential struct needs besides its methods: the wiring
/// of its vocabulary and token type, its spawn registration and the
/// compile-time checks. See the crate docs for the attribute grammar and
/// the generated items, and `potential_core::Potential` (derive macro) for
/// the guide with a compiling example.
#[proc_macro_derive(Potential, attributes(potential))]
pub fn derive_potential(input: TokenStream) -> TokenStream {
    match syn::parse::<syn::DeriveInput>(input) {
        Ok(input) => derive::expand(input).into(),
        Err(e) => e.into_compile_error().into(),
    }
}

/// Turns the inherent impl block of a derived potential into its
/// `Potential` impl: `complete` and `prefix` required, `score`,
/// `logw_next` and the four batch forms optional (the ones left out keep
/// the trait's defaults), and `native_batch` reporting which batch forms
/// are native. See the crate docs for the generated items.
#[proc_macro_attribute]
pub fn batched(args: TokenStream, item: TokenStream) -> TokenStream {
    batched::expand(args.into(), item.into()).into()
}

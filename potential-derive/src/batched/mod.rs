//! `#[batched]`: turns the inherent impl block of a derived potential into
//! its `Potential` impl, checking every potential method's signature.
//!
//! As in thiserror: the block is read into a typed model, [`BatchedImpl`],
//! and checked (every error accumulated, [`signature`] holds the rules);
//! [`expand`] then writes the code from the model, or the fallback.

mod expand;
mod signature;

use proc_macro2::TokenStream;
use quote::quote;
use syn::{ImplItem, ImplItemFn, ItemImpl, LitStr, Visibility};

use self::signature::{METHODS, PROVIDED, check_signature, expected, near_miss};
use crate::crate_path::core_path;
use crate::errors::Errors;

pub(crate) fn expand(args: TokenStream, item: TokenStream) -> TokenStream {
    let mut errors = Errors::default();
    let core = core_path(parse_args(args, &mut errors));
    let block = match parse_block(&item, &mut errors) {
        Ok(block) => block,
        Err(output) => return output,
    };
    let model = BatchedImpl::from_syn(block, &mut errors);
    model.validate(&mut errors);
    match errors.finish() {
        Err(e) => expand::fallback(&model, &core, item, e),
        Ok(()) => expand::expand(&model, &core),
    }
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

/// The inherent impl block; anything else gives the final output: the
/// item as written and the error.
fn parse_block(item: &TokenStream, errors: &mut Errors) -> Result<ItemImpl, TokenStream> {
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
            return Err(quote!(#item #e));
        }
    };
    if let Some((path, _)) = &block.trait_ {
        errors.spanned(
            path,
            "`#[batched]` goes on the inherent impl block (`impl Name { ... }`) and writes the `Potential` impl itself",
        );
        let e = std::mem::take(errors)
            .finish()
            .err()
            .map(syn::Error::into_compile_error);
        return Err(quote!(#item #e));
    }
    Ok(block)
}

/// A `#[batched]` block, sorted into the potential's methods and the
/// block's own items.
struct BatchedImpl {
    block: ItemImpl,
    /// Which of [`METHODS`] the block writes.
    written: [bool; METHODS.len()],
    /// The potential methods as written (made private), in the block's order.
    potential_items: Vec<ImplItemFn>,
    /// Everything else: helpers that stay inherent.
    inherent_items: Vec<ImplItem>,
    user_native_batch: bool,
    user_vocab: bool,
    /// The methods that a misspelt helper was reported as.
    misspelt: Vec<&'static str>,
}

impl BatchedImpl {
    /// Sorts the block's items, checking each potential method's signature
    /// and reporting helpers whose names are near a method's.
    fn from_syn(block: ItemImpl, errors: &mut Errors) -> BatchedImpl {
        let mut model = BatchedImpl {
            written: [false; METHODS.len()],
            potential_items: Vec::new(),
            inherent_items: Vec::new(),
            user_native_batch: false,
            user_vocab: false,
            misspelt: Vec::new(),
            block: ItemImpl {
                items: Vec::new(),
                ..block.clone()
            },
        };
        for impl_item in block.items {
            let ImplItem::Fn(mut f) = impl_item else {
                model.inherent_items.push(impl_item);
                continue;
            };
            let name = f.sig.ident.to_string();
            if let Some(i) = METHODS.iter().position(|m| m.name == name) {
                model.written[i] = true;
                check_signature(&METHODS[i], &f, errors);
            } else if PROVIDED.contains(&name.as_str()) {
                model.user_native_batch |= name == "native_batch";
                model.user_vocab |= name == "vocab";
            } else {
                if f.sig.asyncness.is_some()
                    && let Some(hint) = near_miss(&name)
                {
                    model.misspelt.push(hint);
                    errors.spanned(
                        &f.sig.ident,
                        format!(
                            "`{name}` is not a potential method; did you mean `{hint}`? \
                             (rename it if it is a helper of your own)"
                        ),
                    );
                }
                model.inherent_items.push(ImplItem::Fn(f));
                continue;
            }
            f.vis = Visibility::Inherited;
            model.potential_items.push(f);
        }
        model
    }

    /// Checks that the methods every potential needs are there (unless a
    /// misspelling of one was reported already).
    fn validate(&self, errors: &mut Errors) {
        for required in ["complete", "prefix"] {
            let i = METHODS
                .iter()
                .position(|m| m.name == required)
                .unwrap_or_default();
            if !self.written[i] && !self.misspelt.contains(&required) {
                errors.spanned(
                    &self.block.self_ty,
                    format!(
                        "`#[batched]` impl is missing `{required}`, which every potential needs: `{}`",
                        expected(&METHODS[i])
                    ),
                );
            }
        }
    }

    /// Whether the block writes the potential method `name`.
    fn writes(&self, name: &str) -> bool {
        METHODS
            .iter()
            .position(|m| m.name == name)
            .is_some_and(|i| self.written[i])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
        assert!(text.contains("Method :: BatchPrefix"), "{text}");
    }
}

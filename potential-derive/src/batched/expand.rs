//! Code generation from a checked [`BatchedImpl`]: pure `quote!`.

use proc_macro2::{Span, TokenStream};
use quote::{format_ident, quote};
use syn::{FnArg, ImplItemFn};

use super::BatchedImpl;

/// `impl Potential for Self where ...`, the header of both the real impl
/// and the stand-in.
fn header(model: &BatchedImpl, core: &TokenStream) -> TokenStream {
    let self_ty = &model.block.self_ty;
    let (impl_g, _, where_clause) = model.block.generics.split_for_impl();
    let predicates: Vec<_> = where_clause.iter().flat_map(|w| &w.predicates).collect();
    // A higher-ranked bound, never false at the definition: a potential
    // that is not `Send + Sync` gets one error, from the derive's check,
    // instead of the trait solver's.
    quote! {
        #[automatically_derived]
        impl #impl_g #core::Potential for #self_ty
        where
            #(#predicates,)*
            for<'__potential> #self_ty: ::core::marker::Send + ::core::marker::Sync,
    }
}

/// `type Token` and, unless the block writes it, `fn vocab`: both from
/// the derive's `Derived` impl.
fn token_and_vocab(model: &BatchedImpl, core: &TokenStream) -> TokenStream {
    let vocab = (!model.user_vocab).then(|| {
        quote! {
            #[inline]
            fn vocab(&self) -> &#core::Vocab<Self::Token> {
                #core::__private::Derived::vocab(self)
            }
        }
    });
    quote! {
        type Token = <Self as #core::__private::Derived>::Token;
        #vocab
    }
}

/// The output when the block has errors, tokio-macros style: the user's
/// block as written (so IDEs keep working), the errors, and a stand-in
/// `Potential` impl so that uses of the type add no errors of their own.
pub(super) fn fallback(
    model: &BatchedImpl,
    core: &TokenStream,
    item: TokenStream,
    errors: syn::Error,
) -> TokenStream {
    let e = errors.into_compile_error();
    let header = header(model, core);
    let token_and_vocab = token_and_vocab(model, core);
    let stand_in = ["complete", "prefix"].map(|m| {
        let m = format_ident!("{m}");
        quote! {
            fn #m(&self, _: &[Self::Token])
                -> impl ::core::future::Future<Output = #core::Result<f64>> + ::core::marker::Send {
                ::core::future::pending()
            }
        }
    });
    quote! {
        #item
        #e
        #header { #token_and_vocab #(#stand_in)* }
    }
}

/// The output for a checked block: the helpers' inherent impl (if any)
/// and the `Potential` impl.
pub(super) fn expand(model: &BatchedImpl, core: &TokenStream) -> TokenStream {
    let header = header(model, core);
    let token_and_vocab = token_and_vocab(model, core);
    let native = (!model.user_native_batch).then(|| {
        let [complete, prefix, score, logw_next] = [
            "batch_complete",
            "batch_prefix",
            "batch_score",
            "batch_logw_next",
        ]
        .map(|m| model.writes(m));
        quote! {
            #[inline]
            fn native_batch(&self) -> #core::NativeBatch {
                #core::NativeBatch { complete: #complete, prefix: #prefix, score: #score, logw_next: #logw_next }
            }
        }
    });
    let potential_items = model.potential_items.iter().map(|f| {
        let name = f.sig.ident.to_string();
        if name.starts_with("batch_") {
            let mut f = f.clone();
            guard_empty_batch(core, &name, &mut f);
            quote!(#f)
        } else {
            quote!(#f)
        }
    });
    let block = &model.block;
    let (attrs, self_ty) = (&block.attrs, &block.self_ty);
    let (impl_g, _, where_clause) = block.generics.split_for_impl();
    let inherent_items = &model.inherent_items;
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
            #token_and_vocab
            #native
            #(#potential_items)*
        }
    }
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
    // `batch_prefix` is `Method::BatchPrefix`: the library names methods by the enum.
    let variant: String = name
        .split('_')
        .flat_map(|word| {
            let mut chars = word.chars();
            chars
                .next()
                .map(|c| c.to_ascii_uppercase())
                .into_iter()
                .chain(chars)
        })
        .collect();
    let method = syn::Ident::new(&variant, Span::call_site());
    f.block = syn::parse_quote!({
        #core::non_empty(#core::Method::#method, #contexts)?;
        let #pattern = #contexts;
        #(#stmts)*
    });
}

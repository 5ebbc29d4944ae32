//! The same particles whether the potentials are called directly or
//! through autobatching: each particle draws from its own stream, so the
//! order in which calls complete does not matter.

use potential_core::PotentialExt;
use potential_core::ops::Product;
use potential_smc::{Awrs, LocallyOptimal, SamplerOptions, Smc, smc};

use crate::common::{NoRepeat, Unigram};
use potential_core::checks::block_on;

fn lm() -> Unigram {
    Unigram::new("abcd", &[0.4, 0.3, 0.2, 0.05], 0.05, 1.0)
}

fn constraint() -> NoRepeat {
    NoRepeat::new("abcd", 'd')
}

#[test]
fn autobatched_potentials_give_the_same_particles_under_every_proposal() {
    block_on(async {
        let options = SamplerOptions {
            groups: 3,
            ..SamplerOptions::new(12, 8, 21)
        };
        let (plain_lm, plain_c) = (lm(), constraint());
        let (batched_lm, batched_c) = (lm().to_autobatched(), constraint().to_autobatched());

        let (awrs, batched_awrs) = (
            Awrs::new(&plain_lm, &plain_c).unwrap(),
            Awrs::new(&batched_lm, &batched_c).unwrap(),
        );
        assert_eq!(
            smc(&awrs, options, |_| {}).await.unwrap(),
            smc(&batched_awrs, options, |_| {}).await.unwrap()
        );

        let (direct, batched_direct) = (
            LocallyOptimal::new(&plain_lm),
            LocallyOptimal::new(&batched_lm),
        );
        let plain = Smc::new(&direct, options).with_critic(&plain_c);
        let batched = Smc::new(&batched_direct, options).with_critic(&batched_c);
        assert_eq!(
            plain.run(|_| {}).await.unwrap(),
            batched.run(|_| {}).await.unwrap()
        );

        let product = Product::new(lm(), constraint()).unwrap();
        let batched_product = Product::new(lm(), constraint()).unwrap().to_autobatched();
        let (optimal, batched_optimal) = (
            LocallyOptimal::new(&product),
            LocallyOptimal::new(&batched_product),
        );
        assert_eq!(
            smc(&optimal, options, |_| {}).await.unwrap(),
            smc(&batched_optimal, options, |_| {}).await.unwrap()
        );
        batched_lm.shutdown().await;
        batched_c.shutdown().await;
        batched_product.shutdown().await;
    });
}

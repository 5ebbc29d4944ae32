//! Worker tests written the supported way: `async fn`s listed in
//! `potential_runtime::worker_tests!`, which writes `main` (`init()` first,
//! then libtest's command line and output).

use std::sync::Arc;

use potential_core::{Potential, PotentialError, PotentialExt};
use potential_runtime::MultiprocessExt;
use potential_tests::worker_potentials::{CountB, Length};

/// A test that returns a `Result`: `?` works, an error fails the test.
async fn a_shared_potential_answers_alike_through_workers() -> Result<(), PotentialError> {
    let local = Arc::new(Length::abc());
    let workers = local.clone().to_multiprocess(2).await?;
    for context in [vec![], vec!['a'], vec!['a', 'b']] {
        assert_eq!(
            workers.logw_next(&context).await?,
            local.logw_next(&context).await?
        );
    }
    workers.shutdown().await;
    Ok(())
}

/// A test that returns nothing, with a product chained left to right.
async fn a_chained_product_runs_in_workers() {
    let local = Length::abc().product(CountB::abx()).unwrap();
    let workers = Length::abc()
        .product(CountB::abx())
        .unwrap()
        .to_multiprocess(1)
        .await
        .unwrap();
    let contexts = [vec!['a'], vec!['b', 'b']];
    assert_eq!(
        workers.batch_complete(&contexts).await.unwrap(),
        local.batch_complete(&contexts).await.unwrap()
    );
    workers.shutdown().await;
}

potential_runtime::worker_tests!(
    a_shared_potential_answers_alike_through_workers,
    a_chained_product_runs_in_workers,
);

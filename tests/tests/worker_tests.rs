//! Worker tests written the supported way: `async fn`s listed in
//! `potential_runtime::worker_tests!`, which writes `main` (`init()` first,
//! then libtest's command line and output).

use std::sync::Arc;

use potential_core::{Potential, PotentialError, PotentialExt};
use potential_runtime::{MultiprocessExt, MultiprocessOptions};
use potential_tests::children;
use potential_tests::worker_potentials::{CountB, Length, WhoServes};

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

/// A context's next call (one token more) goes to the worker that served
/// the context, whose caches may hold its state, when both workers are
/// equally free; unrelated contexts still alternate.
async fn a_context_follows_its_parent_to_its_worker() -> Result<(), PotentialError> {
    let workers = WhoServes::new().to_multiprocess(2).await?;
    for chain in [[1u32, 2, 3, 0, 1, 2, 3, 0], [2, 2, 2, 1, 1, 1, 0, 0]] {
        let mut served = Vec::new();
        for len in 0..=chain.len() {
            served.push(workers.prefix(&chain[..len]).await?);
        }
        assert!(served.iter().all(|&pid| pid == served[0]), "{served:?}");
    }
    // Calls one at a time with no known parent take turns.
    let mut unrelated = std::collections::HashSet::new();
    for t in 0..4u32 {
        unrelated.insert(workers.complete(&[3, 3, t, t]).await?.to_bits());
    }
    assert_eq!(unrelated.len(), 2, "both workers served some");
    workers.shutdown().await;
    Ok(())
}

/// Two calls that extend one context, sent together while both workers
/// are idle, run side by side: the worker that served their parent keeps
/// one, the idle one takes the other (AWRS checks two draws of a particle
/// at once; on one worker they ran one after the other). On a
/// current-thread runtime no reply can be read between the two sends, so
/// the first call is still in flight when the second is dispatched.
async fn two_calls_of_one_parent_use_both_idle_workers() -> Result<(), PotentialError> {
    let workers = WhoServes::new().to_multiprocess(2).await?;
    let parent = workers.prefix(&[1]).await?;
    let (first, second) = tokio::join!(workers.prefix(&[1, 2]), workers.prefix(&[1, 3]));
    assert_eq!(first?, parent, "the parent's worker keeps the first call");
    assert_ne!(second?, parent, "the idle worker takes the second");
    workers.shutdown().await;
    Ok(())
}

/// Zero workers is an error, not a pool of one.
async fn zero_workers_is_an_error() {
    for start in [
        Length::abc().to_multiprocess(0),
        Length::abc().to_multiprocess_with(MultiprocessOptions::new().workers(0)),
    ] {
        let err = start.await.unwrap_err();
        assert!(
            matches!(&err, PotentialError::InvalidInput(m) if m.contains("at least one worker")),
            "{err:?}"
        );
    }
}

/// A worker program whose `main` does not call `init()` (here one that
/// exits at once) is reported with what to do, test binaries included.
async fn a_worker_without_init_is_explained() {
    let options = MultiprocessOptions::new().workers(1).program("/bin/true");
    let err = Length::abc()
        .to_multiprocess_with(options)
        .await
        .unwrap_err();
    let text = err.to_string();
    for needle in [
        "exited",
        "potential_runtime::init()",
        "harness = false",
        "worker_tests!",
    ] {
        assert!(text.contains(needle), "{needle:?} missing from: {text}");
    }
}

/// Counts this process's children: it must run alone, or another test's
/// workers would be counted too (it failed 3 runs of 3 beside them).
async fn no_child_is_left_after_shutdown() -> Result<(), PotentialError> {
    assert_eq!(children(), [], "no worker before the test");
    let workers = Length::abc().to_multiprocess(2).await?;
    let mut pids = workers.worker_pids();
    pids.sort_unstable();
    let mut seen = children();
    seen.sort_unstable();
    assert_eq!(
        seen, pids,
        "the pool's workers are this process's only children"
    );
    workers.shutdown().await;
    assert_eq!(children(), [], "every worker reaped");
    Ok(())
}

/// A pool runs on a current-thread runtime too.
async fn a_pool_works_on_a_current_thread_runtime() -> Result<(), PotentialError> {
    let flavor = tokio::runtime::Handle::current().runtime_flavor();
    assert_eq!(flavor, tokio::runtime::RuntimeFlavor::CurrentThread);
    let workers = Length::abc().to_multiprocess(1).await?;
    assert_eq!(workers.complete(&['a', 'b']).await?, -2.0);
    workers.shutdown().await;
    Ok(())
}

potential_runtime::worker_tests!(
    #[alone]
    no_child_is_left_after_shutdown,
    #[current_thread]
    a_pool_works_on_a_current_thread_runtime,
    #[current_thread]
    two_calls_of_one_parent_use_both_idle_workers,
    a_shared_potential_answers_alike_through_workers,
    a_chained_product_runs_in_workers,
    a_context_follows_its_parent_to_its_worker,
    zero_workers_is_an_error,
    a_worker_without_init_is_explained,
);

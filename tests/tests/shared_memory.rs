//! Large replies through the memory a worker shares with its pool: the
//! same answers as through the socket and in this process, and the socket
//! whenever the region is off or has no room.

use std::sync::Arc;

use potential_core::{Potential, PotentialError};
use potential_runtime::{Multiprocess, MultiprocessExt, MultiprocessOptions, WorkerStats};
use potential_tests::worker_potentials::Wide;

/// A vocabulary whose `logw_next` is a 400 KB reply, as SmolLM2's is.
const LARGE: u32 = 50_000;

/// The contexts the tests ask about: different lengths give different weights.
fn contexts() -> Vec<Vec<u32>> {
    (0..8u32)
        .map(|n| (0..n).map(|t| t * 997 % LARGE).collect())
        .collect()
}

/// Every `logw_next` and a `batch_logw_next` through `workers` equal
/// `local`'s, weight for weight.
async fn same_weights(local: &Wide, workers: &Multiprocess<u32>) -> Result<(), PotentialError> {
    let contexts = contexts();
    for c in &contexts {
        assert_eq!(
            workers.logw_next(c).await?.as_slice(),
            local.logw_next(c).await?.as_slice(),
            "{c:?}"
        );
    }
    let here = local.batch_logw_next(&contexts).await?;
    let there = workers.batch_logw_next(&contexts).await?;
    for ((c, x), y) in contexts.iter().zip(&here).zip(&there) {
        assert_eq!(x.as_slice(), y.as_slice(), "{c:?}");
    }
    Ok(())
}

fn total(stats: &[WorkerStats], field: fn(&WorkerStats) -> u64) -> u64 {
    stats.iter().map(field).sum()
}

/// With the default options, every large reply comes through the region.
async fn large_replies_come_through_shared_memory() -> Result<(), PotentialError> {
    let local = Arc::new(Wide::new(LARGE));
    let workers = local.clone().to_multiprocess(2).await?;
    same_weights(&local, &workers).await?;
    let stats = workers.stats();
    let served = total(&stats, |s| s.served);
    // 8 single calls and the batch, whole or split in two.
    assert!(served >= 9, "{stats:?}");
    assert_eq!(total(&stats, |s| s.shared), served, "{stats:?}");
    assert_eq!(total(&stats, |s| s.fallbacks), 0, "{stats:?}");
    // Small replies still take the socket.
    assert_eq!(workers.complete(&[1, 2]).await?, -2.0);
    assert_eq!(total(&workers.stats(), |s| s.shared), served);
    workers.shutdown().await;
    Ok(())
}

/// Turned off, the region is not made, and the answers are the same.
async fn without_shared_memory_replies_take_the_socket() -> Result<(), PotentialError> {
    let local = Arc::new(Wide::new(LARGE));
    let options = MultiprocessOptions::new().workers(2).shared_memory(0);
    let workers = local.clone().to_multiprocess_with(options).await?;
    same_weights(&local, &workers).await?;
    let stats = workers.stats();
    assert!(total(&stats, |s| s.served) >= 9, "{stats:?}");
    assert_eq!(total(&stats, |s| s.shared), 0, "{stats:?}");
    // No region, so nothing fell back from one.
    assert_eq!(total(&stats, |s| s.fallbacks), 0, "{stats:?}");
    workers.shutdown().await;
    Ok(())
}

/// A reply that does not fit the region's free space takes the socket;
/// the ones before and after it still take the region.
async fn a_reply_too_large_for_the_region_takes_the_socket() -> Result<(), PotentialError> {
    let local = Arc::new(Wide::new(LARGE));
    // Room for one `logw_next` (400 KB), not for a batch of four (1.6 MB).
    let options = MultiprocessOptions::new().workers(1).shared_memory(1 << 20);
    let workers = local.clone().to_multiprocess_with(options).await?;
    let contexts = &contexts()[..4];
    let shared = || workers.stats()[0].shared;
    assert_eq!(
        workers.logw_next(&contexts[1]).await?.as_slice(),
        local.logw_next(&contexts[1]).await?.as_slice()
    );
    assert_eq!(shared(), 1);
    let here = local.batch_logw_next(contexts).await?;
    let there = workers.batch_logw_next(contexts).await?;
    assert!(
        here.iter()
            .zip(&there)
            .all(|(x, y)| x.as_slice() == y.as_slice())
    );
    assert_eq!(shared(), 1, "the batch cannot have fit");
    assert_eq!(workers.stats()[0].fallbacks, 1, "the batch fell back");
    for c in contexts {
        assert_eq!(
            workers.logw_next(c).await?.as_slice(),
            local.logw_next(c).await?.as_slice()
        );
    }
    assert_eq!(shared(), 5);
    workers.shutdown().await;
    Ok(())
}

/// Many large calls in flight at once, more than the region holds: each
/// caller gets its own weights, whichever way they came.
async fn concurrent_large_replies_reach_their_own_callers() -> Result<(), PotentialError> {
    let local = Arc::new(Wide::new(LARGE));
    // Four replies' worth: the rest of 32 concurrent calls overflow to the socket.
    let options = MultiprocessOptions::new()
        .workers(2)
        .shared_memory(1600 << 10);
    let workers = local.clone().to_multiprocess_with(options).await?;
    let contexts: Vec<Vec<u32>> = (0..32u32).map(|n| vec![n; n as usize % 5]).collect();
    let answers =
        futures::future::try_join_all(contexts.iter().map(|c| workers.logw_next(c))).await?;
    for (c, answer) in contexts.iter().zip(&answers) {
        assert_eq!(
            answer.as_slice(),
            local.logw_next(c).await?.as_slice(),
            "{c:?}"
        );
    }
    let stats = workers.stats();
    assert_eq!(total(&stats, |s| s.served), 32, "{stats:?}");
    assert!(total(&stats, |s| s.shared) > 0, "{stats:?}");
    workers.shutdown().await;
    Ok(())
}

/// A worker killed with large replies in flight (some placed in the
/// region, some being written there, some not yet computed): its calls
/// are retried on the other worker, and every answer is the right one.
async fn a_worker_killed_mid_reply_leaves_no_wrong_answer() -> Result<(), PotentialError> {
    let local = Arc::new(Wide::new(LARGE));
    let workers = Arc::new(local.clone().to_multiprocess(2).await?);
    let victim = workers.worker_pids()[0];
    let contexts: Vec<Vec<u32>> = (0..64u32).map(|n| vec![n; n as usize % 7]).collect();
    let calls = tokio::spawn({
        let (workers, contexts) = (workers.clone(), contexts.clone());
        async move { futures::future::try_join_all(contexts.iter().map(|c| workers.logw_next(c))).await }
    });
    // Killed once its first reply has come back, with the rest in flight.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while workers.stats()[0].served == 0 {
        assert!(std::time::Instant::now() < deadline, "no reply came back");
        tokio::task::yield_now().await;
    }
    rustix::process::kill_process(
        rustix::process::Pid::from_raw(victim as i32).expect("a pid"),
        rustix::process::Signal::KILL,
    )
    .expect("the worker is killed");
    let answers = calls.await.expect("the calls' task")?;
    for (c, answer) in contexts.iter().zip(&answers) {
        assert_eq!(
            answer.as_slice(),
            local.logw_next(c).await?.as_slice(),
            "{c:?}"
        );
    }
    workers.shutdown().await;
    Ok(())
}

/// A reply over 16 MiB (the decoder then gives its memory back) followed
/// by a smaller one, and the same for calls on the worker's side: every
/// answer comes, on the same workers (the decoder once panicked there and
/// the pool hung).
async fn a_frame_over_16_mib_then_a_smaller_one_both_decode() -> Result<(), PotentialError> {
    let local = Arc::new(Wide::new(LARGE));
    let options = MultiprocessOptions::new().workers(1).shared_memory(0);
    let workers = local.clone().to_multiprocess_with(options).await?;
    let pids = workers.worker_pids();
    // 50 rows of 50,001 weights: a 20 MB reply.
    let contexts: Vec<Vec<u32>> = (0..50u32).map(|n| vec![n; n as usize % 3]).collect();
    let there = workers.batch_logw_next(&contexts).await?;
    assert_eq!(there.len(), 50);
    assert_eq!(
        there[49].as_slice(),
        local.logw_next(&contexts[49]).await?.as_slice()
    );
    assert_eq!(
        workers.logw_next(&contexts[1]).await?.as_slice(),
        local.logw_next(&contexts[1]).await?.as_slice()
    );
    // A call over 16 MiB (6 M tokens of 3 bytes each), then a 100 KB one.
    let long = vec![(0..6_000_000u32).map(|t| t % LARGE).collect::<Vec<u32>>()];
    assert_eq!(workers.batch_complete(&long).await?, vec![-6e6]);
    let short = vec![vec![LARGE - 1; 30_000]];
    assert_eq!(workers.batch_complete(&short).await?, vec![-3e4]);
    assert_eq!(workers.worker_pids(), pids, "no worker died");
    workers.shutdown().await;
    Ok(())
}

/// A NaN in a large reply is the error it is in this process, for
/// `logw_next` and `batch_logw_next` alike; the region refuses those
/// values (they come in the reply, checked there) and keeps its room for
/// the next replies, which still come through it.
async fn a_weight_that_is_not_one_fails_and_takes_no_room() -> Result<(), PotentialError> {
    use potential_core::{Method, PotentialExt};
    let local = Arc::new(Wide::new(LARGE));
    let here = local.clone().to_autobatched();
    // Room for two `logw_next` replies (400 KB each), not three.
    let options = MultiprocessOptions::new().workers(1).shared_memory(1 << 20);
    let workers = local.clone().to_multiprocess_with(options).await?;
    let broken = vec![3, LARGE - 1];
    let nan_of = |e: &PotentialError, want: Method| matches!(e, PotentialError::InvalidWeight { method, value } if *method == want && value.is_nan());
    for _ in 0..3 {
        let there = workers.logw_next(&broken).await.unwrap_err();
        let in_process = here.logw_next(&broken).await.unwrap_err();
        assert!(nan_of(&there, Method::LogwNext), "{there:?}");
        // (`AutoBatched` answers through its batch, and names that method.)
        assert!(nan_of(&in_process, Method::BatchLogwNext), "{in_process:?}");
    }
    let batch = vec![vec![1], broken.clone()];
    let there = workers.batch_logw_next(&batch).await.unwrap_err();
    assert!(nan_of(&there, Method::BatchLogwNext), "{there:?}");
    let stats = workers.stats()[0].clone();
    assert_eq!((stats.shared, stats.fallbacks), (0, 0), "{stats:?}");
    // Nothing was left in the region: two good replies still fit.
    for c in &contexts()[..2] {
        assert_eq!(
            workers.logw_next(c).await?.as_slice(),
            local.logw_next(c).await?.as_slice()
        );
    }
    assert_eq!(workers.stats()[0].shared, 2);
    workers.shutdown().await;
    Ok(())
}

potential_runtime::worker_tests!(
    a_weight_that_is_not_one_fails_and_takes_no_room,
    a_frame_over_16_mib_then_a_smaller_one_both_decode,
    large_replies_come_through_shared_memory,
    without_shared_memory_replies_take_the_socket,
    a_reply_too_large_for_the_region_takes_the_socket,
    concurrent_large_replies_reach_their_own_callers,
    a_worker_killed_mid_reply_leaves_no_wrong_answer,
);

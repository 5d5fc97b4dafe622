//! Polling with a deadline: the one wait loop of the tests, for conditions that become true
//! some time after an action (keys loaded, a metric counted, an issuer fetched).

use std::future::Future;
use std::time::{Duration, Instant};

/// How often [`poll`] and [`eventually`] look again.
const EVERY: Duration = Duration::from_millis(20);

/// Calls `probe` every `every` until it returns `Some`, or `timeout` passes (`None`). The
/// probe always runs at least once, and once more at the deadline.
pub async fn poll_every<T, F, Fut>(every: Duration, timeout: Duration, mut probe: F) -> Option<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(value) = probe().await {
            return Some(value);
        }
        if Instant::now() >= deadline {
            return None;
        }
        tokio::time::sleep(every).await;
    }
}

/// [`poll_every`] 20 ms.
pub async fn poll<T, F, Fut>(timeout: Duration, probe: F) -> Option<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    poll_every(EVERY, timeout, probe).await
}

/// Whether `check` holds within `timeout`, looked at every 20 ms.
pub async fn eventually(timeout: Duration, mut check: impl FnMut() -> bool) -> bool {
    poll(timeout, || std::future::ready(check().then_some(())))
        .await
        .is_some()
}

//! Waiting for something that really is asynchronous (an event arriving, a process
//! becoming ready): bounded polling with a deadline, never a bare sleep.

use std::time::{Duration, Instant};

/// Polls `check` every 25 ms until it returns `Some`; panics after `limit`.
pub async fn eventually<T, F, Fut>(limit: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + limit;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(
            Instant::now() < deadline,
            "condition not reached within {limit:?}"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

//! A channel to a host name spreads calls over every address the name resolves to, and
//! follows the name as its addresses change.

use std::{
    net::SocketAddr,
    sync::{
        Arc, Mutex, PoisonError,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use erp_kit::client::{ClientConfig, MeshChannel, Resolver};
use erp_testkit::{
    TestKeys,
    probe::{
        probe_contracts,
        proto::{FlakyRequest, probe_service_client::ProbeServiceClient},
    },
    wait::eventually,
};

use crate::helpers::{probe_with, server_config};

/// A resolver answering whatever the test last put in `addresses`.
fn resolver_of(addresses: &Arc<Mutex<Vec<SocketAddr>>>) -> Resolver {
    let addresses = addresses.clone();
    Arc::new(move |_host, _port| {
        let answer = addresses
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        Box::pin(async move { Ok(answer) })
    })
}

/// Ten calls under a fresh key: each probe counts the key's calls on its own, so the
/// highest count says how many probes shared them (5: two in turn; 10: one). `None` when
/// a call failed.
async fn highest_count_of_ten(
    client: &mut ProbeServiceClient<MeshChannel>,
    key: &str,
) -> Option<u32> {
    let mut highest = 0;
    for _ in 0..10 {
        let answer = client
            .flaky(FlakyRequest {
                key: key.to_owned(),
                failures: 0,
            })
            .await
            .ok()?;
        highest = highest.max(answer.into_inner().attempt);
    }
    Some(highest)
}

#[tokio::test]
async fn calls_take_every_resolved_address_in_turn_and_follow_the_name() {
    let keys = TestKeys::generate();
    let first = probe_with(&keys, server_config()).await;
    let second = probe_with(&keys, server_config()).await;
    let addresses = Arc::new(Mutex::new(vec![first.addr, second.addr]));
    let config = ClientConfig {
        resolve_interval: Duration::from_millis(20),
        // A retry would take the next address and hide one that should be gone.
        max_retries: 0,
        ..ClientConfig::default()
    };
    // The URL names a host (the first probe's, through /etc/hosts, until the resolver
    // has answered); the resolver says where it really is.
    let url = format!("http://localhost:{}", first.addr.port());
    let channel = MeshChannel::connect_lazy_with_resolver(&url, &config, resolver_of(&addresses))
        .expect("channel")
        .with_contracts(probe_contracts());
    let client = ProbeServiceClient::new(channel);
    let round = AtomicUsize::new(0);
    // Each try is ten calls under a fresh key.
    let highest_count = |prefix: &'static str| {
        let (mut client, round) = (client.clone(), round.fetch_add(1, Ordering::Relaxed));
        async move { highest_count_of_ten(&mut client, &format!("{prefix}-{round}")).await }
    };

    // Until the resolver first answered, calls go to the URL (the first probe alone).
    eventually(Duration::from_secs(10), || async {
        (highest_count("both").await == Some(5)).then_some(())
    })
    .await;

    // The first probe goes away and the name stops listing it: every call reaches the
    // second (while the first was still listed, every other call failed).
    first.shutdown();
    first.stopped().await.expect("stopped cleanly");
    *addresses.lock().unwrap_or_else(PoisonError::into_inner) = vec![second.addr];
    eventually(Duration::from_secs(10), || async {
        (highest_count("second").await == Some(10)).then_some(())
    })
    .await;
}

//! Duties held by lease, on both databases: one replica holds each duty at a time, the live
//! replicas share the BMCs, a replica that stops renewing loses its duties within a lease and
//! another takes them at its next round, and a clean stop hands them over at once. The replicas
//! here are `Leases` of the test's own on one database, as each `pangea serve` has one.

use crate::support::TestApp;
use pangea::leases::{DUTIES, LINK_NODES, Leases, PRUNE, Shard};
use std::time::{Duration, Instant};

on_both_backends!(one_replica_holds_each_duty_and_another_takes_it_over_when_it_stops_renewing);

async fn one_replica_holds_each_duty_and_another_takes_it_over_when_it_stops_renewing(app: TestApp) {
    let lease = Duration::from_millis(800);
    let replica = |name: &str| Leases::new(app.state.db.clone(), name.into(), lease);
    let (a, b) = (replica("a"), replica("b"));
    a.round(&DUTIES).await.unwrap();
    b.round(&DUTIES).await.unwrap();
    a.round(&DUTIES).await.unwrap();
    assert_eq!(a.held(), [LINK_NODES, PRUNE], "the first to ask holds every duty");
    assert!(b.held().is_empty() && !b.holds(PRUNE));
    // Both are live: each polls its share of the BMCs, and every BMC is polled once.
    assert_eq!((a.shard(), b.shard()), (Shard { index: 0, of: 2 }, Shard { index: 1, of: 2 }));
    let bmcs: Vec<String> = (0..100).map(|i| format!("https://bmc-{i}.example.com")).collect();
    assert!(bmcs.iter().all(|url| a.shard().owns(url) != b.shard().owns(url)));

    // `a` stops renewing (it died, or lost its database): it stops believing it holds its
    // duties when its lease runs out, and `b` takes them at its first round after that.
    let stopped = Instant::now();
    loop {
        b.round(&DUTIES).await.unwrap();
        // Asked after b's round: if a still holds its duties now, it held them during that round.
        if !a.holds(PRUNE) {
            break;
        }
        assert!(b.held().is_empty(), "b took a duty while a's lease ran");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let handed_over = loop {
        b.round(&DUTIES).await.unwrap();
        if b.held() == [LINK_NODES, PRUNE] {
            break stopped.elapsed();
        }
        assert!(stopped.elapsed() < lease * 3, "b never took a's duties over");
        tokio::time::sleep(lease / 3).await;
    };
    println!(
        "duties handed over {} ms after the holder's last renewal (lease {} ms)",
        handed_over.as_millis(),
        lease.as_millis()
    );
    assert!(handed_over >= lease - Duration::from_millis(100), "not before a's lease ran out: {handed_over:?}");
    // `a` comes back: it does not take them back while `b` renews; `b` alone is live until it
    // renews its own row again.
    a.round(&DUTIES).await.unwrap();
    assert!(a.held().is_empty());

    // A clean stop lets go at once: `a` takes them at its next round.
    b.release().await;
    assert!(b.held().is_empty());
    a.round(&DUTIES).await.unwrap();
    assert_eq!(a.held(), [LINK_NODES, PRUNE]);
    assert_eq!(a.shard(), Shard { index: 0, of: 1 }, "b is no longer live");

    // The server's own replica says what it holds, on /readyz and in /metrics.
    app.state.leases.round(&DUTIES).await.unwrap();
    let ready = app.get("/readyz").await.text().await.unwrap();
    assert!(ready.starts_with("ready\nreplica "), "{ready}");
    assert!(ready.contains("leases held: none"), "a holds them: {ready}");
    a.release().await;
    app.state.leases.round(&DUTIES).await.unwrap();
    let ready = app.get("/readyz").await.text().await.unwrap();
    assert!(ready.contains("leases held: link-nodes, prune\nBMCs polled: share 1 of 1"), "{ready}");
    let metrics = app.get("/metrics").await.text().await.unwrap();
    assert!(metrics.contains("pangea_lease_held{duty=\"prune\"} 1"), "{metrics}");
    assert!(metrics.contains("pangea_replicas_live 1"), "{metrics}");
}

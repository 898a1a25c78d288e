//! Criterion micro-benchmarks of connection admission: what taking and giving back a slot
//! costs per connection now that every admitted connection is also an eviction candidate
//! (`http/eviction.rs`), next to the bare semaphore it was before; and what making room
//! costs when every slot is taken. Run: `cargo bench -p camgate --bench admission`.

#![expect(
    missing_docs,
    reason = "criterion_group! generates an undocumented function"
)]
use std::sync::Arc;

use camgate::http::admission::{Admission, Admit, ConnectionLimits};
use camgate::telemetry::Metrics;
use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use tokio::sync::Semaphore;

/// Admission with `held` connections already in (past their headers, as viewers are) and
/// `silent` ones still sending headers, of a gateway with the default 4096 + 256 slots.
fn admission_with(held: usize, silent: usize) -> (Admission, Vec<impl Sized>) {
    let admission = Admission::new(ConnectionLimits::default(), Metrics::new());
    let mut keep = Vec::new();
    for n in 0..held + silent {
        let Admit::Now(permit) = admission.admit() else {
            panic!("no slot for connection {n}");
        };
        if n < held {
            permit.eviction().headers_complete();
        }
        keep.push(permit);
    }
    (admission, keep)
}

fn admit_and_release(c: &mut Criterion) {
    let mut group = c.benchmark_group("connection_admission");
    // Before eviction: a bare owned permit from the pool (what `admit` was).
    let bare = Arc::new(Semaphore::new(4096));
    group.bench_function("bare_semaphore_permit", |b| {
        b.iter(|| drop(Arc::clone(&bare).try_acquire_owned().unwrap()))
    });
    for (held, silent) in [(0, 0), (4000, 0), (2000, 2000)] {
        let (admission, _keep) = admission_with(held, silent);
        group.bench_with_input(
            BenchmarkId::new("admit_headers_release", format!("{held}+{silent}")),
            &(),
            |b, ()| {
                b.iter(|| {
                    let Admit::Now(permit) = admission.admit() else {
                        panic!("full");
                    };
                    permit.eviction().headers_complete();
                    drop(permit);
                })
            },
        );
    }
    group.finish();
}

fn make_room(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
    let mut group = c.benchmark_group("connection_admission");
    // Every slot taken, all of them silent: each newcomer evicts the oldest and takes its
    // slot (the evicted connection's task dropping it is simulated by dropping it here).
    let admission = Admission::new(
        ConnectionLimits {
            evict_after: std::time::Duration::ZERO,
            ..ConnectionLimits::default()
        },
        Metrics::new(),
    );
    let limits = ConnectionLimits::default();
    let mut silent = std::collections::VecDeque::new();
    for _ in 0..limits.max_connections + limits.reserve_connections {
        let Admit::Now(permit) = admission.admit() else {
            panic!("a slot short");
        };
        silent.push_back(permit);
    }
    group.bench_function("evict_oldest_and_take_its_slot", |b| {
        b.iter(|| {
            let Admit::AfterEviction(ticket) = admission.admit() else {
                panic!("no candidate");
            };
            drop(silent.pop_front());
            let permit = runtime
                .block_on(admission.after_eviction(ticket))
                .expect("the freed slot");
            silent.push_back(permit);
        })
    });
    group.finish();
}

// `criterion_group!` generates an undocumented public function.
criterion_group!(benches, admit_and_release, make_room);
criterion_main!(benches);

//! Session analytics: buckets add up across batches, series are aggregated per slot (the
//! busiest minute's open connections, the sums of the rest), codes and top lists are totals,
//! and retention deletes old minutes only.

use wsgate_store::analytics::{AnalyticsFilter, CodeCount, CodeKind, Counts, MinuteBucket, Span, TopBy};

use super::{Db, NOW};

/// The start of a minute near [`NOW`].
const T0: i64 = NOW - NOW % 60;

fn bucket(minute: i64, api: &str, application: &str, counts: Counts, codes: &[(CodeKind, u16, u64)]) -> MinuteBucket {
    MinuteBucket { minute, api: api.into(), application: application.into(), counts, codes: codes.to_vec() }
}

fn traffic(open: u64, messages: u64) -> Counts {
    Counts {
        opened: 1,
        open_connections: open,
        messages_in: messages,
        bytes_in: messages * 10,
        messages_out: messages * 2,
        bytes_out: messages * 20,
        ..Counts::default()
    }
}

const API: AnalyticsFilter<'static> = AnalyticsFilter { api: Some("api-1"), application: None };

pub async fn analytics_buckets_add_up_and_aggregate_per_slot(db: Db) {
    let span = Span { from: T0, to: T0 + 3600, step: 60 };
    assert_eq!(db.analytics_series(API, span).await.expect("series"), vec![], "nothing yet");
    db.add_analytics(&[]).await.expect("an empty batch is fine");

    let first = [
        bucket(T0, "api-1", "app-a", traffic(2, 5), &[(CodeKind::CloseClient, 1000, 1)]),
        bucket(T0, "api-1", "app-b", traffic(3, 1), &[]),
        bucket(T0 + 60, "api-1", "app-a", traffic(1, 7), &[]),
        bucket(T0 + 60, "api-1", "", Counts { refused: 2, ..Counts::default() }, &[(CodeKind::Refused, 401, 2)]),
        bucket(T0, "api-2", "app-a", traffic(9, 100), &[]),
    ];
    db.add_analytics(&first).await.expect("add");
    // A second batch adds to the same minute instead of replacing it.
    let second =
        [bucket(T0, "api-1", "app-a", traffic(1, 5), &[(CodeKind::CloseClient, 1000, 2), (CodeKind::Refused, 70, 1)])];
    db.add_analytics(&second).await.expect("add again");

    let minutes = db.analytics_series(API, span).await.expect("series");
    assert_eq!(minutes.len(), 2);
    assert_eq!(minutes[0].at, T0);
    assert_eq!(minutes[0].counts.opened, 3);
    assert_eq!(minutes[0].counts.open_connections, 6, "2 + 3 + 1 in the first minute");
    assert_eq!(minutes[0].counts.messages_in, 11);
    assert_eq!(minutes[0].counts.bytes_out, 220);
    assert_eq!(minutes[1].at, T0 + 60);
    assert_eq!(minutes[1].counts.refused, 2);
    assert_eq!(minutes[1].counts.messages_out, 14);

    // One slot of 15 minutes: sums, and the busiest minute's open connections.
    let quarter = db.analytics_series(API, Span { from: T0, to: T0 + 3600, step: 900 }).await.expect("series");
    assert_eq!(quarter.len(), 1);
    assert_eq!(quarter[0].at, T0);
    assert_eq!(quarter[0].counts.open_connections, 6);
    assert_eq!(quarter[0].counts.opened, 4);
    assert_eq!(quarter[0].counts.messages_in, 18);

    // The range is half-open and the application filter narrows.
    let later = db.analytics_series(API, Span { from: T0 + 60, to: T0 + 120, step: 60 }).await.expect("series");
    assert_eq!(later.len(), 1);
    let app_b = AnalyticsFilter { api: None, application: Some("app-b") };
    let only_b = db.analytics_series(app_b, span).await.expect("series");
    assert_eq!(only_b.len(), 1);
    assert_eq!(only_b[0].counts.open_connections, 3);

    let codes = db.analytics_codes(API, T0, T0 + 3600).await.expect("codes");
    assert_eq!(
        codes,
        vec![
            CodeCount { kind: CodeKind::CloseClient, code: 1000, total: 3 },
            CodeCount { kind: CodeKind::Refused, code: 401, total: 2 },
            CodeCount { kind: CodeKind::Refused, code: 0, total: 1 },
        ],
        "most frequent first; a status outside 100-599 is kept as 0"
    );

    let top = db.analytics_top(API, T0, T0 + 3600, TopBy::Application, 10).await.expect("top");
    let names: Vec<_> = top.iter().map(|entry| (entry.key.as_str(), entry.messages, entry.connections)).collect();
    assert_eq!(names, vec![("app-a", 51, 3), ("app-b", 3, 1)], "keyless connections are no application");
    let apis = db
        .analytics_top(AnalyticsFilter { api: None, application: Some("app-a") }, T0, T0 + 3600, TopBy::Api, 1)
        .await
        .expect("top");
    assert_eq!(apis.len(), 1, "limited");
    assert_eq!(apis[0].key, "api-2");
}

pub async fn analytics_retention_deletes_old_minutes_only(db: Db) {
    let old = bucket(T0 - 7200, "api-1", "app-a", traffic(1, 1), &[(CodeKind::CloseUpstream, 1011, 1)]);
    let new = bucket(T0, "api-1", "app-a", traffic(1, 1), &[(CodeKind::CloseUpstream, 1011, 1)]);
    db.add_analytics(&[old, new]).await.expect("add");
    let span = Span { from: T0 - 7200, to: T0 + 60, step: 60 };
    assert_eq!(db.analytics_series(API, span).await.expect("series").len(), 2);
    db.delete_analytics_before(T0).await.expect("retention");
    let left = db.analytics_series(API, span).await.expect("series");
    assert_eq!(left.iter().map(|point| point.at).collect::<Vec<_>>(), vec![T0]);
    let codes = db.analytics_codes(API, T0 - 7200, T0 + 60).await.expect("codes");
    assert_eq!(codes, vec![CodeCount { kind: CodeKind::CloseUpstream, code: 1011, total: 1 }]);
    db.delete_analytics_before(T0).await.expect("deleting nothing is fine");
}

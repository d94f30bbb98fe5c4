//! Session analytics: batches of per-minute buckets added in one transaction, retention, and
//! the aggregations the charts read (summed in SQL, so a week's chart reads a few rows).

use super::{from_i64, read, write};
use crate::analytics::{
    AnalyticsFilter, CodeCount, CodeKind, Counts, MinuteBucket, SeriesPoint, Span, TopBy, TopEntry,
};
use crate::sql::{Backend, Param, Row, Statement};
use crate::{Result, StoreError};

/// Counts are `u64` in Rust and `BIGINT` in the database; a count beyond `i64::MAX` is
/// unreachable in practice and is stored as the largest.
fn count(value: u64) -> Param {
    Param::Int(i64::try_from(value).unwrap_or(i64::MAX))
}

/// Adds every bucket to what is stored (counts only grow), all or nothing.
pub(super) async fn add_analytics(db: &impl Backend, buckets: &[MinuteBucket]) -> Result<()> {
    const MINUTES: &str = "INSERT INTO analytics_minutes (minute, api, application, opened, closed, refused, \
        open_connections, messages_in, bytes_in, messages_out, bytes_out) \
        VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) \
        ON CONFLICT (minute, api, application) DO UPDATE SET \
        opened = analytics_minutes.opened + excluded.opened, \
        closed = analytics_minutes.closed + excluded.closed, \
        refused = analytics_minutes.refused + excluded.refused, \
        open_connections = analytics_minutes.open_connections + excluded.open_connections, \
        messages_in = analytics_minutes.messages_in + excluded.messages_in, \
        bytes_in = analytics_minutes.bytes_in + excluded.bytes_in, \
        messages_out = analytics_minutes.messages_out + excluded.messages_out, \
        bytes_out = analytics_minutes.bytes_out + excluded.bytes_out";
    const CODES: &str = "INSERT INTO analytics_codes (minute, api, application, kind, code, total) \
        VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (minute, api, application, kind, code) \
        DO UPDATE SET total = analytics_codes.total + excluded.total";
    if buckets.is_empty() {
        return Ok(());
    }
    // Every writer upserts in the same key order, so two nodes adding to the same buckets of a
    // shared PostgreSQL wait for each other instead of deadlocking.
    let mut ordered: Vec<&MinuteBucket> = buckets.iter().collect();
    ordered.sort_by(|a, b| (a.minute, &a.api, &a.application).cmp(&(b.minute, &b.api, &b.application)));
    let mut statements = Vec::with_capacity(buckets.len());
    for bucket in ordered {
        let key = || -> Vec<Param> {
            vec![Param::Int(bucket.minute), bucket.api.as_str().into(), bucket.application.as_str().into()]
        };
        let c = &bucket.counts;
        let mut params = key();
        params.extend(
            [c.opened, c.closed, c.refused, c.open_connections, c.messages_in, c.bytes_in, c.messages_out, c.bytes_out]
                .map(count),
        );
        statements.push(Statement::new(MINUTES, params));
        for &(kind, code, total) in &bucket.codes {
            let mut params = key();
            params.extend([kind.as_str().into(), Param::Int(i64::from(kind.bounded(code))), count(total)]);
            statements.push(Statement::new(CODES, params));
        }
    }
    write(db, statements, &[], |rule| format!("analytics buckets break {rule:?}")).await
}

/// Deletes every bucket of a minute before `minute`.
pub(super) async fn delete_analytics_before(db: &impl Backend, minute: i64) -> Result<()> {
    const MINUTES: &str = "DELETE FROM analytics_minutes WHERE minute < $1";
    const CODES: &str = "DELETE FROM analytics_codes WHERE minute < $1";
    let statements =
        vec![Statement::new(MINUTES, vec![Param::Int(minute)]), Statement::new(CODES, vec![Param::Int(minute)])];
    write(db, statements, &[], |rule| format!("analytics retention breaks {rule:?}")).await
}

/// `[from, to, api or '', application or '']`, the first parameters of every read.
fn range_params(filter: AnalyticsFilter<'_>, from: i64, to: i64) -> Vec<Param> {
    vec![Param::Int(from), Param::Int(to), filter.api.unwrap_or("").into(), filter.application.unwrap_or("").into()]
}

fn unsigned(row: &Row, index: usize, column: &str) -> Result<u64> {
    from_i64(row.opt_int(index)?.unwrap_or(0), column)
}

/// The slots of `span` that hold data, in time order (the caller fills the gaps).
pub(super) async fn analytics_series(
    db: &impl Backend,
    filter: AnalyticsFilter<'_>,
    span: Span,
) -> Result<Vec<SeriesPoint>> {
    // Minutes are summed over applications first, so a slot's `open_connections` is its
    // busiest minute's, not the sum of every minute's.
    const SQL: &str = "SELECT slot, CAST(SUM(opened) AS BIGINT), CAST(SUM(closed) AS BIGINT), \
        CAST(SUM(refused) AS BIGINT), CAST(MAX(open_connections) AS BIGINT), CAST(SUM(messages_in) AS BIGINT), \
        CAST(SUM(bytes_in) AS BIGINT), CAST(SUM(messages_out) AS BIGINT), CAST(SUM(bytes_out) AS BIGINT) \
        FROM (SELECT (minute - $1) / $5 AS slot, SUM(opened) AS opened, SUM(closed) AS closed, \
        SUM(refused) AS refused, SUM(open_connections) AS open_connections, SUM(messages_in) AS messages_in, \
        SUM(bytes_in) AS bytes_in, SUM(messages_out) AS messages_out, SUM(bytes_out) AS bytes_out \
        FROM analytics_minutes WHERE minute >= $1 AND minute < $2 AND ($3 = '' OR api = $3) \
        AND ($4 = '' OR application = $4) GROUP BY minute) AS per_minute GROUP BY slot";
    if span.step <= 0 || span.to <= span.from {
        return Err(StoreError::Backend(format!("an analytics span needs a positive step and length: {span:?}")));
    }
    let mut params = range_params(filter, span.from, span.to);
    params.push(Param::Int(span.step));
    let mut points = read(db, SQL, params, |row| {
        Ok(SeriesPoint {
            at: span.from + row.int(0)? * span.step,
            counts: Counts {
                opened: unsigned(row, 1, "opened")?,
                closed: unsigned(row, 2, "closed")?,
                refused: unsigned(row, 3, "refused")?,
                open_connections: unsigned(row, 4, "open_connections")?,
                messages_in: unsigned(row, 5, "messages_in")?,
                bytes_in: unsigned(row, 6, "bytes_in")?,
                messages_out: unsigned(row, 7, "messages_out")?,
                bytes_out: unsigned(row, 8, "bytes_out")?,
            },
        })
    })
    .await?;
    points.sort_by_key(|point| point.at);
    Ok(points)
}

/// Refusals by status and closes by code over `[from, to)`, most frequent first.
pub(super) async fn analytics_codes(
    db: &impl Backend,
    filter: AnalyticsFilter<'_>,
    from: i64,
    to: i64,
) -> Result<Vec<CodeCount>> {
    const SQL: &str = "SELECT kind, code, CAST(SUM(total) AS BIGINT) FROM analytics_codes \
        WHERE minute >= $1 AND minute < $2 AND ($3 = '' OR api = $3) AND ($4 = '' OR application = $4) \
        GROUP BY kind, code";
    let mut codes = read(db, SQL, range_params(filter, from, to), |row| {
        let kind = row.text(0)?;
        Ok(CodeCount {
            kind: CodeKind::parse(&kind).ok_or_else(|| super::unknown("analytics code kind", &kind))?,
            code: from_i64(row.int(1)?, "code")?,
            total: unsigned(row, 2, "total")?,
        })
    })
    .await?;
    codes.sort_by(|a, b| b.total.cmp(&a.total).then((a.kind, a.code).cmp(&(b.kind, b.code))));
    Ok(codes)
}

/// The `limit` applications (or APIs) with the most messages over `[from, to)`, then by
/// connections; keyless connections are not an application.
pub(super) async fn analytics_top(
    db: &impl Backend,
    filter: AnalyticsFilter<'_>,
    from: i64,
    to: i64,
    by: TopBy,
    limit: usize,
) -> Result<Vec<TopEntry>> {
    const BY_APPLICATION: &str = "SELECT application, CAST(SUM(opened) AS BIGINT), \
        CAST(SUM(messages_in + messages_out) AS BIGINT), CAST(SUM(bytes_in + bytes_out) AS BIGINT), \
        CAST(SUM(refused) AS BIGINT) FROM analytics_minutes WHERE minute >= $1 AND minute < $2 \
        AND ($3 = '' OR api = $3) AND ($4 = '' OR application = $4) AND application <> '' GROUP BY application";
    const BY_API: &str = "SELECT api, CAST(SUM(opened) AS BIGINT), \
        CAST(SUM(messages_in + messages_out) AS BIGINT), CAST(SUM(bytes_in + bytes_out) AS BIGINT), \
        CAST(SUM(refused) AS BIGINT) FROM analytics_minutes WHERE minute >= $1 AND minute < $2 \
        AND ($3 = '' OR api = $3) AND ($4 = '' OR application = $4) GROUP BY api";
    let sql = match by {
        TopBy::Application => BY_APPLICATION,
        TopBy::Api => BY_API,
    };
    let mut top = read(db, sql, range_params(filter, from, to), |row| {
        Ok(TopEntry {
            key: row.text(0)?,
            connections: unsigned(row, 1, "opened")?,
            messages: unsigned(row, 2, "messages")?,
            bytes: unsigned(row, 3, "bytes")?,
            refused: unsigned(row, 4, "refused")?,
        })
    })
    .await?;
    top.sort_by(|a, b| (b.messages, b.connections, &a.key).cmp(&(a.messages, a.connections, &b.key)));
    top.truncate(limit);
    Ok(top)
}

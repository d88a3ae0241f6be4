//! `user_daily_totals`: one record per account and day with the account metrics Graph serves as
//! `metric_type=total_value` (views, reach, accounts engaged, interactions, likes, comments,
//! shares, saves, replies, reposts, follows and unfollows, profile link taps), and their
//! breakdowns as nested objects: `views_by_media_product_type: {"REEL": 10, "FEED": 4}`.
//!
//! Why nested objects and not a long-format stream: a day's record is replaced as a whole when
//! its lagged figures are read again, breakdown values included. In a long format, a dimension
//! value that disappears on the re-read would leave its old row behind in a deduped table.
//!
//! Requests: per account and UTC day, one for the totals and one per breakdown, through the Batch
//! API, five days per call. Incremental on `date`: each sync re-reads `daily_totals_lag_days` (default 2) before the
//! cursor, because Meta's figures can lag up to 48 hours. A first sync starts at `start_date`, at
//! most as far back as Graph serves (two years); without one, 30 days back.

use super::{
    Dated, DatedProgress, FULL_REFRESH_AND_INCREMENTAL, ReadContext, Reader, Reading, StreamDef, StreamOutput,
};
use crate::graph::{self, TotalValue};
use crate::http::answer::{Id, ListOf, Object, present};
use crate::http::error::RequestError;
use crate::metrics::{InsightsItem, Scope, TOTALS_BREAKDOWNS, get_insights};
use crate::model::{Account, SyncMode};
use crate::protocol::LogLevel;
use crate::record::RawRecord;
use crate::state::{PartitionCursors, format_cursor};
use chrono::{DateTime, Duration, DurationRound, Utc};
use futures::FutureExt;
use serde::Deserialize;

pub const NAME: &str = "user_daily_totals";

pub const STREAM: StreamDef = StreamDef {
    cursor: Some("date"),
    sync_modes: FULL_REFRESH_AND_INCREMENTAL,
    resumable: true,
    metric_fields: Some(crate::metrics::totals_fields),
    ..StreamDef::full_refresh(NAME, SCHEMA, &["business_account_id", "date"], Reader::PerAccount(start))
};

/// The record schema `discover` returns (its metric fields follow the chosen metrics).
pub const SCHEMA: &[u8] = crate::packed::packed!("src/streams/schemas/user_daily_totals.json");

/// How far back Graph serves account insights (its "last 2 years"), less a day of margin.
const MAX_HISTORY_DAYS: i64 = 729;
/// A first sync without `start_date` reads the last 30 days and today, as `user_insights` does: two
/// years of days are 3,650 calls per account, which a user asks for by setting `start_date`.
const DAYS_WITHOUT_START_DATE: i64 = 30;
/// Days per read (25 requests, one Batch API call), and reads of one account in flight. An
/// answer with breakdowns is about 7 KB a day and takes about four times that while it is parsed,
/// in every tenant: 10 days two at a time cost 460 KB more per tenant at 1,000 tenants than 5 days
/// one at a time (136 KB), for 4 round trips a month instead of 7.
const DAYS_PER_READ: usize = 5;
const READS_IN_FLIGHT: usize = 1;

fn start<'a>(ctx: &'a ReadContext<'a>, accounts: &'a [Account], out: &'a StreamOutput<'a>) -> Reading<'a> {
    async move {
        let incoming = match out.sync_mode {
            SyncMode::Incremental => ctx.state.get(NAME),
            SyncMode::FullRefresh => None,
        };
        let mut cursors = PartitionCursors::read(NAME, "date", incoming)?;
        let today = day_of(ctx.now);
        cursors.clamp_to(today).iter().for_each(|warning| ctx.sink.log(LogLevel::Warn, warning));
        let earliest = today - Duration::days(MAX_HISTORY_DAYS);
        let first = ctx
            .config
            .start_date
            .map_or(today - Duration::days(DAYS_WITHOUT_START_DATE), |start| day_of(start).max(earliest));
        let lag = Duration::days(i64::from(ctx.config.daily_totals_lag_days));
        let windows = |account: &Account| {
            let from =
                cursors.get(&account.business_account_id).map_or(first, |cursor| (day_of(cursor) - lag).max(first));
            let days: Vec<DateTime<Utc>> =
                (0..).map(|n| from + Duration::days(n)).take_while(|day| *day <= today).collect();
            (days.chunks(DAYS_PER_READ).map(<[_]>::to_vec).collect(), None)
        };
        let read = |account, days| read_days(ctx, account, days);
        let progress = DatedProgress { cursors: cursors.clone(), started: ctx.now, in_flight: READS_IN_FLIGHT };
        super::read_dated(ctx, accounts, progress, windows, read, out).await
    }
    .boxed_local()
}

/// The UTC day a moment falls in, as its midnight.
fn day_of(moment: DateTime<Utc>) -> DateTime<Utc> {
    moment.duration_trunc(Duration::days(1)).unwrap_or(moment)
}

/// A total_value answer: one entry per metric.
#[derive(Deserialize)]
struct Totals {
    data: ListOf<Total>,
}

#[derive(Deserialize)]
struct Total {
    name: String,
    #[serde(default)]
    total_value: Option<Object<TotalValue>>,
    /// Checked where present, like every id.
    #[serde(default, rename = "id", deserialize_with = "present")]
    _id: Option<Id>,
}

/// The requests of one account's days (the totals and each breakdown with a chosen metric), and
/// one record per day Graph answered.
async fn read_days(ctx: &ReadContext<'_>, account: &Account, days: Vec<DateTime<Utc>>) -> Result<Dated, RequestError> {
    let chosen = ctx.config.metrics.totals();
    let groups: Vec<(Option<&'static str>, Vec<String>)> = std::iter::once((None, chosen.clone()))
        .chain(TOTALS_BREAKDOWNS.iter().map(|(breakdown, supported)| {
            (Some(*breakdown), chosen.iter().filter(|m| supported.contains(&m.as_str())).cloned().collect())
        }))
        .filter(|(_, metrics)| !metrics.is_empty())
        .collect();
    let path = format!("/{}/insights", account.business_account_id);
    let mut items = Vec::new();
    for day in &days {
        for (breakdown, metrics) in &groups {
            let mut query = vec![
                ("metric_type", "total_value".to_owned()),
                ("period", "day".to_owned()),
                ("since", format_cursor(*day)),
                ("until", format_cursor(*day + Duration::days(1))),
            ];
            query.extend(breakdown.map(|breakdown| ("breakdown", breakdown.to_owned())));
            items.push(InsightsItem {
                path: path.clone(),
                scope: Scope::Totals(*breakdown),
                metrics: metrics.clone(),
                query,
            });
        }
    }
    let batch = ctx.config.optimizations.batch_insights;
    let ignore = graph::ignore_account_insights_errors;
    let mut outcomes =
        get_insights::<Object<Totals>>(ctx.client, ctx.healer, &items, batch, NAME, ignore).await.into_iter();
    let mut records = Vec::new();
    for day in days {
        let mut record = RawRecord::default();
        record.add("date", &format_cursor(day));
        let mut answered = false;
        for (breakdown, _) in &groups {
            let Some(Object(totals)) = outcomes.next().transpose()?.flatten() else { continue };
            answered = true;
            for Total { name, total_value, .. } in totals.data.0 {
                let total = total_value.map(|Object(total)| total).unwrap_or_default();
                match breakdown {
                    None => record.add(name, &total.value),
                    Some(breakdown) => record.add(format!("{name}_by_{breakdown}"), &total.first_breakdown()),
                }
            }
        }
        if answered {
            record.add("page_id", &account.page_id);
            record.add("business_account_id", &account.business_account_id);
            records.push((record, day));
        }
    }
    Ok(records)
}

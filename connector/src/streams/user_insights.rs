//! `user_insights` (`docs/source-instagram.md` §8.2): daily account insights. Per account, windows
//! from the cursor (minus a one-day lookback) or the start date up to now + 1 day; four metric
//! groups per window merged into one record per day. Incremental on `date`.

use super::{DatedProgress, FULL_REFRESH_AND_INCREMENTAL, ReadContext, Reader, Reading, StreamDef, StreamOutput};
use crate::graph::{self, Metrics};
use crate::http::error::RequestError;
use crate::metrics::{InsightsItem, Scope, get_insights};
use crate::model::{Account, SyncMode};
use crate::protocol::{Failure, LogLevel};
use crate::record::RawRecord;
use crate::state::{PartitionCursors, format_cursor, parse_cursor};
use chrono::{DateTime, Duration, DurationRound, Utc};
use futures::FutureExt;

pub const NAME: &str = "user_insights";

pub const STREAM: StreamDef = StreamDef {
    cursor: Some("date"),
    sync_modes: FULL_REFRESH_AND_INCREMENTAL,
    resumable: true,
    ..StreamDef::full_refresh(NAME, SCHEMA, &["business_account_id", "date"], Reader::PerAccount(start))
};

/// Plans the read from the state (a full refresh ignores it, `docs/source-instagram.md` §13), then
/// reads.
fn start<'a>(ctx: &'a ReadContext<'a>, accounts: &'a [Account], out: &'a StreamOutput<'a>) -> Reading<'a> {
    async move {
        let incoming = match out.sync_mode {
            SyncMode::Incremental => ctx.state.get(NAME),
            SyncMode::FullRefresh => None,
        };
        let cursors = PartitionCursors::from_state(incoming)?;
        let window_days = if ctx.config.optimizations.insights_ranges { MAX_RANGE_DAYS } else { 1 };
        let mut plan = Plan { now: ctx.now, start_date: ctx.config.start_date, cursors, window_days };
        plan.clamp_future_cursors().iter().for_each(|warning| ctx.sink.log(LogLevel::Warn, warning));
        read(ctx, accounts, &plan, out).await
    }
    .boxed_local()
}

/// The record schema `discover` returns.
pub const SCHEMA: &[u8] = crate::packed::packed!("src/streams/schemas/user_insights.json");

/// The four metric groups requested for every window: (period, metrics).
pub const GROUPS: [(&str, &str); 4] =
    [("day", "follower_count,reach"), ("week", "reach"), ("days_28", "reach"), ("lifetime", "online_followers")];
/// A first sync never looks back further than this, whatever `start_date` says.
const MAX_HISTORY: i64 = 30;

/// What drives one read of the stream.
pub struct Plan {
    pub now: DateTime<Utc>,
    pub start_date: Option<DateTime<Utc>>,
    /// Incoming cursors (empty for a full refresh).
    pub cursors: PartitionCursors,
    /// Window length: 1 day (the reference) or up to [`MAX_RANGE_DAYS`] (one request per metric
    /// group covering many days, split back into daily records).
    pub window_days: i64,
}

/// Graph refuses account-insights ranges longer than this.
pub const MAX_RANGE_DAYS: i64 = 30;

impl Plan {
    fn now(&self) -> DateTime<Utc> {
        self.now.duration_trunc(Duration::seconds(1)).unwrap_or(self.now)
    }

    /// `max(start_date, now − 30 days)`.
    pub fn start(&self) -> DateTime<Utc> {
        let floor = self.now() - Duration::days(MAX_HISTORY);
        self.start_date.map_or(floor, |start| start.max(floor))
    }

    /// now + 1 day (4.2.18: accounts east of UTC otherwise lose "today").
    pub fn end(&self) -> DateTime<Utc> {
        self.now() + Duration::days(1)
    }

    /// Moves cursors beyond [`end`](Self::end) back to it (nothing is read for them this sync, and
    /// the state written back is no longer in the future); one warning per account.
    pub fn clamp_future_cursors(&mut self) -> Vec<String> {
        let end = self.end();
        self.cursors.clamp_to(end)
    }

    /// The windows of one account: `[since, until)` pairs of at most `window_days`.
    pub fn windows(&self, account: &str) -> Vec<(DateTime<Utc>, DateTime<Utc>)> {
        let lower = match self.cursors.get(account) {
            Some(cursor) => self.start().max(cursor - Duration::days(1)),
            None => self.start(),
        };
        let end = self.end();
        let mut windows = Vec::new();
        let mut since = lower;
        while since < end {
            let until = (since + Duration::days(self.window_days.clamp(1, MAX_RANGE_DAYS))).min(end);
            windows.push((since, until));
            since = until;
        }
        windows
    }
}

/// The records of one group's response: `{date, metric[_suffix]: values[j].value}`. A one-day
/// window reads only `values[0]` (the reference); a range reads one record per value (one per
/// day). Empty for an empty response.
pub fn extract(metrics: &Metrics, period: &str, every_value: bool) -> Vec<RawRecord> {
    let Some(first) = metrics.metrics.first() else { return Vec::new() };
    let suffix = match period {
        "week" => "_week",
        "days_28" => "_days_28",
        _ => "",
    };
    let count = if every_value { first.values.len().max(1) } else { 1 };
    (0..count)
        .map(|index| {
            let mut record = RawRecord::default();
            if let Some(date) = first.values.get(index).and_then(|value| value.end_time.as_deref()) {
                record.add("date", &date);
            }
            for metric in &metrics.metrics {
                let Some(name) = &metric.name else { continue };
                record.insert(format!("{name}{suffix}"), metric.value(index));
            }
            record
        })
        .collect()
}

/// Merges the groups' records by their raw `date`; later groups update earlier keys.
pub fn merge(records: Vec<RawRecord>) -> Vec<RawRecord> {
    let mut merged: Vec<RawRecord> = Vec::new();
    for record in records {
        let date = record.get("date").map(|date| date.get().to_owned());
        match merged.iter_mut().find(|m| m.get("date").map(|d| d.get()) == date.as_deref()) {
            Some(existing) => record.into_fields().for_each(|(name, value)| existing.insert(name, value)),
            None => merged.push(record),
        }
    }
    merged
}

/// The four groups of one window, merged, as finished records (with ids and RFC 3339 `date`).
async fn read_window(
    ctx: &ReadContext<'_>,
    account: &Account,
    (since, until): (DateTime<Utc>, DateTime<Utc>),
    latest_allowed: DateTime<Utc>,
    every_value: bool,
) -> Result<Vec<(RawRecord, DateTime<Utc>)>, RequestError> {
    let (since, until) = (format_cursor(since), format_cursor(until));
    let path = format!("/{}/insights", account.business_account_id);
    let client = ctx.client;
    let items: Vec<InsightsItem> = GROUPS
        .iter()
        .map(|(period, metrics)| InsightsItem {
            path: path.clone(),
            scope: Scope::Account(period),
            metrics: metrics.split(',').map(str::to_owned).collect(),
            query: vec![("period", period.to_string()), ("since", since.clone()), ("until", until.clone())],
        })
        .collect();
    let ignore = graph::ignore_account_insights_errors;
    let responses = get_insights::<Metrics>(client, ctx.healer, &items, false, NAME, ignore).await;
    let mut extracted = Vec::new();
    for (body, (period, _)) in responses.into_iter().zip(GROUPS) {
        let Some(body) = body? else { continue };
        let records = extract(&body, period, every_value);
        if records.is_empty() {
            client.sink().log(
                LogLevel::Info,
                &format!("{NAME}: no {period} data for account {} in [{since}, {until})", account.business_account_id),
            );
        }
        extracted.extend(records);
    }
    let mut records = Vec::new();
    for mut record in merge(extracted) {
        let Some(date) = record.text("date").as_deref().and_then(parse_cursor) else {
            client.sink().log(
                LogLevel::Warn,
                &format!("{NAME}: dropped a record without a usable date for account {}", account.business_account_id),
            );
            continue;
        };
        if date > latest_allowed {
            continue;
        }
        record.add("page_id", &account.page_id);
        record.add("business_account_id", &account.business_account_id);
        record.in_rfc3339("date");
        records.push((record, date));
    }
    Ok(records)
}

/// Reads every account's windows in order, emitting the records at or after each account's cursor
/// (see [`super::read_dated`]).
pub async fn read(
    ctx: &ReadContext<'_>,
    accounts: &[Account],
    plan: &Plan,
    out: &StreamOutput<'_>,
) -> Result<(), Failure> {
    let (latest_allowed, every_value) = (plan.end(), plan.window_days > 1);
    let windows = |account: &Account| {
        let id = &account.business_account_id;
        (plan.windows(id), plan.cursors.get(id))
    };
    let read_window = |account, window| read_window(ctx, account, window, latest_allowed, every_value);
    let progress =
        DatedProgress { cursors: plan.cursors.clone(), started: plan.now(), in_flight: ctx.config.num_workers };
    super::read_dated(ctx, accounts, progress, windows, read_window, out).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::testing::{ScriptedRuntime, client, respond};
    use crate::protocol::testing::{Message, RecordingSink};
    use crate::streams::StreamOutput;
    use serde_json::{Value, json};

    fn at(text: &str) -> DateTime<Utc> {
        parse_cursor(text).expect("date")
    }

    fn plan(now: &str, start: Option<&str>, state: Option<Value>) -> Plan {
        Plan {
            now: at(now),
            start_date: start.map(at),
            cursors: PartitionCursors::from_state(state.as_ref()).expect("state"),
            window_days: 1,
        }
    }

    #[test]
    fn first_sync_starts_at_start_date_clamped_to_30_days_and_ends_tomorrow() {
        let p = plan("2024-01-15T12:00:00Z", Some("2024-01-15T00:00:00Z"), None);
        assert_eq!(
            p.windows("a"),
            vec![
                (at("2024-01-15T00:00:00Z"), at("2024-01-16T00:00:00Z")),
                (at("2024-01-16T00:00:00Z"), at("2024-01-16T12:00:00Z")),
            ]
        );
        let old = plan("2024-01-15T12:00:00Z", Some("2020-01-01T00:00:00Z"), None);
        assert_eq!(old.windows("a")[0].0, at("2023-12-16T12:00:00Z"), "start is clamped to now - 30 days");
        assert_eq!(old.windows("a").len(), 31);
    }

    #[test]
    fn range_windows_cover_the_same_span_in_30_day_steps() {
        let mut p = plan("2024-01-15T12:00:00Z", None, None);
        p.window_days = 30;
        assert_eq!(
            p.windows("a"),
            vec![
                (at("2023-12-16T12:00:00Z"), at("2024-01-15T12:00:00Z")),
                (at("2024-01-15T12:00:00Z"), at("2024-01-16T12:00:00Z")),
            ]
        );
    }

    #[test]
    fn a_future_cursor_starts_one_day_back_and_a_far_future_one_reads_nothing() {
        let state = json!({"states": [{"partition": {"business_account_id": "a"}, "cursor": {"date": "2024-01-16T07:00:00+00:00"}}]});
        let p = plan("2024-01-15T12:00:00Z", Some("2024-01-14T00:00:00Z"), Some(state));
        assert_eq!(
            p.windows("a"),
            vec![
                (at("2024-01-15T07:00:00Z"), at("2024-01-16T07:00:00Z")),
                (at("2024-01-16T07:00:00Z"), at("2024-01-16T12:00:00Z")),
            ]
        );
        let far = json!({"a": {"date": "2030-01-01T00:00:00+00:00"}});
        assert!(plan("2024-01-15T12:00:00Z", None, Some(far)).windows("a").is_empty());
    }

    #[test]
    fn groups_are_extracted_with_suffixes_and_merged_by_date() {
        let metrics = |value: Value| serde_json::from_value::<Metrics>(value).expect("insights");
        let json_of = |record: &RawRecord| serde_json::to_value(record).expect("json");
        let day = metrics(
            serde_json::from_str(include_str!("../../../tests/fixtures/samples/user_insights.json")).expect("json"),
        );
        let lifetime = metrics(
            serde_json::from_str(include_str!("../../../tests/fixtures/samples/user_insights_for_lifetime.json"))
                .expect("json"),
        );
        let week = metrics(
            json!({"data": [{"name": "reach", "period": "week", "values": [{"value": 3, "end_time": "2024-01-15T07:00:00+0000"}]}]}),
        );
        let records =
            [extract(&day, "day", false), extract(&week, "week", false), extract(&lifetime, "lifetime", false)]
                .concat();
        let merged = merge(records);
        assert_eq!(merged.len(), 1);
        let record = json_of(&merged[0]);
        let keys: Vec<&str> = record.as_object().expect("object").keys().map(String::as_str).collect();
        assert_eq!(keys, ["date", "follower_count", "reach", "reach_week", "online_followers"]);
        assert_eq!(record["date"], "2024-01-15T07:00:00+0000");
        assert_eq!(record["online_followers"]["23"], 2400);
        assert!(extract(&metrics(json!({"data": []})), "day", false).is_empty());
        let range = metrics(json!({"data": [{"name": "reach", "values": [
            {"value": 1, "end_time": "2024-01-14T07:00:00+0000"}, {"value": 2, "end_time": "2024-01-15T07:00:00+0000"}]}]}));
        let days = extract(&range, "days_28", true);
        assert_eq!(days.len(), 2);
        let last = json_of(&days[1]);
        assert_eq!(
            (last["date"].as_str(), last["reach_days_28"].as_i64()),
            (Some("2024-01-15T07:00:00+0000"), Some(2))
        );
        assert_eq!(extract(&range, "days_28", false).len(), 1, "a one-day window reads values[0] only");
    }

    #[test]
    fn many_accounts_checkpoint_every_thousand_records_and_never_repeat_a_state() {
        let now = at("2024-01-15T12:00:00Z");
        let runtime = ScriptedRuntime::new(now, |request| {
            let url = url::Url::parse(&request.url).expect("url");
            let query: std::collections::HashMap<String, String> = url.query_pairs().into_owned().collect();
            let since = parse_cursor(&query["since"]).expect("since");
            let end_time = (since + Duration::hours(7)).format("%Y-%m-%dT%H:%M:%S+0000").to_string();
            let names: Vec<Value> = query["metric"]
                .split(',')
                .map(|m| json!({"name": m, "period": query["period"], "values": [{"value": 1, "end_time": end_time}]}))
                .collect();
            respond(200, json!({ "data": names }))
        });
        let sink = RecordingSink::default();
        let client = client(&runtime, &sink);
        let accounts: Vec<Account> = (0..40)
            .map(|i| Account { business_account_id: format!("acct{i:02}"), page_id: Some(format!("page{i}")) })
            .collect();
        let plan = plan("2024-01-15T12:00:00Z", None, None);
        let out = StreamOutput::new(NAME, SyncMode::Incremental, &sink);
        super::super::with_context(&client, now, |ctx| futures::executor::block_on(read(ctx, &accounts, &plan, &out)))
            .expect("read");
        assert_eq!(out.emitted(), 40 * 31);
        let states: Vec<(Value, u64)> = sink
            .messages
            .borrow()
            .iter()
            .filter_map(|m| match m {
                Message::State(_, state, count) => Some((state.clone(), *count)),
                _ => None,
            })
            .collect();
        assert!(states.iter().all(|(_, count)| *count <= 1_000), "a state at least every 1,000 records");
        assert_eq!(states.iter().map(|(_, c)| c).sum::<u64>(), 40 * 31);
        assert!(states.windows(2).all(|pair| pair[0].0 != pair[1].0), "never two identical states in a row");
        let last = &states.last().expect("state").0;
        assert_eq!(last["states"].as_array().map(Vec::len), Some(40));
        assert_eq!(last["state"]["date"], "2024-01-15T19:00:00+00:00", "the newest record date over all accounts");
    }

    #[test]
    fn records_dated_after_tomorrow_and_empty_responses_are_dropped() {
        let runtime = ScriptedRuntime::new(at("2024-01-15T12:00:00Z"), |request| {
            // The first group answers two days ahead (beyond now + 1 day), the others nothing.
            if request.url.contains("period=day&") {
                respond(
                    200,
                    json!({"data": [{"name": "reach", "values": [{"value": 1, "end_time": "2024-01-17T07:00:00+0000"}]}]}),
                )
            } else {
                respond(200, json!({"data": []}))
            }
        });
        let sink = RecordingSink::default();
        let client = client(&runtime, &sink);
        let account = Account { business_account_id: "a".into(), page_id: Some("p".into()) };
        let window = (at("2024-01-15T12:00:00Z"), at("2024-01-16T12:00:00Z"));
        let records = super::super::with_context(&client, at("2024-01-01T00:00:00Z"), |ctx| {
            futures::executor::block_on(read_window(ctx, &account, window, at("2024-01-16T12:00:00Z"), false))
        })
        .expect("window");
        assert!(records.is_empty(), "2024-01-17T07:00 is later than now + 1 day");
        assert_eq!(
            sink.logs().iter().filter(|(_, m)| m.starts_with("user_insights: no ")).count(),
            3,
            "empty groups are logged"
        );
        // 2024-01-15T20:00 passes at now 2024-01-15T12:00 (the reference's own example).
        let body =
            json!({"data": [{"name": "reach", "values": [{"value": 1, "end_time": "2024-01-15T20:00:00+0000"}]}]});
        let record = extract(&serde_json::from_value(body).expect("insights"), "day", false);
        assert_eq!(record.len(), 1);
    }

    /// Airbyte's own test scenarios write `end_time` with a space; the reference reads it, so the
    /// record is kept, its `date` in RFC 3339.
    #[test]
    fn an_end_time_written_with_a_space_is_read() {
        let runtime = ScriptedRuntime::new(at("2025-07-02T12:00:00Z"), |_| {
            respond(
                200,
                json!({"data": [{"name": "reach", "values": [{"value": 9, "end_time": "2025-07-01 07:00:00+0000"}]}]}),
            )
        });
        let sink = RecordingSink::default();
        let client = client(&runtime, &sink);
        let account = Account { business_account_id: "a".into(), page_id: Some("p".into()) };
        let window = (at("2025-07-01T00:00:00Z"), at("2025-07-02T00:00:00Z"));
        let records = super::super::with_context(&client, at("2024-01-01T00:00:00Z"), |ctx| {
            futures::executor::block_on(read_window(ctx, &account, window, at("2025-07-03T12:00:00Z"), false))
        })
        .expect("window");
        assert_eq!(records.len(), 1, "{:?}", sink.logs());
        assert_eq!(records[0].0.text("date").as_deref(), Some("2025-07-01T07:00:00+00:00"));
        assert_eq!(records[0].1, at("2025-07-01T07:00:00Z"));
        assert!(sink.logs().iter().all(|(level, _)| *level != crate::protocol::LogLevel::Warn));
    }

    #[test]
    fn since_param_errors_are_skipped_windows() {
        use crate::http::HttpResponse;
        let body = json!({"error": {"message": "(#100) since param is not valid. Metrics data is available for the last 2 years", "type": "OAuthException", "code": 100, "fbtrace_id": "ABC123"}});
        let graph = crate::http::answer::error_body(body.to_string().as_bytes());
        let error =
            RequestError::from_response(&HttpResponse { status: 400, headers: vec![], body: vec![] }, graph, "/x");
        assert!(
            graph::ignore_account_insights_errors(&error)
                .is_some_and(|m| m.contains("Skipping time window with future 'since' date"))
        );
    }
}

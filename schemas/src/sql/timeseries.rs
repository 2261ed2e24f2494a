//! Time-series rollups and the samples query.
//!
//! A model declared `@@timeseries` gets one rollup per tier (1 h, 1 min, 1 s): an
//! AggregatingMergeTree table keyed by `(series, _bucket)` holding, per bucket, the last event
//! (`argMaxState(v, time)`), min, max and avg states of each value field, filled by a
//! materialized view on the model's table. last/min/max are idempotent, so rows the table
//! writer replays after a crash leave them exact; avg could count such rows twice.
//!
//! [`SamplesQuery`] answers "n equal periods between start and end" in one statement: period
//! `i` is `(b(i-1), b(i)]` with `b(i) = start + floor((i+1)·(end-start)/n)` and `b(-1) = start`.
//! Every event in the window is read from exactly one level: a bucket of the coarsest tier
//! that lies wholly inside one period, else of a finer tier, else the raw row. All branches
//! produce partial states that ClickHouse merges per period. For `last`, period 0 also takes
//! everything before `start` (so a sample carries the last earlier value) — those events are
//! read from hour buckets, never scanned raw.

use crate::dialect::Dialect;
use crate::ir::{Arity, Ir, Model};

use super::ddl::{ColumnDef, CreateTable, TableEngine};
use super::quote::{ident, string};
use super::types::ChType;
use super::view::MaterializedView;

/// A rollup tier: its name and bucket length in seconds, coarsest first.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Tier {
    pub name: &'static str,
    pub seconds: i64,
}

pub const TIERS: [Tier; 3] =
    [Tier { name: "1h", seconds: 3600 }, Tier { name: "1m", seconds: 60 }, Tier { name: "1s", seconds: 1 }];

pub const BUCKET_COLUMN: &str = "_bucket";
pub const LAST_TIME_COLUMN: &str = "_time_last";
pub const COUNT_COLUMN: &str = "_count";

/// An aggregate a sample can report.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SampleAgg {
    Last,
    Min,
    Max,
    Avg,
}

impl SampleAgg {
    pub const ALL: [SampleAgg; 4] = [SampleAgg::Last, SampleAgg::Min, SampleAgg::Max, SampleAgg::Avg];

    pub fn name(self) -> &'static str {
        match self {
            SampleAgg::Last => "last",
            SampleAgg::Min => "min",
            SampleAgg::Max => "max",
            SampleAgg::Avg => "avg",
        }
    }

    /// The rollup column prefix and the state function (without `State`/`Merge`) for a value.
    fn function(self, list: bool) -> &'static str {
        match (self, list) {
            (SampleAgg::Last, _) => "argMax",
            (SampleAgg::Min, false) => "min",
            (SampleAgg::Max, false) => "max",
            (SampleAgg::Avg, false) => "avg",
            (SampleAgg::Min, true) => "minForEach",
            (SampleAgg::Max, true) => "maxForEach",
            (SampleAgg::Avg, true) => "avgForEach",
        }
    }

    fn state_type(self, ty: &ChType) -> ChType {
        let list = matches!(ty, ChType::Array(_));
        let mut args = vec![ty.clone()];
        if self == SampleAgg::Last {
            args.push(ChType::Int64);
        }
        ChType::AggregateFunction(self.function(list), args)
    }
}

/// A value field as the rollups see it.
#[derive(Clone, Debug, PartialEq)]
pub struct RollupValue {
    pub column: String,
    pub ty: ChType,
}

impl RollupValue {
    fn state_column(&self, agg: SampleAgg) -> String {
        format!("_{}_{}", agg.name(), self.column)
    }

    /// `argMaxState(v, t)` etc. over raw rows.
    fn state_expr(&self, agg: SampleAgg, time: &str) -> String {
        let f = agg.function(matches!(self.ty, ChType::Array(_)));
        match agg {
            SampleAgg::Last => format!("{f}State({}, {time})", ident(&self.column)),
            _ => format!("{f}State({})", ident(&self.column)),
        }
    }
}

/// What every rollup of one model shares.
#[derive(Clone, Debug, PartialEq)]
pub struct TimeSeriesTables {
    pub database: String,
    /// The model's own table.
    pub source: String,
    pub series: ColumnDef,
    /// The time column, and how many of its units make a second.
    pub time: String,
    pub per_second: i64,
    pub values: Vec<RollupValue>,
    /// Whether the model's table has `intDiv(time, per_second)` in its sorting key.
    pub second_key: bool,
}

/// One tier's table and the materialized view that fills it.
#[derive(Clone, Debug, PartialEq)]
pub struct Rollup {
    pub tables: TimeSeriesTables,
    pub tier: Tier,
}

impl TimeSeriesTables {
    pub fn for_model(model: &Model, ir: &Ir, database: &str) -> Option<TimeSeriesTables> {
        let ts = model.timeseries.as_ref()?;
        let field = |name: &str| model.field(name).expect("validated time-series fields exist");
        let series = field(&ts.series);
        Some(TimeSeriesTables {
            database: database.to_string(),
            source: model.table.clone(),
            series: ColumnDef {
                name: series.column.clone(),
                ty: ChType::of_field(&series.ty, ir),
                default: None,
                comment: None,
            },
            time: field(&ts.time).column.clone(),
            per_second: ts.unit.per_second(),
            second_key: super::ddl::second_key(model).is_some(),
            values: ts
                .values
                .iter()
                .map(|v| {
                    let f = field(v);
                    debug_assert!(f.ty.arity != Arity::Optional);
                    RollupValue { column: f.column.clone(), ty: ChType::of_field(&f.ty, ir) }
                })
                .collect(),
        })
    }

    pub fn rollups(&self) -> Vec<Rollup> {
        TIERS.iter().map(|&tier| Rollup { tables: self.clone(), tier }).collect()
    }

    /// `toInt64(time)`: the time as a number of units, for any time column type.
    fn time_expr(&self) -> String {
        format!("toInt64({})", ident(&self.time))
    }
}

/// Rollup table name for a model table and tier: `_igloo_rollup_<table>_<tier>`.
pub fn rollup_table_name(table: &str, tier: &str) -> String {
    format!("{}_rollup_{table}_{tier}", crate::internal::INTERNAL_PREFIX)
}

/// Whether `name` is a rollup table or view (of any model).
pub fn is_rollup_name(name: &str) -> bool {
    name.starts_with(&format!("{}_rollup_", crate::internal::INTERNAL_PREFIX))
}

impl Rollup {
    pub fn bucket(&self) -> i64 {
        self.tier.seconds * self.tables.per_second
    }

    pub fn table_name(&self) -> String {
        rollup_table_name(&self.tables.source, self.tier.name)
    }

    pub fn view_name(&self) -> String {
        format!("{}_mv", self.table_name())
    }

    pub fn create_table(&self) -> CreateTable {
        let t = &self.tables;
        let col = |name: String, ty: ChType| ColumnDef { name, ty, default: None, comment: None };
        let mut columns = vec![
            t.series.clone(),
            col(BUCKET_COLUMN.into(), ChType::Int64),
            col(LAST_TIME_COLUMN.into(), ChType::AggregateFunction("max", vec![ChType::Int64])),
            col(COUNT_COLUMN.into(), ChType::AggregateFunction("count", vec![])),
        ];
        for v in &t.values {
            for agg in SampleAgg::ALL {
                columns.push(col(v.state_column(agg), agg.state_type(&v.ty)));
            }
        }
        CreateTable {
            database: t.database.clone(),
            name: self.table_name(),
            columns,
            engine: TableEngine::AggregatingMergeTree,
            partition_by: None,
            order_by: vec![t.series.name.clone(), BUCKET_COLUMN.into()],
            second_key: None,
            primary_key: vec![],
            ttl: None,
            comment: Some(format!("igloo rollup of {} into {} buckets", t.source, self.tier.name)),
            settings: vec![],
            placement: super::ddl::Placement::Sharded,
            keeper_name: None,
        }
    }

    /// The rows of this tier computed from the model's table `source`.
    fn select(&self, source: &str) -> String {
        let t = &self.tables;
        let time = t.time_expr();
        let mut cols = vec![
            ident(&t.series.name),
            format!("intDiv({time}, {b}) * {b} AS {}", ident(BUCKET_COLUMN), b = self.bucket()),
            format!("maxState({time}) AS {}", ident(LAST_TIME_COLUMN)),
            format!("countState() AS {}", ident(COUNT_COLUMN)),
        ];
        for v in &t.values {
            for agg in SampleAgg::ALL {
                cols.push(format!("{} AS {}", v.state_expr(agg, &time), ident(&v.state_column(agg))));
            }
        }
        format!(
            "SELECT {} FROM {}.{} GROUP BY {}, {}",
            cols.join(", "),
            ident(&t.database),
            ident(source),
            ident(&t.series.name),
            ident(BUCKET_COLUMN)
        )
    }

    /// The materialized view that fills this rollup from the model's table.
    pub fn view(&self) -> MaterializedView {
        MaterializedView {
            database: self.tables.database.clone(),
            name: self.view_name(),
            target: self.table_name(),
            select: self.select(&self.tables.source),
            columns: self.create_table().columns.into_iter().map(|c| c.name).collect(),
            local_select: Some(self.select(&super::cluster::local_name(&self.tables.source))),
        }
    }
}

/// A series value, typed by the caller from the request.
#[derive(Clone, Debug, PartialEq)]
pub enum SeriesValue {
    Text(String),
    Integer(i64),
}

impl SeriesValue {
    fn render(&self, ty: &ChType) -> String {
        match (self, ty.innermost()) {
            (SeriesValue::Text(s), ChType::Uuid) => format!("toUUID({})", string(s)),
            (SeriesValue::Text(s), _) => string(s),
            (SeriesValue::Integer(n), _) => n.to_string(),
        }
    }
}

#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum SamplesError {
    #[error("start must be before end")]
    EmptyWindow,
    #[error("times before the Unix epoch are not supported")]
    Negative,
    #[error("points must be from 1 to {max}")]
    Points { max: u32 },
    #[error("the window is too long to split into {points} periods exactly; ask for fewer points or a shorter window")]
    TooLong { points: u32 },
}

impl SamplesError {
    /// The request parameter at fault.
    pub fn parameter(&self) -> &'static str {
        match self {
            SamplesError::EmptyWindow => "end",
            SamplesError::Negative => "start",
            SamplesError::Points { .. } | SamplesError::TooLong { .. } => "points",
        }
    }
}

/// One row if the series has any event (its coarsest rollup holds every series).
pub fn series_exists(tables: &TimeSeriesTables, series: &SeriesValue) -> String {
    let rollup = &tables.rollups()[0];
    format!(
        "SELECT 1 FROM {}.{} WHERE {} = {} LIMIT 1",
        ident(&tables.database),
        ident(&rollup.table_name()),
        ident(&tables.series.name),
        series.render(&tables.series.ty)
    )
}

/// The most points one samples query returns.
pub const MAX_POINTS: u32 = 10_000;

/// How a samples query reads: every event of the window from the raw table (cheapest when
/// the window holds few events), or from rollups with raw rows only around period boundaries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SamplesPlan {
    Raw,
    Rollups,
}

/// `index_granularity` of a time series' own table: small, so the rollup plan's reads of raw
/// rows around period boundaries stay small (ClickHouse reads whole granules).
pub const RAW_GRANULE: u64 = 1024;

/// `n` periods of one series between `start` and `end` (in the time column's units).
#[derive(Clone, Debug)]
pub struct SamplesQuery<'a> {
    pub tables: &'a TimeSeriesTables,
    pub series: SeriesValue,
    pub start: i64,
    pub end: i64,
    pub points: u32,
    pub agg: SampleAgg,
    /// For `last` under the raw plan: how far before `start` to read (in the time column's
    /// units), so that period 0 finds the value it carries. `None` reads one window's length;
    /// [`Self::raw_lookback_from`] sizes it from the series' event rate.
    pub raw_lookback: Option<i64>,
}

/// Events the raw plan's lookback should hold on average (at the series' rate in the hour
/// `start` falls in): an empty lookback then has odds of about e^-20, and even then the answer
/// stays exact ([`SamplesQuery::lookback`] is asked).
const LOOKBACK_EVENTS: u64 = 20;

impl SamplesQuery<'_> {
    pub fn check(&self) -> Result<(), SamplesError> {
        if self.start < 0 {
            return Err(SamplesError::Negative);
        }
        if self.start >= self.end {
            return Err(SamplesError::EmptyWindow);
        }
        if !(1..=MAX_POINTS).contains(&self.points) {
            return Err(SamplesError::Points { max: MAX_POINTS });
        }
        // The period arithmetic runs in UInt64: (window + one coarse bucket) · n + window.
        let window = self.end.abs_diff(self.start);
        let coarse = (TIERS[0].seconds * self.tables.per_second) as u64;
        window
            .checked_add(coarse)
            .and_then(|w| w.checked_mul(u64::from(self.points)))
            .and_then(|w| w.checked_add(window))
            .map(|_| ())
            .ok_or(SamplesError::TooLong { points: self.points })
    }

    /// `b(i)`, the end of period `i`: the time each sample reports.
    pub fn period_end(&self, i: u32) -> i64 {
        let window = i128::from(self.end) - i128::from(self.start);
        let offset = window * i128::from(i + 1) / i128::from(self.points);
        (i128::from(self.start) + offset) as i64
    }

    /// Rows `{"_p", "_time", "_v0", …}` (JSONEachRow; `_vN` is the Nth value field), one per
    /// period holding events, ordered by period. `_time` is the time of the period's last event.
    ///
    /// A bucket "straddles" when a period boundary falls inside it (not on its last unit).
    /// A tier's bucket is read when it does not straddle but its parent bucket does (or, for
    /// the coarsest tier, always); a raw row is read when its second straddles. The straddling
    /// buckets are computed here, so ClickHouse only tests set membership (in PREWHERE, before
    /// reading any state) and computes period indexes for the rows it keeps.
    pub fn render(&self, _dialect: Dialect, plan: SamplesPlan) -> String {
        let t = self.tables;
        let f = |v: &RollupValue| self.agg.function(matches!(v.ty, ChType::Array(_)));
        if plan == SamplesPlan::Raw {
            // Plain aggregates over the window's rows. For `last`, rows up to
            // `raw_lookback` (at most one window's length) before `start` are read too: they
            // fall in period 0 (see [`Self::period`]), whose latest row is then the value
            // period 0 carries. Only when period 0 is still empty is [`Self::lookback`] asked
            // (a query of its own, four branches of fixed cost; BENCHMARKS.md, issue 20).
            let from = match self.agg {
                SampleAgg::Last => {
                    let window = self.end.saturating_sub(self.start);
                    self.start.saturating_sub(self.raw_lookback.unwrap_or(window).min(window)).max(0)
                }
                _ => self.start,
            };
            let time = t.time_expr();
            let mut cols = vec![format!("{} AS _p", self.period(&time)), format!("max({time}) AS _time")];
            cols.extend(t.values.iter().enumerate().map(|(j, v)| match self.agg {
                SampleAgg::Last => format!("{}({}, {time}) AS _v{j}", f(v), ident(&v.column)),
                _ => format!("{}({}) AS _v{j}", f(v), ident(&v.column)),
            }));
            let c = ident(&t.time);
            return format!(
                "SELECT {} FROM {}.{} PREWHERE {} AND {c} > {} AND {c} <= {} GROUP BY _p ORDER BY _p FORMAT JSONEachRow",
                cols.join(", "),
                ident(&t.database),
                ident(&t.source),
                self.series_filter(),
                time_literal(from),
                time_literal(self.end),
            );
        }
        let mut outer = vec!["_p".to_string(), "maxMerge(_t) AS _time".to_string()];
        outer.extend(t.values.iter().enumerate().map(|(j, v)| format!("{}Merge(_v{j}) AS _v{j}", f(v))));
        format!(
            "SELECT {} FROM ({}) GROUP BY _p ORDER BY _p FORMAT JSONEachRow",
            outer.join(", "),
            self.rollup_branches().join(" UNION ALL ")
        )
    }

    /// For `last`: the query whose one sample is the latest event at or before `start` (read
    /// from rollups, so an old value is found without scanning), for period 0 to carry.
    pub fn lookback(&self) -> Option<SamplesQuery<'_>> {
        (self.agg == SampleAgg::Last).then(|| SamplesQuery {
            start: self.start - 1,
            end: self.start,
            points: 1,
            ..self.clone()
        })
    }

    /// A raw-plan lookback expected to hold [`LOOKBACK_EVENTS`] events, at the rate of the hour
    /// `start` falls in (from [`Self::hourly_events`] rows); `None` (one window) when that hour
    /// has none. Reading one window's length doubled the rows a dense series' query read.
    pub fn raw_lookback_from(&self, hourly: &[(i64, u64)]) -> Option<i64> {
        let hour = self.tables.rollups()[0].bucket();
        let from = floor(self.start, hour);
        let events = hourly.iter().find(|(b, _)| *b == from).map(|(_, n)| *n).filter(|n| *n > 0)?;
        let units = (u128::from(LOOKBACK_EVENTS) * hour.unsigned_abs() as u128).div_ceil(u128::from(events));
        Some(i64::try_from(units).unwrap_or(i64::MAX))
    }

    /// Which plan reads less: raw rows cost one each; the rollup plan reads raw granules
    /// (`RAW_GRANULE` rows) around each period boundary plus a few buckets per tier.
    pub fn cheapest_plan(&self, events_in_window: u64) -> SamplesPlan {
        if events_in_window > 2 * u64::from(self.points) * RAW_GRANULE {
            SamplesPlan::Rollups
        } else {
            SamplesPlan::Raw
        }
    }

    /// One branch per tier, plus raw rows in straddling seconds (see [`Self::render`]).
    fn rollup_branches(&self) -> Vec<String> {
        let t = self.tables;
        let rollups = t.rollups();
        let series = self.series_filter();
        let straddling: Vec<Vec<i64>> = rollups.iter().map(|r| self.straddling(r.bucket())).collect();
        let last = self.agg == SampleAgg::Last;
        let mut branches = Vec::new();
        for (i, r) in rollups.iter().enumerate() {
            let bucket = ident(BUCKET_COLUMN);
            let mut cols =
                vec![format!("{} AS _p", self.period(&bucket)), format!("{} AS _t", ident(LAST_TIME_COLUMN))];
            cols.extend(
                t.values.iter().enumerate().map(|(j, v)| format!("{} AS _v{j}", ident(&v.state_column(self.agg)))),
            );
            let mut filter = vec![series.clone(), format!("{bucket} <= {}", self.end)];
            if i > 0 {
                let parent = rollups[i - 1].bucket();
                filter.push(format!("{bucket} >= {}", straddling[i - 1][0]));
                filter.push(format!("intDiv({bucket}, {parent}) * {parent} IN {}", set(&straddling[i - 1])));
            } else if !last {
                filter.push(format!("{bucket} > {}", self.start));
            }
            filter.push(format!("{bucket} NOT IN {}", set(&straddling[i])));
            branches.push(format!(
                "SELECT {} FROM {}.{} PREWHERE {}",
                cols.join(", "),
                ident(&t.database),
                ident(&r.table_name()),
                filter.join(" AND ")
            ));
        }
        let finest = rollups[rollups.len() - 1].bucket();
        if finest > 1 {
            let time = t.time_expr();
            let seconds = &straddling[straddling.len() - 1];
            let low = if last { seconds[0] } else { self.start + 1 };
            let range =
                format!("{c} >= {} AND {c} <= {}", time_literal(low), time_literal(self.end), c = ident(&t.time));
            let set = if t.second_key {
                // The sorting key's own expression: ClickHouse reads only the granules it needs.
                let keys: Vec<i64> = seconds.iter().map(|s| s.div_euclid(finest)).collect();
                format!("intDiv({}, {finest}) IN {}", ident(&t.time), set(&keys))
            } else {
                format!("intDiv({time}, {finest}) * {finest} IN {}", set(seconds))
            };
            branches.push(self.raw_branch(&range, Some(&set)));
        }
        branches
    }

    /// Raw rows of the series where `range` (and `extra`) hold, as partial states per period.
    fn raw_branch(&self, range: &str, extra: Option<&str>) -> String {
        let t = self.tables;
        let time = t.time_expr();
        let mut cols = vec![format!("{} AS _p", self.period(&time)), format!("maxState({time}) AS _t")];
        cols.extend(t.values.iter().enumerate().map(|(j, v)| format!("{} AS _v{j}", v.state_expr(self.agg, &time))));
        let mut filter = vec![self.series_filter(), range.to_string()];
        filter.extend(extra.map(str::to_string));
        format!(
            "SELECT {} FROM {}.{} PREWHERE {} GROUP BY _p",
            cols.join(", "),
            ident(&t.database),
            ident(&t.source),
            filter.join(" AND ")
        )
    }

    fn series_filter(&self) -> String {
        let t = self.tables;
        format!("{} = {}", ident(&t.series.name), self.series.render(&t.series.ty))
    }

    /// Rows `{"bucket", "events"}`: the series' events per hour bucket, over its whole history
    /// (a row per hour that has events). What [`Self::estimate_from`] sums; small enough to
    /// keep (the server keeps it for a few seconds per series).
    pub fn hourly_events(&self) -> String {
        let t = self.tables;
        let bucket = ident(BUCKET_COLUMN);
        format!(
            "SELECT {bucket} AS bucket, countMerge({}) AS events FROM {}.{} WHERE {} GROUP BY {bucket} FORMAT JSONEachRow",
            ident(COUNT_COLUMN),
            ident(&t.database),
            ident(&t.rollups()[0].table_name()),
            self.series_filter(),
        )
    }

    /// About how many events of the series the window holds: those in the hour buckets it
    /// touches, from the rows of [`Self::hourly_events`] as `(bucket, events)`. It chooses
    /// between [`SamplesPlan`]s; 0 can also mean an unknown series.
    pub fn estimate_from(&self, hourly: &[(i64, u64)]) -> u64 {
        let from = floor(self.start, self.tables.rollups()[0].bucket());
        hourly.iter().filter(|(b, _)| *b >= from && *b <= self.end).map(|(_, n)| n).sum()
    }

    /// Starts of the buckets of length `len` that a period boundary (`start` or a period end)
    /// falls inside of, sorted.
    fn straddling(&self, len: i64) -> Vec<i64> {
        let mut out: Vec<i64> = std::iter::once(self.start)
            .chain((0..self.points).map(|i| self.period_end(i)))
            .filter(|b| b.rem_euclid(len) != len - 1)
            .map(|b| floor(b, len))
            .collect();
        out.dedup();
        if out.is_empty() {
            // Every boundary ends a bucket: nothing straddles. An impossible bucket (times are
            // never negative) keeps the SQL uniform.
            out.push(-1);
        }
        out
    }

    /// The period index of a time expression: `ceil((x - start)·n / W) - 1`, exact in UInt64;
    /// times at or before `start` are period 0 for `last` (the lookback) and -1 otherwise.
    fn period(&self, x: &str) -> String {
        let window = self.end.abs_diff(self.start);
        let before = if self.agg == SampleAgg::Last { 0 } else { -1 };
        format!(
            "if({x} <= {start}, {before}, toInt64(intDiv(toUInt64({x} - {start}) * {n} + {w1}, {window})) - 1)",
            start = self.start,
            n = self.points,
            w1 = window - 1,
        )
    }
}

/// A set of numbers for `IN`: a subquery over one array literal. ClickHouse 18.16 parses an
/// array of literals in one step, while `IN (a, b, …)` costs it ~6 ms per thousand items.
fn set(items: &[i64]) -> String {
    let parts: Vec<String> = items.iter().map(i64::to_string).collect();
    format!("(SELECT toInt64(arrayJoin([{}])))", parts.join(","))
}

/// A literal compared with the time column; ClickHouse converts integers for DateTime columns.
fn time_literal(value: i64) -> String {
    value.to_string()
}

/// `x` rounded down to a multiple of `step` (toward minus infinity).
fn floor(x: i64, step: i64) -> i64 {
    x.div_euclid(step) * step
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::SourceFile;

    fn tables() -> TimeSeriesTables {
        let files = [SourceFile::new(
            "a.prisma",
            "model M {\n  time BigInt\n  tag String\n  v Float[]\n  @@id([tag, time])\n  @@timeseries(time: time, series: tag)\n}\n",
        )];
        let (ir, diags) = crate::check(&files);
        assert!(!diags.has_errors());
        TimeSeriesTables::for_model(&ir.models[0], &ir, "db").unwrap()
    }

    fn query(t: &TimeSeriesTables, start: i64, end: i64, points: u32) -> SamplesQuery<'_> {
        SamplesQuery {
            tables: t,
            series: SeriesValue::Text("a".into()),
            start,
            end,
            points,
            agg: SampleAgg::Last,
            raw_lookback: None,
        }
    }

    #[test]
    fn period_ends_split_the_window_exactly() {
        let t = tables();
        let q = query(&t, 0, 10, 3);
        assert_eq!((0..3).map(|i| q.period_end(i)).collect::<Vec<_>>(), [3, 6, 10]);
        let q = query(&t, i64::MAX - 10, i64::MAX, 10);
        assert_eq!(q.period_end(9), i64::MAX);
    }

    #[test]
    fn the_estimate_counts_the_hours_the_window_touches() {
        let t = tables();
        let hour = 3_600_000_000_000; // BigInt times are nanoseconds
        let hourly = [(0, 5), (hour, 7), (2 * hour, 11), (3 * hour, 13)];
        // From inside hour 1 to the first instant of hour 3: hours 1, 2 and 3.
        assert_eq!(query(&t, hour + 10, 3 * hour, 10).estimate_from(&hourly), 31);
        assert_eq!(query(&t, 4 * hour, 5 * hour, 10).estimate_from(&hourly), 0);
    }

    #[test]
    fn the_raw_plan_reads_one_window_before_start_for_last_only() {
        let t = tables();
        let q = query(&t, 1_000, 1_600, 10);
        assert!(q.render(Dialect::V18_16, SamplesPlan::Raw).contains("`time` > 400 AND `time` <= 1600"));
        let min = SamplesQuery { agg: SampleAgg::Min, ..q.clone() };
        assert!(min.render(Dialect::V18_16, SamplesPlan::Raw).contains("`time` > 1000 AND `time` <= 1600"));
        // Never before the epoch.
        assert!(query(&t, 100, 1_600, 10).render(Dialect::V18_16, SamplesPlan::Raw).contains("`time` > 0 AND"));
        // A lookback sized from the rate, never longer than the window.
        let short = SamplesQuery { raw_lookback: Some(50), ..q.clone() };
        assert!(short.render(Dialect::V18_16, SamplesPlan::Raw).contains("`time` > 950 AND `time` <= 1600"));
        let long = SamplesQuery { raw_lookback: Some(5_000), ..q.clone() };
        assert!(long.render(Dialect::V18_16, SamplesPlan::Raw).contains("`time` > 400 AND `time` <= 1600"));
    }

    #[test]
    fn the_lookback_holds_about_twenty_events_at_the_rate_around_start() {
        let t = tables();
        let hour = 3_600_000_000_000; // BigInt times are nanoseconds
        let hourly = [(0, 72_000), (hour, 7)];
        // 72,000 events in the hour of start: 20 s a second, so 1 s of lookback.
        assert_eq!(query(&t, 10, hour, 10).raw_lookback_from(&hourly), Some(1_000_000_000));
        assert_eq!(query(&t, hour + 5, 2 * hour, 10).raw_lookback_from(&hourly), Some(hour * 20 / 7 + 1));
        // No events in start's hour: one window, as before.
        assert_eq!(query(&t, 2 * hour, 3 * hour, 10).raw_lookback_from(&hourly), None);
    }

    #[test]
    fn bad_windows_are_refused() {
        let t = tables();
        assert_eq!(query(&t, 5, 5, 10).check(), Err(SamplesError::EmptyWindow));
        assert_eq!(query(&t, i64::MIN, 5, 10).check(), Err(SamplesError::Negative));
        assert_eq!(query(&t, 0, 5, 0).check(), Err(SamplesError::Points { max: MAX_POINTS }));
        assert_eq!(query(&t, 0, 5, MAX_POINTS + 1).check(), Err(SamplesError::Points { max: MAX_POINTS }));
        assert_eq!(query(&t, 0, i64::MAX, 1000).check(), Err(SamplesError::TooLong { points: 1000 }));
        // 100 days of nanoseconds in 1000 periods fit the UInt64 arithmetic.
        assert_eq!(query(&t, 0, 100 * 86_400 * 1_000_000_000, 1000).check(), Ok(()));
    }

    #[test]
    fn straddling_buckets_skip_boundaries_on_a_bucket_end() {
        let t = tables();
        // Boundaries 0 (start), 2e9 and 4e9 each cut the second they start.
        let q = query(&t, 0, 4_000_000_000, 2);
        assert_eq!(q.period_end(0), 2_000_000_000);
        assert_eq!(q.straddling(1_000_000_000), [0, 2_000_000_000, 4_000_000_000]);
        // Boundaries on the last nanosecond of a second cut nothing.
        let q = query(&t, 999_999_999, 2_999_999_999, 2);
        assert_eq!(q.straddling(1_000_000_000), [-1]);
    }

    #[test]
    fn the_cheaper_plan_follows_the_event_count() {
        let t = tables();
        let q = query(&t, 0, 10, 1000);
        assert_eq!(q.cheapest_plan(10_000), SamplesPlan::Raw);
        assert_eq!(q.cheapest_plan(2 * 1000 * RAW_GRANULE + 1), SamplesPlan::Rollups);
    }

    #[test]
    fn values_enter_sql_as_quoted_literals() {
        let t = tables();
        let mut q = query(&t, 0, 10, 10);
        q.series = SeriesValue::Text("x' OR 1=1 --".into());
        let sql = q.render(Dialect::V18_16, SamplesPlan::Raw);
        assert!(sql.contains("`tag` = 'x\\' OR 1=1 --'"), "{sql}");
    }
}

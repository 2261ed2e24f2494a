//! One model: its fields, then its `@@` attributes (keys, engine, partitioning, TTL, topic).

use std::collections::{HashMap, HashSet};

use crate::ast::{ArgAst, AttributeAst, Expr, Ident, ModelAst};
use crate::diagnostics::{Diagnostic, Diagnostics};
use crate::ir::{
    Arity, BaseType, Engine, Field, Model, ModelSpans, NativeType, ScalarType, Topic, DEFAULT_PARTITIONS,
    DEFAULT_RETENTION_MS,
};

use super::fields::{single_string, validate_field};
use super::{name_problem, suggest, unknown_attribute, Names};

const MODEL_ATTRIBUTES: &[&str] =
    &["id", "orderBy", "partitionBy", "ttl", "engine", "map", "topic", "ingest", "timeseries"];
const ENGINES: &[&str] = &[
    "MergeTree",
    "ReplacingMergeTree",
    "SummingMergeTree",
    "AggregatingMergeTree",
    "CollapsingMergeTree",
    "VersionedCollapsingMergeTree",
];

pub(super) fn validate_model(m: &ModelAst, names: &Names, diags: &mut Diagnostics) -> Option<Model> {
    // Prisma's `@@ignore`: the model has no table (in igloo: no table and no topic).
    if m.attributes.iter().any(|a| a.name.name == "ignore") {
        return None;
    }
    // The name itself was reported when names were collected.
    let name_ok = name_problem("model", &m.name).is_none();
    let mut fields: Vec<Field> = Vec::new();
    let mut ignored = Vec::new();
    let mut field_ids = Vec::new();
    let mut seen_fields = HashSet::new();
    for f in &m.fields {
        if !seen_fields.insert(f.name.name.as_str()) {
            diags.push(Diagnostic::duplicate_field(&m.name.name, &f.name.name, f.name.span));
            continue;
        }
        let decl = validate_field(f, names, diags);
        if decl.id {
            field_ids.push(f.name.clone());
        }
        if decl.ignored {
            ignored.push(f.name.name.clone());
        }
        fields.extend(decl.field);
    }
    let mut columns = HashSet::new();
    for f in &fields {
        if !columns.insert(f.column.as_str()) {
            diags.push(Diagnostic::duplicate_column(&m.name.name, &f.column, f.spans.field));
        }
    }

    let ctx = ModelCtx { model: m, fields: &fields, ignored: &ignored };
    let attrs = ctx.block_attributes(diags);
    let mut block_id = None;
    let mut order_by = None;
    if let Some(a) = attrs.get("id") {
        if !field_ids.is_empty() {
            diags.push(Diagnostic::id_and_block_id(&m.name.name, a.span));
        }
        block_id = ctx.field_list(a, diags);
    }
    if let Some(a) = attrs.get("orderBy") {
        order_by = ctx.field_list(a, diags);
    }
    let primary_key: Vec<String> = match block_id {
        Some(ids) => ids,
        None => field_ids.iter().map(|i| i.name.clone()).collect(),
    };
    for id in &field_ids {
        if fields.iter().any(|f| f.name == id.name && f.ty.arity == Arity::Optional) {
            diags.push(Diagnostic::nullable_in_key(&id.name, id.span));
        }
    }
    let order_by = match order_by {
        Some(order) => {
            if !order.starts_with(&primary_key) {
                diags.push(Diagnostic::key_not_prefix(&m.name.name, attrs["orderBy"].span));
            }
            order
        }
        None => primary_key.clone(),
    };
    let key_written = !field_ids.is_empty() || attrs.contains_key("id") || attrs.contains_key("orderBy");
    if order_by.is_empty() && !fields.is_empty() && !key_written {
        diags.push(Diagnostic::no_sorting_key(&m.name.name, m.name.span));
    }
    let table = attrs
        .get("map")
        .and_then(|a| single_string(a, "a table name, e.g. `@@map(\"events\")`", diags))
        .unwrap_or_else(|| m.name.name.clone());
    let partition_by = attrs.get("partitionBy").and_then(|a| {
        expression(a, "a ClickHouse expression as a string, e.g. `@@partitionBy(\"toYYYYMM(createdAt)\")`", diags)
    });
    let ttl = attrs.get("ttl").and_then(|a| {
        expression(a, "a ClickHouse TTL expression as a string, e.g. `@@ttl(\"createdAt + INTERVAL 30 DAY\")`", diags)
    });
    let engine = attrs.get("engine").and_then(|a| ctx.engine(a, diags)).unwrap_or(Engine::MergeTree);
    let topic = topic(&ctx, attrs.get("topic").copied(), &table, diags);
    let ingest = attrs.get("ingest").map_or(Some(true), |a| boolean(a, diags)).unwrap_or(true);
    let timeseries = attrs.get("timeseries").and_then(|a| super::timeseries::timeseries(&ctx, a, &order_by, diags));
    // Messages are keyed by the series of a time series (one series stays in one partition,
    // in order), else by the model's id.
    let default_key = match &timeseries {
        Some(ts) => vec![ts.series.clone()],
        None => primary_key.clone(),
    };

    if fields.is_empty() {
        // A model whose fields all failed to validate was reported field by field.
        if ignored.len() == m.fields.len() {
            diags.push(Diagnostic::empty_model(&m.name.name, m.name.span));
        }
        return None;
    }
    name_ok.then(|| Model {
        name: m.name.name.clone(),
        table,
        doc: m.doc.clone(),
        fields,
        ignored_fields: ignored,
        primary_key,
        order_by,
        partition_by,
        ttl,
        engine,
        topic: {
            let mut topic = topic.unwrap_or_else(|| Topic {
                name: m.name.name.clone(),
                partitions: DEFAULT_PARTITIONS,
                retention_ms: Some(DEFAULT_RETENTION_MS),
                key: Vec::new(),
            });
            if topic.key.is_empty() {
                topic.key = default_key;
            }
            topic
        },
        ingest,
        timeseries,
        spans: ModelSpans { name: m.name.span, ttl: attrs.get("ttl").map(|a| a.span) },
    })
}

pub(super) struct ModelCtx<'m, 'f> {
    pub(super) model: &'m ModelAst,
    pub(super) fields: &'f [Field],
    ignored: &'f [String],
}

impl<'m, 'f> ModelCtx<'m, 'f> {
    /// The model's `@@` attributes by name, after reporting unknown and repeated ones.
    fn block_attributes(&self, diags: &mut Diagnostics) -> HashMap<&'m str, &'m AttributeAst> {
        let mut attrs = HashMap::new();
        for a in &self.model.attributes {
            let name = a.name.name.as_str();
            match name {
                _ if MODEL_ATTRIBUTES.contains(&name) => {
                    if attrs.insert(name, a).is_some() {
                        diags.push(Diagnostic::duplicate_attribute("@@", name, a.span));
                    }
                }
                "index" | "fulltext" => diags.push(Diagnostic::ignored_attribute(
                    "@@",
                    name,
                    "ClickHouse reads in sorting-key order; put the fields you filter on first in `@@id` or `@@orderBy`",
                    a.span,
                )),
                "unique" => diags.push(Diagnostic::unique_unsupported("@@", a.span)),
                "schema" => diags.push(Diagnostic::ignored_attribute(
                    "@@",
                    name,
                    "the ClickHouse database is set in `igloo.yaml`",
                    a.span,
                )),
                "shardKey" => diags.push(Diagnostic::ignored_attribute(
                    "@@",
                    name,
                    "on a ClickHouse cluster igloo shards by topic partition (`clickhouse.cluster` in `igloo.yaml`)",
                    a.span,
                )),
                "ignore" => {}
                _ => diags.push(unknown_attribute("@@", a, MODEL_ATTRIBUTES)),
            }
        }
        attrs
    }

    /// `key: [a, b]` of `@@topic`: stored, required fields of this model.
    fn key_fields(&self, items: &[Expr], span: crate::source::Span, diags: &mut Diagnostics) -> Option<Vec<String>> {
        if items.is_empty() {
            diags.push(Diagnostic::bad_topic_value("key", "must name at least one field", span));
            return None;
        }
        for item in items {
            if let Expr::Constant(id) = item {
                if self.fields.iter().any(|f| f.name == id.name && f.ty.arity == Arity::Optional) {
                    diags.push(Diagnostic::nullable_in_message_key(&id.name, id.span));
                    return None;
                }
            }
        }
        self.field_names("@@topic", "topic", items, diags)
    }

    /// `[a, b]` (or `fields: [a, b]`) naming stored, required fields of this model. Prisma's
    /// `name:`, `map:` and `clustered:` beside it, and `a(sort: Desc)` in it, are warnings.
    fn field_list(&self, attr: &AttributeAst, diags: &mut Diagnostics) -> Option<Vec<String>> {
        let label = format!("@@{}", attr.name.name);
        let mut list = None;
        let mut ok = true;
        for arg in &attr.args {
            match (arg.name.as_ref().map(|n| n.name.as_str()), &arg.value) {
                (None | Some("fields"), Expr::Array(items, _)) if list.is_none() => list = Some(items),
                (Some(name @ ("name" | "map" | "clustered")), _) => {
                    let why = if name == "name" {
                        "it names the compound key in Prisma Client; igloo's SDKs have no such name"
                    } else {
                        super::INDEX_TUNING
                    };
                    diags.push(Diagnostic::ignored_argument(&label, name, why, arg.span));
                }
                _ => ok = false,
            }
        }
        let Some(items) = list.filter(|_| ok) else {
            diags.push(Diagnostic::attribute_arguments(
                "@@",
                &attr.name.name,
                &format!("a list of fields, e.g. `{label}([tag, time])`"),
                attr.span,
            ));
            return None;
        };
        if items.is_empty() {
            diags.push(Diagnostic::attribute_arguments("@@", &attr.name.name, "at least one field", attr.span));
            return None;
        }
        let items: Vec<Expr> = items.iter().map(|item| strip_index_tuning(&label, item, diags)).collect();
        self.field_names(&label, &attr.name.name, &items, diags)
    }

    /// Field names in a list, each a stored, required field of this model, none twice.
    fn field_names(
        &self,
        label: &str,
        attribute: &str,
        items: &[Expr],
        diags: &mut Diagnostics,
    ) -> Option<Vec<String>> {
        let mut out = Vec::new();
        let mut ok = true;
        for item in items {
            let Expr::Constant(id) = item else {
                diags.push(Diagnostic::attribute_arguments(
                    "@@",
                    attribute,
                    &format!("field names, found {}", item.describe()),
                    item.span(),
                ));
                ok = false;
                continue;
            };
            ok &= self.check_field_ref(label, id, true, diags).is_some();
            if out.contains(&id.name) {
                diags.push(Diagnostic::duplicate_key_field(&id.name, id.span));
                ok = false;
            }
            out.push(id.name.clone());
        }
        ok.then_some(out)
    }

    /// Finds a stored field named by an attribute; reports unknown, ignored and (in keys) optional ones.
    pub(super) fn check_field_ref(
        &self,
        attribute: &str,
        id: &Ident,
        in_key: bool,
        diags: &mut Diagnostics,
    ) -> Option<&'f Field> {
        if let Some(f) = self.fields.iter().find(|f| f.name == id.name) {
            if in_key && f.ty.arity == Arity::Optional {
                diags.push(Diagnostic::nullable_in_key(&id.name, id.span));
                return None;
            }
            return Some(f);
        }
        if self.ignored.contains(&id.name) {
            diags.push(Diagnostic::ignored_field_ref(attribute, &id.name, id.span));
        } else if !self.model.fields.iter().any(|f| f.name.name == id.name) {
            let suggestion = suggest(&id.name, self.fields.iter().map(|f| f.name.as_str()));
            diags.push(Diagnostic::unknown_field_ref(attribute, &id.name, &self.model.name.name, suggestion, id.span));
        }
        None
    }

    fn engine(&self, attr: &AttributeAst, diags: &mut Diagnostics) -> Option<Engine> {
        let (name, args, span) = match attr.args.as_slice() {
            [ArgAst { name: None, value: Expr::Constant(id), .. }] => (id, &[][..], id.span),
            [ArgAst { name: None, value: Expr::Call(id, args, span), .. }] => (id, args.as_slice(), *span),
            _ => {
                diags.push(Diagnostic::attribute_arguments(
                    "@@",
                    "engine",
                    "a table engine, e.g. `@@engine(ReplacingMergeTree(version))`",
                    attr.span,
                ));
                return None;
            }
        };
        let fields: Vec<&Ident> = args
            .iter()
            .filter_map(|a| match &a.value {
                Expr::Constant(id) if a.name.is_none() => Some(id),
                _ => None,
            })
            .collect();
        let bad_args = |expected: &str| {
            Diagnostic::attribute_arguments("@@", "engine", &format!("{expected} for {}", name.name), span)
        };
        if fields.len() != args.len() {
            diags.push(bad_args("field names as arguments"));
            return None;
        }
        let label = "@@engine";
        let engine = match (name.name.as_str(), fields.as_slice()) {
            ("MergeTree", []) => Engine::MergeTree,
            ("AggregatingMergeTree", []) => Engine::AggregatingMergeTree,
            ("ReplacingMergeTree", []) => Engine::ReplacingMergeTree { version: None },
            ("ReplacingMergeTree", [ver]) => {
                Engine::ReplacingMergeTree { version: Some(self.version_column(&name.name, ver, diags)?) }
            }
            ("SummingMergeTree", cols) => {
                let mut columns = Vec::new();
                for c in cols {
                    let f = self.check_field_ref(label, c, false, diags)?;
                    if !is_numeric(f) {
                        diags.push(Diagnostic::engine_column_type(&name.name, "summed", &c.name, "numeric", c.span));
                        return None;
                    }
                    columns.push(c.name.clone());
                }
                Engine::SummingMergeTree { columns }
            }
            ("CollapsingMergeTree", [sign]) => {
                Engine::CollapsingMergeTree { sign: self.sign_column(&name.name, sign, diags)? }
            }
            ("VersionedCollapsingMergeTree", [sign, ver]) => {
                let sign = self.sign_column(&name.name, sign, diags);
                let version = self.version_column(&name.name, ver, diags);
                Engine::VersionedCollapsingMergeTree { sign: sign?, version: version? }
            }
            ("MergeTree" | "AggregatingMergeTree", _) => {
                diags.push(bad_args("no arguments"));
                return None;
            }
            ("ReplacingMergeTree", _) => {
                diags.push(bad_args("at most one field (the version)"));
                return None;
            }
            ("CollapsingMergeTree", _) => {
                diags.push(bad_args("one field (the sign)"));
                return None;
            }
            ("VersionedCollapsingMergeTree", _) => {
                diags.push(bad_args("two fields (the sign and the version)"));
                return None;
            }
            (other, _) => {
                diags.push(Diagnostic::unknown_engine(other, suggest(other, ENGINES.iter().copied()), name.span));
                return None;
            }
        };
        Some(engine)
    }

    fn version_column(&self, engine: &str, id: &Ident, diags: &mut Diagnostics) -> Option<String> {
        let f = self.check_field_ref("@@engine", id, true, diags)?;
        let ok = f.ty.arity == Arity::Required
            && match (&f.ty.base, &f.ty.native) {
                (BaseType::Scalar(ScalarType::Int | ScalarType::BigInt), Some(n)) => {
                    matches!(n, NativeType::UInt8 | NativeType::UInt16 | NativeType::UInt32 | NativeType::UInt64)
                }
                (BaseType::Scalar(ScalarType::DateTime | ScalarType::Date), _) => true,
                _ => false,
            };
        if !ok {
            diags.push(Diagnostic::engine_column_type(
                engine,
                "version",
                &id.name,
                "an unsigned integer (e.g. `BigInt @db.UInt64`), a Date or a DateTime",
                id.span,
            ));
            return None;
        }
        Some(id.name.clone())
    }

    fn sign_column(&self, engine: &str, id: &Ident, diags: &mut Diagnostics) -> Option<String> {
        let f = self.check_field_ref("@@engine", id, true, diags)?;
        if f.ty.arity != Arity::Required || f.ty.native != Some(NativeType::Int8) {
            diags.push(Diagnostic::engine_column_type(
                engine,
                "sign",
                &id.name,
                "`Int @db.Int8` (holding 1 or -1)",
                id.span,
            ));
            return None;
        }
        Some(id.name.clone())
    }
}

/// `a(sort: Desc)` or `a(length: 10)` in a key list is field `a`; the tuning is a warning.
fn strip_index_tuning(label: &str, item: &Expr, diags: &mut Diagnostics) -> Expr {
    match item {
        Expr::Call(id, args, _) if args.iter().all(|a| a.name.is_some()) => {
            for a in args {
                let name = a.name.as_ref().map_or("", |n| n.name.as_str());
                diags.push(Diagnostic::ignored_argument(label, name, super::INDEX_TUNING, a.span));
            }
            Expr::Constant(id.clone())
        }
        other => other.clone(),
    }
}

fn is_numeric(f: &Field) -> bool {
    f.ty.arity != Arity::List
        && matches!(
            f.ty.base,
            BaseType::Scalar(ScalarType::Int | ScalarType::BigInt | ScalarType::Float | ScalarType::Decimal)
        )
}

/// A raw ClickHouse expression in a string (`@@partitionBy`, `@@ttl`).
fn expression(attr: &AttributeAst, expected: &str, diags: &mut Diagnostics) -> Option<String> {
    let label = format!("@@{}", attr.name.name);
    let [ArgAst { name: None, value: Expr::String(s, span), .. }] = attr.args.as_slice() else {
        diags.push(Diagnostic::attribute_arguments("@@", &attr.name.name, expected, attr.span));
        return None;
    };
    let reason = if s.trim().is_empty() {
        Some("is empty")
    } else if s.contains(';') {
        Some("must not contain `;`")
    } else if !balanced(s) {
        Some("has unbalanced parentheses or quotes")
    } else {
        None
    };
    if let Some(reason) = reason {
        diags.push(Diagnostic::bad_expression(&label, reason, *span));
        return None;
    }
    Some(s.trim().to_string())
}

fn balanced(s: &str) -> bool {
    let mut depth = 0i32;
    let mut quote: Option<char> = None;
    let mut escaped = false;
    for c in s.chars() {
        match quote {
            Some(q) => {
                if escaped {
                    escaped = false;
                } else if c == '\\' {
                    escaped = true;
                } else if c == q {
                    quote = None;
                }
            }
            None => match c {
                '\'' | '"' | '`' => quote = Some(c),
                '(' | '[' => depth += 1,
                ')' | ']' => {
                    depth -= 1;
                    if depth < 0 {
                        return false;
                    }
                }
                _ => {}
            },
        }
    }
    depth == 0 && quote.is_none()
}

fn boolean(attr: &AttributeAst, diags: &mut Diagnostics) -> Option<bool> {
    match attr.args.as_slice() {
        [ArgAst { name: None, value: Expr::Constant(id), .. }] if id.name == "true" || id.name == "false" => {
            Some(id.name == "true")
        }
        _ => {
            diags.push(Diagnostic::attribute_arguments(
                "@@",
                &attr.name.name,
                "`true` or `false`, e.g. `@@ingest(false)` for a model filled only by transforms",
                attr.span,
            ));
            None
        }
    }
}

/// `@@topic(name: "…", partitions: N, retention: "7d" | "forever", key: [field, …])`.
fn topic(ctx: &ModelCtx, attr: Option<&AttributeAst>, table: &str, diags: &mut Diagnostics) -> Option<Topic> {
    let mut topic = Topic {
        name: table.to_string(),
        partitions: DEFAULT_PARTITIONS,
        retention_ms: Some(DEFAULT_RETENTION_MS),
        key: Vec::new(),
    };
    let Some(attr) = attr else { return Some(topic) };
    const KNOWN: &str = "`name`, `partitions`, `retention` and `key`";
    let mut ok = true;
    for arg in &attr.args {
        let Some(name) = &arg.name else {
            diags.push(Diagnostic::attribute_arguments(
                "@@",
                "topic",
                &format!("named arguments: {KNOWN}, e.g. `@@topic(partitions: 6, retention: \"7d\")`"),
                arg.span,
            ));
            ok = false;
            continue;
        };
        match (name.name.as_str(), &arg.value) {
            ("name", Expr::String(s, span)) => {
                if valid_topic_name(s) {
                    topic.name = s.clone();
                } else {
                    diags.push(Diagnostic::bad_topic_value(
                        "name",
                        "must be 1 to 249 characters of letters, digits, `.`, `_` and `-`",
                        *span,
                    ));
                    ok = false;
                }
            }
            ("partitions", Expr::Number(n, span)) => match n.parse::<u32>() {
                Ok(p) if (1..=1024).contains(&p) => topic.partitions = p,
                _ => {
                    diags.push(Diagnostic::bad_topic_value(
                        "partitions",
                        "must be a whole number from 1 to 1024",
                        *span,
                    ));
                    ok = false;
                }
            },
            ("retention", Expr::String(s, span)) => match parse_retention(s) {
                Some(r) => topic.retention_ms = r,
                None => {
                    diags.push(Diagnostic::bad_topic_value(
                        "retention",
                        "must be a duration like \"90s\", \"30m\", \"12h\", \"7d\", or \"forever\"",
                        *span,
                    ));
                    ok = false;
                }
            },
            ("key", Expr::Array(items, span)) => match ctx.key_fields(items, *span, diags) {
                Some(key) => topic.key = key,
                None => ok = false,
            },
            ("name" | "partitions" | "retention" | "key", v) => {
                let expected = match name.name.as_str() {
                    "partitions" => "a number",
                    "key" => "a list of fields, e.g. `key: [tag]`",
                    _ => "a string",
                };
                diags.push(Diagnostic::bad_topic_value(
                    &name.name,
                    &format!("must be {expected}, found {}", v.describe()),
                    v.span(),
                ));
                ok = false;
            }
            (other, _) => {
                diags.push(Diagnostic::unknown_argument("@@topic", other, KNOWN, name.span));
                ok = false;
            }
        }
    }
    ok.then_some(topic)
}

fn valid_topic_name(s: &str) -> bool {
    (1..=249).contains(&s.len())
        && s != "."
        && s != ".."
        && s.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
}

/// `Some(None)` is forever.
fn parse_retention(s: &str) -> Option<Option<u64>> {
    if s == "forever" {
        return Some(None);
    }
    crate::duration_ms(s).map(Some)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retention_durations() {
        assert_eq!(parse_retention("7d"), Some(Some(7 * 86_400_000)));
        assert_eq!(parse_retention("90s"), Some(Some(90_000)));
        assert_eq!(parse_retention("forever"), Some(None));
        assert_eq!(parse_retention("0d"), None);
        assert_eq!(parse_retention("7w"), None);
        assert_eq!(parse_retention("é"), None);
        assert_eq!(parse_retention(""), None);
    }

    #[test]
    fn balanced_expressions() {
        assert!(balanced("toDate(intDiv(time, 1000000000))"));
        assert!(balanced("concat(')', x)"));
        assert!(!balanced("toDate(time"));
        assert!(!balanced("a) + (b"));
        assert!(!balanced("'open"));
    }
}

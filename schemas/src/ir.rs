//! The IR: the validated meaning of all schema files. Everything downstream (DDL, plans,
//! ingest validation, SDK generation) reads this and never the AST. Serializable so that
//! `igloo check --json` can print it; spans are kept for target checks but not serialized.

use serde::{Deserialize, Serialize};

use crate::source::Span;

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Ir {
    pub models: Vec<Model>,
    pub enums: Vec<Enum>,
    /// Materialized views from `views/*.sql`, attached by the caller after checking.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub views: Vec<crate::views::View>,
    /// Put before every topic name igloo uses (`broker.topic_prefix`, e.g. `staging.`), set
    /// by the caller with [`Ir::with_topic_prefix`]: environments and projects sharing a
    /// broker keep apart.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub topic_prefix: String,
}

impl Ir {
    /// Every model's topic, and the dead-letter topic, under `prefix`.
    pub fn with_topic_prefix(mut self, prefix: &str) -> Ir {
        for m in &mut self.models {
            m.topic.name = format!("{prefix}{}", m.topic.name);
        }
        self.topic_prefix = prefix.to_string();
        self
    }

    /// The dead-letter topic's name.
    pub fn dlq_topic(&self) -> String {
        format!("{}{}", self.topic_prefix, crate::internal::DLQ)
    }

    /// Whether a topic on the broker belongs to this project: everything under its prefix.
    pub fn owns_topic(&self, topic: &str) -> bool {
        topic.starts_with(&self.topic_prefix)
    }

    pub fn model(&self, name: &str) -> Option<&Model> {
        self.models.iter().find(|m| m.name == name)
    }

    /// Whether `views/<model>.sql` fills the model's table (then no table writer does).
    pub fn filled_by_view(&self, model: &str) -> bool {
        self.views.iter().any(|v| v.model == model)
    }

    pub fn enum_def(&self, name: &str) -> Option<&Enum> {
        self.enums.iter().find(|e| e.name == name)
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Enum {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub doc: Option<String>,
    pub variants: Vec<EnumVariant>,
    #[serde(skip)]
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EnumVariant {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub doc: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Model {
    pub name: String,
    /// The ClickHouse table (the model name unless `@@map`).
    pub table: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub doc: Option<String>,
    /// Stored fields in declaration order; `@ignore`d fields are not here.
    pub fields: Vec<Field>,
    /// Fields declared with `@ignore`: accepted in the schema, never stored.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ignored_fields: Vec<String>,
    /// Field names of `@id` / `@@id`: the primary key, and the message key on the topic.
    pub primary_key: Vec<String>,
    /// Field names of the sorting key (`@@orderBy`, else the primary key).
    pub order_by: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub partition_by: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttl: Option<String>,
    pub engine: Engine,
    pub topic: Topic,
    /// False for models declared `@@ingest(false)`: no HTTP ingest route.
    pub ingest: bool,
    /// `@@timeseries(…)`: rollups are kept and samples served for this model.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeseries: Option<TimeSeries>,
    #[serde(skip)]
    pub spans: ModelSpans,
}

impl Model {
    pub fn field(&self, name: &str) -> Option<&Field> {
        self.fields.iter().find(|f| f.name == name)
    }

    pub fn columns_of<'a>(&'a self, fields: &'a [String]) -> impl Iterator<Item = &'a str> + 'a {
        fields.iter().map(|f| self.field(f).map_or(f.as_str(), |f| f.column.as_str()))
    }
}

/// A model declared a time series: events of many series (`tag`), each with a time and values.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TimeSeries {
    /// The time field: an integer count of `unit`s since the Unix epoch, or a `DateTime`.
    pub time: String,
    pub unit: TimeUnit,
    /// The field naming the series, e.g. `tag`.
    pub series: String,
    /// The numeric fields (scalars or lists) that rollups keep and samples return.
    pub values: Vec<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TimeUnit {
    S,
    Ms,
    Us,
    Ns,
}

impl TimeUnit {
    pub const ALL: [TimeUnit; 4] = [TimeUnit::S, TimeUnit::Ms, TimeUnit::Us, TimeUnit::Ns];

    pub fn name(self) -> &'static str {
        match self {
            TimeUnit::S => "s",
            TimeUnit::Ms => "ms",
            TimeUnit::Us => "us",
            TimeUnit::Ns => "ns",
        }
    }

    /// How many units make a second.
    pub fn per_second(self) -> i64 {
        match self {
            TimeUnit::S => 1,
            TimeUnit::Ms => 1_000,
            TimeUnit::Us => 1_000_000,
            TimeUnit::Ns => 1_000_000_000,
        }
    }
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct ModelSpans {
    pub name: Span,
    pub ttl: Option<Span>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Field {
    pub name: String,
    /// The ClickHouse column (the field name unless `@map`).
    pub column: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub doc: Option<String>,
    #[serde(rename = "type")]
    pub ty: FieldType,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default: Option<DefaultValue>,
    #[serde(skip)]
    pub spans: FieldSpans,
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct FieldSpans {
    pub field: Span,
    pub native: Option<Span>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FieldType {
    pub base: BaseType,
    pub arity: Arity,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub native: Option<NativeType>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Arity {
    Required,
    Optional,
    List,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BaseType {
    Scalar(ScalarType),
    Enum(String),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ScalarType {
    String,
    Boolean,
    Int,
    BigInt,
    Float,
    Decimal,
    DateTime,
    Date,
    Json,
    Bytes,
    Uuid,
}

impl ScalarType {
    pub const ALL: [ScalarType; 11] = [
        ScalarType::String,
        ScalarType::Boolean,
        ScalarType::Int,
        ScalarType::BigInt,
        ScalarType::Float,
        ScalarType::Decimal,
        ScalarType::DateTime,
        ScalarType::Date,
        ScalarType::Json,
        ScalarType::Bytes,
        ScalarType::Uuid,
    ];

    pub fn name(self) -> &'static str {
        match self {
            ScalarType::String => "String",
            ScalarType::Boolean => "Boolean",
            ScalarType::Int => "Int",
            ScalarType::BigInt => "BigInt",
            ScalarType::Float => "Float",
            ScalarType::Decimal => "Decimal",
            ScalarType::DateTime => "DateTime",
            ScalarType::Date => "Date",
            ScalarType::Json => "Json",
            ScalarType::Bytes => "Bytes",
            ScalarType::Uuid => "Uuid",
        }
    }

    pub fn from_name(name: &str) -> Option<ScalarType> {
        Self::ALL.into_iter().find(|s| s.name() == name)
    }
}

/// A ClickHouse type chosen with `@db.X`, overriding the scalar's default column type.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "name")]
pub enum NativeType {
    Int8,
    Int16,
    Int32,
    Int64,
    UInt8,
    UInt16,
    UInt32,
    UInt64,
    Float32,
    Float64,
    Decimal {
        precision: u8,
        scale: u8,
    },
    DateTime,
    DateTime64 {
        precision: u8,
    },
    Date,
    Date32,
    String,
    FixedString {
        length: u32,
    },
    LowCardinality,
    #[serde(rename = "UUID")]
    Uuid,
}

impl std::fmt::Display for NativeType {
    /// The name as written after `@db.`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            NativeType::Int8 => f.write_str("Int8"),
            NativeType::Int16 => f.write_str("Int16"),
            NativeType::Int32 => f.write_str("Int32"),
            NativeType::Int64 => f.write_str("Int64"),
            NativeType::UInt8 => f.write_str("UInt8"),
            NativeType::UInt16 => f.write_str("UInt16"),
            NativeType::UInt32 => f.write_str("UInt32"),
            NativeType::UInt64 => f.write_str("UInt64"),
            NativeType::Float32 => f.write_str("Float32"),
            NativeType::Float64 => f.write_str("Float64"),
            NativeType::Decimal { precision, scale } => write!(f, "Decimal({precision}, {scale})"),
            NativeType::DateTime => f.write_str("DateTime"),
            NativeType::DateTime64 { precision } => write!(f, "DateTime64({precision})"),
            NativeType::Date => f.write_str("Date"),
            NativeType::Date32 => f.write_str("Date32"),
            NativeType::String => f.write_str("String"),
            NativeType::FixedString { length } => write!(f, "FixedString({length})"),
            NativeType::LowCardinality => f.write_str("LowCardinality"),
            NativeType::Uuid => f.write_str("UUID"),
        }
    }
}

/// A column default from `@default(…)`. Numbers keep their text so decimals stay exact.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", content = "value", rename_all = "lowercase")]
pub enum DefaultValue {
    String(String),
    Number(String),
    Boolean(bool),
    Enum(String),
    EmptyList,
    /// `now()`: the insert time.
    Now,
    /// `uuid()`: a random UUID per row.
    Uuid,
}

/// The MergeTree family; arguments name fields.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "name")]
pub enum Engine {
    MergeTree,
    ReplacingMergeTree {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        version: Option<String>,
    },
    SummingMergeTree {
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        columns: Vec<String>,
    },
    AggregatingMergeTree,
    CollapsingMergeTree {
        sign: String,
    },
    VersionedCollapsingMergeTree {
        sign: String,
        version: String,
    },
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Topic {
    pub name: String,
    pub partitions: u32,
    /// `None` keeps messages forever.
    pub retention_ms: Option<u64>,
    /// The fields whose values make each message's key (`@@topic(key: [...])`; by default the
    /// series field of a time series, else the `@id` / `@@id` fields). Messages with the same
    /// key land in the same partition, in order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub key: Vec<String>,
}

/// Defaults for `@@topic`.
pub const DEFAULT_PARTITIONS: u32 = 3;
pub const DEFAULT_RETENTION_MS: u64 = 7 * 24 * 3600 * 1000;

/// A stable fingerprint of a schema: 16 hex digits of FNV-1a over the IR's JSON. Equal IRs give
/// equal fingerprints on every machine and version of Rust; `_igloo_migrations` records it, so
/// `igloo migrate --status` can tell a schema change from a change made outside igloo.
pub fn fingerprint(ir: &Ir) -> String {
    let json = serde_json::to_string(ir).expect("the IR serializes");
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in json.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    format!("{h:016x}")
}

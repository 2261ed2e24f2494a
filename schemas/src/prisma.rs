//! What Prisma's own database types mean in ClickHouse: the native types (`@db.X`) of
//! PostgreSQL, MySQL, SQL Server, MongoDB and CockroachDB. `igloo check` uses this to say
//! precisely what a foreign type is; `igloo import prisma` uses it to map one.

use std::fmt;

use crate::ir::ScalarType;

/// The `provider` of a Prisma `datasource` block.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Provider {
    Postgres,
    CockroachDb,
    MySql,
    SqlServer,
    MongoDb,
    Sqlite,
}

impl Provider {
    pub fn parse(s: &str) -> Option<Provider> {
        Some(match s {
            "postgresql" | "postgres" => Provider::Postgres,
            "cockroachdb" => Provider::CockroachDb,
            "mysql" => Provider::MySql,
            "sqlserver" => Provider::SqlServer,
            "mongodb" => Provider::MongoDb,
            "sqlite" => Provider::Sqlite,
            _ => return None,
        })
    }
}

impl fmt::Display for Provider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Provider::Postgres => "PostgreSQL",
            Provider::CockroachDb => "CockroachDB",
            Provider::MySql => "MySQL",
            Provider::SqlServer => "SQL Server",
            Provider::MongoDb => "MongoDB",
            Provider::Sqlite => "SQLite",
        })
    }
}

/// The provider of the first `datasource` block that names a known one.
pub fn provider_of(asts: &[crate::ast::SchemaAst]) -> Option<Provider> {
    asts.iter()
        .flat_map(|a| &a.configs)
        .filter(|c| c.keyword.name == "datasource")
        .find_map(|c| c.string("provider").and_then(Provider::parse))
}

/// What a foreign native type becomes in an igloo schema.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mapping {
    /// The same in igloo: keep the attribute as written (`@db.Decimal(10, 2)`).
    Keep,
    /// The field's own type says it all: drop the `@db` attribute (`VarChar(320)` on a String).
    Plain,
    /// An igloo native type: `@db.<it>`.
    Native(&'static str),
    /// Another field type: `@db.Uuid` on a String is a `Uuid`, `@db.Date` a `Date`.
    Type(ScalarType),
    /// `DateTime64` with the type's precision (or this default), where the target has it.
    DateTime64(u8),
}

/// A native type of another database.
#[derive(Clone, Copy, Debug)]
pub struct Foreign {
    /// The databases it belongs to, for messages: "PostgreSQL and CockroachDB".
    pub databases: &'static str,
    /// What it is in ClickHouse, for messages.
    pub clickhouse: &'static str,
    pub mapping: Mapping,
}

const fn f(databases: &'static str, clickhouse: &'static str, mapping: Mapping) -> Foreign {
    Foreign { databases, clickhouse, mapping }
}

/// The meaning of `@db.<name>` under `provider` (any provider when not known). `None` for
/// names that are not a foreign type.
pub fn foreign_native(name: &str, provider: Option<Provider>) -> Option<Foreign> {
    use Mapping::*;
    use Provider as P;
    const TEXT: &str = "a `String` column";
    const BYTES: &str = "a `String` column (bytes)";
    Some(match (name, provider) {
        ("Text", _) => f("PostgreSQL, MySQL and SQL Server", TEXT, Plain),
        ("VarChar", _) => f("PostgreSQL, MySQL and SQL Server", TEXT, Plain),
        ("Char", _) => f("PostgreSQL, MySQL, SQL Server and CockroachDB", TEXT, Plain),
        ("NChar" | "NVarChar" | "NText", _) => f("SQL Server", TEXT, Plain),
        ("TinyText" | "MediumText" | "LongText", _) => f("MySQL", TEXT, Plain),
        ("Citext", _) => f("PostgreSQL", "a `String` column (comparisons are case-sensitive)", Plain),
        ("Xml", _) => f("PostgreSQL and SQL Server", TEXT, Plain),
        ("Inet", _) => f("PostgreSQL and CockroachDB", TEXT, Plain),
        ("CatalogSingleChar", _) => f("CockroachDB", TEXT, Plain),
        ("ObjectId", _) => f("MongoDB", "a `String` column holding the 24 hex digits", Plain),
        ("Bit" | "VarBit", _) => f("PostgreSQL, MySQL, SQL Server and CockroachDB", "the field's own type", Plain),
        ("Uuid", _) => f("PostgreSQL and CockroachDB", "`UUID` (an igloo `Uuid` field)", Type(ScalarType::Uuid)),
        ("UniqueIdentifier", _) => f("SQL Server", "`UUID` (an igloo `Uuid` field)", Type(ScalarType::Uuid)),
        ("Boolean" | "Bool", _) => f("PostgreSQL, MongoDB and CockroachDB", "`Bool` (an igloo `Boolean`)", Plain),
        ("Json", _) => f("PostgreSQL and MySQL", "a `String` column holding JSON (an igloo `Json`)", Plain),
        ("JsonB", _) => f("PostgreSQL and CockroachDB", "a `String` column holding JSON (an igloo `Json`)", Plain),
        ("ByteA", _) => f("PostgreSQL", BYTES, Plain),
        ("Binary" | "VarBinary", _) => f("MySQL and SQL Server", BYTES, Plain),
        ("TinyBlob" | "Blob" | "MediumBlob" | "LongBlob", _) => f("MySQL", BYTES, Plain),
        ("Image", _) => f("SQL Server", BYTES, Plain),
        ("BinData", _) => f("MongoDB", BYTES, Plain),
        ("Bytes", _) => f("CockroachDB", BYTES, Plain),
        ("SmallInt", _) => f("PostgreSQL, MySQL and SQL Server", "`Int16`", Native("Int16")),
        ("Int2", _) => f("CockroachDB", "`Int16`", Native("Int16")),
        ("Integer", _) => f("PostgreSQL", "`Int32`", Native("Int32")),
        ("Int4", _) => f("CockroachDB", "`Int32`", Native("Int32")),
        ("Int", _) => f("MySQL, SQL Server and MongoDB", "`Int32`", Native("Int32")),
        ("MediumInt", _) => f("MySQL", "`Int32`", Native("Int32")),
        ("BigInt", _) => f("PostgreSQL, MySQL and SQL Server", "`Int64`", Native("Int64")),
        ("Long", _) => f("MongoDB", "`Int64`", Native("Int64")),
        ("TinyInt", Some(P::SqlServer)) => f("SQL Server", "`UInt8`", Native("UInt8")),
        ("TinyInt", _) => f("MySQL and SQL Server", "`Int8` (MySQL) or `UInt8` (SQL Server)", Native("Int8")),
        ("UnsignedTinyInt", _) => f("MySQL", "`UInt8`", Native("UInt8")),
        ("UnsignedSmallInt", _) => f("MySQL", "`UInt16`", Native("UInt16")),
        ("UnsignedMediumInt" | "UnsignedInt", _) => f("MySQL", "`UInt32`", Native("UInt32")),
        ("UnsignedBigInt", _) => f("MySQL", "`UInt64`", Native("UInt64")),
        ("Year", _) => f("MySQL", "`UInt16`", Native("UInt16")),
        ("Oid", _) => f("PostgreSQL and CockroachDB", "`UInt32`", Native("UInt32")),
        ("DoublePrecision", _) => f("PostgreSQL", "`Float64`", Native("Float64")),
        ("Double", _) => f("MySQL and MongoDB", "`Float64`", Native("Float64")),
        ("Float8", _) => f("CockroachDB", "`Float64`", Native("Float64")),
        ("Real", _) => f("PostgreSQL and SQL Server", "`Float32`", Native("Float32")),
        ("Float4", _) => f("CockroachDB", "`Float32`", Native("Float32")),
        ("Float", Some(P::MySql)) => f("MySQL", "`Float32`", Native("Float32")),
        ("Float", _) => f("MySQL and SQL Server", "`Float32` (MySQL) or `Float64` (SQL Server)", Native("Float64")),
        ("Money", _) => f("PostgreSQL and SQL Server", "`Decimal(19, 4)`", Native("Decimal(19, 4)")),
        ("SmallMoney", _) => f("SQL Server", "`Decimal(10, 4)`", Native("Decimal(10, 4)")),
        ("Timestamp", _) => f("PostgreSQL, MySQL, CockroachDB and MongoDB", "`DateTime64(p, 'UTC')`", DateTime64(6)),
        ("Timestamptz", _) => f("PostgreSQL and CockroachDB", "`DateTime64(p, 'UTC')`", DateTime64(6)),
        ("DateTime2", _) => f("SQL Server", "`DateTime64(p, 'UTC')`", DateTime64(7)),
        ("DateTimeOffset", _) => f("SQL Server", "`DateTime64(p, 'UTC')`", DateTime64(7)),
        ("SmallDateTime", _) => f("SQL Server", "`DateTime('UTC')`", Native("DateTime")),
        // igloo's own `@db.DateTime` takes no precision; MySQL's and SQL Server's may.
        ("DateTime", _) => f("MySQL and SQL Server", "`DateTime64(p, 'UTC')`", DateTime64(3)),
        ("Time" | "Timetz", _) => f(
            "PostgreSQL, MySQL, SQL Server and CockroachDB",
            "no type (a time of day); a DateTime on 1970-01-01",
            Plain,
        ),
        // On a DateTime field: MongoDB's Date is a full time, the others' a day.
        ("Date", Some(P::MongoDb)) => f("MongoDB", "`DateTime64(3, 'UTC')`", DateTime64(3)),
        ("Date", _) => {
            f("PostgreSQL, MySQL, SQL Server and CockroachDB", "`Date` (an igloo `Date` field)", Type(ScalarType::Date))
        }
        // CockroachDB's `String(n)`; igloo's `@db.String` takes no length.
        ("String", _) => f("CockroachDB and MongoDB", TEXT, Plain),
        // CockroachDB's INT8 is 64 bits; igloo's `@db.Int8` is ClickHouse's 8-bit Int8.
        ("Int8", Some(P::CockroachDb)) => f("CockroachDB", "`Int64`", Native("Int64")),
        ("Decimal", _) => f("PostgreSQL, MySQL, SQL Server and CockroachDB", "`Decimal(p, s)`", Keep),
        _ => return None,
    })
}

impl Mapping {
    /// The mapping for a field of `scalar`: a native type or type change that does not fit it
    /// (`@db.TinyInt(1)` on a Boolean) leaves the field's own type.
    pub fn for_scalar(self, scalar: ScalarType) -> Mapping {
        use ScalarType as S;
        let fits = match self {
            Mapping::Keep | Mapping::Plain => true,
            Mapping::Native(n) if n.starts_with("Decimal") => scalar == S::Decimal,
            Mapping::Native("Float32" | "Float64") => scalar == S::Float,
            Mapping::Native("DateTime") => scalar == S::DateTime,
            Mapping::Native(_) => matches!(scalar, S::Int | S::BigInt),
            Mapping::Type(to) => matches!((scalar, to), (S::String, S::Uuid) | (S::DateTime, S::Date)),
            Mapping::DateTime64(_) => scalar == S::DateTime,
        };
        if fits {
            self
        } else {
            Mapping::Plain
        }
    }
}

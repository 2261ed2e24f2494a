//! ClickHouse versions and what each can do. A [`Dialect`] is the version SQL is rendered for:
//! detected from `SELECT version()` on a live server, or chosen with `--target` offline.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Dialect {
    pub major: u16,
    pub minor: u16,
}

/// Something the renderer uses only where the version has it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Feature {
    DateTime64,
    Date32,
    /// `LowCardinality(T)` without the experimental setting.
    LowCardinality,
    /// The `Bool` type (older versions store booleans as UInt8).
    Bool,
    TableTtl,
    TableComment,
    /// `Decimal(P, S)` with P > 38.
    WideDecimal,
}

impl Feature {
    pub fn min_version(self) -> Dialect {
        let (major, minor) = match self {
            Feature::DateTime64 => (20, 1),
            Feature::Date32 => (21, 9),
            Feature::LowCardinality => (19, 1),
            Feature::Bool => (21, 12),
            Feature::TableTtl => (19, 6),
            Feature::TableComment => (21, 6),
            Feature::WideDecimal => (20, 8),
        };
        Dialect { major, minor }
    }

    pub fn describe(self) -> &'static str {
        match self {
            Feature::DateTime64 => "DateTime64",
            Feature::Date32 => "Date32",
            Feature::LowCardinality => "LowCardinality",
            Feature::Bool => "Bool",
            Feature::TableTtl => "table TTL (`@@ttl`)",
            Feature::TableComment => "table comments",
            Feature::WideDecimal => "Decimal with precision above 38",
        }
    }
}

impl Dialect {
    /// Debian 12's `clickhouse-server` package: the oldest version igloo supports.
    pub const V18_16: Dialect = Dialect { major: 18, minor: 16 };
    /// The newest version igloo is tested against (chdb-core).
    pub const CURRENT: Dialect = Dialect { major: 26, minor: 9 };

    pub fn supports(self, feature: Feature) -> bool {
        self >= feature.min_version()
    }

    /// From `SELECT version()` output such as `18.16.1` or `26.9.1.1`.
    pub fn from_server_version(version: &str) -> Result<Dialect, DialectError> {
        version.trim().parse()
    }
}

impl fmt::Display for Dialect {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.major, self.minor)
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("`{0}` is not a ClickHouse version; use `current` or a version such as `18.16` or `24.8.1`")]
pub struct DialectError(pub String);

impl FromStr for Dialect {
    type Err = DialectError;

    fn from_str(s: &str) -> Result<Dialect, DialectError> {
        if s.eq_ignore_ascii_case("current") || s.eq_ignore_ascii_case("latest") {
            return Ok(Dialect::CURRENT);
        }
        let mut parts = s.split('.');
        let mut number = || parts.next().and_then(|p| p.parse::<u16>().ok());
        match (number(), number()) {
            (Some(major), Some(minor)) if major > 0 => Ok(Dialect { major, minor }),
            _ => Err(DialectError(s.to_string())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_versions_and_orders_them() {
        assert_eq!("18.16".parse(), Ok(Dialect::V18_16));
        assert_eq!(Dialect::from_server_version("18.16.1\n"), Ok(Dialect::V18_16));
        assert_eq!("current".parse(), Ok(Dialect::CURRENT));
        assert_eq!("24.8.1.2684".parse(), Ok(Dialect { major: 24, minor: 8 }));
        assert!("eighteen".parse::<Dialect>().is_err());
        assert!("18".parse::<Dialect>().is_err());
        assert!(!Dialect::V18_16.supports(Feature::DateTime64));
        assert!(Dialect::CURRENT.supports(Feature::DateTime64));
        assert!(Dialect { major: 19, minor: 6 }.supports(Feature::TableTtl));
    }
}

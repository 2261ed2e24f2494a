//! Diagnostics: every problem found in the schema files, with a span and, where one helps, a
//! hint. All message wording lives in the named constructors below, so a message is changed in
//! one place and reads the same everywhere. Must not print: callers choose where text goes.

use serde::Serialize;

use crate::lexer::TokenKind;
use crate::source::{SourceFile, Span};

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Error,
    Warning,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Diagnostic {
    pub severity: Severity,
    pub message: String,
    pub span: Span,
    pub hint: Option<String>,
}

/// All diagnostics of one check, errors and warnings apart.
#[derive(Clone, Debug, Default)]
pub struct Diagnostics {
    errors: Vec<Diagnostic>,
    warnings: Vec<Diagnostic>,
}

/// A diagnostic resolved against its file, as `igloo check --json` prints it.
#[derive(Clone, Debug, Serialize)]
pub struct LocatedDiagnostic {
    pub severity: Severity,
    pub message: String,
    pub file: String,
    pub line: usize,
    pub column: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hint: Option<String>,
}

impl Diagnostics {
    pub fn push(&mut self, d: Diagnostic) {
        match d.severity {
            Severity::Error => self.errors.push(d),
            Severity::Warning => self.warnings.push(d),
        }
    }

    pub fn extend(&mut self, other: Diagnostics) {
        self.errors.extend(other.errors);
        self.warnings.extend(other.warnings);
    }

    pub fn has_errors(&self) -> bool {
        !self.errors.is_empty()
    }

    pub fn errors(&self) -> &[Diagnostic] {
        &self.errors
    }

    pub fn warnings(&self) -> &[Diagnostic] {
        &self.warnings
    }

    pub fn is_empty(&self) -> bool {
        self.errors.is_empty() && self.warnings.is_empty()
    }

    /// Errors then warnings, each in file order.
    pub fn sorted(&self) -> Vec<&Diagnostic> {
        let mut all: Vec<&Diagnostic> = self.errors.iter().chain(&self.warnings).collect();
        all.sort_by_key(|d| (d.severity, d.span.file.0, d.span.start));
        all
    }

    pub fn located(&self, files: &[SourceFile]) -> Vec<LocatedDiagnostic> {
        self.sorted()
            .into_iter()
            .map(|d| {
                let file = &files[d.span.file.0 as usize];
                let (line, column) = file.line_col(d.span.start);
                LocatedDiagnostic {
                    severity: d.severity,
                    message: d.message.clone(),
                    file: file.path.clone(),
                    line,
                    column,
                    hint: d.hint.clone(),
                }
            })
            .collect()
    }

    /// Every diagnostic rendered with its snippet, separated by blank lines.
    pub fn render(&self, files: &[SourceFile]) -> String {
        self.sorted().iter().map(|d| d.render(files)).collect::<Vec<_>>().join("\n")
    }
}

impl Diagnostic {
    /// ```text
    /// error: unknown type `Strng`
    ///   --> schema/shop.prisma:4:10
    ///    |
    ///  4 |   name   Strng
    ///    |          ^^^^^
    ///    = hint: did you mean `String`?
    /// ```
    pub fn render(&self, files: &[SourceFile]) -> String {
        let file = &files[self.span.file.0 as usize];
        let (line, col) = file.line_col(self.span.start);
        let (end_line, end_col) = file.line_col(self.span.end);
        let text = file.line_text(line);
        let width = if end_line == line {
            end_col.saturating_sub(col).max(1)
        } else {
            text.chars().count().saturating_sub(col - 1).max(1)
        };
        let gutter = " ".repeat(line.to_string().len());
        let severity = match self.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        let mut out = format!("{severity}: {}\n{gutter}--> {}:{line}:{col}\n", self.message, file.path);
        out += &format!("{gutter} |\n{line} | {text}\n{gutter} | {}{}\n", " ".repeat(col - 1), "^".repeat(width));
        if let Some(hint) = &self.hint {
            out += &format!("{gutter} = hint: {hint}\n");
        }
        out
    }

    fn error(span: Span, message: impl Into<String>) -> Diagnostic {
        Diagnostic { severity: Severity::Error, message: message.into(), span, hint: None }
    }

    fn warning(span: Span, message: impl Into<String>) -> Diagnostic {
        Diagnostic { severity: Severity::Warning, message: message.into(), span, hint: None }
    }

    fn hint(mut self, hint: impl Into<String>) -> Diagnostic {
        self.hint = Some(hint.into());
        self
    }

    fn maybe_suggest(self, suggestion: Option<&str>) -> Diagnostic {
        match suggestion {
            Some(s) => self.hint(format!("did you mean `{s}`?")),
            None => self,
        }
    }

    // ---- syntax ----

    pub fn unexpected_token(expected: &str, found: &TokenKind, span: Span) -> Diagnostic {
        Self::error(span, format!("expected {expected}, found {}", found.describe()))
    }

    pub fn unknown_character(c: char, span: Span) -> Diagnostic {
        Self::error(span, format!("unexpected character `{c}`"))
    }

    pub fn unterminated_string(span: Span) -> Diagnostic {
        Self::error(span, "string is not closed").hint("add a closing `\"` on the same line")
    }

    pub fn malformed_number(text: &str, span: Span) -> Diagnostic {
        Self::error(span, format!("`{text}` is not a number"))
    }

    pub fn unclosed_block(kind: &str, name: &str, span: Span) -> Diagnostic {
        Self::error(span, format!("{kind} `{name}` is not closed")).hint("add a closing `}`")
    }

    pub fn unclosed_paren(span: Span) -> Diagnostic {
        Self::error(span, "`(` is not closed").hint("add a closing `)` on the same line")
    }

    pub fn ignored_block(keyword: &str, hint: &str, span: Span) -> Diagnostic {
        Self::warning(span, format!("`{keyword}` blocks are ignored by igloo")).hint(hint)
    }

    pub fn composite_type_block(name: &str, span: Span) -> Diagnostic {
        Self::warning(span, format!("composite type `{name}` is not stored by igloo")).hint(
            "ClickHouse tables have no composite columns here: a field of this type must be `Json`, or its fields flattened into the model (`igloo import prisma` makes it `Json`)",
        )
    }

    pub fn view_block(name: &str, span: Span) -> Diagnostic {
        Self::warning(span, format!("view `{name}` is ignored by igloo")).hint(format!(
            "an igloo view is a model filled by a query: declare `model {name}` with `@@ingest(false)` and write its SELECT in `views/{name}.sql`"
        ))
    }

    pub fn type_alias(span: Span) -> Diagnostic {
        Self::error(span, "type aliases (`type Name = …`) were removed from Prisma in version 3")
            .hint("write the type and its attributes on each field")
    }

    pub fn missing_field_type(field: &str, span: Span) -> Diagnostic {
        Self::error(span, format!("field `{field}` has no type"))
            .hint(format!("write it as `{field} String`, `{field} Int`, …"))
    }

    // ---- names ----

    pub fn duplicate_definition(kind: &str, name: &str, first: &str, span: Span) -> Diagnostic {
        Self::error(span, format!("{kind} `{name}` is defined more than once"))
            .hint(format!("first defined at {first}"))
    }

    pub fn duplicate_field(model: &str, field: &str, span: Span) -> Diagnostic {
        Self::error(span, format!("field `{field}` is defined more than once in model `{model}`"))
    }

    pub fn duplicate_column(model: &str, column: &str, span: Span) -> Diagnostic {
        Self::error(span, format!("two fields of model `{model}` map to the same column `{column}`"))
    }

    pub fn duplicate_table(table: &str, other_model: &str, span: Span) -> Diagnostic {
        Self::error(span, format!("table `{table}` is already used by model `{other_model}`"))
            .hint("give one of them another name with `@@map(\"…\")`")
    }

    pub fn duplicate_topic(topic: &str, other_model: &str, span: Span) -> Diagnostic {
        Self::error(span, format!("topic `{topic}` is already used by model `{other_model}`"))
            .hint("give one of them another topic with `@@topic(name: \"…\")`")
    }

    pub fn duplicate_variant(enum_name: &str, variant: &str, span: Span) -> Diagnostic {
        Self::error(span, format!("value `{variant}` is defined more than once in enum `{enum_name}`"))
    }

    pub fn reserved_name(what: &str, name: &str, span: Span) -> Diagnostic {
        Self::error(span, format!("{what} `{name}` uses a reserved name"))
            .hint("names starting with `_igloo` are reserved for igloo's own tables and columns")
    }

    pub fn invalid_name(what: &str, name: &str, span: Span) -> Diagnostic {
        Self::error(span, format!("{what} `{name}` is not a valid name"))
            .hint("use letters, digits and `_`, starting with a letter")
    }

    pub fn empty_model(model: &str, span: Span) -> Diagnostic {
        Self::error(span, format!("model `{model}` has no stored fields"))
            .hint("add at least one field without `@ignore`")
    }

    pub fn empty_enum(name: &str, span: Span) -> Diagnostic {
        Self::error(span, format!("enum `{name}` has no values"))
    }

    pub fn too_many_variants(name: &str, count: usize, span: Span) -> Diagnostic {
        Self::error(span, format!("enum `{name}` has {count} values; ClickHouse enums hold at most 32767"))
            .hint("use a `String @db.LowCardinality` field instead")
    }

    pub fn unused_enum(name: &str, span: Span) -> Diagnostic {
        Self::warning(span, format!("enum `{name}` is not used by any model"))
    }

    // ---- types ----

    pub fn unknown_type(name: &str, suggestion: Option<&str>, span: Span) -> Diagnostic {
        Self::error(span, format!("unknown type `{name}`")).maybe_suggest(suggestion)
    }

    pub fn composite_field(field: &str, ty: &str, span: Span) -> Diagnostic {
        Self::error(span, format!("field `{field}` has composite type `{ty}`, which igloo cannot store"))
            .hint(format!("make the field `Json`, or put the fields of `{ty}` in the model"))
    }

    pub fn unsupported_type(field: &str, db_type: &str, span: Span) -> Diagnostic {
        Self::error(span, format!("field `{field}` has type `Unsupported(\"{db_type}\")`, which igloo cannot store"))
            .hint(
            "give it an igloo type (String, Int, Json, …), or mark it `@ignore`; `igloo import prisma` leaves it out",
        )
    }

    pub fn type_arguments(name: &str, span: Span) -> Diagnostic {
        Self::error(span, format!("type `{name}` takes no arguments"))
            .hint("only `Unsupported(\"…\")` is written with parentheses; native types go in `@db.X(…)`")
    }

    pub fn relation_field(field: &str, model: &str, list: bool, span: Span) -> Diagnostic {
        let keep = if list {
            format!("remove this field (the key is on `{model}`'s side)")
        } else {
            format!("keep only the key field (e.g. `{field}Id String`)")
        };
        Self::error(span, format!("relations are not supported: field `{field}` refers to model `{model}`")).hint(
            format!(
                "ClickHouse has no foreign keys: {keep} and join in a view; `igloo import prisma` does this for you"
            ),
        )
    }

    pub fn relation_attribute(span: Span) -> Diagnostic {
        Self::error(span, "relations are not supported: `@relation` has no meaning in igloo")
            .hint("store the related record's key as a plain field and join in a view")
    }

    pub fn optional_list(field: &str, span: Span) -> Diagnostic {
        Self::error(span, format!("field `{field}`: a list cannot be optional"))
            .hint("ClickHouse arrays are never Nullable; an empty list means none, so drop the `?`")
    }

    pub fn list_of_optional(field: &str, span: Span) -> Diagnostic {
        Self::error(span, format!("field `{field}`: lists of optional values are not supported")).hint("drop the `?`")
    }

    pub fn unknown_native_type(name: &str, suggestion: Option<&str>, span: Span) -> Diagnostic {
        Self::error(span, format!("unknown native type `@db.{name}`")).maybe_suggest(suggestion)
    }

    /// `@db.VarChar(320)`, `@db.Timestamptz(6)` …: another database's type.
    /// (`foreign`'s mapping already fitted to the field's type.)
    pub fn foreign_native_type(name: &str, foreign: &crate::prisma::Foreign, span: Span) -> Diagnostic {
        Self::error(span, format!("`@db.{name}` is a native type of {}, not of ClickHouse", foreign.databases))
            .hint(format!("in ClickHouse it is {}: {}", foreign.clickhouse, Self::foreign_fix(foreign)))
    }

    fn foreign_fix(foreign: &crate::prisma::Foreign) -> String {
        use crate::prisma::Mapping;
        let fix = match foreign.mapping {
            Mapping::Keep => "write it with igloo's arguments".to_string(),
            Mapping::Plain => "drop the `@db` attribute".to_string(),
            Mapping::Native(n) => format!("write `@db.{n}`"),
            Mapping::Type(t) => format!("declare the field as `{}` without `@db`", t.name()),
            Mapping::DateTime64(_) => "write `@db.DateTime64(p)` (plain `DateTime` on ClickHouse 18.16)".to_string(),
        };
        format!("{fix}; `igloo import prisma` maps it for you")
    }

    /// Adds what a failed `@db.X` means in other databases, when it is also one of theirs.
    pub fn with_foreign_meaning(mut self, name: &str) -> Diagnostic {
        if let Some(foreign) =
            crate::prisma::foreign_native(name, None).filter(|f| f.mapping != crate::prisma::Mapping::Keep)
        {
            let extra = format!(
                "in {}, `@db.{name}` is {}: {}",
                foreign.databases,
                foreign.clickhouse,
                Self::foreign_fix(&foreign)
            );
            self.hint = Some(match self.hint {
                Some(h) => format!("{h}; {extra}"),
                None => extra,
            });
        }
        self
    }

    pub fn native_type_mismatch(native: &str, scalar: &str, allowed: &str, span: Span) -> Diagnostic {
        Self::error(span, format!("`@db.{native}` cannot be used on a `{scalar}` field"))
            .hint(format!("`@db.{native}` goes with {allowed}"))
    }

    pub fn native_type_on_enum(native: &str, span: Span) -> Diagnostic {
        Self::error(span, format!("`@db.{native}` cannot be used on an enum field"))
            .hint("enum fields are stored as ClickHouse Enum8/Enum16")
    }

    pub fn bad_native_argument(native: &str, expected: &str, span: Span) -> Diagnostic {
        Self::error(span, format!("`@db.{native}` takes {expected}"))
    }

    pub fn not_available_on(feature: &str, version: &str, min: &str, span: Span) -> Diagnostic {
        Self::error(span, format!("{feature} is not available on ClickHouse {version}"))
            .hint(format!("it needs ClickHouse {min} or newer"))
    }

    pub fn fallback_on(feature: &str, version: &str, fallback: &str, span: Span) -> Diagnostic {
        Self::warning(
            span,
            format!("{feature} is not available on ClickHouse {version}; the column is created as {fallback}"),
        )
    }

    // ---- attributes ----

    pub fn unknown_attribute(prefix: &str, name: &str, suggestion: Option<&str>, span: Span) -> Diagnostic {
        let d = Self::error(span, format!("unknown attribute `{prefix}{name}`"));
        match suggestion {
            Some(s) => d.hint(format!("did you mean `{prefix}{s}`?")),
            None => d,
        }
    }

    /// Valid Prisma that means nothing in ClickHouse: `@@schema`, `@@index`, a constraint name.
    pub fn ignored_attribute(prefix: &str, name: &str, hint: &str, span: Span) -> Diagnostic {
        Self::warning(span, format!("`{prefix}{name}` is ignored by igloo")).hint(hint)
    }

    pub fn ignored_argument(attribute: &str, arg: &str, why: &str, span: Span) -> Diagnostic {
        Self::warning(span, format!("`{arg}:` of `{attribute}` is ignored by igloo")).hint(why)
    }

    pub fn unsupported_attribute(prefix: &str, name: &str, hint: &str, span: Span) -> Diagnostic {
        Self::error(span, format!("`{prefix}{name}` is not supported by igloo")).hint(hint)
    }

    /// `@unique` / `@@unique`.
    pub fn unique_unsupported(prefix: &str, span: Span) -> Diagnostic {
        let key = if prefix == "@@" { "@@id" } else { "@id" };
        Self::unsupported_attribute(
            prefix,
            "unique",
            &format!("ClickHouse has no unique constraints; use `{key}` with `@@engine(ReplacingMergeTree)` to keep one row per key"),
            span,
        )
    }

    pub fn duplicate_attribute(prefix: &str, name: &str, span: Span) -> Diagnostic {
        Self::error(span, format!("attribute `{prefix}{name}` is given more than once"))
    }

    pub fn attribute_arguments(prefix: &str, name: &str, expected: &str, span: Span) -> Diagnostic {
        Self::error(span, format!("`{prefix}{name}` takes {expected}"))
    }

    pub fn unknown_argument(attribute: &str, arg: &str, known: &str, span: Span) -> Diagnostic {
        Self::error(span, format!("`{attribute}` has no argument `{arg}`")).hint(format!("its arguments are {known}"))
    }

    pub fn unknown_field_ref(
        attribute: &str,
        field: &str,
        model: &str,
        suggestion: Option<&str>,
        span: Span,
    ) -> Diagnostic {
        Self::error(span, format!("`{attribute}` refers to `{field}`, which is not a field of model `{model}`"))
            .maybe_suggest(suggestion)
    }

    pub fn ignored_field_ref(attribute: &str, field: &str, span: Span) -> Diagnostic {
        Self::error(span, format!("`{attribute}` refers to `{field}`, which is marked `@ignore` and so is not stored"))
    }

    pub fn id_and_block_id(model: &str, span: Span) -> Diagnostic {
        Self::error(span, format!("model `{model}` uses both `@id` on fields and `@@id`"))
            .hint("use one: `@@id([a, b])` for a key of several fields")
    }

    pub fn nullable_in_key(field: &str, span: Span) -> Diagnostic {
        Self::error(span, format!("field `{field}` is optional, and a nullable column cannot be in the sorting key"))
            .hint("make the field required (drop the `?`), with `@default(…)` if clients may omit it")
    }

    pub fn nullable_in_message_key(field: &str, span: Span) -> Diagnostic {
        Self::error(span, format!("field `{field}` is optional, and every message needs a value for its key"))
            .hint("make the field required (drop the `?`), or key the topic by other fields")
    }

    pub fn key_not_prefix(model: &str, span: Span) -> Diagnostic {
        Self::error(
            span,
            format!("the `@id` fields of model `{model}` must come first in `@@orderBy`, in the same order"),
        )
        .hint("ClickHouse requires the primary key to be a prefix of the sorting key")
    }

    pub fn duplicate_key_field(field: &str, span: Span) -> Diagnostic {
        Self::error(span, format!("field `{field}` is listed twice in the key"))
    }

    pub fn no_sorting_key(model: &str, span: Span) -> Diagnostic {
        Self::warning(
            span,
            format!(
                "model `{model}` has no sorting key: rows are stored unsorted and every query scans the whole table"
            ),
        )
        .hint("mark the fields you filter on with `@id`, or add `@@orderBy([…])`")
    }

    pub fn ignored_key(field: &str, span: Span) -> Diagnostic {
        Self::error(span, format!("field `{field}` cannot be both `@id` and `@ignore`"))
    }

    pub fn default_type_mismatch(field: &str, expected: &str, found: &str, span: Span) -> Diagnostic {
        Self::error(span, format!("default of field `{field}` must be {expected}, found {found}"))
    }

    pub fn default_out_of_range(field: &str, value: &str, ty: &str, span: Span) -> Diagnostic {
        Self::error(span, format!("default `{value}` of field `{field}` does not fit in {ty}"))
    }

    pub fn unknown_enum_default(
        field: &str,
        value: &str,
        enum_name: &str,
        suggestion: Option<&str>,
        span: Span,
    ) -> Diagnostic {
        Self::error(span, format!("default `{value}` of field `{field}` is not a value of enum `{enum_name}`"))
            .maybe_suggest(suggestion)
    }

    pub fn unsupported_default_function(name: &str, hint: &str, span: Span) -> Diagnostic {
        let call = if name.contains('(') { name.to_string() } else { format!("{name}()") };
        Self::error(span, format!("`{call}` is not supported as a default")).hint(hint)
    }

    pub fn unknown_engine(name: &str, suggestion: Option<&str>, span: Span) -> Diagnostic {
        Self::error(span, format!("unknown table engine `{name}`")).maybe_suggest(suggestion)
    }

    pub fn engine_column_type(engine: &str, role: &str, field: &str, expected: &str, span: Span) -> Diagnostic {
        Self::error(span, format!("the {role} column of {engine} must be {expected}; field `{field}` is not"))
    }

    pub fn bad_expression(attribute: &str, reason: &str, span: Span) -> Diagnostic {
        Self::error(span, format!("the expression of `{attribute}` {reason}"))
    }

    pub fn bad_topic_value(what: &str, reason: &str, span: Span) -> Diagnostic {
        Self::error(span, format!("topic {what} {reason}"))
    }

    // ---- time series ----

    pub fn timeseries_field_type(role: &str, field: &str, expected: &str, span: Span) -> Diagnostic {
        Self::error(span, format!("the {role} field of `@@timeseries` must be {expected}; field `{field}` is not"))
    }

    pub fn timeseries_sorting_key(model: &str, series: &str, time: &str, span: Span) -> Diagnostic {
        Self::error(span, format!("time series `{model}` must be sorted by its series, then its time"))
            .hint(format!("declare `@@id([{series}, {time}])` (or start `@@orderBy` with `[{series}, {time}]`) so one series' events are read in time order"))
    }

    pub fn timeseries_no_values(model: &str, span: Span) -> Diagnostic {
        Self::error(span, format!("time series `{model}` has no value fields"))
            .hint("value fields are required numbers or lists of numbers (Int, BigInt, Float) other than the time and the series; list them with `values: [a, b]`")
    }

    pub fn timeseries_unit(unit: &str, span: Span) -> Diagnostic {
        Self::error(span, format!("unknown time unit \"{unit}\"")).hint("use \"s\", \"ms\", \"us\" or \"ns\"")
    }

    pub fn timeseries_unit_on_datetime(field: &str, span: Span) -> Diagnostic {
        Self::error(span, format!("`unit` applies to integer times; `{field}` is a DateTime, counted in seconds"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::FileId;

    #[test]
    fn renders_snippet_with_caret_and_hint() {
        let files = [SourceFile::new("schema/a.prisma", "model A {\n  name   Strng\n}\n")];
        let d = Diagnostic::unknown_type("Strng", Some("String"), Span::new(FileId(0), 19, 24));
        assert_eq!(
            d.render(&files),
            "error: unknown type `Strng`\n --> schema/a.prisma:2:10\n  |\n2 |   name   Strng\n  |          ^^^^^\n  = hint: did you mean `String`?\n"
        );
    }
}

//! `igloo import prisma`: an application's Prisma schema → an igloo schema that passes
//! `igloo check`, plus a report of every change. Pure: takes the files' text, returns text.
//!
//! The rules, in order of how often they matter:
//! - `datasource`, `generator`, `view` and `type` blocks are left out (composite-type fields
//!   become `Json`);
//! - relation fields go, their key fields (`authorId`) stay, and the report says how to join;
//! - native types of the source database map to ClickHouse ones ([`crate::prisma`]);
//! - defaults ClickHouse cannot compute (`cuid()`, `autoincrement()`, `dbgenerated(…)`) become
//!   `uuid()` on text ids, or a value the client sends; `@updatedAt` becomes `@default(now())`;
//! - the first `@@index` leads the sorting key; uniqueness is reported, not enforced.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt::Write as _;

use crate::ast::{ArgAst, AttributeAst, EnumAst, Expr, FieldAst, ModelAst, SchemaAst};
use crate::diagnostics::Diagnostics;
use crate::dialect::{Dialect, Feature};
use crate::ir::ScalarType;
use crate::prisma::{foreign_native, Mapping, Provider};
use crate::source::{FileId, SourceFile};

#[derive(Clone, Debug)]
pub struct ImportOptions {
    /// Keep only these models (all when `None`).
    pub models: Option<Vec<String>>,
    /// The ClickHouse version the schema must run on (`DateTime64` needs 20.1+).
    pub dialect: Dialect,
}

#[derive(Debug)]
pub struct Imported {
    /// The igloo schema, one file.
    pub schema: String,
    pub report: Report,
    pub models: usize,
    pub enums: usize,
}

#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error("the Prisma schema has syntax errors")]
    Syntax(Diagnostics),
    #[error("the Prisma schema has no models")]
    NoModels,
    #[error("no model named {} (the schema has {})", .unknown.join(", "), .available.join(", "))]
    UnknownModels { unknown: Vec<String>, available: Vec<String> },
}

/// What the import changed, by kind, in the order the report prints them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ChangeKind {
    LeftOut,
    Relation,
    NativeType,
    Default,
    Key,
    Unique,
    Index,
    Field,
    Enum,
    NotAnalytics,
}

impl ChangeKind {
    fn title(self) -> &'static str {
        match self {
            ChangeKind::LeftOut => "left out (no meaning in ClickHouse)",
            ChangeKind::Relation => "relation fields removed (their key fields stay; join in a view)",
            ChangeKind::NativeType => "native types mapped to ClickHouse",
            ChangeKind::Default => "defaults replaced",
            ChangeKind::Key => "sorting keys",
            ChangeKind::Unique => "unique constraints (ClickHouse does not enforce them)",
            ChangeKind::Index => "indexes",
            ChangeKind::Field => "fields changed or left out",
            ChangeKind::Enum => "enums",
            ChangeKind::NotAnalytics => "models that may have no place in analytics (keep the others with --models)",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Change {
    pub kind: ChangeKind,
    /// What changed: `User.email`, `datasource db` …
    pub subject: String,
    pub detail: String,
}

#[derive(Clone, Debug, Default)]
pub struct Report {
    pub changes: Vec<Change>,
}

impl Report {
    fn add(&mut self, kind: ChangeKind, subject: impl Into<String>, detail: impl Into<String>) {
        self.changes.push(Change { kind, subject: subject.into(), detail: detail.into() });
    }

    pub fn of(&self, kind: ChangeKind) -> impl Iterator<Item = &Change> {
        self.changes.iter().filter(move |c| c.kind == kind)
    }

    /// The report as text, grouped by kind.
    pub fn render(&self) -> String {
        let mut groups: BTreeMap<ChangeKind, Vec<&Change>> = BTreeMap::new();
        for c in &self.changes {
            groups.entry(c.kind).or_default().push(c);
        }
        let mut out = String::new();
        for (kind, changes) in groups {
            let _ = writeln!(out, "{} ({}):", kind.title(), changes.len());
            for c in changes {
                let _ = writeln!(out, "  {}: {}", c.subject, c.detail);
            }
        }
        out
    }
}

/// Reads Prisma schema files (one schema; `prismaSchemaFolder` is several) and writes one
/// igloo schema.
pub fn import_prisma(files: &[SourceFile], options: &ImportOptions) -> Result<Imported, ImportError> {
    let mut diags = Diagnostics::default();
    let asts: Vec<SchemaAst> =
        files.iter().enumerate().map(|(i, f)| crate::parser::parse(FileId(i as u32), &f.text, &mut diags)).collect();
    if diags.has_errors() {
        return Err(ImportError::Syntax(diags));
    }
    let schema = Schema::new(&asts);
    let all: Vec<&ModelAst> = schema.models.values().copied().collect();
    if all.is_empty() {
        return Err(ImportError::NoModels);
    }
    let mut report = Report::default();
    let selected: Vec<&ModelAst> = match &options.models {
        Some(names) => {
            let unknown: Vec<String> =
                names.iter().filter(|n| !schema.models.contains_key(n.as_str())).cloned().collect();
            if !unknown.is_empty() {
                let available = schema.order.iter().map(|s| s.to_string()).collect();
                return Err(ImportError::UnknownModels { unknown, available });
            }
            schema.order.iter().filter(|n| names.iter().any(|w| w == *n)).map(|n| schema.models[n]).collect()
        }
        None => schema.order.iter().map(|n| schema.models[n]).collect(),
    };
    schema.report_left_out(&asts, &selected, &mut report);
    let mut ctx = Ctx { schema: &schema, options, report, used_enums: HashSet::new() };
    let mut blocks = Vec::new();
    let mut models = 0;
    for m in &selected {
        if m.attributes.iter().any(|a| a.name.name == "ignore") {
            ctx.report.add(ChangeKind::LeftOut, format!("model {}", m.name.name), "marked `@@ignore`");
            continue;
        }
        if let Some(text) = ctx.model(m) {
            blocks.push(text);
            models += 1;
        }
    }
    let mut enums = 0;
    for name in &schema.enum_order {
        if ctx.used_enums.contains(*name) {
            blocks.push(ctx.enum_block(schema.enums[name]));
            enums += 1;
        }
    }
    if options.models.is_none() {
        for m in &selected {
            if let Some(why) = not_analytics(m, &schema) {
                ctx.report.add(ChangeKind::NotAnalytics, m.name.name.clone(), why);
            }
        }
    }
    let sources: Vec<&str> = files.iter().map(|f| f.path.as_str()).collect();
    let mut out = format!("// Imported by `igloo import prisma` from {}.\n", sources.join(", "));
    if let Some(p) = schema.provider {
        let _ = writeln!(out, "// Source database: {p}. ClickHouse rows are immutable events.");
    }
    for b in blocks {
        out.push('\n');
        out.push_str(&b);
    }
    let out = drop_rejected_defaults(out, options.dialect, &mut ctx.report);
    Ok(Imported { schema: out, report: ctx.report, models, enums })
}

/// Removes the `@default(…)`s igloo rejects (a non-empty list, a time with an offset, a value
/// out of range …) from the output, each reported with igloo's reason. The database took them;
/// ClickHouse would need the client to send the value.
fn drop_rejected_defaults(mut text: String, dialect: Dialect, report: &mut Report) -> String {
    // Each round removes every rejected default it finds; removing one never rejects another.
    for _ in 0..3 {
        let (_, diags) = crate::check_for(&[SourceFile::new("out.prisma", text.as_str())], dialect);
        let mut cuts = Vec::new();
        for d in diags.errors() {
            let at = d.span.start as usize;
            let line_start = text[..at].rfind('\n').map_or(0, |i| i + 1);
            let Some(open) = text[line_start..at].rfind("@default(").map(|i| line_start + i) else { continue };
            let Some(len) = balanced_len(&text[open + "@default".len()..]) else { continue };
            let end = open + "@default".len() + len;
            if at < end && !cuts.iter().any(|(o, _, _)| *o == open) {
                cuts.push((open, end, d.message.clone()));
            }
        }
        if cuts.is_empty() {
            break;
        }
        cuts.sort_by_key(|c| c.0);
        for (open, end, why) in &cuts {
            let (open, end) = (*open, *end);
            let line_start = text[..open].rfind('\n').map_or(0, |i| i + 1);
            let field = text[line_start..].split_whitespace().next().unwrap_or("");
            let model = text[..line_start]
                .lines()
                .rev()
                .find_map(|l| l.strip_prefix("model ").and_then(|m| m.split_whitespace().next()))
                .unwrap_or("");
            report.add(ChangeKind::Default, format!("{model}.{field}"), format!("{} removed: {why}", &text[open..end]));
        }
        for (open, end, _) in cuts.into_iter().rev() {
            let start = text[..open].trim_end_matches(' ').len();
            let line_end = text[end..].find('\n').map_or(text.len(), |i| end + i);
            let rest = text[end..line_end].trim_end().to_string();
            text.replace_range(start..line_end, &rest);
        }
    }
    text
}

/// The length of `(…)` at the start of `s`, through its matching `)`, strings skipped.
fn balanced_len(s: &str) -> Option<usize> {
    let mut depth = 0;
    let mut in_string = false;
    let mut escaped = false;
    for (i, c) in s.char_indices() {
        match (in_string, c) {
            (true, _) if escaped => escaped = false,
            (true, '\\') => escaped = true,
            (true, '"') => in_string = false,
            (true, _) => {}
            (false, '"') => in_string = true,
            (false, '(') => depth += 1,
            (false, ')') => {
                depth -= 1;
                if depth == 0 {
                    return Some(i + 1);
                }
            }
            (false, '\n') => return None,
            _ => {}
        }
    }
    None
}

/// The names of the source schema, across its files.
struct Schema<'a> {
    provider: Option<Provider>,
    models: HashMap<&'a str, &'a ModelAst>,
    order: Vec<&'a str>,
    enums: HashMap<&'a str, &'a EnumAst>,
    enum_order: Vec<&'a str>,
    composites: HashSet<&'a str>,
    views: HashSet<&'a str>,
}

impl<'a> Schema<'a> {
    fn new(asts: &'a [SchemaAst]) -> Schema<'a> {
        let mut s = Schema {
            provider: crate::prisma::provider_of(asts),
            models: HashMap::new(),
            order: Vec::new(),
            enums: HashMap::new(),
            enum_order: Vec::new(),
            composites: HashSet::new(),
            views: HashSet::new(),
        };
        for a in asts {
            for m in &a.models {
                if s.models.insert(&m.name.name, m).is_none() {
                    s.order.push(&m.name.name);
                }
            }
            for e in &a.enums {
                if s.enums.insert(&e.name.name, e).is_none() {
                    s.enum_order.push(&e.name.name);
                }
            }
            s.composites.extend(a.composites.iter().map(|t| t.name.name.as_str()));
            s.views.extend(a.views.iter().map(|v| v.name.name.as_str()));
        }
        s
    }

    fn report_left_out(&self, asts: &[SchemaAst], selected: &[&ModelAst], report: &mut Report) {
        for a in asts {
            for c in &a.configs {
                report.add(ChangeKind::LeftOut, format!("{} {}", c.keyword.name, c.name.name), c.igloo_instead());
            }
            for v in &a.views {
                report.add(
                    ChangeKind::LeftOut,
                    format!("view {}", v.name.name),
                    format!("an igloo view is a model with `@@ingest(false)` filled by `views/{}.sql`", v.name.name),
                );
            }
            for t in &a.composites {
                report.add(ChangeKind::LeftOut, format!("type {}", t.name.name), "fields of this type become `Json`");
            }
        }
        for name in &self.order {
            if !selected.iter().any(|m| m.name.name == *name) {
                report.add(ChangeKind::LeftOut, format!("model {name}"), "not in --models");
            }
        }
    }
}

struct Ctx<'a> {
    schema: &'a Schema<'a>,
    options: &'a ImportOptions,
    report: Report,
    used_enums: HashSet<String>,
}

/// A field as it will be written.
struct OutField {
    name: String,
    ty: String,
    attrs: Vec<String>,
    doc: Option<String>,
    /// Kept, required, not a list: may be part of a key.
    keyable: bool,
}

impl Ctx<'_> {
    fn model(&mut self, m: &ModelAst) -> Option<String> {
        let model = m.name.name.as_str();
        let mut fields = Vec::new();
        let mut field_ids = Vec::new();
        let mut uniques: Vec<Vec<String>> = Vec::new();
        for f in &m.fields {
            let Some(mut out) = self.field(m, f) else { continue };
            if out.attrs.iter().any(|a| a == "@ignore") {
                out.keyable = false;
            }
            if let Some(pos) = out.attrs.iter().position(|a| a == "@id") {
                field_ids.push(out.name.clone());
                out.attrs.remove(pos);
            }
            if f.attributes.iter().any(|a| a.name.name == "unique") {
                uniques.push(vec![out.name.clone()]);
            }
            fields.push(out);
        }
        if fields.is_empty() {
            self.report.add(ChangeKind::LeftOut, format!("model {model}"), "no field of it can be stored");
            return None;
        }
        let kept: HashSet<&str> = fields.iter().map(|f| f.name.as_str()).collect();
        let keyable: HashSet<&str> = fields.iter().filter(|f| f.keyable).map(|f| f.name.as_str()).collect();
        let mut block_attrs = Vec::new();
        let mut block_id = None;
        let mut indexes = Vec::new();
        for a in &m.attributes {
            let name = a.name.name.as_str();
            match name {
                "id" => {
                    block_id = key_fields(a);
                    if let Some(tuning) = key_tuning(a) {
                        self.report.add(
                            ChangeKind::Key,
                            format!("{model} @@id"),
                            format!("{tuning} dropped: {}", crate::validate::INDEX_TUNING),
                        );
                    }
                }
                "unique" => uniques.extend(key_fields(a)),
                "index" => indexes.extend(key_fields(a)),
                "map" => {
                    if let Some(t) = string_arg(a) {
                        block_attrs.push(format!("@@map({})", quote(t)));
                    }
                }
                "ignore" => {}
                _ => self.report.add(
                    ChangeKind::LeftOut,
                    format!("{model} @@{name}"),
                    match name {
                        "schema" => "the ClickHouse database is set in igloo.yaml",
                        "fulltext" => "ClickHouse has no full-text index here; filter with `hasToken` or `like`",
                        _ => "no meaning in ClickHouse",
                    },
                ),
            }
        }
        let mut id = block_id.unwrap_or(field_ids);
        id.retain(|f| kept.contains(f.as_str()));
        if id.is_empty() {
            if let Some(u) = uniques.iter().find(|u| u.iter().all(|f| keyable.contains(f.as_str()))) {
                self.report.add(
                    ChangeKind::Key,
                    model,
                    format!("no kept `@id`: the unique key ({}) becomes the sorting key", u.join(", ")),
                );
                id = u.clone();
            }
        }
        for u in &uniques {
            let detail = if *u == id {
                "it is the sorting key; add `@@engine(ReplacingMergeTree)` to keep one row per key".to_string()
            } else {
                format!(
                    "to keep one row per key, make it the key (`@@id([{}])`) with `@@engine(ReplacingMergeTree)`",
                    u.join(", ")
                )
            };
            self.report.add(ChangeKind::Unique, format!("{model}({})", u.join(", ")), detail);
        }
        let mut first_index = true;
        for ix in &indexes {
            let usable = ix.iter().all(|f| keyable.contains(f.as_str()));
            if first_index && usable && !id.is_empty() && !id.starts_with(ix) {
                let mut key = ix.clone();
                key.extend(id.iter().filter(|f| !ix.contains(f)).cloned());
                self.report.add(
                    ChangeKind::Index,
                    format!("{model}({})", ix.join(", ")),
                    format!(
                        "leads the sorting key: ({}); ClickHouse finds rows fastest by its first fields",
                        key.join(", ")
                    ),
                );
                id = key;
                first_index = false;
            } else {
                let why = if id.starts_with(ix) {
                    "the sorting key already starts with it"
                } else if usable {
                    "left out: ClickHouse has one sorting key per table; filter on its leading fields"
                } else {
                    "left out: it names optional, list or removed fields, which cannot be in a sorting key"
                };
                self.report.add(ChangeKind::Index, format!("{model}({})", ix.join(", ")), why);
            }
        }
        if id.is_empty() {
            self.report.add(
                ChangeKind::Key,
                model,
                "no key igloo can use: rows are stored unsorted; add `@@orderBy([…])` on the fields you filter on",
            );
        }
        let mut text = doc_lines(m.doc.as_deref(), "");
        let _ = writeln!(text, "model {model} {{");
        let single_id = (id.len() == 1).then(|| id[0].clone());
        let name_width = fields.iter().map(|f| f.name.len()).max().unwrap_or(0);
        let type_width = fields.iter().map(|f| f.ty.len()).max().unwrap_or(0);
        for f in &mut fields {
            if single_id.as_deref() == Some(f.name.as_str()) {
                f.attrs.insert(0, "@id".into());
            }
            text += &doc_lines(f.doc.as_deref(), "  ");
            let line = format!("  {:name_width$} {:type_width$} {}", f.name, f.ty, f.attrs.join(" "));
            text += line.trim_end();
            text.push('\n');
        }
        if id.len() > 1 {
            block_attrs.insert(0, format!("@@id([{}])", id.join(", ")));
        }
        if !block_attrs.is_empty() {
            text.push('\n');
            for a in block_attrs {
                let _ = writeln!(text, "  {a}");
            }
        }
        text += "}\n";
        Some(text)
    }

    /// One field, or `None` when it is left out (relations, `Unsupported`).
    fn field(&mut self, m: &ModelAst, f: &FieldAst) -> Option<OutField> {
        let subject = format!("{}.{}", m.name.name, f.name.name);
        let type_name = f.ty.name.name.as_str();
        if let Some(db) = f.ty.unsupported() {
            self.report.add(
                ChangeKind::Field,
                subject,
                format!("left out: `Unsupported(\"{db}\")` has no ClickHouse type igloo can derive"),
            );
            return None;
        }
        if self.schema.models.contains_key(type_name) || self.schema.views.contains(type_name) {
            let detail = self.join_hint(m, f);
            self.report.add(ChangeKind::Relation, subject, detail);
            return None;
        }
        let optional = f.ty.optional && !f.ty.list;
        let suffix = if f.ty.list {
            "[]"
        } else if optional {
            "?"
        } else {
            ""
        };
        let mut out = OutField {
            name: f.name.name.clone(),
            ty: String::new(),
            attrs: Vec::new(),
            doc: f.doc.clone(),
            keyable: !f.ty.list && !f.ty.optional,
        };
        if self.schema.composites.contains(type_name) {
            let detail = format!("composite type `{type_name}` stored as `Json`");
            self.report.add(ChangeKind::Field, subject.clone(), detail);
            out.ty = format!("Json{}", if optional { "?" } else { "" });
            out.keyable = false;
            return Some(self.field_attrs(f, ScalarType::Json, out, &subject));
        }
        let Some(mut scalar) = ScalarType::from_name(type_name) else {
            // An enum (or an unknown name, which `igloo check` reports on the output).
            if self.schema.enums.contains_key(type_name) {
                self.used_enums.insert(type_name.to_string());
            }
            out.ty = format!("{type_name}{suffix}");
            return Some(self.field_attrs(f, ScalarType::String, out, &subject));
        };
        // Native type first: it may change the field's type (`@db.Uuid` on a String).
        let mut native = None;
        for a in f.attributes.iter().filter(|a| a.name.name.starts_with("db.")) {
            native = self.native(&subject, a, &mut scalar);
        }
        if scalar == ScalarType::DateTime
            && native.is_none()
            && !f.attributes.iter().any(|a| a.name.name.starts_with("db."))
        {
            // Prisma stores milliseconds by default; igloo's plain DateTime is seconds.
            if self.options.dialect.supports(Feature::DateTime64) {
                native = Some("@db.DateTime64(3)".to_string());
            } else {
                self.report.add(
                    ChangeKind::NativeType,
                    subject.clone(),
                    "DateTime in seconds: ClickHouse 18.16 has no DateTime64, milliseconds are dropped",
                );
            }
        }
        out.ty = format!("{}{suffix}", scalar.name());
        let mut out = self.field_attrs(f, scalar, out, &subject);
        out.attrs.extend(native);
        Some(out)
    }

    /// How to join in place of a relation field.
    fn join_hint(&self, m: &ModelAst, f: &FieldAst) -> String {
        let target = &f.ty.name.name;
        if let Some((fields, refs)) = relation_keys(f) {
            return format!("join {target} on {} = {target}.{}", qualified(&m.name.name, &fields), refs.join(", "));
        }
        let back_list = self.schema.models.get(target.as_str()).and_then(|t| {
            t.fields.iter().find(|tf| tf.ty.name.name == m.name.name && tf.ty.list && relation_keys(tf).is_none())
        });
        if let (true, Some(_)) = (f.ty.list, back_list) {
            // Prisma's implicit many-to-many: a hidden table `_AToB` (models in name order).
            let (a, b) = if m.name.name <= *target { (&m.name.name, target) } else { (target, &m.name.name) };
            let table = relation_name(f).map_or_else(|| format!("_{a}To{b}"), |n| format!("_{n}"));
            return format!(
                "many-to-many with {target}: Prisma keeps the pairs in table `{table}` (A = {a}'s id, B = {b}'s id); to keep them, add a model with `@@map(\"{table}\")`"
            );
        }
        // The other side: find the field of the target model that holds the key.
        let back = self.schema.models.get(target.as_str()).and_then(|t| {
            t.fields.iter().find(|tf| tf.ty.name.name == m.name.name).and_then(relation_keys).map(|k| (t, k))
        });
        match back {
            Some((t, (fields, refs))) => format!(
                "the other side of {}.{}: join {target} on {} = {}.{}",
                t.name.name,
                fields.join(", "),
                qualified(target, &fields),
                m.name.name,
                refs.join(", ")
            ),
            None => format!("a relation to {target}; join on the key fields in a view"),
        }
    }

    /// `@db.X` of the source database; returns igloo's `@db.Y`, if any, and may change the type.
    fn native(&mut self, subject: &str, a: &AttributeAst, scalar: &mut ScalarType) -> Option<String> {
        let name = &a.name.name[3..];
        let written = format!("@{}{}", a.name.name, args_text(&a.args));
        let provider = self.schema.provider;
        let Some(foreign) = foreign_native(name, provider) else {
            // igloo's own name (`@db.UUID`) or a type no database has: keep, `igloo check` judges.
            return Some(written);
        };
        let (result, detail) = match foreign.mapping.for_scalar(*scalar) {
            Mapping::Keep => return Some(self.decimal_for_target(subject, name, a, written)),
            Mapping::Plain => (None, format!("{written} → {}", scalar.name())),
            Mapping::Native(n) => (Some(format!("@db.{n}")), format!("{written} → {} @db.{n}", scalar.name())),
            Mapping::Type(t) => {
                let from = scalar.name();
                *scalar = t;
                (None, format!("{from} {written} → {}", t.name()))
            }
            Mapping::DateTime64(default) => {
                let p = number_arg(&a.args).unwrap_or(default).min(9);
                if self.options.dialect.supports(Feature::DateTime64) {
                    (Some(format!("@db.DateTime64({p})")), format!("{written} → DateTime @db.DateTime64({p})"))
                } else {
                    (None, format!("{written} → DateTime in seconds (ClickHouse 18.16 has no DateTime64)"))
                }
            }
        };
        self.report.add(ChangeKind::NativeType, subject, detail);
        result
    }

    /// `@db.Decimal(p, s)` as written, narrowed to 38 digits where the target has no wider
    /// Decimal (MySQL's default is 65).
    fn decimal_for_target(&mut self, subject: &str, name: &str, a: &AttributeAst, written: String) -> String {
        let numbers: Vec<u64> = a
            .args
            .iter()
            .filter_map(|x| match &x.value {
                Expr::Number(n, _) => n.parse().ok(),
                _ => None,
            })
            .collect();
        match (name, numbers.as_slice()) {
            ("Decimal", [p, s]) if *p > 38 && !self.options.dialect.supports(Feature::WideDecimal) => {
                // Keep the whole digits where they fit; the fraction gives way.
                let scale = 38 - (p - (*s).min(*p)).min(38);
                let narrowed = format!("@db.Decimal(38, {scale})");
                self.report.add(
                    ChangeKind::NativeType,
                    subject,
                    format!("{written} → {narrowed}: ClickHouse {} holds at most 38 digits", self.options.dialect),
                );
                narrowed
            }
            _ => written,
        }
    }

    /// The field's attributes other than `@db`, rewritten for igloo.
    fn field_attrs(&mut self, f: &FieldAst, scalar: ScalarType, mut out: OutField, subject: &str) -> OutField {
        let has_default = f.attributes.iter().any(|a| a.name.name == "default");
        for a in &f.attributes {
            match a.name.name.as_str() {
                "id" => out.attrs.push("@id".into()),
                "ignore" => out.attrs.push("@ignore".into()),
                "map" => {
                    if let Some(col) = string_arg(a) {
                        out.attrs.push(format!("@map({})", quote(col)));
                    }
                }
                "default" => {
                    if let Some(d) = self.default(subject, a, scalar, f.ty.list) {
                        out.attrs.push(d);
                    }
                }
                "updatedAt" => {
                    if !has_default {
                        out.attrs.push("@default(now())".into());
                    }
                    self.report.add(
                        ChangeKind::Default,
                        subject,
                        "@updatedAt → @default(now()): rows are immutable; send a new row for each change",
                    );
                }
                // `@unique` is reported with the model's unique keys; `@relation` went with its
                // field; `@db` was mapped before.
                _ => {}
            }
        }
        out
    }

    fn default(&mut self, subject: &str, a: &AttributeAst, scalar: ScalarType, list: bool) -> Option<String> {
        let value = a.args.iter().find(|x| x.name.as_ref().is_none_or(|n| n.name == "value"))?;
        let Expr::Call(func, args, _) = &value.value else {
            return Some(format!("@default({})", expr_text(&value.value)));
        };
        let generated = match func.name.as_str() {
            "now" => return Some("@default(now())".into()),
            "uuid"
                if args.is_empty()
                    || matches!(args.as_slice(), [ArgAst { value: Expr::Number(n, _), .. }] if n == "4") =>
            {
                return Some("@default(uuid())".into())
            }
            other => other,
        };
        let written = format!("@default({})", expr_text(&value.value));
        let text_id = matches!(scalar, ScalarType::String | ScalarType::Uuid) && !list;
        if text_id && generated != "dbgenerated" {
            self.report.add(
                ChangeKind::Default,
                subject,
                format!("{written} → @default(uuid()): ClickHouse generates UUIDs"),
            );
            Some("@default(uuid())".into())
        } else {
            let why = match generated {
                "autoincrement" | "sequence" => "ClickHouse has no sequences; the client sends the value",
                "dbgenerated" => "the database computed it; the client sends the value",
                _ => "ClickHouse cannot compute it; the client sends the value",
            };
            self.report.add(ChangeKind::Default, subject, format!("{written} removed: {why}"));
            None
        }
    }

    fn enum_block(&mut self, e: &EnumAst) -> String {
        let mut text = doc_lines(e.doc.as_deref(), "");
        let _ = writeln!(text, "enum {} {{", e.name.name);
        for v in &e.variants {
            text += &doc_lines(v.doc.as_deref(), "  ");
            let _ = write!(text, "  {}", v.name.name);
            for a in &v.attributes {
                if let ("map", Some(s)) = (a.name.name.as_str(), string_arg(a)) {
                    let _ = write!(text, " @map({})", quote(s));
                }
            }
            text.push('\n');
        }
        for a in &e.attributes {
            self.report.add(
                ChangeKind::Enum,
                format!("{} @@{}", e.name.name, a.name.name),
                "left out: a ClickHouse enum is a column type, without a name or schema of its own",
            );
        }
        text += "}\n";
        text
    }
}

/// `fields: [a]`, `references: [b]` of `@relation`.
fn relation_keys(f: &FieldAst) -> Option<(Vec<String>, Vec<String>)> {
    let rel = f.attributes.iter().find(|a| a.name.name == "relation")?;
    let list = |key: &str| {
        rel.args.iter().find(|a| a.name.as_ref().is_some_and(|n| n.name == key)).and_then(|a| names_of(&a.value))
    };
    Some((list("fields")?, list("references")?))
}

/// The name of a relation: `@relation("Name")` or `@relation(name: "Name")`.
fn relation_name(f: &FieldAst) -> Option<&str> {
    let rel = f.attributes.iter().find(|a| a.name.name == "relation")?;
    string_arg(rel)
}

/// Prisma's `name:`, `map:`, `clustered:` and `sort:`/`length:` of a key, for the report.
fn key_tuning(a: &AttributeAst) -> Option<String> {
    let mut names: Vec<String> = a
        .args
        .iter()
        .filter_map(|x| x.name.as_ref())
        .filter(|n| n.name != "fields")
        .map(|n| format!("`{}:`", n.name))
        .collect();
    let sorted = a
        .args
        .iter()
        .any(|x| matches!(&x.value, Expr::Array(items, _) if items.iter().any(|i| matches!(i, Expr::Call(..)))));
    if sorted {
        names.push("`sort:`/`length:`".into());
    }
    (!names.is_empty()).then(|| names.join(", "))
}

fn qualified(model: &str, fields: &[String]) -> String {
    fields.iter().map(|f| format!("{model}.{f}")).collect::<Vec<_>>().join(", ")
}

/// The field names of `@@id([a, b(sort: Desc)])`, `@@index(fields: [a])` …
fn key_fields(a: &AttributeAst) -> Option<Vec<String>> {
    a.args.iter().find(|x| x.name.as_ref().is_none_or(|n| n.name == "fields")).and_then(|x| names_of(&x.value))
}

fn names_of(e: &Expr) -> Option<Vec<String>> {
    let Expr::Array(items, _) = e else { return None };
    items
        .iter()
        .map(|i| match i {
            Expr::Constant(id) | Expr::Call(id, _, _) => Some(id.name.clone()),
            _ => None,
        })
        .collect()
}

fn string_arg(a: &AttributeAst) -> Option<&str> {
    a.args.iter().find(|x| x.name.as_ref().is_none_or(|n| n.name == "name")).and_then(|x| match &x.value {
        Expr::String(s, _) => Some(s.as_str()),
        _ => None,
    })
}

fn number_arg(args: &[ArgAst]) -> Option<u8> {
    args.iter().find_map(|a| match &a.value {
        Expr::Number(n, _) => n.parse().ok(),
        _ => None,
    })
}

fn args_text(args: &[ArgAst]) -> String {
    if args.is_empty() {
        return String::new();
    }
    let parts: Vec<String> = args
        .iter()
        .map(|a| match &a.name {
            Some(n) => format!("{}: {}", n.name, expr_text(&a.value)),
            None => expr_text(&a.value),
        })
        .collect();
    format!("({})", parts.join(", "))
}

fn expr_text(e: &Expr) -> String {
    match e {
        Expr::String(s, _) => quote(s),
        Expr::Number(n, _) => n.clone(),
        Expr::Constant(id) => id.name.clone(),
        Expr::Call(id, args, _) => {
            format!("{}{}", id.name, if args.is_empty() { "()".into() } else { args_text(args) })
        }
        Expr::Array(items, _) => format!("[{}]", items.iter().map(expr_text).collect::<Vec<_>>().join(", ")),
    }
}

fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn doc_lines(doc: Option<&str>, indent: &str) -> String {
    doc.map(|d| d.lines().map(|l| format!("{indent}/// {l}\n")).collect()).unwrap_or_default()
}

/// Why a model may not belong in analytics: auth bookkeeping, or a pure join table.
fn not_analytics(m: &ModelAst, schema: &Schema) -> Option<&'static str> {
    const AUTH: &[&str] = &[
        "session",
        "verificationtoken",
        "verificationrequest",
        "passwordresettoken",
        "authenticator",
        "authtoken",
        "refreshtoken",
    ];
    let name = m.name.name.to_ascii_lowercase();
    // An `Account` is often the business's own; an OAuth account link names its provider.
    let oauth_account = name == "account" && m.fields.iter().any(|f| f.name.name == "providerAccountId");
    if AUTH.contains(&name.as_str()) || oauth_account {
        return Some("authentication bookkeeping");
    }
    let stored: Vec<&FieldAst> =
        m.fields.iter().filter(|f| !schema.models.contains_key(f.ty.name.name.as_str())).collect();
    let keys: HashSet<String> = m.fields.iter().filter_map(relation_keys).flat_map(|(fields, _)| fields).collect();
    let join_table = stored.len() <= 3
        && keys.len() >= 2
        && stored.iter().all(|f| keys.contains(&f.name.name) || f.ty.name.name == "DateTime");
    join_table.then_some("a join table between two models; its pairs are better joined in a view")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn import(text: &str) -> Imported {
        let options = ImportOptions { models: None, dialect: Dialect::CURRENT };
        import_prisma(&[SourceFile::new("schema.prisma", text)], &options).expect("imports")
    }

    #[test]
    fn relations_go_and_their_keys_stay() {
        let out = import(
            "model User {\n  id String @id @default(cuid())\n  posts Post[]\n}\n\
             model Post {\n  id Int @id @default(autoincrement())\n  author User @relation(fields: [authorId], references: [id])\n  authorId String\n}\n",
        );
        assert!(out.schema.contains("authorId String"), "{}", out.schema);
        assert!(!out.schema.contains("posts"), "{}", out.schema);
        let relations: Vec<_> = out.report.of(ChangeKind::Relation).map(|c| c.detail.clone()).collect();
        assert_eq!(
            relations,
            [
                "the other side of Post.authorId: join Post on Post.authorId = User.id",
                "join User on Post.authorId = User.id"
            ]
        );
        let (_, diags) = crate::check(&[SourceFile::new("out.prisma", out.schema.as_str())]);
        assert!(
            !diags.has_errors(),
            "{}\n{}",
            out.schema,
            diags.render(&[SourceFile::new("out.prisma", out.schema.as_str())])
        );
    }

    #[test]
    fn unknown_models_are_named() {
        let options = ImportOptions { models: Some(vec!["Nope".into()]), dialect: Dialect::CURRENT };
        let err = import_prisma(&[SourceFile::new("s.prisma", "model A {\n  id Int @id\n}\n")], &options).unwrap_err();
        assert_eq!(err.to_string(), "no model named Nope (the schema has A)");
    }
}

//! The syntax tree of one schema file, exactly as written. Only the parser builds it and only
//! `validate` reads it: everything downstream works on the IR.

use crate::source::Span;

#[derive(Clone, Debug, PartialEq)]
pub struct Ident {
    pub name: String,
    pub span: Span,
}

#[derive(Clone, Debug, Default)]
pub struct SchemaAst {
    pub models: Vec<ModelAst>,
    pub enums: Vec<EnumAst>,
    /// Prisma's `datasource` and `generator` blocks: read (the importer wants the provider),
    /// never used for tables.
    pub configs: Vec<ConfigBlockAst>,
    /// Prisma's `type` blocks (composite types, embedded documents on MongoDB).
    pub composites: Vec<ModelAst>,
    /// Prisma's `view` blocks: the shape of a database view whose query lives elsewhere.
    pub views: Vec<ModelAst>,
}

/// `datasource db { provider = "postgresql" … }` or `generator client { … }`.
#[derive(Clone, Debug)]
pub struct ConfigBlockAst {
    /// `datasource` or `generator`.
    pub keyword: Ident,
    pub name: Ident,
    pub entries: Vec<(Ident, Expr)>,
}

impl ConfigBlockAst {
    /// What igloo has in place of this block, for diagnostics and the import report.
    pub fn igloo_instead(&self) -> &'static str {
        if self.keyword.name == "datasource" {
            "igloo.yaml holds the ClickHouse and broker settings"
        } else {
            "`igloo generate sdk` writes igloo's clients"
        }
    }

    /// The value of `key = "text"`, if it is a plain string.
    pub fn string(&self, key: &str) -> Option<&str> {
        self.entries.iter().find(|(k, _)| k.name == key).and_then(|(_, v)| match v {
            Expr::String(s, _) => Some(s.as_str()),
            _ => None,
        })
    }
}

#[derive(Clone, Debug)]
pub struct ModelAst {
    pub name: Ident,
    pub doc: Option<String>,
    pub fields: Vec<FieldAst>,
    pub attributes: Vec<AttributeAst>,
    /// From the `model` keyword to the closing brace.
    pub span: Span,
}

#[derive(Clone, Debug)]
pub struct EnumAst {
    pub name: Ident,
    pub doc: Option<String>,
    pub variants: Vec<VariantAst>,
    pub attributes: Vec<AttributeAst>,
    pub span: Span,
}

#[derive(Clone, Debug)]
pub struct VariantAst {
    pub name: Ident,
    pub doc: Option<String>,
    pub attributes: Vec<AttributeAst>,
}

#[derive(Clone, Debug)]
pub struct FieldAst {
    pub name: Ident,
    pub doc: Option<String>,
    pub ty: TypeAst,
    pub attributes: Vec<AttributeAst>,
    pub span: Span,
}

#[derive(Clone, Debug)]
pub struct TypeAst {
    pub name: Ident,
    pub list: bool,
    pub optional: bool,
    /// `T?[]` rather than `T[]?`; both are rejected, this one with its own wording.
    pub optional_before_list: bool,
    /// Arguments of a type written as a call: Prisma's `Unsupported("tsvector")`.
    pub args: Option<Vec<ArgAst>>,
    pub span: Span,
}

impl TypeAst {
    /// The database type of Prisma's `Unsupported("…")`, if this is one.
    pub fn unsupported(&self) -> Option<&str> {
        match (self.name.name.as_str(), self.args.as_deref()) {
            ("Unsupported", Some([ArgAst { value: Expr::String(s, _), .. }])) => Some(s),
            _ => None,
        }
    }
}

/// `@name(args)` on a field or `@@name(args)` on a block. Dotted names (`@db.UInt16`) keep
/// their dots in `name.name`.
#[derive(Clone, Debug)]
pub struct AttributeAst {
    pub name: Ident,
    pub args: Vec<ArgAst>,
    /// Whether parentheses were written at all (`@id` vs `@id()`).
    pub has_parens: bool,
    pub span: Span,
}

#[derive(Clone, Debug)]
pub struct ArgAst {
    pub name: Option<Ident>,
    pub value: Expr,
    pub span: Span,
}

#[derive(Clone, Debug)]
pub enum Expr {
    String(String, Span),
    /// The literal's text, already checked to look like a number.
    Number(String, Span),
    /// A bare word: a field name, an enum variant, `true`, `MergeTree` …
    Constant(Ident),
    Call(Ident, Vec<ArgAst>, Span),
    Array(Vec<Expr>, Span),
}

impl Expr {
    pub fn span(&self) -> Span {
        match self {
            Expr::String(_, s) | Expr::Number(_, s) | Expr::Call(_, _, s) | Expr::Array(_, s) => *s,
            Expr::Constant(i) => i.span,
        }
    }

    /// What the value is, for messages: "a string", "a number" …
    pub fn describe(&self) -> &'static str {
        match self {
            Expr::String(..) => "a string",
            Expr::Number(..) => "a number",
            Expr::Constant(_) => "a name",
            Expr::Call(..) => "a function call",
            Expr::Array(..) => "a list",
        }
    }
}

//! Consumption APIs: `apis/<name>.sql` files, each one SELECT with typed parameters, served as
//! `GET /consumption/<name>`. Parsing is pure (path and text in, definition or errors out);
//! rendering with request values lives in `sql::consumption`, the one place values become SQL.
//!
//! ```sql
//! -- Events per tag in a time window.
//! -- @param start BigInt  first time (ns)
//! -- @param end BigInt
//! -- @param limit Int = 10
//! SELECT tag, count() AS events FROM Measurement
//! WHERE time >= {start} AND time < {end}
//! GROUP BY tag ORDER BY events DESC LIMIT {limit}
//! ```
//!
//! A placeholder `{name}` stands for a whole value; igloo renders it typed and escaped, so it
//! must not be written inside quotes.

use serde::Serialize;

/// The type of a parameter, as written after its name.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum ParamType {
    String,
    Int,
    BigInt,
    Float,
    Boolean,
    /// Seconds since the epoch, or `YYYY-MM-DD HH:MM:SS` (UTC).
    DateTime,
    /// `YYYY-MM-DD`.
    Date,
}

impl ParamType {
    pub const ALL: [ParamType; 7] = [
        ParamType::String,
        ParamType::Int,
        ParamType::BigInt,
        ParamType::Float,
        ParamType::Boolean,
        ParamType::DateTime,
        ParamType::Date,
    ];

    pub fn name(self) -> &'static str {
        match self {
            ParamType::String => "String",
            ParamType::Int => "Int",
            ParamType::BigInt => "BigInt",
            ParamType::Float => "Float",
            ParamType::Boolean => "Boolean",
            ParamType::DateTime => "DateTime",
            ParamType::Date => "Date",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Param {
    pub name: String,
    #[serde(rename = "type")]
    pub ty: ParamType,
    /// Text of the default; a parameter without one is required.
    pub default: Option<String>,
    pub doc: Option<String>,
}

/// One piece of the query text: literal SQL or a parameter's place.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub enum Piece {
    Sql(String),
    Param(String),
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ConsumptionApi {
    pub name: String,
    pub doc: Option<String>,
    pub params: Vec<Param>,
    pub body: Vec<Piece>,
}

impl ConsumptionApi {
    pub fn param(&self, name: &str) -> Option<&Param> {
        self.params.iter().find(|p| p.name == name)
    }
}

/// A problem in an API file, at a line (1-based).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{path}:{line}: {message}")]
pub struct ApiFileError {
    pub path: String,
    pub line: usize,
    pub message: String,
}

/// Parses one file; `name` is its stem. Reports every problem found.
pub fn parse(path: &str, name: &str, text: &str) -> Result<ConsumptionApi, Vec<ApiFileError>> {
    let mut errors = Vec::new();
    let err = |line: usize, message: String| ApiFileError { path: path.to_string(), line, message };
    if name.is_empty()
        || !name.starts_with(|c: char| c.is_ascii_alphabetic())
        || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    {
        errors.push(err(
            1,
            format!("`{name}` is not a valid API name: use letters, digits, `_` and `-`, starting with a letter"),
        ));
    }
    let mut doc = Vec::new();
    let mut params: Vec<Param> = Vec::new();
    let mut failed: Vec<String> = Vec::new();
    let mut body_start = None;
    for (i, line) in text.lines().enumerate() {
        let t = line.trim();
        if let Some(comment) = t.strip_prefix("--") {
            let c = comment.trim();
            if let Some(decl) = c.strip_prefix("@param") {
                match param(decl) {
                    Ok(p) if params.iter().any(|q| q.name == p.name) => {
                        errors.push(err(i + 1, format!("parameter `{}` is declared twice", p.name)));
                    }
                    Ok(p) => params.push(p),
                    Err(m) => {
                        // Its placeholders are then not reported as undeclared too.
                        failed.extend(decl.split_whitespace().next().map(str::to_string));
                        errors.push(err(i + 1, m));
                    }
                }
            } else if !c.is_empty() {
                doc.push(c.to_string());
            }
            continue;
        }
        if !t.is_empty() {
            body_start = Some(i);
            break;
        }
    }
    let Some(start) = body_start else {
        errors.push(err(1, "no query: write one SELECT after the `-- @param` lines".into()));
        return Err(errors);
    };
    let body_text: String = text.lines().skip(start).collect::<Vec<_>>().join("\n");
    let body_text = body_text.trim().trim_end_matches(';').trim_end();
    let first = body_text.split_whitespace().next().unwrap_or("").to_ascii_uppercase();
    if first != "SELECT" && first != "WITH" {
        errors.push(err(start + 1, "the query must be one SELECT (or WITH … SELECT)".into()));
    }
    let (body, placeholder_errors) = pieces(body_text);
    for (offset, message) in placeholder_errors {
        errors.push(err(start + 1 + body_text[..offset].matches('\n').count(), message));
    }
    for piece in &body {
        if let Piece::Param(p) = piece {
            if !params.iter().any(|q| &q.name == p) && !failed.contains(p) {
                errors.push(err(
                    start + 1,
                    format!("`{{{p}}}` is not declared; add `-- @param {p} <Type>` above the query"),
                ));
            }
        }
    }
    for p in &params {
        if !body.iter().any(|x| matches!(x, Piece::Param(n) if n == &p.name)) {
            errors
                .push(err(1, format!("parameter `{}` is declared but the query never uses `{{{}}}`", p.name, p.name)));
        }
    }
    if errors.is_empty() {
        Ok(ConsumptionApi { name: name.to_string(), doc: (!doc.is_empty()).then(|| doc.join(" ")), params, body })
    } else {
        Err(errors)
    }
}

/// `name Type [= default] [doc…]`.
fn param(decl: &str) -> Result<Param, String> {
    let mut words = decl.split_whitespace();
    let usage = "write `-- @param name Type`, optionally `= default`, e.g. `-- @param limit Int = 10`";
    let name = words.next().ok_or_else(|| format!("a parameter needs a name and a type: {usage}"))?;
    if !name.starts_with(|c: char| c.is_ascii_alphabetic())
        || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
    {
        return Err(format!("`{name}` is not a valid parameter name: letters, digits and `_`, starting with a letter"));
    }
    let ty_name = words.next().ok_or_else(|| format!("parameter `{name}` has no type: {usage}"))?;
    let ty = ParamType::ALL.into_iter().find(|t| t.name() == ty_name).ok_or_else(|| {
        let known: Vec<&str> = ParamType::ALL.iter().map(|t| t.name()).collect();
        format!("unknown type `{ty_name}` for parameter `{name}`; use one of {}", known.join(", "))
    })?;
    let rest: Vec<&str> = words.collect();
    let (default, doc) = match rest.as_slice() {
        ["=", value, doc @ ..] => (Some(value.to_string()), doc),
        doc => (None, doc),
    };
    if let Some(d) = &default {
        crate::sql::consumption::typed_literal(ty, d)
            .map_err(|e| format!("the default of `{name}` is not a valid {}: {e}", ty.name()))?;
    }
    Ok(Param { name: name.to_string(), ty, default, doc: (!doc.is_empty()).then(|| doc.join(" ")) })
}

/// Splits the body at `{name}` placeholders (outside quotes and comments). Errors carry a byte
/// offset into the body.
fn pieces(body: &str) -> (Vec<Piece>, Vec<(usize, String)>) {
    let mut out = Vec::new();
    let mut errors = Vec::new();
    let mut sql = String::new();
    let mut quote: Option<char> = None;
    let mut chars = body.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        match quote {
            Some(q) => {
                if c == '{' && q == '\'' {
                    errors.push((i, "a `{…}` placeholder inside quotes would be taken literally; write it without quotes, igloo quotes values itself".into()));
                }
                if c == '\\' {
                    sql.push(c);
                    if let Some((_, n)) = chars.next() {
                        sql.push(n);
                    }
                    continue;
                }
                if c == q {
                    quote = None;
                }
                sql.push(c);
            }
            None if c == '\'' || c == '"' || c == '`' => {
                quote = Some(c);
                sql.push(c);
            }
            None if c == '{' => {
                let mut name = String::new();
                let mut closed = false;
                for (_, n) in chars.by_ref() {
                    if n == '}' {
                        closed = true;
                        break;
                    }
                    name.push(n);
                }
                let name = name.trim().to_string();
                if !closed || name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                    errors.push((i, "a placeholder is `{name}`: letters, digits and `_` between braces".into()));
                    continue;
                }
                if !sql.is_empty() {
                    out.push(Piece::Sql(std::mem::take(&mut sql)));
                }
                out.push(Piece::Param(name));
            }
            None if c == ';' => errors.push((i, "only one statement per API file (found `;`)".into())),
            None => sql.push(c),
        }
    }
    if !sql.is_empty() {
        out.push(Piece::Sql(sql));
    }
    (out, errors)
}

#[cfg(test)]
mod tests {
    use super::*;

    const TOP: &str = "-- Events per tag.\n-- @param start BigInt first time\n-- @param limit Int = 10\nSELECT tag, count() AS n FROM M\nWHERE time >= {start}\nGROUP BY tag LIMIT {limit};\n";

    #[test]
    fn parses_doc_params_and_placeholders() {
        let api = parse("apis/top.sql", "top", TOP).unwrap();
        assert_eq!(api.doc.as_deref(), Some("Events per tag."));
        assert_eq!(api.params.len(), 2);
        assert_eq!(api.params[0].doc.as_deref(), Some("first time"));
        assert_eq!(api.params[1].default.as_deref(), Some("10"));
        assert_eq!(api.body.iter().filter(|p| matches!(p, Piece::Param(_))).count(), 2);
        assert!(api.body.iter().all(|p| !matches!(p, Piece::Sql(s) if s.contains(';'))));
        assert_eq!(api.body.last(), Some(&Piece::Param("limit".into())));
    }

    #[test]
    fn reports_every_problem_with_its_line() {
        let text = "-- @param a Integer\n-- @param b String\n-- @param b Int\nDELETE FROM t WHERE x = '{b}' AND y = {c} AND z = {a}; DROP TABLE t\n";
        let errors = parse("apis/bad.sql", "bad", text).unwrap_err();
        let text: Vec<String> = errors.iter().map(ToString::to_string).collect();
        let all = text.join("\n");
        assert!(all.contains("apis/bad.sql:1: unknown type `Integer`"), "{all}");
        assert!(all.contains("apis/bad.sql:3: parameter `b` is declared twice"), "{all}");
        assert!(all.contains("apis/bad.sql:4: the query must be one SELECT"), "{all}");
        assert!(all.contains("inside quotes"), "{all}");
        assert!(all.contains("`{c}` is not declared"), "{all}");
        assert!(!all.contains("`{a}` is not declared"), "a bad declaration is reported once: {all}");
        assert!(all.contains("only one statement"), "{all}");
        assert!(all.contains("`b` is declared but the query never uses"), "{all}");
    }

    #[test]
    fn bad_defaults_and_names() {
        let errors = parse("apis/x.sql", "9x", "-- @param n Int = ten\nSELECT {n}\n").unwrap_err();
        let all: Vec<String> = errors.iter().map(ToString::to_string).collect();
        assert!(all[0].contains("not a valid API name"), "{all:?}");
        assert!(all[1].contains("the default of `n` is not a valid Int"), "{all:?}");
    }
}

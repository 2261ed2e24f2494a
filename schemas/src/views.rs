//! User materialized views: `views/<Model>.sql` holds the SELECT that fills model `<Model>`'s
//! table as rows arrive in the tables it reads. Pure: the caller reads the files.
//!
//! ```sql
//! -- Events per tag and minute.
//! -- @backfill
//! SELECT tag, intDiv(time, 60000000000) * 60 AS minute, count() AS events
//! FROM Measurement GROUP BY tag, minute
//! ```
//!
//! The view is named `_igloo_view_<Model>_<hash of the SELECT>`, so an edited SELECT is a new
//! view: the plan drops the old one and creates the new one. `-- @backfill` also runs the
//! SELECT once over the rows already stored, when the view is first created.

use serde::{Deserialize, Serialize};

use crate::consumption::ApiFileError;
use crate::internal::INTERNAL_PREFIX;
use crate::ir::Ir;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct View {
    /// The model whose table the view fills.
    pub model: String,
    pub select: String,
    pub backfill: bool,
}

impl View {
    /// `_igloo_view_<Model>_<8 hex digits of the SELECT's hash>`.
    pub fn name(&self) -> String {
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for b in self.select.bytes() {
            h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
        }
        format!("{}{:08x}", view_prefix(&self.model), h as u32)
    }
}

/// Every view of `model` starts with this.
pub fn view_prefix(model: &str) -> String {
    format!("{INTERNAL_PREFIX}_view_{model}_")
}

/// Parses `views/<stem>.sql` against the checked IR.
pub fn parse(path: &str, stem: &str, text: &str, ir: &Ir) -> Result<View, Vec<ApiFileError>> {
    let err = |line: usize, message: String| ApiFileError { path: path.to_string(), line, message };
    let mut errors = Vec::new();
    let mut backfill = false;
    let mut body = Vec::new();
    let mut first_line = 0;
    for (i, line) in text.lines().enumerate() {
        let t = line.trim();
        if body.is_empty() {
            if let Some(c) = t.strip_prefix("--") {
                match c.trim() {
                    "@backfill" => backfill = true,
                    c if c.starts_with('@') => {
                        errors.push(err(i + 1, format!("unknown directive `{c}`; views know `-- @backfill`")))
                    }
                    _ => {}
                }
                continue;
            }
            if t.is_empty() {
                continue;
            }
            first_line = i + 1;
        }
        body.push(line);
    }
    let select = body.join("\n").trim().trim_end_matches(';').trim_end().to_string();
    match ir.model(stem) {
        None => {
            let names: Vec<&str> = ir.models.iter().map(|m| m.name.as_str()).collect();
            errors.push(err(
                1,
                format!(
                    "a view file is named after the model it fills; there is no model `{stem}` (models: {})",
                    names.join(", ")
                ),
            ));
        }
        Some(m) if m.ingest => errors.push(err(
            1,
            format!("model `{stem}` also accepts ingest; declare it `@@ingest(false)` so only its view writes to it"),
        )),
        Some(_) => {}
    }
    let first = select.split_whitespace().next().unwrap_or("").to_ascii_uppercase();
    if select.is_empty() {
        errors.push(err(1, "no query: write the SELECT that fills the model".into()));
    } else if first != "SELECT" && first != "WITH" {
        errors.push(err(first_line, "a view is one SELECT (or WITH … SELECT)".into()));
    } else if select.contains(';') {
        errors.push(err(first_line, "only one statement per view file (found `;`)".into()));
    }
    if errors.is_empty() {
        Ok(View { model: stem.to_string(), select, backfill })
    } else {
        Err(errors)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::SourceFile;

    fn ir() -> Ir {
        let files = [SourceFile::new(
            "a.prisma",
            "model E {\n  id Int @id\n}\nmodel PerId {\n  id Int @id\n  n BigInt\n  @@ingest(false)\n}\n",
        )];
        crate::check(&files).0
    }

    #[test]
    fn parses_and_names_views_by_content() {
        let v = parse(
            "views/PerId.sql",
            "PerId",
            "-- counts\n-- @backfill\nSELECT id, count() AS n FROM E GROUP BY id;\n",
            &ir(),
        )
        .unwrap();
        assert!(v.backfill);
        assert_eq!(v.select, "SELECT id, count() AS n FROM E GROUP BY id");
        assert!(v.name().starts_with("_igloo_view_PerId_"));
        let w = View { select: "SELECT 1".into(), ..v.clone() };
        assert_ne!(v.name(), w.name());
    }

    #[test]
    fn reports_bad_files() {
        let all = |stem: &str, text: &str| -> String {
            parse("views/x.sql", stem, text, &ir())
                .unwrap_err()
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("\n")
        };
        assert!(all("Nope", "SELECT 1").contains("there is no model `Nope` (models: E, PerId)"));
        assert!(all("E", "SELECT 1").contains("declare it `@@ingest(false)`"));
        assert!(all("PerId", "-- @refresh\nDROP TABLE E").contains("unknown directive"));
        assert!(all("PerId", "DROP TABLE E").contains("views/x.sql:1: a view is one SELECT"));
        assert!(all("PerId", "SELECT 1; DROP TABLE E").contains("only one statement"));
    }
}

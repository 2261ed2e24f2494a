//! SDK code generated from the IR and the consumption APIs: model types, typed ingest
//! functions per model, samples helpers per time series, and typed functions per consumption
//! API, for TypeScript (`ts.rs`, against the `igloo-sdk` npm package in `sdk-ts/`) and Python
//! (`py.rs`, against the `igloo-sdk` package in `sdk-py/`). Pure and deterministic: the same
//! input gives the same text, so users' diffs stay small (snapshot-tested).

mod py;
mod ts;

pub use py::python;
pub use ts::typescript;

use crate::consumption::ConsumptionApi;
use crate::ir::Ir;

/// What a generated module is made from.
pub struct SdkInput<'a> {
    pub ir: &'a Ir,
    pub apis: &'a [ConsumptionApi],
}

/// `tag_stats` / `tag-stats` → `TagStats`.
fn pascal(name: &str) -> String {
    name.split(['_', '-'])
        .filter(|p| !p.is_empty())
        .map(|p| {
            let mut c = p.chars();
            c.next().map(|f| f.to_ascii_uppercase().to_string() + c.as_str()).unwrap_or_default()
        })
        .collect()
}

/// `TagStats` / `tag-stats` → `tag_stats`.
fn snake(name: &str) -> String {
    let mut out = String::new();
    for (i, c) in name.chars().enumerate() {
        if c == '-' {
            out.push('_');
        } else if c.is_ascii_uppercase() {
            if i > 0 && !out.ends_with('_') {
                out.push('_');
            }
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

/// `tag_stats` → `tagStats`.
fn camel(name: &str) -> String {
    let p = pascal(name);
    let mut c = p.chars();
    c.next().map(|f| f.to_ascii_lowercase().to_string() + c.as_str()).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert_eq!(pascal("tag_stats"), "TagStats");
        assert_eq!(pascal("tag-stats"), "TagStats");
        assert_eq!(snake("PageView"), "page_view");
        assert_eq!(snake("tag-stats"), "tag_stats");
        assert_eq!(camel("tag_stats"), "tagStats");
        assert_eq!(camel("Measurement"), "measurement");
    }
}

//! TypeScript: how types, names and comments are written; the module's text is
//! `templates/ts.hbs` over the [`Surface`]. One module of interfaces and functions over
//! `IglooClient` from `igloo-sdk`; passes `tsc --strict`.

use crate::consumption::{Param, ParamType};
use crate::ir::ScalarType;

use super::surface::{Surface, Target};
use super::{FnName, Lang, RowShape, SdkInput};

const TEMPLATE: &str = include_str!("templates/ts.hbs");

pub fn typescript(input: &SdkInput) -> String {
    Surface::build(input, &TypeScript).render(TEMPLATE)
}

struct TypeScript;

impl Target for TypeScript {
    fn scalar_type(&self, s: ScalarType) -> &'static str {
        match s {
            ScalarType::String | ScalarType::Bytes | ScalarType::Uuid | ScalarType::Date => "string",
            ScalarType::Boolean => "boolean",
            ScalarType::Int | ScalarType::Float => "number",
            // 64-bit integers: exact as bigint or a string of digits.
            ScalarType::BigInt => "number | bigint | string",
            ScalarType::Decimal => "number | string",
            // RFC 3339 text, `YYYY-MM-DD hh:mm:ss`, or epoch seconds.
            ScalarType::DateTime => "string | number",
            ScalarType::Json => "unknown",
        }
    }

    fn shape_type(&self, shape: RowShape) -> &'static str {
        match shape {
            RowShape::Text | RowShape::Enum => "string",
            RowShape::Bool => "boolean",
            RowShape::Int | RowShape::Float => "number",
            RowShape::Decimal => "number | string",
        }
    }

    fn text_type(&self) -> &'static str {
        "string"
    }

    fn optional(&self, ty: &str) -> String {
        format!("{ty} | null")
    }

    fn list(&self, ty: &str) -> String {
        format!("Array<{ty}>")
    }

    fn param_type(&self, t: ParamType) -> &'static str {
        match t {
            ParamType::String | ParamType::Date => "string",
            ParamType::Int | ParamType::Float => "number",
            ParamType::BigInt => "number | bigint",
            ParamType::Boolean => "boolean",
            ParamType::DateTime => "string | number",
        }
    }

    fn ch_type(&self, ty: &str) -> String {
        super::ch_type(ty, Lang::Ts)
    }

    fn doc(&self, text: &str) -> String {
        text.replace("*/", "* /")
    }

    fn summary(&self, text: &str) -> String {
        self.doc(text)
    }

    fn fn_name(&self, name: FnName) -> String {
        name.ts
    }

    fn valid_column(&self, _: &str) -> bool {
        true
    }

    fn column_key(&self, name: &str) -> String {
        format!("{name:?}")
    }

    fn order_params<'a>(&self, params: Vec<&'a Param>) -> Vec<&'a Param> {
        params
    }
}

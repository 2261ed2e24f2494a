//! Python: how types, names and docstrings are written; the module's text is
//! `templates/py.hbs` over the [`Surface`]. One module of `TypedDict`s and functions over
//! `igloo_sdk.Client` / `AsyncClient`; passes `mypy --strict`; Python ≥ 3.10, standard library
//! only.

use crate::consumption::{Param, ParamType};
use crate::ir::ScalarType;

use super::surface::{Surface, Target};
use super::{FnName, Lang, RowShape, SdkInput};

const TEMPLATE: &str = include_str!("templates/py.hbs");

pub fn python(input: &SdkInput) -> String {
    Surface::build(input, &Python).render(TEMPLATE).trim_end().to_string() + "\n"
}

struct Python;

impl Target for Python {
    fn scalar_type(&self, s: ScalarType) -> &'static str {
        match s {
            ScalarType::String | ScalarType::Bytes | ScalarType::Uuid | ScalarType::Date => "str",
            ScalarType::Boolean => "bool",
            ScalarType::Int => "int",
            // 64-bit integers may also travel as strings of digits.
            ScalarType::BigInt => "Union[int, str]",
            ScalarType::Float => "float",
            ScalarType::Decimal => "Union[float, str]",
            // RFC 3339 text, `YYYY-MM-DD hh:mm:ss`, or epoch seconds.
            ScalarType::DateTime => "Union[str, int, float]",
            ScalarType::Json => "Any",
        }
    }

    fn shape_type(&self, shape: RowShape) -> &'static str {
        match shape {
            RowShape::Text | RowShape::Enum => "str",
            RowShape::Bool => "bool",
            RowShape::Int => "int",
            RowShape::Float => "float",
            RowShape::Decimal => "Union[float, str]",
        }
    }

    fn text_type(&self) -> &'static str {
        "str"
    }

    fn optional(&self, ty: &str) -> String {
        format!("Union[{ty}, None]")
    }

    fn list(&self, ty: &str) -> String {
        format!("list[{ty}]")
    }

    fn param_type(&self, t: ParamType) -> &'static str {
        match t {
            ParamType::String | ParamType::Date => "str",
            ParamType::Int | ParamType::BigInt => "int",
            ParamType::Float => "float",
            ParamType::Boolean => "bool",
            ParamType::DateTime => "Union[str, int]",
        }
    }

    fn ch_type(&self, ty: &str) -> String {
        super::ch_type(ty, Lang::Py)
    }

    /// Inside a `"""…"""` docstring.
    fn doc(&self, text: &str) -> String {
        text.replace('\\', "\\\\").replace("\"\"\"", "\\\"\\\"\\\"")
    }

    fn summary(&self, text: &str) -> String {
        text.replace('"', "'")
    }

    fn fn_name(&self, name: FnName) -> String {
        name.py
    }

    /// A `TypedDict` key must be an identifier.
    fn valid_column(&self, c: &str) -> bool {
        c.chars().all(|ch| ch.is_ascii_alphanumeric() || ch == '_') && !c.starts_with(|ch: char| ch.is_ascii_digit())
    }

    fn column_key(&self, name: &str) -> String {
        name.to_string()
    }

    /// Parameters with a default come last.
    fn order_params<'a>(&self, params: Vec<&'a Param>) -> Vec<&'a Param> {
        let (mut required, optional): (Vec<&Param>, Vec<&Param>) =
            params.into_iter().partition(|p| p.default.is_none());
        required.extend(optional);
        required
    }
}

//! Recursive-descent parser: tokens → [`SchemaAst`]. It never stops at the first error:
//! a bad line is reported and skipped, a bad block is skipped to its closing brace, and parsing
//! goes on so that one run shows every problem.

use crate::ast::*;
use crate::diagnostics::{Diagnostic, Diagnostics};
use crate::lexer::{lex, Token, TokenKind};
use crate::source::{FileId, Span};

pub fn parse(file: FileId, text: &str, diags: &mut Diagnostics) -> SchemaAst {
    let mut p = Parser { tokens: lex(file, text), pos: 0, diags, ast: SchemaAst::default() };
    p.schema();
    p.ast
}

struct Parser<'d> {
    tokens: Vec<Token>,
    pos: usize,
    diags: &'d mut Diagnostics,
    ast: SchemaAst,
}

impl Parser<'_> {
    fn peek(&self) -> &TokenKind {
        &self.tokens[self.pos].kind
    }

    fn span(&self) -> Span {
        self.tokens[self.pos].span
    }

    fn prev_span(&self) -> Span {
        self.tokens[self.pos.saturating_sub(1)].span
    }

    fn bump(&mut self) -> Token {
        let t = self.tokens[self.pos].clone();
        if t.kind != TokenKind::Eof {
            self.pos += 1;
        }
        t
    }

    fn eat(&mut self, kind: &TokenKind) -> bool {
        if self.peek() == kind {
            self.bump();
            true
        } else {
            false
        }
    }

    fn ident(&mut self) -> Option<Ident> {
        match self.peek().clone() {
            TokenKind::Ident(name) => {
                let span = self.bump().span;
                Some(Ident { name, span })
            }
            _ => None,
        }
    }

    /// Reports the current token as unexpected (once per token).
    fn unexpected(&mut self, expected: &str) {
        let t = &self.tokens[self.pos];
        let d = match &t.kind {
            TokenKind::Unknown(c) => Diagnostic::unknown_character(*c, t.span),
            TokenKind::UnterminatedStr(_) => Diagnostic::unterminated_string(t.span),
            other => Diagnostic::unexpected_token(expected, other, t.span),
        };
        self.diags.push(d);
    }

    /// Skips to the end of the current line (not past a closing brace of the block).
    fn skip_line(&mut self) {
        while !matches!(self.peek(), TokenKind::Newline | TokenKind::RBrace | TokenKind::Eof) {
            self.bump();
        }
    }

    /// Skips a `{ … }` block, nested braces included, starting anywhere before its `{`.
    fn skip_block(&mut self) {
        while !matches!(self.peek(), TokenKind::LBrace | TokenKind::Newline | TokenKind::Eof) {
            self.bump();
        }
        if !self.eat(&TokenKind::LBrace) {
            return;
        }
        let mut depth = 1;
        while depth > 0 {
            match self.bump().kind {
                TokenKind::LBrace => depth += 1,
                TokenKind::RBrace => depth -= 1,
                TokenKind::Eof => return,
                _ => {}
            }
        }
    }

    fn take_doc(doc: &mut Vec<String>) -> Option<String> {
        let d = std::mem::take(doc);
        (!d.is_empty()).then(|| d.join("\n"))
    }

    fn schema(&mut self) {
        let mut doc = Vec::new();
        loop {
            match self.peek().clone() {
                TokenKind::Eof => return,
                TokenKind::Newline => {
                    self.bump();
                }
                TokenKind::DocComment(text) => {
                    self.bump();
                    doc.push(text);
                }
                TokenKind::Ident(kw) if kw == "model" => {
                    let d = Self::take_doc(&mut doc);
                    if let Some(m) = self.model(d) {
                        self.ast.models.push(m);
                    }
                }
                TokenKind::Ident(kw) if kw == "enum" => {
                    let d = Self::take_doc(&mut doc);
                    if let Some(e) = self.enum_block(d) {
                        self.ast.enums.push(e);
                    }
                }
                TokenKind::Ident(kw) if kw == "datasource" || kw == "generator" => {
                    doc.clear();
                    if let Some(c) = self.config_block() {
                        self.ast.configs.push(c);
                    }
                }
                TokenKind::Ident(kw) if kw == "type" && self.nth_is(2, &TokenKind::Equals) => {
                    // Prisma 2's type aliases (`type Id = String @id`), removed in Prisma 3.
                    self.diags.push(Diagnostic::type_alias(self.span()));
                    doc.clear();
                    self.skip_line();
                }
                TokenKind::Ident(kw) if kw == "type" || kw == "view" => {
                    let d = Self::take_doc(&mut doc);
                    if let Some(m) = self.model_like(&kw, d) {
                        if kw == "type" {
                            self.ast.composites.push(m);
                        } else {
                            self.ast.views.push(m);
                        }
                    }
                }
                _ => {
                    self.unexpected("`model`, `enum`, `type`, `view`, `datasource` or `generator`");
                    doc.clear();
                    self.skip_block();
                }
            }
        }
    }

    /// `keyword Name {`: returns the name, or reports and skips the block.
    fn block_header(&mut self, keyword: &str) -> Option<(Span, Ident)> {
        let start = self.bump().span;
        let Some(name) = self.ident() else {
            self.unexpected(&format!("a name after `{keyword}`"));
            self.skip_block();
            return None;
        };
        if !self.eat(&TokenKind::LBrace) {
            self.unexpected(&format!("`{{` after `{keyword} {}`", name.name));
            self.skip_block();
            return None;
        }
        Some((start, name))
    }

    fn model(&mut self, doc: Option<String>) -> Option<ModelAst> {
        self.model_like("model", doc)
    }

    /// A block of fields and `@@` attributes: `model`, `view` or `type`.
    fn model_like(&mut self, keyword: &str, doc: Option<String>) -> Option<ModelAst> {
        let (start, name) = self.block_header(keyword)?;
        let (fields, attributes, end) = self.block_body(keyword, &name, "a field or a `@@` attribute", Self::field);
        Some(ModelAst { span: start.to(end), name, doc, fields, attributes })
    }

    /// `datasource name { key = value … }` / `generator name { … }`.
    fn config_block(&mut self) -> Option<ConfigBlockAst> {
        let TokenKind::Ident(word) = self.peek().clone() else { return None };
        let keyword = Ident { name: word, span: self.span() };
        let (_, name) = self.block_header(&keyword.name)?;
        let (entries, _, _) = self.block_body(&keyword.name, &name, "a `key = value` line", |p, _doc| {
            let key = p.ident()?;
            if !p.eat(&TokenKind::Equals) {
                p.unexpected(&format!("`=` after `{}`", key.name));
                p.skip_line();
                return None;
            }
            let value = p.expr()?;
            p.end_of_member();
            Some((key, value))
        });
        Some(ConfigBlockAst { keyword, name, entries })
    }

    fn nth_is(&self, n: usize, kind: &TokenKind) -> bool {
        self.tokens.get(self.pos + n).is_some_and(|t| &t.kind == kind)
    }

    fn enum_block(&mut self, doc: Option<String>) -> Option<EnumAst> {
        let (start, name) = self.block_header("enum")?;
        let (variants, attributes, end) = self.block_body("enum", &name, "an enum value", |p, doc| {
            let name = p.ident()?;
            let attributes = p.field_attributes();
            let doc = p.trailing_doc(doc);
            p.end_of_member();
            Some(VariantAst { name, doc, attributes })
        });
        Some(EnumAst { span: start.to(end), name, doc, variants, attributes })
    }

    /// The members and `@@` attributes of a block, through its closing brace (whose span is
    /// returned). `member` parses one member at its first identifier, given its doc comment.
    fn block_body<M>(
        &mut self,
        kind: &str,
        name: &Ident,
        expected: &str,
        mut member: impl FnMut(&mut Self, Option<String>) -> Option<M>,
    ) -> (Vec<M>, Vec<AttributeAst>, Span) {
        let (mut members, mut attributes, mut doc) = (Vec::new(), Vec::new(), Vec::new());
        loop {
            match self.peek().clone() {
                TokenKind::Newline => {
                    self.bump();
                }
                TokenKind::DocComment(text) => {
                    self.bump();
                    doc.push(text);
                }
                TokenKind::RBrace => return (members, attributes, self.bump().span),
                TokenKind::Eof => {
                    self.diags.push(Diagnostic::unclosed_block(kind, &name.name, name.span));
                    return (members, attributes, name.span);
                }
                TokenKind::AtAt => {
                    doc.clear();
                    attributes.extend(self.attribute());
                    self.end_of_member();
                }
                TokenKind::Ident(_) => {
                    let d = Self::take_doc(&mut doc);
                    members.extend(member(self, d));
                }
                _ => {
                    doc.clear();
                    self.unexpected(expected);
                    self.bump();
                    self.skip_line();
                }
            }
        }
    }

    /// After a member: the line must end here; anything else is reported and skipped.
    fn end_of_member(&mut self) {
        if !matches!(self.peek(), TokenKind::Newline | TokenKind::RBrace | TokenKind::Eof) {
            self.unexpected("the end of the line");
            self.skip_line();
        }
    }

    fn field(&mut self, doc: Option<String>) -> Option<FieldAst> {
        let name = self.ident().expect("peeked an identifier");
        let Some(type_name) = self.ident() else {
            if matches!(self.peek(), TokenKind::Newline | TokenKind::RBrace | TokenKind::Eof) {
                self.diags.push(Diagnostic::missing_field_type(&name.name, name.span));
            } else {
                self.unexpected(&format!("a type for field `{}`", name.name));
            }
            self.skip_line();
            return None;
        };
        let mut ty = TypeAst {
            span: type_name.span,
            name: type_name,
            list: false,
            optional: false,
            optional_before_list: false,
            args: None,
        };
        if self.peek() == &TokenKind::LParen {
            ty.args = Some(self.args()?);
            ty.span = ty.span.to(self.prev_span());
        }
        if self.eat(&TokenKind::Question) {
            ty.optional = true;
            ty.span = ty.span.to(self.prev_span());
        }
        if self.peek() == &TokenKind::LBracket {
            self.bump();
            if !self.eat(&TokenKind::RBracket) {
                self.unexpected("`]` (a list type is written `Type[]`)");
                self.skip_line();
                return None;
            }
            ty.optional_before_list = ty.optional;
            ty.list = true;
            ty.span = ty.span.to(self.prev_span());
            if self.eat(&TokenKind::Question) {
                ty.optional = true;
                ty.span = ty.span.to(self.prev_span());
            }
        }
        let attributes = self.field_attributes();
        let span = name.span.to(self.prev_span());
        let doc = self.trailing_doc(doc);
        self.end_of_member();
        Some(FieldAst { name, doc, ty, attributes, span })
    }

    /// A `///` comment at the end of a member's line joins the comments above it.
    fn trailing_doc(&mut self, doc: Option<String>) -> Option<String> {
        let TokenKind::DocComment(text) = self.peek().clone() else { return doc };
        self.bump();
        Some(match doc {
            Some(above) => format!("{above}\n{text}"),
            None => text,
        })
    }

    fn field_attributes(&mut self) -> Vec<AttributeAst> {
        let mut attrs = Vec::new();
        while self.peek() == &TokenKind::At {
            attrs.extend(self.attribute());
        }
        attrs
    }

    /// `@name`, `@a.b(args)` or `@@name(args)`, at the `@`/`@@` token.
    fn attribute(&mut self) -> Option<AttributeAst> {
        let at = self.bump().span;
        let Some(mut name) = self.ident() else {
            self.unexpected("an attribute name");
            self.skip_line();
            return None;
        };
        while self.peek() == &TokenKind::Dot {
            self.bump();
            let Some(part) = self.ident() else {
                self.unexpected("a name after `.`");
                self.skip_line();
                return None;
            };
            name.name = format!("{}.{}", name.name, part.name);
            name.span = name.span.to(part.span);
        }
        let mut attr = AttributeAst { name, args: vec![], has_parens: false, span: at };
        if self.peek() == &TokenKind::LParen {
            attr.has_parens = true;
            attr.args = self.args()?;
        }
        attr.span = at.to(self.prev_span());
        Some(attr)
    }

    /// `( arg, name: arg, … )` at the `(`. `None` after reporting a malformed list.
    fn args(&mut self) -> Option<Vec<ArgAst>> {
        let open = self.bump().span;
        let mut args = Vec::new();
        loop {
            self.skip_newlines();
            if self.eat(&TokenKind::RParen) {
                return Some(args);
            }
            if matches!(self.peek(), TokenKind::Eof | TokenKind::RBrace) {
                self.diags.push(Diagnostic::unclosed_paren(open));
                return None;
            }
            let start = self.span();
            let name = match (self.peek(), &self.tokens.get(self.pos + 1).map(|t| &t.kind)) {
                (TokenKind::Ident(_), Some(TokenKind::Colon)) => {
                    let n = self.ident();
                    self.bump();
                    n
                }
                _ => None,
            };
            let Some(value) = self.expr() else {
                self.skip_past_close_paren();
                return None;
            };
            args.push(ArgAst { name, span: start.to(value.span()), value });
            self.skip_newlines();
            if matches!(self.peek(), TokenKind::Eof | TokenKind::RBrace) {
                self.diags.push(Diagnostic::unclosed_paren(open));
                return None;
            }
            if !self.eat(&TokenKind::Comma) && self.peek() != &TokenKind::RParen {
                self.unexpected("`,` or `)`");
                self.skip_line();
                return None;
            }
        }
    }

    /// After a reported error inside `( … )`: skips to just past the `)` on this line, if any.
    fn skip_past_close_paren(&mut self) {
        while !matches!(self.peek(), TokenKind::Newline | TokenKind::RBrace | TokenKind::Eof) {
            if self.bump().kind == TokenKind::RParen {
                return;
            }
        }
    }

    fn skip_newlines(&mut self) {
        while self.eat(&TokenKind::Newline) {}
    }

    fn expr(&mut self) -> Option<Expr> {
        let t = self.tokens[self.pos].clone();
        match t.kind {
            TokenKind::Str(s) => {
                self.bump();
                Some(Expr::String(s, t.span))
            }
            TokenKind::Number(n) => {
                self.bump();
                if n.parse::<f64>().is_err() {
                    self.diags.push(Diagnostic::malformed_number(&n, t.span));
                    return None;
                }
                Some(Expr::Number(n, t.span))
            }
            TokenKind::Ident(_) => {
                let id = self.ident().expect("peeked an identifier");
                if self.peek() == &TokenKind::LParen {
                    let args = self.args()?;
                    let span = id.span.to(self.prev_span());
                    Some(Expr::Call(id, args, span))
                } else {
                    Some(Expr::Constant(id))
                }
            }
            TokenKind::LBracket => {
                self.bump();
                let mut items = Vec::new();
                loop {
                    self.skip_newlines();
                    if self.eat(&TokenKind::RBracket) {
                        return Some(Expr::Array(items, t.span.to(self.prev_span())));
                    }
                    items.push(self.expr()?);
                    self.skip_newlines();
                    if !self.eat(&TokenKind::Comma) && self.peek() != &TokenKind::RBracket {
                        self.unexpected("`,` or `]`");
                        self.skip_line();
                        return None;
                    }
                }
            }
            _ => {
                self.unexpected("a value (a string, a number, a name or a list)");
                self.skip_line();
                None
            }
        }
    }
}

//! TOML text to a tree that remembers where every key and value was written, and that
//! tree to the JSON bodies the API takes, with secret references resolved.

use std::collections::BTreeMap;

use serde::de::{Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};
use toml::Spanned;

use super::{FileError, SecretRef};

/// One TOML value with the byte ranges of its parts.
#[derive(Debug, Clone)]
pub enum Node {
    Str(String),
    Int(i64),
    Float(f64),
    Bool(bool),
    Array(Vec<Spanned<Node>>),
    Table(Vec<(Spanned<String>, Spanned<Node>)>),
}

/// The key toml uses to hand a date-time through serde as a one-entry table.
const DATETIME_KEY: &str = "$__toml_private_datetime";

impl<'de> Deserialize<'de> for Node {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Node, D::Error> {
        deserializer.deserialize_any(NodeVisitor)
    }
}

struct NodeVisitor;

impl<'de> Visitor<'de> for NodeVisitor {
    type Value = Node;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a TOML value")
    }
    fn visit_bool<E>(self, v: bool) -> Result<Node, E> {
        Ok(Node::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Node, E> {
        Ok(Node::Int(v))
    }
    fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Node, E> {
        i64::try_from(v)
            .map(Node::Int)
            .map_err(|_| E::custom("number too large"))
    }
    fn visit_f64<E>(self, v: f64) -> Result<Node, E> {
        Ok(Node::Float(v))
    }
    fn visit_str<E>(self, v: &str) -> Result<Node, E> {
        Ok(Node::Str(v.to_string()))
    }
    fn visit_string<E>(self, v: String) -> Result<Node, E> {
        Ok(Node::Str(v))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Node, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element::<Spanned<Node>>()? {
            items.push(item);
        }
        Ok(Node::Array(items))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Node, A::Error> {
        let mut entries = Vec::new();
        while let Some(key) = map.next_key::<Spanned<String>>()? {
            if key.get_ref() == DATETIME_KEY {
                // A date-time: kept as its text (no field of ours is one).
                let text: String = map.next_value()?;
                return Ok(Node::Str(text));
            }
            entries.push((key, map.next_value::<Spanned<Node>>()?));
        }
        Ok(Node::Table(entries))
    }
}

/// A parsed file: its name, its text (for line numbers) and its top-level table.
pub struct ParsedFile {
    pub name: String,
    text: String,
    pub root: Vec<(Spanned<String>, Spanned<Node>)>,
}

impl ParsedFile {
    pub fn parse(name: &str, text: &str) -> Result<ParsedFile, FileError> {
        let root: Spanned<Node> = toml::from_str(text).map_err(|e| {
            let line = e.span().map_or(1, |span| line_of(text, span.start));
            FileError {
                file: name.to_string(),
                line,
                field: String::new(),
                message: e.message().to_string(),
            }
        })?;
        let Node::Table(root) = root.into_inner() else {
            return Err(FileError {
                file: name.to_string(),
                line: 1,
                field: String::new(),
                message: "a projects file is a TOML table".into(),
            });
        };
        Ok(ParsedFile {
            name: name.to_string(),
            text: text.to_string(),
            root,
        })
    }

    /// The 1-based line of a byte offset.
    pub fn line(&self, offset: usize) -> u32 {
        line_of(&self.text, offset)
    }
}

fn line_of(text: &str, offset: usize) -> u32 {
    let before = text.get(..offset.min(text.len())).unwrap_or(text);
    u32::try_from(before.bytes().filter(|b| *b == b'\n').count() + 1).unwrap_or(u32::MAX)
}

/// The secret reference a table stands for: exactly `{ env = "NAME" }` or
/// `{ file = "/path" }`.
pub fn as_reference(entries: &[(Spanned<String>, Spanned<Node>)]) -> Option<SecretRef> {
    match entries {
        [(key, value)] => match (key.get_ref().as_str(), value.get_ref()) {
            ("env", Node::Str(name)) => Some(SecretRef::Env(name.clone())),
            ("file", Node::Str(path)) => Some(SecretRef::File(path.clone())),
            _ => None,
        },
        _ => None,
    }
}

/// Every secret reference under `node`.
pub fn references(node: &Node, out: &mut Vec<SecretRef>) {
    match node {
        Node::Table(entries) => match as_reference(entries) {
            Some(reference) => out.push(reference),
            None => entries
                .iter()
                .for_each(|(_, v)| references(v.get_ref(), out)),
        },
        Node::Array(items) => items.iter().for_each(|i| references(i.get_ref(), out)),
        _ => {}
    }
}

/// Turns nodes into JSON, resolving references and noting each path's line.
pub struct ToJson<'a> {
    pub file: &'a ParsedFile,
    pub resolve: &'a dyn Fn(&SecretRef) -> Option<String>,
    /// Path (`env[1].value`) → line, relative to the resource.
    pub lines: BTreeMap<String, u32>,
    pub errors: Vec<FileError>,
}

impl ToJson<'_> {
    pub fn value(&mut self, path: &str, node: &Spanned<Node>) -> Value {
        self.lines
            .entry(path.to_string())
            .or_insert_with(|| self.file.line(node.span().start));
        match node.get_ref() {
            Node::Str(s) => Value::String(s.clone()),
            Node::Int(i) => Value::from(*i),
            Node::Float(f) => serde_json::Number::from_f64(*f).map_or(Value::Null, Value::Number),
            Node::Bool(b) => Value::Bool(*b),
            Node::Array(items) => Value::Array(
                items
                    .iter()
                    .enumerate()
                    .map(|(i, item)| self.value(&format!("{path}[{i}]"), item))
                    .collect(),
            ),
            Node::Table(entries) => match as_reference(entries) {
                Some(reference) => match (self.resolve)(&reference) {
                    Some(secret) => Value::String(secret),
                    None => {
                        let line = self.file.line(node.span().start);
                        self.errors.push(FileError {
                            file: self.file.name.clone(),
                            line,
                            field: path.to_string(),
                            message: reference.missing(),
                        });
                        Value::Null
                    }
                },
                None => Value::Object(self.table(path, entries)),
            },
        }
    }

    pub fn table(
        &mut self,
        path: &str,
        entries: &[(Spanned<String>, Spanned<Node>)],
    ) -> Map<String, Value> {
        let mut map = Map::new();
        for (key, value) in entries {
            let child = if path.is_empty() {
                key.get_ref().clone()
            } else {
                format!("{path}.{}", key.get_ref())
            };
            // The key's line is where a person looks for the field.
            self.lines
                .insert(child.clone(), self.file.line(key.span().start));
            let json = self.value(&child, value);
            map.insert(key.get_ref().clone(), json);
        }
        map
    }
}

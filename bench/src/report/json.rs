//! JSON that keeps the order of object keys (serde_json's `Value` sorts them), read
//! leniently and written the way the reports always were: two-space indent, one
//! element per line, keys in the order they were read or added.

use serde::de::{Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::Number;
use std::fmt::{self, Write as _};
use std::path::Path;

#[derive(Debug, Clone, PartialEq)]
pub enum Json {
    Null,
    Bool(bool),
    Num(Number),
    Str(String),
    Arr(Vec<Json>),
    Obj(Vec<(String, Json)>),
}

impl Json {
    /// A file's JSON, or None when it is missing or not JSON.
    pub fn load(path: &Path) -> Option<Json> {
        let bytes = std::fs::read(path).ok()?;
        serde_json::from_slice(&bytes).ok()
    }

    /// A file's JSON object, or an empty object (missing, unreadable, not an object).
    pub fn load_obj(path: &Path) -> Json {
        match Json::load(path) {
            Some(j @ Json::Obj(_)) => j,
            _ => Json::Obj(Vec::new()),
        }
    }

    pub fn int(v: i64) -> Json {
        Json::Num(v.into())
    }

    /// A float (null when not finite).
    pub fn float(v: f64) -> Json {
        Number::from_f64(v).map_or(Json::Null, Json::Num)
    }

    /// The value under `key` of an object.
    pub fn get(&self, key: &str) -> Option<&Json> {
        match self {
            Json::Obj(m) => m.iter().rev().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }

    /// The value under a path of keys.
    pub fn at(&self, keys: &[&str]) -> Option<&Json> {
        keys.iter().try_fold(self, |v, k| v.get(k))
    }

    /// A number (not a bool) as f64.
    pub fn num(&self) -> Option<f64> {
        match self {
            Json::Num(n) => n.as_f64(),
            _ => None,
        }
    }

    /// The number under a path of keys.
    pub fn num_at(&self, keys: &[&str]) -> Option<f64> {
        self.at(keys).and_then(Json::num)
    }

    /// True if the object has no entries (or this is not an object).
    pub fn is_empty_obj(&self) -> bool {
        !matches!(self, Json::Obj(m) if !m.is_empty())
    }

    /// Sets `key` (in place when present, else appended).
    pub fn set(&mut self, key: &str, value: Json) {
        if let Json::Obj(m) = self {
            match m.iter_mut().find(|(k, _)| k == key) {
                Some(slot) => slot.1 = value,
                None => m.push((key.to_owned(), value)),
            }
        }
    }

    fn write(&self, out: &mut String, indent: usize) {
        let pad = |out: &mut String, n: usize| out.extend(std::iter::repeat_n(' ', n));
        match self {
            Json::Null => out.push_str("null"),
            Json::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
            Json::Num(n) => {
                let _ = write!(out, "{n}");
            }
            Json::Str(s) => out.push_str(&serde_json::to_string(s).unwrap_or_default()),
            Json::Arr(v) if v.is_empty() => out.push_str("[]"),
            Json::Obj(m) if m.is_empty() => out.push_str("{}"),
            Json::Arr(v) => {
                out.push_str("[\n");
                for (i, e) in v.iter().enumerate() {
                    pad(out, indent + 2);
                    e.write(out, indent + 2);
                    out.push_str(if i + 1 < v.len() { ",\n" } else { "\n" });
                }
                pad(out, indent);
                out.push(']');
            }
            Json::Obj(m) => {
                out.push_str("{\n");
                for (i, (k, e)) in m.iter().enumerate() {
                    pad(out, indent + 2);
                    out.push_str(&serde_json::to_string(k).unwrap_or_default());
                    out.push_str(": ");
                    e.write(out, indent + 2);
                    out.push_str(if i + 1 < m.len() { ",\n" } else { "\n" });
                }
                pad(out, indent);
                out.push('}');
            }
        }
    }

    /// Indented text with a final newline.
    pub fn pretty(&self) -> String {
        let mut out = String::new();
        self.write(&mut out, 0);
        out.push('\n');
        out
    }
}

struct JsonVisitor;

impl<'de> Visitor<'de> for JsonVisitor {
    type Value = Json;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_bool<E>(self, v: bool) -> Result<Json, E> {
        Ok(Json::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Json, E> {
        Ok(Json::Num(v.into()))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Json, E> {
        Ok(Json::Num(v.into()))
    }
    fn visit_f64<E>(self, v: f64) -> Result<Json, E> {
        Ok(Json::float(v))
    }
    fn visit_str<E>(self, v: &str) -> Result<Json, E> {
        Ok(Json::Str(v.to_owned()))
    }
    fn visit_string<E>(self, v: String) -> Result<Json, E> {
        Ok(Json::Str(v))
    }
    fn visit_unit<E>(self) -> Result<Json, E> {
        Ok(Json::Null)
    }
    fn visit_none<E>(self) -> Result<Json, E> {
        Ok(Json::Null)
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Json, D::Error> {
        Json::deserialize(d)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Json, A::Error> {
        let mut v = Vec::new();
        while let Some(e) = seq.next_element()? {
            v.push(e);
        }
        Ok(Json::Arr(v))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Json, A::Error> {
        let mut m = Vec::new();
        while let Some((k, v)) = map.next_entry::<String, Json>()? {
            m.push((k, v));
        }
        Ok(Json::Obj(m))
    }
}

impl<'de> Deserialize<'de> for Json {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Json, D::Error> {
        d.deserialize_any(JsonVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_key_order_and_indents_like_the_reports() {
        let text = r#"{"z": 1, "a": [1, 2.5, "x"], "m": {"b": null, "a": true}, "e": [], "o": {}}"#;
        let j: Json = serde_json::from_str(text).unwrap();
        assert_eq!(
            j.pretty(),
            "{\n  \"z\": 1,\n  \"a\": [\n    1,\n    2.5,\n    \"x\"\n  ],\n  \"m\": {\n    \"b\": null,\n    \"a\": true\n  },\n  \"e\": [],\n  \"o\": {}\n}\n"
        );
        assert_eq!(j.num_at(&["a"]), None);
        assert_eq!(j.get("z").and_then(Json::num), Some(1.0));
        assert_eq!(j.at(&["m", "a"]), Some(&Json::Bool(true)));
        assert_eq!(j.num_at(&["m", "a"]), None, "a bool is not a number");
        let mut j = j;
        j.set("z", Json::float(2.0));
        j.set("new", Json::int(-3));
        assert!(j.pretty().starts_with("{\n  \"z\": 2.0,"), "{}", j.pretty());
        assert!(j.pretty().ends_with("  \"new\": -3\n}\n"));
        assert!(Json::Obj(vec![]).is_empty_obj());
    }
}

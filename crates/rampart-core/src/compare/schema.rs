//! A tiny JSON-schema validator for the subset LLM APIs use in `response_format` and tool
//! `parameters`: `type` (a name or a list of names), `properties`, `required`,
//! `additionalProperties` (boolean or schema), `enum`, `const`, `items` (one schema).
//!
//! Anything else (`$ref`, `anyOf`, `pattern`, numeric bounds, …) is ignored, so the validator
//! is permissive beyond the subset: it never rejects a value a full validator would accept.
//! Type names follow JSON Schema (draft 2020-12, §6.1.1): `integer` accepts numbers with a zero
//! fractional part.

use serde_json::Value;

/// Validates `value` against `schema`; returns every violation as `path: what is wrong`
/// (`$` is the root). An empty vector means valid.
pub fn validate(schema: &Value, value: &Value) -> Vec<String> {
    let mut errors = Vec::new();
    check(schema, value, "$", &mut errors);
    errors
}

fn type_matches(name: &str, value: &Value) -> bool {
    match name {
        "string" => value.is_string(),
        "number" => value.is_number(),
        "integer" => {
            value.is_i64()
                || value.is_u64()
                || value
                    .as_f64()
                    .is_some_and(|f| f.fract() == 0.0 && f.is_finite())
        }
        "boolean" => value.is_boolean(),
        "object" => value.is_object(),
        "array" => value.is_array(),
        "null" => value.is_null(),
        // Unknown type names constrain nothing (permissive beyond the subset).
        _ => true,
    }
}

fn type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

fn check(schema: &Value, value: &Value, path: &str, errors: &mut Vec<String>) {
    // `true`/`{}` accept everything; `false` accepts nothing.
    let schema = match schema {
        Value::Bool(true) => return,
        Value::Bool(false) => {
            errors.push(format!("{path}: not allowed"));
            return;
        }
        Value::Object(map) => map,
        _ => return,
    };
    if let Some(t) = schema.get("type") {
        let ok = match t {
            Value::String(name) => type_matches(name, value),
            Value::Array(names) => names
                .iter()
                .filter_map(Value::as_str)
                .any(|n| type_matches(n, value)),
            _ => true,
        };
        if !ok {
            errors.push(format!(
                "{path}: expected type {t}, got {}",
                type_name(value)
            ));
            return;
        }
    }
    if let Some(Value::Array(options)) = schema.get("enum")
        && !options.contains(value)
    {
        errors.push(format!("{path}: not one of the enum values (got {value})"));
    }
    if let Some(c) = schema.get("const")
        && c != value
    {
        errors.push(format!("{path}: must equal {c} (got {value})"));
    }
    if let Value::Object(obj) = value {
        let props = schema.get("properties").and_then(Value::as_object);
        if let Some(Value::Array(required)) = schema.get("required") {
            for key in required.iter().filter_map(Value::as_str) {
                if !obj.contains_key(key) {
                    errors.push(format!("{path}: missing required property `{key}`"));
                }
            }
        }
        for (key, v) in obj {
            let child = format!("{path}.{key}");
            match props.and_then(|p| p.get(key)) {
                Some(s) => check(s, v, &child, errors),
                None => match schema.get("additionalProperties") {
                    Some(Value::Bool(false)) => {
                        errors.push(format!("{path}: unexpected property `{key}`"));
                    }
                    Some(s @ Value::Object(_)) => check(s, v, &child, errors),
                    _ => {}
                },
            }
        }
    }
    if let (Value::Array(items), Some(item_schema)) = (value, schema.get("items")) {
        for (i, v) in items.iter().enumerate() {
            check(item_schema, v, &format!("{path}[{i}]"), errors);
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use serde_json::json;

    fn schema() -> Value {
        json!({
            "type": "object",
            "properties": {
                "city": {"type": "string"},
                "unit": {"type": "string", "enum": ["c", "f"]},
                "days": {"type": "integer"},
                "tags": {"type": "array", "items": {"type": "string"}}
            },
            "required": ["city"],
            "additionalProperties": false
        })
    }

    #[test]
    fn valid_object_passes() {
        let v = json!({"city": "Zürich", "unit": "c", "days": 3.0, "tags": ["a"]});
        assert_eq!(validate(&schema(), &v), Vec::<String>::new());
    }

    #[test]
    fn every_violation_is_listed_with_its_path() {
        let v = json!({"unit": "kelvin", "days": 1.5, "tags": ["a", 2], "extra": true});
        let errors = validate(&schema(), &v);
        assert_eq!(errors.len(), 5, "{errors:?}");
        assert!(
            errors
                .iter()
                .any(|e| e.contains("missing required property `city`"))
        );
        assert!(errors.iter().any(|e| e.starts_with("$.unit: not one of")));
        assert!(
            errors
                .iter()
                .any(|e| e.starts_with("$.days: expected type"))
        );
        assert!(
            errors
                .iter()
                .any(|e| e.starts_with("$.tags[1]: expected type"))
        );
        assert!(
            errors
                .iter()
                .any(|e| e.contains("unexpected property `extra`"))
        );
    }

    #[test]
    fn type_lists_const_and_boolean_schemas() {
        assert!(validate(&json!({"type": ["string", "null"]}), &Value::Null).is_empty());
        assert!(!validate(&json!({"const": 1}), &json!(2)).is_empty());
        assert!(validate(&json!(true), &json!(2)).is_empty());
        assert!(!validate(&json!(false), &json!(2)).is_empty());
        // Keywords outside the subset are ignored.
        assert!(validate(&json!({"pattern": "^a$"}), &json!("b")).is_empty());
    }
}

//! Format detectors: markdown structure, JSON output, tool calls, citation styles.
//!
//! All detectors are line-based and linear in the text. Lines inside a fenced code block
//! (```` ``` ```` or `~~~`) are not scanned for tables or lists; a fence that is never closed
//! still counts as a code block (and runs to the end of the text), and is reported as
//! `code_fence_unterminated`.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::schema;

/// The markdown and citation shape of one answer.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Markdown {
    /// A header row followed by a `|---|---|` delimiter row (GFM table).
    pub table: bool,
    /// A line starting with `- `, `* `, `+ ` or `• `.
    pub bullets: bool,
    /// A line starting with 1–3 digits then `.` or `)` and a space.
    pub numbered: bool,
    /// A fenced code block (terminated or not).
    pub code: bool,
    /// The last fence was never closed.
    pub code_fence_unterminated: bool,
    /// Numeric citations such as `[1]` or `[12]`.
    pub citation_numeric: bool,
    /// Author–year citations such as `(Smith, 2020)` or `(Smith et al., 2019)`.
    pub citation_author_year: bool,
    /// A `http://` or `https://` URL.
    pub citation_url: bool,
}

fn is_fence(line: &str) -> bool {
    let t = line.trim_start();
    t.starts_with("```") || t.starts_with("~~~")
}

fn is_table_delimiter(line: &str) -> bool {
    let t = line.trim();
    if !t.contains('-') || !t.contains('|') {
        return false;
    }
    let cells: Vec<&str> = t.trim_matches('|').split('|').collect();
    cells.len() >= 2
        && cells.iter().all(|c| {
            let c = c.trim();
            let core = c.trim_start_matches(':').trim_end_matches(':');
            !core.is_empty() && core.chars().all(|ch| ch == '-')
        })
}

fn is_table_row(line: &str) -> bool {
    let t = line.trim();
    t.matches('|').count() >= 1 && t.split('|').filter(|c| !c.trim().is_empty()).count() >= 2
}

fn is_bullet(line: &str) -> bool {
    let t = line.trim_start();
    ["- ", "* ", "+ ", "• "].iter().any(|p| t.starts_with(p))
}

fn is_numbered(line: &str) -> bool {
    let t = line.trim_start();
    let digits = t.chars().take_while(char::is_ascii_digit).count();
    if digits == 0 || digits > 3 {
        return false;
    }
    let rest = &t[digits..];
    rest.starts_with(". ") || rest.starts_with(") ")
}

/// `[n]` with 1–3 digits.
fn has_numeric_citation(text: &str) -> bool {
    let b = text.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'[' {
            let mut j = i + 1;
            while j < b.len() && b[j].is_ascii_digit() && j - i <= 3 {
                j += 1;
            }
            if j > i + 1 && j < b.len() && b[j] == b']' {
                return true;
            }
        }
        i += 1;
    }
    false
}

/// `(Name[ et al.], YYYY)`: a parenthesis opening on a capitalised word, a comma, a year.
fn has_author_year(text: &str) -> bool {
    let mut rest = text;
    while let Some(open) = rest.find('(') {
        let after = &rest[open + 1..];
        if let Some(close) = after.find(')') {
            let inner = &after[..close];
            if let Some((name, year)) = inner.rsplit_once(',') {
                let year = year.trim();
                let starts_upper = name.trim().chars().next().is_some_and(char::is_uppercase);
                let is_year = year.len() == 4
                    && year.chars().all(|c| c.is_ascii_digit())
                    && (year.starts_with("19") || year.starts_with("20"));
                if starts_upper && is_year && name.len() <= 60 {
                    return true;
                }
            }
        }
        rest = after;
    }
    false
}

/// The markdown and citation features of a text.
pub fn markdown(text: &str) -> Markdown {
    let mut m = Markdown::default();
    let mut in_fence = false;
    let mut prev_row = false;
    for line in text.lines() {
        if is_fence(line) {
            m.code = true;
            in_fence = !in_fence;
            prev_row = false;
            continue;
        }
        if in_fence {
            continue;
        }
        if prev_row && is_table_delimiter(line) {
            m.table = true;
        }
        prev_row = is_table_row(line);
        m.bullets |= is_bullet(line);
        m.numbered |= is_numbered(line);
    }
    m.code_fence_unterminated = in_fence;
    m.citation_numeric = has_numeric_citation(text);
    m.citation_author_year = has_author_year(text);
    m.citation_url = text.contains("http://") || text.contains("https://");
    m
}

/// Whether the request's `response_format` asks for JSON (`json_object` or `json_schema`).
pub fn wants_json(response_format: Option<&Value>) -> bool {
    matches!(
        response_format
            .and_then(|r| r.get("type"))
            .and_then(Value::as_str),
        Some("json_object" | "json_schema")
    )
}

/// Whether `text` satisfies the request's `response_format`; `None` when it does not ask for
/// JSON. The whole trimmed text must parse as JSON (a fenced ```` ```json ```` block does not
/// count: API clients call `JSON.parse` on the content); for `json_schema` the value must also
/// validate against `json_schema.schema` (subset, see [`schema`]).
pub fn json_valid(text: Option<&str>, response_format: Option<&Value>) -> Option<bool> {
    if !wants_json(response_format) {
        return None;
    }
    let Some(text) = text else {
        return Some(false);
    };
    let Ok(value) = serde_json::from_str::<Value>(text.trim()) else {
        return Some(false);
    };
    let schema = response_format
        .and_then(|r| r.get("json_schema"))
        .and_then(|s| s.get("schema"));
    Some(match schema {
        Some(s) => schema::validate(s, &value).is_empty(),
        None => true,
    })
}

/// Whether every tool call names a declared tool and carries arguments (a JSON string, or an
/// object) valid against that tool's `parameters`. `None` when the answer has no tool calls.
///
/// `tools` is the request's `tools` array (OpenAI shape: `[{type: "function", function:
/// {name, parameters}}]`); with no declared tools every call is invalid.
pub fn tool_calls_valid(tool_calls: Option<&Value>, tools: Option<&Value>) -> Option<bool> {
    let calls = tool_calls?.as_array()?;
    if calls.is_empty() {
        return None;
    }
    let declared: Vec<&Value> = tools
        .and_then(Value::as_array)
        .map(|t| t.iter().filter_map(|t| t.get("function")).collect())
        .unwrap_or_default();
    let ok = calls.iter().all(|call| {
        let Some(function) = call.get("function") else {
            return false;
        };
        let Some(name) = function.get("name").and_then(Value::as_str) else {
            return false;
        };
        let Some(decl) = declared
            .iter()
            .find(|d| d.get("name").and_then(Value::as_str) == Some(name))
        else {
            return false;
        };
        let args = match function.get("arguments") {
            Some(Value::String(s)) => match serde_json::from_str::<Value>(s) {
                Ok(v) => v,
                Err(_) => return false,
            },
            Some(v @ Value::Object(_)) => v.clone(),
            None => Value::Object(serde_json::Map::new()),
            Some(_) => return false,
        };
        match decl.get("parameters") {
            Some(params) => schema::validate(params, &args).is_empty(),
            None => true,
        }
    });
    Some(ok)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn detects_tables_lists_and_code() {
        let t = "Fees:\n\n| Item | Fee |\n|:---|---:|\n| ATM | 2 € |\n\n- one\n* two\n1. first\n2) second";
        let m = markdown(t);
        assert!(m.table && m.bullets && m.numbered && !m.code);
        let plain = markdown("No structure here. Just 3 sentences - with a dash.");
        assert_eq!(plain, Markdown::default());
    }

    #[test]
    fn unterminated_fence_is_code_and_hides_the_rest() {
        let m = markdown("Here:\n```python\nprint(1)\n- not a bullet\n| a | b |\n|---|---|");
        assert!(m.code && m.code_fence_unterminated);
        assert!(!m.bullets && !m.table);
        let closed = markdown("```\nx\n```\n- bullet");
        assert!(closed.code && !closed.code_fence_unterminated && closed.bullets);
    }

    #[test]
    fn empty_and_non_ascii_texts() {
        assert_eq!(markdown(""), Markdown::default());
        let m = markdown("• première ligne\n• 第二行 [2]\n(Müller, 2021) https://例え.jp");
        assert!(m.bullets && m.citation_numeric && m.citation_author_year && m.citation_url);
    }

    #[test]
    fn citations() {
        assert!(markdown("as shown [12].").citation_numeric);
        assert!(!markdown("array[i] and [abcd]").citation_numeric);
        assert!(markdown("(Smith et al., 2019)").citation_author_year);
        assert!(!markdown("(see above, 12345)").citation_author_year);
    }

    #[test]
    fn json_output_validity() {
        let fmt = json!({"type": "json_object"});
        assert_eq!(json_valid(Some(" {\"a\": 1} "), Some(&fmt)), Some(true));
        assert_eq!(json_valid(Some("{\"a\": 1"), Some(&fmt)), Some(false));
        assert_eq!(
            json_valid(Some("```json\n{}\n```"), Some(&fmt)),
            Some(false)
        );
        assert_eq!(json_valid(Some(""), Some(&fmt)), Some(false));
        assert_eq!(json_valid(None, Some(&fmt)), Some(false));
        assert_eq!(json_valid(Some("{}"), Some(&json!({"type": "text"}))), None);
        assert_eq!(json_valid(Some("{}"), None), None);
        let schema = json!({"type": "json_schema", "json_schema": {"name": "x", "schema":
            {"type": "object", "required": ["answer"]}}});
        assert_eq!(
            json_valid(Some("{\"answer\": 1}"), Some(&schema)),
            Some(true)
        );
        assert_eq!(
            json_valid(Some("{\"other\": 1}"), Some(&schema)),
            Some(false)
        );
    }

    #[test]
    fn tool_calls_against_schemas() {
        let tools = json!([{"type": "function", "function": {"name": "get_balance",
            "parameters": {"type": "object", "properties": {"account": {"type": "string"},
            "currency": {"enum": ["EUR", "GBP"]}}, "required": ["account"]}}}]);
        let call = |args: &str| {
            json!([{"id": "1", "type": "function",
            "function": {"name": "get_balance", "arguments": args}}])
        };
        let good = call("{\"account\": \"acc-1\", \"currency\": \"EUR\"}");
        assert_eq!(tool_calls_valid(Some(&good), Some(&tools)), Some(true));
        let wrong_enum = call("{\"account\": \"acc-1\", \"currency\": \"USD\"}");
        assert_eq!(
            tool_calls_valid(Some(&wrong_enum), Some(&tools)),
            Some(false)
        );
        let missing = call("{\"currency\": \"EUR\"}");
        assert_eq!(tool_calls_valid(Some(&missing), Some(&tools)), Some(false));
        let not_json = call("{account: acc-1");
        assert_eq!(tool_calls_valid(Some(&not_json), Some(&tools)), Some(false));
        let unknown = json!([{"function": {"name": "wire_money", "arguments": "{}"}}]);
        assert_eq!(tool_calls_valid(Some(&unknown), Some(&tools)), Some(false));
        assert_eq!(tool_calls_valid(Some(&good), None), Some(false));
        assert_eq!(tool_calls_valid(None, Some(&tools)), None);
        assert_eq!(tool_calls_valid(Some(&json!([])), Some(&tools)), None);
    }
}

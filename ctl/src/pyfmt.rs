//! Python's formatting, where patronictl's output shows it: `json.dumps` (`", "` and `": "`
//! separators, ASCII-only), `repr(float)`, `datetime.isoformat()`, and patronictl's
//! `timestamp()` prefix.

use serde_json::Value;

/// An ordered JSON object (patronictl's rows keep their column order).
pub type Row = Vec<(String, Value)>;

/// `json.dumps(v)` for a value.
pub fn json(v: &Value) -> String {
    let mut out = String::new();
    write_json(v, &mut out);
    out
}

/// `json.dumps(rows)` for a list of ordered objects.
pub fn json_rows(rows: &[Row]) -> String {
    let items: Vec<String> = rows
        .iter()
        .map(|r| {
            let kv: Vec<String> = r
                .iter()
                .map(|(k, v)| format!("{}: {}", json_string(k), json(v)))
                .collect();
            format!("{{{}}}", kv.join(", "))
        })
        .collect();
    format!("[{}]", items.join(", "))
}

fn write_json(v: &Value, out: &mut String) {
    match v {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => match n.as_f64() {
            Some(f) if n.is_f64() => out.push_str(&json_float(f)),
            _ => out.push_str(&n.to_string()),
        },
        Value::String(s) => out.push_str(&json_string(s)),
        Value::Array(a) => {
            out.push('[');
            for (i, x) in a.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                write_json(x, out);
            }
            out.push(']');
        }
        Value::Object(m) => {
            out.push('{');
            for (i, (k, x)) in m.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                out.push_str(&json_string(k));
                out.push_str(": ");
                write_json(x, out);
            }
            out.push('}');
        }
    }
}

fn json_float(f: f64) -> String {
    if f.is_nan() {
        "NaN".into()
    } else if f.is_infinite() {
        if f > 0.0 { "Infinity" } else { "-Infinity" }.into()
    } else {
        float_repr(f)
    }
}

/// A JSON string with Python's `ensure_ascii` escaping.
fn json_string(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{08}' => out.push_str("\\b"),
            '\u{0C}' => out.push_str("\\f"),
            c if (c as u32) < 0x20 || (c as u32) > 0x7E => {
                let mut buf = [0u16; 2];
                for unit in c.encode_utf16(&mut buf) {
                    out.push_str(&format!("\\u{unit:04x}"));
                }
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Python's `repr(float)`: the shortest digits that read back, positional for exponents in
/// -4..16, else `d.ddde+XX`.
pub fn float_repr(f: f64) -> String {
    if f == 0.0 {
        return if f.is_sign_negative() { "-0.0" } else { "0.0" }.into();
    }
    let sci = format!("{:e}", f.abs());
    let (mant, exp) = sci.split_once('e').unwrap_or((sci.as_str(), "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let digits: String = mant.chars().filter(char::is_ascii_digit).collect();
    let sign = if f < 0.0 { "-" } else { "" };
    if (-4..16).contains(&exp) {
        let n = i32::try_from(digits.len()).unwrap_or(i32::MAX);
        let body = if exp < 0 {
            format!("0.{}{digits}", "0".repeat(exp.unsigned_abs() as usize - 1))
        } else if exp + 1 >= n {
            format!("{digits}{}.0", "0".repeat((exp + 1 - n) as usize))
        } else {
            let (a, b) = digits.split_at((exp + 1) as usize);
            format!("{a}.{b}")
        };
        format!("{sign}{body}")
    } else {
        let m = if digits.len() > 1 {
            format!("{}.{}", &digits[..1], &digits[1..])
        } else {
            digits
        };
        let esign = if exp < 0 { '-' } else { '+' };
        format!("{sign}{m}e{esign}{:02}", exp.abs())
    }
}

/// patronictl's `timestamp(precision)`: local time as `%Y-%m-%d %H:%M:%S.%f`, cut by
/// `7 - precision` characters (so `timestamp(0)` has no fraction and `timestamp()`, 6, shows
/// five digits: patronictl's own slicing).
pub fn timestamp(precision: usize) -> String {
    let s = chrono::Local::now()
        .format("%Y-%m-%d %H:%M:%S%.6f")
        .to_string();
    let cut = s.len().saturating_sub(7 - precision.min(6));
    s[..cut].to_string()
}

/// Python's `datetime.isoformat()` for an aware time (microseconds only when not zero).
pub fn isoformat(t: &chrono::DateTime<chrono::FixedOffset>) -> String {
    if t.timestamp_subsec_micros() == 0 {
        t.format("%Y-%m-%dT%H:%M:%S%:z").to_string()
    } else {
        t.format("%Y-%m-%dT%H:%M:%S%.6f%:z").to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn floats_as_python_repr() {
        for (f, want) in [
            (1.5, "1.5"),
            (0.1, "0.1"),
            (1e20, "1e+20"),
            (1e16, "1e+16"),
            (1e15, "1000000000000000.0"),
            (0.0001, "0.0001"),
            (0.00001, "1e-05"),
            (123.456, "123.456"),
            (-2.5e-7, "-2.5e-07"),
            (3.0, "3.0"),
        ] {
            assert_eq!(float_repr(f), want, "{f}");
        }
    }

    #[test]
    fn json_dumps_like_python() {
        let rows = vec![vec![
            ("Cluster".to_string(), json!("anchor")),
            ("TL".to_string(), json!(23)),
            ("Tags".to_string(), json!({"a": true, "é": 1.5})),
        ]];
        assert_eq!(
            json_rows(&rows),
            r#"[{"Cluster": "anchor", "TL": 23, "Tags": {"a": true, "\u00e9": 1.5}}]"#
        );
        assert_eq!(json_rows(&[]), "[]");
    }

    #[test]
    fn isoformat_like_python() {
        let t = chrono::DateTime::parse_from_rfc3339("2026-11-22T18:00:00+01:00").unwrap();
        assert_eq!(isoformat(&t), "2026-11-22T18:00:00+01:00");
        let t = chrono::DateTime::parse_from_rfc3339("2026-11-22T18:00:00.5Z").unwrap();
        assert_eq!(isoformat(&t), "2026-11-22T18:00:00.500000+00:00");
        assert_eq!(timestamp(0).len(), 19);
        assert_eq!(timestamp(6).len(), 25);
    }
}

//! YAML output as patronictl prints it (`yaml.safe_dump(data, default_flow_style=False,
//! allow_unicode=True, width=200)`): keys sorted, sequences inside mappings not indented,
//! empty collections as `{}`/`[]`, and a string quoted exactly when PyYAML would quote it
//! (when it would otherwise read back as another type, `'on'`, `'10'`, `''`, or starts with
//! an indicator).
//!
//! Known differences from PyYAML, both still valid YAML that reads back the same: strings with
//! line breaks are written double-quoted with `\n` escapes (PyYAML folds them in single
//! quotes), and long strings are never wrapped at 200 columns.

use std::sync::LazyLock;

use regex::Regex;
use serde_json::Value;

/// The block-style document for `v`, ending with a newline.
pub fn dump(v: &Value) -> String {
    let mut out = String::new();
    match v {
        Value::Object(m) if !m.is_empty() => emit_map(m, 0, false, &mut out),
        Value::Array(a) if !a.is_empty() => emit_seq(a, 0, false, &mut out),
        other => {
            out.push_str(&scalar(other, false));
            out.push('\n');
        }
    }
    out
}

/// The flow-style document for `v` (`{a: 1, b: 'on'}`), ending with a newline.
pub fn dump_flow(v: &Value) -> String {
    let mut s = flow(v);
    s.push('\n');
    s
}

fn sorted(m: &serde_json::Map<String, Value>) -> Vec<(&String, &Value)> {
    let mut kv: Vec<(&String, &Value)> = m.iter().collect();
    kv.sort_by(|a, b| a.0.cmp(b.0));
    kv
}

fn is_nested(v: &Value) -> bool {
    match v {
        Value::Object(m) => !m.is_empty(),
        Value::Array(a) => !a.is_empty(),
        _ => false,
    }
}

fn emit_map(
    m: &serde_json::Map<String, Value>,
    indent: usize,
    inline_first: bool,
    out: &mut String,
) {
    for (i, (k, v)) in sorted(m).into_iter().enumerate() {
        if !(i == 0 && inline_first) {
            out.push_str(&" ".repeat(indent));
        }
        out.push_str(&string(k, false));
        out.push(':');
        match v {
            Value::Object(inner) if is_nested(v) => {
                out.push('\n');
                emit_map(inner, indent + 2, false, out);
            }
            Value::Array(items) if is_nested(v) => {
                out.push('\n');
                emit_seq(items, indent, false, out);
            }
            other => {
                out.push(' ');
                out.push_str(&scalar(other, false));
                out.push('\n');
            }
        }
    }
}

fn emit_seq(a: &[Value], indent: usize, inline_first: bool, out: &mut String) {
    for (i, v) in a.iter().enumerate() {
        if !(i == 0 && inline_first) {
            out.push_str(&" ".repeat(indent));
        }
        out.push_str("- ");
        match v {
            Value::Object(inner) if is_nested(v) => emit_map(inner, indent + 2, true, out),
            Value::Array(items) if is_nested(v) => emit_seq(items, indent + 2, true, out),
            other => {
                out.push_str(&scalar(other, false));
                out.push('\n');
            }
        }
    }
}

fn flow(v: &Value) -> String {
    match v {
        Value::Object(m) => {
            let items: Vec<String> = sorted(m)
                .into_iter()
                .map(|(k, v)| format!("{}: {}", string(k, true), flow(v)))
                .collect();
            format!("{{{}}}", items.join(", "))
        }
        Value::Array(a) => {
            let items: Vec<String> = a.iter().map(flow).collect();
            format!("[{}]", items.join(", "))
        }
        other => scalar(other, true),
    }
}

/// A scalar (or an empty collection) as PyYAML writes it.
fn scalar(v: &Value, in_flow: bool) -> String {
    match v {
        Value::Null => "null".into(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => match n.as_f64() {
            Some(f) if n.is_f64() => float(f),
            _ => n.to_string(),
        },
        Value::String(s) => string(s, in_flow),
        Value::Object(_) => "{}".into(),
        Value::Array(_) => "[]".into(),
    }
}

/// PyYAML's `represent_float`: Python's `repr`, with `.0` added before an exponent.
pub fn float(f: f64) -> String {
    if f.is_nan() {
        return ".nan".into();
    }
    if f.is_infinite() {
        return if f > 0.0 { ".inf" } else { "-.inf" }.into();
    }
    let r = crate::pyfmt::float_repr(f).to_lowercase();
    if !r.contains('.') && r.contains('e') {
        r.replacen('e', ".0e", 1)
    } else {
        r
    }
}

fn re(pattern: &str) -> Option<Regex> {
    Regex::new(pattern).ok()
}

/// PyYAML's implicit resolvers (YAML 1.1): a plain scalar matching one is not a string.
static IMPLICIT: LazyLock<Vec<Option<Regex>>> = LazyLock::new(|| {
    vec![
        re(r"^(?:yes|Yes|YES|no|No|NO|true|True|TRUE|false|False|FALSE|on|On|ON|off|Off|OFF)$"),
        re(
            r"^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+][0-9]+)?|\.[0-9][0-9_]*(?:[eE][-+][0-9]+)?|[-+]?[0-9][0-9_]*(?::[0-5]?[0-9])+\.[0-9_]*|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$",
        ),
        re(
            r"^(?:[-+]?0b[0-1_]+|[-+]?0[0-7_]+|[-+]?(?:0|[1-9][0-9_]*)|[-+]?0x[0-9a-fA-F_]+|[-+]?[1-9][0-9_]*(?::[0-5]?[0-9])+)$",
        ),
        re(r"^(?:<<)$"),
        re(r"^(?:~|null|Null|NULL)$"),
        re(
            r"^(?:[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]|[0-9][0-9][0-9][0-9]-[0-9][0-9]?-[0-9][0-9]?(?:[Tt]|[ \t]+)[0-9][0-9]?:[0-9][0-9]:[0-9][0-9](?:\.[0-9]*)?(?:[ \t]*(?:Z|[-+][0-9][0-9]?(?::[0-9][0-9])?))?)$",
        ),
        re(r"^(?:=)$"),
    ]
});

fn resolves_to_non_string(s: &str) -> bool {
    IMPLICIT.iter().flatten().any(|r| r.is_match(s))
}

fn printable(c: char) -> bool {
    matches!(c, '\n' | '\u{20}'..='\u{7E}' | '\u{85}' | '\u{A0}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}' | '\u{10000}'..='\u{10FFFF}')
        && c != '\u{FEFF}'
}

fn is_space_or_end(c: Option<char>) -> bool {
    matches!(
        c,
        None | Some(' ' | '\t' | '\r' | '\n' | '\u{85}' | '\u{2028}' | '\u{2029}')
    )
}

/// What PyYAML's `analyze_scalar` concludes about `s`.
struct Analysis {
    plain_block: bool,
    plain_flow: bool,
    single_quoted: bool,
}

fn analyze(s: &str) -> Analysis {
    if s.is_empty() {
        return Analysis {
            plain_block: false,
            plain_flow: false,
            single_quoted: true,
        };
    }
    let chars: Vec<char> = s.chars().collect();
    let (mut flow_ind, mut block_ind) = (s.starts_with("---") || s.starts_with("..."), false);
    if flow_ind {
        block_ind = true;
    }
    let (mut special, mut line_breaks) = (false, false);
    for (i, &c) in chars.iter().enumerate() {
        let next = chars.get(i + 1).copied();
        let prev_space = i == 0 || is_space_or_end(chars.get(i - 1).copied());
        if i == 0 {
            if "#,[]{}&*!|>'\"%@`".contains(c) {
                flow_ind = true;
                block_ind = true;
            }
            if c == '?' || c == ':' {
                flow_ind = true;
                if is_space_or_end(next) {
                    block_ind = true;
                }
            }
            if c == '-' && is_space_or_end(next) {
                flow_ind = true;
                block_ind = true;
            }
        } else {
            if ",?[]{}".contains(c) {
                flow_ind = true;
            }
            if c == ':' {
                flow_ind = true;
                if is_space_or_end(next) {
                    block_ind = true;
                }
            }
            if c == '#' && prev_space {
                flow_ind = true;
                block_ind = true;
            }
        }
        if matches!(c, '\n' | '\u{85}' | '\u{2028}' | '\u{2029}') {
            line_breaks = true;
        } else if !printable(c) {
            special = true;
        }
    }
    let edge_space = chars.first() == Some(&' ') || chars.last() == Some(&' ');
    let plain = !(edge_space || special || line_breaks);
    Analysis {
        plain_block: plain && !block_ind,
        plain_flow: plain && !flow_ind,
        single_quoted: !special && !line_breaks,
    }
}

/// A string as PyYAML writes it in block (or flow) context.
fn string(s: &str, in_flow: bool) -> String {
    let a = analyze(s);
    let plain = if in_flow { a.plain_flow } else { a.plain_block };
    if plain && !resolves_to_non_string(s) {
        return s.to_string();
    }
    if a.single_quoted {
        return format!("'{}'", s.replace('\'', "''"));
    }
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if printable(c) => out.push(c),
            c if (c as u32) < 0x100 => out.push_str(&format!("\\x{:02X}", c as u32)),
            c => out.push_str(&format!("\\u{:04X}", c as u32)),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn k(s: &str) -> String {
        dump(&json!({ "k": s }))
    }

    #[test]
    fn resolver_patterns_compile() {
        assert!(IMPLICIT.iter().all(Option::is_some));
    }

    #[test]
    fn strings_are_quoted_as_pyyaml_quotes_them() {
        // Pairs taken from PyYAML 6.0.3's safe_dump.
        let cases = [
            ("on", "'on'"),
            ("off", "'off'"),
            ("y", "y"),
            ("true", "'true'"),
            ("null", "'null'"),
            ("~", "'~'"),
            ("", "''"),
            ("10", "'10'"),
            ("0/42A6A70", "0/42A6A70"),
            ("127.0.0.1:25432", "127.0.0.1:25432"),
            ("256MB", "256MB"),
            ("a b", "a b"),
            ("a: b", "'a: b'"),
            ("a #b", "'a #b'"),
            ("#x", "'#x'"),
            ("-x", "-x"),
            ("- x", "'- x'"),
            ("x:", "'x:'"),
            ("1.5", "'1.5'"),
            ("1e3", "1e3"),
            ("0x1F", "'0x1F'"),
            ("0o17", "0o17"),
            ("017", "'017'"),
            ("2026-11-22", "'2026-11-22'"),
            (
                "2026-11-22T14:33:13.949943+00:00",
                "'2026-11-22T14:33:13.949943+00:00'",
            ),
            ("it's", "it's"),
            ("  lead", "'  lead'"),
            ("trail ", "'trail '"),
            ("*a", "'*a'"),
            ("a,b", "a,b"),
            ("a]", "a]"),
            ("=", "'='"),
            ("<<", "'<<'"),
            (".5", "'.5'"),
            (".inf", "'.inf'"),
            ("NaN", "NaN"),
            ("+1", "'+1'"),
            ("1_000", "'1_000'"),
            ("12:30:00", "'12:30:00'"),
            ("/path/to", "/path/to"),
            ("host all all 0.0.0.0/0 md5", "host all all 0.0.0.0/0 md5"),
            ("\"q\"", "'\"q\"'"),
            ("?x", "?x"),
            ("? x", "'? x'"),
            ("é", "é"),
            ("a\tb", "\"a\\tb\""),
            ("-", "'-'"),
            ("--", "--"),
            ("---", "'---'"),
            ("...", "'...'"),
        ];
        for (input, want) in cases {
            assert_eq!(k(input), format!("k: {want}\n"), "input {input:?}");
        }
    }

    #[test]
    fn structure_as_pyyaml() {
        let v = json!({"b": [1, "x", {"c": 2, "a": []}], "a": {}, "n": null, "f": 1.5,
            "g": 1e20, "h": 0.1, "i": -3, "t": true, "nested": {"z": {"y": 1}}, "lst": [[1, 2], [3]]});
        assert_eq!(
            dump(&v),
            "a: {}\nb:\n- 1\n- x\n- a: []\n  c: 2\nf: 1.5\ng: 1.0e+20\nh: 0.1\ni: -3\nlst:\n- - 1\n  - 2\n- - 3\nn: null\nnested:\n  z:\n    y: 1\nt: true\n"
        );
        assert_eq!(dump(&json!([{"B": 1, "A": "x"}])), "- A: x\n  B: 1\n");
        assert_eq!(
            dump_flow(&json!({"nofailover": true, "x": "on"})),
            "{nofailover: true, x: 'on'}\n"
        );
        assert_eq!(dump(&json!([])), "[]\n");
        assert_eq!(dump(&json!({})), "{}\n");
    }

    #[test]
    fn show_config_matches_patronictl() {
        let config: Value = serde_json::from_str(r#"{"ttl":30,"loop_wait":10,"retry_timeout":10,"maximum_lag_on_failover":1048576,"synchronous_mode":false,"postgresql":{"use_pg_rewind":true,"use_slots":true,"parameters":{"wal_level":"replica","hot_standby":"on","max_wal_senders":10,"max_replication_slots":10,"wal_keep_size":"256MB","shared_buffers":"64MB","max_connections":100}}}"#).unwrap();
        let reference = include_str!("../tests/fixtures/show-config.txt");
        assert_eq!(dump(&config), reference);
    }
}

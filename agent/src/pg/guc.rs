//! `GucValue`: a PostgreSQL setting's value, from JSON and into `postgresql.conf` syntax.

/// A PostgreSQL setting's value as written to `postgresql.conf`. YAML and JSON booleans render
/// as `on`/`off`, as Patroni does (`hot_standby: on` in YAML is a boolean).
#[derive(Debug, Clone, PartialEq)]
pub enum GucValue {
    /// on / off.
    Bool(bool),
    /// An integer.
    Int(i64),
    /// A number with a fraction.
    Float(f64),
    /// Anything else, written quoted.
    Str(String),
}

impl GucValue {
    /// From a JSON value; `None` for null, arrays and objects.
    pub fn from_json(v: &serde_json::Value) -> Option<GucValue> {
        match v {
            serde_json::Value::Bool(b) => Some(GucValue::Bool(*b)),
            serde_json::Value::Number(n) => Some(match n.as_i64() {
                Some(i) => GucValue::Int(i),
                None => GucValue::Float(n.as_f64().unwrap_or_default()),
            }),
            serde_json::Value::String(s) => Some(GucValue::Str(s.clone())),
            _ => None,
        }
    }
    /// The value as `postgresql.conf` syntax (strings single-quoted and escaped).
    pub fn to_conf(&self) -> String {
        match self {
            GucValue::Bool(true) => "on".into(),
            GucValue::Bool(false) => "off".into(),
            GucValue::Int(i) => i.to_string(),
            GucValue::Float(f) => f.to_string(),
            GucValue::Str(s) => format!("'{}'", s.replace('\\', "\\\\").replace('\'', "''")),
        }
    }
    /// The bare value as PostgreSQL reports it in `pg_settings` (unquoted).
    pub fn to_plain(&self) -> String {
        match self {
            GucValue::Str(s) => s.clone(),
            other => other.to_conf(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guc_rendering() {
        assert_eq!(GucValue::Bool(true).to_conf(), "on");
        assert_eq!(GucValue::Int(100).to_conf(), "100");
        assert_eq!(GucValue::Str("it's".into()).to_conf(), "'it''s'");
        assert_eq!(
            GucValue::from_json(&serde_json::json!("64MB")),
            Some(GucValue::Str("64MB".into()))
        );
    }
}

//! patronictl's `print_output`: one set of columns and rows printed as a pretty table, as
//! tab-separated values, as JSON (a list of objects; with a title, empty cells are left out)
//! or as YAML (keys sorted).

use clap::ValueEnum;
use serde_json::Value;

use crate::members::{Listing, align_of};
use crate::pyfmt::{self, Row};
use crate::table::{Align, Table};
use crate::yaml;

/// Output format (`--format`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// A table, as patronictl draws it.
    Pretty,
    /// Tab-separated values with a header line.
    Tsv,
    /// A JSON list of objects.
    Json,
    /// A YAML list of mappings.
    #[value(alias = "yml")]
    Yaml,
}

/// How a table is laid out (`topology` is `pretty` with tree order).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    /// One of the `--format` values.
    Format(Format),
    /// `hactl topology`.
    Topology,
}

/// A cell as Python's `str()` shows it; tags as YAML (block in tables, flow in TSV).
fn cell_text(v: &Value, flow: bool) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => "None".into(),
        Value::Bool(b) => if *b { "True" } else { "False" }.into(),
        Value::Number(n) => n.to_string(),
        Value::Object(o) if o.is_empty() => "{}".into(),
        other => {
            let s = if flow {
                yaml::dump_flow(other)
            } else {
                yaml::dump(other)
            };
            s.trim().to_string()
        }
    }
}

/// Prints `columns`/`rows` in `layout`. `title` non-empty means a cluster listing: the
/// `Cluster` column is dropped from tables, and empty cells from JSON/YAML.
pub fn render(
    columns: &[String],
    rows: &[Vec<Value>],
    align: &dyn Fn(&str) -> Align,
    layout: Layout,
    title: &str,
) -> String {
    let listing = !title.is_empty() && columns.first().map(String::as_str) == Some("Cluster");
    match layout {
        Layout::Format(Format::Json) | Layout::Format(Format::Yaml) => {
            let elements: Vec<Row> = rows
                .iter()
                .map(|r| {
                    columns
                        .iter()
                        .zip(r)
                        .filter(|(_, v)| title.is_empty() || !cell_text(v, false).is_empty())
                        .map(|(k, v)| (k.clone(), v.clone()))
                        .collect()
                })
                .collect();
            if layout == Layout::Format(Format::Json) {
                pyfmt::json_rows(&elements)
            } else {
                let list: Vec<Value> = elements
                    .into_iter()
                    .map(|r| Value::Object(r.into_iter().collect()))
                    .collect();
                yaml::dump(&Value::Array(list))
            }
        }
        Layout::Format(Format::Tsv) => {
            let mut lines = vec![columns.join("\t")];
            for r in rows {
                let cells: Vec<String> = r.iter().map(|v| cell_text(v, true)).collect();
                lines.push(cells.join("\t"));
            }
            lines.join("\n")
        }
        Layout::Format(Format::Pretty) | Layout::Topology => {
            let skip = usize::from(listing);
            // Tags: YAML blocks in `pretty`, flow style in `topology` (patronictl).
            let flow = layout == Layout::Topology;
            let cols: Vec<String> = columns[skip..].to_vec();
            let table = Table {
                align: cols.iter().map(|c| align(c)).collect(),
                rows: rows
                    .iter()
                    .map(|r| r[skip..].iter().map(|v| cell_text(v, flow)).collect())
                    .collect(),
                columns: cols,
                title: title.to_string(),
            };
            table.render()
        }
    }
}

/// A cluster listing in `layout`, with patronictl's footer lines for tables.
pub fn listing(l: &Listing, layout: Layout) -> String {
    let mut columns = l.columns.clone();
    let table = matches!(layout, Layout::Format(Format::Pretty) | Layout::Topology);
    if table {
        for c in &mut columns {
            if c == "Receive Lag" || c == "Replay Lag" {
                *c = "Lag".into();
            }
        }
    }
    let mut out = render(&columns, &l.rows, &align_of, layout, &l.title);
    if table && !l.service_info.is_empty() {
        out.push_str("\n ");
        out.push_str(&l.service_info.join("\n "));
    }
    out
}

#[cfg(test)]
mod tests;

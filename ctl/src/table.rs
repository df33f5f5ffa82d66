//! Tables drawn exactly as patronictl draws them (PrettyTable with patronictl's title
//! injected into the top rule), so that `hactl list` output can be diffed against
//! `patronictl list`.
//!
//! Rules, as PrettyTable's: a column is as wide as its widest line (header included) plus one
//! space of padding each side; headers are aligned like their column; a multi-line cell makes
//! the row taller (lines at the top) and puts a rule between every pair of rows; the title
//! replaces the top rule's first characters and is cut to fit.

/// Horizontal alignment of a column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Align {
    /// Left.
    Left,
    /// Right.
    Right,
}

/// A table ready to draw.
#[derive(Debug, Clone, Default)]
pub struct Table {
    /// Column headers (duplicates allowed: patronictl has two `Lag` columns).
    pub columns: Vec<String>,
    /// Alignment per column.
    pub align: Vec<Align>,
    /// Rows of cell texts (a cell may hold several lines).
    pub rows: Vec<Vec<String>>,
    /// Text put into the top rule (`" Cluster: demo (7711...) "`), or empty.
    pub title: String,
}

fn width(s: &str) -> usize {
    s.chars().count()
}

/// Pads `s` to `w` characters.
pub fn justify(s: &str, w: usize, align: Align) -> String {
    let len = width(s);
    if len >= w {
        return s.to_string();
    }
    let pad = w - len;
    let (left, right) = match align {
        Align::Left => (0, pad),
        Align::Right => (pad, 0),
    };
    format!("{}{s}{}", " ".repeat(left), " ".repeat(right))
}

impl Table {
    /// The table as text, without a trailing newline.
    pub fn render(&self) -> String {
        let n = self.columns.len();
        let mut widths: Vec<usize> = self.columns.iter().map(|c| width(c)).collect();
        for row in &self.rows {
            for (i, cell) in row.iter().enumerate().take(n) {
                let w = cell.split('\n').map(width).max().unwrap_or(0);
                widths[i] = widths[i].max(w);
            }
        }
        let align = |i: usize| self.align.get(i).copied().unwrap_or(Align::Left);
        let rule: String = std::iter::once("+".to_string())
            .chain(widths.iter().map(|w| format!("{}+", "-".repeat(w + 2))))
            .collect();
        let all_rules = self.rows.iter().any(|r| r.iter().any(|c| c.contains('\n')));

        let mut out = Vec::new();
        out.push(self.titled(&rule));
        let header: String = std::iter::once("|".to_string())
            .chain(
                self.columns
                    .iter()
                    .enumerate()
                    .map(|(i, c)| format!(" {} |", justify(c, widths[i], align(i)))),
            )
            .collect();
        out.push(header);
        out.push(rule.clone());
        for (ri, row) in self.rows.iter().enumerate() {
            let cells: Vec<Vec<&str>> = (0..n)
                .map(|i| row.get(i).map_or(vec![""], |c| c.split('\n').collect()))
                .collect();
            let height = cells.iter().map(Vec::len).max().unwrap_or(1);
            for l in 0..height {
                let line: String = std::iter::once("|".to_string())
                    .chain(cells.iter().enumerate().map(|(i, c)| {
                        let text = c.get(l).copied().unwrap_or("");
                        format!(" {} |", justify(text, widths[i], align(i)))
                    }))
                    .collect();
                out.push(line);
            }
            if all_rules && ri + 1 < self.rows.len() {
                out.push(rule.clone());
            }
        }
        out.push(rule);
        out.join("\n")
    }

    /// The top rule with the title injected after its first character.
    fn titled(&self, rule: &str) -> String {
        if self.title.is_empty() {
            return rule.to_string();
        }
        let rule: Vec<char> = rule.chars().collect();
        let title: Vec<char> = self
            .title
            .chars()
            .take(rule.len().saturating_sub(2))
            .collect();
        let mut s = String::new();
        s.push(rule[0]);
        s.extend(&title);
        s.extend(&rule[1 + title.len()..]);
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(cols: &[&str], align: &[Align], rows: &[&[&str]], title: &str) -> String {
        Table {
            columns: cols.iter().map(|s| s.to_string()).collect(),
            align: align.to_vec(),
            rows: rows
                .iter()
                .map(|r| r.iter().map(|s| s.to_string()).collect())
                .collect(),
            title: title.into(),
        }
        .render()
    }

    use Align::{Left as L, Right as R};

    #[test]
    fn empty_table_has_header_and_two_rules() {
        let got = t(
            &["TL", "LSN", "Reason", "Timestamp", "New Leader"],
            &[R, R, L, L, L],
            &[],
            "",
        );
        let want = "\
+----+-----+--------+-----------+------------+
| TL | LSN | Reason | Timestamp | New Leader |
+----+-----+--------+-----------+------------+
+----+-----+--------+-----------+------------+";
        assert_eq!(got, want);
    }

    #[test]
    fn title_is_cut_to_the_rule() {
        let got = t(
            &["Member", "Host"],
            &[L, L],
            &[],
            " Cluster: demo (uninitialized) ",
        );
        assert_eq!(
            got,
            "+ Cluster: demo +\n| Member | Host |\n+--------+------+\n+--------+------+"
        );
    }

    #[test]
    fn multi_line_cells_put_rules_between_rows() {
        let got = t(
            &["Member", "Host", "Tags"],
            &[L, L, L],
            &[&["n1", "h", "a: 1\nb: x"], &["node2222", "h2", ""]],
            " Cluster: demo (12345678901234567890123456789012345) ",
        );
        let want = "\
+ Cluster: demo (12345678+
| Member   | Host | Tags |
+----------+------+------+
| n1       | h    | a: 1 |
|          |      | b: x |
+----------+------+------+
| node2222 | h2   |      |
+----------+------+------+";
        assert_eq!(got, want);
    }

    #[test]
    fn right_alignment_pads_left() {
        assert_eq!(justify("ab", 5, R), "   ab");
        assert_eq!(justify("abcdef", 5, R), "abcdef");
    }
}

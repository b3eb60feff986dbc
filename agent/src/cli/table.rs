//! Aligned text columns in the manner of `kubectl get`: widths from the plain text, colour around it.

use super::style::{Paint, Style};

/// One cell: its text and, optionally, its colour.
#[derive(Clone, Debug, PartialEq)]
pub struct Cell {
    pub text: String,
    pub paint: Option<Paint>,
}

impl Cell {
    /// A cell with colour.
    pub fn painted(text: impl Into<String>, paint: Paint) -> Cell {
        Cell {
            text: text.into(),
            paint: Some(paint),
        }
    }
}

impl From<String> for Cell {
    fn from(text: String) -> Cell {
        Cell { text, paint: None }
    }
}

impl From<&str> for Cell {
    fn from(text: &str) -> Cell {
        Cell::from(text.to_string())
    }
}

/// A table: a header row and rows of cells, columns separated by three spaces.
#[derive(Debug, Default)]
pub struct Table {
    headers: Vec<&'static str>,
    rows: Vec<Vec<Cell>>,
}

impl Table {
    /// A table with these column headers.
    pub fn new(headers: &[&'static str]) -> Table {
        Table {
            headers: headers.to_vec(),
            rows: Vec::new(),
        }
    }

    /// Adds a row (missing trailing cells are empty).
    pub fn row(&mut self, cells: Vec<Cell>) {
        self.rows.push(cells);
    }

    /// The table as lines; no line ends in spaces.
    pub fn render(&self, style: Style) -> String {
        let columns = self.headers.len();
        let width = |i: usize| {
            self.rows
                .iter()
                .filter_map(|r| r.get(i))
                .map(|c| c.text.chars().count())
                .chain([self.headers[i].chars().count()])
                .max()
                .unwrap_or(0)
        };
        let widths: Vec<usize> = (0..columns).map(width).collect();
        let header: Vec<Cell> = self
            .headers
            .iter()
            .map(|h| Cell::painted(*h, Paint::Bold))
            .collect();
        let mut out = String::new();
        for row in std::iter::once(&header).chain(&self.rows) {
            let mut line = String::new();
            for (i, w) in widths.iter().enumerate() {
                let cell = row.get(i);
                let text = cell.map_or("", |c| c.text.as_str());
                if i > 0 {
                    line.push_str("   ");
                }
                match cell.and_then(|c| c.paint) {
                    Some(p) => line.push_str(&style.paint(text, p)),
                    None => line.push_str(text),
                }
                if i + 1 < columns {
                    let pad = w - text.chars().count();
                    line.extend(std::iter::repeat_n(' ', pad));
                }
            }
            out.push_str(line.trim_end());
            out.push('\n');
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_align_on_the_plain_text_even_when_coloured() {
        let mut t = Table::new(&["GPU", "VERDICT", "NOTE"]);
        t.row(vec![
            "0".into(),
            Cell::painted("PASS", Paint::Green),
            "-".into(),
        ]);
        t.row(vec![
            "12".into(),
            Cell::painted("FAIL", Paint::Red),
            "".into(),
        ]);
        assert_eq!(
            t.render(Style::PLAIN),
            "GPU   VERDICT   NOTE\n0     PASS      -\n12    FAIL\n"
        );
        let coloured = t.render(Style { colour: true });
        assert!(
            coloured.contains("\x1b[32mPASS\x1b[0m      -"),
            "{coloured:?}"
        );
    }
}

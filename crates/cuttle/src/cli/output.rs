//! How client commands print: aligned tables and `name: value` listings for people, pretty
//! JSON for scripts, errors on stderr. Results go to stdout and nothing else does, so
//! `cuttle … --output json | jq` always sees valid JSON.

use std::io::Write as _;

use serde_json::Value;

/// Writes `text` and a newline to stdout. A closed pipe (`cuttle task list | head`) is not
/// an error worth a message: the reader has what it wanted.
pub(crate) fn print_line(text: &str) -> anyhow::Result<()> {
    let mut stdout = std::io::stdout().lock();
    match writeln!(stdout, "{text}").and_then(|()| stdout.flush()) {
        Ok(()) => Ok(()),
        Err(error) if error.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        Err(error) => Err(anyhow::Error::new(error).context("write to stdout")),
    }
}

/// Writes a message to stderr (errors, notes that must not mix with results).
pub(crate) fn print_error(text: &str) {
    let mut stderr = std::io::stderr().lock();
    // Nothing sensible is left to do when stderr itself is gone.
    let _ = writeln!(stderr, "{text}");
}

/// Pretty JSON on stdout.
pub(crate) fn print_json(value: &Value) -> anyhow::Result<()> {
    let text = serde_json::to_string_pretty(value)?;
    print_line(&text)
}

/// `Name:  value` lines, names padded to one width.
pub(crate) fn print_fields(fields: &[(&str, String)]) -> anyhow::Result<()> {
    let width = fields
        .iter()
        .map(|(name, _)| name.chars().count() + 1)
        .max()
        .unwrap_or(0);
    let lines: Vec<String> = fields
        .iter()
        .map(|(name, value)| format!("{:<width$}  {value}", format!("{name}:")))
        .collect();
    print_line(&lines.join("\n"))
}

/// A table of text cells with a header row, printed with aligned columns.
#[derive(Debug)]
pub(crate) struct Table {
    headers: Vec<&'static str>,
    rows: Vec<Vec<String>>,
}

impl Table {
    pub(crate) fn new(headers: &[&'static str]) -> Table {
        Table {
            headers: headers.to_vec(),
            rows: Vec::new(),
        }
    }

    pub(crate) fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells);
    }

    /// The table as text: columns two spaces apart, a dashed rule under the headers, no
    /// trailing spaces.
    pub(crate) fn render(&self) -> String {
        let columns = self.headers.len();
        let mut widths: Vec<usize> = self.headers.iter().map(|h| h.chars().count()).collect();
        for row in &self.rows {
            for (index, cell) in row.iter().enumerate().take(columns) {
                widths[index] = widths[index].max(single_line(cell).chars().count());
            }
        }
        let format_row = |cells: Vec<String>| {
            let padded: Vec<String> = cells
                .iter()
                .enumerate()
                .map(|(index, cell)| format!("{:<width$}", cell, width = widths[index]))
                .collect();
            padded.join("  ").trim_end().to_owned()
        };
        let mut lines = vec![format_row(
            self.headers
                .iter()
                .map(|header| (*header).to_owned())
                .collect(),
        )];
        lines.push(format_row(
            widths.iter().map(|width| "-".repeat(*width)).collect(),
        ));
        for row in &self.rows {
            let mut cells: Vec<String> = row.iter().map(|cell| single_line(cell)).collect();
            cells.resize(columns, String::new());
            lines.push(format_row(cells));
        }
        lines.join("\n")
    }

    pub(crate) fn print(&self) -> anyhow::Result<()> {
        print_line(&self.render())
    }
}

/// A cell's first line, so a multi-line value (release notes) cannot break the table.
fn single_line(text: &str) -> String {
    let mut lines = text.lines();
    let first = lines.next().unwrap_or_default();
    if lines.next().is_some() {
        format!("{first} …")
    } else {
        first.to_owned()
    }
}

/// A byte count for people: `1.5 MiB`.
pub(crate) fn human_bytes(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_align_columns_and_keep_one_line_per_row() {
        let mut table = Table::new(&["Id", "Name"]);
        table.row(vec!["Environments-1".to_owned(), "Development".to_owned()]);
        table.row(vec!["Environments-10".to_owned(), "Two\nlines".to_owned()]);
        assert_eq!(
            table.render(),
            "Id               Name\n\
             ---------------  -----------\n\
             Environments-1   Development\n\
             Environments-10  Two …"
        );
    }

    #[test]
    fn byte_counts_read_well() {
        assert_eq!(human_bytes(12), "12 B");
        assert_eq!(human_bytes(1536), "1.5 KiB");
        assert_eq!(human_bytes(5 * 1024 * 1024), "5.0 MiB");
    }
}

//! Elastic tabstops exactly like Go's `text/tabwriter` as docker/cli configures it for tables
//! (`NewWriter(out, 10, 1, 3, ' ', 0)`: min width 10, tab width 1, padding 3, space padding, no
//! flags), including docker/cli's fork that measures cells in terminal columns (East Asian wide
//! characters count 2) rather than runes.
//!
//! Semantics kept from Go: cells are *terminated* by `\t`; the text after the last tab of a line
//! is not part of a column and is never padded; a column block is a run of consecutive lines that
//! have a cell in that column; a line without any tab ends all blocks.

/// Tabwriter settings (Go's `Init` parameters, with padchar fixed to a space and no flags).
#[derive(Debug, Clone, Copy)]
pub struct TabWriter {
    /// Minimal cell width including padding.
    pub min_width: usize,
    /// Padding added to the widest cell of a column.
    pub padding: usize,
}

/// docker/cli's table settings.
pub const DOCKER_TABLE: TabWriter = TabWriter { min_width: 10, padding: 3 };

#[derive(Debug, Clone)]
struct Cell {
    text: String,
    width: usize,
}

impl TabWriter {
    /// Aligns `input` (complete text; a trailing partial line is kept as is).
    pub fn format(&self, input: &str) -> String {
        let mut out = String::with_capacity(input.len() + input.len() / 2);
        // Lines of cells; the last cell of each line is the unterminated remainder.
        let mut block: Vec<Vec<Cell>> = Vec::new();
        let mut rest = input;
        loop {
            let (line, terminated) = match rest.find('\n') {
                Some(i) => {
                    let l = &rest[..i];
                    rest = &rest[i + 1..];
                    (l, true)
                }
                None => {
                    let l = rest;
                    rest = "";
                    (l, false)
                }
            };
            if !terminated && line.is_empty() {
                break;
            }
            let cells: Vec<Cell> =
                line.split('\t').map(|t| Cell { text: t.to_string(), width: display_width(t) }).collect();
            let ncells = cells.len();
            block.push(cells);
            if !terminated {
                // Partial last line: flushed without newline.
                self.flush_block(&block, &mut out, false);
                block.clear();
                break;
            }
            if ncells == 1 {
                // Go flushes when a line has a single cell: it cannot affect later columns.
                self.flush_block(&block, &mut out, true);
                block.clear();
            }
            if rest.is_empty() {
                break;
            }
        }
        if !block.is_empty() {
            self.flush_block(&block, &mut out, true);
        }
        out
    }

    fn flush_block(&self, lines: &[Vec<Cell>], out: &mut String, last_newline: bool) {
        let mut widths: Vec<usize> = Vec::new();
        self.format_range(lines, 0, lines.len(), &mut widths, out, last_newline);
    }

    // Go's recursive `format`: computes column widths block by block.
    fn format_range(
        &self,
        lines: &[Vec<Cell>],
        mut line0: usize,
        line1: usize,
        widths: &mut Vec<usize>,
        out: &mut String,
        last_newline: bool,
    ) {
        let column = widths.len();
        let mut this = line0;
        while this < line1 {
            let len = lines.get(this).map_or(0, Vec::len);
            if column + 1 >= len {
                this += 1;
                continue;
            }
            // This line has a cell in `column`: print the lines before it with current widths.
            self.write_lines(lines, line0, this, widths, out, last_newline, line1);
            line0 = this;
            let mut width = self.min_width;
            while this < line1 {
                let Some(line) = lines.get(this) else { break };
                if column + 1 >= line.len() {
                    break;
                }
                if let Some(c) = line.get(column) {
                    width = width.max(c.width + self.padding);
                }
                this += 1;
            }
            widths.push(width);
            self.format_range(lines, line0, this, widths, out, last_newline);
            widths.pop();
            line0 = this;
        }
        self.write_lines(lines, line0, line1, widths, out, last_newline, line1);
    }

    #[allow(clippy::too_many_arguments)]
    fn write_lines(
        &self,
        lines: &[Vec<Cell>],
        line0: usize,
        line1: usize,
        widths: &[usize],
        out: &mut String,
        last_newline: bool,
        total: usize,
    ) {
        for i in line0..line1 {
            let Some(line) = lines.get(i) else { continue };
            let n = line.len();
            for (j, c) in line.iter().enumerate() {
                out.push_str(&c.text);
                // Only tab-terminated cells (all but the last) are padded.
                if j + 1 < n
                    && let Some(w) = widths.get(j)
                {
                    for _ in c.width..*w {
                        out.push(' ');
                    }
                }
            }
            if i + 1 < total || last_newline {
                out.push('\n');
            }
        }
    }
}

/// Terminal columns taken by `s` (go-runewidth's rules, simplified: combining marks and
/// control characters are 0, East Asian wide and fullwidth characters 2, the rest 1).
pub fn display_width(s: &str) -> usize {
    s.chars().map(char_width).sum()
}

fn char_width(c: char) -> usize {
    let cp = c as u32;
    if cp < 0x20 || (0x7f..0xa0).contains(&cp) {
        return 0;
    }
    if (0x0300..=0x036f).contains(&cp)
        || (0x1ab0..=0x1aff).contains(&cp)
        || (0x1dc0..=0x1dff).contains(&cp)
        || (0x20d0..=0x20ff).contains(&cp)
        || (0xfe20..=0xfe2f).contains(&cp)
        || cp == 0x200b
        || cp == 0x200d
    {
        return 0;
    }
    let wide = (0x1100..=0x115f).contains(&cp)
        || (0x2e80..=0x303e).contains(&cp)
        || (0x3041..=0x33ff).contains(&cp)
        || (0x3400..=0x4dbf).contains(&cp)
        || (0x4e00..=0x9fff).contains(&cp)
        || (0xa000..=0xa4cf).contains(&cp)
        || (0xac00..=0xd7a3).contains(&cp)
        || (0xf900..=0xfaff).contains(&cp)
        || (0xfe30..=0xfe4f).contains(&cp)
        || (0xff00..=0xff60).contains(&cp)
        || (0xffe0..=0xffe6).contains(&cp)
        || (0x1f300..=0x1f64f).contains(&cp)
        || (0x1f900..=0x1f9ff).contains(&cp)
        || (0x20000..=0x3fffd).contains(&cp);
    if wide { 2 } else { 1 }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn docker_table_alignment() {
        let input = "REPOSITORY\tTAG\tIMAGE ID\tCREATED\tSIZE\n\
                     nginx\tlatest\tabc123def456\t2 days ago\t187MB\n\
                     <none>\t<none>\t0123456789ab\t3 weeks ago\t5.58kB\n";
        let want = "REPOSITORY   TAG       IMAGE ID       CREATED       SIZE\n\
                    nginx        latest    abc123def456   2 days ago    187MB\n\
                    <none>       <none>    0123456789ab   3 weeks ago   5.58kB\n";
        assert_eq!(DOCKER_TABLE.format(input), want);
    }

    #[test]
    fn min_width_and_trailing_cells() {
        // Short columns are padded to min width 10; the trailing cell is never padded.
        assert_eq!(DOCKER_TABLE.format("A\tB\n1\t2\n"), "A         B\n1         2\n");
        // A trailing tab makes the last cell part of a column (padded).
        assert_eq!(DOCKER_TABLE.format("ID\t\nx\t\n"), "ID        \nx         \n");
        // No tabs at all: passthrough.
        assert_eq!(DOCKER_TABLE.format("a\nbb\n"), "a\nbb\n");
        // Partial last line without newline.
        assert_eq!(DOCKER_TABLE.format("a\tb"), "a         b");
    }

    #[test]
    fn blocks_end_at_lines_without_cells() {
        let input = "a\tb\nlonger-than-ten\tc\nplain\nx\ty\n";
        let want = "a                 b\nlonger-than-ten   c\nplain\nx         y\n";
        assert_eq!(DOCKER_TABLE.format(input), want);
    }

    #[test]
    fn ragged_columns_like_go() {
        // Go's documented example: b and c are distinct columns (not contiguous).
        let input = "aaaa\tbbb\td\naa\tb\tdd\na\t\naa\tcccc\teee\n";
        let tw = TabWriter { min_width: 0, padding: 1 };
        let want = "aaaa bbb d\naa   b   dd\na    \naa   cccc eee\n";
        assert_eq!(tw.format(input), want);
    }

    #[test]
    fn wide_characters_count_double() {
        assert_eq!(display_width("日本"), 4);
        assert_eq!(display_width("e\u{301}"), 1);
        let out = DOCKER_TABLE.format("日本語の名前のイメージ\tx\nab\ty\n");
        assert_eq!(out, "日本語の名前のイメージ   x\nab                       y\n");
    }
}

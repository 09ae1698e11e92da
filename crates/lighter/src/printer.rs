//! Printing helpers shared by the verbs: docker's human sizes and durations, table alignment, and
//! standard output that survives a reader going away.

/// Writes to standard output (through [`out!`] and [`outln!`]). A reader that closed the pipe ends
/// the command as SIGPIPE would end another tool (exit 141, nothing printed, this process's
/// temporary files and mounts removed); any other write error ends it with a message.
pub fn out(args: std::fmt::Arguments<'_>) {
    use std::io::Write;
    let mut stdout = std::io::stdout().lock();
    if let Err(e) = stdout.write_fmt(args) {
        lighter_store::session::close_all();
        if e.kind() == std::io::ErrorKind::BrokenPipe {
            std::process::exit(141);
        }
        eprintln!("lighter: writing standard output: {e}");
        std::process::exit(1);
    }
}

/// docker's `units.HumanSizeWithPrecision(size, 3)`: decimal units, three significant digits.
pub fn human_size(bytes: u64) -> String {
    const UNITS: [&str; 9] = ["B", "kB", "MB", "GB", "TB", "PB", "EB", "ZB", "YB"];
    let mut size = bytes as f64;
    let mut i = 0;
    while size >= 1000.0 && i < UNITS.len() - 1 {
        size /= 1000.0;
        i += 1;
    }
    format!("{}{}", go_g3(size), UNITS[i])
}

/// Go's `%.3g` for the values sizes take (0 <= v < 1000).
fn go_g3(v: f64) -> String {
    if v == 0.0 {
        return "0".into();
    }
    let digits_before = if v >= 1.0 {
        (v.log10().floor() as i32) + 1
    } else {
        0
    };
    let decimals = (3 - digits_before).max(0) as usize;
    let s = format!("{v:.decimals$}");
    let s = if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    };
    if s == "1000" {
        return "1e+03".into();
    }
    s
}

/// docker's `units.HumanDuration` + " ago".
pub fn human_ago(created_unix: Option<i64>) -> String {
    let Some(t) = created_unix else {
        return "N/A".into();
    };
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    let secs = (now - t).max(0);
    let s = if secs < 1 {
        "Less than a second".to_string()
    } else if secs == 1 {
        "1 second".to_string()
    } else if secs < 60 {
        format!("{secs} seconds")
    } else if secs / 60 == 1 {
        "About a minute".to_string()
    } else if secs / 60 < 60 {
        format!("{} minutes", secs / 60)
    } else {
        let hours = ((secs as f64) / 3600.0).round() as i64;
        if hours == 1 {
            "About an hour".to_string()
        } else if hours < 48 {
            format!("{hours} hours")
        } else if hours < 24 * 7 * 2 {
            format!("{} days", hours / 24)
        } else if hours < 24 * 30 * 2 {
            format!("{} weeks", hours / 24 / 7)
        } else if hours < 24 * 365 * 2 {
            format!("{} months", hours / 24 / 30)
        } else {
            format!("{} years", secs / 3600 / 24 / 365)
        }
    };
    format!("{s} ago")
}

/// Left-aligned columns separated by at least three spaces, as docker's tabwriter prints them.
pub fn table(rows: &[Vec<String>]) -> String {
    let cols = rows.iter().map(|r| r.len()).max().unwrap_or(0);
    let mut widths = vec![0; cols];
    for r in rows {
        for (i, c) in r.iter().enumerate() {
            widths[i] = widths[i].max(c.chars().count());
        }
    }
    let mut out = String::new();
    for r in rows {
        let mut line = String::new();
        for (i, c) in r.iter().enumerate() {
            if i + 1 == r.len() {
                line.push_str(c);
            } else {
                line.push_str(&format!("{c:<w$}   ", w = widths[i]));
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_like_docker() {
        assert_eq!(human_size(0), "0B");
        assert_eq!(human_size(999), "999B");
        assert_eq!(human_size(1_980_000), "1.98MB");
        assert_eq!(human_size(117_300_000), "117MB");
        assert_eq!(human_size(7_234), "7.23kB");
        assert_eq!(human_size(1_500_000_000), "1.5GB");
    }
}

/// Docker's `--format` templates, for the fields a command offers: `{{.Field}}` is replaced by the
/// field's value and `\t` by a tab. A `table ` prefix prints a header (each field's column name) and
/// aligns the columns as the default table does. Returns None for a template naming an unknown field,
/// with that field, so the caller can say which.
pub fn render_template(
    tpl: &str,
    headers: &[(&str, &str)],
    rows: &[Vec<(&str, String)>],
) -> Result<String, String> {
    let (is_table, body) = match tpl.strip_prefix("table") {
        Some(rest) => (true, rest.trim_start()),
        None => (false, tpl),
    };
    let body = body.replace("\\t", "\t");
    let fill = |value_of: &dyn Fn(&str) -> Option<String>| -> Result<String, String> {
        let mut out = String::new();
        let mut rest = body.as_str();
        while let Some(start) = rest.find("{{") {
            out.push_str(&rest[..start]);
            let end = rest[start..]
                .find("}}")
                .ok_or_else(|| format!("unclosed {{{{ in {tpl:?}"))?
                + start;
            let field = rest[start + 2..end].trim();
            let name = field
                .strip_prefix('.')
                .ok_or_else(|| format!("unsupported template action {{{{{field}}}}}"))?;
            out.push_str(&value_of(name).ok_or_else(|| {
                format!(
                    "no field {name:?} (fields: {})",
                    headers.iter().map(|h| h.0).collect::<Vec<_>>().join(", ")
                )
            })?);
            rest = &rest[end + 2..];
        }
        out.push_str(rest);
        Ok(out)
    };
    let mut lines = Vec::new();
    if is_table {
        lines.push(fill(&|n| {
            headers.iter().find(|h| h.0 == n).map(|h| h.1.to_string())
        })?);
    }
    for r in rows {
        lines.push(fill(&|n| {
            r.iter().find(|(k, _)| *k == n).map(|(_, v)| v.clone())
        })?);
    }
    if is_table {
        let cells: Vec<Vec<String>> = lines
            .iter()
            .map(|l| l.split('\t').map(str::to_string).collect())
            .collect();
        return Ok(table(&cells));
    }
    Ok(lines.iter().map(|l| format!("{l}\n")).collect())
}

#[cfg(test)]
mod template_tests {
    use super::*;

    #[test]
    fn templates_fill_fields_and_tables_align() {
        let headers = [("ID", "IMAGE"), ("Size", "SIZE")];
        let rows = vec![
            vec![("ID", "abc".to_string()), ("Size", "5MB".to_string())],
            vec![("ID", "<missing>".to_string()), ("Size", "0B".to_string())],
        ];
        assert_eq!(
            render_template("{{.ID}}: {{ .Size }}", &headers, &rows).unwrap(),
            "abc: 5MB\n<missing>: 0B\n"
        );
        let t = render_template("table {{.ID}}\\t{{.Size}}", &headers, &rows).unwrap();
        assert_eq!(
            t.lines()
                .next()
                .unwrap()
                .split_whitespace()
                .collect::<Vec<_>>(),
            ["IMAGE", "SIZE"]
        );
        assert_eq!(t.lines().count(), 3);
        assert!(render_template("{{.Nope}}", &headers, &rows)
            .unwrap_err()
            .contains("no field \"Nope\""));
    }
}

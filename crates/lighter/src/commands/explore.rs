//! `lighter analyze -i`: an interactive explorer like dive's. Left, the layers (size, what made them);
//! right, the files of the selected layer with `+` added, `~` modified, `-` removed, or (`a`) the whole
//! image as of that layer with that layer's changes marked. `/` filters by path, `s` sorts by size,
//! Tab switches panes, arrows/j/k/PgUp/PgDn move, `q` quits.
//!
//! The state ([`App`]) is separate from the terminal: tests drive it with key codes and render it
//! into ratatui's in-memory backend.

use lighter_image::analysis::{Analysis, Change, ChangeKind};
use ratatui::crossterm::event::{self, Event, KeyCode, KeyEventKind, KeyModifiers};
use ratatui::layout::{Constraint, Direction, Layout};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, List, ListItem, ListState, Paragraph};
use ratatui::Frame;
use std::collections::BTreeMap;

use crate::printer::human_size;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Focus {
    Layers,
    Files,
}

/// One line of the files pane.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    pub mark: char,
    pub path: String,
    pub size: u64,
    pub is_dir: bool,
}

pub struct App {
    pub analysis: Analysis,
    pub changes: Vec<Vec<Change>>,
    pub layer: usize,
    pub focus: Focus,
    pub file: usize,
    pub aggregated: bool,
    pub by_size: bool,
    pub filter: String,
    pub filtering: bool,
}

impl App {
    pub fn new(analysis: Analysis, changes: Vec<Vec<Change>>) -> App {
        App {
            analysis,
            changes,
            layer: 0,
            focus: Focus::Layers,
            file: 0,
            aggregated: false,
            by_size: false,
            filter: String::new(),
            filtering: false,
        }
    }

    /// The files pane for the current layer, view mode, sort and filter.
    pub fn rows(&self) -> Vec<Row> {
        let mark = |k: ChangeKind| match k {
            ChangeKind::Added => '+',
            ChangeKind::Modified => '~',
            ChangeKind::Removed => '-',
        };
        let empty = Vec::new();
        let this = self.changes.get(self.layer).unwrap_or(&empty);
        let mut rows: Vec<Row> = if self.aggregated {
            // The image as of this layer, this layer's changes marked (removed paths shown too).
            let mut live: BTreeMap<&str, (u64, bool)> = BTreeMap::new();
            for layer in self.changes.iter().take(self.layer + 1) {
                for c in layer {
                    match c.kind {
                        ChangeKind::Removed => {
                            live.remove(c.path.as_str());
                        }
                        _ => {
                            live.insert(&c.path, (c.size, c.is_dir));
                        }
                    }
                }
            }
            let marks: BTreeMap<&str, ChangeKind> =
                this.iter().map(|c| (c.path.as_str(), c.kind)).collect();
            let mut rows: Vec<Row> = live
                .into_iter()
                .map(|(p, (size, is_dir))| Row {
                    mark: marks.get(p).map(|k| mark(*k)).unwrap_or(' '),
                    path: p.to_string(),
                    size,
                    is_dir,
                })
                .collect();
            rows.extend(
                this.iter()
                    .filter(|c| c.kind == ChangeKind::Removed)
                    .map(|c| Row {
                        mark: '-',
                        path: c.path.clone(),
                        size: c.size,
                        is_dir: c.is_dir,
                    }),
            );
            rows.sort_by(|a, b| a.path.cmp(&b.path));
            rows
        } else {
            this.iter()
                .map(|c| Row {
                    mark: mark(c.kind),
                    path: c.path.clone(),
                    size: c.size,
                    is_dir: c.is_dir,
                })
                .collect()
        };
        if !self.filter.is_empty() {
            let f = self.filter.to_lowercase();
            rows.retain(|r| r.path.to_lowercase().contains(&f));
        }
        if self.by_size {
            rows.retain(|r| !r.is_dir);
            rows.sort_by(|a, b| b.size.cmp(&a.size).then(a.path.cmp(&b.path)));
        }
        rows
    }

    /// Handles one key; returns false when the explorer should close.
    pub fn key(&mut self, code: KeyCode) -> bool {
        if self.filtering {
            match code {
                KeyCode::Enter | KeyCode::Esc => self.filtering = false,
                KeyCode::Backspace => {
                    self.filter.pop();
                }
                KeyCode::Char(c) => self.filter.push(c),
                _ => {}
            }
            self.file = 0;
            return true;
        }
        let n_layers = self.analysis.layers.len();
        let n_rows = self.rows().len();
        let step = |cur: usize, delta: isize, len: usize| -> usize {
            if len == 0 {
                0
            } else {
                (cur as isize + delta).clamp(0, len as isize - 1) as usize
            }
        };
        match code {
            KeyCode::Char('q') | KeyCode::Esc => return false,
            KeyCode::Tab => {
                self.focus = if self.focus == Focus::Layers {
                    Focus::Files
                } else {
                    Focus::Layers
                };
            }
            KeyCode::Char('a') => {
                self.aggregated = !self.aggregated;
                self.file = 0;
            }
            KeyCode::Char('s') => {
                self.by_size = !self.by_size;
                self.file = 0;
            }
            KeyCode::Char('/') => {
                self.filtering = true;
                self.filter.clear();
            }
            KeyCode::Up
            | KeyCode::Char('k')
            | KeyCode::Down
            | KeyCode::Char('j')
            | KeyCode::PageUp
            | KeyCode::PageDown => {
                let delta: isize = match code {
                    KeyCode::Up | KeyCode::Char('k') => -1,
                    KeyCode::Down | KeyCode::Char('j') => 1,
                    KeyCode::PageUp => -20,
                    _ => 20,
                };
                match self.focus {
                    Focus::Layers => {
                        self.layer = step(self.layer, delta, n_layers);
                        self.file = 0;
                    }
                    Focus::Files => self.file = step(self.file, delta, n_rows),
                }
            }
            _ => {}
        }
        true
    }

    pub fn draw(&self, f: &mut Frame) {
        let outer = Layout::default()
            .direction(Direction::Vertical)
            .constraints([
                Constraint::Length(3),
                Constraint::Min(3),
                Constraint::Length(1),
            ])
            .split(f.area());
        let a = &self.analysis;
        let head = format!(
            " {}  size {}  compressed {}  efficiency {:.2} %  wasted {}  reclaimable {}",
            a.image,
            human_size(a.size),
            human_size(a.compressed_size),
            a.efficiency * 100.0,
            human_size(a.wasted_bytes),
            human_size(a.reclaimable_bytes)
        );
        f.render_widget(
            Paragraph::new(head).block(
                Block::default()
                    .borders(Borders::ALL)
                    .title(" lighter analyze "),
            ),
            outer[0],
        );
        let panes = Layout::default()
            .direction(Direction::Horizontal)
            .constraints([Constraint::Percentage(40), Constraint::Percentage(60)])
            .split(outer[1]);
        let focused = |f: Focus| {
            if self.focus == f {
                Style::default().fg(Color::Yellow)
            } else {
                Style::default()
            }
        };
        let items: Vec<ListItem> = a
            .layers
            .iter()
            .map(|l| {
                let by: String = l.created_by.chars().take(80).collect();
                ListItem::new(format!(
                    "{:>3} {:>9} {:<5} {}",
                    l.index,
                    human_size(l.size),
                    l.origin,
                    by
                ))
            })
            .collect();
        let mut ls = ListState::default();
        ls.select(Some(self.layer));
        let highlight = Style::default().add_modifier(Modifier::REVERSED);
        f.render_stateful_widget(
            List::new(items).highlight_style(highlight).block(
                Block::default()
                    .borders(Borders::ALL)
                    .border_style(focused(Focus::Layers))
                    .title(" Layers "),
            ),
            panes[0],
            &mut ls,
        );
        let rows = self.rows();
        let listed: std::collections::HashSet<&str> =
            rows.iter().map(|r| r.path.as_str()).collect();
        let items: Vec<ListItem> = rows
            .iter()
            .map(|r| {
                let color = match r.mark {
                    '+' => Color::Green,
                    '~' => Color::Yellow,
                    '-' => Color::Red,
                    _ => Color::Reset,
                };
                // The tree (indented names) where every parent is listed: the whole image as of the
                // layer; a layer's own changes and the size-sorted list show full paths.
                let name = if self.by_size || !self.aggregated {
                    format!("/{}{}", r.path, if r.is_dir { "/" } else { "" })
                } else {
                    // A name under its listed parent; the whole relative path when the layer has no
                    // entry for the parent.
                    let depth = r.path.matches('/').count();
                    let (parent, base) = r.path.rsplit_once('/').unwrap_or(("", &r.path));
                    let shown = if parent.is_empty() || listed.contains(parent) {
                        base
                    } else {
                        r.path.as_str()
                    };
                    format!(
                        "{}{}{}",
                        "  ".repeat(depth),
                        shown,
                        if r.is_dir { "/" } else { "" }
                    )
                };
                let size = if r.is_dir {
                    String::new()
                } else {
                    human_size(r.size)
                };
                ListItem::new(Line::from(vec![
                    Span::styled(format!("{} ", r.mark), Style::default().fg(color)),
                    Span::raw(format!("{size:>9} ")),
                    Span::styled(name, Style::default().fg(color)),
                ]))
            })
            .collect();
        let title = format!(
            " Layer {} {}{}{} ({} paths) ",
            self.layer,
            if self.aggregated {
                "image so far"
            } else {
                "changes"
            },
            if self.by_size { ", by size" } else { "" },
            if self.filter.is_empty() {
                String::new()
            } else {
                format!(", filter {:?}", self.filter)
            },
            rows.len()
        );
        let mut fs = ListState::default();
        fs.select((!rows.is_empty()).then_some(self.file));
        f.render_stateful_widget(
            List::new(items).highlight_style(highlight).block(
                Block::default()
                    .borders(Borders::ALL)
                    .border_style(focused(Focus::Files))
                    .title(title),
            ),
            panes[1],
            &mut fs,
        );
        let help = if self.filtering {
            format!(" filter: {}_   (Enter to keep, Esc to close)", self.filter)
        } else {
            " Tab pane  ↑↓/jk move  PgUp/PgDn  a image/changes  s sort by size  / filter  q quit"
                .to_string()
        };
        f.render_widget(Paragraph::new(help), outer[2]);
    }
}

/// Runs the explorer on the terminal until `q`.
pub fn run(app: &mut App) -> anyhow::Result<()> {
    let mut term = ratatui::init();
    let result = (|| -> anyhow::Result<()> {
        loop {
            term.draw(|f| app.draw(f))?;
            if let Event::Key(k) = event::read()? {
                if k.kind != KeyEventKind::Press {
                    continue;
                }
                if k.modifiers.contains(KeyModifiers::CONTROL) && k.code == KeyCode::Char('c') {
                    return Ok(());
                }
                if !app.key(k.code) {
                    return Ok(());
                }
            }
        }
    })();
    ratatui::restore();
    result
}

#[cfg(test)]
mod tests {
    use super::*;
    use lighter_image::analysis::LayerReport;
    use ratatui::backend::TestBackend;
    use ratatui::Terminal;

    fn change(path: &str, size: u64, kind: ChangeKind) -> Change {
        Change {
            path: path.into(),
            size,
            is_dir: path.ends_with("bin") || path == "etc",
            kind,
        }
    }

    fn app() -> App {
        let layers = (0..2)
            .map(|i| LayerReport {
                index: i,
                created_by: format!("step {i}"),
                origin: if i == 0 { "base" } else { "build" }.into(),
                size: 1000,
                ..Default::default()
            })
            .collect();
        let analysis = Analysis {
            image: "t:1".into(),
            layers,
            efficiency: 0.5,
            ..Default::default()
        };
        let changes = vec![
            vec![
                change("etc", 0, ChangeKind::Added),
                change("etc/conf", 10, ChangeKind::Added),
                change("usr/bin", 0, ChangeKind::Added),
                change("usr/bin/tool", 4000, ChangeKind::Added),
            ],
            vec![
                change("etc/conf", 0, ChangeKind::Removed),
                change("usr/bin/new", 7, ChangeKind::Added),
                change("usr/bin/tool", 5000, ChangeKind::Modified),
            ],
        ];
        App::new(analysis, changes)
    }

    fn screen(app: &App) -> String {
        let mut t = Terminal::new(TestBackend::new(110, 16)).unwrap();
        t.draw(|f| app.draw(f)).unwrap();
        let buf = t.backend().buffer().clone();
        (0..buf.area.height)
            .map(|y| {
                (0..buf.area.width)
                    .map(|x| buf[(x, y)].symbol().to_string())
                    .collect::<String>()
            })
            .collect::<Vec<_>>()
            .join("\n")
    }

    #[test]
    fn layers_changes_image_view_filter_and_sort() {
        let mut a = app();
        let marks = |a: &App| {
            a.rows()
                .iter()
                .map(|r| format!("{}{}", r.mark, r.path))
                .collect::<Vec<_>>()
        };
        assert_eq!(
            marks(&a),
            ["+etc", "+etc/conf", "+usr/bin", "+usr/bin/tool"]
        );
        let s = screen(&a);
        assert!(s.contains("Layer 0 changes (4 paths)"), "{s}");
        assert!(s.contains("step 0") && s.contains("step 1"), "{s}");
        // Down on the layers pane selects layer 1: its own changes.
        a.key(KeyCode::Down);
        assert_eq!(marks(&a), ["-etc/conf", "+usr/bin/new", "~usr/bin/tool"]);
        let s = screen(&a);
        assert!(
            s.contains("-        0B /etc/conf") && s.contains("~       5kB /usr/bin/tool"),
            "{s}"
        );
        // `a`: the image as of layer 1, with layer 1's changes marked and the removed file shown.
        a.key(KeyCode::Char('a'));
        assert_eq!(
            marks(&a),
            [
                " etc",
                "-etc/conf",
                " usr/bin",
                "+usr/bin/new",
                "~usr/bin/tool"
            ]
        );
        let s = screen(&a);
        assert!(
            s.contains("Layer 1 image so far (5 paths)")
                && s.contains("  usr/bin/")
                && s.contains("+        7B     new"),
            "{s}"
        );
        // `s`: files only, biggest first.
        a.key(KeyCode::Char('s'));
        assert_eq!(
            a.rows().iter().map(|r| r.path.as_str()).collect::<Vec<_>>(),
            ["usr/bin/tool", "usr/bin/new", "etc/conf"]
        );
        // `/` filter, typed then kept with Enter.
        for c in ['/', 'N', 'e', 'W', '\n'] {
            a.key(if c == '\n' {
                KeyCode::Enter
            } else {
                KeyCode::Char(c)
            });
        }
        assert_eq!(marks(&a), ["+usr/bin/new"]);
        assert!(screen(&a).contains("filter \"NeW\""), "{}", screen(&a));
        // Tab then Down moves in the files pane, clamped to its length; q quits.
        a.key(KeyCode::Tab);
        a.key(KeyCode::Down);
        assert_eq!((a.focus, a.file), (Focus::Files, 0));
        assert!(!a.key(KeyCode::Char('q')));
    }
}

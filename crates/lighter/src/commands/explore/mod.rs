//! `lighter analyze -i`: an interactive explorer like dive's. Left, the layers (size, what made them)
//! and the selected layer's details; right, the file tree of the image as of the selected layer
//! ([`tree`]): collapsible directories with cumulative sizes, each path marked `+` added, `~`
//! modified, `-` removed by that layer (or, `a`, by any layer up to it). Space/Enter folds a
//! directory (←/→ too, `c`/`e` all), `A` `M` `R` `U` toggle added/modified/removed/unchanged paths,
//! `/` searches, `s` sorts by size, Tab switches panes, arrows/j/k/PgUp/PgDn/Home/End move, `q` quits.
//!
//! The state ([`App`]) is separate from the terminal: tests drive it with key codes and render it
//! into ratatui's in-memory backend, and tests/explore.rs drives the binary through a pty.

pub mod tree;

use lighter_image::analysis::{Analysis, Change};
use ratatui::crossterm::event::{self, Event, KeyCode, KeyEventKind, KeyModifiers};
use ratatui::layout::{Constraint, Direction, Layout};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, List, ListItem, ListState, Paragraph, Wrap};
use ratatui::Frame;
use std::cell::Cell;
use std::collections::HashSet;
use tree::{Kind, Tree, TreeRow, View};

use crate::printer::human_size;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Focus {
    Layers,
    Files,
}

pub struct App {
    pub analysis: Analysis,
    pub changes: Vec<Vec<Change>>,
    pub layer: usize,
    pub focus: Focus,
    /// The cursor in the files pane (a row index).
    pub file: usize,
    /// Marks show every layer's changes up to the selected one, not only its own.
    pub aggregated: bool,
    pub by_size: bool,
    pub filter: String,
    pub filtering: bool,
    /// Kinds of path shown.
    pub kinds: HashSet<Kind>,
    /// Folded directories, by path (kept across layers).
    pub collapsed: HashSet<String>,
    tree: Tree,
    /// First row drawn in the files pane.
    offset: Cell<usize>,
}

const ALL: [Kind; 4] = [Kind::Unchanged, Kind::Added, Kind::Modified, Kind::Removed];

impl App {
    pub fn new(analysis: Analysis, changes: Vec<Vec<Change>>) -> App {
        let tree = Tree::build(&changes, 0, false);
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
            kinds: ALL.into_iter().collect(),
            collapsed: HashSet::new(),
            tree,
            offset: Cell::new(0),
        }
    }

    fn rebuild(&mut self) {
        self.tree = Tree::build(&self.changes, self.layer, self.aggregated);
        self.file = 0;
        self.offset.set(0);
    }

    /// The visible rows of the files pane.
    pub fn rows(&self) -> Vec<TreeRow> {
        self.tree.rows(&View {
            kinds: &self.kinds,
            search: &self.filter,
            by_size: self.by_size,
            collapsed: &self.collapsed,
        })
    }

    fn toggle_kind(&mut self, k: Kind) {
        if !self.kinds.remove(&k) {
            self.kinds.insert(k);
        }
        self.file = 0;
    }

    /// Folds (`Some(true)`), unfolds (`Some(false)`) or toggles (`None`) the directory at the cursor.
    fn fold(&mut self, to: Option<bool>) {
        let rows = self.rows();
        let Some(r) = rows.get(self.file) else { return };
        if !r.is_dir {
            // ← on a file goes to its directory.
            if to == Some(true) {
                if let Some((parent, _)) = r.path.rsplit_once('/') {
                    if let Some(i) = rows.iter().position(|x| x.path == parent) {
                        self.file = i;
                    }
                }
            }
            return;
        }
        let fold = to.unwrap_or(!r.collapsed);
        if fold {
            self.collapsed.insert(r.path.clone());
        } else {
            self.collapsed.remove(&r.path);
        }
    }

    /// Handles one key; returns false when the explorer should close.
    pub fn key(&mut self, code: KeyCode) -> bool {
        if self.filtering {
            match code {
                KeyCode::Enter => self.filtering = false,
                KeyCode::Esc => {
                    self.filtering = false;
                    self.filter.clear();
                }
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
                self.rebuild();
            }
            KeyCode::Char('s') => {
                self.by_size = !self.by_size;
                self.file = 0;
            }
            KeyCode::Char('A') => self.toggle_kind(Kind::Added),
            KeyCode::Char('M') => self.toggle_kind(Kind::Modified),
            KeyCode::Char('R') => self.toggle_kind(Kind::Removed),
            KeyCode::Char('U') => self.toggle_kind(Kind::Unchanged),
            KeyCode::Char('c') => {
                self.collapsed = self.tree.dirs().map(str::to_string).collect();
                self.file = 0;
            }
            KeyCode::Char('e') => self.collapsed.clear(),
            KeyCode::Char('/') => {
                self.filtering = true;
                self.filter.clear();
            }
            KeyCode::Char(' ') | KeyCode::Enter if self.focus == Focus::Files => self.fold(None),
            KeyCode::Left | KeyCode::Char('h') if self.focus == Focus::Files => {
                self.fold(Some(true))
            }
            KeyCode::Right | KeyCode::Char('l') if self.focus == Focus::Files => {
                self.fold(Some(false))
            }
            KeyCode::Up
            | KeyCode::Char('k')
            | KeyCode::Down
            | KeyCode::Char('j')
            | KeyCode::PageUp
            | KeyCode::PageDown
            | KeyCode::Home
            | KeyCode::End => {
                let delta: isize = match code {
                    KeyCode::Up | KeyCode::Char('k') => -1,
                    KeyCode::Down | KeyCode::Char('j') => 1,
                    KeyCode::PageUp => -20,
                    KeyCode::PageDown => 20,
                    KeyCode::Home => isize::MIN / 2,
                    _ => isize::MAX / 2,
                };
                match self.focus {
                    Focus::Layers => {
                        let to = step(self.layer, delta, n_layers);
                        if to != self.layer {
                            self.layer = to;
                            self.rebuild();
                        }
                    }
                    Focus::Files => self.file = step(self.file, delta, self.rows().len()),
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
        let left = Layout::default()
            .direction(Direction::Vertical)
            .constraints([Constraint::Percentage(60), Constraint::Percentage(40)])
            .split(panes[0]);
        self.draw_layers(f, left[0]);
        self.draw_details(f, left[1]);
        self.draw_files(f, panes[1]);
        let help = if self.filtering {
            format!(" search: {}_   (Enter to keep, Esc to clear)", self.filter)
        } else {
            " Tab pane  ↑↓ move  Space fold  ←→ fold/unfold  c/e all  a layer/all changes  A M R U kinds  s size  / search  q quit"
                .to_string()
        };
        f.render_widget(Paragraph::new(help), outer[2]);
    }

    fn border(&self, pane: Focus) -> Style {
        if self.focus == pane {
            Style::default().fg(Color::Yellow)
        } else {
            Style::default()
        }
    }

    /// A pane: `items` in a bordered block titled `title`, `selected` highlighted, the border
    /// yellow when `pane` has the focus.
    fn list(
        &self,
        f: &mut Frame,
        area: ratatui::layout::Rect,
        items: Vec<ListItem>,
        pane: Focus,
        title: String,
        selected: Option<usize>,
    ) {
        let mut state = ListState::default();
        state.select(selected);
        f.render_stateful_widget(
            List::new(items)
                .highlight_style(Style::default().add_modifier(Modifier::REVERSED))
                .block(
                    Block::default()
                        .borders(Borders::ALL)
                        .border_style(self.border(pane))
                        .title(title),
                ),
            area,
            &mut state,
        );
    }

    fn draw_layers(&self, f: &mut Frame, area: ratatui::layout::Rect) {
        let items: Vec<ListItem> = self
            .analysis
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
        self.list(
            f,
            area,
            items,
            Focus::Layers,
            " Layers ".into(),
            Some(self.layer),
        );
    }

    fn draw_details(&self, f: &mut Frame, area: ratatui::layout::Rect) {
        let Some(l) = self.analysis.layers.get(self.layer) else {
            return;
        };
        let text = format!(
            "Digest: {}\nSize: {} ({} compressed)\nAdded {} ({}), modified {} ({}), removed {} ({})\nCommand: {}",
            l.diff_id,
            human_size(l.size),
            human_size(l.compressed_size),
            l.added,
            human_size(l.added_bytes),
            l.modified,
            human_size(l.modified_bytes),
            l.removed,
            human_size(l.removed_bytes),
            l.created_by
        );
        f.render_widget(
            Paragraph::new(text).wrap(Wrap { trim: false }).block(
                Block::default()
                    .borders(Borders::ALL)
                    .title(format!(" Layer {} details ", l.index)),
            ),
            area,
        );
    }

    fn draw_files(&self, f: &mut Frame, area: ratatui::layout::Rect) {
        let rows = self.rows();
        // Only the rows that fit are made into list items: a 20,000-file layer costs one pass.
        let height = area.height.saturating_sub(2).max(1) as usize;
        let cursor = self.file.min(rows.len().saturating_sub(1));
        let mut offset = self.offset.get().min(cursor);
        if cursor >= offset + height {
            offset = cursor + 1 - height;
        }
        self.offset.set(offset);
        let items: Vec<ListItem> = rows
            .iter()
            .skip(offset)
            .take(height)
            .map(|r| {
                let color = match r.kind {
                    Kind::Added => Color::Green,
                    Kind::Modified => Color::Yellow,
                    Kind::Removed => Color::Red,
                    Kind::Unchanged => Color::Reset,
                };
                let fold = match (r.is_dir, r.collapsed) {
                    (false, _) => "  ",
                    (true, true) => "▸ ",
                    (true, false) => "▾ ",
                };
                let name = format!(
                    "{}{fold}{}{}",
                    "  ".repeat(r.depth),
                    r.name,
                    if r.is_dir { "/" } else { "" }
                );
                ListItem::new(Line::from(vec![
                    Span::styled(format!("{} ", r.kind.mark()), Style::default().fg(color)),
                    Span::raw(format!("{:>9} ", human_size(r.size))),
                    Span::styled(name, Style::default().fg(color)),
                ]))
            })
            .collect();
        let kinds: String = [
            (Kind::Added, 'A'),
            (Kind::Modified, 'M'),
            (Kind::Removed, 'R'),
            (Kind::Unchanged, 'U'),
        ]
        .iter()
        .map(|(k, c)| if self.kinds.contains(k) { *c } else { '-' })
        .collect();
        let title = format!(
            " Layer {}: {} [{kinds}]{}{} ({} rows) ",
            self.layer,
            if self.aggregated {
                "all changes up to here"
            } else {
                "this layer's changes"
            },
            if self.by_size { ", by size" } else { "" },
            if self.filter.is_empty() {
                String::new()
            } else {
                format!(", search {:?}", self.filter)
            },
            rows.len()
        );
        let selected = (!rows.is_empty()).then_some(cursor - offset);
        self.list(f, area, items, Focus::Files, title, selected);
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
    use lighter_image::analysis::{ChangeKind, LayerReport};
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
    fn tree_modes_filters_folds_and_search() {
        let mut a = app();
        let lines = |a: &App| {
            a.rows()
                .iter()
                .map(|r| format!("{}{}{}", "  ".repeat(r.depth), r.kind.mark(), r.name))
                .collect::<Vec<_>>()
        };
        // Layer 0: everything it added, as a tree with cumulative sizes.
        assert_eq!(
            lines(&a),
            ["+etc", "  +conf", " usr", "  +bin", "    +tool"]
        );
        let s = screen(&a);
        assert!(
            s.contains("Layer 0: this layer's changes [AMRU] (5 rows)"),
            "{s}"
        );
        assert!(s.contains("step 0") && s.contains("step 1"), "{s}");
        assert!(s.contains("  4kB ▾ usr/"), "cumulative size of usr: {s}");
        // Down on the layers pane selects layer 1: the image as of it, its changes marked.
        a.key(KeyCode::Down);
        assert_eq!(
            lines(&a),
            [" etc", "  -conf", " usr", "   bin", "    +new", "    ~tool"]
        );
        let s = screen(&a);
        assert!(
            s.contains("5.01kB ▾ usr/") && s.contains("Layer 1 details"),
            "{s}"
        );
        // Only removed paths; back to all.
        a.key(KeyCode::Char('A'));
        a.key(KeyCode::Char('M'));
        a.key(KeyCode::Char('U'));
        assert_eq!(lines(&a), [" etc", "  -conf"]);
        assert!(screen(&a).contains("[--R-]"), "{}", screen(&a));
        for k in ['A', 'M', 'U'] {
            a.key(KeyCode::Char(k));
        }
        // `a`: every change up to layer 1 marked (etc was added by layer 0).
        a.key(KeyCode::Char('a'));
        assert_eq!(lines(&a)[0], "+etc");
        assert!(screen(&a).contains("all changes up to here"));
        a.key(KeyCode::Char('a'));
        // Fold usr with Space in the files pane; unfold with Right; collapse all with `c`.
        a.key(KeyCode::Tab);
        a.key(KeyCode::Down);
        a.key(KeyCode::Down);
        a.key(KeyCode::Char(' '));
        assert_eq!(lines(&a), [" etc", "  -conf", " usr"]);
        assert!(screen(&a).contains("▸ usr/"), "{}", screen(&a));
        a.key(KeyCode::Right);
        assert_eq!(lines(&a).len(), 6);
        a.key(KeyCode::Char('c'));
        assert_eq!(lines(&a), [" etc", " usr"]);
        a.key(KeyCode::Char('e'));
        // `s`: biggest first at every level; `/` search, kept with Enter.
        a.key(KeyCode::Char('s'));
        assert_eq!(lines(&a)[0], " usr");
        for c in ['/', 'N', 'e', 'W', '\n'] {
            a.key(if c == '\n' {
                KeyCode::Enter
            } else {
                KeyCode::Char(c)
            });
        }
        assert_eq!(lines(&a), [" usr", "   bin", "    +new"]);
        assert!(screen(&a).contains("search \"NeW\""), "{}", screen(&a));
        assert!(!a.key(KeyCode::Char('q')));
    }

    #[test]
    fn a_20000_file_layer_draws_only_what_fits() {
        let files: Vec<Change> = (0..20_000)
            .map(|i| Change {
                path: format!("d{}/f{i}", i % 100),
                size: i,
                is_dir: false,
                kind: ChangeKind::Added,
            })
            .collect();
        let analysis = Analysis {
            image: "big:1".into(),
            layers: vec![LayerReport::default()],
            ..Default::default()
        };
        let mut a = App::new(analysis, vec![files]);
        a.key(KeyCode::Tab);
        for _ in 0..30 {
            a.key(KeyCode::PageDown);
        }
        assert_eq!(a.file, 600);
        let s = screen(&a);
        assert!(s.contains("(20100 rows)"), "{s}");
        a.key(KeyCode::End);
        assert_eq!(a.file, 20_099);
        assert!(screen(&a).contains("f9999"), "{}", screen(&a));
    }
}

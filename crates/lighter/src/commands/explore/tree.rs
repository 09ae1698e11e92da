//! The explorer's file tree, as dive shows it: the image as of the selected layer, directories with
//! their cumulative sizes, each path marked by what the selected layer (or, aggregated, every layer
//! up to it) did to it, removed paths shown where they were. Built once per layer and mode; the
//! visible rows (collapsed directories, kind filters, search, sort) are computed from it in one pass,
//! so a key costs O(nodes) whatever the layer's size.

use lighter_image::analysis::{Change, ChangeKind};
use std::collections::{BTreeMap, HashMap, HashSet};

/// What happened to a path.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    Unchanged,
    Added,
    Modified,
    Removed,
}

impl Kind {
    pub fn mark(self) -> char {
        match self {
            Kind::Unchanged => ' ',
            Kind::Added => '+',
            Kind::Modified => '~',
            Kind::Removed => '-',
        }
    }
}

impl From<ChangeKind> for Kind {
    fn from(k: ChangeKind) -> Kind {
        match k {
            ChangeKind::Added => Kind::Added,
            ChangeKind::Modified => Kind::Modified,
            ChangeKind::Removed => Kind::Removed,
        }
    }
}

#[derive(Debug, Clone)]
pub struct Node {
    pub name: String,
    pub path: String,
    pub is_dir: bool,
    /// A file's size; a directory's cumulative size (what is left in it, removed paths not counted).
    pub size: u64,
    pub kind: Kind,
    pub children: Vec<usize>,
    pub depth: usize,
}

/// One tree; node 0 is the root.
#[derive(Debug, Clone)]
pub struct Tree {
    pub nodes: Vec<Node>,
}

/// One visible line of the tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TreeRow {
    pub node: usize,
    pub depth: usize,
    pub name: String,
    pub path: String,
    pub size: u64,
    pub is_dir: bool,
    pub kind: Kind,
    pub collapsed: bool,
}

/// What the rows show.
#[derive(Debug, Clone)]
pub struct View<'a> {
    /// Kinds shown (dive's added / removed / modified / unmodified toggles).
    pub kinds: &'a HashSet<Kind>,
    /// Case-insensitive path fragment; empty shows all.
    pub search: &'a str,
    pub by_size: bool,
    pub collapsed: &'a HashSet<String>,
}

impl Tree {
    /// The image as of layer `upto`. Marks are that layer's changes, or with `aggregated` the last
    /// change every layer up to it made.
    pub fn build(changes: &[Vec<Change>], upto: usize, aggregated: bool) -> Tree {
        let mut live: BTreeMap<&str, (u64, bool)> = BTreeMap::new();
        let mut marks: HashMap<&str, Kind> = HashMap::new();
        let mut gone: BTreeMap<&str, (u64, bool)> = BTreeMap::new();
        for (i, layer) in changes.iter().enumerate().take(upto + 1) {
            let marked = aggregated || i == upto;
            for c in layer {
                if c.kind == ChangeKind::Removed {
                    live.remove(c.path.as_str());
                    if marked {
                        gone.insert(&c.path, (c.size, c.is_dir));
                    }
                } else {
                    live.insert(&c.path, (c.size, c.is_dir));
                    gone.remove(c.path.as_str());
                }
                if marked {
                    marks.insert(&c.path, c.kind.into());
                }
            }
        }
        let mut t = Tree {
            nodes: vec![Node {
                name: String::new(),
                path: String::new(),
                is_dir: true,
                size: 0,
                kind: Kind::Unchanged,
                children: vec![],
                depth: 0,
            }],
        };
        let mut index: HashMap<String, usize> = HashMap::new();
        let mut all: Vec<(&str, u64, bool, bool)> = live
            .iter()
            .map(|(p, (s, d))| (*p, *s, *d, false))
            .chain(gone.iter().map(|(p, (s, d))| (*p, *s, *d, true)))
            .collect();
        all.sort_by(|a, b| a.0.cmp(b.0));
        for (path, size, is_dir, removed) in all {
            let kind = if removed {
                Kind::Removed
            } else {
                marks.get(path).copied().unwrap_or(Kind::Unchanged)
            };
            let idx = t.ensure(&mut index, path, is_dir);
            let n = &mut t.nodes[idx];
            n.is_dir = is_dir;
            n.kind = kind;
            if !is_dir {
                n.size = size;
            }
        }
        t.sum(0);
        t
    }

    /// The node for `path`, made (with its missing parents, as unchanged directories) if absent.
    fn ensure(&mut self, index: &mut HashMap<String, usize>, path: &str, is_dir: bool) -> usize {
        if let Some(i) = index.get(path) {
            return *i;
        }
        let (parent, name) = match path.rsplit_once('/') {
            Some((p, n)) => (self.ensure(index, p, true), n),
            None => (0, path),
        };
        let depth = self.nodes[parent].depth + 1;
        self.nodes.push(Node {
            name: name.to_string(),
            path: path.to_string(),
            is_dir,
            size: 0,
            kind: Kind::Unchanged,
            children: vec![],
            depth,
        });
        let i = self.nodes.len() - 1;
        self.nodes[parent].children.push(i);
        index.insert(path.to_string(), i);
        i
    }

    /// Cumulative directory sizes (iterative: a deep tree must not overflow the stack).
    fn sum(&mut self, root: usize) {
        let mut order = vec![root];
        let mut i = 0;
        while i < order.len() {
            order.extend(self.nodes[order[i]].children.iter().copied());
            i += 1;
        }
        for &n in order.iter().rev() {
            if self.nodes[n].is_dir {
                let s: u64 = self.nodes[n]
                    .children
                    .iter()
                    .filter(|c| self.nodes[**c].kind != Kind::Removed)
                    .map(|c| self.nodes[*c].size)
                    .sum();
                self.nodes[n].size = s;
            }
        }
    }

    /// The visible rows, depth first.
    pub fn rows(&self, v: &View) -> Vec<TreeRow> {
        let search = v.search.to_lowercase();
        // Which nodes are shown: a file when its kind is on and it matches the search; a directory
        // when something under it is shown, or, itself matching, when it is empty.
        let mut shown = vec![false; self.nodes.len()];
        let mut order = vec![0usize];
        let mut i = 0;
        while i < order.len() {
            order.extend(self.nodes[order[i]].children.iter().copied());
            i += 1;
        }
        for &n in order.iter().rev() {
            let node = &self.nodes[n];
            let own = v.kinds.contains(&node.kind)
                && (search.is_empty() || node.path.to_lowercase().contains(&search));
            shown[n] = if node.children.is_empty() {
                own
            } else {
                node.children.iter().any(|c| shown[*c])
            };
        }
        let mut out = Vec::new();
        let mut stack: Vec<usize> = self.sorted(0, v.by_size).into_iter().rev().collect();
        while let Some(n) = stack.pop() {
            if !shown[n] {
                continue;
            }
            let node = &self.nodes[n];
            let collapsed = node.is_dir && v.collapsed.contains(&node.path);
            out.push(TreeRow {
                node: n,
                depth: node.depth - 1,
                name: node.name.clone(),
                path: node.path.clone(),
                size: node.size,
                is_dir: node.is_dir,
                kind: node.kind,
                collapsed,
            });
            if !collapsed {
                stack.extend(self.sorted(n, v.by_size).into_iter().rev());
            }
        }
        out
    }

    fn sorted(&self, n: usize, by_size: bool) -> Vec<usize> {
        let mut c = self.nodes[n].children.clone();
        if by_size {
            c.sort_by(|a, b| {
                self.nodes[*b]
                    .size
                    .cmp(&self.nodes[*a].size)
                    .then(self.nodes[*a].name.cmp(&self.nodes[*b].name))
            });
        } else {
            c.sort_by(|a, b| self.nodes[*a].name.cmp(&self.nodes[*b].name));
        }
        c
    }

    /// Every directory's path (for collapse-all).
    pub fn dirs(&self) -> impl Iterator<Item = &str> {
        self.nodes
            .iter()
            .skip(1)
            .filter(|n| n.is_dir && !n.children.is_empty())
            .map(|n| n.path.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ch(path: &str, size: u64, kind: ChangeKind) -> Change {
        Change {
            path: path.into(),
            size,
            is_dir: !path.contains('.') && size == 0,
            kind,
        }
    }

    #[test]
    fn sizes_marks_filters_and_collapse() {
        let changes = vec![
            vec![
                ch("etc", 0, ChangeKind::Added),
                ch("etc/a.conf", 10, ChangeKind::Added),
                ch("usr/bin/tool.x", 4000, ChangeKind::Added),
            ],
            vec![
                ch("etc/a.conf", 10, ChangeKind::Removed),
                ch("usr/bin/new.x", 7, ChangeKind::Added),
                ch("usr/bin/tool.x", 5000, ChangeKind::Modified),
            ],
        ];
        let t = Tree::build(&changes, 1, false);
        let all: HashSet<Kind> = [Kind::Unchanged, Kind::Added, Kind::Modified, Kind::Removed]
            .into_iter()
            .collect();
        let none = HashSet::new();
        let view = |kinds, search, collapsed| View {
            kinds,
            search,
            by_size: false,
            collapsed,
        };
        let lines = |rows: Vec<TreeRow>| {
            rows.iter()
                .map(|r| {
                    format!(
                        "{}{}{} {}",
                        "  ".repeat(r.depth),
                        r.kind.mark(),
                        r.name,
                        r.size
                    )
                })
                .collect::<Vec<_>>()
        };
        assert_eq!(
            lines(t.rows(&view(&all, "", &none))),
            [
                " etc 0",
                "  -a.conf 10",
                " usr 5007",
                "   bin 5007",
                "    +new.x 7",
                "    ~tool.x 5000"
            ]
        );
        // Added only; then a search; then /usr collapsed.
        let added: HashSet<Kind> = [Kind::Added].into_iter().collect();
        assert_eq!(
            lines(t.rows(&view(&added, "", &none))),
            [" usr 5007", "   bin 5007", "    +new.x 7"]
        );
        assert_eq!(
            lines(t.rows(&view(&all, "TOOL", &none))),
            [" usr 5007", "   bin 5007", "    ~tool.x 5000"]
        );
        let usr: HashSet<String> = ["usr".to_string()].into_iter().collect();
        assert_eq!(
            lines(t.rows(&view(&all, "", &usr))),
            [" etc 0", "  -a.conf 10", " usr 5007"]
        );
        // Aggregated: every change up to layer 1 marked, the first layer's additions included.
        let t = Tree::build(&changes, 1, true);
        assert_eq!(
            lines(t.rows(&view(&all, "", &none)))[0],
            "+etc 0",
            "etc was added in layer 0"
        );
        assert_eq!(t.dirs().collect::<Vec<_>>(), ["etc", "usr", "usr/bin"]);
    }
}

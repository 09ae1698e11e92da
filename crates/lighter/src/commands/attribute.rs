//! `analyze --dockerfile PATH`: each layer attributed to the Dockerfile line that made it, with the
//! bytes the line adds and the directories those bytes are in ("line 4 `RUN apt-get install ...`
//! adds 764 MB, of which 183 MB is /var/cache/apt").
//!
//! The image's history and the Dockerfile are aligned from the end, as BuildKit writes them: every
//! instruction of the target stage, then of the stage it is built `FROM`, and so on, adds one history
//! entry (ARG adds none), whose `created_by` starts with the instruction's keyword; the entries
//! before the first aligned one are the base image's. Alignment stops at the first disagreement, so
//! a Dockerfile that is not the image's attributes nothing rather than the wrong lines.

use lighter_dockerfile::{Dockerfile, Instruction, InstructionKind};
use lighter_image::view::ImageView;
use serde::Serialize;
use std::collections::BTreeMap;

/// One Dockerfile line and what it costs.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct LineCost {
    pub line: usize,
    pub instruction: String,
    /// The layer the line made (`None` for a line that only changes the config).
    pub layer: Option<usize>,
    pub bytes: u64,
    /// The directories (three levels deep) holding most of those bytes, largest first.
    pub directories: Vec<(String, u64)>,
}

/// The target stage and the stages it is built from, first stage first.
fn chain(df: &Dockerfile, target: usize) -> Vec<usize> {
    let mut out = vec![target];
    let mut cur = target;
    while let Some(parent) = df.stage_ref(&df.stages[cur].base, cur) {
        out.push(parent);
        cur = parent;
    }
    out.reverse();
    out
}

/// The bytes of `layer` by directory, three levels deep, largest first (at most `top`).
fn directories(img: &ImageView, layer: usize, top: usize) -> Vec<(String, u64)> {
    let mut dirs: BTreeMap<String, u64> = BTreeMap::new();
    for e in &img.layers[layer].entries {
        if e.is_dir || e.size == 0 {
            continue;
        }
        let parts: Vec<&str> = e.path.split('/').collect();
        let dir = format!("/{}", parts[..(parts.len() - 1).min(3)].join("/"));
        *dirs.entry(dir).or_default() += e.size;
    }
    let mut v: Vec<(String, u64)> = dirs.into_iter().collect();
    v.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    v.truncate(top);
    v
}

/// The layer each line of `df` (its last stage, or `target`) made in an image with `history`:
/// (line, instruction text, layer index), first line first.
pub fn align(
    df: &Dockerfile,
    target: Option<&str>,
    history: &[lighter_oci::config::History],
) -> Vec<(usize, String, Option<usize>)> {
    let Some(t) = df.target_stage(target) else {
        return Vec::new();
    };
    let instructions: Vec<&Instruction> = chain(df, t)
        .into_iter()
        .flat_map(|s| df.stages[s].instructions.iter())
        .filter(|i| !matches!(i.kind, InstructionKind::Arg(_)))
        .collect();
    // The layer index of every history entry that has one.
    let mut layer_of = Vec::with_capacity(history.len());
    let mut next = 0;
    for h in history {
        if h.empty_layer {
            layer_of.push(None);
        } else {
            layer_of.push(Some(next));
            next += 1;
        }
    }
    let mut out = Vec::new();
    let mut hi = history.len();
    for ins in instructions.iter().rev() {
        if hi == 0 {
            break;
        }
        let by = history[hi - 1].created_by.as_deref().unwrap_or_default();
        let keyword = ins.kind.name();
        if !by
            .trim_start()
            .get(..keyword.len())
            .is_some_and(|k| k.eq_ignore_ascii_case(keyword))
        {
            break;
        }
        hi -= 1;
        out.push((ins.span.start_line, ins.original.clone(), layer_of[hi]));
    }
    out.reverse();
    out
}

/// Attributes `img`'s layers to the lines of `df` (its last stage, or `target`).
pub fn attribute(df: &Dockerfile, target: Option<&str>, img: &ImageView) -> Vec<LineCost> {
    align(df, target, &img.history())
        .into_iter()
        .map(|(line, instruction, layer)| {
            let layer = layer.filter(|l| *l < img.layers.len());
            LineCost {
                line,
                instruction,
                layer,
                bytes: layer.map_or(0, |l| img.layers[l].uncompressed_size),
                directories: layer.map_or_else(Vec::new, |l| directories(img, l, 3)),
            }
        })
        .collect()
}

/// Where the bytes a size finding is about live: the directory the rule's fix empties.
pub fn rule_dir(rule: &str) -> Option<&'static str> {
    match rule {
        "AptListsNotCleaned" => Some("var/lib/apt/lists"),
        "PipNoCacheDir" => Some("root/.cache/pip"),
        "ApkNoCache" => Some("var/cache/apk"),
        "NpmCiRecommended" => Some("root/.npm"),
        _ => None,
    }
}

/// For each finding, the bytes its fix would save in the image: the size of the rule's directory
/// in the layer the finding's line made (`entries(i)` reads layer `i`'s entries), or `None`.
pub fn finding_costs(
    df: &Dockerfile,
    findings: &[lighter_dockerfile::Warning],
    history: &[lighter_oci::config::History],
    mut entries: impl FnMut(usize) -> Option<Vec<lighter_image::view::Entry>>,
) -> Vec<Option<(&'static str, u64)>> {
    let lines = align(df, None, history);
    findings
        .iter()
        .map(|w| {
            let dir = rule_dir(w.rule)?;
            let layer = lines
                .iter()
                .find(|(l, _, _)| *l == w.span.start_line)
                .and_then(|(_, _, layer)| *layer)?;
            let bytes = entries(layer)?
                .iter()
                .filter(|e| !e.is_dir && e.path.starts_with(dir))
                .map(|e| e.size)
                .sum();
            Some((dir, bytes))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use lighter_image::view::{Entry, LayerView};

    fn entry(path: &str, size: u64) -> Entry {
        Entry {
            path: path.into(),
            size,
            is_dir: false,
            mode: 0o644,
            uid: 0,
            gid: 0,
            link: None,
            mtime: 0,
        }
    }

    fn image(history: &[(&str, bool)], layers: Vec<Vec<Entry>>) -> ImageView {
        let h: Vec<serde_json::Value> = history
            .iter()
            .map(|(by, empty)| serde_json::json!({"created_by": by, "empty_layer": empty}))
            .collect();
        let d: lighter_oci::Digest = format!("sha256:{}", "0".repeat(64)).parse().unwrap();
        ImageView {
            id: d.clone(),
            config: serde_json::json!({ "history": h }),
            layers: layers
                .into_iter()
                .map(|entries| LayerView {
                    diff_id: d.clone(),
                    digest: d.clone(),
                    size: 0,
                    uncompressed_size: entries.iter().map(|e| e.size).sum::<u64>() + 1024,
                    entries,
                })
                .collect(),
        }
    }

    #[test]
    fn lines_are_aligned_from_the_end_through_parent_stages() {
        let df = lighter_dockerfile::parse(
            "FROM debian AS base\nARG V=1\nRUN apt-get install -y gcc\n\
             FROM base\nWORKDIR /app\nCOPY . .\nRUN make && rm -rf /tmp/x\nCMD [\"/app/x\"]\n",
        )
        .unwrap();
        let img = image(
            &[
                ("/bin/sh -c #(nop) ADD file:abc in /", false),
                ("RUN /bin/sh -c apt-get install -y gcc # buildkit", false),
                ("WORKDIR /app", false),
                ("COPY . . # buildkit", false),
                ("RUN /bin/sh -c make && rm -rf /tmp/x # buildkit", false),
                ("CMD [\"/app/x\"]", true),
            ],
            vec![
                vec![entry("bin/sh", 100)],
                vec![
                    entry("usr/lib/gcc/x/cc1", 5000),
                    entry("var/cache/apt/a.deb", 3000),
                    entry("var/cache/apt/b.deb", 2000),
                ],
                vec![],
                vec![entry("app/main.c", 40)],
                vec![entry("app/x", 700)],
            ],
        );
        let got = attribute(&df, None, &img);
        let lines: Vec<(usize, Option<usize>)> = got.iter().map(|l| (l.line, l.layer)).collect();
        assert_eq!(
            lines,
            [
                (3, Some(1)),
                (5, Some(2)),
                (6, Some(3)),
                (7, Some(4)),
                (8, None)
            ]
        );
        assert_eq!(got[0].bytes, 11_024);
        assert_eq!(
            got[0].directories,
            [
                ("/usr/lib/gcc".to_string(), 5000),
                ("/var/cache/apt".to_string(), 5000)
            ]
        );
        assert_eq!(got[4].instruction, "CMD [\"/app/x\"]");
    }

    #[test]
    fn a_dockerfile_that_is_not_the_images_attributes_nothing_wrong() {
        let df = lighter_dockerfile::parse("FROM x\nRUN a\nUSER nobody\n").unwrap();
        let img = image(
            &[
                ("RUN /bin/sh -c a # buildkit", false),
                ("CMD [\"x\"]", true),
            ],
            vec![vec![]],
        );
        assert!(attribute(&df, None, &img).is_empty());
    }
}

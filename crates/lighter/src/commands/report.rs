//! `lighter analyze --html FILE`: one self-contained page (no network, no external file): a
//! zoomable treemap of the final image's directory tree with the bytes each layer stores there, a
//! path search, the layer table and the waste list. The data is embedded as JSON and an inline
//! script lays the treemap out (squarified). [`Tree`], [`page`] and the shared style and script are
//! also the diff page's (`report_diff`).

use lighter_image::analysis::Analysis;
use lighter_image::view::ImageView;
use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};

/// At most this many nodes go into a page: past it, the smallest entries of a directory are folded
/// into one "(N smaller files)" node.
pub(super) const MAX_NODES: usize = 20_000;

/// The page for `a`, with the directory tree of `img` (the image `a` analyses).
pub fn html(a: &Analysis, img: &ImageView) -> anyhow::Result<String> {
    let data = serde_json::json!({ "analysis": a, "tree": image_tree(img).into_json(MAX_NODES) });
    page(TEMPLATE, &escape(&a.image), &data)
}

/// The analyze page's tree: measure 0 is the bytes of the final image (whiteouts applied), measure
/// `1 + i` the bytes layer `i` stores (hidden later or not). Whiteout entries are not nodes.
fn image_tree(img: &ImageView) -> Tree {
    let mut t = Tree::new();
    for (path, e) in lighter_image::analysis::flatten(img) {
        if e.is_dir {
            t.dir(&path);
        } else {
            t.file(&path, 0, e.size);
        }
    }
    for (i, l) in img.layers.iter().enumerate() {
        for e in &l.entries {
            let name = e.path.rsplit('/').next().unwrap_or(&e.path);
            if name.starts_with(".wh.") {
                continue;
            }
            if e.is_dir {
                t.dir(&e.path);
            } else {
                t.file(&e.path, 1 + i as u32, e.size);
            }
        }
    }
    t
}

/// `template` with its title and data filled in, and the shared style and script.
pub(super) fn page(
    template: &str,
    title: &str,
    data: &serde_json::Value,
) -> anyhow::Result<String> {
    // `<` never reaches the script element: no `</script>` or `<!--` can end or bend it early.
    let json = serde_json::to_string(data)?.replace('<', "\\u003c");
    Ok(fill(
        template,
        &[("TITLE", title), ("CSS", CSS), ("JS", JS), ("DATA", &json)],
    ))
}

/// `template` with each `{{KEY}}` replaced by its value, in one pass: a value is never scanned for
/// keys (an image named `{{DATA}}` stays a name).
fn fill(template: &str, vars: &[(&str, &str)]) -> String {
    let mut out =
        String::with_capacity(template.len() + vars.iter().map(|v| v.1.len()).sum::<usize>());
    let mut rest = template;
    while let Some(at) = rest.find("{{") {
        out.push_str(&rest[..at]);
        let after = &rest[at + 2..];
        let hit = after.find("}}").and_then(|end| {
            vars.iter()
                .find(|v| v.0 == &after[..end])
                .map(|v| (v.1, end))
        });
        match hit {
            Some((value, end)) => {
                out.push_str(value);
                rest = &after[end + 2..];
            }
            None => {
                out.push_str("{{");
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

pub(super) fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// A directory tree with, per node, a few byte counts ("measures", numbered by the page) summed over
/// its subtree. Lifecycle: [`Tree::new`], then [`Tree::dir`] and [`Tree::file`] for every path,
/// then [`Tree::into_json`].
pub(super) struct Tree {
    nodes: Vec<Node>,
    index: HashMap<String, usize>,
}

struct Node {
    name: String,
    parent: usize,
    dir: bool,
    children: Vec<usize>,
    /// (measure, bytes), sparse: the node's own bytes, its subtree's once summed.
    bytes: Vec<(u32, u64)>,
    /// Files in its subtree, once summed.
    files: u64,
}

fn add(to: &mut Vec<(u32, u64)>, measure: u32, bytes: u64) {
    match to.iter_mut().find(|b| b.0 == measure) {
        Some(b) => b.1 += bytes,
        None => to.push((measure, bytes)),
    }
}

impl Tree {
    pub(super) fn new() -> Tree {
        Tree {
            nodes: vec![Node {
                name: String::new(),
                parent: usize::MAX,
                dir: true,
                children: Vec::new(),
                bytes: Vec::new(),
                files: 0,
            }],
            index: HashMap::new(),
        }
    }

    /// The node of `path` (relative, `/`-separated; empty for the root), created with its parents.
    /// A node is created after its parent, so a parent's index is always smaller than its child's.
    fn node(&mut self, path: &str) -> usize {
        if path.is_empty() {
            return 0;
        }
        if let Some(&i) = self.index.get(path) {
            return i;
        }
        let (parent, name) = match path.rsplit_once('/') {
            Some((p, n)) => (self.node(p), n),
            None => (0, path),
        };
        let i = self.nodes.len();
        self.nodes.push(Node {
            name: name.to_string(),
            parent,
            dir: false,
            children: Vec::new(),
            bytes: Vec::new(),
            files: 0,
        });
        self.nodes[parent].children.push(i);
        self.nodes[parent].dir = true;
        self.index.insert(path.to_string(), i);
        i
    }

    /// `path` is a directory.
    pub(super) fn dir(&mut self, path: &str) {
        let i = self.node(path);
        self.nodes[i].dir = true;
    }

    /// File `path` counts `bytes` in `measure`.
    pub(super) fn file(&mut self, path: &str, measure: u32, bytes: u64) {
        let i = self.node(path);
        add(&mut self.nodes[i].bytes, measure, bytes);
    }

    fn weight(&self, i: usize) -> u64 {
        self.nodes[i]
            .bytes
            .iter()
            .fold(0u64, |s, b| s.saturating_add(b.1))
    }

    /// The tree as the page reads it, at most `max` nodes (at least 2):
    /// `{ nodes: [[parent, name, kind, files, [measure, bytes, ...]], ...], paths, shown, folded }`
    /// with the root first (parent -1, name ""), every parent before its children, children
    /// largest first; kind 0 is a file, 1 a directory, 2 the smallest entries of a directory folded
    /// into one node (its name says how many); `files` counts the files under a node; `folded` is
    /// the number of paths only a folded node stands for.
    pub(super) fn into_json(mut self, max: usize) -> serde_json::Value {
        let max = max.max(2);
        // Sum every subtree into its root: children come after parents, so backwards is bottom-up.
        for i in (1..self.nodes.len()).rev() {
            let n = &mut self.nodes[i];
            if n.children.is_empty() && !n.dir {
                n.files += 1;
            }
            let (parent, files, bytes) = (n.parent, n.files, std::mem::take(&mut n.bytes));
            let p = &mut self.nodes[parent];
            p.files += files;
            for &(m, b) in &bytes {
                add(&mut p.bytes, m, b);
            }
            self.nodes[i].bytes = bytes;
        }
        for n in &mut self.nodes {
            n.bytes.sort_unstable();
        }
        let weights: Vec<u64> = (0..self.nodes.len()).map(|i| self.weight(i)).collect();
        for i in 0..self.nodes.len() {
            let mut children = std::mem::take(&mut self.nodes[i].children);
            children.sort_by(|&a, &b| {
                weights[b]
                    .cmp(&weights[a])
                    .then_with(|| self.nodes[a].name.cmp(&self.nodes[b].name))
            });
            self.nodes[i].children = children;
        }
        let keep = self.choose(max, &weights);
        let mut out: Vec<serde_json::Value> = Vec::new();
        let mut shown = 0usize;
        let mut queue = std::collections::VecDeque::from([(0usize, -1i64)]);
        while let Some((i, parent)) = queue.pop_front() {
            let n = &self.nodes[i];
            let me = out.len() as i64;
            out.push(self.row(i, parent));
            shown += 1;
            let (kept, rest): (Vec<usize>, Vec<usize>) = n.children.iter().partition(|&&c| keep[c]);
            queue.extend(kept.into_iter().map(|c| (c, me)));
            match rest.as_slice() {
                [] => {}
                // One file alone takes the node a fold would.
                [only] if self.nodes[*only].children.is_empty() => queue.push_back((*only, me)),
                _ => {
                    let mut bytes = Vec::new();
                    let mut files = 0;
                    for &c in &rest {
                        files += self.nodes[c].files;
                        for &(m, b) in &self.nodes[c].bytes {
                            add(&mut bytes, m, b);
                        }
                    }
                    bytes.sort_unstable();
                    let all_files = rest.iter().all(|&c| !self.nodes[c].dir);
                    let name = format!(
                        "({} smaller {})",
                        rest.len(),
                        if all_files { "files" } else { "entries" }
                    );
                    out.push(serde_json::json!([me, name, 2, files, flat(&bytes)]));
                }
            }
        }
        let total = self.nodes.len();
        serde_json::json!({
            "nodes": out,
            "paths": total - 1,
            "shown": shown - 1,
            "folded": total - shown,
        })
    }

    /// Which nodes to show, heaviest first, a node only with its parent, so that the shown nodes
    /// plus one fold per directory with hidden children stay within `max`.
    fn choose(&self, max: usize, weights: &[u64]) -> Vec<bool> {
        let mut keep = vec![false; self.nodes.len()];
        keep[0] = true;
        let mut hidden: Vec<usize> = self.nodes.iter().map(|n| n.children.len()).collect();
        let mut folds = usize::from(hidden[0] > 0);
        let mut count = 1;
        let mut heap: BinaryHeap<(u64, Reverse<usize>)> = self.nodes[0]
            .children
            .iter()
            .map(|&c| (weights[c], Reverse(c)))
            .collect();
        while let Some((_, Reverse(i))) = heap.pop() {
            let p = self.nodes[i].parent;
            let next = folds - usize::from(hidden[p] == 1) + usize::from(hidden[i] > 0);
            if count + 1 + next > max {
                break;
            }
            keep[i] = true;
            count += 1;
            folds = next;
            hidden[p] -= 1;
            heap.extend(
                self.nodes[i]
                    .children
                    .iter()
                    .map(|&c| (weights[c], Reverse(c))),
            );
        }
        keep
    }

    fn row(&self, i: usize, parent: i64) -> serde_json::Value {
        let n = &self.nodes[i];
        let kind = if n.dir || !n.children.is_empty() {
            1
        } else {
            0
        };
        serde_json::json!([parent, n.name, kind, n.files, flat(&n.bytes)])
    }
}

fn flat(bytes: &[(u32, u64)]) -> Vec<u64> {
    bytes.iter().flat_map(|&(m, b)| [m as u64, b]).collect()
}

/// The style both pages share.
pub(super) const CSS: &str = r##"
body{font:14px/1.4 system-ui,sans-serif;margin:24px;color:#1d2330;background:#fafbfc}
h1{font-size:20px;margin:0 0 4px} h2{font-size:16px;margin:24px 0 8px} h3{font-size:14px;margin:0 0 4px}
[hidden]{display:none!important}
.summary{display:flex;gap:24px;flex-wrap:wrap;margin:12px 0}
.card{background:#fff;border:1px solid #dde2ea;border-radius:6px;padding:8px 14px}
.card b{display:block;font-size:18px}
.bar{display:flex;gap:8px;align-items:center;flex-wrap:wrap;margin:8px 0}
#crumbs{flex:1;min-width:200px;font-weight:600}
.crumb{border:0;background:none;color:#2455c3;cursor:pointer;padding:0 2px;font:inherit}
.crumb:last-child{color:#1d2330;cursor:default}
button,select,input{font:inherit}
#search{width:280px;padding:3px 8px}
#mode{max-width:360px}
.map{position:relative;height:460px;background:#fff;border:1px solid #dde2ea;overflow:hidden}
.cell{position:absolute;box-sizing:border-box;border:1px solid #fff;overflow:hidden;font-size:11px;color:#fff}
.cell.dir{cursor:zoom-in}
.lbl{display:block;padding:1px 4px;white-space:nowrap;overflow:hidden;text-overflow:ellipsis}
.sub{position:absolute;box-sizing:border-box;border:1px solid rgba(255,255,255,.6);pointer-events:none;overflow:hidden;font-size:10px;white-space:nowrap;padding:0 2px;opacity:.9}
.cell.match{outline:3px solid #ffd400;outline-offset:-3px;z-index:1}
.cell.focus{outline:3px solid #1d2330;outline-offset:-3px;box-shadow:inset 0 0 0 6px #ffd400;z-index:2}
.empty{padding:16px;color:#6b7485}
#tip{position:fixed;z-index:10;pointer-events:none;background:#1d2330;color:#fff;padding:6px 8px;border-radius:4px;font-size:12px;max-width:480px;word-break:break-all}
#found{color:#4a5366;font-size:12px}
#results{list-style:none;padding:0;margin:4px 0;max-height:220px;overflow:auto;background:#fff}
#results:empty{display:none}
#results button{display:flex;gap:12px;width:100%;text-align:left;border:0;background:none;cursor:pointer;padding:2px 6px}
#results button:hover{background:#eef1f5}
.sz{margin-left:auto;white-space:nowrap;color:#4a5366}
.note{background:#fff8e1;border:1px solid #f0d98c;padding:6px 10px;border-radius:4px;margin:8px 0}
.legend{display:flex;gap:14px;flex-wrap:wrap;font-size:12px;margin:6px 0;color:#4a5366}
.sw{display:inline-block;width:12px;height:12px;border-radius:2px;vertical-align:-2px;margin-right:4px}
table{border-collapse:collapse;background:#fff;width:100%}
th,td{border:1px solid #dde2ea;padding:4px 8px;text-align:left;vertical-align:top}
th{background:#eef1f5} td.n{text-align:right;font-variant-numeric:tabular-nums}
code{font-size:12px;word-break:break-all}
.link{border:0;background:none;padding:0;color:#2455c3;cursor:pointer;text-align:left}
"##;

/// The script both pages share: the tree, the squarified layout, zoom (cells, breadcrumb, Up,
/// Escape), the tooltip and the search. A page sets `V.val` (a node's bytes for sorting search
/// results), `V.describe` (a result's sizes), optionally `V.show`, pushes its renderers onto
/// `V.views` and calls `start()`. Data only ever reaches the page as text (`textContent`).
pub(super) const JS: &str = r##"
"use strict";
const D=JSON.parse(document.getElementById("data").textContent);
function human(n){const u=["B","kB","MB","GB","TB"];let i=0;while(n>=1000&&i<u.length-1){n/=1000;i++}return (i?n.toFixed(n<10?2:n<100?1:0):n)+u[i]}
function signed(n){return (n<0?"\u2212":n>0?"+":"\u00b1")+human(Math.abs(n))}
function el(tag,attrs,text){const e=document.createElement(tag);for(const k in attrs||{})e.setAttribute(k,attrs[k]);if(text!==undefined)e.textContent=text;return e}
function place(e,x,y,w,h){e.style.left=x+"px";e.style.top=y+"px";e.style.width=Math.max(w,0)+"px";e.style.height=Math.max(h,0)+"px"}
// The tree: nodes [parent, name, kind (0 file, 1 directory, 2 folded), files, [measure, bytes, ...]].
const NODES=D.tree.nodes,N=NODES.length,PAR=new Int32Array(N),KIND=new Uint8Array(N),NAME=[],FILES=[],M=[],KIDS=[],PATH=[],BYPATH=new Map();
for(let i=0;i<N;i++){const n=NODES[i];PAR[i]=n[0];KIND[i]=n[2];NAME.push(n[1]);FILES.push(n[3]);M.push(n[4]);KIDS.push([]);
  PATH.push(i===0?"/":(n[0]===0?"/":PATH[n[0]]+"/")+n[1]);if(i)KIDS[n[0]].push(i);if(n[2]!==2)BYPATH.set(PATH[i],i)}
function mv(i,j){const m=M[i];for(let k=0;k<m.length;k+=2)if(m[k]===j)return m[k+1];return 0}
// Squarified treemap (Bruls, Huizing, van Wijk) of items sorted largest first, each {v > 0}.
function squarify(items,x,y,w,h){
  const out=[];let total=0,i=0;for(const it of items)total+=it.v;
  while(i<items.length&&w>0.5&&h>0.5&&total>0){
    const short=Math.min(w,h),scale=(w*h)/total,mx=items[i].v;let sum=0,best=Infinity,j=i;
    while(j<items.length){const v=items[j].v,s2=sum+v;
      const worst=Math.max((short*short*mx)/(s2*s2*scale),(s2*s2*scale)/(short*short*v));
      if(worst>best)break;best=worst;sum=s2;j++}
    const len=(sum*scale)/short;let off=0;
    for(let k=i;k<j;k++){const r=items[k],l=(r.v*scale)/len;
      if(w>=h)out.push({item:r,x:x,y:y+off,w:len,h:l});else out.push({item:r,x:x+off,y:y,w:l,h:len});off+=l}
    if(w>=h){x+=len;w-=len}else{y+=len;h-=len}
    total-=sum;i=j;
  }
  return out;
}
// What the page shows: the directory (cur), a node pointed at (focus), search hits (hits).
const V={cur:0,focus:-1,hits:null,views:[],val:null,describe:null,show:null};
function go(i,focus){V.cur=i;V.focus=focus===undefined?-1:focus;for(const f of V.views)f()}
function up(){if(V.cur>0)go(PAR[V.cur])}
function zoomTo(i){if(KIND[i]===1)go(i);else go(PAR[i],i)}
// The children of `node` worth drawing, largest first; past `cap`, the rest as one "more" item.
function items(node,val,cap){const out=[];for(const c of KIDS[node]){const v=val(c);if(v>0)out.push({v:v,i:c})}
  out.sort((a,b)=>b.v-a.v);if(out.length>cap){const rest=out.splice(cap);out.push({v:rest.reduce((s,r)=>s+r.v,0),i:-1,more:rest.length});out.sort((a,b)=>b.v-a.v)}return out}
// Draws the children of `node` into `box` (one level clickable, the next as a preview inside each
// directory), on the fraction `part` (default 1) of its area; returns the number of directory cells.
function drawMap(box,node,val,color,part){
  box.textContent="";const f=Math.sqrt(part===undefined?1:part),W=box.clientWidth*f,H=box.clientHeight*f;let dirs=0;
  for(const c of squarify(items(node,val,600),0,0,W,H)){const i=c.item.i;
    const d=el("div",{class:i<0?"cell more":["cell file","cell dir","cell fold"][KIND[i]]});
    place(d,c.x,c.y,c.w,c.h);d.style.background=i<0?"hsl(220,8%,60%)":color(i);
    if(i>=0){d.dataset.node=i;d.dataset.path=PATH[i];if(V.hits&&V.hits[i])d.classList.add("match");if(i===V.focus)d.classList.add("focus")}
    if(c.w>40&&c.h>14)d.appendChild(el("span",{class:"lbl"},(i<0?"("+c.item.more+" more)":NAME[i])+" "+human(c.item.v)));
    if(i>=0&&KIND[i]===1){dirs++;
      if(c.w>30&&c.h>34)for(const s of squarify(items(i,val,60),2,16,c.w-4,c.h-18)){if(s.w<3||s.h<3)continue;
        const e=el("div",{class:"sub"},s.w>50&&s.h>12&&s.item.i>=0?NAME[s.item.i]:undefined);place(e,s.x,s.y,s.w,s.h);
        e.style.background=s.item.i<0?"hsl(220,8%,60%)":color(s.item.i);d.appendChild(e)}}
    box.appendChild(d)}
  if(!box.firstChild)box.appendChild(el("div",{class:"empty"},"Nothing here: no bytes under "+PATH[node]));
  return dirs}
function clicks(box){box.addEventListener("click",e=>{const c=e.target.closest(".cell");if(!c||c.dataset.node===undefined)return;const i=+c.dataset.node;if(KIND[i]===1)go(i)})}
function crumbs(){const c=document.getElementById("crumbs");c.textContent="";const chain=[];for(let i=V.cur;i>=0;i=PAR[i])chain.unshift(i);
  chain.forEach((i,k)=>{if(k)c.appendChild(document.createTextNode(" \u203a "));const b=el("button",{type:"button",class:"crumb"},i?NAME[i]:"/");b.addEventListener("click",()=>go(i));c.appendChild(b)});
  document.getElementById("up").disabled=V.cur===0;document.body.setAttribute("data-zoom",PATH[V.cur])}
function tips(box,lines){const tip=document.getElementById("tip");
  box.addEventListener("mousemove",e=>{const c=e.target.closest(".cell");if(!c||c.dataset.node===undefined){tip.hidden=true;return}
    const i=+c.dataset.node;tip.textContent="";tip.appendChild(el("b",{},PATH[i]+(KIND[i]===1?"/":"")));for(const l of lines(i))tip.appendChild(el("div",{},l));
    tip.hidden=false;const r=tip.getBoundingClientRect();let x=e.clientX+14,y=e.clientY+14;
    if(x+r.width>innerWidth)x=e.clientX-r.width-8;if(y+r.height>innerHeight)y=e.clientY-r.height-8;tip.style.left=Math.max(0,x)+"px";tip.style.top=Math.max(0,y)+"px"});
  box.addEventListener("mouseleave",()=>{tip.hidden=true})}
function search(){const q=document.getElementById("search").value.trim().toLowerCase(),res=document.getElementById("results"),found=document.getElementById("found");
  res.textContent="";found.textContent="";V.hits=null;
  if(q){const m=[];for(let i=1;i<N;i++)if(KIND[i]!==2&&PATH[i].toLowerCase().includes(q))m.push(i);
    V.hits=new Uint8Array(N);for(const i of m)for(let j=i;j>=0&&!V.hits[j];j=PAR[j])V.hits[j]=1;
    m.sort((a,b)=>V.val(b)-V.val(a)||(PATH[a]<PATH[b]?-1:1));
    found.textContent=m.length+(m.length===1?" match":" matches")+(m.length>100?" (the 100 largest listed)":"");
    for(const i of m.slice(0,100)){const li=el("li"),b=el("button",{type:"button",class:"hit"});
      b.appendChild(el("code",{},PATH[i]+(KIND[i]===1?"/":"")));b.appendChild(el("span",{class:"sz"},V.describe(i)));
      b.addEventListener("click",()=>(V.show||zoomTo)(i));li.appendChild(b);res.appendChild(li)}}
  go(V.cur,V.focus)}
function start(){const s=document.getElementById("search");s.addEventListener("input",search);
  document.getElementById("up").addEventListener("click",up);
  document.addEventListener("keydown",e=>{if(e.key!=="Escape")return;if(document.activeElement===s&&s.value){s.value="";search();return}up()});
  let t=0;window.addEventListener("resize",()=>{clearTimeout(t);t=setTimeout(()=>go(V.cur,V.focus),100)});
  const f=document.getElementById("folded");
  if(D.tree.folded){f.hidden=false;f.textContent="This image has "+D.tree.paths+" paths; to keep the page small it shows the "+D.tree.shown+" largest, and folds the "+D.tree.folded+" smallest into \u201c(N smaller files)\u201d cells, one per directory."}
  go(0)}
"##;

const TEMPLATE: &str = r##"<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>lighter analyze: {{TITLE}}</title>
<style>{{CSS}}</style></head><body>
<h1>lighter analyze: {{TITLE}}</h1>
<div class="summary" id="summary"></div>
<h2>Where the bytes are</h2>
<div class="bar"><button type="button" id="up" title="Up one directory (Escape)">&#8593; Up</button><nav id="crumbs" aria-label="directory"></nav>
<label>Size by <select id="mode"></select></label>
<input type="search" id="search" placeholder="Find a file or directory" aria-label="find a path"></div>
<div id="found"></div><ul id="results"></ul>
<div class="note" id="folded" hidden></div>
<div class="map" id="treemap"></div>
<div class="legend" id="legend"></div>
<div id="tip" hidden></div>
<h2>Layers</h2>
<table id="layers"><thead><tr><th>#</th><th>origin</th><th>size</th><th>compressed</th><th>added</th><th>modified</th><th>removed</th><th>created by</th></tr></thead><tbody></tbody></table>
<h2>Wasted space (paths stored in more than one layer)</h2>
<table id="waste"><thead><tr><th>copies</th><th>cumulative</th><th>reclaimable</th><th>path</th></tr></thead><tbody></tbody></table>
<script type="application/json" id="data">{{DATA}}</script>
<script>{{JS}}
// Measures: 0 = bytes in the final image, 1 + i = bytes layer i stores.
const A=D.analysis;let MODE=-1;
function stored(i){let s=0;const m=M[i];for(let k=0;k<m.length;k+=2)if(m[k]>0)s+=m[k+1];return s}
function val(i){return MODE===-1?mv(i,0):MODE===-2?stored(i):mv(i,1+MODE)}
function heaviest(i){let best=-1,bv=0;const m=M[i];for(let k=0;k<m.length;k+=2)if(m[k]>0&&m[k+1]>bv){bv=m[k+1];best=m[k]-1}return best}
const hue=l=>(l*67)%360;
function color(i){const l=KIND[i]===2?-1:MODE>=0?MODE:heaviest(i);return l<0?"hsl(220,8%,60%)":"hsl("+hue(l)+",55%,"+(KIND[i]===1?38:48)+"%)"}
function lines(i){const f=mv(i,0),s=stored(i),out=["in the final image: "+human(f),"stored by the layers: "+human(s)+(s>f?" ("+human(s-f)+" hidden or stored twice)":"")];
  const ls=[];const m=M[i];for(let k=0;k<m.length;k+=2)if(m[k]>0)ls.push([m[k]-1,m[k+1]]);ls.sort((a,b)=>b[1]-a[1]);
  for(const [l,b] of ls.slice(0,5))out.push("layer "+l+" stores "+human(b));if(ls.length>5)out.push("\u2026 and "+(ls.length-5)+" more layers");
  if(KIND[i]!==0)out.push(FILES[i]+(FILES[i]===1?" file":" files"));return out}
const mode=document.getElementById("mode");
for(const [v,t] of [[-1,"bytes in the final image"],[-2,"bytes stored by all layers"]].concat(A.layers.map(l=>[l.index,"layer "+l.index+" ("+l.origin+"): "+l.created_by.slice(0,50)])))mode.appendChild(el("option",{value:String(v)},t));
function setMode(m){MODE=m;mode.value=String(m);search()}
mode.addEventListener("change",()=>setMode(+mode.value));
V.val=val;V.describe=i=>{const f=mv(i,0),s=stored(i);return human(f)+" in the image"+(s!==f?", "+human(s)+" stored":"")};
V.show=i=>{if(val(i)===0&&stored(i)>0)setMode(-2);zoomTo(i)};
// Summary cards.
const cards=[["size",human(A.size)],["compressed",human(A.compressed_size)],["layers",A.layers.length],["files",FILES[0]],
 ["efficiency (dive)",(A.efficiency*100).toFixed(2)+" %"],["wasted (dive)",human(A.wasted_bytes)],["reclaimable",human(A.reclaimable_bytes)]];
for(const [k,v] of cards){const c=el("div",{class:"card"});c.appendChild(el("b",{},String(v)));c.appendChild(document.createTextNode(k));document.getElementById("summary").appendChild(c)}
const lg=document.getElementById("legend");lg.appendChild(el("span",{},"Colour: the layer storing the most bytes there. Click a directory to open it; Escape or Up goes back."));
for(const l of A.layers){const s=el("span");const w=el("span",{class:"sw"});w.style.background="hsl("+hue(l.index)+",55%,43%)";s.appendChild(w);s.appendChild(document.createTextNode("layer "+l.index));lg.appendChild(s)}
// Layer table and waste list.
const lt=document.querySelector("#layers tbody");
for(const l of A.layers){const tr=el("tr");const td0=el("td"),b=el("button",{type:"button",class:"link",title:"size the treemap by this layer"},String(l.index));
  b.addEventListener("click",()=>setMode(l.index));td0.appendChild(b);tr.appendChild(td0);
  for(const [v,n] of [[l.origin],[human(l.size),1],[human(l.compressed_size),1],[l.added+" ("+human(l.added_bytes)+")",1],[l.modified+" ("+human(l.modified_bytes)+")",1],[l.removed+" ("+human(l.removed_bytes)+")",1]])tr.appendChild(el("td",n?{class:"n"}:{},String(v)));
  const td=el("td");td.appendChild(el("code",{},l.created_by));tr.appendChild(td);lt.appendChild(tr)}
const wt=document.querySelector("#waste tbody");
for(const o of A.offenders){const tr=el("tr");tr.appendChild(el("td",{class:"n"},String(o.copies)));tr.appendChild(el("td",{class:"n"},human(o.cumulative)));tr.appendChild(el("td",{class:"n"},human(o.reclaimable)));
  const td=el("td"),c=el("code",{},"/"+o.path),i=BYPATH.get("/"+o.path);
  if(i===undefined)td.appendChild(c);else{const b=el("button",{type:"button",class:"link",title:"show in the treemap"});b.appendChild(c);b.addEventListener("click",()=>{V.show(i);document.getElementById("treemap").scrollIntoView()});td.appendChild(b)}
  tr.appendChild(td);wt.appendChild(tr)}
if(!A.offenders.length){const tr=el("tr");tr.appendChild(el("td",{colspan:"4"},"No path is stored twice."));wt.appendChild(tr)}
// The treemap: data-rendered counts the directory cells drawn at the level shown.
const tm=document.getElementById("treemap");clicks(tm);tips(tm,lines);
V.views.push(()=>{crumbs();document.body.setAttribute("data-rendered",drawMap(tm,V.cur,val,color))});
start();
</script></body></html>
"##;

#[cfg(test)]
mod tests {
    use super::*;

    fn tree(files: &[(&str, u64)]) -> Tree {
        let mut t = Tree::new();
        for (p, b) in files {
            t.file(p, 0, *b);
        }
        t
    }

    #[test]
    fn sizes_are_cumulative_and_parents_come_first() {
        let j = tree(&[("usr/bin/a", 10), ("usr/lib/b", 5), ("etc/c", 1)]).into_json(100);
        let nodes = j["nodes"].as_array().unwrap();
        assert_eq!(nodes[0], serde_json::json!([-1, "", 1, 3, [0, 16]]));
        assert_eq!(nodes[1], serde_json::json!([0, "usr", 1, 2, [0, 15]]));
        for (i, n) in nodes.iter().enumerate().skip(1) {
            assert!((n[0].as_i64().unwrap() as usize) < i);
        }
        assert_eq!(j["folded"], 0);
        assert_eq!(j["paths"], 7);
    }

    #[test]
    fn the_smallest_children_fold_within_the_cap() {
        let mut files: Vec<(String, u64)> = (0..50).map(|i| (format!("d/f{i}"), i + 1)).collect();
        files.push(("big".into(), 1000));
        let t = tree(
            &files
                .iter()
                .map(|(p, b)| (p.as_str(), *b))
                .collect::<Vec<_>>(),
        );
        let j = t.into_json(10);
        let nodes = j["nodes"].as_array().unwrap();
        assert!(nodes.len() <= 10, "{} nodes", nodes.len());
        let fold = nodes.iter().find(|n| n[2] == 2).expect("a folded node");
        assert!(
            fold[1].as_str().unwrap().ends_with(" smaller files)"),
            "{fold}"
        );
        // Nothing is lost: the folded node and the kept files of d sum to d.
        let d = nodes.iter().position(|n| n[1] == "d").unwrap();
        let under: u64 = nodes
            .iter()
            .filter(|n| n[0] == d as i64)
            .map(|n| n[4][1].as_u64().unwrap())
            .sum();
        assert_eq!(under, (1..=50).sum::<u64>());
        // The largest files of d are the ones kept.
        assert!(nodes.iter().any(|n| n[1] == "f49"));
        assert_eq!(
            j["folded"].as_u64().unwrap() as usize,
            53 - (nodes.len() - 1)
        );
    }

    #[test]
    fn fill_never_rescans_values() {
        assert_eq!(
            fill(
                "<t>{{TITLE}}</t>{{DATA}}{{x",
                &[("TITLE", "{{DATA}}"), ("DATA", "1")]
            ),
            "<t>{{DATA}}</t>1{{x"
        );
    }

    #[test]
    fn embedded_data_has_no_angle_bracket() {
        let p = page(
            "<script>{{DATA}}</script>",
            "t",
            &serde_json::json!({"n": "</script><!--"}),
        )
        .unwrap();
        assert_eq!(p, r#"<script>{"n":"\u003c/script>\u003c!--"}</script>"#);
    }
}

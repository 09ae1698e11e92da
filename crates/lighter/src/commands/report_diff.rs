//! `lighter diff A B --html FILE`: one self-contained page comparing two images by directory: their
//! final trees side by side (bytes in A, in B, the change), zoomable as analyze's page is, with the
//! path search, the shown directory's children by change, the largest files removed and added and
//! the config changes. The tree and the shared script are `report`'s.

use super::report::{escape, page, Tree, MAX_NODES};
use lighter_image::analysis::ImageDiff;
use lighter_image::view::ImageView;

/// The page comparing `a` (named `name_a`) with `b`, `d` being their diff.
pub fn html(
    name_a: &str,
    name_b: &str,
    a: &ImageView,
    b: &ImageView,
    d: &ImageDiff,
) -> anyhow::Result<String> {
    // Measure 0: bytes in A's final tree; measure 1: in B's.
    let mut t = Tree::new();
    for (m, img) in [a, b].into_iter().enumerate() {
        for (path, e) in lighter_image::analysis::flatten(img) {
            if e.is_dir {
                t.dir(&path);
            } else {
                t.file(&path, m as u32, e.size);
            }
        }
    }
    let largest = |v: &[(String, u64)]| {
        let mut v = v.to_vec();
        v.sort_by(|x, y| y.1.cmp(&x.1).then_with(|| x.0.cmp(&y.0)));
        v.truncate(50);
        v
    };
    let data = serde_json::json!({
        "a": name_a,
        "b": name_b,
        "diff": {
            "size_a": d.size_a,
            "size_b": d.size_b,
            "added": d.added.len(),
            "removed": d.removed.len(),
            "changed": d.changed.len(),
            "shared_layers": d.shared_layers,
            "layers_a": d.layers_a,
            "layers_b": d.layers_b,
            "config": d.config,
            "largest_removed": largest(&d.removed),
            "largest_added": largest(&d.added),
        },
        "tree": t.into_json(MAX_NODES),
    });
    page(
        TEMPLATE,
        &escape(&format!("{name_a} \u{2192} {name_b}")),
        &data,
    )
}

const TEMPLATE: &str = r##"<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>lighter diff: {{TITLE}}</title>
<style>{{CSS}}
.pair{display:grid;grid-template-columns:minmax(0,1fr) minmax(0,1fr);gap:12px}
.pair h3{white-space:nowrap;overflow:hidden;text-overflow:ellipsis}
</style></head><body>
<h1>lighter diff: {{TITLE}}</h1>
<div class="summary" id="summary"></div>
<h2>Where the bytes went, by directory</h2>
<div class="bar"><button type="button" id="up" title="Up one directory (Escape)">&#8593; Up</button><nav id="crumbs" aria-label="directory"></nav>
<input type="search" id="search" placeholder="Find a file or directory" aria-label="find a path"></div>
<div id="found"></div><ul id="results"></ul>
<div class="note" id="folded" hidden></div>
<div class="pair"><div><h3 id="ha"></h3><div class="map" id="tmA"></div></div><div><h3 id="hb"></h3><div class="map" id="tmB"></div></div></div>
<div class="legend" id="legend"></div>
<div id="tip" hidden></div>
<h2 id="hkids"></h2>
<table id="kids"><thead><tr><th>path</th><th>in A</th><th>in B</th><th>change</th></tr></thead><tbody></tbody></table>
<h2>Largest files only A has</h2>
<table id="removed"><thead><tr><th>size</th><th>path</th></tr></thead><tbody></tbody></table>
<h2>Largest files only B has</h2>
<table id="added"><thead><tr><th>size</th><th>path</th></tr></thead><tbody></tbody></table>
<h2>Config changes</h2>
<table id="config"><thead><tr><th>field</th><th>in A</th><th>in B</th></tr></thead><tbody></tbody></table>
<script type="application/json" id="data">{{DATA}}</script>
<script>{{JS}}
// Measures: 0 = bytes in A's final image, 1 = in B's.
const X=D.diff,a=i=>mv(i,0),b=i=>mv(i,1);
function color(i){if(KIND[i]===2)return "hsl(220,8%,60%)";const x=a(i),y=b(i);if(x===y)return "hsl(220,12%,52%)";const r=(y-x)/Math.max(x,y);
  return r<0?"hsl(0,"+Math.round(35+45*-r)+"%,"+Math.round(52-10*-r)+"%)":"hsl(140,"+Math.round(30+40*r)+"%,"+Math.round(40-6*r)+"%)"}
function change(i){const x=a(i),y=b(i);return signed(y-x)+(x?" ("+(y>x?"+":"")+((y-x)/x*100).toFixed(1)+" %)":y?" (only in B)":"")}
function lines(i){return ["in A: "+human(a(i)),"in B: "+human(b(i)),"change: "+change(i)].concat(KIND[i]!==0?[FILES[i]+" files in A or B"]:[])}
V.val=i=>Math.abs(b(i)-a(i));
V.describe=i=>human(a(i))+" \u2192 "+human(b(i))+"  "+signed(b(i)-a(i));
// Summary cards.
const ratio=X.size_b&&X.size_a!==X.size_b?(X.size_a>X.size_b?(X.size_a/X.size_b).toFixed(1)+"x smaller":(X.size_b/Math.max(X.size_a,1)).toFixed(1)+"x larger"):"";
const cards=[[human(X.size_a),"A: "+D.a],[human(X.size_b),"B: "+D.b],[signed(X.size_b-X.size_a),"B is "+(ratio||"the same size")],
 [X.added+" / "+X.removed+" / "+X.changed,"files added / removed / changed"],[X.shared_layers+" of "+X.layers_b,"layers of B shared with A"]];
for(const [v,k] of cards){const c=el("div",{class:"card"});c.appendChild(el("b",{},String(v)));c.appendChild(document.createTextNode(k));document.getElementById("summary").appendChild(c)}
const lg=document.getElementById("legend");
for(const [c,t] of [["hsl(0,80%,42%)","smaller in B, or only in A"],["hsl(140,70%,34%)","larger in B, or only in B"],["hsl(220,12%,52%)","the same"]]){const s=el("span"),w=el("span",{class:"sw"});w.style.background=c;s.appendChild(w);s.appendChild(document.createTextNode(t));lg.appendChild(s)}
lg.appendChild(el("span",{},"Area: bytes in each image, both on one scale. Click a directory to open it in both; Escape or Up goes back."));
function pathCell(p){const td=el("td"),c=el("code",{},"/"+p),i=BYPATH.get("/"+p);
  if(i===undefined)td.appendChild(c);else{const bt=el("button",{type:"button",class:"link",title:"show in the treemaps"});bt.appendChild(c);bt.addEventListener("click",()=>{zoomTo(i);document.getElementById("tmA").scrollIntoView()});td.appendChild(bt)}return td}
for(const [id,list] of [["removed",X.largest_removed],["added",X.largest_added]]){const tb=document.querySelector("#"+id+" tbody");
  for(const [p,s] of list){const tr=el("tr");tr.appendChild(el("td",{class:"n"},human(s)));tr.appendChild(pathCell(p));tb.appendChild(tr)}
  if(!list.length){const tr=el("tr");tr.appendChild(el("td",{colspan:"2"},"None."));tb.appendChild(tr)}}
const ct=document.querySelector("#config tbody");
for(const [k,x,y] of X.config){const tr=el("tr");tr.appendChild(el("td",{},k));for(const v of [x,y]){const td=el("td");td.appendChild(el("code",{},JSON.stringify(v)));tr.appendChild(td)}ct.appendChild(tr)}
if(!X.config.length){const tr=el("tr");tr.appendChild(el("td",{colspan:"3"},"None."));ct.appendChild(tr)}
// The two treemaps, zoomed together, and the shown directory's children by change.
const tA=document.getElementById("tmA"),tB=document.getElementById("tmB");for(const t of [tA,tB]){clicks(t);tips(t,lines)}
function kids(){const tb=document.querySelector("#kids tbody");tb.textContent="";
  document.getElementById("hkids").textContent="In "+PATH[V.cur]+", by change";
  const ks=KIDS[V.cur].filter(i=>a(i)||b(i)).sort((p,q)=>Math.abs(b(q)-a(q))-Math.abs(b(p)-a(p))||Math.max(a(q),b(q))-Math.max(a(p),b(p)));
  for(const i of ks.slice(0,200)){const tr=el("tr"),td=el("td"),c=el("code",{},NAME[i]+(KIND[i]===1?"/":""));
    if(KIND[i]===1){const bt=el("button",{type:"button",class:"link"});bt.appendChild(c);bt.addEventListener("click",()=>go(i));td.appendChild(bt)}else td.appendChild(c);
    tr.appendChild(td);for(const v of [human(a(i)),human(b(i)),change(i)])tr.appendChild(el("td",{class:"n"},v));tb.appendChild(tr)}
  if(ks.length>200){const tr=el("tr");tr.appendChild(el("td",{colspan:"4"},"\u2026 and "+(ks.length-200)+" more"));tb.appendChild(tr)}}
// The smaller side is drawn on its share of the area, so that sizes compare across the two.
V.views.push(()=>{crumbs();const x=a(V.cur),y=b(V.cur),big=Math.max(x,y,1);
  document.getElementById("ha").textContent="A: "+D.a+" \u2014 "+human(x)+" of files in "+PATH[V.cur];
  document.getElementById("hb").textContent="B: "+D.b+" \u2014 "+human(y)+" of files in "+PATH[V.cur]+" ("+change(V.cur)+")";
  const na=drawMap(tA,V.cur,a,color,x/big),nb=drawMap(tB,V.cur,b,color,y/big);
  kids();const s=document.body;s.setAttribute("data-rendered-a",na);s.setAttribute("data-rendered-b",nb);s.setAttribute("data-rendered",na+nb)});
start();
</script></body></html>
"##;

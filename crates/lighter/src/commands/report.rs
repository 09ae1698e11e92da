//! `lighter analyze --html FILE`: one self-contained page (no network, no external file) with a
//! treemap of the bytes by layer and directory, the layer table and the waste list. The analysis is
//! embedded as JSON; a small script lays the treemap out (squarified) and fills the tables.

use lighter_image::analysis::Analysis;
use std::collections::BTreeMap;

/// The page for `a`, with `dirs[i]` the bytes layer `i` adds by directory.
pub fn html(a: &Analysis, dirs: &[BTreeMap<String, u64>]) -> anyhow::Result<String> {
    let data = serde_json::json!({ "analysis": a, "dirs": dirs });
    // `</` must not end the script element early; JSON allows `<\/`.
    let json = serde_json::to_string(&data)?.replace("</", "<\\/");
    let title = escape(&a.image);
    Ok(TEMPLATE
        .replace("{{TITLE}}", &title)
        .replace("{{DATA}}", &json))
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

const TEMPLATE: &str = r##"<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>lighter analyze: {{TITLE}}</title>
<style>
body{font:14px/1.4 system-ui,sans-serif;margin:24px;color:#1d2330;background:#fafbfc}
h1{font-size:20px;margin:0 0 4px} h2{font-size:16px;margin:24px 0 8px}
.summary{display:flex;gap:24px;flex-wrap:wrap;margin:12px 0}
.card{background:#fff;border:1px solid #dde2ea;border-radius:6px;padding:8px 14px}
.card b{display:block;font-size:18px}
#treemap{position:relative;width:100%;height:460px;background:#fff;border:1px solid #dde2ea}
.cell{position:absolute;box-sizing:border-box;border:1px solid #fff;overflow:hidden;font-size:11px;padding:2px 4px;color:#fff}
.cell.layer{border:2px solid #1d2330;color:#1d2330;background:transparent;font-weight:600}
table{border-collapse:collapse;background:#fff;width:100%}
th,td{border:1px solid #dde2ea;padding:4px 8px;text-align:left;vertical-align:top}
th{background:#eef1f5} td.n{text-align:right;font-variant-numeric:tabular-nums}
code{font-size:12px;word-break:break-all}
</style></head><body>
<h1>lighter analyze: {{TITLE}}</h1>
<div class="summary" id="summary"></div>
<h2>Where the bytes are (area = bytes each layer adds, by directory)</h2>
<div id="treemap"></div>
<h2>Layers</h2>
<table id="layers"><thead><tr><th>#</th><th>origin</th><th>size</th><th>compressed</th><th>added</th><th>modified</th><th>removed</th><th>created by</th></tr></thead><tbody></tbody></table>
<h2>Wasted space (paths stored in more than one layer)</h2>
<table id="waste"><thead><tr><th>copies</th><th>cumulative</th><th>reclaimable</th><th>path</th></tr></thead><tbody></tbody></table>
<script type="application/json" id="data">{{DATA}}</script>
<script>
"use strict";
const D = JSON.parse(document.getElementById("data").textContent);
const A = D.analysis;
function human(n){const u=["B","kB","MB","GB","TB"];let i=0;while(n>=1000&&i<u.length-1){n/=1000;i++}return (i?n.toFixed(n<10?2:n<100?1:0):n)+u[i]}
function el(tag,attrs,text){const e=document.createElement(tag);for(const k in attrs||{})e.setAttribute(k,attrs[k]);if(text!==undefined)e.textContent=text;return e}
// Summary cards.
const cards=[["size",human(A.size)],["compressed",human(A.compressed_size)],["layers",A.layers.length],
 ["efficiency (dive)",(A.efficiency*100).toFixed(2)+" %"],["wasted (dive)",human(A.wasted_bytes)],["reclaimable",human(A.reclaimable_bytes)]];
for(const [k,v] of cards){const c=el("div",{class:"card"});c.appendChild(el("b",{},String(v)));c.appendChild(document.createTextNode(k));document.getElementById("summary").appendChild(c)}
// Squarified treemap (Bruls, Huizing, van Wijk).
function squarify(items,x,y,w,h){
  const out=[];items=items.filter(i=>i.v>0).sort((a,b)=>b.v-a.v);
  let total=items.reduce((s,i)=>s+i.v,0);
  while(items.length){
    const short=Math.min(w,h),scale=(w*h)/total;let row=[],sum=0,best=Infinity;
    while(items.length){const it=items[0],s2=sum+it.v,mx=Math.max(...row.map(r=>r.v),it.v),mn=Math.min(...row.map(r=>r.v),it.v);
      const worst=Math.max((short*short*mx)/(s2*s2*scale),(s2*s2*scale)/(short*short*mn));
      if(worst>best)break;best=worst;row.push(items.shift());sum=s2}
    const len=(sum*scale)/short;let off=0;
    for(const r of row){const l=(r.v*scale)/len;
      if(w>=h)out.push({item:r,x:x,y:y+off,w:len,h:l});else out.push({item:r,x:x+off,y:y,w:l,h:len});off+=l}
    if(w>=h){x+=len;w-=len}else{y+=len;h-=len}
    total-=sum;
  }
  return out;
}
const tm=document.getElementById("treemap"),W=tm.clientWidth,H=tm.clientHeight;
const layers=A.layers.map((l,i)=>({v:Object.values(D.dirs[i]||{}).reduce((s,b)=>s+b,0),layer:l,dirs:D.dirs[i]||{}}));
const hue=i=>(i*67)%360;
for(const L of squarify(layers,0,0,W,H)){
  const box=el("div",{class:"cell layer",title:"layer "+L.item.layer.index+": "+human(L.item.v)});
  Object.assign(box.style,{left:L.x+"px",top:L.y+"px",width:L.w+"px",height:L.h+"px"});
  const dirs=Object.entries(L.item.dirs).map(([d,b])=>({v:b,d:d}));
  for(const c of squarify(dirs,L.x+2,L.y+16,Math.max(L.w-4,0),Math.max(L.h-18,0))){
    const cell=el("div",{class:"cell dir",title:c.item.d+" (layer "+L.item.layer.index+"): "+human(c.item.v)},c.w>60&&c.h>14?c.item.d+" "+human(c.item.v):"");
    Object.assign(cell.style,{left:c.x+"px",top:c.y+"px",width:c.w+"px",height:c.h+"px",background:"hsl("+hue(L.item.layer.index)+",55%,45%)"});
    tm.appendChild(cell);
  }
  box.textContent=L.w>80?"layer "+L.item.layer.index+" ("+L.item.layer.origin+") "+human(L.item.v):"";
  tm.appendChild(box);
}
// Layer table and waste list.
const lt=document.querySelector("#layers tbody");
for(const l of A.layers){const tr=el("tr");
  for(const [v,n] of [[l.index],[l.origin],[human(l.size),1],[human(l.compressed_size),1],[l.added+" ("+human(l.added_bytes)+")",1],[l.modified+" ("+human(l.modified_bytes)+")",1],[l.removed+" ("+human(l.removed_bytes)+")",1]])tr.appendChild(el("td",n?{class:"n"}:{},String(v)));
  const td=el("td");td.appendChild(el("code",{},l.created_by));tr.appendChild(td);lt.appendChild(tr)}
const wt=document.querySelector("#waste tbody");
for(const o of A.offenders){const tr=el("tr");tr.appendChild(el("td",{class:"n"},String(o.copies)));tr.appendChild(el("td",{class:"n"},human(o.cumulative)));tr.appendChild(el("td",{class:"n"},human(o.reclaimable)));const td=el("td");td.appendChild(el("code",{},"/"+o.path));tr.appendChild(td);wt.appendChild(tr)}
if(!A.offenders.length){const tr=el("tr");tr.appendChild(el("td",{colspan:"4"},"No path is stored twice."));wt.appendChild(tr)}
document.body.setAttribute("data-rendered",document.querySelectorAll("#treemap .cell.dir").length);
</script></body></html>
"##;

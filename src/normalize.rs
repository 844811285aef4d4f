//! Structural node renaming.
//!
//! The same workflow gets exported with different node IDs. comfyctl renames every node to a
//! readable ID derived from the graph's *structure* alone, so the same structure always yields the
//! same IDs whatever the original IDs, node order, or literal values (prompt text, seeds, file
//! names) were, and no node is ever lost (the old Python normalizer mapped each type to one fixed
//! ID and silently merged nodes whenever a type appeared twice).
//!
//! # The rule
//! 1. **Structural signature.** Each node gets a hash of its class type and, in the node's own
//!    input order, each input's name and whether it is a literal or a link — and for a link, the
//!    source's signature and output index. Literal *values* and node IDs never enter it.
//! 2. **Sink order.** Output (sink) nodes — nodes nobody consumes — are ordered by class type,
//!    then signature. Only sinks whose upstream structure is identical need more: their literal
//!    values (hashed the same way) and their place in the rest of the graph (colour refinement,
//!    see [`refine`]), and last the old ID; in that last case the candidates are
//!    indistinguishable, so the output does not depend on which is taken first.
//! 3. **Visit order.** A depth-first walk from each sink in that order follows inputs in each
//!    node's own input order; each node is numbered when it is left (post-order), so dependencies
//!    come before their consumers, and that is also the order nodes are written in.
//! 4. **Names.** The k-th node of a class (in visit order) is named from the table: the first
//!    `KSampler` is `ksampler_1`, the second `ksampler_2`; the first `CLIPTextEncode` is
//!    `clip_text_encode`, the second `clip_text_encode_2`. Classes outside the table use
//!    [`snake_case`] of the class name plus `_1`, `_2`, ...
//! 5. **Collisions.** If a name was already given (two classes folding to the same snake case, or a
//!    user table mapping two classes to one name), the later node in visit order gets the name with
//!    `_dup`, `_dup2`, ... appended, skipping any name another node would get.
//!
//! Steps 2–5 are [`plan`], written once over the [`Structure`] trait and used by both routes:
//! [`normalize`] on a parsed `serde_json` map (verify, send, `--check`, wrappers, stdin), and
//! [`fast`], which `comfyctl normalize FILE` uses to go from text to text without building a
//! `Value` tree — same bytes, a fraction of the time and memory on large workflows.
//!
//! Comfyctl does not rename for ComfyUI's output cache: its key ignores node IDs (see README). Stable
//! IDs matter for readable diffs, `--set NODE.INPUT`, the node *object* cache (keyed by ID + class),
//! and error messages that mean the same thing on every run.

pub mod fast;

use crate::diagnostic::Diagnostic;
use crate::workflow::{Graph, Input};
use rustc_hash::{FxHashMap, FxHashSet};
use serde_json::{Map, Value};
use std::borrow::Cow;
use std::fmt::Write as _;

/// The built-in table: class type → name of its first node. Taken from the Python tool comfyctl
/// replaces, so existing names stay as users know them.
pub const BUILTIN_NAMES: &[(&str, &str)] = &[
    ("LoadDiffusionModelShared //Inspire", "model_loader_1"),
    ("CLIPLoader", "clip_loader_1"),
    ("VAELoader", "vae_loader_1"),
    ("CLIPVisionLoader", "clip_vision_loader_1"),
    ("WanImageToVideo", "wan_i2v_1"),
    ("LoadImage", "load_image_1"),
    ("CLIPVisionEncode", "clip_vision_encode_1"),
    ("ModelSamplingSD3", "model_sampling_1"),
    ("KSampler", "ksampler_1"),
    ("VAEDecode", "vae_decode_1"),
    ("CLIPTextEncode", "clip_text_encode"),
    ("SaveAnimatedWEBP", "save_webp_1"),
    ("VHS_VideoCombine", "vhs_videocombine_1"),
];

/// Class type → name of the first node of that class.
#[derive(Debug, Clone)]
pub struct NameTable {
    first: FxHashMap<String, String>,
}

impl Default for NameTable {
    fn default() -> Self {
        Self::builtin()
    }
}

impl NameTable {
    pub fn builtin() -> Self {
        NameTable {
            first: BUILTIN_NAMES
                .iter()
                .map(|&(c, n)| (c.to_string(), n.to_string()))
                .collect(),
        }
    }

    /// Adds or overrides entries from a `--names` JSON object (class type → name).
    pub fn extend_from_json(&mut self, v: &Value) -> Result<(), String> {
        let obj = v
            .as_object()
            .ok_or("the names file must be a JSON object of class_type -> name")?;
        for (class, name) in obj {
            let name = name
                .as_str()
                .ok_or_else(|| format!("the name for '{class}' must be a string"))?;
            if name.is_empty()
                || !name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
            {
                return Err(format!(
                    "the name for '{class}' is {name:?}; use letters, digits, '_' and '-' only"
                ));
            }
            self.first.insert(class.clone(), name.to_string());
        }
        Ok(())
    }

    /// The name of the `k`-th (1-based) node of `class`.
    pub fn name(&self, class: &str, k: usize) -> String {
        let mut out = String::new();
        self.parts(class).push_name(&mut out, k);
        out
    }

    /// What the names of `class` are made of, worked out once per class.
    fn parts(&self, class: &str) -> NameParts<'_> {
        match self.first.get(class) {
            Some(first) => NameParts {
                first: Some(first),
                base: Cow::Borrowed(first.strip_suffix("_1").unwrap_or(first)),
            },
            None => NameParts {
                first: None,
                base: Cow::Owned(snake_case(class)),
            },
        }
    }
}

/// The names of one class: `first` for the first node when the table has the class, otherwise
/// and for the k-th (k >= 2) node `{base}_{k}`.
struct NameParts<'t> {
    first: Option<&'t str>,
    base: Cow<'t, str>,
}

impl NameParts<'_> {
    fn push_name(&self, out: &mut String, k: usize) {
        match self.first {
            Some(first) if k == 1 => out.push_str(first),
            _ => {
                out.push_str(&self.base);
                out.push('_');
                // Writing into a String cannot fail.
                let _ = write!(out, "{k}");
            }
        }
    }
}

/// Folds a class name to `snake_case`: a `_` goes before an upper-case letter that follows a
/// lower-case letter or a digit, and before the last capital of a run of two or more capitals
/// when a lower-case letter follows (`UNETLoader` → `unet_loader`, `VAEDecode` → `vae_decode`); a
/// single leading capital stays attached (`KSamplerAdvanced` → `ksampler_advanced`). Then
/// everything is lower-cased, every character outside `[a-z0-9_]` becomes `_`, runs of `_`
/// collapse, and leading/trailing `_` are dropped. An empty result becomes `node`.
pub fn snake_case(class: &str) -> String {
    let chars: Vec<char> = class.chars().collect();
    let mut out = String::with_capacity(class.len() + 4);
    let mut upper_run = 0usize;
    for (i, &c) in chars.iter().enumerate() {
        if c.is_ascii_uppercase() {
            let prev = if i > 0 { Some(chars[i - 1]) } else { None };
            let next_lower = chars.get(i + 1).is_some_and(|n| n.is_ascii_lowercase());
            let split = match prev {
                Some(p) if p.is_ascii_lowercase() || p.is_ascii_digit() => true,
                Some(p) if p.is_ascii_uppercase() => next_lower && upper_run >= 2,
                _ => false,
            };
            if split {
                out.push('_');
            }
            upper_run += 1;
            out.push(c.to_ascii_lowercase());
        } else {
            upper_run = 0;
            if c.is_ascii_lowercase() || c.is_ascii_digit() {
                out.push(c);
            } else {
                out.push('_');
            }
        }
    }
    let mut folded = String::with_capacity(out.len());
    for c in out.chars() {
        if c == '_' && (folded.is_empty() || folded.ends_with('_')) {
            continue;
        }
        folded.push(c);
    }
    while folded.ends_with('_') {
        folded.pop();
    }
    if folded.is_empty() {
        folded.push_str("node");
    }
    folded
}

/// The result of normalizing one node map.
#[derive(Debug, Clone)]
pub struct Normalized {
    /// The renamed nodes, in visit order (dependencies first).
    pub nodes: Map<String, Value>,
    /// `(old ID, new ID)` in output order.
    pub map: Vec<(String, String)>,
    /// Groups of sinks whose structure is identical, whose order was decided by literal values
    /// or old IDs. Their names can swap when those values change (reported by `verify`).
    pub literal_ties: Vec<Vec<String>>,
}

impl Normalized {
    pub fn renamed(&self, old: &str) -> Option<&str> {
        self.map
            .iter()
            .find(|(o, _)| o == old)
            .map(|(_, n)| n.as_str())
    }
}

/// Normalizes a node map. Fails (with every problem) if the graph is structurally invalid:
/// dangling links, malformed nodes or cycles have no well-defined structural names.
pub fn normalize(
    nodes: &Map<String, Value>,
    file: &str,
    table: &NameTable,
) -> Result<Normalized, Vec<Diagnostic>> {
    let graph = Graph::build(nodes, file)?;
    Ok(normalize_graph(&graph, nodes, table))
}

/// What the naming rule reads from a graph. Two views implement it: the validated [`Graph`] over a
/// `serde_json` tree, and [`fast::TextWorkflow`], which reads a workflow straight from its text for
/// `comfyctl normalize`. Both feed the same [`plan`], so both give the same names and order.
pub(crate) trait Structure {
    fn len(&self) -> usize;
    fn id(&self, i: usize) -> &str;
    fn class(&self, i: usize) -> &str;
    /// [`hash_bytes`] of `_meta.title`, when it is a string.
    fn title_hash(&self, i: usize) -> Option<u64>;
    /// [`hash_bytes`] of the class type (a view may cache it).
    fn class_hash(&self, i: usize) -> u64 {
        hash_bytes(self.class(i).as_bytes())
    }
    fn input_count(&self, i: usize) -> usize;
    /// Kind of input `j` of node `i`, in the node's own input order.
    fn input(&self, i: usize, j: usize) -> Input;
    /// [`hash_bytes`] of the name of input `j` of node `i`.
    fn input_name_hash(&self, i: usize, j: usize) -> u64;
    /// FNV-1a hash of the compact JSON (`serde_json::to_string`) of literal input `j` of node `i`.
    fn literal_hash(&self, i: usize, j: usize) -> u64;
    /// The graph's [`Links`], if the view keeps them (otherwise [`plan`] builds them).
    fn links(&self) -> Option<&Links> {
        None
    }
    /// A hint that `nodes` are about to be read: a view may pull their data into cache.
    fn prefetch(&self, _nodes: &[usize]) {}
}

impl Structure for Graph<'_> {
    fn len(&self) -> usize {
        self.ids.len()
    }
    fn id(&self, i: usize) -> &str {
        self.ids[i]
    }
    fn class(&self, i: usize) -> &str {
        self.class[i]
    }
    fn title_hash(&self, i: usize) -> Option<u64> {
        self.titles[i].map(|t| hash_bytes(t.as_bytes()))
    }
    fn input_count(&self, i: usize) -> usize {
        self.inputs[i].len()
    }
    fn input(&self, i: usize, j: usize) -> Input {
        self.inputs[i][j].1
    }
    fn input_name_hash(&self, i: usize, j: usize) -> u64 {
        hash_bytes(self.inputs[i][j].0.as_bytes())
    }
    fn literal_hash(&self, i: usize, j: usize) -> u64 {
        let mut h = Fnv::new();
        // Writing into a hasher cannot fail, and a `Value` always serializes.
        let _ = serde_json::to_writer(&mut h, self.inputs[i][j].2);
        h.finish()
    }
}

fn splitmix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Order-sensitive combination of two hashes.
fn mix(h: u64, x: u64) -> u64 {
    splitmix(h.rotate_left(23) ^ x)
}

/// FNV-1a: fixed, platform-independent, fast enough for names and class types.
fn hash_bytes(b: &[u8]) -> u64 {
    let mut h = Fnv::new();
    h.update(b);
    h.finish()
}

/// Streaming FNV-1a, so a literal can be hashed as `serde_json` writes it, without first building
/// the string: the result is the same as [`hash_bytes`] over the whole text.
pub(crate) struct Fnv(u64);

impl Fnv {
    pub(crate) fn new() -> Self {
        Fnv(0xcbf2_9ce4_8422_2325)
    }
    pub(crate) fn update(&mut self, b: &[u8]) {
        let mut h = self.0;
        for &x in b {
            h ^= x as u64;
            h = h.wrapping_mul(0x100_0000_01b3);
        }
        self.0 = h;
    }
    pub(crate) fn finish(&self) -> u64 {
        self.0
    }
}

impl std::io::Write for Fnv {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.update(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

const TAG_VALUE: u64 = 0x0056_414c_5545;
const TAG_LINK: u64 = 0x4c49_4e4b;

/// Link sources only, node by node in input order (compressed rows). The graph walks read this
/// small array instead of every input, which keeps them in cache on large workflows.
pub(crate) struct Links {
    start: Vec<u32>,
    src: Vec<u32>,
}

impl Links {
    pub(crate) fn of<S: Structure>(g: &S) -> Links {
        let n = g.len();
        let mut start = Vec::with_capacity(n + 1);
        let mut src = Vec::new();
        for i in 0..n {
            start.push(src.len() as u32);
            for j in 0..g.input_count(i) {
                if let Input::Link { src: s, .. } = g.input(i, j) {
                    src.push(s as u32);
                }
            }
        }
        start.push(src.len() as u32);
        Links { start, src }
    }

    pub(crate) fn len(&self) -> usize {
        self.start.len() - 1
    }

    /// Link sources of node `i`, in input order.
    pub(crate) fn of_node(&self, i: usize) -> &[u32] {
        &self.src[self.start[i] as usize..self.start[i + 1] as usize]
    }
}

/// Post-order depth-first walk from each of `roots` in turn, following inputs in each node's own
/// order: every link source comes before its consumer. Iterative, so a 100k-node chain cannot
/// overflow the stack.
fn post_order(links: &Links, roots: impl IntoIterator<Item = usize>) -> Vec<usize> {
    let n = links.len();
    let mut order = Vec::with_capacity(n);
    let mut done = vec![false; n];
    let mut stack: Vec<(usize, usize)> = Vec::new();
    for s in roots {
        if done[s] {
            continue;
        }
        stack.push((s, 0));
        done[s] = true;
        while let Some(top) = stack.last_mut() {
            let (node, pos) = (top.0, top.1);
            let row = links.of_node(node);
            if pos < row.len() {
                top.1 += 1;
                let src = row[pos] as usize;
                if !done[src] {
                    done[src] = true;
                    stack.push((src, 0));
                }
            } else {
                order.push(node);
                stack.pop();
            }
        }
    }
    order
}

/// Nodes whose outputs nobody consumes, in index order.
fn sinks(links: &Links) -> Vec<usize> {
    let n = links.len();
    let mut consumed = vec![false; n];
    for &src in &links.src {
        consumed[src as usize] = true;
    }
    (0..n).filter(|&i| !consumed[i]).collect()
}

/// Structural (or, with `literals`, full) upstream signature of every node.
fn signatures<S: Structure>(g: &S, topo: &[usize], literals: bool) -> Vec<u64> {
    let mut sig = vec![0u64; g.len()];
    for &i in topo.chunks(64).flat_map(|batch| {
        g.prefetch(batch);
        batch
    }) {
        let mut h = g.class_hash(i);
        for j in 0..g.input_count(i) {
            h = mix(h, g.input_name_hash(i, j));
            h = match g.input(i, j) {
                Input::Link { src, slot } => mix(mix(mix(h, TAG_LINK), sig[src]), slot),
                Input::Value if literals => mix(mix(h, TAG_VALUE), g.literal_hash(i, j)),
                Input::Value => mix(h, TAG_VALUE),
            };
        }
        if literals {
            if let Some(t) = g.title_hash(i) {
                h = mix(h, t);
            }
        }
        sig[i] = h;
    }
    sig
}

/// Colour refinement (Weisfeiler-Lehman) for breaking ties between structurally identical sinks.
///
/// Starts from the full upstream signature (structure *and* literal values) and repeatedly mixes
/// in each node's input colours (in input order) and the sorted colours of its consumers, until
/// the number of distinct colours stops growing. Two sinks whose upstream copies differ only in
/// where else they are used (one `LoadImage` also feeds a preview, its twin does not) end up with
/// different colours, so their order no longer depends on old IDs or file order. Only run when
/// such ties exist, so it costs nothing on ordinary workflows.
fn refine<S: Structure>(g: &S, links: &Links, mut color: Vec<u64>) -> Vec<u64> {
    let n = g.len();
    // Consumers of each node (compressed rows): (consumer, input name hash, output slot).
    let mut count = vec![0u32; n + 1];
    for &src in &links.src {
        count[src as usize + 1] += 1;
    }
    for i in 0..n {
        count[i + 1] += count[i];
    }
    let mut fill = count.clone();
    let mut consumers = vec![(0u32, 0u64, 0u64); links.src.len()];
    for i in 0..n {
        for j in 0..g.input_count(i) {
            if let Input::Link { src, slot } = g.input(i, j) {
                let at = &mut fill[src];
                consumers[*at as usize] = (i as u32, g.input_name_hash(i, j), slot);
                *at += 1;
            }
        }
    }
    let mut scratch: Vec<u64> = Vec::with_capacity(n);
    let mut distinct = |c: &[u64]| {
        scratch.clear();
        scratch.extend_from_slice(c);
        scratch.sort_unstable();
        scratch.dedup();
        scratch.len()
    };
    let mut classes = distinct(&color);
    let mut down: Vec<u64> = Vec::new();
    let mut next = vec![0u64; n];
    for _ in 0..n {
        for (i, slot) in next.iter_mut().enumerate() {
            let mut h = color[i];
            for &src in links.of_node(i) {
                h = mix(h, color[src as usize]);
            }
            down.clear();
            down.extend(
                consumers[count[i] as usize..count[i + 1] as usize]
                    .iter()
                    .map(|&(c, name, slot)| mix(mix(color[c as usize], name), slot)),
            );
            down.sort_unstable();
            for &d in &down {
                h = mix(h, d);
            }
            *slot = h;
        }
        let k = distinct(&next);
        std::mem::swap(&mut color, &mut next);
        if k <= classes {
            break;
        }
        classes = k;
    }
    color
}

/// The outcome of the naming rule: which node goes where and what it is called.
pub(crate) struct Plan {
    /// Node indices in output (visit) order.
    pub(crate) order: Vec<usize>,
    /// New IDs, one after another in output order: node `i`'s is `names[span[i].0..span[i].1]`.
    /// One buffer in the order they are written keeps a 100k-node write cache-friendly.
    names: String,
    span: Vec<(u32, u32)>,
    pub(crate) literal_ties: Vec<Vec<String>>,
}

impl Plan {
    /// The new ID of node `i`.
    pub(crate) fn new_id(&self, i: usize) -> &str {
        let (a, b) = self.span[i];
        &self.names[a as usize..b as usize]
    }
}

/// Dense class numbers in the order of the class strings, so that comparing two nodes' numbers
/// is comparing their class types; and the class types in that order.
fn class_ranks<S: Structure>(g: &S) -> (Vec<u32>, Vec<&str>) {
    let n = g.len();
    let mut ids: FxHashMap<&str, u32> = FxHashMap::default();
    let mut classes: Vec<&str> = Vec::new();
    let mut rank: Vec<u32> = (0..n)
        .map(|i| {
            let c = g.class(i);
            *ids.entry(c).or_insert_with(|| {
                classes.push(c);
                (classes.len() - 1) as u32
            })
        })
        .collect();
    let mut by_name: Vec<u32> = (0..classes.len() as u32).collect();
    by_name.sort_unstable_by_key(|&k| classes[k as usize]);
    let mut rank_of = vec![0u32; classes.len()];
    for (r, &k) in by_name.iter().enumerate() {
        rank_of[k as usize] = r as u32;
    }
    for r in &mut rank {
        *r = rank_of[*r as usize];
    }
    let sorted = by_name.iter().map(|&k| classes[k as usize]).collect();
    (rank, sorted)
}

/// Steps 2–5 of the rule (module docs) on an acyclic graph whose links all resolve.
pub(crate) fn plan<S: Structure>(g: &S, table: &NameTable) -> Plan {
    let n = g.len();
    let (rank, classes) = class_ranks(g);
    let built;
    let links = match g.links() {
        Some(l) => l,
        None => {
            built = Links::of(g);
            &built
        }
    };
    let topo = post_order(links, 0..n);
    let sig = signatures(g, &topo, false);

    // 2. Sink order: by class type, then structure; literal values and old IDs only for ties.
    let mut sinks = sinks(links);
    sinks.sort_by(|&a, &b| (rank[a], sig[a]).cmp(&(rank[b], sig[b])));
    let mut literal_ties = Vec::new();
    let has_tie = sinks
        .windows(2)
        .any(|w| rank[w[0]] == rank[w[1]] && sig[w[0]] == sig[w[1]]);
    if has_tie {
        let color = refine(g, links, signatures(g, &topo, true));
        sinks.sort_by(|&a, &b| {
            (rank[a], sig[a], color[a], g.id(a)).cmp(&(rank[b], sig[b], color[b], g.id(b)))
        });
        let mut start = 0;
        for end in 1..=sinks.len() {
            if end == sinks.len() || sig[sinks[end]] != sig[sinks[start]] {
                if end - start > 1 {
                    literal_ties.push(
                        sinks[start..end]
                            .iter()
                            .map(|&i| g.id(i).to_string())
                            .collect(),
                    );
                }
                start = end;
            }
        }
    }
    drop(topo);

    // 3. Post-order walk from the sinks, inputs in the node's own order.
    let order = post_order(links, sinks);
    debug_assert_eq!(order.len(), n, "every node of a DAG reaches a sink");

    // 4. Candidate names, numbered per class in visit order, written one after another.
    let parts: Vec<NameParts> = classes.iter().map(|c| table.parts(c)).collect();
    let mut counters = vec![0usize; classes.len()];
    let mut names = String::with_capacity(n * 16);
    let mut span = vec![(0u32, 0u32); n];
    for &i in &order {
        let r = rank[i] as usize;
        counters[r] += 1;
        let start = names.len();
        parts[r].push_name(&mut names, counters[r]);
        // Names are short; a workflow whose names pass 4 GiB cannot be in memory anyway.
        span[i] = (start as u32, names.len() as u32);
    }
    let name_of = |i: usize| &names[span[i].0 as usize..span[i].1 as usize];

    // 5. Collisions: the earlier node in visit order keeps the name; a later one gets the first
    // of `_dup`, `_dup2`, ... that is neither given already nor any node's candidate. (A candidate
    // can only be "given already" as itself, since an alternative is never a candidate.)
    let mut seen: FxHashSet<&str> = FxHashSet::with_capacity_and_hasher(n, Default::default());
    let dups: Vec<usize> = order
        .iter()
        .copied()
        .filter(|&i| !seen.insert(name_of(i)))
        .collect();
    drop(seen);
    let mut alts: Vec<(usize, String)> = Vec::with_capacity(dups.len());
    if !dups.is_empty() {
        let all: FxHashSet<&str> = order.iter().map(|&i| name_of(i)).collect();
        let mut given_alts: FxHashSet<String> = FxHashSet::default();
        for &i in &dups {
            let cand = name_of(i);
            let mut k = 1;
            let alt = loop {
                let alt = if k == 1 {
                    format!("{cand}_dup")
                } else {
                    format!("{cand}_dup{k}")
                };
                if !given_alts.contains(&alt) && !all.contains(alt.as_str()) {
                    break alt;
                }
                k += 1;
            };
            given_alts.insert(alt.clone());
            alts.push((i, alt));
        }
    }
    for (i, alt) in alts {
        let start = names.len();
        names.push_str(&alt);
        span[i] = (start as u32, names.len() as u32);
    }
    Plan {
        order,
        names,
        span,
        literal_ties,
    }
}

fn normalize_graph(g: &Graph, nodes: &Map<String, Value>, table: &NameTable) -> Normalized {
    let plan = plan(g, table);
    let (order, new_id) = (&plan.order, |i: usize| plan.new_id(i).to_string());
    let n = order.len();

    // Rewrite. Node objects get ComfyUI's export key order: inputs, class_type, _meta, then others.
    let mut out = Map::with_capacity(n);
    let mut map = Vec::with_capacity(n);
    let node_values: Vec<&Value> = nodes.values().collect();
    for &i in order {
        let old = node_values[i].as_object().expect("validated");
        let mut node = Map::with_capacity(old.len());
        let mut inputs = Map::with_capacity(g.inputs[i].len());
        for &(name, inp, v) in &g.inputs[i] {
            let v = match inp {
                Input::Link { src, .. } => {
                    let slot = v.as_array().expect("a link is an array")[1].clone();
                    Value::Array(vec![Value::String(new_id(src)), slot])
                }
                Input::Value => v.clone(),
            };
            inputs.insert(name.to_string(), v);
        }
        node.insert("inputs".into(), Value::Object(inputs));
        node.insert("class_type".into(), old["class_type"].clone());
        if let Some(m) = old.get("_meta") {
            node.insert("_meta".into(), m.clone());
        }
        for (k, v) in old {
            if k != "inputs" && k != "class_type" && k != "_meta" {
                node.insert(k.clone(), v.clone());
            }
        }
        out.insert(new_id(i), Value::Object(node));
        map.push((g.ids[i].to_string(), new_id(i)));
    }
    Normalized {
        nodes: out,
        map,
        literal_ties: plan.literal_ties,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snake_case_rule() {
        assert_eq!(snake_case("UNETLoader"), "unet_loader");
        assert_eq!(snake_case("KSamplerAdvanced"), "ksampler_advanced");
        assert_eq!(snake_case("KSampler"), "ksampler");
        assert_eq!(snake_case("VAEDecode"), "vae_decode");
        assert_eq!(snake_case("CLIPTextEncode"), "clip_text_encode");
        assert_eq!(snake_case("ImageScale"), "image_scale");
        assert_eq!(snake_case("EmptySD3LatentImage"), "empty_sd3_latent_image");
        assert_eq!(snake_case("ModelSamplingSD3"), "model_sampling_sd3");
        assert_eq!(
            snake_case("LoadDiffusionModelShared //Inspire"),
            "load_diffusion_model_shared_inspire"
        );
        assert_eq!(snake_case("Image Save"), "image_save");
        assert_eq!(snake_case("VHS_VideoCombine"), "vhs_video_combine");
        assert_eq!(snake_case("🎥"), "node");
    }

    #[test]
    fn table_names() {
        let t = NameTable::builtin();
        assert_eq!(t.name("KSampler", 1), "ksampler_1");
        assert_eq!(t.name("KSampler", 2), "ksampler_2");
        assert_eq!(t.name("CLIPTextEncode", 1), "clip_text_encode");
        assert_eq!(t.name("CLIPTextEncode", 2), "clip_text_encode_2");
        assert_eq!(t.name("UNETLoader", 1), "unet_loader_1");
    }
}

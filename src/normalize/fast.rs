//! `comfyctl normalize` straight from the workflow's text.
//!
//! Why this exists: a `serde_json::Value` tree built with `preserve_order` and
//! `arbitrary_precision` (which comfyctl needs so numbers and key order survive) costs about 2 KB
//! per node: an index map per object, a heap string per key and per number. A 100k-node workflow
//! took ~200 MB per tree, and normalizing held the input tree, a copy for `--check`, the renamed
//! tree, its copy in the document and the output text: ~900 MB and 3 s, slower than the Python
//! tool it replaces. This view instead keeps node IDs, class types and input names as slices of
//! the text, each literal value as its exact text (`&RawValue`), and writes the pretty-printed
//! result straight to the output: memory is the text plus 64 bytes per node and 48 per input,
//! and the time one parse, the naming rule and one write (`scripts/bench_normalize.sh`). On a
//! large file the parse and the write each run on two threads, one half of the nodes each
//! ([`with_workflow`], [`TextNormalized::write_pretty`]): 100k nodes take ~130 ms as a whole
//! process, ~20x less than the Python tool.
//!
//! It is only a faster road to the *same bytes* as the general path
//! ([`super::normalize`] + `serde_json::to_string_pretty`): names and order come from the same
//! [`super::plan`], literal values are hashed as the compact JSON `serde_json` would produce, and
//! every value is written as `serde_json` would write it back ([`push_value`]). Whatever it does
//! not reproduce exactly — wrapper documents, UI format, any structural problem (the general path
//! reports those with diagnostics), duplicate keys, node IDs or input names written with escapes,
//! very deeply nested literals, output indices past 2^32 — makes [`TextWorkflow::parse`] return
//! `None`, and the caller takes the general path. The tests below check both claims on generated
//! workflows with escapes, exponents, nested literals, odd `_meta`s and name collisions.

use super::{hash_bytes, plan, Fnv, Links, NameTable, Plan, Structure};
use crate::workflow::Input;
use rustc_hash::FxHashMap;
use serde::de::{DeserializeSeed, Deserializer, Error as _, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::Value;
use std::borrow::Cow;
use std::fmt;
use std::io::{self, Write};
use std::sync::OnceLock;

/// Literal values nested deeper than this send the file to the general path. `serde_json` stops
/// at 128 levels counted from the top of the document (a literal input sits at level 4), and its
/// raw-value scanner does not count levels at all; staying well below keeps both paths agreeing
/// on which files parse.
const MAX_LITERAL_DEPTH: usize = 100;

/// From this many nodes on, a second thread helps (literal hashes, half of the output).
const PARALLEL_NODES: usize = 20_000;

/// Nodes whose data [`TextNormalized::warm`] pulls into cache ahead of writing them.
const WARM_BATCH: usize = 64;

/// One input of one node. Kept small (32 bytes: the name and the value are places in the text)
/// and self-contained: the naming rule reads only this, never the text, so its passes over 100k
/// nodes stay in cache.
#[derive(Clone, Copy)]
struct TextInput {
    name: Span,
    /// The value exactly as written.
    value: Span,
    name_hash: u64,
    /// Link source node, or [`NOT_A_LINK`].
    src: u32,
    slot: u32,
}

const NOT_A_LINK: u32 = u32::MAX;

/// A slice of the workflow's text, by byte offset (texts past 4 GiB take the general path).
#[derive(Clone, Copy)]
struct Span {
    start: u32,
    len: u32,
}

impl Span {
    /// `part` must be a slice of `text`.
    fn of(text: &str, part: &str) -> Span {
        Span {
            start: (part.as_ptr() as usize - text.as_ptr() as usize) as u32,
            len: part.len() as u32,
        }
    }

    fn get<'a>(&self, text: &'a str) -> &'a str {
        &text[self.start as usize..(self.start + self.len) as usize]
    }
}

impl TextInput {
    fn kind(&self) -> Input {
        if self.src == NOT_A_LINK {
            Input::Value
        } else {
            Input::Link {
                src: self.src as usize,
                slot: self.slot as u64,
            }
        }
    }
}

/// Links whose targets are looked up once every node ID is known (links point forward too).
/// Kept small (12 bytes a link), since a large workflow has hundreds of thousands of them: a
/// decimal target ID is stored as its value (see [`NodeIndex`]), any other in `ids`.
#[derive(Default)]
struct PendingLinks<'a> {
    /// (input index, output index, target): the target's value, or [`BY_ID`] + index into `ids`.
    links: Vec<(u32, u32, u32)>,
    ids: Vec<Cow<'a, str>>,
    /// The [`NodeIndex::dense_limit`] of the index the links will be looked up in.
    dense_limit: usize,
}

const BY_ID: u32 = 1 << 31;

impl<'a> PendingLinks<'a> {
    /// Notes that input `input` links to output `slot` of node `target`; `false` for an output
    /// index past u32 (legal but absurd: the general path has those).
    fn push(&mut self, input: usize, target: Cow<'a, str>, slot: u64) -> bool {
        let Ok(slot) = u32::try_from(slot) else {
            return false;
        };
        let target = match decimal(&target, self.dense_limit) {
            Some(v) => v as u32,
            None => {
                self.ids.push(target);
                BY_ID | (self.ids.len() - 1) as u32
            }
        };
        self.links.push((input as u32, slot, target));
        true
    }

    /// Adds `other`'s links, whose inputs are numbered from `inputs` on here.
    fn append(&mut self, other: PendingLinks<'a>, inputs: u32) {
        let ids = self.ids.len() as u32;
        self.links
            .extend(other.links.iter().map(|&(input, slot, target)| {
                let target = if target & BY_ID == 0 {
                    target
                } else {
                    target + ids
                };
                (input + inputs, slot, target)
            }));
        self.ids.extend(other.ids);
    }

    /// The node a link's `target` names in `index`, if there is one.
    fn source(&self, target: u32, index: &NodeIndex) -> Option<usize> {
        if target & BY_ID == 0 {
            index.get_decimal(target as usize)
        } else {
            index.get(&self.ids[(target & !BY_ID) as usize])
        }
    }
}

/// The value of `id` if it is a canonical decimal (no sign, no leading zero, so distinct strings
/// get distinct values) below `limit`.
fn decimal(id: &str, limit: usize) -> Option<usize> {
    let b = id.as_bytes();
    if b.is_empty() || b.len() > 9 || (b[0] == b'0' && b.len() > 1) {
        return None;
    }
    let mut v = 0usize;
    for &c in b {
        if !c.is_ascii_digit() {
            return None;
        }
        v = v * 10 + (c - b'0') as usize;
    }
    (v < limit).then_some(v)
}

/// Node ID → node number. Most workflows number their nodes "1", "2", …: those IDs index a
/// plain array (4 bytes a slot, so a 100k-node table stays in cache and a lookup is a few
/// instructions). Other IDs of up to 7 bytes are kept packed in a hash key, so a lookup compares
/// integers instead of reading the ID back from a random place in the text; longer ones are
/// hashed as strings.
struct NodeIndex<'a> {
    /// Node number + 1 by ID value (0: no such node), for IDs that are canonical decimals
    /// (no sign, no leading zero, so distinct strings get distinct slots) below `dense_limit`.
    dense: Vec<u32>,
    dense_limit: usize,
    short: FxHashMap<u64, u32>,
    long: FxHashMap<&'a str, u32>,
}

impl<'a> NodeIndex<'a> {
    /// For the nodes of a workflow text of `text_len` bytes.
    fn for_text(text_len: usize) -> Self {
        NodeIndex {
            dense: Vec::new(),
            dense_limit: Self::dense_limit(text_len),
            short: FxHashMap::default(),
            long: FxHashMap::default(),
        }
    }

    /// Room for decimal IDs up to a few times the number of nodes the text can hold (files keep
    /// the numbers of deleted nodes), so the array never costs more than 1/16 of the text.
    fn dense_limit(text_len: usize) -> usize {
        text_len / 64 + 1024
    }

    fn decimal(&self, id: &str) -> Option<usize> {
        decimal(id, self.dense_limit)
    }

    fn pack(id: &str) -> Option<u64> {
        let b = id.as_bytes();
        (b.len() < 8).then(|| {
            let mut k = [0u8; 8];
            k[..b.len()].copy_from_slice(b);
            k[7] = b.len() as u8;
            u64::from_le_bytes(k)
        })
    }

    /// False if `id` was already there.
    fn insert(&mut self, id: &'a str, node: usize) -> bool {
        if let Some(v) = self.decimal(id) {
            if v >= self.dense.len() {
                self.dense.resize(v + 1, 0);
            }
            let slot = &mut self.dense[v];
            let fresh = *slot == 0;
            *slot = node as u32 + 1;
            return fresh;
        }
        match Self::pack(id) {
            Some(k) => self.short.insert(k, node as u32).is_none(),
            None => self.long.insert(id, node as u32).is_none(),
        }
    }

    fn get(&self, id: &str) -> Option<usize> {
        if let Some(v) = self.decimal(id) {
            return self.get_decimal(v);
        }
        match Self::pack(id) {
            Some(k) => self.short.get(&k),
            None => self.long.get(id),
        }
        .map(|&n| n as usize)
    }

    /// The node whose ID is the canonical decimal `v` (below `dense_limit`).
    fn get_decimal(&self, v: usize) -> Option<usize> {
        match self.dense.get(v) {
            Some(&k) if k != 0 => Some(k as usize - 1),
            _ => None,
        }
    }
}

/// One node. Everything the naming rule and the writer need of a node is in this one 64-byte
/// record, so visiting 100k nodes in output order costs one cache miss per node, not one per array.
struct TextNode<'a> {
    id: &'a str,
    meta: Option<&'a RawValue>,
    /// Hash of `_meta.title` (all the naming rule needs of it), taken while the text is in cache.
    title_hash: Option<u64>,
    /// The node's inputs are `inputs[start..start + len]`.
    start: u32,
    len: u32,
    /// Index into `classes`.
    class: u32,
    /// 1 + index into `others`, or 0 when the node has no keys besides inputs, class_type, _meta.
    others: u32,
}

/// A valid, acyclic API-format node map read from text. See the module docs.
pub struct TextWorkflow<'a> {
    nodes: Vec<TextNode<'a>>,
    /// Class types, interned: comparing and hashing them touches this small table, not the text.
    classes: Vec<(Cow<'a, str>, u64)>,
    class_index: FxHashMap<Cow<'a, str>, u32>,
    /// Node keys other than `inputs`, `class_type` and `_meta`, in file order (rare).
    others: Vec<Vec<(Cow<'a, str>, &'a RawValue)>>,
    inputs: Vec<TextInput>,
    text: &'a str,
    /// Hashes of literal inputs (by input index), computed on first use in one sequential pass
    /// over the text: only needed when structurally identical sinks must be ordered.
    literal_hashes: OnceLock<Vec<u64>>,
    index: NodeIndex<'a>,
    pending: PendingLinks<'a>,
    links: Option<Links>,
    text_len: usize,
    /// Set when reading stopped where a node ID was expected (see [`TextWorkflow::read`]).
    cut_between_nodes: bool,
}

/// From this much text on, the two halves of the node map are read on two threads
/// ([`with_workflow`]).
const PARALLEL_PARSE_BYTES: usize = 1 << 20;

/// Reads `text` as a bare node map (see the module docs), runs `f` on it and returns what `f`
/// returns; `None` when the general path must handle this text. A large text is read in two
/// halves on two threads (`text` is changed meanwhile, and left as it was).
///
/// Why the text is borrowed mutably: `serde_json` reads whole values only, so the second half is
/// read as an object of its own, `{"k": {…}, …}`, with the comma before its first node turned
/// into that object's `{`. The comma is punctuation between two nodes, which no part of the
/// workflow ([`Span`], `&RawValue`) covers, and it is put back before this returns.
pub fn with_workflow<R>(text: &mut String, f: impl FnOnce(&TextWorkflow<'_>) -> R) -> Option<R> {
    let split = split_point(text);
    if let Some(at) = split {
        text.replace_range(at..at + 1, "{");
    }
    let parsed = match split {
        Some(at) => TextWorkflow::parse_split(text, at),
        None => None,
    };
    let Some(wf) = parsed else {
        if let Some(at) = split {
            text.replace_range(at..at + 1, ",");
        }
        // No usable split (a small or one-line file, or the guess below was not between two
        // nodes): one thread reads it all.
        return TextWorkflow::parse(text).map(|wf| f(&wf));
    };
    let done = f(&wf);
    drop(wf);
    if let Some(at) = split {
        text.replace_range(at..at + 1, ",");
    }
    Some(done)
}

/// Where to cut a large node map in two: the comma after the first node that ends past the
/// middle of the text, found by the file's own layout: `},` + the line break and indentation
/// that precede the first node ID + `"`. Pretty-printed JSON indents each level differently, so
/// this nearly always is a place between two top-level nodes; [`TextWorkflow::parse_split`]
/// checks that it is. One-line files have no such layout and are read by one thread.
fn split_point(text: &str) -> Option<usize> {
    if text.len() < PARALLEL_PARSE_BYTES {
        return None;
    }
    let b = text.as_bytes();
    let ws = |c: &u8| matches!(c, b' ' | b'\t' | b'\n' | b'\r');
    let open = b.iter().position(|c| !ws(c))?;
    if b[open] != b'{' {
        return None;
    }
    let key = open + 1 + b[open + 1..].iter().position(|c| !ws(c))?;
    let indent = &b[open + 1..key];
    if b[key] != b'"' || !indent.contains(&b'\n') {
        return None;
    }
    let mut pattern = b"},".to_vec();
    pattern.extend_from_slice(indent);
    pattern.push(b'"');
    let mid = text.len() / 2;
    Some(mid + memchr::memmem::find(&b[mid..], &pattern)? + 1)
}

impl<'a> TextWorkflow<'a> {
    /// Reads a bare node map on one thread; `None` when the general path must handle this text
    /// (see module docs).
    pub fn parse(text: &'a str) -> Option<Self> {
        Self::read(text, 0..text.len(), false)?.finish()
    }

    /// Reads a node map whose comma at `at` (between two nodes) was replaced by `{`: the first
    /// half on this thread, the second on another, then joins them. `None` when that is not what
    /// `at` is, or when the general path must handle the text.
    fn parse_split(text: &'a str, at: usize) -> Option<Self> {
        // The first half must end with a node's `}`: serde_json also stops with an EOF right
        // after a comma (`{"1": {…},`), and that first half joined to the second would be `,,`.
        let ends_a_node = text[..at]
            .trim_end_matches([' ', '\t', '\n', '\r'])
            .ends_with('}');
        if text.as_bytes().get(at) != Some(&b'{') || !ends_a_node {
            return None;
        }
        let (first, second) = std::thread::scope(|s| {
            let second = s.spawn(|| Self::read(text, at..text.len(), false));
            let first = Self::read(text, 0..at, true);
            (first, second.join().ok().flatten())
        });
        let mut wf = first?;
        wf.append(second?)?;
        wf.finish()
    }

    /// An empty workflow over `text`, with room for the nodes of `part` bytes of it.
    fn with_room(text: &'a str, part: usize) -> Self {
        // Generous first guesses (a node takes at least ~40 bytes of text, an input ~6), so the
        // big vectors are not copied while they grow; unused capacity is never touched.
        TextWorkflow {
            nodes: Vec::with_capacity(part / 256),
            classes: Vec::new(),
            class_index: FxHashMap::default(),
            others: Vec::new(),
            inputs: Vec::with_capacity(part / 64),
            literal_hashes: OnceLock::new(),
            index: NodeIndex::for_text(text.len()),
            pending: PendingLinks {
                links: Vec::with_capacity(part / 128),
                ids: Vec::new(),
                dense_limit: NodeIndex::dense_limit(text.len()),
            },
            links: None,
            text_len: text.len(),
            text,
            cut_between_nodes: false,
        }
    }

    /// Reads the nodes of the object in `text[part]`. With `cut`, that object is the first half of
    /// a split one: the text must stop right after a node, where the next one would begin.
    fn read(text: &'a str, part: std::ops::Range<usize>, cut: bool) -> Option<Self> {
        if text.len() > u32::MAX as usize {
            return None;
        }
        // The first half gets room for the whole, so appending the second never moves it.
        let mut wf = Self::with_room(text, if cut { text.len() } else { part.len() });
        let mut de = serde_json::Deserializer::from_str(&text[part]);
        let read = TopSeed(&mut wf).deserialize(&mut de);
        if cut {
            // Ended where a node ID was expected (not inside one, nor inside a node), for want
            // of text: the cut is between two top-level nodes.
            match read {
                Err(e) if e.is_eof() && wf.cut_between_nodes => {}
                _ => return None,
            }
        } else {
            read.ok()?;
            de.end().ok()?;
        }
        // An empty map, or an empty half (whose whole would have a stray comma).
        (!wf.nodes.is_empty()).then_some(wf)
    }

    /// Appends the nodes of `other`, read from a later part of the same text.
    fn append(&mut self, other: TextWorkflow<'a>) -> Option<()> {
        let inputs = self.inputs.len() as u32;
        let others = self.others.len() as u32;
        let classes: Vec<u32> = other
            .classes
            .into_iter()
            .map(|(class, hash)| self.intern(class, hash))
            .collect();
        // The inputs (the larger copy) go on a second thread while the nodes are indexed here.
        let (to, from) = (&mut self.inputs, &other.inputs);
        let unique = std::thread::scope(|s| {
            s.spawn(move || to.extend_from_slice(from));
            for mut node in other.nodes {
                if !self.index.insert(node.id, self.nodes.len()) {
                    return false;
                }
                node.start += inputs;
                node.class = classes[node.class as usize];
                if node.others != 0 {
                    node.others += others;
                }
                self.nodes.push(node);
            }
            true
        });
        if !unique {
            return None;
        }
        self.others.extend(other.others);
        self.pending.append(other.pending, inputs);
        Some(())
    }

    /// The number of class type `class` (hashed as `hash`), added if new.
    fn intern(&mut self, class: Cow<'a, str>, hash: u64) -> u32 {
        if let Some(&k) = self.class_index.get(&class) {
            return k;
        }
        let k = self.classes.len() as u32;
        self.classes.push((class.clone(), hash));
        self.class_index.insert(class, k);
        k
    }

    /// Resolves links and checks the graph once every node is read.
    fn finish(mut self) -> Option<Self> {
        if self.nodes.len() >= NOT_A_LINK as usize || self.inputs.len() > u32::MAX as usize {
            return None;
        }
        let pending = std::mem::take(&mut self.pending);
        for &(input, slot, target) in &pending.links {
            // A link to a missing node is an error with a diagnostic: the general path's job.
            let src = pending.source(target, &self.index)?;
            let inp = &mut self.inputs[input as usize];
            inp.src = src as u32;
            inp.slot = slot;
        }
        let links = Links::of(&self);
        if has_cycle(&links) {
            return None;
        }
        self.links = Some(links);
        Some(self)
    }

    /// Runs the naming rule.
    pub fn normalize(&self, table: &NameTable) -> TextNormalized<'_, 'a> {
        let plan = if self.nodes.len() >= PARALLEL_NODES {
            // Large workflows usually repeat pipelines, so structurally identical sinks and with
            // them the literal hashes are likely needed: hash on the second core meanwhile.
            std::thread::scope(|s| {
                s.spawn(|| self.literal_hashes());
                plan(self, table)
            })
        } else {
            plan(self, table)
        };
        TextNormalized { wf: self, plan }
    }

    /// Hashes of every literal input, by input index (0 for links).
    fn literal_hashes(&self) -> &[u64] {
        self.literal_hashes.get_or_init(|| {
            self.inputs
                .iter()
                .map(|inp| {
                    if inp.src != NOT_A_LINK {
                        return 0;
                    }
                    let mut h = Fnv::new();
                    // Checked at parse time, and a hasher never fails to write.
                    let _ = write_compact(&mut h, inp.value.get(self.text));
                    h.finish()
                })
                .collect()
        })
    }

    fn node_inputs(&self, i: usize) -> &[TextInput] {
        let n = &self.nodes[i];
        &self.inputs[n.start as usize..(n.start + n.len) as usize]
    }
}

impl Structure for TextWorkflow<'_> {
    fn len(&self) -> usize {
        self.nodes.len()
    }
    fn id(&self, i: usize) -> &str {
        self.nodes[i].id
    }
    fn class(&self, i: usize) -> &str {
        &self.classes[self.nodes[i].class as usize].0
    }
    fn class_hash(&self, i: usize) -> u64 {
        self.classes[self.nodes[i].class as usize].1
    }
    fn title_hash(&self, i: usize) -> Option<u64> {
        self.nodes[i].title_hash
    }
    fn input_count(&self, i: usize) -> usize {
        self.nodes[i].len as usize
    }
    fn input(&self, i: usize, j: usize) -> Input {
        self.inputs[self.nodes[i].start as usize + j].kind()
    }
    fn input_name_hash(&self, i: usize, j: usize) -> u64 {
        self.inputs[self.nodes[i].start as usize + j].name_hash
    }
    fn literal_hash(&self, i: usize, j: usize) -> u64 {
        self.literal_hashes()[self.nodes[i].start as usize + j]
    }
    fn links(&self) -> Option<&Links> {
        self.links.as_ref()
    }
    fn prefetch(&self, nodes: &[usize]) {
        // See `TextNormalized::warm`: independent reads, so the cache misses overlap.
        let mut acc = 0u64;
        for &i in nodes {
            let n = &self.nodes[i];
            acc = acc.wrapping_add(n.class as u64);
            for inp in &self.inputs[n.start as usize..(n.start + n.len) as usize] {
                acc = acc.wrapping_add(inp.name_hash);
            }
        }
        std::hint::black_box(acc);
    }
}

/// Whether any link path leads from a node back to itself (three-colour iterative DFS).
fn has_cycle(links: &Links) -> bool {
    // 0 = unseen, 1 = on the stack, 2 = done
    let n = links.len();
    let mut state = vec![0u8; n];
    let mut stack: Vec<(usize, usize)> = Vec::new();
    for start in 0..n {
        if state[start] != 0 {
            continue;
        }
        state[start] = 1;
        stack.push((start, 0));
        while let Some(top) = stack.last_mut() {
            let (node, pos) = *top;
            let row = links.of_node(node);
            if pos < row.len() {
                top.1 += 1;
                let src = row[pos] as usize;
                match state[src] {
                    0 => {
                        state[src] = 1;
                        stack.push((src, 0));
                    }
                    1 => return true,
                    _ => {}
                }
            } else {
                state[node] = 2;
                stack.pop();
            }
        }
    }
    false
}

/// A normalized [`TextWorkflow`], ready to be written.
pub struct TextNormalized<'w, 'a> {
    wf: &'w TextWorkflow<'a>,
    plan: Plan,
}

impl TextNormalized<'_, '_> {
    /// `(old ID, new ID)` in output order.
    pub fn map(&self) -> impl Iterator<Item = (&str, &str)> + '_ {
        self.plan
            .order
            .iter()
            .map(|&i| (self.wf.nodes[i].id, self.plan.new_id(i)))
    }

    /// Groups of structurally identical sinks ordered by literal values (see `Normalized`).
    pub fn literal_ties(&self) -> &[Vec<String>] {
        &self.plan.literal_ties
    }

    /// Writes the normalized workflow exactly as the general path would: `serde_json`'s pretty
    /// format with two-space indent and a final newline; node keys in the order inputs,
    /// class_type, _meta, then the others. Output is assembled in a buffer and handed to `w` in
    /// large chunks. A large workflow's second half is formatted on a second thread meanwhile.
    pub fn write_pretty<W: Write>(&self, mut w: W) -> io::Result<()> {
        const CHUNK: usize = 1 << 16;
        let order = &self.plan.order;
        let split = if order.len() >= PARALLEL_NODES {
            order.len() / 2
        } else {
            order.len()
        };
        std::thread::scope(|s| {
            let second = (split < order.len()).then(|| {
                s.spawn(move || -> io::Result<Vec<u8>> {
                    // Sized up front (output is about the input's size; a little over for the
                    // indentation) so the half-written output is never copied while it grows.
                    let mut b = Vec::with_capacity(self.wf.text_len / 2 + self.wf.text_len / 8);
                    let mut scratch = Vec::new();
                    for (k, batch) in order[split..].chunks(WARM_BATCH).enumerate() {
                        self.warm(batch);
                        for (j, &i) in batch.iter().enumerate() {
                            self.push_node(&mut b, split + k * WARM_BATCH + j, i, &mut scratch)?;
                        }
                    }
                    Ok(b)
                })
            });
            let mut scratch = Vec::new();
            let mut b: Vec<u8> = Vec::with_capacity(CHUNK + 4096);
            b.push(b'{');
            for (k, batch) in order[..split].chunks(WARM_BATCH).enumerate() {
                self.warm(batch);
                for (j, &i) in batch.iter().enumerate() {
                    self.push_node(&mut b, k * WARM_BATCH + j, i, &mut scratch)?;
                }
                if b.len() >= CHUNK {
                    w.write_all(&b)?;
                    b.clear();
                }
            }
            w.write_all(&b)?;
            if let Some(second) = second {
                let rest = second
                    .join()
                    .map_err(|_| io::Error::other("the formatting thread panicked"))??;
                w.write_all(&rest)?;
            }
            w.write_all(b"\n}\n")?;
            w.flush()
        })
    }

    /// Reads a byte of everything the next `batch` of nodes will be written from. Output order
    /// jumps around the file, and writing one node is a chain of dependent reads (node, its
    /// inputs, their text) that each miss the cache on a large workflow; this loop's reads are
    /// independent of each other, so the processor overlaps the misses — a prefetch without
    /// `unsafe`.
    fn warm(&self, batch: &[usize]) {
        let wf = self.wf;
        let text = wf.text.as_bytes();
        let mut acc = 0usize;
        for &i in batch {
            let node = &wf.nodes[i];
            acc = acc.wrapping_add(node.id.len());
            for inp in wf.node_inputs(i) {
                acc = acc
                    .wrapping_add(text[inp.name.start as usize] as usize)
                    .wrapping_add(text[inp.value.start as usize] as usize);
            }
        }
        std::hint::black_box(acc);
    }

    /// Appends node `i`, the `pos`-th in output order, with the separator before it.
    fn push_node(
        &self,
        b: &mut Vec<u8>,
        pos: usize,
        i: usize,
        scratch: &mut Vec<u8>,
    ) -> io::Result<()> {
        let (wf, plan) = (self.wf, &self.plan);
        b.extend_from_slice(if pos == 0 { b"\n  " } else { b",\n  " });
        push_str(b, plan.new_id(i));
        b.extend_from_slice(b": {\n    \"inputs\": ");
        let inputs = wf.node_inputs(i);
        if inputs.is_empty() {
            b.extend_from_slice(b"{}");
        } else {
            b.push(b'{');
            for (j, inp) in inputs.iter().enumerate() {
                b.extend_from_slice(if j == 0 { b"\n      " } else { b",\n      " });
                push_str(b, inp.name.get(wf.text));
                b.extend_from_slice(b": ");
                if inp.src == NOT_A_LINK {
                    push_value(b, inp.value.get(wf.text), 3, scratch)?;
                } else {
                    b.extend_from_slice(b"[\n        ");
                    push_str(b, plan.new_id(inp.src as usize));
                    b.extend_from_slice(b",\n        ");
                    push_u32(b, inp.slot);
                    b.extend_from_slice(b"\n      ]");
                }
            }
            b.extend_from_slice(b"\n    }");
        }
        b.extend_from_slice(b",\n    \"class_type\": ");
        push_str(b, wf.class(i));
        let node = &wf.nodes[i];
        if let Some(m) = node.meta {
            b.extend_from_slice(b",\n    \"_meta\": ");
            match simple_title(m.get()) {
                Some(title) => {
                    b.extend_from_slice(b"{\n      \"title\": ");
                    push_str(b, title);
                    b.extend_from_slice(b"\n    }");
                }
                None => push_value(b, m.get(), 2, scratch)?,
            }
        }
        let others = match node.others {
            0 => &[][..],
            k => &wf.others[k as usize - 1][..],
        };
        for (k, v) in others {
            b.extend_from_slice(b",\n    ");
            push_str(b, k);
            b.extend_from_slice(b": ");
            push_value(b, v.get(), 2, scratch)?;
        }
        b.extend_from_slice(b"\n  }");
        Ok(())
    }
}

fn json_err(e: serde_json::Error) -> io::Error {
    io::Error::other(e)
}

/// Whether `s`, a valid JSON string's contents, would be written back by `serde_json` unchanged.
fn plain(s: &str) -> bool {
    !s.bytes().any(|b| b < 0x20 || b == b'"' || b == b'\\')
}

/// A string as `serde_json` writes it.
fn push_str(b: &mut Vec<u8>, s: &str) {
    if plain(s) {
        b.push(b'"');
        b.extend_from_slice(s.as_bytes());
        b.push(b'"');
    } else {
        serde_json::to_writer(&mut *b, s).expect("writing a string to memory cannot fail");
    }
}

fn push_u32(b: &mut Vec<u8>, mut n: u32) {
    let mut digits = [0u8; 10];
    let mut k = digits.len();
    loop {
        k -= 1;
        digits[k] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    b.extend_from_slice(&digits[k..]);
}

/// Whether the raw text of a scalar is exactly what `serde_json` writes for its parsed value:
/// a string without escapes, `true`/`false`/`null`, or a number without an exponent.
/// (With `arbitrary_precision`, a number keeps its digits as written, but an exponent is written
/// back as `e+N`/`e-N`: `1E5` becomes `1e+5`.)
fn verbatim(s: &str) -> bool {
    match s.as_bytes()[0] {
        b'"' => !s.contains('\\'),
        b't' | b'f' | b'n' => true,
        b'-' | b'0'..=b'9' => !s.bytes().any(|b| b == b'e' || b == b'E'),
        _ => false,
    }
}

/// A literal as `serde_json::to_string` would write it (used for literal hashes).
fn write_compact<W: Write>(w: &mut W, s: &str) -> io::Result<()> {
    if verbatim(s) {
        w.write_all(s.as_bytes())
    } else {
        let v: Value = serde_json::from_str(s).map_err(json_err)?;
        serde_json::to_writer(w, &v).map_err(json_err)
    }
}

/// A literal as `serde_json::to_string_pretty` writes it when it sits `level` levels deep.
fn push_value(b: &mut Vec<u8>, s: &str, level: usize, scratch: &mut Vec<u8>) -> io::Result<()> {
    if verbatim(s) {
        b.extend_from_slice(s.as_bytes());
        return Ok(());
    }
    let v: Value = serde_json::from_str(s).map_err(json_err)?;
    scratch.clear();
    serde_json::to_writer_pretty(&mut *scratch, &v).map_err(json_err)?;
    // JSON text has no raw newlines inside strings, so every newline is a line break of the
    // pretty format and gets this value's indentation.
    let mut lines = scratch.split(|&c| c == b'\n');
    if let Some(first) = lines.next() {
        b.extend_from_slice(first);
    }
    for line in lines {
        b.push(b'\n');
        for _ in 0..level {
            b.extend_from_slice(b"  ");
        }
        b.extend_from_slice(line);
    }
    Ok(())
}

/// Nesting depth of `[`/`{` in valid JSON text, or `None` past [`MAX_LITERAL_DEPTH`].
fn depth_ok(s: &str) -> bool {
    let (mut depth, mut in_str, mut esc) = (0usize, false, false);
    for b in s.bytes() {
        if in_str {
            if esc {
                esc = false;
            } else if b == b'\\' {
                esc = true;
            } else if b == b'"' {
                in_str = false;
            }
        } else {
            match b {
                b'"' => in_str = true,
                b'[' | b'{' => {
                    depth += 1;
                    if depth > MAX_LITERAL_DEPTH {
                        return false;
                    }
                }
                b']' | b'}' => depth = depth.saturating_sub(1),
                _ => {}
            }
        }
    }
    true
}

/// Checks that a literal parses as a `Value` exactly as in the general path. The raw-value
/// scanner accepts some text the full parser rejects (lone surrogate escapes such as `"\ud800"`,
/// unlimited nesting); such a file goes to the general path, which reports it.
fn check_literal(s: &str) -> Result<(), &'static str> {
    match s.as_bytes()[0] {
        b'"' if s.contains('\\') => serde_json::from_str::<String>(s)
            .map(drop)
            .map_err(|_| "bad string"),
        b'[' | b'{' => {
            if !depth_ok(s) {
                return Err("too deep");
            }
            serde_json::from_str::<Value>(s)
                .map(drop)
                .map_err(|_| "bad value")
        }
        _ => Ok(()),
    }
}

/// A string's decoded contents, borrowed from the text when it has no escapes.
fn decode_str(raw: &RawValue) -> Result<Cow<'_, str>, &'static str> {
    let s = raw.get();
    if s.contains('\\') {
        serde_json::from_str::<String>(s)
            .map(Cow::Owned)
            .map_err(|_| "bad string")
    } else {
        Ok(Cow::Borrowed(&s[1..s.len() - 1]))
    }
}

/// `_meta.title` when it is a string, as `Graph` reads it (`node["_meta"]["title"].as_str()`).
fn meta_title(raw: &RawValue) -> Result<Option<Cow<'_, str>>, &'static str> {
    let s = raw.get();
    if !s.starts_with('{') {
        check_literal(raw.get())?;
        return Ok(None);
    }
    if let Some(title) = simple_title(s) {
        return Ok(Some(Cow::Borrowed(title)));
    }
    if !depth_ok(s) {
        return Err("too deep");
    }
    if !s.contains('\\') {
        // Without escapes every string in it is valid, so this agrees with a `Value` parse;
        // a repeated or non-string `title` falls through to the exact reading below.
        #[derive(Deserialize)]
        struct Meta<'a> {
            #[serde(borrow)]
            title: Option<CowStr<'a>>,
        }
        if let Ok(m) = serde_json::from_str::<Meta>(s) {
            return Ok(m.title.map(|t| t.0));
        }
    }
    let v: Value = serde_json::from_str(s).map_err(|_| "bad _meta")?;
    Ok(v.get("title")
        .and_then(Value::as_str)
        .map(|t| Cow::Owned(t.to_owned())))
}

/// A tiny cursor over valid JSON text, for the two shapes that make up most of a workflow.
struct Cursor<'a> {
    s: &'a str,
    at: usize,
}

impl<'a> Cursor<'a> {
    fn ws(&mut self) {
        let b = self.s.as_bytes();
        while self.at < b.len() && matches!(b[self.at], b' ' | b'\n' | b'\r' | b'\t') {
            self.at += 1;
        }
    }
    fn eat(&mut self, c: u8) -> Option<()> {
        self.ws();
        (self.s.as_bytes().get(self.at) == Some(&c)).then(|| self.at += 1)
    }
    /// A string without escapes; its contents.
    fn plain_str(&mut self) -> Option<&'a str> {
        self.eat(b'"')?;
        let rest = &self.s[self.at..];
        let end = rest.find('"')?;
        let body = &rest[..end];
        (!body.contains('\\')).then(|| {
            self.at += end + 1;
            body
        })
    }
    fn digits(&mut self) -> Option<&'a str> {
        self.ws();
        let rest = &self.s[self.at..];
        let end = rest
            .bytes()
            .position(|c| !c.is_ascii_digit())
            .unwrap_or(rest.len());
        (end > 0).then(|| {
            self.at += end;
            &rest[..end]
        })
    }
    fn end(&mut self, c: u8) -> Option<()> {
        self.eat(c)?;
        (self.at == self.s.len()).then_some(())
    }
}

/// `["id", 0]` (any whitespace, no escapes in the ID, the index plain digits): the ID and the
/// index's digits. The text is already known to be valid JSON, so this is exact for that shape;
/// every other shape goes through [`Pair`].
fn simple_link(s: &str) -> Option<(&str, &str)> {
    let mut c = Cursor { s, at: 0 };
    c.eat(b'[')?;
    let id = c.plain_str()?;
    c.eat(b',')?;
    let slot = c.digits()?;
    c.end(b']')?;
    Some((id, slot))
}

/// `{"title": "..."}` with nothing else and no escapes: the title.
fn simple_title(s: &str) -> Option<&str> {
    let mut c = Cursor { s, at: 0 };
    c.eat(b'{')?;
    (c.plain_str()? == "title").then_some(())?;
    c.eat(b':')?;
    let title = c.plain_str()?;
    c.end(b'}')?;
    Some(title)
}

/// Records input `input` (value `raw`) as a pending link, or checks it as a literal.
fn classify<'a>(
    raw: &'a RawValue,
    input: usize,
    pending: &mut PendingLinks<'a>,
) -> Result<(), &'static str> {
    let s = raw.get();
    if !s.starts_with('[') {
        return check_literal(raw.get());
    }
    if let Some((target, slot)) = simple_link(s) {
        if let Ok(slot) = slot.parse::<u64>() {
            return pending
                .push(input, Cow::Borrowed(target), slot)
                .then_some(())
                .ok_or("output index past u32");
        }
    }
    let pair: Pair<'a> = serde_json::from_str(s).map_err(|_| "bad array")?;
    if let (2, Some(first), Some(second)) = (pair.count, pair.first, pair.second) {
        // The same reading as `workflow::as_link` / `bad_link_index` on a parsed value:
        // `[string | u64, u64]` is a link; `[string, other number]` is a bad output index (an
        // error: the general path reports it). With `arbitrary_precision`, `as_u64` parses the
        // number's own text.
        let (f, sec) = (first.get(), second.get());
        let slot = sec.parse::<u64>().ok();
        let second_is_number = matches!(sec.as_bytes()[0], b'-' | b'0'..=b'9');
        let target = match f.as_bytes()[0] {
            b'"' => Some(decode_str(first)?),
            b'0'..=b'9' if slot.is_some() && f.parse::<u64>().is_ok() => Some(Cow::Borrowed(f)),
            _ => None,
        };
        match (target, slot) {
            (Some(target), Some(slot)) => {
                return pending
                    .push(input, target, slot)
                    .then_some(())
                    .ok_or("output index past u32");
            }
            (Some(_), None) if second_is_number && f.starts_with('"') => {
                return Err("bad output index");
            }
            _ => {}
        }
    }
    check_literal(raw.get())
}

/// A string, borrowed from the text when it has no escapes.
struct CowStr<'a>(Cow<'a, str>);

impl<'de: 'a, 'a> Deserialize<'de> for CowStr<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = CowStr<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(CowStr(Cow::Borrowed(v)))
            }
            fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
                Ok(CowStr(Cow::Owned(v.to_owned())))
            }
            fn visit_string<E>(self, v: String) -> Result<Self::Value, E> {
                Ok(CowStr(Cow::Owned(v)))
            }
        }
        d.deserialize_str(V)
    }
}

/// The first two elements of an array and its length, without allocating.
struct Pair<'a> {
    count: usize,
    first: Option<&'a RawValue>,
    second: Option<&'a RawValue>,
}

impl<'de: 'a, 'a> Deserialize<'de> for Pair<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Pair<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an array")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                let mut p = Pair {
                    count: 0,
                    first: None,
                    second: None,
                };
                while let Some(e) = seq.next_element::<&'de RawValue>()? {
                    match p.count {
                        0 => p.first = Some(e),
                        1 => p.second = Some(e),
                        _ => {}
                    }
                    p.count += 1;
                }
                Ok(p)
            }
        }
        d.deserialize_seq(V)
    }
}

/// The top-level object: node ID → node.
struct TopSeed<'b, 'a>(&'b mut TextWorkflow<'a>);

impl<'de> DeserializeSeed<'de> for TopSeed<'_, 'de> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for TopSeed<'_, 'de> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an API-format node map")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let wf = self.0;
        loop {
            let mut started = false;
            let key = match map.next_key_seed(KeySeed(&mut started)) {
                Ok(Some(CowStr(key))) => key,
                Ok(None) => break,
                Err(e) => {
                    wf.cut_between_nodes = !started;
                    return Err(e);
                }
            };
            let Cow::Borrowed(id) = key else {
                return Err(A::Error::custom("node ID with escapes"));
            };
            if !wf.index.insert(id, wf.nodes.len()) {
                return Err(A::Error::custom("duplicate node ID"));
            }
            map.next_value_seed(NodeSeed(&mut *wf, id))?;
        }
        Ok(())
    }
}

/// A node ID; notes that reading one began (an error before that is between two nodes).
struct KeySeed<'b>(&'b mut bool);

impl<'de> DeserializeSeed<'de> for KeySeed<'_> {
    type Value = CowStr<'de>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<CowStr<'de>, D::Error> {
        *self.0 = true;
        CowStr::deserialize(d)
    }
}

/// One node object.
struct NodeSeed<'b, 'a>(&'b mut TextWorkflow<'a>, &'a str);

impl<'de> DeserializeSeed<'de> for NodeSeed<'_, 'de> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for NodeSeed<'_, 'de> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a node object")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let (wf, id) = (self.0, self.1);
        let start = wf.inputs.len();
        let mut class: Option<Cow<'de, str>> = None;
        let mut meta: Option<&'de RawValue> = None;
        let mut has_inputs = false;
        let mut others: Vec<(Cow<'de, str>, &'de RawValue)> = Vec::new();
        let dup = || A::Error::custom("duplicate key");
        while let Some(CowStr(key)) = map.next_key()? {
            match &*key {
                "inputs" => {
                    if has_inputs {
                        return Err(dup());
                    }
                    has_inputs = true;
                    map.next_value_seed(InputsSeed(&mut *wf))?;
                }
                "class_type" => {
                    if class.is_some() {
                        return Err(dup());
                    }
                    let CowStr(c) = map.next_value()?;
                    if c.is_empty() {
                        return Err(A::Error::custom("empty class_type"));
                    }
                    class = Some(c);
                }
                "_meta" => {
                    if meta.is_some() {
                        return Err(dup());
                    }
                    meta = Some(map.next_value()?);
                }
                _ => {
                    let v: &'de RawValue = map.next_value()?;
                    if others.len() >= 64 || others.iter().any(|(k, _)| *k == key) {
                        return Err(dup());
                    }
                    check_literal(v.get()).map_err(A::Error::custom)?;
                    others.push((key, v));
                }
            }
        }
        let (Some(class), true) = (class, has_inputs) else {
            return Err(A::Error::custom("not a complete node"));
        };
        let title = match meta {
            Some(m) => meta_title(m).map_err(A::Error::custom)?,
            None => None,
        };
        let class = match wf.class_index.get(&class) {
            Some(&k) => k,
            None => {
                let hash = hash_bytes(class.as_bytes());
                wf.intern(class, hash)
            }
        };
        let others = if others.is_empty() {
            0
        } else {
            wf.others.push(others);
            wf.others.len() as u32
        };
        wf.nodes.push(TextNode {
            id,
            meta,
            title_hash: title.map(|t| hash_bytes(t.as_bytes())),
            start: start as u32,
            len: (wf.inputs.len() - start) as u32,
            class,
            others,
        });
        Ok(())
    }
}

/// A node's `inputs` object.
struct InputsSeed<'b, 'a>(&'b mut TextWorkflow<'a>);

impl<'de> DeserializeSeed<'de> for InputsSeed<'_, 'de> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for InputsSeed<'_, 'de> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an inputs object")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let wf = self.0;
        let first = wf.inputs.len();
        while let Some(CowStr(name)) = map.next_key()? {
            let Cow::Borrowed(name) = name else {
                return Err(A::Error::custom("input name with escapes"));
            };
            let value: &'de RawValue = map.next_value()?;
            classify(value, wf.inputs.len(), &mut wf.pending).map_err(A::Error::custom)?;
            wf.inputs.push(TextInput {
                name: Span::of(wf.text, name),
                value: Span::of(wf.text, value.get()),
                name_hash: hash_bytes(name.as_bytes()),
                src: NOT_A_LINK,
                slot: 0,
            });
        }
        // Repeated input names: `serde_json::Map` keeps one, in the first one's place; leave that
        // to the general path.
        let text = wf.text;
        let names = &wf.inputs[first..];
        let repeated = if names.len() <= 16 {
            names.iter().enumerate().any(|(k, a)| {
                names[..k]
                    .iter()
                    .any(|b| a.name.get(text) == b.name.get(text))
            })
        } else {
            let mut sorted: Vec<&str> = names.iter().map(|t| t.name.get(text)).collect();
            sorted.sort_unstable();
            sorted.windows(2).any(|w| w[0] == w[1])
        };
        if repeated {
            return Err(A::Error::custom("duplicate input name"));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    //! The fast path must give the general path's bytes, or step aside (`None`).
    use super::*;
    use crate::normalize::normalize;
    use crate::workflow::Document;
    use proptest::prelude::*;

    /// The general path: `comfyctl normalize` on a document that is not a plain node map.
    fn general(text: &str, table: &NameTable) -> Option<String> {
        let mut doc = Document::parse(text, "t").ok()?;
        let n = normalize(doc.nodes(), "t", table).ok()?;
        doc.set_nodes(n.nodes);
        Some(doc.to_pretty_string())
    }

    fn fast(text: &str, table: &NameTable) -> Option<String> {
        TextWorkflow::parse(text).map(|wf| render(&wf, table))
    }

    fn render(wf: &TextWorkflow, table: &NameTable) -> String {
        let mut out = Vec::new();
        wf.normalize(table).write_pretty(&mut out).unwrap();
        String::from_utf8(out).unwrap()
    }

    /// Every comma of `text` tried as the cut of a two-thread read ([`TextWorkflow::parse_split`]):
    /// the result is the one-thread read's or `None`, never something else; and at each of
    /// `boundaries` (commas between two top-level nodes) it is the one-thread read's.
    fn split_agrees(
        text: &str,
        boundaries: &[usize],
        table: &NameTable,
    ) -> Result<(), TestCaseError> {
        let whole = fast(text, table);
        for (at, _) in text.match_indices(',') {
            let mut cut = text.to_string();
            cut.replace_range(at..at + 1, "{");
            let split = TextWorkflow::parse_split(&cut, at).map(|wf| render(&wf, table));
            if split.is_some() || (whole.is_some() && boundaries.contains(&at)) {
                prop_assert_eq!(&split, &whole, "cut at byte {} of\n{}", at, text);
            }
        }
        Ok(())
    }

    /// Same bytes whenever the fast path takes the file; and it never takes a file the general
    /// path rejects.
    fn agree(text: &str, table: &NameTable) -> Result<bool, TestCaseError> {
        let g = general(text, table);
        let f = fast(text, table);
        if let Some(f) = &f {
            prop_assert_eq!(Some(f), g.as_ref(), "input:\n{}", text);
        }
        Ok(f.is_some())
    }

    const LITERALS: &[&str] = &[
        r#""plain text""#,
        r#""with \"quote\" and \\ backslash""#,
        r#""\u00e9\n\t tab""#,
        r#""\/slash""#,
        r#""é ünïcödé 色调""#,
        "1",
        "-0",
        "6.0",
        "6",
        "1E5",
        "1e-3",
        "2.5E+10",
        "123456789012345678901234567890",
        "987948718394761",
        "-17",
        "0.10",
        "true",
        "false",
        "null",
        "[]",
        "{}",
        r#"[1, "a", {"k": [2, 1e2]}]"#,
        r#"{"a": 1, "a": 2}"#,
        r#"{"__value__": [1, 2]}"#,
        r#"["nope", 0]"#,
        r#"[5.5, 0]"#,
        r#"["x", 0, 1]"#,
        r#"[ "5" , 1e0 ]"#,
        r#"{"nested":{"deeper":{"s":"\u0041"}}}"#,
    ];
    const CLASSES: &[&str] = &[
        "KSampler",
        "CLIPTextEncode",
        "VAEDecode",
        "VAE Decode",
        "SaveImage",
        "LoadImage",
        "K\\u0053ampler",
        "UNETLoader",
    ];
    const METAS: &[&str] = &[
        r#"{"title": "T"}"#,
        r#"{ "title" : "Same" }"#,
        r#"{"title": "a\u00e9"}"#,
        r#"{"title": 5}"#,
        r#"{"x": 1, "title": "t"}"#,
        r#"{"title": "a", "title": "b"}"#,
        r#""just a string""#,
        r#"["title"]"#,
        "{}",
    ];

    /// One node's text: (class, literal picks, link picks to earlier nodes, meta, extra key).
    type NodeSpec = (usize, Vec<(usize, usize)>, Option<usize>, bool);

    fn node_text(
        k: usize,
        spec: &NodeSpec,
        ids: &[String],
        int_links: bool,
        pretty: bool,
    ) -> String {
        let (class, inputs, meta, extra) = spec;
        let sep = if pretty { ",\n      " } else { "," };
        let mut ins = Vec::new();
        for (j, &(kind, pick)) in inputs.iter().enumerate() {
            let v = if kind % 3 == 0 && k > 0 {
                let target = &ids[pick % k];
                let slot = pick % 3;
                match (int_links, pick % 4) {
                    (true, 0) => format!("[{target}, {slot}]"),
                    (_, 1) => format!("[\n  \"{target}\",\n  {slot}\n]"),
                    (_, 2) => format!("[\"{target}\", -1]"),
                    _ => format!("[\"{target}\",{slot}]"),
                }
            } else {
                LITERALS[pick % LITERALS.len()].to_string()
            };
            ins.push(format!("\"in{}\": {v}", j % 5));
        }
        let mut s = format!(
            "{{\"inputs\": {{{}}}, \"class_type\": \"{}\"",
            ins.join(sep),
            CLASSES[*class % CLASSES.len()]
        );
        if let Some(m) = meta {
            s.push_str(&format!(", \"_meta\": {}", METAS[m % METAS.len()]));
        }
        if *extra {
            s.push_str(", \"color\": \"#322\"");
        }
        s.push('}');
        s
    }

    fn node_spec() -> impl Strategy<Value = NodeSpec> {
        (
            0..CLASSES.len(),
            proptest::collection::vec((0usize..3, 0usize..64), 0..5),
            proptest::option::of(0..METAS.len()),
            proptest::bool::weighted(0.1),
        )
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(400))]
        #[test]
        fn fast_path_matches_general_path(
            specs in proptest::collection::vec(node_spec(), 1..12),
            int_ids in any::<bool>(),
            pretty in any::<bool>(),
            reverse in any::<bool>(),
            clash in any::<bool>(),
        ) {
            let ids: Vec<String> = (0..specs.len())
                .map(|k| if int_ids { (k * 7 + 3).to_string() } else { format!("n{k}") })
                .collect();
            let mut entries: Vec<String> = specs
                .iter()
                .enumerate()
                .map(|(k, spec)| format!("\"{}\": {}", ids[k], node_text(k, spec, &ids, int_ids, pretty)))
                .collect();
            if reverse {
                entries.reverse();
            }
            let sep = if pretty { ",\n  " } else { "," };
            let text = format!("{{{}}}", entries.join(sep));
            let boundaries: Vec<usize> = (1..entries.len())
                .map(|k| 1 + entries[..k].iter().map(|e| e.len()).sum::<usize>() + sep.len() * (k - 1))
                .collect();
            let mut table = NameTable::builtin();
            if clash {
                table
                    .extend_from_json(&serde_json::json!({"SaveImage": "ksampler_2", "LoadImage": "ksampler_1"}))
                    .unwrap();
            }
            agree(&text, &table)?;
            split_agrees(&text, &boundaries, &table)?;
        }
    }

    /// A pretty-printed workflow of `n` nodes (chains of three classes) well past
    /// [`PARALLEL_PARSE_BYTES`] for the sizes used below.
    fn big_workflow(n: usize) -> String {
        let mut m = serde_json::Map::new();
        for i in 1..=n {
            let node = match i % 3 {
                1 => {
                    serde_json::json!({"inputs": {"image": format!("in_{i}.png"), "upload": "image"},
                    "class_type": "LoadImage", "_meta": {"title": "Load Image"}})
                }
                2 => {
                    serde_json::json!({"inputs": {"scale_by": 1.5, "upscale_method": "nearest-exact",
                    "image": [(i - 1).to_string(), 0]}, "class_type": "ImageScaleBy"})
                }
                _ => {
                    serde_json::json!({"inputs": {"filename_prefix": format!("out/{i}"), "fps": 6.0,
                    "images": [(i - 1).to_string(), 0]}, "class_type": "SaveAnimatedWEBP"})
                }
            };
            m.insert(i.to_string(), node);
        }
        serde_json::to_string_pretty(&m).unwrap()
    }

    #[test]
    fn large_files_are_read_in_two_halves_with_the_same_result() {
        let t = NameTable::builtin();
        let text = big_workflow(12_000);
        assert!(text.len() >= PARALLEL_PARSE_BYTES);
        let at = split_point(&text).expect("a pretty-printed node map has a cut");
        assert!(text[..at].ends_with('}') && text[at..].starts_with(",\n  \""));
        let mut cut = text.clone();
        cut.replace_range(at..at + 1, "{");
        assert!(
            TextWorkflow::parse_split(&cut, at).is_some(),
            "the cut is used"
        );

        let mut t2 = text.clone();
        let out = with_workflow(&mut t2, |wf| render(wf, &t));
        assert_eq!(t2, text, "the text is given back unchanged");
        assert_eq!(out, fast(&text, &t));
        assert_eq!(out, general(&text, &t));
    }

    #[test]
    fn a_bad_large_file_is_given_back_unchanged_for_the_general_path() {
        let t = NameTable::builtin();
        let good = big_workflow(12_000);
        // A dangling link in the second half, a duplicate ID across the halves, a stray comma.
        let dangling = good.replacen("\"11999\",", "\"99999\",", 1);
        let duplicate = good.replacen("\"11998\": {", "\"5\": {", 1);
        let stray = good.replacen("},\n  \"11000\"", "},,\n  \"11000\"", 1);
        for bad in [dangling, duplicate, stray] {
            assert_ne!(bad, good);
            let mut text = bad.clone();
            assert!(with_workflow(&mut text, |wf| render(wf, &t)).is_none());
            assert_eq!(text, bad);
        }
    }

    #[test]
    fn a_cut_that_is_not_between_nodes_falls_back_to_one_thread() {
        let t = NameTable::builtin();
        // Node bodies indented like the top level: the layout guess lands inside a node.
        let text = big_workflow(12_000).replace("\n    ", "\n  ");
        let at = split_point(&text).unwrap();
        let mut cut = text.clone();
        cut.replace_range(at..at + 1, "{");
        assert!(TextWorkflow::parse_split(&cut, at).is_none());
        let mut t2 = text.clone();
        let out = with_workflow(&mut t2, |wf| render(wf, &t));
        assert!(out.is_some());
        assert_eq!(out, general(&text, &t));
        assert_eq!(t2, text);
    }

    #[test]
    fn cuts_that_would_accept_invalid_json_are_refused() {
        let node = r#"{"class_type": "A", "inputs": {}}"#;
        let cases = [
            // a raw line break inside a node ID (invalid JSON) right after the cut
            format!("{{\"1\": {node}, \"k,\n  \"2\": {node}}}"),
            // a trailing comma: the second half is empty
            format!("{{\"1\": {node},}}"),
            // a leading comma: the first half is empty
            format!("{{,\"1\": {node}}}"),
        ];
        for text in &cases {
            assert!(general(text, &NameTable::builtin()).is_none(), "{text}");
        }
        // The same ID in both halves (the general path keeps the last one, as serde_json does).
        let duplicate = format!("{{\"1\": {node},\n  \"1\": {node}}}");
        for text in cases.iter().chain([&duplicate]) {
            for (at, _) in text.match_indices(',') {
                let mut cut = text.clone();
                cut.replace_range(at..at + 1, "{");
                assert!(
                    TextWorkflow::parse_split(&cut, at).is_none(),
                    "cut at {at} of {text}"
                );
            }
        }
    }

    #[test]
    fn takes_the_common_shapes() {
        let t = NameTable::builtin();
        let wan = include_str!("../../workflows/wan_i2v.json");
        assert!(agree(wan, &t).unwrap(), "the fast path takes wan_i2v.json");
        let compact = r#"{"1":{"inputs":{"seed":987948718394761,"cfg":6.0,"d":1e-3,"x":6},"class_type":"KSampler"},"2":{"inputs":{"samples":["1",0]},"class_type":"VAEDecode","_meta":{"title":"V"}}}"#;
        assert!(agree(compact, &t).unwrap());
        let out = fast(compact, &t).unwrap();
        assert!(out.contains("\"seed\": 987948718394761,"), "{out}");
        assert!(out.contains("\"cfg\": 6.0,"), "{out}");
        assert!(out.contains("\"d\": 1e-3,"), "{out}");
    }

    #[test]
    fn steps_aside_for_what_it_does_not_handle() {
        let t = NameTable::builtin();
        let cases = [
            // wrappers
            r#"{"input": {"workflow": {"1": {"class_type": "A", "inputs": {}}}, "images": []}}"#,
            r#"{"prompt": {"1": {"class_type": "A", "inputs": {}}}, "client_id": "c"}"#,
            // UI format
            r#"{"nodes": [], "links": [], "version": 0.4}"#,
            // structural problems (the general path reports them)
            r#"{"1": {"class_type": "A", "inputs": {"x": ["9", 0]}}}"#,
            r#"{"1": {"class_type": "A", "inputs": {"x": ["1", -1]}}}"#,
            r#"{"1": {"class_type": "A", "inputs": {"x": ["2", 0]}}, "2": {"class_type": "A", "inputs": {"x": ["1", 0]}}}"#,
            r#"{"1": {"class_type": "", "inputs": {}}}"#,
            r#"{"1": {"inputs": {}}}"#,
            r#"{"1": {"class_type": "A"}}"#,
            r#"{"1": 5}"#,
            "{}",
            "[]",
            // duplicate keys and escaped IDs
            r#"{"1": {"class_type": "A", "inputs": {}}, "1": {"class_type": "B", "inputs": {}}}"#,
            r#"{"1": {"class_type": "A", "class_type": "B", "inputs": {}}}"#,
            r#"{"1": {"class_type": "A", "inputs": {"x": 1, "x": 2}}}"#,
            r#"{"\u0031": {"class_type": "A", "inputs": {}}}"#,
            // text serde_json's full parser rejects
            r#"{"1": {"class_type": "A", "inputs": {"x": "\ud800"}}}"#,
            r#"{"1": {"class_type": "A", "inputs": {}}} x"#,
        ];
        for text in cases {
            assert!(fast(text, &t).is_none(), "fast path took {text}");
        }
        let deep = format!(
            r#"{{"1": {{"class_type": "A", "inputs": {{"x": {}1{}}}}}}}"#,
            "[".repeat(150),
            "]".repeat(150)
        );
        assert!(fast(&deep, &t).is_none());
        assert!(
            general(&deep, &t).is_none(),
            "serde_json's recursion limit applies"
        );
    }

    /// The cut must stop right after a node: a first half that ends in a comma would join with
    /// the second into `,,`, which serde_json rejects in the whole text.
    #[test]
    fn a_cut_after_a_comma_is_refused() {
        let node = r#"{"class_type": "A", "inputs": {}}"#;
        for sep in [",,", ", ,", ",\n,\n  ", ",\r\n\t,"] {
            let text = format!("{{\"1\": {node}{sep}\"2\": {node}}}");
            assert!(general(&text, &NameTable::builtin()).is_none(), "{text}");
            for (at, _) in text.match_indices(',') {
                let mut cut = text.clone();
                cut.replace_range(at..at + 1, "{");
                assert!(
                    TextWorkflow::parse_split(&cut, at).is_none(),
                    "cut at {at} of {text:?}"
                );
            }
        }
    }

    /// Node IDs for every branch of [`NodeIndex`] and [`PendingLinks`]: small canonical decimals,
    /// one past a small text's dense limit, non-canonical twins of them ("007", "07" next to "7"),
    /// packed and long strings, decimals past 9 digits, u32 and u64, an escaped twin of "7",
    /// a negative and a fractional "number", the empty ID, a multi-byte one.
    const ODD_IDS: &[&str] = &[
        "7",
        "007",
        "07",
        "0",
        "12:5",
        "abc",
        "a long node id 1",
        "999999999",
        "1000000000",
        "4294967296",
        "18446744073709551616",
        "1023",
        "5000",
        "é",
        "\\u0037",
        "-1",
        "1.0",
        "",
    ];
    const NEWLINES: &[&str] = &["\n", "\r\n"];
    const INDENTS: &[&str] = &["  ", "    ", "\t", " \t", ""];

    /// (ID pick, class, inputs as (kind, pick, form), meta, extra key, key order)
    type OddSpec = (
        usize,
        usize,
        Vec<(usize, usize, usize)>,
        Option<usize>,
        bool,
        usize,
    );

    /// A node with the layout `nl`/`ind`, its keys in one of eight orders, links (to nodes of
    /// lower rank) in every written form: integer targets, line breaks and tabs inside, a bad
    /// output index.
    fn odd_node(spec: &OddSpec, rank: usize, ids: &[String], nl: &str, ind: &str) -> String {
        let (_, class, inputs, meta, extra, order) = spec;
        let inner = format!("{nl}{ind}{ind}");
        let mut ins = Vec::new();
        for (j, &(kind, pick, form)) in inputs.iter().enumerate() {
            let v = if kind % 2 == 0 && rank > 0 {
                let target = &ids[pick % rank];
                let slot = pick % 3;
                let int_ok = target
                    .parse::<u64>()
                    .is_ok_and(|n| n.to_string() == *target);
                match form % 5 {
                    0 if int_ok => format!("[{target}, {slot}]"),
                    1 => format!("[{inner}{ind}\"{target}\",{inner}{ind}{slot}{inner}]"),
                    2 => format!("[ \"{target}\" ,\t{slot} ]"),
                    3 if pick % 7 == 0 => format!("[\"{target}\", 0.0]"),
                    _ => format!("[\"{target}\", {slot}]"),
                }
            } else {
                LITERALS[pick % LITERALS.len()].to_string()
            };
            ins.push(format!("\"in{j}\": {v}"));
        }
        let inputs = if ins.is_empty() {
            "{}".to_string()
        } else {
            let deeper = format!("{inner}{ind}");
            format!("{{{deeper}{}{inner}}}", ins.join(&format!(",{deeper}")))
        };
        let mut parts = vec![
            format!("\"inputs\": {inputs}"),
            format!("\"class_type\": \"{}\"", CLASSES[class % CLASSES.len()]),
        ];
        if let Some(m) = meta {
            parts.push(format!("\"_meta\": {}", METAS[m % METAS.len()]));
        }
        if *extra {
            parts.push(format!("\"props\": {{\"a\": {{}},{inner}\"b\": [1]}}"));
        }
        let len = parts.len();
        parts.rotate_left(order % len);
        if order / len % 2 == 1 {
            parts.reverse();
        }
        format!("{{{inner}{}{nl}{ind}}}", parts.join(&format!(",{inner}")))
    }

    /// A node map of `specs` (links go to lower ranks) written in the order `perm` with the
    /// layout `nl`/`ind`, each later node indented by its own pick of [`INDENTS`]; and the
    /// offsets of the commas between its top-level nodes.
    fn odd_map(
        specs: &[OddSpec],
        perm: &[usize],
        nl: &str,
        ind: &str,
        seps: &[usize],
        lead: &str,
    ) -> (String, Vec<usize>) {
        let mut ids: Vec<String> = Vec::new();
        for (k, s) in specs.iter().enumerate() {
            let id = ODD_IDS[s.0].to_string();
            // Mostly distinct IDs (a repeated one sends the file to the general path).
            ids.push(if ids.contains(&id) && s.0 % 4 != 0 {
                (100 + k).to_string()
            } else {
                id
            });
        }
        let mut text = format!("{lead}{{");
        let mut boundaries = Vec::new();
        for (pos, &k) in perm.iter().enumerate() {
            if pos == 0 {
                text.push_str(&format!("{nl}{ind}"));
            } else {
                boundaries.push(text.len());
                text.push_str(&format!(",{nl}{}", INDENTS[seps[pos % seps.len()]]));
            }
            let node = odd_node(&specs[k], k, &ids, nl, ind);
            text.push_str(&format!("\"{}\": {node}", ids[k]));
        }
        text.push_str(&format!("{nl}}}{nl}"));
        (text, boundaries)
    }

    fn odd_spec() -> impl Strategy<Value = OddSpec> {
        (
            0..ODD_IDS.len(),
            0..CLASSES.len(),
            proptest::collection::vec((0usize..3, 0usize..64, 0usize..5), 0..4),
            proptest::option::of(0..METAS.len()),
            proptest::bool::weighted(0.2),
            0usize..8,
        )
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(300))]
        /// Odd IDs, layouts and key orders, links forward and backward in file order: the
        /// one-thread read agrees with the general path, and a two-thread read cut at any comma
        /// agrees with the one-thread read (and is taken at every comma between two nodes).
        #[test]
        fn odd_layouts_split_like_one_thread(
            (specs, perm) in proptest::collection::vec(odd_spec(), 1..8).prop_flat_map(|s| {
                let n = s.len();
                (Just(s), Just((0..n).collect::<Vec<usize>>()).prop_shuffle())
            }),
            nl in 0..NEWLINES.len(),
            ind in 0..INDENTS.len(),
            seps in proptest::collection::vec(0..INDENTS.len(), 8),
            lead in 0usize..4,
        ) {
            let lead = ["", " ", "\n", "\r\n\t"][lead];
            let (text, boundaries) =
                odd_map(&specs, &perm, NEWLINES[nl], INDENTS[ind], &seps, lead);
            let table = NameTable::builtin();
            agree(&text, &table)?;
            split_agrees(&text, &boundaries, &table)?;
        }
    }

    #[test]
    fn odd_ids_and_layouts_are_taken() {
        let t = NameTable::builtin();
        // IDs: "7", "007", "12:5", "5000" (past the dense limit), "abc", "4294967296"; integer
        // and string links, forward and backward in file order.
        let specs: Vec<OddSpec> = [0, 1, 4, 12, 5, 9]
            .iter()
            .enumerate()
            .map(|(k, &id)| {
                let ins = (0..k).map(|j| (0, j, (j + k) % 3)).collect();
                (id, k, ins, Some(k), k == 3, k)
            })
            .collect();
        for (nl, ind, lead) in [
            ("\n", "  ", ""),
            ("\r\n", "\t", " \r\n"),
            ("\n", "    ", "\n"),
        ] {
            let (text, boundaries) =
                odd_map(&specs, &[3, 0, 5, 1, 4, 2], nl, ind, &[0, 2, 3], lead);
            assert!(agree(&text, &t).unwrap(), "the fast path takes {text}");
            let whole = fast(&text, &t);
            for &at in &boundaries {
                let mut cut = text.clone();
                cut.replace_range(at..at + 1, "{");
                let split = TextWorkflow::parse_split(&cut, at).map(|wf| render(&wf, &t));
                assert_eq!(split, whole, "cut at {at} of {text}");
            }
        }
    }

    /// `n` nodes (over [`PARALLEL_PARSE_BYTES`] for n ≥ 8000) with IDs of every kind (canonical
    /// decimals and their "00" twins, "i:k", "n…", decimals past the dense limit, past u32),
    /// links to nodes of lower rank in a shuffled order (so forward and backward in the file and
    /// across the cut), integer link targets, varied key orders, empty inputs, a string with an
    /// escaped `},\n  "`. Top-level nodes are separated by `comma` + line break + indentation;
    /// `decoy` (0 for none) puts a `},` + top-level line break + indentation + `"` inside every
    /// node, where a cut must be refused.
    fn big_odd(n: usize, nl: &str, ind: &str, lead: &str, comma: &str, decoy: usize) -> String {
        let id = |i: usize| match i % 6 {
            0 => i.to_string(),
            1 => format!("00{}", i - 1),
            2 => format!("{}:{}", i, i % 7),
            3 => format!("n{i}"),
            4 => (i * 1000).to_string(),
            _ => (4_000_000_000u64 + i as u64).to_string(),
        };
        let step = 7919;
        assert!(!n.is_multiple_of(step));
        let rank = |i: usize| i * step % n;
        let mut by_rank = vec![0; n];
        for i in 0..n {
            by_rank[rank(i)] = i;
        }
        let top = format!("{comma}{nl}{ind}\"");
        // What `split_point` looks for after a `}`.
        let lure = format!(",{nl}{ind}\"");
        let (i1, i2, i3) = (
            format!("{nl}{ind}{ind}"),
            format!("{nl}{ind}{ind}{ind}"),
            format!("{nl}{ind}{ind}{ind}{ind}"),
        );
        let mut text = format!("{lead}{{{nl}{ind}");
        for i in 0..n {
            if i > 0 {
                text.push_str(&top[..top.len() - 1]);
            }
            let mut ins = Vec::new();
            if i % 13 != 0 {
                ins.push(format!("\"seed\": {i}"));
                ins.push(r#""text": "a},\n  \"b""#.to_string());
                let r = rank(i);
                for (k, target) in [r.wrapping_sub(1), r / 2].into_iter().enumerate() {
                    if r == 0 || target >= r {
                        continue;
                    }
                    let t = id(by_rank[target]);
                    ins.push(
                        if (i + k) % 2 == 0 && !t.starts_with('0') && t.parse::<u64>().is_ok() {
                            format!("\"l{k}\": [{t}, {k}]")
                        } else {
                            format!("\"l{k}\": [{i3}\"{t}\",{i3}{k}{i2}]")
                        },
                    );
                }
                if decoy == 3 {
                    ins.push(format!("\"d\": {{\"k\": {{}}{lure}v\": 1}}"));
                }
                if decoy == 5 {
                    ins.push("\"e\": {}".to_string());
                    ins.push("\"z\": 1".to_string());
                }
                if decoy == 4 {
                    ins.push("\"e\": {}".to_string());
                    ins.push(format!("\"f\": [{{}}{lure}s\"]"));
                }
            }
            let inputs = if ins.is_empty() {
                "{}".to_string()
            } else if decoy == 5 {
                // inputs indented like the top level
                format!("{{{nl}{ind}{}{nl}{ind}}}", ins.join(&format!(",{nl}{ind}")))
            } else {
                format!("{{{i2}{}{i1}}}", ins.join(&format!(",{i2}")))
            };
            let mut keys = vec![
                format!("\"inputs\": {inputs}"),
                format!("\"class_type\": \"C{}\"", i % 4),
            ];
            if i % 5 == 0 || decoy == 1 {
                let meta = if decoy == 1 {
                    format!("{{\"x\": {{}}{lure}title\": \"T\"}}")
                } else {
                    format!("{{{i2}\"title\": \"T{}\"{i1}}}", i % 3)
                };
                keys.push(format!("\"_meta\": {meta}"));
            }
            if i % 11 == 0 || decoy == 2 {
                let sep = if decoy == 2 { &lure[..] } else { ", \"" };
                keys.push(format!("\"props\": {{\"a\": {{}}{sep}b\": [1]}}"));
            }
            if i % 3 == 0 {
                keys.rotate_left(1);
            }
            text.push_str(&format!(
                "\"{}\": {{{i1}{}{nl}{ind}}}",
                id(i),
                keys.join(&format!(",{i1}"))
            ));
        }
        text.push_str(&format!("{nl}}}{nl}"));
        text
    }

    /// Reads `text` (large) through [`with_workflow`]: the text comes back unchanged, the result
    /// is the one-thread read's (and, with `general`, the general path's); `split` says whether
    /// the two-thread read must have been used.
    fn check_big(text: &str, t: &NameTable, split: bool, general_too: bool) -> Option<String> {
        assert!(text.len() >= PARALLEL_PARSE_BYTES);
        let at = split_point(text);
        let cut_taken = at.is_some_and(|at| {
            let mut cut = text.to_string();
            cut.replace_range(at..at + 1, "{");
            TextWorkflow::parse_split(&cut, at).is_some()
        });
        assert_eq!(cut_taken, split, "cut at {at:?}");
        let mut t2 = text.to_string();
        let out = with_workflow(&mut t2, |wf| render(wf, t));
        assert!(t2 == text, "the text is given back unchanged");
        assert!(out == fast(text, t), "same as the one-thread read");
        if general_too {
            assert!(
                out.is_none() || out == general(text, t),
                "same as the general path"
            );
        }
        out
    }

    #[test]
    fn large_files_with_odd_ids_and_layouts_split_like_one_thread() {
        let t = NameTable::builtin();
        for (nl, ind, lead) in [
            ("\n", "  ", ""),
            ("\r\n", "\t", " \r\n"),
            ("\n", "    ", "\t"),
        ] {
            let text = big_odd(8009, nl, ind, lead, ",", 0);
            assert!(check_big(&text, &t, true, true).is_some());
        }
        // Duplicates across the halves, of a decimal and of another ID; a dangling link from the
        // second half into the first; a first half that ends in a comma.
        let text = big_odd(8009, "\n", "  ", "", ",", 0);
        let cut = split_point(&text).unwrap();
        let late = |needle: &str| cut + text[cut..].find(needle).unwrap();
        let mut bad = Vec::new();
        for (old, new) in [("\"4800\": {", "\"6\": {"), ("\"n4803\": {", "\"n3\": {")] {
            let at = late(old);
            bad.push(format!("{}{new}{}", &text[..at], &text[at + old.len()..]));
        }
        let at = late("\"l0\": [");
        bad.push(format!(
            "{}\"l0\": [\"00\", 0], \"x\": [{}",
            &text[..at],
            &text[at + 7..]
        ));
        bad.push(format!("{},{}", &text[..cut], &text[cut..]));
        for text in &bad {
            assert!(check_big(text, &t, false, false).is_none());
        }
    }

    #[test]
    fn large_files_with_a_decoy_cut_fall_back_to_one_thread() {
        let t = NameTable::builtin();
        // A cut inside `_meta`, inside another key, inside a literal input, inside a list in an
        // input, between inputs indented like the top level: each is refused.
        for decoy in 1..=5 {
            let text = big_odd(8009, "\n", "  ", "", " ,", decoy);
            assert!(split_point(&text).is_some());
            assert!(
                check_big(&text, &t, false, decoy == 1).is_some(),
                "decoy {decoy}"
            );
        }
    }
}

//! UI-format → API-format conversion, following what ComfyUI's own frontend (`graphToPrompt`)
//! does; the observed rules are in `../shared/docs/ui-conversion.md`.
//!
//! A UI export stores widget values positionally (`widgets_values`) and links in a separate
//! table; the API format names every input. The names come from the server's schema: the i-th
//! value belongs to the i-th widget in `input_order`, where some widgets take a slot but are not
//! sent (the `control_after_generate` companion of a seed, an upload button). Links are followed
//! through frontend-only nodes (Reroute, PrimitiveNode), bypassed nodes and subgraph boundaries
//! until they reach a node that is actually sent.
//!
//! Some widget values are rewritten on the way out, as the frontend does when it serialises
//! them: `%NodeTitle.widget%` and `%date:FMT%` in a save node's `filename_prefix` (and in a
//! PrimitiveNode's value when its "Run widget replace on values" property is on), and
//! `{a|b}` choices and comments in `dynamicPrompts` text (also when a PrimitiveNode supplies
//! it). The frontend's choice is random and its date is the browser's clock; comfyctl takes the
//! first option unless [`Options::seed`] is set, and the time once per conversion (UTC, or
//! [`NOW_ENV`]), so the same input gives the same output.

use crate::error::{Error, Result};
use crate::schema::{types_compatible, InputDef, NodeDef, Schema};
use serde_json::{json, Map, Value};
use std::cell::RefCell;
use std::collections::{HashMap, HashSet};

/// Environment variable that fixes the time `%date:FMT%` is formatted with:
/// `YYYY-MM-DDTHH:MM:SS` (used as written, a trailing `Z` is allowed) or Unix seconds (UTC).
/// Without it the current time in UTC is used. Meant for reproducible output and tests.
pub const NOW_ENV: &str = "COMFYCTL_NOW";

/// Choices a conversion makes where the frontend's output is random or time-dependent.
#[derive(Debug, Clone, Copy, Default)]
pub struct Options {
    /// Seed for `{a|b}` dynamic prompt choices. `None`: always the first option, so a
    /// conversion is reproducible; `Some(n)`: a pseudo-random option per choice, the same for
    /// the same file and seed (SplitMix64, stable across comfyctl versions and platforms).
    pub seed: Option<u64>,
    /// The wall-clock time `%date:FMT%` formats. `None`: [`NOW_ENV`] if set, else now in UTC.
    pub now: Option<WallClock>,
}

/// A calendar date and time of day, as `%date:FMT%` prints it (no time zone: the frontend uses
/// the browser's local time, which comfyctl cannot know; it uses UTC unless told otherwise).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WallClock {
    pub year: i64,
    pub month: u32,
    pub day: u32,
    pub hour: u32,
    pub minute: u32,
    pub second: u32,
}

impl WallClock {
    /// The UTC wall clock at `secs` seconds since the Unix epoch.
    pub fn from_unix(secs: i64) -> WallClock {
        let days = secs.div_euclid(86_400);
        let rem = secs.rem_euclid(86_400);
        // Howard Hinnant's civil_from_days.
        let z = days + 719_468;
        let era = z.div_euclid(146_097);
        let doe = z.rem_euclid(146_097);
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
        let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
        let year = yoe + era * 400 + i64::from(month <= 2);
        WallClock {
            year,
            month,
            day,
            hour: (rem / 3600) as u32,
            minute: (rem % 3600 / 60) as u32,
            second: (rem % 60) as u32,
        }
    }

    /// Parses `YYYY-MM-DDTHH:MM:SS` (or with a space for `T`, optionally ending in `Z`) or a
    /// number of Unix seconds.
    pub fn parse(s: &str) -> Option<WallClock> {
        let s = s.trim();
        if let Ok(secs) = s.parse::<i64>() {
            return Some(WallClock::from_unix(secs));
        }
        let s = s.strip_suffix('Z').unwrap_or(s);
        let (date, time) = s.split_once(['T', ' '])?;
        let d: Vec<&str> = date.split('-').collect();
        let t: Vec<&str> = time.split(':').collect();
        let [year, month, day] = d[..] else {
            return None;
        };
        let [hour, minute, second] = t[..] else {
            return None;
        };
        let num = |x: &str| x.parse::<u32>().ok();
        let c = WallClock {
            year: year.parse().ok()?,
            month: num(month)?,
            day: num(day)?,
            hour: num(hour)?,
            minute: num(minute)?,
            second: num(second)?,
        };
        let ok = (1..=12).contains(&c.month)
            && (1..=31).contains(&c.day)
            && c.hour < 24
            && c.minute < 60
            && c.second < 61;
        ok.then_some(c)
    }

    /// [`NOW_ENV`] if set, else the current UTC time.
    pub fn now() -> Result<WallClock> {
        match std::env::var(NOW_ENV) {
            Ok(v) => WallClock::parse(&v).ok_or_else(|| {
                Error::Usage(format!(
                    "{NOW_ENV}='{v}' is not a time; use YYYY-MM-DDTHH:MM:SS or Unix seconds"
                ))
            }),
            Err(_) => {
                let secs = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| d.as_secs() as i64);
                Ok(WallClock::from_unix(secs))
            }
        }
    }
}

/// Converts a UI-format workflow to an API-format node map.
pub fn convert(ui: &Value, schema: &Schema, file: &str) -> Result<Map<String, Value>> {
    convert_with_notes(ui, schema, file).map(|(m, _)| m)
}

/// Like [`convert`], also returning notes about things that could not be converted exactly
/// (unknown classes whose widget values cannot be named, dangling links, ...). Uses the default
/// [`Options`]: first dynamic prompt option, `%date%` from [`NOW_ENV`] or the clock.
pub fn convert_with_notes(
    ui: &Value,
    schema: &Schema,
    file: &str,
) -> Result<(Map<String, Value>, Vec<String>)> {
    convert_with_options(ui, schema, file, &Options::default())
}

/// [`convert_with_notes`] with a dynamic prompt seed (`comfyctl convert --seed`).
pub fn convert_seeded(
    ui: &Value,
    schema: &Schema,
    file: &str,
    seed: Option<u64>,
) -> Result<(Map<String, Value>, Vec<String>)> {
    convert_with_options(ui, schema, file, &Options { seed, now: None })
}

/// [`convert_with_notes`] with explicit [`Options`].
pub fn convert_with_options(
    ui: &Value,
    schema: &Schema,
    file: &str,
    opts: &Options,
) -> Result<(Map<String, Value>, Vec<String>)> {
    let Some(obj) = ui.as_object() else {
        return Err(Error::Usage(format!(
            "{file}: not a UI-format workflow (the top level is {}, expected an object with 'nodes' and 'links')",
            crate::workflow::json_kind(ui)
        )));
    };
    if !crate::workflow::is_ui_format(obj) {
        let api = obj.values().all(|v| v.get("class_type").is_some());
        return Err(Error::Usage(if api && !obj.is_empty() {
            format!("{file}: this is already an API-format workflow; no conversion needed")
        } else {
            format!("{file}: not a UI-format workflow (expected an object with a 'nodes' array and 'links')")
        }));
    }
    let mut defs = HashMap::new();
    for sg in ui["definitions"]["subgraphs"]
        .as_array()
        .into_iter()
        .flatten()
    {
        if let Some(id) = sg["id"].as_str() {
            defs.insert(id, SubgraphDef::new(sg));
        }
    }
    let now = match opts.now {
        Some(n) => n,
        None => WallClock::now()?,
    };
    let groups = ui["extra"]["groupNodes"]
        .as_object()
        .into_iter()
        .flatten()
        .map(|(name, g)| (name.as_str(), GroupDef::new(g, schema)))
        .collect();
    let conv = Conv {
        schema,
        defs,
        groups,
        notes: Default::default(),
        ui,
        refs: std::cell::OnceCell::new(),
        chooser: RefCell::new(Chooser::new(opts.seed)),
        now,
    };
    let root = G::new(ui);
    let frame = Frame {
        g: &root,
        prefix: String::new(),
        parent: None,
    };
    let mut emitted = Vec::new();
    conv.emit_graph(&frame, &mut emitted, 0)?;
    // Final pass (as the frontend does): a link to a node that is not sent (muted) is deleted.
    let ids: HashSet<String> = emitted.iter().map(|(id, _)| id.clone()).collect();
    for (_, node) in emitted.iter_mut() {
        if let Some(inputs) = node["inputs"].as_object_mut() {
            let dead: Vec<String> = inputs
                .iter()
                .filter(|(_, v)| {
                    crate::workflow::as_link(v).is_some_and(|(id, _)| !ids.contains(&id.to_key()))
                })
                .map(|(k, _)| k.clone())
                .collect();
            for k in dead {
                inputs.shift_remove(&k);
            }
        }
    }
    // JSON.stringify order: integer-like IDs ascending, then the rest in emission order.
    let mut numeric: Vec<(u64, String, Value)> = Vec::new();
    let mut rest = Vec::new();
    for (id, v) in emitted {
        match id.parse::<u64>() {
            Ok(n) if n.to_string() == id => numeric.push((n, id, v)),
            _ => rest.push((id, v)),
        }
    }
    numeric.sort_by_key(|(n, _, _)| *n);
    let mut out = Map::new();
    for (_, id, v) in numeric {
        out.insert(id, v);
    }
    for (id, v) in rest {
        out.insert(id, v);
    }
    let notes = conv.notes.into_inner();
    Ok((out, notes))
}

/// Frontend-only node types: never sent.
const VIRTUAL: &[&str] = &["Note", "MarkdownNote", "Reroute", "PrimitiveNode"];

/// Class renames the frontend applies when it loads a workflow.
fn renamed(t: &str) -> &str {
    match t {
        "T2IAdapterLoader" => "ControlNetLoader",
        "ConditioningAverage " => "ConditioningAverage",
        "SDV_img2vid_Conditioning" => "SVD_img2vid_Conditioning",
        other => other,
    }
}

/// Nesting deeper than this is a loop in a malformed file (Reroute cycles, self-including
/// subgraphs), not a real workflow.
const MAX_DEPTH: usize = 64;

struct Link {
    origin: i64,
    oslot: usize,
    target: i64,
    tslot: usize,
}

/// One graph level: the root, or a subgraph definition.
struct G<'a> {
    nodes: Vec<&'a Value>,
    by_id: HashMap<i64, &'a Value>,
    links: HashMap<i64, Link>,
}

fn as_id(v: &Value) -> Option<i64> {
    v.as_i64()
        .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
}

impl<'a> G<'a> {
    fn new(v: &'a Value) -> G<'a> {
        let nodes: Vec<&Value> = v["nodes"].as_array().into_iter().flatten().collect();
        let by_id = nodes
            .iter()
            .filter_map(|n| as_id(&n["id"]).map(|id| (id, *n)))
            .collect();
        let mut links = HashMap::new();
        for l in v["links"].as_array().into_iter().flatten() {
            let parsed = if let Some(a) = l.as_array() {
                // [id, origin_id, origin_slot, target_id, target_slot, type]
                (|| {
                    Some((
                        as_id(a.first()?)?,
                        Link {
                            origin: as_id(a.get(1)?)?,
                            oslot: a.get(2)?.as_u64()? as usize,
                            target: as_id(a.get(3)?)?,
                            tslot: a.get(4)?.as_u64()? as usize,
                        },
                    ))
                })()
            } else {
                (|| {
                    Some((
                        as_id(&l["id"])?,
                        Link {
                            origin: as_id(&l["origin_id"])?,
                            oslot: l["origin_slot"].as_u64()? as usize,
                            target: as_id(&l["target_id"])?,
                            tslot: l["target_slot"].as_u64()? as usize,
                        },
                    ))
                })()
            };
            if let Some((id, link)) = parsed {
                links.insert(id, link);
            }
        }
        G {
            nodes,
            by_id,
            links,
        }
    }
}

/// A subgraph definition's boundary: its inputs and outputs with the inner links they feed.
struct Port {
    name: String,
    ty: String,
    links: Vec<i64>,
}

struct SubgraphDef<'a> {
    g: G<'a>,
    inputs: Vec<Port>,
    outputs: Vec<Port>,
}

impl<'a> SubgraphDef<'a> {
    fn new(v: &'a Value) -> Self {
        let ports = |key: &str| {
            v[key]
                .as_array()
                .into_iter()
                .flatten()
                .map(|p| Port {
                    name: p["name"].as_str().unwrap_or_default().to_string(),
                    ty: type_str(&p["type"]),
                    links: p["linkIds"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .filter_map(as_id)
                        .collect(),
                })
                .collect()
        };
        SubgraphDef {
            g: G::new(v),
            inputs: ports("inputs"),
            outputs: ports("outputs"),
        }
    }
}

/// A legacy group node definition (`extra.groupNodes[NAME]`, used as node type
/// `workflow>NAME`), laid out as the frontend's `GroupNodeConfig` does: its `nodes` are copies
/// of the grouped nodes (their index is their ID in the export, `<instance>:<index>`), `links`
/// are `[origin index, origin slot, target index, target slot, original origin ID, type]` (origin
/// index null: from outside the group) and `external` lists `[index, slot, type]` outputs that
/// were linked outside.
struct GroupDef<'a> {
    nodes: Vec<&'a Value>,
    /// Inner links by (target index, target slot): (origin index, origin slot).
    links_to: HashMap<(usize, usize), (usize, usize)>,
    /// The group node's widgets in `widgets_values` order; `None` takes a slot but feeds no
    /// inner widget (the control_after_generate after a seed, an upload button).
    widgets: Vec<Option<GroupWidget>>,
    /// The group node's inputs: (its name, inner index, inner input name).
    inputs: Vec<(String, usize, String)>,
    /// The group node's outputs: (inner index, inner output slot).
    outputs: Vec<(usize, usize)>,
}

struct GroupWidget {
    node: usize,
    input: String,
    default: Option<Value>,
}

impl<'a> GroupDef<'a> {
    fn new(v: &'a Value, schema: &Schema) -> GroupDef<'a> {
        let nodes: Vec<&Value> = v["nodes"].as_array().into_iter().flatten().collect();
        let mut links_to = HashMap::new();
        // Outputs linked inside the group: hidden unless also linked outside.
        let mut links_from: HashSet<(usize, usize)> = HashSet::new();
        for l in v["links"].as_array().into_iter().flatten() {
            let idx = |k: usize| l.get(k).and_then(Value::as_u64).map(|x| x as usize);
            let (Some(o), Some(os), Some(t), Some(ts)) = (idx(0), idx(1), idx(2), idx(3)) else {
                continue; // from outside the group, or malformed
            };
            if o >= nodes.len() || t >= nodes.len() {
                continue;
            }
            links_to.insert((t, ts), (o, os));
            links_from.insert((o, os));
        }
        let external: HashSet<(usize, usize)> = v["external"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|e| Some((e.get(0)?.as_u64()? as usize, e.get(1)?.as_u64()? as usize)))
            .collect();
        let config = &v["config"];
        let saved_slot = |n: &Value, name: &str| {
            n["inputs"]
                .as_array()
                .and_then(|a| a.iter().position(|i| i["name"].as_str() == Some(name)))
        };
        let mut g = GroupDef {
            nodes,
            links_to,
            widgets: Vec::new(),
            inputs: Vec::new(),
            outputs: Vec::new(),
        };
        let mut seen: HashMap<String, usize> = HashMap::new();
        // Widget inputs already shown as sockets ("converted"), added after all nodes.
        let mut converted: Vec<(usize, &InputDef)> = Vec::new();
        // A primitive's value: (its index, its input, the target input's definition).
        let mut prim_target: HashMap<usize, &InputDef> = HashMap::new();
        for (i, n) in g.nodes.iter().enumerate() {
            let ty = node_type(n);
            let Some(def) = schema.get(renamed(ty)) else {
                continue;
            };
            for inp in &def.inputs {
                let Some(slot) = saved_slot(n, &inp.name) else {
                    continue;
                };
                if inp.is_widget()
                    && n["inputs"][slot]["widget"]["name"].as_str() == Some(&inp.name)
                {
                    if let Some(&(o, _)) = g.links_to.get(&(i, slot)) {
                        if node_type(g.nodes[o]) == "PrimitiveNode" {
                            prim_target.entry(o).or_insert(inp);
                        }
                    }
                }
            }
        }
        let nodes = g.nodes.clone();
        for (i, n) in nodes.iter().enumerate() {
            let ty = node_type(n);
            let custom = |input: &str| &config[i.to_string()]["input"][input];
            if ty == "PrimitiveNode" {
                // Shown only when it feeds something: one "value" widget (plus the control
                // widgets of a number or combo) standing for the widget it feeds.
                let Some(target) = prim_target.get(&i) else {
                    continue;
                };
                g.input_name(n, "value", &mut seen, custom("value"));
                g.widgets.push(Some(GroupWidget {
                    node: i,
                    input: "value".into(),
                    default: default_of(target),
                }));
                match target.kind.as_str() {
                    "INT" | "FLOAT" => g.widgets.push(None),
                    "COMBO" => g.widgets.extend([None, None]),
                    _ => {}
                }
                continue;
            }
            if ty == "Reroute" {
                let internal_in = g.links_to.contains_key(&(i, 0));
                let internal_out = links_from.contains(&(i, 0));
                if internal_in && internal_out && !external.contains(&(i, 0)) {
                    continue; // used inside the group only
                }
                if !internal_in {
                    let name = g.input_name(n, "*", &mut seen, custom("*"));
                    g.inputs.push((name, i, String::new()));
                }
                if !internal_out || external.contains(&(i, 0)) {
                    g.outputs.push((i, 0));
                }
                continue;
            }
            let Some(def) = schema.get(renamed(ty)) else {
                continue;
            };
            for inp in &def.inputs {
                let slot = saved_slot(n, &inp.name);
                if inp.is_widget() {
                    let is_converted = slot.is_some_and(|s| {
                        n["inputs"][s]["widget"]["name"].as_str() == Some(&inp.name)
                    });
                    if is_converted {
                        converted.push((i, inp));
                        continue;
                    }
                    g.input_name(n, &inp.name, &mut seen, custom(&inp.name));
                    g.push_widget(i, inp);
                } else {
                    if slot.is_some_and(|s| g.links_to.contains_key(&(i, s))) {
                        continue;
                    }
                    let name = g.input_name(n, &inp.name, &mut seen, custom(&inp.name));
                    if custom(&inp.name)["visible"] == json!(false) {
                        continue;
                    }
                    g.inputs.push((name, i, inp.name.clone()));
                }
            }
            for (o, _) in def.outputs.iter().enumerate() {
                let linked_inside = links_from.contains(&(i, o)) && !external.contains(&(i, o));
                let visible = config[i.to_string()]["output"][o.to_string()]["visible"]
                    .as_bool()
                    .unwrap_or(!linked_inside);
                if visible {
                    g.outputs.push((i, o));
                }
            }
        }
        // Converted widgets come last: an inner link feeds them (a primitive's value), else
        // they are both a widget and an input of the group node.
        for (i, inp) in converted {
            let n = g.nodes[i];
            let linked = saved_slot(n, &inp.name).is_some_and(|s| g.links_to.contains_key(&(i, s)));
            if linked {
                continue;
            }
            let name = g.input_name(
                n,
                &inp.name,
                &mut seen,
                &config[i.to_string()]["input"][&inp.name],
            );
            g.push_widget(i, inp);
            g.inputs.push((name, i, inp.name.clone()));
        }
        g
    }

    fn push_widget(&mut self, i: usize, inp: &InputDef) {
        self.widgets.push(Some(GroupWidget {
            node: i,
            input: inp.name.clone(),
            default: default_of(inp),
        }));
        // The group node's own widgets: a seed gets its control widget by name (whatever its
        // control_after_generate says), a combo with one its control and filter.
        if inp.kind == "INT"
            && (inp.name == "seed"
                || inp.name == "noise_seed"
                || inp.control_after_generate == Some(true))
        {
            self.widgets.push(None);
        } else if inp.kind == "COMBO" && inp.control_after_generate == Some(true) {
            self.widgets.extend([None, None]);
        }
        if inp.upload {
            self.widgets.push(None);
        }
    }

    /// The name the group node gives an inner input (`getInputConfig`): its configured name or
    /// label, prefixed with the inner node's title (or type) when the name is taken or the
    /// inner node is a titled PrimitiveNode, then with a counter when that is taken too.
    fn input_name(
        &self,
        n: &Value,
        input: &str,
        seen: &mut HashMap<String, usize>,
        custom: &Value,
    ) -> String {
        let label = n["inputs"]
            .as_array()
            .and_then(|a| a.iter().find(|i| i["name"].as_str() == Some(input)))
            .and_then(|i| i["label"].as_str());
        let mut name = custom["name"]
            .as_str()
            .or(label)
            .unwrap_or(input)
            .to_string();
        let mut key = name.clone();
        let titled_primitive = node_type(n) == "PrimitiveNode" && js_truthy(&n["title"]);
        if titled_primitive || seen.contains_key(&name) {
            let prefix = format!("{} ", n["title"].as_str().unwrap_or(node_type(n)));
            name = format!("{prefix}{input}");
            key = name.clone();
            if let Some(c) = seen.get(&name) {
                name = format!("{prefix}{c} {input}");
            }
        }
        let c = seen.get(&key).copied().unwrap_or(1) + 1;
        seen.insert(key, c);
        name
    }
}

/// One group node instance while its inner nodes are sent.
#[derive(Clone)]
struct GroupCtx<'g, 'a> {
    def: &'g GroupDef<'a>,
    inst: &'a Value,
    /// The instance's ID (with any subgraph path): the inner nodes are `<label>:<index>`.
    label: String,
    /// The inner node being sent.
    index: usize,
    /// The group node's widget values by (inner index, inner input): saved, else defaults.
    values: std::rc::Rc<HashMap<(usize, String), Value>>,
}

impl<'g, 'a> GroupCtx<'g, 'a> {
    fn new(def: &'g GroupDef<'a>, inst: &'a Value, label: String, index: usize) -> Self {
        let saved = inst["widgets_values"].as_array();
        let mut values = HashMap::new();
        for (k, w) in def.widgets.iter().enumerate() {
            let Some(w) = w else { continue };
            let v = match saved.and_then(|a| a.get(k)) {
                Some(v) => Some(js_value(v)),
                None => w.default.as_ref().map(js_value),
            };
            if let Some(v) = v {
                values.insert((w.node, w.input.clone()), v);
            }
        }
        GroupCtx {
            def,
            inst,
            label,
            index,
            values: std::rc::Rc::new(values),
        }
    }

    fn value(&self, node: usize, input: &str) -> Option<Value> {
        self.values.get(&(node, input.to_string())).cloned()
    }
}

fn type_str(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(), // LiteGraph's -1 "event"/any
        _ => "*".into(),
    }
}

/// Where a graph level sits: the root, or inside a subgraph instance (whose parent frame, node
/// and definition are kept to continue links that leave the subgraph).
struct Frame<'f, 'a> {
    g: &'f G<'a>,
    prefix: String,
    parent: Option<(&'f Frame<'f, 'a>, &'a Value, &'f SubgraphDef<'a>)>,
}

/// What a followed link ends at.
enum R {
    /// A node that is sent: `[id, slot]`.
    Link(String, u64),
    /// A value written into the input as it is (a subgraph instance's promoted widget).
    Lit(Value),
    /// A PrimitiveNode's value: written into the target widget, which then serialises it like
    /// its own value (dynamic prompts, `filename_prefix` replacements).
    Prim(Value),
    /// Nothing: the input is left out, a widget input keeps its own value.
    Keep,
    /// A muted node: the input is removed entirely (the frontend's final pass).
    Delete,
}

struct Conv<'a> {
    schema: &'a Schema,
    defs: HashMap<&'a str, SubgraphDef<'a>>,
    /// Legacy group node definitions by name (`extra.groupNodes`).
    groups: HashMap<&'a str, GroupDef<'a>>,
    notes: RefCell<Vec<String>>,
    ui: &'a Value,
    /// Every node `%Name.widget%` can refer to, in the frontend's search order; collected on
    /// the first reference, so workflows without any pay nothing.
    refs: std::cell::OnceCell<Vec<RefNode>>,
    chooser: RefCell<Chooser>,
    /// The time `%date:FMT%` formats, taken once per conversion.
    now: WallClock,
}

/// What a `%Name.widget%` reference can see of a node: its "Node name for S&R", its title and
/// its widgets' values (before serialisation, after PrimitiveNodes wrote theirs).
struct RefNode {
    sr: Option<String>,
    title: String,
    widgets: Vec<(String, Value)>,
}

/// Save nodes whose `filename_prefix` gets `%…%` replacements at export (frontend 1.27.10's
/// `saveImageExtraOutput`); these do not get a default "Node name for S&R" either.
const SAVE_NODES: &[&str] = &[
    "SaveImage",
    "SaveAnimatedWEBP",
    "SaveWEBM",
    "SaveAudio",
    "SaveGLB",
    "SaveAnimatedPNG",
    "CLIPSave",
    "VAESave",
    "ModelSave",
    "LoraSave",
    "SaveLatent",
];

/// The PrimitiveNode property that runs `%…%` replacements on its value before it is copied.
const REPLACE_PROP: &str = "Run widget replace on values";

/// JS truthiness of a property value.
fn js_truthy(v: &Value) -> bool {
    match v {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64().is_some_and(|f| f != 0.0),
        Value::String(s) => !s.is_empty(),
        _ => true,
    }
}

fn node_type(n: &Value) -> &str {
    n["type"].as_str().unwrap_or_default()
}

fn node_mode(n: &Value) -> i64 {
    n["mode"].as_i64().unwrap_or(0)
}

/// The saved input named `name` on a UI node.
fn saved_input<'v>(n: &'v Value, name: &str) -> Option<&'v Value> {
    n["inputs"]
        .as_array()?
        .iter()
        .find(|i| i["name"].as_str() == Some(name))
}

fn saved_link(n: &Value, name: &str) -> Option<i64> {
    saved_input(n, name).and_then(|i| as_id(&i["link"]))
}

/// One entry of a node's widget list, in `widgets_values` slot order.
enum Slot<'d> {
    /// A widget that is sent under its input name.
    Sent(&'d InputDef),
    /// Takes a slot, not sent (control_after_generate, control_filter_list, upload buttons).
    Hidden,
    /// Frontend-only input that takes a slot and is sent as `""` (SaveGLB/Preview3D `image`).
    Extra(&'static str),
    /// A DOM widget whose serialised value is `""` whatever was saved (RecordAudio's
    /// `AUDIO_RECORD` recorder: `""` when nothing was recorded in this browser session).
    Blank(&'d InputDef),
    /// A remote combo's "refresh" button: takes a slot and is sent with the saved value
    /// (its own value, `"refresh"`, when none is saved).
    Refresh,
}

/// An INT input that gets a `control_after_generate` widget: the frontend's
/// `control_after_generate ?? (name is seed/noise_seed)`, so an explicit `false` on a `seed`
/// input (MoonvalleyVideo2VideoNode) means no control slot.
fn is_seed_like(i: &InputDef) -> bool {
    i.kind == "INT"
        && i.control_after_generate
            .unwrap_or(i.name == "seed" || i.name == "noise_seed")
}

/// The widget slots of a node class, as the frontend builds them.
fn slots<'d>(class: &str, def: &'d NodeDef) -> Vec<Slot<'d>> {
    let mut out = Vec::new();
    // Load3D: the model file's upload, "upload extra resources" and "clear" buttons follow it
    // directly; other upload buttons come after the required inputs.
    let load3d = class.starts_with("Load3D");
    let upload = !load3d && def.inputs.iter().any(|i| i.upload);
    let mut upload_done = false;
    for inp in &def.inputs {
        if load3d && inp.upload {
            out.push(Slot::Sent(inp));
            out.extend([Slot::Hidden, Slot::Hidden, Slot::Hidden]);
            continue;
        }
        if !inp.required && upload && !upload_done {
            out.push(Slot::Hidden);
            upload_done = true;
        }
        if inp.kind == "AUDIO_RECORD" {
            // The recorder (sent) and its record button (not sent), each with a slot.
            out.extend([Slot::Blank(inp), Slot::Hidden]);
            continue;
        }
        if !inp.is_widget() {
            continue;
        }
        out.push(Slot::Sent(inp));
        if is_seed_like(inp) {
            out.push(Slot::Hidden);
        } else if inp.kind == "COMBO" && inp.control_after_generate == Some(true) {
            out.push(Slot::Hidden);
            out.push(Slot::Hidden);
        }
    }
    if upload && !upload_done {
        out.push(Slot::Hidden);
    }
    // Observed on LoadImageOutput: [image, upload, refresh].
    for inp in &def.inputs {
        if inp.refresh_button && inp.is_widget() {
            out.push(Slot::Refresh);
        }
    }
    if class == "SaveGLB" || class.starts_with("Preview3D") {
        out.push(Slot::Extra("image"));
    }
    out
}

/// Titles the frontend takes from its own English locale for core classes whose
/// `/object_info` entry has no `display_name` (measured on ComfyUI 0.3.64 with frontend 1.27.10
/// by exporting one node of every class; these five are the only ones that differ).
fn locale_display_name(class: &str) -> Option<&'static str> {
    Some(match class {
        "ImageBlend" => "Image Blend",
        "ImageBlur" => "Image Blur",
        "ImageQuantize" => "Image Quantize",
        "ImageScaleToTotalPixels" => "Scale Image to Total Pixels",
        "ImageSharpen" => "Image Sharpen",
        _ => return None,
    })
}

/// Frontend-only inputs that are sent but take no slot.
fn unslotted_extra(class: &str) -> Option<&'static str> {
    match class {
        "LoadAudio" | "SaveAudio" | "SaveAudioMP3" | "SaveAudioOpus" | "PreviewAudio" => {
            Some("audioUI")
        }
        "PreviewAny" => Some("preview"),
        _ => None,
    }
}

/// A widget's value when `widgets_values` has none for it.
fn default_of(inp: &InputDef) -> Option<Value> {
    if let Some(d) = &inp.default {
        return Some(d.clone());
    }
    match inp.kind.as_str() {
        "COMBO" => inp.options.as_ref().and_then(|o| o.first().cloned()),
        "INT" | "FLOAT" => Some(json!(0)),
        "STRING" => Some(json!("")),
        "BOOLEAN" => Some(json!(false)),
        _ => None,
    }
}

/// JS number semantics: `1.0` is written `1`.
fn js_value(v: &Value) -> Value {
    match v {
        Value::Number(n) if !n.is_i64() && !n.is_u64() => match n.as_f64() {
            Some(f) if f.fract() == 0.0 && f.abs() < 9.007_199_254_740_992e15 => json!(f as i64),
            _ => v.clone(),
        },
        Value::Array(a) => json!({ "__value__": a }),
        _ => v.clone(),
    }
}

impl<'a> Conv<'a> {
    /// The group definition a node type names: `workflow>NAME`, or the older `workflow/NAME`.
    fn group_of(&self, ty: &str) -> Option<&GroupDef<'a>> {
        let name = ty
            .strip_prefix("workflow>")
            .or_else(|| ty.strip_prefix("workflow/"))?;
        self.groups.get(name)
    }

    fn note(&self, s: String) {
        let mut n = self.notes.borrow_mut();
        if !n.contains(&s) {
            n.push(s);
        }
    }

    /// Collects what `%Name.widget%` can refer to, in the order the frontend searches
    /// (`collectAllNodes(app.graph)`): the graph's nodes in file order, a subgraph instance's
    /// inner nodes (recursively) just before the instance itself. Widget values are the ones a
    /// node holds after PrimitiveNodes have written theirs, before serialisation.
    fn collect_refs(&self, g: &G<'a>, out: &mut Vec<RefNode>, depth: usize) {
        if depth > MAX_DEPTH {
            return;
        }
        let mut index: HashMap<i64, usize> = HashMap::new();
        for node in &g.nodes {
            let ty = node_type(node);
            if let Some(def) = self.defs.get(ty) {
                self.collect_refs(&def.g, out, depth + 1);
            }
            let saved_sr = node["properties"]["Node name for S&R"]
                .as_str()
                .map(String::from);
            let saved_title = node["title"].as_str().map(String::from);
            let class = renamed(ty);
            let r = match self.schema.get(class) {
                Some(def) if !VIRTUAL.contains(&ty) => RefNode {
                    // The frontend adds the property (= the class) to every backend node
                    // except the save nodes; a saved value wins.
                    sr: saved_sr
                        .or_else(|| (!SAVE_NODES.contains(&class)).then(|| class.to_string())),
                    title: saved_title
                        .or_else(|| def.display_name.clone())
                        .or_else(|| locale_display_name(class).map(String::from))
                        .unwrap_or_else(|| class.to_string()),
                    widgets: self.widget_values(class, def, node, None),
                },
                _ => {
                    // A PrimitiveNode has its one widget, "value", once it is connected.
                    let linked = node["outputs"][0]["links"]
                        .as_array()
                        .is_some_and(|l| !l.is_empty());
                    let widgets = match node["widgets_values"].get(0) {
                        Some(v) if ty == "PrimitiveNode" && linked => {
                            vec![("value".to_string(), js_value(v))]
                        }
                        _ => Vec::new(),
                    };
                    RefNode {
                        sr: saved_sr,
                        title: saved_title.unwrap_or_else(|| match ty {
                            "PrimitiveNode" => "Primitive".to_string(),
                            // A group node is titled with its name.
                            _ if self.group_of(ty).is_some() => ty["workflow>".len()..].to_string(),
                            _ => ty.to_string(),
                        }),
                        widgets,
                    }
                }
            };
            if let Some(id) = as_id(&node["id"]) {
                index.insert(id, out.len());
            }
            out.push(r);
        }
        // PrimitiveNodes write their value into every widget they feed before anything is
        // serialised, so a reference to such a widget sees the primitive's value.
        for node in g.nodes.iter().filter(|n| node_type(n) == "PrimitiveNode") {
            let Some(v) = node["widgets_values"].get(0) else {
                continue;
            };
            for lid in node["outputs"][0]["links"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(as_id)
            {
                let Some(l) = g.links.get(&lid) else { continue };
                let (Some(&k), Some(target)) = (index.get(&l.target), g.by_id.get(&l.target))
                else {
                    continue;
                };
                let Some(w) = target["inputs"][l.tslot]["widget"]["name"].as_str() else {
                    continue;
                };
                if let Some(slot) = out[k].widgets.iter_mut().find(|(n, _)| n == w) {
                    slot.1 = js_value(v);
                }
            }
        }
    }

    /// A widget's value as the frontend serialises it: dynamic prompts for `dynamicPrompts`
    /// text, `%…%` replacements for a save node's `filename_prefix`.
    fn serialize_widget(&self, class: &str, inp: &InputDef, v: Value, label: &str) -> Value {
        let Value::String(s) = &v else { return v };
        if inp.dynamic_prompts {
            return Value::String(dynamic_prompt(s, &mut self.chooser.borrow_mut()));
        }
        if inp.name == "filename_prefix" && SAVE_NODES.contains(&class) {
            return Value::String(self.replace_refs(s, label));
        }
        v
    }

    /// The frontend's `applyTextReplacements`: every `%text%` (no `%` inside) is replaced.
    /// `%Name.widget%` (exactly one dot) becomes the value of that widget on the first node
    /// whose "Node name for S&R" is `Name`, else the first titled `Name`, with ``/?<>\:*|"`` and
    /// control characters turned into `_`; it stays as written when no such node or widget
    /// exists. Otherwise `%date:FMT…%` (the part before any further dot) is the date; anything
    /// else (`%width%`, which the server fills in) stays. The result is not scanned again.
    /// `label` names the node whose value this is, in notes about references left as written.
    fn replace_refs(&self, s: &str, label: &str) -> String {
        let mut out = String::with_capacity(s.len());
        let mut rest = s;
        while let Some(i) = rest.find('%') {
            out.push_str(&rest[..i]);
            let after = &rest[i + 1..];
            match after.find('%') {
                Some(0) => {
                    out.push('%');
                    rest = after;
                }
                Some(j) => {
                    let text = &after[..j];
                    match self.replacement(text, label) {
                        Some(r) => out.push_str(&r),
                        None => {
                            out.push('%');
                            out.push_str(text);
                            out.push('%');
                        }
                    }
                    rest = &after[j + 1..];
                }
                None => {
                    out.push_str(&rest[i..]);
                    rest = "";
                }
            }
        }
        out.push_str(rest);
        out
    }

    /// What `%text%` becomes, `None` to leave it as written.
    fn replacement(&self, text: &str, label: &str) -> Option<String> {
        let parts: Vec<&str> = text.split('.').collect();
        if parts.len() != 2 {
            return parts[0]
                .strip_prefix("date:")
                .map(|fmt| format_date(fmt, &self.now));
        }
        let (name, widget) = (parts[0], parts[1]);
        let refs = self.refs.get_or_init(|| {
            let mut refs = Vec::new();
            self.collect_refs(&G::new(self.ui), &mut refs, 0);
            refs
        });
        let Some(node) = refs
            .iter()
            .find(|r| r.sr.as_deref() == Some(name))
            .or_else(|| refs.iter().find(|r| r.title == name))
        else {
            self.note(format!(
                "node {label}: '%{text}%' is left as written: no node has the 'Node name for S&R' or title '{name}'"
            ));
            return None;
        };
        let Some((_, v)) = node.widgets.iter().find(|(n, _)| n == widget) else {
            self.note(format!(
                "node {label}: '%{text}%' is left as written: node '{name}' has no widget '{widget}'"
            ));
            return None;
        };
        Some(
            js_string(v)
                .chars()
                .map(|c| {
                    if "/?<>\\:*|\"".contains(c) || c.is_ascii_control() {
                        '_'
                    } else {
                        c
                    }
                })
                .collect(),
        )
    }

    /// Emits every sent node of a graph level (recursing into subgraph instances).
    fn emit_graph(
        &self,
        f: &Frame<'_, 'a>,
        out: &mut Vec<(String, Value)>,
        depth: usize,
    ) -> Result<()> {
        if depth > MAX_DEPTH {
            return Err(Error::Usage(format!(
                "subgraphs nested deeper than {MAX_DEPTH} levels (a subgraph that contains itself?) at {}",
                f.prefix
            )));
        }
        for node in &f.g.nodes {
            let ty = node_type(node);
            let Some(id) = as_id(&node["id"]) else {
                self.note("a node without an integer 'id' was skipped".into());
                continue;
            };
            if VIRTUAL.contains(&ty) {
                continue;
            }
            if let Some(gd) = self.group_of(ty) {
                // A legacy group node: its inner nodes are sent as "<id>:<index>" (their own
                // modes apply; the instance is never sent itself).
                let label = format!("{}{id}", f.prefix);
                let ctx = GroupCtx::new(gd, node, label.clone(), 0);
                for (i, inner) in gd.nodes.iter().enumerate() {
                    let ity = node_type(inner);
                    if VIRTUAL.contains(&ity) || matches!(node_mode(inner), 2 | 4) {
                        continue;
                    }
                    let c = GroupCtx {
                        index: i,
                        ..ctx.clone()
                    };
                    let v = self.emit_node_in(f, inner, &format!("{label}:{i}"), Some(&c));
                    out.push((format!("{label}:{i}"), v));
                }
                continue;
            }
            if let Some(def) = self.defs.get(ty) {
                // An instance's own mode does not stop its inner nodes (observed: muted and
                // bypassed instances still send them).
                let child = Frame {
                    g: &def.g,
                    prefix: format!("{}{id}:", f.prefix),
                    parent: Some((f, node, def)),
                };
                self.emit_graph(&child, out, depth + 1)?;
                continue;
            }
            if matches!(node_mode(node), 2 | 4) {
                continue;
            }
            let v = self.emit_node(f, node, id);
            out.push((format!("{}{id}", f.prefix), v));
        }
        Ok(())
    }

    /// The widget values of a node, by input name, in widget order (only those that are sent).
    /// `sent_by`: `Some(node label)` for the values as sent (dynamic prompts and
    /// `filename_prefix` replacements applied; the label names the node in notes), `None` for
    /// the widgets' own values (what `%Name.widget%` and promoted widgets see).
    fn widget_values(
        &self,
        class: &str,
        def: &NodeDef,
        node: &Value,
        sent_by: Option<&str>,
    ) -> Vec<(String, Value)> {
        let slots = slots(class, def);
        let mut values: Vec<Value> = match &node["widgets_values"] {
            Value::Array(a) => a.clone(),
            _ => Vec::new(), // an object (some exports) is ignored entirely, as the frontend does
        };
        // Legacy files saved a slot for forceInput inputs too; drop those values.
        if def.inputs.iter().any(|i| i.force_input) {
            let mut legacy = Vec::new();
            for i in def.inputs.iter().filter(|i| {
                matches!(
                    i.kind.as_str(),
                    "INT" | "FLOAT" | "STRING" | "BOOLEAN" | "COMBO"
                )
            }) {
                legacy.push(i.force_input);
                // Here the frontend counts with `||`: an explicit `false` still counts two.
                if i.kind == "INT"
                    && (i.control_after_generate == Some(true)
                        || i.name == "seed"
                        || i.name == "noise_seed")
                {
                    legacy.push(i.force_input);
                }
            }
            if values.len() == legacy.len() {
                values = values
                    .into_iter()
                    .zip(legacy)
                    .filter(|(_, forced)| !forced)
                    .map(|(v, _)| v)
                    .collect();
            }
        }
        let mut out = Vec::new();
        for (k, slot) in slots.iter().enumerate() {
            match slot {
                Slot::Hidden => {}
                Slot::Extra(name) => out.push((name.to_string(), json!(""))),
                Slot::Blank(inp) => out.push((inp.name.clone(), json!(""))),
                Slot::Refresh => {
                    let v = values.get(k).map_or_else(|| json!("refresh"), js_value);
                    out.push(("refresh".to_string(), v));
                }
                Slot::Sent(inp) => {
                    let v = match values.get(k) {
                        Some(v) => Some(js_value(v)),
                        // Written as a JS number too (`"default": 8.0` is sent as `8`).
                        None => default_of(inp).map(|d| js_value(&d)),
                    };
                    let Some(mut v) = v else { continue };
                    // A load-time patch: the widget's own value changes.
                    if inp.name == "sampler_name"
                        && matches!(class, "KSampler" | "KSamplerAdvanced")
                    {
                        if let Some(s) = v.as_str().and_then(|s| s.strip_prefix("sample_")) {
                            v = json!(s);
                        }
                    }
                    if let Some(label) = sent_by {
                        v = self.serialize_widget(class, inp, v, label);
                    }
                    out.push((inp.name.clone(), v));
                }
            }
        }
        if let Some(extra) = unslotted_extra(class) {
            out.push((extra.to_string(), json!("")));
        }
        out
    }

    fn emit_node(&self, f: &Frame<'_, 'a>, node: &'a Value, id: i64) -> Value {
        self.emit_node_in(f, node, &format!("{}{id}", f.prefix), None)
    }

    /// Builds one sent node. `group`: the node is inner node `index` of a group node instance,
    /// whose widgets override the inner widgets and whose links replace the inner ones.
    fn emit_node_in(
        &self,
        f: &Frame<'_, 'a>,
        node: &'a Value,
        label: &str,
        group: Option<&GroupCtx<'_, 'a>>,
    ) -> Value {
        let class = renamed(node_type(node));
        let def = self.schema.get(class);
        let mut inputs = Map::new();
        let mut order: Vec<(String, String)> = Vec::new(); // (name, consumer type)
        match def {
            Some(def) => {
                match group {
                    None => {
                        for (k, v) in self.widget_values(class, def, node, Some(label)) {
                            inputs.insert(k, v);
                        }
                    }
                    Some(g) => {
                        // The group node's widget values are copied into the inner widgets
                        // (`updateInnerWidgets`), which then serialise as usual.
                        for (k, v) in self.widget_values(class, def, node, None) {
                            let v = g.value(g.index, &k).unwrap_or(v);
                            let v = match def.input(&k) {
                                Some(inp) => self.serialize_widget(class, inp, v, label),
                                None => v,
                            };
                            inputs.insert(k, v);
                        }
                    }
                }
                for i in &def.inputs {
                    order.push((i.name.clone(), i.kind.clone()));
                }
            }
            None => self.note(format!(
                "node {label}: class '{class}' is not on the server, so its widget values cannot be named (only its links are converted)"
            )),
        }
        for si in node["inputs"].as_array().into_iter().flatten() {
            let Some(name) = si["name"].as_str() else {
                continue;
            };
            if order.iter().any(|(n, _)| n == name) {
                continue;
            }
            // A saved widget input the node does not have any more is dropped after load.
            if def.is_some() && si.get("widget").is_some_and(|w| !w.is_null()) {
                continue;
            }
            order.push((name.to_string(), type_str(&si["type"])));
        }
        for (name, want) in &order {
            let r = match group {
                None => match saved_link(node, name) {
                    Some(lid) => self.resolve_link(f, lid, want, 0),
                    None => continue,
                },
                Some(g) => self.resolve_group_input(f, g, node, name, want),
            };
            match r {
                R::Link(src, slot) => {
                    inputs.insert(name.clone(), json!([src, slot]));
                }
                R::Lit(v) => {
                    inputs.insert(name.clone(), v);
                }
                R::Prim(v) => {
                    let v = match def.and_then(|d| d.input(name)) {
                        Some(inp) => self.serialize_widget(class, inp, v, label),
                        None => v,
                    };
                    inputs.insert(name.clone(), v);
                }
                R::Keep => {}
                R::Delete => {
                    inputs.shift_remove(name);
                }
            }
        }
        let title = node["title"]
            .as_str()
            .map(String::from)
            .or_else(|| def.and_then(|d| d.display_name.clone()))
            .or_else(|| locale_display_name(class).map(String::from))
            .unwrap_or_else(|| class.to_string());
        json!({"inputs": inputs, "class_type": class, "_meta": {"title": title}})
    }

    /// Where input `name` of a group's inner node comes from: another inner node (by the
    /// definition's links; a PrimitiveNode gives its value, a Reroute is followed), or the group
    /// node's own input of that inner input, followed in the graph around the group node.
    fn resolve_group_input(
        &self,
        f: &Frame<'_, 'a>,
        g: &GroupCtx<'_, 'a>,
        node: &Value,
        name: &str,
        want: &str,
    ) -> R {
        let def = g.def;
        let Some(slot) = node["inputs"]
            .as_array()
            .and_then(|a| a.iter().position(|i| i["name"].as_str() == Some(name)))
        else {
            return R::Keep;
        };
        let (mut at, mut at_slot) = (g.index, slot);
        for _ in 0..=def.nodes.len() {
            if let Some(&(oi, os)) = def.links_to.get(&(at, at_slot)) {
                let origin = def.nodes[oi];
                match node_type(origin) {
                    "PrimitiveNode" => {
                        let v = g
                            .value(oi, "value")
                            .or_else(|| origin["widgets_values"].get(0).map(js_value));
                        return v.map_or(R::Keep, R::Prim);
                    }
                    "Reroute" => {
                        (at, at_slot) = (oi, 0);
                        continue;
                    }
                    _ => return R::Link(format!("{}:{oi}", g.label), os as u64),
                }
            }
            // Not linked inside: the group node's input for it, if it has one.
            let inner_name = if at == g.index {
                name.to_string()
            } else {
                def.nodes[at]["inputs"][at_slot]["name"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string()
            };
            let Some((outer, _, _)) = def
                .inputs
                .iter()
                .find(|(_, i, n)| *i == at && *n == inner_name)
            else {
                return R::Keep;
            };
            return match saved_link(g.inst, outer) {
                Some(lid) => self.resolve_link(f, lid, want, 1),
                None => R::Keep,
            };
        }
        self.note(format!(
            "a Reroute loop inside group node {} was cut",
            g.label
        ));
        R::Keep
    }

    fn resolve_link(&self, f: &Frame<'_, 'a>, lid: i64, want: &str, depth: usize) -> R {
        match f.g.links.get(&lid) {
            Some(l) => self.resolve_origin(f, l.origin, l.oslot, want, depth),
            None => {
                self.note(format!("link {lid} is not in the links table; ignored"));
                R::Keep
            }
        }
    }

    /// Follows output `oslot` of node `oid` to the node that is actually sent.
    fn resolve_origin(
        &self,
        f: &Frame<'_, 'a>,
        oid: i64,
        oslot: usize,
        want: &str,
        depth: usize,
    ) -> R {
        if depth > MAX_DEPTH {
            self.note(format!(
                "a link loop through node {}{oid} was cut",
                f.prefix
            ));
            return R::Keep;
        }
        if oid == -10 {
            // The subgraph's input node: continue at the instance's input in the parent graph.
            let Some((pf, inst, def)) = f.parent else {
                return R::Keep;
            };
            let Some(port) = def.inputs.get(oslot) else {
                return R::Keep;
            };
            if let Some(plid) = saved_link(inst, &port.name) {
                return self.resolve_link(pf, plid, want, depth + 1);
            }
            return match self.promoted_value(inst, def, oslot) {
                Some(v) => R::Lit(v),
                None => R::Keep,
            };
        }
        let Some(node) = f.g.by_id.get(&oid).copied() else {
            self.note(format!(
                "a link comes from node {}{oid}, which does not exist; ignored",
                f.prefix
            ));
            return R::Keep;
        };
        let ty = node_type(node);
        match ty {
            "Reroute" => {
                return match node["inputs"][0]["link"].as_i64() {
                    Some(l) => self.resolve_link(f, l, want, depth + 1),
                    None => R::Keep,
                }
            }
            "PrimitiveNode" => {
                let Some(v) = node["widgets_values"].get(0) else {
                    return R::Keep;
                };
                let mut v = js_value(v);
                // The frontend runs the replacement on any truthy value and throws on a
                // number; only text is replaced here.
                if js_truthy(&node["properties"][REPLACE_PROP]) {
                    if let Value::String(s) = &v {
                        v = Value::String(self.replace_refs(s, &format!("{}{oid}", f.prefix)));
                    }
                }
                return R::Prim(v);
            }
            "Note" | "MarkdownNote" => return R::Keep,
            _ => {}
        }
        let mode = node_mode(node);
        if let Some(gd) = self.group_of(ty) {
            if mode == 4 {
                let ins: Vec<(String, String)> = node["inputs"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|i| {
                        (
                            i["name"].as_str().unwrap_or_default().to_string(),
                            type_str(&i["type"]),
                        )
                    })
                    .collect();
                let out_ty = type_str(&node["outputs"][oslot]["type"]);
                return self.bypass(f, node, &ins, oslot, &out_ty, want, depth);
            }
            // Output `oslot` is the inner output it was made from (`updateLink`), through
            // inner Reroutes.
            let Some(&(mut oi, mut os)) = gd.outputs.get(oslot) else {
                return R::Keep;
            };
            for _ in 0..=gd.nodes.len() {
                if node_type(gd.nodes[oi]) != "Reroute" {
                    return R::Link(format!("{}{oid}:{oi}", f.prefix), os as u64);
                }
                match gd.links_to.get(&(oi, 0)) {
                    Some(&(a, b)) => (oi, os) = (a, b),
                    None => return R::Keep,
                }
            }
            return R::Keep;
        }
        if let Some(def) = self.defs.get(ty) {
            if mode == 4 {
                let ins: Vec<(String, String)> = def
                    .inputs
                    .iter()
                    .map(|p| (p.name.clone(), p.ty.clone()))
                    .collect();
                let out_ty = def.outputs.get(oslot).map_or("*", |p| p.ty.as_str());
                return self.bypass(f, node, &ins, oslot, out_ty, want, depth);
            }
            let Some(port) = def.outputs.get(oslot) else {
                return R::Keep;
            };
            let Some(&inner) = port.links.first() else {
                return R::Keep;
            };
            let child = Frame {
                g: &def.g,
                prefix: format!("{}{oid}:", f.prefix),
                parent: Some((f, node, def)),
            };
            return self.resolve_link(&child, inner, want, depth + 1);
        }
        match mode {
            2 => R::Delete,
            4 => {
                let class = renamed(ty);
                let (ins, out_ty) = match self.schema.get(class) {
                    Some(d) => {
                        // The live input list: sockets first, then widget inputs.
                        let mut v: Vec<(String, String)> = d
                            .inputs
                            .iter()
                            .filter(|i| !i.is_widget())
                            .map(|i| (i.name.clone(), i.kind.clone()))
                            .collect();
                        v.extend(
                            d.inputs
                                .iter()
                                .filter(|i| i.is_widget())
                                .map(|i| (i.name.clone(), i.kind.clone())),
                        );
                        (
                            v,
                            d.outputs.get(oslot).cloned().unwrap_or_else(|| "*".into()),
                        )
                    }
                    None => (
                        node["inputs"]
                            .as_array()
                            .into_iter()
                            .flatten()
                            .map(|i| {
                                (
                                    i["name"].as_str().unwrap_or_default().to_string(),
                                    type_str(&i["type"]),
                                )
                            })
                            .collect(),
                        type_str(&node["outputs"][oslot]["type"]),
                    ),
                };
                self.bypass(f, node, &ins, oslot, &out_ty, want, depth)
            }
            _ => R::Link(format!("{}{oid}", f.prefix), oslot as u64),
        }
    }

    /// Routes a link through a bypassed node to one of its inputs (the frontend's rules).
    #[allow(clippy::too_many_arguments)]
    fn bypass(
        &self,
        f: &Frame<'_, 'a>,
        node: &'a Value,
        ins: &[(String, String)],
        s: usize,
        out_ty: &str,
        want: &str,
        depth: usize,
    ) -> R {
        let both = |t: &str| types_compatible(t, out_ty) && types_compatible(t, want);
        let chosen = if want == "*" || want.is_empty() {
            if s < ins.len() {
                Some(s)
            } else if !ins.is_empty() {
                Some(0)
            } else {
                None
            }
        } else if s < ins.len() && both(&ins[s].1) {
            Some(s)
        } else {
            ins.iter()
                .position(|(_, t)| t == want)
                .or_else(|| ins.iter().position(|(_, t)| both(t)))
        };
        let Some(k) = chosen else { return R::Keep };
        match saved_link(node, &ins[k].0) {
            Some(l) => self.resolve_link(f, l, want, depth + 1),
            None => R::Keep,
        }
    }

    /// The value of an instance's promoted widget for definition input `k`: the instance's own
    /// `widgets_values` entry when it has one, else the inner widget's saved value.
    fn promoted_value(&self, inst: &Value, def: &SubgraphDef<'a>, k: usize) -> Option<Value> {
        let mut index = 0;
        for (j, port) in def.inputs.iter().enumerate() {
            let target = port.links.iter().find_map(|lid| {
                let l = def.g.links.get(lid)?;
                let inner = def.g.by_id.get(&l.target)?;
                let saved = &inner["inputs"][l.tslot];
                let name = saved["name"].as_str()?;
                let class = renamed(node_type(inner));
                let idef = self.schema.get(class);
                // A widget by the schema, or (class unknown here) by the saved input's
                // `widget` marker: either way it takes a place in the promoted list.
                let is_widget = match idef.and_then(|d| d.input(name)) {
                    Some(i) => i.is_widget(),
                    None => saved.get("widget").is_some_and(|w| !w.is_null()),
                };
                is_widget.then_some((*inner, class, idef, name))
            });
            let Some((inner, class, idef, name)) = target else {
                continue;
            };
            if j == k {
                if let Some(v) = inst["widgets_values"].as_array().and_then(|a| a.get(index)) {
                    return Some(js_value(v));
                }
                // The promoted widget's own value: the frontend resolves it without the
                // inner widget's serialisation (no dynamic prompts, no replacements).
                return self
                    .widget_values(class, idef?, inner, None)
                    .into_iter()
                    .find(|(n, _)| n == name)
                    .map(|(_, v)| v);
            }
            index += 1;
        }
        None
    }
}

/// How `{a|b}` choices are made: the first option, or pseudo-random from a seed.
#[derive(Debug, Clone)]
pub struct Chooser {
    state: Option<u64>,
}

impl Chooser {
    /// `None`: always the first option; `Some(seed)`: SplitMix64 draws.
    pub fn new(seed: Option<u64>) -> Chooser {
        Chooser { state: seed }
    }

    fn pick(&mut self, n: usize) -> usize {
        let Some(state) = &mut self.state else {
            return 0;
        };
        *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = *state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        (z % n as u64) as usize
    }
}

/// Nesting deeper than this in `{…}` is kept as written instead of recursing further.
const MAX_CHOICE_DEPTH: usize = 256;

/// The frontend's `processDynamicPrompt`: `/* … */` and `//…` to the end of the line removed,
/// each `{a|b|…}` replaced by one option (then processed again, so nesting works), `\{ \} \|`
/// unescaped; other backslashes are kept. An unclosed `{` runs to the end of the text.
pub fn dynamic_prompt(s: &str, chooser: &mut Chooser) -> String {
    dynamic_prompt_at(s, chooser, 0)
}

fn dynamic_prompt_at(s: &str, chooser: &mut Chooser, depth: usize) -> String {
    let stripped = strip_comments(s);
    let c: Vec<char> = stripped.chars().collect();
    let mut i = 0;
    let mut out = String::with_capacity(stripped.len());
    while i < c.len() {
        let ch = c[i];
        i += 1;
        match ch {
            '\\' => {
                out.push('\\');
                // (The frontend appends "undefined" for a trailing backslash; not copied.)
                if let Some(&n) = c.get(i) {
                    out.push(n);
                    i += 1;
                }
            }
            '{' if depth < MAX_CHOICE_DEPTH => {
                let mut options = Vec::new();
                let mut cur = String::new();
                let mut nested = 0usize;
                while i < c.len() {
                    let ch = c[i];
                    i += 1;
                    match ch {
                        '\\' => {
                            cur.push('\\');
                            if let Some(&n) = c.get(i) {
                                cur.push(n);
                                i += 1;
                            }
                            continue;
                        }
                        '{' => nested += 1,
                        '}' if nested == 0 => break,
                        '}' => nested -= 1,
                        '|' if nested == 0 => {
                            options.push(std::mem::take(&mut cur));
                            continue;
                        }
                        _ => {}
                    }
                    cur.push(ch);
                }
                options.push(cur);
                let k = chooser.pick(options.len());
                out.push_str(&dynamic_prompt_at(&options[k], chooser, depth + 1));
            }
            ch => out.push(ch),
        }
    }
    unescape_choices(&out)
}

/// `\{`, `\}`, `\|` become the bare character.
fn unescape_choices(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut it = s.chars().peekable();
    while let Some(ch) = it.next() {
        if ch == '\\' {
            if let Some(&n) = it.peek() {
                if matches!(n, '{' | '}' | '|') {
                    out.push(n);
                    it.next();
                    continue;
                }
            }
        }
        out.push(ch);
    }
    out
}

/// The frontend's `/\/\*[\s\S]*?\*\/|\/\/.*/g` removed.
fn strip_comments(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    loop {
        let block = rest.find("/*");
        let line = rest.find("//");
        match (block, line) {
            (Some(b), l) if l.is_none_or(|l| b < l) => {
                out.push_str(&rest[..b]);
                match rest[b + 2..].find("*/") {
                    Some(e) => rest = &rest[b + 2 + e + 2..],
                    None => {
                        // Unclosed: the regex does not match a block comment; `//` may still.
                        out.push_str("/*");
                        rest = &rest[b + 2..];
                    }
                }
            }
            (_, Some(l)) => {
                out.push_str(&rest[..l]);
                let end = rest[l..].find('\n').map_or(rest.len(), |e| l + e);
                rest = &rest[end..];
            }
            _ => {
                out.push_str(rest);
                return out;
            }
        }
    }
}

/// The frontend's `formatDate`: `yyyy`, `yy`, `MM`/`M`, `dd`/`d`, `hh`/`h` (24-hour), `mm`/`m`,
/// `ss`/`s` are replaced (two letters: zero-padded); everything else (`yyy`, a lone `y`) stays.
fn format_date(fmt: &str, t: &WallClock) -> String {
    let c: Vec<char> = fmt.chars().collect();
    let mut out = String::new();
    let mut i = 0;
    while i < c.len() {
        let ch = c[i];
        let run = |max: usize| {
            let mut n = 1;
            while n < max && c.get(i + n) == Some(&ch) {
                n += 1;
            }
            n
        };
        let field = match ch {
            'd' => Some(t.day as i64),
            'M' => Some(t.month as i64),
            'h' => Some(t.hour as i64),
            'm' => Some(t.minute as i64),
            's' => Some(t.second as i64),
            _ => None,
        };
        if let Some(v) = field {
            let n = run(2);
            out.push_str(&format!("{v:0n$}"));
            i += n;
        } else if ch == 'y' && c.get(i + 1) == Some(&'y') {
            let n = run(4);
            let year = t.year.to_string();
            match n {
                2 => out.push_str(year.get(2..).unwrap_or_default()),
                4 => out.push_str(&year),
                _ => out.push_str("yyy"),
            }
            i += n;
        } else {
            out.push(ch);
            i += 1;
        }
    }
    out
}

/// `(value ?? '') + ''` in JS. Integers keep all their digits (JS would round those beyond
/// 2^53; comfyctl does not, as everywhere else).
fn js_string(v: &Value) -> String {
    match v {
        Value::Null => String::new(),
        Value::Bool(b) => b.to_string(),
        Value::String(s) => s.clone(),
        Value::Number(n) => js_number(n),
        Value::Array(a) => a
            .iter()
            .map(|x| {
                if x.is_null() {
                    String::new()
                } else {
                    js_string(x)
                }
            })
            .collect::<Vec<_>>()
            .join(","),
        Value::Object(o) => match o.get("__value__") {
            Some(inner) => js_string(inner),
            None => "[object Object]".to_string(),
        },
    }
}

/// A JSON number as JS's `Number.prototype.toString` writes it (`7.50` → `7.5`, `1e-7`,
/// `1e+21`), except that an integer literal keeps its digits.
fn js_number(n: &serde_json::Number) -> String {
    let text = n.to_string();
    let digits = text.strip_prefix('-').unwrap_or(&text);
    if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) {
        return if digits.bytes().all(|b| b == b'0') {
            "0".into()
        } else {
            text
        };
    }
    let Some(f) = n.as_f64() else { return text };
    js_f64(f)
}

fn js_f64(f: f64) -> String {
    if f == 0.0 {
        return "0".into();
    }
    if !f.is_finite() {
        return if f.is_nan() {
            "NaN".into()
        } else if f > 0.0 {
            "Infinity".into()
        } else {
            "-Infinity".into()
        };
    }
    // Shortest round-trip digits and the decimal exponent, then JS's layout rules.
    let sci = format!("{:e}", f.abs());
    let (mant, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let digits: String = mant.chars().filter(|c| *c != '.').collect();
    let k = digits.len() as i32;
    let n = exp + 1;
    let body = if k <= n && n <= 21 {
        format!("{digits}{}", "0".repeat((n - k) as usize))
    } else if 0 < n && n <= 21 {
        format!("{}.{}", &digits[..n as usize], &digits[n as usize..])
    } else if -6 < n && n <= 0 {
        format!("0.{}{digits}", "0".repeat((-n) as usize))
    } else {
        let e = n - 1;
        let sign = if e < 0 { '-' } else { '+' };
        let m = if k == 1 {
            digits.clone()
        } else {
            format!("{}.{}", &digits[..1], &digits[1..])
        };
        format!("{m}e{sign}{}", e.abs())
    };
    if f < 0.0 {
        format!("-{body}")
    } else {
        body
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dynamic_prompts_like_the_frontend() {
        // The frontend's own example (ui-conversion.md, syn01).
        let s = "a photo of a {cat}, // note\nsee https://example.com/a.png\n/* block */ \\{literal braces\\} and {nested {inner}} end";
        let first = &mut Chooser::new(None);
        assert_eq!(
            dynamic_prompt(s, first),
            "a photo of a cat, \nsee https:\n {literal braces} and nested inner end"
        );
        // Without a seed: always the first option, nested too.
        assert_eq!(dynamic_prompt("{red|blue} {a|{b|c}}", first), "red a");
        assert_eq!(dynamic_prompt("{{b|c}|a}", first), "b");
        // With a seed: every option comes up, and the same seed repeats the same choices.
        let mut seen = HashSet::new();
        for seed in 0..64 {
            let v = dynamic_prompt("{red|blue} {a|{b|c}}", &mut Chooser::new(Some(seed)));
            let again = dynamic_prompt("{red|blue} {a|{b|c}}", &mut Chooser::new(Some(seed)));
            assert_eq!(v, again);
            seen.insert(v);
        }
        let all: HashSet<String> = ["red a", "red b", "red c", "blue a", "blue b", "blue c"]
            .map(String::from)
            .into();
        assert_eq!(seen, all);
        assert_eq!(dynamic_prompt("a | b", first), "a | b");
        // As the frontend: an unclosed brace runs to the end; other escapes keep the backslash.
        assert_eq!(dynamic_prompt("open {x", first), "open x");
        assert_eq!(dynamic_prompt("a\\b \\| c}", first), "a\\b | c}");
        assert_eq!(dynamic_prompt("end\\", first), "end\\");
        // Deep nesting neither overflows the stack nor loses the text.
        let deep = "{".repeat(10_000) + "x";
        assert!(dynamic_prompt(&deep, first).ends_with('x'));
    }

    #[test]
    fn js_number_strings() {
        let n = |t: &str| js_string(&serde_json::from_str(t).unwrap());
        assert_eq!(n("7.50"), "7.5");
        assert_eq!(n("1.0"), "1");
        assert_eq!(n("-0.0"), "0");
        assert_eq!(n("0.000001"), "0.000001");
        assert_eq!(n("0.0000001"), "1e-7");
        assert_eq!(n("1.5e21"), "1.5e+21");
        assert_eq!(n("123456789012345678901.0"), "123456789012345680000");
        assert_eq!(n("-2.5e-8"), "-2.5e-8");
        // Deliberate: integer literals keep every digit (JS: 9007199254740992).
        assert_eq!(n("9007199254740993"), "9007199254740993");
        assert_eq!(n("true"), "true");
        assert_eq!(n("null"), "");
        assert_eq!(n("[1, null, \"a\"]"), "1,,a");
    }

    #[test]
    fn dates_like_the_frontend() {
        let t = WallClock::from_unix(1_772_600_767);
        assert_eq!(WallClock::parse("2026-03-04T05:06:07Z"), Some(t));
        assert_eq!(WallClock::parse("2026-03-04 05:06:07"), Some(t));
        assert_eq!(WallClock::parse("2026-13-04T05:06:07"), None);
        assert_eq!(WallClock::parse("2026-03-04"), None);
        assert_eq!(
            format_date("yyyy-MM-dd hh:mm:ss", &t),
            "2026-03-04 05:06:07"
        );
        assert_eq!(
            format_date("yy M d h m s y yyy ddd", &t),
            "26 3 4 5 6 7 y yyy 044"
        );
        // Leap day and dates before 1970.
        let leap = WallClock::from_unix(951_782_400); // 2000-02-29T00:00:00Z
        assert_eq!((leap.year, leap.month, leap.day), (2000, 2, 29));
        let old = WallClock::from_unix(-1);
        assert_eq!(
            (old.year, old.month, old.day, old.hour, old.minute, old.second),
            (1969, 12, 31, 23, 59, 59)
        );
    }

    #[test]
    fn references_keep_big_integers_and_skip_non_text_primitives() {
        let s = Schema::parse(
            r#"{
            "KSampler": {"input": {"required": {"seed": ["INT", {"default": 0}]}},
              "input_order": {"required": ["seed"]}, "output": ["LATENT"], "display_name": "KSampler"},
            "SaveImage": {"input": {"required": {"images": ["IMAGE"], "filename_prefix": ["STRING", {"default": "ComfyUI"}]}},
              "input_order": {"required": ["images", "filename_prefix"]}, "output": [], "display_name": "Save Image"}
          }"#,
            "t",
        )
        .unwrap();
        let w = ui(
            json!([
                {"id": 1, "type": "KSampler", "inputs": [
                    {"name": "seed", "type": "INT", "widget": {"name": "seed"}, "link": 1}],
                 "widgets_values": [9007199254740993_u64, "fixed"]},
                {"id": 2, "type": "SaveImage", "inputs": [], "widgets_values": ["s%KSampler.seed%_%%_50%_%"]},
                {"id": 3, "type": "PrimitiveNode", "inputs": [],
                 "outputs": [{"name": "INT", "type": "INT", "widget": {"name": "seed"}, "links": [1]}],
                 "properties": {"Run widget replace on values": true},
                 "widgets_values": [9007199254740995_u64, "fixed"]}
            ]),
            json!([[1, 3, 0, 1, 0, "INT"]]),
        );
        let m = convert(&w, &s, "t").unwrap();
        // The primitive's number is written as is (the frontend would throw on it), and the
        // reference sees the primitive's value with all its digits.
        assert_eq!(m["1"]["inputs"]["seed"].to_string(), "9007199254740995");
        assert_eq!(
            m["2"]["inputs"]["filename_prefix"],
            "s9007199254740995_%%_50%_%"
        );
    }

    #[test]
    fn js_numbers() {
        assert_eq!(js_value(&serde_json::from_str("1.0").unwrap()), json!(1));
        assert_eq!(
            js_value(&serde_json::from_str("2.5").unwrap()).to_string(),
            "2.5"
        );
        assert_eq!(js_value(&json!([1, 2])), json!({"__value__": [1, 2]}));
    }

    fn schema() -> Schema {
        Schema::parse(
            r#"{
            "KSampler": {"input": {"required": {
                "model": ["MODEL"], "seed": ["INT", {"default": 0}], "steps": ["INT", {"default": 20}],
                "sampler_name": [["euler", "euler_ancestral"]]}},
              "input_order": {"required": ["model", "seed", "steps", "sampler_name"]},
              "output": ["LATENT"], "display_name": "KSampler"},
            "LoadImage": {"input": {"required": {"image": [["a.png"], {"image_upload": true}]}},
              "output": ["IMAGE", "MASK"], "display_name": "Load Image"},
            "Loader": {"input": {"required": {"name": [["m.safetensors"]]}}, "output": ["MODEL"]},
            "Pass": {"input": {"required": {"clip": ["CLIP"], "model": ["MODEL"]}}, "output": ["CLIP", "MODEL"]}
          }"#,
            "test",
        )
        .unwrap()
    }

    fn ui(nodes: Value, links: Value) -> Value {
        json!({"nodes": nodes, "links": links, "version": 0.4})
    }

    #[test]
    fn seed_control_slot_and_sampler_prefix() {
        let w = ui(
            json!([{"id": 1, "type": "KSampler", "mode": 0, "inputs": [],
                    "widgets_values": [5, "fixed", 30, "sample_euler_ancestral"]}]),
            json!([]),
        );
        let m = convert(&w, &schema(), "t").unwrap();
        assert_eq!(
            m["1"]["inputs"],
            json!({"seed": 5, "steps": 30, "sampler_name": "euler_ancestral"})
        );
    }

    #[test]
    fn missing_values_take_defaults_and_object_values_are_ignored() {
        let w = ui(
            json!([{"id": 1, "type": "KSampler", "inputs": [], "widgets_values": {"seed": 9}},
                   {"id": 2, "type": "LoadImage", "inputs": [], "widgets_values": ["b.png", "image"], "title": "Mine"}]),
            json!([]),
        );
        let m = convert(&w, &schema(), "t").unwrap();
        assert_eq!(
            m["1"]["inputs"],
            json!({"seed": 0, "steps": 20, "sampler_name": "euler"})
        );
        assert_eq!(m["2"]["inputs"], json!({"image": "b.png"}));
        assert_eq!(m["2"]["_meta"]["title"], "Mine");
    }

    #[test]
    fn bypass_routes_to_the_input_of_the_consumer_type() {
        // Loader -> Pass (bypassed) -> KSampler.model: Pass's output 1 (MODEL) routes to its
        // MODEL input (rule 3: slot 1 is `model`, compatible -> rule 2 applies directly).
        let w = ui(
            json!([
                {"id": 1, "type": "Loader", "inputs": [], "widgets_values": ["m.safetensors"]},
                {"id": 2, "type": "Pass", "mode": 4,
                 "inputs": [{"name": "clip", "type": "CLIP", "link": null},
                            {"name": "model", "type": "MODEL", "link": 1}]},
                {"id": 3, "type": "KSampler", "inputs": [{"name": "model", "type": "MODEL", "link": 2}],
                 "widgets_values": [1, "fixed", 2, "euler"]}
            ]),
            json!([[1, 1, 0, 2, 1, "MODEL"], [2, 2, 1, 3, 0, "MODEL"]]),
        );
        let m = convert(&w, &schema(), "t").unwrap();
        assert_eq!(m["3"]["inputs"]["model"], json!(["1", 0]));
        assert!(m.get("2").is_none());

        // Reading Pass's CLIP output as MODEL: rule 2 fails (slot 0 is CLIP), rule 3 finds the
        // MODEL input, which is linked.
        let w2 = ui(
            json!([
                {"id": 1, "type": "Loader", "inputs": [], "widgets_values": ["m.safetensors"]},
                {"id": 2, "type": "Pass", "mode": 4,
                 "inputs": [{"name": "clip", "type": "CLIP", "link": null},
                            {"name": "model", "type": "MODEL", "link": 1}]},
                {"id": 3, "type": "KSampler", "inputs": [{"name": "model", "type": "MODEL", "link": 2}],
                 "widgets_values": [1, "fixed", 2, "euler"]}
            ]),
            json!([[1, 1, 0, 2, 1, "MODEL"], [2, 2, 0, 3, 0, "CLIP"]]),
        );
        let m2 = convert(&w2, &schema(), "t").unwrap();
        assert_eq!(m2["3"]["inputs"]["model"], json!(["1", 0]));
    }

    #[test]
    fn muted_source_removes_the_input_and_its_widget_value() {
        let w = ui(
            json!([
                {"id": 1, "type": "Loader", "mode": 2, "inputs": [], "widgets_values": ["m.safetensors"]},
                {"id": 3, "type": "KSampler",
                 "inputs": [{"name": "model", "type": "MODEL", "link": 1},
                            {"name": "steps", "type": "INT", "widget": {"name": "steps"}, "link": 2}],
                 "widgets_values": [1, "fixed", 2, "euler"]},
                {"id": 4, "type": "Loader", "mode": 2, "inputs": [], "outputs": []}
            ]),
            json!([[1, 1, 0, 3, 0, "MODEL"], [2, 4, 0, 3, 2, "INT"]]),
        );
        let m = convert(&w, &schema(), "t").unwrap();
        assert_eq!(
            m["3"]["inputs"],
            json!({"seed": 1, "sampler_name": "euler"})
        );
        assert_eq!(m.len(), 1);
    }

    #[test]
    fn explicit_false_control_refresh_button_and_locale_titles() {
        // Measured against the frontend: `control_after_generate: false` on a `seed` input
        // means no control slot (MoonvalleyVideo2VideoNode); a remote combo's refresh button
        // takes the slot after the upload button and is sent; classes without display_name
        // get the frontend's English name.
        let s = Schema::parse(
            r#"{
            "Moon": {"input": {"required": {
                "seed": ["INT", {"default": 9, "control_after_generate": false}],
                "steps": ["INT", {"default": 33}], "cfg": ["FLOAT", {"default": 8.0}]}},
              "input_order": {"required": ["seed", "steps", "cfg"]}, "output": [], "display_name": "Moon"},
            "LoadImageOutput": {"input": {"required": {"image": ["COMBO", {"image_upload": true,
                "remote": {"route": "/internal/files/output", "refresh_button": true}}]}},
              "output": ["IMAGE", "MASK"], "display_name": "Load Image (from Outputs)"},
            "ImageBlur": {"input": {"required": {"image": ["IMAGE"], "blur_radius": ["INT", {"default": 1}]}},
              "input_order": {"required": ["image", "blur_radius"]}, "output": ["IMAGE"], "display_name": null}
          }"#,
            "t",
        )
        .unwrap();
        let w = ui(
            json!([
                {"id": 1, "type": "Moon", "inputs": [], "widgets_values": [7, 40]},
                {"id": 2, "type": "LoadImageOutput", "inputs": [], "widgets_values": ["a.png [output]", false, "refresh", "image"]},
                {"id": 3, "type": "LoadImageOutput", "inputs": [], "widgets_values": ["b.png [output]"]},
                {"id": 4, "type": "ImageBlur", "inputs": [], "widgets_values": [2]}
            ]),
            json!([]),
        );
        let m = convert(&w, &s, "t").unwrap();
        // The default 8.0 is written the JS way, as 8.
        assert_eq!(
            m["1"]["inputs"].to_string(),
            r#"{"seed":7,"steps":40,"cfg":8}"#
        );
        assert_eq!(
            m["2"]["inputs"],
            json!({"image": "a.png [output]", "refresh": "refresh"})
        );
        assert_eq!(
            m["3"]["inputs"],
            json!({"image": "b.png [output]", "refresh": "refresh"})
        );
        assert_eq!(m["4"]["_meta"]["title"], "Image Blur");
        assert_eq!(m["4"]["inputs"], json!({"blur_radius": 2}));
    }

    #[test]
    fn record_audio_sends_an_empty_recording() {
        // Measured: frontend 1.27.10 sends RecordAudio's recorder widget as "" (templates
        // api_stability_ai_audio_to_audio, video_humo), whatever widgets_values holds.
        let s = Schema::parse(
            r#"{"RecordAudio": {"input": {"required": {"audio": ["AUDIO_RECORD", {}]}},
                "input_order": {"required": ["audio"]}, "output": ["AUDIO"], "display_name": "Record Audio"}}"#,
            "t",
        )
        .unwrap();
        let w = ui(
            json!([{"id": 1, "type": "RecordAudio", "inputs": [], "widgets_values": ["x.wav", ""]},
                   {"id": 2, "type": "RecordAudio", "inputs": []}]),
            json!([]),
        );
        let m = convert(&w, &s, "t").unwrap();
        assert_eq!(m["1"]["inputs"], json!({"audio": ""}));
        assert_eq!(m["2"]["inputs"], json!({"audio": ""}));
    }

    #[test]
    fn refuses_api_format_and_non_objects() {
        let e = convert(
            &json!({"1": {"class_type": "X", "inputs": {}}}),
            &schema(),
            "f",
        )
        .unwrap_err();
        assert!(e.to_string().contains("already an API-format"));
        assert!(convert(&json!([1]), &schema(), "f").is_err());
    }

    #[test]
    fn bypassed_subgraph_instance_routes_around_but_still_sends_its_nodes() {
        // Instance 10 of a one-node subgraph (Pass: CLIP, MODEL -> CLIP, MODEL) is bypassed:
        // KSampler.model reading its output 1 is routed to the instance's `model` input, while
        // the inner node is still sent as "10:1".
        let sg = json!({
            "id": "sg", "inputs": [
                {"name": "clip", "type": "CLIP", "linkIds": [101]},
                {"name": "model", "type": "MODEL", "linkIds": [102]}],
            "outputs": [
                {"name": "CLIP", "type": "CLIP", "linkIds": [103]},
                {"name": "MODEL", "type": "MODEL", "linkIds": [104]}],
            "nodes": [{"id": 1, "type": "Pass", "inputs": [
                {"name": "clip", "type": "CLIP", "link": 101},
                {"name": "model", "type": "MODEL", "link": 102}]}],
            "links": [
                {"id": 101, "origin_id": -10, "origin_slot": 0, "target_id": 1, "target_slot": 0, "type": "CLIP"},
                {"id": 102, "origin_id": -10, "origin_slot": 1, "target_id": 1, "target_slot": 1, "type": "MODEL"},
                {"id": 103, "origin_id": 1, "origin_slot": 0, "target_id": -20, "target_slot": 0, "type": "CLIP"},
                {"id": 104, "origin_id": 1, "origin_slot": 1, "target_id": -20, "target_slot": 1, "type": "MODEL"}]
        });
        let mut w = ui(
            json!([
                {"id": 5, "type": "Loader", "inputs": [], "widgets_values": ["m.safetensors"]},
                {"id": 10, "type": "sg", "mode": 4, "inputs": [
                    {"name": "clip", "type": "CLIP", "link": null},
                    {"name": "model", "type": "MODEL", "link": 1}]},
                {"id": 3, "type": "KSampler", "inputs": [{"name": "model", "type": "MODEL", "link": 2}],
                 "widgets_values": [1, "fixed", 2, "euler"]}
            ]),
            json!([[1, 5, 0, 10, 1, "MODEL"], [2, 10, 1, 3, 0, "MODEL"]]),
        );
        w["definitions"] = json!({"subgraphs": [sg]});
        let m = convert(&w, &schema(), "t").unwrap();
        assert_eq!(m["3"]["inputs"]["model"], json!(["5", 0]));
        assert_eq!(m["10:1"]["inputs"], json!({"model": ["5", 0]}));
        // Not bypassed: the same link resolves to the inner node.
        w["nodes"][1]["mode"] = json!(0);
        let m = convert(&w, &schema(), "t").unwrap();
        assert_eq!(m["3"]["inputs"]["model"], json!(["10:1", 1]));
        let keys: Vec<&String> = m.keys().collect();
        assert_eq!(keys, ["3", "5", "10:1"]);
    }

    #[test]
    fn group_nodes_with_bad_definitions_do_not_panic() {
        let mut w = ui(
            json!([
                {"id": 1, "type": "workflow>G", "inputs": [{"name": "model", "type": "MODEL", "link": 1}],
                 "outputs": [{"name": "LATENT", "type": "LATENT", "links": [2]}], "widgets_values": "x"},
                {"id": 2, "type": "workflow>Missing", "inputs": []},
                {"id": 3, "type": "KSampler", "inputs": [{"name": "model", "type": "MODEL", "link": 2}],
                 "widgets_values": [1, "fixed", 2, "euler"]},
                {"id": 4, "type": "workflow>Loop", "inputs": [],
                 "outputs": [{"name": "x", "type": "*", "links": [3]}]},
                {"id": 5, "type": "KSampler", "inputs": [{"name": "model", "type": "MODEL", "link": 3}],
                 "widgets_values": [1, "fixed", 2, "euler"]}
            ]),
            json!([
                [1, 9, 0, 1, 0, "MODEL"],
                [2, 1, 0, 3, 0, "LATENT"],
                [3, 4, 0, 5, 0, "*"]
            ]),
        );
        w["extra"] = json!({"groupNodes": {
            "G": {"nodes": [{"type": "KSampler", "inputs": [{"name": "model", "link": 7}]}, 5, null],
                  "links": [[0, 0, 99, 0], [null, 0, 0, 0], "x", [7, 0, 0, 0], [0, 0, 0, 0]],
                  "external": "nope", "config": {"0": {"input": 3}}},
            "Loop": {"nodes": [{"type": "Reroute", "inputs": [{"name": "", "link": 1}]},
                               {"type": "Reroute", "inputs": [{"name": "", "link": 2}]}],
                     "links": [[0, 0, 1, 0], [1, 0, 0, 0]], "external": [[0, 0, "*"]]},
            "Missing": 7
        }});
        let (m, _) = convert_with_notes(&w, &schema(), "t").unwrap();
        assert!(m.contains_key("1:0"));
        assert!(m["5"]["inputs"].get("model").is_none());
    }

    #[test]
    fn reroute_loops_do_not_hang() {
        let w = ui(
            json!([
                {"id": 1, "type": "Reroute", "inputs": [{"name": "", "type": "*", "link": 2}]},
                {"id": 2, "type": "Reroute", "inputs": [{"name": "", "type": "*", "link": 1}]},
                {"id": 3, "type": "KSampler", "inputs": [{"name": "model", "type": "MODEL", "link": 3}],
                 "widgets_values": [1, "fixed", 2, "euler"]}
            ]),
            json!([
                [1, 1, 0, 2, 0, "*"],
                [2, 2, 0, 1, 0, "*"],
                [3, 1, 0, 3, 0, "MODEL"]
            ]),
        );
        let (m, notes) = convert_with_notes(&w, &schema(), "t").unwrap();
        assert!(m["3"]["inputs"].get("model").is_none());
        assert!(notes.iter().any(|n| n.contains("loop")));
    }
}

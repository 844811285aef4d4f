//! `comfyctl send`: the pipeline both targets share — load → normalize → resolve injections
//! (reading and checking every input image) — then hand over to [`crate::comfy`] (a ComfyUI
//! server) or [`crate::runpod`] (a RunPod endpoint). Nothing touches the network until the
//! workflow and every input have been checked.

use crate::cli::SendArgs;
use crate::error::{Error, Result};
use crate::inject::{self, ImageArg, InjectOptions, Plan, SeedChoice, SetArg};
use crate::normalize::{self, NameTable, Normalized};
use crate::report::Reporter;
use crate::workflow::Document;
use serde_json::{Map, Value};

/// A workflow ready to send: normalized (unless `--no-normalize`), injections resolved, images read.
#[derive(Debug, Clone)]
pub struct Prepared {
    pub doc: Document,
    /// The node map that will be sent, before image names are filled in.
    pub nodes: Map<String, Value>,
    pub normalized: Option<Normalized>,
    pub plan: Plan,
}

impl Prepared {
    /// The node map with every injection applied; `image_name` gives each image's server-side name.
    pub fn nodes_with(
        &self,
        image_name: impl Fn(&inject::PreparedImage) -> String,
    ) -> Map<String, Value> {
        let mut nodes = self.nodes.clone();
        inject::apply(&mut nodes, &self.plan, image_name);
        nodes
    }

    /// The node's ID as the user wrote it, if normalization renamed it (for messages).
    pub fn original_id(&self, id: &str) -> Option<&str> {
        self.normalized
            .as_ref()?
            .map
            .iter()
            .find(|(_, n)| n == id)
            .map(|(o, _)| o.as_str())
    }

    /// `_meta.title` of a node in the sent workflow.
    pub fn title(&self, id: &str) -> Option<&str> {
        self.nodes.get(id)?.get("_meta")?.get("title")?.as_str()
    }

    /// `class_type` of a node in the sent workflow.
    pub fn class_type(&self, id: &str) -> Option<&str> {
        self.nodes.get(id)?.get("class_type")?.as_str()
    }
}

/// Loads the name table: built-in, extended by `--names FILE`.
pub fn load_names(path: Option<&std::path::Path>) -> Result<NameTable> {
    let mut t = NameTable::builtin();
    if let Some(p) = path {
        let text = std::fs::read_to_string(p)
            .map_err(|e| Error::Usage(format!("--names {}: cannot read: {e}", p.display())))?;
        let v: Value = serde_json::from_str(&text)
            .map_err(|e| Error::Usage(format!("--names {}: not valid JSON: {e}", p.display())))?;
        t.extend_from_json(&v)
            .map_err(|e| Error::Usage(format!("--names {}: {e}", p.display())))?;
    }
    Ok(t)
}

/// Everything before the network: load, normalize, resolve and read injections.
pub fn prepare(args: &SendArgs, reporter: &Reporter) -> Result<Prepared> {
    let table = load_names(args.names.as_deref())?;
    let doc = crate::commands::load_document(
        &args.workflow,
        &crate::cli::SchemaSource {
            server: None,
            object_info: args.object_info.clone(),
            offline: false,
            headers: Vec::new(),
        },
        reporter,
    )?;
    let (nodes, normalized) = if args.no_normalize {
        // Still refuse a broken graph before any network call.
        crate::workflow::Graph::build(doc.nodes(), &doc.file).map_err(|d| {
            Error::InvalidWorkflow {
                file: doc.file.clone(),
                diagnostics: d,
            }
        })?;
        (doc.nodes().clone(), None)
    } else {
        let n = normalize::normalize(doc.nodes(), &doc.file, &table).map_err(|d| {
            Error::InvalidWorkflow {
                file: doc.file.clone(),
                diagnostics: d,
            }
        })?;
        (n.nodes.clone(), Some(n))
    };
    let opts = InjectOptions {
        images: args.images.iter().map(|s| ImageArg::parse(s)).collect(),
        prompt: args.prompt.clone(),
        negative: args.negative.clone(),
        seed: match (args.seed, args.random_seed) {
            (Some(s), _) => Some(SeedChoice::Fixed(s)),
            (None, true) => Some(SeedChoice::Random),
            (None, false) => None,
        },
        sets: args
            .sets
            .iter()
            .map(|s| SetArg::parse(s))
            .collect::<Result<_>>()?,
    };
    let plan = inject::plan(&nodes, &doc.file, normalized.as_ref(), &opts)?;
    for w in &plan.warnings {
        reporter.warn(w);
    }
    if let Some(seed) = plan.seed {
        reporter.debug(1, format!("seed: {seed}"));
    }
    Ok(Prepared {
        doc,
        nodes,
        normalized,
        plan,
    })
}

/// Runs `send`: to RunPod when `--endpoint`/`--runpod-url` (or their env vars) are set, else to
/// ComfyUI. Returns the exit code for a successful run (0).
pub async fn run(args: SendArgs) -> Result<i32> {
    let reporter = Reporter::new(args.out.quiet, args.out.verbose);
    let prepared = prepare(&args, &reporter)?;
    if args.runpod.is_set() {
        crate::runpod::send(&args, prepared, &reporter).await
    } else {
        crate::comfy::send(&args, prepared, &reporter).await
    }
}

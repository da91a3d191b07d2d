//! Interventions, as plain data: which parts of a model an ablation switches off (parsed from
//! `--ablate attn:10-15,ffn:3,head:4.2`), and where in llama.cpp's graph each part adds to the
//! residual stream, found by walking a recorded graph back from the final norm.
//!
//! The walk does not trust an architecture's names alone: every residual add from the final
//! norm back to the embedding must have one operand named as an attention or MLP output of a
//! layer (`attn_out-ℓ`, `attn_post_norm-ℓ`, `ffn_out-ℓ`, `ffn_post_norm-ℓ`…) and the other the
//! stream itself. A graph where that does not hold (parallel attention and MLP, an unnamed
//! output) is reported with the reason, never guessed at.

use std::fmt;

/// A part of the model an ablation switches off.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Part {
    /// Layer ℓ's attention output (what it adds to the residual stream).
    Attn(usize),
    /// Layer ℓ's MLP output.
    Ffn(usize),
    /// One head of layer ℓ: its slice of the heads' output before the output projection.
    Head(usize, usize),
}

impl Part {
    pub fn layer(self) -> usize {
        match self {
            Part::Attn(l) | Part::Ffn(l) | Part::Head(l, _) => l,
        }
    }
}

impl fmt::Display for Part {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Part::Attn(l) => write!(f, "attn:{l}"),
            Part::Ffn(l) => write!(f, "ffn:{l}"),
            Part::Head(l, h) => write!(f, "head:{l}.{h}"),
        }
    }
}

/// `a` or `a-b` (inclusive) as a range of numbers.
fn range(s: &str, what: &str, spec: &str) -> Result<std::ops::RangeInclusive<usize>, String> {
    let num = |t: &str| {
        t.trim().parse::<usize>().map_err(|_| {
            format!(
                "ablation '{spec}': '{t}' is not a {what} number (write e.g. attn:3 or attn:3-5)"
            )
        })
    };
    match s.split_once('-') {
        Some((a, b)) => {
            let (a, b) = (num(a)?, num(b)?);
            if a > b {
                return Err(format!(
                    "ablation '{spec}': the {what} range {a}-{b} is empty"
                ));
            }
            Ok(a..=b)
        }
        None => {
            let a = num(s)?;
            Ok(a..=a)
        }
    }
}

/// Parse `--ablate`: comma-separated `attn:ℓ`, `ffn:ℓ`, `head:ℓ.h`, each number or range
/// `a-b` (inclusive), `head:ℓ.*` for every head (given `n_head`). The parts come back sorted
/// and without repeats; an empty string is no ablation.
pub fn parse_ablation(s: &str, n_head: usize) -> Result<Vec<Part>, String> {
    let mut parts = Vec::new();
    for spec in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (kind, rest) = spec.split_once(':').ok_or_else(|| {
            format!("ablation '{spec}': write attn:ℓ, ffn:ℓ or head:ℓ.h (layers from 0)")
        })?;
        match kind.trim() {
            "attn" => parts.extend(range(rest, "layer", spec)?.map(Part::Attn)),
            "ffn" | "mlp" => parts.extend(range(rest, "layer", spec)?.map(Part::Ffn)),
            "head" => {
                let (layers, heads) = rest.split_once('.').ok_or_else(|| {
                    format!("ablation '{spec}': a head is layer.head, e.g. head:4.2")
                })?;
                let heads = if heads.trim() == "*" {
                    0..=n_head.saturating_sub(1)
                } else {
                    range(heads, "head", spec)?
                };
                for l in range(layers, "layer", spec)? {
                    parts.extend(heads.clone().map(|h| Part::Head(l, h)));
                }
            }
            other => {
                return Err(format!(
                    "ablation '{spec}': unknown part '{other}' (attn, ffn or head)"
                ))
            }
        }
    }
    parts.sort();
    parts.dedup();
    Ok(parts)
}

/// Check parts against the model's size.
pub fn check_parts(parts: &[Part], n_layer: usize, n_head: usize) -> Result<(), String> {
    for &p in parts {
        if p.layer() >= n_layer {
            return Err(format!(
                "ablation {p}: the model has layers 0-{} ({n_layer} layers)",
                n_layer.saturating_sub(1)
            ));
        }
        if let Part::Head(_, h) = p {
            if h >= n_head {
                return Err(format!(
                    "ablation {p}: the model has heads 0-{} ({n_head} per layer)",
                    n_head.saturating_sub(1)
                ));
            }
        }
    }
    Ok(())
}

/// Parts written back compactly: runs of layers as ranges (`attn:10-15,head:4.2-3`).
pub fn describe(parts: &[Part]) -> String {
    let mut out: Vec<String> = Vec::new();
    let mut i = 0;
    while i < parts.len() {
        let p = parts[i];
        let mut j = i;
        let next = |q: Part, r: Part| match (q, r) {
            (Part::Attn(a), Part::Attn(b)) | (Part::Ffn(a), Part::Ffn(b)) => b == a + 1,
            (Part::Head(la, a), Part::Head(lb, b)) => la == lb && b == a + 1,
            _ => false,
        };
        while j + 1 < parts.len() && next(parts[j], parts[j + 1]) {
            j += 1;
        }
        let last = parts[j];
        out.push(match (p, last) {
            _ if i == j => p.to_string(),
            (Part::Attn(a), Part::Attn(b)) => format!("attn:{a}-{b}"),
            (Part::Ffn(a), Part::Ffn(b)) => format!("ffn:{a}-{b}"),
            (Part::Head(l, a), Part::Head(_, b)) => format!("head:{l}.{a}-{b}"),
            _ => p.to_string(),
        });
        i = j + 1;
    }
    out.join(",")
}

/// The kind of a graph node's operation, as far as the walk needs it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Add,
    Mul,
    RmsNorm,
    Norm,
    GetRows,
    Other,
}

/// One node of a recorded graph: its name, operation, sources (indices of earlier nodes or
/// leaves in the same list) and shape.
#[derive(Debug, Clone, PartialEq)]
pub struct GraphNode {
    pub name: String,
    pub op: Op,
    pub srcs: Vec<usize>,
    pub ne: [usize; 4],
}

/// What a residual stream is made of: the node names to read or write per component.
#[derive(Debug, Clone, PartialEq)]
pub struct Components {
    /// The stream before layer 0 (`inp_embd`, or Gemma's `inp_scaled`).
    pub embedding: String,
    /// Per layer, in order.
    pub layers: Vec<LayerComponents>,
    /// The stream the final norm reads.
    pub last: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct LayerComponents {
    /// The node whose value the layer's attention adds to the stream.
    pub attn: String,
    /// The node whose value the layer's MLP adds.
    pub ffn: String,
    /// The heads' output before the output projection (`kqv_out-ℓ`) and its width, if the
    /// graph names it.
    pub heads: Option<(String, usize)>,
    /// The stream after the layer (`l_out-ℓ`), if named.
    pub out: Option<String>,
}

/// `kind-ℓ` split, for names with a layer.
fn kind_layer(name: &str) -> Option<(&str, usize)> {
    let (k, l) = name.rsplit_once('-')?;
    Some((k, l.parse().ok()?))
}

fn is_attn(kind: &str) -> bool {
    matches!(kind, "attn_out" | "attn_post_norm")
}

fn is_ffn(kind: &str) -> bool {
    matches!(kind, "ffn_out" | "ffn_post_norm" | "ffn_moe_out")
}

/// For a get_rows of computed rows (the last layer's selection of the outputs asked for), the
/// node it selects from; `None` for anything else, such as the embedding lookup, whose source
/// is a weight (a leaf without inputs).
fn selection_of(nodes: &[GraphNode], i: usize) -> Option<usize> {
    let n = &nodes[i];
    let &src = n.srcs.first()?;
    (n.op == Op::GetRows && !nodes[src].srcs.is_empty()).then_some(src)
}

/// Walk `nodes` (in graph order) back from the final norm (`result_norm`) to the embedding,
/// naming what each of `n_layer` layers adds to the residual stream.
pub fn residual_components(nodes: &[GraphNode], n_layer: usize) -> Result<Components, String> {
    let norm_out = nodes
        .iter()
        .rposition(|n| n.name == "result_norm")
        .ok_or("the graph has no result_norm node (no final norm to walk back from)")?;
    // result_norm is the norm's weight (and bias) applied to the norm: find the norm itself.
    let mut stack = vec![(norm_out, 0)];
    let mut norm = None;
    while let Some((i, depth)) = stack.pop() {
        if matches!(nodes[i].op, Op::RmsNorm | Op::Norm) {
            norm = Some(i);
            break;
        }
        if depth < 3 {
            stack.extend(nodes[i].srcs.iter().map(|&s| (s, depth + 1)));
        }
    }
    let norm = norm.ok_or("result_norm is not a norm of the stream")?;
    let mut r = *nodes[norm]
        .srcs
        .first()
        .ok_or("the final norm has no input")?;
    let last = nodes[r].name.clone();
    let mut attn: Vec<Option<String>> = vec![None; n_layer];
    let mut ffn: Vec<Option<String>> = vec![None; n_layer];
    loop {
        let node = &nodes[r];
        match node.op {
            Op::Add => {
                let [a, b] = node.srcs[..] else {
                    return Err(format!(
                        "the residual add '{}' has not two inputs",
                        node.name
                    ));
                };
                // The last layer keeps only the rows asked for (get_rows) of its attention
                // output and of the stream: look through that.
                let through = |i: usize| selection_of(nodes, i).unwrap_or(i);
                let (a, b) = (through(a), through(b));
                let part = |i: usize| {
                    kind_layer(&nodes[i].name)
                        .filter(|(k, l)| (is_attn(k) || is_ffn(k)) && *l < n_layer)
                };
                let (c, rest) = match (part(a), part(b)) {
                    (Some(_), None) => (a, b),
                    (None, Some(_)) => (b, a),
                    _ => {
                        return Err(format!(
                            "the residual add '{}' adds '{}' and '{}': not one attention or MLP \
                             output of a layer and the stream (a parallel or unnamed block)",
                            node.name, nodes[a].name, nodes[b].name
                        ))
                    }
                };
                let (kind, layer) = part(c).unwrap_or_default();
                let slot = if is_attn(kind) {
                    &mut attn[layer]
                } else {
                    &mut ffn[layer]
                };
                if slot.is_some() {
                    return Err(format!(
                        "layer {layer} adds two {kind} outputs to the stream"
                    ));
                }
                *slot = Some(nodes[c].name.clone());
                r = rest;
            }
            // The last layer keeps only the rows asked for: the stream goes on through it.
            Op::GetRows if selection_of(nodes, r).is_some() => {
                r = selection_of(nodes, r).unwrap_or(r)
            }
            _ => break,
        }
    }
    let embedding = nodes[r].name.clone();
    let mut layers = Vec::with_capacity(n_layer);
    for l in 0..n_layer {
        let (Some(a), Some(f)) = (attn[l].take(), ffn[l].take()) else {
            return Err(format!(
                "layer {l}'s {} output is not added to the residual stream under a known name",
                if attn[l].is_none() {
                    "attention"
                } else {
                    "MLP"
                }
            ));
        };
        let named = |kind: &str| {
            let name = format!("{kind}-{l}");
            nodes.iter().find(|n| n.name == name)
        };
        layers.push(LayerComponents {
            attn: a,
            ffn: f,
            heads: named("kqv_out").map(|n| (n.name.clone(), n.ne[0])),
            out: named("l_out").map(|n| n.name.clone()),
        });
    }
    // A name written to must name one node only.
    for c in &layers {
        for name in [
            Some(&c.attn),
            Some(&c.ffn),
            c.heads.as_ref().map(|h| &h.0),
            c.out.as_ref(),
        ]
        .into_iter()
        .flatten()
        {
            if nodes.iter().filter(|n| &n.name == name).count() > 1 {
                return Err(format!("the graph has several nodes named '{name}'"));
            }
        }
    }
    Ok(Components {
        embedding,
        layers,
        last,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specs_parse_into_sorted_parts() {
        assert_eq!(parse_ablation("", 4).expect("valid"), vec![]);
        assert_eq!(
            parse_ablation("ffn:3, attn:1-2,head:4.2", 4).expect("valid"),
            vec![Part::Attn(1), Part::Attn(2), Part::Ffn(3), Part::Head(4, 2)]
        );
        assert_eq!(
            parse_ablation("head:1.*", 3).expect("valid"),
            vec![Part::Head(1, 0), Part::Head(1, 1), Part::Head(1, 2)]
        );
        assert_eq!(
            parse_ablation("attn:2,attn:2", 1).expect("valid"),
            vec![Part::Attn(2)]
        );
        for bad in [
            "attn", "attn:x", "attn:5-3", "head:3", "neuron:1", "head:1.a",
        ] {
            assert!(parse_ablation(bad, 4).is_err(), "{bad}");
        }
        assert!(check_parts(&[Part::Attn(30)], 30, 9).is_err());
        assert!(check_parts(&[Part::Head(0, 9)], 30, 9).is_err());
        assert!(check_parts(&[Part::Head(29, 8)], 30, 9).is_ok());
    }

    #[test]
    fn descriptions_round_trip() {
        for s in ["attn:10-15", "attn:1,ffn:3-4,head:2.0-1,head:5.3", "ffn:0"] {
            let parts = parse_ablation(s, 8).expect("valid");
            assert_eq!(describe(&parts), s);
            assert_eq!(parse_ablation(&describe(&parts), 8).expect("valid"), parts);
        }
    }

    fn node(name: &str, op: Op, srcs: &[usize]) -> GraphNode {
        GraphNode {
            name: name.into(),
            op,
            srcs: srcs.to_vec(),
            ne: [8, 2, 1, 1],
        }
    }

    /// A llama-shaped graph of `n` layers: inp_embd, then per layer attn_out added to the
    /// stream (ffn_inp), ffn_out added (l_out), then the final norm.
    fn llama(n: usize) -> Vec<GraphNode> {
        let mut g = vec![node("inp_embd", Op::GetRows, &[])];
        let mut r = 0;
        for l in 0..n {
            g.push(node(&format!("attn_norm-{l}"), Op::Mul, &[r]));
            g.push(node(&format!("kqv_out-{l}"), Op::Other, &[g.len() - 1]));
            g.push(node(&format!("attn_out-{l}"), Op::Other, &[g.len() - 1]));
            g.push(node(&format!("ffn_inp-{l}"), Op::Add, &[g.len() - 1, r]));
            let fi = g.len() - 1;
            g.push(node(&format!("ffn_out-{l}"), Op::Other, &[fi]));
            g.push(node(&format!("l_out-{l}"), Op::Add, &[g.len() - 1, fi]));
            r = g.len() - 1;
        }
        g.push(node("norm", Op::RmsNorm, &[r]));
        g.push(node("result_norm", Op::Mul, &[g.len() - 1]));
        g
    }

    #[test]
    fn a_llama_graph_names_its_components() {
        let c = residual_components(&llama(3), 3).expect("valid");
        assert_eq!(c.embedding, "inp_embd");
        assert_eq!(c.last, "l_out-2");
        assert_eq!(c.layers[1].attn, "attn_out-1");
        assert_eq!(c.layers[1].ffn, "ffn_out-1");
        assert_eq!(c.layers[2].heads, Some(("kqv_out-2".into(), 8)));
        assert_eq!(c.layers[0].out.as_deref(), Some("l_out-0"));
        // More layers than the graph has: the missing ones are named.
        let e = residual_components(&llama(3), 4).expect_err("refused");
        assert!(e.contains("layer 3"), "{e}");
    }

    #[test]
    fn the_last_layers_row_selection_is_looked_through() {
        let mut g = llama(2);
        // Layer 1's ffn_inp adds get_rows(attn_out-1) and get_rows(l_out-0).
        let attn = g
            .iter()
            .position(|n| n.name == "attn_out-1")
            .expect("valid");
        let prev = g.iter().position(|n| n.name == "l_out-0").expect("valid");
        let add = g.iter().position(|n| n.name == "ffn_inp-1").expect("valid");
        g.push(node("", Op::GetRows, &[attn]));
        g.push(node("", Op::GetRows, &[prev]));
        g[add].srcs = vec![g.len() - 2, g.len() - 1];
        let c = residual_components(&g, 2).expect("valid");
        assert_eq!(c.layers[1].attn, "attn_out-1");
        assert_eq!(c.embedding, "inp_embd");
    }

    #[test]
    fn post_norms_are_the_components_when_the_graph_has_them() {
        // Gemma: attn_post_norm-ℓ + stream = sa_out, ffn_post_norm-ℓ + sa_out = l_out.
        let mut g = vec![
            node("inp_embd", Op::GetRows, &[]),
            node("inp_scaled", Op::Other, &[0]),
        ];
        g.push(node("attn_out-0", Op::Other, &[1]));
        g.push(node("attn_post_norm-0", Op::Mul, &[2]));
        g.push(node("sa_out-0", Op::Add, &[3, 1]));
        g.push(node("ffn_out-0", Op::Other, &[4]));
        g.push(node("ffn_post_norm-0", Op::Mul, &[5]));
        g.push(node("l_out-0", Op::Add, &[6, 4]));
        g.push(node("norm", Op::RmsNorm, &[7]));
        g.push(node("result_norm", Op::Mul, &[8]));
        let c = residual_components(&g, 1).expect("valid");
        assert_eq!(c.embedding, "inp_scaled");
        assert_eq!(c.layers[0].attn, "attn_post_norm-0");
        assert_eq!(c.layers[0].ffn, "ffn_post_norm-0");
        assert_eq!(c.layers[0].heads, None);
    }

    #[test]
    fn a_parallel_block_is_refused_with_the_reason() {
        // attn and ffn summed first, then added: no single component per add.
        let g = vec![
            node("inp_embd", Op::GetRows, &[]),
            node("attn_out-0", Op::Other, &[0]),
            node("ffn_out-0", Op::Other, &[0]),
            node("both-0", Op::Add, &[1, 2]),
            node("l_out-0", Op::Add, &[3, 0]),
            node("norm", Op::RmsNorm, &[4]),
            node("result_norm", Op::Mul, &[5]),
        ];
        let e = residual_components(&g, 1).expect_err("refused");
        assert!(e.contains("parallel"), "{e}");
        assert!(residual_components(&g[..5], 1).is_err());
    }
}

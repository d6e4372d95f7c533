//! The cap on selections after fragment expansion. Depth and complexity limits look at a
//! document as written; a fragment that spreads the previous fragment twice doubles the
//! work at each level, so a 900-byte document can expand to millions of fields, which
//! validation and execution then walk. [`SelectionLimit`] counts what the operations
//! expand to — in time linear in the document's size, whatever it expands to — and
//! refuses a document over the cap before it is validated.

use super::errors::ErrorCode;
use async_graphql::ServerResult;
use async_graphql::extensions::{Extension, ExtensionContext, ExtensionFactory, NextParseQuery};
use async_graphql::parser::types::{ExecutableDocument, Selection, SelectionSet};
use async_graphql::{ServerError, Variables};
use std::collections::HashMap;
use std::sync::Arc;

/// The size of a selection set as written: its fields (nested ones included) and the
/// fragments it spreads (each spread counted once per occurrence).
#[derive(Default)]
struct Shape<'a> {
    fields: u64,
    spreads: Vec<&'a str>,
}

fn shape<'a>(set: &'a SelectionSet, out: &mut Shape<'a>) {
    // Nesting is bounded by the parser's recursion limit, so this recursion is too.
    for item in &set.items {
        match &item.node {
            Selection::Field(f) => {
                out.fields = out.fields.saturating_add(1);
                shape(&f.node.selection_set.node, out);
            }
            Selection::FragmentSpread(s) => out.spreads.push(s.node.fragment_name.node.as_str()),
            Selection::InlineFragment(i) => shape(&i.node.selection_set.node, out),
        }
    }
}

/// How many field selections the largest operation of `doc` expands to, spreading every
/// fragment. Fragments are sized once each (iteratively: a long chain of fragments cannot
/// exhaust the stack); a fragment cycle counts as nothing here (validation refuses it).
pub fn expanded_selections(doc: &ExecutableDocument) -> u64 {
    let shapes: HashMap<&str, Shape<'_>> = doc
        .fragments
        .iter()
        .map(|(name, f)| {
            let mut s = Shape::default();
            shape(&f.node.selection_set.node, &mut s);
            (name.as_str(), s)
        })
        .collect();
    let mut sizes: HashMap<&str, u64> = HashMap::with_capacity(shapes.len());
    // In name order, so that the (meaningless) size a cycle gets does not depend on the
    // map's iteration order.
    let mut roots: Vec<&str> = shapes.keys().copied().collect();
    roots.sort_unstable();
    for root in roots {
        size_of(root, &shapes, &mut sizes);
    }
    doc.operations
        .iter()
        .map(|(_, op)| {
            let mut s = Shape::default();
            shape(&op.node.selection_set.node, &mut s);
            s.spreads.iter().fold(s.fields, |acc, name| {
                acc.saturating_add(sizes.get(name).copied().unwrap_or(0))
            })
        })
        .max()
        .unwrap_or(0)
}

/// Sizes fragment `root` and every fragment it reaches, depth first with an explicit stack.
fn size_of<'a>(
    root: &'a str,
    shapes: &HashMap<&'a str, Shape<'a>>,
    sizes: &mut HashMap<&'a str, u64>,
) {
    if sizes.contains_key(root) {
        return;
    }
    // (fragment, whether its spreads have been pushed already)
    let mut stack = vec![(root, false)];
    let mut on_path = std::collections::HashSet::new();
    while let Some((name, expanded)) = stack.pop() {
        let Some(s) = shapes.get(name) else {
            sizes.insert(name, 0);
            continue;
        };
        if expanded {
            on_path.remove(name);
            let total = s.spreads.iter().fold(s.fields, |acc, n| {
                acc.saturating_add(sizes.get(n).copied().unwrap_or(0))
            });
            sizes.insert(name, total);
            continue;
        }
        if sizes.contains_key(name) || !on_path.insert(name) {
            continue; // done already, or a cycle
        }
        stack.push((name, true));
        for n in &s.spreads {
            if !sizes.contains_key(n) && !on_path.contains(n) {
                stack.push((n, false));
            }
        }
    }
}

/// The extension that refuses documents expanding to more than `max` selections.
pub struct SelectionLimit {
    /// Most field selections one operation may expand to.
    pub max: usize,
}

impl ExtensionFactory for SelectionLimit {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(SelectionLimitExtension {
            max: self.max as u64,
        })
    }
}

struct SelectionLimitExtension {
    max: u64,
}

#[async_trait::async_trait]
impl Extension for SelectionLimitExtension {
    async fn parse_query(
        &self,
        ctx: &ExtensionContext<'_>,
        query: &str,
        variables: &Variables,
        next: NextParseQuery<'_>,
    ) -> ServerResult<ExecutableDocument> {
        let doc = next.run(ctx, query, variables).await?;
        let n = expanded_selections(&doc);
        if n > self.max {
            let mut err = ServerError::new(
                format!(
                    "the operation selects {n} fields once its fragments are expanded; at most {} are allowed",
                    self.max
                ),
                None,
            );
            let mut ext = async_graphql::ErrorExtensionValues::default();
            ext.set("code", ErrorCode::BadUserInput.as_str());
            err.extensions = Some(ext);
            return Err(err);
        }
        Ok(doc)
    }
}

#[cfg(test)]
mod tests {
    use super::expanded_selections;
    use async_graphql::parser::parse_query;

    fn bomb(levels: usize) -> String {
        let mut q = String::from("query { ...F0 }\nfragment F0 on Query { __typename }\n");
        for i in 1..=levels {
            q.push_str(&format!(
                "fragment F{i} on Query {{ ...F{p} ...F{p} }}\n",
                p = i - 1
            ));
        }
        q.replace("query { ...F0 }", &format!("query {{ ...F{levels} }}"))
    }

    #[test]
    fn fragments_count_what_they_expand_to() {
        let doc = parse_query("{ a b { c d } ... on Query { e } }").unwrap();
        assert_eq!(expanded_selections(&doc), 5);
        let doc = parse_query(bomb(22)).unwrap();
        assert_eq!(expanded_selections(&doc), 1 << 22);
        let doc = parse_query(bomb(80)).unwrap();
        assert_eq!(
            expanded_selections(&doc),
            u64::MAX,
            "saturates, never overflows"
        );
    }

    #[test]
    fn cycles_and_long_chains_terminate() {
        let doc =
            parse_query("{ ...A } fragment A on Query { x ...B } fragment B on Query { y ...A }")
                .unwrap();
        // Each fragment of the cycle counts once; the cycle itself adds nothing.
        assert_eq!(expanded_selections(&doc), 2);
        let mut q = String::from("{ ...F0 }\n");
        for i in 0..20_000 {
            q.push_str(&format!("fragment F{i} on Query {{ x ...F{} }}\n", i + 1));
        }
        let doc = parse_query(q).unwrap();
        assert_eq!(expanded_selections(&doc), 20_000);
    }
}

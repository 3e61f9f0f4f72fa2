//! How answers are printed: every command builds a view of its answer that serializes to
//! its JSON form and renders its table form, and [`print`] prints one of the two.

use anyhow::Context as _;
use serde::{Serialize, Serializer};
use sutra_client::NodeResult;

/// The `--output` flag: how an answer is printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Output {
    // Plain comments, not doc comments: clap would list these in every command's help.
    // Lines for people (the default).
    Table,
    // One JSON value on one line, for scripts.
    Json,
}

/// A command's answer. Its JSON form is what `Serialize` makes of it; its table form is
/// [`View::table`]. Both come from the same fields, so the two cannot drift apart.
pub trait View: Serialize {
    /// The answer as text, without a final newline.
    fn table(&self) -> String;
}

/// Prints `view` as its table or as one line of JSON.
pub fn print(output: Output, view: &impl View) -> anyhow::Result<()> {
    let text = match output {
        Output::Table => view.table(),
        Output::Json => serde_json::to_string(view).context("encoding the answer as JSON")?,
    };
    println!("{text}");
    Ok(())
}

/// One node's line in an answer from every node; its JSON object names the endpoint.
pub trait Row: Serialize {
    /// The row as one line, starting with the node's endpoint.
    fn line(&self) -> String;
}

/// One node's part of an answer from every node: its row, or why it gave none.
#[derive(Debug, Serialize)]
#[serde(untagged)]
pub enum NodeRow<R> {
    /// The node answered.
    Answered(R),
    /// The node did not answer.
    Failed {
        /// The node's endpoint.
        endpoint: String,
        /// What went wrong, on one line.
        error: String,
    },
}

/// An answer from every configured node, in endpoint order: a line per node, or a JSON
/// array with an object per node.
#[derive(Debug, Serialize)]
#[serde(transparent)]
pub struct NodeRows<R>(pub Vec<NodeRow<R>>);

impl<R> NodeRows<R> {
    /// Every node's result, each answer made into a row by `row(endpoint, answer)`.
    pub fn new<T>(results: Vec<NodeResult<T>>, row: impl Fn(String, T) -> R) -> Self {
        let rows = results
            .into_iter()
            .map(|r| match r.result {
                Ok(answer) => NodeRow::Answered(row(r.endpoint, answer)),
                Err(e) => NodeRow::Failed {
                    endpoint: r.endpoint,
                    error: e.to_string(),
                },
            })
            .collect();
        Self(rows)
    }

    /// Fails, naming the first node that did not answer, unless every node answered. It
    /// is checked after printing, so that the answers of the others are still shown.
    pub fn all_answered(&self) -> anyhow::Result<()> {
        let failed: Vec<_> = self
            .0
            .iter()
            .filter_map(|r| match r {
                NodeRow::Answered(_) => None,
                NodeRow::Failed { endpoint, error } => Some(format!("{endpoint}: {error}")),
            })
            .collect();
        match failed.first() {
            None => Ok(()),
            Some(first) => {
                anyhow::bail!("{} of {} nodes failed; {first}", failed.len(), self.0.len())
            }
        }
    }
}

impl<R: Row> View for NodeRows<R> {
    fn table(&self) -> String {
        let lines: Vec<_> = self
            .0
            .iter()
            .map(|r| match r {
                NodeRow::Answered(row) => row.line(),
                NodeRow::Failed { endpoint, error } => format!("{endpoint}  error: {error}"),
            })
            .collect();
        lines.join("\n")
    }
}

/// A list of items, one line each; JSON is an array of them.
#[derive(Debug, Serialize)]
#[serde(transparent)]
pub struct Lines<T>(pub Vec<T>);

/// An item of a [`Lines`] list.
pub trait Line: Serialize {
    /// The item as one line of the table; `index` is its place in the list, from 0.
    fn line(&self, index: usize) -> String;
}

impl<T: Line> View for Lines<T> {
    fn table(&self) -> String {
        let lines: Vec<_> = self.0.iter().enumerate().map(|(i, t)| t.line(i)).collect();
        lines.join("\n")
    }
}

/// Writes an `f32` as the `f64` it widens to (0.1 as 0.10000000149011612). The CLI's JSON
/// has always written scores, weights and embeddings this way, and scripts compare the
/// numbers they read from it.
pub fn wide<S: Serializer>(v: &f32, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64(f64::from(*v))
}

/// [`wide`] for every element of a vector.
pub fn wide_all<S: Serializer>(v: &[f32], s: S) -> Result<S::Ok, S::Error> {
    s.collect_seq(v.iter().map(|x| f64::from(*x)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use sutra_client::ClientError;

    #[derive(Debug, Serialize)]
    struct Node {
        endpoint: String,
        n: u64,
    }

    impl Row for Node {
        fn line(&self) -> String {
            format!("{}  n {}", self.endpoint, self.n)
        }
    }

    fn results() -> Vec<NodeResult<u64>> {
        vec![
            NodeResult {
                endpoint: "a:1".into(),
                result: Ok(7),
            },
            NodeResult {
                endpoint: "b:1".into(),
                result: Err(ClientError::Unavailable {
                    message: "connection refused".into(),
                    leader_id: None,
                    leader_addr: None,
                }),
            },
        ]
    }

    #[test]
    fn a_node_that_did_not_answer_is_an_error_row_and_fails_the_command() {
        let rows = NodeRows::new(results(), |endpoint, n| Node { endpoint, n });
        let error = results().remove(1).result.unwrap_err().to_string();
        assert_eq!(rows.table(), format!("a:1  n 7\nb:1  error: {error}"));
        let json = serde_json::to_value(&rows).unwrap();
        assert_eq!(json[0]["endpoint"], "a:1");
        assert_eq!(json[0]["n"], 7);
        assert_eq!(json[1]["endpoint"], "b:1");
        assert_eq!(json[1]["error"], error.as_str());
        let failure = rows.all_answered().unwrap_err().to_string();
        assert_eq!(failure, format!("1 of 2 nodes failed; b:1: {error}"));
    }

    #[test]
    fn every_node_answering_is_success() {
        let mut all = results();
        all.truncate(1);
        assert!(
            NodeRows::new(all, |endpoint, n| Node { endpoint, n })
                .all_answered()
                .is_ok()
        );
    }

    #[test]
    fn floats_are_written_as_they_widen() {
        #[derive(Serialize)]
        struct F {
            #[serde(serialize_with = "wide")]
            x: f32,
            #[serde(serialize_with = "wide_all")]
            v: Vec<f32>,
        }
        let text = serde_json::to_string(&F {
            x: 0.1,
            v: vec![1.0, -2.5],
        })
        .unwrap();
        assert_eq!(text, r#"{"x":0.10000000149011612,"v":[1.0,-2.5]}"#);
    }
}

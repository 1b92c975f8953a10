//! [`TypedGraph`]: a graph whose run state is a Rust type rather than loose JSON.
//!
//! The runner stores and checkpoints JSON for every graph (tests and benches define plain
//! [`Graph`]s), so a typed graph is adapted at each node's edges: the checkpointed JSON is
//! read into the state type, the node runs on it, and the state is written back as JSON. A
//! stored run therefore keeps its format across restarts, and a state that no longer fits the
//! type (saved by another build) fails its run with a reason instead of a panic.

use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value as Json;

use super::{Graph, Node, NodeCx, NodeFuture};
use crate::error::{Error, Result};

/// A graph definition over a typed state; every `TypedGraph` is a [`Graph`].
pub trait TypedGraph: Send + Sync + 'static {
    /// The run state, checkpointed as its JSON form after every node.
    type State: Serialize + DeserializeOwned + Send;
    /// The graph's name (its URL segment).
    fn name(&self) -> &'static str;
    /// One sentence for `GET /v1/graphs` and the console.
    fn description(&self) -> &'static str;
    /// Every node, the first one first.
    fn nodes(&self) -> &'static [Node];
    /// JSON schema of `input` (for `GET /v1/graphs` and the console's form).
    fn input_schema(&self) -> Json;
    /// Default overall timeout when `input.timeouts.overall_sec` is not given.
    fn default_timeout_s(&self) -> u64;
    /// Check `input` (422 naming the field) and build the initial state.
    fn init(&self, input: &Json) -> Result<Self::State>;
    /// Run one node on `state`.
    fn step<'a>(
        &'a self,
        node: &'a str,
        state: &'a mut Self::State,
        cx: &'a NodeCx,
    ) -> NodeFuture<'a>;
    /// The run's result, from its final state.
    fn result(&self, state: &Self::State) -> Json;
    /// Bump when a node's behaviour or the state's shape changes in a way resumed runs must
    /// not mix.
    fn version(&self) -> u32 {
        1
    }
}

/// The checkpointed JSON as `T`, or an error naming the graph (the run fails with it).
fn decode<T: DeserializeOwned>(graph: &str, state: &Json) -> Result<T> {
    T::deserialize(state).map_err(|e| {
        Error::Internal(format!(
            "the run's saved state does not fit graph '{graph}' ({e}); start a new run"
        ))
    })
}

fn encode<T: Serialize>(graph: &str, state: &T) -> Result<Json> {
    serde_json::to_value(state).map_err(|e| {
        Error::Internal(format!(
            "the state of graph '{graph}' cannot be saved as JSON ({e})"
        ))
    })
}

impl<G: TypedGraph> Graph for G {
    fn name(&self) -> &'static str {
        TypedGraph::name(self)
    }
    fn description(&self) -> &'static str {
        TypedGraph::description(self)
    }
    fn nodes(&self) -> &'static [Node] {
        TypedGraph::nodes(self)
    }
    fn input_schema(&self) -> Json {
        TypedGraph::input_schema(self)
    }
    fn default_timeout_s(&self) -> u64 {
        TypedGraph::default_timeout_s(self)
    }
    fn init(&self, input: &Json) -> Result<Json> {
        encode(TypedGraph::name(self), &TypedGraph::init(self, input)?)
    }
    fn step<'a>(&'a self, node: &'a str, state: &'a mut Json, cx: &'a NodeCx) -> NodeFuture<'a> {
        Box::pin(async move {
            let name = TypedGraph::name(self);
            let mut typed: G::State = decode(name, state)?;
            let step = TypedGraph::step(self, node, &mut typed, cx).await?;
            *state = encode(name, &typed)?;
            Ok(step)
        })
    }
    fn result(&self, state: &Json) -> Json {
        self.try_result(state).unwrap_or(Json::Null)
    }
    fn try_result(&self, state: &Json) -> Result<Json> {
        let typed: G::State = decode(TypedGraph::name(self), state)?;
        Ok(TypedGraph::result(self, &typed))
    }
    fn version(&self) -> u32 {
        TypedGraph::version(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Serialize, Deserialize)]
    struct S {
        n: u64,
    }

    const NODES: &[Node] = &[Node {
        name: "only",
        safe_to_repeat: true,
    }];

    struct Count;

    impl TypedGraph for Count {
        type State = S;
        fn name(&self) -> &'static str {
            "count"
        }
        fn description(&self) -> &'static str {
            "counts"
        }
        fn nodes(&self) -> &'static [Node] {
            NODES
        }
        fn input_schema(&self) -> Json {
            serde_json::json!({"type": "object"})
        }
        fn default_timeout_s(&self) -> u64 {
            1
        }
        fn init(&self, _input: &Json) -> Result<S> {
            Ok(S { n: 7 })
        }
        fn step<'a>(&'a self, _: &'a str, s: &'a mut S, _: &'a NodeCx) -> NodeFuture<'a> {
            Box::pin(async move {
                s.n += 1;
                Ok(crate::graphs::Step::Done)
            })
        }
        fn result(&self, s: &S) -> Json {
            serde_json::json!({"n": s.n})
        }
    }

    #[test]
    fn the_adapter_stores_json_and_refuses_a_state_that_does_not_fit() {
        let g: &dyn Graph = &Count;
        let state = g.init(&Json::Null).unwrap();
        assert_eq!(state, serde_json::json!({"n": 7}));
        assert_eq!(g.try_result(&state).unwrap(), serde_json::json!({"n": 7}));
        let e = g.try_result(&serde_json::json!({"m": 1})).unwrap_err();
        assert!(e.to_string().contains("does not fit graph 'count'"), "{e}");
        assert_eq!(g.result(&serde_json::json!({"m": 1})), Json::Null);
    }

    #[test]
    fn a_state_that_does_not_fit_is_an_error_naming_the_graph() {
        let e = decode::<S>("g", &serde_json::json!({"n": "x"})).err();
        let m = e.map(|e| e.to_string()).unwrap_or_default();
        assert!(m.contains("does not fit graph 'g'"), "{m}");
        let ok: Option<S> = decode("g", &serde_json::json!({"n": 3})).ok();
        assert_eq!(ok.map(|s| s.n), Some(3));
    }
}

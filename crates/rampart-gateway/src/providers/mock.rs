//! The in-process simulated provider (`type = "mock"`): calls [`rampart_mock::Simulator`]
//! directly, with no HTTP in between.

use futures_util::StreamExt;
use rampart_mock::{SimError, Simulator};
use serde_json::Value;

use super::{Chunk, Completion, ProviderError, Reply};

fn from_sim(e: SimError) -> ProviderError {
    ProviderError::Status {
        status: e.status,
        body: e.body,
        retry_after: None,
    }
}

pub async fn chat(
    sim: &Simulator,
    body: &bytes::Bytes,
    class: Option<&str>,
    stream: bool,
) -> Result<Reply, ProviderError> {
    let body: Value =
        serde_json::from_slice(body).map_err(|e| ProviderError::Invalid(e.to_string()))?;
    let body = &body;
    if stream {
        let chunks = sim.stream(body, class).await.map_err(from_sim)?;
        Ok(Reply::Stream(
            chunks.map(|c| Ok(Chunk::from_value(&c))).boxed(),
        ))
    } else {
        sim.complete(body, class)
            .await
            .map(|v| Reply::Json(Completion::from_value(&v)))
            .map_err(from_sim)
    }
}

pub fn embeddings(sim: &Simulator, body: &Value) -> Result<Value, ProviderError> {
    sim.embeddings(body).map_err(from_sim)
}

//! The built-in worker: the server's own executor, reached in-process, for steps that run on
//! a worker when the space has no workers of its own (and for ad-hoc scripts on no target).

use async_trait::async_trait;
use cuttle_exec::{ExecError, Executor, ScriptRequest, ScriptStatus, StartOutcome};

use crate::transport::{HealthReport, TargetAddress, Transport, TransportError};

/// The name the built-in worker goes by in logs.
pub const BUILT_IN_WORKER_NAME: &str = "the built-in worker";

pub struct BuiltInWorker {
    executor: Executor,
}

impl BuiltInWorker {
    pub fn new(executor: Executor) -> BuiltInWorker {
        BuiltInWorker { executor }
    }
}

fn unusable(error: ExecError) -> TransportError {
    TransportError::Unusable {
        target: BUILT_IN_WORKER_NAME.to_owned(),
        message: error.to_string(),
    }
}

#[async_trait]
impl Transport for BuiltInWorker {
    async fn check_health(&self, _target: &TargetAddress) -> Result<HealthReport, TransportError> {
        Ok(HealthReport {
            warnings: Vec::new(),
            summary: format!("the server's own executor ({})", std::env::consts::OS),
        })
    }

    async fn start_script(
        &self,
        _target: &TargetAddress,
        request: &ScriptRequest,
    ) -> Result<StartOutcome, TransportError> {
        self.executor.start(request.clone()).await.map_err(unusable)
    }

    async fn script_status(
        &self,
        _target: &TargetAddress,
        ticket: &str,
        after_sequence: u64,
    ) -> Result<ScriptStatus, TransportError> {
        self.executor
            .status(ticket, after_sequence)
            .await
            .map_err(unusable)
    }

    async fn cancel_script(
        &self,
        _target: &TargetAddress,
        ticket: &str,
    ) -> Result<(), TransportError> {
        self.executor.cancel(ticket).await.map_err(unusable)
    }

    async fn complete_script(
        &self,
        _target: &TargetAddress,
        ticket: &str,
    ) -> Result<(), TransportError> {
        self.executor.complete(ticket).await.map_err(unusable)
    }
}

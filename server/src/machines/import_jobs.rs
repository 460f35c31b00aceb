//! Imports started from the GUI run in the background; the page polls their progress.
//!
//! Jobs live in this process's memory for an hour. Behind a load balancer with several replicas,
//! route a session to one replica (or use the JSON API's synchronous import).

use app::error::AppError;
use app::machines::{ImportProgress, ImportReport, MachineSpec};
use rand::Rng;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

const JOB_LIFETIME: Duration = Duration::from_secs(3600);

#[derive(Clone, Default)]
pub struct ImportJobs {
    jobs: Arc<Mutex<HashMap<String, Arc<ImportJob>>>>,
}

pub struct ImportJob {
    pub id: String,
    started: Instant,
    progress: Mutex<ImportProgress>,
    /// The checked machines between preview and commit; taken by the commit.
    checked: Mutex<Option<(ImportReport, Vec<MachineSpec>)>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl ImportJobs {
    pub fn create(&self, total: u32) -> Arc<ImportJob> {
        let id = format!("{:032x}", rand::rng().random::<u128>());
        let job = Arc::new(ImportJob {
            id: id.clone(),
            started: Instant::now(),
            progress: Mutex::new(ImportProgress::Checking { done: 0, total }),
            checked: Mutex::new(None),
        });
        let mut jobs = lock(&self.jobs);
        jobs.retain(|_, j| j.started.elapsed() < JOB_LIFETIME);
        jobs.insert(id, job.clone());
        job
    }

    pub fn get(&self, id: &str) -> Result<Arc<ImportJob>, AppError> {
        lock(&self.jobs).get(id).cloned().ok_or_else(|| {
            AppError::not_found(
                "This import is no longer known (it expired or the server restarted). Preview it again.",
            )
        })
    }
}

impl ImportJob {
    pub fn set(&self, progress: ImportProgress) {
        *lock(&self.progress) = progress;
    }

    pub fn progress(&self) -> ImportProgress {
        lock(&self.progress).clone()
    }

    pub fn finish_check(&self, outcome: Result<(ImportReport, Vec<MachineSpec>), AppError>) {
        match outcome {
            Ok((report, specs)) => {
                self.set(ImportProgress::Previewed { report: report.clone() });
                *lock(&self.checked) = Some((report, specs));
            }
            Err(error) => self.set(ImportProgress::Failed { error }),
        }
    }

    /// Hands the checked machines to exactly one commit, if the preview had no error.
    pub fn take_for_commit(&self) -> Result<(ImportReport, Vec<MachineSpec>), AppError> {
        let mut checked = lock(&self.checked);
        let refusal = match checked.as_ref() {
            None => AppError::Conflict {
                message: "This import is still being checked, or was already imported.".into(),
                fields: Vec::new(),
            },
            Some((report, _)) if report.errors > 0 => AppError::invalid(format!(
                "{} lines have errors; fix them and preview again. Nothing was written.",
                report.errors
            )),
            Some((_, specs)) if specs.is_empty() => AppError::invalid("There is nothing to import."),
            Some(_) => return checked.take().ok_or_else(|| AppError::invalid("There is nothing to import.")),
        };
        Err(refusal)
    }
}

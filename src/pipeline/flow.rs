//! Many emails at once: `process_batch` (the `process` command) and `process_stream` (the
//! daemon) read emails in parallel and record them one at a time: in input order for a
//! batch, in arrival order for the stream except that a slow scan lets later mail pass.
//! Suspects (an email the process died on) are read alone.

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use futures::StreamExt;
use sha2::{Digest, Sha256};

use crate::directory::DirectoryError;
use crate::source::Input;
use crate::store::Store;

use super::engine::{log_token, poison_error, quarantine, Analysis, Intake};
use super::events::EmailSettled;
use super::record::{Outcome, Recorder};

/// An email whose KIV check could not run because the directory could not be reached. It is
/// neither recorded nor acknowledged: it stays at its source and is tried again.
#[derive(Debug, Clone)]
pub struct WaitingForKiv {
    pub display: String,
    pub source_ref: String,
    /// Why, without personal data.
    pub error: String,
}

/// How one email of a stream was settled.
pub enum Settled<'a> {
    /// Its outcome is committed: acknowledge it at its source.
    Recorded(&'a Outcome),
    /// KIV could not be reached: it stays at its source and is tried again later.
    Waiting(WaitingForKiv),
}

/// In which order analysed emails are recorded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Order {
    /// As given (`process` prints its lines in the order of its arguments).
    AsGiven,
    /// In arrival order, so that case numbers follow it, except that an email still being
    /// read after [`ORDER_PATIENCE`] (a scan) lets the later ones pass and is recorded when
    /// it is done: a slow scan holds up no other email's reply by more than that.
    Arrival,
}

/// How long a quick email waits for an earlier one still being read (see [`Order::Arrival`]).
/// A digital form is read in milliseconds, a scanned page in one to two seconds.
pub const ORDER_PATIENCE: Duration = Duration::from_millis(500);

/// One email's analysis as `Order::Arrival` hands it on: done within the patience, or still
/// running on its own task.
enum Timely<T> {
    Done(T),
    Late(tokio::task::JoinHandle<T>),
}

/// What one batch left undone.
#[derive(Debug, Default)]
pub struct BatchReport {
    /// Emails that wait for KIV (not recorded, `on_outcome` not called for them).
    pub waiting: Vec<WaitingForKiv>,
}

impl Intake {
    /// Analyses `inputs` in parallel and records them in `order`; `on_outcome` runs after
    /// each email's outcome is committed (the place to acknowledge it at its source). An email
    /// that waits for KIV is not recorded and `on_outcome` does not run for it: it must stay
    /// at its source. With a store, it is noted in `kiv_waiting` with its next try.
    pub async fn process_batch<F>(
        self: &Arc<Self>,
        inputs: Vec<Input>,
        order: Order,
        recorder: &Recorder,
        mut on_outcome: F,
    ) -> anyhow::Result<BatchReport>
    where
        F: FnMut(&Input, &Outcome) -> anyhow::Result<()>,
    {
        let mut report = BatchReport::default();
        self.process(
            futures::stream::iter(inputs),
            order,
            recorder,
            |input, settled| match settled {
                Settled::Recorded(outcome) => on_outcome(input, outcome),
                Settled::Waiting(waiting) => {
                    report.waiting.push(waiting);
                    Ok(())
                }
            },
        )
        .await?;
        Ok(report)
    }

    /// Like [`Self::process_batch`], for a source that never ends (the daemon): emails are
    /// recorded in arrival order, except that one still being read after [`ORDER_PATIENCE`]
    /// lets the later ones pass, so a 20-page scan does not hold up the mail that came after
    /// it. `on_settled` runs once per email: recorded, or waiting for KIV.
    pub async fn process_stream<S, F>(
        self: &Arc<Self>,
        inputs: S,
        recorder: &Recorder,
        on_settled: F,
    ) -> anyhow::Result<()>
    where
        S: futures::Stream<Item = Input> + Send + 'static,
        F: FnMut(&Input, Settled) -> anyhow::Result<()>,
    {
        self.process(inputs, Order::Arrival, recorder, on_settled)
            .await
    }

    async fn process<S, F>(
        self: &Arc<Self>,
        inputs: S,
        order: Order,
        recorder: &Recorder,
        mut on_settled: F,
    ) -> anyhow::Result<()>
    where
        S: futures::Stream<Item = Input> + Send + 'static,
        F: FnMut(&Input, Settled) -> anyhow::Result<()>,
    {
        // Analysis is CPU work on blocking threads; twice the cores keeps both busy while
        // one email waits for the store or for LDAP. OCR has its own pool (src/ocr).
        let workers = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(2)
            * 2;
        let this = Arc::clone(self);
        let attempts = match recorder {
            Recorder::Store(store) => Some(store.clone()),
            Recorder::DryRun(_) => None,
        };
        let analysed = inputs.map(move |input| {
            let analysis = Arc::clone(&this).analyse_input(input, attempts.clone());
            async move {
                match order {
                    // On a task of its own too: its store calls (the attempt) must go on while
                    // the caller records another email over the store's one connection.
                    Order::AsGiven => Timely::Done(
                        tokio::spawn(analysis)
                            .await
                            .expect("the analysis task panicked"),
                    ),
                    Order::Arrival => {
                        let mut task = tokio::spawn(analysis);
                        match tokio::time::timeout(ORDER_PATIENCE, &mut task).await {
                            Ok(done) => Timely::Done(done.expect("the analysis task panicked")),
                            Err(_) => Timely::Late(task),
                        }
                    }
                }
            }
        });
        let mut analysed = analysed.buffered(workers).fuse().boxed();
        // Late emails, recorded as each is done; while `workers` of them run, no new one starts.
        let mut late = futures::stream::FuturesUnordered::new();
        let mut exhausted = false;
        loop {
            let next = tokio::select! {
                Some(done) = late.next(), if !late.is_empty() => {
                    let done: Result<_, tokio::task::JoinError> = done;
                    done.expect("the analysis task panicked")
                }
                timely = analysed.next(), if !exhausted && late.len() < workers => match timely {
                    Some(Timely::Done(done)) => done,
                    Some(Timely::Late(task)) => {
                        late.push(task);
                        continue;
                    }
                    None => {
                        exhausted = true;
                        continue;
                    }
                },
                else => break,
            };
            let (input, result, started) = next;
            match result {
                Ok(analysis) => {
                    if let Recorder::Store(_) = recorder {
                        // Mail that lives on a server (IMAP) is copied for the case page; the
                        // copy is written before the commit, so a committed case always has it.
                        if let Err(e) = self.originals.keep(&input.source_ref, &input.raw) {
                            tracing::warn!(error = %e, "cannot keep a copy of the email for the case page");
                        }
                    }
                    let outcome = self.record(&input, &analysis, recorder).await?;
                    EmailSettled {
                        input: &input,
                        analysis: &analysis,
                        outcome: &outcome,
                        started,
                    }
                    .emit();
                    on_settled(&input, Settled::Recorded(&outcome))?;
                }
                Err(error) => {
                    let waiting = WaitingForKiv {
                        display: input.display.clone(),
                        source_ref: input.source_ref.clone(),
                        error: error.to_string(),
                    };
                    self.note_waiting(&input, &waiting, recorder).await?;
                    on_settled(&input, Settled::Waiting(waiting))?;
                }
            }
        }
        // The LDAP wait queue's gauge is read from the store at each /metrics scrape (app/ops.rs).
        Ok(())
    }

    /// Reads one email on a blocking thread under the time limit (a panic or a time-out
    /// quarantines it), then checks it against KIV.
    ///
    /// With a store (`attempts`), the attempt is noted first and forgotten once the email is
    /// read (reading is what may kill the process; recording it does not). An email with attempts that never finished (the process died meanwhile) is a
    /// suspect: it is read alone, with no other email in flight, so that dying again is its
    /// own doing; after `[limits] max_unfinished_attempts` (default 2) it is quarantined
    /// without being read.
    async fn analyse_input(
        self: Arc<Self>,
        input: Input,
        attempts: Option<Store>,
    ) -> (Input, Result<Analysis, DirectoryError>, Instant) {
        let timeout = Duration::from_secs(self.parts.limits.processing_timeout_secs);
        let started = Instant::now();
        let hash = hex::encode(Sha256::digest(&input.raw));
        let unfinished = match &attempts {
            Some(store) => match store.unfinished_attempts(&input.source_ref, &hash).await {
                Ok(n) => n,
                Err(e) => {
                    tracing::warn!(error = %e, "cannot read earlier attempts of the email");
                    0
                }
            },
            None => 0,
        };
        if let Some(size) = input.oversized {
            let error = format!(
                "the message is {size} bytes, larger than {} bytes; not downloaded",
                self.parts.limits.max_message_bytes
            );
            let prepared = quarantine(&input.raw, error);
            let result = self
                .complete(prepared, Utc::now().date_naive(), started)
                .await;
            return (input, result, started);
        }
        let most = self.parts.limits.max_unfinished_attempts;
        if most > 0 && unfinished >= most {
            tracing::error!(
                source = %log_token(&input.source_ref),
                attempts = unfinished,
                "the service died while reading this email before; it is quarantined unread"
            );
            let prepared = quarantine(&input.raw, poison_error(unfinished));
            let result = self
                .complete(prepared, Utc::now().date_naive(), started)
                .await;
            return (input, result, started);
        }
        // A suspect waits for the emails in flight and holds the next ones back.
        let mut isolated = if unfinished > 0 {
            tracing::warn!(
                source = %log_token(&input.source_ref),
                attempts = unfinished,
                "the service died while this email was in flight; it is read again on its own"
            );
            Isolation::Alone(self.isolation.write().await)
        } else {
            Isolation::Shared(self.isolation.read().await)
        };
        if let Some(store) = &attempts {
            let now = Utc::now().timestamp_millis();
            if let Err(e) = store.begin_attempt(&input.source_ref, &hash, now).await {
                tracing::warn!(error = %e, "cannot note the attempt on the email");
            }
        }
        let raw = Arc::new(input.raw);
        use std::sync::atomic::Ordering::SeqCst;
        let number = self.readings_started.fetch_add(1, SeqCst) + 1;
        let others = self.reading.fetch_add(1, SeqCst);
        let mut prepared = Arc::clone(&self).prepare_in_time(&raw, timeout).await;
        self.reading.fetch_sub(1, SeqCst);
        let overlapped = others > 0 || self.readings_started.load(SeqCst) != number;
        // Processor time is counted, not the wall clock, but several emails read at once still
        // slow each other a little: a reading stopped for time while another was read is
        // repeated alone before the attachment is called unreadable, so the decision does not
        // depend on load (issue 20).
        if overlapped
            && matches!(isolated, Isolation::Shared(_))
            && prepared.forms.as_ref().is_some_and(|f| f.out_of_time)
        {
            tracing::warn!(
                source = %log_token(&input.source_ref),
                "an attachment ran out of time while other mail was read; it is read again alone"
            );
            drop(isolated);
            isolated = Isolation::Alone(self.isolation.write().await);
            prepared = Arc::clone(&self).prepare_in_time(&raw, timeout).await;
        }
        // Read without dying: the attempt is over before the next suspect may start (it must
        // not be blamed on this one if it kills the process while this one is recorded).
        if let Some(store) = &attempts {
            if let Err(e) = store.end_attempt(&input.source_ref).await {
                tracing::warn!(error = %e, "cannot clear the attempt on an email read");
            }
        }
        drop(isolated);
        let result = self
            .complete(prepared, Utc::now().date_naive(), started)
            .await;
        let raw = Arc::try_unwrap(raw).unwrap_or_else(|r| (*r).clone());
        (Input { raw, ..input }, result, started)
    }
}

/// How a reader holds `Intake::isolation` (only ever dropped).
enum Isolation<'a> {
    Shared(#[allow(dead_code)] tokio::sync::RwLockReadGuard<'a, ()>),
    Alone(#[allow(dead_code)] tokio::sync::RwLockWriteGuard<'a, ()>),
}

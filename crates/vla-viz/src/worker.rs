//! The logging thread: a control loop hands a small snapshot over and
//! returns at once; the rerun calls (serialisation, batching) and anything
//! else the caller defers to `handler` (e.g. rendering a camera image for
//! the recording) run on a dedicated thread.
//!
//! Nothing here ever blocks the sender. Step snapshots go into a queue
//! holding at most `capacity_bytes` (the sender states each snapshot's
//! approximate size, so small snapshots may queue by the thousand and ones
//! carrying images by the hundred); when it is full the snapshot is dropped
//! and counted (a slow sink costs recorded steps, never control time).
//! Messages that must not be lost (episode starts, static geometry) bypass
//! the limit; the caller sends a handful of them per episode.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{channel, Sender};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::{Viz, VizError};

enum Job<M> {
    /// Always delivered.
    Control(M),
    /// Counted against the capacity with its size in bytes.
    Step(M, usize),
}

/// What the logging thread did, returned by [`VizWorker::finish`].
#[derive(Debug, Clone, Default, PartialEq)]
pub struct WorkerReport {
    /// Step snapshots handled.
    pub steps_logged: u64,
    /// Step snapshots dropped because the queue was full.
    pub steps_dropped: u64,
    /// Wall time the logging thread spent handling messages (it is idle,
    /// not spinning, the rest of the time).
    pub busy: Duration,
    /// Time [`VizWorker::finish`] waited for the queue to drain and the
    /// recording to flush.
    pub drain: Duration,
}

struct ThreadOutcome {
    steps_logged: u64,
    busy: Duration,
    error: Option<VizError>,
}

/// A [`Viz`] owned by a logging thread that runs `handler` on every message.
pub struct VizWorker<M: Send + 'static> {
    tx: Option<Sender<Job<M>>>,
    queued_bytes: Arc<AtomicUsize>,
    capacity_bytes: usize,
    steps_dropped: u64,
    handle: Option<JoinHandle<ThreadOutcome>>,
}

impl<M: Send + 'static> VizWorker<M> {
    /// Starts the thread. `handler` turns a message into logging calls; the
    /// first error it returns stops logging (later messages are discarded)
    /// and is reported by [`VizWorker::finish`].
    pub fn spawn<F>(viz: Viz, capacity_bytes: usize, mut handler: F) -> Result<Self, VizError>
    where
        F: FnMut(&mut Viz, M) -> Result<(), VizError> + Send + 'static,
    {
        let (tx, rx) = channel::<Job<M>>();
        let queued_bytes = Arc::new(AtomicUsize::new(0));
        let queued = Arc::clone(&queued_bytes);
        let handle = std::thread::Builder::new()
            .name("vla-viz".into())
            .spawn(move || {
                let mut viz = viz;
                let mut outcome = ThreadOutcome {
                    steps_logged: 0,
                    busy: Duration::ZERO,
                    error: None,
                };
                for job in rx {
                    let (msg, step_bytes) = match job {
                        Job::Control(m) => (m, None),
                        Job::Step(m, bytes) => (m, Some(bytes)),
                    };
                    if outcome.error.is_none() {
                        let start = Instant::now();
                        if let Err(err) = handler(&mut viz, msg) {
                            outcome.error = Some(err);
                        }
                        outcome.busy += start.elapsed();
                    }
                    if let Some(bytes) = step_bytes {
                        outcome.steps_logged += 1;
                        queued.fetch_sub(bytes, Ordering::AcqRel);
                    }
                }
                if outcome.error.is_none() {
                    if let Err(err) = viz.flush() {
                        outcome.error = Some(err);
                    }
                }
                outcome
            })
            .map_err(|e| VizError::Worker(format!("cannot start the logging thread: {e}")))?;
        Ok(Self {
            tx: Some(tx),
            queued_bytes,
            capacity_bytes,
            steps_dropped: 0,
            handle: Some(handle),
        })
    }

    /// Queues a message that must not be lost (episode start, static
    /// geometry). Never blocks.
    pub fn send(&mut self, msg: M) {
        if let Some(tx) = &self.tx {
            // A send fails only when the thread is gone; `finish` reports why.
            let _ = tx.send(Job::Control(msg));
        }
    }

    /// Queues a step snapshot of about `size_bytes` unless it would take
    /// the waiting snapshots past `capacity_bytes` (one snapshot is always
    /// accepted into an empty queue). Never blocks; returns whether it was
    /// queued (drops are counted).
    pub fn try_send_step(&mut self, msg: M, size_bytes: usize) -> bool {
        let Some(tx) = &self.tx else {
            return false;
        };
        let size = size_bytes.max(1);
        let queued = self.queued_bytes.load(Ordering::Acquire);
        if queued > 0 && queued.saturating_add(size) > self.capacity_bytes {
            self.steps_dropped += 1;
            return false;
        }
        self.queued_bytes.fetch_add(size, Ordering::AcqRel);
        if tx.send(Job::Step(msg, size)).is_err() {
            self.queued_bytes.fetch_sub(size, Ordering::AcqRel);
            self.steps_dropped += 1;
            return false;
        }
        true
    }

    /// Bytes of step snapshots waiting for the thread now.
    pub fn queued_bytes(&self) -> usize {
        self.queued_bytes.load(Ordering::Acquire)
    }

    /// Step snapshots dropped so far.
    pub fn steps_dropped(&self) -> u64 {
        self.steps_dropped
    }

    /// Closes the queue, waits for the thread to log what is queued and
    /// flush the recording, and reports; the first logging error is
    /// returned instead.
    pub fn finish(mut self) -> Result<WorkerReport, VizError> {
        let start = Instant::now();
        self.tx = None;
        let handle = self
            .handle
            .take()
            .ok_or_else(|| VizError::Worker("logging thread already finished".into()))?;
        let outcome = handle
            .join()
            .map_err(|_| VizError::Worker("the logging thread panicked".into()))?;
        if let Some(err) = outcome.error {
            return Err(err);
        }
        Ok(WorkerReport {
            steps_logged: outcome.steps_logged,
            steps_dropped: self.steps_dropped,
            busy: outcome.busy,
            drain: start.elapsed(),
        })
    }
}

impl<M: Send + 'static> Drop for VizWorker<M> {
    fn drop(&mut self) {
        // Without `finish`: still log what is queued and flush, best effort.
        self.tx = None;
        if let Some(handle) = self.handle.take() {
            let _ = handle.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc::sync_channel;

    #[test]
    fn handles_every_message_in_order() {
        let (seen_tx, seen_rx) = channel();
        let mut worker = VizWorker::spawn(Viz::disabled(), 100, move |_viz, m: u32| {
            seen_tx.send(m).map_err(|e| VizError::Worker(e.to_string()))
        })
        .unwrap();
        worker.send(0);
        for i in 1..=10 {
            assert!(worker.try_send_step(i, 10));
        }
        let report = worker.finish().unwrap();
        assert_eq!(report.steps_logged, 10);
        assert_eq!(report.steps_dropped, 0);
        let seen: Vec<u32> = seen_rx.iter().collect();
        assert_eq!(seen, (0..=10).collect::<Vec<_>>());
    }

    #[test]
    fn full_queue_drops_steps_but_not_control_messages() {
        // The handler blocks until released, so the queue fills up.
        let (release_tx, release_rx) = sync_channel::<()>(0);
        let (seen_tx, seen_rx) = channel();
        let mut worker = VizWorker::spawn(Viz::disabled(), 200, move |_viz, m: u32| {
            if m == 1 {
                release_rx
                    .recv()
                    .map_err(|e| VizError::Worker(e.to_string()))?;
            }
            seen_tx.send(m).map_err(|e| VizError::Worker(e.to_string()))
        })
        .unwrap();
        assert!(worker.try_send_step(1, 100));
        assert!(worker.try_send_step(2, 100));
        // Steps 1 and 2 are queued or being handled: 200 bytes, full.
        assert_eq!(worker.queued_bytes(), 200);
        assert!(!worker.try_send_step(3, 1));
        worker.send(100);
        assert_eq!(worker.steps_dropped(), 1);
        release_tx.send(()).unwrap();
        let report = worker.finish().unwrap();
        assert_eq!(report.steps_logged, 2);
        assert_eq!(report.steps_dropped, 1);
        let seen: Vec<u32> = seen_rx.iter().collect();
        assert_eq!(seen, vec![1, 2, 100]);
    }

    #[test]
    fn first_handler_error_is_reported() {
        let mut worker = VizWorker::spawn(Viz::disabled(), 10, |_viz, m: u32| {
            if m == 2 {
                Err(VizError::Worker("boom".into()))
            } else {
                Ok(())
            }
        })
        .unwrap();
        for i in 1..=3 {
            worker.try_send_step(i, 1);
        }
        let err = worker.finish().unwrap_err();
        assert!(err.to_string().contains("boom"), "{err}");
    }
}

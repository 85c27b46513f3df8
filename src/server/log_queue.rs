//! The server's log lines reach stderr through a queue: logging an event
//! appends its line, and a thread of the queue's own writes whatever has
//! gathered in one `write`. Every admission logs a line, and under load a
//! `write` of its own, with stderr's lock, cost more than the line itself.
//!
//! Nothing is lost or reordered by the queue:
//! * a warning or an error is written at once, by the thread that logs it,
//!   behind every line queued before it: it is never lost to a crash that
//!   follows, and it comes before anything the process prints next;
//! * when more than [`QUEUE_LIMIT`] bytes are waiting (stderr is slow or
//!   blocked), the thread that logs writes them itself and waits for stderr,
//!   as it would without the queue, rather than hold more or drop lines;
//! * dropping the [`LogQueueGuard`] writes what is left; lines logged after
//!   that are written at once.
//!
//! Lines are taken from the queue only by whoever holds the sink, and the
//! queue's own lock is held just to append or take: a warning waiting for
//! stderr does not hold up info lines. stderr is held through its own
//! reentrant lock, so a thread inside `eprintln!` can still log.
//!
//! What the queue delays is an info line, by [`GATHER`] and the time the
//! lines before it take.

use std::io::{self, Write};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::{self, JoinHandle};
use std::time::Duration;
use tracing::{Level, Metadata};
use tracing_subscriber::fmt::MakeWriter;

/// The most bytes of lines held before the thread that logs writes them.
pub const QUEUE_LIMIT: usize = 256 * 1024;

/// How long the writer lets lines gather after the first one arrives.
pub const GATHER: Duration = Duration::from_millis(2);

/// Where log lines are queued (a `MakeWriter` for tracing-subscriber).
#[derive(Clone)]
pub struct LogQueue(Arc<Shared>);

struct Shared {
    queue: Mutex<Queue>,
    wake: Condvar,
    sink: Box<dyn LogSink>,
}

/// Where the lines go, held for one write of whatever is queued. Lines
/// are taken from the queue only by whoever holds the sink, so they leave
/// in the order they were queued, whoever writes them.
pub trait LogSink: Send + Sync + 'static {
    fn hold(&self) -> Box<dyn Write + '_>;
}

/// Held through stderr's own lock, which is reentrant: a thread that holds
/// it (inside `eprintln!`, say) can still log a warning.
impl LogSink for io::Stderr {
    fn hold(&self) -> Box<dyn Write + '_> {
        Box::new(self.lock())
    }
}

#[derive(Default)]
struct Queue {
    lines: Vec<u8>,
    /// The writer waits for a line: the next one wakes it.
    writer_waiting: bool,
    /// No writer (stopped, or none could be started): lines are written
    /// at once.
    closed: bool,
}

/// Stops the queue's writer when dropped, after it wrote what is left.
#[must_use = "dropping the guard stops the log writer"]
pub struct LogQueueGuard {
    queue: LogQueue,
    writer: Option<JoinHandle<()>>,
}

fn unpoisoned<T>(result: Result<T, PoisonError<T>>) -> T {
    result.unwrap_or_else(PoisonError::into_inner)
}

impl LogQueue {
    /// A queue into `sink`, and the guard of its writer thread. Should no
    /// thread start, every line is written at once.
    pub fn start(sink: impl LogSink) -> (LogQueue, LogQueueGuard) {
        let queue = LogQueue(Arc::new(Shared {
            queue: Mutex::default(),
            wake: Condvar::new(),
            sink: Box::new(sink),
        }));
        let writer = {
            let queue = queue.clone();
            thread::Builder::new()
                .name("log-writer".to_owned())
                .spawn(move || queue.write_batches())
                .ok()
        };
        if writer.is_none() {
            queue.lock().closed = true;
        }
        let guard = LogQueueGuard {
            queue: queue.clone(),
            writer,
        };
        (queue, guard)
    }

    fn lock(&self) -> MutexGuard<'_, Queue> {
        unpoisoned(self.0.queue.lock())
    }

    /// Holds the sink, takes the queued lines and writes them. The queue
    /// is held only to take them: logging goes on meanwhile. Write errors
    /// are ignored, as tracing-subscriber ignores them.
    fn write_out(&self, into: &mut Vec<u8>) {
        let mut sink = self.0.sink.hold();
        std::mem::swap(into, &mut self.lock().lines);
        if !into.is_empty() {
            let _ = sink.write_all(into).and_then(|()| sink.flush());
        }
        into.clear();
    }

    /// The writer thread: waits for a line, lets more gather, writes them
    /// all; until closed and drained.
    fn write_batches(&self) {
        let mut batch = Vec::new();
        loop {
            let mut queue = self.lock();
            while queue.lines.is_empty() && !queue.closed {
                queue.writer_waiting = true;
                queue = unpoisoned(self.0.wake.wait(queue));
            }
            if queue.lines.is_empty() {
                return;
            }
            let closed = queue.closed;
            drop(queue);
            if !closed {
                thread::sleep(GATHER);
            }
            self.write_out(&mut batch);
            if batch.capacity() > QUEUE_LIMIT {
                batch = Vec::new();
            }
        }
    }

    fn push(&self, line: &[u8], at_once: bool) {
        let mut queue = self.lock();
        queue.lines.extend_from_slice(line);
        if at_once || queue.closed || queue.lines.len() > QUEUE_LIMIT {
            drop(queue);
            self.write_out(&mut Vec::new());
        } else if queue.writer_waiting {
            queue.writer_waiting = false;
            drop(queue);
            self.0.wake.notify_one();
        }
    }
}

impl Drop for LogQueueGuard {
    fn drop(&mut self) {
        self.queue.lock().closed = true;
        self.queue.0.wake.notify_one();
        if let Some(writer) = self.writer.take() {
            let _ = writer.join();
        }
        // Whatever a writer that stopped early left.
        self.queue.write_out(&mut Vec::new());
    }
}

/// One event's line: queued, or (a warning or an error) written at once.
pub struct QueuedLine<'a> {
    queue: &'a LogQueue,
    at_once: bool,
}

impl Write for QueuedLine<'_> {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        self.queue.push(bytes, self.at_once);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for LogQueue {
    type Writer = QueuedLine<'a>;

    fn make_writer(&'a self) -> QueuedLine<'a> {
        QueuedLine {
            queue: self,
            at_once: false,
        }
    }

    fn make_writer_for(&'a self, meta: &Metadata<'_>) -> QueuedLine<'a> {
        QueuedLine {
            queue: self,
            at_once: *meta.level() <= Level::WARN,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// A sink the test reads, and can hold shut (holding it waits until
    /// it is opened).
    #[derive(Clone, Default)]
    struct Sink {
        written: Arc<Mutex<Vec<u8>>>,
        gate: Arc<Mutex<()>>,
    }

    struct Held<'a> {
        _open: MutexGuard<'a, ()>,
        written: &'a Mutex<Vec<u8>>,
    }

    impl LogSink for Sink {
        fn hold(&self) -> Box<dyn Write + '_> {
            Box::new(Held {
                _open: unpoisoned(self.gate.lock()),
                written: &self.written,
            })
        }
    }

    impl Write for Held<'_> {
        fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
            self.written.lock().unwrap().extend_from_slice(bytes);
            Ok(bytes.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    impl Sink {
        fn lines(&self) -> Vec<String> {
            String::from_utf8(self.written.lock().unwrap().clone())
                .unwrap()
                .lines()
                .map(str::to_owned)
                .collect()
        }
    }

    fn subscriber(queue: LogQueue) -> tracing::Dispatch {
        tracing::Dispatch::new(
            tracing_subscriber::fmt()
                .with_writer(queue)
                .with_ansi(false)
                .without_time()
                .with_target(false)
                .with_max_level(Level::INFO)
                .finish(),
        )
    }

    #[test]
    fn every_line_from_every_thread_arrives_whole_and_in_order() {
        let sink = Sink::default();
        let (queue, guard) = LogQueue::start(sink.clone());
        let threads: Vec<_> = (0..4)
            .map(|t| {
                let queue = queue.clone();
                thread::spawn(move || {
                    for i in 0..2_000 {
                        let line = format!("thread {t} line {i} {}\n", "x".repeat(i % 300));
                        // Some written at once, racing the writer's batches.
                        let mut writer = QueuedLine {
                            queue: &queue,
                            at_once: i % 3 == 0,
                        };
                        writer.write_all(line.as_bytes()).unwrap();
                    }
                })
            })
            .collect();
        for thread in threads {
            thread.join().unwrap();
        }
        drop(guard);
        let lines = sink.lines();
        assert_eq!(lines.len(), 8_000);
        for t in 0..4 {
            let of_thread: Vec<&String> = lines
                .iter()
                .filter(|l| l.starts_with(&format!("thread {t} ")))
                .collect();
            assert_eq!(of_thread.len(), 2_000);
            for (i, line) in of_thread.iter().enumerate() {
                let expected = format!("thread {t} line {i} {}", "x".repeat(i % 300));
                assert_eq!(**line, expected);
            }
        }
    }

    #[test]
    fn a_warning_is_written_at_once_behind_the_lines_queued_before_it() {
        let sink = Sink::default();
        let (queue, _guard) = LogQueue::start(sink.clone());
        tracing::dispatcher::with_default(&subscriber(queue), || {
            for i in 0..50 {
                tracing::info!(i, "queued");
            }
            tracing::warn!("at once");
            // Read before the writer's gathering time is over.
            let lines = sink.lines();
            assert_eq!(lines.len(), 51, "{lines:?}");
            for (i, line) in lines[..50].iter().enumerate() {
                assert_eq!(*line, format!(" INFO queued i={i}"));
            }
            assert_eq!(lines[50], " WARN at once");
            tracing::error!("also at once");
            assert_eq!(sink.lines().len(), 52);
        });
    }

    #[test]
    fn an_info_line_is_written_without_waiting_for_more() {
        let sink = Sink::default();
        let (queue, _guard) = LogQueue::start(sink.clone());
        // The writer is waiting by now: the line has to wake it.
        thread::sleep(Duration::from_millis(50));
        tracing::dispatcher::with_default(&subscriber(queue), || {
            tracing::info!("alone");
        });
        let deadline = std::time::Instant::now() + Duration::from_secs(1);
        while sink.lines().is_empty() {
            assert!(std::time::Instant::now() < deadline, "never written");
            thread::sleep(Duration::from_millis(1));
        }
        assert_eq!(sink.lines(), [" INFO alone"]);
    }

    #[test]
    fn a_blocked_stderr_holds_up_logging_instead_of_growing_the_queue_or_dropping_lines() {
        let sink = Sink::default();
        let (queue, guard) = LogQueue::start(sink.clone());
        // Declared after the guard, so dropped first should the test fail.
        let shut = sink.gate.lock().unwrap();
        let line = format!("{}\n", "y".repeat(1023));
        let total = 4 * QUEUE_LIMIT / line.len();
        let logged = Arc::new(AtomicUsize::new(0));
        let logger = {
            let (queue, logged, line) = (queue.clone(), Arc::clone(&logged), line.clone());
            thread::spawn(move || {
                for _ in 0..total {
                    queue.make_writer().write_all(line.as_bytes()).unwrap();
                    logged.fetch_add(1, Ordering::SeqCst);
                }
            })
        };
        // The logging thread stops once the queue is full (the writer took
        // at most one queue's worth before it blocked on the sink).
        let mut before = usize::MAX;
        while logged.load(Ordering::SeqCst) != before {
            before = logged.load(Ordering::SeqCst);
            thread::sleep(Duration::from_millis(50));
        }
        assert!(before > 0, "nothing logged");
        assert!(!logger.is_finished());
        assert!(
            before * line.len() <= 2 * QUEUE_LIMIT + line.len(),
            "{before} lines logged while stderr was blocked"
        );
        drop(shut);
        logger.join().unwrap();
        drop(guard);
        let lines = sink.lines();
        assert_eq!(lines.len(), total);
        assert!(lines.iter().all(|l| l.len() == 1023));
    }

    #[test]
    fn after_the_guard_is_dropped_lines_are_written_at_once() {
        let sink = Sink::default();
        let (queue, guard) = LogQueue::start(sink.clone());
        queue.make_writer().write_all(b"before\n").unwrap();
        drop(guard);
        assert_eq!(sink.lines(), ["before"]);
        queue.make_writer().write_all(b"after\n").unwrap();
        assert_eq!(sink.lines(), ["before", "after"]);
    }
}

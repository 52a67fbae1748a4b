//! The outcomes of many concurrent deliveries written in one transaction (group commit): a delivery job hands its
//! write to the group writer and waits until it is committed, so the log is durable before the job counts as done,
//! while PostgreSQL flushes its WAL once per group instead of once per delivery. A group that fails is written
//! again one by one, so one bad write does not fail the others.

use std::sync::{Arc, Mutex};

use amtsweg_db::{Database, DbConnection, DbError};
use tokio::sync::{mpsc, oneshot};

/// A write that can run again (when its group failed).
pub(crate) type Write = Arc<dyn Fn(&mut DbConnection) -> Result<(), DbError> + Send + Sync>;
type Queued = (Write, oneshot::Sender<Result<(), String>>);

/// Writes per transaction, at most.
const GROUP: usize = 256;

pub(crate) struct GroupWriter {
    db: Database,
    sender: Mutex<Option<mpsc::UnboundedSender<Queued>>>,
}

impl GroupWriter {
    pub(crate) fn new(db: Database) -> GroupWriter {
        GroupWriter {
            db,
            sender: Mutex::new(None),
        }
    }

    /// The queue of the writer task, started on first use (inside the runtime).
    fn queue(&self) -> mpsc::UnboundedSender<Queued> {
        let mut sender = self.sender.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(open) = sender.as_ref().filter(|s| !s.is_closed()) {
            return open.clone();
        }
        let (tx, rx) = mpsc::unbounded_channel();
        tokio::spawn(run(self.db.clone(), rx));
        *sender = Some(tx.clone());
        tx
    }

    /// Runs `write` in the next group's transaction; answers once that committed.
    pub(crate) async fn write(&self, write: Write) -> Result<(), String> {
        let (done, committed) = oneshot::channel();
        self.queue()
            .send((write, done))
            .map_err(|_| "the group writer stopped".to_owned())?;
        committed
            .await
            .map_err(|_| "the group writer stopped".to_owned())?
    }
}

async fn run(db: Database, mut queue: mpsc::UnboundedReceiver<Queued>) {
    while let Some(first) = queue.recv().await {
        let mut group = vec![first];
        while group.len() < GROUP {
            match queue.try_recv() {
                Ok(next) => group.push(next),
                Err(_) => break,
            }
        }
        let writes: Vec<Write> = group.iter().map(|(w, _)| w.clone()).collect();
        let together = db
            .write(move |conn| {
                for write in &writes {
                    write(conn)?;
                }
                Ok::<_, DbError>(())
            })
            .await;
        if together.is_ok() || group.len() == 1 {
            let outcome = together.map_err(|err| err.to_string());
            for (_, done) in group {
                let _ = done.send(outcome.clone());
            }
            continue;
        }
        for (write, done) in group {
            let outcome = db
                .write(move |conn| write(conn))
                .await
                .map_err(|err| err.to_string());
            let _ = done.send(outcome);
        }
    }
}

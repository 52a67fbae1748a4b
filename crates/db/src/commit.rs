//! Work that must happen only once a transaction has committed — waking the job runner after a job was queued,
//! for instance. A module registers it inside its write; [`crate::Database::write`] runs it after the commit and
//! drops it on a rollback, so no caller has to remember a wake-up call after its own transaction.

use std::cell::RefCell;

type Hook = Box<dyn FnOnce()>;

thread_local! {
    /// The hooks of the write transaction running on this thread (`None`: no transaction of ours is open).
    static PENDING: RefCell<Option<Vec<Hook>>> = const { RefCell::new(None) };
}

/// Runs `hook` after the current write transaction commits; outside one (nothing to wait for), at once.
pub fn after_commit(hook: impl FnOnce() + 'static) {
    let deferred = PENDING.with(|pending| match pending.borrow_mut().as_mut() {
        Some(hooks) => {
            hooks.push(Box::new(hook));
            None
        }
        None => Some(hook),
    });
    if let Some(hook) = deferred {
        hook();
    }
}

/// Collects the hooks of one write; `finish` runs them if it committed.
pub(crate) struct Collector {
    outer: Option<Vec<Hook>>,
    finished: bool,
}

impl Collector {
    pub(crate) fn start() -> Collector {
        Collector {
            outer: PENDING.with(|pending| pending.borrow_mut().replace(Vec::new())),
            finished: false,
        }
    }

    pub(crate) fn finish(mut self, committed: bool) {
        self.finished = true;
        let outer = self.outer.take();
        let hooks = PENDING.with(|pending| std::mem::replace(&mut *pending.borrow_mut(), outer));
        if committed {
            for hook in hooks.into_iter().flatten() {
                hook();
            }
        }
    }
}

impl Drop for Collector {
    fn drop(&mut self) {
        // A panic inside the write lands here: its hooks are dropped and the state before it comes back.
        if !self.finished {
            let outer = self.outer.take();
            PENDING.with(|pending| *pending.borrow_mut() = outer);
        }
    }
}

/// Work a caller adds to a use case's transaction, given the use case's result — recording an idempotent response
/// with the write it answers, for instance. Use cases that take one run it last, inside their transaction.
pub type InTransaction<T> =
    Box<dyn FnOnce(&mut crate::DbConnection, &T) -> Result<(), crate::DbError> + Send>;

/// Nothing to add.
pub fn nothing<T>() -> InTransaction<T> {
    Box::new(|_, _| Ok(()))
}

#[cfg(test)]
mod tests {
    use std::cell::Cell;
    use std::rc::Rc;

    use super::*;

    #[test]
    fn hooks_run_after_a_commit_only() {
        let ran = Rc::new(Cell::new(0));
        let collector = Collector::start();
        let counter = ran.clone();
        after_commit(move || counter.set(counter.get() + 1));
        assert_eq!(ran.get(), 0, "not before the commit");
        collector.finish(true);
        assert_eq!(ran.get(), 1);

        let collector = Collector::start();
        let counter = ran.clone();
        after_commit(move || counter.set(counter.get() + 1));
        collector.finish(false);
        assert_eq!(ran.get(), 1, "dropped with a rollback");

        let counter = ran.clone();
        after_commit(move || counter.set(counter.get() + 1));
        assert_eq!(ran.get(), 2, "at once outside a transaction");
    }
}

//! Retry delays that double after each failure, up to a cap, and start over after a
//! success: a store outage is retried quickly at first without hammering it later.

use std::time::Duration;

#[derive(Clone, Debug)]
pub struct Backoff {
    first: Duration,
    max: Duration,
    next: Duration,
}

impl Backoff {
    pub fn new(first: Duration, max: Duration) -> Self {
        Backoff {
            first,
            max,
            next: first,
        }
    }

    /// The delay to wait now; the one after it is twice as long (up to the cap).
    pub fn next_delay(&mut self) -> Duration {
        let d = self.next;
        self.next = (self.next * 2).min(self.max);
        d
    }

    /// After a success: the next failure waits the first delay again.
    pub fn reset(&mut self) {
        self.next = self.first;
    }
}

impl Default for Backoff {
    /// 50 ms, doubling up to 2 s: what every retry loop of the project uses.
    fn default() -> Self {
        Backoff::new(Duration::from_millis(50), Duration::from_secs(2))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_up_to_the_cap_and_resets() {
        let mut b = Backoff::new(Duration::from_millis(100), Duration::from_millis(350));
        let ms = |b: &mut Backoff| b.next_delay().as_millis();
        assert_eq!(
            [ms(&mut b), ms(&mut b), ms(&mut b), ms(&mut b)],
            [100, 200, 350, 350]
        );
        b.reset();
        assert_eq!(ms(&mut b), 100);
    }
}

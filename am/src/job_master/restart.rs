//! The restart strategy at run time: how many restarts are left and when the
//! next one may happen. Every failure event (one failed subtask, or all the
//! subtasks of a lost TaskManager at once) uses up one restart, as in Flink's
//! fixed-delay strategy.

use std::time::Instant;

use common::jobspec::RestartStrategy;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RestartDecision {
    /// Restart the failed regions at this instant.
    RestartAt(Instant),
    /// Fail the job; the reason says why no restart is left.
    GiveUp { reason: String },
}

#[derive(Clone, Debug)]
pub struct RestartTracker {
    strategy: RestartStrategy,
    restarts: u32,
}

impl RestartTracker {
    pub fn new(strategy: RestartStrategy) -> RestartTracker {
        RestartTracker { strategy, restarts: 0 }
    }

    /// Restarts used so far.
    pub fn restarts(&self) -> u32 {
        self.restarts
    }

    /// Decides about a failure that happened at `now`; a restart is counted.
    pub fn on_failure(&mut self, now: Instant) -> RestartDecision {
        match &self.strategy {
            RestartStrategy::None => RestartDecision::GiveUp { reason: "the restart strategy is \"none\"".to_owned() },
            RestartStrategy::FixedDelay { attempts, .. } if self.restarts >= *attempts => RestartDecision::GiveUp {
                reason: format!("all {attempts} restart attempts of the fixed-delay strategy are used up"),
            },
            RestartStrategy::FixedDelay { delay, .. } => {
                self.restarts += 1;
                RestartDecision::RestartAt(now + *delay)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn fixed_delay_counts_down_and_none_never_restarts() {
        let t0 = Instant::now();
        let mut fixed = RestartTracker::new(RestartStrategy::FixedDelay { attempts: 2, delay: Duration::from_secs(1) });
        assert_eq!(fixed.on_failure(t0), RestartDecision::RestartAt(t0 + Duration::from_secs(1)));
        assert_eq!(fixed.on_failure(t0), RestartDecision::RestartAt(t0 + Duration::from_secs(1)));
        assert!(matches!(fixed.on_failure(t0), RestartDecision::GiveUp { reason } if reason.contains("all 2 restart")));
        assert_eq!(fixed.restarts(), 2);
        let mut none = RestartTracker::new(RestartStrategy::None);
        assert!(matches!(none.on_failure(t0), RestartDecision::GiveUp { reason } if reason.contains("none")));
    }
}

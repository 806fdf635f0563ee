//! The text of a scheduler [`Reason`], as the journal's `reason` field and the progress lines
//! show it (the wording is part of the journal: keep it stable).

use std::fmt;

use crate::sched::Reason;
use crate::size::human;

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Reason::OverBudget { projection, budget } => write!(
                f,
                "memory would reach {} of a {} budget",
                human(projection),
                human(budget)
            ),
            Reason::Critical { working_set, limit } => write!(
                f,
                "working set {} is half-way into the reserve (limit {})",
                human(working_set),
                human(limit)
            ),
            Reason::JobsCritical { jobs, limit } => write!(
                f,
                "jobs hold {}, half-way into the reserve of --limit {}",
                human(jobs),
                human(limit)
            ),
            Reason::ContainerCritical {
                working_set,
                container_limit,
            } => write!(
                f,
                "working set {} is half-way into the reserve (container limit {})",
                human(working_set),
                human(container_limit)
            ),
            Reason::GrowingOverBudget {
                working_set,
                budget,
            } => write!(
                f,
                "working set {} is over the budget {} and growing",
                human(working_set),
                human(budget)
            ),
            Reason::PausedTooLong { waited, usage } => write!(
                f,
                "paused {:.1} s without room to resume; requeued to free {}",
                waited,
                human(usage)
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIB: u64 = 1 << 20;

    /// The journal's `reason` strings, word for word as before reasons became data.
    #[test]
    fn texts_match_the_journal() {
        let cases = [
            (
                Reason::OverBudget {
                    projection: 900 * MIB,
                    budget: 768 * MIB,
                },
                "memory would reach 900 MiB of a 768 MiB budget",
            ),
            (
                Reason::Critical {
                    working_set: 950 * MIB,
                    limit: 1024 * MIB,
                },
                "working set 950 MiB is half-way into the reserve (limit 1.00 GiB)",
            ),
            (
                Reason::JobsCritical {
                    jobs: 950 * MIB,
                    limit: 1024 * MIB,
                },
                "jobs hold 950 MiB, half-way into the reserve of --limit 1.00 GiB",
            ),
            (
                Reason::ContainerCritical {
                    working_set: 3 * 1024 * MIB,
                    container_limit: 4 * 1024 * MIB,
                },
                "working set 3.00 GiB is half-way into the reserve (container limit 4.00 GiB)",
            ),
            (
                Reason::GrowingOverBudget {
                    working_set: 800 * MIB,
                    budget: 768 * MIB,
                },
                "working set 800 MiB is over the budget 768 MiB and growing",
            ),
            (
                Reason::PausedTooLong {
                    waited: 30.04,
                    usage: 200 * MIB,
                },
                "paused 30.0 s without room to resume; requeued to free 200 MiB",
            ),
        ];
        for (reason, text) in cases {
            assert_eq!(reason.to_string(), text);
        }
    }
}

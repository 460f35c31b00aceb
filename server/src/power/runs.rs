//! How a power run is paced, as pure rules the run loop and its plan share:
//! - a power budget per group of machines (a rack, a PDU: any label), "at most N per T
//!   seconds", in any window of T seconds;
//! - a boot-network budget: at most M machines between their power-on and their first boot
//!   request. The next machine goes when an earlier one reached a boot step, not after a sleep.

use app::power::{Pacing, PlannedMachine, PowerAction, PowerRunPlan, RunMachine, RunStep};
use std::collections::BTreeMap;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// What a plan assumes a machine takes from its power-on to its first boot request.
pub const BOOT_ASSUMED_SECONDS: u64 = 60;
/// How long a powered-on machine may take to reach its first boot request before it is said to
/// have failed to boot from the network.
pub const BOOT_WAIT_SECONDS: i64 = 600;

pub fn sent_at(machine: &RunMachine) -> Option<OffsetDateTime> {
    OffsetDateTime::parse(&machine.sent_at, &Rfc3339).ok()
}

/// Whether the boot-network budget applies: the action ends with the machine on.
pub fn boots(action: PowerAction) -> bool {
    action.reaches() == app::power::PowerState::On
}

/// Why the next machine of `group` must wait at `now`, or `None` when it may go.
pub fn holds(
    machines: &[RunMachine],
    group: &str,
    pacing: &Pacing,
    action: PowerAction,
    now: OffsetDateTime,
) -> Option<String> {
    if pacing.per_group > 0 && pacing.per_seconds > 0 {
        let window = time::Duration::seconds(i64::from(pacing.per_seconds));
        let recent =
            machines.iter().filter(|m| m.group == group && sent_at(m).is_some_and(|at| now - at < window)).count();
        if recent >= pacing.per_group as usize {
            let name =
                if group.is_empty() { "all machines".to_string() } else { format!("{}={group}", pacing.group_by) };
            return Some(format!(
                "power budget: {recent} of {name} asked in the last {} s (at most {} per {} s)",
                pacing.per_seconds, pacing.per_group, pacing.per_seconds
            ));
        }
    }
    if pacing.booting_at_once > 0 && boots(action) {
        let booting = machines.iter().filter(|m| matches!(m.step, RunStep::Sent | RunStep::Booting)).count();
        if booting >= pacing.booting_at_once as usize {
            return Some(format!(
                "boot-network budget: {booting} machines between power-on and their first boot request (at most {})",
                pacing.booting_at_once
            ));
        }
    }
    None
}

/// The most actions of one group within any window of `per_seconds` (0 without a power budget).
pub fn largest_burst(machines: &[RunMachine], pacing: &Pacing) -> u32 {
    if pacing.per_seconds == 0 {
        return 0;
    }
    let window = time::Duration::seconds(i64::from(pacing.per_seconds));
    let mut by_group: BTreeMap<&str, Vec<OffsetDateTime>> = BTreeMap::new();
    for m in machines {
        if let Some(at) = sent_at(m) {
            by_group.entry(&m.group).or_default().push(at);
        }
    }
    let mut largest = 0;
    for times in by_group.values_mut() {
        times.sort();
        for (i, start) in times.iter().enumerate() {
            let within = times[i..].iter().take_while(|t| **t - *start < window).count();
            largest = largest.max(within as u32);
        }
    }
    largest
}

/// The run's plan: each machine's expected start, second by second, with the budgets as the run
/// applies them and [`BOOT_ASSUMED_SECONDS`] from power-on to first boot request.
pub fn plan(action: PowerAction, machines: &[RunMachine], pacing: &Pacing) -> PowerRunPlan {
    let start = OffsetDateTime::UNIX_EPOCH;
    let mut simulated: Vec<RunMachine> = machines.to_vec();
    let mut planned = Vec::with_capacity(machines.len());
    let mut bound = BTreeMap::<&'static str, u64>::new();
    let mut second = 0u64;
    while planned.len() < simulated.len() {
        let now = start + time::Duration::seconds(second as i64);
        // Machines assumed to reach their first boot request by now leave the boot budget.
        for m in simulated.iter_mut().filter(|m| m.step == RunStep::Sent) {
            if sent_at(m).is_some_and(|at| (now - at).whole_seconds() as u64 >= BOOT_ASSUMED_SECONDS) {
                m.step = RunStep::Done;
            }
        }
        for i in 0..simulated.len() {
            if simulated[i].step != RunStep::Waiting {
                continue;
            }
            match holds(&simulated, &simulated[i].group, pacing, action, now) {
                Some(why) => {
                    *bound.entry(if why.starts_with("power") { "power" } else { "boot" }).or_default() += 1;
                }
                None => {
                    let m = &mut simulated[i];
                    m.step = if boots(action) && pacing.booting_at_once > 0 { RunStep::Sent } else { RunStep::Done };
                    m.sent_at = crate::db::timestamp(now);
                    planned.push(PlannedMachine {
                        id: m.id,
                        mac: m.mac.clone(),
                        group: m.group.clone(),
                        starts_at: second,
                    });
                }
            }
        }
        second += 1;
    }
    planned.sort_by_key(|p| p.starts_at);
    let last = planned.last().map_or(0, |p| p.starts_at);
    let estimated_seconds = last + if boots(action) { BOOT_ASSUMED_SECONDS } else { 0 };
    let mut notes = Vec::new();
    match (bound.get("power").copied().unwrap_or(0), bound.get("boot").copied().unwrap_or(0)) {
        (0, 0) => notes.push("No budget holds any machine back: every machine is asked at once.".to_string()),
        (power, boot) if power >= boot => notes.push(format!(
            "The power budget sets the pace: at most {} per {} s per {}.",
            pacing.per_group,
            pacing.per_seconds,
            if pacing.group_by.is_empty() { "run".to_string() } else { format!("{} label", pacing.group_by) }
        )),
        _ => notes.push(format!(
            "The boot-network budget sets the pace: at most {} machines booting at once.",
            pacing.booting_at_once
        )),
    }
    if boots(action) {
        notes.push(format!(
            "The estimate assumes {BOOT_ASSUMED_SECONDS} s from a machine's power-on to its first boot request; \
             the run itself waits for each machine's real one."
        ));
    }
    PowerRunPlan { action, machines: planned, estimated_seconds, notes }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn machines(groups: &[&str]) -> Vec<RunMachine> {
        groups
            .iter()
            .enumerate()
            .map(|(i, g)| RunMachine {
                id: i as i64 + 1,
                mac: format!("52:54:00:00:00:{i:02x}"),
                group: g.to_string(),
                step: RunStep::Waiting,
                reason: String::new(),
                sent_at: String::new(),
            })
            .collect()
    }

    #[test]
    fn a_power_budget_per_rack_never_lets_a_window_hold_more_than_it_allows() {
        let pacing = Pacing { group_by: "rack".into(), per_group: 2, per_seconds: 5, booting_at_once: 0 };
        let run = machines(&["r1", "r1", "r1", "r1", "r1", "r2", "r2"]);
        let plan = plan(PowerAction::On, &run, &pacing);
        let starts: Vec<(String, u64)> = plan.machines.iter().map(|p| (p.group.clone(), p.starts_at)).collect();
        assert_eq!(starts.iter().filter(|(_, at)| *at == 0).count(), 4, "two per rack at once: {starts:?}");
        let r1: Vec<u64> = starts.iter().filter(|(g, _)| g == "r1").map(|(_, at)| *at).collect();
        assert_eq!(r1, [0, 0, 5, 5, 10]);
        assert!(plan.notes[0].contains("power budget sets the pace"), "{:?}", plan.notes);
        assert_eq!(plan.estimated_seconds, 10 + BOOT_ASSUMED_SECONDS);
    }

    #[test]
    fn the_boot_budget_holds_the_next_machine_until_an_earlier_one_booted() {
        let pacing = Pacing { booting_at_once: 2, ..Pacing::default() };
        let mut run = machines(&["", "", ""]);
        let now = OffsetDateTime::now_utc();
        assert_eq!(holds(&run, "", &pacing, PowerAction::On, now), None);
        run[0].step = RunStep::Sent;
        run[1].step = RunStep::Booting;
        let why = holds(&run, "", &pacing, PowerAction::On, now).unwrap();
        assert!(why.starts_with("boot-network budget: 2 machines"), "{why}");
        // Shutting down boots nothing: the boot budget does not apply.
        assert_eq!(holds(&run, "", &pacing, PowerAction::ForceOff, now), None);
        run[1].step = RunStep::Done;
        assert_eq!(holds(&run, "", &pacing, PowerAction::On, now), None);
        let plan = plan(PowerAction::On, &machines(&["", "", ""]), &pacing);
        assert_eq!(plan.machines.iter().map(|p| p.starts_at).collect::<Vec<_>>(), [0, 0, BOOT_ASSUMED_SECONDS]);
    }

    #[test]
    fn the_largest_burst_is_counted_per_group_over_any_window() {
        let pacing = Pacing { group_by: "rack".into(), per_group: 10, per_seconds: 5, booting_at_once: 0 };
        let mut run = machines(&["r1", "r1", "r1", "r2"]);
        let t0 = OffsetDateTime::now_utc();
        for (m, s) in run.iter_mut().zip([0i64, 4, 9, 0]) {
            m.sent_at = crate::db::timestamp(t0 + time::Duration::seconds(s));
        }
        assert_eq!(largest_burst(&run, &pacing), 2);
    }
}

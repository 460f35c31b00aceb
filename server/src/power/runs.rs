//! How a power run is paced, as pure rules the run loop and its plan share:
//! - a power budget per group of machines (a rack, a PDU: any label), "at most N per T
//!   seconds", in any window of T seconds;
//! - a boot-network budget: at most M machines between their power-on and their first boot
//!   request. The next machine goes when an earlier one reached a boot step, not after a sleep.

use app::power::{ListenerLoad, Pacing, PlannedMachine, PowerAction, PowerRun, PowerRunPlan, RunMachine, RunStep};
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

/// Which budget holds a machine back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Held {
    Power(String),
    Boot(String),
}

impl Held {
    pub fn words(self) -> String {
        match self {
            Held::Power(why) | Held::Boot(why) => why,
        }
    }
}

/// The budgets as they stand at one moment: each group's actions within the window, and the
/// machines booting. Made once per decision round, then taken from as machines go.
pub struct Budget<'a> {
    pacing: &'a Pacing,
    boot_budget: bool,
    /// Per group, the send times (seconds) within the window.
    recent: BTreeMap<String, usize>,
    booting: usize,
}

impl<'a> Budget<'a> {
    /// The budgets at `now` (seconds), for machines each given as (group, sent at in seconds,
    /// still between power-on and boot).
    pub fn at(
        pacing: &'a Pacing,
        action: PowerAction,
        now: f64,
        machines: impl Iterator<Item = (&'a str, Option<f64>, bool)>,
    ) -> Budget<'a> {
        let window = f64::from(pacing.per_seconds);
        let mut recent = BTreeMap::new();
        let mut booting = 0;
        for (group, sent, in_flight) in machines {
            if let Some(at) = sent
                && now - at < window
            {
                *recent.entry(group.to_string()).or_default() += 1;
            }
            booting += usize::from(in_flight);
        }
        Budget { pacing, boot_budget: pacing.booting_at_once > 0 && boots(action), recent, booting }
    }

    /// Why the next machine of `group` must wait, or `None` when it may go.
    pub fn holds(&self, group: &str) -> Option<Held> {
        let pacing = self.pacing;
        let recent = self.recent.get(group).copied().unwrap_or(0);
        if pacing.per_group > 0 && pacing.per_seconds > 0 && recent >= pacing.per_group as usize {
            let name =
                if group.is_empty() { "all machines".to_string() } else { format!("{}={group}", pacing.group_by) };
            return Some(Held::Power(format!(
                "power budget: {recent} of {name} asked in the last {} s (at most {} per {} s)",
                pacing.per_seconds, pacing.per_group, pacing.per_seconds
            )));
        }
        if self.boot_budget && self.booting >= pacing.booting_at_once as usize {
            return Some(Held::Boot(format!(
                "boot-network budget: {} machines between power-on and their first boot request (at most {})",
                self.booting, pacing.booting_at_once
            )));
        }
        None
    }

    /// Counts a machine of `group` going now.
    pub fn take(&mut self, group: &str) {
        *self.recent.entry(group.to_string()).or_default() += 1;
        self.booting += 1;
    }
}

/// Seconds since the epoch, as the budgets count.
pub fn seconds(at: OffsetDateTime) -> f64 {
    (at - OffsetDateTime::UNIX_EPOCH).as_seconds_f64()
}

/// The budgets of a run at `now`, shared with the `others` running: a rack's breaker and the boot
/// network do not care which run asked. Another run's machines count in a group when it groups
/// by the same label (or neither groups), and towards the boot budget while they boot.
pub fn budget<'a>(
    machines: &'a [RunMachine],
    others: &'a [PowerRun],
    pacing: &'a Pacing,
    action: PowerAction,
    now: OffsetDateTime,
) -> Budget<'a> {
    let in_flight = |m: &RunMachine| matches!(m.step, RunStep::Sent | RunStep::Booting);
    let own = machines.iter().map(move |m| (m.group.as_str(), sent_at(m).map(seconds), in_flight(m)));
    let shared = others.iter().flat_map(move |run| {
        let same_groups = run.pacing.group_by == pacing.group_by;
        let boots = run.action.is_some_and(boots);
        run.machines.iter().map(move |m| {
            // A group no machine of this run is in: the send counts for nothing here.
            let group = if same_groups { m.group.as_str() } else { "\0" };
            (group, sent_at(m).map(seconds), boots && in_flight(m))
        })
    });
    Budget::at(pacing, action, seconds(now), own.chain(shared))
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
        let mut first = 0;
        for (last, at) in times.iter().enumerate() {
            while *at - times[first] >= window {
                first += 1;
            }
            largest = largest.max((last - first + 1) as u32);
        }
    }
    largest
}

/// The run's plan: each machine's expected start, with the budgets as the run applies them (in
/// order, each machine as soon as its group's window and the boot budget allow) and
/// [`BOOT_ASSUMED_SECONDS`] from power-on to first boot request. It jumps from one moment a
/// budget frees to the next, so its work grows with the machines, not with the run's length.
pub fn plan(action: PowerAction, machines: &[RunMachine], pacing: &Pacing) -> PowerRunPlan {
    use std::cmp::Reverse;
    use std::collections::{BinaryHeap, VecDeque};
    let window = u64::from(pacing.per_seconds);
    let power_budget = (pacing.per_group > 0 && window > 0).then_some(pacing.per_group as usize);
    let boot_budget = (pacing.booting_at_once > 0 && boots(action)).then_some(pacing.booting_at_once as usize);
    // Each group's machines, in the run's order, and its sends within the window.
    let mut queues: BTreeMap<&str, VecDeque<usize>> = BTreeMap::new();
    for (i, m) in machines.iter().enumerate() {
        queues.entry(m.group.as_str()).or_default().push_back(i);
    }
    let mut sent: BTreeMap<&str, VecDeque<u64>> = BTreeMap::new();
    // The groups with machines waiting, by their first machine's place in the run.
    let mut heads: BinaryHeap<Reverse<(usize, &str)>> = queues.iter().map(|(g, q)| Reverse((q[0], *g))).collect();
    let mut booting: VecDeque<u64> = VecDeque::new();
    let mut frees: BinaryHeap<Reverse<u64>> = BinaryHeap::new();
    let mut starts = vec![0u64; machines.len()];
    let (mut power_held, mut boot_held) = (0usize, 0usize);
    let mut now = 0u64;
    while !heads.is_empty() {
        while booting.front().is_some_and(|done| *done <= now) {
            booting.pop_front();
        }
        let mut blocked = Vec::new();
        while let Some(Reverse((first, group))) = heads.pop() {
            if boot_budget.is_some_and(|most| booting.len() >= most) {
                boot_held += 1;
                blocked.push(Reverse((first, group)));
                break;
            }
            let recent = sent.entry(group).or_default();
            while recent.front().is_some_and(|at| at + window <= now) {
                recent.pop_front();
            }
            if power_budget.is_some_and(|most| recent.len() >= most) {
                power_held += 1;
                blocked.push(Reverse((first, group)));
                continue;
            }
            starts[first] = now;
            recent.push_back(now);
            frees.push(Reverse(now + window));
            if boot_budget.is_some() {
                booting.push_back(now + BOOT_ASSUMED_SECONDS);
                frees.push(Reverse(now + BOOT_ASSUMED_SECONDS));
            }
            if let Some(queue) = queues.get_mut(group) {
                queue.pop_front();
                if let Some(next) = queue.front() {
                    heads.push(Reverse((*next, group)));
                }
            }
        }
        heads.extend(blocked);
        // The next moment a budget frees.
        while frees.peek().is_some_and(|Reverse(at)| *at <= now) {
            frees.pop();
        }
        match frees.pop() {
            Some(Reverse(at)) => now = at,
            None => break,
        }
    }
    let mut planned: Vec<PlannedMachine> = machines
        .iter()
        .zip(&starts)
        .map(|(m, at)| PlannedMachine { id: m.id, mac: m.mac.clone(), group: m.group.clone(), starts_at: *at })
        .collect();
    planned.sort_by_key(|p| p.starts_at);
    let last = planned.last().map_or(0, |p| p.starts_at);
    let estimated_seconds = last + if boots(action) { BOOT_ASSUMED_SECONDS } else { 0 };
    let mut notes = Vec::new();
    match (power_held, boot_held) {
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
    PowerRunPlan { action, machines: planned, estimated_seconds, notes, boot_listener: ListenerLoad::default() }
}

/// The requests one machine's boot makes of the boot listener: `/boot.ipxe`, `/ipxe`, a kernel,
/// an initrd, an Ignition config and its report.
pub const REQUESTS_PER_BOOT: u64 = 6;

/// The boot listener's measured load beside a plan's: what the plan asks of it at most (the most
/// machines it starts within [`BOOT_ASSUMED_SECONDS`]), and whether the listener or the budgets
/// bind.
pub fn listener_note(plan: &PowerRunPlan, load: &ListenerLoad) -> String {
    let mut starts: Vec<u64> = plan.machines.iter().map(|m| m.starts_at).collect();
    starts.sort_unstable();
    let mut first = 0;
    let mut booting = 0u64;
    for (last, at) in starts.iter().enumerate() {
        while *at - starts[first] >= BOOT_ASSUMED_SECONDS {
            first += 1;
        }
        booting = booting.max((last - first + 1) as u64);
    }
    let demand = (booting * REQUESTS_PER_BOOT).div_ceil(BOOT_ASSUMED_SECONDS);
    let asks = format!(
        "This run asks about {demand} requests/s of the boot listener ({booting} machines booting within \
         {BOOT_ASSUMED_SECONDS} s at most, {REQUESTS_PER_BOOT} requests each)"
    );
    let Some(capacity) = load.capacity_per_second else {
        return format!(
            "{asks}; the listener answered no boot request in the last hour, so its capacity is not measured yet."
        );
    };
    let measured = format!(
        "The boot listener answered {} requests in the last hour, in {:.1} ms on average (busiest: {}/s): about \
         {capacity} requests/s on {} cores.",
        load.requests,
        load.mean_answer_us as f64 / 1000.0,
        load.peak_per_second,
        load.cores
    );
    if demand <= capacity {
        format!("{measured} {asks}: the budgets bind, not the listener.")
    } else {
        format!(
            "{measured} {asks}: the listener binds, and boots will queue; at most {} machines booting at once would fit.",
            capacity * BOOT_ASSUMED_SECONDS / REQUESTS_PER_BOOT
        )
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_listener_note_says_whether_the_listener_or_the_budgets_bind() {
        use super::*;
        let planned = |starts: &[u64]| PowerRunPlan {
            action: PowerAction::On,
            machines: starts
                .iter()
                .map(|at| app::power::PlannedMachine {
                    id: 1,
                    mac: String::new(),
                    group: String::new(),
                    starts_at: *at,
                })
                .collect(),
            estimated_seconds: 0,
            notes: Vec::new(),
            boot_listener: ListenerLoad::default(),
        };
        // 20 machines at once, then 20 a minute later: 20 booting at most, 2 requests/s.
        let plan = planned(&[[0u64; 20], [60; 20]].concat());
        let unmeasured = listener_note(&plan, &ListenerLoad::default());
        assert!(
            unmeasured.contains("about 2 requests/s") && unmeasured.contains("20 machines booting"),
            "{unmeasured}"
        );
        assert!(unmeasured.contains("not measured yet"));
        let load = ListenerLoad {
            requests: 600,
            mean_answer_us: 2000,
            peak_per_second: 3,
            capacity_per_second: Some(1000),
            cores: 2,
        };
        assert!(listener_note(&plan, &load).ends_with("the budgets bind, not the listener."));
        let slow = ListenerLoad { capacity_per_second: Some(1), ..load };
        let note = listener_note(&plan, &slow);
        assert!(note.contains("the listener binds") && note.contains("at most 10 machines booting"), "{note}");
    }

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
        assert_eq!(budget(&run, &[], &pacing, PowerAction::On, now).holds(""), None);
        run[0].step = RunStep::Sent;
        run[1].step = RunStep::Booting;
        let why = budget(&run, &[], &pacing, PowerAction::On, now).holds("").unwrap().words();
        assert!(why.starts_with("boot-network budget: 2 machines"), "{why}");
        // Shutting down boots nothing: the boot budget does not apply.
        assert_eq!(budget(&run, &[], &pacing, PowerAction::ForceOff, now).holds(""), None);
        run[1].step = RunStep::Done;
        assert_eq!(budget(&run, &[], &pacing, PowerAction::On, now).holds(""), None);
        let plan = plan(PowerAction::On, &machines(&["", "", ""]), &pacing);
        assert_eq!(plan.machines.iter().map(|p| p.starts_at).collect::<Vec<_>>(), [0, 0, BOOT_ASSUMED_SECONDS]);
    }

    #[test]
    fn other_running_runs_share_a_racks_budget_and_the_boot_network() {
        let pacing = Pacing { group_by: "rack".into(), per_group: 2, per_seconds: 60, booting_at_once: 3 };
        let now = OffsetDateTime::now_utc();
        let sent = |group: &str, step: RunStep| RunMachine {
            step,
            sent_at: now.format(&Rfc3339).unwrap(),
            ..machines(&[group]).remove(0)
        };
        let other = |group_by: &str, action: PowerAction, machines: Vec<RunMachine>| PowerRun {
            action: Some(action),
            pacing: Pacing { group_by: group_by.into(), ..pacing.clone() },
            machines,
            ..PowerRun::default()
        };
        let run = machines(&["r1", "r2"]);
        // Another run grouped by rack sent two to r1 just now: r1 is full, r2 is not.
        let others = [other("rack", PowerAction::On, vec![sent("r1", RunStep::Done), sent("r1", RunStep::Done)])];
        let budget = budget(&run, &others, &pacing, PowerAction::On, now);
        assert!(budget.holds("r1").unwrap().words().starts_with("power budget: 2 of rack=r1"));
        assert_eq!(budget.holds("r2"), None);
        // One grouped by another label does not count in a rack; its booting machines fill the
        // boot network all the same (those of a power-off run do not).
        let booting = vec![sent("p1", RunStep::Booting), sent("p1", RunStep::Sent), sent("p1", RunStep::Booting)];
        let others = [other("pdu", PowerAction::ForceOff, booting.clone())];
        assert_eq!(super::budget(&run, &others, &pacing, PowerAction::On, now).holds("r1"), None);
        let others = [other("pdu", PowerAction::On, booting)];
        let why = super::budget(&run, &others, &pacing, PowerAction::On, now).holds("r1").unwrap().words();
        assert!(why.starts_with("boot-network budget: 3 machines"), "{why}");
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

    #[test]
    fn a_plan_of_ten_thousand_machines_at_one_an_hour_is_quick_to_make() {
        let pacing = Pacing { group_by: "rack".into(), per_group: 1, per_seconds: 3600, booting_at_once: 0 };
        let groups: Vec<&str> = (0..10_000).map(|i| if i % 2 == 0 { "r1" } else { "r2" }).collect();
        let plan = plan(PowerAction::ForceOff, &machines(&groups), &pacing);
        assert_eq!(plan.machines.len(), 10_000);
        assert_eq!(plan.estimated_seconds, 4999 * 3600);
    }
}

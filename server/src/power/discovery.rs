//! Discovery by BMC: given BMC addresses (a list, ranges, small networks), Pangea asks each for
//! its systems and their NICs' MACs, and offers the systems that are not machines yet as an
//! import with their BMCs, through the import's own preview and confirm. It is the way in for
//! racks whose MACs nobody wrote down.
//!
//! A discovery is a durable job: its input (with the BMCs' password) is kept sealed, another
//! replica runs it again from the start if this one stops (asking a BMC is a read), and it signs
//! in with HTTP basic authentication, so it opens no Redfish session.

use super::redfish::BmcAccess;
use super::{Power, hardware, power_of, said};
use crate::audit::{self, Event};
use crate::error::OrInternal;
use crate::jobs::{Job, JobKind, JobState};
use crate::machines::ParsedLine;
use app::access::{Permission, Principal, authorize};
use app::error::AppError;
use app::machines::{ImportFormat, ImportReport, MachineInput};
use app::power::{BmcInput, Discovery, DiscoveryInput, DiscoveryMiss, FoundSystem, Nic};
use reqwest::{Method, StatusCode};
use secrecy::{ExposeSecret, SecretString};
use serde_json::json;
use std::collections::HashSet;
use std::net::Ipv4Addr;

pub const DISCOVERY_JOB: JobKind = JobKind { name: "power.discover" };
/// Where a discovery's input is sealed.
const PLACE: &str = "bmc-discovery";
/// The most BMCs one discovery asks.
pub const MAX_BMCS: usize = 1024;
/// BMCs asked at once (each one request at a time).
const AT_ONCE: usize = 32;

/// The BMC origins `text` names: addresses, ranges (`10.0.0.10-10.0.0.40`, `10.0.0.10-40`),
/// IPv4 networks of at most 1024 addresses (`10.0.0.0/26`, without its network and broadcast
/// addresses) and URLs, each with an optional scheme (`https://` when none) and port; in order,
/// each once.
pub fn targets(text: &str) -> Result<Vec<url::Url>, String> {
    if text.len() > 64 * 1024 {
        return Err("The addresses are at most 64 KiB of text; use ranges and networks, or split them.".into());
    }
    let mut origins = Vec::new();
    let mut seen = HashSet::new();
    // Every address an entry names counts, repeated or not, so no text makes endless work.
    let mut named = 0usize;
    for entry in text.split(|c: char| c.is_whitespace() || c == ',').filter(|e| !e.is_empty()) {
        for origin in entry_origins(entry)? {
            named += 1;
            if seen.insert(origin.clone()) {
                origins.push(origin);
            }
            if origins.len() > MAX_BMCS || named > 4 * MAX_BMCS {
                return Err(format!("A discovery asks at most {MAX_BMCS} BMCs; split the addresses."));
            }
        }
    }
    if origins.is_empty() {
        return Err(
            "Give the BMCs' addresses: 10.0.0.10, 10.0.0.10-40, 10.0.0.0/26 or https://bmc-7.example.com.".into()
        );
    }
    Ok(origins)
}

fn entry_origins(entry: &str) -> Result<Vec<url::Url>, String> {
    let (scheme, rest) = entry.split_once("://").unwrap_or(("https", entry));
    let rest = rest.trim_end_matches('/');
    // An IPv6 address is one BMC; otherwise the host may be a range or a network.
    let (hosts, port) = if rest.starts_with('[') {
        (vec![rest.to_string()], "")
    } else {
        let (host, port) = match rest.rsplit_once(':') {
            Some((host, port)) if !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit()) => (host, port),
            _ => (rest, ""),
        };
        (expand(host).map_err(|e| format!("\"{entry}\": {e}"))?, port)
    };
    hosts
        .into_iter()
        .map(|host| {
            let port = if port.is_empty() { String::new() } else { format!(":{port}") };
            match super::parse_url(&format!("{scheme}://{host}{port}")) {
                Ok((origin, None)) => Ok(origin),
                Ok((_, Some(_))) => Err(format!("\"{entry}\": give the BMC's address, without a path.")),
                Err(e) => Err(format!("\"{entry}\": {e}")),
            }
        })
        .collect()
}

/// The hosts of one entry's host part: a range, a network, or itself.
fn expand(host: &str) -> Result<Vec<String>, String> {
    let too_many = || format!("at most {MAX_BMCS} addresses in one range or network.");
    if let Some((network, bits)) = host.split_once('/') {
        let (Ok(network), Ok(bits)) = (network.parse::<Ipv4Addr>(), bits.parse::<u32>()) else {
            return Err("a network is written as an IPv4 address and a prefix length, such as 10.0.0.0/26.".into());
        };
        if !(22..=32).contains(&bits) {
            return Err(too_many());
        }
        let size = 1u32 << (32 - bits);
        let first = u32::from(network) & !(size - 1);
        // A /31 or /32 has no network or broadcast address to leave out.
        let (low, high) = if size > 2 { (first + 1, first + size - 2) } else { (first, first + size - 1) };
        return Ok((low..=high).map(|ip| Ipv4Addr::from(ip).to_string()).collect());
    }
    if let Some((from, to)) = host.split_once('-')
        && let Ok(from) = from.parse::<Ipv4Addr>()
    {
        let to = match (to.parse::<Ipv4Addr>(), to.parse::<u8>()) {
            (Ok(to), _) => to,
            (_, Ok(last)) => {
                let [a, b, c, _] = from.octets();
                Ipv4Addr::new(a, b, c, last)
            }
            _ => return Err("a range ends with an IPv4 address or its last number, as 10.0.0.10-40.".into()),
        };
        let (from, to) = (u32::from(from), u32::from(to));
        if to < from {
            return Err("a range's end comes after its start.".into());
        }
        if to - from >= MAX_BMCS as u32 {
            return Err(too_many());
        }
        return Ok((from..=to).map(|ip| Ipv4Addr::from(ip).to_string()).collect());
    }
    Ok(vec![host.to_string()])
}

/// The MAC offered as a system's machine: its first NIC with a link up (the cabled one, which
/// network-boots), else its first.
pub fn offered_mac(nics: &[Nic]) -> String {
    nics.iter()
        .find(|n| n.link.eq_ignore_ascii_case("LinkUp"))
        .or(nics.first())
        .map(|n| n.mac.clone())
        .unwrap_or_default()
}

/// A discovery's systems that are no machine yet (and have a MAC), as import lines with their
/// BMC (signed in to as the discovery was). A UUID or serial the machines list would refuse is
/// left out rather than failing the line.
fn import_lines(discovery: &Discovery, input: &DiscoveryInput) -> Vec<ParsedLine> {
    use app::machines::fields::{Serial, SystemUuid};
    discovery
        .found
        .iter()
        .filter(|f| f.machine.is_none() && !f.mac.is_empty())
        .enumerate()
        .map(|(i, found)| ParsedLine {
            line: i as u32 + 1,
            input: MachineInput {
                mac: found.mac.clone(),
                uuid: Some(found.uuid.clone()).filter(|u| u.parse::<SystemUuid>().is_ok()),
                serial: Some(found.serial.clone()).filter(|s| s.parse::<Serial>().is_ok()),
                ..MachineInput::default()
            },
            bmc: Some(BmcInput {
                url: found.bmc_url.clone(),
                username: input.username.trim().to_string(),
                password: Some(input.password.clone()),
                ca_pem: input.ca_pem.clone(),
                verify_off: input.verify_off,
            }),
            errors: Vec::new(),
        })
        .collect()
}

impl Power {
    /// Starts a discovery, audited (`machine.discover`), as a durable job; its id.
    pub(super) async fn start_discovery_job(&self, who: &Principal, input: DiscoveryInput) -> Result<String, AppError> {
        let event = Event::new("machine.discover", "job").summary(
            json!({ "addresses": input.addresses.chars().take(500).collect::<String>(), "username": input.username }),
        );
        let result = async {
            authorize(who, Permission::PowerMachines)?;
            authorize(who, Permission::ChangeMachines)?;
            let invalid = |field: &str, message: String| AppError::Invalid {
                message: message.clone(),
                fields: vec![app::error::FieldError { field: field.into(), message }],
            };
            let origins = targets(&input.addresses).map_err(|m| invalid("addresses", m))?;
            let probe = app::power::BmcInput {
                url: origins[0].to_string(),
                username: input.username.clone(),
                password: Some(input.password.clone()),
                ca_pem: input.ca_pem.clone(),
                verify_off: input.verify_off,
            };
            super::checked_fields(&probe).map_err(|(field, m)| invalid(field, m))?;
            if input.password.is_empty() {
                return Err(invalid("password", "Give the BMC user's password.".into()));
            }
            let text = serde_json::to_string(&input).or_internal()?;
            let sealed = self.sealer.seal(&SecretString::from(text), PLACE);
            let job = self.jobs.start(DISCOVERY_JOB, who, "discover", origins.len() as u32, &sealed).await?;
            let mut started = event.clone().target(&job, &job);
            started.summary["bmcs"] = json!(origins.len());
            if let Err(e) = audit::record(&self.db, who, started).await {
                let refused = crate::error::internal(e);
                let _ = self.jobs.fail(&job, &refused).await;
                return Err(refused);
            }
            self.discover(job.clone(), input, origins);
            Ok(job)
        }
        .await;
        audit::settle(&self.db, who, event, result).await
    }

    fn opened(&self, sealed: &str) -> Result<DiscoveryInput, AppError> {
        let opened = self.sealer.open(sealed, PLACE).map_err(|e| AppError::Conflict {
            message: format!("This discovery's input cannot be read here ({e}); start it again."),
            fields: Vec::new(),
        })?;
        serde_json::from_str(opened.expose_secret()).or_internal()
    }

    /// Goes on with a discovery another replica was running: from the start, as whoever
    /// started it may still power and add machines.
    pub fn resume_discovery(&self, job: Job) {
        let may = job.acting.as_ref().is_some_and(|who| {
            authorize(who, Permission::PowerMachines).is_ok() && authorize(who, Permission::ChangeMachines).is_ok()
        });
        let resumable = if may {
            self.opened(&job.input).and_then(|input| Ok((targets(&input.addresses).map_err(AppError::invalid)?, input)))
        } else {
            Err(AppError::Forbidden {
                message: "This discovery was stopped: whoever started it may no longer add or power machines.".into(),
            })
        };
        match resumable {
            Ok((origins, input)) => self.discover(job.id, input, origins),
            Err(error) => {
                let jobs = self.jobs.clone();
                self.background.spawn(async move {
                    if let Err(e) = jobs.fail(&job.id, &error).await {
                        tracing::error!(error = %e, job = job.id, "could not fail a discovery");
                    }
                });
            }
        }
    }

    /// Asks each BMC in the background, holding the job's lease, reporting progress as it goes.
    fn discover(&self, job: String, input: DiscoveryInput, origins: Vec<url::Url>) {
        let power = self.clone();
        self.background.spawn(async move {
            let outcome = power.jobs.holding_lease(&job, power.ask_all(&job, &input, origins)).await;
            let ended = match outcome {
                Ok(found) => power.jobs.succeed(&job, &serde_json::to_string(&found).unwrap_or_default()).await,
                Err(error) => power.jobs.fail(&job, &error).await,
            };
            if let Err(e) = ended {
                tracing::error!(error = %e, job, "could not record the end of a discovery");
            }
        });
    }

    async fn ask_all(&self, job: &str, input: &DiscoveryInput, origins: Vec<url::Url>) -> Result<Discovery, AppError> {
        use futures::StreamExt;
        let total = origins.len() as u32;
        let mut discovery = Discovery { job: job.to_string(), total, ..Default::default() };
        let mut answers = futures::stream::iter(origins)
            .map(|origin| async move {
                let found = self.ask(&origin, input).await;
                (origin, found)
            })
            .buffered(AT_ONCE);
        let mut seen: std::collections::HashMap<String, String> = Default::default();
        while let Some((origin, answer)) = answers.next().await {
            let address = origin.as_str().trim_end_matches('/').to_string();
            match answer {
                Ok(systems) if systems.is_empty() => {
                    discovery.missed.push(DiscoveryMiss { address, reason: "The BMC lists no system.".into() })
                }
                Ok(systems) => {
                    for system in systems {
                        // One system reached at two addresses (a BMC with two) is offered once.
                        match seen.get(&system.mac).filter(|_| !system.mac.is_empty()) {
                            Some(first) => discovery.missed.push(DiscoveryMiss {
                                address: system.bmc_url.clone(),
                                reason: format!("The same system (MAC {}) as at {first}.", system.mac),
                            }),
                            None => {
                                seen.insert(system.mac.clone(), system.bmc_url.clone());
                                discovery.found.push(system);
                            }
                        }
                    }
                }
                Err(reason) => discovery.missed.push(DiscoveryMiss { address, reason }),
            }
            discovery.done += 1;
            let shown = serde_json::to_string(&discovery).or_internal()?;
            self.jobs.report(job, discovery.done, total, &shown).await?;
        }
        discovery.state = "succeeded".into();
        Ok(discovery)
    }

    /// One BMC's systems, each with its NICs and main figures.
    async fn ask(&self, origin: &url::Url, input: &DiscoveryInput) -> Result<Vec<FoundSystem>, String> {
        let access = BmcAccess {
            origin: origin.clone(),
            username: input.username.trim().to_string(),
            password: SecretString::from(input.password.clone()),
            trust: super::trust_given(input.verify_off, &input.ca_pem),
        };
        let trial = self.redfish.trial(&access).map_err(|e| said(&e))?;
        let get = |path: String| {
            let trial = &trial;
            async move { trial.call(Method::GET, &path, None).await }
        };
        let paths = super::listed_systems(&trial).await?;
        let origin_text = origin.origin().ascii_serialization();
        let mut systems = Vec::new();
        for path in paths {
            let system = get(path.clone()).await.map_err(|e| said(&e))?;
            if system.status != StatusCode::OK {
                return Err(format!("The BMC answered HTTP {} for system {path}.", system.status.as_u16()));
            }
            let told = hardware::read(get, &system.body).await.map_err(|e| said(&e))?;
            let nics = told.nics.clone().unwrap_or_default();
            systems.push(FoundSystem {
                bmc_url: format!("{origin_text}{path}"),
                mac: offered_mac(&nics),
                macs: nics.iter().map(|n| n.mac.clone()).collect(),
                uuid: system.body["UUID"].as_str().unwrap_or_default().to_lowercase(),
                serial: told.serial,
                manufacturer: told.manufacturer,
                model: told.model,
                cpus: told.cpus,
                memory_gib: told.memory_gib,
                power: power_of(&system.body),
                machine: None,
            });
        }
        Ok(systems)
    }

    /// A discovery as it stands, for whoever started it and admins.
    pub(super) async fn discovery_of(&self, who: &Principal, job: &str) -> Result<Discovery, AppError> {
        authorize(who, Permission::ViewMachines)?;
        let stored = self.jobs.get(job, who).await?;
        if stored.kind != DISCOVERY_JOB.name {
            return Err(AppError::not_found("This discovery is not known (it expired, or it is not yours)."));
        }
        let mut discovery: Discovery = serde_json::from_str(&stored.result).unwrap_or_default();
        discovery.job = stored.id;
        (discovery.done, discovery.total) = (stored.done, stored.total);
        discovery.error = stored.error.map(|e| e.to_string());
        discovery.state = match stored.state {
            JobState::Failed => "failed".into(),
            JobState::Succeeded => "succeeded".into(),
            _ => "running".into(),
        };
        // Which systems are machines now (an import, or a person, may have added them since).
        let macs: Vec<String> = discovery.found.iter().map(|f| f.mac.clone()).filter(|m| !m.is_empty()).collect();
        let known = self.machines.ids_of_macs(&macs).await?;
        for found in &mut discovery.found {
            found.machine = known.get(&found.mac).copied();
        }
        Ok(discovery)
    }

    /// The systems a finished discovery found that are no machines yet, imported with their
    /// BMCs through the machines import (checked only, with `dry_run`).
    pub(super) async fn import_discovery(
        &self,
        who: &Principal,
        job: &str,
        dry_run: bool,
    ) -> Result<ImportReport, AppError> {
        authorize(who, Permission::PowerMachines)?;
        authorize(who, Permission::ChangeMachines)?;
        let discovery = self.discovery_of(who, job).await?;
        if discovery.state != "succeeded" {
            return Err(AppError::Conflict {
                message: "This discovery has not finished; import its systems once it has.".into(),
                fields: Vec::new(),
            });
        }
        let stored = self.jobs.get(job, who).await?;
        let input = self.opened(&stored.input)?;
        let lines = import_lines(&discovery, &input);
        if lines.is_empty() {
            return Err(AppError::invalid(
                "This discovery found no system that is not a machine already (and told its MAC).",
            ));
        }
        self.machines.import_lines(who, ImportFormat::Csv, lines, dry_run).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn origins(text: &str) -> Result<Vec<String>, String> {
        targets(text).map(|o| o.into_iter().map(|o| o.as_str().trim_end_matches('/').to_string()).collect())
    }

    #[test]
    fn addresses_ranges_networks_and_urls_become_origins_each_once() {
        assert_eq!(
            origins("10.0.0.10-12, 10.0.0.11\nhttp://127.0.0.1:8000 bmc-7.example.com:8443").unwrap(),
            [
                "https://10.0.0.10",
                "https://10.0.0.11",
                "https://10.0.0.12",
                "http://127.0.0.1:8000",
                "https://bmc-7.example.com:8443"
            ]
        );
        assert_eq!(origins("10.0.0.0/30").unwrap(), ["https://10.0.0.1", "https://10.0.0.2"]);
        assert_eq!(origins("http://127.0.0.1-127.0.0.2:9").unwrap(), ["http://127.0.0.1:9", "http://127.0.0.2:9"]);
        assert_eq!(origins("https://[2001:db8::1]:8443").unwrap(), ["https://[2001:db8::1]:8443"]);
        assert_eq!(origins("10.0.0.0/22").unwrap().len(), 1022);
    }

    #[test]
    fn bad_addresses_say_which_and_how_to_write_them() {
        assert!(origins("").unwrap_err().contains("Give the BMCs' addresses"));
        assert!(origins("10.0.0.0/16").unwrap_err().contains("at most 1024"));
        assert!(origins("10.0.0.0/21").unwrap_err().contains("at most 1024"));
        assert!(origins("10.0.0.20-10").unwrap_err().contains("after its start"));
        assert!(origins("10.0.0.1-x").unwrap_err().contains("last number"));
        assert!(origins("169.254.169.254").unwrap_err().contains("link-local"));
        assert!(origins("ftp://10.0.0.1").unwrap_err().contains("https://host"));
        assert!(origins("https://10.0.0.1/redfish/v1/Systems/1").unwrap_err().contains("\"https://10.0.0.1/redfish"));
        let many = (0..5).map(|i| format!("10.0.{i}.0/24")).collect::<Vec<_>>().join(" ");
        assert!(origins(&many).unwrap_err().contains("split the addresses"));
    }

    #[test]
    fn the_offered_mac_is_the_first_with_a_link_up() {
        let nic = |mac: &str, link: &str| Nic { id: mac.into(), mac: mac.into(), link: link.into() };
        assert_eq!(offered_mac(&[nic("a", "LinkDown"), nic("b", "LinkUp")]), "b");
        assert_eq!(offered_mac(&[nic("a", ""), nic("b", "")]), "a");
        assert_eq!(offered_mac(&[]), "");
    }
}

//! A machine's hardware as its BMC tells it, written against the DMTF schema's JSON: the
//! `ComputerSystem` (manufacturer, model, serial, BIOS, `ProcessorSummary`, `MemorySummary`) and
//! the collections it links (`Processors`, `Memory`, `Storage` with its `Drives`, or
//! `SimpleStorage`, and `EthernetInterfaces`), and its manager's `FirmwareVersion`; and what
//! changed between two reads (drift).
//!
//! A part the system does not link, or that its BMC answers with an error status, is not told
//! (`None`) and never compared; a BMC that stops answering fails the whole read, so a half read is
//! never taken for missing parts.

use super::redfish::{Answer, BmcError};
use app::power::{Disk, Hardware, HardwareChange, MemoryModule, Nic, Processor, disk_size, memory_size};
use futures::future::try_join_all;
use reqwest::StatusCode;
use serde_json::Value;
use std::collections::BTreeMap;

/// The most members Pangea reads of one collection (a BMC's answer bounds the work it causes).
pub const MAX_MEMBERS: usize = 64;

fn text(value: &Value) -> String {
    value.as_str().map(str::trim).unwrap_or_default().to_string()
}

fn number(value: &Value) -> Option<u64> {
    value.as_u64().or_else(|| value.as_f64().filter(|f| *f >= 0.0).map(|f| f.round() as u64))
}

fn link(value: &Value) -> Option<String> {
    value["@odata.id"].as_str().map(str::to_string)
}

fn absent(member: &Value) -> bool {
    member["Status"]["State"] == "Absent"
}

/// Reads a system's hardware through `get` (a GET of a path on its BMC).
pub async fn read<G, F>(get: G, system: &Value) -> Result<Hardware, BmcError>
where
    G: Fn(String) -> F + Copy,
    F: std::future::Future<Output = Result<Answer, BmcError>>,
{
    let (processors, memory, storage, simple_storage, nics, manager) = futures::try_join!(
        members(get, &system["Processors"]),
        members(get, &system["Memory"]),
        members(get, &system["Storage"]),
        members(get, &system["SimpleStorage"]),
        members(get, &system["EthernetInterfaces"]),
        one(get, &system["Links"]["ManagedBy"][0]),
    )?;
    let processors: Option<Vec<Processor>> = processors.map(|found| {
        found
            .iter()
            .filter(|p| !absent(p) && matches!(p["ProcessorType"].as_str(), None | Some("CPU")))
            .map(|p| Processor {
                slot: [&p["Socket"], &p["Id"]].into_iter().map(text).find(|s| !s.is_empty()).unwrap_or_default(),
                model: text(&p["Model"]),
                cores: number(&p["TotalCores"]).unwrap_or_default() as u32,
                threads: number(&p["TotalThreads"]).unwrap_or_default() as u32,
            })
            .collect()
    });
    let memory: Option<Vec<MemoryModule>> = memory.map(|found| {
        found
            .iter()
            .filter(|m| !absent(m))
            .filter_map(|m| {
                let size_mib = number(&m["CapacityMiB"]).filter(|s| *s > 0)?;
                let slot = [&m["DeviceLocator"], &m["Id"]].into_iter().map(text).find(|s| !s.is_empty())?;
                Some(MemoryModule { slot, size_mib })
            })
            .collect()
    });
    let summary = &system["ProcessorSummary"];
    let threads: u32 = processors.iter().flatten().map(|p| p.threads).sum();
    let cpus = number(&summary["LogicalProcessorCount"])
        .map(|n| n as u32)
        .or((threads > 0).then_some(threads))
        .or(number(&summary["Count"]).map(|n| n as u32));
    let memory_gib = number(&system["MemorySummary"]["TotalSystemMemoryGiB"]).map(|g| g as u32).or_else(|| {
        memory.as_ref().filter(|m| !m.is_empty()).map(|m| (m.iter().map(|d| d.size_mib).sum::<u64>() / 1024) as u32)
    });
    // A system that links Storage tells its disks there, or not at all: SimpleStorage names them
    // otherwise, and a fallback would look like every disk changed.
    let simple_storage = simple_storage.filter(|_| link(&system["Storage"]).is_none());
    let disks = match (storage, simple_storage) {
        (Some(controllers), _) => {
            let drives = try_join_all(controllers.iter().map(|c| drives(get, c))).await?;
            drives.into_iter().collect::<Option<Vec<Vec<Disk>>>>().map(|d| d.concat())
        }
        (None, Some(simple)) => Some(
            simple
                .iter()
                .flat_map(|s| s["Devices"].as_array().cloned().unwrap_or_default())
                .filter(|d| !absent(d))
                .take(MAX_MEMBERS)
                .map(|d| disk(&d, text(&d["Name"])))
                .collect(),
        ),
        (None, None) => None,
    };
    let nics = nics.map(|found| {
        found
            .iter()
            .filter(|n| !absent(n))
            .filter_map(|n| {
                // The permanent MAC first: bonding changes the current one, which is no hardware change.
                let mac = [&n["PermanentMACAddress"], &n["MACAddress"]]
                    .into_iter()
                    .find_map(|m| m.as_str()?.parse::<app::machines::mac::MacAddr>().ok())?;
                Some(Nic { id: text(&n["Id"]), mac: mac.to_string(), link: text(&n["LinkStatus"]) })
            })
            .collect()
    });
    Ok(Hardware {
        manufacturer: text(&system["Manufacturer"]),
        model: text(&system["Model"]),
        serial: text(&system["SerialNumber"]),
        bios_version: text(&system["BiosVersion"]),
        bmc_firmware: manager.map(|m| text(&m["FirmwareVersion"])).unwrap_or_default(),
        cpus,
        processors,
        memory_gib,
        memory,
        disks,
        nics,
    })
}

fn disk(d: &Value, id: String) -> Disk {
    Disk {
        id,
        name: text(&d["Name"]),
        model: text(&d["Model"]),
        serial: text(&d["SerialNumber"]),
        size_bytes: number(&d["CapacityBytes"]).unwrap_or_default(),
        media: text(&d["MediaType"]),
    }
}

/// The resource `reference` links to, or `None` when there is no link or the BMC answers it with
/// an error status.
async fn one<G, F>(get: G, reference: &Value) -> Result<Option<Value>, BmcError>
where
    G: Fn(String) -> F,
    F: std::future::Future<Output = Result<Answer, BmcError>>,
{
    let Some(path) = link(reference) else { return Ok(None) };
    let answer = get(path).await?;
    Ok((answer.status == StatusCode::OK && answer.body.is_object()).then_some(answer.body))
}

/// The members of the collection `reference` links to, each read (at most [`MAX_MEMBERS`]), or
/// `None` when the collection or one of its members is not told.
async fn members<G, F>(get: G, reference: &Value) -> Result<Option<Vec<Value>>, BmcError>
where
    G: Fn(String) -> F + Copy,
    F: std::future::Future<Output = Result<Answer, BmcError>>,
{
    let Some(collection) = one(get, reference).await? else { return Ok(None) };
    // In a stable order, so a BMC that lists more than are read gives the same ones each time.
    let mut listed = collection["Members"].as_array().cloned().unwrap_or_default();
    listed.sort_by(|a, b| a["@odata.id"].as_str().cmp(&b["@odata.id"].as_str()));
    let read = try_join_all(listed.iter().take(MAX_MEMBERS).map(|m| one(get, m))).await?;
    Ok(read.into_iter().collect())
}

/// The drives a storage controller lists, or `None` when one is not told.
async fn drives<G, F>(get: G, controller: &Value) -> Result<Option<Vec<Disk>>, BmcError>
where
    G: Fn(String) -> F + Copy,
    F: std::future::Future<Output = Result<Answer, BmcError>>,
{
    let listed = controller["Drives"].as_array().cloned().unwrap_or_default();
    let read = try_join_all(listed.iter().take(MAX_MEMBERS).map(|d| one(get, d))).await?;
    let Some(read) = read.into_iter().collect::<Option<Vec<Value>>>() else { return Ok(None) };
    let controller_id = text(&controller["Id"]);
    Ok(Some(
        read.iter().filter(|d| !absent(d)).map(|d| disk(d, format!("{controller_id}/{}", text(&d["Id"])))).collect(),
    ))
}

/// What changed from `before` to `after`, seen at `at`: a part both reads tell of that is gone,
/// new or different. Link state is not hardware, and is left out.
pub fn changes(before: &Hardware, after: &Hardware, at: &str) -> Vec<HardwareChange> {
    let mut found = Vec::new();
    let mut changed = |part: String, was: String, now: String| {
        if was != now {
            found.push(HardwareChange { part, before: was, after: now, seen_at: at.to_string() });
        }
    };
    for (part, was, now) in [
        ("Manufacturer", &before.manufacturer, &after.manufacturer),
        ("Model", &before.model, &after.model),
        ("Serial number", &before.serial, &after.serial),
        ("BIOS version", &before.bios_version, &after.bios_version),
        ("BMC firmware", &before.bmc_firmware, &after.bmc_firmware),
    ] {
        if !was.is_empty() && !now.is_empty() {
            changed(part.to_string(), was.clone(), now.clone());
        }
    }
    let mut parts = |kind: &str, was: Option<BTreeMap<String, String>>, now: Option<BTreeMap<String, String>>| {
        let (Some(was), Some(now)) = (was, now) else { return };
        let keys: std::collections::BTreeSet<&String> = was.keys().chain(now.keys()).collect();
        for key in keys {
            let absent = || "absent".to_string();
            changed(
                format!("{kind} {key}"),
                was.get(key).cloned().unwrap_or_else(absent),
                now.get(key).cloned().unwrap_or_else(absent),
            );
        }
    };
    let cpus = |h: &Hardware| {
        h.processors.as_ref().map(|p| {
            p.iter()
                .map(|p| (p.slot.clone(), format!("{} ({} cores, {} threads)", p.model, p.cores, p.threads)))
                .collect()
        })
    };
    parts("CPU", cpus(before), cpus(after));
    let dimms =
        |h: &Hardware| h.memory.as_ref().map(|m| m.iter().map(|m| (m.slot.clone(), memory_size(m.size_mib))).collect());
    parts("DIMM", dimms(before), dimms(after));
    let disks = |h: &Hardware| {
        h.disks.as_ref().map(|d| {
            d.iter()
                .map(|d| {
                    let said =
                        [d.model.as_str(), d.media.as_str(), &disk_size(d.size_bytes), &format!("serial {}", d.serial)]
                            .into_iter()
                            .filter(|s| !s.is_empty() && *s != "serial ")
                            .collect::<Vec<_>>()
                            .join(", ");
                    (d.id.clone(), said)
                })
                .collect()
        })
    };
    parts("Disk", disks(before), disks(after));
    let nics = |h: &Hardware| {
        h.nics.as_ref().map(|n| n.iter().map(|n| (n.mac.clone(), format!("present ({})", n.id))).collect())
    };
    parts("NIC", nics(before), nics(after));
    found
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    /// A BMC answering from recorded exchanges (`server/tests/fixtures/redfish`): path → status and
    /// body; any other path is a 404.
    fn recorded(name: &str) -> HashMap<String, (u16, Value)> {
        let path = format!("{}/tests/fixtures/redfish/{name}", env!("CARGO_MANIFEST_DIR"));
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
        let exchanges: HashMap<String, Value> = serde_json::from_str(&text).unwrap();
        exchanges
            .into_iter()
            .map(|(path, ex)| (path, (ex["status"].as_u64().unwrap() as u16, ex["body"].clone())))
            .collect()
    }

    async fn read_from(bmc: &HashMap<String, (u16, Value)>, system: &str) -> Result<Hardware, BmcError> {
        let get = |path: String| async move {
            let (status, body) = bmc.get(&path).cloned().unwrap_or((404, Value::Null));
            Ok(Answer { status: StatusCode::from_u16(status).unwrap(), body })
        };
        read(get, &bmc[system].1).await
    }

    #[tokio::test]
    async fn the_emulators_recorded_system_reads_as_its_nics_disks_and_firmware() {
        let bmc = recorded("sushy-tools-2.2.0-fake.json");
        let hardware = read_from(&bmc, "/redfish/v1/Systems/11111111-0000-0000-0000-000000000001").await.unwrap();
        assert_eq!(hardware.manufacturer, "Sushy Emulator");
        assert_eq!(hardware.bmc_firmware, "1.00");
        // Its fake driver links Memory but answers 404, and links no Processors: not told.
        assert_eq!(
            (hardware.memory, hardware.processors, hardware.cpus, hardware.memory_gib),
            (None, None, None, None)
        );
        let disks = hardware.disks.unwrap();
        assert_eq!(
            disks.iter().map(|d| (d.id.as_str(), d.size_bytes)).collect::<Vec<_>>(),
            [("1/disk-0", 480_103_981_056), ("1/disk-1", 1_920_383_410_176)]
        );
        assert_eq!(disks[0].media, "HDD");
        let nics = hardware.nics.unwrap();
        assert_eq!(nics.iter().map(|n| n.mac.as_str()).collect::<Vec<_>>(), ["52:54:00:b0:00:01", "52:54:00:b0:00:02"]);
    }

    #[tokio::test]
    async fn a_rack_server_reads_as_its_cpus_dimms_ssds_and_links() {
        let bmc = recorded("rack-server-schema-shaped.json");
        let hardware = read_from(&bmc, "/redfish/v1/Systems/System.Embedded.1").await.unwrap();
        assert_eq!(
            (hardware.manufacturer.as_str(), hardware.model.as_str(), hardware.serial.as_str()),
            ("Dell Inc.", "PowerEdge R650", "CN7016")
        );
        assert_eq!((hardware.bios_version.as_str(), hardware.bmc_firmware.as_str()), ("1.9.2", "6.10.30.00"));
        assert_eq!((hardware.cpus, hardware.memory_gib), (Some(64), Some(256)));
        assert_eq!(hardware.processors.unwrap().len(), 2);
        // The empty slot (Absent) is no DIMM.
        let memory = hardware.memory.unwrap();
        assert_eq!(memory.iter().map(|m| m.slot.as_str()).collect::<Vec<_>>(), ["A1", "A2", "B1", "B2"]);
        let disks = hardware.disks.unwrap();
        assert_eq!(disks.iter().filter(|d| d.media == "SSD").count(), 2);
        let nics = hardware.nics.unwrap();
        assert_eq!(nics[0].link, "LinkUp");
        assert_eq!(nics[1].mac, "b0:7b:25:de:00:02");
    }

    #[tokio::test]
    async fn a_bmc_that_stops_answering_fails_the_read_rather_than_losing_parts() {
        let bmc = recorded("rack-server-schema-shaped.json");
        let get = |path: String| {
            let bmc = &bmc;
            async move {
                if path.contains("/Memory/") {
                    return Err(BmcError::TimedOut("https://bmc".into(), 20));
                }
                let (status, body) = bmc.get(&path).cloned().unwrap_or((404, Value::Null));
                Ok(Answer { status: StatusCode::from_u16(status).unwrap(), body })
            }
        };
        let read = read(get, &bmc["/redfish/v1/Systems/System.Embedded.1"].1).await;
        assert!(matches!(read, Err(BmcError::TimedOut(..))));
    }

    #[test]
    fn drift_is_each_part_gone_new_or_different_and_only_of_parts_both_reads_tell() {
        let before = Hardware {
            bios_version: "1.9.2".into(),
            memory: Some(vec![
                MemoryModule { slot: "A1".into(), size_mib: 65536 },
                MemoryModule { slot: "A2".into(), size_mib: 65536 },
            ]),
            nics: Some(vec![Nic { id: "1".into(), mac: "b0:7b:25:de:00:01".into(), link: "LinkUp".into() }]),
            disks: None,
            ..Hardware::default()
        };
        let mut after = before.clone();
        after.bios_version = "1.10.0".into();
        after.memory.as_mut().unwrap().remove(1);
        after.nics.as_mut().unwrap()[0].link = "LinkDown".into();
        after.nics.as_mut().unwrap().push(Nic { id: "2".into(), mac: "b0:7b:25:de:00:02".into(), link: String::new() });
        after.disks = Some(vec![]);
        after.model = "PowerEdge R650".into();
        let said: Vec<String> = changes(&before, &after, "t").iter().map(|c| c.words()).collect();
        assert_eq!(
            said,
            ["BIOS version: 1.9.2 → 1.10.0", "DIMM A2: 64 GiB → absent", "NIC b0:7b:25:de:00:02: absent → present (2)"]
        );
        assert!(changes(&after, &after, "t").is_empty());
    }
}

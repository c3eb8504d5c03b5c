//! The address directory: where each member listens for peers and for clients.
//!
//! The gcs knows members only by id; the transport needs a peer address to dial, and the
//! members table shows each member's client address and weight. Members tell each other
//! with a directory frame (kind [`DIRECTORY_KIND`]) sent to a peer when its connection
//! comes up and to every peer when the directory learns something new, so a member that
//! joined through one seed soon knows (and dials) every other member. A record with a
//! higher incarnation replaces an older one. The directory is saved in the data
//! directory (`directory.toml`), so a restarted member can reach its group without
//! seeds. This module owns the records, their frame and their file; it must never
//! touch a socket.
//!
//! Directory frame body (little-endian, after the 64-byte frame header):
//!
//! ```text
//! count u32 (<= DIRECTORY_MEMBERS_MAX), then per member:
//!   member u128 · incarnation u64 · weight u8 · peer address · client address
//! address: family u8 (4 or 6) · port u16 · ip u128 (IPv4 in the low 32 bits)
//! ```

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use tutti_net::wire::body::{BodyReader, BodyWriter};
use tutti_net::wire::{encode_frame, FrameOrigin, WireError};

use super::constants::{DIRECTORY_KIND, DIRECTORY_MEMBERS_MAX, MEMBER_WEIGHT_MAX};
use super::error::GroupError;
use super::identity::{format_uuid, parse_uuid, write_atomically};

/// Name of the directory file in the data directory.
pub const DIRECTORY_FILE_NAME: &str = "directory.toml";

/// Smallest encoded record: id, incarnation, weight and two addresses.
const RECORD_BYTES_MIN: usize = 16 + 8 + 1 + 2 * 19;

/// Where one member listens.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemberAddress {
    /// The member, as a UUID string in the file.
    #[serde(with = "uuid_text")]
    pub member: u128,
    /// The incarnation that announced these addresses; a newer one replaces them.
    pub incarnation: u64,
    /// The peer listener.
    pub peer_addr: SocketAddr,
    /// The client (RESP) listener: `MEMBER_HOST` and `MEMBER_PORT` of the members table.
    pub client_addr: SocketAddr,
    /// `MEMBER_WEIGHT` (0..=100).
    pub weight: u8,
}

mod uuid_text {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(id: &u128, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&super::format_uuid(*id))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<u128, D::Error> {
        let text = String::deserialize(deserializer)?;
        super::parse_uuid(&text)
            .ok_or_else(|| serde::de::Error::custom(format!("{text:?} is not a UUID")))
    }
}

#[derive(Serialize, Deserialize, Default)]
struct DirectoryFile {
    members: Vec<MemberAddress>,
}

/// The directory of one member.
pub struct Directory {
    records: BTreeMap<u128, MemberAddress>,
    path: PathBuf,
}

impl Directory {
    /// Loads the saved directory (if any) and puts this member's own record in it.
    pub fn load(data_dir: &Path, own: MemberAddress) -> Result<Directory, GroupError> {
        let path = data_dir.join(DIRECTORY_FILE_NAME);
        let mut records = BTreeMap::new();
        match std::fs::read_to_string(&path) {
            Ok(text) => {
                let file: DirectoryFile =
                    toml::from_str(&text).map_err(|error| GroupError::DataDirContent {
                        path: path.clone(),
                        reason: format!("{error}; remove the file and give the member seeds"),
                    })?;
                for record in file.members.into_iter().take(DIRECTORY_MEMBERS_MAX) {
                    records.insert(record.member, record);
                }
            }
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
            Err(source) => return Err(GroupError::DataDir { path, source }),
        }
        records.insert(own.member, own);
        let directory = Directory { records, path };
        directory.save()?;
        Ok(directory)
    }

    /// Saves the directory.
    pub fn save(&self) -> Result<(), GroupError> {
        let file = DirectoryFile {
            members: self.records.values().cloned().collect(),
        };
        let text = toml::to_string(&file).map_err(|error| GroupError::DataDirContent {
            path: self.path.clone(),
            reason: error.to_string(),
        })?;
        write_atomically(&self.path, text.as_bytes())
    }

    /// The record of `member`.
    pub fn get(&self, member: u128) -> Option<&MemberAddress> {
        self.records.get(&member)
    }

    /// Every record.
    pub fn records(&self) -> impl Iterator<Item = &MemberAddress> {
        self.records.values()
    }

    /// Takes the records that are new or newer than the known ones; returns them.
    /// `me` is never replaced from outside.
    pub fn merge(&mut self, me: u128, incoming: Vec<MemberAddress>) -> Vec<MemberAddress> {
        let mut changed = Vec::new();
        for record in incoming {
            if record.member == me || record.member == 0 {
                continue;
            }
            let newer = match self.records.get(&record.member) {
                Some(known) => record.incarnation >= known.incarnation && *known != record,
                None => self.records.len() < DIRECTORY_MEMBERS_MAX,
            };
            if newer {
                self.records.insert(record.member, record.clone());
                changed.push(record);
            }
        }
        changed
    }

    /// Appends a directory frame with every record to `out`.
    pub fn encode_frame(&self, out: &mut Vec<u8>, origin: FrameOrigin) -> Result<usize, WireError> {
        encode_frame(out, DIRECTORY_KIND, origin, |body| {
            let mut writer = BodyWriter::new(body);
            writer.count(self.records.len());
            for record in self.records.values() {
                writer.u128(record.member);
                writer.u64(record.incarnation);
                writer.u8(record.weight);
                write_address(&mut writer, record.peer_addr);
                write_address(&mut writer, record.client_addr);
            }
        })
    }
}

fn write_address(writer: &mut BodyWriter<'_>, addr: SocketAddr) {
    let (family, ip) = match addr.ip() {
        IpAddr::V4(ip) => (4u8, u128::from(ip.to_bits())),
        IpAddr::V6(ip) => (6u8, ip.to_bits()),
    };
    writer.u8(family);
    writer.u16(addr.port());
    writer.u128(ip);
}

fn read_address(reader: &mut BodyReader<'_>, field: &'static str) -> Result<SocketAddr, WireError> {
    let family = reader.u8(field)?;
    let port = reader.u16(field)?;
    let ip = reader.u128(field)?;
    let ip = match family {
        4 => IpAddr::V4(Ipv4Addr::from_bits(u32::try_from(ip).map_err(|_| {
            WireError::Malformed {
                field,
                reason: "IPv4 address over 32 bits",
            }
        })?)),
        6 => IpAddr::V6(Ipv6Addr::from_bits(ip)),
        _ => {
            return Err(WireError::Malformed {
                field,
                reason: "address family is neither 4 nor 6",
            })
        }
    };
    Ok(SocketAddr::new(ip, port))
}

/// Decodes a directory frame's body.
pub fn decode_directory(body: &[u8]) -> Result<Vec<MemberAddress>, WireError> {
    let mut reader = BodyReader::new(body);
    let count = reader.count("directory members", DIRECTORY_MEMBERS_MAX, RECORD_BYTES_MIN)?;
    let mut records = Vec::with_capacity(count);
    for _ in 0..count {
        let member = reader.u128("member")?;
        let incarnation = reader.u64("incarnation")?;
        let weight = reader.u8("weight")?;
        if weight > MEMBER_WEIGHT_MAX {
            return Err(WireError::Malformed {
                field: "weight",
                reason: "over 100",
            });
        }
        let peer_addr = read_address(&mut reader, "peer address")?;
        let client_addr = read_address(&mut reader, "client address")?;
        records.push(MemberAddress {
            member,
            incarnation,
            peer_addr,
            client_addr,
            weight,
        });
    }
    reader.finish("Directory")?;
    Ok(records)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tutti_net::wire::decode_frame;

    fn record(member: u128, incarnation: u64) -> MemberAddress {
        MemberAddress {
            member,
            incarnation,
            peer_addr: "127.0.0.1:7000".parse().expect("addr"),
            client_addr: "[::1]:6379".parse().expect("addr"),
            weight: 50,
        }
    }

    #[test]
    fn frame_round_trips_and_file_survives_reload() {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut directory = Directory::load(dir.path(), record(1, 1)).expect("load");
        assert_eq!(
            directory.merge(1, vec![record(2, 3), record(1, 9)]),
            vec![record(2, 3)]
        );
        assert!(
            directory.merge(1, vec![record(2, 2)]).is_empty(),
            "an older incarnation is ignored"
        );
        directory.save().expect("save");
        let mut out = Vec::new();
        let origin = FrameOrigin {
            group_name: 5,
            sender: 1,
            incarnation: 1,
        };
        directory.encode_frame(&mut out, origin).expect("encode");
        let (frame, _) = decode_frame(&out).expect("valid").expect("complete");
        assert_eq!(frame.header.kind, DIRECTORY_KIND);
        assert_eq!(
            decode_directory(frame.body).expect("decodes"),
            vec![record(1, 1), record(2, 3)]
        );
        let reloaded = Directory::load(dir.path(), record(1, 2)).expect("reload");
        assert_eq!(reloaded.get(2), Some(&record(2, 3)));
        assert_eq!(reloaded.get(1), Some(&record(1, 2)));
    }

    #[test]
    fn garbage_is_refused() {
        assert!(decode_directory(&[9, 9, 9]).is_err());
        assert!(decode_directory(&[0xFF, 0xFF, 0xFF, 0xFF]).is_err());
    }
}

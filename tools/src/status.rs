//! `tutti status`: asks a member over RESP for its members table, its member stats
//! (GR's `replication_group_member_stats`) and its connection table, and prints them as
//! aligned text or as JSON. It only reads.

use std::fmt::Write as _;
use std::time::Duration;

use clap::Args;

use crate::client::{ClientError, RespClient};

/// How long status waits for the member.
const STATUS_TIMEOUT: Duration = Duration::from_secs(5);

/// `tutti status` options.
#[derive(Args, Debug)]
pub struct StatusArgs {
    /// The member's client (RESP) address.
    #[arg(long, default_value = crate::config::CLIENT_ADDRESS_DEFAULT)]
    pub addr: String,
    /// Print JSON instead of tables.
    #[arg(long)]
    pub json: bool,
}

/// A table: rows of (column, value) pairs.
pub type Table = Vec<Vec<(String, String)>>;

/// The tables `tutti status` shows.
pub struct Tables {
    /// `GROUP MEMBERS`.
    pub members: Table,
    /// `GROUP MEMBER-STATS`.
    pub member_stats: Table,
    /// `GROUP CONNECTIONS`.
    pub connections: Table,
}

/// Reads the tables from the member at `addr`.
pub fn fetch(addr: &str) -> Result<Tables, ClientError> {
    let mut client = RespClient::connect(addr, STATUS_TIMEOUT)?;
    Ok(Tables {
        members: client.table(&[b"GROUP", b"MEMBERS"])?,
        member_stats: client.table(&[b"GROUP", b"MEMBER-STATS"])?,
        connections: client.table(&[b"GROUP", b"CONNECTIONS"])?,
    })
}

/// Runs `tutti status`; returns the exit code.
pub fn run(args: &StatusArgs) -> i32 {
    match fetch(&args.addr) {
        Ok(tables) => {
            if args.json {
                let json = serde_json::json!({
                    "members": to_json(&tables.members),
                    "member_stats": to_json(&tables.member_stats),
                    "connections": to_json(&tables.connections),
                });
                println!("{json:#}");
            } else {
                println!("members of the group, as seen by {}:", args.addr);
                print!("{}", render(&tables.members));
                println!("\nmember stats of {}:", args.addr);
                print!("{}", render_vertical(&tables.member_stats));
                println!("\npeer connections of {}:", args.addr);
                print!("{}", render(&tables.connections));
            }
            0
        }
        Err(error) => {
            eprintln!("tutti status: {error}");
            1
        }
    }
}

fn to_json(table: &Table) -> serde_json::Value {
    serde_json::Value::Array(
        table
            .iter()
            .map(|row| {
                serde_json::Value::Object(
                    row.iter()
                        .map(|(k, v)| (k.clone(), serde_json::Value::String(v.clone())))
                        .collect(),
                )
            })
            .collect(),
    )
}

/// Renders a table with many columns as one `column  value` line per cell (a row per
/// block), as `\G` does in the MySQL client.
pub fn render_vertical(table: &Table) -> String {
    let width = table
        .iter()
        .flatten()
        .map(|(name, _)| name.len())
        .max()
        .unwrap_or(0);
    let mut out = String::new();
    for row in table {
        for (name, value) in row {
            let _ = writeln!(out, "{name:>width$}: {value}");
        }
    }
    if out.is_empty() {
        out.push_str("(no rows)\n");
    }
    out
}

/// Renders a table as aligned columns.
pub fn render(table: &Table) -> String {
    let Some(first) = table.first() else {
        return "(no rows)\n".to_owned();
    };
    let columns: Vec<&str> = first.iter().map(|(name, _)| name.as_str()).collect();
    let mut widths: Vec<usize> = columns.iter().map(|name| name.len()).collect();
    for row in table {
        for (index, (_, value)) in row.iter().enumerate() {
            if let Some(width) = widths.get_mut(index) {
                *width = (*width).max(value.len());
            }
        }
    }
    let line = |cells: Vec<&str>| {
        let mut text = cells
            .iter()
            .zip(&widths)
            .map(|(cell, width)| format!("{cell:<width$}"))
            .collect::<Vec<_>>()
            .join("  ");
        text.truncate(text.trim_end().len());
        text + "\n"
    };
    let mut out = line(columns.clone());
    for row in table {
        out.push_str(&line(row.iter().map(|(_, value)| value.as_str()).collect()));
    }
    out
}

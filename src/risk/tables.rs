//! The risk room's table: score snapshots per service, in time order.

use redb::TableDefinition;

use crate::store::{AnyTable, Migration};

/// (service, created µs) → snapshot JSON (a [`super::score::ServiceRisk`]).
pub const SNAPSHOTS: TableDefinition<(&str, i64), &[u8]> = TableDefinition::new("risk_snapshots");

/// Every table of this room.
pub const ALL: &[&dyn AnyTable] = &[&SNAPSHOTS];

/// Schema step 9 adds the snapshot table.
pub const MIGRATIONS: &[Migration] = &[Migration::tables_added(9, "risk score snapshots")];

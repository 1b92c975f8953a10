//! The backlog room's tables: items by id, and the stable key of each item to its id.

use redb::TableDefinition;

use crate::store::{AnyTable, Migration};

/// id → item JSON.
pub const ITEMS: TableDefinition<&str, &[u8]> = TableDefinition::new("backlog_items");
/// stable key (`risk:<service>`, …) → id.
pub const KEYS: TableDefinition<&str, &str> = TableDefinition::new("backlog_keys");

/// Every table of this room.
pub const ALL: &[&dyn AnyTable] = &[&ITEMS, &KEYS];

/// Schema step 10 adds the backlog tables.
pub const MIGRATIONS: &[Migration] = &[Migration::tables_added(10, "platform backlog items")];

//! The alerts room's tables: alerts by fingerprint, the triage queue, group membership,
//! replayed notifications, silences and per-source intake counts.

use redb::TableDefinition;

use crate::store::{AnyTable, Migration};

/// fingerprint → alert JSON (a [`super::model::Alert`]).
pub const ALERTS: TableDefinition<&str, &[u8]> = TableDefinition::new("alerts");
/// fingerprint → µs it was queued: alerts whose last change the triage has not processed.
pub const UNTRIAGED: TableDefinition<&str, i64> = TableDefinition::new("alerts_untriaged");
/// (group key, fingerprint) → µs first seen: the alerts of each group.
pub const BY_GROUP: TableDefinition<(&str, &str), i64> = TableDefinition::new("alerts_by_group");
/// sha256 of (source, notification body) → µs received: notifications already taken.
pub const NOTIFICATIONS: TableDefinition<&str, i64> = TableDefinition::new("alerts_notifications");
/// silence id → silence JSON (a [`super::model::Silence`]).
pub const SILENCES: TableDefinition<&str, &[u8]> = TableDefinition::new("alerts_silences");
/// source → intake counts JSON (a [`super::model::SourceStats`]).
pub const SOURCE_STATS: TableDefinition<&str, &[u8]> = TableDefinition::new("alerts_sources");

/// Every table of this room.
pub const ALL: &[&dyn AnyTable] = &[
    &ALERTS,
    &UNTRIAGED,
    &BY_GROUP,
    &NOTIFICATIONS,
    &SILENCES,
    &SOURCE_STATS,
];

/// Schema step 11 adds the alert tables.
pub const MIGRATIONS: &[Migration] = &[Migration::tables_added(11, "alerts and silences")];

//! The table registry: the store knows no room. Each room declares its tables and the
//! migration steps that introduced or converted them; `app` adds every room's declaration to
//! one [`Schema`], and the store creates, migrates, replays, backs up and verifies exactly the
//! tables registered there.

use redb::WriteTransaction;

use super::{AnyTable, META};
use crate::error::{Error, Result};

/// A forward migration step to `version` (from `version - 1`), run inside the open's write
/// transaction before every table is created.
#[derive(Clone, Copy)]
pub struct Migration {
    /// The schema version this step brings the file to (1 = the first schema).
    pub version: u32,
    /// What the step does, for the log line and the schema's listing.
    pub what: &'static str,
    /// The conversion (a step that only adds tables has nothing to convert).
    pub run: fn(&WriteTransaction) -> Result<()>,
}

impl Migration {
    /// A step that adds tables only: they are created empty with every other table.
    pub const fn tables_added(version: u32, what: &'static str) -> Migration {
        Migration {
            version,
            what,
            run: |_| Ok(()),
        }
    }
}

/// Every table and migration step of this build.
pub struct Schema {
    tables: Vec<&'static dyn AnyTable>,
    migrations: Vec<Migration>,
}

impl Default for Schema {
    fn default() -> Self {
        Schema::new()
    }
}

impl Schema {
    /// The store's own part: the `meta` table (schema version, creation time) and step 1.
    pub fn new() -> Schema {
        Schema {
            tables: vec![&META],
            migrations: vec![Migration::tables_added(1, "first schema")],
        }
    }

    /// Add a room's tables and migration steps.
    pub fn room(mut self, tables: &[&'static dyn AnyTable], migrations: &[Migration]) -> Schema {
        self.tables.extend_from_slice(tables);
        self.migrations.extend_from_slice(migrations);
        self.migrations.sort_by_key(|m| m.version);
        self
    }

    /// The schema version this build writes: its newest migration step.
    pub fn version(&self) -> u32 {
        self.migrations.iter().map(|m| m.version).max().unwrap_or(0)
    }

    /// Every registered table (backups copy exactly these).
    pub fn tables(&self) -> &[&'static dyn AnyTable] {
        &self.tables
    }

    /// The steps from `current` to [`Schema::version`], in order.
    pub fn steps_after(&self, current: u32) -> impl Iterator<Item = &Migration> {
        self.migrations.iter().filter(move |m| m.version > current)
    }

    /// The registered table named `name`.
    pub fn table(&self, name: &str) -> Option<&'static dyn AnyTable> {
        self.tables.iter().copied().find(|t| t.name() == name)
    }

    /// Refuse a registry two rooms would fight over: a table name twice, or migration
    /// versions that are not exactly 1, 2, … (a gap or a duplicate means two rooms claimed
    /// one version, or a step is missing).
    pub fn check(&self) -> Result<()> {
        let mut names: Vec<&str> = self.tables.iter().map(|t| t.name()).collect();
        names.sort_unstable();
        if let Some(w) = names.windows(2).find(|w| w[0] == w[1]) {
            return Err(Error::Internal(format!(
                "table {} is registered twice",
                w[0]
            )));
        }
        for (i, m) in self.migrations.iter().enumerate() {
            if m.version != i as u32 + 1 {
                return Err(Error::Internal(format!(
                    "migration steps must be numbered 1, 2, …; step {} is '{}' at version {}",
                    i + 1,
                    m.what,
                    m.version
                )));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use redb::TableDefinition;

    const A: TableDefinition<&str, u64> = TableDefinition::new("a");
    const A_AGAIN: TableDefinition<&str, &str> = TableDefinition::new("a");

    #[test]
    fn version_is_the_newest_step_and_gaps_or_duplicates_are_refused() {
        let s = Schema::new().room(&[&A], &[Migration::tables_added(2, "a")]);
        assert_eq!(s.version(), 2);
        assert!(s.check().is_ok());
        assert_eq!(s.steps_after(1).count(), 1);
        assert!(s.table("a").is_some() && s.table("b").is_none());
        let gap = Schema::new().room(&[], &[Migration::tables_added(3, "x")]);
        assert!(gap
            .check()
            .unwrap_err()
            .to_string()
            .contains("'x' at version 3"));
        let dup = Schema::new().room(&[&A], &[]).room(&[&A_AGAIN], &[]);
        assert!(dup.check().unwrap_err().to_string().contains("table a"));
    }
}

//! Artifacts: files (`json`, `md`, `txt`, at most 2 MB) written durably beside the incident,
//! their records with sha256 and size, and reading them back by sanitised name.

use super::*;

impl Incidents {
    /// Attach a json/md/txt file (≤ 2 MB). The name is sanitised; if it is taken, `-2`, `-3`…
    /// is added so stored files are never overwritten. sha256 and size are recorded.
    pub async fn attach_artifact(
        &self,
        id: &str,
        input: NewArtifact,
        actor: &str,
    ) -> Result<Artifact> {
        validate_incident_id(id)?;
        let (name, ext) = sanitize_artifact_name(&input.name)?;
        if let Some(f) = &input.format {
            let f = f.trim().to_ascii_lowercase();
            let f = if f == "markdown" { "md".to_string() } else { f };
            if f != ext {
                return Err(Error::invalid(
                    "format",
                    format!("'{f}' does not match the name's .{ext} extension"),
                ));
            }
        }
        let bytes = decode_content(&input)?;
        if bytes.len() > MAX_ARTIFACT_BYTES {
            return Err(Error::TooLarge(format!(
                "artifact is {} bytes; the limit is {MAX_ARTIFACT_BYTES}",
                bytes.len()
            )));
        }
        let text = std::str::from_utf8(&bytes).map_err(|_| {
            Error::invalid("content", format!(".{ext} artifacts must be UTF-8 text"))
        })?;
        if ext == "json" {
            serde_json::from_str::<serde::de::IgnoredAny>(text)
                .map_err(|e| Error::invalid("content", format!("not valid JSON: {e}")))?;
        }
        // Refuse early for an unknown incident, before touching the disk.
        {
            let id = id.to_string();
            self.store
                .read(
                    move |txn| match txn.open_table(INCIDENTS)?.get(id.as_str())? {
                        Some(_) => Ok(()),
                        None => Err(not_found(&id)),
                    },
                )
                .await?;
        }
        let sha = sha256_hex(&bytes);
        let size = bytes.len() as u64;
        // One attach at a time: choosing a free name and placing the file must not race.
        // The file is in place before the record commits (a crash in between leaves an
        // unreferenced file, never a record without its file); the writer thread does no I/O.
        let _guard = self.attach_lock.lock().await;
        let existing = {
            let id = id.to_string();
            self.store
                .read(move |txn| artifacts_of(&txn.open_table(ARTIFACTS)?, &id))
                .await?
        };
        let taken: HashSet<&str> = existing.iter().map(|a| a.name.as_str()).collect();
        let final_name = unique_name(&name, &ext, &taken);
        let dir = self.artifacts_dir.join(id);
        let path = dir.join(&final_name);
        {
            let (dir, path) = (dir.clone(), path.clone());
            tokio::task::spawn_blocking(move || -> Result<()> {
                std::fs::create_dir_all(&dir)?;
                let tmp = dir.join(format!(".upload-{}.tmp", random_hex(8)));
                let placed = write_synced(&tmp, &bytes).and_then(|_| {
                    // A file with that name but no record (left by a crash) is replaced.
                    std::fs::rename(&tmp, &path).map_err(Error::from)
                });
                if placed.is_err() {
                    let _ = std::fs::remove_file(&tmp);
                }
                placed?;
                sync_dir(&dir);
                Ok(())
            })
            .await
            .map_err(|e| Error::Internal(e.to_string()))??;
        }
        let now = self.clock.now();
        let art = Artifact {
            id: format!("art_{}", random_hex(8)),
            incident_id: id.to_string(),
            path: format!("{id}/{final_name}"),
            name: final_name,
            format: ext,
            sha256: sha,
            size_bytes: size,
            created_at: now,
            created_by: actor.to_string(),
        };
        let (id_s, actor_s, art_c) = (id.to_string(), actor.to_string(), art.clone());
        let result = self
            .store
            .write(move |txn| {
                touch(txn, &id_s, now)?;
                insert_artifact(txn, &art_c)?;
                let mut ev = new_event(
                    &id_s,
                    now,
                    "artifact",
                    format!("Artifact attached: {}", art_c.name),
                    json!({"artifact_id": art_c.id, "name": art_c.name, "format": art_c.format,
                           "size_bytes": art_c.size_bytes, "sha256": art_c.sha256}),
                    &actor_s,
                );
                insert_event(txn, &mut ev)?;
                // Returned so the write's audit record sizes what the caller gets back.
                Ok(art_c)
            })
            .await;
        if let Err(e) = result {
            let _ = tokio::fs::remove_file(&path).await;
            return Err(e);
        }
        self.announce(IncidentChange::Artifact, &art.incident_id, &art);
        Ok(art)
    }

    /// An artifact's metadata and bytes.
    pub async fn read_artifact(&self, id: &str, name: &str) -> Result<(Artifact, Vec<u8>)> {
        validate_incident_id(id)?;
        let (id_s, name_s) = (id.to_string(), name.to_string());
        let art = self
            .store
            .read(move |txn| {
                if txn.open_table(INCIDENTS)?.get(id_s.as_str())?.is_none() {
                    return Err(not_found(&id_s));
                }
                artifacts_of(&txn.open_table(ARTIFACTS)?, &id_s)?
                    .into_iter()
                    .find(|a| a.name == name_s || a.id == name_s)
                    .ok_or_else(|| {
                        Error::NotFound(format!(
                            "incident {id_s} has no artifact '{}'",
                            clip(&name_s, 80)
                        ))
                    })
            })
            .await?;
        let path = self.artifacts_dir.join(artifact_rel_path(&art)?);
        let bytes = tokio::fs::read(&path)
            .await
            .map_err(|e| Error::Io(format!("artifact file {}: {e}", art.path)))?;
        Ok((art, bytes))
    }
}

pub(super) fn decode_content(input: &NewArtifact) -> Result<Vec<u8>> {
    use base64::Engine as _;
    let enc = input
        .encoding
        .as_deref()
        .unwrap_or("utf8")
        .to_ascii_lowercase();
    match (&input.content, &input.content_base64) {
        (Some(_), Some(_)) => Err(Error::invalid(
            "content",
            "give content or content_base64, not both",
        )),
        (None, None) => Err(Error::invalid("content", "is required")),
        (None, Some(b64)) => base64::engine::general_purpose::STANDARD
            .decode(b64.trim())
            .map_err(|e| Error::invalid("content_base64", format!("not valid base64: {e}"))),
        (Some(c), None) => match enc.as_str() {
            "utf8" | "utf-8" | "text" => Ok(c.clone().into_bytes()),
            "base64" => base64::engine::general_purpose::STANDARD
                .decode(c.trim())
                .map_err(|e| Error::invalid("content", format!("not valid base64: {e}"))),
            other => Err(Error::invalid(
                "encoding",
                format!("'{}' is not utf8 or base64", clip(other, 20)),
            )),
        },
    }
}

/// `name`, or `stem-2.ext`, `stem-3.ext` … when taken. The stem is shortened so the result
/// still fits the name rule (at most [`MAX_STEM`] characters before the extension): a name
/// the rule would cut differently could not be found again by backup and export.
pub(super) fn unique_name(name: &str, ext: &str, taken: &HashSet<&str>) -> String {
    if !taken.contains(name) {
        return name.to_string();
    }
    let stem = name.strip_suffix(&format!(".{ext}")).unwrap_or(name);
    let with = |suffix: String| {
        let keep = MAX_STEM.saturating_sub(suffix.len() + 1);
        let short: String = stem.chars().take(keep).collect();
        format!("{short}-{suffix}.{ext}")
    };
    (2..10_000)
        .map(|n| with(n.to_string()))
        .find(|c| !taken.contains(c.as_str()))
        .unwrap_or_else(|| with(random_hex(4)))
}

/// The longest artifact name stem [`sanitize_artifact_name`] keeps.
const MAX_STEM: usize = 100;

/// Whether a stored name is safe to join to a folder: the characters and extension the name
/// rule allows, no leading dot, bounded. (Not "equal to its sanitised form": names stored
/// before the stem rule was applied to `-N` suffixes are up to a few characters longer.)
fn safe_stored_name(name: &str) -> bool {
    let chars_ok = !name.is_empty()
        && name.len() <= MAX_STEM + 16
        && !name.starts_with('.')
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    chars_ok
        && name.rsplit_once('.').is_some_and(|(stem, ext)| {
            !stem.is_empty() && crate::incidents::model::ARTIFACT_FORMATS.contains(&ext)
        })
}

/// Where an artifact's file lives, relative to the artifacts folder: rebuilt from the
/// incident id and the (sanitised) name, never taken from the stored `path`, so a record
/// from an untrusted backup or import cannot point outside the folder.
pub fn artifact_rel_path(a: &Artifact) -> Result<PathBuf> {
    let safe = validate_incident_id(&a.incident_id).is_ok() && safe_stored_name(&a.name);
    if !safe {
        return Err(Error::Storage(format!(
            "artifact {} has an unsafe incident id or name",
            clip(&a.id, 60)
        )));
    }
    Ok(Path::new(&a.incident_id).join(&a.name))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn art(incident_id: &str, name: &str) -> Artifact {
        Artifact {
            id: "art_x".into(),
            incident_id: incident_id.into(),
            name: name.into(),
            format: "md".into(),
            path: "../../../../etc/passwd".into(),
            sha256: String::new(),
            size_bytes: 0,
            created_at: time::OffsetDateTime::UNIX_EPOCH,
            created_by: "x".into(),
        }
    }

    #[test]
    fn artifact_files_are_located_from_id_and_name_never_the_stored_path() {
        let ok = artifact_rel_path(&art("inc_20260101_0000_abc", "pm.md")).unwrap();
        assert_eq!(ok, Path::new("inc_20260101_0000_abc").join("pm.md"));
        assert!(artifact_rel_path(&art("inc_20260101_0000_abc", "../x.md")).is_err());
        assert!(artifact_rel_path(&art("/etc", "pm.md")).is_err());
    }

    #[test]
    fn unique_names_count_up() {
        let taken: HashSet<&str> = ["a.md", "a-2.md"].into_iter().collect();
        assert_eq!(unique_name("a.md", "md", &taken), "a-3.md");
        assert_eq!(unique_name("b.md", "md", &taken), "b.md");
    }

    #[test]
    fn a_suffixed_long_name_still_fits_the_name_rule_and_is_found_again() {
        let long = format!("{}.md", "a".repeat(100));
        assert_eq!(sanitize_artifact_name(&long).unwrap().0, long);
        let taken: HashSet<&str> = [long.as_str()].into_iter().collect();
        let second = unique_name(&long, "md", &taken);
        assert_eq!(second, format!("{}-2.md", "a".repeat(98)));
        assert_eq!(sanitize_artifact_name(&second).unwrap().0, second);
        assert!(artifact_rel_path(&art("inc_20260101_0000_abc", &second)).is_ok());
        // A name stored by the old rule (stem 100 + "-2") is still located.
        let legacy = format!("{}-2.md", "a".repeat(100));
        assert!(artifact_rel_path(&art("inc_20260101_0000_abc", &legacy)).is_ok());
        for bad in [".md", ".hidden.md", "x.exe", "a/b.md", "a\\b.md", "noext"] {
            assert!(
                artifact_rel_path(&art("inc_20260101_0000_abc", bad)).is_err(),
                "{bad}"
            );
        }
    }
}

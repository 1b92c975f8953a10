// Pieces shared by the incident views.

/** The incident id an event envelope concerns, if any. */
export function incidentIdOf(ev) {
  const d = ev && ev.data;
  if (!d) return null;
  if (d.incident && d.incident.id) return d.incident.id;
  if (d.event && d.event.incident_id) return d.event.incident_id;
  if (d.artifact && d.artifact.incident_id) return d.artifact.incident_id;
  return null;
}

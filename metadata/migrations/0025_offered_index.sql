-- An operator's recent calls include those offered to them: the
-- timeline's offered events, found by the operator they name.
CREATE INDEX call_events_offered_idx ON call_events (tenant_id, (detail->>'operator_id')) WHERE type = 'offered';

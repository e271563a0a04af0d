-- Placeholder on the invitations branch only: 0012 belongs to issue 16 (organisations),
-- merged from its own branch; the loader refuses gaps in the numbering. Delete this file
-- when that migration is merged.
SELECT 1;

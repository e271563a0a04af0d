-- Placeholder on branch whatsapp only, so that its 0014 loads without a gap: issue 17's
-- branch brings the real 0013. DELETE THIS FILE when merging that branch.
SELECT 1;

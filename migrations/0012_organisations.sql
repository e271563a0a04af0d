-- Organisations (issue 16): several forces in one département, each issuing, approving and
-- seeing its own alerts. An alert belongs to the organisation of the operator who issued it
-- (a mayor's message: the organisation covering the mayor's commune); a role granted at run
-- time belongs to the organisation of the admin who granted it. The organisations
-- themselves live in the configuration; 'defaut' is the implicit one of a configuration
-- without organisations, which every row written before this migration joins.
ALTER TABLE alerts ADD COLUMN organisation TEXT NOT NULL DEFAULT 'defaut';
CREATE INDEX alerts_organisation ON alerts (organisation, id);
ALTER TABLE granted_roles ADD COLUMN organisation TEXT NOT NULL DEFAULT 'defaut';

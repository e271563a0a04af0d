-- Recipient resolution starts from the alert's communes and communities and looks up
-- subscribers from there; these indexes make that a join instead of a scan.
CREATE INDEX subscriber_communities_community ON subscriber_communities (community, subscriber_id);
CREATE INDEX group_communities_community ON group_communities (community, group_id);

-- 0085: one form of who did something, in the rows written before it was
-- one.  An API token's actor is now "token:<name>#<id>" (auth_actor: the
-- name to read, the id since names repeat).  Earlier servers wrote
-- "token:<id>" (rules, alerts, datasets, models, deployments) and
-- "token:<name>" (labels), so a list of who made what mixed three forms.
-- Rewritten here where the token is known without doubt: the id form by
-- the token of that id; the name form only when one token has that name.
-- Left as written: a name several tokens share, a token deleted since,
-- a login whose username happens to read like a token actor, and the
-- label audit trail (a record of what was written, not a list to read).
DO $$
DECLARE
    col record;
BEGIN
    FOR col IN SELECT * FROM (VALUES
            ('labels', 'created_by', false), ('labels', 'updated_by', false),
            ('rules', 'created_by', true),
            ('alert_dispositions', 'acknowledged_by', true),
            ('alert_dispositions', 'disposed_by', true),
            ('datasets', 'created_by', true), ('dataset_versions', 'created_by', true),
            ('export_jobs', 'created_by', true), ('models', 'created_by', true),
            ('model_deployments', 'created_by', true), ('alarm_budget', 'updated_by', true))
            AS t (tab, name, by_id)
    LOOP
        IF col.by_id THEN
            EXECUTE format(
                'UPDATE %1$I x SET %2$I = ''token:'' || k.name || ''#'' || k.id FROM api_tokens k'
                ' WHERE x.%2$I ~ ''^token:[0-9]{1,18}$'' AND k.id = substr(x.%2$I, 7)::bigint'
                ' AND NOT EXISTS (SELECT 1 FROM users u WHERE u.username = x.%2$I)',
                col.tab, col.name);
        END IF;
        EXECUTE format(
            'UPDATE %1$I x SET %2$I = ''token:'' || k.name || ''#'' || k.id FROM api_tokens k'
            ' WHERE x.%2$I LIKE ''token:%%'' AND position(''#'' IN x.%2$I) = 0'
            ' AND k.name = substr(x.%2$I, 7) AND NOT (%3$L AND x.%2$I ~ ''^token:[0-9]+$'')'
            ' AND (SELECT count(*) FROM api_tokens k2 WHERE k2.name = k.name) = 1'
            ' AND NOT EXISTS (SELECT 1 FROM users u WHERE u.username = x.%2$I)',
            col.tab, col.name, col.by_id);
    END LOOP;
END
$$;

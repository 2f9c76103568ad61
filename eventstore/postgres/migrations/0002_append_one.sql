-- ALTER: databases migrated before es_field was declared STABLE.
ALTER FUNCTION es_field(text) STABLE;

-- es_append_one is es_append for the common single-request append, with fewer
-- statements: a new stream gets its row after its events, so its creation
-- takes no extra tuple. Two appends creating one stream at once collide on
-- the unique (stream_id, stream_version) index; the Go side retries the loser.
CREATE FUNCTION es_append_one(
    p_stream text, p_expected bigint,
    p_ids uuid[], p_types text[], p_subjects text[], p_partners text[],
    p_actor_ids text[], p_actor_emails text[], p_correlations text[], p_causations text[],
    p_recorded timestamptz[], p_micros bigint[], p_data bytea[], p_claims text[],
    OUT r_version bigint, OUT r_first bigint, OUT r_last bigint)
LANGUAGE plpgsql
AS $$
DECLARE
    nev   int := coalesce(cardinality(p_ids), 0);
    v     bigint;
    h     bytea;
    ph    bytea;
    isnew boolean := false;
    k     int;
    pos   bigint;
    owner text;
BEGIN
    PERFORM pg_current_xact_id(); -- before any position; see es_append
    SELECT st.version, st.last_hash INTO v, h FROM streams st WHERE st.stream_id = p_stream FOR UPDATE;
    IF NOT FOUND THEN
        v := 0; h := ''::bytea; isnew := true;
    END IF;
    IF nev > 0 AND v > 0 AND EXISTS (SELECT 1 FROM events WHERE event_id = p_ids[1]) THEN
        IF (SELECT count(*) FROM events WHERE event_id = ANY (p_ids)) = nev THEN
            SELECT max(e.stream_version), min(e.position), max(e.position) INTO r_version, r_first, r_last
            FROM events e WHERE e.event_id = ANY (p_ids);
            RETURN;
        END IF;
    END IF;
    IF p_expected <> -1 AND p_expected <> v THEN
        RAISE EXCEPTION USING ERRCODE = 'ES409', MESSAGE = 'eventstore: wrong expected version', DETAIL = v::text, HINT = '1';
    END IF;
    IF cardinality(p_claims) > 0 THEN
        FOR k IN 1 .. cardinality(p_claims) LOOP
            INSERT INTO claims (claim, stream_id) VALUES (p_claims[k], p_stream) ON CONFLICT DO NOTHING;
            IF NOT FOUND THEN
                SELECT c.stream_id INTO owner FROM claims c WHERE c.claim = p_claims[k];
                IF owner IS DISTINCT FROM p_stream THEN
                    RAISE EXCEPTION USING ERRCODE = 'ES423', MESSAGE = 'eventstore: claim taken', DETAIL = p_claims[k];
                END IF;
            END IF;
        END LOOP;
    END IF;
    r_first := 0; r_last := 0;
    FOR k IN 1 .. nev LOOP
        v := v + 1;
        ph := h;
        h := sha256(ph
            || es_field(p_ids[k]::text) || es_field(p_stream) || es_field(v::text)
            || es_field(p_types[k]) || es_field(p_subjects[k]) || es_field(p_partners[k])
            || es_field(p_actor_ids[k]) || es_field(p_actor_emails[k])
            || es_field(p_correlations[k]) || es_field(p_causations[k])
            || es_field(p_micros[k]::text)
            || int8send(octet_length(p_data[k])::bigint) || p_data[k]);
        INSERT INTO events (event_id, stream_id, stream_version, type, subject, partner_id,
            actor_id, actor_email, correlation_id, causation_id, recorded_at, data, prev_hash, hash)
        VALUES (p_ids[k], p_stream, v, p_types[k], p_subjects[k], p_partners[k],
            p_actor_ids[k], p_actor_emails[k], p_correlations[k], p_causations[k],
            p_recorded[k], p_data[k], ph, h)
        RETURNING position INTO pos;
        IF r_first = 0 THEN r_first := pos; END IF;
        r_last := pos;
    END LOOP;
    IF isnew THEN
        INSERT INTO streams (stream_id, version, last_hash) VALUES (p_stream, v, h);
    ELSIF nev > 0 THEN
        UPDATE streams SET version = v, last_hash = h WHERE stream_id = p_stream;
    END IF;
    r_version := v;
END;
$$;

-- The event log. position is the global order; the sequence has CACHE 1 so
-- positions are handed out in time order across sessions, which the gap rule
-- in read.go relies on.
CREATE TABLE events (
    position       bigint GENERATED ALWAYS AS IDENTITY (CACHE 1) PRIMARY KEY,
    event_id       uuid   NOT NULL UNIQUE,
    stream_id      text   NOT NULL,
    stream_version bigint NOT NULL,
    type           text   NOT NULL,
    subject        text   NOT NULL,
    partner_id     text   NOT NULL,
    actor_id       text   NOT NULL,
    actor_email    text   NOT NULL,
    correlation_id text   NOT NULL,
    causation_id   text   NOT NULL,
    recorded_at    timestamptz NOT NULL,
    data           bytea  NOT NULL, -- the bytes given, unchanged: they are hashed
    prev_hash      bytea  NOT NULL,
    hash           bytea  NOT NULL,
    UNIQUE (stream_id, stream_version)
);
CREATE INDEX events_partner_position ON events (partner_id, position);
CREATE INDEX events_type_position ON events (type, position);

-- One row per stream: its row lock serializes appends to that stream only.
CREATE TABLE streams (
    stream_id text   PRIMARY KEY,
    version   bigint NOT NULL DEFAULT 0,
    last_hash bytea  NOT NULL DEFAULT ''::bytea
);

CREATE TABLE claims (
    claim     text PRIMARY KEY,
    stream_id text NOT NULL
);

CREATE TABLE checkpoints (
    name     text   PRIMARY KEY,
    position bigint NOT NULL
);

-- es_field is one length-prefixed field of eventstore.ChainHash. STABLE, as
-- convert_to is: only then does the planner inline it (a called SQL function
-- costs microseconds, eleven times per event).
CREATE FUNCTION es_field(x text) RETURNS bytea
LANGUAGE sql STABLE STRICT PARALLEL SAFE
RETURN int8send(octet_length(convert_to(x, 'UTF8'))::bigint) || convert_to(x, 'UTF8');

-- es_stored_results answers a retried append from the stored events.
CREATE FUNCTION es_stored_results(p_streams text[], p_req int[], p_ids uuid[])
RETURNS TABLE (r_stream text, r_version bigint, r_first bigint, r_last bigint)
LANGUAGE sql STABLE
AS $$
    SELECT p_streams[q.i],
           coalesce(max(e.stream_version), (SELECT s.version FROM streams s WHERE s.stream_id = p_streams[q.i]), 0),
           coalesce(min(e.position), 0),
           coalesce(max(e.position), 0)
    FROM generate_series(1, cardinality(p_streams)) AS q(i)
    LEFT JOIN unnest(p_req, p_ids) AS u(req, id) ON u.req = q.i
    LEFT JOIN events e ON e.event_id = u.id
    GROUP BY q.i
    ORDER BY q.i
$$;

-- es_append appends to one or more streams in one round trip. Requests are
-- arrays (p_streams, p_expected); events are flattened with p_req naming
-- their request (1-based); claims likewise with p_claim_req. A wrong expected
-- version raises ES409 (DETAIL actual version, HINT request number); a taken
-- claim raises ES423 (DETAIL the claim). Versions and claims are checked
-- before any position is taken, so a failed append leaves no gap.
CREATE FUNCTION es_append(
    p_streams text[], p_expected bigint[],
    p_req int[], p_ids uuid[], p_types text[], p_subjects text[], p_partners text[],
    p_actor_ids text[], p_actor_emails text[], p_correlations text[], p_causations text[],
    p_recorded timestamptz[], p_micros bigint[], p_data bytea[],
    p_claim_req int[], p_claims text[])
RETURNS TABLE (r_stream text, r_version bigint, r_first bigint, r_last bigint)
LANGUAGE plpgsql
AS $$
DECLARE
    nreq   int := cardinality(p_streams);
    nev    int := coalesce(cardinality(p_ids), 0);
    ncl    int := coalesce(cardinality(p_claims), 0);
    starts bigint[] := '{}';
    s      text;
    v      bigint;
    h      bytea;
    ph     bytea;
    q      int;
    k      int;
    j      int;
    cnt    int;
    ver    bigint;
    pos    bigint;
    owner  text;
BEGIN
    -- The xid must exist before any position is taken: readers treat a
    -- missing position as possibly in flight only while some transaction
    -- that was running when they looked may hold it.
    PERFORM pg_current_xact_id();

    -- Lock every stream row in one global order (bytewise), creating
    -- missing ones, so concurrent multi-stream appends cannot deadlock.
    FOR s IN SELECT DISTINCT x COLLATE "C" FROM unnest(p_streams) AS x ORDER BY 1 LOOP
        PERFORM 1 FROM streams WHERE stream_id = s FOR UPDATE;
        IF NOT FOUND THEN
            INSERT INTO streams (stream_id) VALUES (s) ON CONFLICT DO NOTHING;
            PERFORM 1 FROM streams WHERE stream_id = s FOR UPDATE;
        END IF;
    END LOOP;

    -- A retry of an append that is fully stored returns the stored results.
    -- Checked under the locks, so a concurrent duplicate sees the winner.
    IF nev > 0 AND EXISTS (SELECT 1 FROM events WHERE event_id = p_ids[1]) THEN
        IF (SELECT count(*) FROM events WHERE event_id = ANY (p_ids)) = nev THEN
            RETURN QUERY SELECT * FROM es_stored_results(p_streams, p_req, p_ids);
            RETURN;
        END IF;
    END IF;

    -- Pass 1: expected versions and claims, before taking any position.
    FOR q IN 1 .. nreq LOOP
        SELECT st.version INTO v FROM streams st WHERE st.stream_id = p_streams[q];
        IF p_expected[q] <> -1 AND p_expected[q] <> v THEN
            RAISE EXCEPTION USING ERRCODE = 'ES409', MESSAGE = 'eventstore: wrong expected version',
                DETAIL = v::text, HINT = q::text;
        END IF;
        starts := starts || v;
        cnt := 0;
        FOR k IN 1 .. nev LOOP
            IF p_req[k] = q THEN cnt := cnt + 1; END IF;
        END LOOP;
        UPDATE streams SET version = v + cnt WHERE stream_id = p_streams[q];
        FOR j IN 1 .. ncl LOOP
            IF p_claim_req[j] = q THEN
                INSERT INTO claims (claim, stream_id) VALUES (p_claims[j], p_streams[q]) ON CONFLICT DO NOTHING;
                IF NOT FOUND THEN
                    SELECT c.stream_id INTO owner FROM claims c WHERE c.claim = p_claims[j];
                    IF owner IS DISTINCT FROM p_streams[q] THEN
                        RAISE EXCEPTION USING ERRCODE = 'ES423', MESSAGE = 'eventstore: claim taken',
                            DETAIL = p_claims[j];
                    END IF;
                END IF;
            END IF;
        END LOOP;
    END LOOP;

    -- Pass 2: write the events, chaining hashes per stream.
    k := 1;
    FOR q IN 1 .. nreq LOOP
        SELECT st.last_hash INTO h FROM streams st WHERE st.stream_id = p_streams[q];
        ver := starts[q];
        r_first := 0;
        r_last := 0;
        WHILE k <= nev AND p_req[k] = q LOOP
            ver := ver + 1;
            ph := h;
            h := sha256(ph
                || es_field(p_ids[k]::text) || es_field(p_streams[q]) || es_field(ver::text)
                || es_field(p_types[k]) || es_field(p_subjects[k]) || es_field(p_partners[k])
                || es_field(p_actor_ids[k]) || es_field(p_actor_emails[k])
                || es_field(p_correlations[k]) || es_field(p_causations[k])
                || es_field(p_micros[k]::text)
                || int8send(octet_length(p_data[k])::bigint) || p_data[k]);
            INSERT INTO events (event_id, stream_id, stream_version, type, subject, partner_id,
                actor_id, actor_email, correlation_id, causation_id, recorded_at, data, prev_hash, hash)
            VALUES (p_ids[k], p_streams[q], ver, p_types[k], p_subjects[k], p_partners[k],
                p_actor_ids[k], p_actor_emails[k], p_correlations[k], p_causations[k],
                p_recorded[k], p_data[k], ph, h)
            RETURNING position INTO pos;
            IF r_first = 0 THEN r_first := pos; END IF;
            r_last := pos;
            k := k + 1;
        END LOOP;
        UPDATE streams SET last_hash = h WHERE stream_id = p_streams[q];
        r_stream := p_streams[q];
        r_version := ver;
        RETURN NEXT;
    END LOOP;
END;
$$;

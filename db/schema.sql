-- xling results database.
-- @version 8
--
-- The database is a cache. The source of truth is the folder beside it
-- (<name>.runs/: runs/<run_id>/spec.json + events.jsonl, experiments/<name>.json);
-- `xling` ingests what is new in bulk whenever it can get the write lock, and the
-- whole file can be rebuilt from the folder. Hence no foreign keys: a log's events
-- may be ingested before its spec, and deleting a run folder deletes its rows.
--
-- Times are TIMESTAMP (without time zone) in UTC. Bump the @version line above
-- whenever a table or column changes; xling refuses a file from a newer xling and
-- rebuilds one from an older xling (it is only a cache).

CREATE TABLE schema_version (
    version INTEGER NOT NULL,    -- the @version of the schema.sql that built this file
    created TIMESTAMP NOT NULL   -- when this file was (re)built, UTC
);
COMMENT ON TABLE schema_version IS 'Version of the xling schema this file was built with.';

CREATE TABLE experiments (
    name        VARCHAR PRIMARY KEY,  -- experiment name (experiments/<name>.json)
    description VARCHAR,
    source      VARCHAR,              -- the TOML file the experiment was defined in
    config      JSON,                 -- the whole experiment configuration
    updated     TIMESTAMP,            -- modification time of experiments/<name>.json, UTC
    run_ids     VARCHAR[],            -- the runs its current definition expands to; older runs of the
                                      -- same name (an edited spec) stay in `runs` but leave the report
    members     STRUCT(run_id VARCHAR, name VARCHAR, kind VARCHAR, point JSON)[]
                                      -- the same runs with their name, kind and sweep point in this
                                      -- experiment (a run can belong to many); NULL in files older than that
);
COMMENT ON TABLE experiments IS 'Experiment definitions seen by xling, one row per experiments/<name>.json.';

CREATE TABLE runs (
    run_id       VARCHAR PRIMARY KEY, -- the run folder's name
    experiment   VARCHAR,             -- experiments.name
    name         VARCHAR,             -- the run's name within its experiment
    kind         VARCHAR,             -- 'baseline' or 'mix'
    status       VARCHAR,             -- last status-carrying event: queued, running, done, failed, cancelled; NULL before the first one
    spec         JSON,                -- the whole spec.json
    model        VARCHAR,             -- model preset name
    seed         BIGINT,
    languages    VARCHAR[],           -- training languages, e.g. ['EN1', 'EN2']
    device       VARCHAR,             -- from the latest 'started' event
    host         VARCHAR,             -- from the latest 'started' event
    pid          INTEGER,             -- worker process id (latest 'started' or heartbeat)
    job_id       VARCHAR,             -- scheduler job id (Slurm job, Ray task) of the latest 'submitted' event; NULL after a 'queued' one
    backend      VARCHAR,             -- where the launcher sent it: local, slurm, ray (latest 'submitted' event; NULL after a 'queued' one)
    job_state    VARCHAR,             -- the scheduler's word on that job when last asked: SUBMITTED, 'PENDING (Priority)', RUNNING ... (latest 'job_state' event about it; NULL after a 'queued' one)
    queued       TIMESTAMP,           -- first 'queued' event
    started      TIMESTAMP,           -- first 'started' event (a resumed run keeps it)
    finished     TIMESTAMP,           -- time of the terminal status; NULL unless status is done/failed/cancelled
    last_seen    TIMESTAMP,           -- newest event of any kind (a stale value with status 'running' hints at a dead worker)
    step         BIGINT,              -- latest step reported (train, heartbeat, status, or the resume point)
    total_steps  BIGINT,
    tokens       BIGINT,              -- training tokens seen so far (latest train metric)
    total_tokens BIGINT,
    message      VARCHAR,             -- message of the last status event (e.g. the error of a failed run)
    run_dir      VARCHAR,             -- absolute path of the run folder
    tags         VARCHAR[],           -- the user's tags (run folder's annotations.json, set in xling-tui)
    note         VARCHAR              -- the user's note on the run (annotations.json)
);
COMMENT ON TABLE runs IS 'One row per run folder: its spec plus the latest state from its event log.';

-- A run is what it computes, so one run can belong to several experiments (and points of a
-- sweep): this view has one row per (experiment, run) of each experiment's current
-- definition, the run's columns with its name and kind in that experiment, and its point.
-- Experiments whose file lists no members use run_ids; runs whose experiment file is gone
-- stay with the experiment that made them.
CREATE VIEW member_runs AS
WITH m AS (
    SELECT experiment, m.run_id, m.name AS member_name, m.kind AS member_kind, m.point
    FROM (SELECT name AS experiment, unnest(members) AS m FROM experiments WHERE members IS NOT NULL)
    UNION ALL BY NAME
    SELECT name AS experiment, unnest(run_ids) AS run_id FROM experiments WHERE members IS NULL
    UNION ALL BY NAME
    SELECT experiment, run_id FROM runs
    WHERE experiment IS NOT NULL AND experiment NOT IN (SELECT name FROM experiments)
)
SELECT r.* REPLACE (m.experiment AS experiment, coalesce(m.member_name, r.name) AS name,
                    coalesce(m.member_kind, r.kind) AS kind),
       m.point
FROM m JOIN runs r USING (run_id);
COMMENT ON VIEW member_runs IS 'Runs as each experiment sees them: one row per (experiment, run).';

CREATE TABLE train_metrics (
    run_id       VARCHAR NOT NULL,
    step         BIGINT NOT NULL,
    tokens       BIGINT,                -- training tokens seen at this step
    lr           DOUBLE,
    loss         DOUBLE,                -- mean training loss since the previous metric
    lang_loss    MAP(VARCHAR, DOUBLE),  -- the same per language: lang_loss['EN1']
    tokens_per_s DOUBLE,
    time         TIMESTAMP,
    PRIMARY KEY (run_id, step)          -- a resumed run's re-emitted steps replace the old ones
);
COMMENT ON TABLE train_metrics IS 'Training loss curve: one row per (run, step) train event; later events for a step replace earlier ones.';

CREATE TABLE evals (
    run_id    VARCHAR NOT NULL,
    step      BIGINT NOT NULL,
    tokens    BIGINT,
    language  VARCHAR NOT NULL,
    loss      DOUBLE,     -- mean token cross-entropy (nats)
    ppl       DOUBLE,     -- token perplexity
    char_ppl  DOUBLE,     -- per-character perplexity, comparable across tokenizers
    accuracy  DOUBLE,     -- next-token accuracy
    n_tokens  BIGINT,     -- evaluation tokens behind these numbers
    time      TIMESTAMP,
    PRIMARY KEY (run_id, step, language)
);
COMMENT ON TABLE evals IS 'Held-out evaluations: one row per (run, step, language); later events replace earlier ones.';

CREATE TABLE ingest_state (
    run_id      VARCHAR PRIMARY KEY,
    byte_offset BIGINT NOT NULL  -- bytes of runs/<run_id>/events.jsonl already ingested (always just past a newline)
);
COMMENT ON TABLE ingest_state IS 'How far each event log has been ingested; committed together with the rows it produced.';

-- Alignment of a run's languages (engine.alignment), at the end of training and at
-- any checkpoint that asked for it. lang_a is the run's first language.

CREATE TABLE align_embeddings (
    run_id     VARCHAR NOT NULL,
    step       BIGINT NOT NULL,
    tokens     BIGINT,
    matrix     VARCHAR NOT NULL,  -- 'input' (token embedding) or 'output' (output layer rows)
    lang_a     VARCHAR NOT NULL,
    lang_b     VARCHAR NOT NULL,
    similarity DOUBLE,            -- mean cosine of equivalent rows (anchors excluded)
    control    DOUBLE,            -- mean cosine over all row pairs: the anisotropy baseline
    n_ids      BIGINT,
    n_anchors  BIGINT,            -- shared ids left out
    bins       JSON,              -- by training count of the rarer copy: [{lo, hi, n, similarity, control}]
    time       TIMESTAMP,
    PRIMARY KEY (run_id, step, matrix, lang_a, lang_b)
);
COMMENT ON TABLE align_embeddings IS 'Embedding similarity of equivalent subwords vs the all-pairs control.';

CREATE TABLE align_hidden (
    run_id      VARCHAR NOT NULL,
    step        BIGINT NOT NULL,
    tokens      BIGINT,
    lang_a      VARCHAR NOT NULL,
    lang_b      VARCHAR NOT NULL,
    layer       BIGINT NOT NULL,  -- 0 = embedding output, k = residual stream after block k
    similarity  DOUBLE,           -- per-token cosine of equivalent/parallel sequences, averaged
    n_sequences BIGINT,
    time        TIMESTAMP,
    PRIMARY KEY (run_id, step, lang_a, lang_b, layer)
);
COMMENT ON TABLE align_hidden IS 'Hidden-state similarity per layer (the paper''s Table 2).';

CREATE TABLE align_gradients (
    run_id     VARCHAR NOT NULL,
    step       BIGINT NOT NULL,
    tokens     BIGINT,
    lang_a     VARCHAR NOT NULL,
    lang_b     VARCHAR NOT NULL,
    tensor     VARCHAR NOT NULL,  -- named parameter tensor of the blocks
    similarity DOUBLE,            -- cosine of the two languages' gradients
    time       TIMESTAMP,
    PRIMARY KEY (run_id, step, lang_a, lang_b, tensor)
);
COMMENT ON TABLE align_gradients IS 'Gradient similarity per parameter tensor; the summary is avg(similarity).';

-- Derived by db.analysis whenever a run finishes (recomputed, never appended): the laws,
-- TEff against them, and the seed summaries (db.summary).

CREATE TABLE scaling_fits (
    experiment  VARCHAR NOT NULL,   -- an experiment that uses this law (the same law is listed for each)
    law_key     VARCHAR NOT NULL,   -- engine.config.spec.law_key: model, data, tokenizer, training settings
                                    -- other than length, evaluation; every finished baseline with this key
                                    -- and language is a point, whichever experiment asked for it
    model       VARCHAR NOT NULL,
    language    VARCHAR NOT NULL,   -- the language of the monolingual runs fitted
    form        VARCHAR,            -- 'paper' (1/PPL = c - a x^-b) or 'power' (PPL = k x^-b)
    params      JSON,               -- {a, b, c} or {k, b}
    budget      DOUBLE,             -- the scale of x = tokens / budget (the largest point: laws are in absolute tokens)
    n_points    BIGINT,
    token_min   DOUBLE,
    token_max   DOUBLE,
    residuals   DOUBLE[],           -- log(PPL_fit) - log(PPL) per point, in run_ids order
    run_ids     VARCHAR[],
    warnings    VARCHAR[],
    error       VARCHAR,            -- why there is no fit (too few baselines, ...); params NULL then
    law         JSON,               -- the whole fit, for engine.scaling.ScalingLaw.from_dict
    bootstrap   JSON,               -- the law's error: replicate fits to its resampled baselines
                                    -- (engine.analysis.scaling.LawBootstrap: params, df = runs - parameters)
    updated     TIMESTAMP,
    PRIMARY KEY (experiment, law_key, language)
);
COMMENT ON TABLE scaling_fits IS 'Monolingual scaling laws, pooled by law key and language, per experiment that uses them.';

CREATE TABLE teff (
    run_id       VARCHAR NOT NULL,
    language     VARCHAR NOT NULL,
    step         BIGINT NOT NULL,
    experiment   VARCHAR,
    law_key      VARCHAR,          -- which law (scaling_fits.law_key)
    law_language VARCHAR,          -- whose law was used (clones share the first language's)
    tokens_seen  BIGINT,           -- t_A: exact tokens the run saw in this language by this step
    ppl          DOUBLE,
    mlte         DOUBLE,           -- tokens a monolingual model needs for this PPL (NULL if impossible)
    mlte_lo      DOUBLE,           -- 95% interval of mlte from the law's error (bootstrap over the baseline
    mlte_hi      DOUBLE,           -- runs); NULL when unknown (as many baselines as parameters); hi may be inf
    mlte_status  VARCHAR,          -- inside | above | below | impossible
    mlpe         DOUBLE,           -- PPL a monolingual model reaches on tokens_seen
    mlpe_lo      DOUBLE,           -- 95% interval of mlpe from the law's error
    mlpe_hi      DOUBLE,
    mlpe_status  VARCHAR,
    teff         DOUBLE,           -- mlte / tokens_seen
    teff_lo      DOUBLE,           -- 95% interval of teff from the law's error (this run's PPL taken as measured)
    teff_hi      DOUBLE,
    law_wide     BOOLEAN,          -- teff_hi / teff_lo > 2: the law is too uncertain to answer
    teff_status  VARCHAR,
    teff_mark    VARCHAR,          -- how the report prints it ('>2.10' for an extrapolation)
    PRIMARY KEY (run_id, language, step)
);
COMMENT ON TABLE teff IS 'Token efficiency of every evaluation against its experiment''s scaling law.';

CREATE TABLE summary (
    experiment  VARCHAR NOT NULL,
    name        VARCHAR NOT NULL,  -- schedule or baseline name: one mix, over its seeds
    kind        VARCHAR,           -- 'baseline' or 'mix'
    measure     VARCHAR NOT NULL,  -- ppl, teff, embedding_similarity, embedding_control, hidden_similarity,
                                   -- gradient_similarity, probe_accuracy, probe_chance
    language    VARCHAR NOT NULL,  -- the language; a pair 'EN1–EN2' for alignment measures
    detail      VARCHAR NOT NULL,  -- '' or what part: input/output (embeddings), layer (hidden; 0 = embeddings),
                                   -- 'mean' or a component (gradients), '<task> (fine-tuned in <lang>)' (probes)
    scale       VARCHAR,           -- 'log': geometric mean, interval on log values; 'linear'
    mean        DOUBLE,            -- over seeds (NULL when no seed has a value: a TEff below the asymptote)
    lo          DOUBLE,            -- 95% interval; NULL with one seed (or a law whose error is unknown)
    hi          DOUBLE,
    n           BIGINT,            -- seeds with a value
    seeds       BIGINT[],          -- those seeds, ascending
    seed_values DOUBLE[],          -- their values, in the same order
    method      VARCHAR,           -- how the interval was made, e.g. 't, log scale, + law bootstrap'
    wide        BOOLEAN,           -- a log-scale interval spanning more than a factor 2: no answer
    flags       VARCHAR,           -- TEff: '>' / '<' some seed extrapolated, '*' some seed below the asymptote
    text        VARCHAR,           -- the cell xling report prints, e.g. '2.08 [1.71, 2.53] n=3'
    PRIMARY KEY (experiment, name, measure, language, detail)
);
COMMENT ON TABLE summary IS 'Final results over seeds with 95% intervals, one row per experiment, schedule, language and measure (what xling report shows).';

-- Real languages and downstream probes (engine.languages, engine.probe).

CREATE TABLE tokenizers (
    run_id     VARCHAR PRIMARY KEY,
    mode       VARCHAR,           -- 'cloned', 'disjoint', 'anchored' or 'joint'
    vocab_size BIGINT,            -- the model's vocabulary (embedding rows)
    n_anchors  BIGINT,            -- ids shared by the languages: cloned anchor ids, merged pieces (anchored),
                                  -- or pieces seen in two or more languages' training text (joint)
    languages  JSON,              -- {language: {vocab_size, train_tokens, test_tokens}}
    time       TIMESTAMP
);
COMMENT ON TABLE tokenizers IS 'How each run''s languages were tokenised, and how many anchors they share.';

CREATE TABLE probes (
    run_id         VARCHAR NOT NULL,
    step           BIGINT NOT NULL,
    tokens         BIGINT,
    task           VARCHAR NOT NULL,  -- 'builtin:synthetic', a TSV path, or 'per-language TSV'
    train_language VARCHAR NOT NULL,  -- the language the classifier was fine-tuned in (L1)
    language       VARCHAR NOT NULL,  -- the language it was scored in (zero-shot unless = train_language)
    accuracy       DOUBLE,
    chance         DOUBLE,            -- share of the most common class: what always guessing it scores
    n_examples     BIGINT,
    train_accuracy DOUBLE,            -- on the fine-tuning examples
    time           TIMESTAMP,
    PRIMARY KEY (run_id, step, task, train_language, language)
);
COMMENT ON TABLE probes IS 'Zero-shot downstream probe: fine-tuned in train_language, evaluated in language.';

{{ config(
    materialized=lifecycle_incremental(),
    unique_key='source_key',
    incremental_strategy='delete+insert',
    on_schema_change='sync_all_columns',
    tags=['lifecycle', 'intermediate']
) }}

-- Read only by incremental runs; dbt (and the runner) take the DAG from a parse with is_incremental() false.
-- depends_on: {{ ref('int_lifecycle__builds') }}

{#
  The canonical user of every source that is not simply itself (SPEC 4.2), as of D: anonymous ids with an
  identify or alias, and user ids that were aliased away (the single hop). A source absent from this table maps
  by default: a user id to itself, an anonymous id to nobody (anonymous).

  Each row also keeps the user it mapped to before its last change (previous_user_id) and when that change was
  built (_built_at), so downstream incremental models re-derive exactly the users that gained or lost events.

  Incremental: only anonymous ids that can map differently are looked at: those of identify rows received
  after the watermark (max_received_at minus lifecycle__lookback_hours) or dated in (previous D, D]; the
  previous ids of such alias rows; and the anonymous ids whose stored user goes through a user id whose alias
  changed (the hop). Their identify rows are deduped together with every other copy of those rows' ids.
  Aliases are few and are always read whole.
-#}

{%- set as_of = lifecycle_as_of_date() -%}

with

-- Inlined, so that each read below pushes its own filter into the scan instead of sharing one materialized copy
-- of every identify row.
identify_rows as {{ cte_inline() }} (
    select id, anonymous_id, user_id, event_at, event_date, received_at
    from {{ ref('stg_lifecycle__identifies') }}
),

alias_rows as (
    select id, previous_id, user_id, event_at, event_date, received_at
    from {{ ref('stg_lifecycle__aliases') }}
),

-- Alias rows, dedup on id, dated <= D.
aliases as (
    select previous_id, user_id, event_at, received_at, id
    from (
        {{ dedup_first('alias_rows', ['event_at', 'user_id', 'previous_id'], ['user_id', 'previous_id']) }}
    ) as d
    where event_date <= {{ as_of }}
        and nullif(previous_id, '') is not null
        and nullif(user_id, '') is not null
),

-- The latest alias of each previous id: step 1 for anonymous ids without an identify, and the single hop.
latest_alias as (
    select previous_id, user_id, received_at
    from (
        select
            a.*,
            row_number() over (partition by a.previous_id order by a.event_at desc, a.received_at desc nulls last, {{ binary_text('a.id') }} desc) as pick
        from aliases as a
    ) as ranked
    -- `<= 1`, the same rows as `= 1`: PostgreSQL estimates an equality on a row number already filtered on one
    -- (the dedup) at a single row, and then joins the hop below as a nested loop that rescans every alias for
    -- every anonymous id (60 s for 25k aliases and 58k ids, 0.7 s as a hash join); an inequality it estimates
    -- wider
    where pick <= 1
),

{% if is_incremental() %}

prior as (
{{ lifecycle_prior_build(ref('int_lifecycle__builds')) }}
),

watermark as (
{{ lifecycle_watermark(['stg_lifecycle__identifies', 'stg_lifecycle__aliases']) }}
),

-- Alias rows that are new, or that count from this D on. Other copies of a new row's id need no search: a
-- copy received earlier either is new too or was received before the lookback window and keeps winning the
-- dedup; a copy received later is itself new.
new_alias_rows as (
    select a.previous_id
    from alias_rows as a
    where {{ lifecycle_received_new('a.received_at') }}
        or (a.event_date > (select p.prior_as_of_date from prior as p) and a.event_date <= {{ as_of }})
),

-- The anonymous ids whose mapping can change (see above), or all of them when everything is recomputed:
-- those of identify rows that are new or count from this D on, ...
affected_anonymous as {{ cte_materialized() }} (
    select i.anonymous_id
    from identify_rows as i
    where {{ lifecycle_received_new('i.received_at') }}
    {{ union_distinct() }}
    select i.anonymous_id
    from identify_rows as i
    where i.event_date > (select p.prior_as_of_date from prior as p)
        and i.event_date <= {{ as_of }}
        -- the same days as a range on the raw timestamp, widened past any time zone offset, that the warehouse
        -- can check against each block's min/max before computing local dates
        and i.event_at >= (select cast({{ add_days('p.prior_as_of_date', -2) }} as timestamp) from prior as p)
        and i.event_at < cast({{ add_days(as_of, 3) }} as timestamp)
    {{ union_distinct() }}
    select i.anonymous_id
    from identify_rows as i
    where (select p.recompute_all from prior as p) = 1
    {{ union_distinct() }}
    -- ... the previous ids of such aliases (step 1 without an identify), ...
    select a.previous_id from new_alias_rows as a
    {{ union_distinct() }}
    -- ... and those whose stored user goes through a user id with such an alias (the hop)
    select substr(t.source_key, 3)
    from {{ this }} as t
    where t.source_key like 'a:%'
        and (
            t.user_id in (select a.previous_id from new_alias_rows as a)
            or t.user_id in (
                select s.user_id from {{ this }} as s
                where s.source_key in (select 'u:' || a.previous_id from new_alias_rows as a)
            )
            -- reading everything (recomputing all, or raw rows were deleted): every stored mapping is looked
            -- at again, so one whose identify rows are gone falls back to the default
            or {{ lifecycle_reads_all() }}
        )
    {{ union_distinct() }}
    select a.previous_id from aliases as a
    where (select p.recompute_all from prior as p) = 1
    {{ union_distinct() }}
    -- ... and those whose stored mapping was decided by a row received after the watermark: looked at again
    -- whether or not a new row came, so a deciding row deleted since (inside the lookback window, or stamped
    -- after its build started, which no count sees) takes its mapping with it
    select substr(t.source_key, 3)
    from {{ this }} as t
    where t.source_key like 'a:%'
        and t.mapped_received_at > (select w.received_after from watermark as w)
),

-- Only their identify rows, with every copy of those rows' ids so that dedup sees the first received.
identify_candidates as (
    select r.*
    from identify_rows as r
    where r.id in (
        select s.id from identify_rows as s
        where s.anonymous_id in (select a.anonymous_id from affected_anonymous as a)
    )
),

{% else %}

identify_candidates as {{ cte_inline() }} (
    select * from identify_rows
),

{% endif %}

-- Identify rows, dedup on id keeping the first received, dated <= D and naming a user (SPEC 4.2).
identifies as (
    select anonymous_id, user_id, event_at, received_at, id
    from (
        {{ dedup_first('identify_candidates', ['event_at', 'user_id', 'anonymous_id'], ['user_id', 'anonymous_id']) }}
    ) as d
    where event_date <= {{ as_of }}
        and nullif(anonymous_id, '') is not null
        and nullif(user_id, '') is not null
        {% if is_incremental() %}and anonymous_id in (select a.anonymous_id from affected_anonymous as a){% endif %}
),

-- The latest identify of each anonymous id (by timestamp, then received_at, then id).
latest_identify as (
    select anonymous_id, user_id, received_at
    from (
        select
            i.*,
            row_number() over (partition by i.anonymous_id order by i.event_at desc, i.received_at desc nulls last, {{ binary_text('i.id') }} desc) as pick
        from identifies as i
    ) as ranked
    where pick = 1
),

-- Step 1 for anonymous ids: the identify wins over the alias.
anonymous_step_one as (
    select
        coalesce(i.anonymous_id, a.previous_id) as anonymous_id,
        coalesce(i.user_id, a.user_id) as user_id,
        case when i.anonymous_id is not null then i.received_at else a.received_at end as received_at
    from latest_identify as i
    full outer join (
        select l.previous_id, l.user_id, l.received_at
        from latest_alias as l
        {% if is_incremental() %}where l.previous_id in (select a.anonymous_id from affected_anonymous as a){% endif %}
    ) as a on a.previous_id = i.anonymous_id
),

-- Step 2, once: an id that is itself the previous_id of an alias becomes that alias's user_id.
-- mapped_received_at: when the newest row that decides the mapping was received (the step-1 row, or the hop)
current_map as (
    select
        'a:' || s.anonymous_id as source_key,
        coalesce(h.user_id, s.user_id) as user_id,
        case
            when h.received_at is not null and (s.received_at is null or h.received_at > s.received_at) then h.received_at
            else s.received_at
        end as mapped_received_at
    from anonymous_step_one as s
    left join latest_alias as h on h.previous_id = s.user_id
    union all
    select
        'u:' || h.previous_id as source_key,
        h.user_id,
        h.received_at
    from latest_alias as h
    where h.user_id <> h.previous_id
),

-- The newest raw row seen, and what the next incremental run's watermark starts from (see lifecycle_watermark).
received as (
    select max(m) as max_received_at
    from (
        select max(received_at) as m from identify_rows
        union all
        select max(received_at) from alias_rows
    ) as r
),

watermark_state as (
{{ lifecycle_watermark_state(['stg_lifecycle__identifies', 'stg_lifecycle__aliases']) }}
)

{% if is_incremental() %}

-- What each source mapped to before: the stored row, else the default (a user id to itself). Only the
-- sources looked at in this run: the affected anonymous ids and every aliased user id.
, stored as (
    select t.source_key, t.user_id
    from {{ this }} as t
    where t.source_key like 'u:%'
    union all
    -- a semi-join on the key, not an `or` with the one above: PostgreSQL runs an `in` under an `or` as a subplan
    -- rescanned for every stored row (13 s for 200k stored sources and 542 affected ones)
    select t.source_key, t.user_id
    from {{ this }} as t
    where t.source_key in (select 'a:' || a.anonymous_id from affected_anonymous as a)
),

changes as (
    -- new or different mappings
    select
        c.source_key,
        c.user_id,
        case
            when s.source_key is not null then s.user_id
            when c.source_key like 'u:%' then substr(c.source_key, 3)
        end as previous_user_id,
        c.mapped_received_at
    from current_map as c
    left join stored as s on s.source_key = c.source_key
    where s.source_key is null
        or s.user_id is null and c.user_id is not null
        or s.user_id is not null and c.user_id is null
        or s.user_id <> c.user_id
    union all
    -- mappings that no longer hold fall back to the default
    select
        s.source_key,
        case when s.source_key like 'u:%' then substr(s.source_key, 3) end as user_id,
        s.user_id as previous_user_id,
        null as mapped_received_at
    from stored as s
    where s.source_key not in (select c.source_key from current_map as c)
        and s.user_id is not null
        and (s.source_key not like 'u:%' or s.user_id <> substr(s.source_key, 3))
)

select
    c.source_key,
    c.user_id,
    c.previous_user_id,
    c.mapped_received_at,
    (select r.max_received_at from received as r) as max_received_at,
    (select w.watermark_cutoff from watermark_state as w) as watermark_cutoff,
    (select w.watermark_rows from watermark_state as w) as watermark_rows,
    (select w.watermark_seen_at from watermark_state as w) as watermark_seen_at,
    (select w.watermark_seen_rows from watermark_state as w) as watermark_seen_rows,
    {{ lifecycle_run_at() }} as _built_at,
    {{ lifecycle_recomputed_all() }} as _recomputed_all
from changes as c
union all
-- After reading everything again (late rows, or recomputing all) without a change to write, one stored row is
-- rewritten as it is, to carry the new watermark state: otherwise every later run would count the same late
-- rows again and read everything again. Downstream, it re-derives that one source's user, and the daily marts
-- recompute from that source's first day (lifecycle_changed_from): one such run, not one per day.
select
    t.source_key,
    t.user_id,
    t.previous_user_id,
    t.mapped_received_at,
    (select r.max_received_at from received as r),
    (select w.watermark_cutoff from watermark_state as w),
    (select w.watermark_rows from watermark_state as w),
    (select w.watermark_seen_at from watermark_state as w),
    (select w.watermark_seen_rows from watermark_state as w),
    {{ lifecycle_run_at() }},
    {{ lifecycle_recomputed_all() }}
from {{ this }} as t
where {{ lifecycle_reads_all() }}
    and not exists (select 1 from changes as c)
    and t.source_key = (select min(m.source_key) from {{ this }} as m)

{% else %}

select
    c.source_key,
    c.user_id,
    cast(null as {{ text_type() }}) as previous_user_id,
    c.mapped_received_at,
    (select r.max_received_at from received as r) as max_received_at,
    (select w.watermark_cutoff from watermark_state as w) as watermark_cutoff,
    (select w.watermark_rows from watermark_state as w) as watermark_rows,
    (select w.watermark_seen_at from watermark_state as w) as watermark_seen_at,
    (select w.watermark_seen_rows from watermark_state as w) as watermark_seen_rows,
    {{ lifecycle_run_at() }} as _built_at,
    {{ lifecycle_recomputed_all() }} as _recomputed_all
from current_map as c

{% endif %}

{{ config(
    materialized='incremental',
    unique_key='source_key',
    incremental_strategy='delete+insert',
    tags=['lifecycle', 'intermediate']
) }}

{#-
  The canonical user of every source that is not simply itself (SPEC 4.2), as of D: anonymous ids with an
  identify or alias, and user ids that were aliased away (the single hop). A source absent from this table maps
  by default: a user id to itself, an anonymous id to nobody (anonymous).

  Each row also keeps the user it mapped to before its last change (previous_user_id) and when that change was
  built (_built_at), so downstream incremental models re-derive exactly the users that gained or lost events.
-#}

{%- set as_of = lifecycle_as_of_date() -%}

with

identify_rows as (
    select id, anonymous_id, user_id, event_at, event_date, received_at
    from {{ ref('stg_lifecycle__identifies') }}
),

-- Identify rows, dedup on id keeping the first received, dated <= D and naming a user (SPEC 4.2).
identifies as (
    select anonymous_id, user_id, event_at, received_at, id
    from (
        {{ dedup_first('identify_rows', ['received_at', 'event_at', 'user_id', 'anonymous_id']) }}
    ) as d
    where event_date <= {{ as_of }}
        and nullif(anonymous_id, '') is not null
        and nullif(user_id, '') is not null
),

alias_rows as (
    select id, previous_id, user_id, event_at, event_date, received_at
    from {{ ref('stg_lifecycle__aliases') }}
),

-- Alias rows, dedup on id, dated <= D.
aliases as (
    select previous_id, user_id, event_at, received_at, id
    from (
        {{ dedup_first('alias_rows', ['received_at', 'event_at', 'user_id', 'previous_id']) }}
    ) as d
    where event_date <= {{ as_of }}
        and nullif(previous_id, '') is not null
        and nullif(user_id, '') is not null
),

-- The latest identify of each anonymous id (by timestamp, then received_at, then id).
latest_identify as (
    select anonymous_id, user_id
    from (
        select
            i.*,
            row_number() over (partition by i.anonymous_id order by i.event_at desc, i.received_at desc, i.id desc) as pick
        from identifies as i
    ) as ranked
    where pick = 1
),

-- The latest alias of each previous id: step 1 for anonymous ids without an identify, and the single hop.
latest_alias as (
    select previous_id, user_id
    from (
        select
            a.*,
            row_number() over (partition by a.previous_id order by a.event_at desc, a.received_at desc, a.id desc) as pick
        from aliases as a
    ) as ranked
    where pick = 1
),

-- Step 1 for anonymous ids: the identify wins over the alias.
anonymous_step_one as (
    select
        coalesce(i.anonymous_id, a.previous_id) as anonymous_id,
        coalesce(i.user_id, a.user_id) as user_id
    from latest_identify as i
    full outer join latest_alias as a on a.previous_id = i.anonymous_id
),

-- Step 2, once: an id that is itself the previous_id of an alias becomes that alias's user_id.
current_map as (
    select
        'a:' || s.anonymous_id as source_key,
        coalesce(h.user_id, s.user_id) as user_id
    from anonymous_step_one as s
    left join latest_alias as h on h.previous_id = s.user_id
    union all
    select
        'u:' || h.previous_id as source_key,
        h.user_id
    from latest_alias as h
    where h.user_id <> h.previous_id
)

{% if is_incremental() %}

-- What each source mapped to before: the stored row, else the default (a user id to itself).
, stored as (
    select t.source_key, t.user_id from {{ this }} as t
),

changes as (
    -- new or different mappings
    select
        c.source_key,
        c.user_id,
        case
            when s.source_key is not null then s.user_id
            when substr(c.source_key, 1, 2) = 'u:' then substr(c.source_key, 3)
        end as previous_user_id
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
        case when substr(s.source_key, 1, 2) = 'u:' then substr(s.source_key, 3) end as user_id,
        s.user_id as previous_user_id
    from stored as s
    where s.source_key not in (select c.source_key from current_map as c)
        and s.user_id is not null
        and (substr(s.source_key, 1, 2) <> 'u:' or s.user_id <> substr(s.source_key, 3))
)

select
    source_key,
    user_id,
    previous_user_id,
    {{ lifecycle_run_at() }} as _built_at
from changes

{% else %}

select
    source_key,
    user_id,
    cast(null as {{ text_type() }}) as previous_user_id,
    {{ lifecycle_run_at() }} as _built_at
from current_map

{% endif %}

{{ config(
    materialized=lifecycle_incremental(),
    unique_key='user_id',
    incremental_strategy='delete+insert',
    on_schema_change='sync_all_columns',
    tags=['lifecycle', 'intermediate']
) }}

-- Read only by incremental runs; dbt (and the runner) take the DAG from a parse with is_incremental() false.
-- depends_on: {{ ref('int_lifecycle__builds') }}

{#
  One row per canonical user and day with any fact dated <= D (SPEC 4.3), with the previous two and the next
  activity day on activity rows: everything the status history and growth accounting need, without a
  user x day spine.

  Incremental: only users whose sources changed facts, whose sources were re-attributed by identity, or who
  have facts dated between the previous D and this one are re-derived (all their days). A re-derived user left
  with no fact at all keeps one row with a null date_day (a tombstone), so that the delete by user_id removes
  their old rows; every consumer filters date_day is not null.
-#}

{%- set as_of = lifecycle_as_of_date() -%}
{%- set count_floor = lifecycle_count_floor() | int -%}

with

{% if is_incremental() %}

prior as (
{{ lifecycle_prior_build(ref('int_lifecycle__builds'), [ref('int_lifecycle__identity'), ref('int_lifecycle__source_days')]) }}
),

-- Everyone is re-derived when recomputing all, or when this model skipped a build (a partial build) in which
-- identity changed: a source remapped twice keeps only its last previous_user_id, and the user it first left
-- would keep its days.
everyone as (
    select
        case
            when (select p.recompute_all from prior as p) = 1 then 1
            when {{ lifecycle_skipped_builds(ref('int_lifecycle__builds'), [ref('int_lifecycle__identity')]) }}
                and exists (
                    select 1 from {{ ref('int_lifecycle__identity') }} as m
                    where m._built_at > (select p.prior_built_at from prior as p)
                        and m._built_at < {{ lifecycle_run_at() }}
                ) then 1
            else 0
        end as flag
),

-- The canonical user of each changed source (identity row, else the default: a user id is itself).
changed_sources as (
{{ lifecycle_changed_pairs(ref('int_lifecycle__source_days')) }}
),

changed_users as (
    select case when m.source_key is not null then m.user_id when c.source_key like 'u:%' then substr(c.source_key, 3) end as user_id
    -- a right join, so the few changed sources are the hash join's build side and the identity scan probes them
    from {{ ref('int_lifecycle__identity') }} as m
    right join changed_sources as c on m.source_key = c.source_key
    {{ union_distinct() }}
    select m.user_id from {{ ref('int_lifecycle__identity') }} as m
    where m._built_at > (select p.prior_built_at from prior as p)
    {{ union_distinct() }}
    select m.previous_user_id from {{ ref('int_lifecycle__identity') }} as m
    where m._built_at > (select p.prior_built_at from prior as p)
),

affected_users as (
    select user_id from changed_users where user_id is not null and (select e.flag from everyone as e) = 0
    {{ union_distinct() }}
    select m.user_id from {{ ref('int_lifecycle__identity') }} as m
    where (select e.flag from everyone as e) = 1 and m.user_id is not null
    {{ union_distinct() }}
    select substr(s.source_key, 3) from {{ ref('int_lifecycle__source_days') }} as s
    where (select e.flag from everyone as e) = 1 and s.source_key like 'u:%'
    {{ union_distinct() }}
    select t.user_id from {{ this }} as t
    where (select e.flag from everyone as e) = 1
),

-- Every source that may belong to an affected user: the sources mapped to them, and their own user id.
candidate_sources as (
    select m.source_key from {{ ref('int_lifecycle__identity') }} as m
    where m.user_id in (select a.user_id from affected_users as a)
    {{ union_distinct() }}
    select 'u:' || a.user_id from affected_users as a
),

{% endif %}

-- The columns used below only: an incremental run reads the affected users' facts across the whole table.
source_facts as (
    select
        s.source_key, s.event_date, s.has_event, s.is_active, s.has_churn_signal, s.has_core_event,
        s.purchase_count, s.revenue, s.has_identify, s.created_at_date, s.plan_value, s.plan_event_at,
        s.plan_received_at, s.plan_id
    from {{ ref('int_lifecycle__source_days') }} as s
    where s.event_date <= {{ as_of }}
        -- rows without a fact are tombstones of emptied pairs (see int_lifecycle__source_days)
        and (s.has_event = 1 or s.has_identify = 1)
        {% if is_incremental() %}and s.source_key in (select c.source_key from candidate_sources as c){% endif %}
),

-- Identity (SPEC 4.2): the mapped user when the source has an identity row, else a user id maps to itself and
-- an anonymous id stays anonymous (and out of every lifecycle model).
attributed as (
    select
        case
            when m.source_key is not null then m.user_id
            when f.source_key like 'u:%' then substr(f.source_key, 3)
        end as user_id,
        f.*
    {% if is_incremental() -%}
    -- the affected users' few facts are the hash join's build side; the identity scan probes them
    from {{ ref('int_lifecycle__identity') }} as m
    right join source_facts as f on m.source_key = f.source_key
    {%- else -%}
    from source_facts as f
    left join {{ ref('int_lifecycle__identity') }} as m on m.source_key = f.source_key
    {%- endif %}
),

{% if is_incremental() %}
attributed_affected as (
    select a.* from attributed as a
    where a.user_id in (select u.user_id from affected_users as u)
),
{% else %}
attributed_affected as (
    select a.* from attributed as a
    where a.user_id is not null
),
{% endif %}

-- The latest plan value of each user and day across their sources (by timestamp, received_at, id).
day_plans as (
    select user_id, event_date, plan_value, plan_event_at, plan_received_at, plan_id
    from (
        select
            a.user_id,
            a.event_date,
            a.plan_value,
            a.plan_event_at,
            a.plan_received_at,
            a.plan_id,
            row_number() over (
                partition by a.user_id, a.event_date
                order by a.plan_event_at desc, a.plan_received_at desc nulls last, {{ binary_text('a.plan_id') }} desc
            ) as pick
        from attributed_affected as a
        where a.plan_value is not null
    ) as ranked
    where pick = 1
),

days as (
    select
        user_id,
        event_date as date_day,
        max(has_event) as has_event,
        max(is_active) as is_active,
        max(has_churn_signal) as has_churn_signal,
        max(has_core_event) as has_core_event,
        sum(purchase_count) as purchase_count,
        sum(revenue) as revenue,
        max(has_identify) as has_identify,
        min(created_at_date) as created_at_date
    from attributed_affected
    group by user_id, event_date
),

-- The activity-day chain: the previous two and the next activity day, on activity days only. The gaps decide
-- the growth-accounting state of the day and of the day before (SPEC 4.5) and the return days (SPEC 4.3).
-- floor_next_active_date, the activity day count_floor - 1 activity days later, tells int_lifecycle__status_runs
-- whether the user ever reaches the 7/28-day counts that matter; it shares this window's sort.
activity_chain as (
    select
        d.*,
        lag(d.date_day, 1) over (partition by d.user_id order by d.date_day) as prev_active_date,
        lag(d.date_day, 2) over (partition by d.user_id order by d.date_day) as prev2_active_date,
        lead(d.date_day, 1) over (partition by d.user_id order by d.date_day) as next_active_date,
        {% if count_floor > 1 -%}
        lead(d.date_day, {{ count_floor - 1 }}) over (partition by d.user_id order by d.date_day) as floor_next_active_date
        {%- else -%}
        cast(null as date) as floor_next_active_date
        {%- endif %}
    from days as d
    where d.is_active = 1
),

-- Activity days with their chain, and the other days without one: a union, not a join of the chain back
-- onto every day.
chained_days as (
    select * from activity_chain
    union all
    select
        d.*,
        cast(null as date) as prev_active_date,
        cast(null as date) as prev2_active_date,
        cast(null as date) as next_active_date,
        cast(null as date) as floor_next_active_date
    from days as d
    where d.is_active = 0
),

final as (
    select
        d.user_id,
        d.date_day,
        d.has_event,
        d.is_active,
        d.has_churn_signal,
        d.has_core_event,
        cast(d.purchase_count as integer) as purchase_count,
        -- null on days without a purchase (see int_lifecycle__source_days)
        case when d.purchase_count > 0 then cast(coalesce(d.revenue, 0) as {{ money_type() }}) end as revenue,
        d.has_identify,
        d.created_at_date,
        p.plan_value,
        p.plan_event_at,
        p.plan_received_at,
        p.plan_id,
        d.prev_active_date,
        d.prev2_active_date,
        d.next_active_date,
        d.floor_next_active_date
    from chained_days as d
    left join day_plans as p on p.user_id = d.user_id and p.event_date = d.date_day
)

{% if is_incremental() %}
-- Affected users without any fact left get a tombstone row (see above).
select
    a.user_id,
    f.date_day,
    f.has_event,
    f.is_active,
    f.has_churn_signal,
    f.has_core_event,
    f.purchase_count,
    f.revenue,
    f.has_identify,
    f.created_at_date,
    f.plan_value,
    f.plan_event_at,
    f.plan_received_at,
    f.plan_id,
    f.prev_active_date,
    f.prev2_active_date,
    f.next_active_date,
    f.floor_next_active_date,
    {{ lifecycle_run_at() }} as _built_at,
    {{ lifecycle_recomputed_all() }} as _recomputed_all
from affected_users as a
left join final as f on f.user_id = a.user_id
{% else %}
select
    f.*,
    {{ lifecycle_run_at() }} as _built_at,
    {{ lifecycle_recomputed_all() }} as _recomputed_all
from final as f
{% endif %}
